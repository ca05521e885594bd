//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdUnit checks configs/lbd.service with systemd-analyze verify,
// the unit's paths pointed at this test binary (the daemon's stand-in):
// any message (an unknown key, a bad value, a missing program) fails, since
// verify only warns about most of them. It also holds the promises the
// README makes about the unit.
func TestSystemdUnit(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("systemd-analyze missing (apt package systemd; make deps installs it)")
		}
		t.Skip("systemd-analyze missing")
	}
	unit, err := os.ReadFile("../../configs/lbd.service")
	if err != nil {
		t.Fatal(err)
	}
	text := string(unit)
	for _, want := range []string{"Type=notify", "WatchdogSec=", "ExecReload=/usr/sbin/lbd -t -config /etc/lbd/lbd.toml\nExecReload=/bin/kill -HUP $MAINPID",
		"CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE\n", "ProtectSystem=strict", "ReadWritePaths=/etc/lbd"} {
		if !strings.Contains(text, want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	lbd := filepath.Join(dir, "lbd")
	if err := os.Symlink(self, lbd); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "lbd.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(text, "/usr/sbin/lbd", lbd)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", "--man=no", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
