package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/hutch-sh/hutch/internal/nettest"
	"github.com/hutch-sh/hutch/internal/testutil"
)

func dialFrom(t *testing.T, nsPath, addr string) (local, remote string, err error) {
	err = nettest.In(nsPath, func() error {
		c, err := net.DialTimeout("tcp", addr, 700*time.Millisecond)
		if err != nil {
			return err
		}
		defer c.Close()
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		remote = string(buf[:n])
		local = c.LocalAddr().String()
		return err
	})
	return local, remote, err
}

// serveRemote accepts on ln and writes each client's address back to it.
func serveRemote(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		_, _ = c.Write([]byte(host))
		c.Close()
	}
}

func listenIn(t *testing.T, nsPath, addr string) net.Listener {
	t.Helper()
	ln := nettest.Listen(t, nsPath, addr)
	go serveRemote(ln)
	return ln
}

// randBase picks the first of a run of sandbox ids nobody else uses.
func randBase(t *testing.T) uint64 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return uint64(b[0])<<32 | uint64(b[1])<<24 | uint64(b[2])<<16 | uint64(b[3])<<8
}

func sandboxID(base uint64, i int) string { return fmt.Sprintf("hb-%012x", base+uint64(i)) }

func randTag(t *testing.T) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:])
}

// fakeUpstream answers every A query with 203.0.113.7, and reports whether
// it was asked a name.
func fakeUpstream(t *testing.T, addr string) (asked func(name string) bool) {
	t.Helper()
	pc, err := net.ListenPacket("udp4", addr)
	if err != nil {
		testutil.Unavailable(t, "cannot bind a fake resolver on %s: %v", addr, err)
	}
	var mu sync.Mutex
	seen := map[string]bool{}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		mu.Lock()
		seen[q.Question[0].Name] = true
		mu.Unlock()
		m := new(dns.Msg)
		m.SetReply(q)
		rr, _ := dns.NewRR(q.Question[0].Name + " 60 IN A 203.0.113.7")
		m.Answer = append(m.Answer, rr)
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return func(name string) bool {
		mu.Lock()
		defer mu.Unlock()
		return seen[name]
	}
}

func TestSandboxNetwork(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	resolv := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.153\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	asked := fakeUpstream(t, "127.0.0.153:53")
	tag := randTag(t)
	cfg := Config{Tag: tag, StateFile: filepath.Join(dir, "network.json"), ResolvConf: resolv}
	n, err := Open(slog.New(slog.DiscardHandler), cfg)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = n.Close()
		}
	})
	gw := n.Gateway()
	// Ids of their own: a stale bridge table of a killed run names its
	// ports, and would judge ours by its addresses.
	base := randBase(t)
	ctx := context.Background()

	var ns [2]string
	var addrs [2]netip.Addr
	for i := range ns {
		id := sandboxID(base, i)
		addrs[i], err = n.Allocate(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		ns[i] = filepath.Join(dir, fmt.Sprintf("ns%d", i))
		if err := n.Setup(ctx, id, ns[i], addrs[i]); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Teardown(ctx, id, ns[i]) })
		if addr, via := attachment(t, ns[i]); addr != addrs[i] || via != gw {
			t.Fatalf("attached as %s via %s, want %s via %s", addr, via, addrs[i], gw)
		}
	}

	// The host's services are out of reach, whichever of its addresses a
	// sandbox tries; the host itself reaches them fine.
	host, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	go serveRemote(host)
	_, port, _ := net.SplitHostPort(host.Addr().String())
	hostAddrs := []string{gw.String()}
	if as, err := netlink.AddrList(nil, netlink.FAMILY_V4); err == nil {
		for _, a := range as {
			if !a.IP.IsLoopback() && !strings.HasPrefix(a.Label, bridgePrefix) {
				hostAddrs = append(hostAddrs, a.IP.String())
			}
		}
	}
	for _, a := range hostAddrs {
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(a, port), time.Second); err != nil {
			t.Fatalf("host cannot reach its own listener on %s: %v", a, err)
		} else {
			c.Close()
		}
		if _, _, err := dialFrom(t, ns[0], net.JoinHostPort(a, port)); err == nil {
			t.Errorf("sandbox reached the host's service on %s:%s", a, port)
		}
	}

	// Sandboxes cannot reach each other, but the host reaches them.
	listenIn(t, ns[1], "0.0.0.0:8000")
	if _, _, err := dialFrom(t, ns[0], net.JoinHostPort(addrs[1].String(), "8000")); err == nil {
		t.Errorf("sandbox 0 reached sandbox 1")
	}
	if c, err := net.DialTimeout("tcp", net.JoinHostPort(addrs[1].String(), "8000"), time.Second); err != nil {
		t.Errorf("host cannot reach sandbox 1: %v", err)
	} else {
		c.Close()
	}

	// DNS goes through the forwarder on the gateway to the host's resolver.
	err = nettest.In(ns[0], func() error {
		q := new(dns.Msg)
		q.SetQuestion("example.test.", dns.TypeA)
		r, err := dns.Exchange(q, net.JoinHostPort(gw.String(), "53"))
		if err != nil {
			return err
		}
		if len(r.Answer) != 1 || !strings.Contains(r.Answer[0].String(), "203.0.113.7") {
			return fmt.Errorf("answer %v", r.Answer)
		}
		return nil
	})
	if err != nil {
		t.Errorf("dns from sandbox: %v", err)
	}

	// A sandbox cannot send as another: sandbox 0 takes sandbox 1's address
	// as a second one of its own (root in the test can; in a sandbox, raw
	// sockets can) and looks a name up from it. The query must never reach
	// the upstream: it would be judged by sandbox 1's policy, a way out for
	// data that sandbox 0's policy keeps in.
	spoof := func(src netip.Addr, name string) {
		_ = nettest.In(ns[0], func() error {
			c := &dns.Client{Net: "udp", Timeout: 700 * time.Millisecond,
				Dialer: &net.Dialer{Timeout: 700 * time.Millisecond, LocalAddr: &net.UDPAddr{IP: src.AsSlice()}}}
			q := new(dns.Msg)
			q.SetQuestion(name, dns.TypeA)
			_, _, err := c.Exchange(q, net.JoinHostPort(gw.String(), "53"))
			return err
		})
	}
	if err := nettest.In(ns[0], func() error {
		eth, err := netlink.LinkByName(PeerName)
		if err != nil {
			return err
		}
		return netlink.AddrAdd(eth, &netlink.Addr{IPNet: ipnet(addrs[1], 32)})
	}); err != nil {
		t.Fatal(err)
	}
	spoof(addrs[1], "spoofed.test.")
	spoof(addrs[0], "own.test.")
	if !asked("own.test.") {
		t.Errorf("sandbox 0's query from its own address did not reach the upstream")
	}
	if asked("spoofed.test.") {
		t.Errorf("sandbox 0's query sent as sandbox 1 (%s) reached the upstream", addrs[1])
	}

	// Outbound traffic leaves NATed: a server outside sees the host's
	// address, not the sandbox's.
	outside, outsideHost, outsidePeer := nettest.Outside(t)
	listenIn(t, outside, "0.0.0.0:9000")
	local, remote, err := dialFrom(t, ns[0], net.JoinHostPort(outsidePeer.String(), "9000"))
	if err != nil {
		t.Fatalf("sandbox cannot reach the outside: %v", err)
	}
	if !strings.HasPrefix(local, addrs[0].String()+":") {
		t.Errorf("sandbox's local address %s, want %s", local, addrs[0])
	}
	if remote != outsideHost.String() {
		t.Errorf("outside saw %s, want the host's %s (masquerade)", remote, outsideHost)
	}

	// Tear-down leaves nothing: no veth, no namespace, no bridge, no table.
	for i := range ns {
		id := sandboxID(base, i)
		if err := n.Teardown(ctx, id, ns[i]); err != nil {
			t.Fatal(err)
		}
		if _, err := netlink.LinkByName(vethName(id)); err == nil {
			t.Errorf("veth %s left behind", vethName(id))
		}
		if _, err := os.Stat(ns[i]); !os.IsNotExist(err) {
			t.Errorf("namespace file %s left behind: %v", ns[i], err)
		}
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	if _, err := netlink.LinkByName(bridgePrefix + tag); err == nil {
		t.Errorf("bridge left behind")
	}
	if ok, err := hasRules(tag); err != nil || ok {
		t.Errorf("nftables table left behind (%v)", err)
	}
	if c, err := nftables.New(); err == nil {
		if ts, err := c.ListTablesOfFamily(nftables.TableFamilyBridge); err == nil {
			for _, tb := range ts {
				if tb.Name == "hutch-"+tag {
					t.Errorf("bridge table %s left behind", tb.Name)
				}
			}
		}
	}

	// The subnet survives a restart.
	n2, err := Open(slog.New(slog.DiscardHandler), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	if n2.Subnet() != n.Subnet() {
		t.Fatalf("subnet after restart %s, want %s", n2.Subnet(), n.Subnet())
	}
}

// attachment reads the address and default gateway of the sandbox side of
// the namespace at nsPath.
func attachment(t *testing.T, nsPath string) (addr, gw netip.Addr) {
	t.Helper()
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	eth, err := h.LinkByName(PeerName)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := h.AddrList(eth, netlink.FAMILY_V4)
	if err != nil || len(addrs) != 1 {
		t.Fatalf("addresses of %s: %v %v", PeerName, addrs, err)
	}
	addr, _ = netip.AddrFromSlice(addrs[0].IP.To4())
	routes, err := h.RouteList(eth, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if r.Gw != nil { // the default route is the only one with a gateway
			gw, _ = netip.AddrFromSlice(r.Gw.To4())
		}
	}
	return addr, gw
}
