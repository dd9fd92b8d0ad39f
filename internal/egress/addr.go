package egress

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// special holds the ranges that are not the public internet: reachable only
// when an allow entry names the address.
var special = prefixes(
	"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.0.0.0/24",
	"192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
	"203.0.113.0/24", "240.0.0.0/4", "fc00::/7", "64:ff9b:1::/48", "2001:db8::/32",
)

// never holds what no policy opens: loopback, link-local (cloud metadata
// at 169.254.169.254 and fd00:ec2::254), multicast.
var never = prefixes("127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "255.255.255.255/32",
	"::1/128", "fe80::/10", "ff00::/8", "fd00:ec2::254/128", "::/128")

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func inAny(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// hostAddrs caches this host's own addresses, refreshed every few seconds:
// a sandbox reaches none of them, whatever its policy.
type hostAddrs struct {
	mu    sync.Mutex
	at    time.Time
	addrs map[netip.Addr]bool
}

func (h *hostAddrs) has(a netip.Addr) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if time.Since(h.at) > 2*time.Second {
		h.addrs = make(map[netip.Addr]bool)
		if as, err := net.InterfaceAddrs(); err == nil {
			for _, x := range as {
				if n, ok := x.(*net.IPNet); ok {
					if ip, ok := netip.AddrFromSlice(n.IP); ok {
						h.addrs[ip.Unmap()] = true
					}
				}
			}
		}
		h.at = time.Now()
	}
	return h.addrs[a]
}
