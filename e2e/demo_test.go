//go:build vm && demo

package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"lbd/internal/netlab"
	"lbd/internal/vmtest"
)

// demoAdvert is the VRRP advert interval of the demo's directors: the
// backup declares the master dead after 3 missed adverts plus its skew.
const demoAdvert = 200 * time.Millisecond

// TestDemo is `make demo` (mk/demo.mk): a narrated tour of lbd in the VM,
// on stdout in plain lines. Two lbd directors (VRRP, priorities 150 and
// 100) balance HTTP from a client to two real servers in direct routing:
// the IPVS table, round robin, lbctl status, a drain and enable, a real
// server whose HTTP server dies and is taken out by the health check, and
// the master director killed while a client keeps making requests, with
// the outage that client saw. The `demo` build tag keeps it out of the test
// runs; every step that does not happen fails it, so `make demo` exits
// non-zero.
func TestDemo(t *testing.T) {
	began := time.Now()
	n := 0
	step := func(title string) {
		n++
		fmt.Printf("\n== %d. %s\n\n", n, title)
	}
	demoSay("lbd demo: two directors (VRRP), two real servers, one client, all in network")
	demoSay("namespaces inside this VM, on the stock Debian kernel's IPVS.")

	l := newDRLabN(t, 2)
	a, b := l.directors[0], l.directors[1]
	rs1, rs2 := l.rs[0], l.rs[1]
	lbctl := vmtest.Binary(t, "lbctl")
	console, token := hvConsole(t)
	web := vs{name: "web", port: 80, sched: "rr", rs: l.rsAll(), hc: hvCheck()}
	conf := func(node string, priority int, console string) string {
		vrrp := fmt.Sprintf("[vrrp]\nvrid = 51\npriority = %d\nadvert_interval = %q\n", priority, demoAdvert)
		return hvConfig(l, fmt.Sprintf("node_name = %q\n", node), console+vrrp, hvService{vs: web})
	}

	step("The lab")
	demoSay("client   %v", l.client.IPv4.Addr())
	demoSay("lvs1     %v  lbd, VRRP priority 150", a.IPv4.Addr())
	demoSay("lvs2     %v  lbd, VRRP priority 100", b.IPv4.Addr())
	demoSay("rs1      %v  HTTP on :80, prepared with scripts/realserver.sh", rs1.addr)
	demoSay("rs2      %v  HTTP on :80, prepared with scripts/realserver.sh", rs2.addr)
	demoSay("VIP      %v:80, round robin, direct routing; HTTP health check every %v", l.vip, hvInterval)
	demoSay("         (timeout %v, rise %d, fall %d); VRRP adverts every %v", hvTimeout, hvRise, hvFall, demoAdvert)
	demoSay("")
	demoSay("In direct routing a real server answers the client from the VIP itself, so it")
	demoSay("holds the VIP on lo but must never answer ARP for it:")
	demoShow(t, rs1.ns, "rs1", realServerScript(t), "--interface", "eth0", "status", l.vip.String())

	step("lvs1's lbd.toml (lvs2's has node_name \"lvs2\" and priority 100)")
	demoIndent(conf("lvs1", 150, "[console]\n# password_hash and token_hashes, from lbd passwd and lbd token\n\n"))
	da := l.startLBDIn(a.NS, conf("lvs1", 150, console+"\n"))
	db := l.startLBDIn(b.NS, conf("lvs2", 100, console+"\n"))
	l.waitRulesIn(a.NS, da, l.rules(web), programTimeout)
	l.waitRulesIn(b.NS, db, l.rules(web), programTimeout)
	l.waitMaster(a, b)
	l.waitServedVia(a)
	hvAllUp(t, hvAPI(t, a.NS, token), "web")
	hvAllUp(t, hvAPI(t, b.NS, token), "web")
	demoSay("")
	demoSay("lvs1 is master and holds the VIP; lvs2 is backup with the same table (warm).")

	step("The IPVS table on the master")
	demoShow(t, a.NS, "lvs1", "ipvsadm", "-Ln")

	step("Six requests from the client through the VIP")
	replies := demoRequests(t, l, 6)
	checkAlternates(t, replies, rs1.name, rs2.name)
	demoMust(t)

	step("lbctl status on the master")
	demoLbctl(t, a, "lvs1", lbctl, token, "status")

	step("Drain rs1: no new connections, open ones finish")
	demoLbctl(t, a, "lvs1", lbctl, token, "drain", "web", rs1.name)
	drained := l.rules(vs{name: "web", port: 80, sched: "rr", rs: []rs{{name: rs1.name, addr: rs1.addr, quiesced: true}, {name: rs2.name, addr: rs2.addr}}})
	l.waitRulesIn(a.NS, da, drained, programTimeout)
	demoShow(t, a.NS, "lvs1", "ipvsadm", "-Ln")
	demoOnly(t, demoRequests(t, l, 4), rs2.name)

	step("Enable rs1 again")
	demoLbctl(t, a, "lvs1", lbctl, token, "enable", "web", rs1.name)
	l.waitRulesIn(a.NS, da, l.rules(web), programTimeout)
	checkAlternates(t, demoRequests(t, l, 4), rs1.name, rs2.name)
	demoMust(t)

	step("rs2's HTTP server dies")
	mark := da.Mark()
	rs2.stop(80)
	died := time.Now()
	rs2down := l.rules(vs{name: "web", port: 80, sched: "rr", rs: []rs{{name: rs1.name, addr: rs1.addr}, {name: rs2.name, addr: rs2.addr, quiesced: true}}})
	took := hvWaitRules(t, vmtest.IPVS(t, a.NS), da, rs2down, died)
	demoSay("the health check took rs2 out (weight 0) %v after it died", took.Round(time.Millisecond))
	demoSay("(bound: fall × interval + timeout = %v)", hvFall*hvInterval+hvTimeout)
	if line, ok := da.WaitLine(mark, 5*time.Second, contains("real server health changed")); ok {
		if at, ok := hvLogTime(line); ok {
			demoSay("(the check decided after %v, IPVS followed %v later)", at.Sub(died).Round(time.Millisecond), died.Add(took).Sub(at).Round(time.Millisecond))
		}
		demoSay("lvs1's log: %s", demoLogMsg(line))
	} else {
		t.Fatal("no \"real server health changed\" line in lvs1's log")
	}
	demoLbctl(t, a, "lvs1", lbctl, token, "show", "web", rs2.name)
	l.waitRulesIn(b.NS, db, rs2down, programTimeout)
	demoSay("lvs2 runs the same checks: its table has rs2 at weight 0 too.")
	demoOnly(t, demoRequests(t, l, 4), rs1.name)

	step("lvs1 dies: lbd gets SIGKILL and its cable is cut, as if the box lost power")
	demoSay("a client keeps making requests, each a new connection (300ms connect timeout)")
	p := demoStartProbe(l)
	defer p.stop()
	p.waitOK(t, 5)
	// Both at once: the kernel keeps forwarding for a killed process, so the
	// box must also leave the network for the client to notice anything.
	markB := db.Mark()
	a.Cut(t)
	if err := da.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	l.waitMaster(b, nil)
	p.waitOKAfter(t, killed)
	p.stop()
	res := p.result(killed)
	line, ok := db.WaitLine(markB, 5*time.Second, func(s string) bool {
		return strings.Contains(s, "vrrp transition") && strings.Contains(strings.ToLower(s), "to=master")
	})
	if !ok {
		t.Fatal("no \"vrrp transition\" to master in lvs2's log")
	}
	demoSay("lvs2's log: %s", demoLogMsg(line))
	if at, ok := hvLogTime(line); ok {
		demoSay("lvs2 became master %v after the kill (Master_Down_Interval, 3 × %v + skew, counts from the last advert it heard)", at.Sub(killed).Round(time.Millisecond), demoAdvert)
	}
	demoSay("client outage: %v from the last reply before the kill to the first reply after", res.outage.Round(time.Millisecond))
	demoSay("(%d requests answered before, %d failed or timed out during, %d answered after)", res.before, res.failed, res.after)
	l.waitServedVia(b)
	demoOnly(t, demoRequests(t, l, 4), rs1.name)

	step("The table on the new master")
	demoShow(t, b.NS, "lvs2", "ipvsadm", "-Ln")

	step("rs2's HTTP server comes back")
	rs2.start(t, 80)
	back := time.Now()
	took = hvWaitRules(t, vmtest.IPVS(t, b.NS), db, l.rules(web), back)
	demoSay("back at weight 1 on lvs2 %v later, after %d successful checks", took.Round(time.Millisecond), hvRise)
	checkAlternates(t, demoRequests(t, l, 4), rs1.name, rs2.name)
	demoMust(t)
	demoLbctl(t, b, "lvs2", lbctl, token, "status")

	demoSay("")
	demoSay("demo done in %v: every step checked.", time.Since(began).Round(100*time.Millisecond))
	labTour(t, l, db)
}

func demoSay(format string, args ...any) { fmt.Printf(format+"\n", args...) }

// demoMust stops the demo after a failed check.
func demoMust(t *testing.T) {
	t.Helper()
	if t.Failed() {
		t.FailNow()
	}
}

// demoShow runs a command on host h and prints it with its output.
func demoShow(t *testing.T, h *netlab.NS, node, name string, args ...string) {
	t.Helper()
	out := h.Exec(name, args...)
	demoSay("%s$ %s %s", node, filepath.Base(name), strings.Join(args, " "))
	demoIndent(out)
}

func demoIndent(out string) {
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		demoSay("    %s", line)
	}
}

// demoLbctl runs lbctl on director h against its local console and prints
// the command and its output; a failing lbctl fails the demo.
func demoLbctl(t *testing.T, h *netlab.Host, node, lbctl, token string, args ...string) {
	t.Helper()
	cmd := h.Cmd(lbctl, args...)
	cmd.Env = append(os.Environ(), "LBCTL_TOKEN="+token)
	out, err := cmd.CombinedOutput()
	demoSay("%s$ lbctl %s", node, strings.Join(args, " "))
	demoIndent(string(out))
	if err != nil {
		t.Fatalf("lbctl %s: %v", strings.Join(args, " "), err)
	}
}

// demoRequests makes n requests through the VIP and prints who served each.
func demoRequests(t *testing.T, l *lab, n int) []reply {
	t.Helper()
	var out []reply
	for i := 0; i < n; i++ {
		r, err := l.get(80)
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		demoSay("request %d: served by %s, which saw the client as %s", i+1, r.server, r.seenFrom)
		out = append(out, r)
	}
	return out
}

// demoOnly fails the demo unless every reply came from name.
func demoOnly(t *testing.T, replies []reply, name string) {
	t.Helper()
	for i, r := range replies {
		if r.server != name {
			t.Fatalf("request %d went to %s, want only %s", i+1, r.server, name)
		}
	}
}

// demoLogMsg shortens an lbd log line to its message and attributes.
func demoLogMsg(line string) string {
	if i := strings.Index(line, "msg="); i >= 0 {
		return line[i:]
	}
	return line
}

// demoProbe is a client that makes one request after another through the
// VIP with short timeouts, and remembers when each answer came.
type demoProbe struct {
	l      *lab
	stopc  chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	oks    []time.Time
	failed []time.Time
}

type demoProbeResult struct {
	outage                time.Duration
	before, failed, after int
}

func demoStartProbe(l *lab) *demoProbe {
	p := &demoProbe{l: l, stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		// Bounded: at most 3000 requests (about a minute).
		for i := 0; i < 3000; i++ {
			select {
			case <-p.stopc:
				return
			default:
			}
			err := demoQuickGet(l)
			now := time.Now()
			p.mu.Lock()
			if err == nil {
				p.oks = append(p.oks, now)
			} else {
				p.failed = append(p.failed, now)
			}
			p.mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return p
}

// demoQuickGet is lab.get with timeouts short enough to time an outage.
func demoQuickGet(l *lab) error {
	c, err := l.client.Dial("tcp4", netip.AddrPortFrom(l.vip, 80).String(), 300*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\nHost: lab\r\n\r\n"); err != nil {
		return err
	}
	_, err = readResponse(bufio.NewReader(c))
	return err
}

func (p *demoProbe) count(after time.Time) (oks int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ok := range p.oks {
		if ok.After(after) {
			oks++
		}
	}
	return oks
}

// waitOK waits until the probe has n answers.
func (p *demoProbe) waitOK(t *testing.T, n int) {
	t.Helper()
	vmtest.Eventually(t, 30*time.Second, 20*time.Millisecond, "client requests", func() (bool, string) {
		got := p.count(time.Time{})
		return got >= n, fmt.Sprintf("%d answered", got)
	})
}

// waitOKAfter waits until a request made after the kill is answered.
func (p *demoProbe) waitOKAfter(t *testing.T, killed time.Time) {
	t.Helper()
	vmtest.Eventually(t, failoverTimeout, 20*time.Millisecond, "client requests after the failover", func() (bool, string) {
		return p.count(killed) >= 3, "no answer since the kill"
	})
}

// stop ends the probe; it may be called more than once.
func (p *demoProbe) stop() {
	select {
	case <-p.stopc:
	default:
		close(p.stopc)
	}
	<-p.done
}

// result measures the outage around the kill: from the last answer before
// it to the first answer after it.
func (p *demoProbe) result(killed time.Time) demoProbeResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	var r demoProbeResult
	var last, first time.Time
	for _, ok := range p.oks {
		if ok.Before(killed) {
			r.before++
			last = ok
		} else {
			if first.IsZero() {
				first = ok
			}
			r.after++
		}
	}
	for _, f := range p.failed {
		if f.After(killed) && (first.IsZero() || f.Before(first)) {
			r.failed++
		}
	}
	if !last.IsZero() && !first.IsZero() {
		r.outage = first.Sub(last)
	}
	return r
}
