package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"lbd/config"
)

func TestDefaultRouteInterface(t *testing.T) {
	route := "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
		"eth1\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n" +
		"eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
	if got := defaultRouteInterface(strings.NewReader(route)); got != "eth0" {
		t.Fatalf("default route interface %q, want eth0", got)
	}
	if got := defaultRouteInterface(strings.NewReader(route[:strings.Index(route, "eth0")])); got != "" {
		t.Fatalf("no default route: %q", got)
	}
}

// TestInit: the written file is a valid config with the VIP, the real
// servers, the host's interface and VRRP with a VRID in range; an existing
// configuration is never replaced, the package's comment-only placeholder
// is; without answers (no terminal) nothing is written.
func TestInit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "lbd.toml")
	host := hostFacts{Interface: "lo"}
	var out, errb bytes.Buffer
	if code := runInit([]string{"-config", path}, strings.NewReader(""), &out, &errb, host); code != 2 {
		t.Fatalf("without answers: exit %d", code)
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("written without answers")
	}
	os.WriteFile(path, []byte("# placeholder\n\n# only comments\n"), 0o600)
	if code := runInit([]string{"-config", path, "-vip", "192.0.2.80", "-real", "10.0.0.1, 10.0.0.2"}, strings.NewReader(""), &out, &errb, host); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	vs := c.VirtualServers[0]
	if c.Global.Interface != "lo" || vs.VIP != "192.0.2.80" || vs.Port != 80 || len(vs.RealServers) != 2 || vs.RealServers[1].Address != "10.0.0.2" || vs.HealthCheck.Type != "tcp" {
		t.Errorf("config: %+v %+v", c.Global, vs)
	}
	if c.VRRP == nil || c.VRRP.VRID < 1 || c.VRRP.VRID > 255 || c.VRRP.Priority != 150 {
		t.Errorf("vrrp: %+v", c.VRRP)
	}
	before, _ := os.ReadFile(path)
	errb.Reset()
	if code := runInit([]string{"-config", path, "-vip", "192.0.2.81", "-real", "10.0.0.3"}, strings.NewReader(""), &out, &errb, host); code != 1 || !strings.Contains(errb.String(), "not replaced") {
		t.Fatalf("overwrite: exit %d: %s", code, errb.String())
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("existing configuration changed")
	}
	p2 := filepath.Join(dir, "single.toml")
	if code := runInit([]string{"-config", p2, "-vip", "192.0.2.82", "-real", "10.0.0.4", "-no-vrrp", "-vrid", "7"}, strings.NewReader(""), &out, &errb, host); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if c, err := config.Load(p2); err != nil || c.VRRP != nil {
		t.Fatalf("-no-vrrp: %v %+v", err, c)
	}
	errb.Reset()
	if code := runInit([]string{"-config", filepath.Join(dir, "bad.toml"), "-vip", "not-an-ip", "-real", "10.0.0.4"}, strings.NewReader(""), &out, &errb, host); code != 1 || !strings.Contains(errb.String(), "not-an-ip") {
		t.Fatalf("bad vip: exit %d: %s", code, errb.String())
	}
}
