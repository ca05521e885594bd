package balancer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

func assertTable(t *testing.T, f *Fake, want Table) {
	t.Helper()
	got := f.Table()
	if !reflect.DeepEqual(got, wantTable(want)) {
		t.Fatalf("kernel table differs\n got: %+v\nwant: %+v", got, wantTable(want))
	}
}

func assertCounts(t *testing.T, f *Fake, want map[Op]int) {
	t.Helper()
	for op := OpCreateService; op < numOps; op++ {
		if got := f.Count(op); got != want[op] {
			t.Errorf("%s: %d calls, want %d", op, got, want[op])
		}
	}
}

func TestFirstApplyCreatesEverything(t *testing.T) {
	f := NewFake()
	r, _ := newTestReconciler(t, f)
	tab := baseTable()
	if err := r.Apply(tab); err != nil {
		t.Fatal(err)
	}
	assertTable(t, f, tab)
	assertCounts(t, f, map[Op]int{OpCreateService: 4, OpCreateDestination: 8})
	// An empty kernel needs no per-service reads.
	if n := f.Count(OpListDestinations); n != 0 {
		t.Errorf("first apply listed destinations %d times, want 0", n)
	}
	if c := r.Counters(); c.Writes != 12 || c.Errors != 0 || c.Managed != 4 {
		t.Errorf("counters %+v", c)
	}
}

func TestNoOpWritesNothing(t *testing.T) {
	f := NewFake()
	r, _ := newTestReconciler(t, f)
	if err := r.Apply(baseTable()); err != nil {
		t.Fatal(err)
	}
	f.ResetCounts()
	if err := r.Apply(baseTable()); err != nil {
		t.Fatal(err)
	}
	if err := r.Resync(); err != nil {
		t.Fatal(err)
	}
	if w := f.Writes(); w != 0 {
		t.Fatalf("no-op apply+resync made %d writes", w)
	}
	// The no-op Apply reads only the service list; Resync reads all.
	if got := f.Count(OpListDestinations); got != 4 {
		t.Errorf("destination lists: %d, want 4 (from Resync only)", got)
	}
}

func TestOneWeightChangeIsOneWrite(t *testing.T) {
	f := NewFake()
	r, _ := newTestReconciler(t, f)
	tab := baseTable()
	if err := r.Apply(tab); err != nil {
		t.Fatal(err)
	}
	f.ResetCounts()
	tab.Services[0].Destinations[1].Weight = 7
	if err := r.Apply(tab); err != nil {
		t.Fatal(err)
	}
	assertCounts(t, f, map[Op]int{OpUpdateDestination: 1})
	if f.Count(OpListDestinations) != 1 {
		t.Errorf("listed destinations %d times, want only the changed service's", f.Count(OpListDestinations))
	}
	assertTable(t, f, tab)
}

func TestDiffCases(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Table)
		want   map[Op]int
	}{
		{"add service", func(t *Table) {
			t.Services = append(t.Services, vsvc(tcp("10.0.0.9:25"), "lc", dest("192.168.1.9:25", 1, DR)))
		}, map[Op]int{OpCreateService: 1, OpCreateDestination: 1}},
		{"remove service", func(t *Table) { t.Services = t.Services[1:] },
			map[Op]int{OpRemoveService: 1}},
		{"add destination", func(t *Table) {
			t.Services[0].Destinations = append(t.Services[0].Destinations, dest("192.168.1.7:80", 1, DR))
		}, map[Op]int{OpCreateDestination: 1}},
		{"remove idle destination", func(t *Table) {
			t.Services[0].Destinations = t.Services[0].Destinations[1:]
		}, map[Op]int{OpRemoveDestination: 1}},
		{"replace destination", func(t *Table) {
			t.Services[1].Destinations[0] = dest("192.168.1.8:5353", 5, NAT)
		}, map[Op]int{OpCreateDestination: 1, OpRemoveDestination: 1}},
		{"scheduler", func(t *Table) { t.Services[0].Scheduler = "wlc" },
			map[Op]int{OpUpdateService: 1}},
		{"scheduler empty means wlc", func(t *Table) { t.Services[3].Scheduler = "wlc" },
			map[Op]int{}},
		{"flags", func(t *Table) { t.Services[2].Flags = FlagSHPort },
			map[Op]int{OpUpdateService: 1}},
		{"persistence on", func(t *Table) { t.Services[0].Persistence = time.Minute },
			map[Op]int{OpUpdateService: 1}},
		{"persistence timeout", func(t *Table) { t.Services[2].Persistence = 600 * time.Second },
			map[Op]int{OpUpdateService: 1}},
		{"persistence netmask", func(t *Table) { t.Services[2].PersistenceNetmask = 16 },
			map[Op]int{OpUpdateService: 1}},
		{"host netmask spelled out", func(t *Table) { t.Services[3].PersistenceNetmask = 128 },
			map[Op]int{}},
		{"forwarding", func(t *Table) {
			t.Services[3].Destinations[1].Forwarding = Tunnel
			t.Services[3].Destinations[1].Port = 443
		},
			map[Op]int{OpCreateDestination: 1, OpRemoveDestination: 1}},
		{"forwarding in place", func(t *Table) { t.Services[0].Destinations[2].Forwarding = Tunnel },
			map[Op]int{OpUpdateDestination: 1}},
		{"weight to zero", func(t *Table) { t.Services[1].Destinations[1].Weight = 0 },
			map[Op]int{OpUpdateDestination: 1}},
		{"several at once", func(t *Table) {
			t.Services[0].Scheduler = "wrr"
			t.Services[0].Destinations[0].Weight = 3
			t.Services[1].Destinations = nil
		}, map[Op]int{OpUpdateService: 1, OpUpdateDestination: 1, OpRemoveDestination: 2}},
		{"empty table", func(t *Table) { t.Services = nil },
			map[Op]int{OpRemoveService: 4}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := NewFake()
			r, _ := newTestReconciler(t, f)
			tab := baseTable()
			if err := r.Apply(tab); err != nil {
				t.Fatal(err)
			}
			f.ResetCounts()
			tab = baseTable()
			c.change(&tab)
			if err := r.Apply(tab); err != nil {
				t.Fatal(err)
			}
			assertCounts(t, f, c.want)
			assertTable(t, f, tab)
			// And the change is stable: a resync finds nothing to do.
			f.ResetCounts()
			if err := r.Resync(); err != nil {
				t.Fatal(err)
			}
			if w := f.Writes(); w != 0 {
				t.Errorf("resync after change wrote %d", w)
			}
		})
	}
}

func TestForeignServicesUntouched(t *testing.T) {
	f := NewFake()
	foreign := Service{Key: tcp("10.9.9.9:22"), Scheduler: "rr"}
	if err := f.CreateService(foreign); err != nil {
		t.Fatal(err)
	}
	if err := f.CreateDestination(foreign.Key, dest("10.9.9.10:22", 3, DR)); err != nil {
		t.Fatal(err)
	}
	r, logs := newTestReconciler(t, f)
	tab := baseTable()
	for i := 0; i < 3; i++ {
		if err := r.Apply(tab); err != nil {
			t.Fatal(err)
		}
		if err := r.Resync(); err != nil {
			t.Fatal(err)
		}
	}
	tab.Services = nil // dropping everything must still spare it
	if err := r.Apply(tab); err != nil {
		t.Fatal(err)
	}
	got := f.Table()
	if len(got.Services) != 1 || got.Services[0].Key != foreign.Key || got.Services[0].Destinations[0].Weight != 3 {
		t.Fatalf("foreign service changed: %+v", got)
	}
	if n := strings.Count(logs.String(), "does not manage"); n != 1 {
		t.Errorf("foreign service logged %d times, want once:\n%s", n, logs)
	}
	if c := r.Counters(); c.Foreign != 1 {
		t.Errorf("Foreign=%d", c.Foreign)
	}
	for _, s := range r.Snapshot() {
		if s.Key == foreign.Key {
			t.Error("snapshot shows the foreign service")
		}
	}
}

func TestAdoptsExistingServiceWithSameKey(t *testing.T) {
	f := NewFake()
	k := tcp("10.0.0.1:80")
	_ = f.CreateService(Service{Key: k, Scheduler: "wlc"})
	_ = f.CreateDestination(k, dest("192.168.1.1:80", 9, DR))
	_ = f.CreateDestination(k, dest("192.168.1.99:80", 1, DR))
	r, _ := newTestReconciler(t, f)
	tab := baseTable()
	if err := r.Apply(tab); err != nil {
		t.Fatal(err)
	}
	assertTable(t, f, tab)
}

func TestDriftRepair(t *testing.T) {
	f := NewFake()
	r, logs := newTestReconciler(t, f)
	tab := baseTable()
	if err := r.Apply(tab); err != nil {
		t.Fatal(err)
	}
	k0, k1, k3 := tab.Services[0].Key, tab.Services[1].Key, tab.Services[3].Key
	// Behind the reconciler's back, like ipvsadm -d, -e, -E, -D.
	_ = f.RemoveDestination(k0, dkey("192.168.1.2:80"))
	_ = f.UpdateDestination(k1, dest("192.168.1.1:5353", 99, NAT))
	_ = f.UpdateService(Service{Key: k0, Scheduler: "lc"})
	_ = f.RemoveService(k3)
	_ = f.CreateDestination(k0, dest("192.168.1.66:80", 1, DR))
	f.ResetCounts()

	if err := r.Resync(); err != nil {
		t.Fatal(err)
	}
	assertTable(t, f, tab)
	assertCounts(t, f, map[Op]int{OpCreateDestination: 1 + 2, OpUpdateDestination: 1, OpUpdateService: 1,
		OpCreateService: 1, OpRemoveDestination: 1})
	if !strings.Contains(logs.String(), "repaired IPVS drift") {
		t.Error("drift repair not logged")
	}

	// ipvsadm -C: everything gone.
	for _, s := range f.Table().Services {
		_ = f.RemoveService(s.Key)
	}
	if err := r.Resync(); err != nil {
		t.Fatal(err)
	}
	assertTable(t, f, tab)
}

// The director hears of a repaired drift (for alerts), once per repairing
// pass and not for a pass that found nothing to do.
func TestDriftRepairNotice(t *testing.T) {
	f := NewFake()
	r, notices := noticeReconciler(t, f)
	tab := baseTable()
	if err := r.Apply(tab); err != nil {
		t.Fatal(err)
	}
	if err := r.Resync(); err != nil {
		t.Fatal(err)
	}
	if n := notices(); len(n) != 0 {
		t.Fatalf("notices without drift: %+v", n)
	}
	_ = f.RemoveService(tab.Services[3].Key)
	if err := r.Resync(); err != nil {
		t.Fatal(err)
	}
	n := notices()
	if len(n) != 1 || n[0].Kind != DriftRepaired || !strings.Contains(n[0].Message, "repaired with") {
		t.Errorf("notices %+v, want one drift_repaired", n)
	}
}

func TestApplyRepairsMissingServiceButLeavesServerDriftToResync(t *testing.T) {
	f := NewFake()
	r, _ := newTestReconciler(t, f)
	tab := baseTable()
	if err := r.Apply(tab); err != nil {
		t.Fatal(err)
	}
	_ = f.RemoveService(tab.Services[3].Key)
	_ = f.RemoveDestination(tab.Services[0].Key, dkey("192.168.1.1:80"))
	if err := r.Apply(tab); err != nil {
		t.Fatal(err)
	}
	// The missing service is visible in the one list Apply makes...
	if len(f.Table().Services) != 4 {
		t.Fatal("Apply did not recreate the deleted service")
	}
	// ...a missing server of an unchanged service waits for Resync.
	if err := r.Resync(); err != nil {
		t.Fatal(err)
	}
	assertTable(t, f, tab)
}

func TestGracefulRemoval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := NewFake()
		r, _ := newTestReconciler(t, f) // grace: 1 minute
		tab := baseTable()
		if err := r.Apply(tab); err != nil {
			t.Fatal(err)
		}
		k := tab.Services[0].Key
		busy, idle := dkey("192.168.1.1:80"), dkey("192.168.1.2:80")
		f.SetConns(k, busy, 3, 1)
		f.SetConns(k, idle, 0, 0) // no connections: goes at once
		f.ResetCounts()

		tab.Services[0].Destinations = tab.Services[0].Destinations[2:]
		if err := r.Apply(tab); err != nil {
			t.Fatal(err)
		}
		assertCounts(t, f, map[Op]int{OpUpdateDestination: 1, OpRemoveDestination: 1})
		ds := destsOf(f, k)
		if d, ok := ds[busy]; !ok || d.Weight != 0 {
			t.Fatalf("busy server should be at weight 0, got %+v", ds)
		}
		if _, ok := ds[idle]; ok {
			t.Fatal("idle server should be gone")
		}
		snap := findSnap(t, r.Snapshot(), k)
		if len(snap.Destinations) != 2 || !snap.Destinations[0].Removing ||
			!snap.Destinations[0].RemoveBy.Equal(time.Now().Add(time.Minute)) {
			t.Fatalf("snapshot: %+v", snap.Destinations)
		}
		if c := r.Counters(); c.Removing != 1 {
			t.Errorf("Counters.Removing=%d", c.Removing)
		}

		// Still busy: nothing happens, even on a resync.
		f.ResetCounts()
		time.Sleep(10 * time.Second)
		if err := r.Resync(); err != nil {
			t.Fatal(err)
		}
		if f.Writes() != 0 {
			t.Fatalf("wrote %d while waiting", f.Writes())
		}
		// Someone sets the weight back: it is quiesced again.
		_ = f.UpdateDestination(k, dest("192.168.1.1:80", 4, DR))
		f.ResetCounts()
		if err := r.Resync(); err != nil {
			t.Fatal(err)
		}
		assertCounts(t, f, map[Op]int{OpUpdateDestination: 1})

		// The active ones end, two are still closing: it waits for them.
		f.SetConns(k, busy, 0, 2)
		f.ResetCounts()
		if err := r.Resync(); err != nil {
			t.Fatal(err)
		}
		if f.Writes() != 0 {
			t.Fatalf("wrote %d while connections were closing", f.Writes())
		}

		// Connections end: removed on the next pass.
		f.SetConns(k, busy, 0, 0)
		f.ResetCounts()
		if err := r.Resync(); err != nil {
			t.Fatal(err)
		}
		assertCounts(t, f, map[Op]int{OpRemoveDestination: 1})
		assertTable(t, f, tab)
		if c := r.Counters(); c.Removing != 0 {
			t.Errorf("Counters.Removing=%d", c.Removing)
		}
	})
}

// TestGracefulRemovalWaitsForInactive: a real server whose connections are
// all inactive (in their handshake or closing; with expire_nodest_conn=1
// their clients would get a reset) is quiesced, not removed, until they
// are gone or the grace period ends.
func TestGracefulRemovalWaitsForInactive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := NewFake()
		r, logs := newTestReconciler(t, f) // grace: 1 minute
		tab := baseTable()
		if err := r.Apply(tab); err != nil {
			t.Fatal(err)
		}
		k := tab.Services[0].Key
		closing, handshake := dkey("192.168.1.1:80"), dkey("192.168.1.2:80")
		f.SetConns(k, closing, 0, 3)
		f.SetConns(k, handshake, 0, 1)
		f.ResetCounts()
		tab.Services[0].Destinations = tab.Services[0].Destinations[2:]
		if err := r.Apply(tab); err != nil {
			t.Fatal(err)
		}
		assertCounts(t, f, map[Op]int{OpUpdateDestination: 2})
		for _, dk := range []DestKey{closing, handshake} {
			if d, ok := destsOf(f, k)[dk]; !ok || d.Weight != 0 {
				t.Fatalf("%s: removed with inactive connections, or not quiesced: %+v", dk, destsOf(f, k))
			}
		}
		if !strings.Contains(logs.String(), "inactive_conns=3") {
			t.Errorf("quiescing log does not say why:\n%s", logs)
		}

		// The handshake's entry expires: that server goes; the other waits.
		f.SetConns(k, handshake, 0, 0)
		f.ResetCounts()
		time.Sleep(10 * time.Second)
		if err := r.Resync(); err != nil {
			t.Fatal(err)
		}
		assertCounts(t, f, map[Op]int{OpRemoveDestination: 1})
		if _, ok := destsOf(f, k)[handshake]; ok {
			t.Fatal("server without connections left")
		}

		// The grace period bounds the wait.
		time.Sleep(50 * time.Second)
		f.ResetCounts()
		if err := r.Resync(); err != nil {
			t.Fatal(err)
		}
		assertCounts(t, f, map[Op]int{OpRemoveDestination: 1})
		assertTable(t, f, tab)
	})
}

func TestGracefulRemovalDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := NewFake()
		r, logs := newTestReconciler(t, f)
		tab := baseTable()
		_ = r.Apply(tab)
		k := tab.Services[1].Key
		dk := dkey("192.168.1.1:5353")
		f.SetConns(k, dk, 1, 0)
		tab.Services[1].Destinations = tab.Services[1].Destinations[1:]
		if err := r.Apply(tab); err != nil {
			t.Fatal(err)
		}
		time.Sleep(59 * time.Second)
		_ = r.Resync()
		if _, ok := destsOf(f, k)[dk]; !ok {
			t.Fatal("removed before the grace period ended")
		}
		time.Sleep(time.Second)
		f.ResetCounts()
		_ = r.Resync()
		assertCounts(t, f, map[Op]int{OpRemoveDestination: 1})
		if !strings.Contains(logs.String(), "grace ended") {
			t.Error("forced removal not logged")
		}
	})
}

func TestReaddedServerLeavesRemoval(t *testing.T) {
	f := NewFake()
	r, _ := newTestReconciler(t, f)
	tab := baseTable()
	_ = r.Apply(tab)
	k := tab.Services[0].Key
	f.SetConns(k, dkey("192.168.1.1:80"), 2, 0)
	short := baseTable()
	short.Services[0].Destinations = short.Services[0].Destinations[1:]
	_ = r.Apply(short)
	f.ResetCounts()
	if err := r.Apply(tab); err != nil {
		t.Fatal(err)
	}
	assertCounts(t, f, map[Op]int{OpUpdateDestination: 1})
	assertTable(t, f, tab)
	if c := r.Counters(); c.Removing != 0 {
		t.Errorf("still removing: %+v", c)
	}
}

func TestPartialApplyThenRepair(t *testing.T) {
	f := NewFake()
	r, _ := newTestReconciler(t, f)
	boom := errors.New("netlink: injected")
	creates := 0
	f.Inject(func(c Call) error {
		if c.Op == OpCreateDestination {
			creates++
			if creates == 3 || creates == 6 {
				return boom
			}
		}
		if c.Op == OpCreateService && c.Key == tcp("[2001:db8::1]:443") {
			return boom
		}
		return nil
	})
	tab := baseTable()
	err := r.Apply(tab)
	if !errors.Is(err, boom) {
		t.Fatalf("Apply error %v, want the injected one", err)
	}
	c := r.Counters()
	if c.Errors != 3 || c.LastError == "" {
		t.Errorf("counters after failure: %+v", c)
	}
	f.Inject(nil)
	f.ResetCounts()
	if err := r.Apply(tab); err != nil { // unverified services are re-read
		t.Fatal(err)
	}
	assertTable(t, f, tab)
	assertCounts(t, f, map[Op]int{OpCreateService: 1, OpCreateDestination: 2 + 2})
	if c := r.Counters(); c.LastError != "" {
		t.Errorf("LastError not cleared: %q", c.LastError)
	}
}

func TestListFailureWritesNothing(t *testing.T) {
	f := NewFake()
	r, _ := newTestReconciler(t, f)
	f.Inject(func(c Call) error {
		if c.Op == OpListServices {
			return syscall.ENOBUFS
		}
		return nil
	})
	if err := r.Apply(baseTable()); !errors.Is(err, syscall.ENOBUFS) {
		t.Fatalf("err %v", err)
	}
	if f.Writes() != 0 {
		t.Fatal("wrote without knowing the table")
	}
	f.Inject(nil)
	if err := r.Resync(); err != nil {
		t.Fatal(err)
	}
	assertTable(t, f, baseTable())
}

func TestRemoveServiceFailureIsRetried(t *testing.T) {
	f := NewFake()
	r, _ := newTestReconciler(t, f)
	_ = r.Apply(baseTable())
	f.Inject(func(c Call) error {
		if c.Op == OpRemoveService {
			return syscall.EBUSY
		}
		return nil
	})
	short := baseTable()
	short.Services = short.Services[:3]
	if err := r.Apply(short); err == nil {
		t.Fatal("want an error")
	}
	f.Inject(nil)
	if err := r.Resync(); err != nil {
		t.Fatal(err)
	}
	assertTable(t, f, short)
}

func TestInvalidTableRefusedWhole(t *testing.T) {
	ok := dest("192.168.1.1:80", 1, DR)
	bad := []struct {
		name string
		vs   VirtualService
		msg  string
	}{
		{"no vip", VirtualService{Service: Service{Key: Key{Family: IPv4, Protocol: TCP, Port: 80}}}, "no virtual IP"},
		{"bad proto", VirtualService{Service: Service{Key: Key{Family: IPv4, Protocol: 99, Addr: netip.MustParseAddr("10.0.0.1")}}}, "unknown protocol"},
		{"family mismatch", VirtualService{Service: Service{Key: Key{Family: IPv6, Protocol: TCP, Addr: netip.MustParseAddr("10.0.0.1")}}}, "is not inet6"},
		{"fwmark with vip", VirtualService{Service: Service{Key: Key{Family: IPv4, Fwmark: 3, Addr: netip.MustParseAddr("10.0.0.1")}}}, "firewall-mark"},
		{"weight", vsvc(tcp("10.0.0.1:80"), "rr", dest("192.168.1.1:80", 70000, DR)), "weight 70000"},
		{"dr port", vsvc(tcp("10.0.0.1:80"), "rr", dest("192.168.1.1:8080", 1, DR)), "cannot change the port"},
		{"nat port 0", vsvc(tcp("10.0.0.1:80"), "rr", dest("192.168.1.1:0", 1, NAT)), "nat needs a real server port"},
		{"mixed family", vsvc(tcp("10.0.0.1:80"), "rr", dest("[2001:db8::1]:80", 1, DR)), "needs tun"},
		{"dup dest", vsvc(tcp("10.0.0.1:80"), "rr", ok, ok), "listed twice"},
		{"persistence", VirtualService{Service: Service{Key: tcp("10.0.0.1:80"), Persistence: 1500 * time.Millisecond}}, "whole seconds"},
		{"netmask", VirtualService{Service: Service{Key: tcp("10.0.0.1:80"), PersistenceNetmask: 33}}, "out of range"},
		{"scheduler", vsvc(tcp("10.0.0.1:80"), "round robin"), "bad scheduler"},
		{"persistent flag", VirtualService{Service: Service{Key: tcp("10.0.0.1:80"), Flags: flagPersistent}}, "Persistence"},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			f := NewFake()
			r, _ := newTestReconciler(t, f)
			tab := baseTable()
			_ = r.Apply(tab)
			f.ResetCounts()
			tab.Services = append(tab.Services, b.vs)
			err := r.Apply(tab)
			if err == nil || !strings.Contains(err.Error(), b.msg) {
				t.Fatalf("error %v, want one with %q", err, b.msg)
			}
			if f.Count(OpListServices) != 0 || f.Writes() != 0 {
				t.Fatal("an invalid table reached the kernel")
			}
			assertTable(t, f, baseTable())
		})
	}
	dup := baseTable()
	dup.Services = append(dup.Services, dup.Services[0])
	if err := dup.Validate(); err == nil || !strings.Contains(err.Error(), "listed twice") {
		t.Errorf("duplicate service: %v", err)
	}
}

func TestUnknownSchedulerFailsOnlyItsService(t *testing.T) {
	f := NewFake()
	r, _ := newTestReconciler(t, f)
	tab := baseTable()
	tab.Services[0].Scheduler = "nosuch"
	err := r.Apply(tab)
	if err == nil || !strings.Contains(err.Error(), "create service tcp/10.0.0.1:80") {
		t.Fatalf("err %v", err)
	}
	if n := len(f.Table().Services); n != 3 {
		t.Fatalf("%d services created, want the 3 good ones", n)
	}
}

func TestRunResyncsOnTimerAndRetriesSoon(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := NewFake()
		log, _ := testLogger()
		r := NewReconciler(f, Options{Logger: log, ResyncInterval: 5 * time.Second, RetryDelay: time.Second})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })

		// Before the first Apply, Run touches nothing.
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if f.Count(OpListServices) != 0 {
			t.Fatal("Run read the kernel before any Apply")
		}

		tab := baseTable()
		if err := r.Apply(tab); err != nil {
			t.Fatal(err)
		}
		_ = f.RemoveService(tab.Services[0].Key) // drift
		time.Sleep(5 * time.Second)
		settled(t, "resync to repair", func() bool { return len(f.Table().Services) == 4 })
		settled(t, "resync counted", func() bool { return r.Counters().Resyncs == 1 })

		// A failing kernel: retried after RetryDelay, not ResyncInterval.
		var fail sync.Mutex
		failing := true
		f.Inject(func(c Call) error {
			fail.Lock()
			defer fail.Unlock()
			if failing && c.Op == OpListServices {
				return syscall.EIO
			}
			return nil
		})
		_ = f.RemoveService(tab.Services[1].Key)
		lists := f.Count(OpListServices)
		time.Sleep(5 * time.Second) // resync fails
		settled(t, "failed resync", func() bool { return r.Counters().Errors == 1 })
		fail.Lock()
		failing = false
		fail.Unlock()
		time.Sleep(time.Second) // retry
		settled(t, "retry to repair", func() bool { return len(f.Table().Services) == 4 })
		if got := f.Count(OpListServices) - lists; got != 2 {
			t.Errorf("%d list calls, want 2 (failed resync, retry)", got)
		}
		// The table is repaired mid-pass; the counters are published when the
		// pass ends.
		settled(t, "LastError cleared after the successful retry", func() bool { return r.Counters().LastError == "" })
	})
}

func TestRunChecksPendingRemovalsOften(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := NewFake()
		log, _ := testLogger()
		r := NewReconciler(f, Options{Logger: log, ResyncInterval: time.Hour, PendingInterval: time.Second,
			RemoveGrace: time.Hour})
		tab := baseTable()
		if err := r.Apply(tab); err != nil {
			t.Fatal(err)
		}
		k := tab.Services[0].Key
		dk := dkey("192.168.1.1:80")
		f.SetConns(k, dk, 1, 0)
		tab.Services[0].Destinations = tab.Services[0].Destinations[1:]
		if err := r.Apply(tab); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })

		synctest.Wait() // Run asleep until the first pending check
		f.SetConns(k, dk, 0, 0)
		time.Sleep(time.Second)
		settled(t, "pending check to remove", func() bool { _, ok := destsOf(f, k)[dk]; return !ok })
		// Nothing pending any more: the next wake-up is the hourly resync.
		lists := f.Count(OpListServices)
		time.Sleep(time.Minute)
		synctest.Wait()
		if f.Count(OpListServices) != lists {
			t.Error("Run kept polling with nothing pending")
		}
	})
}

func TestConcurrentUse(t *testing.T) {
	f := NewFake()
	log, _ := testLogger()
	r := NewReconciler(f, Options{ResyncInterval: time.Millisecond, PendingInterval: time.Millisecond, Logger: log})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				tab := baseTable()
				tab.Services[0].Destinations[0].Weight = g*100 + i
				_ = r.Apply(tab)
				_ = r.Snapshot()
				_ = r.Counters()
			}
		}()
	}
	wg.Wait()
	cancel()
	<-done
	final := baseTable()
	if err := r.Apply(final); err != nil {
		t.Fatal(err)
	}
	assertTable(t, f, final)
}

func TestSnapshot(t *testing.T) {
	f := NewFake()
	r, _ := newTestReconciler(t, f)
	tab := baseTable()
	_ = r.Apply(tab)
	k := tab.Services[0].Key
	f.SetConns(k, dkey("192.168.1.3:80"), 4, 2)
	_ = r.Resync()
	snap := r.Snapshot()
	if len(snap) != 4 {
		t.Fatalf("%d services", len(snap))
	}
	s := findSnap(t, snap, k)
	if s.Scheduler != "rr" || len(s.Destinations) != 3 {
		t.Fatalf("%+v", s)
	}
	d := s.Destinations[2]
	if d.Addr != netip.MustParseAddr("192.168.1.3") || d.ActiveConns != 4 || d.InactiveConns != 2 || d.Weight != 2 {
		t.Fatalf("%+v", d)
	}
	// Callers may scribble on their copy.
	snap[0].Destinations[0].Weight = 1234
	if r.Snapshot()[0].Destinations[0].Weight == 1234 {
		t.Fatal("Snapshot shares memory")
	}
	// A dropped service leaves the snapshot.
	tab.Services = tab.Services[1:]
	_ = r.Apply(tab)
	for _, s := range r.Snapshot() {
		if s.Key == k {
			t.Fatal("removed service still in snapshot")
		}
	}
}

func destsOf(f *Fake, k Key) map[DestKey]DestinationStatus {
	ds, _ := f.Destinations(k)
	out := map[DestKey]DestinationStatus{}
	for _, d := range ds {
		out[d.Key()] = d
	}
	return out
}

func findSnap(t *testing.T, snap []ServiceSnapshot, k Key) ServiceSnapshot {
	t.Helper()
	for _, s := range snap {
		if s.Key == k {
			return s
		}
	}
	t.Fatalf("service %s not in snapshot", k)
	return ServiceSnapshot{}
}

func TestKeyStrings(t *testing.T) {
	for k, want := range map[Key]string{
		tcp("10.0.0.1:80"):      "tcp/10.0.0.1:80",
		udp("[2001:db8::1]:53"): "udp/[2001:db8::1]:53",
		FwmarkKey(7, IPv6):      "fwmark/7/inet6",
		ServiceKey(SCTP, netip.MustParseAddrPort("[::ffff:10.0.0.1]:9")): "sctp/10.0.0.1:9",
	} {
		if k.String() != want {
			t.Errorf("%s, want %s", k, want)
		}
	}
	for _, s := range []string{"sh-fallback", "mh-port", "ops"} {
		if _, err := ParseFlag(s); err != nil {
			t.Error(err)
		}
	}
	if _, err := ParseFlag("bogus"); err == nil {
		t.Error("bogus flag accepted")
	}
	if f, _ := ParseForwarding(""); f != DR {
		t.Error("default forwarding is not dr")
	}
	if _, err := ParseProtocol("icmp"); err == nil {
		t.Error("icmp accepted")
	}
	_ = fmt.Sprint(Tunnel, IPv4, TCP)
}

// A service an earlier run managed and the new table lacks is removed, not
// adopted as foreign; a previous service still desired is kept as is, and a
// truly foreign one is spared.
func TestPreviousRunServicesRemoved(t *testing.T) {
	f := NewFake()
	first := NewReconciler(f, Options{Logger: slog.New(slog.DiscardHandler)})
	tab := baseTable()
	if err := first.Apply(tab); err != nil {
		t.Fatal(err)
	}
	foreign := Service{Key: tcp("10.9.9.9:22"), Scheduler: "rr"}
	if err := f.CreateService(foreign); err != nil {
		t.Fatal(err)
	}
	prev := first.Managed()
	if len(prev) != len(tab.Services) {
		t.Fatalf("Managed() = %v, want %d services", prev, len(tab.Services))
	}

	// lbd restarts with one service dropped from its config.
	dropped := tab.Services[0].Key
	tab.Services = tab.Services[1:]
	f.ResetCounts()
	second := NewReconciler(f, Options{Logger: slog.New(slog.DiscardHandler), Previous: prev})
	if err := second.Apply(tab); err != nil {
		t.Fatal(err)
	}
	if n := f.Writes(); n != 1 || f.Count(OpRemoveService) != 1 {
		t.Fatalf("restart with one service dropped: %d writes, want exactly the one removal", n)
	}
	for _, s := range f.Table().Services {
		if s.Key == dropped {
			t.Fatalf("dropped service %s still in the kernel", dropped)
		}
	}
	if got := second.Managed(); len(got) != len(tab.Services) {
		t.Fatalf("Managed() after removal = %v", got)
	}
	if len(f.Table().Services) != len(tab.Services)+1 {
		t.Fatalf("foreign service not spared: %+v", f.Table())
	}
}
