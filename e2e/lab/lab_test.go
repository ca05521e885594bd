//go:build linux

// Package lab drives the open lab from the host: the kernel VM of
// e2e/openlab_test.go (two lbd directors with VRRP in front of two real
// servers, a client making requests) booted with scripts/vm/run --forward,
// so that both directors' consoles answer on 127.0.0.1. `make demo` runs
// its tour and leaves it open (TestDemo, build tag demo); the browser test
// (TestLabBrowser) drives the real consoles with headless Chromium. It is a
// host package, so `make test` runs it once, not once per VM kernel.
package lab

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Lab is one running lab VM.
type Lab struct {
	URL      [2]string // consoles of lvs1 (master) and lvs2 (backup)
	Ports    [2]int    // their host ports
	Password string
	Token    [2]string // an admin API token of each
	VIP      string
	RS       []string // the real servers' names

	cmd    *exec.Cmd
	done   chan struct{}
	err    error
	mu     sync.Mutex
	out    []string // the VM's output lines
	stopMu sync.Mutex
}

// guestPorts are where the VM forwards each director's console
// (labGuestPorts in e2e/openlab_test.go).
var guestPorts = [2]int{3636, 3637}

// require fails in CI and skips elsewhere when a tool is missing.
func require(t testing.TB, what string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (CI is set, so this is a failure, not a skip)", what)
	}
	t.Skip(what)
}

// repoRoot is the repository root: this package is e2e/lab.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// freePort returns a TCP port on 127.0.0.1 nobody listens on now.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// options of one lab run.
type options struct {
	test  string        // the guest test: TestLab (lab only) or TestDemo (tour first)
	ports [2]int        // host ports; 0 picks free ones
	stay  time.Duration // how long the VM keeps the lab open at most
	ready time.Duration // how long the VM may take to open it
	out   io.Writer     // the VM's output, line by line (nil: kept only)
	// localhost2 names lvs2's console http://localhost:PORT: another host
	// name than lvs1's, so a browser keeps a login cookie for each.
	localhost2 bool
	// interrupt, when it delivers, stops the VM while it opens the lab.
	interrupt <-chan os.Signal
}

// build compiles what the VM runs: the e2e test binary with the lab
// (tags vm demo) and lbd and lbctl, static, into dir.
func build(t testing.TB, root, dir string) {
	t.Helper()
	for _, args := range [][]string{
		{"test", "-c", "-tags", "vm demo", "-o", filepath.Join(dir, "e2e.test"), "./e2e"},
		{"build", "-o", filepath.Join(dir, "bin") + "/", "./cmd/lbd", "./cmd/lbctl"},
	} {
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// start boots the lab VM and waits for its ready line. The VM is stopped
// when the test ends (or by Stop).
func start(t testing.TB, o options) *Lab {
	t.Helper()
	_, err := exec.LookPath("qemu-system-x86_64")
	require(t, "qemu-system-x86_64 is not installed (make deps installs it)", err == nil)
	root := repoRoot(t)
	dir := t.TempDir()
	build(t, root, dir)
	for i := range o.ports {
		if o.ports[i] == 0 {
			o.ports[i] = freePort(t)
		}
	}
	limit := o.stay + o.ready + 2*time.Minute
	args := []string{
		"--forward", fmt.Sprintf("%d:%d", o.ports[0], guestPorts[0]),
		"--forward", fmt.Sprintf("%d:%d", o.ports[1], guestPorts[1]),
		"--file", filepath.Join(root, "e2e", "testdata") + ":" + filepath.Join(root, "e2e", "testdata"),
		"--timeout", fmt.Sprint(int(limit.Seconds())),
		"--", filepath.Join(dir, "e2e.test"), "-test.run", "^" + o.test + "$", "-test.v",
		"-test.timeout", (o.stay + o.ready + time.Minute).String(),
	}
	cmd := exec.Command(filepath.Join(root, "scripts", "vm", "run"), args...)
	cmd.Dir = filepath.Join(root, "e2e") // the VM runs the test where testdata/ is
	cmd.Env = append(os.Environ(), "LBD_VM_BIN="+filepath.Join(dir, "bin"), "LBD_LAB=1",
		"LBD_LAB_FOR="+o.stay.String(), "LBD_VM_QUIET=1")
	// Its own process group: a terminal's Ctrl-C reaches this process,
	// which stops the VM in order (Stop); and if this process dies, the
	// runner gets a TERM and stops qemu.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	l := &Lab{cmd: cmd, done: make(chan struct{}), Ports: o.ports}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the lab VM: %v", err)
	}
	t.Cleanup(func() {
		l.Stop()
		if t.Failed() && o.out == nil { // else it is on o.out already
			t.Logf("the lab VM's output:\n%s", strings.Join(l.Lines(), "\n"))
		}
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "LBD-LAB-READY ") {
				ready <- line
				continue // secrets: printed as the lab's summary instead
			}
			l.mu.Lock()
			l.out = append(l.out, line)
			l.mu.Unlock()
			if o.out != nil {
				fmt.Fprintln(o.out, line)
			}
		}
		l.err = cmd.Wait()
		close(l.done)
	}()
	select {
	case line := <-ready:
		l.parse(t, line)
	case <-l.done:
		t.Fatalf("the lab VM ended before the lab was open (%v)", l.err)
	case <-time.After(o.ready):
		t.Fatalf("the lab was not open within %v", o.ready)
	case sig := <-o.interrupt:
		l.Stop()
		t.Fatalf("stopped by %v before the lab was open", sig)
	}
	l.URL[0] = fmt.Sprintf("http://127.0.0.1:%d", o.ports[0])
	l.URL[1] = fmt.Sprintf("http://127.0.0.1:%d", o.ports[1])
	if o.localhost2 {
		l.URL[1] = fmt.Sprintf("http://localhost:%d", o.ports[1])
	}
	return l
}

func (l *Lab) parse(t testing.TB, line string) {
	t.Helper()
	for _, f := range strings.Fields(line)[1:] {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "password":
			l.Password = v
		case "token.lvs1":
			l.Token[0] = v
		case "token.lvs2":
			l.Token[1] = v
		case "vip":
			l.VIP = v
		case "rs":
			l.RS = strings.Split(v, ",")
		}
	}
	if l.Password == "" || l.Token[0] == "" || l.Token[1] == "" || len(l.RS) == 0 {
		t.Fatalf("ready line incomplete: %d fields", len(strings.Fields(line)))
	}
}

// Lines returns the VM's output so far.
func (l *Lab) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.out...)
}

// Done is closed when the VM has ended.
func (l *Lab) Done() <-chan struct{} { return l.done }

// Stop stops the VM: a TERM to the runner, which stops qemu and removes its
// files; a KILL to the group if that takes more than 20s. It may be called
// more than once.
func (l *Lab) Stop() {
	l.stopMu.Lock()
	defer l.stopMu.Unlock()
	select {
	case <-l.done:
		return
	default:
	}
	pgid := -l.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-l.done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-l.done
	}
}

// Summary is what the demo prints once the lab is open.
func (l *Lab) Summary(lbctl string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n== The lab is open\n\n")
	fmt.Fprintf(&b, "lvs1 (VRRP master)  %s\n", l.URL[0])
	fmt.Fprintf(&b, "lvs2 (VRRP backup)  %s\n", l.URL[1])
	fmt.Fprintf(&b, "password            %s   (any name in \"Your name\"; it goes to the event log)\n", l.Password)
	fmt.Fprintf(&b, "\nFrom this host:\n")
	for i := range l.URL {
		fmt.Fprintf(&b, "    %s --url http://127.0.0.1:%d --token %s status\n", lbctl, l.Ports[i], l.Token[i])
	}
	fmt.Fprintf(&b, "\nA client in the lab makes 2 to 8 requests a second to %s:80 (real servers %s),\n", l.VIP, strings.Join(l.RS, ", "))
	fmt.Fprintf(&b, "so the graphs move. The directors name each other in [peer]: each console's Pair page\n")
	fmt.Fprintf(&b, "shows both, and an edit can be saved on both.\n")
	fmt.Fprintf(&b, "Only these two ports reach the VM; it reaches nothing outside.\n")
	fmt.Fprintf(&b, "Ctrl-C here, or `make demo-stop` in another shell, stops the lab and removes what it made.\n")
	return b.String()
}
