//go:build linux && !vm

package e2e

import (
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"lbd/internal/netlab"
)

// Two lbd daemons with VRRP-only configurations in two namespaces on a
// bridge, and a client namespace: the VIP moves as the issue demands, in
// IPv4 and IPv6. These run on the host (root); see vrrp_helpers_test.go.

const vrrpInterval = time.Second

// vrrpLab starts the LAN (d1, d2, client) and builds lbd, unless LBD_BIN
// names a binary to test instead.
func vrrpLab(t *testing.T, prefix string) (lan *netlab.LAN, bin string) {
	t.Helper()
	netlab.Require(t)
	if bin = os.Getenv("LBD_BIN"); bin == "" {
		bin = netlab.BuildBinary(t, "lbd/cmd/lbd")
	}
	return netlab.NewLAN(t, prefix, 3), bin
}

func TestVRRPDaemonFailover(t *testing.T) {
	for _, fam := range vrrpFamilies {
		t.Run(fam.name, func(t *testing.T) {
			lan, bin := vrrpLab(t, "vrd")
			h1, h2, client := lan.Hosts[0], lan.Hosts[1], lan.Hosts[2]
			vip := fam.vip(lan)
			down1, down2 := vrrpDown(200, vrrpInterval), vrrpDown(100, vrrpInterval)
			d1 := startVRRPDirector(t, h1, bin, vrrpOpts{priority: 200, interval: vrrpInterval, vip: vip})
			d2 := startVRRPDirector(t, h2, bin, vrrpOpts{priority: 100, interval: vrrpInterval, vip: vip})

			// One master, the VIP only on it.
			vrrpWait(t, down1+2*time.Second, "VIP on d1 only", vrrpOnlyOn(t, vip, []*netlab.Host{h1}, h2))
			vrrpHolds(t, down2, "VIP on d1 only", vrrpOnlyOn(t, vip, []*netlab.Host{h1}, h2))
			if got := d1.transitions(); !slices.Equal(got, []string{"init->backup", "backup->master"}) {
				t.Fatalf("d1 notified %v", got)
			}
			if got := d2.transitions(); !slices.Equal(got, []string{"init->backup"}) {
				t.Fatalf("d2 notified %v", got)
			}
			vrrpTouch(client, vip)
			vrrpWait(t, 2*time.Second, "client's neighbour entry on d1", vrrpNeighbourIs(t, client, h1, vip))

			// SIGKILL the master: no priority 0, its VIP stays behind on
			// h1, yet the backup takes over after Master_Down_Interval and
			// its gratuitous ARP / NA moves the client.
			d1.signal(syscall.SIGKILL)
			took := vrrpWait(t, down2+2*time.Second, "VIP on d2", vrrpOnlyOn(t, vip, []*netlab.Host{h2}))
			t.Logf("takeover after SIGKILL: %v (Master_Down_Interval %v)", took, down2)
			vrrpWait(t, 2*time.Second, "client's neighbour entry on d2", vrrpNeighbourIs(t, client, h2, vip))

			// The old master returns: it removes the VIP the crash left,
			// listens as backup, then preempts (priority 200 > 100).
			d1.start()
			vrrpWait(t, down1+2*time.Second, "VIP back on d1 only", vrrpOnlyOn(t, vip, []*netlab.Host{h1}, h2))
			vrrpWait(t, 2*time.Second, "client's neighbour entry back on d1", vrrpNeighbourIs(t, client, h1, vip))
			if got := d2.transitions(); !slices.Equal(got, []string{"init->backup", "backup->master", "master->backup"}) {
				t.Fatalf("d2 notified %v", got)
			}

			// SIGTERM the master: it resigns with priority 0, so d2 takes
			// over after its Skew_Time instead of Master_Down_Interval.
			d1.signal(syscall.SIGTERM)
			took = vrrpWait(t, down2, "VIP on d2 only after SIGTERM", vrrpOnlyOn(t, vip, []*netlab.Host{h2}, h1))
			skew := vrrpSkew(100, vrrpInterval)
			t.Logf("takeover after SIGTERM: %v (Skew_Time %v, Master_Down_Interval %v)", took, skew, down2)
			if margin := 400 * time.Millisecond; took > skew+margin {
				t.Fatalf("takeover took %v after SIGTERM, want within Skew_Time %v + %v", took, skew, margin)
			}
			if got := d1.transitions(); got[len(got)-1] != "master->init" {
				t.Fatalf("d1 notified %v", got)
			}
		})
	}
}

func TestVRRPDaemonNoPreempt(t *testing.T) {
	lan, bin := vrrpLab(t, "vrn")
	h1, h2 := lan.Hosts[0], lan.Hosts[1]
	vip := lan.IPv4(100)
	off := false
	d1 := startVRRPDirector(t, h1, bin, vrrpOpts{priority: 200, interval: vrrpInterval, vip: vip, preempt: &off})
	startVRRPDirector(t, h2, bin, vrrpOpts{priority: 100, interval: vrrpInterval, vip: vip})
	vrrpWait(t, vrrpDown(200, vrrpInterval)+2*time.Second, "VIP on d1 only", vrrpOnlyOn(t, vip, []*netlab.Host{h1}, h2))
	d1.signal(syscall.SIGKILL)
	vrrpWait(t, vrrpDown(100, vrrpInterval)+2*time.Second, "VIP on d2", vrrpOnlyOn(t, vip, []*netlab.Host{h2}))
	// d1 returns with the higher priority but preempt = false: it stays
	// backup (and cleans the VIP its crash left) while d2 is alive.
	d1.start()
	vrrpWait(t, 2*time.Second, "stale VIP removed from d1", vrrpOnlyOn(t, vip, []*netlab.Host{h2}, h1))
	vrrpHolds(t, 3*vrrpDown(200, vrrpInterval), "VIP on d2 only", vrrpOnlyOn(t, vip, []*netlab.Host{h2}, h1))
	if got := d1.transitions(); got[len(got)-1] != "init->backup" {
		t.Fatalf("d1 notified %v", got)
	}
}

func TestVRRPDaemonSplitBrain(t *testing.T) {
	for _, fam := range vrrpFamilies {
		t.Run(fam.name, func(t *testing.T) {
			lan, bin := vrrpLab(t, "vrs")
			h1, h2, client := lan.Hosts[0], lan.Hosts[1], lan.Hosts[2]
			vip := fam.vip(lan)
			startVRRPDirector(t, h1, bin, vrrpOpts{priority: 200, interval: vrrpInterval, vip: vip})
			startVRRPDirector(t, h2, bin, vrrpOpts{priority: 100, interval: vrrpInterval, vip: vip})
			vrrpWait(t, vrrpDown(200, vrrpInterval)+2*time.Second, "VIP on d1 only", vrrpOnlyOn(t, vip, []*netlab.Host{h1}, h2))
			vrrpTouch(client, vip)
			vrrpWait(t, 2*time.Second, "client's neighbour entry on d1", vrrpNeighbourIs(t, client, h1, vip))

			// Cut d1 off the switch (its link stays up): both are master.
			h1.Cut(t)
			vrrpWait(t, vrrpDown(100, vrrpInterval)+2*time.Second, "both master", vrrpOnlyOn(t, vip, []*netlab.Host{h1, h2}))
			vrrpWait(t, 2*time.Second, "client follows d2", vrrpNeighbourIs(t, client, h2, vip))

			// Heal: exactly one master within one advert interval, the
			// higher priority one, and the client comes back to it.
			h1.Heal(t)
			took := vrrpWait(t, 2*vrrpInterval, "exactly one master", vrrpOnlyOn(t, vip, []*netlab.Host{h1}, h2))
			t.Logf("one master %v after the heal (advert interval %v)", took, vrrpInterval)
			if margin := 300 * time.Millisecond; took > vrrpInterval+margin {
				t.Fatalf("split brain lasted %v after the heal, want within one advert interval (%v) + %v", took, vrrpInterval, margin)
			}
			vrrpWait(t, time.Second, "client back on d1", vrrpNeighbourIs(t, client, h1, vip))
			vrrpHolds(t, 2*vrrpInterval, "VIP on d1 only", vrrpOnlyOn(t, vip, []*netlab.Host{h1}, h2))
		})
	}
}
