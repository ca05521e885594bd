package config

import (
	"errors"
	"reflect"
	"testing"
)

func TestUnknownKeys(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"top-level table with suggestion", "[globl]\nlisten = \":1\"\n",
			[]string{`1: globl: unknown key (did you mean "global"?)`}},
		{"top-level key", "listen = \":1\"\n",
			[]string{`1: listen: unknown key`}},
		{"nested array of tables: second service, second real server", vs + rs +
			"[[virtual_server]]\nname = \"b\"\nvip = \"10.0.0.2\"\nport = 80\n" + rs +
			"[[virtual_server.real_server]]\nname = \"rs2\"\naddress = \"10.0.1.2\"\nwieght = 3\n",
			[]string{`18: virtual_server "b" real_server "rs2": wieght: unknown key (did you mean "weight"?)`}},
		{"sub-table header after real servers", vs + rs +
			"[virtual_server.health_check]\ntype = \"tcp\"\nintervall = \"5s\"\n",
			[]string{`10: virtual_server "web": health_check.intervall: unknown key (did you mean "interval"?)`}},
		{"dotted keys", vs + "health_check.type = \"tcp\"\nhealth_check.tipe = \"tcp\"\n",
			[]string{`6: virtual_server "web": health_check.tipe: unknown key (did you mean "type"?)`}},
		{"dotted header keys", "[virtual_server]\n",
			[]string{`1: virtual_server: must be an array, not a table`}},
		{"inline table", vs + "health_check = { type = \"tcp\", timeout = \"1s\", rize = 2 }\n",
			[]string{`5: virtual_server "web": health_check.rize: unknown key (did you mean "rise"?)`}},
		{"multi-line inline table (TOML 1.1)", vs + "health_check = {\n  type = \"tcp\",\n  # comment\n  rize = 2,\n}\n",
			[]string{`8: virtual_server "web": health_check.rize: unknown key (did you mean "rise"?)`}},
		{"array of inline tables across lines", vs + "real_server = [\n  { name = \"a\", address = \"10.0.1.1\" },\n\n  { name = \"b\",\n    address = \"10.0.1.2\", colour = \"red\" },\n]\n",
			[]string{`9: virtual_server "web" real_server "b": colour: unknown key`}},
		{"quoted keys", vs + "\"sched uler\" = \"rr\"\n'lit' = 1\n\"port\\u0031\" = 2\n",
			[]string{
				`5: virtual_server "web": "sched uler": unknown key (did you mean "scheduler"?)`,
				`6: virtual_server "web": lit: unknown key`,
				`7: virtual_server "web": port1: unknown key (did you mean "port"?)`,
			}},
		{"quoted table header segments", "[\"global\"]\nx = 1\n[ virtual_server . \"health_check\" ]\n",
			[]string{`2: global.x: unknown key`, `3: virtual_server: must be an array, not a table`}},
		{"multi-line strings do not confuse the scanner", vs + "sorry_server = \"\"\"\n[[virtual_server]]\nbogus = 1\n\"\"\"\n" +
			"forwarding = '''\n[x]\n'''\nbogus2 = 1\n",
			[]string{
				`5: virtual_server "web": sorry_server: "[[virtual_server]]\nbogus = 1\n" is not an address or address:port`,
				`9: virtual_server "web": forwarding: unknown forwarding method "[x]\n" (valid: dr, nat, tun)`,
				`12: virtual_server "web": bogus2: unknown key`,
			}},
		{"brackets and hashes inside strings and comments", vs + "# [[virtual_server]] in a comment\nscheduler = \"rr\" # ] } [\n" +
			"scheduler_flags = [ # [\n \"]\", # ]\n]\nbogus = 1\n",
			[]string{
				`8: virtual_server "web": scheduler_flags[0]: scheduler rr takes no flags (got "]")`,
				`10: virtual_server "web": bogus: unknown key`,
			}},
		{"byte order mark", "\ufeff[global]\nlisten = \"x\"\nfoo = 1\n",
			[]string{
				`2: global.listen: "x" is not host:port (for example ":3636" or "127.0.0.1:3636")`,
				`3: global.foo: unknown key`,
			}},
		{"CRLF line ends", "[global]\r\nlisten = \"x\"\r\n\r\nfoo = 1\r\n",
			[]string{
				`2: global.listen: "x" is not host:port (for example ":3636" or "127.0.0.1:3636")`,
				`4: global.foo: unknown key`,
			}},
		{"unknown key inside unknown table", "[vrrp.extra]\nx = 1\n",
			[]string{
				`1: vrrp.extra: unknown key`,
				`1: vrrp.vrid: is required (1..255, the same on both directors)`,
				`1: vrrp.priority: is required (1..255, the higher becomes master)`,
				`1: vrrp.interface: is required (set vrrp.interface or global.interface)`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkProblems(t, tt.src, tt.want)
			// The fuzz test's oracle agrees on every case here.
			var ps Problems
			if _, err := Parse("t.toml", []byte(tt.src)); !errors.As(err, &ps) {
				t.Fatalf("Parse: %v", err)
			}
			checkProblemLines(t, []byte(tt.src), ps)
		})
	}
}

func TestScanPositions(t *testing.T) {
	src := `# header comment
[global]
listen = ":1"

[[virtual_server]]
name = "a"
  [[virtual_server.real_server]]
  name = "a1"
  [[virtual_server.real_server]]
  name = "a2"
  [virtual_server.health_check]
  type = "tcp"

[[virtual_server]]
name = "b"
health_check.type = "http"
real_server = [
  {name = "b1"},
  {name = "b2", weight = 3},
]
x = 1979-05-27 07:32:00Z
y = "after date"
`
	want := positions{
		"global":                                  2,
		"global.listen":                           3,
		"virtual_server":                          5,
		"virtual_server[0]":                       5,
		"virtual_server[0].name":                  6,
		"virtual_server[0].real_server":           7,
		"virtual_server[0].real_server[0]":        7,
		"virtual_server[0].real_server[0].name":   8,
		"virtual_server[0].real_server[1]":        9,
		"virtual_server[0].real_server[1].name":   10,
		"virtual_server[0].health_check":          11,
		"virtual_server[0].health_check.type":     12,
		"virtual_server[1]":                       14,
		"virtual_server[1].name":                  15,
		"virtual_server[1].health_check":          16,
		"virtual_server[1].health_check.type":     16,
		"virtual_server[1].real_server":           17,
		"virtual_server[1].real_server[0]":        18,
		"virtual_server[1].real_server[0].name":   18,
		"virtual_server[1].real_server[1]":        19,
		"virtual_server[1].real_server[1].name":   19,
		"virtual_server[1].real_server[1].weight": 19,
		"virtual_server[1].x":                     21,
		"virtual_server[1].y":                     22,
	}
	got, _ := scanPositions([]byte(src))
	if !reflect.DeepEqual(got, want) {
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: line %d, want %d", k, got[k], v)
			}
		}
		for k, v := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("unexpected %s at line %d", k, v)
			}
		}
	}
	// A missing key falls back to its table.
	if l := got.line("virtual_server[0].real_server[1].weight"); l != 9 {
		t.Errorf("line of missing key = %d, want 9 (its table header)", l)
	}
	if l := got.line("vrrp.vrid"); l != 0 {
		t.Errorf("line of key in missing table = %d, want 0", l)
	}
}
