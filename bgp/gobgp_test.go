package bgp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"

	"lbd/internal/testutil"
)

// router is a GoBGP server on loopback standing in for a router: it
// accepts the speaker's session and records, in order, every route update
// and session change it sees.
type router struct {
	srv  *server.BgpServer
	port int
	mu   sync.Mutex
	log  []string
}

func newRouter(t *testing.T, peer netip.Addr) *router {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(peer.String(), "0"))
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no loopback for %v: %v", peer, err)
		}
		t.Skipf("no loopback for %v: %v", peer, err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	r := &router{srv: server.NewBgpServer(), port: port}
	go r.srv.Serve()
	ctx := context.Background()
	if err := r.srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: 65000, RouterId: "10.255.0.1", ListenPort: int32(port), ListenAddresses: []string{peer.String()},
	}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.srv.Stop)
	err = r.srv.WatchEvent(ctx, server.WatchEventMessageCallbacks{
		OnPathUpdate: func(ps []*apiutil.Path, _ time.Time) {
			for _, p := range ps {
				r.add(describePath(p))
			}
		},
		OnPeerUpdate: func(ev *apiutil.WatchEventMessage_PeerEvent, _ time.Time) {
			if ev.Type == apiutil.PEER_EVENT_STATE {
				r.add("session " + ev.Peer.State.SessionState.String())
			}
		},
	}, server.WatchUpdate(false, "", ""), server.WatchPeer())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: peer.String(), PeerAsn: 65001},
		Transport: &api.Transport{PassiveMode: true},
		AfiSafis:  []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: apiFamily(peer), Enabled: true}}},
	}}); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *router) add(s string) {
	r.mu.Lock()
	r.log = append(r.log, s)
	r.mu.Unlock()
}

func (r *router) events() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log)
}

// describePath writes a received route as "+ PREFIX nh=.. as=.. med=..
// lp=.. comm=.." or "- PREFIX" for a withdrawal.
func describePath(p *apiutil.Path) string {
	if p.Withdrawal {
		return "- " + p.Nlri.String()
	}
	var nh, as, med, lp, comm string
	for _, a := range p.Attrs {
		switch a := a.(type) {
		case *bgp.PathAttributeNextHop:
			nh = " nh=" + a.Value.String()
		case *bgp.PathAttributeMpReachNLRI:
			nh = " nh=" + a.Nexthop.String()
		case *bgp.PathAttributeAsPath:
			as = " as=" + strings.TrimSuffix(strings.TrimPrefix(a.String(), "{AsPath: "), "}")
		case *bgp.PathAttributeMultiExitDisc:
			med = fmt.Sprintf(" med=%d", a.Value)
		case *bgp.PathAttributeLocalPref:
			lp = fmt.Sprintf(" lp=%d", a.Value)
		case *bgp.PathAttributeCommunities:
			comm = " comm=" + strings.TrimSuffix(strings.TrimPrefix(a.String(), "{Communities: "), "}")
		}
	}
	return "+ " + p.Nlri.String() + nh + as + med + lp + comm
}

// The real speaker against a GoBGP router on loopback, in both families:
// the route arrives with our address as next hop and the attributes
// asked for, a new announcement replaces it, a withdrawal removes it, and
// Shutdown withdraws before the session closes.
func TestGoBGPAnnounceWithdrawShutdown(t *testing.T) {
	for _, tc := range []struct {
		peer  netip.Addr
		route string
	}{
		{netip.MustParseAddr("127.0.0.1"), "192.0.2.10/32"},
		{netip.MustParseAddr("::1"), "2001:db8::10/128"},
	} {
		t.Run(tc.peer.String(), func(t *testing.T) {
			r := newRouter(t, tc.peer)
			var states sync.Map
			sp, err := New(Config{ASN: 65001, RouterID: netip.MustParseAddr("10.255.0.2"),
				Neighbors: []Neighbor{{Address: tc.peer, ASN: 65000, Port: uint16(r.port), HoldTime: 9 * time.Second, ConnectRetry: time.Second}},
				OnPeer:    func(p PeerStatus) { states.Store(p.State, true) },
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sp.Shutdown(context.Background()) })
			established := func() bool {
				ps := sp.Peers()
				return len(ps) == 1 && ps[0].State == StateEstablished
			}
			testutil.Eventually(t, 20*time.Second, "the session established", established)
			if _, ok := states.Load(StateEstablished); !ok {
				t.Error("OnPeer not told of the established session")
			}
			pfx := netip.MustParsePrefix(tc.route)
			med, lp := uint32(10), uint32(200)
			if err := sp.Announce(Route{Prefix: pfx, Communities: []uint32{65001<<16 | 100}, MED: &med, LocalPref: &lp}); err != nil {
				t.Fatal(err)
			}
			want1 := fmt.Sprintf("+ %s nh=%s as=65001 med=10 comm=65001:100", pfx, tc.peer)
			waitEvent(t, r, want1)
			if ps := sp.Peers(); ps[0].PrefixesSent != 1 {
				t.Errorf("prefixes sent %d, want 1", ps[0].PrefixesSent)
			}
			med = 20
			if err := sp.Announce(Route{Prefix: pfx, MED: &med}); err != nil {
				t.Fatal(err)
			}
			waitEvent(t, r, fmt.Sprintf("+ %s nh=%s as=65001 med=20", pfx, tc.peer))
			if err := sp.Withdraw(pfx); err != nil {
				t.Fatal(err)
			}
			waitEvent(t, r, "- "+pfx.String())
			if err := sp.Withdraw(pfx); err != nil {
				t.Errorf("second withdrawal: %v", err)
			}

			// Shutdown: the withdrawal reaches the router before the
			// session ends.
			if err := sp.Announce(Route{Prefix: pfx}); err != nil {
				t.Fatal(err)
			}
			waitEvent(t, r, fmt.Sprintf("+ %s nh=%s as=65001", pfx, tc.peer))
			mark := len(r.events())
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := sp.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			waitEvent(t, r, "session BGP_FSM_IDLE")
			tail := r.events()[mark:]
			w, d := slices.Index(tail, "- "+pfx.String()), slices.Index(tail, "session BGP_FSM_IDLE")
			if w < 0 || w > d {
				t.Errorf("after Shutdown the router saw %v: want the withdrawal before the session went down", tail)
			}
			if err := sp.Announce(Route{Prefix: pfx}); err == nil {
				t.Error("Announce after Shutdown succeeded")
			}
		})
	}
}

func waitEvent(t *testing.T, r *router, want string) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, fmt.Sprintf("the router to see %q (saw %q)", want, r.events()),
		func() bool { return slices.Contains(r.events(), want) })
}

func TestNewRefusesBadIdentity(t *testing.T) {
	for _, c := range []Config{
		{ASN: 65001, RouterID: netip.MustParseAddr("::1")},
		{ASN: 65001},
		{ASN: 0, RouterID: netip.MustParseAddr("10.0.0.1")},
	} {
		if s, err := New(c); err == nil {
			s.Shutdown(context.Background())
			t.Errorf("New(%+v) accepted", c)
		}
	}
}
