package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"lbd/config"
)

// TestImportCommand: stdout carries a config lbd accepts, stderr the
// unmapped constructs with FILE:LINE; -o writes 0600 and refuses to replace
// an existing file without -f; a result lbd would refuse exits non-zero
// with the reason and writes nothing.
func TestImportCommand(t *testing.T) {
	src := "../../importer/testdata/lvs.cf"
	var out, errb bytes.Buffer
	if code := run([]string{"import", "piranha", src}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if _, err := config.Parse("out.toml", out.Bytes()); err != nil {
		t.Fatalf("output refused: %v", err)
	}
	if !strings.Contains(errb.String(), "lvs.cf:25: not mapped: load_monitor") {
		t.Errorf("stderr lacks the unmapped load_monitor line: %s", errb.String())
	}

	dir := t.TempDir()
	dst := filepath.Join(dir, "lbd.toml")
	if code := run([]string{"import", "piranha", "-o", dst, src}, &out, &errb); code != 0 {
		t.Fatalf("-o: exit %d: %s", code, errb.String())
	}
	fi, err := os.Stat(dst)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("written file: %v %v", fi, err)
	}
	os.WriteFile(dst, []byte("keep me"), 0o600)
	errb.Reset()
	if code := run([]string{"import", "piranha", "-o", dst, src}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "exists") {
		t.Fatalf("overwrite without -f: exit %d: %s", code, errb.String())
	}
	if b, _ := os.ReadFile(dst); string(b) != "keep me" {
		t.Fatal("existing file changed without -f")
	}
	if code := run([]string{"import", "keepalived", "-o", dst, "-f", "../../importer/testdata/keepalived/keepalived.conf"}, &out, &errb); code != 0 {
		t.Fatalf("-f: exit %d: %s", code, errb.String())
	}
	if _, err := config.Load(dst); err != nil {
		t.Fatal(err)
	}

	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(bad, []byte("vrrp_instance X {\n interface eth0\n virtual_router_id 9\n notify /nonexistent/script\n}\n"), 0o644)
	dst2 := filepath.Join(dir, "bad.toml")
	errb.Reset()
	if code := run([]string{"import", "keepalived", "-o", dst2, bad}, &out, &errb); code != 1 || !strings.Contains(errb.String(), `program "/nonexistent/script" not found`) {
		t.Fatalf("refused result: exit %d: %s", code, errb.String())
	}
	if _, err := os.Stat(dst2); err == nil {
		t.Fatal("a refused result was written")
	}
}
