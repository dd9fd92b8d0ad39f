package watch

import (
	"fmt"
	"path"
	"sync"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
)

// Bounds on what one subscriber holds.
const (
	maxQueue = 8192 // events waiting for a slow client before it is told to resync
	maxBatch = 1024 // events in one stream message
)

// sub is one Watch stream's queue. Events wait here until the stream sends
// them; a modify or attrib whose path's latest waiting event is the same
// kind is dropped (bursts coalesce, order per path is kept). A full queue is
// emptied and replaced by one overflow event.
type sub struct {
	root    string
	include filter
	wake    chan struct{} // signalled when there is something to take

	mu      sync.Mutex
	q       []*hutchv1.WatchEvent
	last    map[string]int // path → index in q of its latest event
	dropped int
	final   *hutchv1.WatchEvent // the stopped event, once the watch ended
}

func newSub(root string, include filter) *sub {
	return &sub{root: root, include: include, wake: make(chan struct{}, 1), last: map[string]int{}}
}

func (s *sub) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *sub) wants(ev *hutchv1.WatchEvent) bool {
	if len(s.include) == 0 || ev.Path == "" {
		return true
	}
	switch ev.Type {
	case hutchv1.WatchEventType_WATCH_EVENT_TYPE_OVERFLOW, hutchv1.WatchEventType_WATCH_EVENT_TYPE_STOPPED:
		return true
	}
	rel, ok := relative(s.root, ev.Path)
	return ok && s.include.match(rel)
}

// push queues events; the caller holds no lock of s.
func (s *sub) push(evs []*hutchv1.WatchEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.final != nil {
		return
	}
	for _, ev := range evs {
		if !s.wants(ev) {
			continue
		}
		if ev.Type == hutchv1.WatchEventType_WATCH_EVENT_TYPE_MODIFY || ev.Type == hutchv1.WatchEventType_WATCH_EVENT_TYPE_ATTRIB {
			if i, ok := s.last[ev.Path]; ok && s.q[i].Type == ev.Type {
				continue
			}
		}
		if len(s.q) >= maxQueue {
			s.dropped += len(s.q)
			s.q = s.q[:0]
			clear(s.last)
			s.q = append(s.q, &hutchv1.WatchEvent{
				Type: hutchv1.WatchEventType_WATCH_EVENT_TYPE_OVERFLOW, Timestamp: ev.Timestamp, Version: ev.Version,
				Reason: fmt.Sprintf("the client fell behind: %d events dropped; resync (CheckChanges from the last version seen lists what changed)", s.dropped),
			})
		}
		if ev.Path != "" {
			s.last[ev.Path] = len(s.q)
		}
		s.q = append(s.q, ev)
	}
	s.signal()
}

// stop queues the final event; nothing is queued after it.
func (s *sub) stop(ev *hutchv1.WatchEvent) {
	s.mu.Lock()
	if s.final == nil {
		s.final = ev
	}
	s.mu.Unlock()
	s.signal()
}

// take returns up to maxBatch waiting events, or, with none waiting, the
// final event if the watch ended.
func (s *sub) take() ([]*hutchv1.WatchEvent, *hutchv1.WatchEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.q) == 0 {
		return nil, s.final
	}
	n := min(len(s.q), maxBatch)
	out := make([]*hutchv1.WatchEvent, n)
	copy(out, s.q)
	rest := copy(s.q, s.q[n:])
	clear(s.q[rest:])
	s.q = s.q[:rest]
	clear(s.last)
	for i, ev := range s.q {
		if ev.Path != "" {
			s.last[ev.Path] = i
		}
	}
	return out, nil
}

// relative returns p relative to root, and whether p is below root.
func relative(root, p string) (string, bool) {
	if p == root {
		return ".", true
	}
	prefix := root + "/"
	if root == "/" {
		prefix = "/"
	}
	if len(p) > len(prefix) && p[:len(prefix)] == prefix {
		return path.Clean(p[len(prefix):]), true
	}
	return "", false
}
