//go:build linux

package vrrp

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"lbd/internal/netlab"
)

// The real raw-socket transport sends and receives an advert without
// allocating, reports what the IP layer says (source, destination, TTL,
// interface), and pending takes a message already queued without waiting.
func TestNSTransportAllocatesNothing(t *testing.T) {
	netlab.Require(t)
	lan := netlab.NewLAN(t, "vrio", 2)
	h1, h2 := lan.Hosts[0], lan.Hosts[1]
	for _, fam := range []struct {
		name  string
		src   netip.Addr
		group netip.Addr
		vip   netip.Addr
	}{
		{"ipv4", h1.IPv4.Addr(), GroupIPv4, lan.IPv4(100)},
		{"ipv6", h1.LinkLocal, GroupIPv6, lan.IPv6(100)},
	} {
		t.Run(fam.name, func(t *testing.T) {
			open := func(h *netlab.Host) (transport, int) {
				var tr transport
				var idx int
				err := h.Do(func() error {
					ifi, err := net.InterfaceByName(h.Link)
					if err != nil {
						return err
					}
					idx = ifi.Index
					if fam.src.Is6() {
						tr, err = openIPv6(ifi, false)
					} else {
						tr, err = openIPv4(ifi, false)
					}
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { tr.close() })
				return tr, idx
			}
			tx, _ := open(h1)
			rx, _ := open(h2)
			a := Advert{Version: 3, VRID: 51, Priority: 200, Interval: 10 * time.Millisecond, Addrs: []netip.Addr{fam.vip}}
			b, err := a.Marshal(fam.src, fam.group)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, rxBufSize)
			var n int
			var p rxPacket
			var rerr error
			round := func() {
				if err := tx.send(b, fam.src, fam.group); err != nil {
					t.Fatal(err)
				}
				n, p, rerr = rx.recv(buf)
			}
			round()
			if rerr != nil || p.src != fam.src || p.dst != fam.group || p.ttl != 255 || !p.ifOK {
				t.Fatalf("received %+v, %v", p, rerr)
			}
			if _, err := Parse(buf[:n], p.src, p.dst); err != nil {
				t.Fatalf("received advert: %v", err)
			}
			if allocs := testing.AllocsPerRun(200, round); allocs != 0 {
				t.Errorf("%v allocations per advert sent and received, want 0", allocs)
			}

			// pending: nothing queued, then one advert queued.
			if _, _, ok, err := rx.pending(buf); ok || err != nil {
				t.Fatalf("pending with nothing queued: %v %v", ok, err)
			}
			if err := tx.send(b, fam.src, fam.group); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(2 * time.Second)
			for {
				n, p, ok, err := rx.pending(buf)
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					if p.src != fam.src || p.ttl != 255 || n != len(b) {
						t.Fatalf("pending read %+v, %d bytes", p, n)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("pending never returned the queued advert")
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
}
