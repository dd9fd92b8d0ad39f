package apiserver

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/agentconn"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

type processes struct{ s *Server }

var _ hutchv1connect.ProcessServiceHandler = (*processes)(nil)

// Exec creates the sandbox on demand and relays the agent's event stream.
func (h *processes) Exec(ctx context.Context, req *connect.Request[hutchv1.ExecRequest], out *connect.ServerStream[hutchv1.ExecEvent]) error {
	name := req.Msg.Sandbox
	_, conn, _, err := h.s.sb.Ensure(ctx, name, sandbox.CreateOptions{})
	if err != nil {
		return errdefs.ToConnect(err)
	}
	in, err := conn.Process.Exec(ctx, connect.NewRequest(req.Msg))
	if err != nil {
		return h.s.agentError(name, err)
	}
	return relayStream(h.s, name, in, out.Send, func(ev *hutchv1.ExecEvent) bool {
		_, ok := ev.Event.(*hutchv1.ExecEvent_Exit)
		return ok
	}, "without an exit status")
}

func (h *processes) WriteStdin(ctx context.Context, req *connect.Request[hutchv1.WriteStdinRequest]) (*connect.Response[hutchv1.WriteStdinResponse], error) {
	conn, err := h.s.sb.Conn(ctx, req.Msg.Sandbox)
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	resp, err := conn.Process.WriteStdin(ctx, req)
	if err != nil {
		return nil, h.s.agentError(req.Msg.Sandbox, err)
	}
	return resp, nil
}

func (h *processes) Signal(ctx context.Context, req *connect.Request[hutchv1.SignalRequest]) (*connect.Response[hutchv1.SignalResponse], error) {
	conn, err := h.s.sb.Conn(ctx, req.Msg.Sandbox)
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	resp, err := conn.Process.Signal(ctx, req)
	if err != nil {
		return nil, h.s.agentError(req.Msg.Sandbox, err)
	}
	return resp, nil
}

// agentError passes the agent's own errors through and turns an unreachable
// agent into unavailable, marking the sandbox for recovery on its next use.
func (s *Server) agentError(name string, err error) error {
	if errors.Is(err, context.Canceled) || connect.CodeOf(err) == connect.CodeCanceled {
		return err
	}
	if agentconn.Broken(err) {
		s.sb.MarkBroken(name)
		return connect.NewError(connect.CodeUnavailable, fmt.Errorf("sandbox %q: agent unreachable; the sandbox is recovered on the next call: %v", name, errdefs.Message(err)))
	}
	return err
}
