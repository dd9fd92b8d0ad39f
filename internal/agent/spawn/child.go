package spawn

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

// SpawnRequest describes a long-lived helper process (a code kernel) that
// another agent service owns: it gets the sandbox's environment under Env,
// its own process group, and Files as its fds 0, 1, 2, 3...
type SpawnRequest struct {
	Argv  []string
	Env   map[string]string
	Cwd   string     // the workdir when empty; relative paths are under it
	Files []*os.File // nil entries are /dev/null
}

// Child is a process started by Spawn.
type Child struct {
	Pid    int
	exited chan struct{}
	ws     syscall.WaitStatus // set before exited is closed
}

// Spawn starts a helper process as a child of the agent, reaped like every
// other. The caller closes its copies of r.Files.
func (s *Spawner) Spawn(r SpawnRequest) (*Child, error) {
	cmd, err := s.Prepare(r.Argv, "", r.Cwd, r.Env)
	if err != nil {
		return nil, err
	}
	argv := cmd.Argv
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("spawn %q: %w: %w", argv[0], err, errdefs.ErrResourceExhausted)
	}
	defer null.Close()
	fds := make([]uintptr, max(len(r.Files), 3))
	for i := range fds {
		fds[i] = null.Fd()
		if i < len(r.Files) && r.Files[i] != nil {
			fds[i] = r.Files[i].Fd()
		}
	}
	attr := &syscall.ProcAttr{Dir: cmd.Cwd, Env: cmd.Env, Files: fds, Sys: &syscall.SysProcAttr{Setpgid: true}}
	pid, status, err := s.Fork(func() (int, error) { return syscall.ForkExec(cmd.Path, argv, attr) })
	if err != nil {
		return nil, fmt.Errorf("spawn %q: %w: %w", argv[0], err, errdefs.ErrFailedPrecondition)
	}
	c := &Child{Pid: pid, exited: make(chan struct{})}
	go func() {
		c.ws = <-status
		close(c.exited)
	}()
	return c, nil
}

// Exited is closed once the child has exited and been reaped.
func (c *Child) Exited() <-chan struct{} { return c.exited }

// Status describes how the child ended, e.g. "exit code 1" or "killed by
// SIGKILL"; call it after Exited is closed.
func (c *Child) Status() string {
	if c.ws.Signaled() {
		return "killed by " + unix.SignalName(c.ws.Signal())
	}
	return fmt.Sprintf("exit code %d", c.ws.ExitStatus())
}

// Signal signals the child alone (not its group).
func (c *Child) Signal(sig syscall.Signal) {
	if !Closed(c.exited) {
		_ = syscall.Kill(c.Pid, sig)
	}
}

// Kill kills the child and everything it started, and waits until it is reaped.
func (c *Child) Kill() {
	if !Closed(c.exited) {
		KillTree(c.Pid)
	}
	<-c.exited
}
