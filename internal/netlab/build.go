//go:build linux

package netlab

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

var builds struct {
	sync.Mutex
	dir   string
	paths map[string]string
	errs  map[string]string // a failed build is not retried by every test
}

// BuildBinary builds the Go main package pkg (an import path such as
// "lbd/cmd/lbd") once per test process and returns the binary's path.
// Binaries go to a per-process directory under $TMPDIR; since a test process
// cannot remove it at exit without a TestMain, each build first removes the
// directories of earlier test processes that are gone.
func BuildBinary(t testing.TB, pkg string) string {
	t.Helper()
	return BuildBinaryTags(t, pkg, "")
}

func removeStaleBuildDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "netlab-bin-*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "netlab-bin-"))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			_ = os.RemoveAll(d)
		}
	}
}

// BuildBinaryTags is BuildBinary with build tags (comma-separated), for a
// test build of a daemon (lbd's -tags fakeipvs). Built once per test
// process and tag set.
func BuildBinaryTags(t testing.TB, pkg, tags string) string {
	t.Helper()
	builds.Lock()
	defer builds.Unlock()
	key := strings.TrimSpace(pkg + " " + tags)
	if p, ok := builds.paths[key]; ok {
		return p
	}
	if msg, ok := builds.errs[key]; ok {
		t.Fatal(msg)
	}
	if builds.dir == "" {
		removeStaleBuildDirs()
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("netlab-bin-%d", os.Getpid()))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatalf("netlab: %v", err)
		}
		builds.dir, builds.paths, builds.errs = dir, map[string]string{}, map[string]string{}
	}
	out := filepath.Join(builds.dir, path.Base(pkg))
	args := []string{"build", "-o", out}
	if tags != "" {
		out += "-" + strings.ReplaceAll(tags, ",", "-")
		args = []string{"build", "-tags", tags, "-o", out}
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		builds.errs[key] = fmt.Sprintf("netlab: go build %s %s: %v\n%s", tags, pkg, err, b)
		t.Fatal(builds.errs[key])
	}
	builds.paths[key] = out
	return out
}
