package network

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// forwarder is the sandboxes' DNS server: it listens on the bridge's
// gateway address and forwards queries to the host's resolvers. Sandboxes
// never talk to those directly, which also works when the host's resolver
// is on its loopback (systemd-resolved), and gives the egress policy one
// place to see every name a sandbox looks up.
type forwarder struct {
	log       *slog.Logger
	upstreams []string // host:port
	servers   []*dns.Server
	filter    atomic.Pointer[DNSFilter]
}

// DNSFilter says whether the sandbox at src may look name up; a refused
// query is answered REFUSED and never leaves the host, so a sandbox cannot
// smuggle data out in the names it looks up.
type DNSFilter func(src netip.Addr, name string) bool

// upstreamTimeout bounds one forwarded query.
const upstreamTimeout = 4 * time.Second

// hostResolvers reads the host's name servers from resolv.conf.
func hostResolvers(path string) []netip.Addr {
	cfg, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, s := range cfg.Servers {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a.Unmap())
		}
	}
	return out
}

func startForwarder(log *slog.Logger, listen netip.Addr, resolvers []netip.Addr) (*forwarder, error) {
	f := &forwarder{log: log}
	for _, r := range resolvers {
		f.upstreams = append(f.upstreams, net.JoinHostPort(r.String(), "53"))
	}
	addr := net.JoinHostPort(listen.String(), "53")
	pc, err := net.ListenPacket("udp4", addr)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		pc.Close()
		return nil, err
	}
	f.servers = []*dns.Server{
		{PacketConn: pc, Handler: f.handler("udp")},
		{Listener: ln, Handler: f.handler("tcp")},
	}
	for _, s := range f.servers {
		go func() { _ = s.ActivateAndServe() }()
	}
	return f, nil
}

// handler forwards over the transport the query came in on, so a truncated
// UDP answer makes the sandbox retry over TCP end to end.
func (f *forwarder) handler(transport string) dns.Handler {
	c := &dns.Client{Net: transport, Timeout: upstreamTimeout}
	return dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		if f := f.filter.Load(); f != nil && !f.allows(w.RemoteAddr(), q) {
			refused := new(dns.Msg)
			refused.SetRcode(q, dns.RcodeRefused)
			_ = w.WriteMsg(refused)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), upstreamTimeout)
		defer cancel()
		for _, up := range f.upstreams {
			resp, _, err := c.ExchangeContext(ctx, q, up)
			if err == nil {
				_ = w.WriteMsg(resp)
				return
			}
			f.log.Debug("dns: upstream failed", "upstream", up, "err", err)
		}
		fail := new(dns.Msg)
		fail.SetRcode(q, dns.RcodeServerFailure)
		_ = w.WriteMsg(fail)
	})
}

func (f DNSFilter) allows(src net.Addr, q *dns.Msg) bool {
	ap, err := netip.ParseAddrPort(src.String())
	if err != nil {
		return false
	}
	for _, qq := range q.Question {
		if !f(ap.Addr().Unmap(), qq.Name) {
			return false
		}
	}
	return true
}

func (f *forwarder) close() {
	for _, s := range f.servers {
		_ = s.Shutdown()
	}
}

// resolvConf is the /etc/resolv.conf of a sandbox behind gateway.
func resolvConf(gateway netip.Addr) []byte {
	return []byte("# written by hutch: the daemon's DNS forwarder\nnameserver " + gateway.String() + "\noptions edns0\n")
}
