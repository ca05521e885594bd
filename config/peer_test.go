package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestEveryFieldClassified: every field of every configuration type is
// classified shared, per-node or hidden, and the table names no field that
// does not exist, so a new setting cannot slip past drift detection or a
// save on both.
func TestEveryFieldClassified(t *testing.T) {
	seen := map[reflect.Type]bool{}
	found := map[string]bool{}
	var walk func(reflect.Type)
	walk = func(tt reflect.Type) {
		for tt.Kind() == reflect.Pointer || tt.Kind() == reflect.Slice {
			tt = tt.Elem()
		}
		if !isStructType(tt) || seen[tt] {
			return
		}
		seen[tt] = true
		for i := 0; i < tt.NumField(); i++ {
			f := tt.Field(i)
			if tomlName(f) == "" {
				continue
			}
			k := tt.Name() + "." + f.Name
			found[k] = true
			if _, ok := ClassOf(k); !ok {
				t.Errorf("%s (toml %q) is not classified in config/peer.go fieldClasses: decide whether it must be equal on both directors (Shared), differs per director (PerNode) or is a secret GET /config hides (Hidden)", k, tomlName(f))
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeFor[Config]())
	for k := range fieldClasses {
		if !found[k] {
			t.Errorf("fieldClasses names %s, which is not a configuration field", k)
		}
	}
	for _, k := range []string{"Global.NodeName", "VRRP.Priority", "VRRP.Interface", "VRRP.UnicastSource", "VRRP.UnicastPeers",
		"Global.Listen", "Console.TLSCert", "Console.PasswordHash", "Console.TokenHashes", "Config.Peer", "BGP.RouterID", "Sync.Interface"} {
		if c, _ := ClassOf(k); c != PerNode {
			t.Errorf("%s must be per-node", k)
		}
	}
	for _, k := range []string{"RealServer.Weight", "VirtualServer.VIP", "VRRP.VRID", "VRRP.VIPs", "Sync.ID", "HealthCheck.Type"} {
		if c, _ := ClassOf(k); c != Shared {
			t.Errorf("%s must be shared", k)
		}
	}
}

const pairLocal = `
[global]
node_name = "lvs1"
interface = "eth0"
listen = "127.0.0.1:3636"

[vrrp]
vrid = 51
priority = 150
unicast_source = "10.0.0.1"
unicast_peers = ["10.0.0.2"]

[peer]
name = "lvs2"
url = "http://10.0.0.2:3636"
token = "abc.def"

[[virtual_server]]
name = "web"
vip = "192.0.2.10"
port = 80

[[virtual_server.real_server]]
name = "rs1"
address = "10.0.1.1"
weight = 1

[[virtual_server.real_server]]
name = "rs2"
address = "10.0.1.2"
`

func pairPeerText() string {
	r := strings.NewReplacer(`"lvs1"`, `"lvs2"`, "priority = 150", "priority = 100",
		`unicast_source = "10.0.0.1"`, `unicast_source = "10.0.0.2"`, `unicast_peers = ["10.0.0.2"]`, `unicast_peers = ["10.0.0.1"]`,
		`listen = "127.0.0.1:3636"`, `listen = "127.0.0.1:3637"`,
		"[peer]\nname = \"lvs2\"\nurl = \"http://10.0.0.2:3636\"", "[peer]\nname = \"lvs1\"\nurl = \"http://10.0.0.1:3636\"")
	return r.Replace(pairLocal)
}

func diffKeys(d []DiffEntry) []string {
	var out []string
	for _, e := range d {
		out = append(out, e.Key)
	}
	return out
}

func TestSharedDiff(t *testing.T) {
	a, b := mustParse(t, pairLocal), mustParse(t, pairPeerText())
	if d := SharedDiff(a, b); len(d) != 0 {
		t.Fatalf("configs differing only in per-node keys: diff %v, want none", d)
	}
	if SharedVersion(a) != SharedVersion(b) || SharedVersion(a) == "" {
		t.Fatalf("shared versions %q and %q of configs differing only in per-node keys", SharedVersion(a), SharedVersion(b))
	}
	if a.Global.NodeName != "lvs1" {
		t.Fatal("SharedVersion changed its argument")
	}
	b = mustParse(t, strings.Replace(pairPeerText(), "weight = 1", "weight = 7", 1)+
		"\n[[virtual_server]]\nname = \"dns\"\nvip = \"192.0.2.11\"\nport = 53\nprotocol = \"udp\"\n")
	b.VRRP.AuthPass = "secret"
	if SharedVersion(a) == SharedVersion(b) {
		t.Fatal("shared versions equal for configs that differ")
	}
	d := SharedDiff(a, b)
	want := []string{`vrrp.auth_pass`, `virtual_server["web"].real_server["rs1"].weight`, `virtual_server["dns"]`}
	if !slices.Equal(diffKeys(d), want) {
		t.Fatalf("diff keys %q, want %q", diffKeys(d), want)
	}
	if d[1].Local != "1" || d[1].Peer != "7" {
		t.Errorf("weight values %q/%q, want 1/7", d[1].Local, d[1].Peer)
	}
	if d[0].Peer == `"secret"` || d[0].Local != masked {
		t.Errorf("auth_pass shown as %q/%q: must be hidden", d[0].Local, d[0].Peer)
	}
	if d[2].Local != absent {
		t.Errorf("a service only on the peer: local %q, want %q", d[2].Local, absent)
	}
}

func TestMergeShared(t *testing.T) {
	own := mustParse(t, pairPeerText()) // lvs2 receives lvs1's config
	own.Alerts = []Alert{{Name: "hook", Type: "webhook", URL: "http://x", Secret: "own-secret"}}
	incoming := mustParse(t, strings.Replace(pairLocal, "weight = 1", "weight = 9", 1))
	incoming.Alerts = []Alert{{Name: "hook", Type: "webhook", URL: "http://y"}}
	// A service new to own, with an smtp check whose helo_name defaulted
	// to the sender's node name.
	incoming.VirtualServers = append(incoming.VirtualServers, VirtualServer{Name: "mail", VIP: "192.0.2.25", Port: 25,
		HealthCheck: &HealthCheck{Type: "smtp", HeloName: "lvs1"}})
	if incoming, _, err := Normalize(incoming); err != nil || incoming.VirtualServers[1].HealthCheck.HeloName != "lvs1" {
		t.Fatalf("normalize: %v", err)
	}
	before := incoming.Clone()
	m := MergeShared(own, incoming)
	if !reflect.DeepEqual(incoming, before) {
		t.Fatal("MergeShared changed its argument")
	}
	if m.Global.NodeName != "lvs2" || m.VRRP.Priority != 100 || m.VRRP.UnicastSource != "10.0.0.2" ||
		m.Global.Listen != "127.0.0.1:3637" || m.Peer.Name != "lvs1" || !slices.Equal(m.VRRP.UnicastPeers, []string{"10.0.0.1"}) {
		t.Fatalf("per-node keys not kept: %+v %+v %+v", m.Global, *m.VRRP, *m.Peer)
	}
	if h := m.VirtualServers[1].HealthCheck.HeloName; h != "lvs2" {
		t.Errorf("a new smtp check's helo_name %q, want own node name lvs2", h)
	}
	if w := *m.VirtualServers[0].RealServers[0].Weight; w != 9 {
		t.Errorf("shared weight %d, want 9 (incoming's)", w)
	}
	if m.Alerts[0].URL != "http://y" || m.Alerts[0].Secret != "own-secret" {
		t.Errorf("alert %+v: want incoming's URL and own's secret (left out by incoming)", m.Alerts[0])
	}
	if d := SharedDiff(m, incoming); len(d) != 0 {
		t.Errorf("after a merge the shared settings differ: %v", d)
	}
	if _, _, err := Normalize(m); err != nil {
		t.Errorf("the merged config is invalid: %v", err)
	}
	m.VRRP.UnicastPeers[0] = "changed"
	if own.VRRP.UnicastPeers[0] != "10.0.0.1" {
		t.Error("the merged config shares memory with own")
	}
}

func TestPeerValidation(t *testing.T) {
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "tok")
	if err := os.WriteFile(tokFile, []byte("name.secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, peer, want string }{
		{"ok token", `url = "http://10.0.0.2:3636"` + "\ntoken = \"a.b\"", ""},
		{"ok file", `url = "https://10.0.0.2:3636/"` + "\ntoken_file = \"" + tokFile + "\"", ""},
		{"no url", `token = "a.b"`, "1: peer.url: is required"},
		{"bad url", `url = "ftp://x"` + "\ntoken = \"a.b\"", `2: peer.url: "ftp://x" is not an http:// or https:// URL`},
		{"path", `url = "http://x:1/api"` + "\ntoken = \"a.b\"", `2: peer.url: "http://x:1/api": give the console's base URL only`},
		{"both", `url = "http://x:1"` + "\ntoken = \"a.b\"\ntoken_file = \"" + tokFile + "\"", "4: peer.token_file: set token or token_file, not both"},
		{"neither", `url = "http://x:1"`, "1: peer.token: is required (or token_file)"},
		{"unreadable", `url = "http://x:1"` + "\ntoken_file = \"" + dir + "/nope\"", "3: peer.token_file: cannot read the token file"},
		{"space", `url = "http://x:1"` + "\ntoken = \"a b\"", "3: peer.token: the token holds spaces"},
		{"ca on http", `url = "http://x:1"` + "\ntoken = \"a.b\"\ntls_ca = \"" + tokFile + "\"", "4: peer.tls_ca: is only used with an https:// peer URL"},
		{"bad ca", `url = "https://x:1"` + "\ntoken = \"a.b\"\ntls_ca = \"" + tokFile + "\"", "4: peer.tls_ca: " + tokFile + " holds no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("f", []byte("[peer]\n"+tc.peer+"\n"))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Peer.Name != "peer" {
					t.Errorf("default name %q, want peer", c.Peer.Name)
				}
				if tok, err := c.Peer.ReadToken(); err != nil || tok == "" {
					t.Errorf("ReadToken: %q, %v", tok, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "f:"+tc.want) {
				t.Fatalf("got %v, want f:%s", err, tc.want)
			}
		})
	}
}
