//go:build linux

package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sys/unix"

	"lbd/config"
	"lbd/internal/testutil"
)

const adminTestConfig = `[global]
node_name = "lvs1"

# a comment that the canonical rewrite drops

[[virtual_server]]
name = "web"
vip = "192.0.2.10"
port = 80

[[virtual_server.real_server]]
name = "rs1"
address = "10.0.0.11"
`

func writeConfig(t *testing.T, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "lbd.toml")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPasswdFromStdin(t *testing.T) {
	path := writeConfig(t, adminTestConfig)
	var out, errb bytes.Buffer
	if code := passwd([]string{"-config", path}, strings.NewReader("s3cret-pass\n"), &out, &errb); code != 0 {
		t.Fatalf("passwd: %d %s", code, errb.String())
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if bcrypt.CompareHashAndPassword([]byte(cfg.Console.PasswordHash), []byte("s3cret-pass")) != nil {
		t.Fatalf("stored hash does not match: %q", cfg.Console.PasswordHash)
	}
	if cost, _ := bcrypt.Cost([]byte(cfg.Console.PasswordHash)); cost != bcryptCost {
		t.Fatalf("cost %d", cost)
	}
	if cfg.FindVirtualServer("web").FindRealServer("rs1") == nil {
		t.Fatal("the rest of the config was lost")
	}
	if b, _ := os.ReadFile(path + ".bak"); string(b) != adminTestConfig {
		t.Fatal("no backup of the previous file")
	}
	if strings.Contains(string(mustRead(t, path)), "s3cret") {
		t.Fatal("the password itself is in the file")
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPasswdRefusals(t *testing.T) {
	path := writeConfig(t, adminTestConfig)
	for _, in := range []string{"", "\n", "short\n", strings.Repeat("x", 73) + "\n"} {
		var out, errb bytes.Buffer
		if code := passwd([]string{"-config", path}, strings.NewReader(in), &out, &errb); code != 1 {
			t.Errorf("passwd with %q: code %d", in, code)
		}
		if !strings.Contains(errb.String(), "nothing was changed") {
			t.Errorf("passwd with %q: %s", in, errb.String())
		}
	}
	if string(mustRead(t, path)) != adminTestConfig {
		t.Fatal("a refused password changed the file")
	}

	bad := writeConfig(t, "[global]\nforwarding = \"magic\"\n")
	var out, errb bytes.Buffer
	if code := passwd([]string{"-config", bad}, strings.NewReader("long-enough\n"), &out, &errb); code != 1 {
		t.Fatalf("passwd on an invalid config: %d", code)
	}
	if !strings.Contains(errb.String(), ":2: ") || !strings.Contains(errb.String(), "fix them first") {
		t.Fatalf("invalid config message: %s", errb.String())
	}
	errb.Reset()
	if code := passwd([]string{"-config", filepath.Join(t.TempDir(), "missing.toml")}, strings.NewReader("long-enough\n"), &out, &errb); code != 1 {
		t.Fatalf("passwd on a missing file: %d", code)
	}
	if code := passwd([]string{"-config", path, "extra"}, strings.NewReader(""), &out, &errb); code != 2 {
		t.Fatalf("extra argument: %d", code)
	}
}

// openPTY returns the master and slave ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pts: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// On a terminal the password is asked twice, never echoed, and the
// terminal is left as it was.
func TestPasswdFromTerminal(t *testing.T) {
	for _, tc := range []struct {
		name, first, second string
		code                int
	}{
		{"match", "terminal-pass", "terminal-pass", 0},
		{"differ", "terminal-pass", "terminal-typo", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, adminTestConfig)
			master, slave := openPTY(t)
			var out bytes.Buffer
			prompts := &testutil.Buffer{}
			done := make(chan int, 1)
			go func() { done <- passwd([]string{"-config", path}, slave, &out, prompts) }()
			testutil.WaitOutput(t, 10*time.Second, prompts, "New console password: ")
			fmt.Fprint(master, tc.first+"\n")
			testutil.WaitOutput(t, 10*time.Second, prompts, "Repeat it: ")
			fmt.Fprint(master, tc.second+"\n")
			var code int
			select {
			case code = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("passwd did not finish")
			}
			if code != tc.code {
				t.Fatalf("code %d, want %d: %s", code, tc.code, prompts.String())
			}
			// Echo is on again: a marker typed now comes back; the
			// password typed before must not have.
			fmt.Fprint(master, "MARKER\n")
			var echoed []byte
			buf := make([]byte, 256)
			for !bytes.Contains(echoed, []byte("MARKER")) {
				n, err := master.Read(buf)
				if err != nil {
					t.Fatalf("read pty: %v", err)
				}
				echoed = append(echoed, buf[:n]...)
			}
			if bytes.Contains(echoed, []byte("terminal-")) {
				t.Fatalf("password echoed: %q", echoed)
			}
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			set := cfg.Console.PasswordHash != ""
			if set != (tc.code == 0) {
				t.Fatalf("hash set = %v", set)
			}
		})
	}
}

func TestToken(t *testing.T) {
	path := writeConfig(t, adminTestConfig)
	var toks []string
	for _, name := range []string{"ci", "alice"} {
		var out, errb bytes.Buffer
		if code := token([]string{"-config", path, "-name", name}, &out, &errb); code != 0 {
			t.Fatalf("token: %d %s", code, errb.String())
		}
		tok := strings.TrimSpace(out.String())
		if !strings.HasPrefix(tok, name+".") || len(tok) < len(name)+40 || strings.Contains(tok, "\n") {
			t.Fatalf("token %q", tok)
		}
		if !strings.Contains(errb.String(), "shown only this once") {
			t.Fatalf("stderr %q", errb.String())
		}
		toks = append(toks, tok)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Console.TokenHashes) != 2 {
		t.Fatalf("hashes %v", cfg.Console.TokenHashes)
	}
	for i, tok := range toks {
		sum := sha256.Sum256([]byte(tok))
		if cfg.Console.TokenHashes[i] != hex.EncodeToString(sum[:]) {
			t.Fatalf("hash %d does not match token", i)
		}
		if strings.Contains(string(mustRead(t, path)), tok) {
			t.Fatal("the token itself is in the file")
		}
	}
	if toks[0] == toks[1] {
		t.Fatal("tokens repeat")
	}
	var out, errb bytes.Buffer
	if code := token([]string{"-config", path, "-name", "bad name"}, &out, &errb); code != 2 {
		t.Fatalf("bad name: %d", code)
	}
	if code := token([]string{"-config", filepath.Join(t.TempDir(), "none.toml")}, &out, &errb); code != 1 {
		t.Fatalf("missing file: %d", code)
	}
	if out.Len() != 0 {
		t.Fatalf("a refused token printed %q", out.String())
	}
}

// passwd and token leave the file (and its backup) readable by root only,
// whatever mode it had: it holds the hashes.
func TestAdminCommandsWriteFile0600(t *testing.T) {
	for _, cmd := range []string{"passwd", "token"} {
		path := writeConfig(t, adminTestConfig)
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		var code int
		if cmd == "passwd" {
			code = passwd([]string{"-config", path}, strings.NewReader("s3cret-pass\n"), &out, &errb)
		} else {
			code = token([]string{"-config", path}, &out, &errb)
		}
		if code != 0 {
			t.Fatalf("%s: %d %s", cmd, code, errb.String())
		}
		for _, p := range []string{path, path + ".bak"} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if m := fi.Mode().Perm(); m != 0o600 {
				t.Errorf("%s: %s is mode %04o, want 0600", cmd, p, m)
			}
		}
	}
}

// `lbd token --read-only` stores the hash among the read-only tokens only,
// so the token a scraper holds cannot change anything.
func TestTokenReadOnly(t *testing.T) {
	path := writeConfig(t, adminTestConfig)
	var out, errb bytes.Buffer
	if code := token([]string{"-config", path, "--read-only", "-name", "prometheus"}, &out, &errb); code != 0 {
		t.Fatalf("token: %d %s", code, errb.String())
	}
	tok := strings.TrimSpace(out.String())
	if !strings.HasPrefix(tok, "prometheus.") || !strings.Contains(errb.String(), "read-only") {
		t.Fatalf("token %q, stderr %q", tok, errb.String())
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(tok))
	if len(cfg.Console.ReadTokenHashes) != 1 || cfg.Console.ReadTokenHashes[0] != hex.EncodeToString(sum[:]) {
		t.Fatalf("read-only hashes %v", cfg.Console.ReadTokenHashes)
	}
	if len(cfg.Console.TokenHashes) != 0 {
		t.Fatalf("a read-only token landed among the admin tokens: %v", cfg.Console.TokenHashes)
	}
	if strings.Contains(string(mustRead(t, path)), tok) {
		t.Fatal("the token itself is in the file")
	}
}
