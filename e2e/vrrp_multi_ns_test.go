//go:build linux && !vm

package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"lbd/internal/netlab"
	"lbd/internal/testutil"
)

// Several VRRP instances per director (active-active): two lbd daemons
// with crossed priorities, each master of its own VIP, and a sync group
// whose members move together. Host namespace tests, VRRP only (no IPVS);
// see vrrp_helpers_test.go.

const multiInterval = 300 * time.Millisecond

// multiInstance is one [[vrrp_instance]] of a test director.
type multiInstance struct {
	name     string
	vrid     int
	priority int
	vip      netip.Addr
	track    string // a weight-0 tracked interface, or ""
}

// multiConfig is a VRRP-only lbd.toml with instances and optional sync
// groups ("name=a,b").
func multiConfig(insts []multiInstance, groups []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[global]\ninterface = \"eth0\"\nlisten = \"127.0.0.1:3636\"\n")
	for _, in := range insts {
		fmt.Fprintf(&b, "\n[[vrrp_instance]]\nname = %q\nvrid = %d\npriority = %d\nadvert_interval = %q\nvips = [%q]\n",
			in.name, in.vrid, in.priority, multiInterval.String(), in.vip.String())
		if in.track != "" {
			fmt.Fprintf(&b, "[[vrrp_instance.track_interface]]\nname = %q\nweight = 0\n", in.track)
		}
	}
	for _, g := range groups {
		name, members, _ := strings.Cut(g, "=")
		fmt.Fprintf(&b, "\n[[vrrp_sync_group]]\nname = %q\ninstances = [\"%s\"]\n", name, strings.Join(strings.Split(members, ","), "\", \""))
	}
	return b.String()
}

// startMultiDirector runs lbd in h with the given instances.
func startMultiDirector(t *testing.T, h *netlab.Host, bin string, insts []multiInstance, groups ...string) *vrrpDirector {
	t.Helper()
	dir := t.TempDir()
	d := &vrrpDirector{tb: t, h: h, bin: bin, conf: filepath.Join(dir, "lbd.toml"),
		notify: filepath.Join(dir, "transitions"), out: &testutil.Buffer{}}
	if err := os.WriteFile(d.conf, []byte(multiConfig(insts, groups)), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.signal(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("lbd in %s (config:\n%s) said:\n%s", h.Name, multiConfig(insts, groups), d.out.String())
		}
	})
	d.start()
	return d
}

// Each director is master of the instance it has the higher priority for:
// each VIP is on its own director only and the client's neighbour entry
// points there. A SIGKILLed director's VIP moves to the other, which then
// holds both; when it returns, it preempts its own VIP back and only it.
func TestVRRPMultiCrossed(t *testing.T) {
	lan, bin := vrrpLab(t, "vrx")
	h1, h2, client := lan.Hosts[0], lan.Hosts[1], lan.Hosts[2]
	vip1, vip2 := lan.IPv4(101), lan.IPv4(102)
	a := startMultiDirector(t, h1, bin, []multiInstance{
		{name: "inst1", vrid: 51, priority: 150, vip: vip1},
		{name: "inst2", vrid: 52, priority: 100, vip: vip2},
	})
	startMultiDirector(t, h2, bin, []multiInstance{
		{name: "inst1", vrid: 51, priority: 100, vip: vip1},
		{name: "inst2", vrid: 52, priority: 150, vip: vip2},
	})
	down := vrrpDown(100, multiInterval)
	settle := down + 3*time.Second // generous: the machine is shared

	crossed := func(what string) {
		t.Helper()
		vrrpWait(t, settle, what+": vip1 on d1 only", vrrpOnlyOn(t, vip1, []*netlab.Host{h1}, h2))
		vrrpWait(t, settle, what+": vip2 on d2 only", vrrpOnlyOn(t, vip2, []*netlab.Host{h2}, h1))
		vrrpTouch(client, vip1)
		vrrpTouch(client, vip2)
		vrrpWait(t, 3*time.Second, what+": client's entry for vip1 on d1", vrrpNeighbourIs(t, client, h1, vip1))
		vrrpWait(t, 3*time.Second, what+": client's entry for vip2 on d2", vrrpNeighbourIs(t, client, h2, vip2))
	}
	crossed("start")
	// Stable, not flapping: several Master_Down_Intervals later still so.
	vrrpHolds(t, 2*down, "crossed", func() bool {
		return vrrpOnlyOn(t, vip1, []*netlab.Host{h1}, h2)() && vrrpOnlyOn(t, vip2, []*netlab.Host{h2}, h1)()
	})

	// SIGKILL d1: d2 takes inst1 after Master_Down_Interval and holds both.
	a.signal(syscall.SIGKILL)
	took := vrrpWait(t, settle, "vip1 on d2", vrrpOnlyOn(t, vip1, []*netlab.Host{h2}))
	t.Logf("inst1 taken over by d2 %v after SIGKILL (Master_Down_Interval %v)", took, down)
	if !h2.HasAddr(t, vip2) {
		t.Fatal("d2 lost vip2 when d1 died")
	}
	vrrpWait(t, 3*time.Second, "client's entry for vip1 on d2", vrrpNeighbourIs(t, client, h2, vip1))
	vrrpWait(t, 3*time.Second, "client's entry for vip2 still on d2", vrrpNeighbourIs(t, client, h2, vip2))

	// d1 returns: it cleans the VIP its crash left, preempts inst1 and
	// leaves inst2 to d2.
	a.start()
	crossed("after d1 returned")
}

// Two instances in one sync group, both master on d1; a weight-0 tracked
// interface of one of them goes down on d1: both move to d2 (the other
// member is held in Fault), and both come back when it is up again.
func TestVRRPMultiSyncGroup(t *testing.T) {
	lan, bin := vrrpLab(t, "vrg")
	h1, h2, client := lan.Hosts[0], lan.Hosts[1], lan.Hosts[2]
	// The tracked link: a veth pair inside d1's namespace (removed with it).
	h1.Exec("ip", "link", "add", "trk0", "type", "veth", "peer", "name", "trk1")
	h1.Exec("ip", "link", "set", "trk1", "up")
	h1.Exec("ip", "link", "set", "trk0", "up")
	vip1, vip2 := lan.IPv4(101), lan.IPv4(102)
	startMultiDirector(t, h1, bin, []multiInstance{
		{name: "inst1", vrid: 51, priority: 150, vip: vip1, track: "trk0"},
		{name: "inst2", vrid: 52, priority: 150, vip: vip2},
	}, "g=inst1,inst2")
	startMultiDirector(t, h2, bin, []multiInstance{
		{name: "inst1", vrid: 51, priority: 100, vip: vip1},
		{name: "inst2", vrid: 52, priority: 100, vip: vip2},
	}, "g=inst1,inst2")
	settle := vrrpDown(100, multiInterval) + 3*time.Second
	both := func(on, off *netlab.Host) func() bool {
		return func() bool {
			return vrrpOnlyOn(t, vip1, []*netlab.Host{on}, off)() && vrrpOnlyOn(t, vip2, []*netlab.Host{on}, off)()
		}
	}
	vrrpWait(t, settle, "both VIPs on d1 only", both(h1, h2))
	vrrpTouch(client, vip2)
	vrrpWait(t, 3*time.Second, "client's entry for vip2 on d1", vrrpNeighbourIs(t, client, h1, vip2))

	// inst2 tracks nothing, yet its VIP follows inst1's fault.
	h1.Exec("ip", "link", "set", "trk0", "down")
	took := vrrpWait(t, settle, "both VIPs on d2 only", both(h2, h1))
	t.Logf("group moved to d2 %v after trk0 went down", took)
	vrrpWait(t, 3*time.Second, "client's entry for vip2 on d2", vrrpNeighbourIs(t, client, h2, vip2))
	vrrpHolds(t, 2*vrrpDown(100, multiInterval), "both VIPs on d2 only", both(h2, h1))

	h1.Exec("ip", "link", "set", "trk0", "up")
	vrrpWait(t, settle, "both VIPs back on d1 only", both(h1, h2))
	vrrpWait(t, 3*time.Second, "client's entry for vip2 back on d1", vrrpNeighbourIs(t, client, h1, vip2))
}
