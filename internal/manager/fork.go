package manager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hutch-sh/hutch/internal/catalog"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/sandbox"
	"github.com/hutch-sh/hutch/internal/snapshot"
)

// Snapshots and forks: a snapshot captures a sandbox's upper dir, with its
// processes frozen, as a content-addressed layer (kept by internal/catalog);
// a fork is a new sandbox whose overlay stacks that layer (read-only,
// shared, never copied) over the lowers the parent had, under an upper dir
// of its own.

// SnapshotInfo is a snapshot with the sandboxes created from it; the API
// names it here.
type SnapshotInfo = catalog.Info

// Snapshot captures sandbox name's disk; it keeps running (or sleeping).
// ttl 0 keeps the snapshot until it is deleted. With a remote store the
// snapshot is pushed too, after the sandbox is thawed and unlocked; if the
// push fails there is no snapshot.
func (m *Manager) Snapshot(ctx context.Context, name string, ttl time.Duration) (snapshot.Snapshot, error) {
	snap, err := m.capture(ctx, name, ttl)
	if err != nil || m.snaps.Remote() == nil {
		return snap, err
	}
	t0 := time.Now()
	if err := m.snaps.Push(ctx, snap.ID); err != nil {
		return snapshot.Snapshot{}, fmt.Errorf("snapshot of %q: %w", name, err)
	}
	m.log.Info("snapshot pushed", "snapshot", snap.ID, "took", time.Since(t0).Round(time.Millisecond))
	return snap, nil
}

func (m *Manager) capture(ctx context.Context, name string, ttl time.Duration) (snapshot.Snapshot, error) {
	if err := m.snaps.Enabled(); err != nil {
		return snapshot.Snapshot{}, err
	}
	if ttl < 0 {
		return snapshot.Snapshot{}, fmt.Errorf("ttl %s: must not be negative: %w", ttl, errdefs.ErrInvalidArgument)
	}
	b, err := m.existing(name)
	if err != nil {
		return snapshot.Snapshot{}, err
	}
	defer b.mu.Unlock()
	b.lastActive = time.Now()
	upper := filepath.Join(m.dir(b.rec.ID), "upper")
	if err := os.MkdirAll(upper, 0o755); err != nil {
		return snapshot.Snapshot{}, err
	}
	t0 := time.Now()
	if b.conn != nil {
		fr, ok := m.rt.(sandbox.Freezer)
		if !ok {
			return snapshot.Snapshot{}, fmt.Errorf("snapshot of %q: runtime %s cannot freeze a running sandbox: %w", name, m.rt.Name(), errdefs.ErrFailedPrecondition)
		}
		thaw, err := fr.Freeze(ctx, b.rec.ID)
		if err != nil {
			return snapshot.Snapshot{}, fmt.Errorf("snapshot of %q: %w", name, err)
		}
		defer thaw()
	}
	snap, err := m.snaps.Capture(ctx, b.rec, upper, ttl, true)
	if err != nil {
		return snapshot.Snapshot{}, err
	}
	m.log.Info("snapshot taken", "sandbox", name, "snapshot", snap.ID, "layer", snap.Layer, "size", snap.Size, "took", time.Since(t0).Round(time.Microsecond))
	return snap, nil
}

// records returns every persisted sandbox record.
func (m *Manager) records(ctx context.Context) ([]sandbox.Record, error) {
	var recs []sandbox.Record
	err := m.store.Each(ctx, func(_ string, raw []byte) error {
		var r sandbox.Record
		if err := json.Unmarshal(raw, &r); err != nil {
			return err
		}
		recs = append(recs, r)
		return nil
	})
	return recs, err
}

// ListSnapshots lists the snapshots of sandbox name (every one if "").
func (m *Manager) ListSnapshots(ctx context.Context, name string) ([]SnapshotInfo, error) {
	return m.snaps.List(ctx, name)
}

// DeleteSnapshot deletes snapshot id, refusing while sandboxes created from
// it exist, and removes the layers nothing stands on any more.
func (m *Manager) DeleteSnapshot(ctx context.Context, id string) error {
	return m.snaps.Delete(ctx, id)
}

// Fork creates sandboxes news with the disk of snapshot snapID, or of a
// snapshot of name taken now when snapID is "". It returns the snapshot id
// and the new sandboxes; on failure the ones it made are removed again.
func (m *Manager) Fork(ctx context.Context, name string, news []string, snapID string, opts sandbox.CreateOptions) (string, []sandbox.Record, error) {
	if len(news) == 0 {
		return "", nil, fmt.Errorf("fork: no names for the new sandboxes: %w", errdefs.ErrInvalidArgument)
	}
	seen := map[string]bool{}
	for _, n := range news {
		if err := sandbox.ValidateName(n); err != nil {
			return "", nil, err
		}
		if seen[n] {
			return "", nil, fmt.Errorf("fork: name %q given twice: %w", n, errdefs.ErrInvalidArgument)
		}
		seen[n] = true
		if _, err := m.Get(n); err == nil {
			return "", nil, fmt.Errorf("sandbox %q: %w", n, errdefs.ErrAlreadyExists)
		}
	}
	if snapID == "" {
		if name == "" {
			return "", nil, fmt.Errorf("fork: name a sandbox or a snapshot: %w", errdefs.ErrInvalidArgument)
		}
		snap, err := m.Snapshot(ctx, name, 0)
		if err != nil {
			return "", nil, err
		}
		snapID = snap.ID
	}
	opts.FromSnapshot = snapID
	if opts.Policy == nil && name != "" {
		// Forks of a sandbox keep its egress policy unless given another:
		// forking never widens what the original may reach.
		if src, err := m.Get(name); err == nil {
			opts.Policy = src.Policy
		}
	}
	recs := make([]sandbox.Record, len(news))
	errs := make([]error, len(news))
	var wg sync.WaitGroup
	for i, n := range news {
		wg.Go(func() {
			rec, _, created, err := m.Ensure(ctx, n, opts)
			if err == nil && !created {
				err = fmt.Errorf("sandbox %q: %w", n, errdefs.ErrAlreadyExists)
				rec = sandbox.Record{}
			}
			recs[i], errs[i] = rec, err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for i, r := range recs {
			if errs[i] == nil && r.ID != "" {
				_ = m.Delete(context.WithoutCancel(ctx), r.Name)
			}
		}
		return "", nil, err
	}
	return snapID, recs, nil
}
