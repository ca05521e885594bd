package webui

import (
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"lbd/api"
	"lbd/config"
)

func TestNewRefusesWithoutPassword(t *testing.T) {
	d := newFakeDirector(t, "[global]\nnode_name = \"x\"\n")
	_, err := New(d, Options{})
	if err == nil {
		t.Fatal("New started a console without a password")
	}
	if !strings.Contains(err.Error(), "lbd passwd -config "+d.path) {
		t.Fatalf("error does not say how to set a password: %v", err)
	}
}

func TestServeRefusesWithoutPassword(t *testing.T) {
	h := newHarness(t)
	// The password is removed behind the console's back (a reload).
	cfg, v := h.d.Config()
	cfg.Console.PasswordHash = ""
	if _, err := h.d.Apply(t.Context(), cfg, v, "test"); err != nil {
		t.Fatal(err)
	}
	err := h.srv.Serve(t.Context(), "127.0.0.1:0", "", "")
	if err == nil || !strings.Contains(err.Error(), "lbd passwd") {
		t.Fatalf("Serve without a password: %v", err)
	}
}

func TestPagesNeedSession(t *testing.T) {
	h := newHarness(t)
	c := h.client()
	for _, p := range []string{"/status", "/services", "/vs/web", "/vs/web/monitoring", "/global", "/redundancy", "/events", "/vs/web/rs/rs1"} {
		r := c.get(p)
		mustStatus(t, r, http.StatusSeeOther)
		if loc := r.Header.Get("Location"); loc != "/login?next="+url.QueryEscape(p) {
			t.Errorf("GET %s redirects to %q", p, loc)
		}
	}
	// The background refresh gets a 401 instead of a login page to swap in.
	req, _ := http.NewRequest(http.MethodGet, h.base+"/status/live", nil)
	req.Header.Set(fragmentHeader, "1")
	mustStatus(t, c.do(req), http.StatusUnauthorized)

	before := h.d.fileBytes(t)
	r := c.post("/vs/web/rs/rs1/drain", url.Values{"csrf": {"x"}, "config_version": {h.d.version}})
	mustStatus(t, r, http.StatusSeeOther)
	if loc := r.Header.Get("Location"); loc != "/login" {
		t.Errorf("POST without session redirects to %q", loc)
	}
	if h.d.fileBytes(t) != before || h.d.applies != 0 {
		t.Fatal("a POST without a session changed the configuration")
	}
}

func TestLogin(t *testing.T) {
	h := newHarness(t)
	c := h.client()
	page := c.get("/login?next=/events")
	mustStatus(t, page, http.StatusOK)
	mustContain(t, page.body, `name="password"`, `name="next" value="/events"`)
	tok := field(t, csrfRe, page.body)

	r := c.post("/login", url.Values{"csrf": {tok}, "password": {"wrong"}, "next": {"/events"}})
	mustStatus(t, r, http.StatusUnauthorized)
	mustContain(t, r.body, "Wrong password")
	if c.get("/status").StatusCode != http.StatusSeeOther {
		t.Fatal("a wrong password gave a session")
	}

	tok = field(t, csrfRe, r.body)
	r = c.post("/login", url.Values{"csrf": {tok}, "password": {testPassword}, "user": {"bob"}, "next": {"/events"}})
	mustStatus(t, r, http.StatusSeeOther)
	if loc := r.Header.Get("Location"); loc != "/events" {
		t.Fatalf("after login: Location %q", loc)
	}
	var sc *http.Cookie
	for _, ck := range r.Cookies() {
		if ck.Name == sessionCookie {
			sc = ck
		}
	}
	if sc == nil || !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || sc.Path != "/" || len(sc.Value) < 40 {
		t.Fatalf("session cookie %+v", sc)
	}
	st := c.get("/status")
	mustStatus(t, st, http.StatusOK)
	mustContain(t, st.body, "bob", "web", "rs1", "rs2", "MASTER")

	// An outside next= is not followed.
	if got := safeNext("//evil.example/x"); got != "/" {
		t.Fatalf("safeNext(//evil) = %q", got)
	}
	if got := safeNext("https://evil.example/"); got != "/" {
		t.Fatalf("safeNext(https://evil) = %q", got)
	}
}

func TestLoginNeedsCSRF(t *testing.T) {
	h := newHarness(t)
	c := h.client()
	// No login page first: no CSRF cookie.
	r := c.post("/login", url.Values{"csrf": {"made-up"}, "password": {testPassword}})
	mustStatus(t, r, http.StatusForbidden)
	// A token that is not the cookie's.
	c.get("/login")
	r = c.post("/login", url.Values{"csrf": {"made-up"}, "password": {testPassword}})
	mustStatus(t, r, http.StatusForbidden)
}

func TestLoginRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newInProcessHarness(t, testConfig(t, ""), func(o *Options) { o.LoginAttempts = 3; o.LoginWindow = time.Minute })
		c := h.client()
		tok := field(t, csrfRe, c.get("/login").body)
		for i := 0; i < 3; i++ {
			r := c.post("/login", url.Values{"csrf": {tok}, "password": {"guess"}})
			mustStatus(t, r, http.StatusUnauthorized)
			tok = field(t, csrfRe, r.body)
		}
		// Over the limit even the right password is refused, with a wait time.
		r := c.post("/login", url.Values{"csrf": {tok}, "password": {testPassword}})
		mustStatus(t, r, http.StatusTooManyRequests)
		if r.Header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
		mustContain(t, r.body, "Too many login attempts")
		time.Sleep(61 * time.Second)
		tok = field(t, csrfRe, r.body)
		r = c.post("/login", url.Values{"csrf": {tok}, "password": {testPassword}})
		mustStatus(t, r, http.StatusSeeOther)
	})
}

func TestLogoutEndsSession(t *testing.T) {
	h := newHarness(t)
	c := h.login()
	// Logging out needs the CSRF token too.
	mustStatus(t, c.post("/logout", url.Values{"csrf": {"nope"}}), http.StatusForbidden)
	r := c.post("/logout", url.Values{"csrf": {c.csrf}})
	mustStatus(t, r, http.StatusSeeOther)
	if r.Header.Get("Location") != "/login" {
		t.Fatalf("logout redirects to %q", r.Header.Get("Location"))
	}
	mustStatus(t, c.get("/status"), http.StatusSeeOther)
}

func TestSessionIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newInProcessHarness(t, testConfig(t, `session_timeout = "10m"`))
		c := h.login()
		time.Sleep(9 * time.Minute)
		mustStatus(t, c.get("/status"), http.StatusOK) // activity: the idle clock restarts
		// Background refreshes keep working but are not activity.
		for i := 0; i < 4; i++ {
			time.Sleep(3 * time.Minute)
			req, _ := http.NewRequest(http.MethodGet, h.base+"/status/live", nil)
			req.Header.Set(fragmentHeader, "1")
			r := c.do(req)
			if i < 3 {
				mustStatus(t, r, http.StatusOK)
			} else {
				mustStatus(t, r, http.StatusUnauthorized)
			}
		}
		mustStatus(t, c.get("/status"), http.StatusSeeOther)
	})
}

func TestSecurityHeaders(t *testing.T) {
	h := newHarness(t)
	c := h.login()
	for _, p := range []string{"/login", "/status", "/vs/web", "/api/v1/status", "/static/app.css"} {
		r := c.get(p)
		csp := r.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "style-src 'self'") ||
			strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", p, csp)
		}
		for k, want := range map[string]string{
			"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
		} {
			if got := r.Header.Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", p, k, got, want)
			}
		}
	}
}

// No page may need an inline script or style: the CSP would block it.
var inlineRe = regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]|<script>|<style|\sstyle=|\son[a-z]+=`)

func TestScreens(t *testing.T) {
	h := newHarness(t)
	c := h.login()
	cases := []struct {
		path string
		want []string
	}{
		{"/status", []string{"Director", "Redundancy", "MASTER", "VRID 51", "192.0.2.10:80/tcp", "HTTP 200 in 3ms", `id="drain-web-rs1"`, "conn/s", "Recent events"}},
		{"/services", []string{"192.0.2.10:80/tcp", "wlc", `id="delete-web"`, `id="deactivate-web"`, "http"}},
		{"/services/add", []string{`name="vip"`, `name="scheduler"`, "Add virtual server"}},
		{"/vs/web", []string{`value="web"`, `value="192.0.2.10"`, "Real servers", `id="drain-rs1"`, `name="weight" value="2" aria-label="weight of rs2"`, "Edit health check"}},
		{"/vs/web/monitoring", []string{`<option value="http" selected>`, `value="/healthz"`, `name="rise"`, `value="200-399"`}},
		{"/vs/web/add-real", []string{`name="address"`, `id="f-weight" name="weight" value="1"`}},
		{"/vs/web/rs/rs2", []string{`value="10.0.0.12"`, `id="f-weight" name="weight" value="2"`, "in the IPVS table"}},
		{"/global", []string{`value="lvs-test"`, `value="eth0"`, `value=":3636"`, "lbd passwd"}},
		{"/redundancy", []string{`id="f-vrid" name="vrid" value="51"`, "192.0.2.3", `<option value="3" selected>`}},
		{"/events", []string{"lbd started", "start"}},
	}
	for _, tc := range cases {
		r := c.get(tc.path)
		mustStatus(t, r, http.StatusOK)
		mustContain(t, r.body, tc.want...)
		if m := inlineRe.FindString(r.body); m != "" {
			t.Errorf("%s has inline script/style %q", tc.path, m)
		}
		if !strings.Contains(r.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: content type %q", tc.path, r.Header.Get("Content-Type"))
		}
	}
	for _, p := range []string{"/status/live", "/events/live"} {
		r := c.get(p)
		mustStatus(t, r, http.StatusOK)
		if strings.Contains(r.body, "<html") {
			t.Errorf("%s is a whole page, not a fragment", p)
		}
	}
	live := c.get("/status/live")
	mustContain(t, live.body, "rs1", `id="drain-web-rs1"`)

	for _, p := range []string{"/static/app.js", "/static/app.css", "/static/favicon.svg"} {
		r := c.get(p)
		mustStatus(t, r, http.StatusOK)
	}
	mustStatus(t, c.get("/static/nope.js"), http.StatusNotFound)
	mustStatus(t, c.get("/static/../server.go"), http.StatusNotFound)
}

func TestUnknownNamesSuggest(t *testing.T) {
	h := newHarness(t)
	c := h.login()
	r := c.get("/vs/wex")
	mustStatus(t, r, http.StatusNotFound)
	mustContain(t, r.body, `did you mean &#34;web&#34;`)
	r = c.get("/vs/web/rs/rs3")
	mustStatus(t, r, http.StatusNotFound)
	mustContain(t, r.body, "No real server &#34;rs3&#34; in virtual server &#34;web&#34;")
	mustStatus(t, c.get("/no/such/page"), http.StatusNotFound)
}

func TestBadCSRFRefused(t *testing.T) {
	h := newHarness(t)
	c := h.login()
	before := h.d.fileBytes(t)
	v := c.formOf("/vs/web")
	for _, tc := range []struct {
		path string
		form url.Values
	}{
		{"/vs/web/rs/rs1/drain", with(v, "csrf", "forged")},
		{"/vs/web/rs/rs1/drain", url.Values{"config_version": v["config_version"]}},
		{"/vs/web", with(v, "csrf", "", "name", "web", "vip", "192.0.2.99", "port", "80")},
		{"/services/add", with(v, "csrf", "forged", "name", "x")},
		{"/global", with(v, "csrf", "forged")},
		{"/reload", with(v, "csrf", "forged")},
		{"/failover", with(v, "csrf", "forged")},
	} {
		r := c.post(tc.path, tc.form)
		mustStatus(t, r, http.StatusForbidden)
		mustContain(t, r.body, "CSRF")
	}
	// A token from another session is just as bad.
	other := h.login()
	mustStatus(t, c.post("/vs/web/rs/rs1/drain", with(v, "csrf", other.csrf)), http.StatusForbidden)
	if h.d.fileBytes(t) != before || h.d.applies != 0 {
		t.Fatal("a refused form changed the configuration")
	}
}

func TestAddVirtualServerAndRealServers(t *testing.T) {
	h := newHarness(t)
	c := h.login()
	v := c.formOf("/services/add")
	r := c.post("/services/add", with(v, "name", "api", "vip", "192.0.2.20", "port", "443", "protocol", "tcp",
		"scheduler", "rr", "forwarding", "", "quorum", "1", "on_failure", "quiesce", "active", "on", "persistence", "0s"))
	mustStatus(t, r, http.StatusSeeOther)
	if r.Header.Get("Location") != "/vs/api" {
		t.Fatalf("Location %q", r.Header.Get("Location"))
	}
	mustContain(t, c.get("/vs/api").body, "Virtual server api added")
	for i, addr := range []string{"10.0.1.1", "10.0.1.2"} {
		v := c.formOf("/vs/api/add-real")
		r := c.post("/vs/api/add-real", with(v, "name", "a"+string(rune('1'+i)), "address", addr, "weight", "3", "active", "on"))
		mustStatus(t, r, http.StatusSeeOther)
	}
	file := h.d.fileBytes(t)
	mustContain(t, file, `name = "api"`, `vip = "192.0.2.20"`, `port = 443`, `scheduler = "rr"`, `address = "10.0.1.2"`, `weight = 3`)
	st := c.get("/status")
	mustContain(t, st.body, "192.0.2.20:443/tcp", `id="rs-api-a2"`)
	if h.d.lastSrc != "console alice" {
		t.Fatalf("edit source %q", h.d.lastSrc)
	}
	// The written file is valid as it stands.
	if _, err := config.Load(h.d.path); err != nil {
		t.Fatalf("written config does not load: %v", err)
	}
}

func TestInvalidInputShowsMessageNextToField(t *testing.T) {
	h := newHarness(t)
	c := h.login()
	before := h.d.fileBytes(t)

	v := c.formOf("/vs/web/rs/rs1")
	r := c.post("/vs/web/rs/rs1", with(v, "name", "rs1", "address", "10.0.0.11", "weight", "70000", "active", "on"))
	mustStatus(t, r, http.StatusUnprocessableEntity)
	mustContain(t, r.body, `<p class="error" data-field="weight">`, "65535", `id="problems"`, `value="70000"`)

	// A value that is not even a number is caught before validation.
	r = c.post("/vs/web/rs/rs1", with(v, "name", "rs1", "address", "10.0.0.11", "weight", "heavy"))
	mustStatus(t, r, http.StatusUnprocessableEntity)
	mustContain(t, r.body, `data-field="weight">&#34;heavy&#34; is not a whole number`)

	v = c.formOf("/services/add")
	r = c.post("/services/add", with(v, "name", "bad name", "vip", "300.1.1.1", "port", "80", "scheduler", "wlc", "quorum", "1"))
	mustStatus(t, r, http.StatusUnprocessableEntity)
	mustContain(t, r.body, `data-field="vip">`, `data-field="name">`, "300.1.1.1")

	v = c.formOf("/vs/web/monitoring")
	r = c.post("/vs/web/monitoring", with(v, "type", "http", "interval", "1s", "timeout", "2s", "rise", "2", "fall", "3", "path", "healthz"))
	mustStatus(t, r, http.StatusUnprocessableEntity)
	mustContain(t, r.body, `data-field="timeout">`, "shorter than interval", `data-field="path">`)

	v = c.formOf("/redundancy")
	r = c.post("/redundancy", with(v, "enabled", "on", "version", "3", "vrid", "51", "priority", "300", "advert_interval", "1s", "interface", "eth0", "garp_count", "5", "garp_interval", "100ms", "notify_timeout", "10s", "preempt", "on"))
	mustStatus(t, r, http.StatusUnprocessableEntity)
	mustContain(t, r.body, `data-field="priority">`)

	v = c.formOf("/global")
	r = c.post("/global", with(v, "global.node_name", "lvs-test", "global.forwarding", "dr", "global.listen", "nowhere", "global.resync_interval", "5s", "global.remove_grace", "5m", "console.session_timeout", "8h"))
	mustStatus(t, r, http.StatusUnprocessableEntity)
	mustContain(t, r.body, `data-field="global.listen">`)

	if h.d.fileBytes(t) != before || h.d.applies != 0 {
		t.Fatal("invalid input changed the file")
	}
}

func TestStaleVersionConflict(t *testing.T) {
	h := newHarness(t)
	alice := h.login()
	bob := h.login()

	stale := alice.formOf("/vs/web/rs/rs2")
	// Bob saves first.
	bv := bob.formOf("/vs/web")
	mustStatus(t, bob.post("/vs/web/rs/rs1/drain", bv), http.StatusSeeOther)
	afterBob := h.d.fileBytes(t)

	r := alice.post("/vs/web/rs/rs2", with(stale, "name", "rs2", "address", "10.0.0.12", "weight", "5", "active", "on"))
	mustStatus(t, r, http.StatusConflict)
	mustContain(t, r.body, `id="conflict"`, "changed while you were editing", `value="5"`)
	if h.d.fileBytes(t) != afterBob {
		t.Fatal("a stale save changed the file")
	}
	// The re-rendered form carries the current version: saving again works.
	cur := url.Values{"csrf": {alice.csrf}, "config_version": {field(t, versionRe, r.body)}}
	r = alice.post("/vs/web/rs/rs2", with(cur, "name", "rs2", "address", "10.0.0.12", "weight", "5", "active", "on"))
	mustStatus(t, r, http.StatusSeeOther)
	file := h.d.fileBytes(t)
	mustContain(t, file, "weight = 5", "drained = true")

	// One-button actions refuse a stale page too.
	r = alice.post("/vs/web/rs/rs1/undrain", stale)
	mustStatus(t, r, http.StatusConflict)
	mustContain(t, r.body, "Someone else saved a change")
	if h.d.fileBytes(t) != file {
		t.Fatal("a stale action changed the file")
	}
}

func TestRealServerActions(t *testing.T) {
	h := newHarness(t)
	c := h.login()
	rs := func(name string) config.RealServer {
		cfg, _ := h.d.Config()
		return *cfg.FindVirtualServer("web").FindRealServer(name)
	}
	act := func(path string, kv ...string) *resp {
		v := c.formOf("/vs/web")
		return c.post(path, with(v, kv...))
	}
	r := act("/vs/web/rs/rs1/drain", "back", "/status")
	mustStatus(t, r, http.StatusSeeOther)
	if r.Header.Get("Location") != "/status" || !rs("rs1").Drained {
		t.Fatalf("drain: %s, drained=%v", r.Header.Get("Location"), rs("rs1").Drained)
	}
	mustContain(t, c.get("/status").body, "drained", `id="undrain-web-rs1"`, "rs1 drained")
	mustStatus(t, act("/vs/web/rs/rs1/undrain"), http.StatusSeeOther)
	if rs("rs1").Drained {
		t.Fatal("undrain did not undrain")
	}
	mustStatus(t, act("/vs/web/rs/rs1/deactivate"), http.StatusSeeOther)
	if *rs("rs1").Active {
		t.Fatal("deactivate")
	}
	mustStatus(t, act("/vs/web/rs/rs1/activate"), http.StatusSeeOther)
	if !*rs("rs1").Active {
		t.Fatal("activate")
	}
	mustStatus(t, act("/vs/web/rs/rs1/weight", "weight", "7"), http.StatusSeeOther)
	if *rs("rs1").Weight != 7 {
		t.Fatal("weight")
	}
	mustStatus(t, act("/vs/web/rs/rs1/weight", "weight", "-1"), http.StatusUnprocessableEntity)
	mustStatus(t, act("/vs/web/rs/rs1/weight", "weight", "x"), http.StatusUnprocessableEntity)
	mustStatus(t, act("/vs/web/rs/rs1/explode"), http.StatusNotFound)
	mustStatus(t, act("/vs/web/rs/rs9/drain"), http.StatusNotFound)

	// Edit: rename and change the address.
	v := c.formOf("/vs/web/rs/rs2")
	r = c.post("/vs/web/rs/rs2", with(v, "name", "rs2b", "address", "10.0.0.22", "weight", "2", "active", "on"))
	mustStatus(t, r, http.StatusSeeOther)
	if rs("rs2b").Address != "10.0.0.22" {
		t.Fatal("edit")
	}
	mustStatus(t, act("/vs/web/rs/rs2b/delete"), http.StatusSeeOther)
	cfg, _ := h.d.Config()
	if len(cfg.VirtualServers[0].RealServers) != 1 {
		t.Fatal("delete")
	}
	if !strings.Contains(h.d.fileBytes(t), "weight = 7") {
		t.Fatal("file not written")
	}
}

func TestVirtualServerActions(t *testing.T) {
	h := newHarness(t)
	c := h.login()
	v := c.formOf("/services")
	mustStatus(t, c.post("/vs/web/deactivate", v), http.StatusSeeOther)
	cfg, _ := h.d.Config()
	if *cfg.VirtualServers[0].Active {
		t.Fatal("deactivate")
	}
	mustContain(t, c.get("/services").body, "inactive", `id="activate-web"`)
	v = c.formOf("/services")
	mustStatus(t, c.post("/vs/web/activate", v), http.StatusSeeOther)

	// Edit: a new port carries the real servers (which inherited it) along.
	v = c.formOf("/vs/web")
	r := c.post("/vs/web", with(v, "name", "www", "vip", "192.0.2.10", "port", "8080", "protocol", "tcp",
		"scheduler", "sh", "quorum", "2", "on_failure", "remove", "active", "on", "forwarding", "dr", "persistence", "300s", "persistence_netmask", "32"))
	mustStatus(t, r, http.StatusSeeOther)
	if r.Header.Get("Location") != "/vs/www" {
		t.Fatalf("rename redirects to %q", r.Header.Get("Location"))
	}
	cfg, _ = h.d.Config()
	vs := cfg.FindVirtualServer("www")
	if vs == nil || vs.Port != 8080 || vs.RealServers[0].Port != 8080 || vs.Scheduler != "sh" || vs.Quorum != 2 || vs.HealthCheck == nil {
		t.Fatalf("edited service: %+v", vs)
	}
	// Scheduler flags are checkboxes.
	v = c.formOf("/vs/www")
	form := with(v, "name", "www", "vip", "192.0.2.10", "port", "8080", "scheduler", "sh", "quorum", "1", "active", "on")
	form["scheduler_flags"] = []string{"sh-fallback", "sh-port"}
	mustStatus(t, c.post("/vs/www", form), http.StatusSeeOther)
	cfg, _ = h.d.Config()
	if got := cfg.FindVirtualServer("www").SchedulerFlags; len(got) != 2 {
		t.Fatalf("flags %v", got)
	}

	v = c.formOf("/services")
	mustStatus(t, c.post("/vs/www/delete", v), http.StatusSeeOther)
	cfg, _ = h.d.Config()
	if len(cfg.VirtualServers) != 0 {
		t.Fatal("delete")
	}
	mustContain(t, c.get("/status").body, "No virtual servers yet")
}

func TestMonitoringEdit(t *testing.T) {
	h := newHarness(t)
	c := h.login()
	v := c.formOf("/vs/web/monitoring")
	r := c.post("/vs/web/monitoring", with(v, "type", "send_expect", "port", "6379", "interval", "3s", "timeout", "500ms",
		"rise", "1", "fall", "2", "send", `PING\r\n`, "expect", "^\\+PONG"))
	mustStatus(t, r, http.StatusSeeOther)
	cfg, _ := h.d.Config()
	hc := cfg.FindVirtualServer("web").HealthCheck
	if hc.Type != "send_expect" || hc.Send != "PING\r\n" || hc.Port != 6379 || hc.Interval.Duration != 3*time.Second || hc.Rise != 1 {
		t.Fatalf("health check %+v", hc)
	}
	// The form shows line endings escaped, so saving again keeps them.
	mustContain(t, c.get("/vs/web/monitoring").body, `value="PING\r\n"`)

	v = c.formOf("/vs/web/monitoring")
	r = c.post("/vs/web/monitoring", with(v, "type", "exec", "interval", "2s", "timeout", "1s", "rise", "2", "fall", "3", "command", "/nonexistent/check\n%h\n%p"))
	mustStatus(t, r, http.StatusUnprocessableEntity)
	mustContain(t, r.body, `data-field="command">`, "/nonexistent/check")
}

// The dns, udp and smtp checks' settings are edited like the others'; a
// check that cannot work on the service's protocol is refused on the form.
func TestMonitoringNewCheckTypes(t *testing.T) {
	h := newHarness(t)
	c := h.login()
	v := c.formOf("/vs/web/monitoring")
	r := c.post("/vs/web/monitoring", with(v, "type", "dns", "interval", "2s", "timeout", "1s", "rise", "2", "fall", "3",
		"query_name", "example.org", "query_type", "AAAA", "dns_transport", "udp", "expect_rcode", "NOERROR", "expect_answer", "2001:db8::1"))
	mustStatus(t, r, http.StatusSeeOther)
	cfg, _ := h.d.Config()
	hc := cfg.FindVirtualServer("web").HealthCheck
	if hc.Type != "dns" || hc.QueryName != "example.org" || hc.QueryType != "AAAA" || hc.DNSTransport != "udp" || hc.ExpectAnswer != "2001:db8::1" {
		t.Fatalf("dns check %+v", hc)
	}
	mustContain(t, c.get("/vs/web/monitoring").body, `<option value="dns" selected>`, `value="example.org"`, `<option value="udp" selected>`)

	v = c.formOf("/vs/web/monitoring")
	r = c.post("/vs/web/monitoring", with(v, "type", "smtp", "port", "25", "interval", "2s", "timeout", "1s", "rise", "2", "fall", "3",
		"helo_name", "lb1.example.net", "starttls", "on", "sni", "mx.example.com", "tls_verify", "on"))
	mustStatus(t, r, http.StatusSeeOther)
	cfg, _ = h.d.Config()
	hc = cfg.FindVirtualServer("web").HealthCheck
	if hc.Type != "smtp" || hc.HeloName != "lb1.example.net" || !hc.StartTLS || hc.SNI != "mx.example.com" || !*hc.TLSVerify {
		t.Fatalf("smtp check %+v", hc)
	}

	// web is a tcp service: a udp check of its own port cannot work.
	v = c.formOf("/vs/web/monitoring")
	r = c.post("/vs/web/monitoring", with(v, "type", "udp", "port", "", "interval", "2s", "timeout", "1s", "rise", "2", "fall", "3", "send", "PING"))
	mustStatus(t, r, http.StatusUnprocessableEntity)
	mustContain(t, r.body, `data-field="type">`, "cannot check a tcp service")
}

func TestGlobalAndRedundancyEdit(t *testing.T) {
	h := newHarness(t)
	c := h.login()
	v := c.formOf("/global")
	r := c.post("/global", with(v, "global.node_name", "lvs-a", "global.interface", "eth1", "global.forwarding", "nat",
		"global.listen", "127.0.0.1:3636", "global.resync_interval", "10s", "global.remove_grace", "0s",
		"console.session_timeout", "1h", "console.metrics_auth", "on", "global.udp_timeout", "30s"))
	mustStatus(t, r, http.StatusSeeOther)
	cfg, _ := h.d.Config()
	if cfg.Global.NodeName != "lvs-a" || cfg.Global.Forwarding != "nat" || !cfg.Console.MetricsAuth || cfg.Console.SessionTimeout.Duration != time.Hour {
		t.Fatalf("global %+v console %+v", cfg.Global, cfg.Console)
	}
	// The connection timeouts: the one set is written, the blank ones stay
	// the kernel's.
	if cfg.Global.UDPTimeout.Duration != 30*time.Second || cfg.Global.TCPTimeout.Duration != 0 || !strings.Contains(h.d.fileBytes(t), `udp_timeout = "30s"`) {
		t.Fatalf("timeouts tcp %v udp %v", cfg.Global.TCPTimeout, cfg.Global.UDPTimeout)
	}
	if strings.Contains(h.d.fileBytes(t), "tcp_timeout") {
		t.Fatal("a blank tcp_timeout was written")
	}
	// Inherited settings follow: the service and its real servers were "dr"
	// because the global default was, and the VRRP interface was eth0.
	if cfg.VirtualServers[0].Forwarding != "nat" || cfg.VirtualServers[0].RealServers[1].Forwarding != "nat" || cfg.VRRP.Interface != "eth1" {
		t.Fatalf("inherited settings did not follow: vs %q rs %q vrrp %q",
			cfg.VirtualServers[0].Forwarding, cfg.VirtualServers[0].RealServers[1].Forwarding, cfg.VRRP.Interface)
	}
	// So does the connection sync, which inherits the VRRP interface.
	if cfg.Sync.Interface != "eth1" {
		t.Fatalf("sync interface %q did not follow", cfg.Sync.Interface)
	}
	// The password hash was not touched by a form that does not show it.
	if cfg.Console.PasswordHash != passwordHash(t) || len(cfg.Console.TokenHashes) != 1 {
		t.Fatal("console secrets lost")
	}

	v = c.formOf("/redundancy")
	r = c.post("/redundancy", with(v, "enabled", "on", "version", "2", "vrid", "60", "priority", "90", "advert_interval", "2s",
		"interface", "eth1", "unicast_peers", "192.0.2.3\n192.0.2.4", "preempt", "", "preempt_delay", "30s",
		"track_interface", "eth2 20\neth3", "garp_count", "3", "garp_interval", "200ms", "notify_timeout", "5s", "auth_pass", "pw"))
	mustStatus(t, r, http.StatusSeeOther)
	cfg, _ = h.d.Config()
	vr := cfg.VRRP
	if vr.VRID != 60 || vr.Version != 2 || *vr.Preempt || len(vr.UnicastPeers) != 2 || len(vr.TrackInterfaces) != 2 || vr.TrackInterfaces[0].Weight != 20 || vr.AuthPass != "pw" {
		t.Fatalf("vrrp %+v", vr)
	}
	v = c.formOf("/redundancy")
	mustStatus(t, c.post("/redundancy", with(v, "enabled", "")), http.StatusSeeOther)
	cfg, _ = h.d.Config()
	if cfg.VRRP != nil {
		t.Fatal("VRRP not disabled")
	}
	if strings.Contains(h.d.fileBytes(t), "[vrrp]") {
		t.Fatal("[vrrp] still in the file")
	}
}

func TestReloadAndFailoverButtons(t *testing.T) {
	h := newHarness(t)
	c := h.login()
	// An operator edits the file by hand, then presses reload.
	good := strings.Replace(h.d.fileBytes(t), `name = "rs2"`, `name = "rs2x"`, 1)
	if err := os.WriteFile(h.d.path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	r := c.post("/reload", url.Values{"csrf": {c.csrf}, "back": {"/status"}})
	mustStatus(t, r, http.StatusSeeOther)
	mustContain(t, c.get("/status").body, "Configuration reloaded", "rs2x")

	if err := os.WriteFile(h.d.path, []byte(good+"\n[[virtual_server]]\nname = 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustStatus(t, c.post("/reload", url.Values{"csrf": {c.csrf}}), http.StatusSeeOther)
	st := c.get("/status")
	mustContain(t, st.body, "Reload refused", "rs2x")

	r = c.post("/failover", url.Values{"csrf": {c.csrf}, "holdoff": {"2m"}})
	mustStatus(t, r, http.StatusSeeOther)
	if len(h.d.failovers) != 1 || h.d.failovers[0] != 2*time.Minute {
		t.Fatalf("failovers %v", h.d.failovers)
	}
	mustContain(t, c.get("/status").body, "resigned mastership", "BACKUP")
	r = c.post("/failover", url.Values{"csrf": {c.csrf}, "holdoff": {"soon"}})
	mustStatus(t, r, http.StatusSeeOther)
	mustContain(t, c.get("/status").body, "not a duration")
}

func TestEventsScreen(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.EventsShown = 5 })
	for i := 0; i < 10; i++ {
		h.d.setHealth("web", "rs1", "down", "connection refused #"+string(rune('0'+i)))
	}
	c := h.login()
	body := c.get("/events").body
	mustContain(t, body, "connection refused #9", "connection refused #5")
	if strings.Contains(body, "connection refused #4") {
		t.Fatal("more events shown than asked")
	}
	if strings.Index(body, "#9") > strings.Index(body, "#5") {
		t.Fatal("events not newest first")
	}
	mustContain(t, c.get("/status").body, "connection refused #9", `<span class="badge bad">down</span>`)
}

// The status screen's background refresh must not eat the message meant
// for the page loaded after a POST.
func TestFragmentKeepsFlash(t *testing.T) {
	h := newHarness(t)
	c := h.login()
	mustStatus(t, c.post("/vs/web/rs/rs1/drain", with(c.formOf("/vs/web"), "back", "/status")), http.StatusSeeOther)
	req, _ := http.NewRequest(http.MethodGet, h.base+"/status/live", nil)
	req.Header.Set(fragmentHeader, "1")
	mustStatus(t, c.do(req), http.StatusOK)
	mustContain(t, c.get("/status").body, `id="flash"`, "rs1 drained")
}

// On a kernel without IPVS the director runs VRRP only: the status screen
// says so where it would otherwise wait for a first verification.
func TestStatusIPVSUnavailable(t *testing.T) {
	h := newHarness(t)
	c := h.login()
	r := c.get("/status")
	mustStatus(t, r, http.StatusOK)
	if strings.Contains(r.body, "IPVS not available") {
		t.Fatal("IPVS reported unavailable by a director that has it")
	}
	h.d.mu.Lock()
	h.d.noIPVS = true
	h.d.mu.Unlock()
	for _, p := range []string{"/status", "/status/live"} {
		r := c.get(p)
		mustStatus(t, r, http.StatusOK)
		mustContain(t, r.body, `id="ipvs-unavailable">IPVS not available (VRRP only)</span>`)
		if strings.Contains(r.body, "not verified yet") || strings.Contains(r.body, "in sync") {
			t.Errorf("%s still shows a table state:\n%s", p, r.body)
		}
	}
}

// In BGP mode the status screen shows the sessions and each VIP,
// announced or withdrawn with the reason.
func TestStatusBGP(t *testing.T) {
	h := newHarness(t)
	c := h.login()
	if strings.Contains(c.get("/status").body, `id="bgp"`) {
		t.Fatal("BGP block without [bgp]")
	}
	h.d.mu.Lock()
	h.d.bgp = &api.BGP{LocalASN: 65001, Maintenance: true,
		Sessions: []api.BGPSession{{Neighbor: "10.1.0.1", ASN: 65000, State: "established", PrefixesSent: 1}},
		VIPs:     []api.BGPVIP{{VIP: "192.0.2.10", Announced: true}, {VIP: "192.0.2.20", Reason: "below quorum: dns"}}}
	h.d.mu.Unlock()
	for _, p := range []string{"/status", "/status/live"} {
		r := c.get(p)
		mustStatus(t, r, http.StatusOK)
		mustContain(t, r.body, `id="bgp"`, "AS 65001", `id="bgp-maintenance"`, "<code>10.1.0.1</code>",
			`<span class="badge ok">established</span>`, "<code>192.0.2.10</code>", `<span class="badge ok">announced</span>`,
			`<span class="badge bad">withdrawn</span> below quorum: dns`)
		if strings.Contains(r.body, "VRRP is not configured") {
			t.Errorf("%s says VRRP is not configured in BGP mode", p)
		}
	}
}
