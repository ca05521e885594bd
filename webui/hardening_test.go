package webui

import (
	"net/http"
	"net/url"
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
