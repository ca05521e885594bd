package webui

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
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
