package exec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/agent/spawn"
	"github.com/hutch-sh/hutch/internal/agentapi/envelope"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// ReadChunk is the largest output chunk sent in one event: the size the
// pipes are grown to, so a fast producer fills one event per read.
const ReadChunk = 1 << 20

// Running is a started command whose output is being pumped.
type Running struct {
	exec   *Execution
	status <-chan syscall.WaitStatus
	out    chan output // stdout and stderr chunks; closed when both reach EOF
	bufs   *sync.Pool
	start  time.Time
	stdout *os.File
	stderr *os.File
	kill   func() // kills what runs for this command; nil: its whole tree
}

// KillAll kills the command and everything it started.
func (r *Running) KillAll() {
	if r.kill != nil {
		r.kill()
		return
	}
	spawn.KillTree(r.exec.pid)
}

// readOutput reads stdout and stderr into r.out until both reach EOF.
func (r *Running) readOutput() {
	done := make(chan struct{}, 2)
	go r.read(r.stdout, true, done)
	go r.read(r.stderr, false, done)
	go func() {
		<-done
		<-done
		close(r.out)
	}()
}

// Start starts cmd in its own process group with output pipes (and a
// stdin pipe if wantStdin) and starts reading its output.
func (t *Table) Start(sp *spawn.Spawner, cmd spawn.Command, wantStdin bool) (*Running, error) {
	argv := cmd.Argv
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("exec: pipe: %w: %w", err, errdefs.ErrResourceExhausted)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("exec: pipe: %w: %w", err, errdefs.ErrResourceExhausted)
	}
	var inR, inW *os.File
	if wantStdin {
		inR, inW, err = os.Pipe()
	} else {
		inR, err = os.Open(os.DevNull)
	}
	if err != nil {
		outR.Close()
		outW.Close()
		errR.Close()
		errW.Close()
		return nil, fmt.Errorf("exec: stdin: %w: %w", err, errdefs.ErrResourceExhausted)
	}
	// Larger pipes mean fewer, bigger chunks for fast producers.
	_, _ = unix.FcntlInt(outW.Fd(), unix.F_SETPIPE_SZ, ReadChunk)
	_, _ = unix.FcntlInt(errW.Fd(), unix.F_SETPIPE_SZ, ReadChunk)

	attr := &syscall.ProcAttr{
		Dir:   cmd.Cwd,
		Env:   cmd.Env,
		Files: []uintptr{inR.Fd(), outW.Fd(), errW.Fd()},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	}
	pid, status, err := sp.Fork(func() (int, error) { return syscall.ForkExec(cmd.Path, argv, attr) })
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		if inW != nil {
			inW.Close()
		}
		if errors.Is(err, syscall.ENOEXEC) || errors.Is(err, syscall.EACCES) {
			return nil, fmt.Errorf("exec %q: not an executable file (%v): %w", argv[0], err, errdefs.ErrPermissionDenied)
		}
		return nil, fmt.Errorf("exec %q: %w: %w", argv[0], err, errdefs.ErrFailedPrecondition)
	}
	return t.running(&Execution{pid: pid, stdin: inW}, outR, errR, status, nil), nil
}

// output is one chunk read from the command: n bytes in *buf after
// envelope.OutputHeadroom bytes of room for framing. buf goes back to the
// pool once the chunk is sent, so steady streaming allocates nothing.
type output struct {
	buf    *[]byte
	n      int
	stdout bool
}

func (r *Running) read(f *os.File, stdout bool, done chan<- struct{}) {
	defer func() { done <- struct{}{} }()
	for {
		bp := r.bufs.Get().(*[]byte)
		n, err := spawn.ReadAvailable(f, (*bp)[envelope.OutputHeadroom:])
		if n > 0 {
			r.out <- output{buf: bp, n: n, stdout: stdout}
		} else {
			r.bufs.Put(bp)
		}
		if err != nil {
			return
		}
	}
}

// Pump forwards output until the command exits and its output is drained,
// enforcing the timeout and killing the tree if the caller goes away.
func (r *Running) Pump(ctx context.Context, timeoutMs int64, stream Sink) error {
	defer r.stdout.Close()
	defer r.stderr.Close()
	var timeout <-chan time.Time
	if timeoutMs > 0 {
		t := time.NewTimer(time.Duration(timeoutMs) * time.Millisecond)
		defer t.Stop()
		timeout = t.C
	}
	keepalive := time.NewTicker(spawn.KeepAliveInterval)
	defer keepalive.Stop()

	var (
		ws       syscall.WaitStatus
		exited   bool
		timedOut bool
		drain    <-chan time.Time
		out      = r.out
		sendErr  error
	)
	for out != nil || !exited {
		select {
		case o, ok := <-out:
			if !ok {
				out = nil
				continue
			}
			if sendErr == nil {
				sendErr = stream.SendOutput(*o.buf, o.n, o.stdout)
				r.bufs.Put(o.buf)
				if sendErr != nil {
					// The caller is gone: nobody will see the rest.
					r.KillAll()
				}
			}
		case ws = <-r.status:
			exited = true
			r.status = nil
			t := time.NewTimer(spawn.DrainGrace)
			defer t.Stop()
			drain = t.C
		case <-drain:
			// A background child still holds the pipes: stop reading.
			r.stdout.Close()
			r.stderr.Close()
			for range out {
			}
			out = nil
		case <-timeout:
			timedOut = true
			timeout = nil
			r.KillAll()
		case <-ctx.Done():
			r.KillAll()
			if !exited {
				<-r.status
			}
			if out != nil {
				go func() {
					for range out {
					}
				}()
			}
			return ctx.Err()
		case <-keepalive.C:
			if sendErr == nil {
				sendErr = stream.Send(&hutchv1.ExecEvent{Event: &hutchv1.ExecEvent_Keepalive{Keepalive: &hutchv1.KeepAlive{}}})
			}
		}
	}
	if timedOut {
		return fmt.Errorf("command timed out after %v; its process tree was killed: %w", time.Duration(timeoutMs)*time.Millisecond, errdefs.ErrDeadlineExceeded)
	}
	if sendErr != nil {
		return sendErr
	}
	return stream.Send(&hutchv1.ExecEvent{Event: &hutchv1.ExecEvent_Exit{Exit: exitOf(ws, time.Since(r.start))}})
}

func exitOf(ws syscall.WaitStatus, d time.Duration) *hutchv1.ExecExit {
	e := &hutchv1.ExecExit{DurationMs: d.Milliseconds()}
	switch {
	case ws.Signaled():
		e.Code = 128 + int32(ws.Signal())
		e.Signal = unix.SignalName(ws.Signal())
	default:
		e.Code = int32(ws.ExitStatus())
	}
	return e
}

// Attach makes a Running of a command someone else started (a session's
// shell runs it): its pid as callers see it, its output pipes, its status,
// and how to kill and signal it.
func (t *Table) Attach(pid int, stdout, stderr *os.File, status <-chan syscall.WaitStatus, kill func(), signal func(syscall.Signal)) *Running {
	return t.running(&Execution{pid: pid, signal: signal}, stdout, stderr, status, kill)
}

// running starts reading a command's output.
func (t *Table) running(e *Execution, stdout, stderr *os.File, status <-chan syscall.WaitStatus, kill func()) *Running {
	r := &Running{
		exec:   e,
		status: status,
		out:    make(chan output, 4),
		bufs:   t.bufs,
		start:  time.Now(),
		stdout: stdout,
		stderr: stderr,
		kill:   kill,
	}
	r.readOutput()
	return r
}

// Pid is the command's pid (its shell's for a session command).
func (r *Running) Pid() int { return r.exec.pid }

// Started is when the command started.
func (r *Running) Started() time.Time { return r.start }

// Abandon kills the command after the caller went away before it started
// streaming, and waits until it is gone.
func (r *Running) Abandon() {
	r.KillAll()
	<-r.status
	r.stdout.Close()
	r.stderr.Close()
	go func() {
		for o := range r.out {
			r.bufs.Put(o.buf)
		}
	}()
}

// Copy hands output to write until the command has exited and its output is
// read to the end, telling exited the status as soon as it is known. A
// background child holding the pipes open is cut off DrainGrace after the
// exit, as for Pump.
func (r *Running) Copy(write func(data []byte, stdout bool), exited func(syscall.WaitStatus)) {
	defer r.stdout.Close()
	defer r.stderr.Close()
	var drain <-chan time.Time
	out, status := r.out, r.status
	for out != nil || status != nil {
		select {
		case o, ok := <-out:
			if !ok {
				out = nil
				continue
			}
			write((*o.buf)[envelope.OutputHeadroom:envelope.OutputHeadroom+o.n], o.stdout)
			r.bufs.Put(o.buf)
		case ws := <-status:
			status = nil
			exited(ws)
			t := time.NewTimer(spawn.DrainGrace)
			defer t.Stop()
			drain = t.C
		case <-drain:
			drain = nil
			r.stdout.Close()
			r.stderr.Close()
		}
	}
}
