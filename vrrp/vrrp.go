// Package vrrp runs one VRRP virtual router: RFC 5798 VRRPv3 (IPv4 and
// IPv6) and RFC 3768 VRRPv2 (IPv4), so a virtual IP address (VIP) moves to
// a backup director when the master dies.
//
// An Instance elects a master with its peers over raw IP protocol 112
// (multicast to 224.0.0.18 / ff02::12 with TTL 255, or unicast to listed
// peers). The master holds the VIPs on the interface and announces them with
// gratuitous ARP (IPv4) and unsolicited neighbour advertisements (IPv6).
//
// Timers follow the RFCs exactly:
//
//	Skew_Time            = ((256 - Priority) * Master_Adver_Interval) / 256
//	Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time
//
// v3 intervals travel in centiseconds (10ms..40.95s) and a v3 backup adopts
// the interval its master advertises; v2 intervals are whole seconds and
// must match. Priority 255 marks the address owner, which becomes master at
// once; a master that stops gracefully sends priority 0 so the backup takes
// over after Skew_Time instead of Master_Down_Interval.
//
// One advert family per instance: the family of the first VIP. VIPs of the
// other family (if any) follow the same election but are not listed in the
// adverts, like keepalived's virtual_ipaddress_excluded.
//
// VRRPv2 simple-text authentication (AuthPass) is INSECURE: the password
// travels in clear in every advert. It exists only to interoperate with old
// peers that require it.
//
// Everything that touches the kernel (raw sockets, addresses, ARP/NDP, link
// state) sits behind small interfaces; the election logic is tested against
// fakes with a virtual clock, and the real implementation in network
// namespaces.
package vrrp

import (
	"log/slog"
	"net/netip"
	"time"
)

// State is a VRRP state. Fault is not in the RFCs: it is Initialize held
// because a tracked interface is down (as keepalived names it).
type State int

// The states of a virtual router.
const (
	Initialize State = iota
	Backup
	Master
	Fault
)

func (s State) String() string {
	switch s {
	case Initialize:
		return "init"
	case Backup:
		return "backup"
	case Master:
		return "master"
	case Fault:
		return "fault"
	}
	return "unknown"
}

// Track is an interface whose link state the instance follows. Weight 0:
// link down puts the instance in Fault. Weight > 0: link down lowers the
// priority by Weight.
type Track struct {
	Name   string
	Weight int
}

// Config configures one instance. Zero values get the defaults noted.
type Config struct {
	// Name identifies the instance in logs and notify commands; default
	// "vrid<VRID>".
	Name     string
	VRID     int // 1..255
	Priority int // 1..255; 255 = address owner
	// AdvertInterval: default 1s. v3: 10ms..40.95s in 10ms steps; v2: whole
	// seconds 1..255.
	AdvertInterval time.Duration
	Version        int    // 2 or 3; default 3
	Interface      string // where adverts go and VIPs live
	// VIPs: at least one. The first one's family is the advert family.
	VIPs []netip.Addr
	// UnicastPeers, when set, replace multicast: adverts go to each peer and
	// only adverts from them are accepted. IPv6 adverts come from the
	// link-local address unless UnicastSource is set: list the peers'
	// link-local addresses, or set UnicastSource on every side.
	UnicastPeers []netip.Addr
	// UnicastSource is the advert source; default the interface's primary
	// IPv4 address or IPv6 link-local address.
	UnicastSource netip.Addr
	// AllowedPeers, in multicast mode, lists the only sources whose adverts
	// count; any other is dropped as foreign (counted, logged at most once
	// a minute), so a stray or hostile router on the segment can neither
	// take the VIP nor hold it away. Empty: every source counts (RFC 5798).
	// In unicast mode UnicastPeers is the list.
	AllowedPeers []netip.Addr
	// MaxLearnedInterval bounds the Master_Adver_Interval a v3 backup
	// learns from adverts (default 3 x AdvertInterval): one forged advert
	// with the 40.95s maximum would otherwise stretch the
	// Master_Down_Interval to two minutes and hold preemption back that
	// long. The real master's next advert is learned again as usual.
	MaxLearnedInterval time.Duration
	// RTPriority > 0 runs the instance's two threads (timers and sending;
	// the socket reader) with SCHED_FIFO at this priority (1..99), like
	// keepalived's vrrp_rt_priority: a box loaded with ordinary processes
	// then delays neither an advert nor the reading of one. 0: ordinary
	// threads. A kernel that refuses is logged; the instance runs anyway.
	RTPriority int
	// LockMemory locks every page of the process in RAM (mlockall), like
	// keepalived's vrrp_no_swap: a swapped-out page cannot stall an
	// advert. A kernel that refuses is logged; the instance runs anyway.
	LockMemory bool
	// Preempt: a higher-priority backup takes over from a lower master.
	// New's callers usually want true (the RFC and config default).
	Preempt bool
	// PreemptDelay holds back preemption after first seeing a lower-priority
	// master (e.g. after boot, let the services warm up).
	PreemptDelay time.Duration
	// AuthPass enables VRRPv2 simple-text authentication (INSECURE, interop
	// only; at most 8 bytes).
	AuthPass        string
	TrackInterfaces []Track
	// GARPCount rounds of gratuitous ARPs / unsolicited NAs per VIP at
	// takeover, GARPInterval apart (default 100ms); 0 or 1 sends only the
	// round every takeover announces with, no burst. GARPRefresh > 0
	// repeats one round that often while master.
	GARPCount    int
	GARPInterval time.Duration
	GARPRefresh  time.Duration
	// Notify is a command run on every transition with Name, the old and
	// the new state appended; NotifyTimeout bounds it (default 10s).
	Notify        []string
	NotifyTimeout time.Duration
	Logger        *slog.Logger
	// OnTransition is called from the instance's goroutine on every
	// transition; it must not block.
	OnTransition func(Transition)
	// OnOwnFault is called from the instance's goroutine whenever the
	// instance's own fault cause changes (its interface or a weight-0
	// tracked link down, no address; not a SetFault), with "" when it
	// is gone; it must not block. Sync groups follow it.
	OnOwnFault func(cause string)
}

// Transition is one state change.
type Transition struct {
	Name     string
	VRID     int
	From, To State
	Reason   string
	At       time.Time
	// Priority is the effective priority at the time.
	Priority int
	// MasterAddr is the master's primary address as far as known.
	MasterAddr netip.Addr
}

// Status is a snapshot of the instance.
type Status struct {
	Name              string
	State             State
	VRID              int
	Version           int
	Interface         string
	Priority          int // configured
	EffectivePriority int // after tracking and penalties
	// MasterAddr is the current master's primary address (ours when
	// Master); invalid when unknown.
	MasterAddr netip.Addr
	// AdvertInterval is ours; MasterAdvertInterval the one in force (a v3
	// backup learns it from the master).
	AdvertInterval       time.Duration
	MasterAdvertInterval time.Duration
	VIPs                 []netip.Addr
	LastTransition       time.Time
	Reason               string
	// Counters: adverts_sent, adverts_received, priority_zero_sent,
	// priority_zero_received, transitions, garp_sent, send_errors,
	// vip_errors, notify_errors, and drop_<reason> for each DropReason.
	Counters map[string]int
}
