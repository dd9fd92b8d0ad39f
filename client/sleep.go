package client

import (
	"context"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
)

// Sleep puts a sandbox to sleep now: its processes end, its disk and
// exposed ports stay, and the next call on it wakes it.
func (c *Client) Sleep(ctx context.Context, name string) (*hutchv1.SleepInfo, error) {
	resp, err := c.snapshots.Sleep(ctx, connect.NewRequest(&hutchv1.SleepRequest{Name: name}))
	if err != nil {
		return nil, wrap(err)
	}
	return resp.Msg, nil
}

// SleepOptions change when a sandbox sleeps; nil fields stay as they are.
type SleepOptions struct {
	SleepAfter *time.Duration
	KeepAlive  *bool
	// Persist pushes the disk to the daemon's blob store on sleep, so that
	// another daemon sharing it can wake the sandbox.
	Persist *bool
}

// ConfigureSleep sets a sandbox's idle time before sleep and keep-alive.
func (c *Client) ConfigureSleep(ctx context.Context, name string, o SleepOptions) (*hutchv1.SleepInfo, error) {
	req := &hutchv1.ConfigureSleepRequest{Name: name, KeepAlive: o.KeepAlive, PersistAcrossSessions: o.Persist}
	if o.SleepAfter != nil {
		req.SleepAfter = durationpb.New(*o.SleepAfter)
	}
	resp, err := c.snapshots.ConfigureSleep(ctx, connect.NewRequest(req))
	if err != nil {
		return nil, wrap(err)
	}
	return resp.Msg, nil
}

// GetSleep reports when a sandbox sleeps, without waking it.
func (c *Client) GetSleep(ctx context.Context, name string) (*hutchv1.SleepInfo, error) {
	resp, err := c.snapshots.GetSleep(ctx, connect.NewRequest(&hutchv1.GetSleepRequest{Name: name}))
	if err != nil {
		return nil, wrap(err)
	}
	return resp.Msg, nil
}
