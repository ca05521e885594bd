package director

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"lbd/balancer"
	"lbd/config"
	"lbd/flowguard"
	"lbd/healthcheck"
	"lbd/internal/testutil"
	"lbd/vrrp"
)

const baseConfig = `
[global]
node_name = "lb1"
interface = "eth0"
forwarding = "dr"

[[virtual_server]]
name = "web"
vip = "192.0.2.10"
port = 80
scheduler = "wrr"
sorry_server = "192.0.2.99"
quorum = 3
  [virtual_server.health_check]
  type = "tcp"
  interval = "1s"
  timeout = "500ms"
  rise = 1
  fall = 1
  [[virtual_server.real_server]]
  name = "rs1"
  address = "192.0.2.11"
  weight = 3
  [[virtual_server.real_server]]
  name = "rs2"
  address = "192.0.2.12"
  weight = 2
`

// scripted is a health checker whose answer a test flips.
type scripted struct {
	mu   sync.Mutex
	down map[string]bool // by address
}

func (s *scripted) set(addr string, down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down[addr] = down
}

func (s *scripted) checker(sp healthcheck.Spec) (healthcheck.Checker, error) {
	return checkFunc(func(context.Context) healthcheck.Result {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.down[sp.Address] {
			return healthcheck.Result{Reason: "connect: connection refused"}
		}
		return healthcheck.Result{Up: true, Reason: "connected"}
	}), nil
}

type checkFunc func(context.Context) healthcheck.Result

func (f checkFunc) Check(ctx context.Context) healthcheck.Result { return f(ctx) }

type rig struct {
	d      *Director
	kernel *balancer.Fake
	health *scripted
	path   string
}

func newRig(t *testing.T, toml string) *rig {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "lbd.toml")
	if err := os.WriteFile(path, []byte(toml), 0o640); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	r := &rig{kernel: balancer.NewFake(), health: &scripted{down: map[string]bool{}}, path: path}
	d, err := New(Options{
		Config:     cfg,
		Logger:     slog.New(slog.DiscardHandler),
		OpenKernel: func() (balancer.Kernel, error) { return r.kernel, nil },
		Sysctl:     balancer.ProcSys{Root: t.TempDir()},
		OpenGuard:  func() (flowguard.Guard, error) { return &flowguard.Fake{}, nil },
		NewChecker: r.health.checker,
		NewVRRP:    func(s vrrpSettings) (vrrpInstance, error) { return &fakeVRRP{cfg: s}, nil },
	})
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	r.d = d
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// weights returns the fake kernel's weights by destination address.
func (r *rig) weights() map[string]int {
	out := map[string]int{}
	for _, s := range r.kernel.Table().Services {
		if isCheckService(s.Key) {
			continue
		}
		for _, d := range s.Destinations {
			out[d.Addr.String()] = d.Weight
		}
	}
	return out
}

func TestStartProgramsTable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, baseConfig)
		w := r.weights()
		if w["192.0.2.11"] != 3 || w["192.0.2.12"] != 2 || len(w) != 2 {
			t.Fatalf("weights = %v", w)
		}
		st := r.d.Status()
		if len(st.Services) != 1 || !st.Services[0].Healthy || st.Services[0].UpWeight != 5 {
			t.Fatalf("status = %+v", st.Services)
		}
	})
}

func TestHealthQuiesceQuorumAndSorry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, baseConfig)
		r.health.set("192.0.2.11", true)
		testutil.Eventually(t, 5*time.Second, "rs1 quiesced", func() bool { return r.weights()["192.0.2.11"] == 0 })
		st := r.d.Status().Services[0]
		if st.Healthy || st.UpWeight != 2 {
			t.Fatalf("service with up weight 2 < quorum 3: healthy=%v up=%d", st.Healthy, st.UpWeight)
		}
		if st.RealServers[0].Health != "down" || !strings.Contains(st.RealServers[0].HealthReason, "refused") {
			t.Fatalf("rs1 health = %q %q", st.RealServers[0].Health, st.RealServers[0].HealthReason)
		}
		r.health.set("192.0.2.12", true)
		testutil.Eventually(t, 5*time.Second, "sorry server in", func() bool { _, ok := r.weights()["192.0.2.99"]; return ok })
		r.health.set("192.0.2.11", false)
		testutil.Eventually(t, 5*time.Second, "rs1 back and sorry out", func() bool {
			w := r.weights()
			_, sorry := w["192.0.2.99"]
			return w["192.0.2.11"] == 3 && !sorry
		})
		ev := r.d.Events(0)
		var health int
		for _, e := range ev {
			if e.Kind == "health" {
				health++
			}
		}
		if health < 3 {
			t.Fatalf("want health events for each transition, got %+v", ev)
		}
	})
}

func TestOnFailureRemove(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, strings.Replace(baseConfig, `quorum = 3`, `quorum = 3
on_failure = "remove"`, 1))
		r.health.set("192.0.2.12", true)
		testutil.Eventually(t, 5*time.Second, "rs2 removed", func() bool { _, ok := r.weights()["192.0.2.12"]; return !ok })
	})
}

func TestApplyDrainWritesFileAndOneNetlinkWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, baseConfig)
		before, _ := os.ReadFile(r.path)
		cfg, version := r.d.Config()
		cfg.FindVirtualServer("web").FindRealServer("rs1").Drained = true
		r.kernel.ResetCounts()
		nv, err := r.d.Apply(context.Background(), cfg, version, "test")
		if err != nil {
			t.Fatal(err)
		}
		if nv == version {
			t.Fatal("version did not change")
		}
		if got := r.kernel.Writes(); got != 1 {
			t.Fatalf("drain took %d netlink writes, want 1", got)
		}
		if r.weights()["192.0.2.11"] != 0 {
			t.Fatal("rs1 not at weight 0")
		}
		bak, err := os.ReadFile(r.path + ".bak")
		if err != nil || string(bak) != string(before) {
			t.Fatalf(".bak not the previous file: %v", err)
		}
		reread, err := config.Load(r.path)
		if err != nil || !reread.FindVirtualServer("web").FindRealServer("rs1").Drained {
			t.Fatalf("drain not persisted: %v", err)
		}
		// A second save on the old version is refused.
		cfg.FindVirtualServer("web").FindRealServer("rs2").Drained = true
		if _, err := r.d.Apply(context.Background(), cfg, version, "other"); !errors.Is(err, config.ErrStale) {
			t.Fatalf("stale apply: err = %v", err)
		}
	})
}

func TestApplyInvalidChangesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, baseConfig)
		before, _ := os.ReadFile(r.path)
		cfg, version := r.d.Config()
		w := 70000
		cfg.FindVirtualServer("web").FindRealServer("rs1").Weight = &w
		r.kernel.ResetCounts()
		_, err := r.d.Apply(context.Background(), cfg, version, "test")
		var probs config.Problems
		if !errors.As(err, &probs) || !strings.Contains(err.Error(), "weight") {
			t.Fatalf("err = %v", err)
		}
		after, _ := os.ReadFile(r.path)
		if string(after) != string(before) || r.kernel.Writes() != 0 {
			t.Fatal("invalid edit changed the file or the kernel")
		}
	})
}

func TestReloadBrokenFileKeepsTable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, baseConfig)
		os.WriteFile(r.path, []byte(baseConfig+"\nbogus = 1\n"), 0o640)
		r.kernel.ResetCounts()
		err := r.d.Reload(context.Background())
		if err == nil || !strings.Contains(err.Error(), "bogus") {
			t.Fatalf("reload err = %v", err)
		}
		if r.kernel.Writes() != 0 || r.weights()["192.0.2.11"] != 3 {
			t.Fatal("refused reload touched the table")
		}
		// A valid change applies just the difference.
		os.WriteFile(r.path, []byte(strings.Replace(baseConfig, "weight = 2", "weight = 7", 1)), 0o640)
		if err := r.d.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
		if r.kernel.Writes() != 1 || r.weights()["192.0.2.12"] != 7 {
			t.Fatalf("writes=%d weights=%v", r.kernel.Writes(), r.weights())
		}
	})
}

func TestVRRPOnlyNeedsNoIPVS(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "lbd.toml")
	os.WriteFile(path, []byte(`
[global]
interface = "eth0"
[vrrp]
vrid = 51
priority = 150
vips = ["192.0.2.100"]
`), 0o640)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var got vrrpSettings
	d, err := New(Options{
		Config:     cfg,
		OpenKernel: func() (balancer.Kernel, error) { return nil, balancer.ErrUnavailable },
		NewVRRP:    func(s vrrpSettings) (vrrpInstance, error) { got = s; return &fakeVRRP{cfg: s}, nil },
	})
	if err != nil {
		t.Fatalf("VRRP-only config needs no IPVS: %v", err)
	}
	if got.VRID != 51 || len(got.VIPs) != 1 || got.VIPs[0] != netip.MustParseAddr("192.0.2.100") || !got.Preempt {
		t.Fatalf("vrrp settings = %+v", got)
	}
	if st := d.Status(); st.VRRP == nil || st.VRRP.VRID != 51 {
		t.Fatalf("status vrrp = %+v", st.VRRP)
	}
	// Adding a virtual server on a kernel without IPVS is refused clearly.
	os.WriteFile(path, []byte(`
[global]
interface = "eth0"
[[virtual_server]]
name = "web"
vip = "192.0.2.100"
port = 80
  [[virtual_server.real_server]]
  name = "a"
  address = "192.0.2.1"
`), 0o640)
	if err := d.Reload(context.Background()); !errors.Is(err, balancer.ErrUnavailable) {
		t.Fatalf("reload without IPVS: %v", err)
	}
}

func TestNoIPVSIsAClearError(t *testing.T) {
	cfg, err := config.Parse("x.toml", []byte(baseConfig))
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(Options{Config: cfg, OpenKernel: func() (balancer.Kernel, error) {
		return nil, balancer.ErrUnavailable
	}})
	if err == nil || !strings.Contains(err.Error(), "IPVS is not available") {
		t.Fatalf("err = %v", err)
	}
}

type fakeVRRP struct {
	mu      sync.Mutex
	cfg     vrrpSettings
	penalty map[string]int
	holds   map[string]string
	faults  map[string]string
	resign  time.Duration
	state   vrrp.State
	master  netip.Addr
	since   time.Time
}

func (f *fakeVRRP) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (f *fakeVRRP) Status() vrrp.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := vrrp.Status{VRID: f.cfg.VRID, State: vrrp.Backup, Priority: f.cfg.Priority, VIPs: f.cfg.VIPs}
	if f.state != 0 {
		st.State, st.MasterAddr, st.LastTransition = f.state, f.master, f.since
	}
	return st
}

// set makes Status report state, the master's address and the time of the
// last transition.
func (f *fakeVRRP) set(state vrrp.State, master netip.Addr, since time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state, f.master, f.since = state, master, since
}

func (f *fakeVRRP) hold(src string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.holds[src]
}
func (f *fakeVRRP) SetPenalty(src string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.penalty == nil {
		f.penalty = map[string]int{}
	}
	f.penalty[src] = n
}
func (f *fakeVRRP) Resign(h time.Duration) error { f.resign = h; return nil }
func (f *fakeVRRP) SetFault(src, why string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.faults == nil {
		f.faults = map[string]string{}
	}
	f.faults[src] = why
}
func (f *fakeVRRP) fault(src string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.faults[src]
}
func (f *fakeVRRP) HoldPreemption(src, why string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.holds == nil {
		f.holds = map[string]string{}
	}
	f.holds[src] = why
}

// A service dropped from the config while lbd was stopped is removed at the
// next start; one created by someone else stays.
func TestRestartRemovesServiceDroppedWhileStopped(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "lbd.toml")
	state := filepath.Join(dir, "run", "managed.json")
	two := baseConfig + `
[[virtual_server]]
name = "dns"
vip = "192.0.2.53"
port = 53
protocol = "udp"
  [[virtual_server.real_server]]
  name = "ns1"
  address = "192.0.2.54"
`
	kernel := balancer.NewFake()
	start := func(body string) *Director {
		t.Helper()
		os.WriteFile(path, []byte(body), 0o640)
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		d, err := New(Options{
			Config: cfg, StateFile: state,
			OpenKernel: func() (balancer.Kernel, error) { return kernel, nil },
			Sysctl:     balancer.ProcSys{Root: t.TempDir()},
			OpenGuard:  func() (flowguard.Guard, error) { return &flowguard.Fake{}, nil },
			NewChecker: (&scripted{down: map[string]bool{}}).checker,
		})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	start(two)
	foreign := balancer.Service{Key: balancer.ServiceKey(balancer.TCP, netip.MustParseAddrPort("198.51.100.1:22")), Scheduler: "rr"}
	if err := kernel.CreateService(foreign); err != nil {
		t.Fatal(err)
	}
	if n := len(userServices(kernel.Table().Services)); n != 3 {
		t.Fatalf("%d services, want 3", n)
	}
	start(baseConfig) // restarted without "dns"
	keys := map[string]bool{}
	for _, s := range kernel.Table().Services {
		keys[s.Key.String()] = true
	}
	if keys["udp/192.0.2.53:53"] || !keys["tcp/192.0.2.10:80"] || !keys["tcp/198.51.100.1:22"] {
		t.Fatalf("after restart: %v", keys)
	}
}

type fakeHolder struct {
	mu   sync.Mutex
	sets [][]netip.Addr
}

func (f *fakeHolder) Set(v []netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sets = append(f.sets, v)
	return nil
}
func (f *fakeHolder) Close() {}

// Without [vrrp] the director holds its VIPs itself; a reload that changes
// them updates the set; adding [vrrp] hands them to the election.
func TestLoneDirectorHoldsVIPs(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "lbd.toml")
	os.WriteFile(path, []byte(baseConfig), 0o640)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	h := &fakeHolder{}
	var iface string
	var vrrpStarted bool
	d, err := New(Options{
		Config: cfg, HoldVIPs: true,
		OpenKernel: func() (balancer.Kernel, error) { return balancer.NewFake(), nil },
		Sysctl:     balancer.ProcSys{Root: t.TempDir()},
		OpenGuard:  func() (flowguard.Guard, error) { return &flowguard.Fake{}, nil },
		NewChecker: (&scripted{down: map[string]bool{}}).checker,
		newStatic:  func(i string, _ *slog.Logger) (vipHolder, error) { iface = i; return h, nil },
		NewVRRP:    func(s vrrpSettings) (vrrpInstance, error) { vrrpStarted = true; return &fakeVRRP{cfg: s}, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if iface != "eth0" || len(h.sets) != 1 || !slices.Equal(h.sets[0], []netip.Addr{netip.MustParseAddr("192.0.2.10")}) {
		t.Fatalf("iface %q sets %v", iface, h.sets)
	}
	os.WriteFile(path, []byte(strings.Replace(baseConfig, `vip = "192.0.2.10"`, `vip = "192.0.2.20"`, 1)), 0o640)
	if err := d.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(h.sets) != 2 || h.sets[1][0] != netip.MustParseAddr("192.0.2.20") {
		t.Fatalf("sets after reload %v", h.sets)
	}
	os.WriteFile(path, []byte(strings.Replace(baseConfig, "[[virtual_server]]", "[vrrp]\nvrid = 7\npriority = 100\n\n[[virtual_server]]", 1)), 0o640)
	if err := d.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !vrrpStarted || len(h.sets) != 2 {
		t.Fatalf("vrrp started %v, sets %v", vrrpStarted, h.sets)
	}
}

// A udp service's failed real server leaves the kernel at once, its
// flows with it (the removal grace is for edits); a drained one keeps
// weight 0 and its flows. The [global] timeouts reach the kernel.
func TestUDPFailedRealServerRemovedAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := strings.Replace(baseConfig, `forwarding = "dr"`, `forwarding = "dr"
udp_timeout = "10s"`, 1)
		cfg = strings.Replace(cfg, "port = 80\n", "port = 53\nprotocol = \"udp\"\n", 1)
		cfg = strings.Replace(cfg, `type = "tcp"`, `type = "dns"`, 1)
		cfg = strings.Replace(cfg, "  name = \"rs2\"\n", "  name = \"rs2\"\n  drained = true\n", 1)
		r := newRig(t, cfg)
		key := r.kernel.Table().Services[0].Key
		if key.Protocol != balancer.UDP {
			t.Fatalf("service %s, want udp", key)
		}
		if got, _ := r.kernel.Timeouts(); got.UDP != 10*time.Second || got.TCP != balancer.KernelTCPTimeout {
			t.Fatalf("kernel timeouts %+v, want udp 10s and the kernel's tcp", got)
		}
		rs1 := balancer.DestKey{Addr: netip.MustParseAddr("192.0.2.11"), Port: 53}
		rs2 := balancer.DestKey{Addr: netip.MustParseAddr("192.0.2.12"), Port: 53}
		r.kernel.SetConns(key, rs1, 0, 40)
		r.kernel.SetConns(key, rs2, 0, 40)
		if w := r.weights(); w["192.0.2.12"] != 0 || w["192.0.2.11"] != 3 {
			t.Fatalf("weights %v: want rs2 drained at 0", w)
		}
		r.health.set("192.0.2.11", true)
		testutil.Eventually(t, 5*time.Second, "rs1 removed", func() bool { _, ok := r.weights()["192.0.2.11"]; return !ok })
		// rs2 is drained, not failed: still there at weight 0; the sorry
		// server takes the new flows.
		if w := r.weights(); len(w) != 2 || w["192.0.2.12"] != 0 || w["192.0.2.99"] != 1 {
			t.Fatalf("weights %v: want drained rs2 at 0 and the sorry server", w)
		}
		r.health.set("192.0.2.11", false)
		testutil.Eventually(t, 5*time.Second, "rs1 back", func() bool { return r.weights()["192.0.2.11"] == 3 })
	})
}

// A VRRP-only director finds out at start-up whether the kernel has IPVS:
// without it, it says so once at ERROR and its status tells the console;
// IPVS that appears later (modprobe ip_vs) is used by the reload that adds
// a virtual server, and the status follows.
func TestVRRPOnlyProbesIPVSOnce(t *testing.T) {
	const vrrpOnly = "[global]\ninterface = \"eth0\"\n[vrrp]\nvrid = 51\npriority = 150\nvips = [\"192.0.2.100\"]\n[sync]\nenabled = false\n"
	withVS := vrrpOnly + "[[virtual_server]]\nname = \"web\"\nvip = \"192.0.2.100\"\nport = 80\n  [[virtual_server.real_server]]\n  name = \"a\"\n  address = \"192.0.2.1\"\n"
	start := func(t *testing.T, open func() (balancer.Kernel, error)) (*Director, *testutil.Buffer, string) {
		path := filepath.Join(t.TempDir(), "lbd.toml")
		os.WriteFile(path, []byte(vrrpOnly), 0o640)
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		logs := &testutil.Buffer{}
		d, err := New(Options{
			Config:     cfg,
			Logger:     slog.New(slog.NewTextHandler(logs, nil)),
			Sysctl:     balancer.ProcSys{Root: t.TempDir()},
			StateFile:  filepath.Join(t.TempDir(), "managed.json"),
			OpenKernel: open,
			OpenGuard:  func() (flowguard.Guard, error) { return &flowguard.Fake{}, nil },
			NewVRRP:    func(s vrrpSettings) (vrrpInstance, error) { return &fakeVRRP{cfg: s}, nil },
		})
		if err != nil {
			t.Fatalf("VRRP-only config: %v", err)
		}
		return d, logs, path
	}

	t.Run("no IPVS", func(t *testing.T) {
		var opens int
		var kernel balancer.Kernel // nil: no IPVS yet
		d, logs, path := start(t, func() (balancer.Kernel, error) {
			opens++
			if kernel == nil {
				return nil, fmt.Errorf("balancer: %w: load ip_vs", balancer.ErrUnavailable)
			}
			return kernel, nil
		})
		if opens != 1 {
			t.Errorf("IPVS opened %d times at start-up, want one probe", opens)
		}
		if n := strings.Count(logs.String(), "level=ERROR"); n != 1 || !strings.Contains(logs.String(), `msg="IPVS not available (VRRP only)`) {
			t.Fatalf("want one ERROR saying IPVS is not available (VRRP only), got %d:\n%s", n, logs)
		}
		if st := d.Status(); !st.IPVSUnavailable || st.VRRP == nil {
			t.Fatalf("status: ipvs_unavailable=%v vrrp=%v", st.IPVSUnavailable, st.VRRP)
		}
		// A reload without virtual servers does not probe or log again.
		if err := d.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
		if opens != 1 || strings.Count(logs.String(), "level=ERROR") != 1 {
			t.Errorf("after a reload: %d opens, log:\n%s", opens, logs)
		}
		// A virtual server is refused while IPVS is missing...
		os.WriteFile(path, []byte(withVS), 0o640)
		if err := d.Reload(context.Background()); !errors.Is(err, balancer.ErrUnavailable) {
			t.Fatalf("reload with a virtual server and no IPVS: %v", err)
		}
		if !d.Status().IPVSUnavailable {
			t.Fatal("status forgot that IPVS is missing")
		}
		// ...and taken once the kernel has it.
		kernel = balancer.NewFake()
		if err := d.Reload(context.Background()); err != nil {
			t.Fatalf("reload once IPVS is there: %v", err)
		}
		if st := d.Status(); st.IPVSUnavailable || len(st.Services) != 1 {
			t.Fatalf("after IPVS appeared: ipvs_unavailable=%v services=%d", st.IPVSUnavailable, len(st.Services))
		}
	})

	t.Run("IPVS present", func(t *testing.T) {
		d, logs, _ := start(t, func() (balancer.Kernel, error) { return balancer.NewFake(), nil })
		if st := d.Status(); st.IPVSUnavailable {
			t.Fatal("status says IPVS is missing on a kernel that has it")
		}
		if strings.Contains(logs.String(), "level=ERROR") {
			t.Fatalf("ERROR logged with IPVS present:\n%s", logs)
		}
	})
}

// userServices drops lbd's own through-VIP check services.
func userServices(ss []balancer.VirtualService) []balancer.VirtualService {
	var out []balancer.VirtualService
	for _, s := range ss {
		if !isCheckService(s.Key) {
			out = append(out, s)
		}
	}
	return out
}
