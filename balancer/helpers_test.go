package balancer

import (
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"lbd/internal/testutil"
)

// settled waits until every goroutine of the test's synctest bubble is
// blocked (Run asleep again), then requires cond: what a wake-up does is
// done by then, or never.
func settled(t *testing.T, what string, cond func() bool) {
	t.Helper()
	synctest.Wait()
	if !cond() {
		t.Fatalf("not %s", what)
	}
}

func testLogger() (*slog.Logger, *testutil.Buffer) {
	b := &testutil.Buffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

func tcp(vip string) Key { return ServiceKey(TCP, netip.MustParseAddrPort(vip)) }
func udp(vip string) Key { return ServiceKey(UDP, netip.MustParseAddrPort(vip)) }

func vsvc(k Key, sched string, dests ...Destination) VirtualService {
	return VirtualService{Service: Service{Key: k, Scheduler: sched}, Destinations: dests}
}

func dest(addrPort string, weight int, fwd Forwarding) Destination {
	ap := netip.MustParseAddrPort(addrPort)
	return Destination{Addr: ap.Addr(), Port: ap.Port(), Weight: weight, Forwarding: fwd}
}

func dkey(addrPort string) DestKey {
	ap := netip.MustParseAddrPort(addrPort)
	return DestKey{Addr: ap.Addr(), Port: ap.Port()}
}

// baseTable has four services of different kinds.
func baseTable() Table {
	return Table{Services: []VirtualService{
		vsvc(tcp("10.0.0.1:80"), "rr",
			dest("192.168.1.1:80", 1, DR), dest("192.168.1.2:80", 1, DR), dest("192.168.1.3:80", 2, DR)),
		vsvc(udp("10.0.0.2:53"), "wrr",
			dest("192.168.1.1:5353", 5, NAT), dest("192.168.1.2:5353", 3, NAT)),
		{Service: Service{Key: FwmarkKey(7, IPv4), Scheduler: "sh", Flags: FlagSHFallback | FlagSHPort,
			Persistence: 300 * time.Second, PersistenceNetmask: 24},
			Destinations: []Destination{dest("192.168.1.4:0", 1, DR)}},
		vsvc(tcp("[2001:db8::1]:443"), "",
			dest("[2001:db8::10]:443", 10, DR), dest("[2001:db8::11]:8443", 10, NAT)),
	}}
}

// wantTable is t as the kernel should hold it (normalized, sorted).
func wantTable(t Table) Table {
	var out Table
	for _, vs := range t.Services {
		vs.Service = vs.Service.normalized()
		vs.Destinations = append([]Destination(nil), vs.Destinations...)
		sortDests(vs.Destinations)
		out.Services = append(out.Services, vs)
	}
	sortTable(out)
	return out
}

func sortTable(t Table) {
	for i := 1; i < len(t.Services); i++ {
		for j := i; j > 0 && compareKeys(t.Services[j].Key, t.Services[j-1].Key) < 0; j-- {
			t.Services[j], t.Services[j-1] = t.Services[j-1], t.Services[j]
		}
	}
}

// newTestReconciler returns a reconciler with a grace of one minute and its
// log. Tests that let time pass run in a synctest bubble.
func newTestReconciler(t *testing.T, k Kernel) (*Reconciler, *testutil.Buffer) {
	t.Helper()
	log, buf := testLogger()
	return NewReconciler(k, Options{Logger: log, RemoveGrace: time.Minute}), buf
}

// noticeReconciler is newTestReconciler recording its notices.
func noticeReconciler(t *testing.T, k Kernel) (*Reconciler, func() []Notice) {
	t.Helper()
	log, _ := testLogger()
	var mu sync.Mutex
	var got []Notice
	r := NewReconciler(k, Options{Logger: log, RemoveGrace: time.Minute, OnNotice: func(n Notice) {
		mu.Lock()
		got = append(got, n)
		mu.Unlock()
	}})
	return r, func() []Notice {
		mu.Lock()
		defer mu.Unlock()
		return append([]Notice(nil), got...)
	}
}
