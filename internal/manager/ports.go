package manager

import (
	"context"

	"github.com/hutch-sh/hutch/internal/sandbox"
)

// Preview ports: the record does the work (sandbox.Record.Expose and co.);
// the manager locks and persists.

// Expose gives port of sandbox name a preview token, creating the sandbox
// on demand; exposing an exposed port returns its token again.
func (m *Manager) Expose(ctx context.Context, name string, port int) (string, error) {
	if err := sandbox.ValidatePort(port); err != nil {
		return "", err
	}
	for {
		if _, _, _, err := m.Ensure(ctx, name, sandbox.CreateOptions{}); err != nil {
			return "", err
		}
		b, err := m.lookup(name, false)
		if err != nil {
			continue // removed meanwhile: create it again
		}
		b.mu.Lock()
		if b.removed || b.rec.ID == "" {
			b.mu.Unlock()
			continue
		}
		rec, tok := b.rec.Expose(port)
		if len(rec.Ports) != len(b.rec.Ports) {
			if err := m.store.Put(ctx, rec.Name, rec); err != nil {
				b.mu.Unlock()
				return "", err
			}
			b.rec = rec
		}
		b.mu.Unlock()
		return tok, nil
	}
}

// Unexpose withdraws a port's preview URL; its token never works again.
func (m *Manager) Unexpose(ctx context.Context, name string, port int) error {
	b, err := m.existing(name)
	if err != nil {
		return err
	}
	defer b.mu.Unlock()
	rec, err := b.rec.Unexpose(port)
	if err != nil {
		return err
	}
	if err := m.store.Put(ctx, rec.Name, rec); err != nil {
		return err
	}
	b.rec = rec
	return nil
}

// Exposed lists a sandbox's exposed ports and their tokens, by port.
func (m *Manager) Exposed(name string) ([]int, map[int]string, error) {
	rec, err := m.Get(name)
	if err != nil {
		return nil, nil, err
	}
	return rec.ExposedPorts(), rec.Ports, nil
}

// Preview checks a preview request's port and token, in constant time, and
// reports whether they open sandbox name.
func (m *Manager) Preview(name string, port int, token string) bool {
	rec, err := m.Get(name)
	return err == nil && rec.Opens(port, token)
}
