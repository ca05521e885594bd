//go:build linux

// Package netlab builds throw-away network topologies for tests: network
// namespaces, a bridge with hosts attached by veth pairs, and helpers to run
// commands or Go code inside a namespace. It shells out to iproute2 (`ip`),
// because that is what operators use and what the tests should exercise.
//
// Every namespace (and so every interface in it) and every process running in
// it is removed by t.Cleanup, also when the test fails. Names carry a random
// suffix because other tests on the same machine create namespaces at the
// same time. Interfaces are created directly inside test namespaces, never in
// the caller's namespace, so a crashed test cannot leave a stray link on the
// host.
//
// Typical use:
//
//	netlab.Require(t)
//	lan := netlab.NewLAN(t, "vrrp", 3) // hosts 0..2 on one bridge
//	a, client := lan.Hosts[0], lan.Hosts[2]
//	client.Exec("ping", "-c1", a.IPv4.Addr().String())
package netlab

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// Require stops a test that cannot build namespaces. Outside CI (env CI
// unset) and not root, it skips with the reason; with CI set, a missing
// prerequisite fails the test, because CI runs as root and a silent skip
// there would hide a broken environment. cmds are further programs the test
// needs on PATH (besides `ip`), such as "keepalived".
func Require(t testing.TB, cmds ...string) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (network namespaces)")
	}
	for _, c := range append([]string{"ip"}, cmds...) {
		if _, err := exec.LookPath(c); err != nil {
			missing = append(missing, c+" on PATH")
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "netlab: needs " + strings.Join(missing, ", ")
	if os.Getenv("CI") != "" {
		t.Fatal(msg + " (CI is set, so this is a failure, not a skip)")
	}
	t.Skip(msg)
}

// NS is a named network namespace created for one test.
type NS struct {
	Name string
	t    testing.TB
}

// NewNS creates a namespace named prefix-XXXXXX with loopback up. At the end
// of the test every process in it is killed and the namespace deleted.
func NewNS(t testing.TB, prefix string) *NS {
	t.Helper()
	name := prefix + "-" + randHex(3)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("netlab: ip netns add %s: %v: %s", name, err, out)
	}
	n := &NS{Name: name, t: t}
	t.Cleanup(n.destroy)
	n.Exec("ip", "link", "set", "lo", "up")
	return n
}

// destroy kills what runs in the namespace, then deletes it. Processes are
// killed first because a namespace with live processes outlives `ip netns del`.
func (n *NS) destroy() {
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids := n.pids()
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			n.t.Errorf("netlab: processes %v still in namespace %s after SIGKILL", pids, n.Name)
			break
		}
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out, err := exec.Command("ip", "netns", "del", n.Name).CombinedOutput(); err != nil {
		n.t.Errorf("netlab: ip netns del %s: %v: %s", n.Name, err, out)
	}
}

// pids lists the processes whose network namespace is n.
func (n *NS) pids() []int {
	out, err := exec.Command("ip", "netns", "pids", n.Name).Output()
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if p, err := strconv.Atoi(f); err == nil && p != os.Getpid() {
			pids = append(pids, p)
		}
	}
	return pids
}

// Cmd returns an unstarted command that runs inside the namespace
// (`ip netns exec NAME name args...`). Processes left running are killed
// when the namespace is destroyed.
func (n *NS) Cmd(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Run runs a command inside the namespace and returns its combined output.
func (n *NS) Run(name string, args ...string) (string, error) {
	var buf bytes.Buffer
	c := n.Cmd(name, args...)
	c.Stdout, c.Stderr = &buf, &buf
	err := c.Run()
	if err != nil {
		err = fmt.Errorf("netlab: in %s: %s %s: %w: %s", n.Name, name, strings.Join(args, " "), err, strings.TrimSpace(buf.String()))
	}
	return buf.String(), err
}

// Exec runs a command inside the namespace and fails the test if it fails.
// It returns the combined output.
func (n *NS) Exec(name string, args ...string) string {
	n.t.Helper()
	out, err := n.Run(name, args...)
	if err != nil {
		n.t.Fatal(err)
	}
	return out
}

// Do runs fn on an OS thread that has entered the namespace. Sockets and
// netlink handles created inside fn stay in the namespace when used later
// from any goroutine; goroutines started inside fn do NOT run in it. The
// thread is discarded afterwards rather than switched back, so no other
// goroutine can ever run in the wrong namespace.
func (n *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		h, err := netns.GetFromName(n.Name)
		if err != nil {
			errc <- fmt.Errorf("netlab: open namespace %s: %w", n.Name, err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- fmt.Errorf("netlab: enter namespace %s: %w", n.Name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Handle opens the namespace for APIs that take one (netlink.NewHandleAt,
// netlink.LinkSubscribeOptions). It is closed at the end of the test.
func (n *NS) Handle() netns.NsHandle {
	n.t.Helper()
	h, err := netns.GetFromName(n.Name)
	if err != nil {
		n.t.Fatalf("netlab: open namespace %s: %v", n.Name, err)
	}
	n.t.Cleanup(func() { h.Close() })
	return h
}

func randHex(nbytes int) string {
	b := make([]byte, nbytes)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// Listen opens a listener inside the namespace (see net.Listen). It keeps
// working from any goroutine; close it when done.
func (n *NS) Listen(network, addr string) (net.Listener, error) {
	var l net.Listener
	err := n.Do(func() (err error) {
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

// Dial connects from inside the namespace (see net.DialTimeout).
func (n *NS) Dial(network, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() (err error) {
		c, err = net.DialTimeout(network, addr, timeout)
		return err
	})
	return c, err
}
