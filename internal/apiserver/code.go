package apiserver

import (
	"context"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/agentconn"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

// Code contexts live in the agent; the daemon forwards. Creating a context
// and running code create the sandbox on demand.
type codeService struct{ s *Server }

var _ hutchv1connect.CodeServiceHandler = (*codeService)(nil)

func (h *codeService) CreateCodeContext(ctx context.Context, req *connect.Request[hutchv1.CreateCodeContextRequest]) (*connect.Response[hutchv1.CodeContext], error) {
	return agentconn.Unary(ctx, h.s.gw, req.Msg.Sandbox, sandbox.Adding, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.CreateCodeContextRequest]) (*connect.Response[hutchv1.CodeContext], error) {
		return c.Code.CreateCodeContext
	})
}

func (h *codeService) ListCodeContexts(ctx context.Context, req *connect.Request[hutchv1.ListCodeContextsRequest]) (*connect.Response[hutchv1.ListCodeContextsResponse], error) {
	return agentconn.Unary(ctx, h.s.gw, req.Msg.Sandbox, sandbox.Existing, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.ListCodeContextsRequest]) (*connect.Response[hutchv1.ListCodeContextsResponse], error) {
		return c.Code.ListCodeContexts
	})
}

func (h *codeService) DeleteCodeContext(ctx context.Context, req *connect.Request[hutchv1.DeleteCodeContextRequest]) (*connect.Response[hutchv1.DeleteCodeContextResponse], error) {
	return agentconn.Unary(ctx, h.s.gw, req.Msg.Sandbox, sandbox.Existing, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.DeleteCodeContextRequest]) (*connect.Response[hutchv1.DeleteCodeContextResponse], error) {
		return c.Code.DeleteCodeContext
	})
}

func (h *codeService) InterruptCode(ctx context.Context, req *connect.Request[hutchv1.InterruptCodeRequest]) (*connect.Response[hutchv1.InterruptCodeResponse], error) {
	return agentconn.Unary(ctx, h.s.gw, req.Msg.Sandbox, sandbox.Existing, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.InterruptCodeRequest]) (*connect.Response[hutchv1.InterruptCodeResponse], error) {
		return c.Code.InterruptCode
	})
}

// RunCode relays the agent's cell events. A stream from the agent that ends
// without Done broke: the client is told so, never that the cell succeeded.
func (h *codeService) RunCode(ctx context.Context, req *connect.Request[hutchv1.RunCodeRequest], out *connect.ServerStream[hutchv1.CodeEvent]) error {
	return agentconn.Stream(ctx, h.s.gw, req.Msg.Sandbox, sandbox.Adding, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.RunCodeRequest]) (*connect.ServerStreamForClient[hutchv1.CodeEvent], error) {
		return c.Code.RunCode
	}, out.Send, func(ev *hutchv1.CodeEvent) bool {
		_, ok := ev.Event.(*hutchv1.CodeEvent_Done)
		return ok
	}, "before the cell was done")
}
