// Package balancer owns lbd's view of the kernel's IPVS table: a small typed
// model (virtual services and their real servers), a Kernel interface with a
// netlink implementation and an in-memory fake, and a Reconciler that makes
// the kernel match a desired Table with the fewest netlink writes, repairs
// drift on a timer and removes real servers gracefully.
//
// The kernel's connection-sync daemons are desired state of the same
// Reconciler (SetSync): started when missing, restarted when their settings
// drifted, stopped when no longer wanted, and the connection table counted
// by origin (SyncStatus).
//
// # Sync roles
//
// lbd runs BOTH sync daemons, master and backup, on BOTH directors all the
// time, with the same sync id, instead of starting the master daemon on the
// VRRP master and the backup daemon on the backup and swapping them at each
// transition (keepalived's way when lvs_sync_daemon names a VRRP
// instance). Nothing is started or stopped at a transition, so there is no
// gap in which a new connection goes unsynced: starting a daemon takes the
// kernel a moment (a thread and its sockets), and a master daemon sends a
// connection only when one of its packets passes after the start, so a
// connection scheduled just before a swap reaches the peer late or, when
// quiet, not before the failover that needs it. A director that
// returns (reboot, restart) learns the running table continuously from the
// peer's master while it is backup, instead of coming back empty (keepalived
// #1966). After a failover the new master's updates overwrite whatever
// stale entries the old master still holds. A director never learns its own
// messages: the kernel's master socket turns multicast loop off, so each
// backup daemon hears only the peer. net.ipv4.vs.backup_only must stay 0
// (SyncSysctls sets it): with it, a running backup daemon would turn this
// director's forwarding off.
//
// The package is a leaf: it imports nothing else of lbd's. The director
// translates its configuration into a Table and a list of SyncDaemons.
package balancer
