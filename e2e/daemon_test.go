//go:build vm

package e2e

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"lbd/internal/vmtest"
)

// programTimeout bounds how long lbd may take to program or repair IPVS.
// The resync interval is 1s; the rest is slack for TCG emulation on a
// loaded 2-core machine.
const programTimeout = 30 * time.Second

// TestDaemonTableAndReload runs the real lbd on a config file, reads its
// table back with ipvsadm, then reloads with SIGHUP: a changed file must
// change only what differs (services and real servers that did not change
// keep their kernel counters, so they were neither removed nor re-created),
// and a broken file must be refused with its errors logged (FILE:LINE) and
// the running table kept. Finally SIGTERM must end lbd cleanly.
func TestDaemonTableAndReload(t *testing.T) {
	l := newDRLab(t)
	rs1, rs2 := l.rs[0], l.rs[1]
	web := vs{name: "web", port: 80, sched: "rr", rs: l.rsAll()}
	api := vs{name: "api", port: 8080, sched: "wlc", rs: []rs{{name: "rs1", addr: rs1.addr, weight: 3}, {name: "rs2", addr: rs2.addr}}}
	d := l.startLBD(l.config("", web, api))
	l.waitRules(d, l.rules(web, api), programTimeout)

	// What an operator sees.
	out := l.director.Exec("ipvsadm", "-Ln")
	vip := regexp.QuoteMeta(l.vip.String())
	for _, re := range []string{
		`(?m)^TCP\s+` + vip + `:80\s+rr\s*$`,
		`(?m)^TCP\s+` + vip + `:8080\s+wlc\s*$`,
		`(?m)^\s+->\s+` + regexp.QuoteMeta(rs1.addr.String()) + `:80\s+Route\s+1\s+0\s+0\s*$`,
		`(?m)^\s+->\s+` + regexp.QuoteMeta(rs2.addr.String()) + `:80\s+Route\s+1\s+0\s+0\s*$`,
		`(?m)^\s+->\s+` + regexp.QuoteMeta(rs1.addr.String()) + `:8080\s+Route\s+3\s+0\s+0\s*$`,
		`(?m)^\s+->\s+` + regexp.QuoteMeta(rs2.addr.String()) + `:8080\s+Route\s+1\s+0\s+0\s*$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("ipvsadm -Ln does not match %s:\n%s", re, out)
		}
	}

	// Traffic through both services gives every entry counters that a
	// removal and re-creation would reset.
	l.mustGet(80, 4)
	l.mustGet(8080, 4)
	c := vmtest.IPVS(t, l.director)
	// The kernel folds its per-CPU counters into what it reports every 2s
	// (the rate estimator's tick).
	var before vmtest.Table
	vmtest.Eventually(t, 10*time.Second, 200*time.Millisecond, "IPVS counters", func() (bool, string) {
		before = vmtest.MustReadTable(t, c)
		n80 := before["TCP "+l.vip.String()+":80"].Stats.Connections
		n8080 := before["TCP "+l.vip.String()+":8080"].Stats.Connections
		return n80 == 4 && n8080 == 4, fmt.Sprintf("connections: %d on :80, %d on :8080, want 4 each", n80, n8080)
	})

	t.Run("changed file", func(t *testing.T) {
		// rs2's weight on web changes and a service is added; api is
		// untouched.
		web2 := vs{name: "web", port: 80, sched: "rr", rs: []rs{{name: "rs1", addr: rs1.addr}, {name: "rs2", addr: rs2.addr, weight: 3}}}
		metrics := vs{name: "metrics", port: 9090, sched: "rr", rs: []rs{{name: "rs1", addr: rs1.addr}}}
		mark := d.Mark()
		// Clients of the untouched service must not notice the reload.
		// (Its counters are compared below; they were read before this.)
		ld := l.load(8080, 10000)
		d.write(t, l.config("", web2, api, metrics))
		if err := d.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		l.waitRules(d, l.rules(web2, api, metrics), programTimeout)
		time.Sleep(time.Second) // a resync later, still no failure
		ok, fail, lastErr := ld.stop()
		if fail > 0 || ok == 0 {
			t.Errorf("requests to the untouched service during the reload: %d ok, %d failed (last: %v)", ok, fail, lastErr)
		}
		if _, ok := d.WaitLine(mark, 10*time.Second, contains("configuration reloaded")); !ok {
			t.Errorf("no \"configuration reloaded\" log line after SIGHUP")
		}
		// A service or real server removed and re-created would restart its
		// counters from 0: web's must be as before, api's must have grown
		// by exactly the requests the loader made.
		grown := map[string]uint64{"TCP " + l.vip.String() + ":80": 0, "TCP " + l.vip.String() + ":8080": uint64(ok)}
		vmtest.Eventually(t, 10*time.Second, 200*time.Millisecond, "counters kept across the reload", func() (bool, string) {
			tab := vmtest.MustReadTable(t, c)
			var problems []string
			for key, extra := range grown {
				b, a := before[key], tab[key]
				if a.Stats.Connections != b.Stats.Connections+extra {
					problems = append(problems, fmt.Sprintf("%s: %d connections, want %d+%d", key, a.Stats.Connections, b.Stats.Connections, extra))
				}
				var sumB, sumA uint64
				for _, bd := range b.Dests {
					addr := fmt.Sprintf("%s:%d", bd.Address, bd.Port)
					ad, found := a.Dest(addr)
					if !found || ad.Stats.Connections < bd.Stats.Connections {
						problems = append(problems, fmt.Sprintf("%s -> %s: %d connections, had %d", key, addr, ad.Stats.Connections, bd.Stats.Connections))
					}
					sumB += bd.Stats.Connections
					sumA += ad.Stats.Connections
				}
				if sumA != sumB+extra {
					problems = append(problems, fmt.Sprintf("%s: its real servers have %d connections, want %d+%d", key, sumA, sumB, extra))
				}
			}
			return len(problems) == 0, strings.Join(problems, "; ")
		})
		// The minimum: one weight update, one service and one destination
		// created.
		if w := writesSince(d, mark); w != 3 {
			t.Errorf("the reload made %d IPVS writes, want 3 (lbd log:\n%s)", w, strings.Join(d.Lines()[mark:], "\n"))
		}
		l.mustGet(9090, 1) // the new service carries traffic
	})
	if t.Failed() {
		return
	}
	good := l.rules(
		vs{name: "web", port: 80, sched: "rr", rs: []rs{{name: "rs1", addr: rs1.addr}, {name: "rs2", addr: rs2.addr, weight: 3}}},
		api,
		vs{name: "metrics", port: 9090, sched: "rr", rs: []rs{{name: "rs1", addr: rs1.addr}}})

	t.Run("broken file", func(t *testing.T) {
		broken := l.config("", web, vs{name: "api", port: 8080, sched: "no-such-scheduler", rs: api.rs}) +
			"\n[[virtual_server]]\nname = \"half\"\nvip = \"10.77.0.300\"\nport = 70000\n"
		mark := d.Mark()
		d.write(t, broken)
		if err := d.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		fileLine := regexp.MustCompile(regexp.QuoteMeta(d.config) + `:\d+`)
		line, ok := d.WaitLine(mark, 20*time.Second, func(s string) bool {
			return strings.Contains(s, "level=ERROR") && fileLine.MatchString(s)
		})
		if !ok {
			t.Fatalf("no ERROR log line naming %s:LINE after SIGHUP with a broken file; log:\n%s", d.config, strings.Join(d.Lines()[mark:], "\n"))
		}
		for _, want := range []string{"no-such-scheduler", "10.77.0.300", "70000"} {
			if !strings.Contains(line, want) {
				t.Errorf("the refusal does not mention %q: %s", want, line)
			}
		}
		// Several resync intervals later nothing has changed.
		time.Sleep(3 * time.Second)
		if d.Exited() {
			t.Fatal("lbd exited after a broken reload")
		}
		if got := vmtest.MustReadTable(t, c).Rules(); got != good {
			t.Errorf("the table changed after a refused reload:\nhave\n%swant\n%s", got, good)
		}
		if _, ok := d.WaitLine(mark, 0, contains("configuration reloaded")); ok {
			t.Error("a broken file was reported as reloaded")
		}
	})

	t.Run("SIGTERM", func(t *testing.T) {
		if err := d.Stop(); err != nil {
			t.Errorf("lbd: %v", err)
		}
	})
}

// TestDaemonRepairsDrift changes lbd's services behind its back with
// ipvsadm and expects each change undone within a few resync intervals
// (resync_interval = 1s), while a service lbd does not manage is left alone.
func TestDaemonRepairsDrift(t *testing.T) {
	l := newDRLab(t)
	rs1, rs2 := l.rs[0], l.rs[1]
	web := vs{name: "web", port: 80, sched: "rr", rs: l.rsAll()}
	d := l.startLBD(l.config("", web))
	want := l.rules(web)
	l.waitRules(d, want, programTimeout)

	vip := l.vip.String()
	l.director.Exec("ipvsadm", "-A", "-t", vip+":22", "-s", "sh")
	foreign := l.rules(web, vs{name: "foreign", port: 22, sched: "sh"})
	l.waitRules(d, foreign, programTimeout)

	for _, step := range []struct {
		name string
		cmd  []string
		want string
	}{
		{"real server deleted", []string{"-d", "-t", vip + ":80", "-r", rs1.addr.String() + ":80"}, foreign},
		{"weight edited", []string{"-e", "-t", vip + ":80", "-r", rs2.addr.String() + ":80", "-g", "-w", "7"}, foreign},
		{"scheduler edited", []string{"-E", "-t", vip + ":80", "-s", "wlc"}, foreign},
		{"service deleted", []string{"-D", "-t", vip + ":80"}, foreign},
		{"table cleared", []string{"-C"}, want}, // the foreign service is gone for good
	} {
		t.Run(step.name, func(t *testing.T) {
			mark := d.Mark()
			l.director.Exec("ipvsadm", step.cmd...)
			start := time.Now()
			l.waitRules(d, step.want, programTimeout)
			t.Logf("ipvsadm %s: repaired after %v", strings.Join(step.cmd, " "), time.Since(start).Round(10*time.Millisecond))
			if _, ok := d.WaitLine(mark, 5*time.Second, contains("repaired IPVS drift")); !ok {
				t.Errorf("no \"repaired IPVS drift\" log line")
			}
		})
	}
	l.mustGet(80, 2) // and it still balances
}

// TestDaemonGracefulRemoval removes, by a reload, the real server that
// holds an open connection: it must stay in IPVS at weight 0 (no new
// connections, the open one keeps working) until the connection ends, and
// then be deleted.
func TestDaemonGracefulRemoval(t *testing.T) {
	l := newDRLab(t)
	web := vs{name: "web", port: 80, sched: "rr", rs: l.rsAll()}
	d := l.startLBD(l.config(`remove_grace = "5m"`, web))
	l.waitRules(d, l.rules(web), programTimeout)
	// A closed connection then leaves the director's table within 2s
	// (FIN_WAIT timeout) instead of 2 minutes.
	l.director.Exec("ipvsadm", "--set", "900", "2", "300")

	held := l.hold(80)
	gone, stay := l.serverNamed(held.server), l.rs[0]
	if stay == gone {
		stay = l.rs[1]
	}
	draining := vs{name: "web", port: 80, sched: "rr", rs: []rs{
		{name: gone.name, addr: gone.addr, quiesced: true},
		{name: stay.name, addr: stay.addr},
	}}
	mark := d.Mark()
	d.write(t, l.config(`remove_grace = "5m"`, vs{name: "web", port: 80, sched: "rr", rs: []rs{{name: stay.name, addr: stay.addr}}}))
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	l.waitRules(d, l.rules(draining), programTimeout)
	if _, ok := d.WaitLine(mark, 5*time.Second, contains("quiescing real server")); !ok {
		t.Error("no \"quiescing real server\" log line")
	}

	// While the connection is open, several resyncs keep the real server
	// at weight 0, new connections go elsewhere, the old one still works.
	for _, r := range l.mustGet(80, 4) {
		if r.server != stay.name {
			t.Errorf("a new connection went to %s, which is being removed", r.server)
		}
	}
	time.Sleep(3 * time.Second)
	c := vmtest.IPVS(t, l.director)
	svc := vmtest.MustReadTable(t, c)["TCP "+l.vip.String()+":80"]
	dst, ok := svc.Dest(gone.addr.String() + ":80")
	if !ok || dst.Weight != 0 || dst.ActiveConnections == 0 {
		t.Fatalf("with a connection open, %s should be at weight 0 with an active connection; table:\n%s", gone.name, vmtest.MustReadTable(t, c).Rules())
	}
	if _, err := fmt.Fprint(held.c, "GET / HTTP/1.1\r\nHost: lab\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	held.c.SetDeadline(time.Now().Add(10 * time.Second))
	body, err := readResponse(held.br)
	if err != nil || !strings.HasPrefix(body, gone.name+" ") {
		t.Errorf("the open connection to %s: %q, %v", gone.name, body, err)
	}

	held.c.Close()
	start := time.Now()
	l.waitRules(d, l.rules(vs{name: "web", port: 80, sched: "rr", rs: []rs{{name: stay.name, addr: stay.addr}}}), programTimeout)
	t.Logf("%s deleted %v after its last connection closed", gone.name, time.Since(start).Round(10*time.Millisecond))
}

func contains(s string) func(string) bool {
	return func(line string) bool { return strings.Contains(line, s) }
}

var writesRE = regexp.MustCompile(`msg="balancer: (IPVS updated|repaired IPVS drift)".*\bwrites=(\d+)`)

// writesSince adds up the IPVS writes lbd logged after line mark.
func writesSince(d *daemon, mark int) int {
	n := 0
	for _, line := range d.Lines()[mark:] {
		if m := writesRE.FindStringSubmatch(line); m != nil {
			w, _ := strconv.Atoi(m[2])
			n += w
		}
	}
	return n
}
