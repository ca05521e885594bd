//go:build vm

package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"lbd/internal/vmtest"
)

// aaAdvert is the instances' advert interval: longer than the stateful
// lab's, as each director runs two instances, so a stall of the emulated
// CPU on a loaded host does not make a backup take over a live master
// (whose client would then follow the backup's gratuitous ARP).
const aaAdvert = 500 * time.Millisecond

// TestActiveActiveSync runs the DR pair with two crossed VRRP instances,
// each director master of one VIP and backup of the other, with connection
// sync on: both sync daemons run on both directors while the roles are
// mixed, so B, master of its own VIP, learns the connections A schedules
// for A's VIP; when A crashes, B takes A's VIP and every held connection
// through it survives, while B's own VIP never moves.
func TestActiveActiveSync(t *testing.T) {
	s := newStatefulLab(t, "dr", 2, false)
	vip1 := s.vips[0]
	vip2 := netip.AddrFrom4([4]byte{10, 77, 0, 101})
	for _, r := range s.rs {
		// realserver.sh already set the ARP sysctls: the second VIP goes on lo.
		r.ns.Exec("ip", "addr", "add", vip2.String()+"/32", "dev", "lo")
	}
	web2 := stVS{name: "web2", vip: vip2, port: s.port, rs: s.svcs[0].rs}
	s.svcs = append(s.svcs, web2)
	s.vrrp = func(d *stDirector) string {
		p1, p2 := 150, 100
		if d == s.b {
			p1, p2 = 100, 150
		}
		var b strings.Builder
		for _, in := range []struct {
			name string
			vrid int
			prio int
			vip  netip.Addr
		}{{"one", 51, p1, vip1}, {"two", 52, p2, vip2}} {
			fmt.Fprintf(&b, "[[vrrp_instance]]\nname = %q\nvrid = %d\npriority = %d\nadvert_interval = %q\nvips = [%q]\n\n",
				in.name, in.vrid, in.prio, aaAdvert, in.vip)
		}
		return b.String()
	}
	s.start(s.a)
	s.start(s.b)
	s.waitRules(t, s.a)
	s.waitRules(t, s.b)
	crossed := func() (bool, string) {
		a1, a2 := s.a.host.HasAddr(t, vip1), s.a.host.HasAddr(t, vip2)
		b1, b2 := s.b.host.HasAddr(t, vip1), s.b.host.HasAddr(t, vip2)
		return a1 && !a2 && !b1 && b2, fmt.Sprintf("A holds vip1 %v vip2 %v, B vip1 %v vip2 %v", a1, a2, b1, b2)
	}
	vmtest.Eventually(t, failoverTimeout, 50*time.Millisecond, "each director master of its own VIP", crossed)
	s.waitServed(t, s.a)
	for _, d := range []*stDirector{s.a, s.b} {
		st := s.waitAPI(t, d)
		if len(st.VRRPInstances) != 2 {
			t.Fatalf("%s status lists %d instances, want 2", d.name, len(st.VRRPInstances))
		}
		vmtest.Eventually(t, programTimeout, 200*time.Millisecond, "sync daemons of "+d.name, func() (bool, string) {
			out := d.host.Exec("ipvsadm", "-L", "--daemon")
			return strings.Contains(out, "master sync daemon") && strings.Contains(out, "backup sync daemon"), "ipvsadm -L --daemon: " + out
		})
	}

	// Held connections through A's VIP are learned by B, master of vip2.
	if ok, why := crossed(); !ok {
		t.Fatalf("roles changed before the traffic: %s", why)
	}
	s.waitServed(t, s.a)
	ld := s.startLoad(t)
	ld.waitSynced(t, s.b)
	time.Sleep(time.Second)
	s.a.host.Cut(t)
	if err := s.a.d.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	crashed := time.Now()
	vmtest.Eventually(t, failoverTimeout, 50*time.Millisecond, "B holds both VIPs", func() (bool, string) {
		b1, b2 := s.b.host.HasAddr(t, vip1), s.b.host.HasAddr(t, vip2)
		return b1 && b2, fmt.Sprintf("B holds vip1 %v vip2 %v", b1, b2)
	})
	t.Logf("B took vip1 %v after A's crash", time.Since(crashed).Round(time.Millisecond))
	time.Sleep(stQuiet + stSlack + stSettle)
	rep := ld.finish(t)
	ld.checkHeld(t, rep, "A crashed, B master of both")
	if rep.FreshOK == 0 {
		t.Error("no new connection succeeded at all")
	}
	if st, err := s.b.status(); err != nil || len(st.VRRPInstances) != 2 || st.VRRPInstances[0].State != "master" || st.VRRPInstances[1].State != "master" {
		t.Errorf("B's status after the crash: %v %+v", err, st)
	}
}
