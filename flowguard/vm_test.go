//go:build vm

package flowguard

// The kernel-VM test: the guards beside real IPVS (make test-vm). It proves
// the hook ordering the package relies on: IPVS takes the packets of the
// connections it knows before the quiet chain sees anything, so quiet only
// silences what IPVS left to the local stack; the hold chain sees a SYN
// before IPVS can schedule it.

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	"lbd/internal/netlab"
	"lbd/internal/vmtest"
)

// natLab is a client and a director on a front LAN and one real server
// behind the director, which forwards a virtual service VIP:80 to it in
// NAT mode (IPv4 and IPv6).
type natLab struct {
	client   *netlab.Host
	director *netlab.Host
	rs       *netlab.NS
	vip4     netip.Addr
	vip6     netip.Addr
}

func newNATLab(t *testing.T) *natLab {
	t.Helper()
	vmtest.Require(t)
	front := netlab.NewLAN(t, "fgvm", 2)
	l := &natLab{client: front.Hosts[0], director: front.Hosts[1], vip4: front.IPv4(100), vip6: front.IPv6(100)}
	d := l.director
	d.Exec("ip", "addr", "add", l.vip4.String()+"/32", "dev", d.Link)
	d.Exec("ip", "addr", "add", l.vip6.String()+"/128", "dev", d.Link, "nodad")
	d.Exec("sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")

	l.rs = netlab.NewNS(t, "fgvm-rs")
	l.rs.Exec("sysctl", "-q", "-w", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	d.Exec("ip", "link", "add", "eth1", "type", "veth", "peer", "name", "eth0", "netns", l.rs.Name)
	d.Exec("ip", "link", "set", "eth1", "up")
	d.Exec("ip", "addr", "add", "10.78.0.1/24", "dev", "eth1")
	d.Exec("ip", "addr", "add", "fd00:78::1/64", "dev", "eth1", "nodad")
	l.rs.Exec("ip", "link", "set", "eth0", "up")
	l.rs.Exec("ip", "addr", "add", "10.78.0.11/24", "dev", "eth0")
	l.rs.Exec("ip", "addr", "add", "fd00:78::b/64", "dev", "eth0", "nodad")
	l.rs.Exec("ip", "route", "add", "default", "via", "10.78.0.1")
	l.rs.Exec("ip", "-6", "route", "add", "default", "via", "fd00:78::1")
	serveEcho(t, l.rs, ":80")

	// The director's IPVS table lives in its namespace and goes with it;
	// it is emptied anyway in case the test stops half-way.
	t.Cleanup(func() { _, _ = d.Run("ipvsadm", "-C") })
	for _, s := range []struct{ vip, rs string }{
		{l.vip4.String() + ":80", "10.78.0.11:80"},
		{"[" + l.vip6.String() + "]:80", "[fd00:78::b]:80"},
	} {
		d.Exec("ipvsadm", "-A", "-t", s.vip, "-s", "rr")
		d.Exec("ipvsadm", "-a", "-t", s.vip, "-r", s.rs, "-m")
	}
	return l
}

func (l *natLab) vips() []netip.Addr { return []netip.Addr{l.vip4, l.vip6} }

func TestVMGuardsBesideIPVS(t *testing.T) {
	l := newNATLab(t)
	g := openIn(t, l.director.NS)
	probers := map[netip.Addr]*prober{
		l.vip4: newProber(t, l.client.NS, l.client.IPv4.Addr()),
		l.vip6: newProber(t, l.client.NS, l.client.IPv6.Addr()),
	}
	if got := tableIn(t, l.director.NS); got != wantTable {
		t.Fatalf("after Open:\n got %s\nwant %s", got, wantTable)
	}
	svc := func(vip netip.Addr) netip.AddrPort { return netip.AddrPortFrom(vip, 80) }
	// VIP:port, a VIP with every port and a fwmark: every kind of set.
	targets := []Target{{Addr: l.vip4, Port: 80}, {Addr: l.vip6}, {Fwmark: 7}}

	// Through IPVS, before any guard: connections work, and a segment of a
	// connection IPVS does not know gets a RST from the director's own
	// stack. That RST is what kills a connection after a takeover.
	established := map[netip.Addr]net.Conn{}
	for _, vip := range l.vips() {
		c, err := dialEcho(t, l.client.NS, svc(vip).String())
		if err != nil {
			t.Fatalf("through IPVS without a guard: %v", err)
		}
		established[vip] = c
		if !probers[vip].resets(svc(vip), answerWait) {
			t.Fatalf("without a guard: a bare ACK to %v got no RST; the test cannot tell quiet from anything else", svc(vip))
		}
	}

	// Quiet: IPVS's connections go on, new ones too, and the unknown
	// segment is dropped silently, by the quiet chain (its counter says
	// so: exactly one drop per probe, none for the IPVS traffic).
	if err := g.SetQuiet(targets); err != nil {
		t.Fatal(err)
	}
	for i, vip := range l.vips() {
		for j := range 3 {
			if err := echo(established[vip], fmt.Sprintf("quiet %d", j), answerWait); err != nil {
				t.Errorf("quiet on: connection to %v established through IPVS: %v", svc(vip), err)
			}
		}
		if _, err := dialEcho(t, l.client.NS, svc(vip).String()); err != nil {
			t.Errorf("quiet on: new connection through IPVS: %v", err)
		}
		if q, _ := counters(t, g); q != uint64(i) {
			t.Errorf("quiet on, after IPVS traffic to %v: quiet counter %d, want %d: IPVS must take its packets before the quiet chain", svc(vip), q, i)
		}
		p := probers[vip]
		sport := p.send(svc(vip), flagACK)
		if flags, ok := p.answer(svc(vip), sport, silence); ok {
			t.Errorf("quiet on: a bare ACK to %v was answered (flags %#x)", svc(vip), flags)
		}
		if q, _ := counters(t, g); q != uint64(i+1) {
			t.Errorf("quiet on, after a bare ACK to %v: quiet counter %d, want %d", svc(vip), q, i+1)
		}
	}
	if err := g.SetQuiet(nil); err != nil {
		t.Fatal(err)
	}
	for _, vip := range l.vips() {
		if !probers[vip].resets(svc(vip), answerWait) {
			t.Errorf("quiet off again: a bare ACK to %v got no RST", svc(vip))
		}
	}

	// Hold: a SYN never reaches IPVS, so no connection is scheduled, while
	// the established ones go on.
	if err := g.SetHold(targets); err != nil {
		t.Fatal(err)
	}
	for _, vip := range l.vips() {
		c, err := l.client.Dial("tcp", svc(vip).String(), silence)
		if err == nil {
			c.Close()
			t.Errorf("hold on: connect to %v through IPVS succeeded", svc(vip))
		} else if !isTimeout(err) {
			t.Errorf("hold on: connect to %v: %v, want a timeout", svc(vip), err)
		}
		if err := echo(established[vip], "hold", answerWait); err != nil {
			t.Errorf("hold on: connection to %v established through IPVS: %v", svc(vip), err)
		}
	}
	if _, h := counters(t, g); h < 2 {
		t.Errorf("hold counter %d after two connects held off, want at least 2", h)
	}
	if err := g.SetHold(nil); err != nil {
		t.Fatal(err)
	}
	for _, vip := range l.vips() {
		if _, err := dialEcho(t, l.client.NS, svc(vip).String()); err != nil {
			t.Errorf("hold off again: %v", err)
		}
	}
	if t.Failed() {
		out, _ := l.director.Run("ipvsadm", "-Lnc")
		t.Logf("director's IPVS connections:\n%s", out)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if got := tableIn(t, l.director.NS); got != "" {
		t.Errorf("after Close: %s", got)
	}
}
