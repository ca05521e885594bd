//go:build vm

package e2e

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"lbd/internal/netlab"
	"lbd/internal/vmtest"
)

// BenchmarkStatefulFailover is the VM half of `make bench-failover`: what
// clients see when the master director of a DR pair dies, with connection
// sync, lbd against keepalived's lvs_sync_daemon, in one VM run.
//
// Each trial builds a fresh lab, the topology of newDRLabN(t, 2): client,
// two directors and two real servers (VIP on lo, scripts/realserver.sh) on
// one bridge, one virtual server VIP:80 (rr over both real servers). The
// daemons are either two lbd processes with [vrrp] (VRID 51, priorities
// 200/100, advert 200ms) and [sync], or two keepalived processes with the
// same VRRP instance, `lvs_sync_daemon eth0 VI_1` and the same
// virtual_server (keepalived programs IPVS itself). The master starts
// first and takes the VIP, then the backup. The client holds 20 keep-alive
// connections through the VIP (a request on each every 50ms, the traffic
// harness of conns_test.go) and opens a new connection every 20ms. Then the
// master's cable is cut and its daemon SIGKILLed (a box that dies), at the
// same phases of its advert cycle for both daemons (seen on the client's
// wire), and the trial measures:
//
//   - survived: held connections still answered at the end of the
//     observation window (at least 12s after the kill, 5s after the first
//     new connection succeeded), without a single failed request (the
//     harness's rules: an error, a 10s timeout, or another real server);
//   - outage: from the kill (the cut) to the earliest end of a successful
//     new connection (connect and HTTP request) started after it;
//   - takeover (in the details): the outage less the rest of the backup's
//     Master_Down_Interval at the kill, i.e. what the daemon and the VM
//     add to what VRRP makes everyone wait.
//
// Run with -benchtime 1x (one trial per sub-benchmark); LBD_FAILOVER_TRIALS
// sets the trials per daemon (default 3: the VM emulates its CPUs);
// LBD_BENCH_DEBUG=1 prints what the new master logged after the kill.
// Nothing is assumed about lbd's sync: a daemon without it shows 0/20.
func BenchmarkStatefulFailover(b *testing.B) {
	vmtest.Require(b)
	netlab.Require(b, "keepalived")
	lbd := vmtest.Binary(b, "lbd")
	trials := 3
	if s := os.Getenv("LBD_FAILOVER_TRIALS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("LBD_FAILOVER_TRIALS=%q", s)
		}
		trials = n
	}
	// keepalived's pid and run files default to /run/keepalived; every
	// path it is given here is per daemon, but the directory must exist
	// (the VM's /run is an empty tmpfs).
	if err := os.MkdirAll("/run/keepalived", 0o755); err != nil {
		b.Fatal(err)
	}
	impls := []string{"lbd", "keepalived"}
	results := map[string][]*sfbResult{}
	for i := 1; i <= trials; i++ {
		for _, impl := range impls {
			r := &sfbResult{impl: impl, stage: "not started"}
			results[impl] = append(results[impl], r)
			// The same crash phases for both daemons, spread over the
			// advert cycle as random crashes would be.
			phase := time.Duration(2*i-1) * sfbAdvert / time.Duration(2*trials)
			var reruns []string
			for run := 1; ; run++ {
				b.Run(fmt.Sprintf("trial%d/%s", i, impl), func(b *testing.B) {
					*r = sfbResult{impl: impl, reruns: reruns}
					sfbTrial(b, r, lbd, phase)
				})
				if r.unstable == "" || run == sfbRuns {
					break
				}
				reruns = append(reruns, r.unstable)
				fmt.Printf("trial %d of %s: not steady before the kill (%s); once more\n", i, impl, r.unstable)
			}
		}
		fmt.Printf("%s trial %d/%d: %s | %s\n", sfbTitle, i, trials,
			results["lbd"][i-1].side(), results["keepalived"][i-1].side())
		fmt.Printf("    %s | %s\n", results["lbd"][i-1].detail(), results["keepalived"][i-1].detail())
	}
	fmt.Printf("\n%s, median of %d trials: %s | %s\n", sfbTitle, trials,
		sfbSummary(results["lbd"]), sfbSummary(results["keepalived"]))
	for _, impl := range impls {
		fmt.Printf("    %s\n", sfbTotals(results[impl]))
	}
}

const (
	// sfbRuns is how often a trial is tried when the lab is not steady
	// before the kill.
	sfbRuns   = 3
	sfbConns  = 20
	sfbAdvert = 200 * time.Millisecond
	sfbVRID   = 51
	sfbPort   = 80
	// sfbWindow is the least observation after the kill: lbd's takeover
	// quiet (4s) and a few TCP retransmissions.
	sfbWindow = 12 * time.Second
	// sfbAfterFresh is the least observation after the first new
	// connection through the new master.
	sfbAfterFresh = 5 * time.Second
	// sfbGiveUp bounds the wait for a new connection to succeed.
	sfbGiveUp = 40 * time.Second
	// sfbRecent: a held connection whose last answer is older than this at
	// the end of the window is stuck, not surviving.
	sfbRecent = 3 * time.Second
	// sfbProbeEvery is how often a new connection starts.
	sfbProbeEvery = 20 * time.Millisecond
	// sfbProbeTimeout bounds a new connection's attempt, its first SYN
	// retransmission included.
	sfbProbeTimeout = 3 * time.Second
	// sfbSetup bounds each wait while the lab comes up (TCG is slow).
	sfbSetup = 30 * time.Second
)

var sfbTitle = fmt.Sprintf("stateful failover (VM, DR, %d conns, advert %v)", sfbConns, sfbAdvert)

// sfbResult is one trial of one daemon.
type sfbResult struct {
	impl      string
	stage     string // where the trial is (or failed)
	done      bool   // measured
	synced    int    // held connections in the backup's table before the kill
	survived  int
	outage    time.Duration
	recovered bool          // a new connection succeeded after the kill
	unstable  string        // why the lab was not steady before the kill
	reruns    []string      // why earlier runs of this trial were not measured
	phase     time.Duration // from the master's last advert to the kill
	longest   time.Duration // the slowest answer on a surviving held connection
	note      string        // the first failed held connection's error, daemons' sync state
}

func (r *sfbResult) name() string {
	if r.impl == "keepalived" {
		return "keepalived lvs_sync_daemon"
	}
	return r.impl
}

// side is the trial's half of a result line.
func (r *sfbResult) side() string {
	if r.unstable != "" {
		return fmt.Sprintf("%s NOT MEASURED (not steady before the kill in %d runs)", r.name(), sfbRuns)
	}
	if !r.done {
		return fmt.Sprintf("%s FAILED while %s", r.name(), r.stage)
	}
	return fmt.Sprintf("%s survived %d/%d (%d%%) outage %s", r.name(), r.survived, sfbConns,
		100*r.survived/sfbConns, sfbOutage(r.outage, r.recovered))
}

func (r *sfbResult) detail() string {
	if r.unstable != "" {
		return r.impl + ": " + r.unstable
	}
	if !r.done {
		return r.impl + ": see the sub-benchmark's log"
	}
	s := fmt.Sprintf("%s: killed %v after an advert", r.impl, r.phase.Round(time.Millisecond))
	if r.recovered {
		s += fmt.Sprintf(", takeover %v", r.takeover().Round(time.Millisecond))
	}
	s += fmt.Sprintf(", backup held %d/%d before the kill", r.synced, sfbConns)
	if r.survived > 0 {
		s += fmt.Sprintf(", slowest held answer %v", r.longest.Round(10*time.Millisecond))
	}
	if r.note != "" {
		s += "; " + r.note
	}
	if len(r.reruns) > 0 {
		s += fmt.Sprintf("; measured on run %d (before: %s)", len(r.reruns)+1, strings.Join(r.reruns, "; "))
	}
	return s
}

// takeover is the outage less what the protocol makes anyone wait: the
// rest of the backup's Master_Down_Interval after the kill. It is what the
// daemon and the VM add (noticing, the VIP, gratuitous ARPs, the first
// connection), independent of where in the advert cycle the master died.
func (r *sfbResult) takeover() time.Duration {
	return r.outage - (sfbMasterDown - r.phase)
}

// sfbMasterDown is the backup's (priority 100) Master_Down_Interval:
// 3 adverts and the skew, (256-100)/256 of an advert in centiseconds.
var sfbMasterDown = 3*sfbAdvert + time.Duration(156*int64(sfbAdvert/(10*time.Millisecond))/256)*10*time.Millisecond

func sfbOutage(d time.Duration, ok bool) string {
	if !ok {
		return fmt.Sprintf(">%v (no new connection)", sfbGiveUp)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// sfbSummary is a daemon's half of the summary line: medians over the
// measured trials.
func sfbSummary(rs []*sfbResult) string {
	var surv []int
	var outs, takes []time.Duration
	lost := 0
	name := ""
	for _, r := range rs {
		name = r.name()
		if !r.done {
			continue
		}
		surv = append(surv, r.survived)
		if r.recovered {
			outs = append(outs, r.outage)
			takes = append(takes, r.takeover())
		} else {
			lost++
		}
	}
	if len(surv) == 0 {
		return name + " no trial measured"
	}
	slices.Sort(surv)
	s := surv[len(surv)/2]
	if len(surv)%2 == 0 {
		s = (surv[len(surv)/2-1] + surv[len(surv)/2]) / 2
	}
	out := fmt.Sprintf("%s survived %d/%d (%d%%)", name, s, sfbConns, 100*s/sfbConns)
	if len(outs) > 0 {
		out += fmt.Sprintf(" outage %.2fs (takeover %.2fs)", sfbMedian(outs).Seconds(), sfbMedian(takes).Seconds())
	}
	if lost > 0 {
		out += fmt.Sprintf(" (%d trials without a new connection)", lost)
	}
	if n := len(rs) - len(surv); n > 0 {
		out += fmt.Sprintf(" (%d trials not measured)", n)
	}
	return out
}

func sfbMedian(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// sfbTotals is a daemon's line of totals: every connection of every trial,
// the outage range.
func sfbTotals(rs []*sfbResult) string {
	var surv, synced, n int
	var outs []time.Duration
	for _, r := range rs {
		if !r.done {
			continue
		}
		n++
		surv += r.survived
		synced += r.synced
		if r.recovered {
			outs = append(outs, r.outage)
		}
	}
	s := fmt.Sprintf("%s: %d trials measured of %d; held connections survived %d/%d, in the backup's table before the kill %d/%d",
		rs[0].name(), n, len(rs), surv, n*sfbConns, synced, n*sfbConns)
	if len(outs) > 0 {
		s += fmt.Sprintf("; outage min %.2fs max %.2fs", slices.Min(outs).Seconds(), slices.Max(outs).Seconds())
	}
	return s
}

// sfbTrial runs one failover of impl on a fresh lab and fills r.
func sfbTrial(b *testing.B, r *sfbResult, lbd string, phase time.Duration) {
	r.stage = "building the lab"
	l := newSFBLab(b)
	a, bk := l.directors[0], l.directors[1]

	r.stage = "starting the master"
	master := l.startDirector(r.impl, lbd, a, 200)
	l.waitTable(master, a)
	sfbWait(b, master, "the VIP on "+a.Name, func() (bool, string) {
		return a.HasAddr(b, l.vip), "not yet"
	})
	adverts := l.sniffAdverts(b)
	r.stage = "starting the backup"
	backup := l.startDirector(r.impl, lbd, bk, 100)
	l.waitTable(backup, bk)
	r.stage = "waiting for the sync daemons"
	// The daemons' sync roles, as far as the kernel has them: not a
	// condition (lbd may have no sync yet), a note for the report.
	var daemons string
	deadline := time.Now().Add(10 * time.Second)
	for {
		ma, ba := sfbSyncDaemons(a.NS), sfbSyncDaemons(bk.NS)
		daemons = fmt.Sprintf("sync daemons: master [%s], backup [%s]", ma, ba)
		if strings.Contains(ma, "master") && strings.Contains(ba, "backup") || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if bk.HasAddr(b, l.vip) || !a.HasAddr(b, l.vip) {
		b.Fatalf("%s is not the only master (VIP on the master %v, on the backup %v)", a.Name, a.HasAddr(b, l.vip), bk.HasAddr(b, l.vip))
	}

	r.stage = "starting the traffic"
	sfbWait(b, master, "traffic through "+a.Name, func() (bool, string) {
		if err := l.probe(2 * time.Second); err != nil {
			return false, err.Error()
		}
		mac, _, ok := l.client.Neighbour(b, l.vip)
		return ok && mac.String() == a.MAC.String(), fmt.Sprintf("client's ARP entry for the VIP %v, want %v", mac, a.MAC)
	})
	cut := l.cutter(b, a)
	tr := startTraffic(b, trafficOptions{Dial: l.client.Dial, Target: netip.AddrPortFrom(l.vip, sfbPort), Held: sfbConns})
	p := l.startProber(b)

	// Sync carries a TCP connection once it is established; the kernel
	// sends a partly filled message within about 2s. Wait for all of them
	// on the backup, but not forever: no sync is a result too.
	r.stage = "waiting for the backup to learn the connections"
	deadline = time.Now().Add(8 * time.Second)
	for {
		r.synced = sfbSynced(bk.NS, l.vip, tr.localPorts())
		if r.synced == sfbConns || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	// A busy host can stall the emulated CPUs for seconds: wait until new
	// connections are answered at once again. A stall long enough for the
	// backup to take over (adverts late) breaks connections before the
	// kill: the lab was not steady, the trial is run again.
	r.stage = "checking the traffic before the failover"
	if r.unstable = l.steady(b, master, bk, tr, p, adverts); r.unstable != "" {
		return
	}

	// The master is gone for the LAN once its cable is cut (the daemon's
	// death follows within a millisecond): time from the cut's request.
	// The kernel disables the bridge port first and then waits for RCU
	// readers, which takes up to 100ms under emulation, so the end of the
	// request would be late.
	r.stage = "failing over"
	mark := backup.Mark()
	last, ok := adverts.next(a.IPv4.Addr(), 10*sfbAdvert)
	if !ok {
		b.Fatalf("no advert from the master %v within %v", a.IPv4.Addr(), 10*sfbAdvert)
	}
	noticed := time.Now()
	time.Sleep(time.Until(last.Add(phase)))
	killed := time.Now()
	if err := cut(); err != nil {
		b.Fatalf("cutting %s's cable: %v", a.Name, err)
	}
	cutDone := time.Now()
	master.kill()
	end := killed.Add(sfbWindow)
	for {
		if !r.recovered {
			r.outage, r.recovered = p.firstOKSince(killed)
			if after := killed.Add(r.outage + sfbAfterFresh); r.recovered && after.After(end) {
				end = after
			}
		}
		now := time.Now()
		if now.After(end) && (r.recovered || now.After(killed.Add(sfbGiveUp))) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Where in the cycle it really died (the VM may have woken late); by
	// now the sniffer has read every advert that arrived before the kill.
	r.phase = killed.Sub(adverts.lastBefore(a.IPv4.Addr(), killed))
	rep := tr.report()
	now := time.Now()
	for _, h := range rep.Held {
		switch {
		case h.Err != nil:
			if r.note == "" {
				r.note = fmt.Sprintf("first failure: held :%d on %s at +%v: %v", h.LocalPort, h.Server,
					h.FailedAt.Sub(killed).Round(10*time.Millisecond), h.Err)
			}
		case now.Sub(h.LastOK) > sfbRecent:
			if r.note == "" {
				r.note = fmt.Sprintf("first failure: held :%d on %s unanswered since +%v", h.LocalPort, h.Server,
					h.LastOK.Sub(killed).Round(10*time.Millisecond))
			}
		default:
			r.survived++
			r.longest = max(r.longest, h.MaxLatency)
		}
	}
	if !bk.HasAddr(b, l.vip) {
		r.note = strings.TrimPrefix(r.note+"; the backup does not hold the VIP", "; ")
	}
	r.done = true
	if os.Getenv("LBD_BENCH_DEBUG") != "" {
		fmt.Printf("--- %s: advert %s noticed %v later, cut from %v to %v after it; the master's adverts before: %s\n", b.Name(),
			last.Format("15:04:05.000"), noticed.Sub(last).Round(time.Millisecond), killed.Sub(last).Round(time.Millisecond),
			cutDone.Sub(last).Round(time.Millisecond), adverts.gaps(a.IPv4.Addr(), killed, 10))
		// What the new master said from the kill on (its clock is the
		// VM's; the kill was at killed).
		fmt.Printf("--- %s, killed at %s, outage %v: %s from the kill on:\n", b.Name(), killed.Format("15:04:05.000"),
			r.outage.Round(time.Millisecond), backup.Name)
		for _, line := range backup.Lines()[mark:] {
			fmt.Println("    " + line)
		}
	}
	// One line: a benchmark's log is cut after ten lines (r.note has the
	// first failure).
	tried, answered := p.counts()
	b.Logf("%s; held connections by real server %v, slowest answer %v; new connections: %d tried, %d answered; %s", daemons, rep.servers(),
		rep.heldMaxLatency().Round(time.Millisecond), tried, answered, p.failuresBefore(killed))
	b.ReportMetric(float64(r.survived), "survived/20")
	if r.recovered {
		b.ReportMetric(r.outage.Seconds(), "s-outage")
	}
}

// steady waits until new connections through the master are answered at
// once and says why not if the lab is not steady: the backup sent adverts
// (it took over during a stall), or a held connection failed.
func (l *sfbLab) steady(b *testing.B, master *sfbDirector, backup *netlab.Host, tr *traffic, p *sfbProber, adverts *sfbAdverts) string {
	deadline := time.Now().Add(sfbSetup)
	for {
		if master.Exited() {
			b.Fatalf("%s exited:\n%s", master.Name, strings.Join(master.Lines(), "\n"))
		}
		if at := adverts.lastBefore(backup.IPv4.Addr(), time.Now()); !at.IsZero() {
			return fmt.Sprintf("the backup sent VRRP adverts at %s (adverts late: the VM stalled)", at.Format("15:04:05.000"))
		}
		for _, h := range tr.report().Held {
			if h.Err != nil {
				return fmt.Sprintf("held :%d on %s failed: %v", h.LocalPort, h.Server, h.Err)
			}
		}
		if p.okSince(time.Now().Add(-time.Second)) {
			return ""
		}
		if time.Now().After(deadline) {
			return fmt.Sprintf("no new connection answered in time for %v: %s", sfbSetup, p.failuresBefore(time.Now()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sfbLab is newDRLabN(t, 2) for a benchmark (the lab's helpers take a
// *testing.T): client, two directors, two real servers on one bridge.
type sfbLab struct {
	b         *testing.B
	lan       *netlab.LAN
	client    *netlab.Host
	directors []*netlab.Host
	vip       netip.Addr
	rs        []netip.Addr
}

func newSFBLab(b *testing.B) *sfbLab {
	b.Helper()
	lan := netlab.NewLAN(b, "sfb", 5)
	l := &sfbLab{b: b, lan: lan, client: lan.Hosts[0], directors: lan.Hosts[1:3], vip: lan.IPv4(100)}
	script := realServerScript(b)
	for i, h := range lan.Hosts[3:] {
		h.Exec(script, "--interface", h.Link, "--root", b.TempDir(), "up", l.vip.String())
		name := fmt.Sprintf("rs%d", i+1)
		ln, err := h.Listen("tcp4", fmt.Sprintf(":%d", sfbPort))
		if err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		// The answer the traffic harness expects: "NAME REMOTEADDR".
		srv := &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, "%s %s\n", name, r.RemoteAddr)
			}),
			ReadHeaderTimeout: 30 * time.Second,
		}
		go srv.Serve(ln)
		b.Cleanup(func() { srv.Close() })
		l.rs = append(l.rs, h.IPv4.Addr())
	}
	return l
}

// sfbDirector is one director's daemon, lbd or keepalived.
type sfbDirector struct {
	*vmtest.Proc
	cmd      *exec.Cmd
	pidFiles []string // keepalived's children
}

// kill SIGKILLs the daemon's process group and every process it named in
// a pid file: nothing runs on, nothing says goodbye.
func (d *sfbDirector) kill() {
	if d.cmd == nil || d.cmd.Process == nil {
		return // never started
	}
	syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	for _, f := range d.pidFiles {
		if s, err := os.ReadFile(f); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(s))); err == nil && pid > 1 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

func (l *sfbLab) startDirector(impl, lbd string, h *netlab.Host, priority int) *sfbDirector {
	l.b.Helper()
	dir := l.b.TempDir()
	var d sfbDirector
	switch impl {
	case "lbd":
		path := filepath.Join(dir, "lbd.toml")
		if err := os.WriteFile(path, []byte(l.lbdConfig(priority)), 0o600); err != nil {
			l.b.Fatal(err)
		}
		d.cmd = h.Cmd(lbd, "-config", path)
	case "keepalived":
		path := filepath.Join(dir, "keepalived.conf")
		if err := os.WriteFile(path, []byte(l.keepalivedConfig(priority)), 0o644); err != nil {
			l.b.Fatal(err)
		}
		// -t parses the file in the namespace (it looks the interface up).
		h.Exec("keepalived", "-t", "-f", path)
		d.pidFiles = []string{filepath.Join(dir, "keepalived.pid"), filepath.Join(dir, "vrrp.pid"), filepath.Join(dir, "checkers.pid")}
		d.cmd = h.Cmd("keepalived", "-n", "-l", "-G", "-D", "-f", path,
			"-p", d.pidFiles[0], "-r", d.pidFiles[1], "-c", d.pidFiles[2])
	default:
		l.b.Fatalf("unknown daemon %q", impl)
	}
	// After Proc's own stop (cleanups run last-in first-out): whatever
	// keepalived's children left running.
	l.b.Cleanup(d.kill)
	d.Proc = vmtest.Start(l.b, impl+" in "+h.Name, d.cmd)
	return &d
}

// lbdConfig is the lab's table for lbd, with VRRP and connection sync.
func (l *sfbLab) lbdConfig(priority int) string {
	var s strings.Builder
	fmt.Fprintf(&s, "[global]\ninterface = \"eth0\"\nforwarding = \"dr\"\nresync_interval = \"1s\"\n\n")
	fmt.Fprintf(&s, "[[virtual_server]]\nname = \"web\"\nvip = %q\nport = %d\nscheduler = \"rr\"\n", l.vip, sfbPort)
	for i, a := range l.rs {
		fmt.Fprintf(&s, "  [[virtual_server.real_server]]\n  name = \"rs%d\"\n  address = %q\n", i+1, a)
	}
	fmt.Fprintf(&s, "\n[vrrp]\nvrid = %d\npriority = %d\nadvert_interval = %q\n", sfbVRID, priority, sfbAdvert)
	fmt.Fprintf(&s, "\n[sync]\ninterface = \"eth0\"\n")
	return s.String()
}

// keepalivedConfig is the same for keepalived: VRRPv3 like lbd, the sync
// daemon following the VRRP instance (master daemon on the master, backup
// daemon on the backup; sync id = the VRID), and the virtual server with
// no checker (its real servers are up, as in lbd's table).
func (l *sfbLab) keepalivedConfig(priority int) string {
	var s strings.Builder
	fmt.Fprintf(&s, "global_defs {\n  vrrp_version 3\n  lvs_sync_daemon eth0 VI_1\n}\n")
	fmt.Fprintf(&s, "vrrp_instance VI_1 {\n  state BACKUP\n  interface eth0\n  virtual_router_id %d\n  priority %d\n  advert_int %s\n",
		sfbVRID, priority, strconv.FormatFloat(sfbAdvert.Seconds(), 'f', -1, 64))
	fmt.Fprintf(&s, "  virtual_ipaddress {\n    %s/32 dev eth0\n  }\n}\n", l.vip)
	fmt.Fprintf(&s, "virtual_server %s %d {\n  lb_algo rr\n  lb_kind DR\n  protocol TCP\n", l.vip, sfbPort)
	for _, a := range l.rs {
		fmt.Fprintf(&s, "  real_server %s %d {\n    weight 1\n  }\n", a, sfbPort)
	}
	fmt.Fprintf(&s, "}\n")
	return s.String()
}

// waitTable waits until the director in h has the virtual server with both
// real servers in IPVS.
func (l *sfbLab) waitTable(d *sfbDirector, h *netlab.Host) {
	l.b.Helper()
	want := []string{fmt.Sprintf(`(?m)^TCP\s+%s:%d\s+rr`, regexp.QuoteMeta(l.vip.String()), sfbPort)}
	for _, a := range l.rs {
		want = append(want, fmt.Sprintf(`(?m)^\s+->\s+%s:%d\s+Route\s+1\s`, regexp.QuoteMeta(a.String()), sfbPort))
	}
	sfbWait(l.b, d, "the IPVS table in "+h.Name, func() (bool, string) {
		out, err := h.Run("ipvsadm", "-Ln")
		if err != nil {
			return false, err.Error()
		}
		for _, w := range want {
			if !regexp.MustCompile(w).MatchString(out) {
				return false, out
			}
		}
		return true, ""
	})
}

// sfbWait is vmtest.Eventually that gives up at once, with the daemon's
// output, when the daemon has exited.
func sfbWait(b *testing.B, d *sfbDirector, what string, cond func() (bool, string)) {
	b.Helper()
	vmtest.Eventually(b, sfbSetup, 100*time.Millisecond, what, func() (bool, string) {
		if d.Exited() {
			b.Fatalf("%s exited:\n%s", d.Name, strings.Join(d.Lines(), "\n"))
		}
		return cond()
	})
}

// sfbSyncDaemons is `ipvsadm -L --daemon` in ns on one line.
func sfbSyncDaemons(ns *netlab.NS) string {
	out, err := ns.Run("ipvsadm", "-L", "--daemon")
	if err != nil {
		return err.Error()
	}
	return strings.Join(strings.Fields(strings.ReplaceAll(out, "\n", "; ")), " ")
}

// sfbConnLine is a line of `ipvsadm -Lnc`: pro expire state source
// virtual destination.
var sfbConnLine = regexp.MustCompile(`(?m)^TCP\s+\S+\s+(\S+)\s+[0-9.]+:(\d+)\s+([0-9.]+):(\d+)\s+\S+$`)

// sfbSynced counts the connections from the client ports ports to vip that
// the director in ns has in its table as established.
func sfbSynced(ns *netlab.NS, vip netip.Addr, ports []int) int {
	out, err := ns.Run("ipvsadm", "-Lnc")
	if err != nil {
		return 0
	}
	// A port may have older entries too (an earlier connection from it).
	seen := map[int]bool{}
	for _, m := range sfbConnLine.FindAllStringSubmatch(out, -1) {
		port, _ := strconv.Atoi(m[2])
		if m[1] == "ESTABLISHED" && m[3] == vip.String() && m[4] == strconv.Itoa(sfbPort) && slices.Contains(ports, port) {
			seen[port] = true
		}
	}
	return len(seen)
}

// probe makes one request on a new connection from the client to the VIP.
func (l *sfbLab) probe(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c, err := l.client.Dial("tcp4", netip.AddrPortFrom(l.vip, sfbPort).String(), timeout)
	if err != nil {
		return err
	}
	return sfbRequest(c, deadline)
}

// probeHere is probe on a thread already in the client's namespace.
func (l *sfbLab) probeHere(deadline time.Time) error {
	c, err := net.DialTimeout("tcp4", netip.AddrPortFrom(l.vip, sfbPort).String(), time.Until(deadline))
	if err != nil {
		return err
	}
	return sfbRequest(c, deadline)
}

// sfbRequest makes one HTTP/1.0 request on c and closes it.
func sfbRequest(c net.Conn, deadline time.Time) error {
	defer c.Close()
	_, err := trafficRequest(c, bufio.NewReader(c), "HTTP/1.0", c.LocalAddr().(*net.TCPAddr).Port, deadline)
	return err
}

// sfbProber starts a new connection from the client every 20ms, each in
// its own goroutine, and keeps when each ended and how. The outage ends
// with the earliest answer to an attempt started after the kill: an
// attempt whose SYN was lost and retransmitted (after 1s) ends later than
// one started after the takeover, so long attempts do not stretch the
// measure; they only keep a loaded VM from failing attempts that are
// merely slow.
type sfbProber struct {
	stopc chan struct{}
	wg    sync.WaitGroup

	mu       sync.Mutex
	attempts []sfbAttempt
	skipped  int // ticks that found every worker busy
}

type sfbAttempt struct {
	start, end time.Time
	err        error
}

func (l *sfbLab) startProber(b *testing.B) *sfbProber {
	p := &sfbProber{stopc: make(chan struct{})}
	jobs := make(chan time.Time)
	// Enough workers that a tick never finds them all busy, with every
	// attempt of the last sfbProbeTimeout still waiting. Each one is a
	// thread in the client's namespace for the whole run: no thread to
	// create and no namespace to enter per attempt, which a busy VM feels.
	for range int(sfbProbeTimeout/sfbProbeEvery) + 10 {
		ready := make(chan error, 1)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			err := l.client.Do(func() error {
				ready <- nil
				for {
					var start time.Time
					select {
					case <-p.stopc:
						return nil
					case start = <-jobs:
					}
					err := l.probeHere(start.Add(sfbProbeTimeout))
					p.mu.Lock()
					p.attempts = append(p.attempts, sfbAttempt{start, time.Now(), err})
					p.mu.Unlock()
				}
			})
			if err != nil {
				ready <- err // fn never ran
			}
		}()
		if err := <-ready; err != nil {
			close(p.stopc)
			b.Fatalf("prober in %s: %v", l.client.Name, err)
		}
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(sfbProbeEvery)
		defer tick.Stop()
		for {
			select {
			case <-p.stopc:
				return
			case <-tick.C:
			}
			select {
			case jobs <- time.Now():
			default:
				p.mu.Lock()
				p.skipped++
				p.mu.Unlock()
			}
		}
	}()
	b.Cleanup(func() { close(p.stopc); p.wg.Wait() })
	return p
}

// firstOKSince is how long after t the first successful attempt started at
// or after t ended.
func (p *sfbProber) firstOKSince(t time.Time) (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var first time.Time
	for _, a := range p.attempts {
		if a.err == nil && !a.start.Before(t) && (first.IsZero() || a.end.Before(first)) {
			first = a.end
		}
	}
	return first.Sub(t), !first.IsZero()
}

// okSince reports whether an attempt started at or after t succeeded.
func (p *sfbProber) okSince(t time.Time) bool {
	_, ok := p.firstOKSince(t)
	return ok
}

// counts is how many attempts ended and how many of them succeeded.
func (p *sfbProber) counts() (tried, ok int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range p.attempts {
		if a.err == nil {
			ok++
		}
	}
	return len(p.attempts), ok
}

// failuresBefore summarizes the failed attempts that ended before t.
func (p *sfbProber) failuresBefore(t time.Time) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, tried := 0, 0
	var slowest time.Duration
	kinds := map[string]int{}
	for _, a := range p.attempts {
		if !a.end.Before(t) {
			continue
		}
		tried++
		if a.err == nil {
			slowest = max(slowest, a.end.Sub(a.start))
			continue
		}
		n++
		msg := a.err.Error()
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
		kinds[msg]++
	}
	return fmt.Sprintf("%d of %d new connections failed before the kill %v, slowest success %v, %d not started (every worker busy)",
		n, tried, kinds, slowest.Round(time.Millisecond), p.skipped)
}

// sfbAdverts records when VRRP adverts reach the client, by source, so a
// trial can kill the master at a chosen phase of its advert cycle.
type sfbAdverts struct {
	mu   sync.Mutex
	seen []sfbAdvertSeen
}

type sfbAdvertSeen struct {
	at  time.Time
	src netip.Addr
}

func (l *sfbLab) sniffAdverts(b *testing.B) *sfbAdverts {
	var c *net.IPConn
	err := l.client.Do(func() error {
		ifi, err := net.InterfaceByName(l.client.Link)
		if err != nil {
			return err
		}
		pc, err := net.ListenPacket("ip4:112", "0.0.0.0")
		if err != nil {
			return err
		}
		c = pc.(*net.IPConn)
		// The kernel's arrival time: the reader may run late in a busy VM.
		rc, err := c.SyscallConn()
		if err == nil {
			var serr error
			err = rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
			})
			err = errors.Join(err, serr)
		}
		if err == nil {
			err = ipv4.NewPacketConn(c).JoinGroup(ifi, &net.IPAddr{IP: net.IPv4(224, 0, 0, 18)})
		}
		if err != nil {
			c.Close()
		}
		return err
	})
	if err != nil {
		b.Fatalf("advert sniffer in %s: %v", l.client.Name, err)
	}
	s := &sfbAdverts{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf, oob := make([]byte, 1500), make([]byte, 128)
		for {
			_, oobn, _, src, err := c.ReadMsgIP(buf, oob)
			if err != nil {
				return
			}
			at := time.Now()
			if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
				for _, m := range msgs {
					if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
						at = time.Unix(int64(binary.NativeEndian.Uint64(m.Data[0:])), int64(binary.NativeEndian.Uint64(m.Data[8:])))
					}
				}
			}
			if a, ok := netip.AddrFromSlice(src.IP.To4()); ok {
				s.mu.Lock()
				s.seen = append(s.seen, sfbAdvertSeen{at, a})
				s.mu.Unlock()
			}
		}
	}()
	b.Cleanup(func() { c.Close(); <-done })
	return s
}

// next waits for the next advert from src and returns its arrival.
func (s *sfbAdverts) next(src netip.Addr, timeout time.Duration) (time.Time, bool) {
	now := time.Now()
	deadline := now.Add(timeout)
	for time.Now().Before(deadline) {
		if at := s.lastBefore(src, time.Now()); at.After(now) {
			return at, true
		}
		time.Sleep(time.Millisecond)
	}
	return time.Time{}, false
}

// lastBefore is the arrival of the last advert from src before t.
func (s *sfbAdverts) lastBefore(src netip.Addr, t time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.seen) - 1; i >= 0; i-- {
		if s.seen[i].src == src && s.seen[i].at.Before(t) {
			return s.seen[i].at
		}
	}
	return time.Time{}
}

// cutter prepares netlab's Host.Cut for h (its bridge port leaves the
// bridge, both links stay up) as one netlink request: `ip` needs tens of
// milliseconds to start under emulation, which would blur the moment of
// the crash.
func (l *sfbLab) cutter(b *testing.B, h *netlab.Host) func() error {
	b.Helper()
	hh, err := netlink.NewHandleAt(h.Handle(), unix.NETLINK_ROUTE)
	if err != nil {
		b.Fatal(err)
	}
	defer hh.Close()
	link, err := hh.LinkByName(h.Link)
	if err != nil {
		b.Fatal(err)
	}
	bh, err := netlink.NewHandleAt(l.lan.Bridge.Handle(), unix.NETLINK_ROUTE)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(bh.Close)
	// A veth's IFLA_LINK is its peer's index, in the peer's namespace.
	port, err := bh.LinkByIndex(link.Attrs().ParentIndex)
	if err != nil || port.Attrs().MasterIndex == 0 {
		b.Fatalf("%s's bridge port (index %d): %v %v", h.Name, link.Attrs().ParentIndex, port, err)
	}
	return func() error { return bh.LinkSetNoMaster(port) }
}

// gaps lists the intervals between the last n adverts from src before t.
func (s *sfbAdverts) gaps(src netip.Addr, t time.Time, n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var at []time.Time
	for i := len(s.seen) - 1; i >= 0 && len(at) <= n; i-- {
		if s.seen[i].src == src && s.seen[i].at.Before(t) {
			at = append(at, s.seen[i].at)
		}
	}
	var out []string
	for i := len(at) - 1; i > 0; i-- {
		out = append(out, at[i-1].Sub(at[i]).Round(time.Millisecond).String())
	}
	return strings.Join(out, " ")
}
