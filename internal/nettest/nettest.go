// Package nettest gives tests real network namespaces: run code inside one,
// listen inside one, and make a namespace that stands for a host outside,
// reached from this host over a veth on 198.18.0.0/15 (a benchmarking
// range), so tests never send traffic beyond this machine.
package nettest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"testing"

	"github.com/vishvananda/netns"
)

// In runs fn on a thread inside the namespace at path. The thread is never
// unlocked, so the runtime retires it afterwards.
func In(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := netns.GetFromPath(path)
		if err != nil {
			errc <- err
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Listen opens a TCP listener on addr inside the namespace at path, closed
// when the test ends.
func Listen(t testing.TB, path, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := In(path, func() (err error) { ln, err = net.Listen("tcp4", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// Outside makes a namespace standing for a remote host: this host is host,
// the namespace is peer, on a /30 of 198.18.0.0/15 picked at random so that
// parallel tests do not collide. Everything goes when the test ends.
func Outside(t testing.TB) (path string, host, peer netip.Addr) {
	t.Helper()
	var r [3]byte
	_, _ = rand.Read(r[:])
	tag := hex.EncodeToString(r[:])
	ns, veth := "hutch-t-"+tag, "hxt"+tag
	base := netip.AddrFrom4([4]byte{198, 18 + r[0]&1, r[1], r[2] & 0xfc})
	host, peer = base.Next(), base.Next().Next()
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	sh("ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", veth).Run() })
	sh("ip", "addr", "add", fmt.Sprintf("%s/30", host), "dev", veth)
	sh("ip", "link", "set", veth, "up")
	sh("ip", "-n", ns, "addr", "add", fmt.Sprintf("%s/30", peer), "dev", "eth0")
	sh("ip", "-n", ns, "link", "set", "eth0", "up")
	sh("ip", "-n", ns, "link", "set", "lo", "up")
	return "/run/netns/" + ns, host, peer
}
