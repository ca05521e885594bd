package config

import (
	"strings"
	"testing"
)

// A table defined both by dotted keys and by a header is invalid TOML
// that the parser accepts (merging the two); it is reported with both
// lines.
func TestTableRedefinitions(t *testing.T) {
	t.Run("dotted then header", func(t *testing.T) {
		checkProblems(t, vs+`health_check.type = "tcp"

[virtual_server.health_check]
port = 8080
`, []string{
			`7: virtual_server "web": health_check: this header defines again the table that the dotted keys at line 5 defined (TOML forbids it); write its keys in one place`,
		})
	})
	t.Run("header then dotted", func(t *testing.T) {
		checkProblems(t, `[global.x]
y = 1
[global]
x.z = 2
`, []string{
			`1: global.x: unknown key`,
			`4: global.x: these dotted keys add to the table defined by its header at line 1 (TOML forbids it); write the keys under that header`,
		})
	})
	t.Run("top-level dotted then header", func(t *testing.T) {
		checkProblems(t, `global.node_name = "a"
[global]
interface = "eth0"
`, []string{
			`2: global: this header defines again the table that the dotted keys at line 1 defined (TOML forbids it); write its keys in one place`,
		})
	})
	// The TOML parser refuses these itself; its message gets the first
	// line too.
	t.Run("header twice", func(t *testing.T) {
		checkProblems(t, "[global]\nnode_name = \"a\"\n\n[global]\ninterface = \"eth0\"\n", []string{
			`4: syntax error: Key 'global' has already been defined. (first defined at line 1)`,
		})
	})
	t.Run("header after inline table", func(t *testing.T) {
		checkProblems(t, vs+"health_check = { type = \"tcp\" }\n[virtual_server.health_check]\nport = 81\n", []string{
			`6: syntax error: Key 'virtual_server.health_check' has already been defined. (first defined at line 5)`,
		})
	})
	// Valid: a sub-table of a table defined by dotted keys, a header for
	// a table a header created implicitly, and each array element's own
	// tables.
	for name, src := range map[string]string{
		"sub-table":    vs + "health_check.type = \"tcp\"\n[virtual_server.health_check.extra]\n",
		"implicit":     "[virtual_server.x]\n",
		"per element":  vs + "health_check.type = \"tcp\"\n" + vs + "[virtual_server.health_check]\ntype = \"tcp\"\n",
		"inline table": vs + "health_check = { type = \"tcp\" }\n",
	} {
		t.Run(name, func(t *testing.T) {
			for _, p := range problemsOf(t, src) {
				if strings.Contains(p, "TOML forbids") {
					t.Errorf("%s: %s", name, p)
				}
			}
		})
	}
}
