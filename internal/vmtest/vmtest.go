//go:build linux

// Package vmtest helps tests that run inside the kernel VM (scripts/vm, run
// with `make test-vm`): the gate that keeps them from running on a host
// without IPVS, the project's binaries, long-running processes with their
// logs captured, and the IPVS table read back through netlink.
//
// Namespaces, bridges and veth pairs come from internal/netlab.
package vmtest

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"lbd/internal/netlab"
)

// InVM reports whether the process runs inside the test VM; its /init sets
// LBD_IN_VM=1.
func InVM() bool { return os.Getenv("LBD_IN_VM") == "1" }

// Require stops a test that needs the VM's kernel (IPVS and its schedulers,
// veth, bridges) when it runs anywhere else. Outside CI it skips with the
// reason; with CI set it fails, because a VM test that ends up on the host
// means the harness was bypassed and nothing would have been proven.
func Require(t testing.TB) {
	t.Helper()
	if !InVM() {
		msg := "vmtest: needs the kernel VM (LBD_IN_VM=1): run `make test-vm`, or go test -tags vm -exec $PWD/scripts/vm/go-test-exec"
		if os.Getenv("CI") != "" {
			t.Fatal(msg + " (CI is set, so this is a failure, not a skip)")
		}
		t.Skip(msg)
	}
	netlab.Require(t, "ipvsadm")
}

// Binary returns the path of one of the project's commands (lbd, lbctl).
// scripts/vm/run puts the binaries of `make build` on the VM's PATH; when
// one is missing the test skips, or fails under CI.
func Binary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("vmtest: %s is not on PATH in the VM: run `make build` before the VM tests", name)
	if os.Getenv("CI") != "" {
		t.Fatal(msg + " (CI is set, so this is a failure, not a skip)")
	}
	t.Skip(msg)
	return ""
}

// Eventually polls cond every interval until it reports true or timeout
// passes; then the test fails with what cond last said. TCG emulation makes
// everything in the VM several times slower than on the host, so timeouts
// here are generous bounds, never expectations of speed.
func Eventually(t testing.TB, timeout, interval time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %v: %s", what, timeout, detail)
		}
		time.Sleep(interval)
	}
}
