//go:build linux && !vm

package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"lbd/internal/netlab"
	"lbd/internal/testutil"
)

// Helpers for the host namespace tests of the lbd daemon's VRRP (no IPVS:
// the directors run VRRP-only configurations). These files carry `!vm` so
// the VM's test binary, which has no Go toolchain to build lbd, leaves them
// out.

// vrrpOpts is what differs between the directors of a test.
type vrrpOpts struct {
	priority int
	interval time.Duration
	vip      netip.Addr
	preempt  *bool
	extra    string // more [vrrp] keys, one per line
	tables   string // more tables after [vrrp]
}

// vrrpDirector is one `lbd -config FILE` process in a namespace.
type vrrpDirector struct {
	tb     testing.TB
	h      *netlab.Host
	bin    string
	conf   string
	notify string // one line per transition: "old new"
	out    *testutil.Buffer
	cmd    *exec.Cmd
	done   chan struct{}
}

// vrrpConfig is a VRRP-only lbd.toml (see config/types.go): no virtual
// servers, so lbd runs without IPVS. The notify command appends
// "old new" to a file, an observable record of every transition.
func vrrpConfig(o vrrpOpts, notifyFile string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[global]\ninterface = \"eth0\"\nlisten = \"127.0.0.1:3636\"\n\n[vrrp]\n")
	fmt.Fprintf(&b, "vrid = 51\npriority = %d\nadvert_interval = %q\nvips = [%q]\n", o.priority, o.interval.String(), o.vip.String())
	if o.preempt != nil {
		fmt.Fprintf(&b, "preempt = %v\n", *o.preempt)
	}
	b.WriteString(o.extra)
	fmt.Fprintf(&b, "notify = [\"/bin/sh\", \"-c\", \"echo \\\"$2 $3\\\" >> %s\", \"notify\"]\n", notifyFile)
	b.WriteString(o.tables)
	return b.String()
}

// newVRRPDirector writes the config for lbd in h; start runs it. The
// process is killed at the end of the test (netlab also kills what is left
// in the namespace).
func newVRRPDirector(tb testing.TB, h *netlab.Host, bin string, o vrrpOpts) *vrrpDirector {
	tb.Helper()
	dir := tb.TempDir()
	d := &vrrpDirector{tb: tb, h: h, bin: bin, conf: filepath.Join(dir, "lbd.toml"),
		notify: filepath.Join(dir, "transitions"), out: &testutil.Buffer{}}
	if err := os.WriteFile(d.conf, []byte(vrrpConfig(o, d.notify)), 0o644); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		d.signal(syscall.SIGKILL)
		if tb.Failed() {
			tb.Logf("lbd in %s said:\n%s", h.Name, d.out.String())
		}
	})
	return d
}

// startVRRPDirector is newVRRPDirector and start.
func startVRRPDirector(t *testing.T, h *netlab.Host, bin string, o vrrpOpts) *vrrpDirector {
	t.Helper()
	d := newVRRPDirector(t, h, bin, o)
	d.start()
	return d
}

// start (re)starts lbd with the same configuration.
func (d *vrrpDirector) start() {
	d.tb.Helper()
	d.cmd = d.h.Cmd(d.bin, "-config", d.conf)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		d.tb.Fatal(err)
	}
	d.done = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) {
		c.Wait()
		close(done)
	}(d.cmd, d.done)
}

// signal sends sig and waits for lbd to exit (SIGKILL: at once; SIGTERM:
// after its graceful stop).
func (d *vrrpDirector) signal(sig syscall.Signal) {
	if d.cmd == nil {
		return
	}
	d.cmd.Process.Signal(sig)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		d.tb.Errorf("lbd in %s did not exit on %v", d.h.Name, sig)
		d.cmd.Process.Kill()
		<-d.done
	}
	d.cmd = nil
}

// transitions returns the notify record: ["init backup", "backup master", ...].
func (d *vrrpDirector) transitions() []string {
	b, _ := os.ReadFile(d.notify)
	return strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(b)), " ", "->"))
}

// vrrpWait polls cond every 10ms for up to d and returns how long it took.
func vrrpWait(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("after %v: still not %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// vrrpHolds checks that cond stays true for d.
func vrrpHolds(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if !cond() {
			t.Fatalf("no longer %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// vrrpTouch makes the client resolve the VIP with a connection attempt; a
// gratuitous ARP only updates an existing neighbour entry (arp_accept=0).
func vrrpTouch(client *netlab.Host, vip netip.Addr) {
	if c, err := client.Dial("tcp", netip.AddrPortFrom(vip, 9).String(), time.Second); err == nil {
		c.Close()
	}
}

// vrrpNeighbourIs reports whether the client's neighbour entry for the VIP
// carries h's MAC.
func vrrpNeighbourIs(t *testing.T, client, h *netlab.Host, vip netip.Addr) func() bool {
	return func() bool {
		mac, _, ok := client.Neighbour(t, vip)
		return ok && mac.String() == h.MAC.String()
	}
}

// vrrpOnlyOn says whether exactly the given hosts hold the VIP.
func vrrpOnlyOn(t *testing.T, vip netip.Addr, holders []*netlab.Host, others ...*netlab.Host) func() bool {
	return func() bool {
		for _, h := range holders {
			if !h.HasAddr(t, vip) {
				return false
			}
		}
		for _, h := range others {
			if h.HasAddr(t, vip) {
				return false
			}
		}
		return true
	}
}

// vrrpSkew is Skew_Time for a VRRPv3 priority and interval (RFC 5798).
func vrrpSkew(prio int, interval time.Duration) time.Duration {
	cs := int64(interval / (10 * time.Millisecond))
	return time.Duration(int64(256-prio)*cs/256) * 10 * time.Millisecond
}

// vrrpDown is Master_Down_Interval.
func vrrpDown(prio int, interval time.Duration) time.Duration {
	return 3*interval + vrrpSkew(prio, interval)
}

var vrrpFamilies = []struct {
	name string
	vip  func(*netlab.LAN) netip.Addr
}{
	{"ipv4", func(l *netlab.LAN) netip.Addr { return l.IPv4(100) }},
	{"ipv6", func(l *netlab.LAN) netip.Addr { return l.IPv6(100) }},
}
