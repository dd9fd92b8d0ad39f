// Package spawn starts and reaps the agent's children: the reaper that PID 1
// needs, the environment and directory a command starts in, and killing a
// whole process tree. The services that run commands (exec, process,
// session, pty, code kernels) all start them through a Spawner.
package spawn

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

const (
	// KeepAliveInterval is how often a quiet output stream sends a keep-alive.
	KeepAliveInterval = 15 * time.Second
	// DrainGrace bounds how long output is still read after a command
	// exits, when a background child keeps its output open.
	DrainGrace = time.Second
	// StopWait bounds waiting for a SIGKILLed shell to be reaped.
	StopWait = 5 * time.Second
	// KillPoll is how often a kill checks whether the tree is gone.
	KillPoll = 20 * time.Millisecond
)

// Spawner starts commands as children of the agent, in the workdir (or a
// directory under it) with the sandbox's base environment under the
// command's own.
type Spawner struct {
	reaper  *Reaper
	workdir string

	mu   sync.Mutex
	base []string // KEY=VALUE; changed by SetEnv
}

// New returns a Spawner whose commands start in workdir with baseEnv.
func New(reaper *Reaper, baseEnv []string, workdir string) *Spawner {
	return &Spawner{reaper: reaper, workdir: workdir, base: baseEnv}
}

// Workdir is where commands start unless told otherwise.
func (s *Spawner) Workdir() string { return s.workdir }

// Env is the base environment of a new command: the sandbox's, as changed
// by SetEnv, plus HOSTNAME.
func (s *Spawner) Env() []string {
	s.mu.Lock()
	base := slices.Clone(s.base)
	s.mu.Unlock()
	if h, err := os.Hostname(); err == nil {
		base = append(base, "HOSTNAME="+h)
	}
	return base
}

// SetEnv changes the base environment of every later command; check the
// change with CheckEnvChange first.
func (s *Spawner) SetEnv(set map[string]string, unset []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.base = ApplyEnv(s.base, set, unset)
}

// Command is a resolved command line, ready to fork.
type Command struct {
	Path string   // the executable
	Argv []string // argv[0] as given
	Env  []string // KEY=VALUE, sorted
	Cwd  string   // absolute
}

// Prepare checks a command line (argv, or a shell string for /bin/sh -c)
// and resolves what to run, where and with which environment.
func (s *Spawner) Prepare(argv []string, shell, cwd string, env map[string]string) (Command, error) {
	argv, err := commandLine(argv, shell)
	if err != nil {
		return Command{}, err
	}
	c := Command{Argv: argv, Env: MergeEnv(s.Env(), env)}
	if c.Cwd, err = s.ResolveCwd(cwd); err != nil {
		return Command{}, err
	}
	if c.Path, err = LookPath(argv[0], c.Env, c.Cwd); err != nil {
		return Command{}, err
	}
	return c, nil
}

// ResolveCwd makes cwd absolute (the workdir when empty, relative paths
// under it) and checks that it is a directory.
func (s *Spawner) ResolveCwd(cwd string) (string, error) {
	if cwd == "" {
		cwd = s.workdir
	} else if !filepath.IsAbs(cwd) {
		cwd = filepath.Join(s.workdir, cwd)
	}
	if fi, err := os.Stat(cwd); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("cwd %q: no such directory: %w", cwd, errdefs.ErrNotFound)
	}
	return cwd, nil
}

// Fork runs fork (which must start exactly one child and return its pid)
// and returns a channel that receives the child's wait status once.
func (s *Spawner) Fork(fork func() (int, error)) (int, <-chan syscall.WaitStatus, error) {
	return s.reaper.Spawn(fork)
}

func commandLine(argv []string, shell string) ([]string, error) {
	switch {
	case len(argv) > 0 && shell != "":
		return nil, fmt.Errorf("exec: set argv or shell, not both: %w", errdefs.ErrInvalidArgument)
	case shell != "":
		return []string{"/bin/sh", "-c", shell}, nil
	case len(argv) == 0 || argv[0] == "":
		return nil, fmt.Errorf("exec: empty command: %w", errdefs.ErrInvalidArgument)
	}
	for _, a := range argv {
		if strings.IndexByte(a, 0) >= 0 {
			return nil, fmt.Errorf("exec: argument contains a NUL byte: %w", errdefs.ErrInvalidArgument)
		}
	}
	return argv, nil
}

// MergeEnv overlays extra on base; the result is sorted for stable output.
func MergeEnv(base []string, extra map[string]string) []string {
	m := make(map[string]string, len(base)+len(extra))
	for _, kv := range base {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	for k, v := range extra {
		m[k] = v
	}
	out := make([]string, 0, len(m))
	for k, v := range m {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.IndexByte(v, 0) >= 0 {
			continue
		}
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// LookPath finds file in the PATH of env, as a shell would.
func LookPath(file string, env []string, cwd string) (string, error) {
	check := func(p string) error {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if fi.IsDir() || fi.Mode()&0o111 == 0 {
			return os.ErrPermission
		}
		return nil
	}
	if strings.Contains(file, "/") {
		p := file
		if !filepath.IsAbs(p) {
			p = filepath.Join(cwd, p)
		}
		switch err := check(p); {
		case err == nil:
			return p, nil
		case errors.Is(err, os.ErrPermission):
			return "", fmt.Errorf("exec %q: not an executable file: %w", file, errdefs.ErrPermissionDenied)
		default:
			return "", fmt.Errorf("exec %q: no such file: %w", file, errdefs.ErrNotFound)
		}
	}
	pathEnv := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv = v
		}
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "."
		}
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(cwd, dir)
		}
		p := filepath.Join(dir, file)
		if check(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec %q: executable file not found in $PATH: %w", file, errdefs.ErrNotFound)
}

// ParseSignal accepts "SIGINT", "INT", "int" or a number; empty is SIGTERM.
func ParseSignal(name string) (syscall.Signal, error) {
	if name == "" {
		return syscall.SIGTERM, nil
	}
	var n int
	if _, err := fmt.Sscanf(name, "%d", &n); err == nil && fmt.Sprint(n) == name {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("signal %q: out of range: %w", name, errdefs.ErrInvalidArgument)
		}
		return syscall.Signal(n), nil
	}
	up := strings.ToUpper(name)
	if !strings.HasPrefix(up, "SIG") {
		up = "SIG" + up
	}
	sig := unix.SignalNum(up)
	if sig == 0 {
		return 0, fmt.Errorf("signal %q: unknown signal: %w", name, errdefs.ErrInvalidArgument)
	}
	return sig, nil
}

// ExitCode is a shell's $? for a wait status: the exit status, or 128 plus
// the signal that killed it.
func ExitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// ReadAvailable waits until f has data, then reads all it holds without
// waiting again, up to len(buf): a fast producer's small writes travel as
// one large chunk, and a slow one's output is sent the moment it appears.
func ReadAvailable(f *os.File, buf []byte) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return f.Read(buf)
	}
	n := 0
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		for n < len(buf) {
			m, err := unix.Read(int(fd), buf[n:])
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				return n > 0 // nothing yet: wait for readiness
			case err != nil:
				rerr = err
				return true
			case m == 0:
				if n == 0 {
					rerr = io.EOF
				}
				return true
			}
			n += m
		}
		return true
	})
	if err != nil {
		return n, err
	}
	return n, rerr
}

// Closed reports whether c is closed.
func Closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
