package manager

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/hutch-sh/hutch/internal/pool"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

// The warm pool (internal/pool) keeps sandboxes of the default image and
// instance type running without a name, so that creating one is a rename:
// set the hostname, write the record, hand out the agent. They are not
// persisted; a daemon that dies leaves them as orphans that the next one
// removes. warmer is how the pool makes and removes them.

type warmer struct{ m *Manager }

var _ pool.Maker = warmer{}

// Make launches an unnamed sandbox of the default image.
func (w warmer) Make(ctx context.Context) (*pool.Entry, error) {
	m := w.m
	img, err := m.images.Resolve(ctx, "")
	if err != nil {
		return nil, err
	}
	id := newID()
	var addr netip.Addr
	if m.net != nil {
		if addr, err = m.net.Allocate(ctx, id); err != nil {
			return nil, err
		}
	}
	rec := sandbox.Record{
		ID:      id,
		Addr:    addr,
		Image:   img.Image,
		Runtime: m.rt.Name(),
		Limits:  sandbox.InstanceTypes[sandbox.DefaultInstanceType],
		Lowers:  img.Lowers,
		Env:     img.Env,
	}
	if err := rec.Move(sandbox.StateRunning); err != nil {
		m.release(ctx, rec)
		return nil, err
	}
	conn, err := m.launch(ctx, rec, rec.ID)
	if err != nil {
		_ = os.RemoveAll(m.dir(rec.ID))
		m.release(ctx, rec)
		return nil, err
	}
	_, pid, err := m.rt.State(ctx, rec.ID)
	if err == nil && pid <= 0 {
		err = fmt.Errorf("sandbox %s has no init process", rec.ID)
	}
	var pidfd int
	if err == nil {
		pidfd, err = unix.PidfdOpen(pid, 0)
	}
	if err != nil {
		conn.Close()
		m.discard(context.WithoutCancel(ctx), rec)
		return nil, err
	}
	return &pool.Entry{Rec: rec, Pidfd: pidfd, Conn: conn}, nil
}

// Remove removes a pooled sandbox.
func (w warmer) Remove(ctx context.Context, rec sandbox.Record) { w.m.discard(ctx, rec) }

// takeWarm hands out a pooled sandbox named name, or nil when none fits.
func (m *Manager) takeWarm(ctx context.Context, name string, opts sandbox.CreateOptions) *pool.Entry {
	if m.pool == nil || opts.Image != "" || opts.FromSnapshot != "" || (opts.InstanceType != "" && opts.InstanceType != sandbox.DefaultInstanceType) {
		return nil
	}
	hn, ok := m.rt.(sandbox.Hostnamer)
	if !ok {
		return nil
	}
	img, err := m.images.Resolve(ctx, "")
	if err != nil {
		return nil
	}
	for {
		w := m.pool.Take()
		if w == nil {
			return nil
		}
		// Entries made before the default image changed are stale.
		if w.Rec.Image != img.Image || !slices.Equal(w.Rec.Lowers, img.Lowers) {
			m.pool.Discard(w)
			continue
		}
		err := hn.SetHostname(w.Pidfd, name)
		w.ClosePidfd()
		if err != nil {
			m.log.Warn("warm pool: rename sandbox", "id", w.Rec.ID, "err", err)
			m.pool.Discard(w)
			continue
		}
		return w
	}
}

// discard removes a sandbox that has no record: a pool entry, or an
// orphan (of which only the ID is known).
func (m *Manager) discard(ctx context.Context, rec sandbox.Record) {
	if err := m.halt(ctx, rec.ID); err != nil {
		m.log.Warn("remove unnamed sandbox", "id", rec.ID, "err", err)
		return
	}
	_ = os.RemoveAll(m.dir(rec.ID))
	m.release(ctx, rec)
}

// removeOrphans removes sandbox dirs that no record names: pool entries of
// a daemon that died.
func (m *Manager) removeOrphans(ctx context.Context, known map[string]bool) {
	ents, err := os.ReadDir(filepath.Join(m.cfg.DataDir, "sandboxes"))
	if err != nil {
		return
	}
	for _, e := range ents {
		if !e.IsDir() || known[e.Name()] {
			continue
		}
		m.log.Info("removing orphaned sandbox", "id", e.Name())
		m.discard(ctx, sandbox.Record{ID: e.Name()})
	}
}
