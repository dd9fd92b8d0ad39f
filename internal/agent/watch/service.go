// Package watch is the agent's filesystem watching: recursive inotify
// watches streamed to the daemon as WatchEvents, and a journal per watched
// tree that tells a reconnecting client what it missed.
package watch

import (
	"context"
	"log/slog"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/agent/files"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// Options tune a Service; zero values take the defaults.
type Options struct {
	Retention time.Duration // how long a tree outlives its last stream (DefaultRetention; negative: not at all)
	MaxIdle   int           // how many such trees are kept (DefaultMaxIdle)
	KeepAlive time.Duration // keep-alive interval of quiet streams (15 s)
}

// Service implements hutchv1connect.WatchServiceHandler.
type Service struct {
	hub       *hub
	keepAlive time.Duration
}

var _ hutchv1connect.WatchServiceHandler = (*Service)(nil)

// New returns a Service opening directories through open.
func New(log *slog.Logger, open Opener, o Options) *Service {
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
	if o.MaxIdle == 0 {
		o.MaxIdle = DefaultMaxIdle
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = 15 * time.Second
	}
	return &Service{hub: newHub(log, open, o.Retention, o.MaxIdle), keepAlive: o.KeepAlive}
}

// Close ends every watch; open streams get a stopped event.
func (s *Service) Close() { s.hub.close("the sandbox is stopping") }

// request is what Watch and CheckChanges share.
type request struct {
	key     key
	exclude filter
	include filter
}

func parse(p string, nonRecursive bool, include, exclude []string, noDefaults bool) (request, error) {
	if len(exclude) == 0 && !noDefaults {
		exclude = defaultExcludes
	}
	p, err := files.SandboxPath(p)
	if err != nil {
		return request{}, err
	}
	ex, err := newFilter("exclude", exclude)
	if err != nil {
		return request{}, err
	}
	in, err := newFilter("include", include)
	if err != nil {
		return request{}, err
	}
	return request{key: treeKey(p, !nonRecursive, exclude), exclude: ex, include: in}, nil
}

func (s *Service) Watch(ctx context.Context, req *connect.Request[hutchv1.WatchRequest], stream *connect.ServerStream[hutchv1.WatchResponse]) error {
	return errdefs.ToConnect(s.watch(ctx, req.Msg, stream.Send))
}

func (s *Service) watch(ctx context.Context, m *hutchv1.WatchRequest, send func(*hutchv1.WatchResponse) error) error {
	r, err := parse(m.Path, m.NonRecursive, m.Include, m.Exclude, m.NoDefaultExcludes)
	if err != nil {
		return err
	}
	sb := newSub(r.key.path, r.include)
	t, version, err := s.hub.subscribe(r.key, r.exclude, sb)
	if err != nil {
		return err
	}
	defer s.hub.unsubscribe(t, sb)
	started := &hutchv1.WatchEvent{Type: hutchv1.WatchEventType_WATCH_EVENT_TYPE_STARTED, Path: t.root, IsDirectory: true, Timestamp: timestamppb.Now(), Version: version}
	if err := send(&hutchv1.WatchResponse{Events: []*hutchv1.WatchEvent{started}}); err != nil {
		return err
	}
	keepAlive := time.NewTimer(s.keepAlive)
	defer keepAlive.Stop()
	for {
		batch, final := sb.take()
		if len(batch) > 0 {
			if err := send(&hutchv1.WatchResponse{Events: batch}); err != nil {
				return err
			}
			keepAlive.Reset(s.keepAlive)
			continue
		}
		if final != nil {
			return send(&hutchv1.WatchResponse{Events: []*hutchv1.WatchEvent{final}})
		}
		select {
		case <-sb.wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-keepAlive.C:
			ka := &hutchv1.WatchEvent{Type: hutchv1.WatchEventType_WATCH_EVENT_TYPE_KEEPALIVE, Timestamp: timestamppb.Now()}
			if err := send(&hutchv1.WatchResponse{Events: []*hutchv1.WatchEvent{ka}}); err != nil {
				return err
			}
			keepAlive.Reset(s.keepAlive)
		}
	}
}

func (s *Service) CheckChanges(ctx context.Context, req *connect.Request[hutchv1.CheckChangesRequest]) (*connect.Response[hutchv1.CheckChangesResponse], error) {
	res, err := s.checkChanges(req.Msg)
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	return connect.NewResponse(res), nil
}

func (s *Service) checkChanges(m *hutchv1.CheckChangesRequest) (*hutchv1.CheckChangesResponse, error) {
	r, err := parse(m.Path, m.NonRecursive, m.Include, m.Exclude, m.NoDefaultExcludes)
	if err != nil {
		return nil, err
	}
	t := s.hub.lookup(r.key)
	if t == nil {
		return &hutchv1.CheckChangesResponse{Status: hutchv1.ChangeStatus_CHANGE_STATUS_RESYNC,
			Reason: "no watch state is kept for this path and these filters (it is kept for a while after the last watch ends)"}, nil
	}
	t.mu.Lock()
	c := t.j.since(m.Since)
	version := t.j.version(t.j.seq)
	t.mu.Unlock()
	res := &hutchv1.CheckChangesResponse{Version: version}
	switch {
	case c.unknown != "":
		res.Status, res.Reason = hutchv1.ChangeStatus_CHANGE_STATUS_RESYNC, c.unknown
	case len(c.paths) == 0 && c.complete:
		res.Status = hutchv1.ChangeStatus_CHANGE_STATUS_UNCHANGED
	default:
		res.Status, res.PathsComplete = hutchv1.ChangeStatus_CHANGE_STATUS_CHANGED, c.complete
		for _, p := range c.paths {
			if rel, ok := relative(t.root, p); ok && (len(r.include) == 0 || r.include.match(rel)) {
				res.Paths = append(res.Paths, p)
			}
		}
	}
	return res, nil
}
