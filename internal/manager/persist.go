package manager

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hutch-sh/hutch/internal/egress"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/sandbox"
	"github.com/hutch-sh/hutch/internal/snapshot"
)

// persistAcrossSessions: a sandbox with Persist set pushes, each time it
// falls asleep, a snapshot of its disk and a session record (the snapshot
// id and what it was configured with: env, exposed ports and their tokens,
// limits, sleep settings) to the shared blob store. A daemon that is asked
// for a name it does not know, on a fresh data dir or another machine,
// looks for that record and wakes the sandbox from it. Which daemon owns a
// name at a time is the cluster's business (etcd leases), not this one's.

// session is what the blob store keeps about a persisted sandbox.
type session struct {
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

// persist pushes b's disk, now that it sleeps; b.mu is held.
func (m *Manager) persist(ctx context.Context, b *box) error {
	st, err := m.snapshots()
	if err != nil {
		return err
	}
	if m.cfg.Remote == nil {
		return fmt.Errorf("persist sandbox %q: the daemon has no blob store (hutch serve --blobs): %w", b.rec.Name, errdefs.ErrFailedPrecondition)
	}
	upper := filepath.Join(m.dir(b.rec.ID), "upper")
	if err := os.MkdirAll(upper, 0o755); err != nil {
		return err
	}
	diffID, size, lowers, err := st.CaptureOver(ctx, upper, b.rec.Lowers)
	if err != nil {
		return err
	}
	snap := snapshot.Snapshot{ID: snapshot.NewID(), Sandbox: b.rec.Name, Image: b.rec.Image, Layer: diffID,
		Lowers: lowers, Env: b.rec.Env, Size: size, CreatedAt: time.Now().UTC()}
	if err := st.Put(snap); err != nil {
		return err
	}
	err = m.cfg.Remote.Push(ctx, snap.ID)
	if err == nil {
		err = m.cfg.Remote.SaveSession(ctx, b.rec.Name, session{
			Snapshot: snap.ID, Image: b.rec.Image, Env: b.rec.Env, Ports: b.rec.Ports,
			Limits: b.rec.Limits, SleepAfter: b.rec.SleepAfter, KeepAlive: b.rec.KeepAlive, Policy: b.rec.Policy,
		})
	}
	if err != nil {
		_ = m.DeleteSnapshot(context.WithoutCancel(ctx), snap.ID)
		return fmt.Errorf("persist sandbox %q: %w", b.rec.Name, err)
	}
	prev := b.rec.Persisted
	b.rec.Persisted = snap.ID
	if prev != "" && prev != b.rec.FromSnapshot {
		if err := m.DeleteSnapshot(ctx, prev); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			m.log.Warn("drop previous persisted snapshot", "sandbox", b.rec.Name, "snapshot", prev, "err", err)
		}
	}
	m.log.Info("sandbox persisted", "sandbox", b.rec.Name, "snapshot", snap.ID, "size", size)
	return nil
}

// resume fills a new sandbox's options from a persisted session of name,
// if the blob store has one; it reports whether it did.
func (m *Manager) resume(ctx context.Context, name string, opts *sandbox.CreateOptions) (*session, error) {
	if m.cfg.Remote == nil || opts.FromSnapshot != "" {
		return nil, nil
	}
	var s session
	if err := m.cfg.Remote.LoadSession(ctx, name, &s); err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil, nil
		}
		return nil, err
	}
	opts.FromSnapshot = s.Snapshot
	return &s, nil
}
