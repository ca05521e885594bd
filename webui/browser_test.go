//go:build !vm

package webui

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"lbd/api"
)

// chromium finds Debian's chromium. It is a hard requirement in CI (make
// deps installs it); elsewhere its absence skips the browser test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("LBD_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (CI is set; `make deps` installs it)")
	}
	t.Skip("chromium is not installed and CI is unset: skipping the browser test")
	return ""
}

// screenshotDir is where the browser test leaves a PNG of each screen for a
// person to look at: artifacts/screenshots at the repository root (ignored
// by git), or $LBD_SCREENSHOTS.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("LBD_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("..", "artifacts", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser is one headless Chromium tab against the test console.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	dir  string

	mu       sync.Mutex
	problems []string // JS exceptions, console errors, CSP violations
}

func newBrowser(t *testing.T, base string) *browser {
	path := chromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1360, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	b := &browser{t: t, ctx: ctx, base: base, dir: screenshotDir(t)}
	// Start the browser with a context without deadline: a deadline on the
	// first Run would bound the browser's whole life.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("enable log domain: %v", err)
	}
	if err := chromedp.Listen(ctx, b.onEvent); err != nil {
		t.Fatalf("listen: %v", err)
	}
	return b
}

func (b *browser) onEvent(ev any) {
	var msg string
	switch e := ev.(type) {
	case *runtime.EventExceptionThrown:
		msg = "exception: " + e.ExceptionDetails.Text
		if e.ExceptionDetails.Exception != nil {
			msg += " " + e.ExceptionDetails.Exception.Description
		}
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.ConsoleAPICalledTypeError {
			msg = "console.error"
		}
	case *cdplog.EventEntryAdded:
		// Blocked inline code shows up here as a "security" error. A
		// page answered 401/409/422 is expected here; a missing asset
		// is not.
		if e.Entry.Level == cdplog.EntryLevelError &&
			(e.Entry.Source != cdplog.EntrySourceNetwork || strings.Contains(e.Entry.URL, "/static/")) {
			msg = fmt.Sprintf("%s: %s (%s)", e.Entry.Source, e.Entry.Text, e.Entry.URL)
		}
	}
	if msg != "" {
		b.mu.Lock()
		b.problems = append(b.problems, msg)
		b.mu.Unlock()
	}
}

// run runs actions with a per-step deadline.
func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// submit clicks a control that loads a new page and waits for it.
func (b *browser) submit(what, sel string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// submitLive clicks a button inside the status screen's live region. That
// region is replaced every refresh, so a node looked up first may be gone
// by the time a synthetic mouse click reaches it; the click is done in one
// JavaScript turn instead. (A person's pointer pauses the refresh, see
// app.js.)
func (b *browser) submitLive(what, sel string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	click := chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](fmt.Sprintf(`(function(){var e=document.querySelector(%q); if(!e) throw new Error("no %s"); e.click(); return true})()`, sel, sel))(ctx, t)
		return err
	})
	if _, err := chromedp.RunResponse(ctx, chromedp.WaitVisible(chromedp.CSS(sel)), click); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

func (b *browser) open(path string) {
	b.t.Helper()
	b.run("open "+path, chromedp.Navigate(b.base+path))
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func (b *browser) eval(expr string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		b.t.Fatalf("eval %s: %v", expr, err)
	}
	return s
}

func (b *browser) location() string {
	b.t.Helper()
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	return strings.TrimPrefix(loc, b.base)
}

// fill types into text fields: pairs of CSS selector and value.
func (b *browser) fill(kv ...string) {
	b.t.Helper()
	var acts []chromedp.Action[chromedp.Void]
	for i := 0; i+1 < len(kv); i += 2 {
		acts = append(acts, chromedp.Clear(chromedp.CSS(kv[i])), chromedp.SendKeys(chromedp.CSS(kv[i]), kv[i+1]))
	}
	b.run("fill form", acts...)
}

// choose sets a <select> and fires its change event, as a user would.
func (b *browser) choose(id, value string) {
	b.t.Helper()
	b.eval(fmt.Sprintf(`(function(){var s=document.getElementById(%q); s.value=%q; s.dispatchEvent(new Event('change', {bubbles:true})); return s.value})()`, id, value))
}

// waitText waits until the element's text contains want, without reloading
// the page: it proves the live refresh.
func (b *browser) waitText(sel, want string, within time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := b.eval(fmt.Sprintf(`(document.querySelector(%q)||{}).textContent||""`, sel))
		if strings.Contains(got, want) {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s never showed %q (last: %q)", sel, want, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (b *browser) shot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func (b *browser) checkClean() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.problems) > 0 {
		b.t.Fatalf("browser reported problems:\n%s", strings.Join(b.problems, "\n"))
	}
}

// TestBrowser walks the console in headless Chromium the way an operator
// would: log in, add a virtual server with two real servers, watch it on
// Status, drain and undrain one, edit the health check, log out.
func TestBrowser(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.RefreshInterval = 500 * time.Millisecond })
	h.d.setSync(warmSync())
	b := newBrowser(t, h.ts.URL)

	// Log in; /status sends us to the login page first.
	b.open("/status")
	b.run("login page", chromedp.WaitVisible(chromedp.CSS("#f-password")))
	if loc := b.location(); !strings.HasPrefix(loc, "/login") {
		t.Fatalf("not sent to login: %s", loc)
	}
	b.shot("01-login")
	b.fill("#f-password", "wrong password")
	b.submit("wrong login", "#login")
	if msg := b.text("#login-error"); !strings.Contains(msg, "Wrong password") {
		t.Fatalf("login error %q", msg)
	}
	b.fill("#f-user", "alice", "#f-password", testPassword)
	b.submit("login", "#login")
	b.run("status after login", chromedp.WaitVisible(chromedp.CSS("#live")))
	if loc := b.location(); loc != "/status" {
		t.Fatalf("after login at %s", loc)
	}
	// The stylesheet and the script loaded under the CSP.
	if bg := b.eval(`getComputedStyle(document.querySelector('header.top')).backgroundColor`); bg != "rgb(17, 24, 39)" {
		t.Fatalf("stylesheet not applied: header background %q", bg)
	}

	// Add a virtual server with two real servers.
	b.open("/services")
	b.shot("02-virtual-servers")
	b.submit("open add form", "#add-service")
	b.fill("#f-name", "shop", "#f-vip", "192.0.2.30", "#f-port", "443")
	b.choose("f-scheduler", "rr")
	b.shot("03-add-virtual-server")
	b.submit("add service", "#save")
	if loc := b.location(); loc != "/vs/shop" {
		t.Fatalf("after adding at %s: %s", loc, b.text("main"))
	}
	for _, rs := range []struct{ name, addr, weight string }{{"app1", "10.0.2.1", "2"}, {"app2", "10.0.2.2", "1"}} {
		b.submit("open add real server", "#add-real")
		b.fill("#f-name", rs.name, "#f-address", rs.addr, "#f-weight", rs.weight)
		if rs.name == "app1" {
			b.shot("04-add-real-server")
		}
		b.submit("add "+rs.name, "#save")
		b.run("back on the service", chromedp.WaitVisible(chromedp.CSS("#rsrow-"+rs.name)))
	}
	b.shot("05-virtual-server")
	cfg, _ := h.d.Config()
	shop := cfg.FindVirtualServer("shop")
	if shop == nil || shop.Port != 443 || shop.Scheduler != "rr" || len(shop.RealServers) != 2 || *shop.RealServers[0].Weight != 2 {
		t.Fatalf("service in the config: %+v", shop)
	}
	if !strings.Contains(h.d.fileBytes(t), `name = "app2"`) {
		t.Fatal("real server not written to the file")
	}

	// See it on Status, and watch a health change arrive without a reload.
	b.open("/status")
	b.run("status shows shop", chromedp.WaitVisible(chromedp.CSS("#rs-shop-app1")))
	if s := b.text("#svc-shop"); !strings.Contains(s, "192.0.2.30:443/tcp") || !strings.Contains(s, "app2") {
		t.Fatalf("status card: %q", s)
	}
	b.eval(`window.__sameDocument = "yes"`)
	// (shop has no health check yet: its servers stay "unchecked", as on
	// a real director; web's HTTP check fails for rs2.)
	h.d.setHealth("web", "rs2", "down", "connect 10.0.0.12:80: connection refused")
	b.waitText("#rs-web-rs2", "connection refused", 10*time.Second)
	if b.eval(`window.__sameDocument || ""`) != "yes" {
		t.Fatal("the page reloaded instead of refreshing in place")
	}
	b.waitText("#live-state", "live ·", 5*time.Second)
	b.shot("06-status")
	// The live refresh may be swapping the card in: wait for its line.
	b.waitText("#vrrp #sync-line", "1,234 synced / 56 local", 5*time.Second)
	if s := b.text("#vrrp #sync-line"); !strings.Contains(s, "master ✓") || !strings.Contains(s, "backup ✓") || !strings.Contains(s, "1,234 synced / 56 local") {
		t.Fatalf("status sync line: %q", s)
	}

	// Drain app1 from the status screen, then undrain it.
	b.submitLive("drain", "#drain-shop-app1")
	b.run("drained", chromedp.WaitVisible(chromedp.CSS("#undrain-shop-app1")))
	if f := b.text("#flash"); !strings.Contains(f, "drained") {
		t.Fatalf("flash %q", f)
	}
	cfg, _ = h.d.Config()
	if !cfg.FindVirtualServer("shop").FindRealServer("app1").Drained {
		t.Fatal("app1 not drained in the config")
	}
	b.shot("07-status-drained")
	b.submitLive("undrain", "#undrain-shop-app1")
	b.run("undrained", chromedp.WaitVisible(chromedp.CSS("#drain-shop-app1")))
	cfg, _ = h.d.Config()
	if cfg.FindVirtualServer("shop").FindRealServer("app1").Drained {
		t.Fatal("app1 still drained")
	}

	// Edit the health check; a bad value is refused next to its field first.
	b.open("/vs/shop/monitoring")
	b.choose("f-type", "http")
	if v := b.eval(`String(document.querySelector('fieldset[data-types="exec"]').hidden)`); v != "true" {
		t.Fatalf("exec fields shown for an HTTP check (hidden=%s)", v)
	}
	b.fill("#f-path", "/health", "#f-expect_status", "200", "#f-interval", "2s", "#f-timeout", "5s")
	b.submit("save bad check", "#save")
	if msg := b.text(`.field.invalid p.error[data-field="timeout"]`); !strings.Contains(msg, "shorter than interval") {
		t.Fatalf("timeout message %q", msg)
	}
	b.shot("08-monitoring-invalid")
	cfg, _ = h.d.Config()
	if hc := cfg.FindVirtualServer("shop").HealthCheck; hc != nil && hc.Type == "http" {
		t.Fatal("an invalid check was applied")
	}
	b.fill("#f-timeout", "1s")
	b.submit("save check", "#save")
	if loc := b.location(); loc != "/vs/shop" {
		t.Fatalf("after saving the check at %s", loc)
	}
	if s := b.text("#check-type"); s != "http" {
		t.Fatalf("check type shown %q", s)
	}
	cfg, _ = h.d.Config()
	hc := cfg.FindVirtualServer("shop").HealthCheck
	if hc == nil || hc.Type != "http" || hc.Path != "/health" || hc.Timeout.Duration != time.Second || len(hc.ExpectStatus) != 1 || hc.ExpectStatus[0] != "200" {
		t.Fatalf("health check %+v", hc)
	}
	b.open("/vs/shop/monitoring")
	b.shot("09-monitoring")

	// Two operators: a save based on an old version is refused.
	b.open("/vs/shop/rs/app2")
	cfg, v := h.d.Config()
	w := 5
	cfg.FindVirtualServer("shop").FindRealServer("app1").Weight = &w
	if _, err := h.d.Apply(t.Context(), cfg, v, "console bob"); err != nil {
		t.Fatal(err)
	}
	b.fill("#f-weight", "3")
	b.submit("stale save", "#save")
	if s := b.text("#conflict"); !strings.Contains(s, "changed while you were editing") {
		t.Fatalf("conflict %q", s)
	}
	b.shot("10-conflict")

	// Redundancy shows the connection sync above the VRRP form.
	b.open("/redundancy")
	b.run("redundancy", chromedp.WaitVisible(chromedp.CSS("#vrrp-form")), chromedp.WaitVisible(chromedp.CSS("#sync-daemon-backup")))
	sec := b.text("#sync")
	for _, want := range []string{"Connection sync", "eth1", "224.0.0.81:8848", "master", "backup", "running", "has learned the peer's connection table", "1,234 synced from the peer"} {
		if !strings.Contains(sec, want) {
			t.Fatalf("redundancy sync section lacks %q: %q", want, sec)
		}
	}
	if bg := b.eval(`getComputedStyle(document.querySelector('#sync .sync-line')).backgroundColor`); bg != "rgb(243, 251, 246)" {
		t.Fatalf("sync line not styled as healthy: background %q", bg)
	}
	if y := b.eval(`String(document.getElementById('sync').getBoundingClientRect().top < document.getElementById('vrrp-form').getBoundingClientRect().top)`); y != "true" {
		t.Fatal("the sync section is not above the form")
	}
	b.shot("12-redundancy")

	// The backup daemon stops: Status warns without a reload, and
	// Redundancy says why.
	b.open("/status")
	b.run("status", chromedp.WaitVisible(chromedp.CSS("#sync-line")))
	stopped := warmSync()
	stopped.Daemons[0] = api.SyncDaemon{Role: "backup", Error: "start backup daemon on eth1: no such device"}
	stopped.Warm, stopped.WarmReason = false, "backup daemon not running"
	h.d.setSync(stopped)
	b.waitText("#sync-line", "backup ✗ stopped", 10*time.Second)
	b.waitText("#sync-line", "not running: start backup daemon on eth1: no such device", time.Second)
	b.waitText("#sync-line", "Not warm: backup daemon not running", time.Second)
	b.shot("14-status-sync-stopped")
	b.open("/redundancy")
	b.run("redundancy", chromedp.WaitVisible(chromedp.CSS("#sync-daemon-backup")))
	if s := b.text("#sync-daemon-backup"); !strings.Contains(s, "stopped") || !strings.Contains(s, "no such device") {
		t.Fatalf("stopped daemon row: %q", s)
	}
	if bg := b.eval(`getComputedStyle(document.querySelector('#sync .sync-line')).backgroundColor`); bg != "rgb(255, 246, 246)" {
		t.Fatalf("sync line not styled as broken: background %q", bg)
	}
	b.shot("15-redundancy-sync-stopped")

	// The other screens, for the record.
	for _, s := range []struct{ path, name, wait string }{
		{"/global", "11-global", "#global-form"},
		{"/events", "13-events", "#live"},
	} {
		b.open(s.path)
		b.run(s.path, chromedp.WaitVisible(chromedp.CSS(s.wait)))
		b.shot(s.name)
	}
	if s := b.text("#live"); !strings.Contains(s, "console alice") {
		t.Fatalf("events do not name the operator: %q", s)
	}

	// Log out: the session is gone.
	b.submit("logout", "#logout")
	b.run("login again", chromedp.WaitVisible(chromedp.CSS("#f-password")))
	b.open("/status")
	if loc := b.location(); !strings.HasPrefix(loc, "/login") {
		t.Fatalf("still logged in after logout: %s", loc)
	}
	b.checkClean()
}
