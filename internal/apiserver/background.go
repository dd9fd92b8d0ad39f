package apiserver

import (
	"context"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/agentconn"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

// Background processes live in the agent; the daemon forwards. Starting one
// creates the sandbox on demand; the rest need it to exist.

func (h *processes) StartProcess(ctx context.Context, req *connect.Request[hutchv1.StartProcessRequest]) (*connect.Response[hutchv1.ProcessInfo], error) {
	return agentconn.Unary(ctx, h.s.gw, req.Msg.Sandbox, sandbox.Adding, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.StartProcessRequest]) (*connect.Response[hutchv1.ProcessInfo], error) {
		return c.Process.StartProcess
	})
}

func (h *processes) ListProcesses(ctx context.Context, req *connect.Request[hutchv1.ListProcessesRequest]) (*connect.Response[hutchv1.ListProcessesResponse], error) {
	return agentconn.Unary(ctx, h.s.gw, req.Msg.Sandbox, sandbox.Existing, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.ListProcessesRequest]) (*connect.Response[hutchv1.ListProcessesResponse], error) {
		return c.Process.ListProcesses
	})
}

func (h *processes) GetProcess(ctx context.Context, req *connect.Request[hutchv1.ProcessRef]) (*connect.Response[hutchv1.ProcessInfo], error) {
	return agentconn.Unary(ctx, h.s.gw, req.Msg.Sandbox, sandbox.Existing, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.ProcessRef]) (*connect.Response[hutchv1.ProcessInfo], error) {
		return c.Process.GetProcess
	})
}

func (h *processes) KillProcess(ctx context.Context, req *connect.Request[hutchv1.KillProcessRequest]) (*connect.Response[hutchv1.ProcessInfo], error) {
	return agentconn.Unary(ctx, h.s.gw, req.Msg.Sandbox, sandbox.Existing, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.KillProcessRequest]) (*connect.Response[hutchv1.ProcessInfo], error) {
		return c.Process.KillProcess
	})
}

func (h *processes) KillAllProcesses(ctx context.Context, req *connect.Request[hutchv1.KillAllProcessesRequest]) (*connect.Response[hutchv1.KillAllProcessesResponse], error) {
	return agentconn.Unary(ctx, h.s.gw, req.Msg.Sandbox, sandbox.Existing, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.KillAllProcessesRequest]) (*connect.Response[hutchv1.KillAllProcessesResponse], error) {
		return c.Process.KillAllProcesses
	})
}

func (h *processes) WaitProcess(ctx context.Context, req *connect.Request[hutchv1.WaitProcessRequest]) (*connect.Response[hutchv1.WaitProcessResponse], error) {
	return agentconn.Unary(ctx, h.s.gw, req.Msg.Sandbox, sandbox.Existing, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.WaitProcessRequest]) (*connect.Response[hutchv1.WaitProcessResponse], error) {
		return c.Process.WaitProcess
	})
}

// ProcessLogs relays the agent's log stream.
func (h *processes) ProcessLogs(ctx context.Context, req *connect.Request[hutchv1.ProcessLogsRequest], out *connect.ServerStream[hutchv1.ProcessLogEvent]) error {
	return agentconn.Stream(ctx, h.s.gw, req.Msg.Sandbox, sandbox.Existing, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.ProcessLogsRequest]) (*connect.ServerStreamForClient[hutchv1.ProcessLogEvent], error) {
		return c.Process.ProcessLogs
	}, out.Send, nil, "")
}
