package vrrp

import (
	"net/netip"
	"testing"
	"time"
)

// countSender counts adverts and keeps nothing: the advert path's own
// allocations are what the tests below measure.
type countSender struct{ n int }

func (s *countSender) send(b []byte, src, dst netip.Addr) error { s.n++; return nil }

// An advert sent by a master and one received by a backup, each with the
// loop's publish after it, allocate nothing: at 10ms adverts the garbage
// collector gets no work from VRRP.
func TestAdvertPathAllocatesNothing(t *testing.T) {
	for _, fam := range []struct {
		name       string
		vip, local netip.Addr
		peer       netip.Addr
		group      netip.Addr
	}{
		{"ipv4", netip.MustParseAddr("10.77.0.100"), netip.MustParseAddr("10.77.0.11"), netip.MustParseAddr("10.77.0.12"), GroupIPv4},
		{"ipv6", netip.MustParseAddr("fd00:77::100"), netip.MustParseAddr("fe80::11"), netip.MustParseAddr("fe80::12"), GroupIPv6},
	} {
		t.Run(fam.name, func(t *testing.T) {
			start := time.Unix(1000, 0)
			interval := 10 * time.Millisecond

			// The master: owner priority, master at once.
			mcfg := testConfig(255)
			mcfg.AdvertInterval, mcfg.VIPs = interval, []netip.Addr{fam.vip}
			mp, err := validate(&mcfg)
			if err != nil {
				t.Fatal(err)
			}
			master := newInstance(mcfg, mp, newFakeSys(fam.local))
			tx := &countSender{}
			master.core.tr = tx
			master.core.start(start, map[string]bool{"eth0": true})
			if master.core.state != Master {
				t.Fatalf("master is %v", master.core.state)
			}
			now := master.core.next()
			sent := tx.n
			allocs := testing.AllocsPerRun(1000, func() {
				master.core.expire(now)
				master.publish()
				now = master.core.next()
			})
			if tx.n-sent < 1000 {
				t.Fatalf("%d adverts sent in 1000 rounds", tx.n-sent)
			}
			if allocs != 0 {
				t.Errorf("%v allocations per advert sent, want 0", allocs)
			}

			// The backup hears the master's adverts.
			bcfg := testConfig(100)
			bcfg.AdvertInterval, bcfg.VIPs = interval, []netip.Addr{fam.vip}
			bp, err := validate(&bcfg)
			if err != nil {
				t.Fatal(err)
			}
			backup := newInstance(bcfg, bp, newFakeSys(fam.peer))
			backup.core.tr = &countSender{}
			backup.core.start(start, map[string]bool{"eth0": true})
			a := Advert{Version: 3, VRID: 51, Priority: 255, Interval: interval, Addrs: []netip.Addr{fam.vip}}
			b, err := a.Marshal(fam.local, fam.group)
			if err != nil {
				t.Fatal(err)
			}
			pkt := rxPacket{b: b, src: fam.local, dst: fam.group, ttl: 255, ifOK: true}
			now = start
			allocs = testing.AllocsPerRun(1000, func() {
				now = now.Add(interval)
				backup.core.receive(now, pkt)
				backup.core.expire(now)
				backup.publish()
			})
			if st := backup.Status(); st.State != Backup || st.Counters["adverts_received"] < 1000 || st.MasterAddr != fam.local {
				t.Fatalf("backup: %v, %v", st.State, st.Counters)
			}
			if allocs != 0 {
				t.Errorf("%v allocations per advert received, want 0", allocs)
			}
		})
	}
}
