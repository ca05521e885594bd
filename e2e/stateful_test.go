//go:build vm

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cloudflare/ipvs"

	"lbd/api"
	"lbd/internal/apiclient"
	"lbd/internal/netlab"
	"lbd/internal/vmtest"
)

// Stateful failover: two lbd directors (A, priority 150, and B, 100) with
// VRRP and the kernel's connection sync, and a client holding 20
// long-lived connections through the VIP beside a loop of new connections
// (conns_test.go). Established connections must live through every way the
// VIP moves: a crash, a graceful stop, `lbctl failover`, the old master's
// return (only once it is warm), reloads, and an IPv6 and a NAT service.
//
// The timing the lab configures, and what the assertions allow for.
const (
	stAdvert  = 200 * time.Millisecond // advert_interval
	stRefresh = 2 * time.Second        // [sync] refresh_period
	stResync  = 2 * time.Second        // [global] resync_interval
	// The defaults the lab leaves alone: warm_up is refresh_period + 5s,
	// takeover_quiet 4s. The status API's WarmUp, when present, wins.
	stWarmUp = stRefresh + 5*time.Second
	stQuiet  = 4 * time.Second
	// stSlack is what a bound may add for TCG emulation on a loaded host
	// and the test's own polling (an `ip addr` every 50ms, each taking
	// tens of ms in the VM).
	stSlack = 2 * time.Second
	// stSettle is how long the traffic goes on after a takeover's window,
	// so failures that would come later are seen.
	stSettle = 3 * time.Second
	// stSyncedTimeout bounds the wait for the peer to have learned every
	// held connection: the kernel sends a partly filled sync message
	// within 2-3s, refresh_period resends quiet ones.
	stSyncedTimeout = 20 * time.Second
)

// stLab is the stateful lab: a client, directors A and B, and real servers
// on one bridge (DR; NAT with the real servers in 10.79.0.0/24 behind a
// second VIP as their gateway).
type stLab struct {
	*lab
	t       *testing.T
	vips    []netip.Addr // every VIP the VRRP instance owns, the traffic's first
	port    int          // the traffic's service port
	svcs    []stVS       // the virtual servers in both files now
	console string       // [console] with the API token
	token   string
	a, b    *stDirector
	w       *stWatch
	// vrrp, when set, renders d's VRRP tables instead of the one [vrrp]
	// owning vips (active-active: several [[vrrp_instance]]).
	vrrp func(d *stDirector) string
}

// stVS is a virtual server of the lab's files (scheduler rr).
type stVS struct {
	name string
	vip  netip.Addr
	port int
	rs   []rs
}

// stDirector is one of the two lbd directors.
type stDirector struct {
	name string // A or B
	host *netlab.Host
	prio int
	d    *daemon
	api  *apiclient.Client
}

// newStatefulLab builds the lab with nRS real servers. mode is "dr" or
// "nat"; v6 (DR only) makes the service's VIP and real servers IPv6. The
// files hold one service, "web" on the VIP's port 80 with every real
// server; the directors are not started.
func newStatefulLab(t *testing.T, mode string, nRS int, v6 bool) *stLab {
	t.Helper()
	vmtest.Require(t)
	vmtest.Binary(t, "lbd")
	lan := netlab.NewLAN(t, "st", 3+nRS)
	l := &lab{t: t, mode: mode, client: lan.Hosts[0], director: lan.Hosts[1].NS,
		dirMAC: lan.Hosts[1].MAC, directors: lan.Hosts[1:3], vip: lan.IPv4(100)}
	s := &stLab{lab: l, t: t, port: 80,
		a: &stDirector{name: "A", host: lan.Hosts[1], prio: 150},
		b: &stDirector{name: "B", host: lan.Hosts[2], prio: 100}}
	s.console, s.token = hvConsole(t)
	if v6 {
		l.vip = lan.IPv6(100) // fd00:77::64
	}
	s.vips = []netip.Addr{l.vip}
	if mode == "nat" {
		// The real servers' gateway, owned by the same VRRP instance, so
		// their replies follow the master.
		s.vips = append(s.vips, netip.MustParseAddr("10.79.0.1"))
		for _, d := range []*stDirector{s.a, s.b} {
			d.host.Exec("sysctl", "-q", "-w", "net.ipv4.ip_forward=1",
				"net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.eth0.send_redirects=0")
			// The VIP is added as /32: the real servers' subnet is on-link.
			d.host.Exec("ip", "route", "add", "10.79.0.0/24", "dev", d.host.Link)
		}
	}
	var script string
	if mode == "dr" {
		script = realServerScript(t)
	}
	for i, h := range lan.Hosts[3:] {
		name := fmt.Sprintf("rs%d", i+1)
		switch {
		case mode == "nat":
			addr := netip.AddrFrom4([4]byte{10, 79, 0, byte(11 + i)})
			h.Exec("ip", "-4", "addr", "flush", "dev", h.Link)
			h.Exec("ip", "addr", "add", addr.String()+"/24", "dev", h.Link)
			h.Exec("ip", "route", "add", "default", "via", "10.79.0.1")
			h.Exec("sysctl", "-q", "-w", "net.ipv4.conf.all.accept_redirects=0")
			l.addRealServer(name, h.NS, addr, nil)
		case v6:
			h.Exec(script, "--interface", h.Link, "--root", t.TempDir(), "up", l.vip.String())
			r := &realServer{name: name, ns: h.NS, addr: h.IPv6.Addr(), mac: h.MAC, servers: map[int]*http.Server{}}
			stServe(t, r, "tcp6", s.port)
			l.rs = append(l.rs, r)
		default:
			h.Exec(script, "--interface", h.Link, "--root", t.TempDir(), "up", l.vip.String())
			l.addRealServer(name, h.NS, h.IPv4.Addr(), h.MAC)
		}
	}
	web := stVS{name: "web", vip: l.vip, port: s.port}
	for _, r := range l.rs[:min(2, len(l.rs))] {
		web.rs = append(web.rs, rs{name: r.name, addr: r.addr})
	}
	s.svcs = []stVS{web}
	s.w = s.watch()
	return s
}

// stServe serves HTTP on network ("tcp6") and port in the real server's
// namespace, answering "NAME REMOTEADDR" like the lab's servers.
func stServe(t *testing.T, r *realServer, network string, port int) {
	t.Helper()
	ln, err := r.ns.Listen(network, fmt.Sprintf(":%d", port))
	if err != nil {
		t.Fatalf("%s: listen on %s :%d: %v", r.name, network, port, err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			fmt.Fprintf(w, "%s %s\n", r.name, req.RemoteAddr)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go srv.Serve(ln)
	r.mu.Lock()
	r.servers[port] = srv
	r.mu.Unlock()
	t.Cleanup(func() { r.stop(port) })
}

// config renders d's lbd.toml: the lab's services, the console, VRRP with
// d's priority and the sync settings under test.
func (s *stLab) config(d *stDirector) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[global]\nnode_name = %q\ninterface = \"eth0\"\nforwarding = %q\nresync_interval = %q\n",
		d.name, s.mode, stResync)
	for _, v := range s.svcs {
		fmt.Fprintf(&b, "\n[[virtual_server]]\nname = %q\nvip = %q\nport = %d\nscheduler = \"rr\"\n", v.name, v.vip, v.port)
		for _, r := range v.rs {
			fmt.Fprintf(&b, "  [[virtual_server.real_server]]\n  name = %q\n  address = %q\n", r.name, r.addr)
			if r.weight != 0 {
				fmt.Fprintf(&b, "  weight = %d\n", r.weight)
			}
		}
	}
	b.WriteString("\n" + s.console)
	var vips []string
	for _, v := range s.vips {
		vips = append(vips, strconv.Quote(v.String()))
	}
	if s.vrrp != nil {
		b.WriteString("\n" + s.vrrp(d))
	} else {
		fmt.Fprintf(&b, "\n[vrrp]\nvrid = 51\npriority = %d\nadvert_interval = %q\nvips = [%s]\n",
			d.prio, stAdvert, strings.Join(vips, ", "))
	}
	fmt.Fprintf(&b, "\n[sync]\nrefresh_period = %q\n", stRefresh)
	return b.String()
}

// rules is the IPVS table both directors must program for s.svcs.
func (s *stLab) rules() string {
	fwd := ipvs.DirectRoute
	if s.mode == "nat" {
		fwd = ipvs.Masquerade
	}
	tab := vmtest.Table{}
	for _, v := range s.svcs {
		fam := ipvs.INET
		if v.vip.Is6() {
			fam = ipvs.INET6
		}
		svc := vmtest.Service{}
		svc.Address, svc.Port, svc.Protocol, svc.Family, svc.Scheduler = v.vip, uint16(v.port), ipvs.TCP, fam, "rr"
		for _, r := range v.rs {
			w := r.weight
			if w == 0 {
				w = 1
			}
			if r.quiesced {
				w = 0
			}
			d := ipvs.DestinationExtended{}
			d.Address, d.Port, d.FwdMethod, d.Weight, d.Family = r.addr, uint16(v.port), fwd, uint32(w), fam
			svc.Dests = append(svc.Dests, d)
		}
		tab[svc.Key()] = svc
	}
	return sortDests(tab).Rules()
}

// start (re)starts lbd on d. The process belongs to the whole test (it
// outlives a subtest), and so does the API client.
func (s *stLab) start(d *stDirector) {
	bin := vmtest.Binary(s.t, "lbd")
	if d.d == nil {
		d.d = &daemon{config: s.t.TempDir() + "/lbd.toml"}
	}
	d.d.write(s.t, s.config(d))
	d.d.Proc = vmtest.Start(s.t, "lbd "+d.name+" in "+d.host.Name, d.host.Cmd(bin, "-config", d.d.config))
	if d.api == nil {
		d.api = hvAPI(s.t, d.host.NS, s.token)
	}
}

// status asks d's API for its status, within 3s.
func (d *stDirector) status() (*api.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return d.api.Status(ctx)
}

// holdsVIPs reports whether d has every VIP on its interface (all=true)
// or any of them (all=false), as the watch saw last (at most 25ms ago).
func (s *stLab) holdsVIPs(t testing.TB, d *stDirector, all bool) bool {
	return s.w.holds(d, all)
}

// waitMaster waits until master holds every VIP and other (unless nil)
// none, and returns since when that is so (the watch's poll, within 25ms).
func (s *stLab) waitMaster(t testing.TB, master, other *stDirector, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if ok, since := s.w.master(master, other); ok {
			return since
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not master within %v:%s", master.name, timeout, s.w.timeline(deadline.Add(-timeout-5*time.Second), deadline, deadline.Add(-timeout)))
		}
		if master.d.Exited() {
			t.Fatalf("lbd %s exited:\n%s", master.name, strings.Join(master.d.Lines(), "\n"))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// waitRules waits until d's IPVS table is s.rules().
func (s *stLab) waitRules(t testing.TB, d *stDirector) {
	t.Helper()
	c := vmtest.IPVS(t, d.host.NS)
	want := s.rules()
	vmtest.Eventually(t, programTimeout, 100*time.Millisecond, "IPVS table of "+d.name, func() (bool, string) {
		if d.d.Exited() {
			t.Fatalf("lbd %s exited:\n%s", d.name, strings.Join(d.d.Lines(), "\n"))
		}
		tab, err := vmtest.ReadTable(c)
		if err != nil {
			return false, err.Error()
		}
		got := tab.Rules()
		return got == want, fmt.Sprintf("have\n%swant\n%s", got, want)
	})
}

// waitAPI waits until d's console answers.
func (s *stLab) waitAPI(t testing.TB, d *stDirector) *api.Status {
	t.Helper()
	var st *api.Status
	vmtest.Eventually(t, programTimeout, 100*time.Millisecond, "status API of "+d.name, func() (bool, string) {
		if d.d.Exited() {
			t.Fatalf("lbd %s exited:\n%s", d.name, strings.Join(d.d.Lines(), "\n"))
		}
		var err error
		st, err = d.status()
		if err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	return st
}

// up starts both directors (A first), waits for their tables, A's
// mastership, the client's traffic through A, and both sync daemons on
// both directors.
func (s *stLab) up() {
	t := s.t
	t.Helper()
	s.start(s.a)
	s.start(s.b)
	s.waitRules(t, s.a)
	s.waitRules(t, s.b)
	s.waitMaster(t, s.a, s.b, failoverTimeout)
	s.waitServed(t, s.a)
	for _, d := range []*stDirector{s.a, s.b} {
		s.waitAPI(t, d)
		vmtest.Eventually(t, programTimeout, 200*time.Millisecond, "sync daemons of "+d.name, func() (bool, string) {
			out := d.host.Exec("ipvsadm", "-L", "--daemon")
			return strings.Contains(out, "master sync daemon") && strings.Contains(out, "backup sync daemon"), "ipvsadm -L --daemon: " + out
		})
	}
}

// waitServed waits until a request on a new connection to the traffic's
// VIP succeeds and the client's neighbour entry for it is d's MAC.
func (s *stLab) waitServed(t testing.TB, d *stDirector) {
	t.Helper()
	target := netip.AddrPortFrom(s.vips[0], uint16(s.port))
	vmtest.Eventually(t, failoverTimeout, 200*time.Millisecond, "traffic via "+d.name, func() (bool, string) {
		tr := &traffic{o: trafficOptions{Dial: s.client.Dial, Target: target}}
		if _, err := tr.fresh(time.Now().Add(5 * time.Second)); err != nil {
			return false, "request: " + err.Error()
		}
		mac, state, ok := s.client.Neighbour(t, s.vips[0])
		return ok && mac.String() == d.host.MAC.String(), fmt.Sprintf("client's neighbour entry for the VIP: %v %v, want %v", mac, state, d.host.MAC)
	})
}

// load is one scenario's traffic and what the directors' connection tables
// said about its held connections meanwhile.
type load struct {
	s     *stLab
	tr    *traffic
	w     *connWatch
	marks map[*stDirector]logMark // where the scenario began in each lbd's log
}

type logMark struct {
	proc  *vmtest.Proc
	lines int
}

// startLoad starts the stateful traffic to the VIP and the watch of both
// directors' connection tables.
func (s *stLab) startLoad(t *testing.T) *load {
	t.Helper()
	ld := &load{s: s, marks: map[*stDirector]logMark{}}
	for _, d := range []*stDirector{s.a, s.b} {
		if d.d != nil && d.d.Proc != nil {
			ld.marks[d] = logMark{d.d.Proc, d.d.Mark()}
		}
	}
	o := statefulTraffic(s.client.Dial, netip.AddrPortFrom(s.vips[0], uint16(s.port)))
	o.FreshPause = 10 * time.Millisecond // "continuously", without starving the one emulated CPU
	ld.tr = startTraffic(t, o)
	ld.w = watchConns(t, ld.tr.started, ld.tr.localPorts(), s.a, s.b)
	return ld
}

// waitSynced waits until d's connection table has every held connection
// ESTABLISHED (learned through the sync daemon when d is the backup).
func (ld *load) waitSynced(t *testing.T, d *stDirector) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(stSyncedTimeout)
	for {
		n := ld.w.established(d.name)
		if n == len(ld.tr.held) {
			t.Logf("%s has all %d held connections in its table %v after the traffic started (waited %v)",
				d.name, n, time.Since(ld.tr.started).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s has %d of %d held connections ESTABLISHED in its table %v after the traffic started:\n%s",
				d.name, n, len(ld.tr.held), time.Since(ld.tr.started).Round(time.Millisecond), ld.w.dump())
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// finish stops the traffic and the watch and logs the report; on a held
// connection's failure it logs what each director's table said about it,
// and the lbd log lines of the scenario.
func (ld *load) finish(t *testing.T) trafficReport {
	t.Helper()
	rep := ld.tr.stop()
	ld.w.stop()
	t.Logf("traffic: %v", rep)
	t.Logf("VIPs, the client's neighbour entry and VRRP adverts meanwhile (from the traffic's start):%s",
		ld.s.w.timeline(rep.Started.Add(-time.Second), rep.Ended, rep.Started))
	return rep
}

// checkHeld asserts that every held connection survived.
func (ld *load) checkHeld(t *testing.T, rep trafficReport, what string) {
	t.Helper()
	if rep.survivors() == len(rep.Held) && len(rep.Held) > 0 {
		return
	}
	var b strings.Builder
	for _, h := range rep.Held {
		if h.Err != nil {
			fmt.Fprintf(&b, "\n  :%d (%s): %v\n%s", h.LocalPort, h.Server, h.Err, ld.w.history(h.LocalPort))
		}
	}
	t.Errorf("%s: %d of %d held connections survived%s", what, rep.survivors(), len(rep.Held), b.String())
	ld.logDirectors(t)
}

// checkNoFresh asserts that no new connection failed.
func (ld *load) checkNoFresh(t *testing.T, rep trafficReport, what string) {
	t.Helper()
	if rep.FreshOK == 0 {
		t.Errorf("%s: no new connection succeeded at all", what)
	}
	if len(rep.FreshFailures) > 0 {
		t.Errorf("%s: %d new connections failed, want 0:%s", what, len(rep.FreshFailures), ld.explain(rep, rep.FreshFailures))
		ld.logDirectors(t)
	}
}

// explain lists failed new connections with what the directors' tables
// had for each.
func (ld *load) explain(rep trafficReport, fs []trafficFailure) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "\n  +%v..+%v :%d: %v\n    tables: %s", f.Start.Sub(rep.Started).Round(time.Millisecond),
			f.End.Sub(rep.Started).Round(time.Millisecond), f.LocalPort, f.Err, ld.w.seen(f.LocalPort))
	}
	return b.String()
}

// logDirectors logs both directors' lbd output since the scenario began
// and their connection tables now.
func (ld *load) logDirectors(t *testing.T) {
	t.Helper()
	for _, d := range []*stDirector{ld.s.a, ld.s.b} {
		if d.d == nil || d.d.Proc == nil {
			continue
		}
		m := ld.marks[d]
		if m.proc != nil && m.proc != d.d.Proc { // restarted since: the old process's end too
			t.Logf("lbd %s (the process before the restart) log during the scenario:\n%s", d.name, strings.Join(m.proc.Lines()[m.lines:], "\n"))
			m.lines = 0
		}
		t.Logf("lbd %s log during the scenario:\n%s", d.name, strings.Join(d.d.Lines()[m.lines:], "\n"))
		out, _ := d.host.Run("ipvsadm", "-Lnc")
		t.Logf("ipvsadm -Lnc on %s now (first 40 lines):\n%s", d.name, headLines(out, 40))
	}
}

func headLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append(lines[:n], fmt.Sprintf("... %d more lines", len(lines)-n))
	}
	return strings.Join(lines, "\n")
}

// connWatch reads both directors' connection tables
// (/proc/net/ip_vs_conn_sync, with each entry's origin) every 250ms and
// keeps, for each held connection, every change of its entry on each
// director.
type connWatch struct {
	ports map[int]bool
	names []string
	files []*os.File
	start time.Time
	stopc chan struct{}
	done  chan struct{}
	once  sync.Once

	mu   sync.Mutex
	last []map[int]connEntry
	hist map[int][]string
	raw  []string // the last read of each table, held connections only
	// every other connection's last entry on each director, kept after
	// it leaves the table, to explain a failed new connection
	other []map[int]connSeen
}

type connSeen struct {
	connEntry
	first, last time.Time
}

type connEntry struct {
	state, origin, dest string
}

// watchConns watches the held connections on local ports of ds's tables;
// times are offsets from start.
func watchConns(t *testing.T, start time.Time, ports []int, ds ...*stDirector) *connWatch {
	t.Helper()
	w := &connWatch{ports: map[int]bool{}, start: start, stopc: make(chan struct{}), done: make(chan struct{}),
		hist: map[int][]string{}}
	for _, p := range ports {
		w.ports[p] = true
	}
	for _, d := range ds {
		var f *os.File
		// A /proc/net file shows the namespace of the thread that opened
		// it (thread-self: /proc/self/net is the main thread's).
		if err := d.host.Do(func() (err error) {
			f, err = os.Open("/proc/thread-self/net/ip_vs_conn_sync")
			return err
		}); err != nil {
			t.Fatalf("connection table of %s: %v", d.name, err)
		}
		w.names = append(w.names, d.name)
		w.files = append(w.files, f)
		w.last = append(w.last, map[int]connEntry{})
		w.raw = append(w.raw, "")
		w.other = append(w.other, map[int]connSeen{})
	}
	go w.loop()
	t.Cleanup(w.stop)
	return w
}

func (w *connWatch) stop() {
	w.once.Do(func() {
		close(w.stopc)
		<-w.done
		for _, f := range w.files {
			f.Close()
		}
	})
}

func (w *connWatch) loop() {
	defer close(w.done)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		w.read()
		select {
		case <-w.stopc:
			return
		case <-tick.C:
		}
	}
}

func (w *connWatch) read() {
	for i, f := range w.files {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			continue
		}
		b, err := io.ReadAll(f)
		if err != nil {
			continue
		}
		now := time.Now()
		cur := map[int]connEntry{}
		var raw strings.Builder
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			// Pro FromIP FPrt ToIP TPrt DestIP DPrt State Origin Expires
			if len(f) < 10 || f[0] != "TCP" {
				continue
			}
			port, err := strconv.ParseUint(f[2], 16, 16)
			if err != nil {
				continue
			}
			dport, _ := strconv.ParseUint(f[6], 16, 16)
			e := connEntry{state: f[7], origin: f[8], dest: fmt.Sprintf("%s:%d", procAddr(f[5]), dport)}
			if !w.ports[int(port)] {
				w.mu.Lock()
				o, ok := w.other[i][int(port)]
				if !ok || o.last.Before(now.Add(-time.Minute)) { // a new connection on a reused port
					o = connSeen{first: now}
				}
				o.connEntry, o.last = e, now
				w.other[i][int(port)] = o
				w.mu.Unlock()
				continue
			}
			cur[int(port)] = e
			raw.WriteString(line + "\n")
		}
		w.mu.Lock()
		w.raw[i] = raw.String()
		at := "+" + now.Sub(w.start).Round(time.Millisecond).String()
		for p := range w.ports {
			old, had := w.last[i][p]
			e, has := cur[p]
			switch {
			case has && (!had || e != old):
				w.hist[p] = append(w.hist[p], fmt.Sprintf("%s %s: %s %s -> %s", at, w.names[i], e.state, e.origin, e.dest))
			case !has && had:
				w.hist[p] = append(w.hist[p], fmt.Sprintf("%s %s: gone", at, w.names[i]))
			}
		}
		w.last[i] = cur
		w.mu.Unlock()
	}
}

// procAddr turns /proc/net/ip_vs_conn's address (IPv4 as 8 hex digits,
// IPv6 written out) into the usual form.
func procAddr(s string) string {
	if len(s) == 8 && !strings.Contains(s, ":") {
		v, err := strconv.ParseUint(s, 16, 32)
		if err == nil {
			return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
		}
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.String()
	}
	return s
}

// established counts the held connections ESTABLISHED in the table of the
// director called name, at the last read.
func (w *connWatch) established(name string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := slices.Index(w.names, name)
	n := 0
	for _, e := range w.last[i] {
		if e.state == "ESTABLISHED" {
			n++
		}
	}
	return n
}

// history tells what happened to the entry of the held connection port on
// each director, read every 250ms.
func (w *connWatch) history(port int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.hist[port]) == 0 {
		return "    (never in either director's table)"
	}
	return "    its entries in the directors' tables:\n      " + strings.Join(w.hist[port], "\n      ")
}

// seen says what each director's table last had for the connection from
// the client's port (not a held one), and when, as offsets from the watch's
// start.
func (w *connWatch) seen(port int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var parts []string
	for i, n := range w.names {
		if o, ok := w.other[i][port]; ok {
			parts = append(parts, fmt.Sprintf("%s: %s %s -> %s (seen %s..%s)", n, o.state, o.origin, o.dest,
				offset(o.first, w.start), offset(o.last, w.start)))
		}
	}
	if len(parts) == 0 {
		return "in neither director's table"
	}
	return strings.Join(parts, "; ")
}

// dump is the last read of each table, held connections only.
func (w *connWatch) dump() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var b strings.Builder
	for i, n := range w.names {
		fmt.Fprintf(&b, "%s (Pro FromIP FPrt ToIP TPrt DestIP DPrt State Origin Expires):\n%s", n, w.raw[i])
	}
	return b.String()
}

// crash is scenario 1: A, the master, loses its cable and its lbd is
// killed; B takes over. Every held connection must live on through B, and
// new connections may fail only inside the takeover window: from the
// crash until B holds the VIPs, plus takeover_quiet and slack. A stays cut
// and dead.
func (s *stLab) crash(t *testing.T) {
	ld := s.startLoad(t)
	ld.waitSynced(t, s.b)
	time.Sleep(time.Second)
	s.a.host.Cut(t)
	if err := s.a.d.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	crashed := time.Now()
	took := s.waitMaster(t, s.b, nil, failoverTimeout)
	end := took.Add(stQuiet + stSlack)
	if st, err := s.b.status(); err == nil && st.Sync != nil {
		t.Logf("B's status %v after the crash: guard %q, %d synced and %d local connections",
			time.Since(crashed).Round(time.Millisecond), st.Sync.Guard, st.Sync.SyncedConns, st.Sync.LocalConns)
	}
	time.Sleep(time.Until(end.Add(stSettle)))
	rep := ld.finish(t)
	off := func(at time.Time) string { return "+" + at.Sub(rep.Started).Round(time.Millisecond).String() }
	outside := rep.freshFailuresOutside(crashed, end)
	t.Logf("takeover window: crash at %s, B held the VIPs at %s (%v later), window ends at %s (+ takeover_quiet %v + slack %v); %d new connections failed, %d of them outside the window",
		off(crashed), off(took), took.Sub(crashed).Round(time.Millisecond), off(end), stQuiet, stSlack, len(rep.FreshFailures), len(outside))
	ld.checkHeld(t, rep, "master crash")
	if rep.FreshOK == 0 {
		t.Errorf("master crash: no new connection succeeded at all")
	}
	if len(rep.FreshFailures) > 0 {
		t.Logf("the new connections that failed:%s", ld.explain(rep, rep.FreshFailures))
	}
	if len(outside) > 0 {
		t.Errorf("master crash: %d new connections failed outside the takeover window %s..%s:%s", len(outside), off(crashed), off(end), ld.explain(rep, outside))
		ld.logDirectors(t)
	}
}

// TestStatefulDR is the DR pair through everything but the crash of
// another address family or forwarding method, in one lab (three real
// servers, the third joining the table only in the reload scenario): the
// sync daemon repaired behind lbd's back, reloads under load, a graceful
// stop and `lbctl failover` without a single failed request, the old
// master's return only once warm, and a crash.
func TestStatefulDR(t *testing.T) {
	s := newStatefulLab(t, "dr", 3, false)
	lbctl := vmtest.Binary(t, "lbctl")
	s.up()
	a, b := s.a, s.b

	// Each scenario starts from A as master with both lbds running.
	ready := func(name string) bool {
		if t.Failed() && (a.d.Exited() || b.d.Exited() || !s.holdsVIPs(t, a, true)) {
			t.Logf("not running %q: an earlier scenario left A not the master or an lbd stopped", name)
			return false
		}
		return true
	}

	t.Run("sync daemon stopped behind lbd's back", func(t *testing.T) {
		for _, c := range []struct {
			d    *stDirector
			role string
		}{{a, "master"}, {b, "backup"}, {a, "backup"}, {b, "master"}} {
			s.checkDaemonRepair(t, c.d, c.role)
		}
	})

	if ready("reloads") {
		t.Run("reloads under load", func(t *testing.T) { s.reloads(t) })
	}

	if ready("graceful stop") {
		ranStop := false // the subtest ran (-run may leave it out)
		t.Run("graceful stop", func(t *testing.T) {
			ranStop = true
			ld := s.startLoad(t)
			ld.waitSynced(t, b)
			time.Sleep(time.Second)
			stopped := time.Now()
			if err := a.d.Stop(); err != nil { // SIGTERM, waits for the exit
				t.Errorf("lbd A on SIGTERM: %v", err)
			}
			exited := time.Now()
			took := s.waitMaster(t, b, a, failoverTimeout)
			time.Sleep(time.Until(took.Add(stQuiet + stSlack + stSettle)))
			rep := ld.finish(t)
			t.Logf("SIGTERM at +%v, A exited %v later, B held the VIPs %v after the signal",
				stopped.Sub(rep.Started).Round(time.Millisecond), exited.Sub(stopped).Round(time.Millisecond), took.Sub(stopped).Round(time.Millisecond))
			ld.checkHeld(t, rep, "graceful stop")
			ld.checkNoFresh(t, rep, "graceful stop")
		})
		if ranStop {
			if !a.d.Exited() || !s.holdsVIPs(t, b, true) {
				t.Fatalf("after the graceful stop: A exited %v, B holds the VIPs %v", a.d.Exited(), s.holdsVIPs(t, b, true))
			}
			t.Run("returns after a stop, preempts once warm", func(t *testing.T) { s.returnWarm(t, false) })
		}
	}

	if ready("lbctl failover") {
		t.Run("lbctl failover", func(t *testing.T) {
			const holdoff = 20 * time.Second
			ld := s.startLoad(t)
			ld.waitSynced(t, b)
			time.Sleep(time.Second)
			mark := a.d.Mark()
			asked := time.Now()
			var out bytes.Buffer
			cmd := a.host.Cmd(lbctl, "--url", "http://127.0.0.1:3636", "--token", s.token, "failover", "--holdoff", holdoff.String())
			cmd.Stdout, cmd.Stderr = &out, &out
			err := ctlRunWithin(cmd, 30*time.Second)
			answered := time.Now()
			if err != nil {
				t.Errorf("lbctl failover on A: %v\n%s", err, out.String())
			}
			took := s.waitMaster(t, b, a, failoverTimeout)
			time.Sleep(time.Until(took.Add(stQuiet + stSlack + stSettle)))
			rep := ld.finish(t)
			t.Logf("lbctl failover at +%v answered %v later (%q); B held the VIPs %v after the request",
				asked.Sub(rep.Started).Round(time.Millisecond), answered.Sub(asked).Round(time.Millisecond),
				strings.TrimSpace(out.String()), took.Sub(asked).Round(time.Millisecond))
			// lbctl itself takes seconds to start under emulation; lbd's
			// own log says when the request arrived and when A resigned.
			for _, what := range []string{"failover requested", "resigned"} {
				if line, ok := a.d.WaitLine(mark, 0, contains(what)); ok {
					if at, ok := hvLogTime(line); ok {
						t.Logf("A's log: %q at +%v; B held the VIPs %v later", what, at.Sub(rep.Started).Round(time.Millisecond), took.Sub(at).Round(time.Millisecond))
					}
				}
			}
			ld.checkHeld(t, rep, "lbctl failover")
			ld.checkNoFresh(t, rep, "lbctl failover")

			// When the hold-off ends, A (warm: it never stopped) preempts
			// again; the connections made through B live on.
			if time.Since(asked) > holdoff-3*time.Second {
				t.Logf("the hold-off is nearly over already; not measuring A's return")
				s.waitMaster(t, a, b, holdoff+failoverTimeout)
				return
			}
			ld = s.startLoad(t)
			ld.waitSynced(t, a)
			back := s.waitMaster(t, a, b, holdoff+failoverTimeout)
			time.Sleep(time.Until(back.Add(stQuiet + stSlack + stSettle)))
			rep = ld.finish(t)
			t.Logf("A preempted again %v after the failover request (hold-off %v); %d new connections failed meanwhile",
				back.Sub(asked).Round(time.Millisecond), holdoff, len(rep.FreshFailures))
			if back.Sub(asked) < holdoff {
				// Not a preemption if B went silent (a stalled VM): then A
				// must take over, hold-off or not.
				if g := s.w.maxGap("B", asked, back.Add(time.Second)); g >= 3*stAdvert {
					t.Logf("A took the VIPs back %v after `lbctl failover --holdoff %v`, but B's adverts had paused for %v: not a preemption",
						back.Sub(asked).Round(time.Millisecond), holdoff, g.Round(time.Millisecond))
				} else {
					t.Errorf("A preempted %v after `lbctl failover --holdoff %v` (B's adverts never paused for more than %v)",
						back.Sub(asked).Round(time.Millisecond), holdoff, g.Round(time.Millisecond))
				}
			}
			ld.checkHeld(t, rep, "A's return after the hold-off")
		})
	}

	if ready("crash") {
		ranCrash := false
		t.Run("master crash", func(t *testing.T) { ranCrash = true; s.crash(t) })
		if ranCrash {
			if !s.holdsVIPs(t, b, true) || b.d.Exited() {
				t.Fatalf("after the crash B is not the master")
			}
			t.Run("returns after a crash, preempts once warm", func(t *testing.T) { s.returnWarm(t, true) })
		}
	}
}

// returnWarm is scenario 3: with B the master and traffic through it, A's
// lbd starts again (after a crash, its cable is plugged back first). A must
// not take the VIPs while it is not warm (its status says Warm false and
// it holds no VIP during the first part of warm_up), must take them once
// warm, and every held connection lives through the preemption.
func (s *stLab) returnWarm(t *testing.T, crashed bool) {
	a, b := s.a, s.b
	ld := s.startLoad(t)
	time.Sleep(time.Second)
	if crashed {
		a.host.Heal(t)
		s.w.note(time.Now(), "A's cable plugged back")
	}
	started := time.Now()
	s.w.note(started, "A's lbd starts")
	s.start(a)
	warmUp := stWarmUp
	var (
		apiAt, took          time.Time
		warmFalseSeen        int
		staleSeen, tookEarly bool
		last                 *api.Status
		lastSeen             string
	)
	deadline := started.Add(stWarmUp + failoverTimeout)
	for time.Now().Before(deadline) {
		now := time.Now()
		holds := s.holdsVIPs(t, a, false)
		st, err := a.status()
		if err == nil {
			last = st
			if apiAt.IsZero() {
				apiAt = now
			}
			if st.Sync == nil {
				ld.finish(t)
				t.Fatalf("A's status has no sync section: %+v", st)
			}
			if st.Sync.WarmUp > 0 {
				warmUp = st.Sync.WarmUp
			}
			if !st.Sync.Warm {
				warmFalseSeen++
			}
			// A note when something other than the warm-up's progress
			// changes.
			seen := fmt.Sprintf("warm %v, VRRP %s", st.Sync.Warm, vrrpState(st))
			for _, dm := range st.Sync.Daemons {
				seen += fmt.Sprintf(", %s daemon running %v since %s", dm.Role, dm.Running, offset(dm.Since, started))
			}
			if seen != lastSeen {
				s.w.note(now, "A's status (asked): %s (%s)", seen, st.Sync.WarmReason)
				lastSeen = seen
			}
		}
		// After a crash A still has the VIPs its killed lbd left (held
		// since before the start); the new lbd removes them as it starts
		// VRRP. Otherwise, for "the first part of warm_up" (until a second
		// before it can end), A must hold none.
		stale := holds && s.w.heldSince(a).Before(started)
		staleSeen = staleSeen || stale
		if !stale && now.Before(started.Add(warmUp-time.Second)) {
			if holds && !tookEarly {
				tookEarly = true
				t.Errorf("A holds a VIP %v after its lbd started, before warm_up (%v) could have passed", now.Sub(started).Round(time.Millisecond), warmUp)
			}
			if err == nil && st.Sync.Warm {
				t.Errorf("A says it is warm %v after its lbd started (warm_up %v): %q", now.Sub(started).Round(time.Millisecond), warmUp, st.Sync.WarmReason)
			}
		}
		if ok, since := s.w.master(a, b); ok {
			took = since
			break
		}
		if a.d.Exited() {
			ld.finish(t)
			t.Fatalf("lbd A exited:\n%s", strings.Join(a.d.Lines(), "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if took.IsZero() {
		ld.finish(t)
		t.Fatalf("A did not take over within %v of its start; last status: %+v", stWarmUp+failoverTimeout, last)
	}
	if d := took.Sub(started); d < warmUp-time.Second && !tookEarly {
		t.Errorf("A took the VIPs %v after its lbd started, before warm_up (%v) could have passed", d.Round(time.Millisecond), warmUp)
		tookEarly = true
	}
	held := ld.w.established("A")
	if staleSeen {
		t.Logf("A still had the VIPs of its killed lbd when the new one started")
	}
	t.Logf("A's return: API up after %s, took the VIPs after %s (warm_up %v); %d of %d held connections in A's table then",
		offset(apiAt, started), offset(took, started), warmUp, held, len(ld.tr.held))
	if warmFalseSeen == 0 {
		t.Errorf("A's status never said Warm false before A took over (API up after %s)", offset(apiAt, started))
	}
	if st, err := a.status(); err == nil && st.Sync != nil && !st.Sync.Warm {
		t.Errorf("A took over but its status says not warm: %q", st.Sync.WarmReason)
	}
	time.Sleep(time.Until(took.Add(stQuiet + stSlack + stSettle)))
	rep := ld.finish(t)
	t.Logf("%d new connections failed around the preemption", len(rep.FreshFailures))
	ld.checkHeld(t, rep, "preemption by the returning master")
	if tookEarly {
		ld.logDirectors(t)
	}
}

// offset renders at as a duration after ref ("never" when zero).
func offset(at, ref time.Time) string {
	if at.IsZero() {
		return "never"
	}
	return at.Sub(ref).Round(time.Millisecond).String()
}

func vrrpState(st *api.Status) string {
	if st.VRRP == nil {
		return "none"
	}
	return st.VRRP.State
}

// checkDaemonRepair is scenario 6 for one daemon: stopped with ipvsadm in
// d's namespace, it must run again within one resync interval (plus
// slack), as both ipvsadm and d's status API show.
func (s *stLab) checkDaemonRepair(t *testing.T, d *stDirector, role string) {
	t.Helper()
	line := role + " sync daemon"
	if out := d.host.Exec("ipvsadm", "-L", "--daemon"); !strings.Contains(out, line) {
		t.Errorf("%s: no %s before the test: %q", d.name, line, out)
		return
	}
	stopped := time.Now()
	d.host.Exec("ipvsadm", "--stop-daemon", role)
	bound := stResync + stSlack
	var back time.Duration
	for {
		out := d.host.Exec("ipvsadm", "-L", "--daemon")
		if strings.Contains(out, line) {
			back = time.Since(stopped)
			break
		}
		if time.Since(stopped) > bound+10*time.Second {
			t.Errorf("%s: the %s did not run again within %v of `ipvsadm --stop-daemon %s`: %q",
				d.name, line, time.Since(stopped).Round(time.Millisecond), role, out)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%s: %s running again %v after ipvsadm stopped it", d.name, line, back.Round(time.Millisecond))
	if back > bound {
		t.Errorf("%s: %s back after %v, want within resync_interval %v + %v", d.name, line, back.Round(time.Millisecond), stResync, stSlack)
	}
	vmtest.Eventually(t, 10*time.Second, 200*time.Millisecond, d.name+"'s status after the repair", func() (bool, string) {
		st, err := d.status()
		if err != nil {
			return false, err.Error()
		}
		if st.Sync == nil {
			return false, "no sync section in the status"
		}
		for _, dm := range st.Sync.Daemons {
			if dm.Role == role {
				ok := dm.Running && !dm.Since.Before(stopped) && dm.Error == ""
				return ok, fmt.Sprintf("%s daemon %+v (stopped at %s)", role, dm, stopped.Format("15:04:05.000"))
			}
		}
		return false, fmt.Sprintf("no %s daemon in %+v", role, st.Sync.Daemons)
	})
}

// reloads is scenario 4: ten SIGHUP reloads of both directors 200ms apart,
// each file changing the table (a weight, a third real server, a second
// service on the VIP, and back), under load: no request may fail and every
// held connection lives on.
func (s *stLab) reloads(t *testing.T) {
	rs1, rs2, rs3 := s.rs[0], s.rs[1], s.rs[2]
	web := func(w2 int, third bool) stVS {
		v := stVS{name: "web", vip: s.vip, port: s.port, rs: []rs{{name: rs1.name, addr: rs1.addr}, {name: rs2.name, addr: rs2.addr, weight: w2}}}
		if third {
			v.rs = append(v.rs, rs{name: rs3.name, addr: rs3.addr})
		}
		return v
	}
	api8080 := stVS{name: "api", vip: s.vip, port: 8080, rs: []rs{{name: rs1.name, addr: rs1.addr}, {name: rs2.name, addr: rs2.addr}}}
	steps := [][]stVS{
		{web(2, false)},         // a weight
		{web(2, true)},          // a real server more
		{web(2, true), api8080}, // a service more
		{web(0, false)},         // back
		{web(2, false)},         //
		{web(2, true)},          //
		{web(2, true), api8080}, //
		{web(0, false)},         //
		{web(2, false)},         //
		{web(2, true)},          // the last: rs3 at weight 1
	}
	ld := s.startLoad(t)
	ld.waitSynced(t, s.b)
	time.Sleep(time.Second)
	var counts []uint64
	for _, d := range []*stDirector{s.a, s.b} {
		if st, err := d.status(); err == nil {
			counts = append(counts, st.Counters["reloads"])
		}
	}
	first := time.Now()
	for i, svcs := range steps {
		if i > 0 {
			time.Sleep(time.Until(first.Add(time.Duration(i) * 200 * time.Millisecond)))
		}
		s.svcs = svcs
		for _, d := range []*stDirector{s.a, s.b} {
			d.d.write(t, s.config(d))
			if err := d.d.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("10 reloads of both directors in %v", time.Since(first).Round(time.Millisecond))
	s.waitRules(t, s.a)
	s.waitRules(t, s.b)
	time.Sleep(2 * stResync) // two resyncs later, still nothing fails
	rep := ld.finish(t)
	for i, d := range []*stDirector{s.a, s.b} {
		if st, err := d.status(); err == nil && i < len(counts) {
			t.Logf("lbd %s: reloads counter %d -> %d", d.name, counts[i], st.Counters["reloads"])
		}
	}
	ld.checkHeld(t, rep, "reloads")
	ld.checkNoFresh(t, rep, "reloads")
	if !s.holdsVIPs(t, s.a, true) || s.holdsVIPs(t, s.b, false) {
		t.Errorf("the reloads moved the VIPs: A holds them %v, B holds one %v", s.holdsVIPs(t, s.a, true), s.holdsVIPs(t, s.b, false))
	}
}
