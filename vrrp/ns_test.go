//go:build linux

package vrrp

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"lbd/internal/netlab"
	"lbd/internal/testutil"
)

// Namespace tests: real raw sockets, rtnetlink, GARP and NA between
// network namespaces on a bridge (see internal/netlab).

// nsRouter is an instance running inside a netlab host.
type nsRouter struct {
	h      *netlab.Host
	in     *Instance
	cancel context.CancelFunc
	done   chan error
}

func testLogger(t *testing.T, name string) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", name)
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startRouter runs an instance in h's namespace until the test ends (or
// stop is called).
func startRouter(t *testing.T, h *netlab.Host, cfg Config) *nsRouter {
	t.Helper()
	if cfg.Interface == "" {
		cfg.Interface = h.Link
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t, h.Name)
	}
	p, err := validate(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	sys := newLinuxSystem(p, cfg.Logger)
	sys.ns = h.Handle()
	r := &nsRouter{h: h, in: newInstance(cfg, p, sys), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.in.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop is a graceful shutdown (priority 0 if master).
func (r *nsRouter) stop(t *testing.T) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("%s: Run: %v", r.h.Name, err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("%s: Run did not return", r.h.Name)
	}
}

func (r *nsRouter) state() State { return r.in.Status().State }

type family struct {
	name string
	vip  func(*netlab.LAN) netip.Addr
}

var families = []family{
	{"ipv4", func(l *netlab.LAN) netip.Addr { return l.IPv4(100) }},
	{"ipv6", func(l *netlab.LAN) netip.Addr { return l.IPv6(100) }},
}

// touch makes the client resolve the VIP (a TCP connection attempt: the
// SYN needs the neighbour entry, the port does not matter). A gratuitous
// ARP only updates an existing entry (arp_accept=0).
func touch(t *testing.T, client *netlab.Host, vip netip.Addr) {
	t.Helper()
	c, err := client.Dial("tcp", netip.AddrPortFrom(vip, 9).String(), time.Second)
	if err == nil {
		c.Close()
	}
}

func neighbourIs(t *testing.T, client *netlab.Host, vip netip.Addr, want net.HardwareAddr) func() bool {
	return func() bool {
		mac, _, ok := client.Neighbour(t, vip)
		return ok && mac.String() == want.String()
	}
}

func TestNSElectionTakeoverAndGARP(t *testing.T) {
	netlab.Require(t)
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			lan := netlab.NewLAN(t, "vrrp", 3)
			a, b, client := lan.Hosts[0], lan.Hosts[1], lan.Hosts[2]
			vip := fam.vip(lan)
			cfg := func(prio int) Config {
				return Config{VRID: 51, Priority: prio, AdvertInterval: 100 * time.Millisecond, Preempt: true,
					VIPs: []netip.Addr{vip}, GARPCount: 3, GARPInterval: 50 * time.Millisecond}
			}
			ra := startRouter(t, a, cfg(200))
			rb := startRouter(t, b, cfg(100))
			testutil.Eventually(t, 3*time.Second, "a master", func() bool { return ra.state() == Master })
			testutil.Eventually(t, 3*time.Second, "b backup", func() bool { return rb.state() == Backup })
			if !a.HasAddr(t, vip) || b.HasAddr(t, vip) {
				t.Fatalf("VIP on a: %v, on b: %v; want only on the master", a.HasAddr(t, vip), b.HasAddr(t, vip))
			}
			// b hears a through the real kernel, checksums and all.
			testutil.Eventually(t, time.Second, "adverts received", func() bool { return rb.in.Status().Counters["adverts_received"] >= 3 })
			st := rb.in.Status()
			wantMaster := a.IPv4.Addr()
			if vip.Is6() {
				wantMaster = a.LinkLocal
			}
			if st.MasterAddr != wantMaster {
				t.Fatalf("b sees master %v, want %v", st.MasterAddr, wantMaster)
			}
			for k, v := range st.Counters {
				if strings.HasPrefix(k, "drop_") {
					t.Errorf("b dropped %d packets: %s", v, k)
				}
			}

			touch(t, client, vip)
			testutil.Eventually(t, 2*time.Second, "client resolves VIP to a", neighbourIs(t, client, vip, a.MAC))

			// The master's cable is cut (it keeps the VIP, it cannot know):
			// b takes over after Master_Down_Interval and its GARP/NA moves
			// the client's neighbour entry.
			a.Cut(t)
			took := testutil.Eventually(t, 2*time.Second, "b master", func() bool { return rb.state() == Master })
			t.Logf("takeover after cut: %v (Master_Down_Interval 360ms)", took)
			if !b.HasAddr(t, vip) {
				t.Fatal("new master without the VIP")
			}
			testutil.Eventually(t, time.Second, "client's neighbour entry on b", neighbourIs(t, client, vip, b.MAC))
			testutil.Eventually(t, time.Second, "the whole GARP/NA burst", func() bool { return rb.in.Status().Counters["garp_sent"] >= 3 })

			// Heal: a (priority 200) is master too; b steps down at a's
			// next advert, a answers b's lower advert with an advert and
			// GARP/NA at once.
			a.Heal(t)
			testutil.Eventually(t, time.Second, "b backup after heal", func() bool { return rb.state() == Backup })
			if ra.state() != Master || b.HasAddr(t, vip) {
				t.Fatal("after heal: not exactly one master")
			}
			testutil.Eventually(t, time.Second, "client's entry back on a", neighbourIs(t, client, vip, a.MAC))

			// Graceful stop of the master: priority 0, VIP removed, b takes
			// over after Skew_Time (60ms for priority 100 at 100ms).
			start := time.Now()
			ra.stop(t)
			if a.HasAddr(t, vip) {
				t.Fatal("VIP left after graceful stop")
			}
			testutil.Eventually(t, time.Second, "b master after priority 0", func() bool { return rb.state() == Master })
			t.Logf("takeover after priority 0: %v (Skew_Time 60ms)", time.Since(start))
			if rb.in.Status().Counters["priority_zero_received"] != 1 {
				t.Fatalf("b counters %v", rb.in.Status().Counters)
			}
		})
	}
}

// The bytes on the wire, seen by an independent raw socket in the client
// namespace: IPv4 header TTL 255, protocol 112, to 224.0.0.18 from the
// master's primary address, with a valid v3 checksum.
func TestNSAdvertOnTheWire(t *testing.T) {
	netlab.Require(t)
	lan := netlab.NewLAN(t, "vrrpw", 2)
	a, client := lan.Hosts[0], lan.Hosts[1]
	var rc *ipv4.RawConn
	if err := client.Do(func() error {
		c, err := net.ListenPacket("ip4:112", "0.0.0.0")
		if err != nil {
			return err
		}
		rc, err = ipv4.NewRawConn(c)
		if err != nil {
			return err
		}
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		return rc.JoinGroup(ifi, &net.IPAddr{IP: GroupIPv4.AsSlice()})
	}); err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	startRouter(t, a, Config{VRID: 7, Priority: 255, AdvertInterval: 50 * time.Millisecond,
		VIPs: []netip.Addr{lan.IPv4(100), lan.IPv4(101)}})
	rc.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 1500)
	h, payload, _, err := rc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if h.TTL != 255 || h.Protocol != IPProto || !h.Dst.Equal(GroupIPv4.AsSlice()) || !h.Src.Equal(a.IPv4.Addr().AsSlice()) {
		t.Fatalf("IP header %v", h)
	}
	adv, err := Parse(payload, a.IPv4.Addr(), GroupIPv4)
	if err != nil {
		t.Fatal(err)
	}
	if adv.VRID != 7 || adv.Priority != 255 || adv.Interval != 50*time.Millisecond || len(adv.Addrs) != 2 {
		t.Fatalf("advert %+v", adv)
	}
}

func TestNSStaleVIPCleanedAndLinkFault(t *testing.T) {
	netlab.Require(t)
	lan := netlab.NewLAN(t, "vrrpf", 1)
	a := lan.Hosts[0]
	vip := lan.IPv4(100)
	// Left by a crashed run: removed at start, before anyone is master.
	a.Exec("ip", "addr", "add", vip.String()+"/32", "dev", "eth0")
	// An operator's address with a real prefix is never touched.
	other := lan.IPv4(101)
	a.Exec("ip", "addr", "add", other.String()+"/24", "dev", "eth0")
	r := startRouter(t, a, Config{VRID: 9, Priority: 100, AdvertInterval: time.Second,
		VIPs: []netip.Addr{vip, other}, Preempt: true})
	testutil.Eventually(t, 2*time.Second, "backup", func() bool { return r.state() == Backup })
	if a.HasAddr(t, vip) {
		t.Fatal("stale VIP not cleaned at start")
	}
	if !a.HasAddr(t, other) {
		t.Fatal("operator's address removed")
	}
	a.LinkDown(t)
	testutil.Eventually(t, 2*time.Second, "fault", func() bool { return r.state() == Fault })
	if got := r.in.Status().Reason; got != "interface eth0 down" {
		t.Fatalf("reason %q", got)
	}
	a.LinkUp(t)
	testutil.Eventually(t, 2*time.Second, "backup again", func() bool { return r.state() == Backup })
	testutil.Eventually(t, 5*time.Second, "master (no peer)", func() bool { return r.state() == Master })
	if !a.HasAddr(t, vip) {
		t.Fatal("master without VIP")
	}
}

func TestNSUnicastPeers(t *testing.T) {
	netlab.Require(t)
	lan := netlab.NewLAN(t, "vrrpu", 2)
	a, b := lan.Hosts[0], lan.Hosts[1]
	vip := lan.IPv4(100)
	cfg := func(prio int, peer *netlab.Host) Config {
		return Config{VRID: 51, Priority: prio, AdvertInterval: 100 * time.Millisecond, Preempt: true,
			VIPs: []netip.Addr{vip}, UnicastPeers: []netip.Addr{peer.IPv4.Addr()}}
	}
	ra := startRouter(t, a, cfg(200, b))
	rb := startRouter(t, b, cfg(100, a))
	testutil.Eventually(t, 3*time.Second, "a master", func() bool { return ra.state() == Master })
	testutil.Eventually(t, time.Second, "b hears a", func() bool { return rb.in.Status().Counters["adverts_received"] >= 3 })
	if rb.state() != Backup || b.HasAddr(t, vip) {
		t.Fatal("b is not backup")
	}
	ra.stop(t)
	testutil.Eventually(t, time.Second, "b master", func() bool { return rb.state() == Master })
}

// An interface that does not exist yet is a Fault, not an error: the
// instance starts once it appears.
func TestNSInterfaceAppearsLater(t *testing.T) {
	netlab.Require(t)
	lan := netlab.NewLAN(t, "vrrpl", 1)
	h := lan.Hosts[0]
	r := startRouter(t, h, Config{Interface: "eth9", VRID: 9, Priority: 100, AdvertInterval: 100 * time.Millisecond,
		VIPs: []netip.Addr{netip.MustParseAddr("10.99.0.100")}, Preempt: true})
	testutil.Eventually(t, 2*time.Second, "fault", func() bool { return r.state() == Fault })
	h.Exec("ip", "link", "add", "eth9", "type", "veth", "peer", "name", "eth9p")
	h.Exec("ip", "addr", "add", "10.99.0.1/24", "dev", "eth9")
	h.Exec("ip", "link", "set", "eth9p", "up")
	h.Exec("ip", "link", "set", "eth9", "up")
	testutil.Eventually(t, 5*time.Second, "master on eth9", func() bool { return r.state() == Master })
	if out := h.Exec("ip", "addr", "show", "dev", "eth9"); !strings.Contains(out, "10.99.0.100/32") {
		t.Fatalf("VIP not on eth9:\n%s", out)
	}
}
