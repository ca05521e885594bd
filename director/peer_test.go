package director

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"lbd/api"
	"lbd/internal/testutil"
)

const peerRigTOML = `
[global]
node_name = "lvs1"

[[virtual_server]]
name = "web"
vip = "192.0.2.10"
port = 80

[[virtual_server.real_server]]
name = "rs1"
address = "10.0.0.11"
`

// fakePeer answers the two GET routes the poller reads, as the mode says.
type fakePeer struct {
	mu    sync.Mutex
	mode  string // ok | newer | refuse
	auth  string
	reads int
}

func (f *fakePeer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	mode := f.mode
	f.auth = r.Header.Get("Authorization")
	f.reads++
	f.mu.Unlock()
	if mode == "refuse" {
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(api.Error{Error: "invalid API token"})
		return
	}
	switch r.URL.Path {
	case "/api/v1/status":
		_ = json.NewEncoder(w).Encode(api.Status{Node: "lvs2", ConfigVersion: "v2", LastReconcile: time.Now(),
			Services: []api.Service{{Name: "web", RealServers: []api.RealServer{{Name: "rs1", Health: "down"}}}}})
	case "/api/v1/config":
		toml := strings.Replace(peerRigTOML, `"lvs1"`, `"lvs2"`, 1)
		if mode == "newer" {
			toml = strings.Replace(toml, "[global]\n", "[global]\nsome_future_key = 1\n", 1)
		}
		_ = json.NewEncoder(w).Encode(api.ConfigDoc{Version: "v2", TOML: toml})
	default:
		http.NotFound(w, r)
	}
}

func (f *fakePeer) set(mode string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mode = mode
}

// TestPairFromPeerCache: the director reads the peer in the background
// and Pair reports what it read; a peer that refuses is shown unreachable
// with no old data, and a configuration this build cannot read stops the
// comparison only.
func TestPairFromPeerCache(t *testing.T) {
	fp := &fakePeer{mode: "ok"}
	srv := httptest.NewServer(fp)
	t.Cleanup(srv.Close)
	r := newRig(t, peerRigTOML+"\n[peer]\nname = \"lvs2\"\nurl = \""+srv.URL+"\"\ntoken = \"pair.secret\"\n")
	wake := func() {
		select {
		case r.d.peer.wake <- struct{}{}:
		default:
		}
	}
	var p api.Pair
	testutil.Eventually(t, 10*time.Second, "the peer read", func() bool {
		p, _ = r.d.Pair()
		return p.Peer.Reachable && p.DriftKnown
	})
	fp.mu.Lock()
	auth := fp.auth
	fp.mu.Unlock()
	if auth != "Bearer pair.secret" {
		t.Fatalf("the poller sent Authorization %q", auth)
	}
	if len(p.Drift) != 0 || p.Peer.Name != "lvs2" || p.Peer.ConfigVersion != "v2" || len(p.HealthDisagreements) != 0 {
		t.Fatalf("pair %+v", p)
	}

	fp.set("newer")
	wake()
	testutil.Eventually(t, 10*time.Second, "the comparison stopped, the peer still shown", func() bool {
		p, _ = r.d.Pair()
		return p.Peer.Reachable && !p.DriftKnown && strings.Contains(p.DriftError, "some_future_key")
	})

	fp.set("refuse")
	wake()
	testutil.Eventually(t, 10*time.Second, "the peer shown unreachable", func() bool {
		p, _ = r.d.Pair()
		return !p.Peer.Reachable
	})
	if !strings.Contains(p.Peer.Error, "invalid API token") || p.Peer.ErrorSince.IsZero() || p.Peer.HasData || p.Peer.ConfigVersion != "" || p.DriftKnown {
		t.Fatalf("a refusing peer: %+v", p.Peer)
	}
	// Pair never waits for the peer: a slow answer does not slow it.
	start := time.Now()
	for range 100 {
		r.d.Pair()
	}
	fp.mu.Lock()
	reads := fp.reads
	fp.mu.Unlock()
	if reads > 50 {
		t.Fatalf("Pair reads the peer itself (%d reads)", reads)
	}
	t.Logf("100 Pair calls: %v", time.Since(start))
}
