package webui

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"lbd/api"
)

// The status page and a service's and real server's pages draw the last
// hour as inline SVG with the transitions marked; the API serves the same
// figures. The page stays small: charts are downsampled to the pixel.
func TestHistoryCharts(t *testing.T) {
	h := newHarness(t)
	h.d.addEvent("health", "web/rs1", "down: connect: connection refused")
	c := h.login()
	r := c.get("/status")
	mustStatus(t, r, http.StatusOK)
	body := r.body
	st := h.d.Status()
	if n := strings.Count(body, `<div class="charts">`); n != len(st.Services) {
		t.Errorf("%d chart sets on the status page, want one per service (%d)", n, len(st.Services))
	}
	if !strings.Contains(body, `class="mark mark-down"`) || !strings.Contains(body, "web/rs1: down: connect: connection refused</title>") {
		t.Error("rs1's failure is not marked on the web service's charts")
	}
	for _, m := range regexp.MustCompile(`points="([^"]*)"`).FindAllStringSubmatch(body, -1) {
		if n := len(strings.Fields(m[1])); n > chartW/chartBucket+1 {
			t.Fatalf("a line with %d vertices for a %d px chart", n, chartW)
		}
	}
	set := len(h.srv.charts("web", ""))
	t.Logf("one service's chart set (3 charts, an hour at 5 s): %d bytes", set)
	if set > 8000 {
		t.Errorf("a chart set of %d bytes: downsampling does not bound it", set)
	}
	per := float64(len(body)) / float64(len(st.Services))
	t.Logf("status page: %d bytes for %d services with charts (%.0f bytes per service)", len(body), len(st.Services), per)
	if per > 20000 {
		t.Errorf("%.0f bytes per service on the status page: the charts are too heavy", per)
	}
	live := c.get("/status/live")
	if !strings.Contains(live.body, `<div class="charts">`) {
		t.Error("the live fragment does not redraw the charts")
	}
	for _, path := range []string{"/vs/web", "/vs/web/rs/rs1"} {
		r := c.get(path)
		mustStatus(t, r, http.StatusOK)
		if !strings.Contains(r.body, `id="history"`) || !strings.Contains(r.body, "<svg") {
			t.Errorf("%s has no history charts", path)
		}
	}
	var hist api.History
	wantCode(t, h.apiCall("GET", "/services/web/real/rs1/history", "", "", &hist), http.StatusOK)
	if len(hist.Points) == 0 || hist.Step != 5*time.Second || len(hist.Marks) != 1 {
		t.Errorf("API history: %d points, step %v, marks %+v", len(hist.Points), hist.Step, hist.Marks)
	}
	wantCode(t, h.apiCall("GET", "/services/nope/history", "", "", nil), http.StatusNotFound)
}
