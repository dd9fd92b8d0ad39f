package manager

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hutch-sh/hutch/internal/agentconn"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

// A warm pool keeps a few sandboxes of the default image and instance type
// running without a name, so that creating one is a rename: set the
// hostname, write the record, hand out the agent. They are not persisted; a
// daemon that dies leaves them as orphans that the next one removes.

// hostnamer is implemented by runtimes that can rename a running sandbox,
// given a pidfd of its init.
type hostnamer interface {
	SetHostname(pidfd int, name string) error
}

type warm struct {
	rec   sandbox.Record // Name empty
	pidfd int            // of the sandbox's init, taken right after it started
	conn  *agentconn.Conn
}

// close releases what the entry holds in the daemon.
func (w *warm) close() {
	w.conn.Close()
	_ = unix.Close(w.pidfd)
}

type pool struct {
	size int
	kick chan struct{}

	mu    sync.Mutex
	ready []*warm
}

// runPool keeps the pool filled until ctx ends, then removes what is left.
func (m *Manager) runPool(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	defer m.drainPool()
	backoff := time.Second
	for {
		for m.pool.count() < m.pool.size && ctx.Err() == nil {
			w, err := m.warmOne(ctx)
			if err != nil {
				if ctx.Err() == nil {
					m.log.Warn("warm pool: start sandbox", "err", err)
					select {
					case <-ctx.Done():
					case <-time.After(backoff):
					}
					backoff = min(2*backoff, time.Minute)
				}
				continue
			}
			backoff = time.Second
			m.pool.mu.Lock()
			m.pool.ready = append(m.pool.ready, w)
			m.pool.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-m.pool.kick:
		}
	}
}

func (p *pool) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ready)
}

func (m *Manager) warmOne(ctx context.Context) (*warm, error) {
	img, err := m.images.Resolve(ctx, "")
	if err != nil {
		return nil, err
	}
	id := newID()
	var addr netip.Addr
	if m.net != nil {
		if addr, err = m.net.Allocate(id); err != nil {
			return nil, err
		}
	}
	rec := sandbox.Record{
		ID:      id,
		Addr:    addr,
		Image:   img.Image,
		Runtime: m.rt.Name(),
		State:   sandbox.StateRunning,
		Limits:  sandbox.InstanceTypes[sandbox.DefaultInstanceType],
		Lowers:  img.Lowers,
		Env:     img.Env,
	}
	conn, err := m.launch(ctx, rec, rec.ID)
	if err != nil {
		_ = os.RemoveAll(m.dir(rec.ID))
		m.release(rec)
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
		m.discard(rec)
		return nil, err
	}
	return &warm{rec: rec, pidfd: pidfd, conn: conn}, nil
}

// takeWarm hands out a pooled sandbox named name, or nil when none fits.
func (m *Manager) takeWarm(ctx context.Context, name string, opts sandbox.CreateOptions) *warm {
	if m.pool == nil || opts.Image != "" || opts.FromSnapshot != "" || (opts.InstanceType != "" && opts.InstanceType != sandbox.DefaultInstanceType) {
		return nil
	}
	hn, ok := m.rt.(hostnamer)
	if !ok {
		return nil
	}
	img, err := m.images.Resolve(ctx, "")
	if err != nil {
		return nil
	}
	for {
		m.pool.mu.Lock()
		if len(m.pool.ready) == 0 {
			m.pool.mu.Unlock()
			return nil
		}
		w := m.pool.ready[0]
		m.pool.ready = m.pool.ready[1:]
		m.pool.mu.Unlock()
		m.refill()
		// Entries made before the default image changed are stale.
		if w.rec.Image != img.Image || !slices.Equal(w.rec.Lowers, img.Lowers) {
			w.close()
			go m.discard(w.rec)
			continue
		}
		err := hn.SetHostname(w.pidfd, name)
		_ = unix.Close(w.pidfd)
		if err != nil {
			m.log.Warn("warm pool: rename sandbox", "id", w.rec.ID, "err", err)
			w.conn.Close()
			go m.discard(w.rec)
			continue
		}
		return w
	}
}

func (m *Manager) refill() {
	select {
	case m.pool.kick <- struct{}{}:
	default:
	}
}

// discard removes a sandbox that has no record: a pool entry, or an
// orphan (of which only the ID is known).
func (m *Manager) discard(rec sandbox.Record) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.halt(ctx, rec.ID); err != nil {
		m.log.Warn("remove unnamed sandbox", "id", rec.ID, "err", err)
		return
	}
	_ = os.RemoveAll(m.dir(rec.ID))
	m.release(rec)
}

func (m *Manager) drainPool() {
	m.pool.mu.Lock()
	ready := m.pool.ready
	m.pool.ready = nil
	m.pool.mu.Unlock()
	for _, w := range ready {
		w.close()
		m.discard(w.rec)
	}
}

// removeOrphans removes sandbox dirs that no record names: pool entries of
// a daemon that died.
func (m *Manager) removeOrphans(known map[string]bool) {
	ents, err := os.ReadDir(filepath.Join(m.cfg.DataDir, "sandboxes"))
	if err != nil {
		return
	}
	for _, e := range ents {
		if !e.IsDir() || known[e.Name()] {
			continue
		}
		m.log.Info("removing orphaned sandbox", "id", e.Name())
		m.discard(sandbox.Record{ID: e.Name()})
	}
}
