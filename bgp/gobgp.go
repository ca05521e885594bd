package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// GoBGP is the real Speaker: GoBGP's server as a library.
type GoBGP struct {
	srv    *server.BgpServer
	log    *slog.Logger
	onPeer func(PeerStatus)
	stop   context.CancelFunc // the peer-state watch

	mu        sync.Mutex // serializes changes; guards the fields below
	neighbors map[netip.Addr]Neighbor
	routes    map[netip.Prefix]Route
	closed    bool
	// wdBase is the UPDATEs each established session had sent before the
	// first withdrawal that Shutdown has not confirmed yet (nil: none).
	wdBase map[netip.Addr]uint64

	sinceMu sync.Mutex
	since   map[netip.Addr]upSince // when each session last came up or went down
}

type upSince struct {
	up bool
	at time.Time
}

// confirmPoll is how often Shutdown looks whether the withdrawal went out.
const confirmPoll = 10 * time.Millisecond

// New starts a speaker and opens its sessions. It does not listen for
// connections: every router must accept the session this speaker opens.
func New(c Config) (*GoBGP, error) {
	if !c.RouterID.Is4() || c.RouterID.IsUnspecified() {
		return nil, fmt.Errorf("bgp: router id %v is not a non-zero IPv4 address", c.RouterID)
	}
	if c.ASN == 0 {
		return nil, errors.New("bgp: no local AS number")
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// GoBGP reports every session change at INFO; lbd logs those itself
	// (OnPeer), so only GoBGP's warnings and errors are passed on.
	level := new(slog.LevelVar)
	level.Set(slog.LevelWarn)
	srv := server.NewBgpServer(server.LoggerOption(log.With("part", "gobgp"), level))
	go srv.Serve()
	global := &api.Global{Asn: c.ASN, RouterId: c.RouterID.String(), ListenPort: -1}
	ctx := context.Background()
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: global}); err != nil {
		srv.Stop()
		return nil, fmt.Errorf("bgp: start: %w", err)
	}
	s := &GoBGP{srv: srv, log: log, onPeer: c.OnPeer,
		neighbors: map[netip.Addr]Neighbor{}, routes: map[netip.Prefix]Route{}, since: map[netip.Addr]upSince{}}
	watchCtx, cancel := context.WithCancel(ctx)
	s.stop = cancel
	if err := srv.WatchEvent(watchCtx, server.WatchEventMessageCallbacks{OnPeerUpdate: s.peerEvent}, server.WatchPeer()); err != nil {
		cancel()
		srv.Stop()
		return nil, fmt.Errorf("bgp: watch sessions: %w", err)
	}
	if err := s.SetNeighbors(c.Neighbors); err != nil {
		s.Shutdown(ctx)
		return nil, err
	}
	return s, nil
}

func (s *GoBGP) peerEvent(ev *apiutil.WatchEventMessage_PeerEvent, at time.Time) {
	if ev.Type != apiutil.PEER_EVENT_STATE {
		return
	}
	st := ev.Peer.State
	up := st.SessionState == bgp.BGP_FSM_ESTABLISHED
	s.sinceMu.Lock()
	if prev, ok := s.since[st.NeighborAddress]; up || ok && prev.up {
		s.since[st.NeighborAddress] = upSince{up, at}
	}
	s.sinceMu.Unlock()
	if s.onPeer == nil {
		return
	}
	p := PeerStatus{Address: st.NeighborAddress, ASN: st.PeerASN, State: fsmState(st.SessionState), Since: at}
	if st.SessionState != bgp.BGP_FSM_ESTABLISHED {
		p.LastError = st.DisconnectMessage
	}
	s.onPeer(p)
}

func fsmState(s bgp.FSMState) string {
	switch s {
	case bgp.BGP_FSM_CONNECT:
		return StateConnect
	case bgp.BGP_FSM_ACTIVE:
		return StateActive
	case bgp.BGP_FSM_OPENSENT:
		return StateOpenSent
	case bgp.BGP_FSM_OPENCONFIRM:
		return StateOpenConfirm
	case bgp.BGP_FSM_ESTABLISHED:
		return StateEstablished
	}
	return StateIdle
}

func apiState(s api.PeerState_SessionState) string {
	switch s {
	case api.PeerState_SESSION_STATE_CONNECT:
		return StateConnect
	case api.PeerState_SESSION_STATE_ACTIVE:
		return StateActive
	case api.PeerState_SESSION_STATE_OPENSENT:
		return StateOpenSent
	case api.PeerState_SESSION_STATE_OPENCONFIRM:
		return StateOpenConfirm
	case api.PeerState_SESSION_STATE_ESTABLISHED:
		return StateEstablished
	}
	return StateIdle
}

func family(a netip.Addr) bgp.Family {
	if a.Is4() {
		return bgp.RF_IPv4_UC
	}
	return bgp.RF_IPv6_UC
}

func apiFamily(a netip.Addr) *api.Family {
	if a.Is4() {
		return &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	}
	return &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
}

func peerConfig(n Neighbor) *api.Peer {
	p := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: n.Address.String(), PeerAsn: n.ASN, AuthPassword: n.Password},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime:          uint64(n.HoldTime / time.Second),
			KeepaliveInterval: max(1, uint64(n.HoldTime/time.Second)/3),
			ConnectRetry:      max(1, uint64(n.ConnectRetry/time.Second)),
		}},
		Transport: &api.Transport{RemotePort: uint32(n.Port)},
		// Each family to the neighbours of that family: the next hop of
		// a /128 must be an IPv6 address of ours.
		AfiSafis: []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: apiFamily(n.Address), Enabled: true}}},
	}
	if n.BFD {
		p.Bfd = &api.BfdPeerConfig{Enabled: true}
	}
	return p
}

// SetNeighbors implements Speaker.
func (s *GoBGP) SetNeighbors(ns []Neighbor) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	want := map[netip.Addr]Neighbor{}
	for _, n := range ns {
		want[n.Address] = n
	}
	ctx := context.Background()
	var errs []error
	for _, a := range sortedAddrs(s.neighbors) {
		if n, ok := want[a]; ok && n == s.neighbors[a] {
			continue
		}
		if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: a.String()}); err != nil {
			errs = append(errs, fmt.Errorf("bgp: neighbour %s: %w", a, err))
			continue
		}
		delete(s.neighbors, a)
	}
	for _, a := range sortedAddrs(want) {
		if _, ok := s.neighbors[a]; ok {
			continue
		}
		if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: peerConfig(want[a])}); err != nil {
			errs = append(errs, fmt.Errorf("bgp: neighbour %s: %w", a, err))
			continue
		}
		s.neighbors[a] = want[a]
	}
	return errors.Join(errs...)
}

func path(r Route, withdraw bool) (*apiutil.Path, error) {
	nlri, err := bgp.NewIPAddrPrefix(r.Prefix)
	if err != nil {
		return nil, err
	}
	// The unspecified next hop is GoBGP's "self": each session's own
	// local address.
	nh := netip.IPv4Unspecified()
	if r.Prefix.Addr().Is6() {
		nh = netip.IPv6Unspecified()
	}
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	if r.Prefix.Addr().Is4() {
		a, err := bgp.NewPathAttributeNextHop(nh)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, a)
	} else {
		a, err := bgp.NewPathAttributeMpReachNLRI(bgp.RF_IPv6_UC, []bgp.PathNLRI{{NLRI: nlri}}, nh)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, a)
	}
	if len(r.Communities) > 0 {
		attrs = append(attrs, bgp.NewPathAttributeCommunities(slices.Clone(r.Communities)))
	}
	if r.MED != nil {
		attrs = append(attrs, bgp.NewPathAttributeMultiExitDisc(*r.MED))
	}
	if r.LocalPref != nil {
		attrs = append(attrs, bgp.NewPathAttributeLocalPref(*r.LocalPref))
	}
	return &apiutil.Path{Family: family(r.Prefix.Addr()), Nlri: nlri, Attrs: attrs, Withdrawal: withdraw}, nil
}

// Announce implements Speaker.
func (s *GoBGP) Announce(r Route) error {
	if !r.Prefix.IsValid() {
		return fmt.Errorf("bgp: announce: invalid prefix")
	}
	r.Prefix = r.Prefix.Masked()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wdBase = nil // what Shutdown confirms is taken afresh
	if s.closed {
		return errClosed
	}
	p, err := path(r, false)
	if err != nil {
		return fmt.Errorf("bgp: announce %s: %w", r.Prefix, err)
	}
	if _, err := s.srv.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{p}}); err != nil {
		return fmt.Errorf("bgp: announce %s: %w", r.Prefix, err)
	}
	s.routes[r.Prefix] = r
	return nil
}

// Withdraw implements Speaker.
func (s *GoBGP) Withdraw(pfx netip.Prefix) error {
	pfx = pfx.Masked()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	r, ok := s.routes[pfx]
	if !ok {
		return nil
	}
	if s.wdBase == nil {
		s.wdBase = s.updatesSent()
	}
	p, err := path(r, true)
	if err != nil {
		return fmt.Errorf("bgp: withdraw %s: %w", pfx, err)
	}
	if err := s.srv.DeletePath(apiutil.DeletePathRequest{Paths: []*apiutil.Path{p}}); err != nil {
		return fmt.Errorf("bgp: withdraw %s: %w", pfx, err)
	}
	delete(s.routes, pfx)
	return nil
}

// Peers implements Speaker.
func (s *GoBGP) Peers() []PeerStatus {
	var out []PeerStatus
	err := s.srv.ListPeer(context.Background(), &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		out = append(out, peerStatus(p))
	})
	s.sinceMu.Lock()
	for i := range out {
		out[i].Since = s.since[out[i].Address].at
	}
	s.sinceMu.Unlock()
	if err != nil {
		s.log.Warn("bgp: cannot list sessions", "err", err)
	}
	slices.SortFunc(out, func(a, b PeerStatus) int { return a.Address.Compare(b.Address) })
	return out
}

func peerStatus(p *api.Peer) PeerStatus {
	var ps PeerStatus
	if p.Conf != nil {
		ps.Address, _ = netip.ParseAddr(p.Conf.NeighborAddress)
		ps.ASN = p.Conf.PeerAsn
	}
	st := p.State
	if st == nil {
		ps.State = StateIdle
		return ps
	}
	ps.State = apiState(st.SessionState)
	ps.LastError = st.DisconnectMessage
	if st.Messages != nil && st.Messages.Sent != nil {
		ps.UpdatesSent = st.Messages.Sent.Update
	}
	if b := st.BfdState; b != nil && p.Bfd != nil && p.Bfd.Enabled {
		ps.BFD = strings.ToLower(strings.TrimPrefix(b.SessionState.String(), "BFD_SESSION_STATE_"))
	}
	for _, af := range p.AfiSafis {
		if af.State != nil {
			ps.PrefixesSent += int(af.State.Advertised)
		}
	}
	return ps
}

// Shutdown implements Speaker.
func (s *GoBGP) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	routes, base := len(s.routes), s.wdBase
	s.routes = map[netip.Prefix]Route{}
	s.mu.Unlock()

	// Routes withdrawn one by one just before (a stopping director does
	// that) count as much as the ones withdrawn here: Shutdown confirms
	// that the routers were sent every withdrawal before it closes.
	var err error
	if routes > 0 || base != nil {
		err = s.withdrawAll(ctx, base, routes > 0)
	}
	s.stop()
	s.srv.Stop()
	return err
}

// withdrawAll withdraws every route and waits until every established
// session that carried some has sent an UPDATE since.
func (s *GoBGP) withdrawAll(ctx context.Context, before map[netip.Addr]uint64, remaining bool) error {
	if before == nil {
		// The baseline is taken once the sessions are quiet: right after a
		// session came (back) up, GoBGP may still be sending the routes and
		// the End-of-RIB marker, UPDATEs that must not pass for the
		// withdrawal.
		before = s.quietBaseline(ctx)
	}
	if remaining {
		if err := s.srv.DeletePath(apiutil.DeletePathRequest{DeleteAll: true}); err != nil {
			return fmt.Errorf("bgp: withdraw all: %w", err)
		}
	}
	tick := time.NewTicker(confirmPoll)
	defer tick.Stop()
	for {
		for _, p := range s.Peers() {
			n, waiting := before[p.Address]
			// A session that went down has nothing more to withdraw; one
			// that is up has withdrawn when it sent an UPDATE since and
			// advertises nothing any more.
			if waiting && (p.State != StateEstablished || p.UpdatesSent > n && p.PrefixesSent == 0) {
				delete(before, p.Address)
			}
		}
		if len(before) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			pending := sortedAddrs(before)
			return fmt.Errorf("bgp: withdrawal not confirmed sent to %v: %w", pending, ctx.Err())
		case <-tick.C:
		}
	}
}

// quietBaseline returns the UPDATEs sent so far on every established
// session that may carry our routes, once two reads quietBaselineGap apart
// agree (at most quietBaselineTries reads).
func (s *GoBGP) quietBaseline(ctx context.Context) map[netip.Addr]uint64 {
	read := s.updatesSent
	cur := read()
	for range quietBaselineTries {
		t := time.NewTimer(quietBaselineGap)
		select {
		case <-ctx.Done():
			t.Stop()
			return cur
		case <-t.C:
		}
		next := read()
		if maps.Equal(cur, next) {
			return cur
		}
		cur = next
	}
	return cur
}

// updatesSent is the UPDATEs sent so far on every established session
// that may carry our routes.
func (s *GoBGP) updatesSent() map[netip.Addr]uint64 {
	m := map[netip.Addr]uint64{}
	for _, p := range s.Peers() {
		// GoBGP's advertised count can lag behind the UPDATE that
		// carried a route: any session that sent an UPDATE counts.
		if p.State == StateEstablished && (p.PrefixesSent > 0 || p.UpdatesSent > 0) {
			m[p.Address] = p.UpdatesSent
		}
	}
	return m
}

const (
	quietBaselineGap   = 50 * time.Millisecond
	quietBaselineTries = 10
)

func sortedAddrs[V any](m map[netip.Addr]V) []netip.Addr {
	return slices.SortedFunc(maps.Keys(m), netip.Addr.Compare)
}
