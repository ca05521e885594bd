package balancer

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
)

func master(iface string) SyncDaemon {
	return SyncDaemon{Role: SyncMaster, Interface: iface, SyncID: 51}
}

func backup(iface string) SyncDaemon {
	return SyncDaemon{Role: SyncBackup, Interface: iface, SyncID: 51}
}

func TestSyncDaemonValidate(t *testing.T) {
	good := []SyncDaemon{
		master("eth0"),
		backup("a23456789012345"), // 15 bytes
		{Role: SyncMaster, Interface: "bond0.100", Group: netip.MustParseAddr("239.1.2.3"), Port: 1, TTL: 255, MaxLen: 9000},
		{Role: SyncBackup, Interface: "eth1", Group: netip.MustParseAddr("ff02::1:81")},
	}
	for _, d := range good {
		if err := d.validate(); err != nil {
			t.Errorf("%s: %v", d, err)
		}
	}
	bad := map[string]SyncDaemon{
		"unknown sync role":     {Role: 3, Interface: "eth0"},
		"needs an interface":    {Role: SyncMaster},
		"longer than 15 bytes":  master("a234567890123456"),
		"bad interface name":    master("eth0/1"),
		"not a multicast":       {Role: SyncMaster, Interface: "eth0", Group: netip.MustParseAddr("10.0.0.1")},
		"not a multicast ":      {Role: SyncMaster, Interface: "eth0", Group: netip.MustParseAddr("2001:db8::1")},
		"plain IPv4 or IPv6":    {Role: SyncMaster, Interface: "eth0", Group: netip.MustParseAddr("::ffff:224.0.0.81")},
		"plain IPv4 or IPv6 ":   {Role: SyncMaster, Interface: "eth0", Group: netip.MustParseAddr("ff02::1%eth0")},
		"bad interface name ":   master(".."),
		"bad interface name  ":  master("eth 0"),
		"bad interface name   ": master("eth0:1"),
	}
	for want, d := range bad {
		err := d.validate()
		if err == nil || !strings.Contains(err.Error(), strings.TrimSpace(want)) {
			t.Errorf("%+v: error %v, want %q", d, err, want)
		}
	}
}

// TestSyncDaemonMatchesKernel: what the kernel (6.1, measured in the VM)
// reports for a daemon started with zero settings matches the wanted
// daemon, and explicit settings compare as the kernel clamps them.
func TestSyncDaemonMatchesKernel(t *testing.T) {
	g := netip.MustParseAddr("224.0.0.81")
	cases := []struct {
		want   SyncDaemon
		kernel SyncDaemon
		match  bool
	}{
		{master("eth0"), SyncDaemon{Role: SyncMaster, Interface: "eth0", SyncID: 51, Group: g, Port: 8848, TTL: 1, MaxLen: 1472}, true},
		// A backup's default length follows the MTU.
		{backup("eth0"), SyncDaemon{Role: SyncBackup, Interface: "eth0", SyncID: 51, Group: g, Port: 8848, TTL: 1, MaxLen: 8972}, true},
		{backup("eth0"), SyncDaemon{Role: SyncBackup, Interface: "eth0", SyncID: 51, Group: g, Port: 8848, TTL: 1, MaxLen: 1472}, true},
		// An IPv6 master's default is 1500 minus 48.
		{SyncDaemon{Role: SyncMaster, Interface: "eth0", Group: netip.MustParseAddr("ff02::81")},
			SyncDaemon{Role: SyncMaster, Interface: "eth0", Group: netip.MustParseAddr("ff02::81"), Port: 8848, TTL: 1, MaxLen: 1452}, true},
		// Clamped: a backup reads at least 1024, nothing exceeds 65535 minus headers.
		{SyncDaemon{Role: SyncBackup, Interface: "eth0", MaxLen: 100},
			SyncDaemon{Role: SyncBackup, Interface: "eth0", Group: g, Port: 8848, TTL: 1, MaxLen: 1024}, true},
		{SyncDaemon{Role: SyncMaster, Interface: "eth0", MaxLen: 65535},
			SyncDaemon{Role: SyncMaster, Interface: "eth0", Group: g, Port: 8848, TTL: 1, MaxLen: 65507}, true},
		// Kernels before 4.3 report no group, port, TTL or length.
		{master("eth0"), SyncDaemon{Role: SyncMaster, Interface: "eth0", SyncID: 51}, true},
		// Differences that need a restart.
		{master("eth0"), SyncDaemon{Role: SyncMaster, Interface: "eth1", SyncID: 51, Group: g, Port: 8848, TTL: 1, MaxLen: 1472}, false},
		{master("eth0"), SyncDaemon{Role: SyncMaster, Interface: "eth0", SyncID: 5, Group: g, Port: 8848, TTL: 1, MaxLen: 1472}, false},
		{master("eth0"), SyncDaemon{Role: SyncMaster, Interface: "eth0", SyncID: 51, Group: g, Port: 8849, TTL: 1, MaxLen: 1472}, false},
		{master("eth0"), SyncDaemon{Role: SyncMaster, Interface: "eth0", SyncID: 51, Group: g, Port: 8848, TTL: 2, MaxLen: 1472}, false},
		{master("eth0"), SyncDaemon{Role: SyncMaster, Interface: "eth0", SyncID: 51, Group: g, Port: 8848, TTL: 1, MaxLen: 1000}, false},
		{master("eth0"), SyncDaemon{Role: SyncMaster, Interface: "eth0", SyncID: 51, Group: netip.MustParseAddr("239.0.0.1"),
			Port: 8848, TTL: 1, MaxLen: 1472}, false},
		{SyncDaemon{Role: SyncBackup, Interface: "eth0", MaxLen: 2000},
			SyncDaemon{Role: SyncBackup, Interface: "eth0", Group: g, Port: 8848, TTL: 1, MaxLen: 1472}, false},
	}
	for _, c := range cases {
		if got := c.want.matches(c.kernel); got != c.match {
			t.Errorf("%s matches %+v: %v, want %v", c.want, c.kernel, got, c.match)
		}
	}
}

// TestSyncDaemonEncoding checks the NEW_DAEMON attribute byte by byte
// against the kernel's expectations (ip_vs_genl_new_daemon) and reads it
// back with the GET_DAEMON parser.
func TestSyncDaemonEncoding(t *testing.T) {
	d := SyncDaemon{Role: SyncBackup, Interface: "eth1", SyncID: 200,
		Group: netip.MustParseAddr("239.1.2.3"), Port: 9000, TTL: 4, MaxLen: 1400}
	b, err := encodeSyncDaemon(d)
	if err != nil {
		t.Fatal(err)
	}
	ne := binary.NativeEndian
	var want []byte
	attr := func(typ uint16, data []byte) []byte {
		a := ne.AppendUint16(nil, uint16(4+len(data)))
		a = ne.AppendUint16(a, typ)
		a = append(a, data...)
		for len(a)%4 != 0 {
			a = append(a, 0)
		}
		return a
	}
	var inner []byte
	inner = append(inner, attr(1, ne.AppendUint32(nil, 2))...)    // STATE backup
	inner = append(inner, attr(2, []byte("eth1\x00"))...)         // MCAST_IFN, NUL-terminated
	inner = append(inner, attr(3, ne.AppendUint32(nil, 200))...)  // SYNC_ID u32
	inner = append(inner, attr(4, ne.AppendUint16(nil, 1400))...) // SYNC_MAXLEN u16
	inner = append(inner, attr(5, []byte{239, 1, 2, 3})...)       // MCAST_GROUP, network order
	inner = append(inner, attr(7, ne.AppendUint16(nil, 9000))...) // MCAST_PORT, host order
	inner = append(inner, attr(8, []byte{4})...)                  // MCAST_TTL u8
	want = append(want, attr(3|netlink.Nested, inner)...)         // IPVS_CMD_ATTR_DAEMON
	if !reflect.DeepEqual(b, want) {
		t.Fatalf("encoded\n % x\nwant\n % x", b, want)
	}

	// DEL_DAEMON carries the state only.
	b, err = encodeSyncDaemon(SyncDaemon{Role: SyncMaster})
	if err != nil {
		t.Fatal(err)
	}
	if w := attr(3|netlink.Nested, attr(1, ne.AppendUint32(nil, 1))); !reflect.DeepEqual(b, w) {
		t.Fatalf("stop: % x, want % x", b, w)
	}

	// Round trips, IPv6 too, read back as a dump of two messages (backup
	// first, as parse sorts).
	d6 := SyncDaemon{Role: SyncMaster, Interface: "eth0", SyncID: 1, Group: netip.MustParseAddr("ff02::1:81"),
		Port: 8848, TTL: 1, MaxLen: 1452}
	var msgs []genetlink.Message
	for _, x := range []SyncDaemon{d, d6} {
		b, err := encodeSyncDaemon(x)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, genetlink.Message{Data: b})
	}
	got, err := parseSyncDaemons(msgs)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, []SyncDaemon{d6, d}) {
		t.Fatalf("parsed %+v", got)
	}
	if got, err := parseSyncDaemons(nil); err != nil || len(got) != 0 {
		t.Fatalf("empty dump: %v %v", got, err)
	}
}

func TestSyncErrors(t *testing.T) {
	// The errno the library wraps is kept for errors.Is, its wording is not.
	lib := &netlink.OpError{Op: "receive", Err: syscall.EEXIST}
	err := syncOpErr("start", SyncMaster, "eth1", lib)
	const want = "balancer: start sync daemon master on eth1: file exists (a master daemon runs already)"
	if err.Error() != want {
		t.Errorf("got  %q\nwant %q", err, want)
	}
	for _, errno := range []syscall.Errno{syscall.EEXIST, syscall.ESRCH, syscall.EPERM, syscall.ENODEV, syscall.EADDRNOTAVAIL} {
		err := syncOpErr("start", SyncMaster, "eth1", &netlink.OpError{Op: "receive", Err: errno})
		if !errors.Is(err, errno) {
			t.Errorf("%v: errors.Is lost: %v", errno, err)
		}
	}
	if err := syncOpErr("stop", SyncBackup, "", syscall.ESRCH); err.Error() != "balancer: stop sync daemon backup: no such process (no backup daemon runs)" {
		t.Errorf("stop: %v", err)
	}
	if syncOpErr("start", SyncMaster, "eth0", nil) != nil {
		t.Error("nil error wrapped")
	}

	// The Fake answers like the kernel.
	f := NewFake()
	if err := f.StartSyncDaemon(master("eth1")); err != nil {
		t.Fatal(err)
	}
	if err := f.StartSyncDaemon(master("eth2")); !errors.Is(err, syscall.EEXIST) || err.Error() != strings.Replace(want, "eth1", "eth2", 1) {
		t.Errorf("second master: %v", err)
	}
	if err := f.StopSyncDaemon(SyncBackup); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("stop of a role that does not run: %v", err)
	}
	if err := f.StartSyncDaemon(SyncDaemon{Role: SyncBackup, Interface: "eth1", Group: netip.MustParseAddr("10.0.0.1")}); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("unicast group: %v", err)
	}
}

const connSyncSample = `Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Origin Expires
TCP 0A4D000D B5E2 0A4D0064 0050 0A4D000E 0050 ESTABLISHED SYNC       899
TCP 0A4D000D B5E4 0A4D0064 0050 0A4D000E 0050 FIN_WAIT    LOCAL      119
UDP 0A4D000D 0035 0A4D0064 0035 0A4D000F 0035 UDP         LOCAL      299
IP  0A4D000D 0000 0A4D0064 0050 0A4D000E 0050 NONE        SYNC       359
TCP fd00:0077:0000:0000:0000:0000:0000:000d B5E6 fd00:0077:0000:0000:0000:0000:0000:0064 0050 fd00:0077:0000:0000:0000:0000:0000:000e 0050 SYN_RECV    SYNC        59
`

func TestCountConns(t *testing.T) {
	c, err := countConns(bufio.NewReader(strings.NewReader(connSyncSample)))
	if err != nil {
		t.Fatal(err)
	}
	if c != (ConnCounts{Synced: 3, Local: 2}) {
		t.Errorf("counts %+v", c)
	}
	if c, err := countConns(bufio.NewReader(strings.NewReader(strings.SplitAfter(connSyncSample, "\n")[0]))); err != nil || c != (ConnCounts{}) {
		t.Errorf("empty table: %+v %v", c, err)
	}
	// No final newline.
	if c, err := countConns(bufio.NewReader(strings.NewReader(strings.TrimSuffix(connSyncSample, "\n")))); err != nil || c.Synced != 3 {
		t.Errorf("without the final newline: %+v %v", c, err)
	}
	if _, err := countConns(bufio.NewReader(strings.NewReader(connSyncSample + "TCP 0A4D000D B5E2 SOMEWHERE 12\n"))); err == nil ||
		!strings.Contains(err.Error(), "line 7") {
		t.Errorf("a line of another format: %v", err)
	}
}

// manyConns streams n connection lines without holding them.
type manyConns struct {
	n, i int
	cur  []byte
}

var (
	localLine = []byte("TCP 0A4D000D B5E2 0A4D0064 0050 0A4D000E 0050 ESTABLISHED LOCAL      899\n")
	syncLine  = []byte("TCP 0A4D000D B5E2 0A4D0064 0050 0A4D000E 0050 ESTABLISHED SYNC       899\n")
)

func (m *manyConns) Read(p []byte) (int, error) {
	if len(m.cur) == 0 {
		if m.i > m.n {
			return 0, io.EOF
		}
		if m.i == 0 {
			m.cur = []byte(strings.SplitAfter(connSyncSample, "\n")[0])
		} else {
			m.cur = localLine
			if m.i%3 == 0 {
				m.cur = syncLine
			}
		}
		m.i++
	}
	n := copy(p, m.cur)
	m.cur = m.cur[n:]
	return n, nil
}

func TestCountConnsConstantMemory(t *testing.T) {
	rd := bufio.NewReaderSize(nil, 16<<10)
	var got ConnCounts
	allocs := testing.AllocsPerRun(3, func() {
		m := &manyConns{n: 30000}
		rd.Reset(m)
		var err error
		if got, err = countConns(rd); err != nil {
			t.Fatal(err)
		}
	})
	if got != (ConnCounts{Synced: 10000, Local: 20000}) {
		t.Fatalf("counts %+v", got)
	}
	// Nothing per line.
	if allocs > 5 {
		t.Errorf("%v allocations for 30000 lines", allocs)
	}
}

// --- the reconciler's sync daemons, against the Fake ---

func syncOps(f *Fake) map[Op]int {
	m := map[Op]int{}
	for _, op := range []Op{OpListSyncDaemons, OpStartSyncDaemon, OpStopSyncDaemon, OpConnCounts} {
		if n := f.Count(op); n > 0 {
			m[op] = n
		}
	}
	return m
}

func assertSyncOps(t *testing.T, f *Fake, want map[Op]int) {
	t.Helper()
	if want == nil {
		want = map[Op]int{}
	}
	if got := syncOps(f); !reflect.DeepEqual(got, want) {
		t.Fatalf("sync calls %v, want %v", got, want)
	}
}

func running(t *testing.T, f *Fake) []SyncDaemon {
	t.Helper()
	ds, err := f.SyncDaemons()
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func TestSetSyncStartsBothAndDoesNotFlap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := NewFake()
		r, _ := newTestReconciler(t, f)
		want := []SyncDaemon{backup("eth0"), master("eth0")} // any order in
		if err := r.SetSync(want); err != nil {
			t.Fatal(err)
		}
		assertSyncOps(t, f, map[Op]int{OpListSyncDaemons: 1, OpStartSyncDaemon: 2})
		if f.Count(OpListServices) != 0 {
			t.Error("SetSync read the services before any Apply")
		}
		ds := running(t, f)
		if len(ds) != 2 || !master("eth0").matches(ds[0]) || !backup("eth0").matches(ds[1]) {
			t.Fatalf("running %+v", ds)
		}
		st := r.SyncStatus()
		if len(st.Daemons) != 2 || st.Daemons[0].Want != master("eth0") || st.Daemons[1].Want != backup("eth0") {
			t.Fatalf("status %+v", st)
		}
		for _, d := range st.Daemons {
			if !d.Running || !d.Since.Equal(time.Now()) || d.Err != "" {
				t.Errorf("%s: %+v", d.Want.Role, d)
			}
		}

		// The kernel reports the defaults filled in: no restart, ever.
		t0 := time.Now()
		for range 3 {
			f.ResetCounts()
			time.Sleep(5 * time.Second)
			if err := r.Resync(); err != nil {
				t.Fatal(err)
			}
			assertSyncOps(t, f, map[Op]int{OpListSyncDaemons: 1, OpConnCounts: 1})
		}
		// The same settings again: not even a read.
		f.ResetCounts()
		if err := r.SetSync([]SyncDaemon{master("eth0"), backup("eth0")}); err != nil {
			t.Fatal(err)
		}
		if err := r.Apply(baseTable()); err != nil {
			t.Fatal(err)
		}
		assertSyncOps(t, f, nil)
		for _, d := range r.SyncStatus().Daemons {
			if !d.Since.Equal(t0) {
				t.Errorf("%s: Since moved to %v", d.Want.Role, d.Since)
			}
		}
	})
}

func TestSyncRepairsDaemonStoppedBehindItsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := NewFake()
		r, logs := newTestReconciler(t, f)
		var notices []Notice
		r.opt.OnNotice = func(n Notice) { notices = append(notices, n) }
		if err := r.SetSync([]SyncDaemon{master("eth0"), backup("eth0")}); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		_ = f.StopSyncDaemon(SyncMaster) // ipvsadm --stop-daemon master
		time.Sleep(5 * time.Second)
		f.ResetCounts()
		if err := r.Resync(); err != nil {
			t.Fatal(err)
		}
		assertSyncOps(t, f, map[Op]int{OpListSyncDaemons: 1, OpStartSyncDaemon: 1, OpConnCounts: 1})
		if ds := running(t, f); len(ds) != 2 {
			t.Fatalf("running %+v", ds)
		}
		st := r.SyncStatus().Daemons
		if !st[0].Running || !st[0].Since.Equal(time.Now()) {
			t.Errorf("restarted master: %+v (Since should restart)", st[0])
		}
		if !st[1].Running || !st[1].Since.Equal(t0) {
			t.Errorf("backup: %+v (Since should stay)", st[1])
		}
		if !strings.Contains(logs.String(), "stopped behind lbd's back") {
			t.Errorf("not logged:\n%s", logs)
		}
		if len(notices) != 1 || notices[0].Kind != SyncDaemonDown || !strings.Contains(notices[0].Message, "stopped behind lbd's back") {
			t.Errorf("notices %+v, want one sync_down", notices)
		}
		if c := r.Counters(); c.LastError != "" || c.Writes != 3 {
			t.Errorf("counters %+v", c)
		}
	})
}

func TestSyncRestartsOnChangedSettings(t *testing.T) {
	f := NewFake()
	r, _ := newTestReconciler(t, f)
	if err := r.SetSync([]SyncDaemon{master("eth0"), backup("eth0")}); err != nil {
		t.Fatal(err)
	}
	// Changed by lbd: the port of the master.
	m := master("eth0")
	m.Port = 9000
	f.ResetCounts()
	if err := r.SetSync([]SyncDaemon{m, backup("eth0")}); err != nil {
		t.Fatal(err)
	}
	assertSyncOps(t, f, map[Op]int{OpListSyncDaemons: 1, OpStopSyncDaemon: 1, OpStartSyncDaemon: 1})
	if ds := running(t, f); ds[0].Port != 9000 || ds[1].Port != 8848 {
		t.Fatalf("running %+v", ds)
	}

	// Changed behind lbd's back: the backup runs on another interface.
	_ = f.StopSyncDaemon(SyncBackup)
	_ = f.StartSyncDaemon(backup("eth9"))
	f.ResetCounts()
	if err := r.Resync(); err != nil {
		t.Fatal(err)
	}
	assertSyncOps(t, f, map[Op]int{OpListSyncDaemons: 1, OpStopSyncDaemon: 1, OpStartSyncDaemon: 1, OpConnCounts: 1})
	if ds := running(t, f); ds[1].Interface != "eth0" {
		t.Fatalf("running %+v", ds)
	}
}

func TestSyncStopsRolesNoLongerWanted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := NewFake()
		r, logs := newTestReconciler(t, f)
		if err := r.SetSync([]SyncDaemon{master("eth0"), backup("eth0")}); err != nil {
			t.Fatal(err)
		}
		f.ResetCounts()
		if err := r.SetSync([]SyncDaemon{backup("eth0")}); err != nil {
			t.Fatal(err)
		}
		assertSyncOps(t, f, map[Op]int{OpListSyncDaemons: 1, OpStopSyncDaemon: 1})
		if ds := running(t, f); len(ds) != 1 || ds[0].Role != SyncBackup {
			t.Fatalf("running %+v", ds)
		}
		if st := r.SyncStatus(); len(st.Daemons) != 1 || st.Daemons[0].Want.Role != SyncBackup {
			t.Fatalf("status %+v", st)
		}
		if !strings.Contains(logs.String(), "no longer wanted") {
			t.Errorf("not logged:\n%s", logs)
		}
		time.Sleep(5 * time.Second)
		if err := r.Resync(); err != nil || r.SyncStatus().ConnsAt.IsZero() {
			t.Fatalf("no connection count while the backup is wanted: %v %+v", err, r.SyncStatus())
		}
		// Sync off: the backup goes too; a master someone starts later is
		// not lbd's.
		if err := r.SetSync(nil); err != nil {
			t.Fatal(err)
		}
		if ds := running(t, f); len(ds) != 0 {
			t.Fatalf("running %+v", ds)
		}
		_ = f.StartSyncDaemon(master("eth3"))
		f.ResetCounts()
		if err := r.Resync(); err != nil {
			t.Fatal(err)
		}
		assertSyncOps(t, f, nil) // nothing wanted, nothing to stop: not even a read
		if ds := running(t, f); len(ds) != 1 {
			t.Fatalf("a foreign master was touched: %+v", ds)
		}
		if st := r.SyncStatus(); len(st.Daemons) != 0 || !st.ConnsAt.IsZero() {
			t.Errorf("status with sync off %+v", st)
		}
	})
}

func TestSyncLeftAloneWhenNeverSet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := NewFake()
		_ = f.StartSyncDaemon(master("eth7"))
		_ = f.StartSyncDaemon(SyncDaemon{Role: SyncBackup, Interface: "eth7", Port: 1})
		before := running(t, f)
		r, _ := newTestReconciler(t, f)
		f.ResetCounts()
		if err := r.Apply(baseTable()); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			time.Sleep(5 * time.Second)
			if err := r.Resync(); err != nil {
				t.Fatal(err)
			}
		}
		assertSyncOps(t, f, nil)
		if after := running(t, f); !reflect.DeepEqual(after, before) {
			t.Fatalf("daemons changed: %+v -> %+v", before, after)
		}
		if st := r.SyncStatus(); len(st.Daemons) != 0 {
			t.Errorf("status %+v", st)
		}

		// Wanting the master leaves the backup, never wanted, alone.
		if err := r.SetSync([]SyncDaemon{master("eth7")}); err != nil {
			t.Fatal(err)
		}
		if after := running(t, f); !reflect.DeepEqual(after, before) {
			t.Fatalf("daemons changed: %+v -> %+v", before, after)
		}
		if st := r.SyncStatus().Daemons; len(st) != 1 || !st[0].Running {
			t.Fatalf("adopted master: %+v", st)
		}
	})
}

func TestSyncStartFailureReportedAndRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := NewFake()
		log, _ := testLogger()
		r := NewReconciler(f, Options{Logger: log, ResyncInterval: 5 * time.Second, RetryDelay: time.Second})
		var mu sync.Mutex
		failing := true
		f.Inject(func(c Call) error {
			mu.Lock()
			defer mu.Unlock()
			if failing && c.Op == OpStartSyncDaemon && c.Role == SyncMaster {
				return syncOpErr("start", SyncMaster, "eth0", syscall.EADDRNOTAVAIL)
			}
			return nil
		})
		err := r.SetSync([]SyncDaemon{master("eth0"), backup("eth0")})
		if !errors.Is(err, syscall.EADDRNOTAVAIL) {
			t.Fatalf("SetSync: %v", err)
		}
		st := r.SyncStatus().Daemons
		if st[0].Running || !st[0].Since.IsZero() || !strings.Contains(st[0].Err, "start sync daemon master on eth0: cannot assign requested address") {
			t.Errorf("master status %+v", st[0])
		}
		if !st[1].Running || st[1].Err != "" {
			t.Errorf("backup status %+v", st[1]) // the other role is not held up
		}
		if c := r.Counters(); c.Errors != 1 || !strings.Contains(c.LastError, "master") {
			t.Errorf("counters %+v", c)
		}

		// Run retries after RetryDelay, not ResyncInterval.
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		synctest.Wait()
		starts := f.Count(OpStartSyncDaemon)
		time.Sleep(time.Second) // retry: fails again
		settled(t, "the retry", func() bool { return f.Count(OpStartSyncDaemon) == starts+1 })
		settled(t, "the retry's counters", func() bool { return r.Counters().Errors == 2 })
		mu.Lock()
		failing = false
		mu.Unlock()
		time.Sleep(2 * time.Second) // doubled
		settled(t, "the master to run", func() bool { return len(running(t, f)) == 2 })
		settled(t, "status", func() bool {
			d := r.SyncStatus().Daemons[0]
			return d.Running && d.Err == "" && d.Since.Equal(time.Now())
		})
		settled(t, "LastError cleared", func() bool { return r.Counters().LastError == "" })
	})
}

func TestSyncRunRepairsWithinOneResync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := NewFake()
		log, _ := testLogger()
		r := NewReconciler(f, Options{Logger: log, ResyncInterval: 5 * time.Second})
		if err := r.SetSync([]SyncDaemon{master("eth0"), backup("eth0")}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }() // SetSync alone makes Run resync
		t.Cleanup(func() { cancel(); <-done })
		synctest.Wait()
		_ = f.StopSyncDaemon(SyncBackup)
		time.Sleep(5 * time.Second)
		settled(t, "the backup to run again", func() bool { return len(running(t, f)) == 2 })
	})
}

func TestSyncConnCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := NewFake()
		r, logs := newTestReconciler(t, f)
		f.SetConnCounts(ConnCounts{Synced: 7, Local: 2})
		if err := r.Apply(baseTable()); err != nil {
			t.Fatal(err)
		}
		if err := r.Resync(); err != nil {
			t.Fatal(err)
		}
		if f.Count(OpConnCounts) != 0 {
			t.Fatal("counted connections without sync wanted")
		}
		if err := r.SetSync([]SyncDaemon{backup("eth0")}); err != nil {
			t.Fatal(err)
		}
		if st := r.SyncStatus(); !st.ConnsAt.IsZero() {
			t.Fatalf("counted on a partial pass: %+v", st)
		}
		time.Sleep(5 * time.Second)
		if err := r.Resync(); err != nil {
			t.Fatal(err)
		}
		st := r.SyncStatus()
		if st.Conns != (ConnCounts{Synced: 7, Local: 2}) || !st.ConnsAt.Equal(time.Now()) || st.ConnsErr != "" {
			t.Fatalf("status %+v", st)
		}

		// A failed reading is shown but fails nothing; the last good one stays.
		at := st.ConnsAt
		f.Inject(func(c Call) error {
			if c.Op == OpConnCounts {
				return errors.New("balancer: read the IPVS connection table: boom")
			}
			return nil
		})
		time.Sleep(5 * time.Second)
		if err := r.Resync(); err != nil {
			t.Fatalf("the pass failed: %v", err)
		}
		st = r.SyncStatus()
		if st.Conns.Synced != 7 || !st.ConnsAt.Equal(at) || !strings.Contains(st.ConnsErr, "boom") {
			t.Fatalf("status %+v", st)
		}
		if !strings.Contains(logs.String(), "cannot count synced connections") {
			t.Error("not logged")
		}
	})
}

func TestSetSyncRefusesInvalid(t *testing.T) {
	f := NewFake()
	r, _ := newTestReconciler(t, f)
	for _, ds := range [][]SyncDaemon{
		{master("eth0"), master("eth1")},
		{master("")},
		{master("averyveryverylongname")},
		{{Role: SyncBackup, Interface: "eth0", Group: netip.MustParseAddr("192.0.2.1")}},
		{{Role: 0, Interface: "eth0"}},
	} {
		if err := r.SetSync(ds); err == nil {
			t.Errorf("%+v accepted", ds)
		}
	}
	if n := len(syncOps(f)); n != 0 {
		t.Errorf("invalid settings reached the kernel: %v", syncOps(f))
	}
	// Refused before the first SetSync: still nothing is managed.
	if err := r.Resync(); err != nil || len(syncOps(f)) != 0 {
		t.Errorf("Resync after refused SetSync: %v %v", err, syncOps(f))
	}
}

func TestSetSyncBeforeApplyLeavesServicesAlone(t *testing.T) {
	f := NewFake()
	tab := baseTable()
	for _, vs := range tab.Services {
		_ = f.CreateService(vs.Service)
	}
	log, _ := testLogger()
	r := NewReconciler(f, Options{Logger: log, Previous: []Key{tab.Services[0].Key}})
	f.ResetCounts()
	if err := r.SetSync([]SyncDaemon{master("eth0")}); err != nil {
		t.Fatal(err)
	}
	if err := r.Resync(); err != nil {
		t.Fatal(err)
	}
	if f.Count(OpListServices) != 0 || len(f.Table().Services) != 4 {
		t.Fatalf("services touched before Apply: %d lists, %d services", f.Count(OpListServices), len(f.Table().Services))
	}
}

// TestSyncStartRace: a role started by someone else between the read and
// lbd's start (EEXIST) fails the pass without holding up the other role,
// and the next pass reads the kernel again.
func TestSyncStartRace(t *testing.T) {
	f := NewFake()
	r, _ := newTestReconciler(t, f)
	first := true
	f.Inject(func(c Call) error {
		if c.Op == OpStartSyncDaemon && c.Role == SyncMaster && first {
			first = false
			_ = f.startLocked(SyncDaemon{Role: SyncMaster, Interface: "eth5"}) // ipvsadm, just now
			return syncOpErr("start", SyncMaster, "eth0", syscall.EEXIST)
		}
		return nil
	})
	if err := r.SetSync([]SyncDaemon{master("eth0"), backup("eth0")}); !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("SetSync: %v", err)
	}
	if ds := running(t, f); len(ds) != 2 || ds[1].Interface != "eth0" {
		t.Fatalf("running %+v", ds)
	}
	f.ResetCounts()
	if err := r.Apply(Table{}); err != nil { // a partial pass re-reads
		t.Fatal(err)
	}
	assertSyncOps(t, f, map[Op]int{OpListSyncDaemons: 1, OpStopSyncDaemon: 1, OpStartSyncDaemon: 1})
	if ds := running(t, f); ds[0].Interface != "eth0" {
		t.Fatalf("running %+v", ds)
	}
}
