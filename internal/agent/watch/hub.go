package watch

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

// Defaults for how long a tree is kept once its last stream ended, so
// CheckChanges can answer a client that reconnects.
const (
	DefaultRetention = 10 * time.Minute
	DefaultMaxIdle   = 8
)

// hub owns the trees of one agent: watches of the same path and excludes
// share one inotify instance; a tree without subscribers is kept for
// retention (at most maxIdle of them, least recently used dropped first).
type hub struct {
	log       *slog.Logger
	open      Opener
	retention time.Duration
	maxIdle   int

	mu     sync.Mutex
	trees  map[key]*tree
	idle   []*tree // oldest first
	closed bool
}

func newHub(log *slog.Logger, open Opener, retention time.Duration, maxIdle int) *hub {
	return &hub{log: log, open: open, retention: retention, maxIdle: maxIdle, trees: map[key]*tree{}}
}

func treeKey(p string, recursive bool, exclude []string) key {
	ex := slices.Clone(exclude)
	slices.Sort(ex)
	return key{path: p, recursive: recursive, exclude: strings.Join(slices.Compact(ex), "\x00")}
}

// subscribe adds s to the tree of k, starting one if needed, and returns
// the version the subscription starts at.
func (h *hub) subscribe(k key, exclude filter, s *sub) (*tree, string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, "", fmt.Errorf("watch: the agent is stopping: %w", errdefs.ErrUnavailable)
	}
	t := h.trees[k]
	if t == nil {
		var err error
		t, err = newTree(h.log, h.open, k, exclude, h.remove)
		if errdefs.Code(err) == errdefs.Code(errdefs.ErrResourceExhausted) && len(h.idle) > 0 {
			// Out of inotify instances: drop the kept state of idle watches.
			for _, it := range h.idle {
				h.dropLocked(it, "dropped to make room for a new watch")
			}
			t, err = newTree(h.log, h.open, k, exclude, h.remove)
		}
		if err != nil {
			return nil, "", err
		}
		h.trees[k] = t
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.idle != nil {
		t.idle.Stop()
		t.idle = nil
		h.idle = slices.DeleteFunc(h.idle, func(x *tree) bool { return x == t })
	}
	t.subs[s] = true
	return t, t.j.version(t.j.seq), nil
}

// unsubscribe removes s; a tree left without subscribers is kept idle.
func (h *hub) unsubscribe(t *tree, s *sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t.mu.Lock()
	delete(t.subs, s)
	empty := len(t.subs) == 0 && t.stopd == nil
	t.mu.Unlock()
	if !empty || h.trees[t.key] != t {
		return
	}
	if h.retention <= 0 || h.maxIdle <= 0 {
		h.dropLocked(t, "no watch left")
		return
	}
	t.mu.Lock()
	t.idle = time.AfterFunc(h.retention, func() { h.expire(t) })
	t.mu.Unlock()
	h.idle = append(h.idle, t)
	for len(h.idle) > h.maxIdle {
		h.dropLocked(h.idle[0], "too many idle watches")
	}
}

func (h *hub) expire(t *tree) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t.mu.Lock()
	idle := len(t.subs) == 0
	t.mu.Unlock()
	if idle {
		h.dropLocked(t, "expired")
	}
}

// lookup returns the tree of k, if one is kept.
func (h *hub) lookup(k key) *tree {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.trees[k]
}

// dropLocked forgets t and closes it.
func (h *hub) dropLocked(t *tree, reason string) {
	h.forgetLocked(t)
	t.close(reason)
}

func (h *hub) forgetLocked(t *tree) {
	for k, x := range h.trees {
		if x == t {
			delete(h.trees, k)
		}
	}
	h.idle = slices.DeleteFunc(h.idle, func(x *tree) bool { return x == t })
	t.mu.Lock()
	if t.idle != nil {
		t.idle.Stop()
		t.idle = nil
	}
	t.mu.Unlock()
}

// remove is called by a tree that ended.
func (h *hub) remove(t *tree) {
	h.mu.Lock()
	h.forgetLocked(t)
	h.mu.Unlock()
}

// close ends every tree and waits for them.
func (h *hub) close(reason string) {
	h.mu.Lock()
	h.closed = true
	var all []*tree
	for _, t := range h.trees {
		all = append(all, t)
	}
	h.mu.Unlock()
	for _, t := range all {
		t.close(reason)
		<-t.done
	}
}
