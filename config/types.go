// Package config is lbd's TOML schema: parsing, defaults, validation (every
// problem reported as FILE:LINE: message) and atomic write-back.
//
// The schema types below are shared by the director, the console and lbctl.
// Optional settings whose zero value is meaningful are pointers, so a
// canonical write-back does not invent values the operator never wrote.
package config

import "time"

// Config is one director's whole configuration: one TOML file.
type Config struct {
	Global  Global  `toml:"global"`
	Console Console `toml:"console"`
	VRRP    *VRRP   `toml:"vrrp,omitempty"`
	// VRRPInstances are several VRRP instances (active-active: each
	// director master of some VIPs); mutually exclusive with VRRP.
	VRRPInstances []VRRP `toml:"vrrp_instance,omitempty"`
	// VRRPSyncGroups make instances fail over together.
	VRRPSyncGroups []VRRPSyncGroup `toml:"vrrp_sync_group,omitempty"`
	Sync           *Sync           `toml:"sync,omitempty"`
	BGP            *BGP            `toml:"bgp,omitempty"`
	VirtualServers []VirtualServer `toml:"virtual_server"`
	Alerts         []Alert         `toml:"alert,omitempty"`
	// Peer names the other director's API (config/peer.go).
	Peer *Peer `toml:"peer,omitempty"`

	// Path is the file the config was read from (not part of the TOML).
	Path string `toml:"-" json:"-"`
}

// Global holds director-wide settings (piranha's GLOBAL SETTINGS screen).
type Global struct {
	NodeName   string `toml:"node_name"`  // default: the host name
	Interface  string `toml:"interface"`  // public interface for VIPs and VRRP
	Forwarding string `toml:"forwarding"` // dr | nat | tun; default dr
	Listen     string `toml:"listen"`     // console listen address; default ":3636"

	// ResyncInterval is how often the reconciler re-reads the kernel to
	// repair drift. Default 5s.
	ResyncInterval Duration `toml:"resync_interval"`
	// RemoveGrace bounds how long a real server removed from the config is
	// kept at weight 0 waiting for its active connections to end. Default 5m.
	RemoveGrace Duration `toml:"remove_grace"`

	// The kernel's IPVS connection timeouts (ipvsadm --set), whole
	// seconds: an idle established TCP connection, a TCP connection after
	// its FIN, an idle UDP flow. Unset (0) leaves the kernel's value
	// (900s, 120s, 300s unless someone changed it).
	TCPTimeout    Duration `toml:"tcp_timeout"`
	TCPFinTimeout Duration `toml:"tcpfin_timeout"`
	UDPTimeout    Duration `toml:"udp_timeout"`
}

// Console holds web console and API security settings.
type Console struct {
	// PasswordHash is a bcrypt hash set by `lbd passwd`; the console refuses
	// to start without one.
	PasswordHash string `toml:"password_hash,omitempty"`
	// TokenHashes are SHA-256 hex digests of API bearer tokens (`lbd token`)
	// with the admin scope: everything the console can do.
	TokenHashes []string `toml:"token_hashes,omitempty"`
	// ReadTokenHashes are digests of read-only tokens (Prometheus,
	// dashboards): they can read state and metrics, never change anything.
	ReadTokenHashes []string `toml:"read_token_hashes,omitempty"`
	TLSCert         string   `toml:"tls_cert,omitempty"`
	TLSKey          string   `toml:"tls_key,omitempty"`
	SessionTimeout  Duration `toml:"session_timeout"` // default 8h
	MetricsAuth     bool     `toml:"metrics_auth"`    // /metrics needs a token
}

// VRRP configures the redundancy instance (piranha's REDUNDANCY screen).
type VRRP struct {
	// Name identifies a [[vrrp_instance]] (required and unique there); in
	// [vrrp] it is optional.
	Name           string   `toml:"name,omitempty"`
	VRID           int      `toml:"vrid"`            // 1..255
	Priority       int      `toml:"priority"`        // 1..255; 255 = address owner
	AdvertInterval Duration `toml:"advert_interval"` // default 1s; v3 0.01s..40.95s in 10ms steps, v2 whole seconds
	Version        int      `toml:"version"`         // 2 | 3; default 3
	Interface      string   `toml:"interface,omitempty"`
	// VIPs the instance owns; empty means every virtual server's VIP.
	VIPs         []string `toml:"vips,omitempty"`
	UnicastPeers []string `toml:"unicast_peers,omitempty"`
	// UnicastSource is the source address for unicast adverts; default the
	// interface's primary address.
	UnicastSource string `toml:"unicast_source,omitempty"`
	// AllowedPeers, in multicast mode, are the only sources whose adverts
	// count; any other is dropped as foreign (a stray or hostile router
	// on the segment). Empty: any source (RFC 5798).
	AllowedPeers []string `toml:"allowed_peers,omitempty"`
	// MaxLearnedInterval bounds the advert interval a v3 backup adopts
	// from the master; default 3 x advert_interval.
	MaxLearnedInterval Duration `toml:"max_learned_interval"`
	// RTPriority > 0 gives the instance's VRRP threads SCHED_FIFO at this
	// priority (1..99), like keepalived's vrrp_rt_priority; 0 (default):
	// ordinary scheduling.
	RTPriority int `toml:"rt_priority"`
	// LockMemory locks lbd's memory in RAM (mlockall), like keepalived's
	// vrrp_no_swap; default false.
	LockMemory   bool     `toml:"lock_memory"`
	Preempt      *bool    `toml:"preempt,omitempty"` // default true
	PreemptDelay Duration `toml:"preempt_delay"`
	// AuthPass is VRRPv2 simple-text authentication: INSECURE, interop only.
	AuthPass        string           `toml:"auth_pass,omitempty"`
	TrackInterfaces []TrackInterface `toml:"track_interface,omitempty"`
	// ServicePenalty lowers the priority by this much while any virtual
	// service is below its quorum. 0 disables service tracking.
	ServicePenalty int `toml:"service_penalty"`
	// GARP burst at takeover and optional periodic refresh.
	GARPCount    int      `toml:"garp_count"`    // default 5; 0 or 1: only the round every takeover sends
	GARPInterval Duration `toml:"garp_interval"` // default 100ms between burst frames
	GARPRefresh  Duration `toml:"garp_refresh"`  // 0 = off
	// Notify is a command run on every transition with instance, old and
	// new state appended as arguments.
	Notify        []string `toml:"notify,omitempty"`
	NotifyTimeout Duration `toml:"notify_timeout"` // default 10s
}

// VRRPSyncGroup is keepalived's sync group: instances that fail over
// together. While a member is in Fault (its interface or a weight-0
// tracked interface down) the others are held in Fault too, so the
// peer director takes all of them.
type VRRPSyncGroup struct {
	Name      string   `toml:"name"`
	Instances []string `toml:"instances"`
}

// Sync configures the kernel's IPVS connection synchronization with the
// peer director (piranha's and keepalived's sync daemon). It is on by
// default when [vrrp] is configured; a file without [sync] gets the
// defaults, and `enabled = false` turns it off. Without [vrrp] it is off
// unless `enabled = true` is written.
//
// Sync traffic is unauthenticated multicast: it belongs on a private link
// between the two directors. Both directors need the same virtual services
// and real servers, or synced connections stay unbound on the backup.
type Sync struct {
	Enabled *bool `toml:"enabled,omitempty"` // default: true when [vrrp] is set
	// Interface carries the sync messages; default the VRRP interface,
	// else global.interface.
	Interface string `toml:"interface,omitempty"`
	// ID is the sync id (0..255) both directors use; default the VRID, or
	// 0 without [vrrp]. A backup daemon with id 0 accepts every master.
	ID *int `toml:"id,omitempty"`
	// Group is the IPv4 multicast group (default 224.0.0.81); Group6 an
	// IPv6 one, for a sync interface without IPv4 (then Group is unset).
	Group  string `toml:"group,omitempty"`
	Group6 string `toml:"group6,omitempty"`
	Port   int    `toml:"port"` // default 8848
	TTL    int    `toml:"ttl"`  // 1..255; default 1
	// MaxPacketLen bounds a sync message; 0 = from the interface MTU.
	MaxPacketLen int `toml:"max_packet_len"`
	// RefreshPeriod is sync_refresh_period: a connection with traffic is
	// sent again at most this often, so a returning director learns the
	// table. Whole seconds; default 10s.
	RefreshPeriod Duration `toml:"refresh_period"`
	// WarmUp is how long the backup daemon must have run, with a master
	// heard, before this director may preempt; default refresh_period + 5s.
	WarmUp Duration `toml:"warm_up"`
	// HandoverHold is how long a resigning master holds new connections
	// (drops their SYNs; clients retry) before it gives up the VIPs, so no
	// handshake is left half-way on it. Default 200ms.
	HandoverHold Duration `toml:"handover_hold"`
	// TakeoverQuiet is how long a new master drops, instead of resetting,
	// TCP segments of connections it does not know yet, while the old
	// master's last sync messages arrive. Default 4s (the kernel sends a
	// partly filled sync message within 3s).
	TakeoverQuiet Duration `toml:"takeover_quiet"`
}

// BGP makes the director active-active: it holds every VIP without
// answering ARP or neighbour discovery for it and announces each VIP as a
// /32 (/128) route, next hop its own address, to the routers listed as
// neighbours, which spread the flows over every director that announces it
// (ECMP). A VIP is withdrawn while one of its virtual services is below
// its quorum, in maintenance and before lbd stops. It cannot be combined
// with [vrrp]. In BGP mode a virtual server's scheduler defaults to mh
// with mh-fallback and mh-port, the only one that sends a flow to the same
// real server whichever director receives it.
type BGP struct {
	LocalASN uint32 `toml:"local_asn"` // required: 1..4294967295
	// RouterID is an IPv4 address; default the first IPv4 address of
	// global.interface, found when the speaker starts.
	RouterID string `toml:"router_id,omitempty"`
	// VIPs announced; empty means every virtual server's VIP. Each must be
	// a virtual server's VIP.
	VIPs []string `toml:"vips,omitempty"`
	// Communities ("65001:100", "no-export", "no-advertise") attached to
	// every announced route.
	Communities []string `toml:"communities,omitempty"`
	// MED and LocalPref are sent when set; local_pref only reaches iBGP
	// neighbours (asn = local_asn).
	MED       *uint32       `toml:"med,omitempty"`
	LocalPref *uint32       `toml:"local_pref,omitempty"`
	Neighbors []BGPNeighbor `toml:"neighbor"`
}

// BGPNeighbor is a router lbd announces the VIPs to. lbd only dials out:
// the router must accept a session from this director's address. IPv4 VIPs
// go to IPv4 neighbours, IPv6 VIPs to IPv6 neighbours.
type BGPNeighbor struct {
	Address string `toml:"address"`
	ASN     uint32 `toml:"asn"`  // 1..4294967295; = local_asn for iBGP
	Port    int    `toml:"port"` // default 179
	// HoldTime is proposed to the router (the session uses the smaller of
	// both); default 90s, whole seconds from 3s to 65535s.
	HoldTime Duration `toml:"hold_time"`
	// ConnectRetry is the wait between two attempts to open the session;
	// default 5s.
	ConnectRetry Duration `toml:"connect_retry"`
	// Password turns on TCP MD5 signatures (RFC 2385), as on the router.
	Password string `toml:"password,omitempty"`
	// BFD runs single-hop BFD (RFC 5881) with the router, which must run it
	// too: the session drops within about a second of the path failing.
	BFD bool `toml:"bfd,omitempty"`
}

// TrackInterface is an interface whose link state the VRRP instance follows:
// Weight 0 puts the instance in Fault when the link is down, otherwise the
// priority is lowered by Weight.
type TrackInterface struct {
	Name   string `toml:"name"`
	Weight int    `toml:"weight"`
}

// VirtualServer is a virtual service: VIP:port/protocol or a firewall mark.
type VirtualServer struct {
	Name     string `toml:"name"`
	VIP      string `toml:"vip,omitempty"`
	Port     int    `toml:"port,omitempty"`
	Protocol string `toml:"protocol,omitempty"` // tcp | udp | sctp; default tcp
	// Fwmark selects packets by firewall mark instead of VIP:port; Family
	// (inet | inet6) then says the address family, default inet.
	Fwmark    uint32 `toml:"fwmark,omitempty"`
	Family    string `toml:"family,omitempty"`
	Scheduler string `toml:"scheduler"` // default wlc
	// SchedulerFlags: sh-fallback, sh-port, mh-fallback, mh-port.
	SchedulerFlags     []string `toml:"scheduler_flags,omitempty"`
	Persistence        Duration `toml:"persistence"`         // 0 = off
	PersistenceNetmask int      `toml:"persistence_netmask"` // prefix length; default 32 / 128
	Forwarding         string   `toml:"forwarding,omitempty"`
	Active             *bool    `toml:"active,omitempty"` // default true
	// Quorum is the minimum total weight of healthy real servers for the
	// service to count as healthy. Default 1.
	Quorum int `toml:"quorum"`
	// OnFailure: quiesce (weight 0) or remove. The default is quiesce,
	// and remove for a udp service (a failed real server of a udp
	// service is removed at once, so its flows move to a live one).
	OnFailure string `toml:"on_failure,omitempty"`
	// SorryServer (address or address:port) is added while no real server
	// is up.
	SorryServer string       `toml:"sorry_server,omitempty"`
	HealthCheck *HealthCheck `toml:"health_check,omitempty"`
	RealServers []RealServer `toml:"real_server"`
}

// RealServer is one destination of a virtual service.
type RealServer struct {
	Name       string `toml:"name"`
	Address    string `toml:"address"`
	Port       int    `toml:"port,omitempty"`       // default: the service's port
	Weight     *int   `toml:"weight,omitempty"`     // 0..65535; default 1
	Forwarding string `toml:"forwarding,omitempty"` // default: the service's
	Active     *bool  `toml:"active,omitempty"`     // default true; false = not in IPVS
	// Drained keeps the real server at weight 0 (no new connections,
	// existing ones finish) until it is enabled again.
	Drained bool `toml:"drained,omitempty"`
}

// HealthCheck is a virtual service's real-server check (piranha's
// MONITORING screen).
type HealthCheck struct {
	// Type says how: tcp | http | https | send_expect | exec | dns | udp |
	// smtp | none. On a udp service only dns, udp and exec can check the
	// real server's own port; on a tcp service every type but udp can. With
	// port set, the check goes to another endpoint and any type is
	// accepted.
	Type     string   `toml:"type"`
	Address  string   `toml:"address,omitempty"`
	Port     int      `toml:"port,omitempty"`
	Interval Duration `toml:"interval"` // default 2s
	Timeout  Duration `toml:"timeout"`  // default 1s; must be < interval
	Rise     int      `toml:"rise"`     // default 2
	Fall     int      `toml:"fall"`     // default 3

	// http / https
	Method       string   `toml:"method,omitempty"` // default GET
	Path         string   `toml:"path,omitempty"`   // default /
	Host         string   `toml:"host,omitempty"`
	SNI          string   `toml:"sni,omitempty"`
	ExpectStatus []string `toml:"expect_status,omitempty"` // "200", "200-399"; default 200-399
	ExpectBody   string   `toml:"expect_body,omitempty"`   // regular expression
	TLSVerify    *bool    `toml:"tls_verify,omitempty"`    // default false

	// send_expect, and udp: Send is the datagram (required), Expect what
	// a reply must match (empty: any reply). A UDP server that does not
	// answer the payload cannot be told from a dead one ("no reply").
	Send   string `toml:"send,omitempty"`
	Expect string `toml:"expect,omitempty"` // regular expression

	// exec: argv; %h and %p are replaced by address and port.
	Command []string `toml:"command,omitempty"`

	// dns: one question, QueryName of QueryType (any record type name:
	// A, AAAA, SOA, MX, ...), over DNSTransport. The reply must carry the
	// query's id and ExpectRcode; when ExpectAnswer is set, also an answer
	// matching it: an IP address among the A/AAAA answers, or else a
	// regular expression matched against each answer record's text.
	QueryName    string `toml:"query_name,omitempty"`    // default "."
	QueryType    string `toml:"query_type,omitempty"`    // default SOA
	DNSTransport string `toml:"dns_transport,omitempty"` // udp | tcp; default the service's protocol
	ExpectRcode  string `toml:"expect_rcode,omitempty"`  // NOERROR, NXDOMAIN, ...; default NOERROR
	ExpectAnswer string `toml:"expect_answer,omitempty"` // IP address or regular expression

	// smtp: banner 220, EHLO HeloName 250, optionally STARTTLS (with sni
	// and tls_verify as for https) and EHLO again, QUIT 221.
	HeloName string `toml:"helo_name,omitempty"` // default global.node_name
	StartTLS bool   `toml:"starttls,omitempty"`

	// ThroughVIP sends each real server's check to the VIP (at the
	// check's port) with a firewall mark that lbd's own IPVS service for
	// that mark delivers to that one real server, by the service's dr or
	// tun forwarding: the check travels the way clients' packets do, so a
	// real server that does not hold the VIP on lo, or answers ARP for it,
	// is reported down ("does not accept the VIP"). Default true on a dr
	// or tun VIP:port service whose check goes to the real server itself
	// (no address, type not exec); false otherwise, and refused there.
	// Real servers of such a service forwarded by nat are checked plainly.
	ThroughVIP *bool `toml:"through_vip,omitempty"`
}

// Firewall marks lbd takes for its through-VIP check services: no user
// fwmark service may use one.
const (
	CheckMarkBase  uint32 = 0x4c420000 // "LB" << 16
	CheckMarkCount uint32 = 1 << 16
)

// IsCheckMark reports whether mark is one of lbd's own check marks.
func IsCheckMark(mark uint32) bool {
	return mark >= CheckMarkBase && mark-CheckMarkBase < CheckMarkCount
}

// Duration is a time.Duration written as a Go duration string ("1.5s").
type Duration struct{ time.Duration }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}
