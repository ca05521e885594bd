package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteBytesNewFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "lbd.toml")
	if err := WriteBytes(p, []byte("one\n")); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, p); got != "one\n" {
		t.Errorf("content %q", got)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("new file mode %v, want 0600 (it holds password hashes)", fi.Mode().Perm())
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"lbd.toml"}) {
		t.Errorf("directory holds %v", names)
	}
}

func TestWriteBytesKeepsBackupAndMode(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "lbd.toml")
	if err := os.WriteFile(p, []byte("old\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o640); err != nil { // umask-proof
		t.Fatal(err)
	}
	if err := WriteBytes(p, []byte("new\n")); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, p); got != "new\n" {
		t.Errorf("content %q", got)
	}
	if got := readFile(t, p+".bak"); got != "old\n" {
		t.Errorf("backup %q, want the previous version", got)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600 (0640 narrowed: it holds hashes)", fi.Mode().Perm())
	}
	if fi, _ := os.Stat(p + ".bak"); fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v, want 0600", fi.Mode().Perm())
	}
	// The next write replaces the backup with the version it overwrites.
	if err := WriteBytes(p, []byte("newer\n")); err != nil {
		t.Fatal(err)
	}
	if readFile(t, p) != "newer\n" || readFile(t, p+".bak") != "new\n" {
		t.Errorf("after second write: %q / backup %q", readFile(t, p), readFile(t, p+".bak"))
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"lbd.toml", "lbd.toml.bak"}) {
		t.Errorf("directory holds %v", names)
	}
}

func TestWriteBytesThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.toml")
	link := filepath.Join(dir, "lbd.toml")
	if err := os.WriteFile(real, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real.toml", link); err != nil {
		t.Fatal(err)
	}
	if err := WriteBytes(link, []byte("new\n")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("symlink replaced by a file")
	}
	if readFile(t, real) != "new\n" || readFile(t, real+".bak") != "old\n" {
		t.Errorf("target %q backup %q", readFile(t, real), readFile(t, real+".bak"))
	}
}

// Whatever step fails, the old file is intact, no temporary file is left
// and the error says which file.
func TestWriteFailureLeavesOldFile(t *testing.T) {
	for _, step := range []string{"write", "backup", "rename"} {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "lbd.toml")
			if err := os.WriteFile(p, []byte("old\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			injected := errors.New("injected failure")
			err := writeAtomic(p, []byte("new\n"), &writeHooks{fail: func(s string) error {
				if s == step {
					return injected
				}
				return nil
			}})
			if !errors.Is(err, injected) || !strings.Contains(err.Error(), p) {
				t.Fatalf("err = %v", err)
			}
			if got := readFile(t, p); got != "old\n" {
				t.Errorf("old file changed to %q", got)
			}
			for _, n := range dirNames(t, dir) {
				if n != "lbd.toml" && n != "lbd.toml.bak" {
					t.Errorf("left behind %s", n)
				}
			}
		})
	}
}

// A real failure, not an injected one, that also happens as root: the
// backup cannot replace a non-empty directory named lbd.toml.bak.
func TestWriteFailureReal(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "lbd.toml")
	if err := os.WriteFile(p, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(p+".bak", "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	err := WriteBytes(p, []byte("new\n"))
	if err == nil || !strings.Contains(err.Error(), "keeping the previous version") {
		t.Fatalf("err = %v", err)
	}
	if got := readFile(t, p); got != "old\n" {
		t.Errorf("old file changed to %q", got)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"lbd.toml", "lbd.toml.bak"}) {
		t.Errorf("directory holds %v", names)
	}

	// A missing directory and a path that is a directory fail cleanly.
	if err := WriteBytes(filepath.Join(dir, "nodir", "lbd.toml"), []byte("x")); err == nil {
		t.Error("write into a missing directory succeeded")
	}
	if err := WriteBytes(p+".bak", []byte("x")); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("write over a directory: %v", err)
	}
}

func TestWriteAndLoad(t *testing.T) {
	c := mustParse(t, maximal)
	p := filepath.Join(t.TempDir(), "lbd.toml")
	if err := Write(p, c); err != nil {
		t.Fatal(err)
	}
	got, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	c.Path = p
	if !reflect.DeepEqual(got, c) {
		t.Errorf("Load(Write(c)) != c: %s", firstDiff(reflect.ValueOf(c), reflect.ValueOf(got), "config"))
	}
}

func TestLoadErrors(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "missing.toml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want ErrNotExist", err)
	}
	p := filepath.Join(t.TempDir(), "big.toml")
	if err := os.WriteFile(p, make([]byte, MaxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("Load(huge) = %v", err)
	}
}

func TestVersion(t *testing.T) {
	if v := Version([]byte("abc")); v != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("Version(abc) = %s", v)
	}
	if Version([]byte("a")) == Version([]byte("b")) {
		t.Error("different content, same version")
	}
	if !strings.Contains(ErrStale.Error(), "changed by someone else") || !strings.Contains(ErrStale.Error(), "reload") {
		t.Errorf("ErrStale = %q", ErrStale)
	}
}

// A rewrite narrows a file readable by others to 0600 and never widens a
// tighter mode.
func TestWriteBytesNeverWidens(t *testing.T) {
	for _, tc := range []struct{ old, want os.FileMode }{{0o644, 0o600}, {0o666, 0o600}, {0o600, 0o600}, {0o400, 0o400}} {
		p := filepath.Join(t.TempDir(), "lbd.toml")
		if err := os.WriteFile(p, []byte("old\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, tc.old); err != nil {
			t.Fatal(err)
		}
		if err := WriteBytes(p, []byte("new\n")); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{p, p + ".bak"} {
			if fi, _ := os.Stat(f); fi.Mode().Perm() != tc.want {
				t.Errorf("%04o: %s mode %04o after a rewrite, want %04o", tc.old, filepath.Base(f), fi.Mode().Perm(), tc.want)
			}
		}
	}
}

func TestCheckMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lbd.toml")
	if err := os.WriteFile(p, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mode os.FileMode
		want string
	}{
		{0o600, ""},
		{0o400, ""},
		{0o644, "can be read or written by its group or others (mode 0644)"},
		{0o640, "can be read or written by its group (mode 0640)"},
		{0o604, "can be read or written by others (mode 0604)"},
	} {
		if err := os.Chmod(p, tc.mode); err != nil {
			t.Fatal(err)
		}
		got := CheckMode(p)
		if tc.want == "" && got != "" || !strings.Contains(got, tc.want) || tc.want != "" && !strings.Contains(got, "chmod 600 "+p) {
			t.Errorf("CheckMode(%04o) = %q, want %q", tc.mode, got, tc.want)
		}
	}
	if got := CheckMode(filepath.Join(t.TempDir(), "missing")); got != "" {
		t.Errorf("CheckMode(missing) = %q", got)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	if err := WriteFileAtomic(p, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o644 || readFile(t, p) != "one" {
		t.Fatalf("new file: %v %v %q", fi.Mode(), err, readFile(t, p))
	}
	// A rewrite keeps the file's mode, whatever perm says, and keeps no
	// backup.
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(p, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o640 || readFile(t, p) != "two" {
		t.Fatalf("rewritten file: %v %v %q", fi.Mode(), err, readFile(t, p))
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"state.json"}) {
		t.Errorf("directory holds %v", names)
	}
	if err := WriteFileAtomic(dir, []byte("x"), 0o600); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("write over a directory: %v", err)
	}
}

// Whatever step fails, the old file is intact and no temporary file is
// left.
func TestWriteFileAtomicFailureLeavesOldFile(t *testing.T) {
	for _, step := range []string{"write", "rename"} {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "state.json")
			if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			injected := errors.New("injected failure")
			err := writeFileAtomic(p, []byte("new"), 0o644, &writeHooks{fail: func(s string) error {
				if s == step {
					return injected
				}
				return nil
			}})
			if !errors.Is(err, injected) || !strings.Contains(err.Error(), p) {
				t.Fatalf("err = %v", err)
			}
			if got := readFile(t, p); got != "old" {
				t.Errorf("old file changed to %q", got)
			}
			if names := dirNames(t, dir); !slices.Equal(names, []string{"state.json"}) {
				t.Errorf("directory holds %v", names)
			}
		})
	}
}
