//go:build vm

// These tests need a kernel with IPVS: they run inside the qemu VM (make
// test-vm), as root, with ip_vs and the scheduler modules loaded and
// ipvsadm and ip on PATH. Each test starts from and leaves an empty table.

package balancer

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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
	r, _, _ := newTestReconciler(t, k)
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
	r, _, _ := newTestReconciler(t, k)
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
	r, _, _ := newTestReconciler(t, k)
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
	run(t, "ip", "link", "add", "vrs"+sfx, "type", "veth", "peer", "name", "p"+sfx, "netns", rsNS)
	run(t, "ip", "link", "add", "vcl"+sfx, "type", "veth", "peer", "name", "q"+sfx, "netns", clNS)
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
	ds, err := k.Destinations(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.Key() == dk {
			return d.Weight, d.ActiveConns, true
		}
	}
	return 0, 0, false
}

func TestVMGracefulRemovalWithConnection(t *testing.T) {
	_, k := openVM(t)
	_, clNS := natLab(t)
	clk := newFakeClock()
	log, _ := testLogger()
	r := NewReconciler(k, Options{Clock: clk, Logger: log, RemoveGrace: time.Minute})
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

	conn.Close()
	waitFor(t, "the connection to leave the active count", func() bool {
		_, act, _ := activeConns(t, k, key, gone.Key())
		return act == 0
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
	tab.Services[0].Destinations = []Destination{gone}
	if err := r.Apply(tab); err != nil {
		t.Fatal(err)
	}
	clk.Advance(59 * time.Second)
	_ = r.Resync()
	if w, act, ok := activeConns(t, k, key, kept.Key()); !ok || w != 0 || act < 1 {
		t.Fatalf("before the grace ended: present=%v weight=%d active=%d", ok, w, act)
	}
	clk.Advance(time.Second)
	k.reset()
	if err := r.Resync(); err != nil {
		t.Fatal(err)
	}
	assertWrites(t, k, map[Op]int{OpRemoveDestination: 1})
	assertKernel(t, k, tab)
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
	waitFor(t, "Run to restore the table", func() bool { return len(ipvsadmList(t)) == len(tab.Services) })
	waitFor(t, "the restored table to be complete", func() bool {
		return reflect.DeepEqual(ipvsadmTable(ipvsadmList(t)), wantTable(tab))
	})
}

func TestVMPartialFailureThenRepair(t *testing.T) {
	_, k := openVM(t)
	r, _, _ := newTestReconciler(t, k)
	tab := vmTable()
	broken := vsvc(tcp("10.10.0.99:80"), "nosuch", dest("10.20.0.1:80", 1, DR))
	tab.Services = append(tab.Services, broken)
	err := r.Apply(tab)
	if err == nil || !strings.Contains(err.Error(), "create service tcp/10.10.0.99:80") ||
		!strings.Contains(err.Error(), "ip_vs_<name> loaded") {
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
