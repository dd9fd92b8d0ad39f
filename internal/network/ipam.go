package network

import (
	"fmt"
	"net/netip"
	"sync"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

// ipam hands out the addresses of one subnet. It keeps no state of its own:
// each sandbox's record holds its address, and a daemon that starts again
// reserves them all before it allocates anything new.
type ipam struct {
	prefix  netip.Prefix
	gateway netip.Addr

	mu     sync.Mutex
	owners map[netip.Addr]string
	next   netip.Addr // where the next search starts, so freed addresses rest a while
}

func newIPAM(prefix netip.Prefix) *ipam {
	prefix = prefix.Masked()
	gw := prefix.Addr().Next()
	return &ipam{prefix: prefix, gateway: gw, owners: make(map[netip.Addr]string), next: gw.Next()}
}

// usable reports whether a may be given to a sandbox: inside the subnet and
// neither its network, gateway nor broadcast address.
func (p *ipam) usable(a netip.Addr) bool {
	return p.prefix.Contains(a) && a != p.prefix.Addr() && a != p.gateway && p.prefix.Contains(a.Next())
}

// Allocate gives owner a free address.
func (p *ipam) Allocate(owner string) (netip.Addr, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	start := p.next
	for a := start; ; {
		if p.usable(a) {
			if _, taken := p.owners[a]; !taken {
				p.owners[a] = owner
				p.next = a.Next()
				return a, nil
			}
		}
		a = a.Next()
		if !p.prefix.Contains(a) {
			a = p.gateway.Next()
		}
		if a == start {
			return netip.Addr{}, fmt.Errorf("no free address left in %s: %w", p.prefix, errdefs.ErrResourceExhausted)
		}
	}
}

// Reserve marks a as owner's: an address read back from a record.
func (p *ipam) Reserve(owner string, a netip.Addr) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.usable(a) {
		return fmt.Errorf("address %s is not a sandbox address of %s: %w", a, p.prefix, errdefs.ErrFailedPrecondition)
	}
	if o, taken := p.owners[a]; taken && o != owner {
		return fmt.Errorf("address %s is already %s's: %w", a, o, errdefs.ErrAlreadyExists)
	}
	p.owners[a] = owner
	return nil
}

// Release frees a if owner holds it.
func (p *ipam) Release(owner string, a netip.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.owners[a] == owner {
		delete(p.owners, a)
	}
}

// Owner returns who holds a, if anyone.
func (p *ipam) Owner(a netip.Addr) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	o, ok := p.owners[a]
	return o, ok
}

// held returns every owner with its address.
func (p *ipam) held() map[string]netip.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]netip.Addr, len(p.owners))
	for a, o := range p.owners {
		out[o] = a
	}
	return out
}
