// Package bgp announces lbd's VIPs to routers for active-active directors:
// each VIP is a host route (/32, /128) whose next hop is this director's
// own address on the session, so a router that hears it from several
// directors spreads the flows over them (ECMP).
//
// A Speaker is the small interface the director uses; New returns the
// real one, an embedded GoBGP server that only dials out (it never listens
// on port 179), and Fake is an in-memory one for tests of logic. The
// package imports nothing of lbd's: the director translates its
// configuration into Config, Neighbor and Route.
package bgp

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"time"
)

// Config is what a speaker is started with. Every field is given: this
// package decides no default but the GoBGP ones it does not expose.
type Config struct {
	ASN      uint32
	RouterID netip.Addr // IPv4
	// Neighbors are the routers to announce to (see SetNeighbors).
	Neighbors []Neighbor
	Logger    *slog.Logger
	// OnPeer is called, from the speaker's goroutine, on every session
	// state change; it must not block. nil: not called.
	OnPeer func(PeerStatus)
}

// Neighbor is one router.
type Neighbor struct {
	Address netip.Addr
	ASN     uint32
	Port    uint16
	// HoldTime is proposed in OPEN (at least 3s); keepalives go every
	// third of the negotiated hold time.
	HoldTime time.Duration
	// ConnectRetry is the wait between attempts to open the session.
	ConnectRetry time.Duration
	// Password turns on TCP MD5 signatures (Linux only).
	Password string
	// BFD runs single-hop BFD with the router (UDP 3784).
	BFD bool
}

// Route is one announced prefix and its optional attributes. Origin is
// IGP; the next hop is the speaker's own address on each session.
type Route struct {
	Prefix      netip.Prefix
	Communities []uint32
	MED         *uint32
	LocalPref   *uint32 // sent to iBGP neighbours only
}

// Equal reports whether r and o announce the same thing.
func (r Route) Equal(o Route) bool {
	return r.Prefix == o.Prefix && slices.Equal(r.Communities, o.Communities) &&
		eqPtr(r.MED, o.MED) && eqPtr(r.LocalPref, o.LocalPref)
}

func eqPtr(a, b *uint32) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// HostRoute is the /32 or /128 of a.
func HostRoute(a netip.Addr) netip.Prefix {
	return netip.PrefixFrom(a, a.BitLen())
}

// Session states, as RFC 4271 names them.
const (
	StateIdle        = "idle"
	StateConnect     = "connect"
	StateActive      = "active"
	StateOpenSent    = "opensent"
	StateOpenConfirm = "openconfirm"
	StateEstablished = "established"
)

// PeerStatus is one session as the speaker sees it.
type PeerStatus struct {
	Address netip.Addr
	ASN     uint32
	State   string // one of the State constants
	// Since is when the session was last established (State
	// established) or last went down; zero when it never was up.
	Since time.Time
	// PrefixesSent is how many prefixes the router has from us now.
	PrefixesSent int
	// UpdatesSent counts UPDATE messages sent on the current session.
	UpdatesSent uint64
	// LastError says why the session last went down ("" if it never did).
	LastError string
	// BFD is the BFD session state (up, down, init, admin_down) when BFD
	// is on; "" otherwise.
	BFD string
}

// Speaker announces routes to the configured neighbours. Its methods are
// safe for concurrent use.
type Speaker interface {
	// Announce adds r, or replaces the route announced for r.Prefix.
	Announce(r Route) error
	// Withdraw stops announcing p; withdrawing what is not announced is
	// not an error.
	Withdraw(p netip.Prefix) error
	// SetNeighbors makes ns the set of routers: sessions of neighbours not
	// in ns, or whose settings changed, are closed; new ones are opened.
	SetNeighbors(ns []Neighbor) error
	// Peers returns every session, in neighbour address order.
	Peers() []PeerStatus
	// Shutdown withdraws every route, waits until each established
	// session has sent that withdrawal (or ctx ends: then it returns an
	// error saying which did not), then closes the sessions and stops.
	Shutdown(ctx context.Context) error
}
