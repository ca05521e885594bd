package balancer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// procTree makes a fake /proc/sys with the given files (value "0").
func procTree(t *testing.T, names ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, n := range names {
		p := filepath.Join(root, strings.ReplaceAll(n, ".", "/"))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func readSysctl(t *testing.T, root, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, strings.ReplaceAll(name, ".", "/")))
	if err != nil {
		return "missing"
	}
	return strings.TrimSpace(string(b))
}

var allSysctls = []string{"net.ipv4.vs.expire_nodest_conn", "net.ipv4.vs.expire_quiescent_template",
	"net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"}

func TestSetSysctls(t *testing.T) {
	cases := []struct {
		f4, f6 bool
		want   map[string]string
	}{
		{false, false, map[string]string{"net.ipv4.ip_forward": "0", "net.ipv6.conf.all.forwarding": "0"}},
		{true, false, map[string]string{"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "0"}},
		{true, true, map[string]string{"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1"}},
	}
	for _, c := range cases {
		root := procTree(t, allSysctls...)
		if err := SetSysctls(ProcSys{Root: root}, c.f4, c.f6); err != nil {
			t.Fatal(err)
		}
		c.want["net.ipv4.vs.expire_nodest_conn"] = "1"
		c.want["net.ipv4.vs.expire_quiescent_template"] = "1"
		for n, v := range c.want {
			if got := readSysctl(t, root, n); got != v {
				t.Errorf("forward=%v/%v: %s=%s, want %s", c.f4, c.f6, n, got, v)
			}
		}
	}
}

func TestSetSysctlsReportsEachFailure(t *testing.T) {
	// No ip_vs loaded: the vs directory does not exist.
	root := procTree(t, "net.ipv4.ip_forward")
	err := SetSysctls(ProcSys{Root: root}, true, false)
	if err == nil {
		t.Fatal("want an error")
	}
	msg := err.Error()
	for _, n := range []string{"net.ipv4.vs.expire_nodest_conn", "net.ipv4.vs.expire_quiescent_template"} {
		if !strings.Contains(msg, n) {
			t.Errorf("error does not name %s: %s", n, msg)
		}
	}
	if strings.Contains(msg, "ip_forward") {
		t.Errorf("error names a sysctl that was set: %s", msg)
	}
	// The ones that could be set were set, and nothing was invented.
	if got := readSysctl(t, root, "net.ipv4.ip_forward"); got != "1" {
		t.Errorf("ip_forward=%s", got)
	}
	if got := readSysctl(t, root, "net.ipv4.vs.expire_nodest_conn"); got != "missing" {
		t.Errorf("created a sysctl file: %s", got)
	}
}

func TestProcSysRejectsPaths(t *testing.T) {
	root := procTree(t)
	for _, n := range []string{"", "../etc/passwd", "net/ipv4/ip_forward", "net..x"} {
		if err := (ProcSys{Root: root}).WriteSysctl(n, "1"); err == nil {
			t.Errorf("%q accepted", n)
		}
	}
}

func TestNeedsForwarding(t *testing.T) {
	tab := baseTable() // NAT: IPv4 (udp service) and IPv6 (2001:db8::11)
	if v4, v6 := tab.NeedsForwarding(); !v4 || !v6 {
		t.Errorf("got %v %v", v4, v6)
	}
	tab.Services = tab.Services[:1] // DR only
	if v4, v6 := tab.NeedsForwarding(); v4 || v6 {
		t.Errorf("DR only: got %v %v", v4, v6)
	}
}

var syncSysctlNames = []string{"net.ipv4.vs.sync_version", "net.ipv4.vs.sync_threshold",
	"net.ipv4.vs.sync_refresh_period", "net.ipv4.vs.sync_retries", "net.ipv4.vs.backup_only"}

func TestSetSyncSysctls(t *testing.T) {
	for _, c := range []struct {
		refresh time.Duration
		secs    string
	}{{10 * time.Second, "10"}, {1500 * time.Millisecond, "2"}, {0, "1"}, {time.Minute, "60"}} {
		root := procTree(t, syncSysctlNames...)
		if err := SetSyncSysctls(ProcSys{Root: root}, c.refresh); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"net.ipv4.vs.sync_version":        "1",
			"net.ipv4.vs.sync_threshold":      "3 0", // sync_period 0
			"net.ipv4.vs.sync_refresh_period": c.secs,
			"net.ipv4.vs.sync_retries":        "1",
			"net.ipv4.vs.backup_only":         "0",
		}
		for n, v := range want {
			if got := readSysctl(t, root, n); got != v {
				t.Errorf("refresh %v: %s=%q, want %q", c.refresh, n, got, v)
			}
		}
	}
	// Without ip_vs: every one is named, none invented.
	err := SetSyncSysctls(ProcSys{Root: procTree(t)}, time.Second)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, n := range syncSysctlNames {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("error does not name %s: %v", n, err)
		}
	}
}
