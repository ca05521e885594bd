package config

import (
	"reflect"
	"slices"
	"testing"
)

func TestFind(t *testing.T) {
	c := mustParse(t, vs+rs+"[[virtual_server.real_server]]\nname = \"rs2\"\naddress = \"10.0.1.2\"\n")
	web := c.FindVirtualServer("web")
	if web != &c.VirtualServers[0] {
		t.Fatalf("FindVirtualServer(web) = %p, want a pointer into the config", web)
	}
	if c.FindVirtualServer("nope") != nil {
		t.Error("found a virtual server that does not exist")
	}
	if r := web.FindRealServer("rs2"); r != &web.RealServers[1] {
		t.Errorf("FindRealServer(rs2) = %+v", r)
	}
	if web.FindRealServer("rs3") != nil {
		t.Error("found a real server that does not exist")
	}
}

func TestSuggest(t *testing.T) {
	cands := []string{"web", "web6", "dns", "shop", "rs1", "scheduler", "persistence_netmask"}
	for _, tt := range []struct{ in, want string }{
		{"rs9", "rs1"},
		{"Web", "web"},
		{"web66", "web6"},
		{"sheduler", "scheduler"},
		{"wbe", "web"},
		{"shceduler", "scheduler"},
		{"persistance_netmask", "persistence_netmask"},
		{"xyz", ""},
		{"mail", ""},
		{"", ""},
	} {
		if got := Suggest(tt.in, cands); got != tt.want {
			t.Errorf("Suggest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := Suggest("a", nil); got != "" {
		t.Errorf("Suggest with no candidates = %q", got)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"a", "", 1}, {"kitten", "sitting", 3}, {"héllo", "hello", 1}, {"abc", "abc", 0}} {
		if d := editDistance(tt.a, tt.b); d != tt.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, d, tt.d)
		}
	}
}

func TestClone(t *testing.T) {
	c := mustParse(t, maximal)
	cp := c.Clone()
	if !reflect.DeepEqual(c, cp) {
		t.Fatal("clone differs")
	}
	// Change everything reachable in the clone; the original must not move.
	before, _ := Encode(c)
	vs0 := &cp.VirtualServers[0]
	*vs0.Active = !*vs0.Active
	*vs0.RealServers[0].Weight = 77
	vs0.RealServers[0].Name = "changed"
	vs0.HealthCheck.ExpectStatus[0] = "500"
	vs0.SchedulerFlags[0] = "x"
	*vs0.HealthCheck.TLSVerify = false
	cp.VRRP.VIPs[0] = "10.1.1.1"
	cp.VRRP.TrackInterfaces[0].Name = "zz"
	*cp.VRRP.Preempt = true
	cp.Console.TokenHashes[0] = "0"
	cp.Global.NodeName = "other"
	after, _ := Encode(c)
	if string(before) != string(after) {
		t.Errorf("changing the clone changed the original")
	}
	var nilConfig *Config
	if nilConfig.Clone() != nil {
		t.Error("nil.Clone() != nil")
	}
}

func TestVIPs(t *testing.T) {
	c := mustParse(t, vs+"[[virtual_server]]\nname = \"b\"\nvip = \"10.0.0.1\"\nport = 443\n"+
		"[[virtual_server]]\nname = \"c\"\nvip = \"2001:db8::1\"\nport = 443\n"+
		"[[virtual_server]]\nname = \"d\"\nvip = \"2001:DB8:0::1\"\nport = 80\n"+
		"[[virtual_server]]\nname = \"m\"\nfwmark = 1\n")
	if got := c.VIPs(); !slices.Equal(got, []string{"10.0.0.1", "2001:db8::1"}) {
		t.Errorf("VIPs from services = %v", got)
	}
	c = mustParse(t, "[vrrp]\ninterface = \"eth0\"\nvrid = 1\npriority = 1\nvips = [\"10.0.0.9/24\", \"10.0.0.8\", \"10.0.0.9/24\"]\n"+vs)
	if got := c.VIPs(); !slices.Equal(got, []string{"10.0.0.9/24", "10.0.0.8"}) {
		t.Errorf("VIPs from vrrp.vips = %v", got)
	}
	if got := (&Config{}).VIPs(); len(got) != 0 {
		t.Errorf("VIPs of empty config = %v", got)
	}
}

func TestProblemString(t *testing.T) {
	p := Problem{File: "/etc/lbd.toml", Line: 7, Key: "vrrp.vrid", Message: "vrrp.vrid: 0 is out of range (1..255)"}
	if s := p.String(); s != "/etc/lbd.toml:7: vrrp.vrid: 0 is out of range (1..255)" {
		t.Errorf("String() = %q", s)
	}
	p.Line = 0
	if s := p.String(); s != "/etc/lbd.toml: vrrp.vrid: 0 is out of range (1..255)" {
		t.Errorf("String() without line = %q", s)
	}
	ps := Problems{p, p}
	if ps.Error() != p.String()+"\n"+p.String() {
		t.Errorf("Error() = %q", ps.Error())
	}
}
