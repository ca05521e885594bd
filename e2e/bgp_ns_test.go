//go:build linux && !vm

package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"lbd/internal/netlab"
	"lbd/internal/testutil"
)

// BGP/ECMP on the host: two real lbd daemons (built with -tags fakeipvs:
// the host kernel has no IPVS, and BGP needs none) peer with a real router,
// FRR or BIRD, in its own namespace. The router's kernel table is the
// proof: one route to the VIP with a next hop per healthy director.
//
// LAN: h0 router 10.77.0.11, h1 d1 .12, h2 d2 .13, h3 real server .14.

const bgpVIP = "192.0.2.10"

type bgpLab struct {
	lan            *netlab.LAN
	router, d1, d2 *netlab.Host
	rs             *netlab.Host
	bin            string
}

func newBGPLab(t *testing.T, prefix string, cmds ...string) *bgpLab {
	t.Helper()
	netlab.Require(t, cmds...)
	bin := netlab.BuildBinaryTags(t, "lbd/cmd/lbd", "fakeipvs")
	lan := netlab.NewLAN(t, prefix, 4)
	return &bgpLab{lan: lan, router: lan.Hosts[0], d1: lan.Hosts[1], d2: lan.Hosts[2], rs: lan.Hosts[3], bin: bin}
}

// serve keeps a TCP listener on the real server at port until the test
// ends or the returned stop is called: the directors' health checks.
func (l *bgpLab) serve(t *testing.T, port int) (stop func()) {
	t.Helper()
	ln, err := l.rs.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			ln.Close()
		}
	}
	t.Cleanup(stop)
	return stop
}

// bgpDirectorConfig: one virtual server on the VIP whose real server is
// checked at checkPort (each director its own port, so a test can make
// one director's service unhealthy).
func (l *bgpLab) config(h *netlab.Host, checkPort int) string {
	return fmt.Sprintf(`[global]
interface = "eth0"
listen = "127.0.0.1:3636"

[bgp]
local_asn = 65001
communities = ["65001:100"]

[[bgp.neighbor]]
address = %q
asn = 65000
connect_retry = "1s"

[[virtual_server]]
name = "web"
vip = %q
port = 80

[virtual_server.health_check]
type = "tcp"
port = %d
interval = "200ms"
timeout = "150ms"
rise = 1
fall = 1
through_vip = false

[[virtual_server.real_server]]
name = "rs1"
address = %q
`, l.router.IPv4.Addr(), bgpVIP, checkPort, l.rs.IPv4.Addr())
}

type bgpDirector struct {
	token string // API token when started with a console
	t     *testing.T
	h     *netlab.Host
	bin   string
	conf  string
	out   *testutil.Buffer
	cmd   *exec.Cmd
	done  chan struct{}
}

func (l *bgpLab) startDirector(t *testing.T, h *netlab.Host, checkPort int, console bool) *bgpDirector {
	t.Helper()
	d := &bgpDirector{t: t, h: h, bin: l.bin, conf: filepath.Join(t.TempDir(), "lbd.toml"), out: &testutil.Buffer{}}
	conf := l.config(h, checkPort)
	if console {
		// The password only has to exist; lbctl uses a token.
		hash, err := bcrypt.GenerateFromPassword([]byte("e2e-password"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		conf += fmt.Sprintf("\n[console]\npassword_hash = %q\n", hash)
	}
	if err := os.WriteFile(d.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if console {
		out, err := h.Run(d.bin, "token", "-config", d.conf, "-name", "e2e")
		if err != nil {
			t.Fatal(err)
		}
		// Run mixes stderr's advice in: the token is stdout's one line.
		d.token = strings.Fields(out)[0]
		if !strings.HasPrefix(d.token, "e2e.") {
			t.Fatalf("lbd token printed %q", out)
		}
	}
	d.cmd = h.Cmd(d.bin, "-config", d.conf, "-state", filepath.Join(t.TempDir(), "state.json"))
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.done = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { c.Wait(); close(done) }(d.cmd, d.done)
	t.Cleanup(func() {
		d.stop(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("lbd in %s said:\n%s", h.Name, d.out.String())
		}
	})
	return d
}

// lbctl runs lbctl in the director's namespace against its console.
func (d *bgpDirector) lbctl(args ...string) (string, error) {
	bin := netlab.BuildBinary(d.t, "lbd/cmd/lbctl")
	return d.h.Run(bin, append([]string{"--url", "http://127.0.0.1:3636", "--token", d.token}, args...)...)
}

// stop signals lbd and waits for it to exit; it returns when it did.
func (d *bgpDirector) stop(sig syscall.Signal) time.Time {
	if d.cmd == nil {
		return time.Now()
	}
	d.cmd.Process.Signal(sig)
	select {
	case <-d.done:
	case <-time.After(15 * time.Second):
		d.t.Errorf("lbd in %s did not exit on %v", d.h.Name, sig)
		d.cmd.Process.Kill()
		<-d.done
	}
	d.cmd = nil
	return time.Now()
}

// nextHops is what the router's kernel has for the VIP: the gateways of
// its route, sorted; none when there is no route.
func nextHops(t *testing.T, router *netlab.Host) []string {
	t.Helper()
	out, err := router.Run("ip", "-j", "route", "show", bgpVIP+"/32")
	if err != nil {
		t.Fatal(err)
	}
	var routes []struct {
		Gateway  string `json:"gateway"`
		Nexthops []struct {
			Gateway string `json:"gateway"`
		} `json:"nexthops"`
	}
	if err := json.Unmarshal([]byte(out), &routes); err != nil {
		t.Fatalf("ip -j route: %v: %q", err, out)
	}
	var gws []string
	for _, r := range routes {
		if r.Gateway != "" {
			gws = append(gws, r.Gateway)
		}
		for _, n := range r.Nexthops {
			gws = append(gws, n.Gateway)
		}
	}
	slices.Sort(gws)
	return gws
}

func (l *bgpLab) waitHops(t *testing.T, timeout time.Duration, want ...*netlab.Host) time.Duration {
	t.Helper()
	var ws []string
	for _, h := range want {
		ws = append(ws, h.IPv4.Addr().String())
	}
	slices.Sort(ws)
	return testutil.Eventually(t, timeout, fmt.Sprintf("router's route to %s via %v", bgpVIP, ws), func() bool {
		return slices.Equal(nextHops(t, l.router), ws)
	})
}

// frr runs zebra and bgpd in the router's namespace.
type frr struct {
	t       *testing.T
	ns      *netlab.Host
	dir     string
	daemons []*exec.Cmd
}

func (l *bgpLab) startFRR(t *testing.T) *frr {
	t.Helper()
	// FRR drops to its own user: its directory must be reachable for
	// that user (t.TempDir's parent is not).
	dir, err := os.MkdirTemp("", "lbd-frr-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`frr defaults traditional
hostname router
log file %s/frr.log
debug bgp updates
!
router bgp 65000
 bgp router-id %s
 no bgp ebgp-requires-policy
 neighbor %s remote-as 65001
 neighbor %s remote-as 65001
 address-family ipv4 unicast
  maximum-paths 8
 exit-address-family
!
`, dir, l.router.IPv4.Addr(), l.d1.IPv4.Addr(), l.d2.IPv4.Addr())
	if err := os.WriteFile(filepath.Join(dir, "frr.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	f := &frr{t: t, ns: l.router, dir: dir}
	f.start()
	return f
}

func (f *frr) start() {
	f.t.Helper()
	f.daemons = nil
	for _, d := range []string{"zebra", "bgpd"} {
		args := []string{"-f", filepath.Join(f.dir, "frr.conf"),
			"-i", filepath.Join(f.dir, d+".pid"), "-z", filepath.Join(f.dir, "zserv.api"),
			"--vty_socket", f.dir, "--log", "file:" + filepath.Join(f.dir, d+".log")}
		if d == "bgpd" {
			args = append(args, "-p", "179")
		}
		c := f.ns.Cmd("/usr/lib/frr/"+d, args...)
		out := &testutil.Buffer{}
		c.Stdout, c.Stderr = out, out
		if err := c.Start(); err != nil {
			f.t.Fatal(err)
		}
		f.daemons = append(f.daemons, c)
		if d == "zebra" {
			testutil.Eventually(f.t, 10*time.Second, "zebra's socket", func() bool {
				_, err := os.Stat(filepath.Join(f.dir, "zserv.api"))
				return err == nil
			})
		}
	}
	f.t.Cleanup(f.stop)
}

func (f *frr) stop() {
	for i := len(f.daemons) - 1; i >= 0; i-- {
		c := f.daemons[i]
		if c.Process == nil || c.ProcessState != nil {
			continue
		}
		// TERM: zebra takes its routes out of the kernel as it goes.
		c.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			c.Process.Kill()
			<-done
		}
	}
	f.daemons = nil
	os.Remove(filepath.Join(f.dir, "zserv.api"))
}

// vtysh runs one show command.
func (f *frr) vtysh(cmd string) string {
	out, _ := f.ns.Run("vtysh", "--vty_socket", f.dir, "-c", cmd)
	return out
}

// updatesReceived is FRR's count of UPDATE messages from a neighbour.
func (f *frr) updatesReceived(n *netlab.Host) int {
	var out map[string]struct {
		MessageStats struct {
			UpdatesRecv int `json:"updatesRecv"`
		} `json:"messageStats"`
	}
	raw := f.vtysh("show bgp neighbors " + n.IPv4.Addr().String() + " json")
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		return -1
	}
	return out[n.IPv4.Addr().String()].MessageStats.UpdatesRecv
}

func TestBGPWithFRR(t *testing.T) {
	l := newBGPLab(t, "bgf", "vtysh")
	r := l.startFRR(t)
	l.serve(t, 8081)
	stop2 := l.serve(t, 8082)
	d1 := l.startDirector(t, l.d1, 8081, true)
	l.startDirector(t, l.d2, 8082, false)

	took := l.waitHops(t, 30*time.Second, l.d1, l.d2)
	t.Logf("ECMP route with both directors %v after start", took)
	if out := r.vtysh("show ip bgp " + bgpVIP + "/32"); !strings.Contains(out, "65001:100") {
		t.Errorf("router's path lacks the community 65001:100:\n%s", out)
	}
	l.noARP(t)

	// d2's real server fails its check: d2 withdraws, d1 stays.
	stop2()
	took = l.waitHops(t, 10*time.Second, l.d1)
	t.Logf("d2 withdrawn %v after its real server stopped", took)
	l.serve(t, 8082)
	took = l.waitHops(t, 10*time.Second, l.d1, l.d2)
	t.Logf("d2 announced again %v after its real server came back", took)

	// lbctl maintenance drains d1 from the router and brings it back.
	var lastErr error
	testutil.Eventually(t, 20*time.Second, "d1's console answering lbctl bgp", func() bool {
		_, lastErr = d1.lbctl("bgp")
		return lastErr == nil
	})
	if out, err := d1.lbctl("maintenance", "on"); err != nil || !strings.Contains(out, "MAINTENANCE") {
		t.Fatalf("lbctl maintenance on: %v\n%s", err, out)
	}
	l.waitHops(t, 10*time.Second, l.d2)
	if out, _ := d1.lbctl("bgp"); !strings.Contains(out, bgpVIP+"  no") || !strings.Contains(out, "maintenance") {
		t.Errorf("lbctl bgp in maintenance:\n%s", out)
	}
	if out, err := d1.lbctl("maintenance", "off"); err != nil {
		t.Fatalf("lbctl maintenance off: %v\n%s", err, out)
	}
	l.waitHops(t, 10*time.Second, l.d1, l.d2)
	if out, _ := d1.lbctl("bgp"); !strings.Contains(out, "established") || !strings.Contains(out, bgpVIP+"  yes") {
		t.Errorf("lbctl bgp:\n%s", out)
	}

	// The router restarts: sessions come back, both routes reinstalled.
	r.stop()
	l.waitHops(t, 10*time.Second)
	r.start()
	took = l.waitHops(t, 30*time.Second, l.d1, l.d2)
	t.Logf("routes back %v after the router restarted", took)

	// SIGTERM: d1 sends a withdrawal before it exits, and the route is
	// gone long before the hold time (90s).
	before := r.updatesReceived(l.d1)
	start := time.Now()
	d1.stop(syscall.SIGTERM)
	took = l.waitHops(t, 10*time.Second, l.d2)
	t.Logf("d1 gone from the route %v after SIGTERM (hold time 90s)", time.Since(start))
	if after := r.updatesReceived(l.d1); before < 0 || after <= before {
		t.Errorf("FRR counted %d UPDATEs from d1 before SIGTERM and %d after: no withdrawal was sent", before, after)
	}
	_ = took
}

// noARP checks that no director answers ARP for the VIP it holds on lo:
// a host that believes the VIP is on the LAN gets no neighbour entry.
func (l *bgpLab) noARP(t *testing.T) {
	t.Helper()
	for _, d := range []*netlab.Host{l.d1, l.d2} {
		if out := d.Exec("ip", "-o", "addr", "show", "dev", "lo"); !strings.Contains(out, bgpVIP+"/32") {
			t.Fatalf("%s does not hold the VIP on lo: %s", d.Name, out)
		}
	}
	l.rs.Exec("ip", "route", "add", bgpVIP+"/32", "dev", "eth0")
	defer l.rs.Exec("ip", "route", "del", bgpVIP+"/32", "dev", "eth0")
	if c, err := l.rs.Dial("tcp", net.JoinHostPort(bgpVIP, "80"), 2*time.Second); err == nil {
		c.Close()
		t.Fatal("a connection to the VIP on the LAN succeeded")
	}
	if mac, _, ok := l.rs.Neighbour(t, netip.MustParseAddr(bgpVIP)); ok {
		t.Fatalf("%s answered ARP for the VIP", mac)
	}
}

// startBIRD runs BIRD 2 in the router's namespace: one bgp protocol per
// director, the kernel protocol merging equal paths into one ECMP route.
func (l *bgpLab) startBIRD(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	fmt.Fprintf(&b, "router id %s;\nprotocol device {}\n", l.router.IPv4.Addr())
	b.WriteString("protocol kernel { ipv4 { export all; }; merge paths on; }\n")
	for i, d := range []*netlab.Host{l.d1, l.d2} {
		fmt.Fprintf(&b, "protocol bgp d%d { local %s as 65000; neighbor %s as 65001; ipv4 { import all; export none; }; }\n",
			i+1, l.router.IPv4.Addr(), d.IPv4.Addr())
	}
	conf := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	c := l.router.Cmd("bird", "-f", "-c", conf, "-s", filepath.Join(dir, "bird.ctl"), "-P", filepath.Join(dir, "bird.pid"))
	out := &testutil.Buffer{}
	c.Stdout, c.Stderr = out, out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { c.Wait(); close(done) }()
	t.Cleanup(func() {
		c.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("bird said:\n%s", out.String())
		}
	})
}

func TestBGPWithBIRD(t *testing.T) {
	l := newBGPLab(t, "bgb", "bird")
	l.startBIRD(t)
	l.serve(t, 8081)
	stop2 := l.serve(t, 8082)
	d1 := l.startDirector(t, l.d1, 8081, false)
	l.startDirector(t, l.d2, 8082, false)

	took := l.waitHops(t, 30*time.Second, l.d1, l.d2)
	t.Logf("ECMP route with both directors %v after start", took)
	stop2()
	took = l.waitHops(t, 10*time.Second, l.d1)
	t.Logf("d2 withdrawn %v after its real server stopped", took)
	l.serve(t, 8082)
	l.waitHops(t, 10*time.Second, l.d1, l.d2)
	start := time.Now()
	d1.stop(syscall.SIGTERM)
	l.waitHops(t, 10*time.Second, l.d2)
	t.Logf("d1 gone from the route %v after SIGTERM (hold time 90s)", time.Since(start))
}
