package config

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// roundTrip checks the Encode contract on a config Parse returned:
// Parse(Encode(c)) equals c and encoding is stable.
func roundTrip(t *testing.T, c *Config) []byte {
	t.Helper()
	data, err := Encode(c)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	c2, err := Parse(c.Path, data)
	if err != nil {
		t.Fatalf("Parse(Encode(c)): %v\n%s", err, data)
	}
	if !reflect.DeepEqual(c, c2) {
		t.Fatalf("Parse(Encode(c)) differs from c\nencoded:\n%s\nfirst difference: %s", data, firstDiff(reflect.ValueOf(c), reflect.ValueOf(c2), "config"))
	}
	data2, err := Encode(c2)
	if err != nil || !bytes.Equal(data, data2) {
		t.Fatalf("Encode is not stable:\n%s\n---\n%s", data, data2)
	}
	return data
}

// firstDiff names the first path where a and b differ, for readable
// failures.
func firstDiff(a, b reflect.Value, path string) string {
	if a.Kind() != b.Kind() {
		return path + ": kinds differ"
	}
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				return path + ": nil vs non-nil"
			}
			return ""
		}
		return firstDiff(a.Elem(), b.Elem(), path)
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			if d := firstDiff(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name); d != "" {
				return d
			}
		}
		return ""
	case reflect.Slice:
		if a.Len() != b.Len() || a.IsNil() != b.IsNil() {
			return path + ": lengths or nil-ness differ"
		}
		for i := 0; i < a.Len(); i++ {
			if d := firstDiff(a.Index(i), b.Index(i), path+"["+strconv.Itoa(i)+"]"); d != "" {
				return d
			}
		}
		return ""
	}
	if !reflect.DeepEqual(a.Interface(), b.Interface()) {
		return path + ": " + reflect.ValueOf(a.Interface()).String() + " vs " + reflect.ValueOf(b.Interface()).String()
	}
	return ""
}

func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	c, err := Parse("t.toml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, numbered(src))
	}
	return c
}

// maximal sets every key of the schema to a value that is not its default,
// except sync.group6, which cannot be set together with sync.group: see
// maximalGroup6.
const maximal = `[global]
node_name = "lvs-a"
interface = "bond0"
forwarding = "nat"
listen = "127.0.0.1:8080"
resync_interval = "7s"
remove_grace = "0s"
tcp_timeout = "1h"
tcpfin_timeout = "30s"
udp_timeout = "10s"

[console]
password_hash = "$2a$10$abcdefghijklmnopqrstuuKQq7Sv3vmpL5yWHvSZ0C3XcbSC9kHeW"
token_hashes = ["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]
read_token_hashes = ["60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752", "fd61a03af4f77d870fc21e05e7e80678095c92d808cfb3b5c279ee04c74aca13"]
tls_cert = "testdata/console.crt"
tls_key = "testdata/console.key"
session_timeout = "30m"
metrics_auth = true

[vrrp]
vrid = 9
priority = 255
advert_interval = "3s"
version = 2
interface = "eth9"
vips = ["10.9.0.1/24"]
unicast_peers = ["10.9.0.2", "10.9.0.3"]
unicast_source = "10.9.0.4"
preempt = false
preempt_delay = "30s"
auth_pass = "pw \"q\"\\"
service_penalty = 40
garp_count = 0
garp_interval = "250ms"
garp_refresh = "1m"
rt_priority = 50
lock_memory = true
notify = ["/bin/sh", "-c", "echo 'x' \t\u0001 é"]
notify_timeout = "3s"

[[vrrp.track_interface]]
name = "eth1"
weight = 0

[[vrrp.track_interface]]
name = "eth2"
weight = 20

[sync]
enabled = false
interface = "eth8"
id = 0
group = "239.0.0.81"
port = 8849
ttl = 2
max_packet_len = 1400
refresh_period = "30s"
warm_up = "1m"
handover_hold = "1s"
takeover_quiet = "10s"

[[virtual_server]]
name = "web"
vip = "10.9.0.1"
port = 443
protocol = "sctp"
scheduler = "mh"
scheduler_flags = ["mh-fallback", "mh-port"]
persistence = "1h"
persistence_netmask = 24
forwarding = "dr"
active = false
quorum = 0
on_failure = "remove"
sorry_server = "10.9.1.99:443"

[virtual_server.health_check]
type = "https"
address = "10.9.1.200"
port = 8443
interval = "10s"
timeout = "9s"
rise = 1
fall = 9
method = "HEAD"
path = "/status?full=1"
host = "www.example.com"
sni = "sni.example.com"
expect_status = ["204", "300-302"]
expect_body = "^OK$"
tls_verify = true
send = "x"
expect = "y"
command = ["/bin/true"]
query_name = "example.org"
query_type = "A"
dns_transport = "udp"
expect_rcode = "NXDOMAIN"
expect_answer = "192.0.2.1"
helo_name = "lb-a.example.net"
starttls = true

[[virtual_server.real_server]]
name = "a"
address = "10.9.1.1"
port = 443
weight = 0
forwarding = "tun"
active = false
drained = true

[[virtual_server.real_server]]
name = "b"
address = "10.9.1.2"
port = 8443
weight = 65535
forwarding = "nat"

[[virtual_server]]
name = "mark"
fwmark = 4294967295
family = "inet6"

[[virtual_server]]
name = "dr-plain-check"
forwarding = "dr"
vip = "10.9.0.1"
port = 80

[virtual_server.health_check]
type = "tcp"
through_vip = false

[[alert]]
name = "hook"
type = "webhook"
events = ["rs_down", "vrrp"]
url = "https://hooks.example.net/lbd"
secret = "s3cret"
timeout = "3s"
retries = 7
backoff = "500ms"
dedup = "0s"
rate_limit = 0
rate_period = "1h"

[[alert]]
name = "ops-mail"
type = "mail"
smtp_server = "mail.example.net:587"
from = "lbd@example.net"
to = ["ops@example.net", "oncall@example.net"]
username = "alerts"
password = "pw"
helo_name = "lvs1.example.net"

[[alert]]
name = "relay"
type = "mail"
smtp_server = "127.0.0.1:25"
from = "lbd@example.net"
to = ["root@localhost"]
starttls = false

[[alert]]
name = "pager"
type = "program"
command = ["/bin/true", "--team", "ops"]

[peer]
name = "lvs2"
url = "https://lvs2.example.net:3636"
token = "lvs2.0123456789abcdef"
tls_ca = "testdata/console.crt"
`

// maximalGroup6 is maximal with an IPv6 sync group instead of the IPv4
// one: the keys exclude each other, so one document cannot hold both.
var maximalGroup6 = strings.NewReplacer(`group = "239.0.0.81"`, `group6 = "ff05::81"`,
	`token = "lvs2.0123456789abcdef"`, `token_file = "testdata/peer.token"`).Replace(maximal)

// maximalInstances is maximal with its [vrrp] written as a named
// [[vrrp_instance]] in a sync group ([vrrp] and [[vrrp_instance]] exclude
// each other).
var maximalInstances = strings.NewReplacer(
	"[vrrp]\n", "[[vrrp_instance]]\nname = \"i1\"\n",
	"[[vrrp.track_interface]]", "[[vrrp_instance.track_interface]]",
	"[sync]\n", "[[vrrp_sync_group]]\nname = \"g1\"\ninstances = [\"i1\"]\n\n[sync]\n",
	// Multicast with an allowlist instead of unicast peers.
	"unicast_peers = [\"10.9.0.2\", \"10.9.0.3\"]\n", "allowed_peers = [\"10.9.0.2\", \"10.9.0.3\"]\nmax_learned_interval = \"7s\"\n",
).Replace(maximal)

func TestRoundTripMaximal(t *testing.T) {
	if maximalGroup6 == maximal {
		t.Fatal("maximalGroup6 does not replace sync.group")
	}
	var data []byte
	for _, src := range []string{maximal, maximalGroup6, maximalInstances, maximalBGP} {
		data = append(data, roundTrip(t, mustParse(t, src))...)
	}

	// Every key of the schema appears in one of the encodings, so a field
	// added to types.go without updating this test (and checking that
	// Encode and the defaults handle it) fails here.
	for _, key := range schemaKeys(reflect.TypeFor[Config](), "") {
		if !bytes.Contains(data, []byte("\n"+key+" = ")) && !bytes.Contains(data, []byte("."+key+"]")) &&
			!bytes.Contains(data, []byte("["+key+"]")) {
			t.Errorf("key %q is not exercised by the maximal config", key)
		}
	}
}

// schemaKeys lists the TOML key names of every field reachable from t.
func schemaKeys(t reflect.Type, _ string) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == durationType {
		return nil
	}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		name := tomlName(t.Field(i))
		if name == "" {
			continue
		}
		keys = append(keys, name)
		keys = append(keys, schemaKeys(t.Field(i).Type, name)...)
	}
	return keys
}

func TestEncodeLeavesOutDefaults(t *testing.T) {
	c := mustParse(t, `[global]
forwarding = "dr"
listen = ":3636"
[[virtual_server]]
name = "web"
vip = "10.0.0.1"
port = 80
scheduler = "wlc"
quorum = 1
[[virtual_server.real_server]]
name = "a"
address = "10.0.1.1"
port = 80
weight = 1
active = true
`)
	data := roundTrip(t, c)
	want := encodeHeader + `
[[virtual_server]]
name = "web"
vip = "10.0.0.1"
port = 80

[[virtual_server.real_server]]
name = "a"
address = "10.0.1.1"
`
	if string(data) != want {
		t.Errorf("Encode =\n%s\nwant\n%s", data, want)
	}
	if !strings.Contains(string(data), "maintained by lbd") || !strings.Contains(string(data), "canonical form") {
		t.Errorf("header does not say the file is maintained by lbd and rewritten in canonical form")
	}
}

func TestDefaultsFilled(t *testing.T) {
	c := mustParse(t, `[global]
interface = "eth3"
[vrrp]
vrid = 1
priority = 100
[[virtual_server]]
name = "web"
vip = "2001:db8::1"
port = 80
[virtual_server.health_check]
type = "http"
[[virtual_server.real_server]]
name = "a"
address = "2001:db8::2"
[[virtual_server]]
name = "m"
fwmark = 5
[[virtual_server.real_server]]
name = "b"
address = "10.0.0.2"
`)
	host := hostname()
	g := c.Global
	if g.NodeName != host || g.Forwarding != "dr" || g.Listen != ":3636" || g.ResyncInterval.Duration != 5*time.Second || g.RemoveGrace.Duration != 5*time.Minute {
		t.Errorf("global defaults: %+v", g)
	}
	if c.Console.SessionTimeout.Duration != 8*time.Hour {
		t.Errorf("console defaults: %+v", c.Console)
	}
	v := c.VRRP
	if v.Version != 3 || v.AdvertInterval.Duration != time.Second || v.Preempt == nil || !*v.Preempt || v.GARPCount != 5 ||
		v.GARPInterval.Duration != 100*time.Millisecond || v.NotifyTimeout.Duration != 10*time.Second || v.Interface != "eth3" {
		t.Errorf("vrrp defaults: %+v", v)
	}
	web := c.VirtualServers[0]
	if web.Protocol != "tcp" || web.Family != "inet6" || web.Scheduler != "wlc" || web.PersistenceNetmask != 128 ||
		web.Forwarding != "dr" || web.Active == nil || !*web.Active || web.Quorum != 1 || web.OnFailure != "quiesce" {
		t.Errorf("virtual server defaults: %+v", web)
	}
	hc := web.HealthCheck
	if hc.Interval.Duration != 2*time.Second || hc.Timeout.Duration != time.Second || hc.Rise != 2 || hc.Fall != 3 ||
		hc.Method != "GET" || hc.Path != "/" || !reflect.DeepEqual(hc.ExpectStatus, []string{"200-399"}) || hc.TLSVerify == nil || *hc.TLSVerify {
		t.Errorf("health check defaults: %+v", hc)
	}
	r := web.RealServers[0]
	if r.Port != 80 || r.Weight == nil || *r.Weight != 1 || r.Forwarding != "dr" || r.Active == nil || !*r.Active {
		t.Errorf("real server defaults: %+v", r)
	}
	m := c.VirtualServers[1]
	if m.Family != "inet" || m.PersistenceNetmask != 32 || m.HealthCheck != nil || m.RealServers[0].Port != 0 {
		t.Errorf("fwmark defaults: %+v", m)
	}
	if c.Path != "t.toml" {
		t.Errorf("Path = %q", c.Path)
	}

	// Forwarding is inherited: global -> service -> real server.
	c = mustParse(t, "[global]\nforwarding = \"nat\"\n"+vs+"[[virtual_server.real_server]]\nname = \"a\"\naddress = \"10.0.1.1\"\nport = 8080\n")
	if c.VirtualServers[0].Forwarding != "nat" || c.VirtualServers[0].RealServers[0].Forwarding != "nat" {
		t.Errorf("forwarding not inherited: %+v", c.VirtualServers[0])
	}
	roundTrip(t, c)
}

func TestRoundTripZeroValuesThatMatter(t *testing.T) {
	c := mustParse(t, `[global]
remove_grace = "0s"
[vrrp]
interface = "eth0"
vrid = 1
priority = 1
garp_count = 0
preempt = false
[[virtual_server]]
name = "web"
vip = "10.0.0.1"
port = 80
quorum = 0
active = false
[[virtual_server.real_server]]
name = "a"
address = "10.0.1.1"
weight = 0
`)
	if c.Global.RemoveGrace.Duration != 0 || c.VRRP.GARPCount != 0 || c.VirtualServers[0].Quorum != 0 || *c.VirtualServers[0].RealServers[0].Weight != 0 {
		t.Fatalf("explicit zeros replaced by defaults: %+v", c)
	}
	data := roundTrip(t, c)
	for _, s := range []string{`remove_grace = "0s"`, "garp_count = 0", "quorum = 0", "weight = 0", "preempt = false", "active = false"} {
		if !strings.Contains(string(data), s) {
			t.Errorf("encoding lacks %s:\n%s", s, data)
		}
	}
}

func TestRoundTripStrings(t *testing.T) {
	c := mustParse(t, maximal)
	hc := c.VirtualServers[0].HealthCheck
	for _, s := range []string{"", "a\"b", `back\slash`, "tab\there", "nl\nnl", "cr\r", "nul\x00", "del\x7f", "esc\x1b", "ünï ☃ 𝄞", `'''`, `"""`} {
		hc.Host = s
		hc.Send = s
		roundTrip(t, c)
	}
}

func TestEncodeErrors(t *testing.T) {
	if _, err := Encode(nil); err == nil {
		t.Error("Encode(nil) succeeded")
	}
	c := mustParse(t, vs+rs)
	c.VirtualServers[0].RealServers[0].Name = "bad\xffutf8"
	_, err := Encode(c)
	if err == nil || !strings.Contains(err.Error(), "virtual_server[0].real_server[0].name") {
		t.Errorf("Encode of invalid UTF-8 = %v, want an error naming the key", err)
	}
}

func TestNormalize(t *testing.T) {
	c := mustParse(t, vs+rs)
	c.Path = "/etc/lbd/lbd.toml"
	// A console form adds a service with only the fields the operator
	// filled in: the defaults come from the same code as for a file.
	// Quorum is one of the few settings where 0 is a value, not "unset".
	c.VirtualServers = append(c.VirtualServers, VirtualServer{
		Name: "dns", VIP: "10.0.0.2", Port: 53, Protocol: "udp", Quorum: 2,
		HealthCheck: &HealthCheck{Type: "dns"},
		RealServers: []RealServer{{Name: "ns1", Address: "10.0.1.53"}},
	})
	n, data, err := Normalize(c)
	if err != nil {
		t.Fatalf("Normalize: %v", err)
	}
	dns := n.FindVirtualServer("dns")
	if dns == nil || dns.Scheduler != "wlc" || dns.Quorum != 2 || dns.HealthCheck.Rise != 2 || *dns.RealServers[0].Weight != 1 || dns.RealServers[0].Port != 53 ||
		dns.HealthCheck.DNSTransport != "udp" || dns.HealthCheck.QueryType != "SOA" {
		t.Errorf("defaults not applied: %+v", dns)
	}
	if n.Path != c.Path {
		t.Errorf("Path = %q", n.Path)
	}
	if want, _ := Encode(n); !bytes.Equal(data, want) {
		t.Errorf("Normalize bytes are not the canonical encoding")
	}

	// An invalid edit gets the file's rules, Keys for the form fields and
	// lines in the canonical text.
	w := 70000
	n.VirtualServers[1].RealServers[0].Weight = &w
	n.VirtualServers[1].Scheduler = "bogus"
	_, data, err = Normalize(n)
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 2 {
		t.Fatalf("Normalize of invalid config = %v", err)
	}
	lines := strings.Split(string(data), "\n")
	for _, p := range ps {
		if p.File != "/etc/lbd/lbd.toml" || p.Line < 1 || p.Line > len(lines) {
			t.Errorf("problem %+v: bad file or line", p)
			continue
		}
		key := p.Key[strings.LastIndex(p.Key, ".")+1:]
		if !strings.HasPrefix(lines[p.Line-1], key+" = ") {
			t.Errorf("problem %+v points at line %q", p, lines[p.Line-1])
		}
	}
	if ps[0].Key != "virtual_server[1].scheduler" || ps[1].Key != "virtual_server[1].real_server[0].weight" {
		t.Errorf("keys: %q, %q", ps[0].Key, ps[1].Key)
	}
}

// TestRoundTripProperty mutates the example configuration at random, one
// field at a time, and checks that every result that validates survives
// Encode/Parse unchanged, and every result that does not is reported with
// a key and a line inside the canonical text.
func TestRoundTripProperty(t *testing.T) {
	base, err := Load("../configs/lbd.toml")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	valid, invalid := 0, 0
	for iter := 0; iter < 400; iter++ {
		c := base.Clone()
		for k := 0; k < 1+rng.IntN(3); k++ {
			mutate(rng, reflect.ValueOf(c).Elem())
		}
		n, data, err := Normalize(c)
		if err != nil {
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("Normalize error %T: %v", err, err)
			}
			lines := bytes.Count(data, []byte("\n"))
			for _, p := range ps {
				if p.Line < 1 || p.Line > lines || p.Key == "" {
					t.Errorf("problem without a line in the text or a key: %+v\n%s", p, data)
				}
			}
			invalid++
			continue
		}
		valid++
		roundTrip(t, n)
	}
	t.Logf("%d valid and %d invalid mutations", valid, invalid)
	if valid < 50 || invalid < 50 {
		t.Errorf("mutations not varied enough: %d valid, %d invalid", valid, invalid)
	}
}

// mutate changes one random scalar somewhere under v.
func mutate(rng *rand.Rand, v reflect.Value) {
	for {
		switch v.Kind() {
		case reflect.Pointer:
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			if v.Type().Elem().Kind() != reflect.Struct {
				mutateScalar(rng, v.Elem())
				return
			}
			v = v.Elem()
		case reflect.Struct:
			if v.Type() == durationType {
				mutateScalar(rng, v)
				return
			}
			var fields []int
			for i := 0; i < v.NumField(); i++ {
				if tomlName(v.Type().Field(i)) != "" {
					fields = append(fields, i)
				}
			}
			v = v.Field(fields[rng.IntN(len(fields))])
		case reflect.Slice:
			if v.Type().Elem().Kind() == reflect.String {
				mutateScalar(rng, v)
				return
			}
			if v.Len() == 0 {
				return
			}
			v = v.Index(rng.IntN(v.Len()))
		default:
			mutateScalar(rng, v)
			return
		}
	}
}

func mutateScalar(rng *rand.Rand, v reflect.Value) {
	strs := []string{"", "x", "rr", "sh", "nat", "tun", "udp", "inet6", "remove", "http", "exec", "10.0.0.7", "2001:db8::7",
		"10.0.0.7:81", "eth1", "/bin/true", "200", "600", "(", "/health", "GET", "web", "a b"}
	switch {
	case v.Type() == durationType:
		ds := []time.Duration{0, -time.Second, 10 * time.Millisecond, 1500 * time.Millisecond, time.Second, 3 * time.Second, time.Hour}
		v.Set(reflect.ValueOf(Duration{ds[rng.IntN(len(ds))]}))
	case v.Kind() == reflect.String:
		v.SetString(strs[rng.IntN(len(strs))])
	case v.Kind() == reflect.Bool:
		v.SetBool(rng.IntN(2) == 0)
	case v.CanInt():
		ns := []int64{0, 1, 2, 3, 24, 53, 80, 255, 256, 65535, 65536, -1}
		v.SetInt(ns[rng.IntN(len(ns))])
	case v.CanUint():
		v.SetUint([]uint64{0, 1, 7, 1 << 32 / 2}[rng.IntN(4)])
	case v.Kind() == reflect.Slice:
		n := rng.IntN(3)
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := 0; i < n; i++ {
			s.Index(i).SetString(strs[rng.IntN(len(strs))])
		}
		v.Set(s)
	}
}

// A udp service's failed real servers are removed by default (a flow
// that keeps its source port never leaves a quiesced one); an explicit
// quiesce is kept, and written back since it is not the udp default.
func TestUDPOnFailureDefault(t *testing.T) {
	c := mustParse(t, `[[virtual_server]]
name = "dns-udp"
vip = "10.0.0.53"
port = 53
protocol = "udp"

[[virtual_server]]
name = "dns-tcp"
vip = "10.0.0.53"
port = 53

[[virtual_server]]
name = "dns-udp-quiesce"
vip = "10.0.0.54"
port = 53
protocol = "udp"
on_failure = "quiesce"
`)
	for i, want := range []string{"remove", "quiesce", "quiesce"} {
		if got := c.VirtualServers[i].OnFailure; got != want {
			t.Errorf("%s: on_failure %q, want %q", c.VirtualServers[i].Name, got, want)
		}
	}
	data := string(roundTrip(t, c))
	if strings.Count(data, "on_failure") != 1 || !strings.Contains(data, "on_failure = \"quiesce\"") {
		t.Errorf("encoded on_failure keys, want only the udp quiesce:\n%s", data)
	}
}
