// Package network gives each sandbox a network namespace of its own with a
// veth pair to a bridge of the daemon's, an address from the daemon's
// subnet, a default route, DNS through a forwarder on the bridge, and NAT to
// the outside. The host itself is out of reach from a sandbox, except for
// that DNS forwarder, and so are other sandboxes.
//
// Everything a daemon creates on the host is named after its tag (derived
// from its data dir): bridge hutchTAG, nftables table inet hutch-TAG, and
// per sandbox a host-side veth hvXXXXXXXXXXXX. Several daemons can share a
// host without touching each other's.
package network

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

const (
	bridgePrefix = "hutch"
	vethPrefix   = "hv"
	// PeerName is the sandbox's side of its veth pair.
	PeerName = "eth0"
)

// Config configures a daemon's network.
type Config struct {
	// Tag names what the daemon creates on the host; 8 characters at most.
	Tag string
	// StateFile persists the subnet across restarts.
	StateFile string
	// Subnet for sandbox addresses; zero keeps the persisted one or, the
	// first time, picks a free /18 of 10.0.0.0/8.
	Subnet netip.Prefix
	// ResolvConf is the host's resolver configuration; default
	// /etc/resolv.conf.
	ResolvConf string
	// Egress sends every TCP connection of a sandbox to the daemon's egress
	// proxy (see SetEgressPort) and forwards nothing else.
	Egress bool
}

// Network is one daemon's sandbox network.
type Network struct {
	log    *slog.Logger
	tag    string
	bridge string
	subnet netip.Prefix
	mtu    int
	ipam   *ipam
	fwd    *forwarder
	egress bool

	portsMu sync.Mutex // serialises changes to the bridge-port rules
	// portAddrs is what the bridge table lets each port send as: host-side
	// veth name → address.
	portAddrs map[string]netip.Addr
}

// Open sets up the daemon's bridge, rules and DNS forwarder, reusing what a
// previous daemon with the same tag left running.
func Open(log *slog.Logger, cfg Config) (*Network, error) {
	if cfg.Tag == "" || len(cfg.Tag) > 8 {
		return nil, fmt.Errorf("network tag %q: want 1 to 8 characters: %w", cfg.Tag, errdefs.ErrInvalidArgument)
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = "/etc/resolv.conf"
	}
	resolvers := hostResolvers(cfg.ResolvConf)
	subnet, err := pickSubnet(cfg, resolvers)
	if err != nil {
		return nil, err
	}
	n := &Network{log: log, tag: cfg.Tag, bridge: bridgePrefix + cfg.Tag, subnet: subnet, mtu: hostMTU(), ipam: newIPAM(subnet), egress: cfg.Egress, portAddrs: make(map[string]netip.Addr)}
	if err := n.ensureBridge(); err != nil {
		return nil, err
	}
	if err := enableForwarding(); err != nil {
		return nil, err
	}
	if err := applyRules(n.rules(0)); err != nil {
		return nil, err
	}
	n.fwd, err = startForwarder(log, n.ipam.gateway, resolvers)
	if err != nil {
		return nil, fmt.Errorf("dns forwarder on %s: %w", n.ipam.gateway, err)
	}
	log.Info("network ready", "bridge", n.bridge, "subnet", subnet, "dns", resolvers)
	return n, nil
}

func pickSubnet(cfg Config, resolvers []netip.Addr) (netip.Prefix, error) {
	release, err := hostLock()
	if err != nil {
		return netip.Prefix{}, err
	}
	defer release()
	st, err := loadState(cfg.StateFile)
	if err != nil {
		return netip.Prefix{}, err
	}
	switch {
	case cfg.Subnet.IsValid():
		if !cfg.Subnet.Addr().Is4() || cfg.Subnet.Bits() > 30 {
			return netip.Prefix{}, fmt.Errorf("subnet %s: want an IPv4 prefix of /30 or wider: %w", cfg.Subnet, errdefs.ErrInvalidArgument)
		}
		st.Subnet = cfg.Subnet.Masked()
	case st.Subnet.IsValid():
		return st.Subnet, nil
	default:
		used, err := inUse(resolvers)
		if err != nil {
			return netip.Prefix{}, err
		}
		if st.Subnet, err = chooseSubnet(cfg.Tag, used); err != nil {
			return netip.Prefix{}, err
		}
	}
	return st.Subnet, saveState(cfg.StateFile, st)
}

func (n *Network) rules(proxyPort uint16) ruleSet {
	return ruleSet{tag: n.tag, bridge: n.bridge, subnet: n.subnet, gateway: n.ipam.gateway, egress: n.egress, proxyPort: proxyPort}
}

// SetEgressPort redirects every TCP connection from sandboxes to port on
// the gateway, where the egress proxy listens. It needs Config.Egress.
func (n *Network) SetEgressPort(port uint16) error {
	if !n.egress {
		return fmt.Errorf("egress port on a network opened without egress control: %w", errdefs.ErrFailedPrecondition)
	}
	return applyRules(n.rules(port))
}

// SetDNSFilter makes the DNS forwarder ask f before it forwards a query.
func (n *Network) SetDNSFilter(f DNSFilter) { n.fwd.filter.Store(&f) }

// Subnet is where sandbox addresses come from.
func (n *Network) Subnet() netip.Prefix { return n.subnet }

// Gateway is the bridge's address: the sandboxes' default route and DNS
// server.
func (n *Network) Gateway() netip.Addr { return n.ipam.gateway }

// Bridge is the name of the daemon's bridge.
func (n *Network) Bridge() string { return n.bridge }

// ResolvConf is the resolv.conf sandboxes get.
func (n *Network) ResolvConf() []byte { return resolvConf(n.ipam.gateway) }

// Allocate gives sandbox id a free address.
func (n *Network) Allocate(_ context.Context, id string) (netip.Addr, error) {
	return n.ipam.Allocate(id)
}

// Reserve claims addr for sandbox id, as read back from its record.
func (n *Network) Reserve(_ context.Context, id string, addr netip.Addr) error {
	return n.ipam.Reserve(id, addr)
}

// Release frees sandbox id's address.
func (n *Network) Release(_ context.Context, id string, addr netip.Addr) { n.ipam.Release(id, addr) }

func (n *Network) ensureBridge() error {
	l, err := netlink.LinkByName(n.bridge)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return err
		}
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n.bridge, MTU: n.mtu}}
		if err := netlink.LinkAdd(br); err != nil {
			return fmt.Errorf("create bridge %s: %w", n.bridge, err)
		}
		if l, err = netlink.LinkByName(n.bridge); err != nil {
			return err
		}
	}
	want := &netlink.Addr{IPNet: ipnet(n.ipam.gateway, n.subnet.Bits())}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if !a.IPNet.IP.Equal(want.IP) || a.Mask.String() != want.Mask.String() {
			_ = netlink.AddrDel(l, &a) // the subnet changed
		}
	}
	if err := netlink.AddrReplace(l, want); err != nil {
		return fmt.Errorf("address bridge %s: %w", n.bridge, err)
	}
	return netlink.LinkSetUp(l)
}

// Setup creates sandbox id's namespace at nsPath (or reuses it), connects
// it to the bridge and gives it addr. It leaves nothing behind on failure.
func (n *Network) Setup(ctx context.Context, id, nsPath string, addr netip.Addr) (err error) {
	if !n.subnet.Contains(addr) {
		return fmt.Errorf("sandbox %s: address %s is outside %s: %w", id, addr, n.subnet, errdefs.ErrFailedPrecondition)
	}
	if !isNetns(nsPath) {
		_ = os.Remove(nsPath) // left from before a reboot
		if err := newNetns(nsPath); err != nil {
			return err
		}
	}
	defer func() {
		if err != nil {
			_ = n.Teardown(context.WithoutCancel(ctx), id, nsPath)
		}
	}()
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return err
	}
	defer ns.Close()
	host := vethName(id)
	if l, err := netlink.LinkByName(host); err == nil {
		_ = netlink.LinkDel(l)
	}
	br, err := netlink.LinkByName(n.bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", n.bridge, err)
	}
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: host, MTU: n.mtu, MasterIndex: br.Attrs().Index},
		PeerName:      PeerName,
		PeerNamespace: netlink.NsFd(int(ns)),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s: %w", host, err)
	}
	hl, err := netlink.LinkByName(host)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetIsolated(hl, true); err != nil {
		return fmt.Errorf("isolate %s: %w", host, err)
	}
	if err := netlink.LinkSetUp(hl); err != nil {
		return err
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return err
	}
	if err := h.LinkSetUp(lo); err != nil {
		return err
	}
	eth, err := h.LinkByName(PeerName)
	if err != nil {
		return err
	}
	if err := h.AddrAdd(eth, &netlink.Addr{IPNet: ipnet(addr, n.subnet.Bits())}); err != nil {
		return fmt.Errorf("address %s: %w", addr, err)
	}
	if err := h.LinkSetUp(eth); err != nil {
		return err
	}
	gw := n.ipam.gateway.AsSlice()
	if err := h.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: gw}); err != nil {
		return fmt.Errorf("default route: %w", err)
	}
	if err := n.addPort(host, addr); err != nil {
		return err
	}
	return nil
}

// Teardown disconnects sandbox id and removes its namespace; its address
// stays reserved. Whatever is already gone is fine.
func (n *Network) Teardown(_ context.Context, id, nsPath string) error {
	if err := n.dropPort(vethName(id)); err != nil {
		return err
	}
	if l, err := netlink.LinkByName(vethName(id)); err == nil {
		if err := netlink.LinkDel(l); err != nil {
			return fmt.Errorf("delete veth %s: %w", vethName(id), err)
		}
	}
	return removeNetns(nsPath)
}

// Sweep deletes host-side veths on the bridge of sandboxes that known does
// not recognise: left by a daemon that died mid-create.
func (n *Network) Sweep(_ context.Context, known func(id string) bool) {
	for _, l := range n.ports() {
		name := l.Attrs().Name
		if strings.HasPrefix(name, vethPrefix) && !known("hb-"+strings.TrimPrefix(name, vethPrefix)) {
			n.log.Info("removing orphaned veth", "veth", name)
			_ = netlink.LinkDel(l)
		}
	}
	// The addresses of the sandboxes known are reserved by now: the port
	// table is rebuilt from them, in one atomic batch.
	n.portsMu.Lock()
	defer n.portsMu.Unlock()
	ports := make(map[string]netip.Addr)
	for owner, a := range n.ipam.held() {
		ports[vethName(owner)] = a
	}
	if err := installPortTable(n.tag, ports); err != nil {
		n.log.Warn("bridge port rules", "err", err)
		return
	}
	n.portAddrs = ports
}

// addPort lets port send as addr only: two set elements, whatever the
// number of sandboxes. A table missing or of an older daemon's making is
// installed whole first.
func (n *Network) addPort(port string, addr netip.Addr) error {
	n.portsMu.Lock()
	defer n.portsMu.Unlock()
	err := setPort(n.tag, port, n.portAddrs[port], addr)
	if errors.Is(err, unix.ENOENT) {
		ports := maps.Clone(n.portAddrs)
		ports[port] = addr
		err = installPortTable(n.tag, ports)
	}
	if err != nil {
		return err
	}
	n.portAddrs[port] = addr
	return nil
}

// dropPort removes port's elements; the port is about to go.
func (n *Network) dropPort(port string) error {
	n.portsMu.Lock()
	defer n.portsMu.Unlock()
	old, ok := n.portAddrs[port]
	if !ok {
		return nil
	}
	if err := setPort(n.tag, port, old, netip.Addr{}); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	delete(n.portAddrs, port)
	return nil
}

// ports lists the links attached to the bridge.
func (n *Network) ports() []netlink.Link {
	br, err := netlink.LinkByName(n.bridge)
	if err != nil {
		return nil
	}
	links, err := netlink.LinkList()
	if err != nil {
		return nil
	}
	var out []netlink.Link
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			out = append(out, l)
		}
	}
	return out
}

// Close stops the DNS forwarder. When no sandbox is attached any more it
// also removes the bridge and the rules; otherwise they stay for the
// sandboxes that outlive the daemon.
func (n *Network) Close() error {
	n.fwd.close()
	if len(n.ports()) > 0 {
		return nil
	}
	var errs []error
	if l, err := netlink.LinkByName(n.bridge); err == nil {
		errs = append(errs, netlink.LinkDel(l))
	}
	errs = append(errs, removeRules(n.tag))
	return errors.Join(errs...)
}

// vethName is the host side of sandbox id's veth pair: "hv" and the id's
// 12 hex digits, within the 15 characters Linux allows.
func vethName(id string) string { return vethPrefix + strings.TrimPrefix(id, "hb-") }

func ipnet(a netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, a.BitLen())}
}

func prefixOf(ip net.IP, mask net.IPMask) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones).Masked(), true
}

// hostMTU is the MTU of the interface of the host's default route, so
// sandboxes never send packets the uplink must fragment.
func hostMTU() int {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err == nil {
		for _, r := range routes {
			if r.Dst == nil || r.Dst.IP.IsUnspecified() {
				if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil && l.Attrs().MTU > 0 {
					return l.Attrs().MTU
				}
			}
		}
	}
	return 1500
}
