package config

import (
	"net/netip"
	"os"
	"time"
)

// Defaults of settings that have one. Context-dependent defaults
// (a real server's port and forwarding, the VRRP interface, the
// persistence netmask, the node name) are computed in the functions below.
const (
	defaultForwarding     = "dr"
	defaultListen         = ":3636"
	defaultResync         = 5 * time.Second
	defaultRemoveGrace    = 5 * time.Minute
	defaultSessionTimeout = 8 * time.Hour

	defaultVRRPVersion    = 3
	defaultAdvertInterval = time.Second
	// DefaultLearnedIntervalFactor: max_learned_interval is this many
	// advert intervals unless set.
	DefaultLearnedIntervalFactor = 3
	defaultGARPCount             = 5
	// defaultRTPriority 0: ordinary scheduling unless the operator asks
	// (lock_memory's default is false, its zero value).
	defaultRTPriority    = 0
	defaultGARPInterval  = 100 * time.Millisecond
	defaultNotifyTimeout = 10 * time.Second

	defaultSyncGroup         = "224.0.0.81" // the kernel's
	defaultSyncPort          = 8848         // the kernel's
	defaultSyncTTL           = 1
	defaultSyncRefresh       = 10 * time.Second
	defaultSyncWarmUpMargin  = 5 * time.Second // beyond refresh_period: the kernel's 3s flush, and slack
	defaultSyncHandoverHold  = 200 * time.Millisecond
	defaultSyncTakeoverQuiet = 4 * time.Second

	defaultScheduler = "wlc"
	// With [bgp] every director must pick the same real server for a
	// flow: Maglev hashing on address and port, skipping a real server at
	// weight 0 (see bgpSchedulerFits).
	defaultBGPScheduler = "mh"
	defaultProtocol     = "tcp"
	defaultQuorum       = 1
	defaultOnFailure    = "quiesce"
	// A udp flow whose client keeps its port (a resolver) is refreshed by
	// every datagram and never leaves a quiesced real server: only removal
	// moves it.
	defaultOnFailureUDP = "remove"
	defaultWeight       = 1

	defaultBGPPort         = 179
	defaultBGPHoldTime     = 90 * time.Second // RFC 4271's suggestion, FRR's and GoBGP's
	defaultBGPConnectRetry = 5 * time.Second  // a restarted router is found again soon

	defaultCheckInterval = 2 * time.Second
	defaultCheckTimeout  = time.Second
	defaultRise          = 2
	defaultFall          = 3
	defaultMethod        = "GET"
	defaultPath          = "/"
	defaultExpectStatus  = "200-399"
	defaultQueryName     = "."
	defaultQueryType     = "SOA"
	defaultExpectRcode   = "NOERROR"
)

// presence reports whether a key of the table being defaulted was written
// in the source. Defaults fill only absent keys.
type presence func(key string) bool

// applyDefaults fills every absent setting of c; present holds the key
// paths written in the source.
func applyDefaults(c *Config, present map[string]bool) {
	has := func(base string) presence {
		return func(k string) bool { return present[joinKey(base, k)] }
	}
	defaultGlobal(&c.Global, has("global"))
	defaultConsole(&c.Console, has("console"))
	if c.VRRP != nil {
		defaultVRRP(c.VRRP, &c.Global, has("vrrp"))
	}
	for i := range c.VRRPInstances {
		defaultVRRP(&c.VRRPInstances[i], &c.Global, has(indexKey("vrrp_instance", i)))
	}
	if c.HasVRRP() && c.Sync == nil {
		c.Sync = &Sync{}
	}
	if c.Sync != nil {
		defaultSync(c.Sync, c, has("sync"))
	}
	for i := range c.Alerts {
		defaultAlert(&c.Alerts[i], has(indexKey("alert", i)))
	}
	if c.Peer != nil {
		defaultPeer(c.Peer, has("peer"))
	}
	if c.BGP != nil {
		for i := range c.BGP.Neighbors {
			defaultBGPNeighbor(&c.BGP.Neighbors[i], has(indexKey("bgp.neighbor", i)))
		}
	}
	for i := range c.VirtualServers {
		vs := &c.VirtualServers[i]
		base := indexKey("virtual_server", i)
		defaultVirtualServer(vs, &c.Global, c.BGP != nil, has(base))
		if vs.HealthCheck != nil {
			defaultHealthCheck(vs.HealthCheck, vs, &c.Global, has(joinKey(base, "health_check")))
		}
		for j := range vs.RealServers {
			defaultRealServer(&vs.RealServers[j], vs, has(indexKey(joinKey(base, "real_server"), j)))
		}
	}
}

func hostname() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}

func setString(s *string, has presence, key, v string) {
	if !has(key) {
		*s = v
	}
}

func setInt(n *int, has presence, key string, v int) {
	if !has(key) {
		*n = v
	}
}

func setDuration(d *Duration, has presence, key string, v time.Duration) {
	if !has(key) {
		d.Duration = v
	}
}

func setBool(b **bool, has presence, key string, v bool) {
	if !has(key) || *b == nil {
		*b = &v
	}
}

func defaultGlobal(g *Global, has presence) {
	if !has("node_name") {
		g.NodeName = hostname()
	}
	setString(&g.Forwarding, has, "forwarding", defaultForwarding)
	setString(&g.Listen, has, "listen", defaultListen)
	setDuration(&g.ResyncInterval, has, "resync_interval", defaultResync)
	setDuration(&g.RemoveGrace, has, "remove_grace", defaultRemoveGrace)
}

func defaultConsole(c *Console, has presence) {
	setDuration(&c.SessionTimeout, has, "session_timeout", defaultSessionTimeout)
}

func defaultVRRP(v *VRRP, g *Global, has presence) {
	setInt(&v.Version, has, "version", defaultVRRPVersion)
	setDuration(&v.AdvertInterval, has, "advert_interval", defaultAdvertInterval)
	_, v3Max, _, _ := AdvertIntervalRange(3)
	setDuration(&v.MaxLearnedInterval, has, "max_learned_interval", min(DefaultLearnedIntervalFactor*v.AdvertInterval.Duration, max(v3Max, v.AdvertInterval.Duration)))
	setString(&v.Interface, has, "interface", g.Interface)
	setInt(&v.RTPriority, has, "rt_priority", defaultRTPriority)
	setBool(&v.Preempt, has, "preempt", true)
	setInt(&v.GARPCount, has, "garp_count", defaultGARPCount)
	setDuration(&v.GARPInterval, has, "garp_interval", defaultGARPInterval)
	setDuration(&v.NotifyTimeout, has, "notify_timeout", defaultNotifyTimeout)
}

func defaultSync(s *Sync, c *Config, has presence) {
	setBool(&s.Enabled, has, "enabled", c.HasVRRP())
	iface, id := c.Global.Interface, 0
	if in := c.Instances(); len(in) > 0 {
		// With several instances, the first one's.
		iface, id = in[0].Interface, in[0].VRID
		if iface == "" {
			iface = c.Global.Interface
		}
	}
	setString(&s.Interface, has, "interface", iface)
	if !has("id") || s.ID == nil {
		s.ID = &id
	}
	// An IPv6 group replaces the IPv4 one. (Group6, not has("group6"):
	// the encoder asks with every other key present.)
	if !has("group") && s.Group6 == "" {
		s.Group = defaultSyncGroup
	}
	setInt(&s.Port, has, "port", defaultSyncPort)
	setInt(&s.TTL, has, "ttl", defaultSyncTTL)
	setDuration(&s.RefreshPeriod, has, "refresh_period", defaultSyncRefresh)
	setDuration(&s.WarmUp, has, "warm_up", s.RefreshPeriod.Duration+defaultSyncWarmUpMargin)
	setDuration(&s.HandoverHold, has, "handover_hold", defaultSyncHandoverHold)
	setDuration(&s.TakeoverQuiet, has, "takeover_quiet", defaultSyncTakeoverQuiet)
}

// defaultBGPNeighbor fills a [[bgp.neighbor]]'s defaults.
func defaultBGPNeighbor(n *BGPNeighbor, has presence) {
	setInt(&n.Port, has, "port", defaultBGPPort)
	setDuration(&n.HoldTime, has, "hold_time", defaultBGPHoldTime)
	setDuration(&n.ConnectRetry, has, "connect_retry", defaultBGPConnectRetry)
}

// defaultVirtualServer fills vs's defaults; bgp says the config has [bgp],
// where the scheduler defaults to mh with mh-fallback and mh-port.
func defaultVirtualServer(vs *VirtualServer, g *Global, bgp bool, has presence) {
	setString(&vs.Protocol, has, "protocol", defaultProtocol)
	if !has("family") {
		vs.Family = "inet"
		if a, err := netip.ParseAddr(vs.VIP); err == nil && a.Is6() && !a.Is4In6() {
			vs.Family = "inet6"
		}
	}
	if bgp {
		setString(&vs.Scheduler, has, "scheduler", defaultBGPScheduler)
		// An empty array is no array (the canonical form leaves it out):
		// mh without flags cannot be asked for in BGP mode.
		if vs.Scheduler == defaultBGPScheduler && len(vs.SchedulerFlags) == 0 {
			vs.SchedulerFlags = []string{"mh-fallback", "mh-port"}
		}
	} else {
		setString(&vs.Scheduler, has, "scheduler", defaultScheduler)
	}
	if vs.Family == "inet6" {
		setInt(&vs.PersistenceNetmask, has, "persistence_netmask", 128)
	} else {
		setInt(&vs.PersistenceNetmask, has, "persistence_netmask", 32)
	}
	setString(&vs.Forwarding, has, "forwarding", g.Forwarding)
	setBool(&vs.Active, has, "active", true)
	setInt(&vs.Quorum, has, "quorum", defaultQuorum)
	onFailure := defaultOnFailure
	if vs.Protocol == "udp" && vs.Fwmark == 0 {
		onFailure = defaultOnFailureUDP
	}
	setString(&vs.OnFailure, has, "on_failure", onFailure)
}

func defaultRealServer(rs *RealServer, vs *VirtualServer, has presence) {
	setInt(&rs.Port, has, "port", vs.Port)
	if !has("weight") || rs.Weight == nil {
		w := defaultWeight
		rs.Weight = &w
	}
	setString(&rs.Forwarding, has, "forwarding", vs.Forwarding)
	setBool(&rs.Active, has, "active", true)
}

// defaultHealthCheck fills hc's defaults; vs is its service (already
// defaulted), whose protocol the dns transport follows, and g the global
// settings, whose node name is smtp's EHLO name. The settings of one check
// type get their defaults only with that type, so other types' checks do
// not carry them.
func defaultHealthCheck(hc *HealthCheck, vs *VirtualServer, g *Global, has presence) {
	setDuration(&hc.Interval, has, "interval", defaultCheckInterval)
	setDuration(&hc.Timeout, has, "timeout", defaultCheckTimeout)
	setInt(&hc.Rise, has, "rise", defaultRise)
	setInt(&hc.Fall, has, "fall", defaultFall)
	setString(&hc.Method, has, "method", defaultMethod)
	setString(&hc.Path, has, "path", defaultPath)
	if !has("expect_status") {
		hc.ExpectStatus = []string{defaultExpectStatus}
	}
	setBool(&hc.TLSVerify, has, "tls_verify", false)
	if hc.Type == "dns" {
		setString(&hc.QueryName, has, "query_name", defaultQueryName)
		setString(&hc.QueryType, has, "query_type", defaultQueryType)
		setString(&hc.DNSTransport, has, "dns_transport", dnsTransportFor(vs.Protocol))
		setString(&hc.ExpectRcode, has, "expect_rcode", defaultExpectRcode)
	}
	if hc.Type == "smtp" {
		setString(&hc.HeloName, has, "helo_name", g.NodeName)
	}
	setBool(&hc.ThroughVIP, has, "through_vip", throughVIPFits(hc, vs))
}

// throughVIPFits reports whether a check can go through the VIP: a dr or
// tun VIP:port service checked at the real servers themselves, by a
// checker that opens its own connection. It is through_vip's default: a
// DR real server that does not hold the VIP takes no client traffic yet
// passes a check at its own address, the classic DR mistake; checking
// where clients go catches it.
func throughVIPFits(hc *HealthCheck, vs *VirtualServer) bool {
	return (vs.Forwarding == "dr" || vs.Forwarding == "tun") && vs.Fwmark == 0 &&
		hc.Type != "exec" && hc.Type != "none" && hc.Address == ""
}

// dnsTransportFor is the dns check's default transport on a service of
// protocol: DNS over the service's own protocol (tcp for anything but udp).
func dnsTransportFor(protocol string) string {
	if protocol == "udp" {
		return "udp"
	}
	return "tcp"
}

// NewVirtualServer, NewRealServer, NewHealthCheck and NewVRRP are what a
// new object starts with in an editor (the console's "add" forms): the
// defaults that do not depend on where the object goes. The others (a real
// server's port and forwarding, a udp service's on_failure, a family) stay
// unset, so the object's parents decide them when it is saved.
func NewVirtualServer() *VirtualServer {
	on := true
	return &VirtualServer{Protocol: defaultProtocol, Scheduler: defaultScheduler, Quorum: defaultQuorum, Active: &on}
}

// NewRealServer: see NewVirtualServer.
func NewRealServer() *RealServer {
	w, on := defaultWeight, true
	return &RealServer{Weight: &w, Active: &on}
}

// NewHealthCheck: see NewVirtualServer; typ is the check type to start with.
func NewHealthCheck(typ string) *HealthCheck {
	hc := &HealthCheck{Type: typ, Rise: defaultRise, Fall: defaultFall}
	hc.Interval.Duration = defaultCheckInterval
	hc.Timeout.Duration = defaultCheckTimeout
	return hc
}

// NewVRRP: see NewVirtualServer. The VRID and priority have no default;
// the caller suggests its own.
func NewVRRP() *VRRP {
	on := true
	v := &VRRP{Version: defaultVRRPVersion, GARPCount: defaultGARPCount, Preempt: &on}
	v.AdvertInterval.Duration = defaultAdvertInterval
	return v
}
