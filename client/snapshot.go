package client

import (
	"context"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
)

// Snapshot captures a sandbox's disk, with its processes frozen for the
// moment it takes; the sandbox keeps running. ttl 0 keeps it until deleted.
func (c *Client) Snapshot(ctx context.Context, name string, ttl time.Duration) (*hutchv1.Snapshot, error) {
	resp, err := c.snapshots.CreateSnapshot(ctx, connect.NewRequest(&hutchv1.CreateSnapshotRequest{Name: name, Ttl: durationpb.New(ttl)}))
	if err != nil {
		return nil, wrap(err)
	}
	return resp.Msg, nil
}

// Snapshots lists the snapshots of a sandbox, or every one for "".
func (c *Client) Snapshots(ctx context.Context, sandbox string) ([]*hutchv1.Snapshot, error) {
	resp, err := c.snapshots.ListSnapshots(ctx, connect.NewRequest(&hutchv1.ListSnapshotsRequest{Sandbox: sandbox}))
	if err != nil {
		return nil, wrap(err)
	}
	return resp.Msg.Snapshots, nil
}

// DeleteSnapshot deletes a snapshot; ErrFailedPrecondition while sandboxes
// created from it exist.
func (c *Client) DeleteSnapshot(ctx context.Context, id string) error {
	_, err := c.snapshots.DeleteSnapshot(ctx, connect.NewRequest(&hutchv1.DeleteSnapshotRequest{Id: id}))
	return wrap(err)
}

// ForkOptions shape a fork.
type ForkOptions struct {
	// Snapshot to start from; empty: a snapshot of the sandbox taken now.
	Snapshot   string
	SleepAfter time.Duration
	KeepAlive  bool
}

// Fork creates sandboxes news with the disk of a snapshot of name (name
// may be empty when o.Snapshot is set); it returns the snapshot id used.
func (c *Client) Fork(ctx context.Context, name string, news []string, o ForkOptions) (string, []*hutchv1.Sandbox, error) {
	req := &hutchv1.ForkRequest{Name: name, NewNames: news, Snapshot: o.Snapshot, KeepAlive: o.KeepAlive}
	if o.SleepAfter != 0 {
		req.SleepAfter = durationpb.New(o.SleepAfter)
	}
	resp, err := c.snapshots.Fork(ctx, connect.NewRequest(req))
	if err != nil {
		return "", nil, wrap(err)
	}
	return resp.Msg.Snapshot, resp.Msg.Sandboxes, nil
}
