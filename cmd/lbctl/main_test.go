package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"lbd/api"
	"lbd/internal/testutil"
)

type result struct {
	code           int
	stdout, stderr string
}

type runOpts struct {
	env        map[string]string
	tty        bool
	tokenFiles []string
	ctx        context.Context
	stdout     *testutil.Buffer
}

func lbctl(t *testing.T, o runOpts, args ...string) result {
	t.Helper()
	out, errb := o.stdout, &testutil.Buffer{}
	if out == nil {
		out = &testutil.Buffer{}
	}
	a := newApp(out, errb, func(k string) string { return o.env[k] })
	// Never read the host's real token files.
	a.tokenFiles = o.tokenFiles
	a.isTTY = func(io.Writer) bool { return o.tty }
	ctx := o.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	code := a.run(ctx, args)
	return result{code, out.String(), errb.String()}
}

func (r result) wantCode(t *testing.T, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
}

func contains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s does not contain %q:\n%s", what, sub, s)
		}
	}
}

func TestStatusTable(t *testing.T) {
	f := newFake(t)
	r := lbctl(t, runOpts{}, "--url", f.URL(), "status")
	r.wantCode(t, 0)
	contains(t, "status", r.stdout,
		"lb1 (lbd v1.2.3, up 3h12m)",
		"/etc/lbd/lbd.toml (version 3f2a9c1d5e6f)",
		"role      MASTER since 3h11m ago: higher priority",
		"vrid 51 v3 on eth0, priority 100, vips 192.0.2.10",
		"sync      master running for 3h11m, backup running for 3h11m; warm; 1234 synced / 56 local; id 51 on eth1, group 224.0.0.81:8848\n",
		"in sync, checked 2",
		"NAME", "HEALTH", "STATE", "ACTIVE", "CONN/S",
	)
	// One line per service and real server, with names, health, drain
	// state and rates, aligned in columns.
	lines := map[string]*regexp.Regexp{
		"web": regexp.MustCompile(`(?m)^web\s+192\.0\.2\.10:80/tcp\s+wlc\s+dr\s+3\s+healthy\s+active\s+4\s+6\s+12\s+1\.2k\s+3\.4M$`),
		"rs1": regexp.MustCompile(`(?m)^  -> rs1\s+10\.0\.0\.1:80\s+dr\s+2\s+up\s+serving\s+3\s+2\s+5\s+1\.2k\s+57k$`),
		"rs2": regexp.MustCompile(`(?m)^  -> rs2\s+10\.0\.0\.2:80\s+dr\s+0 of 1\s+up\s+drained\s+1\s+2\s`),
		"rs3": regexp.MustCompile(`(?m)^  -> rs3\s+10\.0\.0\.3:80\s+dr\s+0 of 1\s+down\s+quiesced\s`),
		"dns": regexp.MustCompile(`(?m)^dns6\s+\[2001:db8::53\]:53/udp\s+rr\s+dr\s+0\s+DOWN \(up weight 0 < quorum 1\)\s+active\s`),
	}
	for name, re := range lines {
		if !re.MatchString(r.stdout) {
			t.Errorf("status: no %s line matching %s in:\n%s", name, re, r.stdout)
		}
	}
	// Columns line up: every row's ADDRESS starts where the header's does.
	var col = -1
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(l, "NAME") {
			col = strings.Index(l, "ADDRESS")
		}
	}
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(l, "  -> rs1") && strings.Index(l, "10.0.0.1") != col {
			t.Errorf("address column at %d, header at %d: %q", strings.Index(l, "10.0.0.1"), col, l)
		}
	}
}

func TestStatusStandaloneAndReconcileError(t *testing.T) {
	f := newFake(t)
	f.status.VRRP = nil
	f.status.ReconcileErr = "ipvs: add service: operation not permitted"
	r := lbctl(t, runOpts{}, "--url", f.URL(), "status")
	r.wantCode(t, 0)
	contains(t, "status", r.stdout, "standalone (no [vrrp])", "ERROR: ipvs: add service: operation not permitted")
}

func TestStatusIPVSUnavailable(t *testing.T) {
	f := newFake(t)
	f.status.IPVSUnavailable = true
	f.status.LastReconcile = time.Time{}
	r := lbctl(t, runOpts{}, "--url", f.URL(), "status")
	r.wantCode(t, 0)
	contains(t, "status", r.stdout, "IPVS not available (VRRP only)")
	if strings.Contains(r.stdout, "not verified yet") {
		t.Errorf("status still says not verified yet:\n%s", r.stdout)
	}
}

// The sync line says what an operator must know before a failover: which
// daemon is down and why, whether this director is warm, what it holds.
func TestStatusSync(t *testing.T) {
	since := time.Now().Add(-90 * time.Second)
	cases := []struct {
		name   string
		change func(s *api.Sync)
		want   string // the whole line after "sync"
	}{
		{"backup stopped with an error", func(s *api.Sync) {
			s.Daemons = []api.SyncDaemon{
				{Role: "backup", Error: "start backup daemon on eth1: no such device"},
				{Role: "master", Running: true, Since: since},
			}
			s.Warm, s.WarmReason, s.SyncedConns = false, "backup daemon not running", 0
		}, "master running for 1m30s, backup STOPPED (start backup daemon on eth1: no such device); NOT WARM (backup daemon not running): will not preempt; 0 synced / 56 local; id 51 on eth1, group 224.0.0.81:8848"},
		{"master stopped, no error", func(s *api.Sync) {
			s.Daemons[0] = api.SyncDaemon{Role: "master"}
		}, "master STOPPED, backup running for 3h11m; warm; 1234 synced / 56 local; id 51 on eth1, group 224.0.0.81:8848"},
		{"warming up", func(s *api.Sync) {
			s.Daemons[1].Since = time.Now().Add(-20 * time.Second)
			s.Warm, s.WarmReason = false, "backup daemon running for 20s of 30s"
		}, "master running for 3h11m, backup running for 20s; NOT WARM (backup daemon running for 20s of 30s): will not preempt; 1234 synced / 56 local; id 51 on eth1, group 224.0.0.81:8848"},
		{"takeover guard, IPv6 group, no start time", func(s *api.Sync) {
			s.Guard, s.Group = "quiet", "ff02::81"
			s.Daemons[0].Since = time.Time{}
		}, "master running, backup running for 3h11m; warm; 1234 synced / 56 local; guard quiet; id 51 on eth1, group [ff02::81]:8848"},
		{"handover hold", func(s *api.Sync) { s.Guard = "hold" },
			"master running for 3h11m, backup running for 3h11m; warm; 1234 synced / 56 local; guard hold; id 51 on eth1, group 224.0.0.81:8848"},
		{"no daemons", func(s *api.Sync) { s.Daemons = nil; s.Warm, s.WarmReason = false, "" },
			"NO DAEMONS; NOT WARM: will not preempt; 1234 synced / 56 local; id 51 on eth1, group 224.0.0.81:8848"},
	}
	syncRe := regexp.MustCompile(`(?m)^sync +(.*)$`)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			tc.change(f.status.Sync)
			r := lbctl(t, runOpts{}, "--url", f.URL(), "status")
			r.wantCode(t, 0)
			m := syncRe.FindAllStringSubmatch(r.stdout, -1)
			if len(m) != 1 || m[0][1] != tc.want {
				t.Fatalf("sync line:\n got %q\nwant %q\nin:\n%s", m, tc.want, r.stdout)
			}
			// It sits under the VRRP part, before the IPVS line.
			if i, j, k := strings.Index(r.stdout, "\nvrrp "), strings.Index(r.stdout, "\nsync "), strings.Index(r.stdout, "\nipvs "); !(i < j && j < k) {
				t.Errorf("sync line out of place:\n%s", r.stdout)
			}
		})
	}
}

// With sync off there is no sync line, and the JSON has no "sync" key.
func TestStatusSyncOff(t *testing.T) {
	f := newFake(t)
	f.status.Sync = nil
	r := lbctl(t, runOpts{}, "--url", f.URL(), "status")
	r.wantCode(t, 0)
	if strings.Contains(r.stdout, "\nsync") || strings.Contains(r.stdout, "synced") {
		t.Fatalf("a sync line with sync off:\n%s", r.stdout)
	}
	r = lbctl(t, runOpts{}, "--url", f.URL(), "-o", "json", "status")
	r.wantCode(t, 0)
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw["sync"]; ok {
		t.Fatalf("sync off, but the JSON has it: %s", raw["sync"])
	}
}

// --output json carries the sync state with its JSON names.
func TestStatusSyncJSON(t *testing.T) {
	f := newFake(t)
	f.status.Sync.Daemons[1] = api.SyncDaemon{Role: "backup", Error: "no such device"}
	f.status.Sync.Warm, f.status.Sync.WarmReason, f.status.Sync.Guard = false, "backup daemon not running", "hold"
	r := lbctl(t, runOpts{}, "--url", f.URL(), "--output", "json", "status")
	r.wantCode(t, 0)
	contains(t, "json", r.stdout, `"sync": {`, `"interface": "eth1"`, `"sync_id": 51`, `"group": "224.0.0.81"`, `"port": 8848`,
		`"role": "master"`, `"running": true`, `"role": "backup"`, `"running": false`, `"error": "no such device"`,
		`"warm": false`, `"warm_reason": "backup daemon not running"`, `"warm_up_ns": 15000000000`,
		`"synced_conns": 1234`, `"local_conns": 56`, `"guard": "hold"`)
	var st api.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(st.Sync)
	want, _ := json.Marshal(f.status.Sync)
	if !bytes.Equal(got, want) {
		t.Fatalf("sync through --output json:\n got %s\nwant %s", got, want)
	}
}

func TestJSONOutput(t *testing.T) {
	f := newFake(t)
	cases := []struct {
		args []string
		into any
		want any
	}{
		{[]string{"status"}, &api.Status{}, &f.status},
		{[]string{"list"}, &[]api.Service{}, &f.status.Services},
		{[]string{"list", "web"}, &[]api.RealServer{}, &f.status.Services[0].RealServers},
		{[]string{"show", "web"}, &api.Service{}, &f.status.Services[0]},
		{[]string{"show", "web", "rs3"}, &api.RealServer{}, &f.status.Services[0].RealServers[2]},
	}
	for _, c := range cases {
		r := lbctl(t, runOpts{}, append([]string{"--url", f.URL(), "-o", "json"}, c.args...)...)
		r.wantCode(t, 0)
		if err := json.Unmarshal([]byte(r.stdout), c.into); err != nil {
			t.Fatalf("%v: output is not JSON: %v\n%s", c.args, err, r.stdout)
		}
		got, _ := json.Marshal(c.into)
		want, _ := json.Marshal(c.want)
		if !bytes.Equal(got, want) {
			t.Errorf("%v: JSON round trip differs:\n got %s\nwant %s", c.args, got, want)
		}
	}
}

func TestListAndShowTables(t *testing.T) {
	f := newFake(t)
	r := lbctl(t, runOpts{}, "--url", f.URL(), "list")
	r.wantCode(t, 0)
	if !regexp.MustCompile(`(?m)^web\s+192\.0\.2\.10:80/tcp\s+wlc\s+dr\s+3\s+3\s+healthy`).MatchString(r.stdout) {
		t.Errorf("list:\n%s", r.stdout)
	}
	r = lbctl(t, runOpts{}, "--url", f.URL(), "list", "web")
	r.wantCode(t, 0)
	if !regexp.MustCompile(`(?m)^rs2\s+10\.0\.0\.2:80\s+dr\s+0 of 1\s+up\s+drained`).MatchString(r.stdout) {
		t.Errorf("list web:\n%s", r.stdout)
	}
	r = lbctl(t, runOpts{}, "--url", f.URL(), "show", "web", "rs3")
	r.wantCode(t, 0)
	contains(t, "show web rs3", r.stdout, "web/rs3", "10.0.0.3:80", "down: connection refused (checked 1", "0 in IPVS, 1 configured")
	r = lbctl(t, runOpts{}, "--url", f.URL(), "show", "web")
	r.wantCode(t, 0)
	contains(t, "show web", r.stdout, "192.0.2.10:80/tcp", "healthy (up weight 3, quorum 1)", "4 active, 6 inactive", "rs1", "rs2", "rs3")
}

func TestNotFoundSuggests(t *testing.T) {
	f := newFake(t)
	r := lbctl(t, runOpts{}, "--url", f.URL(), "show", "wbe")
	r.wantCode(t, exitNotFound)
	contains(t, "stderr", r.stderr, `no virtual server "wbe" (did you mean "web"?)`)

	r = lbctl(t, runOpts{}, "--url", f.URL(), "drain", "web", "rs4")
	r.wantCode(t, exitNotFound)
	contains(t, "stderr", r.stderr, `no real server "rs4" in "web" (did you mean "rs1"?)`)

	// Nothing close: no suggestion.
	r = lbctl(t, runOpts{}, "--url", f.URL(), "show", "database")
	r.wantCode(t, exitNotFound)
	if strings.Contains(r.stderr, "did you mean") {
		t.Errorf("suggestion for a far name: %s", r.stderr)
	}
}

func TestUnreachable(t *testing.T) {
	// A port nothing listens on: bind one and close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close()
	for _, args := range [][]string{{"status"}, {"drain", "web", "rs1"}, {"events", "-f"}} {
		r := lbctl(t, runOpts{}, append([]string{"--url", url}, args...)...)
		r.wantCode(t, exitUnreachable)
		contains(t, "stderr", r.stderr, "lbd is not reachable at "+url)
	}
}

func TestRequestTimeout(t *testing.T) {
	f := newFake(t)
	f.delay = 2 * time.Second
	r := lbctl(t, runOpts{}, "--url", f.URL(), "--request-timeout", "100ms", "status")
	r.wantCode(t, exitTimeout)
	contains(t, "stderr", r.stderr, "did not answer within 100ms")
}

func TestAuth(t *testing.T) {
	f := newFake(t)
	f.token = "s3cret"
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	bad := filepath.Join(dir, "bad")
	os.WriteFile(good, []byte("s3cret\n"), 0o600)
	os.WriteFile(bad, []byte("nope\n"), 0o600)

	r := lbctl(t, runOpts{}, "--url", f.URL(), "status")
	r.wantCode(t, exitAuth)
	contains(t, "stderr", r.stderr, "not authorised: no token given")

	r = lbctl(t, runOpts{}, "--url", f.URL(), "--token", "wrong", "status")
	r.wantCode(t, exitAuth)
	contains(t, "stderr", r.stderr, "not authorised (check --token / LBCTL_TOKEN)")

	r = lbctl(t, runOpts{tokenFiles: []string{filepath.Join(dir, "missing"), bad}}, "--url", f.URL(), "status")
	r.wantCode(t, exitAuth)
	contains(t, "stderr", r.stderr, "refused the token from "+bad)

	for name, o := range map[string]struct {
		opts runOpts
		args []string
	}{
		"flag":         {runOpts{}, []string{"--token", "s3cret"}},
		"env":          {runOpts{env: map[string]string{"LBCTL_TOKEN": "s3cret"}}, nil},
		"token-file":   {runOpts{}, []string{"--token-file", good}},
		"default file": {runOpts{tokenFiles: []string{filepath.Join(dir, "missing"), good}}, nil},
		"flag wins":    {runOpts{env: map[string]string{"LBCTL_TOKEN": "nope"}}, []string{"--token", "s3cret"}},
	} {
		r := lbctl(t, o.opts, append(append([]string{"--url", f.URL()}, o.args...), "status")...)
		if r.code != 0 {
			t.Errorf("%s: exit %d: %s", name, r.code, r.stderr)
		}
	}

	r = lbctl(t, runOpts{}, "--url", f.URL(), "--token-file", filepath.Join(dir, "missing"), "status")
	r.wantCode(t, exitError)
	contains(t, "stderr", r.stderr, "token file:", "missing")
}

func TestDefaultTokenFiles(t *testing.T) {
	a := newApp(nil, nil, func(k string) string { return map[string]string{"HOME": "/home/op"}[k] })
	want := []string{"/home/op/.config/lbctl/token", "/etc/lbd/lbctl.token"}
	if strings.Join(a.tokenFiles, " ") != strings.Join(want, " ") {
		t.Errorf("token files %v, want %v", a.tokenFiles, want)
	}
	a = newApp(nil, nil, func(k string) string { return map[string]string{"HOME": "/h", "XDG_CONFIG_HOME": "/x"}[k] })
	if a.tokenFiles[0] != "/x/lbctl/token" {
		t.Errorf("XDG_CONFIG_HOME ignored: %v", a.tokenFiles)
	}
}

func TestURLFromEnv(t *testing.T) {
	f := newFake(t)
	r := lbctl(t, runOpts{env: map[string]string{"LBCTL_URL": f.URL()}}, "status")
	r.wantCode(t, 0)
	r = lbctl(t, runOpts{}, "--url", "127.0.0.1:3636", "status")
	r.wantCode(t, exitUsage)
	contains(t, "stderr", r.stderr, "must look like http://host:port")
}

func TestUsageErrors(t *testing.T) {
	f := newFake(t)
	for _, args := range [][]string{
		{"bogus"},
		{"status", "extra"},
		{"show"},
		{"drain", "web"},
		{"weight", "web", "rs1", "heavy"},
		{"weight", "web", "rs1", "70000"},
		{"weight", "web", "rs1", "-1"},
		{"--output", "yaml", "status"},
		{"status", "--no-such-flag"},
		{"drain", "web", "rs1", "--timeout", "soon"},
		{"drain", "web", "rs1", "--wait", "--timeout", "0s"},
	} {
		r := lbctl(t, runOpts{}, append([]string{"--url", f.URL()}, args...)...)
		if r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d (stderr %q)", args, r.code, exitUsage, r.stderr)
		}
		if !strings.Contains(r.stderr, "--help' for usage") {
			t.Errorf("%v: no usage hint: %q", args, r.stderr)
		}
	}
	if n := f.requested("POST"); n != 0 {
		t.Errorf("usage errors changed state: %d POSTs", n)
	}
}

func TestHelpDocumentsExitCodes(t *testing.T) {
	r := lbctl(t, runOpts{}, "--help")
	r.wantCode(t, 0)
	contains(t, "help", r.stdout, "Exit codes:", "3  lbd is not reachable", "4  not authorised", "5  no such", "6  timed out",
		"drain", "enable", "weight", "reload", "check", "failover", "events", "completion")
}

func TestDrainEnableWeight(t *testing.T) {
	f := newFake(t)
	r := lbctl(t, runOpts{}, "--url", f.URL(), "drain", "web", "rs1")
	r.wantCode(t, 0)
	contains(t, "drain", r.stdout, "web/rs1 drained: weight 0, 3 active connections")
	if rs := f.rs("web", "rs1"); !rs.Drained || rs.Weight != 0 {
		t.Errorf("after drain: %+v", rs)
	}

	r = lbctl(t, runOpts{}, "--url", f.URL(), "weight", "web", "rs1", "7")
	r.wantCode(t, 0)
	contains(t, "weight", r.stdout, "web/rs1 weight 7 (drained: stays at 0")

	r = lbctl(t, runOpts{}, "--url", f.URL(), "enable", "web", "rs1")
	r.wantCode(t, 0)
	contains(t, "enable", r.stdout, "web/rs1 enabled: weight 7")
	if rs := f.rs("web", "rs1"); rs.Drained || rs.Weight != 7 || rs.ConfiguredWeight != 7 {
		t.Errorf("after enable: %+v", rs)
	}

	r = lbctl(t, runOpts{}, "--url", f.URL(), "-o", "json", "weight", "web", "rs1", "0")
	r.wantCode(t, 0)
	var rs api.RealServer
	if err := json.Unmarshal([]byte(r.stdout), &rs); err != nil || rs.ConfiguredWeight != 0 {
		t.Errorf("weight json: %v %+v", err, rs)
	}
}

func TestDrainWaitCountsDown(t *testing.T) {
	f := newFake(t)
	f.status.Services[0].RealServers[0].ActiveConns = 4
	f.drainStep = 1
	start := time.Now()
	r := lbctl(t, runOpts{}, "--url", f.URL(), "drain", "web", "rs1", "--wait", "--poll", "10ms", "--timeout", "10s")
	r.wantCode(t, 0)
	// Not a terminal: one line per change, counting down to 0.
	want := []string{
		"web/rs1 drained: weight 0; waiting for active connections to end (timeout 10s)",
		"web/rs1: 4 active connections",
		"web/rs1: 3 active connections",
		"web/rs1: 2 active connections",
		"web/rs1: 1 active connection,",
		"web/rs1: 0 active connections, drained after",
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), r.stdout)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d: %q, want prefix %q", i, lines[i], w)
		}
	}
	if n := f.requested("GET /api/v1/services/web/real/rs1"); n != 4 {
		t.Errorf("%d polls, want 4 (one per decrement)", n)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("took %v", time.Since(start))
	}
}

func TestDrainWaitTerminalRedrawsOneLine(t *testing.T) {
	f := newFake(t)
	f.status.Services[0].RealServers[0].ActiveConns = 2
	f.drainStep = 1
	r := lbctl(t, runOpts{tty: true}, "--url", f.URL(), "drain", "web", "rs1", "--wait", "--poll", "10ms")
	r.wantCode(t, 0)
	// The live part is one line redrawn with \r and erase-line.
	live := strings.SplitN(r.stdout, "\n", 2)[1]
	if strings.Count(live, "\n") != 1 || !strings.HasSuffix(live, "\n") {
		t.Errorf("live part should be one line: %q", live)
	}
	contains(t, "live", live, "\r\x1b[Kweb/rs1: 2 active connections", "\r\x1b[Kweb/rs1: 1 active connection,", "\r\x1b[Kweb/rs1: 0 active connections")
}

func TestDrainWaitTimeout(t *testing.T) {
	f := newFake(t)
	f.drainStep = 0 // the connection never ends
	start := time.Now()
	r := lbctl(t, runOpts{}, "--url", f.URL(), "drain", "web", "rs1", "--wait", "--poll", "20ms", "--timeout", "200ms")
	r.wantCode(t, exitTimeout)
	contains(t, "stderr", r.stderr, "timeout after 200ms: web/rs1 still has 3 active connections (it stays drained)")
	if d := time.Since(start); d < 200*time.Millisecond || d > 5*time.Second {
		t.Errorf("returned after %v", d)
	}
	if !f.rs("web", "rs1").Drained {
		t.Error("timeout undid the drain")
	}
}

func TestDrainWaitEnabledMeanwhile(t *testing.T) {
	f := newFake(t)
	f.enableAfterGets = 2
	r := lbctl(t, runOpts{}, "--url", f.URL(), "drain", "web", "rs1", "--wait", "--poll", "10ms", "--timeout", "5s")
	r.wantCode(t, exitError)
	contains(t, "stderr", r.stderr, "web/rs1 was enabled again while waiting")
}

func TestDrainWaitSurvivesLBDRestart(t *testing.T) {
	// lbd goes away mid-drain (restart): --wait keeps polling, says so, and
	// finishes when lbd answers again.
	f := newFake(t)
	f.status.Services[0].RealServers[0].ActiveConns = 1
	// A proxy in front of the fake that drops connections for a while.
	proxy := newTCPProxy(t, f.srv.Listener.Addr().String())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &testutil.Buffer{}
	done := make(chan result, 1)
	go func() {
		done <- lbctl(t, runOpts{ctx: ctx, stdout: out}, "--url", "http://"+proxy.addr(), "drain", "web", "rs1", "--wait", "--poll", "20ms", "--timeout", "10s")
	}()
	testutil.WaitOutput(t, 5*time.Second, out, "1 active connection")
	proxy.setDown(true)
	testutil.WaitOutput(t, 5*time.Second, out, "lbd not reachable, retrying")
	f.mu.Lock()
	f.drainStep = 1
	f.mu.Unlock()
	proxy.setDown(false)
	select {
	case r := <-done:
		r.wantCode(t, 0)
		contains(t, "stdout", r.stdout, "0 active connections, drained after")
	case <-time.After(10 * time.Second):
		t.Fatal("drain --wait did not finish")
	}
}

func TestReload(t *testing.T) {
	f := newFake(t)
	r := lbctl(t, runOpts{}, "--url", f.URL(), "reload")
	r.wantCode(t, 0)
	contains(t, "reload", r.stdout, "reloaded /etc/lbd/lbd.toml: config 3f2a9c1d5e6f, 2 services")

	f.reloadProblems = []api.Problem{
		{File: "/etc/lbd/lbd.toml", Line: 12, Message: `virtual_server "web": unknown scheduler "wlcc"`},
		{File: "/etc/lbd/lbd.toml", Line: 30, Message: "real_server: weight 70000 out of range 0..65535"},
	}
	r = lbctl(t, runOpts{}, "--url", f.URL(), "reload")
	r.wantCode(t, exitError)
	want := "lbctl: reload refused, lbd keeps the running configuration: invalid configuration\n" +
		"/etc/lbd/lbd.toml:12: virtual_server \"web\": unknown scheduler \"wlcc\"\n" +
		"/etc/lbd/lbd.toml:30: real_server: weight 70000 out of range 0..65535\n"
	if r.stderr != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", r.stderr, want)
	}
	r = lbctl(t, runOpts{}, "--url", f.URL(), "-o", "json", "reload")
	r.wantCode(t, exitError)
	var e api.Error
	if err := json.Unmarshal([]byte(r.stdout), &e); err != nil || len(e.Problems) != 2 || e.Problems[1].Line != 30 {
		t.Errorf("json refusal: %v %+v", err, e)
	}
}

func TestFailover(t *testing.T) {
	f := newFake(t)
	r := lbctl(t, runOpts{}, "--url", f.URL(), "failover")
	r.wantCode(t, 0)
	contains(t, "failover", r.stdout, "vrid 51 on eth0: now BACKUP; not preempting for 5m0s")
	if f.failoverHoldoff != 5*time.Minute {
		t.Errorf("holdoff sent %v", f.failoverHoldoff)
	}
	// Not the master any more: lbd's refusal is shown, exit 1.
	r = lbctl(t, runOpts{}, "--url", f.URL(), "failover", "--holdoff", "30s")
	r.wantCode(t, exitError)
	contains(t, "stderr", r.stderr, "not the VRRP master")

	f.status.VRRP.State = "master"
	r = lbctl(t, runOpts{}, "--url", f.URL(), "-o", "json", "failover", "--holdoff", "30s")
	r.wantCode(t, 0)
	if f.failoverHoldoff != 30*time.Second {
		t.Errorf("holdoff sent %v", f.failoverHoldoff)
	}
	var v api.VRRP
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.State != "backup" {
		t.Errorf("json: %v %+v", err, v)
	}
}

func TestEvents(t *testing.T) {
	f := newFake(t)
	f.Emit("start", "lb1", "lbd v1.2.3 started")
	f.Emit("vrrp", "vrid 51", "backup -> master: higher priority")
	f.Emit("health", "web/rs3", "up -> down: connection refused")
	r := lbctl(t, runOpts{}, "--url", f.URL(), "events")
	r.wantCode(t, 0)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !regexp.MustCompile(`^\s+2  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d  vrrp\s+vrid 51\s+backup -> master: higher priority$`).MatchString(lines[1]) {
		t.Errorf("events:\n%s", r.stdout)
	}
	r = lbctl(t, runOpts{}, "--url", f.URL(), "events", "--since", "2")
	r.wantCode(t, 0)
	if n := strings.Count(r.stdout, "\n"); n != 1 || !strings.Contains(r.stdout, "web/rs3") {
		t.Errorf("events --since 2:\n%s", r.stdout)
	}
	r = lbctl(t, runOpts{}, "--url", f.URL(), "-o", "json", "events")
	var evs []api.Event
	if err := json.Unmarshal([]byte(r.stdout), &evs); err != nil || len(evs) != 3 || evs[2].Subject != "web/rs3" {
		t.Errorf("json events: %v %s", err, r.stdout)
	}
}

func testFollow(t *testing.T, noStream bool) {
	f := newFake(t)
	f.noStream = noStream
	f.Emit("start", "lb1", "started")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &testutil.Buffer{}
	done := make(chan result, 1)
	go func() {
		done <- lbctl(t, runOpts{ctx: ctx, stdout: out}, "--url", f.URL(), "-o", "json", "events", "--follow", "--poll", "20ms")
	}()
	testutil.Eventually(t, 5*time.Second, "a line of output", func() bool { return strings.Count(out.String(), "\n") == 1 })
	if !noStream {
		testutil.Eventually(t, 5*time.Second, "the event stream to subscribe", func() bool { return f.subscribers() == 1 })
	}
	f.Emit("drain", "web/rs1", "drained")
	f.Emit("health", "web/rs3", "down")
	testutil.Eventually(t, 5*time.Second, "3 lines of output", func() bool { return strings.Count(out.String(), "\n") == 3 })
	cancel()
	r := <-done
	r.wantCode(t, 0)
	var seqs []uint64
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var ev api.Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("not one JSON event per line: %q", l)
		}
		seqs = append(seqs, ev.Seq)
	}
	if len(seqs) != 3 || seqs[0] != 1 || seqs[1] != 2 || seqs[2] != 3 {
		t.Errorf("events seen %v, want [1 2 3] each once", seqs)
	}
	if noStream && f.requested("GET /api/v1/events?since=") < 2 {
		t.Error("did not poll")
	}
}

func TestEventsFollowStream(t *testing.T)  { testFollow(t, false) }
func TestEventsFollowPolling(t *testing.T) { testFollow(t, true) }

func TestEventsFollowFillsGap(t *testing.T) {
	// An event that happened between the first GET and the stream
	// connecting is fetched when the next streamed event shows the gap,
	// even from a stream that does not replay ?since=.
	f := newFake(t)
	f.noReplay = true
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &testutil.Buffer{}
	done := make(chan result, 1)
	go func() {
		done <- lbctl(t, runOpts{ctx: ctx, stdout: out}, "--url", f.URL(), "events", "-f")
	}()
	testutil.Eventually(t, 5*time.Second, "the event stream to subscribe", func() bool { return f.subscribers() == 1 })
	f.mu.Lock()
	f.events = append(f.events, api.Event{Seq: 1, Kind: "edit", Subject: "web", Message: "missed by the stream"})
	f.mu.Unlock()
	f.Emit("reload", "config", "reloaded")
	testutil.WaitOutput(t, 5*time.Second, out, "reloaded")
	cancel()
	r := <-done
	r.wantCode(t, 0)
	if i, j := strings.Index(r.stdout, "missed by the stream"), strings.Index(r.stdout, "reloaded"); i < 0 || i > j {
		t.Errorf("gap not filled in order:\n%s", r.stdout)
	}
}

func TestCompletion(t *testing.T) {
	f := newFake(t)
	for _, sh := range []string{"bash", "zsh", "fish"} {
		r := lbctl(t, runOpts{}, "completion", sh)
		r.wantCode(t, 0)
		if len(r.stdout) < 500 || !strings.Contains(r.stdout, "lbctl") {
			t.Errorf("%s completion script looks wrong: %d bytes", sh, len(r.stdout))
		}
	}
	r := lbctl(t, runOpts{}, "__complete", "--url", f.URL(), "drain", "")
	r.wantCode(t, 0)
	contains(t, "complete VS", r.stdout, "web\t192.0.2.10:80/tcp", "dns6\t[2001:db8::53]:53/udp")
	r = lbctl(t, runOpts{}, "__complete", "--url", f.URL(), "drain", "web", "")
	r.wantCode(t, 0)
	contains(t, "complete RS", r.stdout, "rs1\t10.0.0.1:80", "rs2", "rs3")
}

func TestFormatHelpers(t *testing.T) {
	for v, want := range map[uint64]string{0: "0", 999: "999", 1000: "1.0k", 1234: "1.2k", 56789: "57k", 3_400_000: "3.4M", 12e9: "12G"} {
		if got := rate(v); got != want {
			t.Errorf("rate(%d) = %q, want %q", v, got, want)
		}
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(good, []byte(`[global]
interface = "eth0"

[[virtual_server]]
name = "web"
vip = "192.0.2.10"
port = 80

[[virtual_server.real_server]]
name = "rs1"
address = "10.0.0.1"
`), 0o644)
	os.WriteFile(bad, []byte(`[global]
interface = "eth0"

[[virtual_server]]
name = "web"
vip = "192.0.2.300"
port = 80

[[virtual_server.real_server]]
name = "rs1"
address = "10.0.0.1"
weight = 70000
`), 0o644)

	// Offline: no --url is contacted (the default points nowhere here).
	r := lbctl(t, runOpts{}, "--url", "http://127.0.0.1:1", "check", good)
	r.wantCode(t, 0)
	if r.stdout != "configuration OK\n" || r.stderr != "" {
		t.Errorf("check good: stdout %q stderr %q", r.stdout, r.stderr)
	}

	r = lbctl(t, runOpts{}, "check", bad)
	r.wantCode(t, exitError)
	// lbd -t prints exactly one FILE:LINE: message per problem and nothing else.
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if len(lines) != 2 || r.stdout != "" {
		t.Fatalf("check bad: stdout %q stderr:\n%s", r.stdout, r.stderr)
	}
	if !strings.HasPrefix(lines[0], bad+":6: ") || !strings.Contains(lines[0], "192.0.2.300") {
		t.Errorf("first problem: %q", lines[0])
	}
	if !strings.HasPrefix(lines[1], bad+":12: ") || !strings.Contains(lines[1], "70000") {
		t.Errorf("second problem: %q", lines[1])
	}

	r = lbctl(t, runOpts{}, "-o", "json", "check", bad)
	r.wantCode(t, exitError)
	var res api.CheckResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.OK || len(res.Problems) != 2 || res.Problems[1].Line != 12 {
		t.Errorf("json: %v %+v", err, res)
	}
	r = lbctl(t, runOpts{}, "-o", "json", "check", good)
	r.wantCode(t, 0)
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || !res.OK {
		t.Errorf("json good: %v %s", err, r.stdout)
	}

	r = lbctl(t, runOpts{}, "check", filepath.Join(dir, "missing.toml"))
	r.wantCode(t, exitError)
	contains(t, "stderr", r.stderr, "missing.toml", "no such file")

	r = lbctl(t, runOpts{}, "check")
	r.wantCode(t, exitUsage)
}

func TestEventsFollowAcrossRestart(t *testing.T) {
	// lbd restarts while followed: lbctl says it is away, reconnects, and
	// prints the new lbd's events although their numbers start over.
	f := newFake(t)
	for i := 0; i < 5; i++ {
		f.Emit("health", "web/rs1", fmt.Sprintf("old %d", i))
	}
	proxy := newTCPProxy(t, f.srv.Listener.Addr().String())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errb := &testutil.Buffer{}, &testutil.Buffer{}
	done := make(chan int, 1)
	go func() {
		a := newApp(out, errb, func(string) string { return "" })
		a.tokenFiles = nil
		done <- a.run(ctx, []string{"--url", "http://" + proxy.addr(), "events", "-f", "--poll", "20ms"})
	}()
	testutil.Eventually(t, 5*time.Second, "the old events and a subscriber", func() bool { return strings.Contains(out.String(), "old 4") && f.subscribers() == 1 })

	proxy.setDown(true)
	f.mu.Lock()
	f.events = nil
	f.status.Started = time.Now()
	f.mu.Unlock()
	testutil.WaitOutput(t, 5*time.Second, errb, "not reachable")
	f.Emit("start", "lb1", "new lbd started")
	proxy.setDown(false)
	testutil.WaitOutput(t, 5*time.Second, out, "new lbd started")
	f.Emit("vrrp", "vrid 51", "new event 2")
	testutil.WaitOutput(t, 5*time.Second, out, "new event 2")
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d: %s", code, errb.String())
	}
	contains(t, "stderr", errb.String(), "lbd is back at", "lbd restarted at")
	if n := strings.Count(out.String(), "\n"); n != 7 {
		t.Errorf("%d lines, want 7 (5 old, 2 new, each once):\n%s", n, out.String())
	}
}
