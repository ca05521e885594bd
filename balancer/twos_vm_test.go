//go:build vm

package balancer

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"

	"lbd/internal/vmtest"
)

// twos ("weighted random twos choice": pick two real servers at random by
// weight, send to the less loaded) arrived in Linux 6.6. make test-vm runs
// this package on Debian's default kernel (6.1) and on the newest the apt
// sources offer (6.12): the test proves whichever promise the running
// kernel allows, and is never skipped.
func TestVMSchedulerTwos(t *testing.T) {
	vmtest.Require(t)
	kern := vmtest.RunningKernel(t)
	if !kern.AtLeast(6, 6) {
		if os.Getenv("LBD_VM_KERNEL") == "newest" {
			t.Fatalf("LBD_VM_KERNEL=newest booted %s, which has no twos: the newest kernel must be 6.6 or later", kern.Release)
		}
		t.Run("kernel "+kern.Release+" before 6.6 refuses twos", testTwosRefused)
		return
	}
	t.Run("kernel "+kern.Release+" balances with twos", testTwosBalances)
}

// testTwosBalances: a twos service is programmed and read back as such,
// spreads held connections over both real servers, and keeps new ones off
// a quiesced server.
func testTwosBalances(t *testing.T) {
	_, k := openVM(t)
	_, clNS := natLab(t)
	r, _ := newTestReconciler(t, k)
	key := tcp("10.10.9.1:80")
	rs1, rs2 := dest("10.30.0.2:8080", 1, NAT), dest("10.30.0.3:8080", 1, NAT)
	tab := Table{Services: []VirtualService{vsvc(key, "twos", rs1, rs2)}}
	if err := r.Apply(tab); err != nil {
		t.Fatalf("Apply twos: %v", err)
	}
	assertKernel(t, k, tab)
	if out := run(t, "ipvsadm", "-Ln", "-t", "10.10.9.1:80"); !strings.Contains(out, "10.10.9.1:80 twos") {
		t.Fatalf("ipvsadm does not show the twos scheduler:\n%s", out)
	}

	// Held connections: twos compares the two picks' loads, so both
	// servers take some of 10 (all on one would need the same pick on
	// both draws 9 times in a row: 4^-9).
	served := map[netip.Addr]int{}
	var conns []net.Conn
	for range 10 {
		c, who := dialVIP(t, clNS)
		conns = append(conns, c)
		served[who]++
	}
	if served[rs1.Addr] == 0 || served[rs2.Addr] == 0 || served[rs1.Addr]+served[rs2.Addr] != 10 {
		t.Fatalf("10 held connections went %v, want both %s and %s used", served, rs1.Addr, rs2.Addr)
	}
	if _, act, _ := activeConns(t, k, key, rs1.Key()); act != served[rs1.Addr] {
		t.Errorf("kernel counts %d active connections on %s, clients saw %d", act, rs1.Key(), served[rs1.Addr])
	}
	for _, c := range conns {
		c.Close()
	}

	// Quiesced (weight 0): twos never picks it for a new connection.
	tab.Services[0].Destinations[1].Weight = 0
	k.reset()
	if err := r.Apply(tab); err != nil {
		t.Fatal(err)
	}
	assertWrites(t, k, map[Op]int{OpUpdateDestination: 1})
	assertKernel(t, k, tab)
	for i := range 6 {
		if _, who := dialVIP(t, clNS); who != rs1.Addr {
			t.Fatalf("connection %d went to %s, quiesced at weight 0", i, who)
		}
	}

	// And an existing service changes to and from twos in place.
	tab.Services[0].Service.Scheduler = "wrr"
	k.reset()
	if err := r.Apply(tab); err != nil {
		t.Fatal(err)
	}
	tab.Services[0].Service.Scheduler = "twos"
	if err := r.Apply(tab); err != nil {
		t.Fatal(err)
	}
	assertWrites(t, k, map[Op]int{OpUpdateService: 2})
	assertKernel(t, k, tab)
}

// testTwosRefused: a kernel without twos refuses it with an error that
// names the scheduler, the module and the kernel it needs, and the rest
// of the table still goes in.
func testTwosRefused(t *testing.T) {
	_, k := openVM(t)
	r, _ := newTestReconciler(t, k)
	ok := vsvc(tcp("10.10.9.2:80"), "rr", dest("10.30.0.2:8080", 1, NAT))
	twos := vsvc(tcp("10.10.9.1:80"), "twos", dest("10.30.0.2:8080", 1, NAT))
	err := r.Apply(Table{Services: []VirtualService{ok, twos}})
	if err == nil {
		t.Fatalf("kernel %s took a twos service", vmtest.RunningKernel(t).Release)
	}
	t.Logf("lbd reports: %v", err)
	for _, want := range []string{
		"create service tcp/10.10.9.1:80",
		`scheduler "twos" not available in this kernel`,
		"ip_vs_twos",
		"twos needs Linux 6.6 or later",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if !errors.Is(err, syscall.ENOENT) {
		t.Errorf("error %v does not wrap the kernel's ENOENT", err)
	}
	assertKernel(t, k, Table{Services: []VirtualService{ok}})

	// Changing a running service to twos is refused the same way, and the
	// service keeps its scheduler.
	k.reset()
	twos.Key = ok.Key
	err = r.Apply(Table{Services: []VirtualService{twos}})
	if err == nil || !strings.Contains(err.Error(), "update service tcp/10.10.9.2:80") ||
		!strings.Contains(err.Error(), "twos needs Linux 6.6 or later") {
		t.Fatalf("update to twos: %v", err)
	}
	assertKernel(t, k, Table{Services: []VirtualService{ok}})
}
