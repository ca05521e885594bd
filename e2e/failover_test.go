//go:build vm

package e2e

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"lbd/internal/netlab"
	"lbd/internal/vmtest"
)

// failoverTimeout bounds a VIP move: 3 adverts of 500ms plus skew, the
// client's ARP update, and slack for TCG emulation.
const failoverTimeout = 30 * time.Second

// TestFailover runs two real lbd directors with VRRP on one LAN in DR mode.
// Both program IPVS (a warm backup); only the master holds the VIP, and the
// client reaches the real servers through it. A master stopped with SIGTERM
// resigns and removes the VIP, and the backup takes over; the master comes
// back and preempts with its higher priority; a master that crashes (cable
// cut, process killed) is replaced when its adverts stop.
func TestFailover(t *testing.T) {
	l := newDRLabN(t, 2)
	a, b := l.directors[0], l.directors[1]
	web := vs{name: "web", port: 80, sched: "rr", rs: l.rsAll()}
	conf := func(priority int) string {
		return l.config("", web) + fmt.Sprintf("\n[vrrp]\nvrid = 51\npriority = %d\nadvert_interval = \"500ms\"\n", priority)
	}
	da := l.startLBDIn(a.NS, conf(150))
	db := l.startLBDIn(b.NS, conf(100))
	l.waitRulesIn(a.NS, da, l.rules(web), programTimeout)
	l.waitRulesIn(b.NS, db, l.rules(web), programTimeout)
	l.waitMaster(a, b)
	l.waitServedVia(a)
	checkAlternates(t, l.mustGet(80, 4), "rs1", "rs2")

	t.Run("master stops", func(t *testing.T) {
		ld := l.load(80, 10000)
		if err := da.Stop(); err != nil {
			t.Errorf("lbd on %s: %v", a.Name, err)
		}
		if a.HasAddr(t, l.vip) {
			t.Errorf("%s still holds the VIP after lbd exited", a.Name)
		}
		l.waitMaster(b, nil)
		l.waitServedVia(b)
		ok, fail, err := ld.stop()
		t.Logf("during the switch: %d requests served, %d failed (last error: %v)", ok, fail, err)
	})
	if t.Failed() {
		return
	}

	t.Run("master returns and preempts", func(t *testing.T) {
		da = l.startLBDIn(a.NS, conf(150))
		l.waitRulesIn(a.NS, da, l.rules(web), programTimeout)
		l.waitMaster(a, b)
		l.waitServedVia(a)
	})
	if t.Failed() {
		return
	}

	t.Run("master crashes", func(t *testing.T) {
		a.Cut(t) // as if the box died: its adverts stop...
		if err := da.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		l.waitMaster(b, nil) // ...and the backup notices
		l.waitServedVia(b)
		checkAlternates(t, l.mustGet(80, 4), "rs1", "rs2")
	})
}

// waitMaster waits until master holds the VIP and backup (if any) does not.
func (l *lab) waitMaster(master, backup *netlab.Host) {
	l.t.Helper()
	vmtest.Eventually(l.t, failoverTimeout, 100*time.Millisecond, master.Name+" master", func() (bool, string) {
		m := master.HasAddr(l.t, l.vip)
		bk := backup != nil && backup.HasAddr(l.t, l.vip)
		return m && !bk, fmt.Sprintf("VIP on %s: %v; on the backup: %v", master.Name, m, bk)
	})
}

// waitServedVia waits until the client's requests to the VIP succeed and
// its ARP entry for the VIP points at director h.
func (l *lab) waitServedVia(h *netlab.Host) {
	l.t.Helper()
	vmtest.Eventually(l.t, failoverTimeout, 200*time.Millisecond, "traffic via "+h.Name, func() (bool, string) {
		if _, err := l.get(80); err != nil {
			return false, "request: " + err.Error()
		}
		mac, state, ok := l.client.Neighbour(l.t, l.vip)
		return ok && mac.String() == h.MAC.String(), fmt.Sprintf("client's ARP entry for the VIP: %v %v, want %v", mac, state, h.MAC)
	})
}
