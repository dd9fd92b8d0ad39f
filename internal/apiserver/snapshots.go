package apiserver

import (
	"context"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/manager"
)

// Lifecycle is what the snapshot service needs of the sandbox manager: an
// optional capability of Sandboxes, found by type assertion.
type Lifecycle interface {
	Sleep(ctx context.Context, name string) (manager.SleepInfo, error)
	ConfigureSleep(name string, sleepAfter *time.Duration, keepAlive *bool) (manager.SleepInfo, error)
	GetSleep(name string) (manager.SleepInfo, error)
}

var _ Lifecycle = (*manager.Manager)(nil)

type snapshots struct {
	hutchv1connect.UnimplementedSnapshotServiceHandler
	s  *Server
	lc Lifecycle
}

var _ hutchv1connect.SnapshotServiceHandler = (*snapshots)(nil)

func (h *snapshots) Sleep(ctx context.Context, req *connect.Request[hutchv1.SleepRequest]) (*connect.Response[hutchv1.SleepInfo], error) {
	si, err := h.lc.Sleep(ctx, req.Msg.Name)
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	return connect.NewResponse(sleepProto(req.Msg.Name, si)), nil
}

func (h *snapshots) ConfigureSleep(_ context.Context, req *connect.Request[hutchv1.ConfigureSleepRequest]) (*connect.Response[hutchv1.SleepInfo], error) {
	var after *time.Duration
	if req.Msg.SleepAfter != nil {
		d := req.Msg.SleepAfter.AsDuration()
		after = &d
	}
	si, err := h.lc.ConfigureSleep(req.Msg.Name, after, req.Msg.KeepAlive)
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	return connect.NewResponse(sleepProto(req.Msg.Name, si)), nil
}

func (h *snapshots) GetSleep(_ context.Context, req *connect.Request[hutchv1.GetSleepRequest]) (*connect.Response[hutchv1.SleepInfo], error) {
	si, err := h.lc.GetSleep(req.Msg.Name)
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	return connect.NewResponse(sleepProto(req.Msg.Name, si)), nil
}

func sleepProto(name string, si manager.SleepInfo) *hutchv1.SleepInfo {
	out := &hutchv1.SleepInfo{
		Name:       name,
		Sleeping:   si.Sleeping,
		SleepAfter: durationpb.New(si.SleepAfter),
		KeepAlive:  si.KeepAlive,
		Active:     si.Active,
	}
	if !si.SleepsAt.IsZero() {
		out.SleepsAt = timestamppb.New(si.SleepsAt)
	}
	return out
}
