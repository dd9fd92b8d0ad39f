package manager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/sandbox"
	"github.com/hutch-sh/hutch/internal/snapshot"
)

// Snapshots and forks: a snapshot captures a sandbox's upper dir, with its
// processes frozen, as a content-addressed layer; a fork is a new sandbox
// whose overlay stacks that layer (read-only, shared, never copied) over
// the lowers the parent had, under an upper dir of its own.

// Snapshots stores snapshot records and layers (internal/snapshot).
type Snapshots interface {
	CaptureOver(ctx context.Context, upper string, lowers []string) (diffID string, size int64, newLowers []string, err error)
	Put(rec snapshot.Snapshot) error
	Get(id string) (snapshot.Snapshot, error)
	List() ([]snapshot.Snapshot, error)
	Delete(id string) error
	GC(ctx context.Context, inUse []string) ([]string, error)
}

var _ Snapshots = (*snapshot.Store)(nil)

// Remote pushes snapshots to a blob store shared by nodes, and pulls the
// ones this node lacks.
type Remote interface {
	Push(ctx context.Context, id string) error
	Pull(ctx context.Context, id string) (snapshot.Snapshot, error)
	Forget(ctx context.Context, id string) error
	SaveSession(ctx context.Context, name string, v any) error
	LoadSession(ctx context.Context, name string, v any) error
	DropSession(ctx context.Context, name string) error
}

var _ Remote = snapshot.Remote{}

// MaxLowers bounds a sandbox's overlay lower layers (image layers, and at
// most snapshot.FlattenAt snapshot layers): one mount's options must fit
// in a page.
const MaxLowers = 48

// SnapshotInfo is a snapshot with the sandboxes created from it.
type SnapshotInfo struct {
	snapshot.Snapshot
	UsedBy []string
}

func (m *Manager) snapshots() (Snapshots, error) {
	if m.cfg.Snapshots == nil {
		return nil, fmt.Errorf("snapshots are not configured on this daemon: %w", errdefs.ErrFailedPrecondition)
	}
	return m.cfg.Snapshots, nil
}

// Snapshot captures sandbox name's disk; it keeps running (or sleeping).
// ttl 0 keeps the snapshot until it is deleted. With a remote store the
// snapshot is pushed too, after the sandbox is thawed and unlocked; if the
// push fails there is no snapshot.
func (m *Manager) Snapshot(ctx context.Context, name string, ttl time.Duration) (snapshot.Snapshot, error) {
	snap, err := m.capture(ctx, name, ttl)
	if err != nil || m.cfg.Remote == nil {
		return snap, err
	}
	t0 := time.Now()
	if err := m.cfg.Remote.Push(ctx, snap.ID); err != nil {
		if derr := m.DeleteSnapshot(context.WithoutCancel(ctx), snap.ID); derr != nil {
			m.log.Warn("drop snapshot that was not pushed", "snapshot", snap.ID, "err", derr)
		}
		return snapshot.Snapshot{}, fmt.Errorf("snapshot of %q: %w", name, err)
	}
	m.log.Info("snapshot pushed", "snapshot", snap.ID, "took", time.Since(t0).Round(time.Millisecond))
	return snap, nil
}

func (m *Manager) capture(ctx context.Context, name string, ttl time.Duration) (snapshot.Snapshot, error) {
	st, err := m.snapshots()
	if err != nil {
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
		thaw, err := m.freeze(b.rec.ID)
		if err != nil {
			return snapshot.Snapshot{}, fmt.Errorf("snapshot of %q: %w", name, err)
		}
		defer thaw()
	}
	diffID, size, lowers, err := st.CaptureOver(ctx, upper, b.rec.Lowers)
	if err != nil {
		return snapshot.Snapshot{}, fmt.Errorf("snapshot of %q: %w", name, err)
	}
	if len(lowers) > MaxLowers {
		return snapshot.Snapshot{}, fmt.Errorf("snapshot of %q: its image has too many layers to stack a snapshot on (%d, at most %d): %w", name, len(lowers), MaxLowers, errdefs.ErrResourceExhausted)
	}
	now := time.Now().UTC()
	snap := snapshot.Snapshot{
		ID:        snapshot.NewID(),
		Sandbox:   name,
		Image:     b.rec.Image,
		Layer:     diffID,
		Lowers:    lowers,
		Env:       b.rec.Env,
		Size:      size,
		CreatedAt: now,
	}
	if ttl > 0 {
		snap.ExpiresAt = now.Add(ttl)
	}
	if err := st.Put(snap); err != nil {
		return snapshot.Snapshot{}, err
	}
	m.log.Info("snapshot taken", "sandbox", name, "snapshot", snap.ID, "layer", diffID, "size", size, "took", time.Since(t0).Round(time.Microsecond))
	return snap, nil
}

// records returns every persisted sandbox record.
func (m *Manager) records() ([]sandbox.Record, error) {
	var recs []sandbox.Record
	err := m.store.Each(func(_ string, raw []byte) error {
		var r sandbox.Record
		if err := json.Unmarshal(raw, &r); err != nil {
			return err
		}
		recs = append(recs, r)
		return nil
	})
	return recs, err
}

// ListSnapshots lists the snapshots of sandbox (every one if "").
func (m *Manager) ListSnapshots(sandbox string) ([]SnapshotInfo, error) {
	st, err := m.snapshots()
	if err != nil {
		return nil, err
	}
	snaps, err := st.List()
	if err != nil {
		return nil, err
	}
	recs, err := m.records()
	if err != nil {
		return nil, err
	}
	out := []SnapshotInfo{}
	for _, s := range snaps {
		if sandbox != "" && s.Sandbox != sandbox {
			continue
		}
		out = append(out, SnapshotInfo{Snapshot: s, UsedBy: usedBy(recs, s.ID)})
	}
	return out, nil
}

func usedBy(recs []sandbox.Record, id string) []string {
	var names []string
	for _, r := range recs {
		if r.FromSnapshot == id {
			names = append(names, r.Name)
		}
	}
	return names
}

// DeleteSnapshot deletes snapshot id, refusing while sandboxes created from
// it exist, and removes the layers nothing stands on any more.
func (m *Manager) DeleteSnapshot(ctx context.Context, id string) error {
	st, err := m.snapshots()
	if err != nil {
		return err
	}
	m.snapMu.Lock()
	defer m.snapMu.Unlock()
	if _, err := st.Get(id); err != nil {
		return err
	}
	recs, err := m.records()
	if err != nil {
		return err
	}
	if users := usedBy(recs, id); len(users) > 0 {
		return fmt.Errorf("snapshot %s: sandboxes %s were created from it: remove them first: %w", id, strings.Join(users, ", "), errdefs.ErrFailedPrecondition)
	}
	if err := st.Delete(id); err != nil {
		return err
	}
	if m.cfg.Remote != nil {
		if err := m.cfg.Remote.Forget(ctx, id); err != nil {
			return fmt.Errorf("delete snapshot %s from the blob store: %w", id, err)
		}
	}
	return m.collectLocked(ctx, st, recs)
}

// collect deletes expired snapshots nothing was created from and removes
// unreferenced layers.
func (m *Manager) collect(ctx context.Context) error {
	st, err := m.snapshots()
	if err != nil {
		return nil
	}
	m.snapMu.Lock()
	defer m.snapMu.Unlock()
	recs, err := m.records()
	if err != nil {
		return err
	}
	snaps, err := st.List()
	if err != nil {
		return err
	}
	now := time.Now()
	for _, s := range snaps {
		if s.Expired(now) && len(usedBy(recs, s.ID)) == 0 {
			if err := st.Delete(s.ID); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				return err
			}
			m.log.Info("expired snapshot deleted", "snapshot", s.ID)
		}
	}
	return m.collectLocked(ctx, st, recs)
}

func (m *Manager) collectLocked(ctx context.Context, st Snapshots, recs []sandbox.Record) error {
	var inUse []string
	for _, r := range recs {
		inUse = append(inUse, r.Lowers...)
	}
	_, err := st.GC(ctx, inUse)
	return err
}

// fromSnapshot resolves a new sandbox's root from snapshot id. m.snapMu is
// held until the record is persisted, so a concurrent delete sees it.
func (m *Manager) fromSnapshot(ctx context.Context, id, wantImage string) (Rootfs, error) {
	st, err := m.snapshots()
	if err != nil {
		return Rootfs{}, err
	}
	snap, err := st.Get(id)
	if errors.Is(err, errdefs.ErrNotFound) && m.cfg.Remote != nil {
		snap, err = m.cfg.Remote.Pull(ctx, id)
	}
	if err != nil {
		return Rootfs{}, err
	}
	if wantImage != "" && wantImage != snap.Image {
		return Rootfs{}, fmt.Errorf("snapshot %s is of image %q, not %q: %w", id, snap.Image, wantImage, errdefs.ErrInvalidArgument)
	}
	return Rootfs{Image: snap.Image, Lowers: snap.Lowers, Env: snap.Env}, nil
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
