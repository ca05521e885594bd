package balancer

import (
	"fmt"
	"net/netip"
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
// defaults where the kernel has one (group 224.0.0.81, port 8848, TTL 1,
// packet length from the interface MTU).
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
