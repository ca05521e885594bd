package balancer

import (
	"bytes"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// fakeClock is a manual clock: After channels fire when Advance reaches
// them.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []clockWaiter
}

type clockWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, clockWaiter{at: c.now.Add(d), ch: ch})
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

func (c *fakeClock) numWaiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testLogger() (*slog.Logger, *syncBuffer) {
	b := &syncBuffer{}
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

func newTestReconciler(t *testing.T, k Kernel) (*Reconciler, *fakeClock, *syncBuffer) {
	t.Helper()
	clk := newFakeClock()
	log, buf := testLogger()
	return NewReconciler(k, Options{Clock: clk, Logger: log, RemoveGrace: time.Minute}), clk, buf
}
