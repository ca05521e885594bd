//go:build linux

package lab

import (
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// scripts/vm/run --forward refuses a host port someone already listens on,
// with a message that names it, before any VM boots; and a malformed rule.
func TestForwardRefusesTakenPort(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	run := filepath.Join(repoRoot(t), "scripts", "vm", "run")
	for _, c := range []struct{ rule, want string }{
		{port + ":3636", "port " + port + " is already in use on this host"},
		{"3636", "want HOSTPORT:GUESTPORT"},
		{"70000:3636", "ports are 1-65535"},
	} {
		out, err := exec.Command(run, "--forward", c.rule, "--", "/bin/true").CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("run --forward %s: %v, output %q; want a failure saying %q", c.rule, err, out, c.want)
		}
		if strings.Contains(string(out), "kernel") {
			t.Errorf("run --forward %s went as far as the kernel: %q", c.rule, out)
		}
	}
}
