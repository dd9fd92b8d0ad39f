// Package identity maps sandbox addresses to names and egress policies for
// the egress proxy, which asks on every connection and request: a lookup
// never waits for a sandbox that is busy starting.
package identity

import (
	"net/netip"
	"sync"

	"github.com/hutch-sh/hutch/internal/egress"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

// Index is address → sandbox. The zero value is ready to use.
type Index struct {
	mu sync.RWMutex
	by map[netip.Addr]egress.Identity
}

var _ egress.Sandboxes = (*Index)(nil)

// Set records (or updates) who rec's address is; records without an
// address or a name (pool entries) are not indexed.
func (x *Index) Set(rec sandbox.Record) {
	if !rec.Addr.IsValid() || rec.Name == "" {
		return
	}
	pol := egress.DefaultPolicy()
	if rec.Policy != nil {
		pol = *rec.Policy
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.by == nil {
		x.by = make(map[netip.Addr]egress.Identity)
	}
	x.by[rec.Addr] = egress.Identity{Name: rec.Name, Policy: pol}
}

// Drop forgets rec's address, unless it was given to another sandbox since.
func (x *Index) Drop(rec sandbox.Record) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if id, ok := x.by[rec.Addr]; ok && id.Name == rec.Name {
		delete(x.by, rec.Addr)
	}
}

// Identify returns the sandbox that owns addr.
func (x *Index) Identify(addr netip.Addr) (egress.Identity, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	id, ok := x.by[addr]
	return id, ok
}
