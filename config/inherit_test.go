package config

import (
	"reflect"
	"strings"
	"testing"
)

const inheritBase = `[global]
node_name = "a"
interface = "eth0"

[vrrp]
vrid = 51
priority = 100

[[virtual_server]]
name = "web"
vip = "192.0.2.10"
port = 80
real_server = [
  {name = "rs1", address = "10.0.0.1"},
  {name = "rs2", address = "10.0.0.2", port = 81, forwarding = "nat"},
]

[[virtual_server]]
name = "api"
vip = "192.0.2.11"
port = 443
forwarding = "tun"
quorum = 0
`

// An edit in memory followed by Inherit gives the config the same edit made
// by hand to the file gives: inherited settings follow their parent,
// written ones stay.
func TestInheritAsHandEdit(t *testing.T) {
	for _, tc := range []struct {
		name     string
		edit     func(*Config)
		old, new string // the same edit to the file
	}{
		{"global forwarding and interface",
			func(c *Config) { c.Global.Forwarding, c.Global.Interface = "nat", "eth1" },
			`interface = "eth0"`, "interface = \"eth1\"\nforwarding = \"nat\""},
		{"service port",
			func(c *Config) { c.VirtualServers[0].Port = 8080 },
			"port = 80\n", "port = 8080\n"},
		{"service VIP becomes IPv6",
			func(c *Config) { c.VirtualServers[1].VIP = "2001:db8::11" },
			`vip = "192.0.2.11"`, `vip = "2001:db8::11"`},
		{"vrid",
			func(c *Config) { c.VRRP.VRID = 60 },
			"vrid = 51", "vrid = 60"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, err := Parse("lbd.toml", []byte(inheritBase))
			if err != nil {
				t.Fatal(err)
			}
			after := before.Clone()
			tc.edit(after)
			Inherit(before, after)
			got, _, err := Normalize(after)
			if err != nil {
				t.Fatal(err)
			}
			want, err := Parse("lbd.toml", []byte(strings.Replace(inheritBase, tc.old, tc.new, 1)))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				ge, _ := Encode(got)
				we, _ := Encode(want)
				t.Fatalf("after Inherit:\n%s\nhand edit:\n%s", ge, we)
			}
		})
	}
}

func TestInheritKeepsWrittenAndChanged(t *testing.T) {
	before, err := Parse("lbd.toml", []byte(inheritBase))
	if err != nil {
		t.Fatal(err)
	}
	after := before.Clone()
	after.Global.Forwarding = "tun"
	after.VirtualServers[0].Port = 8080
	// A child the edit changes keeps its new value.
	after.VirtualServers[0].RealServers[0].Forwarding = "nat"
	Inherit(before, after)
	c, _, err := Normalize(after)
	if err != nil {
		t.Fatal(err)
	}
	web, api := c.VirtualServers[0], c.VirtualServers[1]
	if web.Forwarding != "tun" || web.RealServers[1].Forwarding != "nat" || web.RealServers[0].Port != 8080 || web.RealServers[1].Port != 81 {
		t.Fatalf("web %+v", web)
	}
	if web.RealServers[0].Forwarding != "nat" {
		t.Fatalf("a value the edit set was replaced: %q", web.RealServers[0].Forwarding)
	}
	// A zero that is a setting stays, and a default whose zero is a
	// setting is not turned into that zero.
	if api.Forwarding != "tun" || api.Quorum != 0 || web.Quorum != 1 {
		t.Fatalf("api forwarding %q quorum %d, web quorum %d", api.Forwarding, api.Quorum, web.Quorum)
	}
}

// Settings named as unset get their default, also where zero is a setting
// and in objects the edit added.
func TestInheritUnset(t *testing.T) {
	before, err := Parse("lbd.toml", []byte(inheritBase))
	if err != nil {
		t.Fatal(err)
	}
	after := before.Clone()
	after.Global.RemoveGrace.Duration = 0
	after.VirtualServers = append(after.VirtualServers, VirtualServer{Name: "new", VIP: "192.0.2.12", Port: 25})
	Inherit(before, after, "global.remove_grace", "virtual_server[2].quorum", "virtual_server[1].quorum")
	c, _, err := Normalize(after)
	if err != nil {
		t.Fatal(err)
	}
	if c.Global.RemoveGrace.Duration != defaultRemoveGrace || c.VirtualServers[2].Quorum != 1 || c.VirtualServers[1].Quorum != 1 {
		t.Fatalf("remove_grace %v, quorums %d %d", c.Global.RemoveGrace, c.VirtualServers[1].Quorum, c.VirtualServers[2].Quorum)
	}
}
