package apiserver

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/agentconn"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

// Watches live in the agent; the daemon relays them, and ends a stream with
// a stopped event of its own when the sandbox goes away under it.
type watches struct{ s *Server }

var _ hutchv1connect.WatchServiceHandler = (*watches)(nil)

func (h *watches) Watch(ctx context.Context, req *connect.Request[hutchv1.WatchRequest], out *connect.ServerStream[hutchv1.WatchResponse]) error {
	name := req.Msg.Sandbox
	rec, err := h.s.sb.Get(name)
	if err != nil {
		return err
	}
	conn, err := h.s.gw.Agent(ctx, name, sandbox.Existing)
	if err != nil {
		return err
	}
	in, err := conn.Watch.Watch(ctx, connect.NewRequest(req.Msg)) // the message only, as the gateway sends
	if err != nil {
		return h.s.gw.Fail(name, err)
	}
	defer in.Close()
	for in.Receive() {
		msg := in.Msg()
		if err := out.Send(msg); err != nil {
			return err
		}
		if n := len(msg.Events); n > 0 && msg.Events[n-1].Type == hutchv1.WatchEventType_WATCH_EVENT_TYPE_STOPPED {
			return nil
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// The agent's stream broke off. Delete holds the sandbox while it kills
	// it, so Get answers once it is done.
	if reason := h.gone(name, rec.ID); reason != "" {
		return out.Send(&hutchv1.WatchResponse{Events: []*hutchv1.WatchEvent{{
			Type: hutchv1.WatchEventType_WATCH_EVENT_TYPE_STOPPED, Path: req.Msg.Path, Timestamp: timestamppb.Now(), Reason: reason,
		}}})
	}
	if err := in.Err(); err != nil {
		return h.s.gw.Fail(name, err)
	}
	return h.s.gw.Cut(name, nil, "without a stopped event")
}

// gone says why the sandbox whose id was id is no longer running, or ""
// if it still is.
func (h *watches) gone(name, id string) string {
	rec, err := h.s.sb.Get(name)
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		return "the sandbox was destroyed"
	case err != nil:
		return ""
	case rec.ID != id:
		return "the sandbox was replaced"
	case rec.State != sandbox.StateRunning:
		return fmt.Sprintf("the sandbox is %s", rec.State)
	}
	return ""
}

func (h *watches) CheckChanges(ctx context.Context, req *connect.Request[hutchv1.CheckChangesRequest]) (*connect.Response[hutchv1.CheckChangesResponse], error) {
	return agentconn.Unary(ctx, h.s.gw, req.Msg.Sandbox, sandbox.Existing, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.CheckChangesRequest]) (*connect.Response[hutchv1.CheckChangesResponse], error) {
		return c.Watch.CheckChanges
	})
}
