package director

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"lbd/api"
	"lbd/balancer"
	"lbd/bgp"
	"lbd/config"
	"lbd/flowguard"
	"lbd/internal/testutil"
)

const bgpConfig = `
[global]
interface = "eth0"
[bgp]
local_asn = 65001
router_id = "10.1.0.2"
communities = ["65001:100"]
[[bgp.neighbor]]
address = "10.1.0.1"
asn = 65000
[[virtual_server]]
name = "web"
vip = "192.0.2.10"
port = 80
quorum = 2
  [virtual_server.health_check]
  type = "tcp"
  interval = "50ms"
  timeout = "40ms"
  rise = 1
  fall = 1
  [[virtual_server.real_server]]
  name = "rs1"
  address = "10.2.0.1"
  [[virtual_server.real_server]]
  name = "rs2"
  address = "10.2.0.2"
[[virtual_server]]
name = "dns"
vip = "192.0.2.20"
port = 53
protocol = "udp"
  [[virtual_server.real_server]]
  name = "rs3"
  address = "10.2.0.3"
`

type bgpRig struct {
	d       *Director
	health  *scripted
	mu      sync.Mutex
	speaker *bgp.Fake
	stop    func()
}

func (r *bgpRig) fake() *bgp.Fake {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.speaker
}

func newBGPRig(t *testing.T, toml string) *bgpRig {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lbd.toml")
	if err := os.WriteFile(path, []byte(toml), 0o640); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	r := &bgpRig{health: &scripted{down: map[string]bool{}}}
	kernel := balancer.NewFake()
	d, err := New(Options{
		Config:     cfg,
		Logger:     slog.New(slog.DiscardHandler),
		OpenKernel: func() (balancer.Kernel, error) { return kernel, nil },
		Sysctl:     balancer.ProcSys{Root: t.TempDir()},
		OpenGuard:  func() (flowguard.Guard, error) { return &flowguard.Fake{}, nil },
		NewChecker: r.health.checker,
		NewSpeaker: func(c bgp.Config) (bgp.Speaker, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.speaker = bgp.NewFake(c)
			return r.speaker, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	r.d = d
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	r.stop = func() { cancel(); <-done }
	t.Cleanup(r.stop)
	return r
}

func announced(f *bgp.Fake) []string {
	var out []string
	for _, r := range f.Routes() {
		out = append(out, r.Prefix.String())
	}
	return out
}

func (r *bgpRig) waitAnnounced(t *testing.T, want ...string) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, "announced "+strings.Join(want, " "), func() bool {
		return slices.Equal(announced(r.fake()), want)
	})
}

func vipReasons(st *api.BGP) map[string]string {
	m := map[string]string{}
	for _, v := range st.VIPs {
		m[v.VIP] = v.Reason
		if v.Announced {
			m[v.VIP] = "announced"
		}
	}
	return m
}

// Each VIP is announced while its services are at quorum, withdrawn (with
// the reason in the status) while one is below, in maintenance and when
// the director stops.
func TestBGPHealthGatedAnnouncements(t *testing.T) {
	r := newBGPRig(t, bgpConfig)
	r.waitAnnounced(t, "192.0.2.10/32", "192.0.2.20/32")
	routes := r.fake().Routes()
	if !slices.Equal(routes[0].Communities, []uint32{65001<<16 | 100}) {
		t.Errorf("communities %v", routes[0].Communities)
	}

	r.health.set("10.2.0.1", true) // web: 1 of 2 up, quorum 2
	r.waitAnnounced(t, "192.0.2.20/32")
	st := r.d.Status().BGP
	if got := vipReasons(st); got["192.0.2.10"] != "below quorum: web" || got["192.0.2.20"] != "announced" {
		t.Errorf("status VIPs %v", got)
	}
	if len(st.Sessions) != 1 || st.Sessions[0].State != "established" || st.Sessions[0].Neighbor != "10.1.0.1" {
		t.Errorf("sessions %+v", st.Sessions)
	}
	r.health.set("10.2.0.1", false)
	r.waitAnnounced(t, "192.0.2.10/32", "192.0.2.20/32")

	if err := r.d.SetMaintenance(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	r.waitAnnounced(t)
	if got := vipReasons(r.d.Status().BGP); got["192.0.2.10"] != "maintenance" || got["192.0.2.20"] != "maintenance" || !r.d.Status().BGP.Maintenance {
		t.Errorf("in maintenance: %v", got)
	}
	if err := r.d.SetMaintenance(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	r.waitAnnounced(t, "192.0.2.10/32", "192.0.2.20/32")

	// Stopping: everything withdrawn, then the speaker shut down.
	f := r.fake()
	r.stop()
	if !f.Closed() || len(f.Routes()) != 0 {
		t.Fatalf("after stop: closed %v, routes %v", f.Closed(), f.Routes())
	}
	log := f.Log
	if n := len(log); n < 3 || log[n-1] != "shutdown" || !strings.HasPrefix(log[n-2], "withdraw ") || !strings.HasPrefix(log[n-3], "withdraw ") {
		t.Errorf("speaker calls %v: want both VIPs withdrawn, then shutdown", log)
	}
}

// A director that has just started announces a VIP only once the checks
// have said its real servers are up.
func TestBGPWaitsForFirstChecks(t *testing.T) {
	toml := strings.Replace(bgpConfig, `interval = "50ms"`, `interval = "1s"`, 1)
	r := newBGPRig(t, strings.Replace(toml, "rise = 1", "rise = 3", 1))
	r.waitAnnounced(t, "192.0.2.20/32")
	if got := vipReasons(r.d.Status().BGP)["192.0.2.10"]; got != "below quorum: web" {
		t.Errorf("web VIP before its checks passed: %q", got)
	}
	r.waitAnnounced(t, "192.0.2.10/32", "192.0.2.20/32")
}

func TestBGPMaintenanceWithoutBGP(t *testing.T) {
	r := newRig(t, baseConfig)
	if err := r.d.SetMaintenance(context.Background(), true); err != ErrNoBGP {
		t.Errorf("SetMaintenance without [bgp]: %v", err)
	}
	if r.d.Status().BGP != nil {
		t.Error("status has a BGP block without [bgp]")
	}
}

// A reload changes the neighbours in place (same speaker), a new VIP is
// announced, and removing [bgp] withdraws everything and stops the
// speaker.
func TestBGPReload(t *testing.T) {
	r := newBGPRig(t, bgpConfig)
	r.waitAnnounced(t, "192.0.2.10/32", "192.0.2.20/32")
	first := r.fake()
	path := r.d.path
	next := strings.Replace(bgpConfig, "[[virtual_server]]\nname = \"web\"", "[[bgp.neighbor]]\naddress = \"10.1.1.1\"\nasn = 65000\n[[virtual_server]]\nname = \"web\"", 1)
	next = strings.Replace(next, `vip = "192.0.2.20"`, `vip = "192.0.2.30"`, 1)
	if err := os.WriteFile(path, []byte(next), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := r.d.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.waitAnnounced(t, "192.0.2.10/32", "192.0.2.30/32")
	if r.fake() != first {
		t.Error("a neighbour change restarted the speaker")
	}
	if n := len(r.d.Status().BGP.Sessions); n != 2 {
		t.Errorf("%d sessions after adding a neighbour, want 2", n)
	}
	noBGP := next[:strings.Index(next, "[bgp]")] + next[strings.Index(next, "[[virtual_server]]"):]
	if err := os.WriteFile(path, []byte(noBGP), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := r.d.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !first.Closed() || len(first.Routes()) != 0 || r.d.Status().BGP != nil {
		t.Errorf("after removing [bgp]: speaker closed %v, routes %v", first.Closed(), first.Routes())
	}
}
