// Package exec runs one command at a time for a caller and streams its
// output until it exits: stdin, signals, timeouts and whole-tree kills,
// over Connect or the daemon's raw envelopes. Session commands run through
// the same pump and Table.
package exec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/agent/spawn"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// Sessions runs an exec that names a session (package session).
type Sessions interface {
	Run(ctx context.Context, r *hutchv1.ExecRequest, stream Sink) error
}

// Service implements Exec, WriteStdin and Signal of the ProcessService.
type Service struct {
	log      *slog.Logger
	spawner  *spawn.Spawner
	table    *Table
	sessions Sessions
}

// New returns a Service that starts commands with sp, keeps them findable
// in table and hands execs in a session to sessions.
func New(log *slog.Logger, sp *spawn.Spawner, table *Table, sessions Sessions) *Service {
	return &Service{log: log, spawner: sp, table: table, sessions: sessions}
}

// Exec runs one command and streams its output until it exits.
func (s *Service) Exec(ctx context.Context, req *connect.Request[hutchv1.ExecRequest], stream *connect.ServerStream[hutchv1.ExecEvent]) error {
	err := s.Run(ctx, req.Msg, connectSink{stream})
	return errdefs.ToConnect(err)
}

// Run runs one command, in a session if it names one, and sends its events
// to stream until it exits.
func (s *Service) Run(ctx context.Context, r *hutchv1.ExecRequest, stream Sink) error {
	if r.Session != "" {
		return s.sessions.Run(ctx, r, stream)
	}
	if r.TimeoutMs < 0 {
		return fmt.Errorf("exec: negative timeout: %w", errdefs.ErrInvalidArgument)
	}
	cmd, err := s.spawner.Prepare(r.Argv, r.Shell, r.Cwd, r.Env)
	if err != nil {
		return err
	}
	p, err := s.table.Start(s.spawner, cmd, r.Stdin)
	if err != nil {
		return err
	}
	id, done := s.table.Register(p)
	defer func() {
		done()
		p.exec.closeStdin()
	}()
	s.log.Debug("exec", "op", "exec", "id", id, "pid", p.exec.pid, "argv", cmd.Argv)

	if err := stream.Send(&hutchv1.ExecEvent{Event: &hutchv1.ExecEvent_Started{Started: &hutchv1.ExecStarted{Id: id, Pid: int32(p.exec.pid)}}}); err != nil {
		spawn.KillTree(p.exec.pid)
		<-p.status
		return err
	}
	return p.Pump(ctx, r.TimeoutMs, stream)
}

// stdinWriteTimeout bounds a write to a command that does not read its stdin.
const stdinWriteTimeout = 30 * time.Second

// WriteStdin writes to the stdin of a running exec.
func (s *Service) WriteStdin(ctx context.Context, req *connect.Request[hutchv1.WriteStdinRequest]) (*connect.Response[hutchv1.WriteStdinResponse], error) {
	e, err := s.table.runs.Get(req.Msg.Id)
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stdin == nil {
		if len(req.Msg.Data) == 0 && req.Msg.Eof {
			return connect.NewResponse(&hutchv1.WriteStdinResponse{}), nil
		}
		return nil, errdefs.ToConnect(fmt.Errorf("exec %q: stdin is closed or was not requested: %w", req.Msg.Id, errdefs.ErrFailedPrecondition))
	}
	if len(req.Msg.Data) > 0 {
		deadline := time.Now().Add(stdinWriteTimeout)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		_ = e.stdin.SetWriteDeadline(deadline)
		if _, err := e.stdin.Write(req.Msg.Data); err != nil {
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				err = fmt.Errorf("exec %q: command is not reading its stdin: %w", req.Msg.Id, errdefs.ErrDeadlineExceeded)
			case errors.Is(err, syscall.EPIPE):
				err = fmt.Errorf("exec %q: command closed its stdin: %w", req.Msg.Id, errdefs.ErrFailedPrecondition)
			}
			return nil, errdefs.ToConnect(err)
		}
	}
	if req.Msg.Eof {
		_ = e.stdin.Close()
		e.stdin = nil
	}
	return connect.NewResponse(&hutchv1.WriteStdinResponse{}), nil
}

// Signal signals the process group of a running exec; SIGKILL kills the tree.
func (s *Service) Signal(_ context.Context, req *connect.Request[hutchv1.SignalRequest]) (*connect.Response[hutchv1.SignalResponse], error) {
	sig, err := spawn.ParseSignal(req.Msg.Signal)
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	e, err := s.table.runs.Get(req.Msg.Id)
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	if e.signal != nil {
		e.signal(sig)
	} else if sig == syscall.SIGKILL {
		spawn.KillTree(e.pid)
	} else if err := syscall.Kill(-e.pid, sig); err != nil && err != syscall.ESRCH {
		return nil, errdefs.ToConnect(fmt.Errorf("signal exec %q: %w: %w", req.Msg.Id, err, errdefs.ErrInternal))
	}
	return connect.NewResponse(&hutchv1.SignalResponse{}), nil
}
