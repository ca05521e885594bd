//go:build vm

package e2e

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/ipvs"
	"golang.org/x/crypto/bcrypt"

	"lbd/api"
	"lbd/internal/apiclient"
	"lbd/internal/netlab"
	"lbd/internal/vmtest"
)

// The health-check timing every scenario here uses: a dead real server
// must leave rotation within fall × interval + timeout (1.75s), and come
// back after rise consecutive successes.
const (
	hvInterval = 500 * time.Millisecond
	hvTimeout  = 250 * time.Millisecond
	hvRise     = 2
	// fall 3, so the lower bound below means something: a check in
	// flight when a server dies counts as one of them.
	hvFall = 3

	// hvMargin is what the VM may add to the check bound: the director's
	// event loop and one netlink write after the deciding check, and late
	// timers under TCG emulation on a shared 2-core host. Measured (the
	// tests log it): the kernel follows the check's decision within
	// 15–140ms, and whole transitions take 0.6–1.0s against the bound (1.25s at fall 2)
	// bound; the rest is headroom for a loaded host, where emulated timers
	// fire late.
	hvMargin = time.Second
	// hvEarly is how much earlier than (fall-2) × interval a transition
	// may be seen: the scheduler's timer granularity.
	hvEarly = 50 * time.Millisecond
)

// hvCheck is the body of the [virtual_server.health_check] table.
func hvCheck() string {
	return fmt.Sprintf("  type = \"http\"\n  interval = %q\n  timeout = %q\n  rise = %d\n  fall = %d",
		hvInterval, hvTimeout, hvRise, hvFall)
}

// hvService is a virtual server with settings the lab's config helper
// does not write (on_failure, sorry_server, quorum): extra holds those
// lines of its [[virtual_server]] table.
type hvService struct {
	vs
	extra string
}

// hvConfig renders an lbd.toml for the lab like lab.config, with each
// service's extra lines; global adds lines to [global] and tail is
// appended as is ([console], [vrrp]).
func hvConfig(l *lab, global, tail string, svcs ...hvService) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[global]\ninterface = \"eth0\"\nforwarding = %q\nresync_interval = \"1s\"\n", l.mode)
	if global != "" {
		b.WriteString(strings.TrimSuffix(global, "\n") + "\n")
	}
	for _, s := range svcs {
		fmt.Fprintf(&b, "\n[[virtual_server]]\nname = %q\nvip = %q\nport = %d\nscheduler = %q\n%s", s.name, l.vip, s.port, s.sched, s.extra)
		if s.hc != "" {
			fmt.Fprintf(&b, "\n  [virtual_server.health_check]\n%s\n", s.hc)
		}
		for _, r := range s.rs {
			fmt.Fprintf(&b, "\n  [[virtual_server.real_server]]\n  name = %q\n  address = %q\n", r.name, r.addr)
			if r.weight != 0 {
				fmt.Fprintf(&b, "  weight = %d\n", r.weight)
			}
		}
	}
	if tail != "" {
		b.WriteString("\n" + tail)
	}
	return b.String()
}

// hvConsole returns a [console] table with a password hash (the console
// refuses to start without one) and one API token, and the token.
func hvConsole(t testing.TB) (table, token string) {
	t.Helper()
	secret := make([]byte, 16)
	rand.Read(secret)
	// bcrypt's minimum cost: the hash is only there so the console starts,
	// and a real cost takes seconds under emulation.
	pw, err := bcrypt.GenerateFromPassword([]byte(hex.EncodeToString(secret)), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	rand.Read(secret)
	token = "e2e." + hex.EncodeToString(secret)
	sum := sha256.Sum256([]byte(token))
	return fmt.Sprintf("[console]\npassword_hash = %q\ntoken_hashes = [%q]\n", pw, hex.EncodeToString(sum[:])), token
}

// hvAPI is an API client for the console of the lbd running in ns
// (listening on :3636 there), connecting from inside ns.
func hvAPI(t testing.TB, ns *netlab.NS, token string) *apiclient.Client {
	t.Helper()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return ns.Dial("tcp4", addr, 5*time.Second)
		},
		DisableKeepAlives: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	c, err := apiclient.New("http://127.0.0.1:3636", token, apiclient.WithHTTPClient(&http.Client{Transport: tr}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// hvWaitService polls the console until cond accepts the virtual service
// name, and returns it.
func hvWaitService(t testing.TB, c *apiclient.Client, name string, what string, cond func(api.Service) (bool, string)) api.Service {
	t.Helper()
	var got api.Service
	vmtest.Eventually(t, programTimeout, 100*time.Millisecond, what, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := c.Status(ctx)
		if err != nil {
			return false, "status: " + err.Error()
		}
		for _, s := range st.Services {
			if s.Name == name {
				got = s
				return cond(s)
			}
		}
		return false, "no service " + name + " in the status"
	})
	return got
}

// hvRealServer returns the real server name of s.
func hvRealServer(s api.Service, name string) api.RealServer {
	for _, r := range s.RealServers {
		if r.Name == name {
			return r
		}
	}
	return api.RealServer{Name: name, Health: "(not in the status)"}
}

// hvAllUp waits until every real server of the service has passed a check.
func hvAllUp(t testing.TB, c *apiclient.Client, name string) {
	t.Helper()
	hvWaitService(t, c, name, "first checks", func(s api.Service) (bool, string) {
		var hs []string
		ok := len(s.RealServers) > 0
		for _, r := range s.RealServers {
			hs = append(hs, r.Name+"="+r.Health)
			ok = ok && r.Health == "up"
		}
		return ok, strings.Join(hs, " ")
	})
}

// hvWaitRules polls the IPVS table through c every 10ms until it is
// exactly want, and returns the time from since. Polling netlink directly
// (not lab.waitRules' 100ms) keeps the measurement close to the kernel's
// change.
func hvWaitRules(t testing.TB, c ipvs.Client, d *daemon, want string, since time.Time) time.Duration {
	t.Helper()
	deadline := since.Add(programTimeout)
	var got string
	for {
		tab, err := vmtest.ReadTable(c)
		now := time.Now()
		if err == nil {
			got = tab.Rules()
			if got == want {
				return now.Sub(since)
			}
		} else {
			got = err.Error()
		}
		if d.Exited() {
			t.Fatalf("%s exited:\n%s", d.Name, strings.Join(d.Lines(), "\n"))
		}
		if now.After(deadline) {
			t.Fatalf("IPVS table not reached within %v:\nhave\n%swant\n%s", programTimeout, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// hvCheckDown asserts the time a dead real server took to leave rotation:
// not before fall checks could fail, and within fall × interval + timeout
// (plus the VM's margin).
func hvCheckDown(t testing.TB, what string, took time.Duration) {
	t.Helper()
	bound := hvFall*hvInterval + hvTimeout
	t.Logf("%s: %v after the server died (bound fall×interval+timeout = %v, %v to spare)",
		what, took.Round(time.Millisecond), bound, (bound - took).Round(time.Millisecond))
	if took > bound+hvMargin {
		t.Errorf("%s took %v, bound %v (+%v VM margin)", what, took.Round(time.Millisecond), bound, hvMargin)
	}
	// A check in flight when the server dies fails at once, and the next
	// one may come less than an interval later (the schedule keeps its
	// cadence): fall failures can take as little as (fall-2) intervals.
	if min := (hvFall-2)*hvInterval - hvEarly; took < min {
		t.Errorf("%s after %v: sooner than %d failed checks %v apart can take", what, took.Round(time.Millisecond), hvFall, hvInterval)
	}
}

// hvCheckUp asserts the time a recovered real server took to come back:
// after rise successes, so not before (rise-1) × interval.
func hvCheckUp(t testing.TB, what string, took time.Duration) {
	t.Helper()
	bound := hvRise*hvInterval + hvTimeout
	t.Logf("%s: %v after the server came back (rise %d, at most %v)", what, took.Round(time.Millisecond), hvRise, bound)
	if min := (hvRise-1)*hvInterval - hvEarly; took < min {
		t.Errorf("%s after %v: sooner than %d successful checks %v apart can take", what, took.Round(time.Millisecond), hvRise, hvInterval)
	}
	if took > bound+hvMargin {
		t.Errorf("%s took %v, bound %v (+%v VM margin)", what, took.Round(time.Millisecond), bound, hvMargin)
	}
}

// hvBatch makes n requests through the VIP and fails the test on any error
// or any reply from a server other than want.
func hvBatch(t testing.TB, l *lab, n int, want string) {
	t.Helper()
	served := map[string]int{}
	for i := 0; i < n; i++ {
		r, err := l.get(80)
		if err != nil {
			t.Errorf("request %d of %d: %v", i+1, n, err)
			continue
		}
		served[r.server]++
	}
	if served[want] != n {
		t.Errorf("%d requests served by %v, want all by %s", n, served, want)
	}
}

// hvHealthLine waits for lbd's log line about rs changing to state and
// returns it.
func hvHealthLine(t testing.TB, d *daemon, mark int, rs, state string) string {
	t.Helper()
	line, ok := d.WaitLine(mark, 5*time.Second, func(s string) bool {
		return strings.Contains(s, "real server health changed") && strings.Contains(s, "rs="+rs+" ") && strings.Contains(s, "state="+state)
	})
	if !ok {
		t.Errorf("no \"real server health changed\" line for %s going %s", rs, state)
	}
	return line
}

var hvTimeRE = regexp.MustCompile(`^time=(\S+)`)

// hvLogTime is the time stamp of an lbd log line (slog's text format).
func hvLogTime(line string) (time.Time, bool) {
	m := hvTimeRE.FindStringSubmatch(line)
	if m == nil {
		return time.Time{}, false
	}
	at, err := time.Parse(time.RFC3339Nano, m[1])
	return at, err == nil
}

// hvSplit says how a measured transition divides between the health check
// deciding (lbd's log line) and the kernel's table following.
func hvSplit(t testing.TB, since time.Time, took time.Duration, line string) {
	t.Helper()
	if at, ok := hvLogTime(line); ok {
		t.Logf("  the check decided after %v; IPVS had it %v later", at.Sub(since).Round(time.Millisecond), since.Add(took).Sub(at).Round(time.Millisecond))
	}
}

// hvServeSorry makes the host in ns a sorry server for the lab's VIP in
// DR: it holds the VIP on lo without answering ARP for it, like a real
// server, and answers every HTTP request on port with "sorry REMOTEADDR".
func hvServeSorry(t testing.TB, l *lab, ns *netlab.NS, port int) {
	t.Helper()
	ns.Exec("sysctl", "-q", "-w", "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2")
	ns.Exec("ip", "addr", "add", l.vip.String()+"/32", "dev", "lo")
	ln, err := ns.Listen("tcp4", fmt.Sprintf(":%d", port))
	if err != nil {
		t.Fatalf("sorry server: %v", err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "sorry %s\n", r.RemoteAddr)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// TestHealthQuiesceAndSorry is issue 4's proof with the real lbd and real
// IPVS, default on_failure (quiesce): a real server whose HTTP server dies
// goes to weight 0 within fall × interval + timeout and clients see no
// error from then on; restarted, it gets its weight back after rise
// successes; with every real server dead the sorry server joins the table
// and clients get its page; when one recovers the sorry server leaves.
func TestHealthQuiesceAndSorry(t *testing.T) {
	// Two "director" slots: the first runs lbd, the second, an idle host
	// on the LAN, is the sorry server.
	l := newDRLabN(t, 2)
	l.director.Exec("ip", "addr", "add", l.vip.String()+"/32", "dev", "eth0")
	sorryHost := l.directors[1]
	hvServeSorry(t, l, sorryHost.NS, 80)
	rs1, rs2 := l.rs[0], l.rs[1]

	console, token := hvConsole(t)
	web := vs{name: "web", port: 80, sched: "rr", rs: l.rsAll(), hc: hvCheck()}
	d := l.startLBD(hvConfig(l, "", console,
		hvService{vs: web, extra: fmt.Sprintf("sorry_server = %q\n", sorryHost.IPv4.Addr())}))
	c := vmtest.IPVS(t, l.director)
	healthy := l.rules(web)
	l.waitRules(d, healthy, programTimeout)
	hvAllUp(t, hvAPI(t, l.director, token), "web")
	checkAlternates(t, l.mustGet(80, 4), rs1.name, rs2.name)

	quiesced := func(names ...string) []rs {
		out := l.rsAll()
		for i := range out {
			for _, n := range names {
				if out[i].name == n {
					out[i].quiesced = true
				}
			}
		}
		return out
	}
	sorry := rs{name: "sorry", addr: sorryHost.IPv4.Addr()}

	t.Run("one dies", func(t *testing.T) {
		mark := d.Mark()
		start := time.Now() // the listener closes first thing in stop
		rs1.stop(80)
		took := hvWaitRules(t, c, d, l.rules(vs{name: "web", port: 80, sched: "rr", rs: quiesced(rs1.name)}), start)
		hvCheckDown(t, "rs1 at weight 0", took)
		line := hvHealthLine(t, d, mark, "web/rs1", "down")
		hvSplit(t, start, took, line)
		if !strings.Contains(line, "refused") {
			t.Errorf("the down transition does not give the reason (connection refused): %s", line)
		}
		t.Logf("lbd: %s", line)
		hvBatch(t, l, 20, rs2.name)
	})
	if t.Failed() {
		return
	}

	t.Run("it recovers", func(t *testing.T) {
		mark := d.Mark()
		rs1.start(t, 80)
		start := time.Now()
		took := hvWaitRules(t, c, d, healthy, start)
		hvCheckUp(t, "rs1 back at weight 1", took)
		hvSplit(t, start, took, hvHealthLine(t, d, mark, "web/rs1", "up"))
		checkAlternates(t, l.mustGet(80, 4), rs1.name, rs2.name)
	})
	if t.Failed() {
		return
	}

	t.Run("all die", func(t *testing.T) {
		mark := d.Mark()
		start := time.Now()
		rs1.stop(80)
		rs2.stop(80)
		want := l.rules(vs{name: "web", port: 80, sched: "rr", rs: append(quiesced(rs1.name, rs2.name), sorry)})
		took := hvWaitRules(t, c, d, want, start)
		hvCheckDown(t, "sorry server in the table", took)
		hvHealthLine(t, d, mark, "web/rs1", "down")
		hvSplit(t, start, took, hvHealthLine(t, d, mark, "web/rs2", "down"))
		hvBatch(t, l, 10, "sorry")
	})
	if t.Failed() {
		return
	}

	t.Run("one recovers", func(t *testing.T) {
		mark := d.Mark()
		rs2.start(t, 80)
		start := time.Now()
		// The sorry server leaves rotation at once (weight 0); it is
		// removed when its connections, the batch's now in TIME_WAIT
		// among them, have ended: a removal never cuts a handshake.
		quiescedSorry := sorry
		quiescedSorry.quiesced = true
		took := hvWaitRules(t, c, d, l.rules(vs{name: "web", port: 80, sched: "rr", rs: append(quiesced(rs1.name), quiescedSorry)}), start)
		hvCheckUp(t, "sorry server out of rotation, rs2 back", took)
		hvSplit(t, start, took, hvHealthLine(t, d, mark, "web/rs2", "up"))
		hvBatch(t, l, 10, rs2.name)
	})
}

// TestHealthRemoveAndQuorum: with on_failure = "remove" a dead real
// server's destination leaves the table (within the same bound) instead of
// staying at weight 0, and comes back when it recovers. The service has
// quorum 2 (two real servers of weight 1): with one down it is reported
// unhealthy by the console API, with the real server's reason.
func TestHealthRemoveAndQuorum(t *testing.T) {
	l := newDRLab(t)
	rs1, rs2 := l.rs[0], l.rs[1]
	console, token := hvConsole(t)
	web := vs{name: "web", port: 80, sched: "rr", rs: l.rsAll(), hc: hvCheck()}
	// The removal is graceful (weight 0 first, deleted when its active
	// connections end); a short grace bounds that here.
	d := l.startLBD(hvConfig(l, `remove_grace = "1s"`, console,
		hvService{vs: web, extra: "on_failure = \"remove\"\nquorum = 2\n"}))
	c := vmtest.IPVS(t, l.director)
	healthy := l.rules(web)
	l.waitRules(d, healthy, programTimeout)
	cl := hvAPI(t, l.director, token)
	hvAllUp(t, cl, "web")
	s := hvWaitService(t, cl, "web", "healthy service", func(s api.Service) (bool, string) {
		return s.Healthy && s.UpWeight == 2, fmt.Sprintf("healthy=%v up_weight=%d", s.Healthy, s.UpWeight)
	})
	if s.Quorum != 2 {
		t.Errorf("status says quorum %d, want 2", s.Quorum)
	}

	t.Run("one dies", func(t *testing.T) {
		mark := d.Mark()
		start := time.Now() // the listener closes first thing in stop
		rs1.stop(80)
		took := hvWaitRules(t, c, d, l.rules(vs{name: "web", port: 80, sched: "rr", rs: []rs{{name: rs2.name, addr: rs2.addr}}}), start)
		hvCheckDown(t, "rs1 removed", took)
		hvSplit(t, start, took, hvHealthLine(t, d, mark, "web/rs1", "down"))
		hvBatch(t, l, 20, rs2.name)

		s := hvWaitService(t, cl, "web", "service below quorum", func(s api.Service) (bool, string) {
			return !s.Healthy, fmt.Sprintf("healthy=%v up_weight=%d quorum=%d", s.Healthy, s.UpWeight, s.Quorum)
		})
		if s.UpWeight != 1 || s.Quorum != 2 || s.SorryActive {
			t.Errorf("below quorum: up_weight=%d quorum=%d sorry_active=%v, want 1, 2, false", s.UpWeight, s.Quorum, s.SorryActive)
		}
		r := hvRealServer(s, rs1.name)
		if r.Health != "down" || !strings.Contains(r.HealthReason, "refused") || r.InKernel {
			t.Errorf("rs1 in the status: health=%q reason=%q in_kernel=%v, want down, connection refused, not in the kernel", r.Health, r.HealthReason, r.InKernel)
		}
		t.Logf("status: web healthy=%v up_weight=%d quorum=%d; rs1 %s (%s)", s.Healthy, s.UpWeight, s.Quorum, r.Health, r.HealthReason)
	})
	if t.Failed() {
		return
	}

	t.Run("it recovers", func(t *testing.T) {
		mark := d.Mark()
		rs1.start(t, 80)
		start := time.Now()
		took := hvWaitRules(t, c, d, healthy, start)
		hvCheckUp(t, "rs1 back in the table", took)
		hvSplit(t, start, took, hvHealthLine(t, d, mark, "web/rs1", "up"))
		checkAlternates(t, l.mustGet(80, 4), rs1.name, rs2.name)
		hvWaitService(t, cl, "web", "healthy again", func(s api.Service) (bool, string) {
			return s.Healthy && s.UpWeight == 2, fmt.Sprintf("healthy=%v up_weight=%d", s.Healthy, s.UpWeight)
		})
	})
}
