package config

import (
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// maximalBGP is maximal with [bgp] (every key set off its default)
// instead of [vrrp], which cannot be combined with it.
var maximalBGP = func() string {
	vrrp := regexp.MustCompile(`(?s)\n\[vrrp\].*?\n\[sync\]`)
	s := vrrp.ReplaceAllString(maximal, "\n[sync]")
	return strings.Replace(s, "\n[[virtual_server]]", `
[bgp]
local_asn = 4200000001
router_id = "10.9.0.4"
vips = ["10.9.0.1"]
communities = ["65001:100", "no-export"]
med = 0
local_pref = 200

[[bgp.neighbor]]
address = "10.9.0.254"
asn = 4200000001
port = 1179
hold_time = "9s"
connect_retry = "1m"
password = "s3cret \"q\""
bfd = true

[[bgp.neighbor]]
address = "2001:db8::fe"
asn = 65000

[[virtual_server]]`, 1)
}()

// bgpBase is a valid BGP-mode configuration (lines 1-16); tests append to
// it or replace parts of it.
const bgpBase = `[global]
interface = "eth0"
[bgp]
local_asn = 65001
router_id = "10.1.0.2"
[[bgp.neighbor]]
address = "10.1.0.1"
asn = 65000
[[virtual_server]]
name = "web"
vip = "192.0.2.10"
port = 80
[[virtual_server.real_server]]
name = "a"
address = "10.2.0.1"
[[virtual_server]]
`

func TestBGPDefaults(t *testing.T) {
	c := mustParse(t, bgpBase+"name = \"dns\"\nvip = \"192.0.2.10\"\nport = 53\nprotocol = \"udp\"\n")
	n := c.BGP.Neighbors[0]
	if n.Port != 179 || n.HoldTime.Duration != 90*time.Second || n.ConnectRetry.Duration != 5*time.Second || n.BFD || n.Password != "" {
		t.Errorf("neighbour defaults: %+v", n)
	}
	for _, vs := range c.VirtualServers {
		if vs.Scheduler != "mh" || !slices.Equal(vs.SchedulerFlags, []string{"mh-fallback", "mh-port"}) {
			t.Errorf("%s: scheduler %q flags %v, want mh with mh-fallback and mh-port in BGP mode", vs.Name, vs.Scheduler, vs.SchedulerFlags)
		}
	}
	if got := c.BGPVIPs(); !slices.Equal(got, []netip.Addr{netip.MustParseAddr("192.0.2.10")}) {
		t.Errorf("BGPVIPs = %v, want every virtual server's VIP once", got)
	}
	// Written flags are kept; without [bgp] the scheduler stays wlc.
	c = mustParse(t, bgpBase+"name = \"x\"\nvip = \"192.0.2.11\"\nport = 1\nscheduler_flags = [\"mh-port\"]\n")
	if f := c.VirtualServers[1].SchedulerFlags; !slices.Equal(f, []string{"mh-port"}) {
		t.Errorf("written flags replaced: %v", f)
	}
	c = mustParse(t, "[[virtual_server]]\nname = \"web\"\nvip = \"192.0.2.10\"\nport = 80\n")
	if vs := c.VirtualServers[0]; vs.Scheduler != "wlc" || len(vs.SchedulerFlags) != 0 {
		t.Errorf("without [bgp]: scheduler %q flags %v", vs.Scheduler, vs.SchedulerFlags)
	}
	if c.BGPVIPs() != nil {
		t.Error("BGPVIPs without [bgp] is not nil")
	}
	// The contract's minimal file round-trips and leaves the defaults out.
	c = mustParse(t, bgpBase+"name = \"dns\"\nvip = \"192.0.2.12\"\nport = 53\n")
	data := string(roundTrip(t, c))
	for _, s := range []string{"scheduler", "hold_time", "port = 179", "connect_retry"} {
		if strings.Contains(data, s) {
			t.Errorf("canonical form writes the default %q:\n%s", s, data)
		}
	}
}

func TestBGPValidation(t *testing.T) {
	rs := "name = \"dns\"\nvip = \"192.0.2.10\"\nport = 53\n"
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"with vrrp", bgpBase + rs + "[vrrp]\nvrid = 1\npriority = 100\n",
			[]string{`3: bgp: cannot be used with [vrrp]: with BGP every director holds the VIPs and the routers spread the flows (ECMP); with VRRP one master holds them. Keep one of the two`}},
		{"asn range", strings.Replace(bgpBase, "local_asn = 65001", "local_asn = 4294967296", 1) + rs,
			[]string{`4: bgp.local_asn: 4294967296 is out of range (0..4294967295)`}},
		{"asn zero and AS_TRANS", strings.NewReplacer("local_asn = 65001", "local_asn = 0", "asn = 65000", "asn = 23456").Replace(bgpBase) + rs,
			[]string{`4: bgp.local_asn: 0 is not an AS number (1..4294967295)`,
				`8: bgp.neighbor[0].asn: 23456 is AS_TRANS, which stands in for 4-byte AS numbers and belongs to nobody`}},
		{"missing", "[global]\n[bgp]\n[[bgp.neighbor]]\nport = 0\n" + bgpBase[strings.Index(bgpBase, "[[virtual_server]]"):] + rs,
			[]string{`2: bgp.local_asn: is required (an AS number, 1..4294967295)`,
				`2: bgp.router_id: is required when global.interface is not set (the default is that interface's first IPv4 address)`,
				`3: bgp.neighbor[0].address: is required (the router's address)`,
				`3: bgp.neighbor[0].asn: is required (the router's AS number)`,
				`4: bgp.neighbor[0].port: 0 is out of range (1..65535)`}},
		{"no neighbour", strings.Replace(bgpBase, "[[bgp.neighbor]]\naddress = \"10.1.0.1\"\nasn = 65000\n", "", 1) + rs,
			[]string{`3: bgp.neighbor: at least one [[bgp.neighbor]] is required (a router to announce the VIPs to)`}},
		{"router id", strings.Replace(bgpBase, `router_id = "10.1.0.2"`, `router_id = "2001:db8::1"`, 1) + rs,
			[]string{`5: bgp.router_id: "2001:db8::1": a router id is a non-zero IPv4 address`}},
		{"neighbour settings", strings.Replace(bgpBase, "asn = 65000\n", "asn = 65000\nhold_time = \"0s\"\nconnect_retry = \"1.5s\"\npassword = \""+strings.Repeat("p", 81)+"\"\n[[bgp.neighbor]]\naddress = \"10.1.0.1\"\nasn = 65002\nhold_time = \"2s\"\n[[bgp.neighbor]]\naddress = \"fe80::1\"\nasn = 65002\n", 1) + rs,
			[]string{`9: bgp.neighbor[0].hold_time: must be 3s..18h12m15s (lbd needs keepalives: 0 is not supported)`,
				`10: bgp.neighbor[0].connect_retry: 1.5s: must be whole seconds`,
				`11: bgp.neighbor[0].password: is 81 bytes long; TCP MD5 keys are at most 80`,
				`13: bgp.neighbor[1].address: neighbour 10.1.0.1 is listed twice (also neighbor[0])`,
				`15: bgp.neighbor[1].hold_time: 2s is out of range (3s..18h12m15s)`,
				`17: bgp.neighbor[2].address: fe80::1: link-local neighbours are not supported (use a global address)`}},
		{"vips", strings.Replace(bgpBase, "[[bgp.neighbor]]", "vips = [\"192.0.2.10\", \"192.0.2.99\", \"192.0.2.10\", \"x\"]\ncommunities = [\"65001:100\", \"65536:1\", \"blackhole\"]\nlocal_pref = 100\n[[bgp.neighbor]]", 1) + rs,
			[]string{`6: bgp.vips[1]: 192.0.2.99 is not the vip of any virtual_server (bgp announces only addresses this director balances)`,
				`6: bgp.vips[2]: 192.0.2.10 is listed twice (also vips[0])`,
				`6: bgp.vips[3]: "x" is not an IP address`,
				`7: bgp.communities[1]: "65536:1" is not a community: both parts are numbers 0..65535`,
				`7: bgp.communities[2]: "blackhole" is not a community ("65001:100", no-export, no-advertise or no-export-subconfed)`,
				`8: bgp.local_pref: is only sent to iBGP neighbours (asn = local_asn) and no neighbour is one; leave it out or use med`}},
		{"family without neighbour", bgpBase + "name = \"v6\"\nvip = \"2001:db8::10\"\nport = 80\n",
			[]string{`6: bgp.neighbor: VIP 2001:db8::10 is IPv6 but every neighbour is IPv4: it would never be announced (add an IPv6 neighbour, or list the VIPs to announce in bgp.vips)`}},
		{"scheduler", bgpBase + rs + "scheduler = \"wlc\"\n",
			[]string{`20: virtual_server "dns": scheduler: "wlc" cannot be used with [bgp]: every director behind ECMP must send a flow to the same real server, which only mh (consistent hashing) does; leave scheduler out (mh with mh-fallback and mh-port) or write "mh"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, tt.src, tt.want) })
	}
	// Listing only the IPv4 VIPs is the way out of the family problem;
	// iBGP makes local_pref useful.
	ok := strings.NewReplacer("[[bgp.neighbor]]", "vips = [\"192.0.2.10\"]\nlocal_pref = 200\n[[bgp.neighbor]]", "asn = 65000", "asn = 65001").Replace(bgpBase) +
		"name = \"v6\"\nvip = \"2001:db8::10\"\nport = 80\n"
	checkProblems(t, ok, nil)
}

func TestParseCommunity(t *testing.T) {
	for s, want := range map[string]uint32{"65001:100": 65001<<16 | 100, "0:0": 0, "65535:65535": 0xFFFFFFFF, "no-export": 0xFFFFFF01, "no-advertise": 0xFFFFFF02} {
		if got, err := ParseCommunity(s); err != nil || got != want {
			t.Errorf("ParseCommunity(%q) = %#x, %v; want %#x", s, got, err, want)
		}
	}
	for _, s := range []string{"", "1", "1:", ":1", "-1:1", "1:2:3", "65536:0", "a:b", "NO-EXPORT"} {
		if _, err := ParseCommunity(s); err == nil {
			t.Errorf("ParseCommunity(%q) accepted", s)
		}
	}
}

// bgp.toml shows the contract's shape: [bgp] with two neighbours, mh by
// default.
func TestExampleBGPToml(t *testing.T) {
	c, err := Load(configsDir(t) + "/bgp.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.BGP == nil || c.VRRP != nil || len(c.BGP.Neighbors) != 2 || len(c.VirtualServers) == 0 {
		t.Fatalf("bgp.toml: bgp %+v, vrrp %v, %d virtual servers", c.BGP, c.VRRP != nil, len(c.VirtualServers))
	}
	if vs := c.VirtualServers[0]; vs.Scheduler != "mh" {
		t.Errorf("bgp.toml: scheduler %q", vs.Scheduler)
	}
}
