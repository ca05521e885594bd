package director

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"lbd/balancer"
	"lbd/config"
	"lbd/flowguard"
	"lbd/internal/testutil"
	"lbd/vrrp"
)

const syncConfig = baseConfig + `
[vrrp]
vrid = 51
priority = 150
advert_interval = "100ms"

[sync]
refresh_period = "1s"
warm_up = "1s"
handover_hold = "50ms"
takeover_quiet = "300ms"
`

type syncRig struct {
	d      *Director
	kernel *balancer.Fake
	guard  *flowguard.Fake
	vrrp   *fakeVRRP
}

func newSyncRig(t *testing.T, toml string) *syncRig {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lbd.toml")
	if err := os.WriteFile(path, []byte(toml), 0o640); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	r := &syncRig{kernel: balancer.NewFake(), guard: &flowguard.Fake{}}
	r.d, err = New(Options{
		Config:     cfg,
		Logger:     slog.New(slog.DiscardHandler),
		OpenKernel: func() (balancer.Kernel, error) { return r.kernel, nil },
		Sysctl:     balancer.ProcSys{Root: t.TempDir()},
		NewChecker: (&scripted{down: map[string]bool{}}).checker,
		NewVRRP: func(s vrrpSettings) (vrrpInstance, error) {
			r.vrrp = &fakeVRRP{cfg: s}
			return r.vrrp, nil
		},
		OpenGuard: func() (flowguard.Guard, error) { return r.guard, nil },
	})
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

var webTarget = []flowguard.Target{{Addr: netip.MustParseAddr("192.0.2.10"), Port: 80}}

// With [vrrp], both sync daemons are desired state on the VRRP interface
// with the VRID as sync id; the director holds preemption until its backup
// daemon has run, with a master heard, for warm_up; the quiet guard is on
// while not master.
func TestSyncDaemonsWarmUpAndQuiet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newSyncRig(t, syncConfig)
		ds, err := r.kernel.SyncDaemons()
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 2 {
			t.Fatalf("sync daemons = %+v, want master and backup", ds)
		}
		for _, d := range ds {
			if d.Interface != "eth0" || d.SyncID != 51 {
				t.Errorf("daemon %+v: want eth0, sync id 51", d)
			}
		}
		if got := r.guard.Quiet(); !slices.Equal(got, webTarget) {
			t.Errorf("quiet guard while backup = %v, want %v", got, webTarget)
		}
		if r.vrrp.hold("sync") == "" {
			t.Error("preemption not held at start")
		}
		// A master is heard: not warm before warm_up has passed since then.
		r.vrrp.set(vrrp.Backup, netip.MustParseAddr("192.0.2.2"), time.Now())
		time.Sleep(3 * warmTick)
		synctest.Wait() // three warm ticks are done: none released the hold
		if r.vrrp.hold("sync") == "" {
			t.Error("preemption released before warm_up")
		}
		st := r.d.Status().Sync
		if st == nil || st.Warm || len(st.Daemons) != 2 || !st.Daemons[0].Running || !st.Daemons[1].Running {
			t.Fatalf("status sync = %+v", st)
		}
		testutil.Eventually(t, 5*time.Second, "preemption released after warm_up", func() bool { return r.vrrp.hold("sync") == "" })
		if st := r.d.Status().Sync; !st.Warm {
			t.Errorf("status not warm after warm_up: %+v", st)
		}

		// The backup daemon stops behind lbd's back: not warm, held again.
		if err := r.kernel.StopSyncDaemon(balancer.SyncBackup); err != nil {
			t.Fatal(err)
		}
		if err := r.d.rec.Resync(); err != nil {
			t.Fatal(err)
		}
		r.vrrp.set(vrrp.Backup, netip.MustParseAddr("192.0.2.2"), time.Now().Add(-time.Hour))
		testutil.Eventually(t, 5*time.Second, "hold while the backup daemon was restarted", func() bool { return r.vrrp.hold("sync") != "" })

		// Takeover: quiet for takeover_quiet, then off.
		r.vrrp.set(vrrp.Master, netip.Addr{}, time.Now())
		r.d.vrrpTransition(vrrp.Transition{From: vrrp.Backup, To: vrrp.Master})
		if got := r.guard.Quiet(); !slices.Equal(got, webTarget) {
			t.Errorf("quiet right after takeover = %v", got)
		}
		if g := r.d.Status().Sync.Guard; g != "quiet" {
			t.Errorf("guard state after takeover = %q, want quiet", g)
		}
		testutil.Eventually(t, 5*time.Second, "quiet off after takeover_quiet", func() bool { return len(r.guard.Quiet()) == 0 })
		// Leaving master puts it back at once.
		r.vrrp.set(vrrp.Backup, netip.Addr{}, time.Now())
		r.d.vrrpTransition(vrrp.Transition{From: vrrp.Master, To: vrrp.Backup})
		if got := r.guard.Quiet(); !slices.Equal(got, webTarget) {
			t.Errorf("quiet after leaving master = %v", got)
		}
	})
}

// lbctl failover on a master: new connections are held for handover_hold
// before the resignation, and released after it.
func TestFailoverHoldsNewConnectionsFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newSyncRig(t, syncConfig)
		r.vrrp.set(vrrp.Master, netip.Addr{}, time.Now())
		r.d.vrrpTransition(vrrp.Transition{From: vrrp.Backup, To: vrrp.Master})
		start := time.Now()
		if err := r.d.Failover(context.Background(), time.Minute); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took < 50*time.Millisecond {
			t.Errorf("failover took %v: no hold before resigning", took)
		}
		r.vrrp.mu.Lock()
		resigned := r.vrrp.resign
		r.vrrp.mu.Unlock()
		if resigned != time.Minute {
			t.Fatalf("resign holdoff = %v", resigned)
		}
		var holds [][]flowguard.Target
		for _, c := range r.guard.Calls() {
			if c.Op == flowguard.OpSetHold {
				holds = append(holds, c.Targets)
			}
		}
		if len(holds) != 2 || !slices.Equal(holds[0], webTarget) || len(holds[1]) != 0 {
			t.Fatalf("hold calls = %v, want the service held, then released", holds)
		}
	})
}

// A reload that turns sync off stops the daemons lbd started and removes
// the guard; preemption is no longer held for sync.
func TestSyncOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newSyncRig(t, syncConfig)
		if err := os.WriteFile(r.d.path, []byte(syncConfig+"enabled = false\n"), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := r.d.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
		if ds, _ := r.kernel.SyncDaemons(); len(ds) != 0 {
			t.Errorf("daemons after sync off: %+v", ds)
		}
		if !r.guard.Closed() {
			t.Error("guard not closed")
		}
		if st := r.d.Status().Sync; st != nil {
			t.Errorf("status sync = %+v, want nil", st)
		}
		testutil.Eventually(t, 5*time.Second, "hold lifted", func() bool { return r.vrrp.hold("sync") == "" })
	})
}

func TestWarmth(t *testing.T) {
	now := time.Now()
	s := config.SyncSettings{WarmUp: 10 * time.Second}
	running := balancer.SyncDaemonStatus{Running: true, Since: now.Add(-time.Hour)}
	peer := netip.MustParseAddr("192.0.2.2")
	for _, c := range []struct {
		name   string
		backup balancer.SyncDaemonStatus
		v      vrrp.Status
		warm   bool
	}{
		{"master", balancer.SyncDaemonStatus{}, vrrp.Status{State: vrrp.Master}, true},
		{"daemon down", balancer.SyncDaemonStatus{Err: "no such device"}, vrrp.Status{State: vrrp.Backup, MasterAddr: peer}, false},
		{"fault", running, vrrp.Status{State: vrrp.Fault}, false},
		{"no master", running, vrrp.Status{State: vrrp.Backup, LastTransition: now.Add(-time.Hour)}, false},
		{"backup too short", running, vrrp.Status{State: vrrp.Backup, MasterAddr: peer, LastTransition: now.Add(-5 * time.Second)}, false},
		{"daemon too short", balancer.SyncDaemonStatus{Running: true, Since: now.Add(-time.Second)}, vrrp.Status{State: vrrp.Backup, MasterAddr: peer, LastTransition: now.Add(-time.Hour)}, false},
		{"warm", running, vrrp.Status{State: vrrp.Backup, MasterAddr: peer, LastTransition: now.Add(-11 * time.Second)}, true},
	} {
		warm, why := warmth(now, s, c.backup, c.v)
		if warm != c.warm || why == "" {
			t.Errorf("%s: warm = %v (%q), want %v", c.name, warm, why, c.warm)
		}
	}
}
