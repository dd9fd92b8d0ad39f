package manager

import (
	"context"
	"net/netip"

	"github.com/hutch-sh/hutch/internal/egress"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

var _ egress.Sandboxes = (*Manager)(nil)

// Identify returns the sandbox that owns addr (see internal/identity).
func (m *Manager) Identify(addr netip.Addr) (egress.Identity, bool) { return m.ids.Identify(addr) }

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
	if err := m.store.Put(ctx, b.rec.Name, b.rec); err != nil {
		b.rec.Policy = prev
		return err
	}
	m.ids.Set(b.rec)
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
