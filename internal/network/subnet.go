package network

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

// autoBits is the size of an automatically chosen subnet: a /18 holds 16,381
// sandboxes.
const autoBits = 18

// state is what the network persists next to the daemon's data, so the
// subnet, and with it every sandbox address in the records, stays the same
// across restarts.
type state struct {
	Subnet netip.Prefix `json:"subnet"`
}

func loadState(path string) (state, error) {
	var s state
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return s, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

func saveState(path string, s state) error {
	raw, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(raw); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// hostLock serialises subnet choice between daemons on one host, so two
// starting at once never take the same free range.
func hostLock() (release func(), err error) {
	const dir = "/run/hutch"
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "network.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// inUse lists the prefixes this host already routes or owns, and the DNS
// servers it uses, which a sandbox subnet must not shadow.
func inUse(resolvers []netip.Addr) ([]netip.Prefix, error) {
	var out []netip.Prefix
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst == nil {
			continue // a default route shadows nothing
		}
		if p, ok := prefixOf(r.Dst.IP, r.Dst.Mask); ok && p.Bits() > 0 {
			out = append(out, p)
		}
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		if p, ok := prefixOf(a.IP, a.Mask); ok {
			out = append(out, p)
		}
	}
	for _, r := range resolvers {
		if r.Is4() {
			out = append(out, netip.PrefixFrom(r, 32))
		}
	}
	return out, nil
}

// chooseSubnet picks a free /18 in 10.0.0.0/8, starting from a point derived
// from tag so that daemons on one host spread out.
func chooseSubnet(tag string, used []netip.Prefix) (netip.Prefix, error) {
	h := fnv.New32a()
	h.Write([]byte(tag))
	const n = 1 << (autoBits - 8) // /18s in a /8
	start := h.Sum32() % n
	for i := range uint32(n) {
		k := (start + i) % n
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], 10<<24|k<<(32-autoBits))
		p := netip.PrefixFrom(netip.AddrFrom4(b), autoBits)
		if !overlapsAny(p, used) {
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("no free /%d left in 10.0.0.0/8 for sandboxes; set one with --subnet: %w", autoBits, errdefs.ErrResourceExhausted)
}

func overlapsAny(p netip.Prefix, used []netip.Prefix) bool {
	for _, u := range used {
		if p.Overlaps(u) {
			return true
		}
	}
	return false
}
