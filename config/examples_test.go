package config

import (
	"path/filepath"
	"runtime"
	"testing"
)

// configsDir finds the repository's configs/ directory from this source
// file, so the test works from any working directory.
func configsDir(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source")
	}
	return filepath.Join(filepath.Dir(file), "..", "configs")
}

func exampleFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(configsDir(t), "*.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("found %d example files in %s, want lbd.toml and vrrp-only.toml at least", len(files), configsDir(t))
	}
	return files
}

// Every shipped example parses cleanly and survives a canonical rewrite.
func TestExampleConfigs(t *testing.T) {
	for _, f := range exampleFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := Load(f)
			if err != nil {
				t.Fatalf("example does not parse:\n%v", err)
			}
			roundTrip(t, c)
		})
	}
}

// The main example shows what it says it shows.
func TestExampleLbdToml(t *testing.T) {
	c, err := Load(filepath.Join(configsDir(t), "lbd.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.VRRP == nil || len(c.VRRP.TrackInterfaces) == 0 {
		t.Error("no [vrrp] block with track_interface")
	}
	if s, on := c.SyncSettings(); !on || c.VRRP != nil && s.Interface == c.VRRP.Interface {
		t.Errorf("no [sync] on its own interface: %+v, %v", s, on)
	}
	var dr, udp, fwmark, v6 bool
	for _, vs := range c.VirtualServers {
		dr = dr || vs.Forwarding == "dr" && vs.HealthCheck != nil && vs.HealthCheck.Type == "http"
		udp = udp || vs.Protocol == "udp"
		fwmark = fwmark || vs.Fwmark != 0
		v6 = v6 || vs.Family == "inet6" && vs.VIP != ""
	}
	if !dr || !udp || !fwmark || !v6 {
		t.Errorf("example lacks a service: dr+http %v, udp %v, fwmark %v, ipv6 %v", dr, udp, fwmark, v6)
	}
	c, err = Load(filepath.Join(configsDir(t), "vrrp-only.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.VRRP == nil || len(c.VirtualServers) != 0 {
		t.Errorf("vrrp-only.toml: vrrp %v, %d virtual servers", c.VRRP != nil, len(c.VirtualServers))
	}
	if _, on := c.SyncSettings(); on {
		t.Error("vrrp-only.toml: connection sync on with nothing to sync")
	}
}

// services.toml shows web, DNS and mail: the common DNS shape (one VIP on
// UDP and TCP port 53, both with dns checks, the udp one removing failed
// real servers), HTTP and HTTPS checks on the web VIP and an smtp check with
// STARTTLS on the mail one.
func TestExampleServicesToml(t *testing.T) {
	c, err := Load(filepath.Join(configsDir(t), "services.toml"))
	if err != nil {
		t.Fatal(err)
	}
	protos := map[string]VirtualServer{}
	for _, vs := range c.VirtualServers {
		if vs.Port == 53 && vs.HealthCheck != nil && vs.HealthCheck.Type == "dns" {
			protos[vs.Protocol] = vs
		}
	}
	u, t2 := protos["udp"], protos["tcp"]
	if u.VIP == "" || u.VIP != t2.VIP {
		t.Fatalf("no udp and tcp pair on one VIP port 53 with dns checks: %+v", protos)
	}
	if u.OnFailure != "remove" || t2.OnFailure != "quiesce" {
		t.Errorf("on_failure udp %q, tcp %q; want remove and quiesce", u.OnFailure, t2.OnFailure)
	}
	if c.Global.UDPTimeout.Duration == 0 {
		t.Error("services.toml does not show udp_timeout")
	}
	checks := map[string]bool{}
	for _, vs := range c.VirtualServers {
		if vs.HealthCheck != nil {
			checks[vs.HealthCheck.Type] = true
			if vs.HealthCheck.Type == "smtp" && (vs.Port != 25 || !vs.HealthCheck.StartTLS) {
				t.Errorf("mail service %q: want port 25 with starttls", vs.Name)
			}
		}
	}
	for _, want := range []string{"dns", "http", "https", "smtp"} {
		if !checks[want] {
			t.Errorf("services.toml has no %s check (has %v)", want, checks)
		}
	}
}

// The active-active example pair is crossed: the same instances and VIPs
// on both, each director with the higher priority for a different one.
func TestExampleActiveActive(t *testing.T) {
	a, err := Load(filepath.Join(configsDir(t), "active-active-lvs1.toml"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load(filepath.Join(configsDir(t), "active-active-lvs2.toml"))
	if err != nil {
		t.Fatal(err)
	}
	ia, ib := a.Instances(), b.Instances()
	if len(ia) < 2 || len(ia) != len(ib) {
		t.Fatalf("instances: %d and %d, want the same two or more", len(ia), len(ib))
	}
	masters := map[string]string{}
	for i := range ia {
		x, y := ia[i], ib[i]
		if x.Name != y.Name || x.VRID != y.VRID || len(x.VIPs) == 0 || x.VIPs[0] != y.VIPs[0] {
			t.Errorf("instance %d differs beyond priority: %+v / %+v", i, x, y)
		}
		switch {
		case x.Priority > y.Priority:
			masters[x.Name] = "lvs1"
		case y.Priority > x.Priority:
			masters[x.Name] = "lvs2"
		default:
			t.Errorf("instance %s: equal priorities", x.Name)
		}
	}
	if n := len(masters); n < 2 || masters[ia[0].Name] == masters[ia[1].Name] {
		t.Errorf("not crossed: masters %v", masters)
	}
}
