//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildBinaries builds lbd and lbctl as make deb does (static, stripped).
func buildBinaries(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	cmd := exec.Command("go", "build", "-ldflags", "-s -w -X main.version=9.9.9-test", "-o", bin+"/", "./cmd/lbd", "./cmd/lbctl")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// throwawayRoot makes the smallest root dpkg --root can install into and
// run maintainer scripts in: an empty dpkg database and a static busybox
// as /bin/sh and the few commands the scripts use. (debootstrap would take
// minutes; the package has no dependencies to resolve.)
func throwawayRoot(t *testing.T) string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal("busybox missing (apt package busybox-static)")
	}
	if out, _ := exec.Command(bb, "--list").Output(); !strings.Contains(string(out), "sh\n") {
		t.Fatal("busybox has no sh")
	}
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "bin", "tmp", "run"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644)
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "bin/busybox"), data, 0o755)
	for _, c := range []string{"sh", "chmod", "rm", "rmdir", "echo", "cat", "ls", "true"} {
		os.Symlink("busybox", filepath.Join(root, "bin", c))
	}
	return root
}

// TestDebInstallRunPurge builds the .deb with nfpm, installs it with dpkg
// into a throwaway root (maintainer scripts run there), runs the installed
// lbd -version and lbd -t on the packaged configuration, and purges it:
// nothing the package or lbd made is left.
func TestDebInstallRunPurge(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("dpkg --root and chroot need root")
		}
		t.Skip("needs root (dpkg --root, chroot)")
	}
	start := time.Now()
	t.Chdir("../..")
	bin := buildBinaries(t)
	built := time.Now()
	gen := t.TempDir()
	list, err := fileList(bin, gen)
	if err != nil {
		t.Fatal(err)
	}
	deb, err := buildDeb(list, "9.9.9~test", "amd64", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(deb) != "lbd_9.9.9~test_amd64.deb" {
		t.Errorf("package name %s", deb)
	}
	packed := time.Now()

	info, _ := exec.Command("dpkg-deb", "-I", deb, "conffiles").CombinedOutput()
	if strings.TrimSpace(string(info)) != "/etc/lbd/lbd.toml" {
		t.Errorf("conffiles: %q", info)
	}
	root := throwawayRoot(t)
	dpkg := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("dpkg", append([]string{"--root=" + root, "--log=/dev/null", "--force-not-root"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("dpkg %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	out := dpkg("-i", deb)
	if !strings.Contains(out, "lbd init") {
		t.Errorf("postinst did not tell what to do next:\n%s", out)
	}
	for _, f := range []string{"usr/sbin/lbd", "usr/bin/lbctl", "lib/systemd/system/lbd.service", "usr/share/man/man8/lbd.8.gz",
		"usr/share/man/man8/lbctl.8.gz", "usr/share/man/man5/lbd.toml.5.gz", "usr/share/bash-completion/completions/lbctl",
		"usr/share/bash-completion/completions/lbd", "usr/share/zsh/vendor-completions/_lbd", "usr/share/fish/vendor_completions.d/lbctl.fish",
		"usr/share/doc/lbd/README.md", "usr/share/doc/lbd/examples/lbd.toml"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("not installed: %v", err)
		}
	}
	fi, err := os.Stat(filepath.Join(root, "etc/lbd/lbd.toml"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("conffile: %v %v", fi, err)
	}
	chroot := func(args ...string) (string, error) {
		out, err := exec.Command("chroot", append([]string{root}, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := chroot("/usr/sbin/lbd", "-version"); err != nil || out != "lbd 9.9.9-test\n" {
		t.Errorf("lbd -version in the root: %v %q", err, out)
	}
	if out, err := chroot("/usr/sbin/lbd", "-t", "-config", "/etc/lbd/lbd.toml"); err != nil || !strings.Contains(out, "configuration OK") {
		t.Errorf("lbd -t in the root: %v %q", err, out)
	}
	if out, err := chroot("/usr/sbin/lbd", "-t", "-config", "/usr/share/doc/lbd/examples/lbd.toml"); err != nil {
		t.Errorf("lbd -t on the packaged example: %v %q", err, out)
	}
	// What lbd itself makes at run time, which purge must remove too.
	os.WriteFile(filepath.Join(root, "etc/lbd/lbd.toml.bak"), []byte("x"), 0o600)
	os.MkdirAll(filepath.Join(root, "run/lbd"), 0o755)

	dpkg("--purge", "lbd")
	var left []string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		rel, _ := filepath.Rel(root, p)
		if err == nil && (strings.HasPrefix(rel, "etc") || strings.HasPrefix(rel, "usr") || strings.HasPrefix(rel, "lib") || strings.HasPrefix(rel, "run/lbd")) {
			left = append(left, rel)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("left after purge: %v", left)
	}
	t.Logf("build %v, package %v, install+run+purge %v", built.Sub(start).Round(time.Millisecond), packed.Sub(built).Round(time.Millisecond), time.Since(packed).Round(time.Millisecond))
}
