// Package runtime runs sandboxes as OCI containers: it builds the runtime
// spec and drives an OCI runtime (runc) through one small interface that a
// hardened runtime (gVisor's runsc) can implement too.
package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"syscall"
	"time"

	runc "github.com/containerd/go-runc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

// Status is what the runtime knows of a container.
type Status = sandbox.Status

const (
	StatusMissing = sandbox.StatusMissing
	StatusCreated = sandbox.StatusCreated
	StatusRunning = sandbox.StatusRunning
	StatusPaused  = sandbox.StatusPaused
	StatusStopped = sandbox.StatusStopped
)

var (
	_ sandbox.Runtime   = (*Runc)(nil)
	_ sandbox.Preparer  = (*Runc)(nil)
	_ sandbox.Hostnamer = (*Runc)(nil)
)

// Runc drives the runc binary.
type Runc struct {
	rc  *runc.Runc
	log *slog.Logger
	// cgroupParent is the cgroup subtree the containers go in (see
	// CgroupParent), where a spec names none; "" leaves it to the spec.
	cgroupParent string
}

// NewRunc keeps runc's container state under root and puts containers in
// cgroups under cgroupParent (see CgroupParent), which it owns: it removes
// a container's cgroups with it, sweeps orphans and freezes.
func NewRunc(root, cgroupParent string, log *slog.Logger) (*Runc, error) {
	if _, err := exec.LookPath("runc"); err != nil {
		return nil, fmt.Errorf("runc not installed (apt-get install runc): %w", errdefs.ErrFailedPrecondition)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	// PdeathSignal: a runc that outlives a killed daemon could finish
	// starting a container after the next daemon swept for orphans.
	return &Runc{rc: &runc.Runc{Command: "runc", Root: root, PdeathSignal: syscall.SIGKILL}, log: log, cgroupParent: cgroupParent}, nil
}

// Name is the runtime's name as users see it.
func (r *Runc) Name() string { return "runc" }

// Start writes spec into bundle and runs the container detached, in one runc
// call. Init's stdout and stderr go to logPath; extra files become its file
// descriptors 3, 4, ...
func (r *Runc) Start(ctx context.Context, id, bundle string, spec *specs.Spec, logPath string, extra ...*os.File) error {
	return r.make(ctx, "run", id, bundle, spec, logPath, extra)
}

// Create is Start without the start: the container is left in the created
// state, its namespaces, mounts and cgroups made and runc's init waiting,
// holding the extra files, until StartCreated runs the process in spec.
func (r *Runc) Create(ctx context.Context, id, bundle string, spec *specs.Spec, logPath string, extra ...*os.File) error {
	return r.make(ctx, "create", id, bundle, spec, logPath, extra)
}

// StartCreated runs the process of a container Create made.
func (r *Runc) StartCreated(ctx context.Context, id string) error {
	if err := r.rc.Start(ctx, id); err != nil {
		return fmt.Errorf("runc start %s: %w: %w", id, err, errdefs.ErrInternal)
	}
	return nil
}

// make runs `runc run -d` or `runc create` on spec written into bundle.
func (r *Runc) make(ctx context.Context, verb, id, bundle string, spec *specs.Spec, logPath string, extra []*os.File) error {
	if spec.Linux != nil && spec.Linux.CgroupsPath == "" && r.cgroupParent != "" {
		spec.Linux.CgroupsPath = r.cgroup(id)
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
		return err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	off, _ := logf.Seek(0, 2)
	opts := &runc.CreateOpts{IO: fileIO{logf}, Detach: verb == "run"} // create always detaches
	if len(extra) > 0 {
		opts.ExtraFiles = extra
	}
	if verb == "run" {
		_, err = r.rc.Run(ctx, id, bundle, opts)
	} else {
		err = r.rc.Create(ctx, id, bundle, opts)
	}
	if err != nil {
		_ = r.Delete(context.WithoutCancel(ctx), id)
		return fmt.Errorf("runc %s %s: %w: %s: %w", verb, id, err, tail(logPath, off), errdefs.ErrInternal)
	}
	return nil
}

// State reports the container's status and init pid.
func (r *Runc) State(ctx context.Context, id string) (Status, int, error) {
	c, err := r.rc.State(ctx, id)
	if err != nil {
		// go-runc hands back runc's stderr as text only: the words are all
		// there is to tell a missing container from a failing runc.
		if strings.Contains(err.Error(), "does not exist") || strings.Contains(err.Error(), "not exist") {
			return StatusMissing, 0, nil
		}
		if _, statErr := os.Stat(filepath.Join(r.rc.Root, id)); errors.Is(statErr, os.ErrNotExist) {
			return StatusMissing, 0, nil
		}
		return "", 0, fmt.Errorf("runc state %s: %w", id, err)
	}
	return Status(c.Status), c.Pid, nil
}

// Delete kills the container's processes and removes it and its cgroups; a
// missing container is not an error.
func (r *Runc) Delete(ctx context.Context, id string) error {
	if err := r.delete(ctx, id); err != nil {
		return err
	}
	return r.removeCgroups(id)
}

func (r *Runc) delete(ctx context.Context, id string) error {
	st, pid, err := r.State(ctx, id)
	if err != nil {
		// A container caught half-made (its daemon died during runc run)
		// may have no readable state: force the delete anyway.
		if derr := r.rc.Delete(ctx, id, &runc.DeleteOpts{Force: true}); derr != nil {
			return fmt.Errorf("delete %s: %w", id, errors.Join(err, derr))
		}
		return nil
	}
	if st == StatusMissing {
		return nil
	}
	if pid > 0 {
		// Killing init ourselves and waiting on a pidfd is ~25x faster than
		// `runc delete --force`, which sleeps 100 ms before re-checking.
		if st == StatusPaused {
			_ = r.rc.Resume(ctx, id)
		}
		killAndReap(pid, 5*time.Second)
	}
	if err := r.rc.Delete(ctx, id, &runc.DeleteOpts{Force: true}); err != nil {
		if st2, _, _ := r.State(ctx, id); st2 == StatusMissing {
			return nil
		}
		return fmt.Errorf("runc delete %s: %w", id, err)
	}
	return nil
}

// killAndReap kills a container's init, waits for it to exit and, when it
// is our child (the daemon is a child subreaper), reaps it so no zombie is
// left holding the sandbox's pid.
func killAndReap(pid int, timeout time.Duration) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		return
	}
	defer unix.Close(fd)
	_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		n, err := unix.Poll(fds, int(time.Until(deadline).Milliseconds())+1)
		if err == unix.EINTR {
			continue
		}
		if n > 0 || err != nil {
			break
		}
	}
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PIDFD, fd, &info, unix.WEXITED|unix.WNOHANG, nil); err != unix.ECHILD {
		return
	}
	// Not our child (adopted after a daemon restart): the host's init reaps
	// it, and until then it holds its cgroups. Wait for that, so the delete
	// can remove them.
	for time.Now().Before(deadline) {
		if err := unix.PidfdSendSignal(fd, 0, nil, 0); err == unix.ESRCH {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// tail returns the last line written to path after offset, for errors.
func tail(path string, off int64) string {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) <= off {
		return "no output"
	}
	s := strings.TrimSpace(string(b[off:]))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 500 {
		s = s[len(s)-500:]
	}
	return s
}

// fileIO gives runc's init a file for stdout and stderr: with a pipe the
// container would inherit it and Wait would never return.
type fileIO struct{ f *os.File }

func (fileIO) Close() error          { return nil }
func (fileIO) Stdin() io.WriteCloser { return nil }
func (fileIO) Stdout() io.ReadCloser { return nil }
func (fileIO) Stderr() io.ReadCloser { return nil }
func (i fileIO) Set(cmd *exec.Cmd)   { cmd.Stdout = i.f; cmd.Stderr = i.f }

// SetHostname sets the hostname inside the UTS namespace of the process
// that pidfd refers to (a container's init), from the host: the sandbox
// itself lacks the privilege. A pidfd, unlike a pid, cannot come to mean
// another process: if init died, this fails instead of renaming a stranger
// (or the host).
func (r *Runc) SetHostname(pidfd int, name string) error {
	errc := make(chan error, 1)
	go func() {
		// This thread joins the sandbox's UTS namespace and never leaves it:
		// it stays locked, so it exits with the goroutine instead of going
		// back to the scheduler.
		goruntime.LockOSThread()
		if err := unix.Setns(pidfd, unix.CLONE_NEWUTS); err != nil {
			errc <- fmt.Errorf("set hostname: setns: %w", err)
			return
		}
		errc <- unix.Sethostname([]byte(name))
	}()
	return <-errc
}
