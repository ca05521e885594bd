package importer

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"lbd/config"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// golden compares got with testdata/NAME, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update and review the diff):\n--- got\n%s", name, got)
	}
}

func notesText(ns []Note) []byte {
	var b bytes.Buffer
	for _, n := range ns {
		b.WriteString(n.String())
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// TestKeepalivedGolden imports a realistic keepalived.conf (includes with a
// glob, ! and # comments, a block opened on the next line, quoted strings,
// IPv6, fwmark, a virtual_server_group with a range) and checks the lbd.toml,
// the list of what was not mapped (with files and lines), and that lbd's
// own parser accepts the result.
func TestKeepalivedGolden(t *testing.T) {
	res, err := Keepalived("testdata/keepalived/keepalived.conf")
	if err != nil {
		t.Fatal(err)
	}
	data, err := res.Encode("lbd.toml")
	if err != nil {
		t.Fatalf("lbd refuses the import: %v\n%s", err, data)
	}
	golden(t, "keepalived.toml", data)
	golden(t, "keepalived.notes", notesText(res.Notes))

	c, err := config.Parse("lbd.toml", data)
	if err != nil {
		t.Fatal(err)
	}
	// The promises, beside the golden file: what each construct became.
	byName := map[string]*config.VirtualServer{}
	for i := range c.VirtualServers {
		byName[c.VirtualServers[i].Name] = &c.VirtualServers[i]
	}
	web := byName["192.0.2.10-80"]
	if web == nil || web.Forwarding != "dr" || web.Persistence.Duration != 300*time.Second || web.PersistenceNetmask != 24 ||
		web.OnFailure != "quiesce" || web.Quorum != 2 || web.SorryServer != "192.0.2.99:8080" ||
		web.HealthCheck.Type != "http" || web.HealthCheck.Path != "/health" || web.HealthCheck.Fall != 3 ||
		web.HealthCheck.Interval.Duration != 6*time.Second || web.HealthCheck.Host != "www.example.com" {
		t.Errorf("HTTP service mapped wrong: %+v", web)
	}
	if s := byName["192.0.2.10-443"]; s == nil || s.Forwarding != "nat" || s.Scheduler != "sh" || s.OnFailure != "remove" || s.HealthCheck.Path != "/health check" {
		t.Errorf("SSL service mapped wrong (block on the next line, quoted path, no inhibit_on_failure): %+v", s)
	}
	if s := byName["fwmark-21"]; s == nil || s.Fwmark != 21 || s.HealthCheck.Port != 21 || s.HealthCheck.Type != "tcp" {
		t.Errorf("fwmark service mapped wrong: %+v", s)
	}
	for _, n := range []string{"DNS-192.0.2.30-53", "DNS-192.0.2.31-53", "DNS-fwmark-53"} {
		if s := byName[n]; s == nil || s.HealthCheck.Type != "dns" || s.HealthCheck.QueryType != "A" {
			t.Errorf("group member %s mapped wrong: %+v", n, s)
		}
	}
	if s := byName["2001_db8__10-25"]; s == nil || s.Family != "inet6" || s.Forwarding != "tun" || s.HealthCheck.Type != "smtp" || len(s.RealServers) != 2 {
		t.Errorf("IPv6 service mapped wrong: %+v", s)
	}
	if c.VRRP != nil || len(c.VRRPInstances) != 2 || c.VRRPInstances[1].Name != "VI_DB" || c.VRRPInstances[1].VRID != 52 ||
		len(c.VRRPSyncGroups) != 1 || strings.Join(c.VRRPSyncGroups[0].Instances, ",") != "VI_WEB,VI_DB" {
		t.Fatalf("two vrrp_instances and a sync group mapped wrong: vrrp %+v, instances %+v, groups %+v", c.VRRP, c.VRRPInstances, c.VRRPSyncGroups)
	}
	v := &c.VRRPInstances[0]
	if v.Name != "VI_WEB" || v.VRID != 51 || v.Priority != 150 || v.Version != 2 || *v.Preempt || v.AuthPass != "s3cret" ||
		v.UnicastSource != "192.0.2.2" || len(v.VIPs) != 5 || v.TrackInterfaces[0].Weight != 20 {
		t.Errorf("vrrp_instance mapped wrong: %+v", v)
	}
	if c.Sync.Interface != "eth1" || *c.Sync.ID != 51 {
		t.Errorf("lvs_sync_daemon mapped wrong: %+v", c.Sync)
	}
	notes := string(notesText(res.Notes))
	for _, want := range []string{
		"keepalived.conf:59: not mapped: notify_master /usr/local/bin/group-master.sh",
		"its address 192.0.2.30 is in no vrrp_instance; lbd needs an owner, so it was added to VI_WEB",
		"conf.d/10-web.conf:19: not mapped: digest",
		"keepalived.conf:41: not mapped: notify_master",
		"conf.d/20-misc.conf:52: not mapped: misc_dynamic",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
}

// TestPiranhaGolden imports a realistic lvs.cf for the primary and the
// backup director.
func TestPiranhaGolden(t *testing.T) {
	for _, backup := range []bool{false, true} {
		res, err := Piranha("testdata/lvs.cf", PiranhaOptions{Backup: backup})
		if err != nil {
			t.Fatal(err)
		}
		data, err := res.Encode("lbd.toml")
		if err != nil {
			t.Fatalf("lbd refuses the import: %v\n%s", err, data)
		}
		name := "lvs-primary"
		if backup {
			name = "lvs-backup"
		}
		golden(t, name+".toml", data)
		golden(t, name+".notes", notesText(res.Notes))
		c, err := config.Parse("lbd.toml", data)
		if err != nil {
			t.Fatal(err)
		}
		self, peer := "192.0.2.2", "192.0.2.3"
		if backup {
			self, peer = peer, self
		}
		if c.VRRP.UnicastSource != self || c.VRRP.UnicastPeers[0] != peer || c.VRRP.AdvertInterval.Duration != 2*time.Second {
			t.Errorf("backup=%v: vrrp %+v", backup, c.VRRP)
		}
		http := c.VirtualServers[0]
		hc := http.HealthCheck
		if http.OnFailure != "quiesce" || hc.Type != "send_expect" || hc.Send != "GET / HTTP/1.0\r\n\r\n" ||
			hc.Expect != `HTTP/1\.1 200` || hc.Fall != 3 || hc.Rise != 8 || *http.RealServers[1].Active {
			t.Errorf("virtual http mapped wrong: %+v %+v", http, hc)
		}
		if ftp := c.VirtualServers[1]; ftp.Fwmark != 21 || ftp.VIP != "" || ftp.HealthCheck.Port != 21 {
			t.Errorf("fwmark virtual mapped wrong: %+v", ftp)
		}
		if dns := c.VirtualServers[2]; dns.Family != "inet6" || dns.HealthCheck.Type != "udp" || dns.HealthCheck.Expect != "^pong" {
			t.Errorf("udp v6 virtual mapped wrong: %+v", dns)
		}
	}
}

// TestLexer covers the syntax keepalived allows.
func TestLexer(t *testing.T) {
	src := "a 1 \"two words\" # comment\nb {\n  c \"q\\\"uote\" ! other comment\n  d { e }\n}\nf\n{\n g\n}\n"
	nodes, notes := parseTree("x", lex([]byte(src), "#!"), nil)
	if len(notes) != 0 {
		t.Fatal(notes)
	}
	got := dump(nodes)
	want := "a[1 two words]@1 b[]@2{c[q\"uote]@3 d[]@4{e[]@4}} f[]@6{g[]@8}"
	if got != want {
		t.Errorf("tree\n got %s\nwant %s", got, want)
	}
	_, notes = parseTree("x", lex([]byte("a {\n b\n"), "#"), nil)
	if len(notes) != 1 || notes[0].Line != 1 || !strings.Contains(notes[0].Text, "not closed") {
		t.Errorf("unclosed block: %v", notes)
	}
	_, notes = parseTree("x", lex([]byte(strings.Repeat("a {\n", 100)), "#"), nil)
	if len(notes) == 0 || !strings.Contains(notes[0].Text, "nested more than") {
		t.Errorf("deep nesting: %v", notes)
	}
}

func dump(ns []*node) string {
	var parts []string
	for _, n := range ns {
		s := n.Key + "[" + strings.Join(n.Args, " ") + "]@" + strconv.Itoa(n.Line)
		if n.Block {
			s += "{" + dump(n.Children) + "}"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// TestIncludeLimits: an include cycle ends at the depth bound with a note.
func TestIncludeLimits(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.conf"), []byte("include a.conf\n"), 0o644)
	res, err := Keepalived(filepath.Join(dir, "a.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(notesText(res.Notes)), "include nested more than 8 deep") {
		t.Errorf("notes: %s", notesText(res.Notes))
	}
}

// FuzzKeepalived: any input maps without panicking; the lexer and parser
// stay linear (a 1 MiB hostile input is timed in TestHostileLinear).
func FuzzKeepalived(f *testing.F) {
	for _, p := range []string{"testdata/keepalived/keepalived.conf", "testdata/keepalived/conf.d/10-web.conf", "testdata/keepalived/conf.d/20-misc.conf", "testdata/lvs.cf"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("{{{{}}}}\"\n\"{"))
	f.Fuzz(func(t *testing.T, b []byte) {
		KeepalivedBytes("f", b)
		PiranhaBytes("f", b, PiranhaOptions{})
	})
}

// TestHostileLinear: inputs built to make a careless parser quadratic or
// deep (unclosed quotes, braces, very long lines) take time proportional to
// their size: 16x the input costs well under 64x the time.
func TestHostileLinear(t *testing.T) {
	shapes := map[string]func(n int) []byte{
		"braces": func(n int) []byte { return bytes.Repeat([]byte("{"), n) },
		"closes": func(n int) []byte { return bytes.Repeat([]byte("}"), n) },
		"quotes": func(n int) []byte { return bytes.Repeat([]byte("\"a "), n) },
		"line":   func(n int) []byte { return append([]byte("virtual_server "), bytes.Repeat([]byte("x "), n)...) },
		"stmts":  func(n int) []byte { return bytes.Repeat([]byte("real_server 1.2.3.4 80 {\nweight 1\n}\n"), n/20) },
	}
	for name, gen := range shapes {
		small, big := gen(16<<10), gen(256<<10)
		ts, tb := timeIt(small), timeIt(big)
		if tb > 64*ts && tb > 200*time.Millisecond {
			t.Errorf("%s: %d bytes took %v, %d bytes %v: not linear", name, len(small), ts, len(big), tb)
		}
	}
}

func timeIt(b []byte) time.Duration {
	best := time.Duration(1 << 62)
	for range 3 {
		start := time.Now()
		KeepalivedBytes("h", b)
		best = min(best, time.Since(start))
	}
	return best
}
