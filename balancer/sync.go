package balancer

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"time"
)

// SyncRole is a role of the kernel's IPVS connection-sync daemon. A network
// namespace runs at most one daemon per role; both may run at once.
type SyncRole uint8

// Sync daemon roles, as the kernel numbers them (IPVS_STATE_MASTER/BACKUP).
const (
	SyncMaster SyncRole = 1 // sends the connections this director schedules
	SyncBackup SyncRole = 2 // learns the connections the peer sends
)

func (r SyncRole) String() string {
	switch r {
	case SyncMaster:
		return "master"
	case SyncBackup:
		return "backup"
	}
	return fmt.Sprintf("role%d", uint8(r))
}

// SyncDaemon is one sync daemon's settings. Zero values mean the kernel's
// defaults where the kernel has one (group 224.0.0.81, port 8848, TTL 1;
// message length 1472 for a master, 1452 with an IPv6 group, and for a
// backup the interface MTU minus the same headers, at least that much).
type SyncDaemon struct {
	Role      SyncRole
	Interface string // required; at most 15 bytes
	SyncID    uint8  // a backup with id 0 accepts every master
	// Group is the multicast group; an IPv6 group makes it an IPv6 sync
	// daemon (for an interface without IPv4).
	Group  netip.Addr
	Port   uint16
	TTL    uint8
	MaxLen uint16
}

// SyncKernel starts, stops and lists the kernel's sync daemons (generic
// netlink IPVS_CMD_NEW_DAEMON, DEL_DAEMON, GET_DAEMON) and counts the
// connection table by origin.
type SyncKernel interface {
	// SyncDaemons lists the running daemons as the kernel reports them.
	SyncDaemons() ([]SyncDaemon, error)
	// StartSyncDaemon starts a daemon; the kernel refuses a role that
	// runs already (EEXIST).
	StartSyncDaemon(SyncDaemon) error
	// StopSyncDaemon stops the daemon of a role (ESRCH when none runs).
	StopSyncDaemon(SyncRole) error
	// ConnCounts counts the connection table's entries by origin
	// (/proc/net/ip_vs_conn_sync): learned from a peer, or scheduled here.
	ConnCounts() (ConnCounts, error)
}

// ConnCounts is the connection table by origin.
type ConnCounts struct {
	Synced int // learned from the peer's sync messages
	Local  int // scheduled by this director
}

// SyncStatus is the reconciler's view of the sync daemons.
type SyncStatus struct {
	Daemons []SyncDaemonStatus // one per desired role, master first
	Conns   ConnCounts
	// ConnsAt is when Conns was read (zero: never).
	ConnsAt time.Time
	// ConnsErr says why the last reading of Conns failed ("" when it
	// worked); Conns and ConnsAt then keep the reading before.
	ConnsErr string
}

// SyncDaemonStatus is one desired daemon and what the kernel runs.
type SyncDaemonStatus struct {
	Want    SyncDaemon
	Running bool // the kernel runs this role with the wanted settings
	// Since is when the reconciler first saw it running with the wanted
	// settings, without a gap since (zero while not running).
	Since time.Time
	Err   string // the last start failure, "" when running
}

// The kernel's sync defaults (ip_vs_sync.c start_sync_thread), which
// GET_DAEMON reports for a daemon started without them. They are not lbd's
// defaults (those live in config): the reconciler needs them only to see
// that a daemon started with zero values runs as wanted.
var kernelSyncGroup = netip.AddrFrom4([4]byte{224, 0, 0, 81})

const (
	kernelSyncPort = 8848
	kernelSyncTTL  = 1
	// The sync message length: a master's default is a 1500-byte packet
	// minus the IP and UDP headers; a backup's follows the interface MTU
	// (at least 1500). An explicit length is clamped to 1 (master) or
	// 1024 (backup) .. 65535 minus the headers.
	syncMTU         = 1500
	syncHeaderLen4  = 20 + 8
	syncHeaderLen6  = 40 + 8
	syncMaxPacket   = 65535
	syncMinBackup   = 1024
	maxIfaceNameLen = 15 // IFNAMSIZ - 1
)

func (d SyncDaemon) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s on %s (sync id %d", d.Role, d.Interface, d.SyncID)
	if d.Group.IsValid() {
		fmt.Fprintf(&b, ", group %s", d.Group)
	}
	if d.Port != 0 {
		fmt.Fprintf(&b, ", port %d", d.Port)
	}
	if d.TTL != 0 {
		fmt.Fprintf(&b, ", ttl %d", d.TTL)
	}
	if d.MaxLen != 0 {
		fmt.Fprintf(&b, ", maxlen %d", d.MaxLen)
	}
	b.WriteByte(')')
	return b.String()
}

// validate checks what the kernel would refuse (and a little more: a name
// ip link would refuse), so a bad setting fails before a netlink call.
func (d SyncDaemon) validate() error {
	if d.Role != SyncMaster && d.Role != SyncBackup {
		return fmt.Errorf("unknown sync role %d (want master or backup)", d.Role)
	}
	if err := validIfaceName(d.Interface); err != nil {
		return err
	}
	if g := d.Group; g.IsValid() {
		switch {
		case g.Is4In6() || g.Zone() != "":
			return fmt.Errorf("sync group %s: want a plain IPv4 or IPv6 multicast address", g)
		case !g.IsMulticast():
			return fmt.Errorf("sync group %s is not a multicast address (IPv4 224.0.0.0/4, IPv6 ff00::/8)", g)
		}
	}
	return nil
}

func validIfaceName(s string) error {
	switch {
	case s == "":
		return errors.New("sync daemon needs an interface")
	case len(s) > maxIfaceNameLen:
		return fmt.Errorf("interface name %q is longer than %d bytes", s, maxIfaceNameLen)
	case s == "." || s == ".." || strings.ContainsAny(s, "/: \t\n\x00"):
		return fmt.Errorf("bad interface name %q", s)
	}
	return nil
}

// ipv6 reports whether the daemon talks IPv6 (its group is IPv6).
func (d SyncDaemon) ipv6() bool { return d.Group.IsValid() && d.Group.Is6() }

func (d SyncDaemon) headerLen() uint16 {
	if d.ipv6() {
		return syncHeaderLen6
	}
	return syncHeaderLen4
}

// normalized returns the daemon as the kernel reports it back after
// starting it: group, port and TTL defaults filled in and the message
// length clamped. A backup's default length depends on the interface MTU,
// which lbd does not know here: it stays 0, and matches compares it as
// "any".
func (d SyncDaemon) normalized() SyncDaemon {
	if !d.Group.IsValid() {
		d.Group = kernelSyncGroup
	}
	if d.Port == 0 {
		d.Port = kernelSyncPort
	}
	if d.TTL == 0 {
		d.TTL = kernelSyncTTL
	}
	hlen := d.headerLen()
	lo := uint16(1)
	if d.Role == SyncBackup {
		lo = syncMinBackup
	}
	switch {
	case d.MaxLen != 0:
		d.MaxLen = min(max(d.MaxLen, lo), syncMaxPacket-hlen)
	case d.Role == SyncMaster:
		d.MaxLen = syncMTU - hlen
	}
	return d
}

// matches reports whether the kernel's running daemon k (as GET_DAEMON
// reports it) is the wanted daemon d.
//
// Kernels before 4.3 report neither group, port, TTL nor length: a field
// the kernel leaves out (zero) is not compared.
func (d SyncDaemon) matches(k SyncDaemon) bool {
	w := d.normalized()
	if w.MaxLen == 0 || k.MaxLen == 0 { // a backup at the interface's default
		k.MaxLen, w.MaxLen = 0, 0
	}
	if !k.Group.IsValid() {
		w.Group = k.Group
	}
	if k.Port == 0 {
		w.Port = 0
	}
	if k.TTL == 0 {
		w.TTL = 0
	}
	return w == k
}

// syncOpErr wraps a sync daemon call's error with the operation, the
// daemon and a hint; the errno stays reachable for errors.Is (EEXIST,
// ESRCH, EPERM, ENODEV, EADDRNOTAVAIL ...).
func syncOpErr(op string, role SyncRole, iface string, err error) error {
	if err == nil {
		return nil
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		err = errno // drop the library's "netlink receive:" wrapping
	}
	where := ""
	if iface != "" {
		where = " on " + iface
	}
	hint := ""
	switch {
	case errors.Is(err, syscall.EPERM):
		hint = " (needs root or CAP_NET_ADMIN)"
	case errors.Is(err, syscall.EEXIST):
		hint = fmt.Sprintf(" (a %s daemon runs already)", role)
	case errors.Is(err, syscall.ESRCH):
		hint = fmt.Sprintf(" (no %s daemon runs)", role)
	case errors.Is(err, syscall.ENODEV):
		hint = " (no such interface in this network namespace)"
	case errors.Is(err, syscall.EADDRNOTAVAIL) && role == SyncMaster:
		hint = " (an IPv4 master needs an IPv4 address on its interface)"
	case errors.Is(err, syscall.EINVAL) && op == "start":
		hint = " (the kernel refuses sync while a service has real servers of another address family)"
	}
	return fmt.Errorf("balancer: %s sync daemon %s%s: %w%s", op, role, where, err, hint)
}

// sortSyncDaemons orders daemons master first.
func sortSyncDaemons(ds []SyncDaemon) {
	slices.SortFunc(ds, func(a, b SyncDaemon) int { return int(a.Role) - int(b.Role) })
}
