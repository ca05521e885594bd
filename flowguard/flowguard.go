// Package flowguard keeps TCP connections alive across a director failover
// where IPVS's connection sync alone would let them die.
//
// The kernel's master sync daemon batches connection entries and sends a
// partly filled message only after up to about three seconds, so just after
// a takeover the new master may not know the newest connections yet. Their
// packets reach it, IPVS does not take them (not a SYN, no entry), they go
// on to the local TCP stack (the director holds the VIP), and it answers
// with a RST: the connection dies although its sync message is on the way.
// Two guards close that gap, each a chain in an nftables table of lbd's own
// (family inet, so IPv4 and IPv6 alike):
//
//   - Quiet, on a new master for a few seconds after takeover: TCP segments
//     to a virtual service that IPVS did NOT take (no SYN, no RST) are
//     dropped instead of being answered with a RST. The client retransmits;
//     once the old master's sync message has arrived IPVS takes them. The
//     chain hooks input at priority 100, after IPVS's ip_vs_in hook (input,
//     NF_IP_PRI_NAT_SRC-1 = 99, IPv4 and IPv6), which steals every packet it
//     forwards: the chain sees exactly what IPVS left to the local stack.
//   - Hold, on a master that resigns gracefully, for about 200 ms before it
//     gives the VIP up: new connection attempts (SYN without ACK) to the
//     virtual services are dropped BEFORE IPVS (input, priority 0), so no
//     handshake is left half-way on the old master; the client repeats its
//     SYN a second later and reaches the new master.
//
// Each guard's rules are fixed; its targets are elements of nftables sets
// (VIP . port, VIP for every port, family . fwmark), so a Set call is one
// small atomic batch whatever the number of services, and the kernel looks
// a packet up in constant time. Open programs nftables in the calling
// thread's network namespace; Fake stands in for it in the director's
// tests. Both implement Guard. The ruleset, as `nft list table inet
// lbd_flowguard` shows it (sets left out):
//
//	chain quiet {
//		type filter hook input priority 100; policy accept;
//		meta l4proto != tcp return
//		tcp flags syn,rst return
//		ip daddr . tcp dport @quiet_vip4 goto quiet_drop
//		ip6 daddr . tcp dport @quiet_vip6 goto quiet_drop
//		ip daddr @quiet_addr4 goto quiet_drop
//		ip6 daddr @quiet_addr6 goto quiet_drop
//		meta nfproto . meta mark @quiet_mark goto quiet_drop
//	}
//	chain quiet_drop {
//		counter packets 0 bytes 0 drop comment "lbd: ..."
//	}
//	chain hold {
//		type filter hook input priority filter; policy accept;
//		meta l4proto != tcp return
//		tcp flags != syn / syn,ack return
//		... the same lookups in the hold_* sets, goto hold_drop
//	}
//
// A virtual service whose real server is the director itself (IPVS's Local
// forwarding) hands its packets on to the local stack: the quiet guard would
// delay them too, so such services are better left out of the quiet set.
package flowguard

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
)

// Target is one TCP virtual service: VIP:port, or a firewall mark (Fwmark
// != 0; Addr then only gives the family, and the zero Addr means both).
// Port 0 with an address means every port of the VIP, like IPVS's port-0
// persistent services.
type Target struct {
	Addr   netip.Addr
	Port   uint16
	Fwmark uint32
}

// String names the target like balancer keys do: "tcp/10.0.0.1:80",
// "tcp/[fd00::1]:443", "fwmark/7/ipv4" ("fwmark/7" for both families).
func (t Target) String() string {
	if t.Fwmark != 0 {
		s := "fwmark/" + strconv.FormatUint(uint64(t.Fwmark), 10)
		switch {
		case t.Addr.Is4():
			s += "/ipv4"
		case t.Addr.Is6():
			s += "/ipv6"
		}
		return s
	}
	return "tcp/" + netip.AddrPortFrom(t.Addr, t.Port).String()
}

// Guard is what the director drives on VRRP transitions.
type Guard interface {
	// SetQuiet replaces the set of services whose unknown segments are
	// dropped rather than reset; empty switches the guard off. On error
	// the previous set stays in force.
	SetQuiet(targets []Target) error
	// SetHold replaces the set of services whose new connections are held
	// off; empty switches the guard off. On error the previous set stays.
	SetHold(targets []Target) error
	// Close removes everything the guard added to the kernel.
	Close() error
}

// ErrClosed is returned by a guard's methods after Close.
var ErrClosed = errors.New("guard is closed")

// normalize checks targets and returns them in a canonical form: IPv4
// addresses unmapped from ::ffff:0:0/96, duplicates removed, order kept.
func normalize(targets []Target) ([]Target, error) {
	out := make([]Target, 0, len(targets))
	seen := make(map[Target]bool, len(targets))
	for i, t := range targets {
		t.Addr = t.Addr.Unmap()
		if err := t.check(); err != nil {
			return nil, fmt.Errorf("target %d (%v): %w", i, t, err)
		}
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out, nil
}

func (t Target) check() error {
	if t.Addr.Zone() != "" {
		return errors.New("address with a zone")
	}
	if t.Fwmark != 0 {
		if t.Port != 0 {
			return errors.New("a fwmark service has no port")
		}
		return nil
	}
	if !t.Addr.IsValid() {
		return errors.New("no address and no fwmark")
	}
	if t.Addr.IsUnspecified() {
		return errors.New("unspecified address")
	}
	return nil
}
