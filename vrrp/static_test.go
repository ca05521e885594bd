//go:build linux

package vrrp

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"lbd/internal/netlab"
)

// A single director holds its VIPs without an election: they are added and
// reachable from a neighbour, dropped ones are removed, and an operator's
// address with a real prefix is never touched.
func TestNSStaticVIPs(t *testing.T) {
	netlab.Require(t)
	lan := netlab.NewLAN(t, "vrrps", 2)
	a, client := lan.Hosts[0], lan.Hosts[1]
	vip1, vip2, other := lan.IPv4(100), lan.IPv4(101), lan.IPv4(102)
	v6 := lan.IPv6(100)
	a.Exec("ip", "addr", "add", other.String()+"/24", "dev", "eth0")

	var s *Static
	set := func(vips ...netip.Addr) {
		t.Helper()
		if err := a.Do(func() error { return s.Set(vips) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Do(func() (err error) { s, err = OpenStatic("eth0", nil); return err }); err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	set(vip1, vip2, v6)
	for _, v := range []netip.Addr{vip1, vip2, v6} {
		if !a.HasAddr(t, v) {
			t.Fatalf("%v not on eth0", v)
		}
	}
	ln, err := a.Listen("tcp", ":8080")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	for _, v := range []netip.Addr{vip1, v6} {
		c, err := client.Dial("tcp", net.JoinHostPort(v.String(), "8080"), 2*time.Second)
		if err != nil {
			t.Fatalf("client cannot reach %v: %v", v, err)
		}
		c.Close()
	}

	set(vip1) // reload dropped vip2 and the IPv6 VIP
	if a.HasAddr(t, vip2) || a.HasAddr(t, v6) || !a.HasAddr(t, vip1) {
		t.Fatal("dropped VIPs still held, or kept one lost")
	}
	set()
	if a.HasAddr(t, vip1) {
		t.Fatal("VIP left after an empty set")
	}
	if !a.HasAddr(t, other) {
		t.Fatal("operator's /24 address removed")
	}
}

func TestOpenStaticMissingInterface(t *testing.T) {
	netlab.Require(t)
	ns := netlab.NewNS(t, "vrrpsm")
	err := ns.Do(func() error { _, err := OpenStatic("nope0", nil); return err })
	if err == nil {
		t.Fatal("no error for a missing interface")
	}
}
