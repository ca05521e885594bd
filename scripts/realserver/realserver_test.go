//go:build linux

// The tests prove scripts/realserver.sh on a real kernel, in
// network namespaces: a real server and a peer on one Ethernet segment. It
// runs with the host tests and needs root (CI runs it as root).
package realserver_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"

	"lbd/internal/netlab"
)

var (
	vip4 = netip.MustParseAddr("10.77.0.100") // on the LAN's subnet: the worst case for ARP
	vip6 = netip.MustParseAddr("fd00:77::64")
)

func script(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("../realserver.sh")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

type scriptResult struct {
	code   int
	stdout string
	stderr string
}

// run runs realserver.sh inside ns with args.
func run(t *testing.T, ns *netlab.NS, args ...string) scriptResult {
	t.Helper()
	cmd := ns.Cmd(script(t), args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("realserver.sh %v: %v", args, err)
	}
	t.Logf("realserver.sh %s -> %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
	return scriptResult{code, out.String(), errb.String()}
}

func (r scriptResult) want(t *testing.T, code int) scriptResult {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	return r
}

func sysctl(t *testing.T, ns *netlab.NS, dev, key string) string {
	t.Helper()
	return strings.TrimSpace(ns.Exec("cat", "/proc/sys/net/ipv4/conf/"+dev+"/"+key))
}

func setSysctl(t *testing.T, ns *netlab.NS, dev, key, val string) {
	t.Helper()
	ns.Exec("sysctl", "-q", "-w", "net.ipv4.conf."+dev+"."+key+"="+val)
}

// arpSysctls is the four values the script manages, "all" then eth0.
func arpSysctls(t *testing.T, ns *netlab.NS) string {
	return fmt.Sprintf("all %s/%s eth0 %s/%s",
		sysctl(t, ns, "all", "arp_ignore"), sysctl(t, ns, "all", "arp_announce"),
		sysctl(t, ns, "eth0", "arp_ignore"), sysctl(t, ns, "eth0", "arp_announce"))
}

func loAddrs(t *testing.T, ns *netlab.NS) string {
	t.Helper()
	var addrs []string
	for _, l := range strings.Split(ns.Exec("ip", "-o", "addr", "show", "dev", "lo"), "\n") {
		if f := strings.Fields(l); len(f) >= 4 {
			addrs = append(addrs, f[3])
		}
	}
	sort.Strings(addrs)
	return strings.Join(addrs, " ")
}

// arpProbe asks for ip from h's eth0 with raw ARP requests (three, 300ms
// apart) and returns the MAC of the first reply, or ok=false.
func arpProbe(t *testing.T, h *netlab.Host, ip netip.Addr) (mac net.HardwareAddr, ok bool) {
	t.Helper()
	// Everything runs on the namespace's thread: interface names and
	// indexes only mean something there.
	err := h.Do(func() error {
		ifi, err := net.InterfaceByName(h.Link)
		if err != nil {
			return err
		}
		c, err := arp.Dial(ifi)
		if err != nil {
			return err
		}
		defer c.Close()
		for attempt := 0; attempt < 3; attempt++ {
			if err := c.Request(ip); err != nil {
				return fmt.Errorf("arp request: %w", err)
			}
			_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			for {
				p, _, err := c.Read()
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				if err != nil {
					return fmt.Errorf("arp read: %w", err)
				}
				if p.Operation == arp.OperationReply && p.SenderIP == ip {
					mac, ok = p.SenderHardwareAddr, true
					return nil
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("arp probe from %s: %v", h.Name, err)
	}
	return mac, ok
}

// ndpProbe sends neighbour solicitations for ip from h's eth0 (three, 300ms
// apart) and returns the MAC in the first advertisement for it, or ok=false.
func ndpProbe(t *testing.T, h *netlab.Host, ip netip.Addr) (mac net.HardwareAddr, ok bool) {
	t.Helper()
	err := h.Do(func() error {
		ifi, err := net.InterfaceByName(h.Link)
		if err != nil {
			return err
		}
		c, _, err := ndp.Listen(ifi, ndp.LinkLocal)
		if err != nil {
			return err
		}
		defer c.Close()
		snm, err := ndp.SolicitedNodeMulticast(ip)
		if err != nil {
			return err
		}
		ns := &ndp.NeighborSolicitation{
			TargetAddress: ip,
			Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: ifi.HardwareAddr}},
		}
		for attempt := 0; attempt < 3; attempt++ {
			if err := c.WriteTo(ns, nil, snm); err != nil {
				return fmt.Errorf("ndp send: %w", err)
			}
			deadline := time.Now().Add(300 * time.Millisecond)
			_ = c.SetReadDeadline(deadline)
			for {
				m, _, _, err := c.ReadFrom()
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				if err != nil {
					if time.Now().After(deadline) {
						break
					}
					continue // an ICMPv6 message that is not NDP
				}
				na, isNA := m.(*ndp.NeighborAdvertisement)
				if !isNA || na.TargetAddress != ip {
					continue
				}
				ok = true
				for _, o := range na.Options {
					if lla, isLLA := o.(*ndp.LinkLayerAddress); isLLA && lla.Direction == ndp.Target {
						mac = lla.Addr
					}
				}
				return nil
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ndp probe from %s: %v", h.Name, err)
	}
	return mac, ok
}

// echoServer listens on addr:port in ns and answers each line with "pong".
func echoServer(t *testing.T, ns *netlab.NS, addr netip.Addr, port int) {
	t.Helper()
	l, err := ns.Listen("tcp", netip.AddrPortFrom(addr, uint16(port)).String())
	if err != nil {
		t.Fatalf("listen on %v:%d in %s: %v", addr, port, ns.Name, err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := bufio.NewReader(c).ReadString('\n'); err == nil {
					_, _ = io.WriteString(c, "pong\n")
				}
			}()
		}
	}()
}

// talk connects from ns (from local, when valid) to dst and expects "pong".
func talk(t *testing.T, ns *netlab.NS, local netip.Addr, dst netip.AddrPort) error {
	t.Helper()
	var c net.Conn
	err := ns.Do(func() (err error) {
		d := net.Dialer{Timeout: 3 * time.Second}
		if local.IsValid() {
			d.LocalAddr = &net.TCPAddr{IP: local.AsSlice()}
		}
		c, err = d.Dial("tcp", dst.String())
		return err
	})
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "pong\n" {
		return fmt.Errorf("answer %q", line)
	}
	return nil
}

func flushNeigh(t *testing.T, hs ...*netlab.Host) {
	for _, h := range hs {
		h.Exec("ip", "neigh", "flush", "dev", h.Link)
	}
}

// lab is a real server and a peer on one segment; the peer routes the VIPs
// via the real server, as a director does in direct routing.
func lab(t *testing.T) (rs, peer *netlab.Host, root string) {
	netlab.Require(t, "bash", "sysctl")
	lan := netlab.NewLAN(t, "rsrv", 2)
	rs, peer = lan.Hosts[0], lan.Hosts[1]
	// The default route is how the script finds the outward interface.
	rs.Exec("ip", "route", "add", "default", "via", peer.IPv4.Addr().String())
	peer.Exec("ip", "route", "add", vip4.String()+"/32", "via", rs.IPv4.Addr().String())
	peer.Exec("ip", "-6", "route", "add", vip6.String()+"/128", "via", rs.IPv6.Addr().String())
	return rs, peer, t.TempDir()
}

func TestUpSuppressesARPAndAcceptsTraffic(t *testing.T) {
	rs, peer, root := lab(t)

	// Control: a VIP on lo WITHOUT the script is answered by ARP, and the
	// real server's own ARP requests from the VIP teach the peer VIP -> MAC.
	// This proves the probes below can see what they look for.
	if got := arpSysctls(t, rs.NS); got != "all 0/0 eth0 0/0" {
		t.Fatalf("namespace does not start with kernel defaults: %s", got)
	}
	rs.Exec("ip", "addr", "add", vip4.String()+"/32", "dev", "lo")
	if mac, ok := arpProbe(t, peer, vip4); !ok || mac.String() != rs.MAC.String() {
		t.Fatalf("control: no ARP reply for a VIP on lo with arp_ignore=0 (got %v %v): the probe is broken", mac, ok)
	}
	echoServer(t, peer.NS, peer.IPv4.Addr(), 9000)
	flushNeigh(t, rs, peer)
	if err := talk(t, rs.NS, vip4, netip.AddrPortFrom(peer.IPv4.Addr(), 9000)); err != nil {
		t.Fatalf("control: rs -> peer from the VIP: %v", err)
	}
	if _, _, ok := peer.Neighbour(t, vip4); !ok {
		t.Fatal("control: with arp_announce=0 the peer should have learnt the VIP from rs's ARP request")
	}
	rs.Exec("ip", "addr", "del", vip4.String()+"/32", "dev", "lo")
	flushNeigh(t, rs, peer)

	r := run(t, rs.NS, "--root", root, "up", vip4.String(), vip6.String()).want(t, 0)
	if got := arpSysctls(t, rs.NS); got != "all 1/2 eth0 1/2" {
		t.Errorf("sysctls after up: %s, want all 1/2 eth0 1/2 (eth0 found from the default route)", got)
	}
	if got, want := loAddrs(t, rs.NS), "10.77.0.100/32 127.0.0.1/8 ::1/128 fd00:77::64/128"; got != want {
		t.Errorf("lo after up: %s, want %s", got, want)
	}
	if !strings.Contains(r.stdout, "10.77.0.100/32 added to lo") {
		t.Errorf("up output: %s", r.stdout)
	}
	if out := rs.Exec("ip", "-o", "-6", "addr", "show", "dev", "lo", "to", vip6.String()+"/128"); !strings.Contains(out, "nodad") {
		t.Errorf("IPv6 VIP without nodad: %s", out)
	}

	// No ARP reply for the VIP; the real server's own address still answers.
	if mac, ok := arpProbe(t, peer, vip4); ok {
		t.Errorf("real server answered ARP for the VIP with %v", mac)
	}
	if _, ok := arpProbe(t, peer, rs.IPv4.Addr()); !ok {
		t.Error("no ARP reply for the real server's own address: probe broken")
	}
	// IPv6: no neighbour advertisement for the VIP; the real address answers.
	if mac, ok := ndpProbe(t, peer, vip6); ok {
		t.Errorf("real server answered neighbour solicitation for the IPv6 VIP with %v", mac)
	}
	if _, ok := ndpProbe(t, peer, rs.IPv6.Addr()); !ok {
		t.Error("no neighbour advertisement for the real server's own IPv6 address: probe broken")
	}

	// Traffic to the VIP, routed to the real server's MAC, is accepted.
	echoServer(t, rs.NS, vip4, 8080)
	echoServer(t, rs.NS, vip6, 8080)
	if err := talk(t, peer.NS, netip.Addr{}, netip.AddrPortFrom(vip4, 8080)); err != nil {
		t.Errorf("peer -> VIP %v: %v", vip4, err)
	}
	if err := talk(t, peer.NS, netip.Addr{}, netip.AddrPortFrom(vip6, 8080)); err != nil {
		t.Errorf("peer -> VIP %v: %v", vip6, err)
	}
	// arp_announce=2: the real server sending from the VIP does not teach
	// the peer VIP -> MAC (the control above showed it does without).
	flushNeigh(t, rs, peer)
	if err := talk(t, rs.NS, vip4, netip.AddrPortFrom(peer.IPv4.Addr(), 9000)); err != nil {
		t.Fatalf("rs -> peer from the VIP: %v", err)
	}
	if mac, _, ok := peer.Neighbour(t, vip4); ok {
		t.Errorf("peer learnt VIP -> %v from rs's ARP request: arp_announce not in effect", mac)
	}
	// The IPv6 counterpart needs no sysctl: rs's neighbour solicitation
	// for the peer does not come from the VIP, so the peer learns nothing.
	echoServer(t, peer.NS, peer.IPv6.Addr(), 9000)
	flushNeigh(t, rs, peer)
	if err := talk(t, rs.NS, vip6, netip.AddrPortFrom(peer.IPv6.Addr(), 9000)); err != nil {
		t.Fatalf("rs -> peer from the IPv6 VIP: %v", err)
	}
	if mac, _, ok := peer.Neighbour(t, vip6); ok {
		t.Errorf("peer learnt IPv6 VIP -> %v from rs's neighbour solicitation", mac)
	}

	run(t, rs.NS, "--root", root, "status").want(t, 0)
	run(t, rs.NS, "status", vip4.String(), vip6.String()).want(t, 0)

	// down restores: VIPs gone, sysctls back to what they were.
	run(t, rs.NS, "--root", root, "down", vip4.String(), vip6.String()).want(t, 0)
	if got := loAddrs(t, rs.NS); got != "127.0.0.1/8 ::1/128" {
		t.Errorf("lo after down: %s", got)
	}
	if got := arpSysctls(t, rs.NS); got != "all 0/0 eth0 0/0" {
		t.Errorf("sysctls after down: %s, want all 0/0 eth0 0/0", got)
	}
	r = run(t, rs.NS, "--root", root, "status", vip4.String())
	r.want(t, 1)
	if !strings.Contains(r.stdout, "10.77.0.100: NOT on lo") {
		t.Errorf("status after down: %s", r.stdout)
	}
	// And it answers ARP again only if someone puts the VIP on an
	// interface: with nothing on lo there is nothing to answer for.
	if _, ok := arpProbe(t, peer, vip4); ok {
		t.Error("ARP reply for a VIP that is gone")
	}
}

// snapshot is everything up may change: addresses, sysctls, files.
func snapshot(t *testing.T, ns *netlab.NS, root string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintln(&b, loAddrs(t, ns))
	fmt.Fprintln(&b, arpSysctls(t, ns))
	_ = filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		data := ""
		if fi.Mode().IsRegular() {
			d, _ := os.ReadFile(p)
			data = string(d)
		} else if fi.Mode()&os.ModeSymlink != 0 {
			data, _ = os.Readlink(p)
		}
		fmt.Fprintf(&b, "%s %v %s %q\n", p, fi.Mode(), fi.ModTime().Format(time.RFC3339Nano), data)
		return nil
	})
	return b.String()
}

func TestUpTwiceChangesNothing(t *testing.T) {
	rs, _, root := lab(t)
	run(t, rs.NS, "--root", root, "--persist", "up", vip4.String(), vip6.String()).want(t, 0)
	before := snapshot(t, rs.NS, root)
	r := run(t, rs.NS, "--root", root, "--persist", "up", vip4.String(), vip6.String()).want(t, 0)
	if after := snapshot(t, rs.NS, root); after != before {
		t.Errorf("second up changed something:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	for _, want := range []string{"10.77.0.100 already on lo", "fd00:77::64 already on lo", "arp_ignore = 1 (already)", "unchanged"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("second up output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "added") || strings.Contains(r.stdout, "wrote") {
		t.Errorf("second up claims changes:\n%s", r.stdout)
	}
	// Spelling the same VIPs differently changes nothing either.
	run(t, rs.NS, "--root", root, "up", "10.77.0.100/32", "FD00:77:0::64").want(t, 0)
	if got := loAddrs(t, rs.NS); got != "10.77.0.100/32 127.0.0.1/8 ::1/128 fd00:77::64/128" {
		t.Errorf("lo: %s", got)
	}
}

func TestDownRestoresOnlyWhenNoVIPRemains(t *testing.T) {
	rs, _, root := lab(t)
	// Non-default originals prove down restores what was there, not 0.
	setSysctl(t, rs.NS, "all", "arp_announce", "1")
	setSysctl(t, rs.NS, "eth0", "arp_ignore", "2")
	run(t, rs.NS, "--root", root, "up", vip4.String(), "10.77.0.101").want(t, 0)
	run(t, rs.NS, "--root", root, "up", "10.77.0.101").want(t, 0) // must not re-save 1/2 as "original"
	r := run(t, rs.NS, "--root", root, "down", vip4.String()).want(t, 0)
	if !strings.Contains(r.stdout, "ARP sysctls kept: still on lo: 10.77.0.101") {
		t.Errorf("down output: %s", r.stdout)
	}
	if got := arpSysctls(t, rs.NS); got != "all 1/2 eth0 1/2" {
		t.Errorf("sysctls with a VIP left: %s", got)
	}
	run(t, rs.NS, "--root", root, "down", "10.77.0.101").want(t, 0)
	if got := arpSysctls(t, rs.NS); got != "all 0/1 eth0 2/0" {
		t.Errorf("sysctls after the last down: %s, want the originals all 0/1 eth0 2/0", got)
	}
	// down of something not there is harmless.
	run(t, rs.NS, "--root", root, "down", "10.77.0.101").want(t, 0)
	if got := arpSysctls(t, rs.NS); got != "all 0/1 eth0 2/0" {
		t.Errorf("sysctls after a second down: %s", got)
	}
}

func TestRefusesBadInputAndChangesNothing(t *testing.T) {
	rs, _, root := lab(t)
	before := snapshot(t, rs.NS, root)
	for _, args := range [][]string{
		{"up", vip4.String(), "300.1.2.3"},
		{"up", vip4.String(), "10.77.0.0/24"},
		{"up", "127.0.0.2"},
		{"up", "fe80::1"},
		{"up", "2001:db8::1::2"},
		{"up"},
		{"explode"},
		{"up", "--colour", vip4.String()},
	} {
		r := run(t, rs.NS, append([]string{"--root", root}, args...)...)
		if r.code != 2 {
			t.Errorf("%v: exit %d, want 2", args, r.code)
		}
		if r.stderr == "" {
			t.Errorf("%v: no message", args)
		}
	}
	r := run(t, rs.NS, "--root", root, "up", vip4.String(), "300.1.2.3")
	if !strings.Contains(r.stderr, "300.1.2.3: not a usable VIP") {
		t.Errorf("message: %s", r.stderr)
	}
	// A VIP already on the outward interface would be announced there.
	rs.Exec("ip", "addr", "add", "10.77.0.101/24", "dev", "eth0")
	r = run(t, rs.NS, "--root", root, "up", vip4.String(), "10.77.0.101")
	r.want(t, 1)
	if !strings.Contains(r.stderr, "10.77.0.101 is configured on eth0") {
		t.Errorf("message: %s", r.stderr)
	}
	rs.Exec("ip", "addr", "del", "10.77.0.101/24", "dev", "eth0")
	if after := snapshot(t, rs.NS, root); after != before {
		t.Errorf("refused commands changed something:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestRefusesNonRoot(t *testing.T) {
	netlab.Require(t, "setpriv")
	// A copy nobody can read, in a directory nobody can enter.
	dir, err := os.MkdirTemp("", "realserver-nonroot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(script(t))
	if err != nil {
		t.Fatal(err)
	}
	s := filepath.Join(dir, "realserver.sh")
	if err := os.WriteFile(s, src, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", s, "up", "192.0.2.10")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("non-root up: %v, want exit 1: %s", err, out)
	}
	if !strings.Contains(string(out), "must run as root") {
		t.Errorf("message: %s", out)
	}
	// status only reads, so it works without root.
	cmd = exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", s, "status", "192.0.2.10")
	out, _ = cmd.CombinedOutput()
	if !strings.Contains(string(out), "192.0.2.10: NOT on lo") {
		t.Errorf("non-root status: %s", out)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPersistSurvivesReboot(t *testing.T) {
	rs, peer, root := lab(t)
	run(t, rs.NS, "--root", root, "--persist", "up", vip4.String(), vip6.String()).want(t, 0)

	conf := readFile(t, filepath.Join(root, "etc/sysctl.d/90-lbd-realserver.conf"))
	for _, want := range []string{"net.ipv4.conf.all.arp_ignore = 1", "net.ipv4.conf.all.arp_announce = 2",
		"net/ipv4/conf/eth0/arp_ignore = 1", "net/ipv4/conf/eth0/arp_announce = 2"} {
		if !strings.Contains(conf, want+"\n") {
			t.Errorf("sysctl.d file lacks %q:\n%s", want, conf)
		}
	}
	unit := readFile(t, filepath.Join(root, "etc/systemd/system/lbd-realserver.service"))
	for _, want := range []string{"Type=oneshot", "RemainAfterExit=yes", "EnvironmentFile=/etc/default/lbd-realserver",
		"ExecStart=/usr/local/sbin/lbd-realserver $OPTS up $VIPS", "Before=network-pre.target", "WantedBy=multi-user.target"} {
		if !strings.Contains(unit, want+"\n") {
			t.Errorf("unit lacks %q:\n%s", want, unit)
		}
	}
	env := readFile(t, filepath.Join(root, "etc/default/lbd-realserver"))
	if !strings.Contains(env, `OPTS="--interface eth0"`) || !strings.Contains(env, `VIPS="10.77.0.100 fd00:77::64"`) {
		t.Errorf("environment file:\n%s", env)
	}
	if l, err := os.Readlink(filepath.Join(root, "etc/systemd/system/multi-user.target.wants/lbd-realserver.service")); err != nil || l != "/etc/systemd/system/lbd-realserver.service" {
		t.Errorf("unit not enabled: %q %v", l, err)
	}
	installed := filepath.Join(root, "usr/local/sbin/lbd-realserver")
	if fi, err := os.Stat(installed); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("installed script: %v %v", fi, err)
	}
	if readFile(t, installed) != readFile(t, script(t)) {
		t.Error("installed script differs from realserver.sh")
	}
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		// The unit must parse without a single complaint. verify checks
		// that ExecStart and EnvironmentFile exist, so a copy points them
		// into root.
		copyPath := filepath.Join(t.TempDir(), "lbd-realserver.service")
		inRoot := strings.NewReplacer("/usr/local/sbin/", filepath.Join(root, "usr/local/sbin")+"/",
			"/etc/default/", filepath.Join(root, "etc/default")+"/").Replace(unit)
		if err := os.WriteFile(copyPath, []byte(inRoot), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("systemd-analyze", "verify", copyPath).CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	} else {
		t.Log("systemd-analyze not installed: unit syntax not verified")
	}

	// Reboot: a fresh host (kernel defaults, nothing on lo) boots with the
	// persisted files: systemd-sysctl applies the sysctl.d file, then the
	// unit runs ExecStart with the environment file, as systemd would.
	lan := netlab.NewLAN(t, "rsboot", 2)
	fresh, peer2 := lan.Hosts[0], lan.Hosts[1]
	fresh.Exec("sysctl", "-q", "-p", filepath.Join(root, "etc/sysctl.d/90-lbd-realserver.conf"))
	if got := arpSysctls(t, fresh.NS); got != "all 1/2 eth0 1/2" {
		t.Errorf("sysctls from the sysctl.d file: %s", got)
	}
	setSysctl(t, fresh.NS, "all", "arp_ignore", "0") // the unit must set them itself too
	argv := []string{"--root", root}
	argv = append(argv, strings.Fields(envValue(env, "OPTS"))...)
	argv = append(argv, "up")
	argv = append(argv, strings.Fields(envValue(env, "VIPS"))...)
	c := fresh.Cmd(installed, argv...)
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("boot-time up: %v\n%s", err, out)
	}
	if got := loAddrs(t, fresh.NS); got != "10.77.0.100/32 127.0.0.1/8 ::1/128 fd00:77::64/128" {
		t.Errorf("lo after boot: %s", got)
	}
	if got := arpSysctls(t, fresh.NS); got != "all 1/2 eth0 1/2" {
		t.Errorf("sysctls after boot: %s", got)
	}
	if _, ok := arpProbe(t, peer2, vip4); ok {
		t.Error("rebooted real server answers ARP for the VIP")
	}

	// down --persist forgets VIPs; the last one removes every file.
	run(t, rs.NS, "--root", root, "--persist", "down", vip4.String()).want(t, 0)
	env = readFile(t, filepath.Join(root, "etc/default/lbd-realserver"))
	if !strings.Contains(env, `VIPS="fd00:77::64"`) || !strings.Contains(env, `OPTS="--interface eth0"`) {
		t.Errorf("environment file after down of one VIP:\n%s", env)
	}
	// down without --persist warns that the VIP comes back at boot.
	r := run(t, rs.NS, "--root", root, "down", vip6.String()).want(t, 0)
	if !strings.Contains(r.stderr, "is persisted and comes back at boot") {
		t.Errorf("no warning: %s", r.stderr)
	}
	run(t, rs.NS, "--root", root, "--persist", "down", vip6.String()).want(t, 0)
	for _, f := range []string{"etc/sysctl.d/90-lbd-realserver.conf", "etc/systemd/system/lbd-realserver.service",
		"etc/systemd/system/multi-user.target.wants/lbd-realserver.service", "etc/default/lbd-realserver", "usr/local/sbin/lbd-realserver"} {
		if _, err := os.Lstat(filepath.Join(root, f)); !os.IsNotExist(err) {
			t.Errorf("%s still there after the last down --persist (%v)", f, err)
		}
	}
	_ = peer
}

func envValue(env, key string) string {
	for _, l := range strings.Split(env, "\n") {
		if v, ok := strings.CutPrefix(l, key+"="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

func TestShellcheckClean(t *testing.T) {
	if _, err := exec.LookPath("shellcheck"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("shellcheck not installed (make deps installs it)")
		}
		t.Skip("shellcheck not installed")
	}
	out, err := exec.Command("shellcheck", "--severity=style", script(t)).CombinedOutput()
	if err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}
