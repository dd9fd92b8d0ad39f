package apiserver

import (
	"context"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/agentconn"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

// Sessions live in the agent; the daemon forwards. Creating one and setting
// env create the sandbox on demand.

func (h *processes) CreateSession(ctx context.Context, req *connect.Request[hutchv1.CreateSessionRequest]) (*connect.Response[hutchv1.SessionInfo], error) {
	return agentconn.Unary(ctx, h.s.gw, req.Msg.Sandbox, sandbox.Adding, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.CreateSessionRequest]) (*connect.Response[hutchv1.SessionInfo], error) {
		return c.Process.CreateSession
	})
}

func (h *processes) ListSessions(ctx context.Context, req *connect.Request[hutchv1.ListSessionsRequest]) (*connect.Response[hutchv1.ListSessionsResponse], error) {
	return agentconn.Unary(ctx, h.s.gw, req.Msg.Sandbox, sandbox.Existing, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.ListSessionsRequest]) (*connect.Response[hutchv1.ListSessionsResponse], error) {
		return c.Process.ListSessions
	})
}

func (h *processes) DeleteSession(ctx context.Context, req *connect.Request[hutchv1.DeleteSessionRequest]) (*connect.Response[hutchv1.DeleteSessionResponse], error) {
	return agentconn.Unary(ctx, h.s.gw, req.Msg.Sandbox, sandbox.Existing, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.DeleteSessionRequest]) (*connect.Response[hutchv1.DeleteSessionResponse], error) {
		return c.Process.DeleteSession
	})
}

func (h *processes) SetEnv(ctx context.Context, req *connect.Request[hutchv1.SetEnvRequest]) (*connect.Response[hutchv1.SetEnvResponse], error) {
	return agentconn.Unary(ctx, h.s.gw, req.Msg.Sandbox, sandbox.Adding, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.SetEnvRequest]) (*connect.Response[hutchv1.SetEnvResponse], error) {
		return c.Process.SetEnv
	})
}

// GitCheckout clones into the sandbox, creating it on demand.
func (h *processes) GitCheckout(ctx context.Context, req *connect.Request[hutchv1.GitCheckoutRequest]) (*connect.Response[hutchv1.GitCheckoutResponse], error) {
	return agentconn.Unary(ctx, h.s.gw, req.Msg.Sandbox, sandbox.Adding, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.GitCheckoutRequest]) (*connect.Response[hutchv1.GitCheckoutResponse], error) {
		return c.Process.GitCheckout
	})
}
