package apiserver

import (
	"context"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/agentconn"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// Background processes live in the agent; the daemon forwards. Starting one
// creates the sandbox on demand; the rest need it to exist.

func (h *processes) StartProcess(ctx context.Context, req *connect.Request[hutchv1.StartProcessRequest]) (*connect.Response[hutchv1.ProcessInfo], error) {
	return unary(ctx, h.s, req.Msg.Sandbox, true, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.StartProcessRequest]) (*connect.Response[hutchv1.ProcessInfo], error) {
		return c.Process.StartProcess
	})
}

func (h *processes) ListProcesses(ctx context.Context, req *connect.Request[hutchv1.ListProcessesRequest]) (*connect.Response[hutchv1.ListProcessesResponse], error) {
	return unary(ctx, h.s, req.Msg.Sandbox, false, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.ListProcessesRequest]) (*connect.Response[hutchv1.ListProcessesResponse], error) {
		return c.Process.ListProcesses
	})
}

func (h *processes) GetProcess(ctx context.Context, req *connect.Request[hutchv1.ProcessRef]) (*connect.Response[hutchv1.ProcessInfo], error) {
	return unary(ctx, h.s, req.Msg.Sandbox, false, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.ProcessRef]) (*connect.Response[hutchv1.ProcessInfo], error) {
		return c.Process.GetProcess
	})
}

func (h *processes) KillProcess(ctx context.Context, req *connect.Request[hutchv1.KillProcessRequest]) (*connect.Response[hutchv1.ProcessInfo], error) {
	return unary(ctx, h.s, req.Msg.Sandbox, false, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.KillProcessRequest]) (*connect.Response[hutchv1.ProcessInfo], error) {
		return c.Process.KillProcess
	})
}

func (h *processes) KillAllProcesses(ctx context.Context, req *connect.Request[hutchv1.KillAllProcessesRequest]) (*connect.Response[hutchv1.KillAllProcessesResponse], error) {
	return unary(ctx, h.s, req.Msg.Sandbox, false, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.KillAllProcessesRequest]) (*connect.Response[hutchv1.KillAllProcessesResponse], error) {
		return c.Process.KillAllProcesses
	})
}

func (h *processes) WaitProcess(ctx context.Context, req *connect.Request[hutchv1.WaitProcessRequest]) (*connect.Response[hutchv1.WaitProcessResponse], error) {
	return unary(ctx, h.s, req.Msg.Sandbox, false, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.WaitProcessRequest]) (*connect.Response[hutchv1.WaitProcessResponse], error) {
		return c.Process.WaitProcess
	})
}

// ProcessLogs relays the agent's log stream.
func (h *processes) ProcessLogs(ctx context.Context, req *connect.Request[hutchv1.ProcessLogsRequest], out *connect.ServerStream[hutchv1.ProcessLogEvent]) error {
	conn, err := h.s.sb.Conn(ctx, req.Msg.Sandbox)
	if err != nil {
		return errdefs.ToConnect(err)
	}
	in, err := conn.Process.ProcessLogs(ctx, req)
	if err != nil {
		return h.s.agentError(req.Msg.Sandbox, err)
	}
	defer in.Close()
	for in.Receive() {
		if err := out.Send(in.Msg()); err != nil {
			return err
		}
	}
	if err := in.Err(); err != nil {
		return h.s.agentError(req.Msg.Sandbox, err)
	}
	return nil
}
