package apiserver

import (
	"context"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/agentconn"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

type processes struct{ s *Server }

var _ hutchv1connect.ProcessServiceHandler = (*processes)(nil)

// Exec creates the sandbox on demand and relays the agent's event stream.
// Clients using the binary codec take the zero-copy path (see execRelay).
func (h *processes) Exec(ctx context.Context, req *connect.Request[hutchv1.ExecRequest], out *connect.ServerStream[hutchv1.ExecEvent]) error {
	return agentconn.Stream(ctx, h.s.gw, req.Msg.Sandbox, sandbox.Adding, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.ExecRequest]) (*connect.ServerStreamForClient[hutchv1.ExecEvent], error) {
		return c.Process.Exec
	}, out.Send, func(ev *hutchv1.ExecEvent) bool {
		_, ok := ev.Event.(*hutchv1.ExecEvent_Exit)
		return ok
	}, "without an exit status")
}

func (h *processes) WriteStdin(ctx context.Context, req *connect.Request[hutchv1.WriteStdinRequest]) (*connect.Response[hutchv1.WriteStdinResponse], error) {
	return agentconn.Unary(ctx, h.s.gw, req.Msg.Sandbox, sandbox.Existing, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.WriteStdinRequest]) (*connect.Response[hutchv1.WriteStdinResponse], error) {
		return c.Process.WriteStdin
	})
}

func (h *processes) Signal(ctx context.Context, req *connect.Request[hutchv1.SignalRequest]) (*connect.Response[hutchv1.SignalResponse], error) {
	return agentconn.Unary(ctx, h.s.gw, req.Msg.Sandbox, sandbox.Existing, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.SignalRequest]) (*connect.Response[hutchv1.SignalResponse], error) {
		return c.Process.Signal
	})
}
