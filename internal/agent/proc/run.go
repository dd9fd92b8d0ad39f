package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/agentapi/envelope"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// readChunk is the largest output chunk sent in one event: the size the
// pipes are grown to, so a fast producer fills one event per read.
const readChunk = 1 << 20

// running is a started command whose output is being pumped.
type running struct {
	exec   *execution
	status <-chan syscall.WaitStatus
	out    chan output // stdout and stderr chunks; closed when both reach EOF
	bufs   *sync.Pool
	start  time.Time
	stdout *os.File
	stderr *os.File
	kill   func() // kills what runs for this command; nil: its whole tree
}

// killAll kills the command and everything it started.
func (r *running) killAll() {
	if r.kill != nil {
		r.kill()
		return
	}
	killTree(r.exec.pid)
}

// readOutput reads stdout and stderr into r.out until both reach EOF.
func (r *running) readOutput() {
	done := make(chan struct{}, 2)
	go r.read(r.stdout, true, done)
	go r.read(r.stderr, false, done)
	go func() {
		<-done
		<-done
		close(r.out)
	}()
}

func (s *Service) start(path string, argv, env []string, cwd string, wantStdin bool) (*running, error) {
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
	_, _ = unix.FcntlInt(outW.Fd(), unix.F_SETPIPE_SZ, readChunk)
	_, _ = unix.FcntlInt(errW.Fd(), unix.F_SETPIPE_SZ, readChunk)

	attr := &syscall.ProcAttr{
		Dir:   cwd,
		Env:   env,
		Files: []uintptr{inR.Fd(), outW.Fd(), errW.Fd()},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	}
	pid, status, err := s.reaper.Spawn(func() (int, error) { return syscall.ForkExec(path, argv, attr) })
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
	r := &running{
		exec:   &execution{pid: pid, stdin: inW},
		status: status,
		out:    make(chan output, 4),
		bufs:   s.bufs,
		start:  time.Now(),
		stdout: outR,
		stderr: errR,
	}
	r.readOutput()
	return r, nil
}

// output is one chunk read from the command: n bytes in *buf after
// envelope.OutputHeadroom bytes of room for framing. buf goes back to the
// pool once the chunk is sent, so steady streaming allocates nothing.
type output struct {
	buf    *[]byte
	n      int
	stdout bool
}

func (r *running) read(f *os.File, stdout bool, done chan<- struct{}) {
	defer func() { done <- struct{}{} }()
	for {
		bp := r.bufs.Get().(*[]byte)
		n, err := readAvailable(f, (*bp)[envelope.OutputHeadroom:])
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

// readAvailable waits until f has data, then reads all it holds without
// waiting again, up to len(buf): a fast producer's small writes travel as
// one large event, and a slow one's output is sent the moment it appears.
func readAvailable(f *os.File, buf []byte) (int, error) {
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

// pump forwards output until the command exits and its output is drained,
// enforcing the timeout and killing the tree if the caller goes away.
func (r *running) pump(ctx context.Context, timeoutMs int64, stream sink) error {
	defer r.stdout.Close()
	defer r.stderr.Close()
	var timeout <-chan time.Time
	if timeoutMs > 0 {
		t := time.NewTimer(time.Duration(timeoutMs) * time.Millisecond)
		defer t.Stop()
		timeout = t.C
	}
	keepalive := time.NewTicker(KeepAliveInterval)
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
				sendErr = stream.sendOutput(*o.buf, o.n, o.stdout)
				r.bufs.Put(o.buf)
				if sendErr != nil {
					// The caller is gone: nobody will see the rest.
					r.killAll()
				}
			}
		case ws = <-r.status:
			exited = true
			r.status = nil
			t := time.NewTimer(drainGrace)
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
			r.killAll()
		case <-ctx.Done():
			r.killAll()
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
				sendErr = stream.send(&hutchv1.ExecEvent{Event: &hutchv1.ExecEvent_Keepalive{Keepalive: &hutchv1.KeepAlive{}}})
			}
		}
	}
	if timedOut {
		return fmt.Errorf("command timed out after %v; its process tree was killed: %w", time.Duration(timeoutMs)*time.Millisecond, errdefs.ErrDeadlineExceeded)
	}
	if sendErr != nil {
		return sendErr
	}
	return stream.send(&hutchv1.ExecEvent{Event: &hutchv1.ExecEvent_Exit{Exit: exitOf(ws, time.Since(r.start))}})
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
