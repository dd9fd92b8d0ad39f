package pty

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/hutch-sh/hutch/internal/agent/ring"

	"golang.org/x/sys/unix"

	"github.com/hutch-sh/hutch/internal/agent/spawn"
	"github.com/hutch-sh/hutch/internal/agentapi/termwire"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// termInputTimeout bounds a write to a shell that does not read its input.
const termInputTimeout = 10 * time.Second

// terminal is one shell on a PTY, the output it keeps and its clients.
// Output goes into a ring; each client reads the ring at its own offset, so
// a slow client never blocks the others, and holds the shell back for at
// most the Service's stall time before it is left to skip ahead.
type terminal struct {
	id      string
	pid     int
	argv    []string
	cwd     string
	created time.Time
	ptmx    *os.File
	svc     *Service
	exited  chan struct{} // closed when the shell's wait status is known
	done    chan struct{} // closed when output is read to the end and the status set

	wmu sync.Mutex // one input write at a time

	mu       sync.Mutex
	ring     *ring.Ring
	changed  chan struct{} // closed and replaced on new output or the end
	advanced chan struct{} // closed and replaced when a client reads, while the pump waits for one
	clients  map[*termClient]struct{}
	cols     int
	rows     int
	ended    bool
	code     int
	expiry   *time.Timer // forgets an ended terminal without clients
}

// termClient is one attached client's place in the output.
type termClient struct {
	off  int64 // next output offset to send
	slow bool  // fell behind: no longer holds the shell back
}

func newTerminal(id string, pid int, argv []string, cwd string, ptmx *os.File, cols, rows int, svc *Service) *terminal {
	return &terminal{
		id: id, pid: pid, argv: argv, cwd: cwd, created: time.Now(), ptmx: ptmx, svc: svc,
		exited: make(chan struct{}), done: make(chan struct{}),
		ring: ring.New(svc.limits.ringSize), changed: make(chan struct{}),
		clients: make(map[*termClient]struct{}), cols: cols, rows: rows,
	}
}

// wake tells clients that output or state changed; t.mu must be held.
func (t *terminal) wake() {
	close(t.changed)
	t.changed = make(chan struct{})
}

// pump reads the PTY into the ring until the shell has exited and its
// output is read, then records the exit code.
func (t *terminal) pump(status <-chan syscall.WaitStatus) {
	defer close(t.done)
	read := make(chan struct{})
	go func() {
		defer close(read)
		buf := make([]byte, termReadChunk)
		for {
			n, err := spawn.ReadAvailable(t.ptmx, buf)
			if n > 0 {
				t.append(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	ws := <-status
	close(t.exited)
	// What the shell wrote last is still in the PTY; a background job may
	// hold it open: read for a moment, then hang up on it.
	select {
	case <-read:
	case <-time.After(spawn.DrainGrace):
	}
	_ = t.ptmx.Close()
	<-read
	t.mu.Lock()
	t.ended, t.code = true, spawn.ExitCode(ws)
	t.wake()
	t.mu.Unlock()
	t.expireIfIdle()
}

// append adds output to the ring. When that would overwrite bytes a client
// has not sent yet, it waits for the client, up to the stall time; clients
// still behind then are left behind.
func (t *terminal) append(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var timer *time.Timer
	for t.holdsBack(len(p)) {
		if timer == nil {
			timer = time.NewTimer(t.svc.limits.stall)
			defer timer.Stop()
		}
		t.advanced = make(chan struct{})
		adv := t.advanced
		t.mu.Unlock()
		select {
		case <-adv:
			t.mu.Lock()
			continue
		case <-timer.C:
		}
		t.mu.Lock()
		t.advanced = nil
		for c := range t.clients {
			if c.off < t.ring.End()+int64(len(p))-int64(t.ring.Size()) {
				c.slow = true
			}
		}
		break
	}
	t.advanced = nil
	t.ring.Write(p)
	t.wake()
}

// holdsBack reports whether writing n bytes would drop output a client
// still has to send; t.mu must be held.
func (t *terminal) holdsBack(n int) bool {
	keep := t.ring.End() + int64(n) - int64(t.ring.Size())
	for c := range t.clients {
		if !c.slow && c.off < keep {
			return true
		}
	}
	return false
}

// attach adds a client that first gets all the output kept.
func (t *terminal) attach() *termClient {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := &termClient{off: t.ring.Start()}
	t.clients[c] = struct{}{}
	if t.expiry != nil {
		t.expiry.Stop()
		t.expiry = nil
	}
	return c
}

func (t *terminal) detach(c *termClient) {
	t.mu.Lock()
	delete(t.clients, c)
	if t.advanced != nil {
		close(t.advanced)
		t.advanced = nil
	}
	t.mu.Unlock()
	t.expireIfIdle()
}

// expireIfIdle forgets an ended terminal once it has had no client for the
// grace period.
func (t *terminal) expireIfIdle() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.ended || len(t.clients) > 0 || t.expiry != nil {
		return
	}
	t.expiry = time.AfterFunc(t.svc.limits.grace, func() {
		t.mu.Lock()
		idle := len(t.clients) == 0
		t.mu.Unlock()
		if idle {
			t.svc.terms.Remove(t.id, t)
		}
	})
}

// next waits for output c has not sent yet and returns it, or the exit code
// once everything is sent and the shell has exited.
func (t *terminal) next(ctx context.Context, c *termClient) (data []byte, exit *int, err error) {
	t.mu.Lock()
	for {
		data, at, _ := t.ring.Read(c.off, termReadChunk)
		c.off = at + int64(len(data))
		if c.off == t.ring.End() {
			c.slow = false
		}
		if len(data) > 0 {
			if t.advanced != nil {
				close(t.advanced)
				t.advanced = nil
			}
			t.mu.Unlock()
			return data, nil, nil
		}
		if t.ended {
			code := t.code
			t.mu.Unlock()
			return nil, &code, nil
		}
		changed := t.changed
		t.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		t.mu.Lock()
	}
}

// input writes keystrokes (or a paste) to the shell.
func (t *terminal) input(p []byte) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	_ = t.ptmx.SetWriteDeadline(time.Now().Add(termInputTimeout))
	if _, err := t.ptmx.Write(p); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("terminal %q is not reading its input; some was dropped: %w", t.id, errdefs.ErrDeadlineExceeded)
		}
		return fmt.Errorf("terminal %q: the shell has exited: %w", t.id, errdefs.ErrFailedPrecondition)
	}
	return nil
}

// resize sets the PTY's size, clamped to sane bounds; the kernel sends
// SIGWINCH to the foreground process group.
func (t *terminal) resize(cols, rows int) error {
	cols, rows = termwire.Clamp(cols, rows)
	rc, err := t.ptmx.SyscallConn()
	if err != nil {
		return fmt.Errorf("terminal %q: the shell has exited: %w", t.id, errdefs.ErrFailedPrecondition)
	}
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Col: uint16(cols), Row: uint16(rows)})
	}); err != nil {
		return fmt.Errorf("terminal %q: the shell has exited: %w", t.id, errdefs.ErrFailedPrecondition)
	}
	if ierr != nil {
		return fmt.Errorf("terminal %q: resize: %w: %w", t.id, ierr, errdefs.ErrInternal)
	}
	t.mu.Lock()
	t.cols, t.rows = cols, rows
	t.mu.Unlock()
	return nil
}

// stop kills the shell and everything it started, and waits (bounded) until
// its output is read.
func (t *terminal) stop() {
	if !spawn.Closed(t.exited) {
		spawn.KillTree(t.pid)
	}
	timer := time.NewTimer(spawn.StopWait)
	defer timer.Stop()
	select {
	case <-t.done:
	case <-timer.C:
		_ = t.ptmx.Close()
	}
}
