//go:build vm

package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"lbd/api"
	"lbd/config"
	"lbd/internal/vmtest"
)

// drainReturnBound bounds how long `lbctl drain --wait` may take to return
// once the last connection closed: lbd reads connection counts from the
// kernel at every resync (1s in the lab), lbctl asks every second (--poll),
// and the rest is slack for TCG emulation. It is a bound on a behaviour
// ("returns right after"), not a speed measurement.
const drainReturnBound = 3 * time.Second

// TestLbctlDrain drives the real lbd through the real lbctl, as an operator
// would, in the DR lab: a graceful drain of a real server holding a
// long-lived connection (new connections go elsewhere, the open one keeps
// working, `drain --wait` returns once it closes), enable, a weight change,
// and a drain that survives an lbd restart because it is in the file.
func TestLbctlDrain(t *testing.T) {
	l := newDRLab(t)
	rs1, rs2 := l.rs[0], l.rs[1]
	web := vs{name: "web", port: 80, sched: "rr", rs: l.rsAll()}
	c := l.startCtl(l.config("", web))
	l.waitRules(c.d, l.ctlWebRules(1, 1), programTimeout)
	checkAlternates(t, l.mustGet(80, 4), rs1.name, rs2.name)

	// The long-lived connection, on rs1. Round robin alternates, so at most
	// a second try lands there.
	var held *heldConn
	for i := 0; i < 4 && held == nil; i++ {
		h := l.hold(80)
		if h.server == rs1.name {
			held = h
		} else {
			h.c.Close()
		}
	}
	if held == nil {
		t.Fatalf("no connection through the VIP landed on %s in 4 tries", rs1.name)
	}

	drain := c.start("drain web rs1 --wait", "drain", "web", "rs1", "--wait", "--timeout", "60s")
	l.waitRules(c.d, l.ctlWebRules(0, 1), programTimeout)

	t.Run("while draining", func(t *testing.T) {
		for i, r := range l.mustGet(80, 6) {
			if r.server != rs2.name {
				t.Errorf("new connection %d went to %s, which is draining", i+1, r.server)
			}
		}
		held.c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(held.c, "GET / HTTP/1.1\r\nHost: lab\r\n\r\n"); err != nil {
			t.Fatalf("the held connection: %v", err)
		}
		body, err := readResponse(held.br)
		if err != nil || !strings.HasPrefix(body, rs1.name+" ") {
			t.Errorf("a request on the held connection to %s: %q, %v", rs1.name, body, err)
		}
		held.c.SetDeadline(time.Time{})

		// The drain is in the file at once, not only in the kernel.
		if r := c.fileRealServer(t, "web", "rs1"); !r.Drained {
			t.Errorf("%s: rs1 not drained in the file while draining", c.d.config)
		}

		// status names every service and real server, with the drain and
		// the connection the drain waits for.
		out := c.mustRun(t, "status")
		for _, re := range []string{
			`(?m)^web\s+` + regexp.QuoteMeta(l.vip.String()) + `:80/tcp\s+rr\s+dr\s`,
			`(?m)^\s*-> rs1\s+` + regexp.QuoteMeta(rs1.addr.String()) + `:80\s+dr\s+0 of 1\s+\S+\s+drained\s+1\s`,
			`(?m)^\s*-> rs2\s+` + regexp.QuoteMeta(rs2.addr.String()) + `:80\s+dr\s+1\s+\S+\s+serving\s`,
		} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("lbctl status does not match %s:\n%s", re, out)
			}
		}

		// Several polls and resyncs later, --wait is still waiting for
		// the open connection.
		time.Sleep(3 * time.Second)
		if drain.Exited() {
			t.Fatalf("drain --wait returned while a connection to rs1 was open:\n%s", strings.Join(drain.Lines(), "\n"))
		}
		if _, ok := drain.WaitLine(0, 0, contains("web/rs1: 1 active connection")); !ok {
			t.Errorf("drain --wait does not show the open connection:\n%s", strings.Join(drain.Lines(), "\n"))
		}
	})

	held.c.Close()
	closed := time.Now()
	exited, err := drain.Wait(30 * time.Second)
	took := time.Since(closed)
	if !exited {
		t.Fatalf("drain --wait still running %v after the last connection closed:\n%s", took.Round(time.Millisecond), strings.Join(drain.Lines(), "\n"))
	}
	t.Logf("drain --wait returned %v after the connection closed; its output:\n%s", took.Round(time.Millisecond), strings.Join(drain.Lines(), "\n"))
	if code := ctlExitCode(err); code != 0 {
		t.Fatalf("drain --wait exited %d (%v), want 0", code, err)
	}
	if took > drainReturnBound {
		t.Errorf("drain --wait returned %v after the connection closed, want within %v", took.Round(time.Millisecond), drainReturnBound)
	}
	if _, ok := drain.WaitLine(0, 0, contains("web/rs1: 0 active connections, drained after")); !ok {
		t.Errorf("drain --wait did not report the end of the drain")
	}
	// Draining does not end by itself: rs1 stays at weight 0.
	if got := vmtest.MustReadTable(t, vmtest.IPVS(t, l.director)).Rules(); got != l.ctlWebRules(0, 1) {
		t.Errorf("after drain --wait the table is\n%swant\n%s", got, l.ctlWebRules(0, 1))
	}

	t.Run("enable", func(t *testing.T) {
		out := c.mustRun(t, "enable", "web", "rs1")
		if !strings.Contains(out, "web/rs1 enabled: weight 1") {
			t.Errorf("lbctl enable said %q", out)
		}
		l.waitRules(c.d, l.ctlWebRules(1, 1), programTimeout)
		checkAlternates(t, l.mustGet(80, 6), rs1.name, rs2.name)
		if r := c.fileRealServer(t, "web", "rs1"); r.Drained {
			t.Errorf("%s: rs1 still drained in the file after enable", c.d.config)
		}
	})

	t.Run("weight", func(t *testing.T) {
		c.mustRun(t, "weight", "web", "rs2", "5")
		l.waitRules(c.d, l.ctlWebRules(1, 5), programTimeout)
		if r := c.fileRealServer(t, "web", "rs2"); r.Weight == nil || *r.Weight != 5 {
			t.Errorf("%s: rs2's weight in the file is %v, want 5", c.d.config, r.Weight)
		}
	})
	if t.Failed() {
		return
	}

	t.Run("drain survives a restart", func(t *testing.T) {
		c.mustRun(t, "drain", "web", "rs1")
		l.waitRules(c.d, l.ctlWebRules(0, 5), programTimeout)
		if err := c.d.Stop(); err != nil {
			t.Fatalf("lbd on SIGTERM: %v", err)
		}
		file, err := os.ReadFile(c.d.config)
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`(?m)^\s*drained = true$`).Match(file) {
			t.Errorf("%s has no `drained = true`:\n%s", c.d.config, file)
		}
		// An empty table, so what the restarted lbd programs can only come
		// from the file.
		l.director.Exec("ipvsadm", "-C")
		c.restart()
		l.waitRules(c.d, l.ctlWebRules(0, 5), programTimeout)

		var r api.RealServer
		if err := json.Unmarshal([]byte(c.mustRun(t, "show", "web", "rs1", "-o", "json")), &r); err != nil {
			t.Fatalf("lbctl show web rs1 -o json: %v", err)
		}
		if !r.Drained || r.Weight != 0 || r.ConfiguredWeight != 1 || !r.InKernel {
			t.Errorf("after the restart lbctl shows rs1 %+v, want drained, weight 0 of 1, in the kernel", r)
		}
		for i, rep := range l.mustGet(80, 4) {
			if rep.server != rs2.name {
				t.Errorf("after the restart new connection %d went to %s, which is drained", i+1, rep.server)
			}
		}
		// Several resyncs later the drain still holds.
		time.Sleep(2 * time.Second)
		if got := vmtest.MustReadTable(t, vmtest.IPVS(t, l.director)).Rules(); got != l.ctlWebRules(0, 5) {
			t.Errorf("after the restart the table became\n%swant\n%s", got, l.ctlWebRules(0, 5))
		}

		c.mustRun(t, "enable", "web", "rs1")
		l.waitRules(c.d, l.ctlWebRules(1, 5), programTimeout)
	})
}

// ctlWebRules is the IPVS table for the lab's "web" service on port 80 (rr)
// with rs1 and rs2 at the given kernel weights.
func (l *lab) ctlWebRules(w1, w2 int) string {
	r := func(i, w int) rs {
		// rs treats weight 0 as "the default"; quiesced is weight 0.
		return rs{name: l.rs[i].name, addr: l.rs[i].addr, weight: w, quiesced: w == 0}
	}
	return l.rules(vs{name: "web", port: 80, sched: "rr", rs: []rs{r(0, w1), r(1, w2)}})
}

// ctl is an lbd in the lab's director namespace with its console and
// API up, and an API token for lbctl.
type ctl struct {
	l     *lab
	d     *daemon
	url   string
	token string
	lbctl string // path of the binary
}

// startCtl writes config with a console password, creates an API token
// with `lbd token` as an operator would, starts lbd on the file and waits
// for the console to listen.
func (l *lab) startCtl(cfg string) *ctl {
	l.t.Helper()
	t := l.t
	lbd := vmtest.Binary(t, "lbd")
	c := &ctl{l: l, lbctl: vmtest.Binary(t, "lbctl"),
		url: fmt.Sprintf("http://%s:3636", l.directors[0].IPv4.Addr())}
	// The password only has to exist (the console refuses to start without
	// one); lbctl uses the token.
	hash, err := bcrypt.GenerateFromPassword([]byte("e2e-password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	c.d = &daemon{config: filepath.Join(t.TempDir(), "lbd.toml")}
	c.d.write(t, fmt.Sprintf("%s\n[console]\npassword_hash = %q\n", cfg, hash))

	// In the director's namespace: the file names its interface.
	var stdout, stderr bytes.Buffer
	cmd := l.director.Cmd(lbd, "token", "-config", c.d.config, "-name", "e2e")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := ctlRunWithin(cmd, 30*time.Second); err != nil {
		t.Fatalf("lbd token -config %s: %v\n%s", c.d.config, err, stderr.String())
	}
	c.token = strings.TrimSpace(stdout.String())
	if !strings.HasPrefix(c.token, "e2e.") || strings.ContainsAny(c.token, " \n") {
		t.Fatalf("lbd token printed %q, want one token named e2e", stdout.String())
	}
	c.restart()
	return c
}

// restart starts lbd on the console's file (again) and waits until the
// console answers lbctl.
func (c *ctl) restart() {
	t := c.l.t
	t.Helper()
	ns := c.l.director
	c.d.Proc = vmtest.Start(t, "lbd in "+ns.Name, ns.Cmd(vmtest.Binary(t, "lbd"), "-config", c.d.config))
	if _, ok := c.d.WaitLine(0, 60*time.Second, contains("console listening")); !ok {
		t.Fatalf("lbd's console did not start:\n%s", strings.Join(c.d.Lines(), "\n"))
	}
	vmtest.Eventually(t, 30*time.Second, 200*time.Millisecond, "lbctl status", func() (bool, string) {
		out, code := c.run("status")
		return code == 0, fmt.Sprintf("exit %d: %s", code, out)
	})
}

// cmd returns lbctl with args, run in the director's namespace against the
// console's URL with the token.
func (c *ctl) cmd(args ...string) *exec.Cmd {
	return c.l.director.Cmd(c.lbctl, append([]string{"--url", c.url, "--token", c.token}, args...)...)
}

// run runs lbctl to the end (at most 30s) and returns its combined output
// and exit code.
func (c *ctl) run(args ...string) (string, int) {
	var out bytes.Buffer
	cmd := c.cmd(args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := ctlRunWithin(cmd, 30*time.Second)
	return out.String(), ctlExitCode(err)
}

// mustRun runs lbctl and fails the test unless it exits 0; it returns the
// output.
func (c *ctl) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, code := c.run(args...)
	if code != 0 {
		t.Fatalf("lbctl %s: exit %d:\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// start runs lbctl in the background (see vmtest.Proc).
func (c *ctl) start(name string, args ...string) *vmtest.Proc {
	c.l.t.Helper()
	return vmtest.Start(c.l.t, "lbctl "+name, c.cmd(args...))
}

// fileRealServer reads the real server vsName/rsName back from lbd's file.
func (c *ctl) fileRealServer(t *testing.T, vsName, rsName string) config.RealServer {
	t.Helper()
	cfg, err := config.Load(c.d.config)
	if err != nil {
		t.Fatalf("lbd's file after lbctl: %v", err)
	}
	for _, v := range cfg.VirtualServers {
		for _, r := range v.RealServers {
			if v.Name == vsName && r.Name == rsName {
				return r
			}
		}
	}
	t.Fatalf("%s: no real server %s/%s", c.d.config, vsName, rsName)
	return config.RealServer{}
}

// ctlRunWithin runs cmd, killing it after timeout.
func ctlRunWithin(cmd *exec.Cmd, timeout time.Duration) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s: killed after %v", cmd.Path, timeout)
	}
}

// ctlExitCode is a finished command's exit status; -1 when it did not exit
// normally (not started, killed).
func ctlExitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Exited() {
		return ee.ExitCode()
	}
	return -1
}
