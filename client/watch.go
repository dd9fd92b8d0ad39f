package client

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
)

// WatchOptions shape Watch and CheckChanges.
type WatchOptions struct {
	NonRecursive bool
	// Globs (path.Match syntax): without '/' they match a path component's
	// name, with '/' the path relative to the watched directory; a path
	// matches when it or a parent directory does.
	Include []string
	// Excluded directories are not watched. Empty: .git and node_modules,
	// unless NoDefaultExcludes.
	Exclude           []string
	NoDefaultExcludes bool
}

// ErrStopWatch, returned by a Watch callback, ends the watch without error.
var ErrStopWatch = errors.New("stop watching")

// Watch streams the changes under path (a directory) in the named sandbox
// to fn, starting with a STARTED event once the watch is live: no change
// after it is missed without an OVERFLOW event saying so. Keep-alives are
// not passed on. It returns the STOPPED event when the watch ends on the
// sandbox's side (deleted directory, destroyed sandbox), nil when fn returns
// ErrStopWatch, and otherwise fn's error or the stream's.
func (c *Client) Watch(ctx context.Context, name, path string, o WatchOptions, fn func(*hutchv1.WatchEvent) error) (*hutchv1.WatchEvent, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.watch.Watch(ctx, connect.NewRequest(&hutchv1.WatchRequest{
		Sandbox: name, Path: path, NonRecursive: o.NonRecursive,
		Include: o.Include, Exclude: o.Exclude, NoDefaultExcludes: o.NoDefaultExcludes,
	}))
	if err != nil {
		return nil, wrap(err)
	}
	defer stream.Close()
	for stream.Receive() {
		for _, ev := range stream.Msg().Events {
			switch ev.Type {
			case hutchv1.WatchEventType_WATCH_EVENT_TYPE_KEEPALIVE:
				continue
			case hutchv1.WatchEventType_WATCH_EVENT_TYPE_STOPPED:
				return ev, nil
			}
			if err := fn(ev); err != nil {
				if errors.Is(err, ErrStopWatch) {
					return nil, nil
				}
				return nil, err
			}
		}
	}
	if err := stream.Err(); err != nil {
		return nil, wrap(err)
	}
	return nil, fmt.Errorf("watch %q in %q: stream ended without a stopped event: %w", path, name, ErrUnavailable)
}

// CheckChanges reports whether anything changed under path since version
// (from an event of a Watch with the same path and options): unchanged,
// changed (with the paths, if still remembered) or resync.
func (c *Client) CheckChanges(ctx context.Context, name, path, since string, o WatchOptions) (*hutchv1.CheckChangesResponse, error) {
	resp, err := c.watch.CheckChanges(ctx, connect.NewRequest(&hutchv1.CheckChangesRequest{
		Sandbox: name, Path: path, Since: since, NonRecursive: o.NonRecursive,
		Include: o.Include, Exclude: o.Exclude, NoDefaultExcludes: o.NoDefaultExcludes,
	}))
	if err != nil {
		return nil, wrap(err)
	}
	return resp.Msg, nil
}
