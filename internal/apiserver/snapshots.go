package apiserver

import (
	"context"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/manager"
	"github.com/hutch-sh/hutch/internal/sandbox"
	"github.com/hutch-sh/hutch/internal/snapshot"
)

// Lifecycle is what the snapshot service needs of the sandbox manager: an
// optional capability of Sandboxes, found by type assertion.
type Lifecycle interface {
	Sleep(ctx context.Context, name string) (manager.SleepInfo, error)
	ConfigureSleep(ctx context.Context, name string, set manager.SleepSettings) (manager.SleepInfo, error)
	GetSleep(name string) (manager.SleepInfo, error)
	Snapshot(ctx context.Context, name string, ttl time.Duration) (snapshot.Snapshot, error)
	ListSnapshots(ctx context.Context, sandbox string) ([]manager.SnapshotInfo, error)
	DeleteSnapshot(ctx context.Context, id string) error
	Fork(ctx context.Context, name string, news []string, snapID string, opts sandbox.CreateOptions) (string, []sandbox.Record, error)
}

var _ Lifecycle = (*manager.Manager)(nil)

type snapshots struct {
	s  *Server
	lc Lifecycle
}

var _ hutchv1connect.SnapshotServiceHandler = (*snapshots)(nil)

func (h *snapshots) Sleep(ctx context.Context, req *connect.Request[hutchv1.SleepRequest]) (*connect.Response[hutchv1.SleepInfo], error) {
	si, err := h.lc.Sleep(ctx, req.Msg.Name)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(sleepProto(req.Msg.Name, si)), nil
}

func (h *snapshots) ConfigureSleep(ctx context.Context, req *connect.Request[hutchv1.ConfigureSleepRequest]) (*connect.Response[hutchv1.SleepInfo], error) {
	var after *time.Duration
	if req.Msg.SleepAfter != nil {
		d := req.Msg.SleepAfter.AsDuration()
		after = &d
	}
	si, err := h.lc.ConfigureSleep(ctx, req.Msg.Name, manager.SleepSettings{SleepAfter: after, KeepAlive: req.Msg.KeepAlive, Persist: req.Msg.PersistAcrossSessions})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(sleepProto(req.Msg.Name, si)), nil
}

func (h *snapshots) GetSleep(_ context.Context, req *connect.Request[hutchv1.GetSleepRequest]) (*connect.Response[hutchv1.SleepInfo], error) {
	si, err := h.lc.GetSleep(req.Msg.Name)
	if err != nil {
		return nil, err
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

		PersistAcrossSessions: si.Persist,
	}
	if !si.SleepsAt.IsZero() {
		out.SleepsAt = timestamppb.New(si.SleepsAt)
	}
	return out
}

func (h *snapshots) CreateSnapshot(ctx context.Context, req *connect.Request[hutchv1.CreateSnapshotRequest]) (*connect.Response[hutchv1.Snapshot], error) {
	snap, err := h.lc.Snapshot(ctx, req.Msg.Name, req.Msg.Ttl.AsDuration())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(snapshotProto(manager.SnapshotInfo{Snapshot: snap})), nil
}

func (h *snapshots) ListSnapshots(ctx context.Context, req *connect.Request[hutchv1.ListSnapshotsRequest]) (*connect.Response[hutchv1.ListSnapshotsResponse], error) {
	infos, err := h.lc.ListSnapshots(ctx, req.Msg.Sandbox)
	if err != nil {
		return nil, err
	}
	out := &hutchv1.ListSnapshotsResponse{}
	for _, si := range infos {
		out.Snapshots = append(out.Snapshots, snapshotProto(si))
	}
	return connect.NewResponse(out), nil
}

func (h *snapshots) DeleteSnapshot(ctx context.Context, req *connect.Request[hutchv1.DeleteSnapshotRequest]) (*connect.Response[hutchv1.DeleteSnapshotResponse], error) {
	if err := h.lc.DeleteSnapshot(ctx, req.Msg.Id); err != nil {
		return nil, err
	}
	return connect.NewResponse(&hutchv1.DeleteSnapshotResponse{}), nil
}

func (h *snapshots) Fork(ctx context.Context, req *connect.Request[hutchv1.ForkRequest]) (*connect.Response[hutchv1.ForkResponse], error) {
	opts := sandbox.CreateOptions{SleepAfter: req.Msg.SleepAfter.AsDuration(), KeepAlive: req.Msg.KeepAlive}
	id, recs, err := h.lc.Fork(ctx, req.Msg.Name, req.Msg.NewNames, req.Msg.Snapshot, opts)
	if err != nil {
		return nil, err
	}
	out := &hutchv1.ForkResponse{Snapshot: id}
	for _, r := range recs {
		out.Sandboxes = append(out.Sandboxes, toProto(r))
	}
	return connect.NewResponse(out), nil
}

func snapshotProto(si manager.SnapshotInfo) *hutchv1.Snapshot {
	out := &hutchv1.Snapshot{
		Id:        si.ID,
		Sandbox:   si.Sandbox,
		Image:     si.Image,
		Layer:     si.Layer,
		Size:      si.Size,
		CreatedAt: timestamppb.New(si.CreatedAt),
		UsedBy:    si.UsedBy,
	}
	if !si.ExpiresAt.IsZero() {
		out.ExpiresAt = timestamppb.New(si.ExpiresAt)
	}
	return out
}
