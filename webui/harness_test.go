package webui

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

const (
	testPassword = "correct horse battery"
	testToken    = "ci.Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWo"
)

var (
	hashOnce sync.Once
	pwHash   string
)

// passwordHash is computed once: bcrypt is slow on purpose.
func passwordHash(t testing.TB) string {
	hashOnce.Do(func() {
		h, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
		if err != nil {
			panic(err)
		}
		pwHash = string(h)
	})
	return pwHash
}

func tokenHash(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// testConfig is a director with VRRP and one HTTP-checked service.
func testConfig(t testing.TB, extraConsole string) string {
	return `[global]
node_name = "lvs-test"
interface = "eth0"

[console]
password_hash = "` + passwordHash(t) + `"
token_hashes = ["` + tokenHash(testToken) + `"]
` + extraConsole + `

[vrrp]
vrid = 51
priority = 150
unicast_peers = ["192.0.2.3"]

[[virtual_server]]
name = "web"
vip = "192.0.2.10"
port = 80
scheduler = "wlc"

[virtual_server.health_check]
type = "http"
path = "/healthz"

[[virtual_server.real_server]]
name = "rs1"
address = "10.0.0.11"

[[virtual_server.real_server]]
name = "rs2"
address = "10.0.0.12"
weight = 2
`
}

type harness struct {
	t   *testing.T
	d   *fakeDirector
	srv *Server
	ts  *httptest.Server // nil in process
	// base is the console's URL; transport, when set, reaches it in
	// process (newInProcessHarness).
	base      string
	transport http.RoundTripper
}

func newHarness(t *testing.T, opts ...func(*Options)) *harness {
	return newHarnessConfig(t, testConfig(t, ""), opts...)
}

func newHarnessConfig(t *testing.T, toml string, opts ...func(*Options)) *harness {
	t.Helper()
	h := newConsole(t, toml, opts...)
	h.ts = httptest.NewServer(h.srv.Handler())
	t.Cleanup(h.ts.Close)
	h.base = h.ts.URL
	return h
}

// newInProcessHarness is a harness for a test in a synctest bubble (one
// that lets sessions and rate limits expire in virtual time): its clients
// call the console's handler in their own goroutine. Over sockets, the
// server's goroutines would wait on the network, which keeps a bubble's
// clock from moving.
func newInProcessHarness(t *testing.T, toml string, opts ...func(*Options)) *harness {
	t.Helper()
	h := newConsole(t, toml, opts...)
	h.base, h.transport = "http://console.test", handlerTransport{h.srv.Handler()}
	return h
}

func newConsole(t *testing.T, toml string, opts ...func(*Options)) *harness {
	t.Helper()
	d := newFakeDirector(t, toml)
	o := Options{Version: "v-test"}
	for _, f := range opts {
		f(&o)
	}
	srv, err := New(d, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &harness{t: t, d: d, srv: srv}
}

// handlerTransport serves each request with h in the caller's goroutine.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	in := req.Clone(req.Context())
	in.RemoteAddr = "192.0.2.200:40000" // what a server would set
	in.RequestURI = req.URL.RequestURI()
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, in)
	res := rec.Result()
	res.Request = req
	return res, nil
}

// client is one browser: a cookie jar, no automatic redirects.
type client struct {
	t    *testing.T
	base string
	hc   *http.Client
	csrf string
}

func (h *harness) client() *client {
	c := newClient(h.t, h.base)
	c.hc.Transport = h.transport
	return c
}

func newClient(t *testing.T, base string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: base, hc: &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type resp struct {
	*http.Response
	body string
}

func (c *client) do(req *http.Request) *resp {
	c.t.Helper()
	r, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return &resp{Response: r, body: string(b)}
}

func (c *client) get(path string) *resp {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.base+path, nil)
	return c.do(req)
}

func (c *client) post(path string, form url.Values) *resp {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

var (
	csrfRe    = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	versionRe = regexp.MustCompile(`name="config_version" value="([^"]*)"`)
)

func field(t *testing.T, re *regexp.Regexp, body string) string {
	t.Helper()
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in page:\n%s", re, body)
	}
	return m[1]
}

// login logs in through the form and returns the logged-in client.
func (h *harness) login() *client {
	h.t.Helper()
	return loginWith(h.t, h.client())
}

func loginAt(t *testing.T, base string) *client {
	t.Helper()
	return loginWith(t, newClient(t, base))
}

func loginWith(t *testing.T, c *client) *client {
	t.Helper()
	page := c.get("/login")
	r := c.post("/login", url.Values{
		"csrf": {field(t, csrfRe, page.body)}, "user": {"alice"}, "password": {testPassword},
	})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/status" {
		t.Fatalf("login: %d %s\n%s", r.StatusCode, r.Header.Get("Location"), r.body)
	}
	st := c.get("/status")
	if st.StatusCode != http.StatusOK {
		t.Fatalf("status after login: %d", st.StatusCode)
	}
	c.csrf = field(t, csrfRe, st.body)
	return c
}

// formOf opens a page and returns the values every form on it carries.
func (c *client) formOf(path string) url.Values {
	c.t.Helper()
	r := c.get(path)
	if r.StatusCode != http.StatusOK {
		c.t.Fatalf("GET %s: %d\n%s", path, r.StatusCode, r.body)
	}
	return url.Values{"csrf": {field(c.t, csrfRe, r.body)}, "config_version": {field(c.t, versionRe, r.body)}}
}

// with returns v plus the given key/value pairs.
func with(v url.Values, kv ...string) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out.Set(kv[i], kv[i+1])
	}
	return out
}

func mustStatus(t *testing.T, r *resp, code int) {
	t.Helper()
	if r.StatusCode != code {
		t.Fatalf("%s %s: status %d, want %d\n%s", r.Request.Method, r.Request.URL.Path, r.StatusCode, code, r.body)
	}
}

func mustContain(t *testing.T, body string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(body, s) {
			t.Fatalf("response lacks %q:\n%s", s, body)
		}
	}
}
