//go:build linux

package lab

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
)

// chromium finds Debian's chromium: required in CI (make deps installs it).
func chromium(t testing.TB) string {
	t.Helper()
	for _, p := range []string{os.Getenv("LBD_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	require(t, "chromium is not installed (make deps installs it)", false)
	return ""
}

// browser is one headless Chromium tab (its own profile, so its own
// cookies) on one console of the lab.
type browser struct {
	t    testing.TB
	ctx  context.Context
	base string
	dir  string // screenshots

	mu       sync.Mutex
	problems []string
}

// newBrowser starts chromium; the tab's window is 1280×800.
func newBrowser(t testing.TB, base string) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	dir := os.Getenv("LBD_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(repoRoot(t), "artifacts", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t, ctx: ctx, base: base, dir: dir}
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
	case *cdplog.EventEntryAdded:
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

// checkClean fails on JavaScript exceptions, CSP violations, missing assets.
func (b *browser) checkClean() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.problems) > 0 {
		b.t.Fatalf("browser reported problems:\n%s", strings.Join(b.problems, "\n"))
	}
}

func (b *browser) ctxT() (context.Context, context.CancelFunc) {
	// The consoles run under emulation: a page may take seconds.
	return context.WithTimeout(b.ctx, 45*time.Second)
}

func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := b.ctxT()
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

func (b *browser) open(path string) {
	b.t.Helper()
	b.run("open "+path, chromedp.Navigate(b.base+path))
}

func (b *browser) eval(expr string) string {
	b.t.Helper()
	ctx, cancel := b.ctxT()
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		b.t.Fatalf("eval %s: %v", expr, err)
	}
	return s
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	return b.eval(fmt.Sprintf(`(document.querySelector(%q)||{}).textContent||""`, sel))
}

func (b *browser) location() string {
	b.t.Helper()
	return strings.TrimPrefix(b.eval(`location.href`), b.base)
}

func (b *browser) fill(kv ...string) {
	b.t.Helper()
	var acts []chromedp.Action[chromedp.Void]
	for i := 0; i+1 < len(kv); i += 2 {
		acts = append(acts, chromedp.Clear(chromedp.CSS(kv[i])), chromedp.SendKeys(chromedp.CSS(kv[i]), kv[i+1]))
	}
	b.run("fill form", acts...)
}

// submit clicks a control that loads a new page and waits for it.
func (b *browser) submit(what, sel string) {
	b.t.Helper()
	ctx, cancel := b.ctxT()
	defer cancel()
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// submitLive clicks a button inside the status page's live region in one
// JavaScript turn (the region is replaced on every refresh).
func (b *browser) submitLive(what, sel string) {
	b.t.Helper()
	ctx, cancel := b.ctxT()
	defer cancel()
	click := chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](fmt.Sprintf(`(function(){var e=document.querySelector(%q); if(!e) throw new Error("no %s"); e.click(); return true})()`, sel, sel))(ctx, t)
		return err
	})
	if _, err := chromedp.RunResponse(ctx, chromedp.WaitVisible(chromedp.CSS(sel)), click); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// waitText waits until the element's text contains want.
func (b *browser) waitText(sel, want string, within time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := b.text(sel)
		if strings.Contains(got, want) {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s never showed %q (last: %q)", sel, want, got)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// login logs in through the form; the status page follows.
func (b *browser) login(user, password string) {
	b.t.Helper()
	b.open("/status")
	b.run("login page", chromedp.WaitVisible(chromedp.CSS("#f-password")))
	if loc := b.location(); !strings.HasPrefix(loc, "/login") {
		b.t.Fatalf("not sent to the login page: %s", loc)
	}
	b.fill("#f-user", user, "#f-password", password)
	b.submit("login", "#login")
	b.run("status after login", chromedp.WaitVisible(chromedp.CSS("#live")))
	if loc := b.location(); loc != "/status" {
		b.t.Fatalf("after login at %s: %s", loc, b.text("main"))
	}
}

// shot saves the whole page as NAME.png in the screenshot directory.
func (b *browser) shot(name string) {
	b.t.Helper()
	ctx, cancel := b.ctxT()
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// shotTo saves the viewport, scaled, as a PNG at path (the README's
// images: small files).
func (b *browser) shotTo(path, sel string, scale float64) {
	b.t.Helper()
	ctx, cancel := b.ctxT()
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.ScreenshotScale(chromedp.CSS(sel), scale))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", path, err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}
