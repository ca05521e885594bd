package balancer

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Family is an address family of a virtual service.
type Family uint8

// Address families.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

func (f Family) String() string {
	switch f {
	case IPv4:
		return "inet"
	case IPv6:
		return "inet6"
	}
	return "family(" + strconv.Itoa(int(f)) + ")"
}

// bits is the address length of the family (the "host" persistence mask).
func (f Family) bits() int {
	if f == IPv6 {
		return 128
	}
	return 32
}

func familyOf(a netip.Addr) Family {
	if a.Is4() || a.Is4In6() {
		return IPv4
	}
	return IPv6
}

// Protocol is the transport protocol of a VIP:port service.
type Protocol uint8

// Protocols IPVS balances (values are the IP protocol numbers).
const (
	TCP  Protocol = 6
	UDP  Protocol = 17
	SCTP Protocol = 132
)

func (p Protocol) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	case SCTP:
		return "sctp"
	}
	return "proto(" + strconv.Itoa(int(p)) + ")"
}

// ParseProtocol reads "tcp", "udp" or "sctp".
func ParseProtocol(s string) (Protocol, error) {
	switch strings.ToLower(s) {
	case "tcp":
		return TCP, nil
	case "udp":
		return UDP, nil
	case "sctp":
		return SCTP, nil
	}
	return 0, fmt.Errorf("balancer: unknown protocol %q (want tcp, udp or sctp)", s)
}

// Forwarding is how IPVS hands packets to a real server.
type Forwarding uint8

// Forwarding methods. The zero value is direct routing, lbd's default.
const (
	DR     Forwarding = iota // direct routing ("gatewaying")
	NAT                      // masquerading
	Tunnel                   // IP-in-IP
)

func (f Forwarding) String() string {
	switch f {
	case DR:
		return "dr"
	case NAT:
		return "nat"
	case Tunnel:
		return "tun"
	}
	return "forwarding(" + strconv.Itoa(int(f)) + ")"
}

// ParseForwarding reads "dr", "nat" or "tun" ("" means dr).
func ParseForwarding(s string) (Forwarding, error) {
	switch strings.ToLower(s) {
	case "", "dr", "route", "direct":
		return DR, nil
	case "nat", "masq":
		return NAT, nil
	case "tun", "tunnel", "ipip":
		return Tunnel, nil
	}
	return 0, fmt.Errorf("balancer: unknown forwarding %q (want dr, nat or tun)", s)
}

// Flags are per-service scheduler flags. Their bit values are the kernel's
// (IP_VS_SVC_F_*), so flags lbd does not name still survive a round trip.
// Persistence is not a flag here: it is Service.Persistence.
type Flags uint32

// Scheduler flags. The sh and mh schedulers give the same two kernel bits
// their own names; both spellings are accepted by ParseFlag.
const (
	FlagOnePacket  Flags = 0x0004 // "ops": schedule every UDP datagram
	FlagSHFallback Flags = 0x0008 // sh: skip overloaded/weight-0 servers
	FlagSHPort     Flags = 0x0010 // sh: hash the source port too
	FlagMHFallback Flags = 0x0008 // mh: same bit as sh-fallback
	FlagMHPort     Flags = 0x0010 // mh: same bit as sh-port
	FlagSched3     Flags = 0x0020

	// kernel bits the model keeps elsewhere or ignores
	flagPersistent Flags = 0x0001
	flagHashed     Flags = 0x0002
)

// ParseFlag reads one flag name: sh-fallback, sh-port, mh-fallback,
// mh-port, ops, flag-1, flag-2, flag-3.
func ParseFlag(s string) (Flags, error) {
	switch strings.ToLower(s) {
	case "sh-fallback", "mh-fallback", "flag-1":
		return FlagSHFallback, nil
	case "sh-port", "mh-port", "flag-2":
		return FlagSHPort, nil
	case "flag-3":
		return FlagSched3, nil
	case "ops", "one-packet":
		return FlagOnePacket, nil
	}
	return 0, fmt.Errorf("balancer: unknown scheduler flag %q (want sh-fallback, sh-port, mh-fallback, mh-port or ops)", s)
}

// Key identifies a virtual service: protocol+VIP+port, or firewall mark and
// family (Fwmark != 0; Addr, Port and Protocol are then zero). It is
// comparable and used as a map key.
type Key struct {
	Family   Family
	Protocol Protocol
	Addr     netip.Addr
	Port     uint16
	Fwmark   uint32
}

// ServiceKey returns the key of a VIP:port service; the family follows the
// address.
func ServiceKey(p Protocol, vip netip.AddrPort) Key {
	a := vip.Addr().Unmap()
	return Key{Family: familyOf(a), Protocol: p, Addr: a, Port: vip.Port()}
}

// FwmarkKey returns the key of a firewall-mark service.
func FwmarkKey(mark uint32, f Family) Key {
	return Key{Family: f, Fwmark: mark}
}

// String is "tcp/10.0.0.1:80", "udp/[2001:db8::1]:53" or "fwmark/7/inet".
func (k Key) String() string {
	if k.Fwmark != 0 {
		return "fwmark/" + strconv.FormatUint(uint64(k.Fwmark), 10) + "/" + k.Family.String()
	}
	return k.Protocol.String() + "/" + netip.AddrPortFrom(k.Addr, k.Port).String()
}

func (k Key) validate() error {
	if k.Family != IPv4 && k.Family != IPv6 {
		return fmt.Errorf("unknown address family %d", k.Family)
	}
	if k.Fwmark != 0 {
		if k.Addr.IsValid() || k.Port != 0 || k.Protocol != 0 {
			return errors.New("a firewall-mark service has no address, port or protocol")
		}
		return nil
	}
	switch k.Protocol {
	case TCP, UDP, SCTP:
	default:
		return fmt.Errorf("unknown protocol %d", k.Protocol)
	}
	if !k.Addr.IsValid() {
		return errors.New("no virtual IP")
	}
	if k.Addr.Is4In6() || k.Addr.Zone() != "" {
		return errors.New("virtual IP must be a plain IPv4 or IPv6 address")
	}
	if familyOf(k.Addr) != k.Family {
		return fmt.Errorf("virtual IP %s is not %s", k.Addr, k.Family)
	}
	return nil
}

// Service is a virtual service's own settings.
type Service struct {
	Key
	// Scheduler is the IPVS scheduler name: rr, wrr, lc, wlc, lblc, lblcr,
	// dh, sh, sed, nq, fo, ovf, mh, twos. Empty means wlc.
	Scheduler string
	Flags     Flags
	// Persistence keeps a client on the same real server for this long
	// after its last connection; 0 is off. The kernel counts whole seconds.
	Persistence time.Duration
	// PersistenceNetmask groups clients by this prefix length for
	// persistence; 0 means a single address (32 or 128).
	PersistenceNetmask int
}

// Destination is a real server of a virtual service.
type Destination struct {
	Addr netip.Addr
	// Port is the real server's port. With dr and tun the kernel cannot
	// change the port, so it must equal the service's port (0 for a
	// firewall-mark service); with nat it may differ.
	Port       uint16
	Weight     int // 0..65535; 0 takes no new connections
	Forwarding Forwarding
}

// DestKey identifies a destination within its service.
type DestKey struct {
	Addr netip.Addr
	Port uint16
}

func (k DestKey) String() string { return netip.AddrPortFrom(k.Addr, k.Port).String() }

// Key returns the destination's identity within its service.
func (d Destination) Key() DestKey { return DestKey{Addr: d.Addr, Port: d.Port} }

// VirtualService is a service with its real servers, as wanted.
type VirtualService struct {
	Service
	Destinations []Destination
	// RemoveNow lists real servers that must leave the kernel at once,
	// connections or not, instead of waiting at weight 0 for the removal
	// grace: lbd lists a UDP service's failed real servers here. A UDP
	// flow whose client keeps its source port (a resolver) is refreshed
	// by every datagram, so it would never leave a quiesced server; once
	// the server is removed, expire_nodest_conn (set by lbd) expires the
	// flow's entry at its next datagram and the kernel schedules that
	// datagram to a live real server. None of them may be in Destinations.
	RemoveNow []DestKey
}

// Table is the whole desired IPVS state of the services lbd manages.
type Table struct {
	Services []VirtualService
	// Timeouts are the namespace's connection timeouts; zero fields
	// leave the kernel's values alone.
	Timeouts Timeouts
}

// MaxWeight is the largest weight lbd accepts.
const MaxWeight = 65535

// Validate reports every problem of the table at once, so a bad table is
// refused before a single write and the running one is kept.
func (t Table) Validate() error {
	var errs []error
	if err := t.Timeouts.validate(); err != nil {
		errs = append(errs, err)
	}
	seen := make(map[Key]bool, len(t.Services))
	for _, vs := range t.Services {
		if err := vs.validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[vs.Key] {
			errs = append(errs, fmt.Errorf("balancer: service %s: listed twice", vs.Key))
		}
		seen[vs.Key] = true
	}
	return errors.Join(errs...)
}

func (vs VirtualService) validate() error {
	wrap := func(err error) error { return fmt.Errorf("balancer: service %s: %w", vs.Key, err) }
	if err := vs.Key.validate(); err != nil {
		return wrap(err)
	}
	if s := vs.Scheduler; s != "" && (len(s) > 15 || strings.ContainsAny(s, " \t\n/")) {
		return wrap(fmt.Errorf("bad scheduler name %q", s))
	}
	if vs.Flags&(flagPersistent|flagHashed) != 0 {
		return wrap(errors.New("persistence is set with Persistence, not Flags"))
	}
	if p := vs.Persistence; p != 0 {
		if p < time.Second || p%time.Second != 0 {
			return wrap(fmt.Errorf("persistence %v must be whole seconds", p))
		}
		if p/time.Second > 1<<31 {
			return wrap(fmt.Errorf("persistence %v too long", p))
		}
	}
	if m := vs.PersistenceNetmask; m < 0 || m > vs.Family.bits() {
		return wrap(fmt.Errorf("persistence netmask /%d out of range for %s", m, vs.Family))
	}
	seen := make(map[DestKey]bool, len(vs.Destinations))
	var errs []error
	for _, d := range vs.Destinations {
		if err := vs.validateDest(d); err != nil {
			errs = append(errs, wrap(fmt.Errorf("real server %s: %w", d.Key(), err)))
			continue
		}
		if seen[d.Key()] {
			errs = append(errs, wrap(fmt.Errorf("real server %s: listed twice", d.Key())))
		}
		seen[d.Key()] = true
	}
	for _, dk := range vs.RemoveNow {
		if seen[dk] {
			errs = append(errs, wrap(fmt.Errorf("real server %s: both wanted and to remove now", dk)))
		}
	}
	return errors.Join(errs...)
}

func (vs VirtualService) validateDest(d Destination) error {
	if !d.Addr.IsValid() || d.Addr.Is4In6() || d.Addr.Zone() != "" {
		return errors.New("needs a plain IPv4 or IPv6 address")
	}
	if d.Weight < 0 || d.Weight > MaxWeight {
		return fmt.Errorf("weight %d out of range 0..%d", d.Weight, MaxWeight)
	}
	switch d.Forwarding {
	case DR, NAT, Tunnel:
	default:
		return fmt.Errorf("unknown forwarding %d", d.Forwarding)
	}
	if familyOf(d.Addr) != vs.Family && d.Forwarding != Tunnel {
		// The kernel only forwards across families by tunnelling.
		return fmt.Errorf("%s real server on an %s service needs tun forwarding", familyOf(d.Addr), vs.Family)
	}
	switch {
	case d.Forwarding != NAT && d.Port != vs.Port:
		return fmt.Errorf("%s forwarding cannot change the port: use port %d or nat", d.Forwarding, vs.Port)
	case d.Forwarding == NAT && d.Port == 0 && vs.Fwmark == 0:
		return errors.New("nat needs a real server port")
	}
	return nil
}

// normalized returns the service as the kernel reports it back, so desired
// and actual compare equal when nothing needs writing.
func (s Service) normalized() Service {
	if s.Scheduler == "" {
		s.Scheduler = "wlc"
	}
	if s.PersistenceNetmask == 0 {
		s.PersistenceNetmask = s.Family.bits()
	}
	s.Persistence = s.Persistence.Truncate(time.Second)
	return s
}

// sameSettings reports whether a (normalized) desired service and the
// kernel's agree on everything an update could change.
func (s Service) sameSettings(k Service) bool {
	return s.Scheduler == k.Scheduler && s.Flags == k.Flags &&
		s.Persistence == k.Persistence && s.PersistenceNetmask == k.PersistenceNetmask
}

// Stats are IPVS traffic counters and the kernel's per-second estimates.
type Stats struct {
	Conns, InPkts, OutPkts, InBytes, OutBytes uint64
	CPS, InPPS, OutPPS, InBPS, OutBPS         uint64
}

// ServiceStatus is a service as the kernel holds it.
type ServiceStatus struct {
	Service
	Stats Stats
}

// DestinationStatus is a destination as the kernel holds it.
type DestinationStatus struct {
	Destination
	ActiveConns     int
	InactiveConns   int
	PersistentConns int
	Stats           Stats
}

// ServiceSnapshot is a managed service with its destinations, as last read
// from (or written to) the kernel.
type ServiceSnapshot struct {
	ServiceStatus
	Destinations []DestSnapshot
}

// DestSnapshot is one destination in a Snapshot.
type DestSnapshot struct {
	DestinationStatus
	// Removing is set while a real server that left the desired table
	// waits at weight 0 for its connections to end; RemoveBy is
	// when the grace period ends.
	Removing bool
	RemoveBy time.Time
}
