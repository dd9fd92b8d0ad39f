package manager

import (
	"context"
	"net/netip"
	"sync"

	"github.com/hutch-sh/hutch/internal/egress"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

// identities maps sandbox addresses to names and policies for the egress
// proxy, which asks on every connection and request: a lookup here never
// waits for a sandbox that is busy starting.
type identities struct {
	mu sync.RWMutex
	by map[netip.Addr]egress.Identity
}

func (ids *identities) index(rec sandbox.Record) {
	if !rec.Addr.IsValid() || rec.Name == "" {
		return
	}
	pol := egress.DefaultPolicy()
	if rec.Policy != nil {
		pol = *rec.Policy
	}
	ids.mu.Lock()
	defer ids.mu.Unlock()
	if ids.by == nil {
		ids.by = make(map[netip.Addr]egress.Identity)
	}
	ids.by[rec.Addr] = egress.Identity{Name: rec.Name, Policy: pol}
}

func (ids *identities) unindex(rec sandbox.Record) {
	ids.mu.Lock()
	defer ids.mu.Unlock()
	if id, ok := ids.by[rec.Addr]; ok && id.Name == rec.Name {
		delete(ids.by, rec.Addr)
	}
}

var _ egress.Sandboxes = (*Manager)(nil)

// Identify returns the sandbox that owns addr.
func (m *Manager) Identify(addr netip.Addr) (egress.Identity, bool) {
	m.ids.mu.RLock()
	defer m.ids.mu.RUnlock()
	id, ok := m.ids.by[addr]
	return id, ok
}

// SetPolicy replaces name's egress policy; it applies to the sandbox's next
// connection or request. With create, a sandbox that does not exist is
// created with it, so its first process already runs under it.
func (m *Manager) SetPolicy(ctx context.Context, name string, p egress.Policy, create bool) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if create {
		if _, _, created, err := m.Ensure(ctx, name, sandbox.CreateOptions{Policy: &p}); err != nil || created {
			return err
		}
	}
	b, err := m.existing(name)
	if err != nil {
		return err
	}
	defer b.mu.Unlock()
	prev := b.rec.Policy
	b.rec.Policy = &p
	if err := m.store.Put(b.rec.Name, b.rec); err != nil {
		b.rec.Policy = prev
		return err
	}
	m.ids.index(b.rec)
	return nil
}

// Policy returns name's egress policy.
func (m *Manager) Policy(name string) (egress.Policy, error) {
	rec, err := m.Get(name)
	if err != nil {
		return egress.Policy{}, err
	}
	if rec.Policy == nil {
		return egress.DefaultPolicy(), nil
	}
	return *rec.Policy, nil
}
