package daemon

import (
	"net"
	"net/netip"
)

// selfURL is where the daemon's MCP endpoint calls the daemon's own API:
// through its listener, so every tool call passes the API's checks like
// any client's. A wildcard listener is reached on 127.0.0.1: Go's
// wildcard sockets are dual-stack, and IPv6 may be off.
func selfURL(a net.Addr) string {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return "http://" + a.String()
	}
	ip := ap.Addr().Unmap()
	if ip.IsUnspecified() {
		ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	return "http://" + netip.AddrPortFrom(ip, ap.Port()).String()
}
