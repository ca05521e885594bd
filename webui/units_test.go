package webui

import (
	"strings"
	"testing"
	"time"

	"lbd/config"
)

func TestFormPlacesProblems(t *testing.T) {
	f := newForm(rsPrefix(1, 0), rsFields...)
	f.placeProblems(config.Problems{
		{Key: "virtual_server[1].real_server[0].weight", Message: `virtual_server "web" real_server "rs1": weight: must be 0..65535, not 70000`},
		{Key: "virtual_server[1].real_server[1].weight", Message: "other server"},
		{Key: "virtual_server[0].vip", Message: "elsewhere"},
	})
	if got := f.E("weight"); len(got) != 1 || got[0] != "must be 0..65535, not 70000" {
		t.Fatalf("weight errors %q", got)
	}
	if len(f.General) != 2 {
		t.Fatalf("general %q", f.General)
	}

	g := newForm("vrrp.", vrrpFields...)
	g.placeProblems(config.Problems{
		{Key: "vrrp.unicast_peers[1]", Message: `vrrp.unicast_peers[1]: "x" is not an IP address`},
		{Key: `vrrp.track_interface[0].name`, Message: `vrrp.track_interface "eth1": name: interface "eth1" is tracked twice`},
	})
	if got := g.E("unicast_peers"); len(got) != 1 || got[0] != `"x" is not an IP address` {
		t.Fatalf("peer errors %q", got)
	}
	if got := g.E("track_interface"); len(got) != 1 || got[0] != `interface "eth1" is tracked twice` {
		t.Fatalf("track errors %q", got)
	}

	gl := newForm("", globalFields...)
	gl.placeProblems(config.Problems{{Key: "global.listen", Message: `global.listen: "x" is not host:port`}})
	if got := gl.E("global.listen"); len(got) != 1 || got[0] != `"x" is not host:port` {
		t.Fatalf("listen errors %q", got)
	}
}

func TestFormReaders(t *testing.T) {
	f := newForm("", "a", "b", "c", "d")
	f.Values = map[string]string{"a": "12", "b": "1.5", "c": "soon", "d": "x, y\nz"}
	if f.int("a", 0) != 12 || f.duration("b").Duration != 1500*time.Millisecond {
		t.Fatal("int/duration")
	}
	f.duration("c")
	f.int("d", 0)
	if len(f.E("c")) != 1 || len(f.E("d")) != 1 {
		t.Fatalf("errors %v", f.Errors)
	}
	if got := f.list("d"); len(got) != 3 {
		t.Fatalf("list %q", got)
	}
	if f.intPtr("missing") != nil {
		t.Fatal("empty int is not nil")
	}
	if unescapeCRLF(escapeCRLF("a\r\nb")) != "a\r\nb" {
		t.Fatal("CRLF round trip")
	}
}

func TestTokens(t *testing.T) {
	hashes := []string{tokenHash("other"), tokenHash(testToken)}
	if !tokenValid(testToken, hashes) || tokenValid(testToken+"x", hashes) || tokenValid("", hashes) || tokenValid(testToken, nil) {
		t.Fatal("tokenValid")
	}
	for tok, want := range map[string]string{testToken: "ci", "noname": "token", "bad name.x": "token", ".x": "token"} {
		if got := tokenName(tok); got != want {
			t.Errorf("tokenName(%q) = %q, want %q", tok, got, want)
		}
	}
}

func TestLoginLimiter(t *testing.T) {
	l := newLoginLimiter(2, time.Minute)
	now := time.Unix(1000, 0)
	for i := 0; i < 2; i++ {
		if ok, _ := l.allow("192.0.2.1", now); !ok {
			t.Fatal("refused too early")
		}
	}
	ok, wait := l.allow("192.0.2.1", now.Add(10*time.Second))
	if ok || wait != 50*time.Second {
		t.Fatalf("allow = %v, %v", ok, wait)
	}
	if ok, _ := l.allow("192.0.2.2", now); !ok {
		t.Fatal("another address is limited too")
	}
	if ok, _ := l.allow("192.0.2.1", now.Add(time.Minute)); !ok {
		t.Fatal("window did not reset")
	}
	l.succeeded("192.0.2.1")
	if len(l.m) != 1 {
		t.Fatal("success did not forget the address")
	}
}

func TestCleanUser(t *testing.T) {
	for in, want := range map[string]string{"": "admin", " alice ": "alice", "<script>": "script", "a b@c.d": "ab@c.d"} {
		if got := cleanUser(in); got != want {
			t.Errorf("cleanUser(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDurString(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 8 * time.Hour: "8h", 5 * time.Minute: "5m", 90 * time.Second: "1m30s",
		100 * time.Millisecond: "100ms", time.Hour + time.Second: "1h0m1s", 2*time.Hour + 3*time.Minute: "2h3m",
	} {
		if got := durString(config.Duration{Duration: d}); got != want {
			t.Errorf("durString(%v) = %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(durString(config.Duration{Duration: d})); err != nil || back != d {
			t.Errorf("%q does not parse back to %v", durString(config.Duration{Duration: d}), d)
		}
	}
}

// Every screen's fields name settings of its object, and what a form shows
// reads back as the same setting.
func TestFieldsBindRoundTrip(t *testing.T) {
	d := newFakeDirector(t, testConfig(t, ""))
	cfg, _ := d.Config()
	vs := &cfg.VirtualServers[0]
	vs.Quorum = 0 // a zero that is a setting shows as 0, not blank
	for _, tc := range []struct {
		fields []string
		obj    any
		blank  func() any
	}{
		{globalFields, cfg, func() any { return &config.Config{} }},
		{vrrpFields, cfg.VRRP, func() any { return &config.VRRP{} }},
		{vsFields, vs, func() any { return &config.VirtualServer{} }},
		{rsFields, &vs.RealServers[1], func() any { return &config.RealServer{} }},
		{hcFields, vs.HealthCheck, func() any { return &config.HealthCheck{} }},
	} {
		shown := newForm("", tc.fields...)
		shown.load(tc.obj)
		again := newForm("", tc.fields...)
		again.Values, again.Multi = shown.Values, shown.Multi
		obj := tc.blank()
		again.bind(obj)
		if again.Invalid() {
			t.Fatalf("%T: a shown form does not read back: %v", tc.obj, again.Errors)
		}
		back := newForm("", tc.fields...)
		back.load(obj)
		for _, name := range shown.fields {
			if back.Values[name] != shown.Values[name] || strings.Join(back.Multi[name], ",") != strings.Join(shown.Multi[name], ",") {
				t.Errorf("%T %s: shown %q, read back as %q", tc.obj, name, shown.Values[name], back.Values[name])
			}
		}
		if _, ok := tc.obj.(*config.VirtualServer); ok && (shown.V("quorum") != "0" || shown.V("port") != "80" || shown.V("fwmark") != "") {
			t.Errorf("quorum %q, port %q, fwmark %q", shown.V("quorum"), shown.V("port"), shown.V("fwmark"))
		}
	}
}
