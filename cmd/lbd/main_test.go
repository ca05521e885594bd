//go:build linux

package main

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"lbd/balancer"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "lbd.toml")
	if err := os.WriteFile(p, []byte(body), 0o640); err != nil {
		t.Fatal(err)
	}
	return p
}

const okConfig = `
[global]
interface = "eth0"
[[virtual_server]]
name = "web"
vip = "192.0.2.10"
port = 80
  [[virtual_server.real_server]]
  name = "rs1"
  address = "192.0.2.11"
`

func TestCheckOK(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"-t", "-config", writeFile(t, okConfig)}, &out, &errb)
	if code != 0 || strings.TrimSpace(out.String()) != "configuration OK" {
		t.Fatalf("code=%d out=%q err=%q", code, out.String(), errb.String())
	}
}

func TestCheckReportsEveryProblemWithFileAndLine(t *testing.T) {
	bad := okConfig + `
[[virtual_server]]
name = "web"
vip = "192.0.2.10"
port = 80
scheduler = "fastest"
  [[virtual_server.real_server]]
  name = "rs1"
  address = "192.0.2.11"
  weight = 70000
  colour = "blue"
`
	path := writeFile(t, bad)
	var out, errb bytes.Buffer
	code := run([]string{"-t", "-config", path}, &out, &errb)
	if code != 1 {
		t.Fatalf("code = %d, want 1", code)
	}
	lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
	if len(lines) < 4 {
		t.Fatalf("want every problem reported, got:\n%s", errb.String())
	}
	for _, want := range []string{path + ":16:", path + ":20:", path + ":21:", "fastest", "colour"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("missing %q in:\n%s", want, errb.String())
		}
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, path+":") {
			t.Errorf("line not FILE:LINE: message: %q", l)
		}
	}
}

func TestVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"-version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "lbd ") {
		t.Fatalf("code=%d out=%q", code, out.String())
	}
}

// On a kernel without IPVS (the host CI runs on), a config with virtual
// servers stops with a clear message instead of a netlink error.
func TestNoIPVSClearMessage(t *testing.T) {
	if k, err := balancer.Open(); err == nil {
		k.Close()
		t.Skip("this kernel has IPVS; the VM tests cover the running daemon")
	} else if !errors.Is(err, balancer.ErrUnavailable) {
		if os.Getenv("CI") != "" {
			t.Fatalf("cannot open IPVS for another reason than its absence: %v", err)
		}
		t.Skipf("cannot open IPVS for another reason (%v, not root?); not the case under test", err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"-config", writeFile(t, okConfig)}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "IPVS is not available in this kernel: load ip_vs") {
		t.Fatalf("code=%d stderr=%q", code, errb.String())
	}
}

// The file holds the console's hashes: lbd warns at start-up when group or
// others can read it.
func TestStartupWarnsWhenConfigReadableByOthers(t *testing.T) {
	path := writeFile(t, okConfig)
	for _, tc := range []struct {
		mode os.FileMode
		warn bool
	}{{0o644, true}, {0o640, true}, {0o604, true}, {0o600, false}, {0o400, false}} {
		if err := os.Chmod(path, tc.mode); err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		warnConfigMode(slog.New(slog.NewTextHandler(&logs, nil)), path)
		got := strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), "chmod 600 "+path)
		if got != tc.warn {
			t.Errorf("mode %04o: warned=%v, want %v; log: %q", tc.mode, got, tc.warn, logs.String())
		}
	}
}

// lbd -t on this host, as an operator runs it: an interface the host lacks
// and a kernel without IPVS are warnings; the file is valid, so exit 0.
func TestCheckWarnsMissingInterfaceAndIPVS(t *testing.T) {
	body := strings.Replace(okConfig, `interface = "eth0"`, `interface = "lbd-nosuch0"`, 1) +
		"[vrrp]\nvrid = 51\npriority = 100\ninterface = \"lo\"\n"
	var out, errb bytes.Buffer
	code := run([]string{"-t", "-config", writeFile(t, body)}, &out, &errb)
	if code != 0 || strings.TrimSpace(out.String()) != "configuration OK" {
		t.Fatalf("code=%d out=%q err=%q, want 0 and configuration OK", code, out.String(), errb.String())
	}
	if !strings.Contains(errb.String(), "warning: interface \"lbd-nosuch0\" (global.interface) does not exist on this host\n") {
		t.Errorf("no warning for the missing interface in:\n%s", errb.String())
	}
	if strings.Contains(errb.String(), `"lo"`) {
		t.Errorf("warning for lo, which exists:\n%s", errb.String())
	}
	k, err := balancer.Open()
	if err == nil {
		k.Close()
	}
	switch warned := strings.Contains(errb.String(), "warning: IPVS not available in this kernel: lbd does not start here with 1 virtual servers"); {
	case err == nil && warned:
		t.Errorf("IPVS warning on a kernel that has IPVS:\n%s", errb.String())
	case errors.Is(err, balancer.ErrUnavailable) && !warned:
		t.Errorf("no IPVS warning on a kernel without IPVS (%v):\n%s", err, errb.String())
	}
	for _, l := range strings.Split(strings.TrimSpace(errb.String()), "\n") {
		if !strings.HasPrefix(l, "warning: ") {
			t.Errorf("stderr line is not a warning: %q", l)
		}
	}
}
