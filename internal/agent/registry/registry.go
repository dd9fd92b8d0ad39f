// Package registry holds what an agent service keeps by id (running
// execs, background processes, sessions, terminals, code contexts): ids
// given or made up,
// get-or-create, lookups, listing, removal, a cap on finished entries, and
// a close that refuses new entries once the agent shuts down.
package registry

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

var validID = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// CheckID checks an id a caller chose for a kind of entry.
func CheckID(kind, id string) error {
	if !validID.MatchString(id) {
		return fmt.Errorf("%s id %q: want 1-64 characters of [A-Za-z0-9_.-]: %w", kind, id, errdefs.ErrInvalidArgument)
	}
	return nil
}

// NewID returns a random id of 16 hex digits.
func NewID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Options tune a Registry; the zero value is a plain one.
type Options[T any] struct {
	// Reusable reports whether an entry's id may be taken by a new entry
	// (a process that has ended); nil: never.
	Reusable func(T) bool
	// Ended reports whether an entry is finished and since when; with
	// MaxEnded set, Prune forgets the oldest finished ones beyond it.
	Ended    func(T) (time.Time, bool)
	MaxEnded int
	// Max bounds the entries; 0: no bound.
	Max int
}

// Registry maps ids to entries of one kind ("process", "session",
// "terminal"), which names them in errors.
type Registry[T comparable] struct {
	kind string
	opts Options[T]

	mu     sync.Mutex
	byID   map[string]T
	closed bool
}

// New returns an empty Registry.
func New[T comparable](kind string, opts Options[T]) *Registry[T] {
	return &Registry[T]{kind: kind, opts: opts, byID: make(map[string]T)}
}

// Add creates an entry under id, or under a new random id when id is
// empty. create runs under the registry's lock, so two calls never take one
// id; it gets the id and may fail, leaving nothing behind.
func (r *Registry[T]) Add(id string, create func(id string) (T, error)) (T, error) {
	var zero T
	if id != "" {
		if err := CheckID(r.kind, id); err != nil {
			return zero, err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.openLocked(); err != nil {
		return zero, err
	}
	if id == "" {
		for id = NewID(); r.takenLocked(id); id = NewID() {
		}
	} else if r.takenLocked(id) {
		return zero, fmt.Errorf("%s %q: one with this id exists: %w", r.kind, id, errdefs.ErrAlreadyExists)
	}
	return r.createLocked(id, create)
}

// GetOrCreate returns the entry under id, creating it with create if there
// is none, as sandboxes are by name. created says which happened.
func (r *Registry[T]) GetOrCreate(id string, create func(id string) (T, error)) (v T, created bool, err error) {
	if err := CheckID(r.kind, id); err != nil {
		return v, false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.openLocked(); err != nil {
		return v, false, err
	}
	if old, ok := r.byID[id]; ok && !r.reusable(old) {
		return old, false, nil
	}
	v, err = r.createLocked(id, create)
	return v, err == nil, err
}

func (r *Registry[T]) openLocked() error {
	if r.closed {
		return fmt.Errorf("new %s: the agent is shutting down: %w", r.kind, errdefs.ErrUnavailable)
	}
	return nil
}

func (r *Registry[T]) takenLocked(id string) bool {
	old, ok := r.byID[id]
	return ok && !r.reusable(old)
}

func (r *Registry[T]) reusable(v T) bool { return r.opts.Reusable != nil && r.opts.Reusable(v) }

func (r *Registry[T]) createLocked(id string, create func(string) (T, error)) (T, error) {
	if _, replaces := r.byID[id]; !replaces && r.opts.Max > 0 && len(r.byID) >= r.opts.Max {
		var zero T
		return zero, fmt.Errorf("%s: at most %d; delete one first: %w", r.kind, r.opts.Max, errdefs.ErrResourceExhausted)
	}
	v, err := create(id)
	if err != nil {
		var zero T
		return zero, err
	}
	r.byID[id] = v
	return v, nil
}

// Get returns the entry under id.
func (r *Registry[T]) Get(id string) (T, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.byID[id]
	if !ok {
		return v, fmt.Errorf("%s %q: %w", r.kind, id, errdefs.ErrNotFound)
	}
	return v, nil
}

// List returns every entry, in no particular order.
func (r *Registry[T]) List() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]T, 0, len(r.byID))
	for _, v := range r.byID {
		out = append(out, v)
	}
	return out
}

// Sorted returns every entry ordered by key, then id.
func Sorted[T comparable](r *Registry[T], key func(T) time.Time) []T {
	r.mu.Lock()
	ids := make([]string, 0, len(r.byID))
	keys := make(map[string]time.Time, len(r.byID))
	vals := make(map[string]T, len(r.byID))
	for id, v := range r.byID {
		ids = append(ids, id)
		keys[id], vals[id] = key(v), v
	}
	r.mu.Unlock()
	sort.Slice(ids, func(i, j int) bool {
		if a, b := keys[ids[i]], keys[ids[j]]; !a.Equal(b) {
			return a.Before(b)
		}
		return ids[i] < ids[j]
	})
	out := make([]T, len(ids))
	for i, id := range ids {
		out[i] = vals[id]
	}
	return out
}

// Remove forgets the entry under id if it is still v (and not a newer one
// that took its id), and reports whether it did.
func (r *Registry[T]) Remove(id string, v T) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.byID[id]; ok && old == v {
		delete(r.byID, id)
		return true
	}
	return false
}

// Prune forgets the oldest ended entries beyond Options.MaxEnded.
func (r *Registry[T]) Prune() {
	if r.opts.Ended == nil || r.opts.MaxEnded <= 0 {
		return
	}
	type ended struct {
		id string
		at time.Time
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []ended
	for id, v := range r.byID {
		if at, ok := r.opts.Ended(v); ok {
			all = append(all, ended{id, at})
		}
	}
	if len(all) <= r.opts.MaxEnded {
		return
	}
	sort.Slice(all, func(i, j int) bool { return all[i].at.Before(all[j].at) })
	for _, e := range all[:len(all)-r.opts.MaxEnded] {
		delete(r.byID, e.id)
	}
}

// Close refuses new entries from now on, forgets every entry and returns
// them, for the caller to stop.
func (r *Registry[T]) Close() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	out := make([]T, 0, len(r.byID))
	for _, v := range r.byID {
		out = append(out, v)
	}
	clear(r.byID)
	return out
}
