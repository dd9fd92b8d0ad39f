// Package pty runs terminals for the agent: shells on pseudo-terminals
// whose output is kept in a ring, attached to by any number of WebSocket
// clients (the wire protocol is package termwire), resized, replayed.
package pty

import (
	"context"
	"fmt"
	"log/slog"
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
	"github.com/hutch-sh/hutch/internal/agent/registry"
	"github.com/hutch-sh/hutch/internal/agent/spawn"
	"github.com/hutch-sh/hutch/internal/agentapi/termwire"
	"github.com/hutch-sh/hutch/internal/errdefs"
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

// limits are the Service's tunables (tests shrink them).
type limits struct {
	ringSize int
	grace    time.Duration
	stall    time.Duration
}

// Service implements the TerminalService and serves terminal WebSockets.
type Service struct {
	log     *slog.Logger
	spawner *spawn.Spawner
	limits  limits
	terms   *registry.Registry[*terminal]

	wg sync.WaitGroup // one output pump per terminal
}

var _ hutchv1connect.TerminalServiceHandler = (*Service)(nil)

// New returns a Service whose shells start with sp.
func New(log *slog.Logger, sp *spawn.Spawner) *Service {
	return &Service{
		log: log, spawner: sp,
		limits: limits{ringSize: termRingSize, grace: termGrace, stall: termStall},
		terms:  registry.New("terminal", registry.Options[*terminal]{}),
	}
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
	if r.Id != "" {
		if err := registry.CheckID("terminal", r.Id); err != nil {
			return nil, err
		}
	}
	argv := r.Argv
	if len(argv) == 0 {
		argv = []string{"bash", "-l"}
		if _, err := spawn.LookPath("bash", s.spawner.Env(), "/"); err != nil {
			argv = []string{"sh", "-l"}
		}
	}
	env := map[string]string{"TERM": "xterm-256color"}
	for k, v := range r.Env {
		env[k] = v
	}
	cmd, err := s.spawner.Prepare(argv, "", r.Cwd, env)
	if err != nil {
		return nil, err
	}
	cols, rows := termwire.DefaultCols, termwire.DefaultRows
	if r.Cols != 0 || r.Rows != 0 {
		cols, rows = termwire.Clamp(int(r.Cols), int(r.Rows))
	}
	return s.terms.Add(r.Id, func(id string) (*terminal, error) {
		ptmx, pid, status, err := s.spawnPTY(cmd, cols, rows)
		if err != nil {
			return nil, err
		}
		t := newTerminal(id, pid, cmd.Argv, cmd.Cwd, ptmx, cols, rows, s)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			t.pump(status)
		}()
		s.log.Debug("create terminal", "op", "terminal", "id", id, "pid", pid, "argv", cmd.Argv)
		return t, nil
	})
}

// spawnPTY starts argv as a session leader whose controlling terminal is a
// new PTY of cols×rows, and returns the PTY's master side.
func (s *Service) spawnPTY(cmd spawn.Command, cols, rows int) (*os.File, int, <-chan syscall.WaitStatus, error) {
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
		Dir:   cmd.Cwd,
		Env:   cmd.Env,
		Files: []uintptr{fd, fd, fd},
		// Its own session with the PTY as controlling terminal: job control,
		// and ^C through the line discipline to the foreground group.
		Sys: &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0},
	}
	pid, status, err := s.spawner.Fork(func() (int, error) { return syscall.ForkExec(cmd.Path, cmd.Argv, attr) })
	if err != nil {
		ptmx.Close()
		return nil, 0, nil, fmt.Errorf("start terminal %q: %w: %w", cmd.Argv[0], err, errdefs.ErrFailedPrecondition)
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
	all := registry.Sorted(s.terms, func(t *terminal) time.Time { return t.created })
	res := &hutchv1.ListTerminalsResponse{Terminals: make([]*hutchv1.TerminalInfo, len(all))}
	for i, t := range all {
		res.Terminals[i] = t.info()
	}
	return connect.NewResponse(res), nil
}

// CloseTerminal kills a terminal's shell and everything it started, ends
// its clients' connections and forgets it.
func (s *Service) CloseTerminal(_ context.Context, req *connect.Request[hutchv1.CloseTerminalRequest]) (*connect.Response[hutchv1.CloseTerminalResponse], error) {
	t, err := s.terms.Get(req.Msg.Id)
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	s.terms.Remove(t.id, t)
	t.stop()
	s.log.Debug("close terminal", "op", "terminal", "id", t.id)
	return connect.NewResponse(&hutchv1.CloseTerminalResponse{}), nil
}

// Close kills every terminal and waits until their pumps are done; later
// CreateTerminal calls fail as unavailable.
func (s *Service) Close() {
	for _, t := range s.terms.Close() {
		t.stop()
	}
	s.wg.Wait()
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
