package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// wellKnownCommunities are the RFC 1997 communities lbd accepts by name.
var wellKnownCommunities = map[string]uint32{
	"no-export":           0xFFFFFF01,
	"no-advertise":        0xFFFFFF02,
	"no-export-subconfed": 0xFFFFFF03,
}

// ParseCommunity reads a BGP community as written in [bgp]: "ASN:VALUE"
// (two numbers 0..65535) or a well-known name (no-export, no-advertise,
// no-export-subconfed).
func ParseCommunity(s string) (uint32, error) {
	if c, ok := wellKnownCommunities[s]; ok {
		return c, nil
	}
	hi, lo, ok := strings.Cut(s, ":")
	if !ok {
		return 0, fmt.Errorf("%q is not a community (\"65001:100\", no-export, no-advertise or no-export-subconfed)", s)
	}
	a, err1 := strconv.ParseUint(hi, 10, 16)
	b, err2 := strconv.ParseUint(lo, 10, 16)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%q is not a community: both parts are numbers 0..65535", s)
	}
	return uint32(a)<<16 | uint32(b), nil
}

// BGPVIPs returns the VIPs [bgp] announces: bgp.vips when written, else
// every virtual server's VIP, in config order without duplicates, as
// addresses. nil without [bgp].
func (c *Config) BGPVIPs() []netip.Addr {
	if c.BGP == nil {
		return nil
	}
	in := c.BGP.VIPs
	if len(in) == 0 {
		for _, vs := range c.VirtualServers {
			if vs.VIP != "" {
				in = append(in, vs.VIP)
			}
		}
	}
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, s := range in {
		a, err := netip.ParseAddr(s)
		if err != nil || seen[a] {
			continue
		}
		seen[a] = true
		out = append(out, a)
	}
	return out
}

// bgp checks [bgp] against the rest of c.
func (v *validator) bgp(c *Config) {
	const k = "bgp"
	b := c.BGP
	if c.VRRP != nil {
		v.addf(k, "cannot be used with [vrrp]: with BGP every director holds the VIPs and the routers spread the flows (ECMP); with VRRP one master holds them. Keep one of the two")
	}
	v.asn(k+".local_asn", b.LocalASN)
	switch {
	case b.RouterID != "":
		if a, ok := v.addr(k+".router_id", b.RouterID); ok && (!a.Is4() || a.IsUnspecified()) {
			v.addf(k+".router_id", "%q: a router id is a non-zero IPv4 address", b.RouterID)
		}
	case c.Global.Interface == "":
		v.addf(k+".router_id", "is required when global.interface is not set (the default is that interface's first IPv4 address)")
	}

	vips := map[netip.Addr]bool{}
	for _, vs := range c.VirtualServers {
		if a, err := netip.ParseAddr(vs.VIP); err == nil {
			vips[a] = true
		}
	}
	seen := map[netip.Addr]int{}
	for i, s := range b.VIPs {
		key := indexKey(k+".vips", i)
		a, ok := v.addr(key, s)
		switch {
		case !ok:
		case !vips[a]:
			v.addf(key, "%s is not the vip of any virtual_server (bgp announces only addresses this director balances)", s)
		default:
			if j, dup := seen[a]; dup {
				v.addf(key, "%s is listed twice (also vips[%d])", s, j)
			}
			seen[a] = i
		}
	}
	if len(b.Communities) > MaxBGPCommunities {
		v.addf(k+".communities", "has %d communities; at most %d are allowed", len(b.Communities), MaxBGPCommunities)
	} else {
		for i, s := range b.Communities {
			if _, err := ParseCommunity(s); err != nil {
				v.addf(indexKey(k+".communities", i), "%v", err)
			}
		}
	}

	if len(b.Neighbors) == 0 {
		v.addf(k+".neighbor", "at least one [[bgp.neighbor]] is required (a router to announce the VIPs to)")
	}
	families := map[bool]bool{} // is4 -> some neighbour of that family
	ibgp := false
	addrs := map[netip.Addr]int{}
	for i := range b.Neighbors {
		if v.col.cancelled() {
			return
		}
		n := &b.Neighbors[i]
		nk := indexKey(k+".neighbor", i)
		if !v.present[nk+".address"] {
			v.addf(nk+".address", "is required (the router's address)")
		} else if a, ok := v.addr(nk+".address", n.Address); ok {
			switch {
			case a.IsUnspecified() || a.IsMulticast() || a.IsLoopback():
				v.addf(nk+".address", "%s is not a router's address", n.Address)
			case a.Is6() && a.IsLinkLocalUnicast():
				v.addf(nk+".address", "%s: link-local neighbours are not supported (use a global address)", n.Address)
			default:
				if j, dup := addrs[a]; dup {
					v.addf(nk+".address", "neighbour %s is listed twice (also neighbor[%d])", n.Address, j)
				}
				addrs[a] = i
				families[a.Is4()] = true
			}
		}
		if !v.present[nk+".asn"] {
			v.addf(nk+".asn", "is required (the router's AS number)")
		} else {
			v.asn(nk+".asn", n.ASN)
			ibgp = ibgp || n.ASN == b.LocalASN
		}
		v.intRange(nk+".port", n.Port, 1, 65535)
		v.wholeSeconds(nk+".hold_time", n.HoldTime.Duration, MinBGPHoldTime, MaxBGPHoldTime,
			"lbd needs keepalives: 0 is not supported")
		v.wholeSeconds(nk+".connect_retry", n.ConnectRetry.Duration, MinBGPConnectRetry, MaxBGPConnectRetry, "")
		if len(n.Password) > MaxBGPPasswordLen {
			v.addf(nk+".password", "is %d bytes long; TCP MD5 keys are at most %d", len(n.Password), MaxBGPPasswordLen)
		}
	}
	if b.LocalPref != nil && len(b.Neighbors) > 0 && !ibgp && !v.col.isBad(k+".neighbor") {
		v.addf(k+".local_pref", "is only sent to iBGP neighbours (asn = local_asn) and no neighbour is one; leave it out or use med")
	}
	if len(addrs) > 0 {
		for _, a := range c.BGPVIPs() {
			if !families[a.Is4()] {
				fam, other := "IPv6", "IPv4"
				if a.Is4() {
					fam, other = "IPv4", "IPv6"
				}
				v.addf(k+".neighbor", "VIP %s is %s but every neighbour is %s: it would never be announced (add an %s neighbour, or list the VIPs to announce in bgp.vips)", a, fam, other, fam)
			}
		}
	}
	for i := range c.VirtualServers {
		vs := &c.VirtualServers[i]
		if vs.Scheduler != defaultBGPScheduler && oneOf(vs.Scheduler, schedulers) {
			v.addf(indexKey("virtual_server", i)+".scheduler", "%q cannot be used with [bgp]: every director behind ECMP must send a flow to the same real server, which only mh (consistent hashing) does; leave scheduler out (mh with mh-fallback and mh-port) or write \"mh\"", vs.Scheduler)
		}
	}
}

// asn checks an AS number: 1..4294967295, not AS_TRANS.
func (v *validator) asn(key string, n uint32) {
	switch {
	case !v.present[key]:
		v.addf(key, "is required (an AS number, 1..4294967295)")
	case n == 0:
		v.addf(key, "0 is not an AS number (1..4294967295)")
	case n == ASTrans:
		v.addf(key, "%d is AS_TRANS, which stands in for 4-byte AS numbers and belongs to nobody", n)
	}
}

// wholeSeconds checks lo <= d <= hi in whole seconds; why explains a
// refused 0.
func (v *validator) wholeSeconds(key string, d, lo, hi time.Duration, why string) {
	switch {
	case d == 0 && why != "":
		v.addf(key, "must be %v..%v (%s)", lo, hi, why)
	case d%time.Second != 0:
		v.addf(key, "%v: must be whole seconds", d)
	case d < lo || d > hi:
		v.addf(key, "%v is out of range (%v..%v)", d, lo, hi)
	}
}
