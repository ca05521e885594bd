package config

import (
	"strings"
	"testing"
)

// inst is a [[vrrp_instance]] block (4 lines with vips, 3 without).
func inst(name string, vrid int, vips ...string) string {
	s := "[[vrrp_instance]]\nname = \"" + name + "\"\nvrid = " + itoaT(vrid) + "\npriority = 100\n"
	if len(vips) > 0 {
		s += "vips = [\"" + strings.Join(vips, "\", \"") + "\"]\n"
	}
	return s
}

func itoaT(n int) string { return fmtInt(n) }

func fmtInt(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return fmtInt(n/10) + string(rune('0'+n%10))
}

const global = "[global]\ninterface = \"eth0\"\n"

func TestVRRPInstancesValid(t *testing.T) {
	src := global + inst("a", 51, "10.0.0.1") + inst("b", 52, "10.0.0.2/24") +
		"[[vrrp_sync_group]]\nname = \"g\"\ninstances = [\"a\", \"b\"]\n" +
		vs + "[[virtual_server]]\nname = \"web2\"\nvip = \"10.0.0.2\"\nport = 80\n"
	c, err := Parse("t.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	in := c.Instances()
	if len(in) != 2 || in[0].Name != "a" || in[1].Interface != "eth0" || *in[1].Preempt != true {
		t.Fatalf("instances not defaulted: %+v", c.VRRPInstances)
	}
	if got := c.InstanceVIPs(in[1]); len(got) != 1 || got[0] != "10.0.0.2/24" {
		t.Errorf("InstanceVIPs(b) = %v", got)
	}
	if c.SyncGroupOf("b") != "g" || c.SyncGroupOf("x") != "" {
		t.Errorf("SyncGroupOf wrong")
	}
	s, on := c.SyncSettings()
	if !on || s.ID != 51 || s.Interface != "eth0" {
		t.Errorf("sync not on by default from the first instance: %+v %v", s, on)
	}
	roundTrip(t, c)
	// A lone instance without vips owns every VIP, as [vrrp] does.
	c, err = Parse("t.toml", []byte(global+inst("a", 51)+vs))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.InstanceVIPs(c.Instances()[0]); len(got) != 1 || got[0] != "10.0.0.1" {
		t.Errorf("lone instance VIPs = %v", got)
	}
}

func TestVRRPInstancesRules(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		want []string
	}{
		{"both shapes", global + "[vrrp]\nvrid = 1\npriority = 1\n" + inst("a", 51),
			[]string{`6: vrrp_instance "a": [vrrp] and [[vrrp_instance]] cannot be used together: write every instance as [[vrrp_instance]] with a name`}},
		{"name required", global + "[[vrrp_instance]]\nvrid = 3\npriority = 5\n",
			[]string{`3: vrrp_instance[0]: name: is required`}},
		{"duplicate name", global + inst("a", 51, "10.0.0.5") + inst("a", 52, "10.0.0.6"),
			[]string{`9: vrrp_instance[1] "a": name: duplicate instance name "a" (also vrrp_instance[0])`}},
		{"duplicate vrid", global + inst("a", 51, "10.0.0.5") + inst("b", 51, "10.0.0.6"),
			[]string{`10: vrrp_instance "b": vrid: vrid 51 is already used on eth0 (IPv4) by instance "a": a VRID is unique per interface and address family`}},
		{"same vrid other family", global + inst("a", 51, "10.0.0.5") + inst("b", 51, "2001:db8::5"), nil},
		{"shared vip", global + inst("a", 51, "10.0.0.5") + inst("b", 52, "10.0.0.5/24"),
			[]string{`12: vrrp_instance "b": vips[0]: VIP 10.0.0.5 is already owned by instance "a": a VIP belongs to one instance`}},
		{"empty vips with others", global + inst("a", 51) + inst("b", 52, "10.0.0.5") + vs,
			[]string{`3: vrrp_instance "a": vips: vips is required with several instances (an instance without vips owns every VIP; only a lone instance may); not owned by any instance: 10.0.0.1`}},
		{"uncovered vip", global + inst("a", 51, "10.0.0.5") + vs,
			[]string{`3: vrrp_instance "a": no instance owns the VIP of every virtual server: add 10.0.0.1 to the vips of an instance`}},
		{"group member unknown and twice", global + inst("a", 51, "10.0.0.1") + inst("b", 52, "10.0.0.2") +
			"[[vrrp_sync_group]]\nname = \"g\"\ninstances = [\"a\", \"zz\"]\n[[vrrp_sync_group]]\nname = \"h\"\ninstances = [\"a\"]\n",
			[]string{
				`15: vrrp_sync_group "g": instances[1]: no vrrp_instance is named "zz"`,
				`18: vrrp_sync_group "h": instances[0]: instance "a" is already in sync group "g": an instance is in at most one group`,
			}},
		{"group without instances", global + "[vrrp]\nvrid = 1\npriority = 1\n[[vrrp_sync_group]]\nname = \"g\"\ninstances = [\"a\"]\n",
			[]string{`6: vrrp_sync_group "g": needs [[vrrp_instance]] tables (a sync group joins named instances)`}},
		{"instance keys checked", global + "[[vrrp_instance]]\nname = \"a\"\nvrid = 300\npriority = 100\n",
			[]string{`5: vrrp_instance "a": vrid: 300 is out of range (1..255)`}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkProblems(t, tc.src, tc.want) })
	}
}
