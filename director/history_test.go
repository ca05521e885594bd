package director

import (
	"testing"
	"testing/synctest"
	"time"

	"lbd/api"
	"lbd/internal/testutil"
)

func statusWith(cps uint64, services ...string) api.Status {
	var st api.Status
	for _, name := range services {
		st.Services = append(st.Services, api.Service{Name: name, Stats: api.Stats{CPS: cps, InBPS: 100, OutBPS: 20},
			RealServers: []api.RealServer{{Name: "rs1", ActiveConns: 7, Stats: api.Stats{CPS: cps}}, {Name: "rs2", ActiveConns: 3}}})
	}
	return st
}

func TestHistoryRingIsBoundedAndOrdered(t *testing.T) {
	var h history
	t0 := time.Unix(1_800_000_000, 0)
	for i := range HistorySamples + 100 {
		h.sample(t0.Add(time.Duration(i)*HistoryStep), statusWith(uint64(i), "web", "dns"))
	}
	pts, ok := h.get("web")
	if !ok || len(pts) != HistorySamples {
		t.Fatalf("%d points, want %d (one hour)", len(pts), HistorySamples)
	}
	if pts[0].CPS != 100 || pts[len(pts)-1].CPS != HistorySamples+99 || !pts[1].Time.After(pts[0].Time) {
		t.Errorf("oldest %+v newest %+v, want the newest hour in order", pts[0], pts[len(pts)-1])
	}
	if p := pts[0]; p.ActiveConns != 10 || p.BPS != 120 {
		t.Errorf("service point %+v: active is the real servers' sum, bps both directions", p)
	}
	if rs, ok := h.get("web/rs1"); !ok || rs[len(rs)-1].ActiveConns != 7 {
		t.Errorf("real server series %v %+v", ok, rs)
	}
	// A service that left the configuration leaves the history.
	h.sample(t0, statusWith(1, "web"))
	if _, ok := h.get("dns"); ok {
		t.Error("dns kept after it was removed")
	}
	if _, ok := h.get("dns/rs1"); ok {
		t.Error("dns/rs1 kept after it was removed")
	}
}

// The running director samples every HistoryStep and marks the window's
// transitions on the right charts.
func TestDirectorHistoryMarksTransitions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, baseConfig)
		time.Sleep(3 * HistoryStep)
		r.health.set("192.0.2.11", true)
		testutil.Eventually(t, 5*time.Second, "rs1 down", func() bool { return r.weights()["192.0.2.11"] == 0 })
		time.Sleep(HistoryStep)
		h, ok := r.d.History("web", "")
		if !ok || len(h.Points) < 3 || h.Step != HistoryStep {
			t.Fatalf("history %v: %d points step %v", ok, len(h.Points), h.Step)
		}
		kinds := map[string]int{}
		for _, m := range h.Marks {
			kinds[m.Kind+" "+m.Subject]++
		}
		if kinds["health web/rs1"] != 1 || kinds["quorum web"] != 1 {
			t.Errorf("service marks %v, want rs1's health and the quorum change", kinds)
		}
		h2, _ := r.d.History("web", "rs2")
		for _, m := range h2.Marks {
			if m.Kind == "health" {
				t.Errorf("rs2's chart marks %+v", m)
			}
		}
		if _, ok := r.d.History("nope", ""); ok {
			t.Error("history for an unknown service")
		}
	})
}
