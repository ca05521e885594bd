//go:build linux

package vrrp

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"lbd/internal/netlab"
	"lbd/internal/testutil"
)

// flooder sends VRRP adverts for vrid from h as fast as pps asks, on real
// raw sockets, until stop; it returns how many went out.
func flood(t *testing.T, h *netlab.Host, vip netip.Addr, prio uint8, pps int, d time.Duration) int {
	t.Helper()
	var c net.PacketConn
	if err := h.Do(func() (err error) {
		c, err = net.ListenPacket("ip4:112", "0.0.0.0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc := ipv4.NewPacketConn(c)
	var ifi *net.Interface // in h's namespace
	if err := h.Do(func() (err error) { ifi, err = net.InterfaceByName(h.Link); return err }); err != nil {
		t.Fatal(err)
	}
	if err := pc.SetMulticastInterface(ifi); err != nil {
		t.Fatal(err)
	}
	if err := pc.SetMulticastTTL(255); err != nil {
		t.Fatal(err)
	}
	src := h.IPv4.Addr()
	a := Advert{Version: 3, VRID: 51, Priority: prio, Interval: 100 * time.Millisecond, Addrs: []netip.Addr{vip}}
	b, err := a.Marshal(src, GroupIPv4)
	if err != nil {
		t.Fatal(err)
	}
	dst := &net.IPAddr{IP: GroupIPv4.AsSlice()}
	const tick = 10 * time.Millisecond
	per := pps * int(tick) / int(time.Second)
	sent := 0
	start := time.Now()
	for time.Since(start) < d {
		next := start.Add(time.Duration(sent/per+1) * tick)
		for range per {
			if _, err := pc.WriteTo(b, nil, dst); err == nil {
				sent++
			}
		}
		time.Sleep(time.Until(next))
	}
	return sent
}

// TestNSFloodKeepsMaster: 20,000 adverts a second from a stranger on the
// segment, for the same virtual router. Without an allowlist they are
// lower-priority noise that fills the receive path; the master's adverts
// still reach the backup ahead of them, so it never takes over falsely.
// With allowed_peers, a stranger claiming priority 254 is dropped as
// foreign by both and takes nothing.
func TestNSFloodKeepsMaster(t *testing.T) {
	netlab.Require(t)
	const pps, dur = 20000, 4 * time.Second
	for _, tc := range []struct {
		name  string
		prio  uint8
		allow bool
	}{
		{"noise", 50, false},
		{"hostile-allowlist", 254, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lan := netlab.NewLAN(t, "vrrpf", 3)
			a, b, c := lan.Hosts[0], lan.Hosts[1], lan.Hosts[2]
			vip := lan.IPv4(100)
			cfg := func(prio int, peer *netlab.Host) Config {
				cfg := Config{VRID: 51, Priority: prio, AdvertInterval: 100 * time.Millisecond, Preempt: true, VIPs: []netip.Addr{vip}}
				if tc.allow {
					cfg.AllowedPeers = []netip.Addr{peer.IPv4.Addr()}
				}
				return cfg
			}
			ra := startRouter(t, a, cfg(200, b))
			rb := startRouter(t, b, cfg(100, a))
			testutil.Eventually(t, 3*time.Second, "a master, b backup", func() bool { return ra.state() == Master && rb.state() == Backup })
			before := rb.in.Status().Counters
			var transitions int
			stop := make(chan struct{})
			watched := make(chan struct{})
			go func() {
				defer close(watched)
				for {
					select {
					case <-stop:
						return
					case <-time.After(5 * time.Millisecond):
					}
					if rb.state() != Backup || ra.state() != Master {
						transitions++
					}
				}
			}()
			sent := flood(t, c, vip, tc.prio, pps, dur)
			close(stop)
			<-watched
			after := rb.in.Status().Counters
			d := func(k string) int { return after[k] - before[k] }
			t.Logf("%d packets sent in %v (%.0f/s); backup: %d received, %d adverts processed, %d foreign, %d overrun, state %v",
				sent, dur, float64(sent)/dur.Seconds(), d("packets_received"), d("adverts_received"), d("drop_foreign"), d("drop_overrun"), rb.state())
			if sent < pps*int(dur/time.Second)/2 {
				t.Fatalf("the flood reached only %d packets", sent)
			}
			if transitions > 0 || rb.state() != Backup || ra.state() != Master {
				t.Fatalf("the flood moved the VIP: %d samples out of place; a %v, b %v", transitions, ra.state(), rb.state())
			}
			if b.HasAddr(t, vip) || c.HasAddr(t, vip) || !a.HasAddr(t, vip) {
				t.Fatal("the VIP is not on the master alone")
			}
			if tc.allow && d("drop_foreign") < sent/2 {
				t.Errorf("%d foreign drops for %d stranger packets", d("drop_foreign"), sent)
			}
			if tc.allow && ra.in.Status().Counters["drop_foreign"] == 0 {
				t.Error("the master did not drop the stranger's adverts as foreign")
			}
		})
	}
}
