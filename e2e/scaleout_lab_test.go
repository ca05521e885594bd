//go:build vm

package e2e

// The scale-out lab: active-active directors behind BGP and ECMP, every
// part a real one, in namespaces inside the kernel VM.
//
//	client 10.90.0.2 ── eth1 10.90.0.1  router (FRR zebra + bgpd)
//	                     eth0 10.77.0.11 ── LAN 10.77.0.0/24 ──┬─ dir1 .12  IPVS + lbd + BGP speaker
//	                                                           ├─ dir2 .13  IPVS + lbd + BGP speaker
//	                                                           ├─ rs1  .14  VIP on lo, HTTP
//	                                                           └─ rs2  .15  VIP on lo, HTTP
//
// Both directors announce the VIP (10.200.0.1/32) to the router, which
// installs one kernel route with both as next hops and, with
// net.ipv4.fib_multipath_hash_policy=1, spreads flows by their L4 hash.
// Every director schedules with mh (mh-port, mh-fallback) over the same two
// real servers and has net.ipv4.vs.sloppy_tcp=1, so a flow the router moves
// to the other director keeps its real server. The real servers answer the
// client directly (DR), through the router: their default route.
//
// The speaker on a director is lbd's own ([bgp]) or, as the reference an
// operator would otherwise deploy, FRR's bgpd beside an lbd without [bgp]
// (the lab then puts the VIP on the director's lo, sets sloppy_tcp and
// configures mh itself).
//
// A dead director is modelled by cutting its cable at the switch (the
// bridge port leaves the bridge; carrier stays up on both ends) and then
// SIGKILLing its processes: nothing it sends reaches the router any more,
// not even the FIN of its BGP session, as with a box that lost power behind
// a switch. The router notices only when the hold timer expires.

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"lbd/internal/netlab"
	"lbd/internal/vmtest"
)

const (
	soPort        = 80
	soRouterASN   = 65000
	soDirectorASN = 65001
)

// soLab is the scale-out lab; newSOLab builds it, startDirectors starts the
// directors and their speakers.
type soLab struct {
	tb      testing.TB
	speaker string        // "lbd" or "frr"
	bfd     bool          // lbd's neighbours with bfd = true, FRR's bfdd on the router
	hold    time.Duration // BGP hold time on both ends of every session
	client  *netlab.Host
	router  *netlab.Host
	frrDir  string // the router's FRR configs and vty sockets
	bgpd    *vmtest.Proc
	zebra   *vmtest.Proc
	bfdd    *vmtest.Proc
	nl      *netlink.Handle // in the router
	dirs    []*soDirector
	rs      []*realServer
	vip     netip.Addr
}

// soDirector is one director: its host, its lbd and, in the reference
// setup, its FRR bgpd.
type soDirector struct {
	*netlab.Host
	lbd *vmtest.Proc
	frr *vmtest.Proc
}

// newSOLab builds the lab and starts the router; speaker is "lbd",
// "lbd+bfd" (BFD on every session) or "frr", hold the BGP hold time of
// the directors.
func newSOLab(tb testing.TB, speaker string, hold time.Duration) *soLab {
	tb.Helper()
	bfd := false
	if speaker == "lbd+bfd" {
		speaker, bfd = "lbd", true
	}
	vmtest.Require(tb)
	netlab.Require(tb, "zebra", "bgpd", "vtysh")
	vmtest.Binary(tb, "lbd")
	lan := netlab.NewLAN(tb, "so", 5)
	l := &soLab{tb: tb, speaker: speaker, bfd: bfd, hold: hold, router: lan.Hosts[0],
		vip: netip.AddrFrom4([4]byte{10, 200, 0, 1})}
	for _, h := range lan.Hosts[1:3] {
		l.dirs = append(l.dirs, &soDirector{Host: h})
	}

	// The client sits behind the router on a link of its own.
	cns := netlab.NewNS(tb, "so-client")
	l.router.Exec("ip", "link", "add", "eth1", "type", "veth", "peer", "name", "eth0", "netns", cns.Name)
	l.router.Exec("ip", "addr", "add", "10.90.0.1/24", "dev", "eth1")
	l.router.Exec("ip", "link", "set", "eth1", "up")
	cns.Exec("ip", "link", "set", "eth0", "up")
	cns.Exec("ip", "addr", "add", "10.90.0.2/24", "dev", "eth0")
	cns.Exec("ip", "route", "add", "default", "via", "10.90.0.1")
	l.client = &netlab.Host{NS: cns, Link: "eth0", IPv4: netip.MustParsePrefix("10.90.0.2/24")}

	// The router forwards and hashes flows on L4, not only addresses (one
	// client would otherwise always land on one director).
	l.router.Exec("sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv4.fib_multipath_hash_policy=1")

	script := realServerScript(tb)
	for i, h := range lan.Hosts[3:] {
		h.Exec(script, "--interface", h.Link, "--root", tb.TempDir(), "up", l.vip.String())
		h.Exec("ip", "route", "add", "default", "via", l.router.IPv4.Addr().String())
		rs := &realServer{name: fmt.Sprintf("rs%d", i+1), ns: h.NS, addr: h.IPv4.Addr(), mac: h.MAC,
			servers: map[int]*http.Server{}}
		rs.start(tb, soPort)
		tb.Cleanup(func() { rs.stop(soPort) })
		l.rs = append(l.rs, rs)
	}
	l.startRouter()
	return l
}

// frrArgs are the command-line arguments of an FRR daemon whose files are
// in dir: config, pid file, zebra socket, vty socket; root; no vty on TCP;
// log on stdout (vmtest.Proc keeps it).
func frrArgs(dir, daemon string) []string {
	return []string{"-u", "root", "-g", "root",
		"-f", filepath.Join(dir, daemon+".conf"), "-i", filepath.Join(dir, daemon+".pid"),
		"-z", filepath.Join(dir, "zserv.api"), "--vty_socket", dir, "-P", "0",
		"--log", "stdout", "--log-level", "info"}
}

// bgpTimers is FRR's "timers KEEPALIVE HOLD" for a hold time.
func bgpTimers(hold time.Duration) string {
	h := int(hold / time.Second)
	return fmt.Sprintf("timers %d %d", max(h/3, 1), h)
}

func writeFile(tb testing.TB, path, content string) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// startRouter runs zebra and bgpd in the router: one eBGP session per
// director, up to 8 paths per prefix into the kernel.
func (l *soLab) startRouter() {
	tb := l.tb
	tb.Helper()
	l.frrDir = tb.TempDir()
	writeFile(tb, filepath.Join(l.frrDir, "zebra.conf"), "hostname router\n")
	var c strings.Builder
	fmt.Fprintf(&c, "frr defaults traditional\nhostname router\n")
	fmt.Fprintf(&c, "router bgp %d\n bgp router-id %s\n no bgp ebgp-requires-policy\n bgp log-neighbor-changes\n", soRouterASN, l.router.IPv4.Addr())
	fmt.Fprintf(&c, " neighbor DIRECTORS peer-group\n neighbor DIRECTORS remote-as %d\n", soDirectorASN)
	// No hold time here: FRR's default (180s) is above every director's,
	// so the directors' choice decides, as the lower one of a session does.
	fmt.Fprintf(&c, " neighbor DIRECTORS timers connect 1\n")
	if l.bfd {
		fmt.Fprintf(&c, " neighbor DIRECTORS bfd\n")
	}
	for _, d := range l.dirs {
		fmt.Fprintf(&c, " neighbor %s peer-group DIRECTORS\n", d.IPv4.Addr())
	}
	fmt.Fprintf(&c, " address-family ipv4 unicast\n  maximum-paths 8\n exit-address-family\n")
	writeFile(tb, filepath.Join(l.frrDir, "bgpd.conf"), c.String())
	l.zebra = vmtest.Start(tb, "zebra in router", l.router.Cmd("zebra", frrArgs(l.frrDir, "zebra")...))
	l.bgpd = vmtest.Start(tb, "bgpd in router", l.router.Cmd("bgpd", frrArgs(l.frrDir, "bgpd")...))
	if l.bfd {
		writeFile(tb, filepath.Join(l.frrDir, "bfdd.conf"), "hostname router\n")
		args := append(frrArgs(l.frrDir, "bfdd"), "--bfdctl", filepath.Join(l.frrDir, "bfdd.sock"))
		l.bfdd = vmtest.Start(tb, "bfdd in router", l.router.Cmd("bfdd", args...))
	}
}

// vtysh runs a show command on the router.
func (l *soLab) vtysh(cmd string) string {
	out, err := l.router.Run("vtysh", "--vty_socket", l.frrDir, "-c", cmd)
	if err != nil {
		return err.Error()
	}
	return out
}

// lbdConfig is a director's lbd.toml. With lbd as the speaker it has a
// [bgp] table and leaves the scheduler to BGP mode's default (mh with
// mh-port and mh-fallback); for the FRR reference it says mh itself.
func (l *soLab) lbdConfig() string {
	var s strings.Builder
	fmt.Fprintf(&s, "[global]\ninterface = \"eth0\"\nforwarding = \"dr\"\nresync_interval = \"1s\"\n\n")
	if l.speaker == "lbd" {
		fmt.Fprintf(&s, "[bgp]\nlocal_asn = %d\n\n[[bgp.neighbor]]\naddress = %q\nasn = %d\nhold_time = %q\nbfd = %v\n\n",
			soDirectorASN, l.router.IPv4.Addr(), soRouterASN, l.hold, l.bfd)
	}
	fmt.Fprintf(&s, "[[virtual_server]]\nname = \"web\"\nvip = %q\nport = %d\n", l.vip, soPort)
	if l.speaker != "lbd" {
		fmt.Fprintf(&s, "scheduler = \"mh\"\nscheduler_flags = [\"mh-fallback\", \"mh-port\"]\n")
	}
	for _, rs := range l.rs {
		fmt.Fprintf(&s, "  [[virtual_server.real_server]]\n  name = %q\n  address = %q\n", rs.name, rs.addr)
	}
	return s.String()
}

// startDirectors starts lbd (and, for the reference, FRR's bgpd) on every
// director.
func (l *soLab) startDirectors() {
	tb := l.tb
	tb.Helper()
	bin := vmtest.Binary(tb, "lbd")
	for _, d := range l.dirs {
		if l.speaker != "lbd" {
			// What BGP mode does in lbd, done by hand: the VIP is local
			// (IPVS sees only packets for local addresses), mid-flow
			// packets may open a connection entry.
			d.Exec("ip", "addr", "add", l.vip.String()+"/32", "dev", "lo")
			d.Exec("sysctl", "-q", "-w", "net.ipv4.vs.sloppy_tcp=1")
			d.frr = l.startFRRSpeaker(d)
		}
		path := filepath.Join(tb.TempDir(), "lbd.toml")
		writeFile(tb, path, l.lbdConfig())
		d.lbd = vmtest.Start(tb, "lbd in "+d.Name, d.Cmd(bin, "-config", path))
	}
}

// startFRRSpeaker runs bgpd alone (no zebra, no listening socket) on a
// director, announcing the VIP.
func (l *soLab) startFRRSpeaker(d *soDirector) *vmtest.Proc {
	tb := l.tb
	dir := tb.TempDir()
	var c strings.Builder
	fmt.Fprintf(&c, "frr defaults traditional\nhostname %s\n", d.Name)
	fmt.Fprintf(&c, "router bgp %d\n bgp router-id %s\n no bgp ebgp-requires-policy\n no bgp network import-check\n",
		soDirectorASN, d.IPv4.Addr())
	r := l.router.IPv4.Addr()
	fmt.Fprintf(&c, " neighbor %s remote-as %d\n neighbor %s %s\n neighbor %s timers connect 1\n",
		r, soRouterASN, r, bgpTimers(l.hold), r)
	fmt.Fprintf(&c, " address-family ipv4 unicast\n  network %s/32\n exit-address-family\n", l.vip)
	writeFile(tb, filepath.Join(dir, "bgpd.conf"), c.String())
	args := append(frrArgs(dir, "bgpd"), "--no_zebra", "--bgp_port", "0")
	return vmtest.Start(tb, "bgpd in "+d.Name, d.Cmd("bgpd", args...))
}

// nextHops returns the gateways of the router's kernel route to the VIP.
// It asks over netlink: spawning `ip` in a namespace costs far more in
// the emulated VM, and polling must not slow down what it measures.
func (l *soLab) nextHops() ([]netip.Addr, error) {
	if l.nl == nil {
		h, err := netlink.NewHandleAt(l.router.Handle())
		if err != nil {
			return nil, err
		}
		l.tb.Cleanup(h.Close)
		l.nl = h
	}
	dst := &net.IPNet{IP: l.vip.AsSlice(), Mask: net.CIDRMask(32, 32)}
	routes, err := l.nl.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: dst}, netlink.RT_FILTER_DST)
	if err != nil {
		return nil, err
	}
	var hops []netip.Addr
	add := func(ip net.IP) {
		if a, ok := netip.AddrFromSlice(ip); ok {
			hops = append(hops, a.Unmap())
		}
	}
	for _, r := range routes {
		if r.Gw != nil {
			add(r.Gw)
		}
		for _, nh := range r.MultiPath {
			add(nh.Gw)
		}
	}
	slices.SortFunc(hops, netip.Addr.Compare)
	return hops, nil
}

// waitNextHops waits until the router's route to the VIP goes through
// exactly the directors dirs, and returns when it saw that.
func (l *soLab) waitNextHops(timeout time.Duration, dirs ...*soDirector) time.Time {
	l.tb.Helper()

	var want []netip.Addr
	for _, d := range dirs {
		want = append(want, d.IPv4.Addr())
	}
	slices.SortFunc(want, netip.Addr.Compare)
	var seen time.Time
	vmtest.Eventually(l.tb, timeout, 20*time.Millisecond, fmt.Sprintf("router's route to %v via %v", l.vip, want), func() (bool, string) {
		for _, d := range l.dirs {
			if d.lbd != nil && d.lbd.Exited() && slices.Contains(dirs, d) {
				l.tb.Fatalf("lbd in %s exited:\n%s", d.Name, strings.Join(d.lbd.Lines(), "\n"))
			}
		}
		hops, err := l.nextHops()
		seen = time.Now()
		if err != nil {
			return false, err.Error()
		}
		return slices.Equal(hops, want), fmt.Sprintf("next hops %v\n%s", hops, l.vtysh("show bgp summary"))
	})
	return seen
}

// ipvsConn is one entry of a director's IPVS connection table.
type ipvsConn struct {
	clientPort int
	dest       netip.Addr
	state      string
}

// conns reads the director's connection table (/proc/net/ip_vs_conn is
// per network namespace) and returns the client's connections by port.
func (d *soDirector) conns(tb testing.TB, client netip.Addr) map[int]ipvsConn {
	tb.Helper()
	out := d.Exec("cat", "/proc/net/ip_vs_conn")
	m := map[int]ipvsConn{}
	for _, line := range strings.Split(out, "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		from, err1 := strconv.ParseUint(f[1], 16, 32)
		port, err2 := strconv.ParseUint(f[2], 16, 16)
		dest, err3 := strconv.ParseUint(f[5], 16, 32)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		if netip.AddrFrom4([4]byte{byte(from >> 24), byte(from >> 16), byte(from >> 8), byte(from)}) != client {
			continue
		}
		m[int(port)] = ipvsConn{clientPort: int(port), state: f[7],
			dest: netip.AddrFrom4([4]byte{byte(dest >> 24), byte(dest >> 16), byte(dest >> 8), byte(dest)})}
	}
	return m
}

// kill makes d a dead box: its cable is cut at the switch first, so that
// nothing it does afterwards reaches anyone, then every process it runs is
// killed.
func (d *soDirector) kill(tb testing.TB) {
	tb.Helper()
	d.Cut(tb)
	for _, p := range []*vmtest.Proc{d.frr, d.lbd} {
		if p != nil {
			_ = p.Signal(syscall.SIGKILL)
		}
	}
}

// soResult is what one failover did to the established connections.
type soResult struct {
	held, moved int           // held connections, those on the killed director
	survived    int           // held connections alive at the end
	downReason  string        // why the router ended the session, as it logged it
	withdrawn   time.Duration // kill → the router's kernel route lost the dead next hop
	recovered   time.Duration // kill → every surviving connection answered again
	movedSeen   int           // moved connections found in the survivor's table
	report      trafficReport
}

func (r soResult) String() string {
	return fmt.Sprintf("%d of %d established connections survived (%d were on the killed director, %d of them found on the survivor); the router ended the session (%s), after the kill: kernel route withdrawn %v, every connection answering again %v",
		r.survived, r.held, r.moved, r.movedSeen, r.downReason, r.withdrawn.Round(time.Millisecond), r.recovered.Round(time.Millisecond))
}

// failover holds n connections through the VIP with a request every
// 200ms, kills dirs[0] and waits until the router routes around it and the
// connections answer again (or fail).
func (l *soLab) failover(n int) soResult {
	tb := l.tb
	tb.Helper()
	victim, survivor := l.dirs[0], l.dirs[1]
	// A request on a moved connection waits for the hold timer, then for
	// TCP's next retransmission (exponential backoff: up to about as long
	// again).
	timeout := 2*l.hold + 30*time.Second
	tr := startTraffic(tb, trafficOptions{Dial: l.client.Dial, Target: netip.AddrPortFrom(l.vip, soPort),
		Held: n, HeldEvery: 200 * time.Millisecond, HeldTimeout: timeout, Fresh: 1, FreshPause: 50 * time.Millisecond})
	time.Sleep(500 * time.Millisecond)
	onVictim := victim.conns(tb, l.client.IPv4.Addr())
	var moved []int
	for _, p := range tr.localPorts() {
		if _, ok := onVictim[p]; ok {
			moved = append(moved, p)
		}
	}

	// The router logs why it ended the session (bgp log-neighbor-changes:
	// hold timer or BFD). FRR buffers its log for up to a few seconds, so
	// the line says why, not when.
	down := regexp.MustCompile(`ADJCHANGE: neighbor ` + regexp.QuoteMeta(victim.IPv4.Addr().String()) + `\b.* Down`)
	mark := l.bgpd.Mark()
	killed := time.Now()
	victim.kill(tb)
	withdrawn := l.waitNextHops(timeout, survivor)
	downLine, ok := l.bgpd.WaitLine(mark, 10*time.Second, down.MatchString)
	if !ok {
		tb.Fatalf("the router never logged the end of its session with %s", victim.Name)
	}

	// Every held connection has answered after the route changed, or failed.
	var recovered time.Time
	vmtest.Eventually(tb, timeout+10*time.Second, 50*time.Millisecond, "held connections answering after the failover", func() (bool, string) {
		r := tr.report()
		waiting := 0
		for _, h := range r.Held {
			if h.Err == nil && !h.LastOK.After(withdrawn) {
				waiting++
			}
		}
		recovered = time.Now()
		return waiting == 0, fmt.Sprintf("%d connections not answered since %s", waiting, withdrawn.Format("15:04:05.000"))
	})
	onSurvivor := survivor.conns(tb, l.client.IPv4.Addr())
	rep := tr.stop()
	res := soResult{held: n, moved: len(moved), survived: rep.survivors(), report: rep,
		withdrawn: withdrawn.Sub(killed), recovered: recovered.Sub(killed)}
	res.downReason = strings.TrimSpace(downLine[strings.Index(downLine, " Down ")+len(" Down "):])
	// The notification it sent says why: "(Hold Timer Expired)",
	// "(Cease/BFD Down)".
	for _, line := range l.bgpd.Lines()[mark:] {
		if strings.Contains(line, "NOTIFICATION: sent to neighbor "+victim.IPv4.Addr().String()+" ") {
			if i, j := strings.LastIndex(line, "("), strings.LastIndex(line, ")"); 0 <= i && i < j {
				res.downReason = line[i+1 : j]
			}
		}
	}
	for _, p := range moved {
		if _, ok := onSurvivor[p]; ok {
			res.movedSeen++
		}
	}
	return res
}
