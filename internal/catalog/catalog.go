// Package catalog keeps a daemon's snapshots of sandboxes: it captures
// them (a content-addressed layer of a sandbox's disk), lists them with
// the sandboxes made from them, resolves one as a new sandbox's root,
// deletes and expires them with the layers only they used, and pushes
// them and persisted sessions to a shared blob store. It never takes a
// sandbox's lock: the manager holds that around a capture, and pushes
// after letting go of it.
package catalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/sandbox"
	"github.com/hutch-sh/hutch/internal/snapshot"
)

// Local stores snapshot records and layers on this node (internal/snapshot);
// Remote is its counterpart shared by nodes.
type Local interface {
	CaptureOver(ctx context.Context, upper string, lowers []string) (diffID string, size int64, newLowers []string, err error)
	Put(ctx context.Context, rec snapshot.Snapshot) error
	Get(ctx context.Context, id string) (snapshot.Snapshot, error)
	List(ctx context.Context) ([]snapshot.Snapshot, error)
	Delete(ctx context.Context, id string) error
	GC(ctx context.Context, inUse []string) ([]string, error)
}

var _ Local = (*snapshot.Store)(nil)

// Remote pushes snapshots to a blob store shared by nodes, pulls the ones
// this node lacks, and keeps the sessions of persisted sandboxes.
type Remote interface {
	Push(ctx context.Context, id string) error
	Pull(ctx context.Context, id string) (snapshot.Snapshot, error)
	Forget(ctx context.Context, id string) error
	SaveSession(ctx context.Context, name string, v any) error
	LoadSession(ctx context.Context, name string, v any) error
	DropSession(ctx context.Context, name string) error
}

var _ Remote = snapshot.Remote{}

// Records lists every sandbox the daemon has (the metadata store's view):
// what snapshots are used by, and which layers are in use.
type Records func(ctx context.Context) ([]sandbox.Record, error)

// MaxLowers bounds a sandbox's overlay lower layers (image layers, and at
// most snapshot.FlattenAt snapshot layers): one mount's options must fit
// in a page.
const MaxLowers = 48

// Info is a snapshot with the sandboxes created from it.
type Info struct {
	snapshot.Snapshot
	UsedBy []string
}

// Catalog is a daemon's snapshots.
type Catalog struct {
	log     *slog.Logger
	st      Local  // nil: snapshots are off
	remote  Remote // nil: no blob store
	records Records

	// mu orders deletion and GC against sandboxes being created from
	// snapshots (see Hold).
	mu sync.Mutex
}

// New returns the catalog over st (nil disables snapshots) and remote
// (nil: none).
func New(log *slog.Logger, st Local, remote Remote, records Records) *Catalog {
	return &Catalog{log: log, st: st, remote: remote, records: records}
}

// Remote is the blob store, or nil.
func (c *Catalog) Remote() Remote { return c.remote }

// Enabled returns an error when the daemon has no snapshots configured.
func (c *Catalog) Enabled() error {
	_, err := c.store()
	return err
}

func (c *Catalog) store() (Local, error) {
	if c.st == nil {
		return nil, fmt.Errorf("snapshots are not configured on this daemon: %w", errdefs.ErrFailedPrecondition)
	}
	return c.st, nil
}

// Capture snapshots the upper dir of rec as a layer over its lowers. The
// caller keeps upper still meanwhile (the sandbox frozen or asleep, its
// lock held). ttl 0 keeps the snapshot until it is deleted; stack refuses
// a snapshot too deep to stack a sandbox on.
func (c *Catalog) Capture(ctx context.Context, rec sandbox.Record, upper string, ttl time.Duration, stack bool) (snapshot.Snapshot, error) {
	st, err := c.store()
	if err != nil {
		return snapshot.Snapshot{}, err
	}
	diffID, size, lowers, err := st.CaptureOver(ctx, upper, rec.Lowers)
	if err != nil {
		return snapshot.Snapshot{}, fmt.Errorf("snapshot of %q: %w", rec.Name, err)
	}
	if stack && len(lowers) > MaxLowers {
		return snapshot.Snapshot{}, fmt.Errorf("snapshot of %q: its image has too many layers to stack a snapshot on (%d, at most %d): %w", rec.Name, len(lowers), MaxLowers, errdefs.ErrResourceExhausted)
	}
	now := time.Now().UTC()
	snap := snapshot.Snapshot{
		ID:        snapshot.NewID(),
		Sandbox:   rec.Name,
		Image:     rec.Image,
		Layer:     diffID,
		Lowers:    lowers,
		Env:       rec.Env,
		Size:      size,
		CreatedAt: now,
	}
	if ttl > 0 {
		snap.ExpiresAt = now.Add(ttl)
	}
	if err := st.Put(ctx, snap); err != nil {
		return snapshot.Snapshot{}, err
	}
	return snap, nil
}

// Push sends snapshot id to the blob store, if there is one; a snapshot
// that could not be pushed is deleted.
func (c *Catalog) Push(ctx context.Context, id string) error {
	if c.remote == nil {
		return nil
	}
	if err := c.remote.Push(ctx, id); err != nil {
		c.Drop(context.WithoutCancel(ctx), id)
		return err
	}
	return nil
}

// Drop deletes a snapshot nobody was told about (one whose push failed or
// was superseded), logging what goes wrong.
func (c *Catalog) Drop(ctx context.Context, id string) {
	if err := c.Delete(ctx, id); err != nil {
		c.log.Warn("drop snapshot that was not pushed", "snapshot", id, "err", err)
	}
}

// List lists the snapshots of sandbox name (every one if "").
func (c *Catalog) List(ctx context.Context, name string) ([]Info, error) {
	st, err := c.store()
	if err != nil {
		return nil, err
	}
	snaps, err := st.List(ctx)
	if err != nil {
		return nil, err
	}
	recs, err := c.records(ctx)
	if err != nil {
		return nil, err
	}
	out := []Info{}
	for _, s := range snaps {
		if name != "" && s.Sandbox != name {
			continue
		}
		out = append(out, Info{Snapshot: s, UsedBy: usedBy(recs, s.ID)})
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

// Delete deletes snapshot id, refusing while sandboxes created from it
// exist, and removes the layers nothing stands on any more.
func (c *Catalog) Delete(ctx context.Context, id string) error {
	st, err := c.store()
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := st.Get(ctx, id); err != nil {
		return err
	}
	recs, err := c.records(ctx)
	if err != nil {
		return err
	}
	if users := usedBy(recs, id); len(users) > 0 {
		return fmt.Errorf("snapshot %s: sandboxes %s were created from it: remove them first: %w", id, strings.Join(users, ", "), errdefs.ErrFailedPrecondition)
	}
	if err := st.Delete(ctx, id); err != nil {
		return err
	}
	if c.remote != nil {
		if err := c.remote.Forget(ctx, id); err != nil {
			return fmt.Errorf("delete snapshot %s from the blob store: %w", id, err)
		}
	}
	return c.gc(ctx, st, recs)
}

// Collect deletes expired snapshots nothing was created from and removes
// unreferenced layers.
func (c *Catalog) Collect(ctx context.Context) error {
	st, err := c.store()
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	recs, err := c.records(ctx)
	if err != nil {
		return err
	}
	snaps, err := st.List(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, s := range snaps {
		if s.Expired(now) && len(usedBy(recs, s.ID)) == 0 {
			if err := st.Delete(ctx, s.ID); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				return err
			}
			c.log.Info("expired snapshot deleted", "snapshot", s.ID)
		}
	}
	return c.gc(ctx, st, recs)
}

func (c *Catalog) gc(ctx context.Context, st Local, recs []sandbox.Record) error {
	var inUse []string
	for _, r := range recs {
		inUse = append(inUse, r.Lowers...)
	}
	_, err := st.GC(ctx, inUse)
	return err
}

// Hold keeps snapshots from being deleted or collected until release is
// called: a sandbox being created from one holds it until its record,
// which names the snapshot, is persisted.
func (c *Catalog) Hold() (release func()) {
	c.mu.Lock()
	return c.mu.Unlock
}

// Resolve returns the root of a new sandbox made from snapshot id, pulled
// from the blob store if this node lacks it; the caller holds it (Hold).
func (c *Catalog) Resolve(ctx context.Context, id, wantImage string) (sandbox.Rootfs, error) {
	st, err := c.store()
	if err != nil {
		return sandbox.Rootfs{}, err
	}
	snap, err := st.Get(ctx, id)
	if errors.Is(err, errdefs.ErrNotFound) && c.remote != nil {
		snap, err = c.remote.Pull(ctx, id)
	}
	if err != nil {
		return sandbox.Rootfs{}, err
	}
	if wantImage != "" && wantImage != snap.Image {
		return sandbox.Rootfs{}, fmt.Errorf("snapshot %s is of image %q, not %q: %w", id, snap.Image, wantImage, errdefs.ErrInvalidArgument)
	}
	return sandbox.Rootfs{Image: snap.Image, Lowers: snap.Lowers, Env: snap.Env}, nil
}
