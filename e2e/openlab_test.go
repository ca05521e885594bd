//go:build vm && demo

package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"lbd/internal/netlab"
	"lbd/internal/vmtest"
)

// The open lab: after the tour (TestDemo) or on its own (TestLab), with
// LBD_LAB set, the two directors keep running with their consoles
// reachable from the VM's root namespace on labGuestPorts, where
// scripts/vm/run --forward delivers the host's connections. The host side
// (e2e/lab) starts the VM, reads the ready line and drives it; the VM
// stays up until the host stops it or LBD_LAB_FOR passes.
//
// The ready line, one line on stdout:
//
//	LBD-LAB-READY password=P token.lvs1=T1 token.lvs2=T2 vip=A rs=rs1,rs2
var labGuestPorts = []int{3636, 3637}

// TestLab is the open lab without the tour: what the host's browser test
// and `make screenshots` boot.
func TestLab(t *testing.T) {
	l := newDRLabN(t, 2)
	openLab(t, l)
}

// labTour ends TestDemo: with LBD_LAB set the lab stays open.
func labTour(t *testing.T, l *lab, running ...*daemon) {
	if os.Getenv("LBD_LAB") == "" {
		return
	}
	// The tour left lvs1 killed and cut off, lvs2 master. The open lab
	// starts both anew with their own credentials.
	for _, d := range running {
		if err := d.Stop(); err != nil {
			t.Logf("%s: %v", d.Name, err)
		}
	}
	l.directors[0].Heal(t)
	openLab(t, l)
}

// openLab starts lbd on both directors of l with a generated password and
// one admin token each (made with `lbd token`), forwards labGuestPorts to
// their consoles, keeps a little traffic going through the VIP, prints the
// ready line and waits.
func openLab(t *testing.T, l *lab) {
	t.Helper()
	stay := 8 * time.Hour
	if v := os.Getenv("LBD_LAB_FOR"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("LBD_LAB_FOR=%q: %v", v, err)
		}
		stay = d
	}
	bin := vmtest.Binary(t, "lbd")
	pw := labSecret(9)
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	// Calmer timers than the tour's, which measure failover: a lab that
	// stays open shares one emulated CPU with two consoles a browser
	// keeps busy, and must not flap.
	web := vs{name: "web", port: 80, sched: "rr", rs: l.rsAll(),
		hc: "  type = \"http\"\n  interval = \"2s\"\n  timeout = \"1s\"\n  rise = 2\n  fall = 3"}
	nodes := []string{"lvs1", "lvs2"}
	prio := []int{150, 100}
	paths := make([]string, 2)
	tokens := make([]string, 2)
	for i, h := range l.directors[:2] {
		vrrp := fmt.Sprintf("[vrrp]\nvrid = 51\npriority = %d\nadvert_interval = \"1s\"\n", prio[i])
		console := fmt.Sprintf("[console]\npassword_hash = %q\n\n", hash)
		conf := hvConfig(l, fmt.Sprintf("node_name = %q\n", nodes[i]), console+vrrp, hvService{vs: web})
		paths[i] = filepath.Join(t.TempDir(), "lbd.toml")
		if err := os.WriteFile(paths[i], []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		// The operator's way to an API token.
		out, err := h.Cmd(bin, "token", "-config", paths[i], "-name", "lab").Output()
		if err != nil {
			t.Fatalf("lbd token for %s: %v", nodes[i], err)
		}
		tokens[i] = strings.TrimSpace(string(out))
	}
	for i := range paths {
		labAppendPeer(t, paths[i], nodes[1-i], l.directors[1-i], tokens[1-i])
	}
	ds := make([]*daemon, 2)
	for i, h := range l.directors[:2] {
		ds[i] = &daemon{config: paths[i]}
		ds[i].Proc = vmtest.Start(t, "lbd in "+h.NS.Name, h.NS.Cmd(bin, "-config", paths[i]))
	}
	for i, h := range l.directors[:2] {
		l.waitRulesIn(h.NS, ds[i], l.rules(web), programTimeout)
	}
	l.waitMaster(l.directors[0], l.directors[1])
	l.waitServedVia(l.directors[0])
	for i, h := range l.directors[:2] {
		labForward(t, labGuestPorts[i], h.NS)
	}
	labTraffic(t, l, stay)
	var names []string
	for _, r := range l.rs {
		names = append(names, r.name)
	}
	fmt.Printf("LBD-LAB-READY password=%s token.lvs1=%s token.lvs2=%s vip=%s rs=%s\n",
		pw, tokens[0], tokens[1], l.vip, strings.Join(names, ","))
	// The host stops the VM; this only bounds a lab nobody stops.
	deadline := time.Now().Add(stay)
	for time.Now().Before(deadline) {
		for i, d := range ds {
			if d.Exited() {
				t.Fatalf("lbd on %s exited:\n%s", nodes[i], strings.Join(d.Lines(), "\n"))
			}
		}
		time.Sleep(time.Second)
	}
}

// labAppendPeer names the other director's API in [peer]: the pair view
// and "save on both".
func labAppendPeer(t *testing.T, path, name string, peer *netlab.Host, token string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintf(f, "\n[peer]\nname = %q\nurl = \"http://%s:3636\"\ntoken = %q\n", name, peer.IPv4.Addr(), token)
}

func labSecret(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// labForward accepts connections on port in the VM's root namespace (where
// qemu's user network delivers the host's) and joins each to the console
// of the lbd in ns.
func labForward(t *testing.T, port int, ns *netlab.NS) {
	t.Helper()
	ln, err := net.Listen("tcp4", fmt.Sprintf(":%d", port))
	if err != nil {
		t.Fatalf("forward :%d: %v", port, err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				up, err := ns.Dial("tcp4", "127.0.0.1:3636", 5*time.Second)
				if err != nil {
					return
				}
				defer up.Close()
				done := make(chan struct{}, 2)
				go func() { io.Copy(up, c); up.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
				go func() { io.Copy(c, up); c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
				<-done
				<-done
			}()
		}
	}()
}

// labTraffic makes requests through the VIP from the client, between
// about 2 and 8 a second in a two-minute swell, so the consoles' graphs
// move and have a shape; bounded by count and by stay.
func labTraffic(t *testing.T, l *lab, stay time.Duration) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		began := time.Now()
		end := began.Add(stay)
		for i := 0; i < 8*int(stay/time.Second)+1 && time.Now().Before(end); i++ {
			phase := 2 * math.Pi * time.Since(began).Seconds() / 120
			pause := time.Duration(float64(125*time.Millisecond) * (2.5 + 1.5*math.Cos(phase)))
			select {
			case <-stop:
				return
			case <-time.After(pause):
			}
			l.get(80)
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}
