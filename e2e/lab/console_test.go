//go:build linux

package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"lbd/api"
	"lbd/internal/apiclient"
)

// TestLabBrowser drives the consoles of the real lbd directors in the lab
// VM from the host, through the VM's forwarded ports, in headless
// Chromium: log in, the status page with the master's VRRP state and the
// real servers' health from real checks, a graph that moves as the lab's
// client traffic flows, a drain and an enable from the status page, each
// seen in the kernel's IPVS weight (read back through the API), and the
// backup's console; the pair view (the directors name each other in
// [peer]) and a weight saved on both from lvs1's screen, read back from
// both kernels. Screenshots land in artifacts/screenshots (lab-*);
// with LBD_README_IMG=1 (make screenshots) the README's images in
// docs/img are made too.
func TestLabBrowser(t *testing.T) {
	chromium(t) // before the VM: a missing browser fails at once
	began := time.Now()
	l := start(t, options{test: "TestLab", stay: 10 * time.Minute, ready: 4 * time.Minute})
	t.Logf("lab open after %v", time.Since(began).Round(100*time.Millisecond))

	master := newBrowser(t, l.URL[0])
	master.login("lab-test", l.Password)
	checkStatus(t, master, "master", l.RS)
	master.shot("lab-01-status-master")
	graphMoves(t, master)
	opened := time.Now()
	drainAndSee(t, master, l, l.RS[0])
	enableAndSee(t, master, l, l.RS[0])
	pairSteps(t, master, l)

	backup := newBrowser(t, l.URL[1])
	backup.login("lab-test", l.Password)
	checkStatus(t, backup, "backup", l.RS)
	backup.shot("lab-04-status-backup")
	// The backup programs IPVS too (a warm standby): its console shows
	// the real kernel weights.
	st := apiStatus(t, l, 1)
	if st.VRRP == nil || st.VRRP.State != "backup" {
		t.Fatalf("lvs2's API: VRRP %+v", st.VRRP)
	}

	// lbctl from the host works against the forwarded console.
	lbctl := filepath.Join(t.TempDir(), "lbctl")
	if out, err := exec.Command("go", "build", "-o", lbctl, "lbd/cmd/lbctl").CombinedOutput(); err != nil {
		t.Fatalf("build lbctl: %v\n%s", err, out)
	}
	out, err := exec.Command(lbctl, "--url", l.URL[0], "--token", l.Token[0], "status").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "web") || !strings.Contains(string(out), l.RS[1]) {
		t.Fatalf("lbctl status against the lab: %v\n%s", err, out)
	}
	if os.Getenv("LBD_README_IMG") == "1" {
		// The README's images (make screenshots): a few minutes of
		// history first, so the graphs have a shape.
		time.Sleep(time.Until(opened.Add(4 * time.Minute)))
		master.open("/status")
		master.run("status", chromedp.WaitVisible(chromedp.CSS("#svc-web")))
		readmeImage(t, master, "lab-status.png")
		master.open("/pair")
		master.run("pair view", chromedp.WaitVisible(chromedp.CSS("#pair-lvs2")))
		readmeImage(t, master, "lab-pair.png")
	}
	master.checkClean()
	backup.checkClean()
	t.Logf("lab browser test: %v in all", time.Since(began).Round(100*time.Millisecond))
}

// checkStatus asserts the status page of a lab director: its VRRP state,
// the web service healthy, every real server up by the HTTP check.
func checkStatus(t testing.TB, b *browser, state string, rs []string) {
	t.Helper()
	b.waitText("#live", state, 20*time.Second)
	card := b.text("#svc-web")
	if !strings.Contains(card, "healthy") || !strings.Contains(card, "10.77.0.100:80") {
		t.Fatalf("status card of web: %q", card)
	}
	for _, r := range rs {
		// The health reason comes from lbd's real HTTP check.
		b.waitText("#rs-web-"+r+" .health", "up", 20*time.Second)
	}
}

// graphMoves asserts that the conn/s chart of the web service is drawn
// from traffic (its peak is not 0) and changes between two loads of the
// status page as the lab's client keeps making requests.
func graphMoves(t testing.TB, b *browser) {
	t.Helper()
	const poly = `#svc-web .charts figure:first-child polyline`
	const caption = `#svc-web .charts figure:first-child figcaption`
	first := b.eval(fmt.Sprintf(`(document.querySelector(%q)||{getAttribute(){return ""}}).getAttribute("points")||""`, poly))
	deadline := time.Now().Add(40 * time.Second)
	for {
		time.Sleep(3 * time.Second)
		b.open("/status")
		b.run("status", chromedp.WaitVisible(chromedp.CSS("#svc-web")))
		now := b.eval(fmt.Sprintf(`(document.querySelector(%q)||{getAttribute(){return ""}}).getAttribute("points")||""`, poly))
		capt := b.text(caption)
		if now != "" && now != first && !strings.Contains(capt, "peak 0") {
			// Drawn as a line a person can see (app.css styles it).
			style := b.eval(fmt.Sprintf(`(function(){var s=getComputedStyle(document.querySelector(%q)); return s.fill+" "+s.stroke+" "+s.strokeWidth})()`, poly))
			if !strings.HasPrefix(style, "none rgb(") || strings.HasSuffix(style, " 0px") {
				t.Fatalf("the chart's line is not drawn as a visible line: fill, stroke, width = %q", style)
			}
			t.Logf("conn/s chart moved: %q", strings.Join(strings.Fields(capt), " "))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the conn/s chart did not move within 40s (caption %q, points %q then %q)", capt, first, now)
		}
	}
}

// drainAndSee drains a real server from the status page and waits until
// the kernel's IPVS weight of it is 0 (the API reports the kernel's).
func drainAndSee(t testing.TB, b *browser, l *Lab, rs string) {
	t.Helper()
	b.open("/status")
	b.submitLive("drain "+rs, "#drain-web-"+rs)
	b.run("drained", chromedp.WaitVisible(chromedp.CSS("#undrain-web-"+rs)))
	b.waitText("#rs-web-"+rs, "drained", 10*time.Second)
	waitWeight(t, l, 0, rs, 0)
	b.shot("lab-02-status-drained")
}

// enableAndSee undoes drainAndSee.
func enableAndSee(t testing.TB, b *browser, l *Lab, rs string) {
	t.Helper()
	b.submitLive("enable "+rs, "#undrain-web-"+rs)
	b.run("enabled", chromedp.WaitVisible(chromedp.CSS("#drain-web-"+rs)))
	waitWeight(t, l, 0, rs, 1)
	b.shot("lab-03-status-enabled")
}

func apiStatus(t testing.TB, l *Lab, i int) *api.Status {
	t.Helper()
	c, err := apiclient.New(l.URL[i], l.Token[i])
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatalf("status of lvs%d through the API: %v", i+1, err)
	}
	return st
}

// waitWeight waits until director i reports rs of web in the kernel at
// weight w.
func waitWeight(t testing.TB, l *Lab, i int, rs string, w int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := apiStatus(t, l, i)
		var got *api.RealServer
		for _, s := range st.Services {
			for j := range s.RealServers {
				if s.Name == "web" && s.RealServers[j].Name == rs {
					got = &s.RealServers[j]
				}
			}
		}
		if got != nil && got.InKernel && got.Weight == w {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lvs%d: %s never at weight %d in the kernel: %+v", i+1, rs, w, got)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

var nonName = regexp.MustCompile(`[^a-z0-9.-]`)

// readmeImage saves the page's main area, scaled down, into docs/img.
func readmeImage(t testing.TB, b *browser, name string) {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "docs", "img")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b.shotTo(filepath.Join(dir, nonName.ReplaceAllString(name, "-")), "body", 0.6)
}

// pairSteps: the pair view on lvs1 shows both directors of the lab (lvs1
// master, lvs2 backup) with agreeing configurations, and a real server's
// weight saved on both from lvs1's edit screen reaches both kernels.
func pairSteps(t testing.TB, b *browser, l *Lab) {
	t.Helper()
	b.open("/status")
	b.run("status", chromedp.WaitVisible(chromedp.CSS("#pair-panel")))
	b.waitText("#pair-panel", "configurations agree", 30*time.Second)
	b.open("/pair")
	b.run("pair view", chromedp.WaitVisible(chromedp.CSS("#pair-lvs2")))
	for sel, role := range map[string]string{"#pair-lvs1": "MASTER", "#pair-lvs2": "BACKUP"} {
		if s := b.text(sel); !strings.Contains(s, role) || !strings.Contains(s, "in sync") {
			t.Fatalf("pair view %s: %q, want %s and IPVS in sync", sel, strings.Join(strings.Fields(s), " "), role)
		}
	}
	b.shot("lab-05-pair")
	rs := l.RS[1]
	b.open("/vs/web/rs/" + rs)
	b.run("real server screen", chromedp.WaitVisible(chromedp.CSS("#save-both")))
	b.fill("#f-weight", "3")
	b.submit("save on both", "#save-both")
	if f := b.text("#flash"); !strings.Contains(f, "saved on lvs1; saved on lvs2") {
		t.Fatalf("flash after the save on both: %q", f)
	}
	b.shot("lab-06-saved-on-both")
	// Each director's own kernel has the new weight.
	waitWeight(t, l, 0, rs, 3)
	waitWeight(t, l, 1, rs, 3)
}
