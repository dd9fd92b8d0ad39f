package network

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

func TestIPAMHandsOutEachAddressOnce(t *testing.T) {
	p := newIPAM(netip.MustParsePrefix("10.9.0.0/29")) // .1 gateway, .7 broadcast
	seen := map[netip.Addr]bool{}
	for i := range 5 {
		a, err := p.Allocate("s" + string(rune('a'+i)))
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		if seen[a] || a == p.gateway || a == netip.MustParseAddr("10.9.0.0") || a == netip.MustParseAddr("10.9.0.7") {
			t.Fatalf("allocation %d gave %s (seen %v)", i, a, seen)
		}
		seen[a] = true
	}
	if _, err := p.Allocate("late"); !errors.Is(err, errdefs.ErrResourceExhausted) {
		t.Fatalf("full subnet: err %v, want resource_exhausted", err)
	}
	p.Release("sc", netip.MustParseAddr("10.9.0.4"))
	if a, err := p.Allocate("late"); err != nil || a != netip.MustParseAddr("10.9.0.4") {
		t.Fatalf("after release got %s, %v; want 10.9.0.4", a, err)
	}
	// Releasing someone else's address frees nothing.
	p.Release("nobody", netip.MustParseAddr("10.9.0.2"))
	if o, _ := p.Owner(netip.MustParseAddr("10.9.0.2")); o != "sa" {
		t.Fatalf("10.9.0.2 owned by %q after a stranger released it", o)
	}
}

func TestIPAMReserve(t *testing.T) {
	p := newIPAM(netip.MustParsePrefix("10.9.0.0/24"))
	a := netip.MustParseAddr("10.9.0.2")
	if err := p.Reserve("x", a); err != nil {
		t.Fatal(err)
	}
	if err := p.Reserve("x", a); err != nil {
		t.Fatalf("reserving again for the same owner: %v", err)
	}
	if err := p.Reserve("y", a); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("reserving another's address: %v, want already_exists", err)
	}
	for _, bad := range []string{"10.9.0.0", "10.9.0.1", "10.9.0.255", "10.9.1.2"} {
		if err := p.Reserve("z", netip.MustParseAddr(bad)); !errors.Is(err, errdefs.ErrFailedPrecondition) {
			t.Errorf("reserve %s: %v, want failed_precondition", bad, err)
		}
	}
	// A restarted daemon reserves first, then allocates around it.
	if b, err := p.Allocate("new"); err != nil || b == a {
		t.Fatalf("allocate after reserve: %s, %v", b, err)
	}
}

func TestChooseSubnetSkipsWhatTheHostUses(t *testing.T) {
	free, err := chooseSubnet("abc", nil)
	if err != nil {
		t.Fatal(err)
	}
	if free.Bits() != autoBits || !netip.MustParsePrefix("10.0.0.0/8").Contains(free.Addr()) {
		t.Fatalf("chose %s", free)
	}
	again, err := chooseSubnet("abc", []netip.Prefix{free, netip.PrefixFrom(free.Addr().Next(), 32)})
	if err != nil {
		t.Fatal(err)
	}
	if again.Overlaps(free) {
		t.Fatalf("chose %s, which overlaps the used %s", again, free)
	}
	if _, err := chooseSubnet("abc", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}); !errors.Is(err, errdefs.ErrResourceExhausted) {
		t.Fatalf("all of 10/8 used: %v", err)
	}
}
