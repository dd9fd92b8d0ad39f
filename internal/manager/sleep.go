package manager

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/idle"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

// Sleep: a sandbox idle for its SleepAfter (no call on it, and no request,
// stream, terminal or preview connection open through its agent) is
// stopped: its processes end and its memory and CPU are freed, while its
// disk, env, exposed ports with their tokens and its address stay. Its next
// container is then prepared (see Manager.prepare): made but not started,
// only runc's waiting init in its cgroups, so a wake is a start. Any later
// call wakes it through ensureLocked, which serialises concurrent wakes on
// the box's lock so they share one start. Reading a sandbox's status is not
// activity: looking at a sandbox neither wakes it nor keeps it awake.

// SleepInfo is what a sandbox's sleep looks like now.
type SleepInfo struct {
	Persist    bool
	Sleeping   bool
	SleepAfter time.Duration
	KeepAlive  bool
	SleepsAt   time.Time // zero while sleeping, kept alive or active
	Active     int64     // requests and streams open through its agent
}

// sleepIdle puts the sandboxes idle at now to sleep (an idle.Task).
func (m *Manager) sleepIdle(ctx context.Context, now time.Time) {
	m.mu.Lock()
	boxes := make([]*box, 0, len(m.boxes))
	for _, b := range m.boxes {
		boxes = append(boxes, b)
	}
	m.mu.Unlock()
	for _, b := range boxes {
		if !b.mu.TryLock() {
			continue // busy starting, stopping or snapshotting: not idle
		}
		var p *pending
		var err error
		name := b.rec.Name
		at := m.sleepsAt(b)
		asleep := !at.IsZero() && !now.Before(at)
		if asleep {
			p, err = m.sleepLocked(ctx, b)
		}
		idle := b.rec.IdleLimit()
		b.mu.Unlock()
		if asleep && p != nil && err == nil {
			err = m.push(ctx, p)
		}
		switch {
		case !asleep:
		case err != nil:
			m.log.Warn("put idle sandbox to sleep", "sandbox", name, "err", err)
		default:
			m.log.Info("idle sandbox asleep", "sandbox", name, "idle", idle)
		}
	}
}

// collectEvery is the idle task that deletes expired snapshots, and the
// layers only they used, once a period.
func (m *Manager) collectEvery(period time.Duration) idle.Task {
	return idle.Every(period, func(ctx context.Context, _ time.Time) {
		if err := m.snaps.Collect(ctx); err != nil {
			m.log.Warn("snapshot gc", "err", err)
		}
	})
}

// sleepsAt is when b sleeps if nothing happens; zero if it is not running,
// is kept alive, or has something open. b.mu is held.
func (m *Manager) sleepsAt(b *box) time.Time {
	if b.removed || b.conn == nil || b.broken || b.rec.KeepAlive || b.rec.State != sandbox.StateRunning {
		return time.Time{}
	}
	if b.conn.Active() > 0 {
		return time.Time{}
	}
	last := b.lastActive
	if l := b.conn.LastActive(); l.After(last) {
		last = l
	}
	return last.Add(b.rec.IdleLimit())
}

// Sleep puts sandbox name to sleep now, ending whatever runs in it.
func (m *Manager) Sleep(ctx context.Context, name string) (SleepInfo, error) {
	b, err := m.existing(name)
	if err != nil {
		return SleepInfo{}, err
	}
	p, err := m.sleepLocked(ctx, b)
	info := m.sleepInfo(b)
	b.mu.Unlock()
	if err == nil && p != nil {
		err = m.push(ctx, p)
	}
	if err != nil {
		return SleepInfo{}, err
	}
	return info, nil
}

// sleepLocked puts b to sleep; b.mu is held. A persisted sandbox's disk is
// captured here, and the capture returned for the caller to push once it
// has let go of b.mu.
func (m *Manager) sleepLocked(ctx context.Context, b *box) (*pending, error) {
	if b.rec.State == sandbox.StateSleeping && b.conn == nil {
		return nil, nil
	}
	if err := m.stop(ctx, b); err != nil {
		return nil, fmt.Errorf("sleep sandbox %q: %w", b.rec.Name, err)
	}
	b.broken = false
	if err := b.rec.Move(sandbox.StateSleeping); err != nil {
		return nil, err
	}
	var p *pending
	var perr error
	if b.rec.Persist {
		p, perr = m.capturePersist(ctx, b)
	}
	if err := m.store.Put(ctx, b.rec.Name, b.rec); err != nil {
		if p != nil {
			m.snaps.Drop(context.WithoutCancel(ctx), p.snap.ID)
		}
		return nil, fmt.Errorf("sleep sandbox %q: %w", b.rec.Name, err)
	}
	// Its next container waits, created, so that a wake is only its start.
	if ok, err := m.prepare(ctx, b.rec); err != nil {
		m.log.Warn("prepare sleeping sandbox; it starts afresh on wake", "sandbox", b.rec.Name, "err", err)
	} else {
		b.prepared = ok
	}
	m.log.Info("sandbox asleep", "sandbox", b.rec.Name, "id", b.rec.ID, "prepared", b.prepared)
	// Asleep here either way; a failed capture is the caller's to know.
	return p, perr
}

// SleepSettings change how a sandbox sleeps; nil fields stay as they are.
type SleepSettings struct {
	SleepAfter *time.Duration
	KeepAlive  *bool
	Persist    *bool // push the disk on sleep (persistAcrossSessions)
}

// ConfigureSleep changes how sandbox name sleeps.
func (m *Manager) ConfigureSleep(ctx context.Context, name string, set SleepSettings) (SleepInfo, error) {
	if set.SleepAfter != nil {
		if err := validSleepAfter(*set.SleepAfter); err != nil {
			return SleepInfo{}, err
		}
	}
	if set.Persist != nil && *set.Persist && m.snaps.Remote() == nil {
		return SleepInfo{}, fmt.Errorf("persistAcrossSessions needs a blob store (hutch serve --blobs): %w", errdefs.ErrFailedPrecondition)
	}
	b, err := m.existing(name)
	if err != nil {
		return SleepInfo{}, err
	}
	defer b.mu.Unlock()
	rec := b.rec
	if set.SleepAfter != nil {
		rec.SleepAfter = *set.SleepAfter
	}
	if set.KeepAlive != nil {
		rec.KeepAlive = *set.KeepAlive
	}
	if set.Persist != nil {
		rec.Persist = *set.Persist
	}
	if err := m.store.Put(ctx, rec.Name, rec); err != nil {
		return SleepInfo{}, err
	}
	b.rec = rec
	return m.sleepInfo(b), nil
}

// GetSleep reports sandbox name's sleep state without waking it.
func (m *Manager) GetSleep(name string) (SleepInfo, error) {
	b, err := m.existing(name)
	if err != nil {
		return SleepInfo{}, err
	}
	defer b.mu.Unlock()
	return m.sleepInfo(b), nil
}

func (m *Manager) sleepInfo(b *box) SleepInfo {
	si := SleepInfo{
		Sleeping:   b.rec.State == sandbox.StateSleeping,
		SleepAfter: b.rec.IdleLimit(),
		KeepAlive:  b.rec.KeepAlive,
		Persist:    b.rec.Persist,
		SleepsAt:   m.sleepsAt(b),
	}
	if b.conn != nil {
		si.Active = b.conn.Active()
	}
	return si
}

func validSleepAfter(d time.Duration) error {
	if d != 0 && d < sandbox.MinSleepAfter {
		return fmt.Errorf("sleepAfter %s: must be at least %s: %w", d, sandbox.MinSleepAfter, errdefs.ErrInvalidArgument)
	}
	return nil
}

// existing returns the box of an existing sandbox with its lock held.
func (m *Manager) existing(name string) (*box, error) {
	for {
		b, err := m.lookup(name, false)
		if err != nil {
			return nil, err
		}
		b.mu.Lock()
		if b.removed {
			b.mu.Unlock()
			continue
		}
		if b.rec.ID == "" {
			b.mu.Unlock()
			return nil, fmt.Errorf("sandbox %q: %w", name, errdefs.ErrNotFound)
		}
		return b, nil
	}
}

// Root wakes sandbox name if needed (creating it when create is set) and
// returns the host path of its mounted root, held until release is called:
// it neither sleeps nor goes away meanwhile.
func (m *Manager) Root(ctx context.Context, name string, create bool) (root string, release func(), err error) {
	if create {
		if _, _, _, err := m.Ensure(ctx, name, sandbox.CreateOptions{}); err != nil {
			return "", nil, err
		}
	}
	b, err := m.existing(name)
	if err != nil {
		return "", nil, err
	}
	if _, _, _, err := m.ensureLocked(ctx, b, sandbox.CreateOptions{}, false); err != nil {
		b.mu.Unlock()
		return "", nil, err
	}
	return filepath.Join(m.dir(b.rec.ID), "rootfs"), b.mu.Unlock, nil
}
