//go:build linux

package netlab

import (
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// reach reports whether a TCP connection from a to addr:port succeeds.
func reach(a *Host, addr netip.Addr, port uint16) error {
	c, err := a.Dial("tcp", netip.AddrPortFrom(addr, port).String(), time.Second)
	if err == nil {
		c.Close()
	}
	return err
}

func TestLANReachabilityCutHeal(t *testing.T) {
	Require(t)
	lan := NewLAN(t, "nltest", 2)
	a, b := lan.Hosts[0], lan.Hosts[1]
	ln, err := b.Listen("tcp", ":7")
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
	for _, addr := range []netip.Addr{b.IPv4.Addr(), b.IPv6.Addr(), b.LinkLocal.WithZone("eth0")} {
		if err := reach(a, addr, 7); err != nil {
			t.Fatalf("%v unreachable: %v", addr, err)
		}
	}
	if mac, _, ok := a.Neighbour(t, b.IPv4.Addr()); !ok || mac.String() != b.MAC.String() {
		t.Fatalf("neighbour of %v = %v, %v; want %v", b.IPv4.Addr(), mac, ok, b.MAC)
	}
	if !a.HasAddr(t, a.IPv4.Addr()) || !a.HasAddr(t, a.IPv6.Addr()) {
		t.Fatal("HasAddr misses the host's own addresses")
	}

	b.Cut(t)
	a.Exec("ip", "neigh", "flush", "dev", "eth0")
	if err := reach(a, b.IPv4.Addr(), 7); err == nil {
		t.Fatal("connection crossed a cut link")
	}
	if out := b.Exec("ip", "-br", "link", "show", "eth0"); !strings.Contains(out, "UP") {
		t.Fatalf("cut host's link should stay up: %s", out)
	}
	b.Heal(t)
	// The neighbour entry failed while the cable was cut; the first SYN
	// after the heal may wait for a fresh resolution, so allow a few tries.
	err = nil
	for try := 0; try < 5; try++ {
		if err = reach(a, b.IPv4.Addr(), 7); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("after heal: %v", err)
	}
}

func TestDoRunsInNamespace(t *testing.T) {
	Require(t)
	ns := NewNS(t, "nltest")
	var names []string
	if err := ns.Do(func() error {
		ifs, err := net.Interfaces()
		for _, i := range ifs {
			names = append(names, i.Name)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0] != "lo" {
		t.Fatalf("interfaces inside a fresh namespace = %v, want [lo]", names)
	}
}

func TestCleanupKillsProcesses(t *testing.T) {
	Require(t, "sleep")
	var pid int
	t.Run("inner", func(t *testing.T) {
		ns := NewNS(t, "nltest")
		c := ns.Cmd("sleep", "60")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		pid = c.Process.Pid
		go c.Wait() // reap, so the killed child does not linger as a zombie
		// `ip netns exec` enters the namespace before exec'ing sleep.
		deadline := time.Now().Add(2 * time.Second)
		for len(ns.pids()) == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if len(ns.pids()) == 0 {
			t.Fatal("started process not seen in namespace")
		}
	})
	deadline := time.Now().Add(2 * time.Second)
	for processAlive(pid) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if processAlive(pid) {
		t.Fatalf("process %d survived namespace cleanup", pid)
	}
}

func processAlive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func TestBuildBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	p := BuildBinary(t, "./testdata/hello")
	if p2 := BuildBinary(t, "./testdata/hello"); p2 != p {
		t.Fatalf("second build path %q != %q", p2, p)
	}
	out, err := exec.Command(p).Output()
	if err != nil || string(out) != "hello\n" {
		t.Fatalf("built binary said %q, %v", out, err)
	}
}
