package webui

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/crypto/bcrypt"

	"lbd/api"
	"lbd/config"
)

// TestLoginRedirectStaysOnSite logs in with hostile next= values and checks
// the Location the browser gets (after http.Redirect's own cleaning).
func TestLoginRedirectStaysOnSite(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct{ next, want string }{
		{"", "/status"},
		{"/events", "/events"},
		{"/vs/web?tab=1", "/vs/web?tab=1"},
		{"/services/", "/services/"},
		{"/a/../events", "/events"},
		{`/./\evil.example`, "/"},
		{`/\evil.example`, "/"},
		{`\\evil.example`, "/"},
		{`/.//evil.example`, "/evil.example"}, // cleaned to a local path
		{"//evil.example/x", "/"},
		{"///evil.example", "/evil.example"},
		{"/..//evil.example", "/evil.example"},
		{"https://evil.example/", "/"},
		{"javascript:alert(1)", "/"},
		{"evil.example", "/"},
		{"/\tevil", "/"},
		{"/\r\nSet-Cookie: x=1", "/"},
		{"/\x00x", "/"},
		{"/x\x7f", "/"},
		{"/%5Cevil.example", "/%5Cevil.example"},
	} {
		c := h.client()
		tok := field(t, csrfRe, c.get("/login").body)
		r := c.post("/login", url.Values{"csrf": {tok}, "password": {testPassword}, "next": {tc.next}})
		mustStatus(t, r, http.StatusSeeOther)
		if loc := r.Header.Get("Location"); loc != tc.want {
			t.Errorf("next=%q: Location %q, want %q", tc.next, loc, tc.want)
		}
		if got := safeNext(tc.next); got != tc.want {
			t.Errorf("safeNext(%q) = %q, want %q", tc.next, got, tc.want)
		}
	}
}

// TestLoginLimitPerIPv6Prefix: addresses of one IPv6 /64 share one budget;
// IPv4 addresses (mapped or not) count one by one.
func TestLoginLimitPerIPv6Prefix(t *testing.T) {
	for ip, want := range map[string]string{
		"192.0.2.1":                 "192.0.2.1",
		"::ffff:192.0.2.1":          "192.0.2.1",
		"2001:db8:1:2:aaaa::1":      "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff:ffff::9": "2001:db8:1:2::/64",
		"fe80::1%eth0":              "fe80::/64",
		"not-an-ip":                 "not-an-ip",
	} {
		if got := limitKey(ip); got != want {
			t.Errorf("limitKey(%q) = %q, want %q", ip, got, want)
		}
	}

	h := newHarness(t, func(o *Options) { o.LoginAttempts = 2 })
	try := func(remote string) int {
		c := h.client()
		tok := field(t, csrfRe, c.get("/login").body)
		form := url.Values{"csrf": {tok}, "password": {"guess"}}
		req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: loginCookie, Value: tok})
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		h.srv.Handler().ServeHTTP(rec, req)
		return rec.Code
	}
	if try("[2001:db8:1:2::1]:4000") != http.StatusUnauthorized || try("[2001:db8:1:2::2]:4000") != http.StatusUnauthorized {
		t.Fatal("first two guesses refused")
	}
	if got := try("[2001:db8:1:2:dead:beef::3]:4000"); got != http.StatusTooManyRequests {
		t.Fatalf("third guess from the same /64, another address: %d, want 429", got)
	}
	if got := try("[2001:db8:1:3::1]:4000"); got != http.StatusUnauthorized {
		t.Fatalf("another /64: %d, want 401", got)
	}
	if try("192.0.2.1:1") != http.StatusUnauthorized || try("192.0.2.1:2") != http.StatusUnauthorized || try("192.0.2.1:3") != http.StatusTooManyRequests {
		t.Fatal("IPv4 address not limited")
	}
	if got := try("192.0.2.2:1"); got != http.StatusUnauthorized {
		t.Fatalf("another IPv4 address: %d, want 401", got)
	}
}

// setPasswordHash changes the running console password as a reload of an
// edited file would.
func (f *fakeDirector) setPasswordHash(t testing.TB, password string) {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cfg.Console.PasswordHash = string(h)
}

// TestPasswordChangeEndsSessions: every session, pages and API alike, ends
// at once when the password changes.
func TestPasswordChangeEndsSessions(t *testing.T) {
	h := newHarness(t)
	a, b := h.login(), h.login()
	apiGet := func(c *client) int {
		req, _ := http.NewRequest(http.MethodGet, h.ts.URL+api.Prefix+"/status", nil)
		return c.do(req).StatusCode
	}
	if apiGet(b) != http.StatusOK {
		t.Fatal("session not accepted by the API")
	}
	h.d.setPasswordHash(t, "a new password")
	mustStatus(t, a.get("/status"), http.StatusSeeOther)
	if got := apiGet(b); got != http.StatusUnauthorized {
		t.Fatalf("API with a session from the old password: %d, want 401", got)
	}
	mustStatus(t, b.get("/status"), http.StatusSeeOther)
	// The new password logs in; the old one does not.
	c := h.client()
	tok := field(t, csrfRe, c.get("/login").body)
	mustStatus(t, c.post("/login", url.Values{"csrf": {tok}, "password": {testPassword}}), http.StatusUnauthorized)
	tok = field(t, csrfRe, c.get("/login").body)
	mustStatus(t, c.post("/login", url.Values{"csrf": {tok}, "password": {"a new password"}}), http.StatusSeeOther)
	mustStatus(t, c.get("/status"), http.StatusOK)
}

// TestSessionMaxLifetime: a busy session still ends maxSessionLifetime
// after its login.
func TestSessionMaxLifetime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newInProcessHarness(t, testConfig(t, `session_timeout = "1h"`))
		c := h.login()
		for el := time.Duration(0); el < maxSessionLifetime-time.Hour; el += 50 * time.Minute {
			time.Sleep(50 * time.Minute)
			mustStatus(t, c.get("/status"), http.StatusOK)
		}
		// 23h20m so far; 45 more minutes is within the idle timeout but past
		// the lifetime.
		time.Sleep(45 * time.Minute)
		mustStatus(t, c.get("/status"), http.StatusSeeOther)
	})
}

// openStream opens the event stream with the given client (nil: the
// default one and the test token) and fails unless it gets code.
func (h *harness) openStream(c *client, code int) *http.Response {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.ts.URL+api.Prefix+"/events/stream", nil)
	hc := http.DefaultClient
	if c != nil {
		hc = c.hc
	} else {
		req.Header.Set("Authorization", "Bearer "+testToken)
	}
	resp, err := hc.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	if resp.StatusCode != code {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		h.t.Fatalf("event stream: %d, want %d: %s", resp.StatusCode, code, b)
	}
	h.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// streamEnds reports whether the stream's body ends within d.
func streamEnds(resp *http.Response, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, resp.Body)
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		resp.Body.Close()
		return false
	}
}

func (f *fakeDirector) setTokenHashes(hashes ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cfg.Console.TokenHashes = hashes
}

// TestEventStreamEndsWithCredential: a stream is closed at the next
// keepalive once its token is revoked, its session logged out, or the
// password changed; a valid one stays open.
func TestEventStreamEndsWithCredential(t *testing.T) {
	fast := func(o *Options) { o.StreamKeepalive = 20 * time.Millisecond }
	t.Run("valid", func(t *testing.T) {
		h := newHarness(t, fast)
		if streamEnds(h.openStream(nil, http.StatusOK), 300*time.Millisecond) {
			t.Fatal("a stream with a valid token ended")
		}
	})
	t.Run("token revoked", func(t *testing.T) {
		h := newHarness(t, fast)
		resp := h.openStream(nil, http.StatusOK)
		h.d.setTokenHashes(tokenHash("another token"))
		if !streamEnds(resp, 3*time.Second) {
			t.Fatal("the stream outlived its revoked token")
		}
	})
	t.Run("logout", func(t *testing.T) {
		h := newHarness(t, fast)
		c := h.login()
		resp := h.openStream(c, http.StatusOK)
		mustStatus(t, c.post("/logout", url.Values{"csrf": {c.csrf}}), http.StatusSeeOther)
		if !streamEnds(resp, 3*time.Second) {
			t.Fatal("the stream outlived its session's logout")
		}
	})
	t.Run("password change", func(t *testing.T) {
		h := newHarness(t, fast)
		resp := h.openStream(h.login(), http.StatusOK)
		h.d.setPasswordHash(t, "a new password")
		if !streamEnds(resp, 3*time.Second) {
			t.Fatal("the stream outlived a password change")
		}
	})
}

// TestEventStreamLimits: streams are capped per credential and in total
// with a 429 that says which limit; a closed stream frees its slot.
func TestEventStreamLimits(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.StreamKeepalive = 20 * time.Millisecond })
	if h.srv.streams.perCred != 8 || h.srv.streams.max != 64 {
		t.Fatalf("default limits %d per credential, %d in total", h.srv.streams.perCred, h.srv.streams.max)
	}
	h.srv.streams = newStreamLimiter(2, 3)
	first := h.openStream(nil, http.StatusOK)
	h.openStream(nil, http.StatusOK)
	var e api.Error
	r := h.apiCall("GET", "/events/stream", "", "", &e)
	wantCode(t, r, http.StatusTooManyRequests)
	if !strings.Contains(e.Error, "this credential already has 2 open") {
		t.Fatalf("per-credential 429: %+v", e)
	}
	c := h.login()
	h.openStream(c, http.StatusOK)
	req, _ := http.NewRequest(http.MethodGet, h.ts.URL+api.Prefix+"/events/stream", nil)
	rr := c.do(req)
	if rr.StatusCode != http.StatusTooManyRequests || !strings.Contains(rr.body, "3 are open on this director") {
		t.Fatalf("total 429: %d %s", rr.StatusCode, rr.body)
	}
	first.Body.Close()
	deadline := time.Now().Add(3 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, h.ts.URL+api.Prefix+"/events/stream", nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		code := resp.StatusCode
		if code == http.StatusOK {
			resp.Body.Close()
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatalf("a closed stream did not free its slot: %d", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAPICheckBodyLimit: /check takes a config as large as a config file
// may be (more than the 1 MB other requests get) and refuses more with 413.
func TestAPICheckBodyLimit(t *testing.T) {
	h := newHarness(t)
	check := func(body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, h.ts.URL+api.Prefix+"/check", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	file := h.d.fileBytes(t)
	comments := strings.Repeat("# "+strings.Repeat("x", 97)+"\n", (3<<20)/100) // 3 MB of comments
	if code, body := check(file + comments); code != http.StatusOK || !strings.Contains(body, `"ok":true`) {
		t.Fatalf("a 3 MB config: %d %s", code, body)
	}
	huge := file + strings.Repeat("#", maxConfigBytes+1-len(file))
	code, body := check(huge)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "over 8388608 bytes") {
		t.Fatalf("a config over 8 MB: %d %s", code, body)
	}
	// A PUT carries the same config JSON-escaped; the TOML itself is capped.
	_, ver := h.d.Config()
	doc, _ := json.Marshal(api.ConfigDoc{Version: ver, TOML: huge})
	var e api.Error
	wantCode(t, h.apiCall("PUT", "/config", "", string(doc), &e), http.StatusRequestEntityTooLarge)
	if !strings.Contains(e.Error, "at most 8388608 bytes") {
		t.Fatalf("PUT over 8 MB: %+v", e)
	}
}

// TestAPICheckStopsWhenCancelled: a check whose request has ended does not
// report a result (it stopped).
func TestAPICheckStopsWhenCancelled(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct{ method, path, body string }{
		{http.MethodPost, "/check", h.d.fileBytes(t)},
		{http.MethodPut, "/config", func() string {
			_, ver := h.d.Config()
			b, _ := json.Marshal(api.ConfigDoc{Version: ver, TOML: strings.Replace(h.d.fileBytes(t), `"rs2"`, `"rs3"`, 1)})
			return string(b)
		}()},
	} {
		req := httptest.NewRequestWithContext(ctx, tc.method, api.Prefix+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		rec := httptest.NewRecorder()
		h.srv.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "request ended") {
			t.Errorf("%s %s with a cancelled context: %d %s", tc.method, tc.path, rec.Code, rec.Body)
		}
	}
	if h.d.applies != 0 {
		t.Fatal("a cancelled PUT was applied")
	}
}

// TestAPIConfigHidesSecrets: GET /config sends neither the password hash
// nor the token hashes; a document sent back without them keeps the stored
// ones, and one that sets them replaces them.
func TestAPIConfigHidesSecrets(t *testing.T) {
	h := newHarness(t)
	var doc api.ConfigDoc
	wantCode(t, h.apiCall("GET", "/config", "", "", &doc), http.StatusOK)
	for _, secret := range []string{"password_hash", "token_hashes", passwordHash(t), tokenHash(testToken)} {
		if strings.Contains(doc.TOML, secret) {
			t.Fatalf("GET /config sends %q:\n%s", secret, doc.TOML)
		}
	}
	body := func(d api.ConfigDoc) string { b, _ := json.Marshal(d); return string(b) }
	changed := api.ConfigDoc{Version: doc.Version, TOML: strings.Replace(doc.TOML, `name = "rs2"`, `name = "rs2-new"`, 1)}
	wantCode(t, h.apiCall("PUT", "/config", "", body(changed), nil), http.StatusOK)
	file := h.d.fileBytes(t)
	if !strings.Contains(file, passwordHash(t)) || !strings.Contains(file, tokenHash(testToken)) || !strings.Contains(file, "rs2-new") {
		t.Fatalf("PUT without secrets lost them:\n%s", file)
	}
	h.login() // the password still works
	wantCode(t, h.apiCall("GET", "/status", "", "", nil), http.StatusOK)

	// Setting new token hashes replaces the old ones.
	const newToken = "new.c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"
	_, ver := h.d.Config()
	withTok := strings.Replace(changed.TOML, "[vrrp]", "[console]\ntoken_hashes = [\""+tokenHash(newToken)+"\"]\n\n[vrrp]", 1)
	wantCode(t, h.apiCall("PUT", "/config", "", body(api.ConfigDoc{Version: ver, TOML: withTok}), nil), http.StatusOK)
	wantCode(t, h.apiCall("GET", "/status", "", "", nil), http.StatusUnauthorized)
	wantCode(t, h.apiCall("GET", "/status", "Bearer "+newToken, "", nil), http.StatusOK)
	if !strings.Contains(h.d.fileBytes(t), passwordHash(t)) {
		t.Fatal("the password hash was lost")
	}
}

// TestServeStartFailureReturns: a console that cannot start returns its
// error at once (nothing panics or exits), and the same Server serves when
// called again once the cause is gone: the caller's retry works.
func TestServeStartFailureReturns(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cert, key, _ := selfSigned(t)
	otherCert, _, _ := selfSigned(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct{ name, addr, cert, key, want string }{
		{"missing cert", freeAddr(t), "/nonexistent/cert.pem", key, "/nonexistent/cert.pem"},
		{"key of another cert", freeAddr(t), otherCert, key, "private key does not match"},
		{"cert without key", freeAddr(t), cert, "", "needs both"},
		{"port taken", busy.Addr().String(), "", "", "cannot listen"},
	} {
		done := make(chan error, 1)
		go func() { done <- h.srv.Serve(ctx, tc.addr, tc.cert, tc.key) }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: Serve = %v, want an error with %q", tc.name, err, tc.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: Serve did not return", tc.name)
		}
	}
	addr := freeAddr(t)
	done := make(chan error, 1)
	go func() { done <- h.srv.Serve(ctx, addr, "", "") }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/login")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("retried console: %d", resp.StatusCode)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retried console does not answer: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after ctx ended = %v, want nil", err)
	}
}

// TestConsoleEditRefusesBadTLS: a console or API edit that names TLS files
// which do not load as a pair is refused next to the field, since the
// console would not come back after a restart; a good pair is accepted.
func TestConsoleEditRefusesBadTLS(t *testing.T) {
	h := newHarness(t)
	c := h.login()
	form := c.formOf("/global")
	page := c.get("/global")
	vals := url.Values{}
	for _, m := range regexp.MustCompile(`name="([a-z_.]+)" value="([^"]*)"`).FindAllStringSubmatch(page.body, -1) {
		vals.Set(m[1], html.UnescapeString(m[2]))
	}
	for k, v := range form {
		vals[k] = v
	}
	file := h.d.fileBytes(t)
	r := c.post("/global", with(vals, "console.tls_cert", "/nonexistent/cert.pem", "console.tls_key", "/nonexistent/key.pem"))
	mustStatus(t, r, http.StatusUnprocessableEntity)
	mustContain(t, r.body, "do not load as a certificate and its key", "/nonexistent/cert.pem")
	if h.d.fileBytes(t) != file {
		t.Fatal("a refused TLS edit changed the file")
	}

	var doc api.ConfigDoc
	wantCode(t, h.apiCall("GET", "/config", "", "", &doc), http.StatusOK)
	bad := strings.Replace(doc.TOML, "[vrrp]", "[console]\ntls_cert = \"/nonexistent/cert.pem\"\ntls_key = \"/nonexistent/key.pem\"\n\n[vrrp]", 1)
	b, _ := json.Marshal(api.ConfigDoc{Version: doc.Version, TOML: bad})
	var e api.Error
	wantCode(t, h.apiCall("PUT", "/config", "", string(b), &e), http.StatusUnprocessableEntity)
	if len(e.Problems) != 1 || !strings.Contains(e.Problems[0].Message, "console would not start") {
		t.Fatalf("PUT with missing TLS files: %+v", e)
	}

	cert, key, _ := selfSigned(t)
	good := strings.Replace(doc.TOML, "[vrrp]", "[console]\ntls_cert = \""+cert+"\"\ntls_key = \""+key+"\"\n\n[vrrp]", 1)
	b, _ = json.Marshal(api.ConfigDoc{Version: doc.Version, TOML: good})
	wantCode(t, h.apiCall("PUT", "/config", "", string(b), nil), http.StatusOK)
}

// Alerts' webhook secrets and mail passwords never leave the director
// either, and a document sent back without them keeps them (by alert name
// and type); one that sets its own replaces them.
func TestAlertSecretsHiddenAndKept(t *testing.T) {
	running := &config.Config{Alerts: []config.Alert{
		{Name: "hook", Type: "webhook", URL: "https://h.example/x", Secret: "s3cret"},
		{Name: "mail", Type: "mail", Password: "pw", Username: "u"},
	}}
	sent := withoutSecrets(running.Clone())
	for _, a := range sent.Alerts {
		if a.Secret != "" || a.Password != "" {
			t.Fatalf("sent alert %+v", a)
		}
	}
	if running.Alerts[0].Secret != "s3cret" {
		t.Fatal("withoutSecrets changed the running configuration")
	}
	back := sent.Clone()
	back.Alerts = append(back.Alerts, config.Alert{Name: "new", Type: "webhook", URL: "https://n.example/"})
	back.Alerts[1].Type = "mail"
	keepSecrets(back, running)
	if back.Alerts[0].Secret != "s3cret" || back.Alerts[1].Password != "pw" || back.Alerts[2].Secret != "" {
		t.Errorf("kept %+v", back.Alerts)
	}
	own := sent.Clone()
	own.Alerts[0].Secret = "rotated"
	keepSecrets(own, running)
	if own.Alerts[0].Secret != "rotated" {
		t.Errorf("a new secret was overwritten: %+v", own.Alerts[0])
	}
}
