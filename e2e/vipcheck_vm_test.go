//go:build vm

package e2e

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"lbd/api"
	"lbd/internal/vmtest"
)

// TestHealthThroughVIP: a DR real server that serves on its own address
// but does not hold the VIP (realserver.sh down) passes a plain check and
// takes no client traffic; the through-VIP check (health_check.through_vip,
// the default for dr) sends the check to the VIP with a firewall mark that
// lbd's own one-destination fwmark service delivers to that real server,
// so it sees what clients see: "does not accept the VIP". `up` brings it
// back. The check services are lbd's own: not in the status, repaired when
// deleted, gone when the check goes.
func TestHealthThroughVIP(t *testing.T) {
	l := newDRLab(t) // the director holds the VIP, like a VRRP master
	rs1, rs2 := l.rs[0], l.rs[1]
	console, token := hvConsole(t)
	web := vs{name: "web", port: 80, sched: "rr", rs: l.rsAll(), hc: hvCheck()}
	plain := vs{name: "plain", port: 8080, sched: "rr", rs: l.rsAll(), hc: hvCheck() + "\n  through_vip = false"}
	config := hvConfig(l, "", console, hvService{vs: web}, hvService{vs: plain})
	d := l.startLBD(config)
	c := vmtest.IPVS(t, l.director)
	cl := hvAPI(t, l.director, token)

	// One check service per real server (both services share it: a
	// firewall-mark service matches any VIP and port).
	checkRules := func() string { return vmtest.MustReadTable(t, c).CheckRules() }
	vmtest.Eventually(t, programTimeout, 100*time.Millisecond, "check services", func() (bool, string) {
		got := checkRules()
		return strings.Count(got, "FWM ") == 2 &&
			strings.Contains(got, fmt.Sprintf("-> %s:0 Route weight=1", rs1.addr)) &&
			strings.Contains(got, fmt.Sprintf("-> %s:0 Route weight=1", rs2.addr)), got
	})
	t.Logf("check services:\n%s", checkRules())
	l.waitRules(d, l.rules(web, plain), programTimeout)
	hvAllUp(t, cl, "web")
	hvAllUp(t, cl, "plain")
	st, err := cl.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Services) != 2 {
		t.Errorf("status shows %d services, want web and plain only", len(st.Services))
	}
	checkAlternates(t, l.mustGet(80, 4), rs1.name, rs2.name)

	t.Run("VIP taken off rs1", func(t *testing.T) {
		mark := d.Mark()
		rs1.ns.Exec(rs1.script[0], append(rs1.script[1:], "down", l.vip.String())...)
		quiesced := l.rsAll()
		quiesced[0].quiesced = true
		l.waitRules(d, l.rules(vs{name: "web", port: 80, sched: "rr", rs: quiesced}, plain), programTimeout)
		line := hvHealthLine(t, d, mark, "web/rs1", "down")
		t.Logf("lbd: %s", line)
		s := hvWaitService(t, cl, "web", "rs1 down", func(s api.Service) (bool, string) {
			r := hvRealServer(s, rs1.name)
			return r.Health == "down", r.Health + ": " + r.HealthReason
		})
		if r := hvRealServer(s, rs1.name); !strings.Contains(r.HealthReason, "does not accept the VIP") {
			t.Errorf("rs1's reason = %q, want it to say it does not accept the VIP", r.HealthReason)
		}
		// The plain check still passes: it cannot see the problem.
		time.Sleep(hvFall * hvInterval)
		p := hvWaitService(t, cl, "plain", "plain check", func(s api.Service) (bool, string) {
			r := hvRealServer(s, rs1.name)
			return true, r.Health
		})
		if r := hvRealServer(p, rs1.name); r.Health != "up" {
			t.Errorf("plain check of rs1 = %s (%s), want up", r.Health, r.HealthReason)
		}
		hvBatch(t, l, 10, rs2.name)
	})

	t.Run("VIP back on rs1", func(t *testing.T) {
		mark := d.Mark()
		rs1.ns.Exec(rs1.script[0], append(rs1.script[1:], "up", l.vip.String())...)
		l.waitRules(d, l.rules(web, plain), programTimeout)
		hvHealthLine(t, d, mark, "web/rs1", "up")
		checkAlternates(t, l.mustGet(80, 4), rs1.name, rs2.name)
	})

	t.Run("check service deleted by hand is repaired", func(t *testing.T) {
		before := checkRules()
		tab := vmtest.MustReadTable(t, c)
		for _, s := range tab {
			if s.FWMark != 0 && strings.Contains(before, fmt.Sprintf("FWM %d", s.FWMark)) {
				if err := c.RemoveService(s.Service); err != nil {
					t.Fatal(err)
				}
				break
			}
		}
		vmtest.Eventually(t, programTimeout, 100*time.Millisecond, "repair", func() (bool, string) {
			got := checkRules()
			return got == before, got
		})
	})

	t.Run("director without the VIP (a backup)", func(t *testing.T) {
		// The check to the VIP leaves by the LAN route instead of lo; IPVS
		// takes it in LOCAL_OUT all the same.
		mark := d.Mark()
		l.director.Exec("ip", "addr", "del", l.vip.String()+"/32", "dev", "eth0")
		defer l.director.Exec("ip", "addr", "add", l.vip.String()+"/32", "dev", "eth0")
		time.Sleep(2 * hvFall * hvInterval)
		if line, ok := d.WaitLine(mark, 10*time.Millisecond, func(s string) bool {
			return strings.Contains(s, "real server health changed") && strings.Contains(s, "rs=web/")
		}); ok {
			t.Errorf("a check changed without the VIP on the director: %s", line)
		}
		l.waitRules(d, l.rules(web, plain), programTimeout)
	})

	t.Run("check services go with the checks", func(t *testing.T) {
		d.write(t, strings.Replace(config, "  type = \"http\"\n", "  type = \"http\"\n  through_vip = false\n", 1))
		if err := d.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		vmtest.Eventually(t, programTimeout, 100*time.Millisecond, "no check services", func() (bool, string) {
			got := checkRules()
			return got == "", got
		})
		l.waitRules(d, l.rules(web, plain), programTimeout)
	})
}
