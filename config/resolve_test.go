package config

import (
	"reflect"
	"testing"
	"time"
)

// Resolving a parsed config changes nothing; every example file and the
// maximal configs are parsed configs.
func TestResolveParsedIsIdentity(t *testing.T) {
	var cs []*Config
	for _, src := range []string{maximal, maximalGroup6} {
		cs = append(cs, mustParse(t, src))
	}
	for _, f := range exampleFiles(t) {
		c, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	for _, c := range cs {
		r, err := Resolve(c)
		if err != nil {
			t.Fatalf("%s: %v", c.Path, err)
		}
		if !reflect.DeepEqual(c, r) {
			t.Errorf("%s: Resolve changed a parsed config at %s", c.Path, firstDiff(reflect.ValueOf(c), reflect.ValueOf(r), "config"))
		}
	}
}

// A config built in code gets exactly the defaults a file that leaves the
// same settings out gets, and Resolve checks nothing against the system
// (a notify program that does not exist is Parse's and Normalize's
// business).
func TestResolveFillsWhatParseFills(t *testing.T) {
	built := &Config{
		// RemoveGrace, GARPCount and Quorum: zero is a setting.
		Global: Global{NodeName: "lb1", Interface: "eth0", RemoveGrace: Duration{5 * time.Minute}},
		VRRP:   &VRRP{VRID: 7, Priority: 100, GARPCount: 5, Notify: []string{"/nonexistent/notify"}},
		VirtualServers: []VirtualServer{{
			Name: "web", VIP: "192.0.2.10", Port: 80, Quorum: 1,
			HealthCheck: &HealthCheck{Type: "http"},
			RealServers: []RealServer{{Name: "rs1", Address: "10.0.0.1"}},
		}},
	}
	got, err := Resolve(built)
	if err != nil {
		t.Fatal(err)
	}
	want := mustParse(t, `
[global]
node_name = "lb1"
interface = "eth0"
[vrrp]
vrid = 7
priority = 100
[[virtual_server]]
name = "web"
vip = "192.0.2.10"
port = 80
[virtual_server.health_check]
type = "http"
[[virtual_server.real_server]]
name = "rs1"
address = "10.0.0.1"
`)
	want.VRRP.Notify = []string{"/nonexistent/notify"}
	got.Path = want.Path
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Resolve differs from Parse at %s", firstDiff(reflect.ValueOf(got), reflect.ValueOf(want), "config"))
	}
	if _, _, err := Normalize(built); err == nil {
		t.Error("Normalize accepted a notify program that does not exist")
	}
}
