package director

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"time"

	"lbd/api"
	"lbd/bgp"
	"lbd/config"
	"lbd/healthcheck"
)

// Why a VIP is not announced (api.BGPVIP.Reason).
const (
	bgpReasonQuorum      = "below quorum"
	bgpReasonMaintenance = "maintenance"
	bgpReasonStopping    = "stopping"
	bgpReasonInactive    = "no active virtual service"
)

// bgpShutdownWait bounds how long a stopping director waits for the
// routers to be sent the withdrawal of its VIPs.
const bgpShutdownWait = 5 * time.Second

// bgpState is the BGP side of a director: the speaker, what it announces
// and why the rest is withdrawn. Guarded by Director.mu.
type bgpState struct {
	speaker     bgp.Speaker
	inputs      any // speakerInputs of the running speaker
	announced   map[netip.Addr]bgp.Route
	reasons     map[netip.Addr]string // withdrawn VIPs: why
	vips        []netip.Addr          // in config order
	maintenance bool
	stopping    bool
	err         string // why the speaker is not running
	vipHolder   vipHolder
	heldVIPs    []netip.Addr
}

func newSpeaker(c bgp.Config) (bgp.Speaker, error) { return bgp.New(c) }

// speakerInputs is what a restart of the speaker depends on (neighbours
// are changed in place).
func speakerInputs(c *config.Config) any {
	return struct {
		ASN   uint32
		ID    string
		Iface string
	}{c.BGP.LocalASN, c.BGP.RouterID, c.Global.Interface}
}

// routerID is bgp.router_id, or the first IPv4 address of the global
// interface.
func routerID(c *config.Config) (netip.Addr, error) {
	if c.BGP.RouterID != "" {
		return netip.ParseAddr(c.BGP.RouterID)
	}
	ifi, err := net.InterfaceByName(c.Global.Interface)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("router id from %s: %w (set bgp.router_id)", c.Global.Interface, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("router id from %s: %w (set bgp.router_id)", c.Global.Interface, err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().Is4() {
				return ip.Unmap(), nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("router id: %s has no IPv4 address (set bgp.router_id)", c.Global.Interface)
}

func bgpNeighbors(c *config.Config) []bgp.Neighbor {
	var out []bgp.Neighbor
	for _, n := range c.BGP.Neighbors {
		a, err := netip.ParseAddr(n.Address)
		if err != nil {
			continue // validated
		}
		out = append(out, bgp.Neighbor{Address: a, ASN: n.ASN, Port: uint16(n.Port),
			HoldTime: n.HoldTime.Duration, ConnectRetry: n.ConnectRetry.Duration, Password: n.Password, BFD: n.BFD})
	}
	return out
}

// configureBGP starts, changes or stops the speaker for cfg. d.mu is held.
func (d *Director) configureBGP(cfg *config.Config) {
	b := d.bgp
	if cfg.BGP == nil {
		if b != nil {
			if b.speaker != nil {
				ctx, cancel := context.WithTimeout(context.Background(), bgpShutdownWait)
				if err := b.speaker.Shutdown(ctx); err != nil {
					d.log.Warn("bgp: stopping", "err", err)
				}
				cancel()
			}
			if b.vipHolder != nil {
				b.vipHolder.Close()
			}
			d.bgp = nil
			d.events.add("bgp", "", "BGP turned off: every VIP withdrawn")
		}
		return
	}
	if b == nil {
		b = &bgpState{announced: map[netip.Addr]bgp.Route{}, reasons: map[netip.Addr]string{}}
		d.bgp = b
		d.setBGPSysctls(cfg)
	}
	in := speakerInputs(cfg)
	if b.speaker != nil && !reflect.DeepEqual(in, b.inputs) {
		ctx, cancel := context.WithTimeout(context.Background(), bgpShutdownWait)
		_ = b.speaker.Shutdown(ctx)
		cancel()
		b.speaker, b.announced = nil, map[netip.Addr]bgp.Route{}
	}
	if b.speaker == nil {
		id, err := routerID(cfg)
		var sp bgp.Speaker
		if err == nil {
			sp, err = d.opt.NewSpeaker(bgp.Config{ASN: cfg.BGP.LocalASN, RouterID: id, Neighbors: bgpNeighbors(cfg),
				Logger: d.log.With("part", "bgp"), OnPeer: d.bgpPeerChanged})
		}
		if err != nil {
			b.err = err.Error()
			d.log.Error("BGP not started", "err", err)
			d.events.add("bgp", "", "not started: "+err.Error())
		} else {
			b.speaker, b.inputs, b.err = sp, in, ""
			d.log.Info("BGP speaker started", "asn", cfg.BGP.LocalASN, "router_id", id)
		}
	} else if err := b.speaker.SetNeighbors(bgpNeighbors(cfg)); err != nil {
		d.log.Error("bgp: neighbours", "err", err)
	}
	b.vips = cfg.BGPVIPs()
	d.holdBGPVIPs(b)
	d.updateBGP()
}

// setBGPSysctls: the VIPs on lo must not be answered for by ARP on the
// other interfaces (arp_ignore), nor be the source of our ARP requests
// (arp_announce); a flow that ECMP moves here mid-connection must be
// scheduled, not reset (sloppy_tcp, sloppy_sctp; mh then picks the real
// server the other director did). d.mu is held.
func (d *Director) setBGPSysctls(cfg *config.Config) {
	if !d.opt.HoldVIPs {
		return
	}
	var failed []string
	for _, kv := range [][2]string{
		{"net.ipv4.conf.all.arp_ignore", "1"},
		{"net.ipv4.conf.all.arp_announce", "2"},
		{"net.ipv4.vs.sloppy_tcp", "1"},
		{"net.ipv4.vs.sloppy_sctp", "1"},
	} {
		if err := d.opt.Sysctl.WriteSysctl(kv[0], kv[1]); err != nil {
			failed = append(failed, kv[0])
		}
	}
	if len(failed) > 0 {
		d.log.Warn("bgp: sysctls not set", "sysctls", strings.Join(failed, ","))
	}
}

// holdBGPVIPs puts the VIPs on lo (daemon only). d.mu is held.
func (d *Director) holdBGPVIPs(b *bgpState) {
	if !d.opt.HoldVIPs || slices.Equal(b.vips, b.heldVIPs) {
		return
	}
	if b.vipHolder == nil {
		h, err := d.opt.newLoopbackVIPs()
		if err != nil {
			d.log.Error("bgp: cannot hold the VIPs on lo", "err", err)
			return
		}
		b.vipHolder = h
	}
	if err := b.vipHolder.Set(b.vips); err != nil {
		d.log.Error("bgp: cannot hold the VIPs on lo", "err", err)
		return
	}
	b.heldVIPs = slices.Clone(b.vips)
}

// bgpRoute is what is announced for vip.
func bgpRoute(c *config.Config, vip netip.Addr) bgp.Route {
	r := bgp.Route{Prefix: bgp.HostRoute(vip), MED: c.BGP.MED, LocalPref: c.BGP.LocalPref}
	for _, s := range c.BGP.Communities {
		if n, err := config.ParseCommunity(s); err == nil {
			r.Communities = append(r.Communities, n)
		}
	}
	return r
}

// withdrawReason says why vip must not be announced now, "" when it may:
// every active virtual service of the VIP must be at its quorum, counting
// only real servers whose check has passed (a director that has just
// started announces once it knows), and the director must be neither in
// maintenance nor stopping. d.mu is held.
func (d *Director) withdrawReason(b *bgpState, vip netip.Addr) string {
	switch {
	case b.stopping:
		return bgpReasonStopping
	case b.maintenance:
		return bgpReasonMaintenance
	}
	active := 0
	var low []string
	for _, vs := range d.cfg.VirtualServers {
		a, err := netip.ParseAddr(vs.VIP)
		if err != nil || a != vip || !*vs.Active {
			continue
		}
		active++
		sp := d.plan.services[vs.Name]
		up := 0
		for _, rs := range vs.RealServers {
			w, in := sp.weights[rs.Name]
			if !in || w == 0 {
				continue
			}
			if vs.HealthCheck != nil && vs.HealthCheck.Type != "none" {
				if st, ok := d.hc.Status(checkID(vs.Name, rs.Name)); ok && st.State != healthcheck.Up {
					continue
				}
			}
			up += w
		}
		if up < vs.Quorum || !sp.healthy {
			low = append(low, vs.Name)
		}
	}
	switch {
	case active == 0:
		return bgpReasonInactive
	case len(low) > 0:
		return bgpReasonQuorum + ": " + strings.Join(low, ", ")
	}
	return ""
}

// updateBGP announces the VIPs that may be and withdraws the others.
// d.mu is held.
func (d *Director) updateBGP() {
	b := d.bgp
	if b == nil || d.cfg == nil || d.cfg.BGP == nil {
		return
	}
	want := map[netip.Addr]bool{}
	for _, vip := range b.vips {
		want[vip] = true
		reason := d.withdrawReason(b, vip)
		old, was := b.reasons[vip]
		if reason != "" {
			b.reasons[vip] = reason
			if _, on := b.announced[vip]; on || !was {
				d.bgpWithdraw(b, vip, reason)
			} else if old != reason {
				d.events.add("bgp", vip.String(), "withdrawn: "+reason)
			}
			continue
		}
		delete(b.reasons, vip)
		r := bgpRoute(d.cfg, vip)
		if cur, on := b.announced[vip]; on && cur.Equal(r) {
			continue
		}
		if b.speaker == nil {
			continue
		}
		if err := b.speaker.Announce(r); err != nil {
			d.log.Error("bgp: announce", "vip", vip, "err", err)
			continue
		}
		b.announced[vip] = r
		d.log.Info("bgp: VIP announced", "vip", vip)
		d.events.add("bgp", vip.String(), "announced")
	}
	for vip := range b.announced {
		if !want[vip] {
			d.bgpWithdraw(b, vip, "no longer configured")
			delete(b.reasons, vip)
		}
	}
}

func (d *Director) bgpWithdraw(b *bgpState, vip netip.Addr, reason string) {
	_, on := b.announced[vip]
	if on && b.speaker != nil {
		if err := b.speaker.Withdraw(bgp.HostRoute(vip)); err != nil {
			d.log.Error("bgp: withdraw", "vip", vip, "err", err)
			return
		}
	}
	delete(b.announced, vip)
	if on {
		d.log.Info("bgp: VIP withdrawn", "vip", vip, "reason", reason)
	}
	d.events.add("bgp", vip.String(), "withdrawn: "+reason)
}

// bgpPeerChanged logs session changes (the speaker's callback).
func (d *Director) bgpPeerChanged(p bgp.PeerStatus) {
	switch p.State {
	case bgp.StateEstablished:
		d.log.Info("bgp: session established", "neighbor", p.Address, "asn", p.ASN)
		d.events.add("bgp", p.Address.String(), "session established")
	case bgp.StateIdle:
		msg := "session down"
		if p.LastError != "" {
			msg += ": " + p.LastError
		}
		d.log.Warn("bgp: "+msg, "neighbor", p.Address)
		d.events.add("bgp", p.Address.String(), msg)
	}
}

// ErrNoBGP is returned by SetMaintenance without [bgp].
var ErrNoBGP = errors.New("director: no [bgp] configured")

// SetMaintenance withdraws every VIP of this director (on) or announces
// again those whose services are healthy (off): "drain this director".
// It lasts until turned off or lbd restarts.
func (d *Director) SetMaintenance(ctx context.Context, on bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bgp == nil {
		return ErrNoBGP
	}
	if d.bgp.maintenance == on {
		return nil
	}
	d.bgp.maintenance = on
	state := "off: VIPs announced again"
	if on {
		state = "on: every VIP withdrawn"
	}
	d.log.Info("bgp: maintenance " + state)
	d.events.add("bgp", "maintenance", state)
	d.updateBGP()
	return nil
}

// stopBGP withdraws everything before lbd exits and waits (bounded) until
// the routers were sent the withdrawal.
func (d *Director) stopBGP() {
	d.mu.Lock()
	b := d.bgp
	if b == nil || b.speaker == nil {
		d.mu.Unlock()
		return
	}
	b.stopping = true
	d.updateBGP()
	sp := b.speaker
	d.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), bgpShutdownWait)
	defer cancel()
	start := time.Now()
	if err := sp.Shutdown(ctx); err != nil {
		d.log.Warn("bgp: stopping", "err", err)
		return
	}
	d.log.Info("bgp: every VIP withdrawn, sessions closed", "took", time.Since(start).Round(time.Millisecond).String())
}

// bgpStatus is the BGP block of the status. d.mu is held.
func (d *Director) bgpStatus() *api.BGP {
	b := d.bgp
	if b == nil {
		return nil
	}
	out := &api.BGP{Maintenance: b.maintenance, Stopping: b.stopping, Error: b.err,
		Sessions: []api.BGPSession{}, VIPs: []api.BGPVIP{}}
	if d.cfg.BGP != nil {
		out.LocalASN = d.cfg.BGP.LocalASN
	}
	if b.speaker != nil {
		for _, p := range b.speaker.Peers() {
			out.Sessions = append(out.Sessions, api.BGPSession{Neighbor: p.Address.String(), ASN: p.ASN, State: p.State,
				Since: p.Since, PrefixesSent: p.PrefixesSent, LastError: p.LastError, BFD: p.BFD})
		}
	}
	for _, vip := range b.vips {
		_, on := b.announced[vip]
		out.VIPs = append(out.VIPs, api.BGPVIP{VIP: vip.String(), Announced: on, Reason: b.reasons[vip]})
	}
	return out
}
