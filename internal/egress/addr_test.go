package egress

import (
	"net"
	"net/netip"
	"testing"

	"github.com/hutch-sh/hutch/internal/testutil"
)

// The host's own networks count as private whatever their range; ranges
// that are nobody's LAN do not.
func TestOnLink(t *testing.T) {
	var h hostAddrs
	as, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, x := range as {
		n, ok := x.(*net.IPNet)
		if !ok || n.IP.IsLoopback() || n.IP.To4() == nil {
			continue
		}
		ones, bits := n.Mask.Size()
		if bits-ones < 2 {
			continue
		}
		ip, _ := netip.AddrFromSlice(n.IP.To4())
		neighbour := netip.PrefixFrom(ip, ones).Masked().Addr().Next()
		if neighbour == ip {
			neighbour = neighbour.Next()
		}
		if !h.onLink(neighbour) {
			t.Errorf("%s, on the host's network %s, is not on link", neighbour, n)
		}
		found = true
	}
	if !found {
		testutil.Unavailable(t, "no IPv4 network on this host")
	}
	for _, a := range []string{"203.0.113.80", "198.51.100.7", "8.8.8.8"} {
		addr := netip.MustParseAddr(a)
		if h.onLink(addr) {
			continue // this host happens to sit on that network
		}
		if inAny(special, addr) {
			t.Errorf("%s counts as private", a)
		}
	}
	for _, a := range []string{"10.1.2.3", "192.168.1.1", "172.16.0.1", "100.64.0.1", "198.18.0.1"} {
		if !inAny(special, netip.MustParseAddr(a)) {
			t.Errorf("%s does not count as private", a)
		}
	}
}
