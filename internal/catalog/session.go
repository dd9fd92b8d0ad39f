package catalog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hutch-sh/hutch/internal/egress"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

// persistAcrossSessions: a sandbox with Persist set pushes, each time it
// falls asleep, a snapshot of its disk and a session record (the snapshot
// id and what it was configured with: env, exposed ports and their tokens,
// limits, sleep settings) to the shared blob store. A daemon that is asked
// for a name it does not know, on a fresh data dir or another machine,
// looks for that record and wakes the sandbox from it. Which daemon owns a
// name at a time is the cluster's business (etcd leases), not this one's.

// Session is what the blob store keeps about a persisted sandbox.
type Session struct {
	Snapshot   string         `json:"snapshot"`
	Image      string         `json:"image"`
	Env        []string       `json:"env"`
	Ports      map[int]string `json:"ports,omitempty"`
	Limits     sandbox.Limits `json:"limits"`
	SleepAfter time.Duration  `json:"sleepAfter,omitempty"`
	KeepAlive  bool           `json:"keepAlive,omitempty"`
	// Policy travels with the sandbox: a restricted one stays restricted
	// wherever it wakes.
	Policy *egress.Policy `json:"policy,omitempty"`
}

// SessionOf is the session of rec, its disk in snapshot id.
func SessionOf(rec sandbox.Record, id string) Session {
	return Session{Snapshot: id, Image: rec.Image, Env: rec.Env, Ports: rec.Ports,
		Limits: rec.Limits, SleepAfter: rec.SleepAfter, KeepAlive: rec.KeepAlive, Policy: rec.Policy}
}

func (c *Catalog) remoteFor(what string) (Remote, error) {
	if c.remote == nil {
		return nil, fmt.Errorf("%s: the daemon has no blob store (hutch serve --blobs): %w", what, errdefs.ErrFailedPrecondition)
	}
	return c.remote, nil
}

// SaveSession pushes snapshot s.Snapshot and then the session naming it,
// for sandbox name; on failure the snapshot is deleted.
func (c *Catalog) SaveSession(ctx context.Context, name string, s Session) error {
	r, err := c.remoteFor("persist sandbox " + name)
	if err != nil {
		return err
	}
	err = r.Push(ctx, s.Snapshot)
	if err == nil {
		err = r.SaveSession(ctx, name, s)
	}
	if err != nil {
		c.Drop(context.WithoutCancel(ctx), s.Snapshot)
		return err
	}
	return nil
}

// LoadSession returns the persisted session of name, nil if there is none
// (or no blob store).
func (c *Catalog) LoadSession(ctx context.Context, name string) (*Session, error) {
	if c.remote == nil {
		return nil, nil
	}
	var s Session
	if err := c.remote.LoadSession(ctx, name, &s); err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil, nil
		}
		return nil, err
	}
	return &s, nil
}

// DropSession removes name's persisted session for good.
func (c *Catalog) DropSession(ctx context.Context, name string) error {
	r, err := c.remoteFor("drop session of " + name)
	if err != nil {
		return err
	}
	return r.DropSession(ctx, name)
}
