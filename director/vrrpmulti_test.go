package director

import (
	"context"
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
	"lbd/internal/testutil"
	"lbd/vrrp"
)

const twoInstances = `
[global]
interface = "eth0"
[[vrrp_instance]]
name = "i1"
vrid = 51
priority = 150
vips = ["192.0.2.10"]
service_penalty = 60
[[vrrp_instance]]
name = "i2"
vrid = 52
priority = 100
vips = ["192.0.2.11"]
service_penalty = 60
[[vrrp_sync_group]]
name = "g"
instances = ["i1", "i2"]
`

// fakes records the fake instances a director created, by name.
type fakes struct {
	mu sync.Mutex
	by map[string]*fakeVRRP
	n  int
}

func (f *fakes) new(s vrrpSettings) (vrrpInstance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := &fakeVRRP{cfg: s}
	f.by[s.Name] = v
	f.n++
	return v, nil
}

func (f *fakes) get(name string) *fakeVRRP {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.by[name]
}

func startMulti(t *testing.T, src string) (*Director, *fakes, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lbd.toml")
	if err := os.WriteFile(path, []byte(src), 0o640); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakes{by: map[string]*fakeVRRP{}}
	d, err := New(Options{
		Config:     cfg,
		OpenKernel: func() (balancer.Kernel, error) { return nil, balancer.ErrUnavailable },
		NewVRRP:    f.new,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return d, f, path
}

func TestInstancesOwnTheirVIPs(t *testing.T) {
	d, f, path := startMulti(t, twoInstances)
	i1, i2 := f.get("i1"), f.get("i2")
	if i1 == nil || i2 == nil {
		t.Fatalf("instances started: %v", f.by)
	}
	if got := i1.cfg.VIPs; len(got) != 1 || got[0] != netip.MustParseAddr("192.0.2.10") || i1.cfg.VRID != 51 || i1.cfg.Priority != 150 {
		t.Errorf("i1 settings: %+v", i1.cfg)
	}
	if got := i2.cfg.VIPs; len(got) != 1 || got[0] != netip.MustParseAddr("192.0.2.11") || i2.cfg.VRID != 52 {
		t.Errorf("i2 settings: %+v", i2.cfg)
	}
	st := d.Status()
	if len(st.VRRPInstances) != 2 || st.VRRPInstances[0].Name != "i1" || st.VRRPInstances[1].Name != "i2" ||
		st.VRRPInstances[1].SyncGroup != "g" || st.VRRP == nil || st.VRRP.Name != "i1" {
		t.Fatalf("status instances: %+v", st.VRRPInstances)
	}

	// Failover: with two instances a name is required.
	err := d.Failover(context.Background(), time.Minute)
	if err == nil || !strings.Contains(err.Error(), "i1, i2") {
		t.Fatalf("failover without a name: %v", err)
	}
	if err := d.FailoverInstance(context.Background(), "nope", time.Minute); err == nil {
		t.Fatal("failover of an unknown instance succeeded")
	}
	if err := d.FailoverInstance(context.Background(), "i2", time.Minute); err != nil || i2.resign != time.Minute || i1.resign != 0 {
		t.Fatalf("failover i2: %v, resign i1 %v i2 %v", err, i1.resign, i2.resign)
	}

	// Reload changing i2 only: i1 keeps running untouched, i2 restarts.
	os.WriteFile(path, []byte(strings.Replace(twoInstances, "priority = 100", "priority = 120", 1)), 0o640)
	if err := d.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.get("i1") != i1 || f.get("i2") == i2 || f.get("i2").cfg.Priority != 120 || f.n != 3 {
		t.Fatalf("reload: i1 same %v, i2 new %v, created %d", f.get("i1") == i1, f.get("i2") != i2, f.n)
	}
	// Removing i2 (and the group) leaves i1 alone.
	one := strings.Split(twoInstances, "[[vrrp_instance]]\nname = \"i2\"")[0]
	os.WriteFile(path, []byte(one), 0o640)
	if err := d.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := d.Status(); len(st.VRRPInstances) != 1 || f.get("i1") != i1 || f.n != 3 {
		t.Fatalf("after removing i2: %+v, created %d", st.VRRPInstances, f.n)
	}
}

// A member's own fault holds the other members of its group in Fault
// until it ends; an instance outside the group is not touched.
func TestSyncGroupFollowsFault(t *testing.T) {
	src := twoInstances + `
[[vrrp_instance]]
name = "i3"
vrid = 53
priority = 100
vips = ["192.0.2.12"]
`
	d, f, _ := startMulti(t, src)
	i1, i2, i3 := f.get("i1"), f.get("i2"), f.get("i3")
	d.groups.ownFault("i1", "tracked interface eth1 down")
	if got := i2.fault(groupFaultSource); !strings.Contains(got, "sync group g: i1 (tracked interface eth1 down) in fault") {
		t.Fatalf("i2 hold = %q", got)
	}
	if i1.fault(groupFaultSource) != "" || i3.fault(groupFaultSource) != "" {
		t.Fatalf("holds on i1 %q, i3 %q", i1.fault(groupFaultSource), i3.fault(groupFaultSource))
	}
	d.groups.ownFault("i1", "")
	if got := i2.fault(groupFaultSource); got != "" {
		t.Fatalf("i2 still held: %q", got)
	}
}

// service_penalty lowers only the instance whose VIP carries the service
// below quorum.
func TestPenaltyPerInstance(t *testing.T) {
	r := newRig(t, `
[global]
interface = "eth0"
[[vrrp_instance]]
name = "i1"
vrid = 51
priority = 150
vips = ["192.0.2.10"]
service_penalty = 60
[[vrrp_instance]]
name = "i2"
vrid = 52
priority = 100
vips = ["192.0.2.11"]
service_penalty = 60
[[virtual_server]]
name = "web"
vip = "192.0.2.11"
port = 80
  [virtual_server.health_check]
  type = "tcp"
  interval = "50ms"
  timeout = "20ms"
  rise = 1
  fall = 1
  [[virtual_server.real_server]]
  name = "a"
  address = "10.0.0.1"
`)
	r.d.mu.Lock()
	vs := append([]*vrrpRunner(nil), r.d.vrrps...)
	r.d.mu.Unlock()
	if len(vs) != 2 {
		t.Fatalf("%d instances", len(vs))
	}
	penalty := func(v *vrrpRunner) int {
		f := v.inst.(*fakeVRRP)
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.penalty["services"]
	}
	r.health.set("10.0.0.1", true)
	testutil.Eventually(t, 5*time.Second, "penalty on i2", func() bool { return penalty(vs[1]) == 60 })
	if penalty(vs[0]) != 0 {
		t.Fatalf("i1 penalised for a service on i2's VIP")
	}
}

// With crossed instances the quiet guard follows each VIP's instance: the
// VIP this director is master of is guarded only for takeover_quiet after
// its takeover, the other one (backup) stays quiet.
func TestSyncGuardPerInstance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := baseConfig + `
[[virtual_server]]
name = "mail"
vip = "192.0.2.20"
port = 25
  [[virtual_server.real_server]]
  name = "m1"
  address = "192.0.2.21"

[[vrrp_instance]]
name = "i1"
vrid = 51
priority = 150
vips = ["192.0.2.10"]

[[vrrp_instance]]
name = "i2"
vrid = 52
priority = 100
vips = ["192.0.2.20"]

[sync]
takeover_quiet = "300ms"
`
		r := newSyncRig(t, src)
		web := flowguard.Target{Addr: netip.MustParseAddr("192.0.2.10"), Port: 80}
		mail := flowguard.Target{Addr: netip.MustParseAddr("192.0.2.20"), Port: 25}
		quiet := func(want ...flowguard.Target) func() bool {
			return func() bool { return slices.Equal(r.guard.Quiet(), want) }
		}
		testutil.Eventually(t, 5*time.Second, "both quiet while backup", quiet(web, mail))
		r.d.vrrpTransition(vrrp.Transition{Name: "i1", From: vrrp.Backup, To: vrrp.Master})
		if !quiet(web, mail)() {
			t.Fatalf("quiet right after the takeover = %v, want both", r.guard.Quiet())
		}
		time.Sleep(400 * time.Millisecond)
		synctest.Wait()
		if !quiet(mail)() {
			t.Fatalf("quiet after takeover_quiet = %v, want only mail (i2 is backup)", r.guard.Quiet())
		}
		r.d.vrrpTransition(vrrp.Transition{Name: "i1", From: vrrp.Master, To: vrrp.Backup})
		if !quiet(web, mail)() {
			t.Fatalf("quiet after i1 left master = %v, want both", r.guard.Quiet())
		}
	})
}
