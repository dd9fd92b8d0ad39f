// Package manager owns the sandboxes of one daemon: the name registry,
// per-name locking and the state machine (get-or-create, start, sleep,
// stop, recovery after a daemon restart, removal that leaves nothing
// behind). What runs beside the lifecycle lives in its own package: the
// warm pool (internal/pool), the idle loop (internal/idle), the egress
// identities (internal/identity).
package manager

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/hutch-sh/hutch/internal/agentapi"
	"github.com/hutch-sh/hutch/internal/agentconn"
	"github.com/hutch-sh/hutch/internal/catalog"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/identity"
	"github.com/hutch-sh/hutch/internal/idle"
	"github.com/hutch-sh/hutch/internal/pool"
	"github.com/hutch-sh/hutch/internal/rootfs"
	"github.com/hutch-sh/hutch/internal/runtime"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

// Config holds the manager's settings.
type Config struct {
	DataDir     string // sandboxes live in DataDir/sandboxes/<id>
	AgentBinary string // host path of the static hutch-agent
	// AgentTimeout bounds the wait for a started sandbox's agent.
	AgentTimeout time.Duration
	// PoolSize is how many sandboxes of the default image and instance
	// type are kept warm; 0 disables the pool.
	PoolSize int
	// Network connects each sandbox to the daemon's network; nil leaves
	// sandboxes with loopback only.
	Network sandbox.Network
	// CABundle is the trust bundle (the host's roots and the egress CA)
	// sandboxes get; empty keeps the image's.
	CABundle string
	// IdleCheck is how often idle sandboxes are looked for (default 1s).
	IdleCheck time.Duration
	// Snapshots stores snapshots; nil disables them.
	Snapshots catalog.Local
	// Remote, when set, is where snapshots are pushed and pulled from.
	Remote catalog.Remote
}

// Manager maps names to sandboxes. Operations on one name are serialised by
// that sandbox's lock; different names proceed in parallel.
type Manager struct {
	log    *slog.Logger
	cfg    Config
	rt     sandbox.Runtime
	images sandbox.Images
	store  sandbox.Store
	net    sandbox.Network // nil: loopback only

	mu    sync.Mutex
	boxes map[string]*box

	pool  *pool.Pool // nil when disabled
	ids   identity.Index
	idle  *idle.Loop
	snaps *catalog.Catalog
}

// box is one sandbox. mu guards every field below it and is held across
// start and stop, so concurrent callers for one name wait for one start.
type box struct {
	mu      sync.Mutex
	rec     sandbox.Record
	conn    *agentconn.Conn
	broken  bool // the agent did not answer: check the container on next use
	removed bool // deleted while a caller waited on mu: look the name up again
	// prepared: asleep with its next container created, not started (see
	// Manager.prepare); a wake only starts it.
	prepared bool
	// lastActive is when a call last used the sandbox (see sleep.go).
	lastActive time.Time

	// pushMu orders the pushes of a persisted sandbox (see persist.go),
	// which run without mu; it guards the fields below it.
	pushMu  sync.Mutex
	pushSeq uint64 // the last capture handed to a push
	pushed  uint64 // the capture the remote session names
	dropped bool   // removed for good: no push may save a session again
}

// New loads the persisted sandboxes and reconciles them with the runtime:
// running ones whose agent answers are adopted; others are cleaned up and
// marked stopped, to start again on their next use.
func New(ctx context.Context, log *slog.Logger, cfg Config, rt sandbox.Runtime, images sandbox.Images, store sandbox.Store) (*Manager, error) {
	if cfg.AgentTimeout == 0 {
		cfg.AgentTimeout = 10 * time.Second
	}
	if cfg.IdleCheck == 0 {
		cfg.IdleCheck = time.Second
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "sandboxes"), 0o700); err != nil {
		return nil, err
	}
	m := &Manager{log: log, cfg: cfg, rt: rt, images: images, store: store, net: cfg.Network, boxes: make(map[string]*box)}
	m.snaps = catalog.New(log, cfg.Snapshots, cfg.Remote, m.records)
	recs, err := m.records(ctx)
	if err != nil {
		return nil, fmt.Errorf("load sandboxes: %w", err)
	}
	known := make(map[string]bool, len(recs))
	for _, r := range recs {
		b := &box{rec: r}
		m.boxes[r.Name] = b
		known[r.ID] = true
		m.recover(ctx, b, m.reserveAddr(ctx, b))
		m.ids.Set(b.rec)
	}
	isKnown := func(id string) bool { return known[id] }
	m.removeOrphans(ctx, known)
	if sw, ok := rt.(sandbox.Sweeper); ok {
		sw.Sweep(ctx, isKnown)
	}
	if m.net != nil {
		m.net.Sweep(ctx, isKnown)
	}
	if cfg.PoolSize > 0 {
		m.pool = pool.Start(ctx, log, cfg.PoolSize, warmer{m})
	}
	m.idle = idle.Start(ctx, cfg.IdleCheck, m.sleepIdle, m.collectEvery(time.Minute))
	return m, nil
}

// reserveAddr claims b's recorded address again and reports whether b kept
// it. One it cannot have (the subnet changed) is dropped: the sandbox gets a
// new one when it starts.
func (m *Manager) reserveAddr(ctx context.Context, b *box) bool {
	if m.net == nil || !b.rec.Addr.IsValid() {
		return true
	}
	if err := m.net.Reserve(ctx, b.rec.ID, b.rec.Addr); err != nil {
		m.log.Warn("sandbox address lost; it gets a new one", "sandbox", b.rec.Name, "addr", b.rec.Addr, "err", err)
		b.rec.Addr = netip.Addr{}
		return false
	}
	return true
}

// release frees rec's address.
func (m *Manager) release(ctx context.Context, rec sandbox.Record) {
	if m.net != nil && rec.Addr.IsValid() {
		m.net.Release(ctx, rec.ID, rec.Addr)
	}
}

// recover adopts b if it runs and its agent answers; otherwise it cleans b
// up and marks it stopped. A sandbox that lost its address is never adopted:
// its old address no longer routes.
func (m *Manager) recover(ctx context.Context, b *box, keptAddr bool) {
	log := m.log.With("sandbox", b.rec.Name, "id", b.rec.ID)
	if b.rec.State == sandbox.StateRunning && keptAddr {
		st, _, err := m.rt.State(ctx, b.rec.ID)
		if err == nil && st == runtime.StatusRunning {
			conn := agentconn.New(m.socket(b.rec.ID))
			wctx, cancel := context.WithTimeout(ctx, time.Second)
			err = conn.Ping(wctx)
			cancel()
			if err == nil {
				b.conn = conn
				log.Info("adopted running sandbox")
				return
			}
		}
	}
	if b.rec.State == sandbox.StateSleeping && keptAddr {
		// Asleep with a prepared container: keep it while it still waits
		// on its mounted root.
		st, _, err := m.rt.State(ctx, b.rec.ID)
		mounted, merr := rootfs.Mounted(filepath.Join(m.dir(b.rec.ID), "rootfs"))
		if err == nil && st == runtime.StatusCreated && merr == nil && mounted {
			if _, ok := m.rt.(sandbox.Preparer); ok {
				b.prepared = true
				log.Info("adopted prepared sleeping sandbox")
				return
			}
		}
	}
	if err := m.stop(ctx, b); err != nil {
		log.Warn("clean up sandbox", "err", err)
	}
	switch b.rec.State {
	case sandbox.StateFailed, sandbox.StateSleeping, sandbox.StateStopped:
	default:
		if err := b.rec.Move(sandbox.StateStopped); err != nil {
			log.Warn("recover sandbox", "err", err)
		}
	}
	if err := m.store.Put(ctx, b.rec.Name, b.rec); err != nil {
		log.Warn("persist sandbox", "err", err)
	}
	log.Info("sandbox stopped; it starts again on next use")
}

func (m *Manager) dir(id string) string { return filepath.Join(m.cfg.DataDir, "sandboxes", id) }
func (m *Manager) socket(id string) string {
	return filepath.Join(m.dir(id), "run", agentapi.SocketName)
}

// lookup returns the box for name, creating an empty placeholder when create
// is set. A placeholder has no ID until its first start.
func (m *Manager) lookup(name string, create bool) (*box, error) {
	if err := sandbox.ValidateName(name); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.boxes[name]
	if !ok {
		if !create {
			return nil, fmt.Errorf("sandbox %q: %w", name, errdefs.ErrNotFound)
		}
		b = &box{rec: sandbox.Record{Name: name}}
		m.boxes[name] = b
	}
	return b, nil
}

// Ensure returns the running sandbox called name, creating or starting it
// as needed. created reports whether this call created it.
func (m *Manager) Ensure(ctx context.Context, name string, opts sandbox.CreateOptions) (rec sandbox.Record, conn *agentconn.Conn, created bool, err error) {
	return m.ensure(ctx, name, opts, false)
}

// ensure is Ensure; with mustResume, a name the daemon does not know is
// created only from a persisted session.
func (m *Manager) ensure(ctx context.Context, name string, opts sandbox.CreateOptions, mustResume bool) (rec sandbox.Record, conn *agentconn.Conn, created bool, err error) {
	for {
		b, err := m.lookup(name, true)
		if err != nil {
			return sandbox.Record{}, nil, false, err
		}
		b.mu.Lock()
		if b.removed {
			b.mu.Unlock()
			continue
		}
		rec, conn, created, err = m.ensureLocked(ctx, b, opts, mustResume)
		b.mu.Unlock()
		return rec, conn, created, err
	}
}

// Conn returns the agent of an existing sandbox, starting it if it is
// stopped; not_found if there is no such sandbox.
func (m *Manager) Conn(ctx context.Context, name string) (*agentconn.Conn, error) {
	for {
		b, err := m.lookup(name, false)
		if errors.Is(err, errdefs.ErrNotFound) && m.snaps.Remote() != nil {
			// Perhaps persisted by a daemon elsewhere: wake it here.
			_, conn, _, err := m.ensure(ctx, name, sandbox.CreateOptions{}, true)
			return conn, err
		}
		if err != nil {
			return nil, err
		}
		b.mu.Lock()
		if b.removed || b.rec.ID == "" {
			removed := b.removed
			b.mu.Unlock()
			if removed {
				continue
			}
			return nil, fmt.Errorf("sandbox %q: %w", name, errdefs.ErrNotFound)
		}
		_, conn, _, err := m.ensureLocked(ctx, b, sandbox.CreateOptions{}, false)
		b.mu.Unlock()
		return conn, err
	}
}

func (m *Manager) ensureLocked(ctx context.Context, b *box, opts sandbox.CreateOptions, mustResume bool) (sandbox.Record, *agentconn.Conn, bool, error) {
	b.lastActive = time.Now()
	if b.conn != nil && !b.broken {
		return b.rec, b.conn, false, nil
	}
	created := false
	if b.rec.ID == "" {
		if err := validSleepAfter(opts.SleepAfter); err != nil {
			m.forget(b)
			return sandbox.Record{}, nil, false, err
		}
		sess, err := m.resume(ctx, b.rec.Name, &opts)
		if err == nil && sess == nil && mustResume {
			err = fmt.Errorf("sandbox %q: %w", b.rec.Name, errdefs.ErrNotFound)
		}
		if err != nil {
			m.forget(b)
			return sandbox.Record{}, nil, false, err
		}
		if sess == nil {
			if w := m.takeWarm(ctx, b.rec.Name, opts); w != nil {
				return m.adoptWarm(ctx, b, w, opts)
			}
		}
		if err := m.initRecord(ctx, b, opts); err != nil {
			m.forget(b)
			return sandbox.Record{}, nil, false, err
		}
		if sess != nil {
			b.rec.Env, b.rec.Ports, b.rec.Limits = sess.Env, sess.Ports, sess.Limits
			b.rec.SleepAfter, b.rec.KeepAlive, b.rec.Persist = sess.SleepAfter, sess.KeepAlive, true
			b.rec.Policy = sess.Policy
			if err := m.store.Put(ctx, b.rec.Name, b.rec); err != nil {
				_ = m.removeLocked(context.WithoutCancel(ctx), b)
				return sandbox.Record{}, nil, false, err
			}
			m.log.Info("sandbox resumed from the blob store", "sandbox", b.rec.Name, "snapshot", sess.Snapshot)
		}
		created = true
	}
	if b.broken {
		// The agent did not answer last time: if the container still runs
		// and the agent answers now, keep it; otherwise restart it.
		b.broken = false
		st, _, err := m.rt.State(ctx, b.rec.ID)
		if err == nil && st == runtime.StatusRunning && b.conn != nil {
			wctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			err = b.conn.Ping(wctx)
			cancel()
			if err == nil {
				return b.rec, b.conn, false, nil
			}
		}
		m.log.Warn("agent unreachable; restarting sandbox", "sandbox", b.rec.Name, "id", b.rec.ID)
		if err := m.stop(ctx, b); err != nil {
			return sandbox.Record{}, nil, false, err
		}
	}
	if err := m.start(ctx, b); err != nil {
		if created {
			_ = m.removeLocked(context.WithoutCancel(ctx), b)
		}
		return sandbox.Record{}, nil, false, err
	}
	return b.rec, b.conn, created, nil
}

// initRecord gives a new sandbox its ID, image and limits, and persists it
// before anything is created on disk, so a crash mid-create is recoverable.
func (m *Manager) initRecord(ctx context.Context, b *box, opts sandbox.CreateOptions) error {
	it := opts.InstanceType
	if it == "" {
		it = sandbox.DefaultInstanceType
	}
	limits, ok := sandbox.InstanceTypes[it]
	if !ok {
		return fmt.Errorf("instance type %q: unknown (have lite, basic, standard): %w", it, errdefs.ErrInvalidArgument)
	}
	var img sandbox.Rootfs
	var err error
	if opts.FromSnapshot != "" {
		release := m.snaps.Hold()
		defer release()
		img, err = m.snaps.Resolve(ctx, opts.FromSnapshot, opts.Image)
	} else {
		img, err = m.images.Resolve(ctx, opts.Image)
	}
	if err != nil {
		return err
	}
	id := newID()
	var addr netip.Addr
	if m.net != nil {
		if addr, err = m.net.Allocate(ctx, id); err != nil {
			return err
		}
	}
	rec := sandbox.Record{
		Addr:         addr,
		Name:         b.rec.Name,
		ID:           id,
		Image:        img.Image,
		Runtime:      m.rt.Name(),
		CreatedAt:    time.Now().UTC(),
		Limits:       limits,
		Lowers:       img.Lowers,
		Env:          img.Env,
		SleepAfter:   opts.SleepAfter,
		KeepAlive:    opts.KeepAlive,
		FromSnapshot: opts.FromSnapshot,
		Policy:       opts.Policy,
	}
	if err := rec.Move(sandbox.StateCreating); err != nil {
		m.release(ctx, rec)
		return err
	}
	if err := m.store.Put(ctx, rec.Name, rec); err != nil {
		m.release(ctx, rec)
		return err
	}
	b.rec = rec
	return nil
}

// adoptWarm makes a pooled sandbox the sandbox b.
func (m *Manager) adoptWarm(ctx context.Context, b *box, w *pool.Entry, opts sandbox.CreateOptions) (sandbox.Record, *agentconn.Conn, bool, error) {
	now := time.Now().UTC()
	name := b.rec.Name
	b.rec = w.Rec
	b.rec.Name = name
	b.rec.Policy = opts.Policy
	b.rec.SleepAfter, b.rec.KeepAlive = opts.SleepAfter, opts.KeepAlive
	b.rec.CreatedAt, b.rec.StartedAt = now, now
	b.conn = w.Conn
	if err := m.store.Put(ctx, b.rec.Name, b.rec); err != nil {
		_ = m.stop(context.WithoutCancel(ctx), b)
		_ = os.RemoveAll(m.dir(b.rec.ID))
		m.release(ctx, b.rec)
		m.forget(b)
		return sandbox.Record{}, nil, false, err
	}
	m.ids.Set(b.rec)
	m.log.Info("sandbox started", "sandbox", b.rec.Name, "id", b.rec.ID, "warm", true)
	return b.rec, b.conn, true, nil
}

// forget drops a placeholder that never became a sandbox.
func (m *Manager) forget(b *box) {
	b.removed = true
	m.mu.Lock()
	if m.boxes[b.rec.Name] == b {
		delete(m.boxes, b.rec.Name)
	}
	m.mu.Unlock()
}

func newID() string {
	var r [6]byte
	_, _ = rand.Read(r[:])
	return "hb-" + hex.EncodeToString(r[:])
}

// MarkBroken records that the agent of name did not answer, so the next call
// checks the container and restarts it if needed.
func (m *Manager) MarkBroken(name string) {
	m.mu.Lock()
	b := m.boxes[name]
	m.mu.Unlock()
	if b == nil {
		return
	}
	b.mu.Lock()
	b.broken = true
	b.mu.Unlock()
}

// Get returns the record of name.
func (m *Manager) Get(name string) (sandbox.Record, error) {
	b, err := m.existing(name)
	if err != nil {
		return sandbox.Record{}, err
	}
	defer b.mu.Unlock()
	return b.rec, nil
}

// List returns every sandbox's record, sorted by name. Sandboxes busy
// starting are listed with the state they had before.
func (m *Manager) List() []sandbox.Record {
	m.mu.Lock()
	boxes := make([]*box, 0, len(m.boxes))
	for _, b := range m.boxes {
		boxes = append(boxes, b)
	}
	m.mu.Unlock()
	out := make([]sandbox.Record, 0, len(boxes))
	for _, b := range boxes {
		if !b.mu.TryLock() {
			// Starting or stopping: report it without waiting.
			out = append(out, sandbox.Record{Name: b.rec.Name, State: sandbox.StateCreating})
			continue
		}
		if !b.removed && b.rec.ID != "" {
			out = append(out, b.rec)
		}
		b.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Delete stops name and removes everything it had.
func (m *Manager) Delete(ctx context.Context, name string) error {
	b, err := m.existing(name)
	if err != nil {
		return err
	}
	fromSnapshot, persisted := b.rec.FromSnapshot != "", b.rec.Persist
	err = m.removeLocked(ctx, b)
	b.mu.Unlock()
	if err == nil && persisted && m.snaps.Remote() != nil {
		// Removed for good: no daemon may wake it again.
		if err := m.dropSession(ctx, b, name); err != nil {
			return fmt.Errorf("remove sandbox %q: its persisted session: %w", name, err)
		}
	}
	if err == nil && fromSnapshot {
		// Its layers may be the last use of a deleted snapshot's.
		if err := m.snaps.Collect(ctx); err != nil {
			m.log.Warn("snapshot gc", "err", err)
		}
	}
	return err
}

func (m *Manager) removeLocked(ctx context.Context, b *box) error {
	if err := m.stop(ctx, b); err != nil {
		return fmt.Errorf("remove sandbox %q: %w", b.rec.Name, err)
	}
	if err := os.RemoveAll(m.dir(b.rec.ID)); err != nil {
		return fmt.Errorf("remove sandbox %q: %w", b.rec.Name, err)
	}
	if err := m.store.Delete(ctx, b.rec.Name); err != nil {
		return fmt.Errorf("remove sandbox %q: %w", b.rec.Name, err)
	}
	m.release(ctx, b.rec)
	m.ids.Drop(b.rec)
	m.forget(b)
	m.log.Info("sandbox removed", "sandbox", b.rec.Name, "id", b.rec.ID)
	return nil
}

// Close stops the warm pool, removing its sandboxes, and drops agent
// connections; named sandboxes keep running for the next daemon.
func (m *Manager) Close() {
	m.idle.Close()
	if m.pool != nil {
		m.pool.Close()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range m.boxes {
		if b.conn != nil {
			b.conn.Close()
		}
	}
}
