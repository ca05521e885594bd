package config

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// Nesting thousands deep is refused before the TOML parser sees it, at its
// line, quickly and with little memory (the parser and the line scanner
// took gigabytes for a 29 KB body).
func TestDeepNestingRefused(t *testing.T) {
	const n = 10_000
	cases := map[string]string{
		"inline tables": "[global]\nnode_name = \"a\"\nx = " + strings.Repeat("{a=", n) + "1" + strings.Repeat("}", n) + "\n",
		"arrays":        "[global]\nnode_name = \"a\"\nx = " + strings.Repeat("[", n) + strings.Repeat("]", n) + "\n",
		"dotted key":    "[global]\nnode_name = \"a\"\n" + strings.Repeat("a.", n) + "b = 1\n",
		"header":        "[global]\nnode_name = \"a\"\n[" + strings.Repeat("a.", n) + "b]\n",
		"mixed":         "[global]\nnode_name = \"a\"\ne.f.g.h = { i.j.k = { l.m.n = [[{ o.p.q.r.s = 1 }]] } }\n",
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			var err error
			start := time.Now()
			alloc := allocated(func() { _, err = Parse("deep.toml", []byte(src)) })
			took := time.Since(start)
			t.Logf("%d bytes: %v, %d bytes allocated", len(src), took, alloc)
			var ps Problems
			if !errors.As(err, &ps) || len(ps) != 1 || ps[0].Line != 3 || !strings.Contains(ps[0].Message, "nested more than 16 levels deep") {
				t.Fatalf("Parse = %v, want one problem at line 3 about nesting", err)
			}
			if alloc > 4<<20 {
				t.Errorf("allocated %d bytes, want < 4 MB", alloc)
			}
			if took > time.Second {
				t.Errorf("took %v", took)
			}
		})
	}
	// A million opening braces (no keys: not TOML, nor nesting the scanner
	// counts) are a quick syntax error, not a million-deep recursion.
	src := "[global]\nnode_name = \"a\"\nx = " + strings.Repeat("{", 1<<20) + "\n"
	start := time.Now()
	var err error
	alloc := allocated(func() { _, err = Parse("braces.toml", []byte(src)) })
	if took := time.Since(start); err == nil || took > time.Second || alloc > 16<<20 {
		t.Errorf("a million braces: %v after %v, %d bytes allocated", err, took, alloc)
	}
	// What lbd's schema needs is far from the limit.
	ok := "[[virtual_server]]\nname = \"w\"\nvip = \"10.0.0.1\"\nport = 80\nhealth_check = { type = \"http\", expect_status = [\"200\"] }\n" +
		"[[virtual_server.real_server]]\nname = \"r\"\naddress = \"10.0.0.2\"\n"
	if _, err := Parse("ok.toml", []byte(ok)); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}

// Load reads at most the cap plus one byte, whatever stat says.
func TestLoadSizeCap(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI must run this test: %v", err)
		}
		t.Skip("no /dev/zero on this machine: the unbounded-file case cannot be made")
	}
	var err error
	alloc := allocated(func() { _, err = Load("/dev/zero") })
	if err == nil || !strings.Contains(err.Error(), "more than 8388608 bytes") {
		t.Fatalf("Load(/dev/zero) = %v, want the size refusal", err)
	}
	if alloc > 3*MaxFileSize {
		t.Errorf("Load(/dev/zero) allocated %d bytes", alloc)
	}
	big := filepath.Join(t.TempDir(), "big.toml")
	if err := os.WriteFile(big, make([]byte, MaxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "8388608") {
		t.Fatalf("Load(big) = %v, want the size refusal", err)
	}
}

// Free-text settings have length limits, named in the message.
func TestLengthLimits(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	checkProblems(t, `[global]
node_name = "`+long(65)+`"
[vrrp]
interface = "eth0"
vrid = 1
priority = 100
notify = ["/bin/true", "`+long(4097)+`"]
[[virtual_server]]
name = "`+long(65)+`"
vip = "10.0.0.1"
port = 80
[virtual_server.health_check]
type = "http"
path = "/`+long(4096)+`"
host = "`+long(256)+`"
expect_body = "`+long(4097)+`"
[[virtual_server.real_server]]
name = "`+long(65)+`"
address = "10.0.0.2"
`, []string{
		`2: global.node_name: is 65 bytes long; at most 64 are allowed`,
		`7: vrrp.notify[1]: is 4097 bytes long; at most 4096 are allowed`,
		`9: virtual_server[0]: name: is 65 bytes long; at most 64 are allowed`,
		`14: virtual_server[0]: health_check.path: is 4097 bytes long; at most 4096 are allowed`,
		`15: virtual_server[0]: health_check.host: is 256 bytes long; at most 255 are allowed`,
		`16: virtual_server[0]: health_check.expect_body: is 4097 bytes long; at most 4096 are allowed`,
		`18: virtual_server[0] real_server[0]: name: is 65 bytes long; at most 64 are allowed`,
	})
	// At the limit is fine.
	checkProblems(t, "[global]\nnode_name = \""+long(64)+"\"\n[[virtual_server]]\nname = \""+long(64)+"\"\nvip = \"10.0.0.1\"\nport = 80\n", nil)
}
