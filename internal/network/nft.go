package network

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sort"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The daemon's rules live in one inet table of their own, replaced whole and
// atomically on every start, and removed with the bridge:
//
//	table inet hutch-TAG {
//	  chain input {        # from sandboxes to this host
//	    iifname BR ct state established,related accept
//	    iifname BR ip daddr GW udp/tcp dport 53 accept   # the DNS forwarder
//	    iifname BR reject
//	  }
//	  chain forward {      # from sandboxes to elsewhere
//	    iifname BR ct state established,related accept
//	    iifname BR ip daddr 169.254.0.0/16 reject        # cloud metadata
//	    iifname BR oifname "hutch*" reject               # other sandboxes
//	    iifname BR reject                                # with egress control
//	  }
//	  chain prerouting {   # nat, with egress control and its proxy on PORT
//	    iifname BR ip daddr GW return
//	    iifname BR meta l4proto tcp redirect to :PORT
//	  }
//	  chain postrouting {  # nat
//	    ip saddr SUBNET oifname != BR masquerade
//	  }
//	}
//
// With egress control (Config.Egress) nothing a sandbox sends is forwarded:
// every TCP connection is redirected to the daemon's egress proxy, which
// decides and connects on the sandbox's behalf; UDP and the rest are
// rejected, except DNS to the forwarder. Until the proxy's port is known,
// TCP is rejected too.
//
// Sandboxes on one bridge cannot reach each other either: their bridge
// ports are isolated. A second table, bridge hutch-TAG (see portTable),
// lets each port pass only its sandbox's own address. Refused traffic is rejected (ICMP administratively
// prohibited), not dropped, so a program in a sandbox fails at once instead
// of waiting for a timeout.

func tableFor(tag string) *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyINet, Name: "hutch-" + tag}
}

// ruleSet is what the daemon's table is built from.
type ruleSet struct {
	tag, bridge string
	subnet      netip.Prefix
	gateway     netip.Addr
	egress      bool   // all traffic through the egress proxy
	proxyPort   uint16 // the proxy's port on the gateway; 0: not yet up
}

// applyRules installs (or replaces) the daemon's table.
func applyRules(rs ruleSet) error {
	tag, bridge, subnet, gateway := rs.tag, rs.bridge, rs.subnet, rs.gateway
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	t := tableFor(tag)
	// Add, delete, add in one batch: the table is replaced atomically
	// whether or not it existed.
	c.AddTable(t)
	c.DelTable(t)
	t = c.AddTable(t)
	accept := nftables.ChainPolicyAccept

	input := c.AddChain(&nftables.Chain{Name: "input", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	rule(c, input, iif(bridge), established(), verdict(expr.VerdictAccept))
	for _, proto := range []byte{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
		rule(c, input, iif(bridge), ip4(), daddr(netip.PrefixFrom(gateway, 32)), l4(proto), dport(53), verdict(expr.VerdictAccept))
	}
	if rs.egress && rs.proxyPort != 0 {
		rule(c, input, iif(bridge), ip4(), daddr(netip.PrefixFrom(gateway, 32)), l4(unix.IPPROTO_TCP), dport(rs.proxyPort), verdict(expr.VerdictAccept))
	}
	rule(c, input, iif(bridge), reject())

	forward := c.AddChain(&nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	rule(c, forward, iif(bridge), established(), verdict(expr.VerdictAccept))
	rule(c, forward, iif(bridge), ip4(), daddr(netip.MustParsePrefix("169.254.0.0/16")), reject())
	rule(c, forward, iif(bridge), oifPrefix(bridgePrefix), reject())
	if rs.egress {
		rule(c, forward, iif(bridge), reject())
		if rs.proxyPort != 0 {
			pre := c.AddChain(&nftables.Chain{Name: "prerouting", Table: t, Type: nftables.ChainTypeNAT,
				Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest, Policy: &accept})
			rule(c, pre, iif(bridge), ip4(), daddr(netip.PrefixFrom(gateway, 32)), verdict(expr.VerdictReturn))
			rule(c, pre, iif(bridge), l4(unix.IPPROTO_TCP), redirectTo(rs.proxyPort))
		}
	}

	post := c.AddChain(&nftables.Chain{Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept})
	rule(c, post, ip4(), saddr(subnet), oifNot(bridge), []expr.Any{&expr.Masq{}})

	if err := c.Flush(); err != nil {
		return fmt.Errorf("install nftables rules: %w", err)
	}
	return nil
}

// portTable holds the daemon's bridge-family rules: on its bridge's ports,
// a frame from a sandbox must carry that sandbox's own address, as IPv4
// source and as ARP sender. Without them a sandbox with CAP_NET_RAW could
// send as another (and be judged by the other's egress policy, e.g. for DNS
// queries), or poison the host's neighbour entry for another's address.
//
//	table bridge hutch-TAG {
//	  set ports  { type ifname; }               # this daemon's sandbox ports
//	  set owners { type ifname . ipv4_addr; }   # each port → its one address
//	  chain prerouting {
//	    iifname @ports meta protocol ip  iifname . ip saddr     != @owners drop
//	    iifname @ports meta protocol arp iifname . arp saddr ip != @owners drop
//	  }
//	}
//
// The rules never change: a sandbox's start adds its two elements and its
// stop deletes them, so neither costs more with a thousand sandboxes than
// with one, and no netlink batch grows with their number.
func portTable(tag string) *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyBridge, Name: "hutch-" + tag}
}

func portSets(t *nftables.Table) (ports, owners *nftables.Set) {
	ports = &nftables.Set{Table: t, Name: "ports", KeyType: nftables.TypeIFName}
	owners = &nftables.Set{Table: t, Name: "owners", Concatenation: true,
		KeyType: nftables.MustConcatSetType(nftables.TypeIFName, nftables.TypeIPAddr)}
	return ports, owners
}

// elemsPerMessage bounds one netlink message of set elements (≈ 40 bytes
// each), well under what a socket buffer takes.
const elemsPerMessage = 512

// installPortTable replaces the bridge table, in one atomic batch, with the
// fixed rules and an element for each of ports (host-side veth name → the
// only address that may come from it). It runs when the daemon starts.
func installPortTable(tag string, ports map[string]netip.Addr) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	t := portTable(tag)
	c.AddTable(t)
	c.DelTable(t)
	t = c.AddTable(t)
	pset, oset := portSets(t)
	if err := c.AddSet(pset, nil); err != nil {
		return err
	}
	if err := c.AddSet(oset, nil); err != nil {
		return err
	}
	accept := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{Name: "prerouting", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	// ip saddr at offset 12 of the IPv4 header; the ARP sender's protocol
	// address at offset 14 of an Ethernet/IPv4 ARP packet.
	rule(c, ch, etherType(0x0800), inSet(pset), notOwner(oset, 12), verdict(expr.VerdictDrop))
	rule(c, ch, etherType(0x0806), inSet(pset), notOwner(oset, 14), verdict(expr.VerdictDrop))
	names := make([]string, 0, len(ports))
	for name := range ports {
		names = append(names, name)
	}
	sort.Strings(names)
	for len(names) > 0 {
		n := min(len(names), elemsPerMessage)
		pe, oe := make([]nftables.SetElement, 0, n), make([]nftables.SetElement, 0, n)
		for _, name := range names[:n] {
			pe = append(pe, nftables.SetElement{Key: ifname(name)})
			oe = append(oe, nftables.SetElement{Key: ownerKey(name, ports[name])})
		}
		if err := c.SetAddElements(pset, pe); err != nil {
			return err
		}
		if err := c.SetAddElements(oset, oe); err != nil {
			return err
		}
		names = names[n:]
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("install nftables port rules: %w", err)
	}
	return nil
}

// setPort lets port send as addr only, replacing old (its previous
// address, if valid); with addr invalid it removes the port. Elements that
// are already gone are fine.
func setPort(tag, port string, old, addr netip.Addr) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	pset, oset := portSets(portTable(tag))
	if old.IsValid() && old != addr {
		if err := deleteElem(c, oset, ownerKey(port, old)); err != nil {
			return err
		}
	}
	if !addr.IsValid() {
		if err := deleteElem(c, pset, ifname(port)); err != nil {
			return err
		}
		return nil
	}
	if err := c.SetAddElements(oset, []nftables.SetElement{{Key: ownerKey(port, addr)}}); err != nil {
		return err
	}
	if err := c.SetAddElements(pset, []nftables.SetElement{{Key: ifname(port)}}); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables port rules for %s: %w", port, err)
	}
	return nil
}

// deleteElem deletes one element in a batch of its own, so that one
// already gone (ENOENT) fails nothing else.
func deleteElem(c *nftables.Conn, s *nftables.Set, key []byte) error {
	if err := c.SetDeleteElements(s, []nftables.SetElement{{Key: key}}); err != nil {
		return err
	}
	if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("nftables: delete from set %s: %w", s.Name, err)
	}
	return nil
}

// ownerKey is a key of the owners set: the port's name, then its address.
func ownerKey(port string, a netip.Addr) []byte {
	b := a.As4()
	return append(ifname(port), b[:]...)
}

// inSet matches frames that came in on a port of s.
func inSet(s *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID},
	}
}

// The 4-byte registers a concatenation is built in: the port's name takes
// four (NFT_REG32_00..03), the address the fifth.
const (
	reg32Name = 8
	reg32Addr = 12
)

// notOwner matches when the port and the 4 network-header bytes at offset
// are not an element of s.
func notOwner(s *nftables.Set, offset uint32) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: reg32Name},
		&expr.Payload{DestRegister: reg32Addr, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Lookup{SourceRegister: reg32Name, SetName: s.Name, SetID: s.ID, Invert: true},
	}
}

func etherType(t uint16) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(t)},
	}
}

// removeRules deletes the daemon's tables; absent is fine.
func removeRules(tag string) error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	for _, t := range []*nftables.Table{tableFor(tag), portTable(tag)} {
		c.AddTable(t)
		c.DelTable(t)
	}
	return c.Flush()
}

// hasRules reports whether the daemon's table exists.
func hasRules(tag string) (bool, error) {
	c, err := nftables.New()
	if err != nil {
		return false, err
	}
	ts, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, err
	}
	for _, t := range ts {
		if t.Name == "hutch-"+tag {
			return true, nil
		}
	}
	return false, nil
}

func rule(c *nftables.Conn, ch *nftables.Chain, parts ...[]expr.Any) {
	var exprs []expr.Any
	for _, p := range parts {
		exprs = append(exprs, p...)
	}
	c.AddRule(&nftables.Rule{Table: ch.Table, Chain: ch, Exprs: exprs})
}

func ifname(n string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, n)
	return b
}

func iif(n string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(n)},
	}
}

func oifNot(n string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname(n)},
	}
}

// oifPrefix matches output interfaces whose name starts with p, like
// `oifname "p*"`.
func oifPrefix(p string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte(p)},
	}
}

func established() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED),
			Xor:  binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}

func ip4() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
	}
}

// addrIn matches the IPv4 header field at offset (12 source, 16
// destination) against p.
func addrIn(offset uint32, p netip.Prefix) []expr.Any {
	mask := make([]byte, 4)
	for i := range p.Bits() {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	a := p.Masked().Addr().As4()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]},
	}
}

func saddr(p netip.Prefix) []expr.Any { return addrIn(12, p) }
func daddr(p netip.Prefix) []expr.Any { return addrIn(16, p) }

func l4(proto byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
	}
}

func dport(p uint16) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(p)},
	}
}

func reject() []expr.Any {
	return []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_ADMIN_PROHIBITED}}
}

// redirectTo sends the packet to this host's port p (`redirect to :p`); the
// original destination stays readable with SO_ORIGINAL_DST.
func redirectTo(p uint16) []expr.Any {
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: binaryutil.BigEndian.PutUint16(p)},
		&expr.Redir{RegisterProtoMin: 1},
	}
}

func verdict(k expr.VerdictKind) []expr.Any { return []expr.Any{&expr.Verdict{Kind: k}} }

// enableForwarding turns on IPv4 forwarding, without which no sandbox
// reaches beyond the host. Like every container engine, it leaves it on.
func enableForwarding() error {
	const p = "/proc/sys/net/ipv4/ip_forward"
	cur, err := os.ReadFile(p)
	if err == nil && len(cur) > 0 && cur[0] == '1' {
		return nil
	}
	if err := os.WriteFile(p, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("enable IPv4 forwarding: %w", err)
	}
	return nil
}
