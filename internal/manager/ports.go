package manager

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"sort"

	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

// tokenAlphabet has no '-', so a preview host splits unambiguously.
const tokenAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// TokenLen is the length of a preview URL token.
const TokenLen = 16

func newToken() string {
	b := make([]byte, TokenLen)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = tokenAlphabet[int(b[i])%len(tokenAlphabet)]
	}
	return string(b)
}

func validPort(port int) error {
	if port < 1 || port > 65535 {
		return fmt.Errorf("port %d: must be 1-65535: %w", port, errdefs.ErrInvalidArgument)
	}
	return nil
}

// Expose gives port of sandbox name a preview token, creating the sandbox
// on demand; exposing an exposed port returns its token again.
func (m *Manager) Expose(ctx context.Context, name string, port int) (string, error) {
	if err := validPort(port); err != nil {
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
		tok, ok := b.rec.Ports[port]
		if !ok {
			tok = newToken()
			rec := b.rec
			rec.Ports = make(map[int]string, len(b.rec.Ports)+1)
			for p, t := range b.rec.Ports {
				rec.Ports[p] = t
			}
			rec.Ports[port] = tok
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
	if _, ok := b.rec.Ports[port]; !ok {
		return fmt.Errorf("port %d of sandbox %q is not exposed: %w", port, name, errdefs.ErrNotFound)
	}
	rec := b.rec
	rec.Ports = make(map[int]string, len(b.rec.Ports))
	for p, t := range b.rec.Ports {
		if p != port {
			rec.Ports[p] = t
		}
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
	ports := make([]int, 0, len(rec.Ports))
	for p := range rec.Ports {
		ports = append(ports, p)
	}
	sort.Ints(ports)
	return ports, rec.Ports, nil
}

// Preview checks a preview request's port and token, in constant time, and
// reports whether they open sandbox name.
func (m *Manager) Preview(name string, port int, token string) bool {
	rec, err := m.Get(name)
	if err != nil {
		return false
	}
	want, ok := rec.Ports[port]
	return ok && subtle.ConstantTimeCompare([]byte(want), []byte(token)) == 1
}
