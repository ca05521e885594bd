package webui

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"lbd/api"
	"lbd/config"
)

// apiCall sends one API request with the test token (or the given
// Authorization value) and decodes the JSON answer into out.
func (h *harness) apiCall(method, path, auth, body string, out any) *http.Response {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, h.ts.URL+api.Prefix+path, rd)
	if auth == "" {
		auth = "Bearer " + testToken
	}
	if auth != "-" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		h.t.Fatalf("%s %s: content type %q: %s", method, path, ct, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			h.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return resp
}

func wantCode(t *testing.T, r *http.Response, code int) {
	t.Helper()
	if r.StatusCode != code {
		t.Fatalf("%s %s: %d, want %d", r.Request.Method, r.Request.URL.Path, r.StatusCode, code)
	}
}

func TestAPIAuth(t *testing.T) {
	h := newHarness(t)
	var e api.Error
	r := h.apiCall("GET", "/status", "-", "", &e)
	wantCode(t, r, http.StatusUnauthorized)
	if !strings.Contains(e.Error, "Bearer") || r.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("401 without a hint: %+v", e)
	}
	wantCode(t, h.apiCall("GET", "/status", "Bearer ci.wrong", "", &e), http.StatusUnauthorized)
	wantCode(t, h.apiCall("GET", "/status", "Basic Zm9vOmJhcg==", "", &e), http.StatusUnauthorized)
	var st api.Status
	wantCode(t, h.apiCall("GET", "/status", "", "", &st), http.StatusOK)
	if st.Node != "lvs-test" || len(st.Services) != 1 || st.VRRP.State != "master" {
		t.Fatalf("status %+v", st)
	}
	if h.d.applies != 0 {
		t.Fatal("reads changed something")
	}
}

// A logged-in browser may use the API, but changes need the CSRF header.
func TestAPISessionNeedsCSRFHeader(t *testing.T) {
	h := newHarness(t)
	c := h.login()
	req, _ := http.NewRequest("GET", h.ts.URL+"/api/v1/services", nil)
	if r := c.do(req); r.StatusCode != http.StatusOK {
		t.Fatalf("session GET: %d", r.StatusCode)
	}
	req, _ = http.NewRequest("POST", h.ts.URL+"/api/v1/services/web/real/rs1/drain", nil)
	if r := c.do(req); r.StatusCode != http.StatusForbidden {
		t.Fatalf("session POST without CSRF header: %d", r.StatusCode)
	}
	if h.d.applies != 0 {
		t.Fatal("drained without CSRF")
	}
	req, _ = http.NewRequest("POST", h.ts.URL+"/api/v1/services/web/real/rs1/drain", nil)
	req.Header.Set(csrfHeader, c.csrf)
	if r := c.do(req); r.StatusCode != http.StatusOK {
		t.Fatalf("session POST with CSRF header: %d %s", r.StatusCode, r.body)
	}
	if h.d.lastSrc != "console alice" {
		t.Fatalf("source %q", h.d.lastSrc)
	}
}

func TestAPIServices(t *testing.T) {
	h := newHarness(t)
	var svcs []api.Service
	wantCode(t, h.apiCall("GET", "/services", "", "", &svcs), http.StatusOK)
	if len(svcs) != 1 || svcs[0].Name != "web" || len(svcs[0].RealServers) != 2 {
		t.Fatalf("services %+v", svcs)
	}
	var sv api.Service
	wantCode(t, h.apiCall("GET", "/services/web", "", "", &sv), http.StatusOK)
	if sv.VIP != "192.0.2.10" || sv.Port != 80 || sv.Scheduler != "wlc" {
		t.Fatalf("service %+v", sv)
	}
	var rs api.RealServer
	wantCode(t, h.apiCall("GET", "/services/web/real/rs2", "", "", &rs), http.StatusOK)
	if rs.Address != "10.0.0.12" || rs.ConfiguredWeight != 2 {
		t.Fatalf("real server %+v", rs)
	}
	var e api.Error
	wantCode(t, h.apiCall("GET", "/services/wex", "", "", &e), http.StatusNotFound)
	if e.Suggestion != "web" || !strings.Contains(e.Error, `did you mean "web"`) {
		t.Fatalf("404 %+v", e)
	}
	e = api.Error{}
	wantCode(t, h.apiCall("GET", "/services/web/real/rs3", "", "", &e), http.StatusNotFound)
	if e.Suggestion != "rs1" {
		t.Fatalf("404 %+v", e)
	}
	e = api.Error{}
	wantCode(t, h.apiCall("POST", "/services/web/real/rs9/drain", "", "", &e), http.StatusNotFound)
	if e.Suggestion == "" {
		t.Fatalf("404 %+v", e)
	}
	wantCode(t, h.apiCall("GET", "/nope", "", "", &e), http.StatusNotFound)
	wantCode(t, h.apiCall("DELETE", "/services/web", "", "", &e), http.StatusMethodNotAllowed)
}

func TestAPIDrainEnableWeight(t *testing.T) {
	h := newHarness(t)
	var rs api.RealServer
	wantCode(t, h.apiCall("POST", "/services/web/real/rs1/drain", "", "", &rs), http.StatusOK)
	if !rs.Drained || rs.Weight != 0 {
		t.Fatalf("after drain %+v", rs)
	}
	if !strings.Contains(h.d.fileBytes(t), "drained = true") || h.d.lastSrc != "api ci" {
		t.Fatalf("drain not written (source %q)", h.d.lastSrc)
	}
	// Draining twice is not an error and writes nothing new.
	applies := h.d.applies
	wantCode(t, h.apiCall("POST", "/services/web/real/rs1/drain", "", "", &rs), http.StatusOK)
	if h.d.applies != applies {
		t.Fatal("a no-op drain rewrote the file")
	}

	// enable undrains and activates.
	cfg, v := h.d.Config()
	off := false
	cfg.VirtualServers[0].RealServers[0].Active = &off
	if _, err := h.d.Apply(t.Context(), cfg, v, "test"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, h.apiCall("POST", "/services/web/real/rs1/enable", "", "", &rs), http.StatusOK)
	if rs.Drained || !rs.Active || rs.Weight != 1 {
		t.Fatalf("after enable %+v", rs)
	}

	wantCode(t, h.apiCall("POST", "/services/web/real/rs2/weight", "", `{"weight": 9}`, &rs), http.StatusOK)
	if rs.ConfiguredWeight != 9 {
		t.Fatalf("after weight %+v", rs)
	}
	before := h.d.fileBytes(t)
	var e api.Error
	wantCode(t, h.apiCall("POST", "/services/web/real/rs2/weight", "", `{"weight": 70000}`, &e), http.StatusUnprocessableEntity)
	if len(e.Problems) != 1 || !strings.Contains(e.Problems[0].Message, "weight") || e.Problems[0].File == "" {
		t.Fatalf("422 %+v", e)
	}
	wantCode(t, h.apiCall("POST", "/services/web/real/rs2/weight", "", `{"wieght": 3}`, &e), http.StatusBadRequest)
	wantCode(t, h.apiCall("POST", "/services/web/real/rs2/weight", "", `nonsense`, &e), http.StatusBadRequest)
	if h.d.fileBytes(t) != before {
		t.Fatal("refused weight changed the file")
	}
}

func TestAPIConfig(t *testing.T) {
	h := newHarness(t)
	var doc api.ConfigDoc
	wantCode(t, h.apiCall("GET", "/config", "", "", &doc), http.StatusOK)
	if doc.Version != h.d.version || !strings.Contains(doc.TOML, `name = "rs2"`) {
		t.Fatalf("config doc %+v", doc)
	}
	body := func(d api.ConfigDoc) string { b, _ := json.Marshal(d); return string(b) }

	// Valid change.
	changed := api.ConfigDoc{Version: doc.Version, TOML: strings.Replace(doc.TOML, `name = "rs2"`, `name = "rs2-new"`, 1)}
	var st api.Status
	wantCode(t, h.apiCall("PUT", "/config", "", body(changed), &st), http.StatusOK)
	if st.Services[0].RealServers[1].Name != "rs2-new" || !strings.Contains(h.d.fileBytes(t), "rs2-new") {
		t.Fatalf("PUT not applied: %+v", st.Services[0].RealServers)
	}
	file := h.d.fileBytes(t)

	// The same document again is now stale.
	var e api.Error
	wantCode(t, h.apiCall("PUT", "/config", "", body(changed), &e), http.StatusConflict)
	if !strings.Contains(e.Error, "stale") {
		t.Fatalf("409 %+v", e)
	}
	// Invalid TOML, invalid values, a missing version: refused.
	_, cur := h.d.Config()
	e = api.Error{}
	wantCode(t, h.apiCall("PUT", "/config", "", body(api.ConfigDoc{Version: cur, TOML: "[global\n"}), &e), http.StatusUnprocessableEntity)
	if len(e.Problems) == 0 || e.Problems[0].Line != 1 {
		t.Fatalf("syntax 422 %+v", e)
	}
	bad := strings.Replace(file, `address = "10.0.0.11"`, `address = "10.0.0.300"`, 1)
	e = api.Error{}
	wantCode(t, h.apiCall("PUT", "/config", "", body(api.ConfigDoc{Version: cur, TOML: bad}), &e), http.StatusUnprocessableEntity)
	if len(e.Problems) != 1 || !strings.Contains(e.Problems[0].Message, "10.0.0.300") || e.Problems[0].Line == 0 {
		t.Fatalf("invalid 422 %+v", e)
	}
	wantCode(t, h.apiCall("PUT", "/config", "", body(api.ConfigDoc{TOML: file}), &e), http.StatusBadRequest)
	if h.d.fileBytes(t) != file {
		t.Fatal("a refused PUT changed the file")
	}
}

func TestAPICheckReloadFailover(t *testing.T) {
	h := newHarness(t)
	req := func(method, path, body string, out any) *http.Response {
		r, _ := http.NewRequest(method, h.ts.URL+api.Prefix+path, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+testToken)
		r.Header.Set("Content-Type", "text/plain")
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
		return resp
	}
	var cr api.CheckResult
	wantCode(t, req("POST", "/check", h.d.fileBytes(t), &cr), http.StatusOK)
	if !cr.OK {
		t.Fatalf("check of a good file: %+v", cr)
	}
	cr = api.CheckResult{}
	wantCode(t, req("POST", "/check", "[global]\nforwarding = \"magic\"\n", &cr), http.StatusOK)
	if cr.OK || len(cr.Problems) == 0 || cr.Problems[0].Line != 2 {
		t.Fatalf("check of a bad file: %+v", cr)
	}

	var st api.Status
	wantCode(t, h.apiCall("POST", "/reload", "", "", &st), http.StatusOK)
	if st.Counters["reloads"] != 1 {
		t.Fatalf("reload counters %v", st.Counters)
	}

	var v api.VRRP
	wantCode(t, h.apiCall("POST", "/failover", "", `{"holdoff_ns": 30000000000}`, &v), http.StatusOK)
	if v.State != "backup" || len(h.d.failovers) != 1 || h.d.failovers[0] != 30*time.Second {
		t.Fatalf("failover %+v %v", v, h.d.failovers)
	}
	var e api.Error
	wantCode(t, h.apiCall("POST", "/failover", "", `{"holdoff_ns": -1}`, &e), http.StatusBadRequest)
}

func TestAPIEventsAndStream(t *testing.T) {
	h := newHarness(t)
	var evs []api.Event
	wantCode(t, h.apiCall("GET", "/events", "", "", &evs), http.StatusOK)
	if len(evs) != 1 || evs[0].Kind != "start" {
		t.Fatalf("events %+v", evs)
	}
	h.d.setHealth("web", "rs1", "down", "refused")
	wantCode(t, h.apiCall("GET", "/events?since=1", "", "", &evs), http.StatusOK)
	if len(evs) != 1 || evs[0].Kind != "health" {
		t.Fatalf("events since 1: %+v", evs)
	}
	var e api.Error
	wantCode(t, h.apiCall("GET", "/events?since=x", "", "", &e), http.StatusBadRequest)

	req, _ := http.NewRequest("GET", h.ts.URL+api.Prefix+"/events/stream?since=1", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("stream content type %q", ct)
	}
	got := make(chan api.Event, 10)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var ev api.Event
				if json.Unmarshal([]byte(d), &ev) == nil {
					got <- ev
				}
			}
		}
		close(got)
	}()
	next := func() api.Event {
		select {
		case ev := <-got:
			return ev
		case <-time.After(5 * time.Second):
			t.Fatal("no event on the stream")
		}
		return api.Event{}
	}
	if ev := next(); ev.Seq != 2 || ev.Kind != "health" {
		t.Fatalf("replayed %+v", ev)
	}
	// A live change arrives once.
	var rs api.RealServer
	h.apiCall("POST", "/services/web/real/rs2/drain", "", "", &rs)
	if ev := next(); ev.Kind != "edit" || ev.Subject != "api ci" {
		t.Fatalf("live %+v", ev)
	}
}

// diskChanged is the director's refusal when the file holds changes that
// were never loaded (director.ErrChangedOnDisk has the same shape).
type diskChanged struct{}

func (diskChanged) Error() string {
	return "the file changed on disk; reload first (SIGHUP, lbctl reload or the console's reload), then redo your change"
}
func (diskChanged) Is(target error) bool { return target == config.ErrStale }
func (diskChanged) ChangedOnDisk()       {}

// An edit refused because the file changed on disk says so (409 with the
// director's words, not "stale version"), and is not retried.
func TestEditRefusedWhenFileChangedOnDisk(t *testing.T) {
	h := newHarness(t)
	var doc api.ConfigDoc
	wantCode(t, h.apiCall("GET", "/config", "", "", &doc), http.StatusOK)
	h.d.mu.Lock()
	h.d.applyErr = diskChanged{}
	h.d.mu.Unlock()
	b, _ := json.Marshal(api.ConfigDoc{Version: doc.Version, TOML: strings.Replace(doc.TOML, `name = "rs2"`, `name = "rs2-new"`, 1)})
	var e api.Error
	wantCode(t, h.apiCall("PUT", "/config", "", string(b), &e), http.StatusConflict)
	if !strings.Contains(e.Error, "changed on disk; reload first") {
		t.Fatalf("409 says %q", e.Error)
	}
	// lbctl drain sends no version: a stale version would be retried, a
	// file changed on disk must not be.
	h.d.mu.Lock()
	h.d.calls = 0
	h.d.mu.Unlock()
	e = api.Error{}
	wantCode(t, h.apiCall("POST", "/services/web/real/rs1/drain", "", "", &e), http.StatusConflict)
	h.d.mu.Lock()
	calls := h.d.calls
	h.d.mu.Unlock()
	if calls != 1 || !strings.Contains(e.Error, "changed on disk") {
		t.Fatalf("drain: %d Apply calls, error %q; want 1 and the on-disk message", calls, e.Error)
	}
}
