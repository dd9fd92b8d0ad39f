package egress

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// special holds the ranges of private and internal networks: reachable only
// when an allow entry names the address. The networks the host itself is
// on (its interfaces' subnets) count too, whatever their range: that is
// the host's LAN, not the internet. Documentation ranges (192.0.2.0/24,
// 198.51.100.0/24, 203.0.113.0/24) are not listed: they are never anyone's
// LAN, and some sites route their outside world through them.
var special = prefixes(
	"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.0.0.0/24",
	"192.168.0.0/16", "198.18.0.0/15", "240.0.0.0/4", "fc00::/7", "64:ff9b:1::/48",
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

// hostAddrs caches this host's own addresses, and the subnets they are on,
// refreshed every few seconds: a sandbox reaches none of the addresses,
// whatever its policy, and the subnets only when allowed by address.
type hostAddrs struct {
	mu    sync.Mutex
	at    time.Time
	addrs map[netip.Addr]bool
	nets  []netip.Prefix
}

func (h *hostAddrs) refresh() {
	if time.Since(h.at) <= 2*time.Second {
		return
	}
	h.addrs = make(map[netip.Addr]bool)
	h.nets = h.nets[:0]
	if as, err := net.InterfaceAddrs(); err == nil {
		for _, x := range as {
			if n, ok := x.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok {
					ip = ip.Unmap()
					h.addrs[ip] = true
					ones, _ := n.Mask.Size()
					h.nets = append(h.nets, netip.PrefixFrom(ip, ones).Masked())
				}
			}
		}
	}
	h.at = time.Now()
}

func (h *hostAddrs) has(a netip.Addr) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.refresh()
	return h.addrs[a]
}

// onLink reports whether a is on one of the host's own networks.
func (h *hostAddrs) onLink(a netip.Addr) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.refresh()
	return inAny(h.nets, a)
}
