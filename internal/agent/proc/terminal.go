package proc

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"github.com/creack/pty"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/types/known/timestamppb"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/agentapi/termwire"
)

const (
	// termRingSize is how much recent output a terminal keeps for clients
	// that attach later or fall behind.
	termRingSize = 1 << 20
	// termGrace is how long an exited terminal stays attachable after its
	// last client left.
	termGrace = 30 * time.Second
	// termStall is how long a client that does not keep up may hold the
	// shell's output back before it is left behind (and skips ahead).
	termStall = 2 * time.Second
	// termReadChunk is the largest read from a PTY, and so the largest
	// output frame.
	termReadChunk = 64 << 10
)

var _ hutchv1connect.TerminalServiceHandler = (*Service)(nil)

// terminals holds the sandbox's terminals, running and recently exited.
type terminals struct {
	ringSize int
	grace    time.Duration
	stall    time.Duration

	wg sync.WaitGroup // one output pump per terminal

	mu     sync.Mutex
	byID   map[string]*terminal
	closed bool
}

func newTerminals() *terminals {
	return &terminals{ringSize: termRingSize, grace: termGrace, stall: termStall, byID: make(map[string]*terminal)}
}

// CreateTerminal starts a shell on a new PTY.
func (s *Service) CreateTerminal(_ context.Context, req *connect.Request[hutchv1.CreateTerminalRequest]) (*connect.Response[hutchv1.TerminalInfo], error) {
	t, err := s.createTerminal(req.Msg)
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	return connect.NewResponse(t.info()), nil
}

func (s *Service) createTerminal(r *hutchv1.CreateTerminalRequest) (*terminal, error) {
	if r.Id != "" && !validID.MatchString(r.Id) {
		return nil, fmt.Errorf("terminal id %q: want 1-64 characters of [A-Za-z0-9_.-]: %w", r.Id, errdefs.ErrInvalidArgument)
	}
	argv := r.Argv
	if len(argv) == 0 {
		argv = []string{"bash", "-l"}
		if _, err := lookPath("bash", s.env(), "/"); err != nil {
			argv = []string{"sh", "-l"}
		}
	}
	env := map[string]string{"TERM": "xterm-256color"}
	for k, v := range r.Env {
		env[k] = v
	}
	path, argv, envv, cwd, err := s.prepare(&hutchv1.ExecRequest{Argv: argv, Cwd: r.Cwd, Env: env})
	if err != nil {
		return nil, err
	}
	cols, rows := termwire.DefaultCols, termwire.DefaultRows
	if r.Cols != 0 || r.Rows != 0 {
		cols, rows = termwire.Clamp(int(r.Cols), int(r.Rows))
	}

	ts := s.terms
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.closed {
		return nil, fmt.Errorf("create terminal: the agent is shutting down: %w", errdefs.ErrUnavailable)
	}
	id, err := claimID(ts.byID, r.Id, "terminal")
	if err != nil {
		return nil, err
	}
	ptmx, pid, status, err := s.spawnPTY(path, argv, envv, cwd, cols, rows)
	if err != nil {
		return nil, err
	}
	t := newTerminal(id, pid, argv, cwd, ptmx, cols, rows, ts)
	ts.byID[id] = t
	ts.wg.Add(1)
	go func() {
		defer ts.wg.Done()
		t.pump(status)
	}()
	s.log.Debug("create terminal", "op", "terminal", "id", id, "pid", pid, "argv", argv)
	return t, nil
}

// spawnPTY starts argv as a session leader whose controlling terminal is a
// new PTY of cols×rows, and returns the PTY's master side.
func (s *Service) spawnPTY(path string, argv, env []string, cwd string, cols, rows int) (*os.File, int, <-chan syscall.WaitStatus, error) {
	master, tty, err := pty.Open()
	if err != nil {
		return nil, 0, nil, fmt.Errorf("open pty: %w: %w", err, errdefs.ErrResourceExhausted)
	}
	defer tty.Close()
	ptmx, err := pollable(master)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("open pty: %w: %w", err, errdefs.ErrResourceExhausted)
	}
	if err := pty.Setsize(tty, &pty.Winsize{Cols: uint16(cols), Rows: uint16(rows)}); err != nil {
		ptmx.Close()
		return nil, 0, nil, fmt.Errorf("pty size: %w: %w", err, errdefs.ErrInternal)
	}
	fd := tty.Fd()
	attr := &syscall.ProcAttr{
		Dir:   cwd,
		Env:   env,
		Files: []uintptr{fd, fd, fd},
		// Its own session with the PTY as controlling terminal: job control,
		// and ^C through the line discipline to the foreground group.
		Sys: &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0},
	}
	pid, status, err := s.reaper.Spawn(func() (int, error) { return syscall.ForkExec(path, argv, attr) })
	if err != nil {
		ptmx.Close()
		return nil, 0, nil, fmt.Errorf("start terminal %q: %w: %w", argv[0], err, errdefs.ErrFailedPrecondition)
	}
	return ptmx, pid, status, nil
}

// pollable returns f's descriptor as a non-blocking file in Go's poller, so
// that closing it ends a blocked Read (pty.Open leaves it blocking), and
// closes f.
func pollable(f *os.File) (*os.File, error) {
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nfd int
	var derr error
	if err := rc.Control(func(fd uintptr) { nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, derr
	}
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return nil, err
	}
	return os.NewFile(uintptr(nfd), "/dev/ptmx"), nil
}

// ListTerminals lists running and recently exited terminals, oldest first.
func (s *Service) ListTerminals(context.Context, *connect.Request[hutchv1.ListTerminalsRequest]) (*connect.Response[hutchv1.ListTerminalsResponse], error) {
	s.terms.mu.Lock()
	all := oldestFirst(s.terms.byID, func(t *terminal) time.Time { return t.created })
	s.terms.mu.Unlock()
	res := &hutchv1.ListTerminalsResponse{Terminals: make([]*hutchv1.TerminalInfo, len(all))}
	for i, t := range all {
		res.Terminals[i] = t.info()
	}
	return connect.NewResponse(res), nil
}

// CloseTerminal kills a terminal's shell and everything it started, ends
// its clients' connections and forgets it.
func (s *Service) CloseTerminal(_ context.Context, req *connect.Request[hutchv1.CloseTerminalRequest]) (*connect.Response[hutchv1.CloseTerminalResponse], error) {
	t, err := s.lookupTerminal(req.Msg.Id)
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	s.terms.remove(t)
	t.stop()
	s.log.Debug("close terminal", "op", "terminal", "id", t.id)
	return connect.NewResponse(&hutchv1.CloseTerminalResponse{}), nil
}

func (s *Service) lookupTerminal(id string) (*terminal, error) {
	s.terms.mu.Lock()
	defer s.terms.mu.Unlock()
	t, ok := s.terms.byID[id]
	if !ok {
		return nil, fmt.Errorf("terminal %q: %w", id, errdefs.ErrNotFound)
	}
	return t, nil
}

// remove forgets t if it is still the terminal under its id.
func (ts *terminals) remove(t *terminal) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.byID[t.id] == t {
		delete(ts.byID, t.id)
	}
}

// closeTerminals kills every terminal and waits until their pumps are done.
func (s *Service) closeTerminals() {
	ts := s.terms
	ts.mu.Lock()
	ts.closed = true
	all := make([]*terminal, 0, len(ts.byID))
	for _, t := range ts.byID {
		all = append(all, t)
	}
	clear(ts.byID)
	ts.mu.Unlock()
	for _, t := range all {
		t.stop()
	}
	ts.wg.Wait()
}

func (t *terminal) info() *hutchv1.TerminalInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	return &hutchv1.TerminalInfo{
		Id:        t.id,
		Pid:       int32(t.pid),
		Argv:      slices.Clone(t.argv),
		Cwd:       t.cwd,
		Cols:      uint32(t.cols),
		Rows:      uint32(t.rows),
		CreatedAt: timestamppb.New(t.created),
		Clients:   int32(len(t.clients)),
		Exited:    t.ended,
		ExitCode:  int32(t.code),
	}
}
