package balancer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"
)

// ErrUnavailable means the running kernel has no IPVS (module not loaded or
// not built). Open wraps it with advice for the operator.
var ErrUnavailable = errors.New("IPVS is not available in this kernel")

// IPVS is the kernel's IPVS table in the caller's network namespace, over
// one generic netlink socket for the table. Calls are serialized on it:
// parallel sockets were measured slower for writes (they contend on the
// kernel's IPVS mutex) and no reliably faster for reads. The sync daemons
// have a socket of their own (the library has no sync-daemon calls), and
// the connection table's origins are read from a /proc file opened in the
// same namespace (ipvs_sync.go).
type IPVS struct {
	c       ipvs.Client
	once    sync.Once
	daemons *syncConn
}

var _ Kernel = (*IPVS)(nil)

func openIPVS(dial func() (ipvs.Client, error)) (*IPVS, error) {
	c, err := dial()
	if err != nil {
		// ipvs.New returns a non-nil interface holding a nil pointer on
		// error: never keep or close it.
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("balancer: %w: load ip_vs (modprobe ip_vs) or run a kernel with CONFIG_IP_VS", ErrUnavailable)
		}
		return nil, fmt.Errorf("balancer: open IPVS netlink: %w", err)
	}
	return &IPVS{c: c}, nil
}

// Close releases the netlink socket.
func (k *IPVS) Close() error {
	var err error
	k.once.Do(func() {
		if cl, ok := k.c.(io.Closer); ok {
			err = cl.Close()
		}
		err = errors.Join(err, k.daemons.close())
	})
	return err
}

// Services implements Kernel.
func (k *IPVS) Services() ([]ServiceStatus, error) {
	list, err := k.c.Services()
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // the library's way of saying "empty table"
	}
	if err != nil {
		return nil, fmt.Errorf("balancer: list IPVS services: %w", err)
	}
	out := make([]ServiceStatus, 0, len(list))
	for _, s := range list {
		st, ok := fromIPVSService(s)
		if !ok {
			continue // a family lbd does not model; it is foreign anyway
		}
		out = append(out, st)
	}
	return out, nil
}

// Destinations implements Kernel.
func (k *IPVS) Destinations(key Key) ([]DestinationStatus, error) {
	list, err := k.c.Destinations(toIPVSKey(key))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("balancer: list real servers of %s: %w", key, err)
	}
	out := make([]DestinationStatus, 0, len(list))
	for _, d := range list {
		out = append(out, fromIPVSDest(d))
	}
	return out, nil
}

// CreateService implements Kernel.
func (k *IPVS) CreateService(s Service) error {
	err := k.c.CreateService(toIPVSService(s))
	if errors.Is(err, syscall.ENOENT) {
		return schedulerErr("create service", s, err)
	}
	return opErr("create service", s.Key, nil, err)
}

// UpdateService implements Kernel.
func (k *IPVS) UpdateService(s Service) error {
	err := k.c.UpdateService(toIPVSService(s))
	if errors.Is(err, syscall.ENOENT) {
		return schedulerErr("update service", s, err)
	}
	return opErr("update service", s.Key, nil, err)
}

// schedulerErr explains ENOENT from a create or update: the kernel has no
// scheduler by that name. A modular kernel loads ip_vs_<name> on demand
// when it has it (a VM without modprobe does not); twos appeared in 6.6.
func schedulerErr(op string, s Service, err error) error {
	hint := fmt.Sprintf("is its module ip_vs_%s loaded?", s.Scheduler)
	if s.Scheduler == "twos" {
		hint += " twos needs Linux 6.6 or later"
	}
	return fmt.Errorf("balancer: %s %s: scheduler %q not available in this kernel: %w (%s)", op, s.Key, s.Scheduler, err, hint)
}

// RemoveService implements Kernel.
func (k *IPVS) RemoveService(key Key) error {
	err := k.c.RemoveService(toIPVSKey(key))
	return opErr("remove service", key, nil, err)
}

// CreateDestination implements Kernel.
func (k *IPVS) CreateDestination(key Key, d Destination) error {
	err := k.c.CreateDestination(toIPVSKey(key), toIPVSDest(d))
	dk := d.Key()
	return opErr("add real server", key, &dk, err)
}

// UpdateDestination implements Kernel.
func (k *IPVS) UpdateDestination(key Key, d Destination) error {
	err := k.c.UpdateDestination(toIPVSKey(key), toIPVSDest(d))
	dk := d.Key()
	return opErr("update real server", key, &dk, err)
}

// RemoveDestination implements Kernel.
func (k *IPVS) RemoveDestination(key Key, dk DestKey) error {
	err := k.c.RemoveDestination(toIPVSKey(key), toIPVSDest(Destination{Addr: dk.Addr, Port: dk.Port}))
	return opErr("remove real server", key, &dk, err)
}

func opErr(op string, key Key, dk *DestKey, err error) error {
	if err == nil {
		return nil
	}
	hint := ""
	switch {
	case errors.Is(err, syscall.EPERM):
		hint = " (needs root or CAP_NET_ADMIN)"
	}
	if dk != nil {
		return fmt.Errorf("balancer: %s %s on %s: %w%s", op, dk, key, err, hint)
	}
	return fmt.Errorf("balancer: %s %s: %w%s", op, key, err, hint)
}

func toIPVSKey(k Key) ipvs.Service {
	s := ipvs.Service{Family: ipvs.INET, FWMark: k.Fwmark}
	if k.Family == IPv6 {
		s.Family = ipvs.INET6
	}
	if k.Fwmark == 0 {
		s.Address = k.Addr
		s.Port = k.Port
		s.Protocol = ipvs.Protocol(k.Protocol)
	}
	return s
}

func toIPVSService(s Service) ipvs.Service {
	s = s.normalized()
	out := toIPVSKey(s.Key)
	out.Scheduler = s.Scheduler
	out.Flags = ipvs.Flags(s.Flags)
	if s.Persistence > 0 {
		out.Flags |= ipvs.ServicePersistent
		out.Timeout = uint32(s.Persistence / time.Second)
	}
	// The kernel refuses a service without a netmask (EINVAL).
	out.Netmask = netmask.MaskFrom(s.PersistenceNetmask, s.Family.bits())
	return out
}

func fromIPVSService(s ipvs.ServiceExtended) (ServiceStatus, bool) {
	var key Key
	switch s.Family {
	case ipvs.INET:
		key.Family = IPv4
	case ipvs.INET6:
		key.Family = IPv6
	default:
		return ServiceStatus{}, false
	}
	if s.FWMark != 0 {
		key.Fwmark = s.FWMark
	} else {
		key.Protocol = Protocol(s.Protocol)
		key.Addr = s.Address.Unmap()
		key.Port = s.Port
	}
	st := ServiceStatus{Service: Service{
		Key:       key,
		Scheduler: s.Scheduler,
		Flags:     Flags(s.Flags) &^ (flagPersistent | flagHashed),
	}}
	if Flags(s.Flags)&flagPersistent != 0 {
		st.Persistence = time.Duration(s.Timeout) * time.Second
	}
	// A non-prefix IPv4 mask (ipvsadm -M 255.0.255.0) reads as -1 and so
	// never equals a desired prefix: an owned service gets it fixed.
	st.PersistenceNetmask = s.Netmask.Bits()
	st.Stats = pickStats(s.Stats, s.Stats64)
	return st, true
}

func toIPVSDest(d Destination) ipvs.Destination {
	out := ipvs.Destination{
		Address: d.Addr,
		Port:    d.Port,
		Weight:  uint32(d.Weight),
		Family:  ipvs.INET,
	}
	if familyOf(d.Addr) == IPv6 {
		out.Family = ipvs.INET6
	}
	switch d.Forwarding {
	case NAT:
		out.FwdMethod = ipvs.Masquerade
	case Tunnel:
		out.FwdMethod = ipvs.Tunnel
	default:
		out.FwdMethod = ipvs.DirectRoute
	}
	return out
}

func fromIPVSDest(d ipvs.DestinationExtended) DestinationStatus {
	out := DestinationStatus{
		Destination: Destination{
			Addr:   d.Address.Unmap(),
			Port:   d.Port,
			Weight: int(d.Weight),
		},
		ActiveConns:     int(d.ActiveConnections),
		InactiveConns:   int(d.InactiveConnections),
		PersistentConns: int(d.PersistentConnections),
		Stats:           pickStats(d.Stats, d.Stats64),
	}
	switch d.FwdMethod {
	case ipvs.Masquerade:
		out.Forwarding = NAT
	case ipvs.Tunnel:
		out.Forwarding = Tunnel
	case ipvs.DirectRoute:
		out.Forwarding = DR
	default:
		// Local or bypass: not something lbd writes; an impossible value
		// makes an owned destination compare different and get fixed.
		out.Forwarding = Forwarding(0xff)
	}
	return out
}

// pickStats prefers the 64-bit counters; kernels before 4.1 send only the
// 32-bit ones.
func pickStats(s32, s64 ipvs.Stats) Stats {
	s := s64
	if s64 == (ipvs.Stats{}) {
		s = s32
	}
	return Stats{
		Conns: s.Connections, InPkts: s.IncomingPackets, OutPkts: s.OutgoingPackets,
		InBytes: s.IncomingBytes, OutBytes: s.OutgoingBytes,
		CPS: s.ConnectionRate, InPPS: s.IncomingPacketRate, OutPPS: s.OutgoingPacketRate,
		InBPS: s.IncomingByteRate, OutBPS: s.OutgoingByteRate,
	}
}
