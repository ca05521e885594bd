//go:build vm

// These tests need a kernel with IPVS: they run inside the qemu VM (make
// test-vm), as root, with ip_vs and the scheduler modules loaded and
// ipvsadm and ip on PATH. Each test starts from and leaves an empty table.

package balancer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/sys/unix"

	"lbd/internal/netlab"
	"lbd/internal/testutil"
	"lbd/internal/vmtest"
)

// countingKernel counts the calls that reach the real kernel: each is one
// netlink request.
type countingKernel struct {
	Kernel
	mu sync.Mutex
	n  [numOps]int
}

func (c *countingKernel) inc(op Op) {
	c.mu.Lock()
	c.n[op]++
	c.mu.Unlock()
}

func (c *countingKernel) counts() map[Op]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[Op]int{}
	for op, n := range c.n {
		if n > 0 && Op(op).IsWrite() {
			m[Op(op)] = n
		}
	}
	return m
}

func (c *countingKernel) reset() {
	c.mu.Lock()
	c.n = [numOps]int{}
	c.mu.Unlock()
}

func (c *countingKernel) Services() ([]ServiceStatus, error) {
	c.inc(OpListServices)
	return c.Kernel.Services()
}
func (c *countingKernel) Destinations(k Key) ([]DestinationStatus, error) {
	c.inc(OpListDestinations)
	return c.Kernel.Destinations(k)
}
func (c *countingKernel) CreateService(s Service) error {
	c.inc(OpCreateService)
	return c.Kernel.CreateService(s)
}
func (c *countingKernel) UpdateService(s Service) error {
	c.inc(OpUpdateService)
	return c.Kernel.UpdateService(s)
}
func (c *countingKernel) RemoveService(k Key) error {
	c.inc(OpRemoveService)
	return c.Kernel.RemoveService(k)
}
func (c *countingKernel) CreateDestination(k Key, d Destination) error {
	c.inc(OpCreateDestination)
	return c.Kernel.CreateDestination(k, d)
}
func (c *countingKernel) UpdateDestination(k Key, d Destination) error {
	c.inc(OpUpdateDestination)
	return c.Kernel.UpdateDestination(k, d)
}
func (c *countingKernel) RemoveDestination(k Key, dk DestKey) error {
	c.inc(OpRemoveDestination)
	return c.Kernel.RemoveDestination(k, dk)
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// openVM opens the real kernel on an empty table and empties it again at
// the end.
func openVM(t testing.TB) (*IPVS, *countingKernel) {
	t.Helper()
	run(t, "ipvsadm", "-C")
	k, err := Open()
	if err != nil {
		t.Fatalf("Open in the VM: %v", err)
	}
	t.Cleanup(func() {
		k.Close()
		run(t, "ipvsadm", "-C")
	})
	return k, &countingKernel{Kernel: k}
}

func ipvsadmList(t testing.TB) []ipvsadmEntry {
	t.Helper()
	list, err := parseIPVSADM(run(t, "ipvsadm", "-Ln"))
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// readKernel reads the whole table through the library.
func readKernel(t testing.TB, k Kernel) Table {
	t.Helper()
	svcs, err := k.Services()
	if err != nil {
		t.Fatal(err)
	}
	var tab Table
	for _, s := range svcs {
		vs := VirtualService{Service: s.Service}
		ds, err := k.Destinations(s.Key)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			vs.Destinations = append(vs.Destinations, d.Destination)
		}
		sortDests(vs.Destinations)
		tab.Services = append(tab.Services, vs)
	}
	sortTable(tab)
	return tab
}

// assertKernel checks the table both through the library and ipvsadm.
func assertKernel(t *testing.T, k Kernel, want Table) {
	t.Helper()
	w := wantTable(want)
	if got := readKernel(t, k); !reflect.DeepEqual(got, w) {
		t.Fatalf("library reads\n %+v\nwant\n %+v", got, w)
	}
	if got := ipvsadmTable(ipvsadmList(t)); !reflect.DeepEqual(got, w) {
		t.Fatalf("ipvsadm -Ln reads\n %+v\nwant\n %+v\n%s", got, w, run(t, "ipvsadm", "-Ln"))
	}
}

func assertWrites(t *testing.T, c *countingKernel, want map[Op]int) {
	t.Helper()
	if want == nil {
		want = map[Op]int{}
	}
	if got := c.counts(); !reflect.DeepEqual(got, want) {
		t.Fatalf("netlink writes %v, want %v", got, want)
	}
}

// vmTable covers the schedulers, forwarding methods and service kinds lbd
// programs.
func vmTable() Table {
	return Table{Services: []VirtualService{
		vsvc(tcp("10.10.0.1:80"), "rr",
			dest("10.20.0.1:80", 1, DR), dest("10.20.0.2:80", 1, DR), dest("10.20.0.3:80", 1, DR)),
		vsvc(tcp("10.10.0.2:80"), "wrr",
			dest("10.20.0.4:8080", 3, NAT), dest("10.20.0.5:8081", 1, NAT)),
		vsvc(udp("10.10.0.3:53"), "wlc",
			dest("10.20.0.4:53", 10, DR), dest("10.20.0.5:5353", 20, NAT)),
		{Service: Service{Key: tcp("10.10.0.4:443"), Scheduler: "sh", Flags: FlagSHFallback | FlagSHPort},
			Destinations: []Destination{dest("10.20.0.1:443", 1, DR), dest("10.20.0.2:443", 2, DR)}},
		{Service: Service{Key: tcp("10.10.0.5:443"), Scheduler: "mh", Flags: FlagMHPort,
			Persistence: 300 * time.Second, PersistenceNetmask: 24},
			Destinations: []Destination{dest("10.20.0.1:443", 1, DR), dest("10.20.0.6:443", 1, Tunnel)}},
		{Service: Service{Key: FwmarkKey(42, IPv4), Scheduler: "rr", Persistence: time.Minute},
			Destinations: []Destination{dest("10.20.0.1:0", 1, DR), dest("10.20.0.2:0", 1, DR)}},
		{Service: Service{Key: tcp("[2001:db8:10::1]:80"), Scheduler: "wlc", Persistence: time.Minute, PersistenceNetmask: 64},
			Destinations: []Destination{dest("[2001:db8:20::1]:80", 5, DR), dest("[2001:db8:20::2]:8080", 5, NAT)}},
		{Service: Service{Key: FwmarkKey(43, IPv6), Scheduler: "lc"},
			Destinations: []Destination{dest("[2001:db8:20::3]:0", 1, DR)}},
		vsvc(ServiceKey(SCTP, netip.MustParseAddrPort("10.10.0.7:3868")), "sed",
			dest("10.20.0.7:3868", 1, DR)),
		// An IPv6 real server behind an IPv4 VIP: only tunnelling crosses
		// families.
		vsvc(tcp("10.10.0.8:80"), "nq", dest("[2001:db8:20::4]:80", 1, Tunnel), dest("10.20.0.8:80", 1, Tunnel)),
	}}
}

func TestVMApplyAndReadBack(t *testing.T) {
	_, k := openVM(t)
	r, _ := newTestReconciler(t, k)
	tab := vmTable()
	if err := r.Apply(tab); err != nil {
		t.Fatal(err)
	}
	assertKernel(t, k, tab)
	assertWrites(t, k, map[Op]int{OpCreateService: 10, OpCreateDestination: 19})

	// Nothing changed: no writes from Apply or Resync.
	k.reset()
	if err := r.Apply(vmTable()); err != nil {
		t.Fatal(err)
	}
	if err := r.Resync(); err != nil {
		t.Fatal(err)
	}
	assertWrites(t, k, nil)

	// One weight: one write.
	tab.Services[1].Destinations[0].Weight = 9
	k.reset()
	if err := r.Apply(tab); err != nil {
		t.Fatal(err)
	}
	assertWrites(t, k, map[Op]int{OpUpdateDestination: 1})
	assertKernel(t, k, tab)

	// Snapshot carries what the kernel holds.
	for _, s := range r.Snapshot() {
		if s.Key == tab.Services[1].Key {
			if s.Scheduler != "wrr" || len(s.Destinations) != 2 || s.Destinations[0].Weight != 9 {
				t.Errorf("snapshot %+v", s)
			}
		}
	}
}

// TestVMChangesInPlace finds out which changes the kernel takes as an edit:
// each must be exactly the one update the reconciler plans.
func TestVMChangesInPlace(t *testing.T) {
	_, k := openVM(t)
	r, _ := newTestReconciler(t, k)
	tab := vmTable()
	if err := r.Apply(tab); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name   string
		change func(*Table)
		want   map[Op]int
	}{
		{"scheduler rr->wlc", func(t *Table) { t.Services[0].Scheduler = "wlc" }, map[Op]int{OpUpdateService: 1}},
		{"scheduler to sh with flags", func(t *Table) {
			t.Services[0].Scheduler = "sh"
			t.Services[0].Flags = FlagSHFallback
		}, map[Op]int{OpUpdateService: 1}},
		{"sh flags", func(t *Table) { t.Services[3].Flags = FlagSHPort }, map[Op]int{OpUpdateService: 1}},
		{"mh to fo", func(t *Table) { t.Services[4].Scheduler = "fo"; t.Services[4].Flags = 0 }, map[Op]int{OpUpdateService: 1}},
		{"persistence on", func(t *Table) { t.Services[1].Persistence = 120 * time.Second }, map[Op]int{OpUpdateService: 1}},
		{"persistence timeout", func(t *Table) { t.Services[4].Persistence = 30 * time.Second }, map[Op]int{OpUpdateService: 1}},
		{"persistence netmask v4", func(t *Table) { t.Services[4].PersistenceNetmask = 16 }, map[Op]int{OpUpdateService: 1}},
		{"persistence netmask v6", func(t *Table) { t.Services[6].PersistenceNetmask = 48 }, map[Op]int{OpUpdateService: 1}},
		{"persistence off", func(t *Table) { t.Services[5].Persistence = 0 }, map[Op]int{OpUpdateService: 1}},
		{"ops flag", func(t *Table) { t.Services[2].Flags = FlagOnePacket }, map[Op]int{OpUpdateService: 1}},
		{"forwarding dr->tun", func(t *Table) { t.Services[0].Destinations[0].Forwarding = Tunnel }, map[Op]int{OpUpdateDestination: 1}},
		{"forwarding tun->dr", func(t *Table) { t.Services[0].Destinations[0].Forwarding = DR }, map[Op]int{OpUpdateDestination: 1}},
		{"forwarding dr->nat same port", func(t *Table) { t.Services[3].Destinations[1].Forwarding = NAT }, map[Op]int{OpUpdateDestination: 1}},
		{"nat port change", func(t *Table) { t.Services[1].Destinations[1].Port = 9000 },
			map[Op]int{OpCreateDestination: 1, OpRemoveDestination: 1}},
		{"weight 0", func(t *Table) { t.Services[7].Destinations[0].Weight = 0 }, map[Op]int{OpUpdateDestination: 1}},
		{"add and drop servers", func(t *Table) {
			t.Services[8].Destinations = []Destination{dest("10.20.0.9:3868", 1, DR)}
		}, map[Op]int{OpCreateDestination: 1, OpRemoveDestination: 1}},
		{"drop a service", func(t *Table) { t.Services = t.Services[:9] }, map[Op]int{OpRemoveService: 1}},
	}
	for _, s := range steps {
		s.change(&tab)
		k.reset()
		if err := r.Apply(tab); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := k.counts(); !reflect.DeepEqual(got, s.want) {
			t.Errorf("%s: writes %v, want %v", s.name, got, s.want)
		}
		assertKernel(t, k, tab)
		k.reset()
		if err := r.Resync(); err != nil {
			t.Fatal(err)
		}
		if w := k.counts(); len(w) != 0 {
			t.Errorf("%s: resync after it wrote %v", s.name, w)
		}
	}
}

func TestVMDriftRepair(t *testing.T) {
	_, k := openVM(t)
	r, _ := newTestReconciler(t, k)
	tab := vmTable()
	if err := r.Apply(tab); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		cmds [][]string
		want map[Op]int
	}{
		{"ipvsadm -d", [][]string{{"-d", "-t", "10.10.0.1:80", "-r", "10.20.0.2:80"}},
			map[Op]int{OpCreateDestination: 1}},
		{"ipvsadm -e", [][]string{{"-e", "-t", "10.10.0.2:80", "-r", "10.20.0.4:8080", "-m", "-w", "50"}},
			map[Op]int{OpUpdateDestination: 1}},
		{"ipvsadm -a", [][]string{{"-a", "-f", "42", "-r", "10.20.0.99", "-g", "-w", "1"}},
			map[Op]int{OpRemoveDestination: 1}},
		{"ipvsadm -E", [][]string{{"-E", "-t", "10.10.0.4:443", "-s", "lc"}},
			map[Op]int{OpUpdateService: 1}},
		{"ipvsadm -D", [][]string{{"-D", "-t", "[2001:db8:10::1]:80"}},
			map[Op]int{OpCreateService: 1, OpCreateDestination: 2}},
		{"ipvsadm -C", [][]string{{"-C"}},
			map[Op]int{OpCreateService: 10, OpCreateDestination: 19}},
	}
	for _, s := range steps {
		for _, c := range s.cmds {
			run(t, "ipvsadm", c...)
		}
		k.reset()
		if err := r.Resync(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := k.counts(); !reflect.DeepEqual(got, s.want) {
			t.Errorf("%s: repair writes %v, want %v", s.name, got, s.want)
		}
		assertKernel(t, k, tab)
	}
}

func TestVMForeignServiceUntouched(t *testing.T) {
	_, k := openVM(t)
	run(t, "ipvsadm", "-A", "-t", "10.99.0.1:22", "-s", "rr", "-p", "77")
	run(t, "ipvsadm", "-a", "-t", "10.99.0.1:22", "-r", "10.99.0.2:22", "-g", "-w", "4")
	run(t, "ipvsadm", "-A", "-f", "99", "-6", "-s", "wlc")
	foreign := func() []ipvsadmEntry {
		var out []ipvsadmEntry
		for _, e := range ipvsadmList(t) {
			if e.Key == tcp("10.99.0.1:22") || e.Key == FwmarkKey(99, IPv6) {
				out = append(out, e)
			}
		}
		return out
	}
	before := foreign()
	if len(before) != 2 {
		t.Fatalf("setup: %+v", before)
	}
	log, logs := testLogger()
	r := NewReconciler(k, Options{Logger: log})
	tab := vmTable()
	for i := 0; i < 3; i++ {
		if err := r.Apply(tab); err != nil {
			t.Fatal(err)
		}
		if err := r.Resync(); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Apply(Table{}); err != nil {
		t.Fatal(err)
	}
	if after := foreign(); !reflect.DeepEqual(after, before) {
		t.Fatalf("foreign services changed:\n%+v\n%+v", before, after)
	}
	if n := len(ipvsadmList(t)); n != 2 {
		t.Fatalf("%d services left, want the 2 foreign ones", n)
	}
	if n := strings.Count(logs.String(), "does not manage"); n != 2 {
		t.Errorf("foreign services logged %d times, want 2:\n%s", n, logs)
	}
}

func TestVMSysctls(t *testing.T) {
	if err := SetSysctls(ProcSys{}, true, true); err != nil {
		t.Fatal(err)
	}
	for _, n := range allSysctls {
		b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(n, ".", "/"))
		if err != nil || strings.TrimSpace(string(b)) != "1" {
			t.Errorf("%s: %q %v", n, b, err)
		}
	}
}

// inNetns runs f on a thread switched into the named network namespace;
// sockets f opens stay there. The thread is never unlocked, so it dies
// with the goroutine instead of returning to the pool in another netns.
func inNetns(name string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	return <-errc
}

// natLab builds client -> director (this namespace, VIP on lo) -> real
// servers, the real servers in their own namespace behind a veth, and
// removes it all at the end.
func natLab(t *testing.T) (rsNS, clNS string) {
	t.Helper()
	sfx := fmt.Sprint(os.Getpid() % 100000)
	rsNS, clNS = "lbdrs"+sfx, "lbdcl"+sfx
	for _, ns := range []string{rsNS, clNS} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	// Deleting a namespace frees its veth peers later, in the kernel's
	// cleanup work: delete the pairs first, so that the next test's lab can
	// reuse the names at once.
	for _, l := range []struct{ host, peer, ns string }{{"vrs" + sfx, "p" + sfx, rsNS}, {"vcl" + sfx, "q" + sfx, clNS}} {
		run(t, "ip", "link", "add", l.host, "type", "veth", "peer", "name", l.peer, "netns", l.ns)
		t.Cleanup(func() { exec.Command("ip", "link", "del", l.host).Run() })
	}
	run(t, "ip", "addr", "add", "10.30.0.1/24", "dev", "vrs"+sfx)
	run(t, "ip", "addr", "add", "10.40.0.1/24", "dev", "vcl"+sfx)
	run(t, "ip", "link", "set", "vrs"+sfx, "up")
	run(t, "ip", "link", "set", "vcl"+sfx, "up")
	run(t, "ip", "addr", "add", "10.10.9.1/32", "dev", "lo")
	t.Cleanup(func() { exec.Command("ip", "addr", "del", "10.10.9.1/32", "dev", "lo").Run() })
	for _, c := range [][]string{
		{"-n", rsNS, "link", "set", "lo", "up"},
		{"-n", rsNS, "addr", "add", "10.30.0.2/24", "dev", "p" + sfx},
		{"-n", rsNS, "addr", "add", "10.30.0.3/24", "dev", "p" + sfx},
		{"-n", rsNS, "link", "set", "p" + sfx, "up"},
		{"-n", rsNS, "route", "add", "default", "via", "10.30.0.1"},
		{"-n", clNS, "link", "set", "lo", "up"},
		{"-n", clNS, "addr", "add", "10.40.0.2/24", "dev", "q" + sfx},
		{"-n", clNS, "link", "set", "q" + sfx, "up"},
		{"-n", clNS, "route", "add", "default", "via", "10.40.0.1"},
	} {
		run(t, "ip", c...)
	}
	// NAT forwards through the director.
	if err := SetSysctls(ProcSys{}, true, false); err != nil {
		t.Fatal(err)
	}
	// The real servers: say which address took the connection, then hold
	// it open until the client closes.
	var ln net.Listener
	if err := inNetns(rsNS, func() (err error) { ln, err = net.Listen("tcp4", ":8080"); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fmt.Fprintf(c, "%s\n", c.LocalAddr().(*net.TCPAddr).IP)
				_, _ = bufio.NewReader(c).ReadString('\n')
			}()
		}
	}()
	return rsNS, clNS
}

// dialVIP connects from the client namespace and returns the connection
// and the real server that answered.
func dialVIP(t *testing.T, clNS string) (net.Conn, netip.Addr) {
	t.Helper()
	var c net.Conn
	if err := inNetns(clNS, func() (err error) {
		c, err = net.DialTimeout("tcp4", "10.10.9.1:80", 5*time.Second)
		return
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("no answer through the VIP: %v", err)
	}
	_ = c.SetDeadline(time.Time{})
	return c, netip.MustParseAddr(strings.TrimSpace(line))
}

func activeConns(t *testing.T, k Kernel, key Key, dk DestKey) (weight, active int, present bool) {
	t.Helper()
	d, ok := destStatus(t, k, key, dk)
	return d.Weight, d.ActiveConns, ok
}

func destStatus(t *testing.T, k Kernel, key Key, dk DestKey) (DestinationStatus, bool) {
	t.Helper()
	ds, err := k.Destinations(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.Key() == dk {
			return d, true
		}
	}
	return DestinationStatus{}, false
}

func TestVMGracefulRemovalWithConnection(t *testing.T) {
	_, k := openVM(t)
	_, clNS := natLab(t)
	r, _ := newTestReconciler(t, k) // grace: 1 minute
	key := tcp("10.10.9.1:80")
	rs1, rs2 := dest("10.30.0.2:8080", 1, NAT), dest("10.30.0.3:8080", 1, NAT)
	tab := Table{Services: []VirtualService{vsvc(key, "rr", rs1, rs2)}}
	if err := r.Apply(tab); err != nil {
		t.Fatal(err)
	}

	// 1. Connections end: the server goes once the last one closes.
	conn, served := dialVIP(t, clNS)
	gone, kept := rs1, rs2
	if served == rs2.Addr {
		gone, kept = rs2, rs1
	}
	if _, act, _ := activeConns(t, k, key, gone.Key()); act != 1 {
		t.Fatalf("kernel counts %d active connections on %s, want 1", act, gone.Key())
	}
	tab.Services[0].Destinations = []Destination{kept}
	k.reset()
	if err := r.Apply(tab); err != nil {
		t.Fatal(err)
	}
	assertWrites(t, k, map[Op]int{OpUpdateDestination: 1})
	if w, act, ok := activeConns(t, k, key, gone.Key()); !ok || w != 0 || act != 1 {
		t.Fatalf("after removal: present=%v weight=%d active=%d, want quiesced with its connection", ok, w, act)
	}
	e := ipvsadmList(t)[0]
	if e.Active[gone.Key()] != 1 {
		t.Fatalf("ipvsadm shows %v", e.Active)
	}
	k.reset()
	if err := r.Resync(); err != nil {
		t.Fatal(err)
	}
	assertWrites(t, k, nil) // still busy: left alone

	// The client aborts: the kernel keeps the entry in CLOSE, inactive,
	// for 10 s. Removing the server now would reset what follows, so it
	// stays until the entry is gone.
	_ = conn.(*net.TCPConn).SetLinger(0)
	conn.Close()
	testutil.Eventually(t, 5*time.Second, "the connection to leave the active count", func() bool {
		d, _ := destStatus(t, k, key, gone.Key())
		return d.ActiveConns == 0 && d.InactiveConns == 1
	})
	k.reset()
	if err := r.Resync(); err != nil {
		t.Fatal(err)
	}
	assertWrites(t, k, nil) // an inactive connection: still waiting
	vmtest.Eventually(t, 30*time.Second, 200*time.Millisecond, "the closed entry to expire", func() (bool, string) {
		d, _ := destStatus(t, k, key, gone.Key())
		return d.ActiveConns+d.InactiveConns == 0, fmt.Sprintf("%+v", d)
	})
	k.reset()
	if err := r.Resync(); err != nil {
		t.Fatal(err)
	}
	assertWrites(t, k, map[Op]int{OpRemoveDestination: 1})
	assertKernel(t, k, tab)

	// 2. A connection that stays: removed when the grace period ends.
	tab.Services[0].Destinations = []Destination{rs1, rs2}
	if err := r.Apply(tab); err != nil {
		t.Fatal(err)
	}
	var held netip.Addr
	for i := 0; i < 4 && held != kept.Addr; i++ { // rr alternates
		_, held = dialVIP(t, clNS)
	}
	if held != kept.Addr {
		t.Fatalf("never reached %s", kept.Addr)
	}
	// The grace period passes in virtual time, with a reconciler of the
	// bubble's own (it reads the bubble's clock) that takes the service
	// over as the director's next run would.
	synctest.Test(t, func(t *testing.T) {
		r, _ := newTestReconciler(t, k) // grace: 1 minute
		tab.Services[0].Destinations = []Destination{gone}
		if err := r.Apply(tab); err != nil {
			t.Fatal(err)
		}
		time.Sleep(59 * time.Second)
		_ = r.Resync()
		if w, act, ok := activeConns(t, k, key, kept.Key()); !ok || w != 0 || act < 1 {
			t.Fatalf("before the grace ended: present=%v weight=%d active=%d", ok, w, act)
		}
		time.Sleep(time.Second)
		k.reset()
		if err := r.Resync(); err != nil {
			t.Fatal(err)
		}
		assertWrites(t, k, map[Op]int{OpRemoveDestination: 1})
		assertKernel(t, k, tab)
	})
}

func TestVMRunRepairsDrift(t *testing.T) {
	_, k := openVM(t)
	log, _ := testLogger()
	r := NewReconciler(k, Options{Logger: log, ResyncInterval: 200 * time.Millisecond})
	tab := vmTable()
	if err := r.Apply(tab); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	run(t, "ipvsadm", "-C")
	testutil.Eventually(t, 5*time.Second, "Run to restore the table", func() bool { return len(ipvsadmList(t)) == len(tab.Services) })
	testutil.Eventually(t, 5*time.Second, "the restored table to be complete", func() bool {
		return reflect.DeepEqual(ipvsadmTable(ipvsadmList(t)), wantTable(tab))
	})
}

func TestVMPartialFailureThenRepair(t *testing.T) {
	_, k := openVM(t)
	r, _ := newTestReconciler(t, k)
	tab := vmTable()
	broken := vsvc(tcp("10.10.0.99:80"), "nosuch", dest("10.20.0.1:80", 1, DR))
	tab.Services = append(tab.Services, broken)
	err := r.Apply(tab)
	if err == nil || !strings.Contains(err.Error(), "create service tcp/10.10.0.99:80") ||
		!strings.Contains(err.Error(), `scheduler "nosuch" not available in this kernel`) || !strings.Contains(err.Error(), "ip_vs_nosuch loaded") {
		t.Fatalf("Apply: %v", err)
	}
	assertKernel(t, k, vmTable()) // everything else went in
	if c := r.Counters(); c.Errors != 1 || c.LastError == "" {
		t.Errorf("counters %+v", c)
	}
	tab.Services[len(tab.Services)-1].Scheduler = "rr"
	k.reset()
	if err := r.Apply(tab); err != nil {
		t.Fatal(err)
	}
	assertWrites(t, k, map[Op]int{OpCreateService: 1, OpCreateDestination: 1})
	assertKernel(t, k, tab)
}

// --- connection sync (the kernel's sync daemons), in namespaces ---

// openIPVSIn opens the real kernel's IPVS in ns (its sockets and its
// connection-table file stay there), stops any sync daemon still running
// at the end of the test and closes it, before netlab deletes the
// namespace.
func openIPVSIn(t *testing.T, ns *netlab.NS) *IPVS {
	t.Helper()
	var k *IPVS
	if err := ns.Do(func() (err error) { k, err = Open(); return err }); err != nil {
		t.Fatalf("Open in %s: %v", ns.Name, err)
	}
	t.Cleanup(func() {
		for _, role := range []SyncRole{SyncMaster, SyncBackup} {
			if err := k.StopSyncDaemon(role); err != nil && !errors.Is(err, syscall.ESRCH) {
				t.Errorf("cleanup: %v", err)
			}
		}
		k.Close()
	})
	return k
}

// syncCounter counts the sync-daemon writes that reach the kernel.
type syncCounter struct {
	Kernel
	mu            sync.Mutex
	starts, stops int
}

func (c *syncCounter) StartSyncDaemon(d SyncDaemon) error {
	c.mu.Lock()
	c.starts++
	c.mu.Unlock()
	return c.Kernel.StartSyncDaemon(d)
}

func (c *syncCounter) StopSyncDaemon(r SyncRole) error {
	c.mu.Lock()
	c.stops++
	c.mu.Unlock()
	return c.Kernel.StopSyncDaemon(r)
}

func (c *syncCounter) take() (starts, stops int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	starts, stops = c.starts, c.stops
	c.starts, c.stops = 0, 0
	return starts, stops
}

func syncDaemons(t *testing.T, k Kernel) []SyncDaemon {
	t.Helper()
	ds, err := k.SyncDaemons()
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// ipvsadmDaemon is ipvsadm's line for a daemon, to check what lbd reads
// against the other tool.
func ipvsadmDaemon(d SyncDaemon) string {
	return fmt.Sprintf("%s sync daemon (mcast=%s, syncid=%d, maxlen=%d, group=%s, port=%d, ttl=%d)",
		d.Role, d.Interface, d.SyncID, d.MaxLen, d.Group, d.Port, d.TTL)
}

// TestVMSyncDaemonsRoundTrip starts, lists and stops both roles on the real
// kernel: what the kernel reports for zero settings, every attribute
// set by hand (IPv4 and IPv6 groups), and the errors it answers.
func TestVMSyncDaemonsRoundTrip(t *testing.T) {
	vmtest.Require(t)
	h := netlab.NewLAN(t, "syrt", 1).Hosts[0] // eth0 with IPv4 and IPv6, MTU 1500
	k := openIPVSIn(t, h.NS)
	if ds := syncDaemons(t, k); len(ds) != 0 {
		t.Fatalf("a new namespace runs %+v", ds)
	}

	// Zero settings: the kernel's defaults, as GET_DAEMON reports them.
	for _, d := range []SyncDaemon{{Role: SyncMaster, Interface: "eth0"}, {Role: SyncBackup, Interface: "eth0"}} {
		if err := k.StartSyncDaemon(d); err != nil {
			t.Fatal(err)
		}
	}
	g := netip.MustParseAddr("224.0.0.81")
	want := []SyncDaemon{
		{Role: SyncMaster, Interface: "eth0", Group: g, Port: 8848, TTL: 1, MaxLen: 1472},
		{Role: SyncBackup, Interface: "eth0", Group: g, Port: 8848, TTL: 1, MaxLen: 1472},
	}
	got := syncDaemons(t, k)
	t.Logf("kernel %s reports for zero settings: %+v", strings.TrimSpace(run(t, "uname", "-r")), got)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", got, want)
	}
	adm := h.Exec("ipvsadm", "-L", "--daemon")
	for _, d := range want {
		if !strings.Contains(adm, ipvsadmDaemon(d)) {
			t.Errorf("ipvsadm does not show %q:\n%s", ipvsadmDaemon(d), adm)
		}
		if !(SyncDaemon{Role: d.Role, Interface: "eth0"}).matches(d) {
			t.Errorf("the reconciler would restart %+v", d)
		}
	}

	// The kernel's errors, recognizable.
	err := k.StartSyncDaemon(SyncDaemon{Role: SyncMaster, Interface: "eth0", SyncID: 3})
	if !errors.Is(err, syscall.EEXIST) || !strings.HasPrefix(err.Error(), "balancer: start sync daemon master on eth0: file exists") {
		t.Errorf("second master: %v", err)
	}
	for _, role := range []SyncRole{SyncMaster, SyncBackup} {
		if err := k.StopSyncDaemon(role); err != nil {
			t.Fatal(err)
		}
	}
	if err := k.StopSyncDaemon(SyncBackup); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("stop of a stopped backup: %v", err)
	}
	if err := k.StartSyncDaemon(SyncDaemon{Role: SyncBackup, Interface: "nosuch0"}); !errors.Is(err, syscall.ENODEV) ||
		!strings.Contains(err.Error(), "no such device") {
		t.Errorf("unknown interface: %v", err)
	}
	if ds := syncDaemons(t, k); len(ds) != 0 {
		t.Fatalf("still running: %+v", ds)
	}

	// Every attribute round-trips, IPv4 and IPv6 groups.
	for _, pair := range [][2]SyncDaemon{
		{
			{Role: SyncMaster, Interface: "eth0", SyncID: 200, Group: netip.MustParseAddr("239.7.7.7"), Port: 9999, TTL: 3, MaxLen: 1200},
			{Role: SyncBackup, Interface: "eth0", SyncID: 201, Group: netip.MustParseAddr("239.8.8.8"), Port: 9998, TTL: 9, MaxLen: 4000},
		},
		{
			{Role: SyncMaster, Interface: "eth0", SyncID: 255, Group: netip.MustParseAddr("ff02::1:81"), Port: 8850, TTL: 2, MaxLen: 1300},
			{Role: SyncBackup, Interface: "eth0", SyncID: 0, Group: netip.MustParseAddr("ff05::81"), Port: 8851, TTL: 255, MaxLen: 9000},
		},
	} {
		for _, d := range pair {
			if err := k.StartSyncDaemon(d); err != nil {
				t.Fatal(err)
			}
		}
		got := syncDaemons(t, k)
		if !reflect.DeepEqual(got, pair[:]) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, pair)
		}
		adm := h.Exec("ipvsadm", "-L", "--daemon")
		for _, d := range pair {
			if !d.matches(d) {
				t.Errorf("%s does not match itself", d)
			}
			if d.Group.Is4() && !strings.Contains(adm, ipvsadmDaemon(d)) {
				t.Errorf("ipvsadm does not show %q:\n%s", ipvsadmDaemon(d), adm)
			}
		}
		for _, d := range pair {
			if err := k.StopSyncDaemon(d.Role); err != nil {
				t.Fatal(err)
			}
		}
	}

	// IPv6 defaults: the length follows the bigger header.
	g6 := netip.MustParseAddr("ff02::1:81")
	for _, role := range []SyncRole{SyncMaster, SyncBackup} {
		if err := k.StartSyncDaemon(SyncDaemon{Role: role, Interface: "eth0", Group: g6}); err != nil {
			t.Fatal(err)
		}
	}
	got = syncDaemons(t, k)
	t.Logf("IPv6 group, zero settings: %+v", got)
	for _, d := range got {
		if d.MaxLen != 1500-48 || d.Port != 8848 || d.TTL != 1 || d.Group != g6 {
			t.Errorf("IPv6 defaults %+v", d)
		}
	}
}

// TestVMSyncStopRightAfterStart: stopping a daemon whose kernel thread has
// not run yet gets no answer at all from the kernel (-EINTR from
// kthread_stop, and netlink sends nothing for -EINTR). StopSyncDaemon must
// neither hang nor fail then: the daemon is stopped.
func TestVMSyncStopRightAfterStart(t *testing.T) {
	vmtest.Require(t)
	h := netlab.NewLAN(t, "syst", 1).Hosts[0]
	k := openIPVSIn(t, h.NS)
	unanswered := 0
	for i := range 15 {
		for _, role := range []SyncRole{SyncMaster, SyncBackup} {
			if err := k.StartSyncDaemon(SyncDaemon{Role: role, Interface: "eth0", SyncID: uint8(i)}); err != nil {
				t.Fatal(err)
			}
		}
		for _, role := range []SyncRole{SyncBackup, SyncMaster} {
			t0 := time.Now()
			if err := k.StopSyncDaemon(role); err != nil {
				t.Fatalf("round %d: %v", i, err)
			}
			if time.Since(t0) >= syncCallTimeout {
				unanswered++
			}
		}
		if ds := syncDaemons(t, k); len(ds) != 0 {
			t.Fatalf("round %d: still running %+v", i, ds)
		}
	}
	t.Logf("%d of 30 stops went unanswered by the kernel and were confirmed by a listing", unanswered)
}

// TestVMSyncReconcilerRepairs: the reconciler keeps both daemons running on
// the real kernel, does not restart them over the values the kernel fills
// in, and repairs what ipvsadm does behind its back.
func TestVMSyncReconcilerRepairs(t *testing.T) {
	vmtest.Require(t)
	h := netlab.NewLAN(t, "syrp", 1).Hosts[0]
	ck := &syncCounter{Kernel: openIPVSIn(t, h.NS)}
	log, logs := testLogger()
	r := NewReconciler(ck, Options{Logger: log, ResyncInterval: 300 * time.Millisecond})
	want := []SyncDaemon{
		{Role: SyncMaster, Interface: "eth0", SyncID: 42},
		{Role: SyncBackup, Interface: "eth0", SyncID: 42},
	}
	if err := r.SetSync(want); err != nil {
		t.Fatal(err)
	}
	if s, p := ck.take(); s != 2 || p != 0 {
		t.Fatalf("SetSync: %d starts, %d stops", s, p)
	}
	for range 3 {
		if err := r.Resync(); err != nil {
			t.Fatal(err)
		}
	}
	if s, p := ck.take(); s != 0 || p != 0 {
		t.Fatalf("resyncs restarted daemons: %d starts, %d stops\n%s", s, p, logs)
	}
	since := r.SyncStatus().Daemons[0].Since

	// ipvsadm --stop-daemon master: Resync starts it again.
	h.Exec("ipvsadm", "--stop-daemon", "master")
	if err := r.Resync(); err != nil {
		t.Fatal(err)
	}
	if s, p := ck.take(); s != 1 || p != 0 {
		t.Fatalf("repair: %d starts, %d stops", s, p)
	}
	if ds := syncDaemons(t, ck); len(ds) != 2 || !want[0].matches(ds[0]) {
		t.Fatalf("running %+v", ds)
	}
	if d := r.SyncStatus().Daemons[0]; !d.Running || !d.Since.After(since) {
		t.Errorf("master status after the repair %+v (Since was %v)", d, since)
	}

	// Other settings behind its back: stopped and started with lbd's.
	h.Exec("ipvsadm", "--stop-daemon", "backup")
	h.Exec("ipvsadm", "--start-daemon", "backup", "--mcast-interface", "eth0", "--syncid", "9")
	if err := r.Resync(); err != nil {
		t.Fatal(err)
	}
	if s, p := ck.take(); s != 1 || p != 1 {
		t.Fatalf("restart: %d starts, %d stops", s, p)
	}
	if ds := syncDaemons(t, ck); ds[1].SyncID != 42 {
		t.Fatalf("running %+v", ds)
	}

	// Run repairs within a resync interval.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stopRun := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stopRun)
	stopped := time.Now()
	h.Exec("ipvsadm", "--stop-daemon", "master")
	vmtest.Eventually(t, 10*time.Second, 50*time.Millisecond, "Run to restart the master", func() (bool, string) {
		ds := syncDaemons(t, ck)
		d := r.SyncStatus().Daemons[0]
		return len(ds) == 2 && d.Running && d.Since.After(stopped), fmt.Sprintf("%+v %+v", ds, d)
	})
	t.Logf("master restarted %v after ipvsadm stopped it (resync interval 300ms)", time.Since(stopped).Round(time.Millisecond))
	stopRun()

	// No longer wanted: both stop.
	if err := r.SetSync(nil); err != nil {
		t.Fatal(err)
	}
	if ds := syncDaemons(t, ck); len(ds) != 0 {
		t.Fatalf("still running %+v", ds)
	}
}

// TestVMSyncBetweenNamespaces is connection sync end to end on one bridge:
// directors A and B (each its own namespace, IPVS table and reconciler, the
// same DR services, both sync daemons on both), a client and a real server.
// A holds the VIP; a connection through it reaches B's table as a synced
// entry bound to B's real server, and A never learns its own messages. It
// also shows why SyncSysctls sets sync_period 0: with the kernel's default
// "3 50" a connection whose client has sent only its handshake is never
// sent; with lbd's settings it is, at once.
func TestVMSyncBetweenNamespaces(t *testing.T) {
	vmtest.Require(t)
	lan := netlab.NewLAN(t, "sync", 4)
	a, b, client, rs := lan.Hosts[0], lan.Hosts[1], lan.Hosts[2], lan.Hosts[3]
	vip := lan.IPv4(100)

	// The real server: the VIP on lo, never answering ARP for it. Port 80
	// greets, port 81 says nothing (a client there sends its handshake
	// and no more).
	rs.Exec("ip", "addr", "add", vip.String()+"/32", "dev", "lo")
	rs.Exec("sysctl", "-q", "-w", "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2",
		"net.ipv4.conf.eth0.arp_ignore=1", "net.ipv4.conf.eth0.arp_announce=2")
	// No TCP keep-alives anywhere: a probe (or its answer) would be a
	// packet of an idle connection through A, and a reason to sync it.
	for _, port := range []string{"80", "81"} {
		var ln net.Listener
		err := rs.Do(func() (err error) {
			lc := net.ListenConfig{KeepAlive: -1}
			ln, err = lc.Listen(context.Background(), "tcp4", ":"+port)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					if port == "80" {
						fmt.Fprintln(c, "hello")
					}
					_, _ = io.Copy(io.Discard, c) // hold it until the client closes
				}()
			}
		}()
	}
	// A is the active director: the VIP is on its interface.
	a.Exec("ip", "addr", "add", vip.String()+"/32", "dev", "eth0")

	var tab Table
	for _, port := range []uint16{80, 81} {
		tab.Services = append(tab.Services, vsvc(ServiceKey(TCP, netip.AddrPortFrom(vip, port)), "rr",
			Destination{Addr: rs.IPv4.Addr(), Port: port, Weight: 1, Forwarding: DR}))
	}
	daemons := []SyncDaemon{
		{Role: SyncMaster, Interface: "eth0", SyncID: 77},
		{Role: SyncBackup, Interface: "eth0", SyncID: 77},
	}
	type director struct {
		k *IPVS
		r *Reconciler
	}
	dirs := map[string]director{}
	for name, h := range map[string]*netlab.Host{"A": a, "B": b} {
		k := openIPVSIn(t, h.NS)
		if err := h.Do(func() error { return SetSysctls(ProcSys{}, false, false) }); err != nil {
			t.Fatal(err)
		}
		log, _ := testLogger()
		r := NewReconciler(k, Options{Logger: log})
		if err := r.Apply(tab); err != nil {
			t.Fatal(err)
		}
		if err := r.SetSync(daemons); err != nil {
			t.Fatal(err)
		}
		dirs[name] = director{k, r}
	}
	A, B := dirs["A"], dirs["B"]
	synced := func(d director) ConnCounts {
		t.Helper()
		c, err := d.k.ConnCounts()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	dial := func(port uint16) net.Conn {
		t.Helper()
		var c net.Conn
		err := client.Do(func() (err error) {
			d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: -1}
			c, err = d.Dial("tcp4", netip.AddrPortFrom(vip, port).String())
			return err
		})
		if err != nil {
			t.Fatalf("connect through the VIP: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	// The kernel's defaults (sync_threshold "3 50", no refresh): a
	// handshake alone is two packets through A, and is never sent.
	if got := strings.Fields(a.Exec("cat", "/proc/sys/net/ipv4/vs/sync_threshold")); !reflect.DeepEqual(got, []string{"3", "50"}) {
		t.Fatalf("A's sync_threshold before SetSyncSysctls: %v", got)
	}
	dial(81)
	vmtest.Eventually(t, 10*time.Second, 100*time.Millisecond, "A to count the quiet connection", func() (bool, string) {
		c := synced(A)
		return c.Local == 1, fmt.Sprintf("A: %+v", c)
	})
	time.Sleep(4 * time.Second) // twice the master's flush time
	if c := synced(B); c.Synced != 0 {
		t.Fatalf("B learned a handshake-only connection under the kernel's defaults (%+v): the sync_period reasoning in SyncSysctls is wrong", c)
	}

	// lbd's sync sysctls: the same kind of connection is sent as soon as
	// it is established.
	for _, h := range []*netlab.Host{a, b} {
		if err := h.Do(func() error { return SetSyncSysctls(ProcSys{}, 2*time.Second) }); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Fields(a.Exec("cat", "/proc/sys/net/ipv4/vs/sync_threshold")); !reflect.DeepEqual(got, []string{"3", "0"}) {
		t.Fatalf("A's sync_threshold: %v", got)
	}
	opened := time.Now()
	dial(81)
	vmtest.Eventually(t, 30*time.Second, 100*time.Millisecond, "B to learn the handshake-only connection", func() (bool, string) {
		c := synced(B)
		return c.Synced == 1, fmt.Sprintf("B: %+v", c)
	})
	t.Logf("B learned a handshake-only connection %v after it was established", time.Since(opened).Round(time.Millisecond))

	// A connection with data.
	conn := dial(80)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || line != "hello\n" {
		t.Fatalf("through the VIP: %q %v", line, err)
	}
	opened = time.Now()
	vmtest.Eventually(t, 30*time.Second, 100*time.Millisecond, "B to learn the connection from A", func() (bool, string) {
		c := synced(B)
		return c.Synced == 2, fmt.Sprintf("B: %+v", c)
	})
	t.Logf("B learned the connection %v after it was established", time.Since(opened).Round(time.Millisecond))
	t.Logf("B's table:\n%s", b.Exec("cat", "/proc/net/ip_vs_conn_sync"))

	// A scheduled all three and, multicast loop off, never hears itself.
	if c := synced(A); c.Local != 3 || c.Synced != 0 {
		t.Errorf("A counts %+v, want 3 local, 0 synced", c)
	}
	// The reconciler publishes the counts on a full pass.
	if err := B.r.Resync(); err != nil {
		t.Fatal(err)
	}
	if st := B.r.SyncStatus(); st.Conns != (ConnCounts{Synced: 2}) || st.ConnsAt.IsZero() || len(st.Daemons) != 2 ||
		!st.Daemons[0].Running || !st.Daemons[1].Running {
		t.Errorf("B's SyncStatus %+v", st)
	}
	// The synced entries are bound to B's own real servers.
	for _, vs := range tab.Services {
		ds, err := B.k.Destinations(vs.Key)
		if err != nil || len(ds) != 1 || ds[0].ActiveConns != 1 {
			t.Errorf("B's real server of %s: %+v %v: the synced connection is not bound to it", vs.Key, ds, err)
		}
	}
}

// The connection timeouts against the real kernel: only the wanted ones
// are written (the others stay as they were), and drift is repaired.
func TestVMTimeouts(t *testing.T) {
	_, k := openVM(t)
	run(t, "ipvsadm", "--set", "1000", "120", "300")
	t.Cleanup(func() { run(t, "ipvsadm", "--set", "900", "120", "300") })
	got, err := k.Timeouts()
	if err != nil {
		t.Fatal(err)
	}
	if want := (Timeouts{TCP: 1000 * time.Second, TCPFin: KernelTCPFinTimeout, UDP: KernelUDPTimeout}); got != want {
		t.Fatalf("read %+v after ipvsadm --set 1000 120 300, want %+v", got, want)
	}
	ipvsadmTimeouts := func() string {
		return strings.TrimSpace(run(t, "ipvsadm", "-L", "--timeout"))
	}

	r, _ := newTestReconciler(t, k)
	tab := vmTable()
	tab.Timeouts = Timeouts{TCPFin: 30 * time.Second, UDP: 10 * time.Second}
	if err := r.Apply(tab); err != nil {
		t.Fatal(err)
	}
	const want = "Timeout (tcp tcpfin udp): 1000 30 10"
	if s := ipvsadmTimeouts(); s != want {
		t.Fatalf("ipvsadm says %q, want %q (tcp untouched)", s, want)
	}
	run(t, "ipvsadm", "--set", "1000", "120", "300")
	k.reset()
	if err := r.Resync(); err != nil {
		t.Fatal(err)
	}
	if s := ipvsadmTimeouts(); s != want {
		t.Fatalf("after drift and a resync ipvsadm says %q, want %q", s, want)
	}
	k.reset()
	if err := r.Resync(); err != nil {
		t.Fatal(err)
	}
	if got, err := k.Timeouts(); err != nil || got != (Timeouts{TCP: 1000 * time.Second, TCPFin: 30 * time.Second, UDP: 10 * time.Second}) {
		t.Fatalf("read back %+v, %v", got, err)
	}
}
