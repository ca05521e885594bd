//go:build linux && demo

package lab

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemo is `make demo` (mk/demo.mk): the narrated tour of lbd in the
// kernel VM (e2e/demo_test.go), after which the lab stays open: both
// directors' consoles on 127.0.0.1:3636 (lvs1) and :3637 (lvs2), a
// generated password, an lbctl line with an admin token, client traffic
// so the graphs move. With a terminal (LBD_DEMO_INTERACTIVE=1) it waits
// for Ctrl-C or `make demo-stop` (a TERM to the pid in .cache/demo.pid);
// without one (CI) it opens the master's console once in headless
// Chromium (log in, status, drain a real server, see it drained in the
// kernel) and stops. Either way the VM, its files and the ports go.
func TestDemo(t *testing.T) {
	interactive := os.Getenv("LBD_DEMO_INTERACTIVE") == "1"
	if !interactive {
		chromium(t) // before the tour: a missing browser fails at once
	}
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigc)
	pidFile := demoPidFile(t)

	stay := 8 * time.Hour
	if !interactive {
		stay = 10 * time.Minute
	}
	// LBD_DEMO_TOUR=0 opens the lab without the tour first.
	test := "TestDemo"
	if os.Getenv("LBD_DEMO_TOUR") == "0" {
		test = "TestLab"
	}
	l := start(t, options{test: test, ports: [2]int{3636, 3637}, stay: stay,
		ready: 15 * time.Minute, out: os.Stdout, localhost2: true, interrupt: sigc})
	fmt.Print(l.Summary("bin/lbctl"))
	if interactive {
		fmt.Println()
		fmt.Println("(lvs2's address says localhost: a browser keeps one login per host name, so both consoles stay logged in)")
		select {
		case sig := <-sigc:
			fmt.Printf("\n%v: stopping the lab\n", sig)
		case <-l.Done():
			t.Fatalf("the lab VM ended by itself:\n%s", strings.Join(l.Lines(), "\n"))
		}
		l.Stop()
		os.Remove(pidFile)
		fmt.Println("lab stopped: VM, its files and ports 3636/3637 are gone.")
		return
	}

	fmt.Println("\n== No terminal: the master's console, once, in headless Chromium (from this host)")
	b := newBrowser(t, l.URL[0])
	b.login("demo", l.Password)
	fmt.Printf("logged in at %s/login; status page shows lvs1 as master\n", l.URL[0])
	checkStatus(t, b, "master", l.RS)
	rs := l.RS[0]
	drainAndSee(t, b, l, rs)
	fmt.Printf("drained %s with its Drain button: the kernel's IPVS weight of %s on lvs1 is 0 (read back with the API)\n", rs, rs)
	b.checkClean()
	fmt.Printf("screenshots in %s\n", b.dir)
	l.Stop()
	fmt.Println("lab stopped: VM, its files and ports 3636/3637 are gone.")
}

// demoPidFile records this process in .cache/demo.pid for make demo-stop,
// refusing to start when another demo is alive; removed at the end.
func demoPidFile(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(repoRoot(t), ".cache")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "demo.pid")
	if b, err := os.ReadFile(path); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid != os.Getpid() {
			if cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && strings.Contains(string(cmd), "lab.test") {
				t.Fatalf("a demo is already running (pid %d, %s): make demo-stop", pid, path)
			}
		}
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(path) })
	return path
}
