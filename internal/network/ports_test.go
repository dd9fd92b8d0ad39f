package network

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/nftables"

	"github.com/hutch-sh/hutch/internal/testutil"
)

// portElems reads the bridge table's sets: port names, and port → address.
func portElems(t *testing.T, tag string) (ports map[string]bool, owners map[string]netip.Addr) {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	tb := portTable(tag)
	pset, oset := portSets(tb)
	ps, err := c.GetSetElements(pset)
	if err != nil {
		t.Fatalf("ports set: %v", err)
	}
	os, err := c.GetSetElements(oset)
	if err != nil {
		t.Fatalf("owners set: %v", err)
	}
	ports, owners = map[string]bool{}, map[string]netip.Addr{}
	for _, e := range ps {
		ports[ifnameString(e.Key)] = true
	}
	for _, e := range os {
		if len(e.Key) != 20 {
			t.Fatalf("owners key of %d bytes, want 16 + 4", len(e.Key))
		}
		name := ifnameString(e.Key[:16])
		if prev, dup := owners[name]; dup {
			t.Errorf("port %s may send as %s and %s", name, prev, netip.AddrFrom4([4]byte(e.Key[16:20])))
		}
		owners[name] = netip.AddrFrom4([4]byte(e.Key[16:20]))
	}
	return ports, owners
}

func ifnameString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// Port rules are two set elements per sandbox under two fixed rules: the
// 75th sandbox no longer overflows a netlink batch, a port that changes
// address keeps only the new one, a restarted daemon rebuilds them from the
// addresses it holds, and tear-down removes them.
func TestPortRulesScale(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	const n = 150 // the whole-table rewrite it replaces failed at 74
	dir := t.TempDir()
	tag := randTag(t)
	cfg := Config{Tag: tag, StateFile: filepath.Join(dir, "network.json"), ResolvConf: "/dev/null"}
	nw, err := Open(slog.New(slog.DiscardHandler), cfg)
	if err != nil {
		t.Fatal(err)
	}
	base := randBase(t)
	ids := make([]string, n)
	paths := make([]string, n)
	addrs := make([]netip.Addr, n)
	t.Cleanup(func() {
		for i, id := range ids {
			if id != "" {
				_ = nw.Teardown(ctx, id, paths[i])
			}
		}
		_ = nw.Close()
	})
	for i := range n {
		ids[i] = sandboxID(base, i)
		paths[i] = filepath.Join(dir, fmt.Sprintf("ns%d", i))
		if addrs[i], err = nw.Allocate(ctx, ids[i]); err != nil {
			t.Fatal(err)
		}
		if err := nw.Setup(ctx, ids[i], paths[i], addrs[i]); err != nil {
			t.Fatalf("sandbox %d: %v", i, err)
		}
	}
	ports, owners := portElems(t, tag)
	if len(ports) != n || len(owners) != n {
		t.Fatalf("%d ports and %d owners in the sets, want %d", len(ports), len(owners), n)
	}
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	rules, err := c.GetRules(portTable(tag), &nftables.Chain{Name: "prerouting", Table: portTable(tag)})
	if err != nil || len(rules) != 2 {
		t.Fatalf("%d bridge rules (%v), want 2 whatever the number of sandboxes", len(rules), err)
	}

	// Sandbox 0 comes back with another address: only the new one passes.
	if err := nw.Teardown(ctx, ids[0], paths[0]); err != nil {
		t.Fatal(err)
	}
	nw.Release(ctx, ids[0], addrs[0])
	if addrs[0], err = nw.Allocate(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	if err := nw.Setup(ctx, ids[0], paths[0], addrs[0]); err != nil {
		t.Fatal(err)
	}
	if _, owners = portElems(t, tag); owners[vethName(ids[0])] != addrs[0] {
		t.Fatalf("port %s may send as %v, want %s", vethName(ids[0]), owners[vethName(ids[0])], addrs[0])
	}

	// A restarted daemon rebuilds the sets from the addresses it holds.
	if err := nw.Close(); err != nil {
		t.Fatal(err)
	}
	nw2, err := Open(slog.New(slog.DiscardHandler), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := nw2.Reserve(ctx, ids[i], addrs[i]); err != nil {
			t.Fatal(err)
		}
	}
	nw2.Sweep(ctx, func(string) bool { return true })
	if ports, owners = portElems(t, tag); len(ports) != n || len(owners) != n || owners[vethName(ids[n-1])] != addrs[n-1] {
		t.Fatalf("after a restart: %d ports, %d owners, last %v; want %d and %s", len(ports), len(owners), owners[vethName(ids[n-1])], n, addrs[n-1])
	}
	nw = nw2

	for i := range n {
		if err := nw.Teardown(ctx, ids[i], paths[i]); err != nil {
			t.Fatal(err)
		}
		ids[i] = ""
	}
	if ports, owners = portElems(t, tag); len(ports) != 0 || len(owners) != 0 {
		t.Fatalf("after tear-down: %d ports and %d owners left", len(ports), len(owners))
	}
	if _, err := os.Stat(paths[1]); !os.IsNotExist(err) {
		t.Errorf("namespace %s left: %v", paths[1], err)
	}
}
