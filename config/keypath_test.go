package config

import (
	"reflect"
	"testing"
)

func TestKeyPaths(t *testing.T) {
	k := indexKey(joinKey(indexKey(joinKey("", "virtual_server"), 2), "a.b"), 0) + ".c"
	if k != `virtual_server[2]."a.b"[0].c` {
		t.Fatalf("key = %s", k)
	}
	if got := splitKey(k); !reflect.DeepEqual(got, []string{"virtual_server", "[2]", "a.b", "[0]", "c"}) {
		t.Errorf("splitKey = %q", got)
	}
	for _, tt := range [][2]string{
		{k, `virtual_server[2]."a.b"[0]`},
		{`virtual_server[2]."a.b"[0]`, `virtual_server[2]."a.b"`},
		{`virtual_server[2]."a.b"`, `virtual_server[2]`},
		{`virtual_server[2]`, `virtual_server`},
		{`virtual_server`, ``},
	} {
		if got := parentKey(tt[0]); got != tt[1] {
			t.Errorf("parentKey(%s) = %s, want %s", tt[0], got, tt[1])
		}
	}
}
