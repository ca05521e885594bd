//go:build vm

package e2e

import (
	"testing"
	"time"
)

// TestHealthCheckQuiescesDeadServer lets lbd's HTTP health check find a
// real server that stopped serving: it is quiesced (weight 0, the default
// on_failure) so new connections go to the other one, and comes back to its
// weight once it serves again.
func TestHealthCheckQuiescesDeadServer(t *testing.T) {
	l := newDRLab(t)
	rs1, rs2 := l.rs[0], l.rs[1]
	hc := `  type = "http"
  interval = "500ms"
  timeout = "400ms"
  rise = 1
  fall = 1`
	web := vs{name: "web", port: 80, sched: "rr", rs: l.rsAll(), hc: hc}
	d := l.startLBD(l.config("", web))
	healthy := l.rules(web)
	l.waitRules(d, healthy, programTimeout)

	mark := d.Mark()
	rs1.stop(80)
	down := l.rules(vs{name: "web", port: 80, sched: "rr", rs: []rs{
		{name: rs1.name, addr: rs1.addr, quiesced: true}, {name: rs2.name, addr: rs2.addr},
	}})
	l.waitRules(d, down, programTimeout)
	if _, ok := d.WaitLine(mark, 5*time.Second, contains("real server health changed")); !ok {
		t.Error(`no "real server health changed" log line`)
	}
	for _, r := range l.mustGet(80, 4) {
		if r.server != rs2.name {
			t.Errorf("a new connection went to %s, which is down", r.server)
		}
	}

	rs1.start(t, 80)
	l.waitRules(d, healthy, programTimeout)
	checkAlternates(t, l.mustGet(80, 4), rs1.name, rs2.name)
}
