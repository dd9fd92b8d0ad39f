package manager

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hutch-sh/hutch/internal/catalog"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/sandbox"
	"github.com/hutch-sh/hutch/internal/snapshot"
)

// Persisted sandboxes (persistAcrossSessions, see internal/catalog): the
// disk is captured under the sandbox's lock as it falls asleep; the push of
// the capture and its session runs after the lock is let go.

// pending is a capture of a persisted sandbox's disk, made under its lock,
// waiting to be pushed without it.
type pending struct {
	b    *box
	seq  uint64 // b.pushSeq at capture: a later capture supersedes it
	snap snapshot.Snapshot
	sess catalog.Session
}

// capturePersist snapshots b's disk locally, now that it sleeps, for push
// to send; b.mu is held. Only local I/O happens here: a slow blob store
// never holds up the calls that wait on b.mu.
func (m *Manager) capturePersist(ctx context.Context, b *box) (*pending, error) {
	if err := m.snaps.Enabled(); err != nil {
		return nil, err
	}
	if m.snaps.Remote() == nil {
		return nil, fmt.Errorf("persist sandbox %q: the daemon has no blob store (hutch serve --blobs): %w", b.rec.Name, errdefs.ErrFailedPrecondition)
	}
	upper := filepath.Join(m.dir(b.rec.ID), "upper")
	if err := os.MkdirAll(upper, 0o755); err != nil {
		return nil, err
	}
	snap, err := m.snaps.Capture(ctx, b.rec, upper, 0, false)
	if err != nil {
		return nil, err
	}
	b.pushSeq++
	return &pending{b: b, seq: b.pushSeq, snap: snap, sess: catalog.SessionOf(b.rec, snap.ID)}, nil
}

// push sends a capture and its session to the blob store, then records it
// as the sandbox's persisted snapshot; b.mu must not be held. Pushes of one
// sandbox run one at a time, and one overtaken by a later capture, or by
// the sandbox's removal, is dropped: the session always names the newest.
func (m *Manager) push(ctx context.Context, p *pending) error {
	b := p.b
	b.pushMu.Lock()
	defer b.pushMu.Unlock()
	if b.dropped || p.seq < b.pushed {
		m.snaps.Drop(context.WithoutCancel(ctx), p.snap.ID)
		return nil
	}
	if err := m.snaps.SaveSession(ctx, p.snap.Sandbox, p.sess); err != nil {
		return fmt.Errorf("persist sandbox %q: %w", p.snap.Sandbox, err)
	}
	b.pushed = p.seq
	b.mu.Lock()
	prev := b.rec.Persisted
	if !b.removed {
		rec := b.rec
		rec.Persisted = p.snap.ID
		if err := m.store.Put(ctx, rec.Name, rec); err != nil {
			m.log.Warn("record persisted snapshot", "sandbox", rec.Name, "snapshot", p.snap.ID, "err", err)
		} else {
			b.rec = rec
		}
	}
	fromSnapshot := b.rec.FromSnapshot
	b.mu.Unlock()
	if prev != "" && prev != fromSnapshot {
		if err := m.snaps.Delete(ctx, prev); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			m.log.Warn("drop previous persisted snapshot", "sandbox", p.snap.Sandbox, "snapshot", prev, "err", err)
		}
	}
	m.log.Info("sandbox persisted", "sandbox", p.snap.Sandbox, "snapshot", p.snap.ID, "size", p.snap.Size)
	return nil
}

// dropSession removes removed sandbox b's persisted session for good,
// after any push of it in flight.
func (m *Manager) dropSession(ctx context.Context, b *box, name string) error {
	b.pushMu.Lock()
	defer b.pushMu.Unlock()
	b.dropped = true
	return m.snaps.DropSession(ctx, name)
}

// resume fills a new sandbox's options from a persisted session of name,
// if the blob store has one; it reports whether it did.
func (m *Manager) resume(ctx context.Context, name string, opts *sandbox.CreateOptions) (*catalog.Session, error) {
	if opts.FromSnapshot != "" {
		return nil, nil
	}
	s, err := m.snaps.LoadSession(ctx, name)
	if err != nil || s == nil {
		return nil, err
	}
	opts.FromSnapshot = s.Snapshot
	return s, nil
}
