package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// problemsOf parses src as t.toml and returns every problem as
// "LINE: message" (file name left out to keep the tables short).
func problemsOf(t *testing.T, src string) []string {
	t.Helper()
	_, err := Parse("t.toml", []byte(src))
	if err == nil {
		return nil
	}
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Parse error is %T, not Problems: %v", err, err)
	}
	var out []string
	for _, p := range ps {
		if p.File != "t.toml" {
			t.Errorf("problem %v: file %q, want t.toml", p, p.File)
		}
		out = append(out, strings.TrimPrefix(p.String(), "t.toml:"))
	}
	return out
}

func checkProblems(t *testing.T, src string, want []string) {
	t.Helper()
	got := problemsOf(t, src)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems of\n%s\ngot:\n  %s\nwant:\n  %s", numbered(src), strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func numbered(src string) string {
	var b strings.Builder
	for i, l := range strings.Split(src, "\n") {
		fmt.Fprintf(&b, "%3d| %s\n", i+1, l)
	}
	return b.String()
}

// vs is a valid virtual server header block (lines 1-4).
const vs = `[[virtual_server]]
name = "web"
vip = "10.0.0.1"
port = 80
`

// syncVRRP is a valid [vrrp] block (lines 1-4); a [sync] header after it
// is line 5 and its first key line 6.
const syncVRRP = `[vrrp]
interface = "eth0"
vrid = 7
priority = 100
`

// rs is a valid real server block for vs (3 lines).
const rs = `[[virtual_server.real_server]]
name = "rs1"
address = "10.0.1.1"
`

func TestValidationRules(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		// [global]
		{"listen not host:port", "[global]\nlisten = \"x\"\n",
			[]string{`2: global.listen: "x" is not host:port (for example ":3636" or "127.0.0.1:3636")`}},
		{"listen port 0", "[global]\nlisten = \":0\"\n",
			[]string{`2: global.listen: ":0": port must be 1..65535`}},
		{"global forwarding", "[global]\nforwarding = \"dsr\"\n",
			[]string{`2: global.forwarding: unknown forwarding method "dsr" (valid: dr, nat, tun)`}},
		{"resync too short", "[global]\n\nresync_interval = \"500ms\"\n",
			[]string{`3: global.resync_interval: 500ms is too short (at least 1s)`}},
		{"empty node name", "[global]\nnode_name = \"\"\n",
			[]string{`2: global.node_name: must not be empty (leave it out to use the host name)`}},
		{"interface name too long", "[global]\ninterface = \"averyveryverylongname\"\n",
			[]string{`2: global.interface: "averyveryverylongname" is not a valid interface name (1 to 15 bytes, no '/', ':' or whitespace)`}},
		{"negative remove grace", "[global]\nremove_grace = \"-1s\"\n",
			[]string{`2: global.remove_grace: must not be negative`}},
		{"conn timeouts", "[global]\ntcp_timeout = \"1.5s\"\ntcpfin_timeout = \"-1s\"\nudp_timeout = \"999h\"\n",
			[]string{`2: global.tcp_timeout: 1.5s: must be whole seconds (the kernel counts seconds)`,
				`3: global.tcpfin_timeout: must not be negative (0 or unset keeps the kernel's)`,
				`4: global.udp_timeout: 999h0m0s is too long (at most 596h31m23s)`}},

		// health_check.through_vip
		{"through_vip on nat", vs + "forwarding = \"nat\"\n[virtual_server.health_check]\ntype = \"tcp\"\nthrough_vip = true\n",
			[]string{`8: virtual_server "web": health_check.through_vip: needs a dr or tun service with vip and port, checked at the real servers (no address) by a type other than exec`}},
		{"through_vip with exec", vs + "[virtual_server.health_check]\ntype = \"exec\"\ncommand = [\"/bin/true\"]\nthrough_vip = true\n",
			[]string{`8: virtual_server "web": health_check.through_vip: needs a dr or tun service with vip and port, checked at the real servers (no address) by a type other than exec`}},
		{"fwmark in lbd's range", "[[virtual_server]]\nname = \"m\"\nfwmark = 1279393793\n",
			[]string{`3: virtual_server "m": fwmark: 0x4c420001 is in lbd's own range 0x4c420000..0x4c42ffff (through-VIP checks)`}},

		// [console]
		{"token hash", "[console]\ntoken_hashes = [\n  \"abc\",\n]\n",
			[]string{"3: console.token_hashes[0]: is not a SHA-256 hex digest (create tokens with `lbd token`)"}},
		{"read token hash", "[console]\nread_token_hashes = [\"abc\"]\n",
			[]string{"2: console.read_token_hashes[0]: is not a SHA-256 hex digest (create tokens with `lbd token`)"}},
		{"token in both scopes", "[console]\ntoken_hashes = [\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"]\nread_token_hashes = [\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"]\n",
			[]string{"3: console.read_token_hashes[0]: is also in token_hashes: a token has one scope (remove it from one list)"}},
		{"tls cert missing", "[console]\ntls_cert = \"testdata/missing.crt\"\ntls_key = \"testdata/console.key\"\n",
			[]string{`2: console.tls_cert: tls_cert "testdata/missing.crt" and tls_key "testdata/console.key" do not load as a certificate and its key (testdata/missing.crt does not exist); the console would not start with them`}},
		{"tls key missing", "[console]\ntls_cert = \"testdata/console.crt\"\ntls_key = \"testdata/missing.key\"\n",
			[]string{`3: console.tls_key: tls_cert "testdata/console.crt" and tls_key "testdata/missing.key" do not load as a certificate and its key (testdata/missing.key does not exist); the console would not start with them`}},
		{"tls key of another certificate", "[console]\ntls_cert = \"testdata/console.crt\"\ntls_key = \"testdata/other.key\"\n",
			[]string{`2: console.tls_cert: tls_cert "testdata/console.crt" and tls_key "testdata/other.key" do not load as a certificate and its key (tls: private key does not match public key); the console would not start with them`}},
		{"tls files swapped", "[console]\ntls_cert = \"testdata/console.key\"\ntls_key = \"testdata/console.crt\"\n",
			[]string{`2: console.tls_cert: tls_cert "testdata/console.key" and tls_key "testdata/console.crt" do not load as a certificate and its key (tls: failed to find certificate PEM data in certificate input, but did find a private key; PEM inputs may have been switched); the console would not start with them`}},
		{"tls cert without key", "[console]\n\ntls_cert = \"/c\"\n",
			[]string{`1: console.tls_key: is required with tls_cert`}},
		{"tls key without cert", "[console]\ntls_key = \"/k\"\n",
			[]string{`1: console.tls_cert: is required with tls_key`}},
		{"password hash", "[console]\npassword_hash = \"hunter2\"\n",
			[]string{"2: console.password_hash: is not a bcrypt hash (set it with `lbd passwd`)"}},
		{"session timeout", "[console]\nsession_timeout = \"0s\"\n",
			[]string{`2: console.session_timeout: must be positive`}},

		// [vrrp]
		{"vrrp missing vrid and priority", "[global]\ninterface = \"eth0\"\n\n[vrrp]\n",
			[]string{
				`4: vrrp.vrid: is required (1..255, the same on both directors)`,
				`4: vrrp.priority: is required (1..255, the higher becomes master)`,
			}},
		{"vrid range", "[vrrp]\ninterface = \"eth0\"\nvrid = 300\npriority = 0\n",
			[]string{`3: vrrp.vrid: 300 is out of range (1..255)`, `4: vrrp.priority: 0 is out of range (1..255)`}},
		{"vrrp version", "[vrrp]\ninterface = \"eth0\"\nvrid = 1\npriority = 100\nversion = 4\n",
			[]string{`5: vrrp.version: must be 2 or 3, not 4`}},
		{"v3 advert not 10ms step", "[vrrp]\ninterface = \"eth0\"\nvrid = 1\npriority = 100\nadvert_interval = \"15ms\"\n",
			[]string{`5: vrrp.advert_interval: 15ms: VRRPv3 needs 10ms..40.95s in steps of 10ms`}},
		{"v3 advert too long", "[vrrp]\ninterface = \"eth0\"\nvrid = 1\npriority = 100\nadvert_interval = \"41s\"\n",
			[]string{`5: vrrp.advert_interval: 41s: VRRPv3 needs 10ms..40.95s in steps of 10ms`}},
		{"v3 advert max ok", "[vrrp]\ninterface = \"eth0\"\nvrid = 1\npriority = 100\nadvert_interval = \"40.95s\"\n", nil},
		{"v2 advert whole seconds", "[vrrp]\ninterface = \"eth0\"\nvrid = 1\npriority = 100\nversion = 2\nadvert_interval = \"1500ms\"\n",
			[]string{`6: vrrp.advert_interval: 1.5s: VRRPv2 needs whole seconds from 1s to 255s`}},
		{"vrrp interface required", "[vrrp]\nvrid = 1\npriority = 100\n",
			[]string{`1: vrrp.interface: is required (set vrrp.interface or global.interface)`}},
		{"vrrp interface from global", "[global]\ninterface = \"eth0\"\n[vrrp]\nvrid = 1\npriority = 100\n", nil},
		{"vrrp vips", "[vrrp]\ninterface = \"eth0\"\nvrid = 1\npriority = 100\nvips = [\"10.0.0.1/24\",\n  \"10.0.0.300\",\n  \"10.0.0.1/33\", \"::ffff:10.0.0.1\"]\n",
			[]string{
				`6: vrrp.vips[1]: "10.0.0.300" is not an IP address`,
				`7: vrrp.vips[2]: "10.0.0.1/33" is not an IP address or address/prefix`,
				`7: vrrp.vips[3]: "::ffff:10.0.0.1": write IPv4 addresses as IPv4 (10.0.0.1)`,
			}},
		{"unicast peers and source", "[vrrp]\ninterface = \"eth0\"\nvrid = 1\npriority = 100\nunicast_peers = [\"10.0.0.2\", \"peer\"]\nunicast_source = \"fe80::1%eth0\"\n",
			[]string{
				`5: vrrp.unicast_peers[1]: "peer" is not an IP address`,
				`6: vrrp.unicast_source: "fe80::1%eth0": zones are not allowed`,
			}},
		{"auth_pass with v3", "[vrrp]\ninterface = \"eth0\"\nvrid = 1\npriority = 100\nauth_pass = \"secret\"\n",
			[]string{`5: vrrp.auth_pass: needs version = 2 (VRRPv3 has no authentication)`}},
		{"auth_pass too long", "[vrrp]\ninterface = \"eth0\"\nvrid = 1\npriority = 100\nversion = 2\nauth_pass = \"123456789\"\n",
			[]string{`6: vrrp.auth_pass: is 9 bytes long; VRRPv2 allows at most 8`}},
		{"auth_pass v2 ok", "[vrrp]\ninterface = \"eth0\"\nvrid = 1\npriority = 100\nversion = 2\nauth_pass = \"12345678\"\n", nil},
		{"preempt delay", "[vrrp]\ninterface = \"eth0\"\nvrid = 1\npriority = 100\npreempt_delay = \"1001s\"\n",
			[]string{`5: vrrp.preempt_delay: 16m41s is out of range (0s..16m40s)`}},
		{"track interfaces", "[vrrp]\ninterface = \"eth0\"\nvrid = 1\npriority = 100\n" +
			"[[vrrp.track_interface]]\nname = \"eth1\"\nweight = 300\n" +
			"[[vrrp.track_interface]]\nweight = 10\n" +
			"[[vrrp.track_interface]]\nname = \"eth1\"\n",
			[]string{
				`7: vrrp.track_interface[0] "eth1": weight: 300 is out of range (0..254)`,
				`8: vrrp.track_interface[1]: name: is required`,
				`11: vrrp.track_interface[2] "eth1": name: interface "eth1" is tracked twice`,
			}},
		{"garp and penalty", "[vrrp]\ninterface = \"eth0\"\nvrid = 1\npriority = 100\ngarp_interval = \"0s\"\nservice_penalty = 255\ngarp_count = -1\n",
			[]string{
				`5: vrrp.garp_interval: 0s is out of range (more than 0s, at most 10s)`,
				`6: vrrp.service_penalty: 255 is out of range (0..254)`,
				`7: vrrp.garp_count: -1 is out of range (0..100)`,
			}},
		{"rt priority", "[vrrp]\ninterface = \"eth0\"\nvrid = 1\npriority = 100\nrt_priority = 100\nlock_memory = true\n",
			[]string{`5: vrrp.rt_priority: 100 is out of range (0..99)`}},
		{"rt priority negative", "[vrrp]\ninterface = \"eth0\"\nvrid = 1\npriority = 100\nrt_priority = -1\n",
			[]string{`5: vrrp.rt_priority: -1 is out of range (0..99)`}},
		{"rt priority and memory lock ok", "[vrrp]\ninterface = \"eth0\"\nvrid = 1\npriority = 100\nrt_priority = 99\nlock_memory = true\n", nil},
		{"notify program", "[vrrp]\ninterface = \"eth0\"\nvrid = 1\npriority = 100\nnotify = [\"/nonexistent/notify.sh\", \"x\"]\n",
			[]string{`5: vrrp.notify: program "/nonexistent/notify.sh" not found`}},

		// [sync]
		{"sync defaults with vrrp", syncVRRP, nil},
		{"sync enabled needs an interface", "[sync]\nenabled = true\n",
			[]string{`1: sync.interface: is required with enabled = true (set sync.interface or global.interface)`}},
		{"sync enabled with the global interface", "[global]\ninterface = \"eth1\"\n[sync]\nenabled = true\n", nil},
		{"sync enabled without vrrp", "[sync]\nenabled = true\ninterface = \"eth1\"\n", nil},
		{"sync off needs no interface", "[sync]\nenabled = false\nport = 9000\n", nil},
		{"sync without vrrp is off by default", "[sync]\nport = 9000\n", nil},
		{"sync enabled not a bool", "[sync]\nenabled = \"yes\"\ninterface = \"eth1\"\n",
			[]string{`2: sync.enabled: must be true or false, not the string "yes"`}},
		{"sync interface with a colon", syncVRRP + "[sync]\ninterface = \"eth0:1\"\n",
			[]string{`6: sync.interface: "eth0:1" is not a valid interface name (1 to 15 bytes, no '/', ':' or whitespace)`}},
		{"sync interface too long", syncVRRP + "[sync]\ninterface = \"0123456789abcdef\"\n",
			[]string{`6: sync.interface: "0123456789abcdef" is not a valid interface name (1 to 15 bytes, no '/', ':' or whitespace)`}},
		{"sync interface 15 bytes", syncVRRP + "[sync]\ninterface = \"0123456789abcde\"\n", nil},
		{"sync interface 15 characters but 16 bytes", syncVRRP + "[sync]\ninterface = \"0123456789abcdé\"\n",
			[]string{`6: sync.interface: "0123456789abcdé" is not a valid interface name (1 to 15 bytes, no '/', ':' or whitespace)`}},
		{"sync interface with a slash", syncVRRP + "[sync]\ninterface = \"a/b\"\n",
			[]string{`6: sync.interface: "a/b" is not a valid interface name (1 to 15 bytes, no '/', ':' or whitespace)`}},
		{"sync interface with whitespace", syncVRRP + "[sync]\ninterface = \"eth\\f1\"\n",
			[]string{`6: sync.interface: "eth\f1" is not a valid interface name (1 to 15 bytes, no '/', ':' or whitespace)`}},
		{"sync interface empty", syncVRRP + "[sync]\ninterface = \"\"\n",
			[]string{`6: sync.interface: must not be empty (leave it out to use vrrp.interface or global.interface)`}},
		// An inherited value is checked where it is written, once.
		{"sync inherits a bad global interface", "[global]\ninterface = \"bad/name\"\n[vrrp]\nvrid = 7\npriority = 100\n[sync]\nport = 9000\n",
			[]string{`2: global.interface: "bad/name" is not a valid interface name (1 to 15 bytes, no '/', ':' or whitespace)`}},
		{"sync inherits a missing vrrp interface", "[vrrp]\nvrid = 7\npriority = 100\n[sync]\nenabled = true\n",
			[]string{`1: vrrp.interface: is required (set vrrp.interface or global.interface)`}},
		{"sync id range", syncVRRP + "[sync]\nid = 256\n",
			[]string{`6: sync.id: 256 is out of range (0..255: the sync id is one byte on the wire)`}},
		{"sync id negative", syncVRRP + "[sync]\nid = -1\n",
			[]string{`6: sync.id: -1 is out of range (0..255: the sync id is one byte on the wire)`}},
		{"sync id 0", syncVRRP + "[sync]\nid = 0\n", nil},
		{"sync id 255", syncVRRP + "[sync]\nid = 255\n", nil},
		{"sync id not an integer", syncVRRP + "[sync]\nid = \"7\"\n",
			[]string{`6: sync.id: must be an integer, not the string "7"`}},
		{"sync id inherits a bad vrid", "[vrrp]\ninterface = \"eth0\"\nvrid = 300\npriority = 100\n[sync]\nport = 9000\n",
			[]string{`3: vrrp.vrid: 300 is out of range (1..255)`}},
		{"sync group not an address", syncVRRP + "[sync]\ngroup = \"224.0.0\"\n",
			[]string{`6: sync.group: "224.0.0" is not an IP address`}},
		{"sync group unicast", syncVRRP + "[sync]\ngroup = \"10.0.0.1\"\n",
			[]string{`6: sync.group: "10.0.0.1" is not an IPv4 multicast address (224.0.0.0/4)`}},
		{"sync group above 224/4", syncVRRP + "[sync]\ngroup = \"240.0.0.1\"\n",
			[]string{`6: sync.group: "240.0.0.1" is not an IPv4 multicast address (224.0.0.0/4)`}},
		{"sync group IPv6", syncVRRP + "[sync]\ngroup = \"ff02::81\"\n",
			[]string{`6: sync.group: "ff02::81" is an IPv6 address: an IPv6 group goes in group6`}},
		{"sync group IPv4-mapped", syncVRRP + "[sync]\ngroup = \"::ffff:224.0.0.81\"\n",
			[]string{`6: sync.group: "::ffff:224.0.0.81": write IPv4 addresses as IPv4 (224.0.0.81)`}},
		{"sync group ok", syncVRRP + "[sync]\ngroup = \"239.255.255.255\"\n", nil},
		{"sync group6 unicast", syncVRRP + "[sync]\ngroup6 = \"2001:db8::1\"\n",
			[]string{`6: sync.group6: "2001:db8::1" is not an IPv6 multicast address (ff00::/8)`}},
		{"sync group6 IPv4", syncVRRP + "[sync]\ngroup6 = \"224.0.0.81\"\n",
			[]string{`6: sync.group6: "224.0.0.81" is an IPv4 address: an IPv4 group goes in group`}},
		{"sync group6 IPv4-mapped", syncVRRP + "[sync]\ngroup6 = \"::ffff:224.0.0.81\"\n",
			[]string{`6: sync.group6: "::ffff:224.0.0.81": write IPv4 addresses as IPv4 (224.0.0.81)`}},
		{"sync group6 with a zone", syncVRRP + "[sync]\ngroup6 = \"ff02::81%eth0\"\n",
			[]string{`6: sync.group6: "ff02::81%eth0": zones are not allowed`}},
		{"sync group6 empty", syncVRRP + "[sync]\ngroup6 = \"\"\n",
			[]string{`6: sync.group6: "" is not an IP address`}},
		{"sync group6 ok", syncVRRP + "[sync]\ngroup6 = \"ff02::81\"\n", nil},
		{"sync group and group6", syncVRRP + "[sync]\ngroup = \"224.0.0.81\"\ngroup6 = \"ff02::81\"\n",
			[]string{`7: sync.group6: cannot be used with group: the sync daemon has one group (group6 is for a sync interface without IPv4)`}},
		{"sync port", syncVRRP + "[sync]\nport = 0\n",
			[]string{`6: sync.port: 0 is out of range (1..65535)`}},
		{"sync port too big", syncVRRP + "[sync]\nport = 65536\n",
			[]string{`6: sync.port: 65536 is out of range (1..65535)`}},
		{"sync ttl 0", syncVRRP + "[sync]\nttl = 0\n",
			[]string{`6: sync.ttl: 0 is out of range (1..255)`}},
		{"sync ttl too big", syncVRRP + "[sync]\nttl = 256\n",
			[]string{`6: sync.ttl: 256 is out of range (1..255)`}},
		{"sync port and ttl limits", syncVRRP + "[sync]\nport = 65535\nttl = 255\n", nil},
		{"sync max_packet_len too small", syncVRRP + "[sync]\nmax_packet_len = 127\n",
			[]string{`6: sync.max_packet_len: 127 is out of range (0 for the interface MTU, or 128..65507)`}},
		{"sync max_packet_len too big", syncVRRP + "[sync]\nmax_packet_len = 65508\n",
			[]string{`6: sync.max_packet_len: 65508 is out of range (0 for the interface MTU, or 128..65507)`}},
		{"sync max_packet_len negative", syncVRRP + "[sync]\nmax_packet_len = -1\n",
			[]string{`6: sync.max_packet_len: -1 is out of range (0 for the interface MTU, or 128..65507)`}},
		{"sync max_packet_len 0", syncVRRP + "[sync]\nmax_packet_len = 0\n", nil},
		{"sync max_packet_len 128", syncVRRP + "[sync]\nmax_packet_len = 128\n", nil},
		{"sync max_packet_len 65507", syncVRRP + "[sync]\nmax_packet_len = 65507\n", nil},
		{"sync refresh_period fraction", syncVRRP + "[sync]\nrefresh_period = \"1.5s\"\n",
			[]string{`6: sync.refresh_period: 1.5s: must be whole seconds (the kernel's sync_refresh_period is in seconds)`}},
		{"sync refresh_period 0", syncVRRP + "[sync]\nrefresh_period = \"0s\"\n",
			[]string{`6: sync.refresh_period: 0s is out of range (1s..1h)`}},
		{"sync refresh_period too short", syncVRRP + "[sync]\nrefresh_period = \"500ms\"\n",
			[]string{`6: sync.refresh_period: 500ms is out of range (1s..1h)`}},
		{"sync refresh_period too long", syncVRRP + "[sync]\nrefresh_period = \"61m\"\n",
			[]string{`6: sync.refresh_period: 1h1m0s is out of range (1s..1h)`}},
		// warm_up then inherits 1h5s: more than an operator may write,
		// but not written, so not reported.
		{"sync refresh_period 1h", syncVRRP + "[sync]\nrefresh_period = \"1h\"\n", nil},
		{"sync refresh_period 1s", syncVRRP + "[sync]\nrefresh_period = \"1s\"\n", nil},
		{"sync refresh_period not a duration", syncVRRP + "[sync]\nrefresh_period = 10\n",
			[]string{`6: sync.refresh_period: must be a duration such as "500ms", "5s" or "1m30s", not the integer 10`}},
		{"sync warm_up negative", syncVRRP + "[sync]\nwarm_up = \"-1s\"\n",
			[]string{`6: sync.warm_up: -1s is out of range (0s..1h; it delays every takeover after a start)`}},
		{"sync warm_up too long", syncVRRP + "[sync]\nwarm_up = \"1h0m1s\"\n",
			[]string{`6: sync.warm_up: 1h0m1s is out of range (0s..1h; it delays every takeover after a start)`}},
		{"sync warm_up 0s", syncVRRP + "[sync]\nwarm_up = \"0s\"\n", nil},
		{"sync warm_up 1h", syncVRRP + "[sync]\nwarm_up = \"1h\"\n", nil},
		{"sync handover_hold too long", syncVRRP + "[sync]\nhandover_hold = \"10001ms\"\n",
			[]string{`6: sync.handover_hold: 10.001s is out of range (0s..10s; new connections wait this long at a graceful handover)`}},
		{"sync handover_hold negative", syncVRRP + "[sync]\nhandover_hold = \"-1ms\"\n",
			[]string{`6: sync.handover_hold: -1ms is out of range (0s..10s; new connections wait this long at a graceful handover)`}},
		{"sync handover_hold limits", syncVRRP + "[sync]\nhandover_hold = \"0s\"\ntakeover_quiet = \"0s\"\n", nil},
		{"sync handover_hold 10s", syncVRRP + "[sync]\nhandover_hold = \"10s\"\ntakeover_quiet = \"60s\"\n", nil},
		{"sync takeover_quiet too long", syncVRRP + "[sync]\ntakeover_quiet = \"61s\"\n",
			[]string{`6: sync.takeover_quiet: 1m1s is out of range (0s..60s; unknown TCP segments are dropped this long after a takeover)`}},
		{"sync takeover_quiet negative", syncVRRP + "[sync]\ntakeover_quiet = \"-4s\"\n",
			[]string{`6: sync.takeover_quiet: -4s is out of range (0s..60s; unknown TCP segments are dropped this long after a takeover)`}},
		{"sync unknown key", syncVRRP + "[sync]\nenable = false\nmcast_group = \"224.0.0.81\"\n",
			[]string{`6: sync.enable: unknown key (did you mean "enabled"?)`, `7: sync.mcast_group: unknown key`}},
		{"sync as top-level dotted keys", "\nsync.enabled = true\nsync.interface = \"eth1\"\nsync.ttl = 0\n",
			[]string{`4: sync.ttl: 0 is out of range (1..255)`}},
		{"sync as an inline table", "sync = { enabled = true, interface = \"eth1\", port = 0 }\n",
			[]string{`1: sync.port: 0 is out of range (1..65535)`}},
		{"sync not a table", "sync = true\n",
			[]string{`1: sync: must be a table, not the boolean true`}},
		{"sync problems without vrrp", "[sync]\nenabled = true\ninterface = \"eth1\"\nport = 0\nttl = 0\n",
			[]string{`4: sync.port: 0 is out of range (1..65535)`, `5: sync.ttl: 0 is out of range (1..255)`}},

		// [[virtual_server]]
		{"vs ok", vs + rs, nil},
		{"vs name required", "[[virtual_server]]\nvip = \"10.0.0.1\"\nport = 80\n",
			[]string{`1: virtual_server[0]: name: is required`}},
		{"vs name unsafe", "[[virtual_server]]\nname = \"web server\"\nvip = \"10.0.0.1\"\nport = 80\n",
			[]string{`2: virtual_server "web server": name: "web server" may contain only letters, digits, '.', '_' and '-'`}},
		{"vs name dot-dot", "[[virtual_server]]\nname = \"..\"\nvip = \"10.0.0.1\"\nport = 80\n",
			[]string{`2: virtual_server "..": name: ".." is not a usable name`}},
		{"vs duplicate name", vs + "[[virtual_server]]\nname = \"web\"\nvip = \"10.0.0.2\"\nport = 80\n",
			[]string{`6: virtual_server[1] "web": name: duplicate name "web" (also virtual_server[0])`}},
		{"vs vip and fwmark", vs + "fwmark = 3\n",
			[]string{`3: virtual_server "web": vip: a virtual server has either vip and port or fwmark, not both`}},
		{"vs port with fwmark", "[[virtual_server]]\nname = \"m\"\nfwmark = 3\nport = 80\n",
			[]string{`4: virtual_server "m": port: a virtual server has either vip and port or fwmark, not both`}},
		{"vs neither vip nor fwmark", "[[virtual_server]]\nname = \"web\"\n",
			[]string{`1: virtual_server "web": vip: is required (or give a fwmark)`, `1: virtual_server "web": port: is required with vip`}},
		{"vs fwmark zero", "[[virtual_server]]\nname = \"m\"\nfwmark = 0\n",
			[]string{`3: virtual_server "m": fwmark: must be 1..4294967295`}},
		{"vs bad vip", "[[virtual_server]]\nname = \"web\"\nvip = \"10.0.0.256\"\nport = 80\n",
			[]string{`3: virtual_server "web": vip: "10.0.0.256" is not an IP address`}},
		{"vs port range", "[[virtual_server]]\nname = \"web\"\nvip = \"10.0.0.1\"\nport = 70000\n",
			[]string{`4: virtual_server "web": port: 70000 is out of range (1..65535)`}},
		{"vs protocol", vs + "protocol = \"icmp\"\n",
			[]string{`5: virtual_server "web": protocol: unknown protocol "icmp" (valid: tcp, udp, sctp)`}},
		{"vs scheduler", vs + "scheduler = \"foo\"\n",
			[]string{`5: virtual_server "web": scheduler: unknown scheduler "foo" (valid: rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos)`}},
		{"every kernel scheduler", vs + "scheduler = \"twos\"\n[[virtual_server]]\nname = \"b\"\nvip = \"10.0.0.2\"\nport = 1\nscheduler = \"ovf\"\n", nil},
		{"flags on a scheduler without flags", vs + "scheduler_flags = [\"sh-port\"]\n",
			[]string{`5: virtual_server "web": scheduler_flags[0]: scheduler wlc takes no flags (got "sh-port")`}},
		{"flags of another scheduler", vs + "scheduler = \"sh\"\nscheduler_flags = [\"sh-fallback\", \"mh-port\", \"sh-fallback\"]\n",
			[]string{
				`6: virtual_server "web": scheduler_flags[1]: unknown flag "mh-port" for scheduler sh (valid: sh-fallback, sh-port)`,
				`6: virtual_server "web": scheduler_flags[2]: flag "sh-fallback" given twice`,
			}},
		{"vs forwarding", vs + "forwarding = \"route\"\n",
			[]string{`5: virtual_server "web": forwarding: unknown forwarding method "route" (valid: dr, nat, tun)`}},
		{"vs family mismatch", vs + "family = \"inet6\"\n",
			[]string{`5: virtual_server "web": family: inet6 does not match vip 10.0.0.1`}},
		{"vs family unknown", "[[virtual_server]]\nname = \"m\"\nfwmark = 1\nfamily = \"ipx\"\n",
			[]string{`4: virtual_server "m": family: unknown family "ipx" (valid: inet, inet6)`}},
		{"persistence fraction", vs + "persistence = \"1.5s\"\n",
			[]string{`5: virtual_server "web": persistence: 1.5s: must be whole seconds, 0s (off) or more`}},
		{"persistence netmask v4", vs + "persistence_netmask = 33\n",
			[]string{`5: virtual_server "web": persistence_netmask: 33 is out of range (1..32)`}},
		{"persistence netmask v6", "[[virtual_server]]\nname = \"w\"\nvip = \"2001:db8::1\"\nport = 80\npersistence_netmask = 129\n",
			[]string{`5: virtual_server "w": persistence_netmask: 129 is out of range (1..128)`}},
		{"persistence netmask v6 ok", "[[virtual_server]]\nname = \"w\"\nvip = \"2001:db8::1\"\nport = 80\npersistence_netmask = 64\n", nil},
		{"quorum", vs + "quorum = -1\n",
			[]string{`5: virtual_server "web": quorum: must not be negative`}},
		{"on_failure", vs + "on_failure = \"drop\"\n",
			[]string{`5: virtual_server "web": on_failure: unknown on_failure action "drop" (valid: quiesce, remove)`}},
		{"sorry server", vs + "sorry_server = \"sorry\"\n",
			[]string{`5: virtual_server "web": sorry_server: "sorry" is not an address or address:port`}},
		{"sorry server port 0", vs + "sorry_server = \"10.0.0.9:0\"\n",
			[]string{`5: virtual_server "web": sorry_server: "10.0.0.9:0": port must be 1..65535`}},
		{"sorry server family", vs + "sorry_server = \"[2001:db8::9]:80\"\n",
			[]string{`5: virtual_server "web": sorry_server: [2001:db8::9]:80 is IPv6 but the service is IPv4`}},
		{"sorry server ok", vs + "sorry_server = \"10.0.0.9:8080\"\n", nil},
		{"duplicate service", vs + "[[virtual_server]]\nname = \"b\"\nvip = \"10.0.0.1\"\nport = 80\n",
			[]string{`7: virtual_server "b": vip: duplicate virtual service 10.0.0.1:80/tcp (also virtual_server "web")`}},
		{"same vip:port other protocol", vs + "[[virtual_server]]\nname = \"b\"\nvip = \"10.0.0.1\"\nport = 80\nprotocol = \"udp\"\n", nil},
		{"duplicate v6 service spelled differently", "[[virtual_server]]\nname = \"a\"\nvip = \"2001:db8::1\"\nport = 80\n" +
			"[[virtual_server]]\nname = \"b\"\nvip = \"2001:DB8:0::1\"\nport = 80\n",
			[]string{`7: virtual_server "b": vip: duplicate virtual service [2001:db8::1]:80/tcp (also virtual_server "a")`}},
		{"duplicate fwmark", "[[virtual_server]]\nname = \"a\"\nfwmark = 7\n[[virtual_server]]\nname = \"b\"\nfwmark = 7\n",
			[]string{`6: virtual_server "b": fwmark: duplicate virtual service fwmark 7/inet (also virtual_server "a")`}},
		{"same fwmark other family", "[[virtual_server]]\nname = \"a\"\nfwmark = 7\n[[virtual_server]]\nname = \"b\"\nfwmark = 7\nfamily = \"inet6\"\n", nil},

		// [[virtual_server.real_server]]
		{"rs name and address required", vs + "[[virtual_server.real_server]]\nweight = 1\n",
			[]string{`5: virtual_server "web" real_server[0]: name: is required`, `5: virtual_server "web" real_server[0]: address: is required`}},
		{"rs duplicate name", vs + rs + "[[virtual_server.real_server]]\nname = \"rs1\"\naddress = \"10.0.1.2\"\n",
			[]string{`9: virtual_server "web" real_server[1] "rs1": name: duplicate name "rs1" (also real_server[0] of this service)`}},
		{"rs same name in other services is fine", vs + rs + "[[virtual_server]]\nname = \"b\"\nvip = \"10.0.0.2\"\nport = 80\n" + rs, nil},
		{"rs duplicate address", vs + rs + "[[virtual_server.real_server]]\nname = \"rs2\"\naddress = \"10.0.1.1\"\n",
			[]string{`10: virtual_server "web" real_server "rs2": address: duplicate real server 10.0.1.1:80 (also real_server "rs1")`}},
		{"rs bad address", vs + "[[virtual_server.real_server]]\nname = \"a\"\naddress = \"host.example\"\n",
			[]string{`7: virtual_server "web" real_server "a": address: "host.example" is not an IP address`}},
		{"rs family mix", vs + "[[virtual_server.real_server]]\nname = \"a\"\naddress = \"2001:db8::5\"\n",
			[]string{`7: virtual_server "web" real_server "a": address: 2001:db8::5 is IPv6 but the service is IPv4`}},
		{"rs weight", vs + rs + "weight = 65536\n",
			[]string{`8: virtual_server "web" real_server "rs1": weight: 65536 is out of range (0..65535)`}},
		{"rs weight 0 ok", vs + rs + "weight = 0\n", nil},
		{"rs port range", vs + "forwarding = \"nat\"\n" + rs + "port = 0\n",
			[]string{`9: virtual_server "web" real_server "rs1": port: 0 is out of range (1..65535)`}},
		{"dr cannot remap ports", vs + rs + "port = 8080\n",
			[]string{`8: virtual_server "web" real_server "rs1": port: 8080 differs from the service port 80: DR cannot remap ports (use forwarding = "nat" or the same port)`}},
		{"tun cannot remap ports", vs + rs + "port = 8080\nforwarding = \"tun\"\n",
			[]string{`8: virtual_server "web" real_server "rs1": port: 8080 differs from the service port 80: TUN cannot remap ports (use forwarding = "nat" or the same port)`}},
		{"nat remaps ports", vs + rs + "port = 8080\nforwarding = \"nat\"\n", nil},
		{"rs forwarding", vs + rs + "forwarding = \"fast\"\n",
			[]string{`8: virtual_server "web" real_server "rs1": forwarding: unknown forwarding method "fast" (valid: dr, nat, tun)`}},
		{"fwmark rs without port", "[[virtual_server]]\nname = \"m\"\nfwmark = 1\n" + rs, nil},
		{"fwmark check needs a port", "[[virtual_server]]\nname = \"m\"\nfwmark = 1\n[virtual_server.health_check]\ntype = \"tcp\"\n" + rs +
			"[[virtual_server.real_server]]\nname = \"rs2\"\naddress = \"10.0.1.2\"\n",
			[]string{`4: virtual_server "m": health_check.port: is required: real server "rs1" has no port to check (fwmark service)`}},

		// [virtual_server.health_check]
		{"check type required", vs + "[virtual_server.health_check]\ninterval = \"3s\"\n",
			[]string{`5: virtual_server "web": health_check.type: is required (valid: tcp, http, https, send_expect, exec, dns, udp, smtp, none)`}},
		{"check type unknown", vs + "[virtual_server.health_check]\ntype = \"ping\"\n",
			[]string{`6: virtual_server "web": health_check.type: unknown check type "ping" (valid: tcp, http, https, send_expect, exec, dns, udp, smtp, none)`}},
		{"check none ignores the rest", vs + "[virtual_server.health_check]\ntype = \"none\"\nrise = 0\n", nil},
		{"dns check", vs + "[virtual_server.health_check]\ntype = \"dns\"\nquery_name = \"example.org\"\nquery_type = \"aaaa\"\nexpect_rcode = \"nxdomain\"\nexpect_answer = \"2001:db8::1\"\n", nil},
		{"dns check settings", vs + "[virtual_server.health_check]\ntype = \"dns\"\nquery_name = \"a..b\"\nquery_type = \"PTRR\"\ndns_transport = \"quic\"\nexpect_rcode = \"FINE\"\nexpect_answer = \"((\"\n",
			[]string{
				`7: virtual_server "web": health_check.query_name: "a..b" is not a domain name`,
				`8: virtual_server "web": health_check.query_type: "PTRR" is not a DNS record type (A, AAAA, SOA, NS, MX, TXT, ...)`,
				`9: virtual_server "web": health_check.dns_transport: unknown dns transport "quic" (valid: udp, tcp)`,
				`10: virtual_server "web": health_check.expect_rcode: "FINE" is not a DNS rcode (NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ...)`,
				"11: virtual_server \"web\": health_check.expect_answer: is neither an IP address nor a valid regular expression: error parsing regexp: missing closing ): `((`",
			}},
		{"tcp check on a udp service", strings.Replace(vs, "port = 80\n", "port = 53\nprotocol = \"udp\"\n", 1) + "[virtual_server.health_check]\ntype = \"tcp\"\n",
			[]string{`7: virtual_server "web": health_check.type: "tcp" cannot check a udp service (use dns or udp)`}},
		{"http check on a udp service with its own port", strings.Replace(vs, "port = 80\n", "port = 53\nprotocol = \"udp\"\n", 1) + "[virtual_server.health_check]\ntype = \"http\"\nport = 8080\n", nil},
		{"udp check", strings.Replace(vs, "port = 80\n", "port = 53\nprotocol = \"udp\"\n", 1) + "[virtual_server.health_check]\ntype = \"udp\"\nexpect = \"(\"\n",
			[]string{
				`6: virtual_server "web": health_check.send: is required for a udp check (the datagram to send)`,
				"8: virtual_server \"web\": health_check.expect: invalid regular expression: error parsing regexp: missing closing ): `(`",
			}},
		{"udp check on a tcp service", vs + "[virtual_server.health_check]\ntype = \"udp\"\nsend = \"x\"\n",
			[]string{`6: virtual_server "web": health_check.type: "udp" cannot check a tcp service (use tcp, http, https, send_expect, dns or smtp)`}},
		{"smtp check", vs + "[virtual_server.health_check]\ntype = \"smtp\"\nstarttls = true\ntls_verify = true\nsni = \"mx.example.com\"\n", nil},
		{"smtp helo name", vs + "[virtual_server.health_check]\ntype = \"smtp\"\nhelo_name = \"lb1\\r\\nRCPT TO:<x>\"\n",
			[]string{`7: virtual_server "web": health_check.helo_name: "lb1\r\nRCPT TO:<x>" is not a host name for EHLO (no spaces, at most 255 bytes)`}},
		{"smtp check on a udp service", strings.Replace(vs, "port = 80\n", "port = 25\nprotocol = \"udp\"\n", 1) + "[virtual_server.health_check]\ntype = \"smtp\"\n",
			[]string{`7: virtual_server "web": health_check.type: "smtp" cannot check a udp service (use dns or udp)`}},
		{"dns and exec checks on a udp service", strings.Replace(vs, "port = 80\n", "port = 53\nprotocol = \"udp\"\n", 1) + "[virtual_server.health_check]\ntype = \"dns\"\n", nil},
		{"tcp check on an sctp service", strings.Replace(vs, "port = 80\n", "port = 80\nprotocol = \"sctp\"\n", 1) + "[virtual_server.health_check]\ntype = \"send_expect\"\nexpect = \"x\"\n",
			[]string{`7: virtual_server "web": health_check.type: "send_expect" cannot check an sctp service (use exec, or set port to a health endpoint)`}},
		{"rise and fall", vs + "[virtual_server.health_check]\ntype = \"tcp\"\nrise = 0\nfall = -2\n",
			[]string{`7: virtual_server "web": health_check.rise: must be at least 1`, `8: virtual_server "web": health_check.fall: must be at least 1`}},
		{"timeout not below interval", vs + "[virtual_server.health_check]\ntype = \"tcp\"\ninterval = \"1s\"\n",
			[]string{`5: virtual_server "web": health_check.timeout: 1s must be shorter than interval 1s`}},
		{"timeout zero", vs + "[virtual_server.health_check]\ntype = \"tcp\"\ntimeout = \"0s\"\n",
			[]string{`7: virtual_server "web": health_check.timeout: must be positive`}},
		{"interval zero", vs + "[virtual_server.health_check]\ntype = \"tcp\"\ninterval = \"0s\"\n",
			[]string{`7: virtual_server "web": health_check.interval: must be positive`}},
		{"check address and port", vs + "[virtual_server.health_check]\ntype = \"tcp\"\naddress = \"x\"\nport = 65536\n",
			[]string{`7: virtual_server "web": health_check.address: "x" is not an IP address`, `8: virtual_server "web": health_check.port: 65536 is out of range (1..65535)`}},
		{"expect_status", vs + "[virtual_server.health_check]\ntype = \"http\"\nexpect_status = [\n  \"200\",\n  \"600\",\n  \"abc\",\n  \"300-200\",\n  \"100-599\",\n]\n",
			[]string{
				`9: virtual_server "web": health_check.expect_status[1]: "600" is not a status code or range ("200" or "200-399", 100..599)`,
				`10: virtual_server "web": health_check.expect_status[2]: "abc" is not a status code or range ("200" or "200-399", 100..599)`,
				`11: virtual_server "web": health_check.expect_status[3]: "300-200" is not a status code or range ("200" or "200-399", 100..599)`,
			}},
		{"expect_status empty", vs + "[virtual_server.health_check]\ntype = \"http\"\nexpect_status = []\n",
			[]string{`7: virtual_server "web": health_check.expect_status: must not be empty`}},
		{"expect_body regexp", vs + "[virtual_server.health_check]\ntype = \"http\"\nexpect_body = \"(ok\"\n",
			[]string{"7: virtual_server \"web\": health_check.expect_body: invalid regular expression: error parsing regexp: missing closing ): `(ok`"}},
		{"method and path", vs + "[virtual_server.health_check]\ntype = \"http\"\nmethod = \"get\"\npath = \"health\"\n",
			[]string{`7: virtual_server "web": health_check.method: "get" is not an HTTP method (GET, HEAD, ...)`, `8: virtual_server "web": health_check.path: "health" must start with /`}},
		{"send_expect needs expect", vs + "[virtual_server.health_check]\ntype = \"send_expect\"\nsend = \"PING\\r\\n\"\n",
			[]string{`5: virtual_server "web": health_check.expect: is required for a send_expect check`}},
		{"send_expect regexp", vs + "[virtual_server.health_check]\ntype = \"send_expect\"\nexpect = \"[\"\n",
			[]string{"7: virtual_server \"web\": health_check.expect: invalid regular expression: error parsing regexp: missing closing ]: `[`"}},
		{"exec needs command", vs + "[virtual_server.health_check]\ntype = \"exec\"\n",
			[]string{`5: virtual_server "web": health_check.command: is required (the program and its arguments)`}},
		{"exec program missing", vs + "[virtual_server.health_check]\ntype = \"exec\"\ncommand = [\"/x\"]\n",
			[]string{`7: virtual_server "web": health_check.command: program "/x" not found`}},
		{"exec program relative", vs + "[virtual_server.health_check]\ntype = \"exec\"\ncommand = [\"./check.sh\"]\n",
			[]string{`7: virtual_server "web": health_check.command: program "./check.sh" must be an absolute path or a name found in PATH`}},
		{"exec program not in PATH", vs + "[virtual_server.health_check]\ntype = \"exec\"\ncommand = [\"no-such-lbd-check\"]\n",
			[]string{`7: virtual_server "web": health_check.command: program "no-such-lbd-check" not found in PATH`}},
		{"exec program is a directory", vs + "[virtual_server.health_check]\ntype = \"exec\"\ncommand = [\"/\"]\n",
			[]string{`7: virtual_server "web": health_check.command: program "/" is not executable`}},
		{"exec program ok", vs + "[virtual_server.health_check]\ntype = \"exec\"\ncommand = [\"/bin/sh\", \"-c\", \"exit 0\"]\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, tt.src, tt.want) })
	}
}

func TestExecProgramNotExecutable(t *testing.T) {
	p := filepath.Join(t.TempDir(), "check.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	checkProblems(t, vs+"[virtual_server.health_check]\ntype = \"exec\"\ncommand = [\""+p+"\"]\n",
		[]string{`7: virtual_server "web": health_check.command: program "` + p + `" is not executable`})
	if err := os.Chmod(p, 0o755); err != nil {
		t.Fatal(err)
	}
	checkProblems(t, vs+"[virtual_server.health_check]\ntype = \"exec\"\ncommand = [\""+p+"\"]\n", nil)
}

func TestTypeErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"string for integer", "[[virtual_server]]\nname = \"web\"\nvip = \"10.0.0.1\"\nport = \"80\"\n",
			// Only the type error: no "port is required" or range error
			// built on the zero value.
			[]string{`4: virtual_server "web": port: must be an integer, not the string "80"`}},
		{"float for integer", vs + rs + "weight = 1.5\n",
			[]string{`8: virtual_server "web" real_server "rs1": weight: must be an integer, not the float 1.5`}},
		{"string for bool", vs + "active = \"yes\"\n",
			[]string{`5: virtual_server "web": active: must be true or false, not the string "yes"`}},
		{"integer for duration", "[global]\nresync_interval = 5\n",
			[]string{`2: global.resync_interval: must be a duration such as "500ms", "5s" or "1m30s", not the integer 5`}},
		{"duration without unit", "[global]\nresync_interval = \"5\"\n",
			[]string{`2: global.resync_interval: invalid duration "5" (write a number with a unit, such as "500ms", "5s" or "1m30s")`}},
		{"negative fwmark", "[[virtual_server]]\nname = \"m\"\nfwmark = -1\n",
			[]string{`3: virtual_server "m": fwmark: -1 is out of range (0..4294967295)`}},
		{"fwmark too big", "[[virtual_server]]\nname = \"m\"\nfwmark = 4294967296\n",
			[]string{`3: virtual_server "m": fwmark: 4294967296 is out of range (0..4294967295)`}},
		{"virtual_server not an array", "virtual_server = \"x\"\n",
			[]string{`1: virtual_server: must be an array, not the string "x"`}},
		{"health_check not a table", vs + "health_check = 5\n",
			[]string{`5: virtual_server "web": health_check: must be a table, not the integer 5`}},
		{"array element type", "[vrrp]\ninterface = \"eth0\"\nvrid = 1\npriority = 1\nvips = [\n  \"10.0.0.1\",\n  2,\n]\n",
			[]string{`7: vrrp.vips[1]: must be a string, not the integer 2`}},
		{"string for array", vs + "scheduler_flags = \"sh-port\"\n",
			[]string{`5: virtual_server "web": scheduler_flags: must be an array, not the string "sh-port"`}},
		{"date for string", "[global]\nnode_name = 1979-05-27\n",
			[]string{`2: global.node_name: must be a string, not a date-time`}},
		{"bad vs type keeps other checks", "[[virtual_server]]\nname = \"web\"\nvip = \"10.0.0.1\"\nport = \"80\"\nscheduler = \"x\"\n",
			[]string{
				`4: virtual_server "web": port: must be an integer, not the string "80"`,
				`5: virtual_server "web": scheduler: unknown scheduler "x" (valid: rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos)`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, tt.src, tt.want) })
	}
}

func TestSyntaxErrors(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		wantLine int
		wantMsg  string // prefix of the message
	}{
		{"missing value", "[global]\nlisten = \":3636\"\n\nnode_name =\n", 4, "syntax error: "},
		{"unterminated string", "[global]\n\n\n\nnode_name = \"lvs1\n", 5, "syntax error: "},
		{"duplicate key", "[global]\nlisten = \":1\"\nlisten = \":2\"\n", 3, "syntax error: "},
		{"bad header", "[global\nlisten = \":1\"\n", 1, "syntax error: "},
		{"garbage line", "[global]\nlisten = \":1\"\nthis is not toml\n", 3, "syntax error: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("s.toml", []byte(tt.src))
			var ps Problems
			if !errors.As(err, &ps) || len(ps) != 1 {
				t.Fatalf("want one problem, got %v", err)
			}
			p := ps[0]
			if p.Line != tt.wantLine || !strings.HasPrefix(p.Message, tt.wantMsg) || p.File != "s.toml" || p.Key != "" {
				t.Errorf("got %+v, want line %d message starting %q", p, tt.wantLine, tt.wantMsg)
			}
			if len(p.Message) <= len(tt.wantMsg) {
				t.Errorf("message %q says nothing about the error", p.Message)
			}
		})
	}
}

// A file with many mistakes gets all of them reported in one go, in line
// order, each at its line.
func TestManyProblemsAtOnce(t *testing.T) {
	src := `[global]
listen = "nope"
resync_interval = "1ms"
colour = "blue"

[vrrp]
vrid = 0
priority = 256
version = 3
auth_pass = "x"

[[virtual_server]]
name = "web"
vip = "10.0.0.1"
port = 80
scheduler = "fastest"

[virtual_server.health_check]
type = "http"
interval = "1s"
timeout = "2s"
expect_status = ["700"]

[[virtual_server.real_server]]
name = "rs1"
address = "10.0.1.1"
port = 81

[[virtual_server.real_server]]
name = "rs1"
address = "2001:db8::1"
weight = -1

[[virtual_server]]
name = "web"
vip = "10.0.0.1"
port = 80
`
	want := []string{
		`2: global.listen: "nope" is not host:port (for example ":3636" or "127.0.0.1:3636")`,
		`3: global.resync_interval: 1ms is too short (at least 1s)`,
		`4: global.colour: unknown key`,
		`6: vrrp.interface: is required (set vrrp.interface or global.interface)`,
		`7: vrrp.vrid: 0 is out of range (1..255)`,
		`8: vrrp.priority: 256 is out of range (1..255)`,
		`10: vrrp.auth_pass: needs version = 2 (VRRPv3 has no authentication)`,
		`16: virtual_server[0] "web": scheduler: unknown scheduler "fastest" (valid: rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos)`,
		`21: virtual_server[0] "web": health_check.timeout: 2s must be shorter than interval 1s`,
		`22: virtual_server[0] "web": health_check.expect_status[0]: "700" is not a status code or range ("200" or "200-399", 100..599)`,
		`27: virtual_server[0] "web" real_server[0] "rs1": port: 81 differs from the service port 80: DR cannot remap ports (use forwarding = "nat" or the same port)`,
		`30: virtual_server[0] "web" real_server[1] "rs1": name: duplicate name "rs1" (also real_server[0] of this service)`,
		`31: virtual_server[0] "web" real_server[1] "rs1": address: 2001:db8::1 is IPv6 but the service is IPv4`,
		`32: virtual_server[0] "web" real_server[1] "rs1": weight: -1 is out of range (0..65535)`,
		`35: virtual_server[1] "web": name: duplicate name "web" (also virtual_server[0])`,
		`36: virtual_server[1] "web": vip: duplicate virtual service 10.0.0.1:80/tcp (also virtual_server "web")`,
	}
	checkProblems(t, src, want)

	// The keys point the console at the fields.
	_, err := Parse("t.toml", []byte(src))
	var ps Problems
	errors.As(err, &ps)
	keys := map[string]bool{}
	for _, p := range ps {
		keys[p.Key] = true
	}
	for _, k := range []string{"global.colour", "vrrp.interface", "virtual_server[0].health_check.expect_status[0]",
		"virtual_server[0].real_server[1].weight", "virtual_server[1].vip"} {
		if !keys[k] {
			t.Errorf("no problem with key %s; keys: %v", k, keys)
		}
	}
	// Problems is an error listing one problem per line as FILE:LINE: message.
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) || lines[0] != `t.toml:2: global.listen: "nope" is not host:port (for example ":3636" or "127.0.0.1:3636")` {
		t.Errorf("Error() = %q", err.Error())
	}
}
