package balancer

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// Timeouts are desired state: set when they differ, left alone when none
// is wanted, drift repaired on a resync, and only the wanted ones written.
func TestTimeoutsDesiredState(t *testing.T) {
	k := NewFake()
	r, _ := newTestReconciler(t, k)
	tab := baseTable()

	// None wanted: never read, never written.
	if err := r.Apply(tab); err != nil {
		t.Fatal(err)
	}
	if err := r.Resync(); err != nil {
		t.Fatal(err)
	}
	if n := k.Count(OpTimeouts) + k.Count(OpSetTimeouts); n != 0 {
		t.Fatalf("%d timeout calls with no timeouts wanted", n)
	}

	// UDP only: the others stay the kernel's.
	tab.Timeouts = Timeouts{UDP: 10 * time.Second}
	k.ResetCounts()
	if err := r.Apply(tab); err != nil {
		t.Fatal(err)
	}
	want := Timeouts{TCP: KernelTCPTimeout, TCPFin: KernelTCPFinTimeout, UDP: 10 * time.Second}
	if got, _ := k.Timeouts(); got != want {
		t.Fatalf("kernel timeouts %+v, want %+v", got, want)
	}
	if n := k.Count(OpSetTimeouts); n != 1 {
		t.Fatalf("%d set-timeouts calls, want 1", n)
	}

	// Unchanged: no write on an Apply or a resync.
	k.ResetCounts()
	if err := r.Apply(tab); err != nil {
		t.Fatal(err)
	}
	if err := r.Resync(); err != nil {
		t.Fatal(err)
	}
	if n := k.Count(OpSetTimeouts); n != 0 {
		t.Fatalf("%d set-timeouts calls with nothing changed", n)
	}

	// Drift (ipvsadm --set 900 120 300): repaired by the next resync,
	// not by an Apply that changes nothing.
	if err := k.SetTimeouts(Timeouts{UDP: KernelUDPTimeout, TCP: time.Hour}); err != nil {
		t.Fatal(err)
	}
	k.ResetCounts()
	if err := r.Apply(tab); err != nil {
		t.Fatal(err)
	}
	if n := k.Count(OpSetTimeouts); n != 0 {
		t.Fatalf("an unchanged Apply wrote timeouts (%d calls)", n)
	}
	if err := r.Resync(); err != nil {
		t.Fatal(err)
	}
	want.TCP = time.Hour // not ours: left as someone set it
	if got, _ := k.Timeouts(); got != want || k.Count(OpSetTimeouts) != 1 {
		t.Fatalf("after a resync: kernel timeouts %+v (%d writes), want %+v", got, k.Count(OpSetTimeouts), want)
	}

	// A changed wish is written at once.
	tab.Timeouts = Timeouts{TCP: 60 * time.Second, TCPFin: 5 * time.Second, UDP: 10 * time.Second}
	if err := r.Apply(tab); err != nil {
		t.Fatal(err)
	}
	if got, _ := k.Timeouts(); got != tab.Timeouts {
		t.Fatalf("kernel timeouts %+v, want %+v", got, tab.Timeouts)
	}
}

func TestTimeoutsFailureIsRetried(t *testing.T) {
	k := NewFake()
	r, _ := newTestReconciler(t, k)
	tab := baseTable()
	tab.Timeouts = Timeouts{UDP: 10 * time.Second}
	fail := true
	k.Inject(func(c Call) error {
		if c.Op == OpSetTimeouts && fail {
			return syscall.EIO
		}
		return nil
	})
	if err := r.Apply(tab); err == nil {
		t.Fatal("a failed timeout write did not fail the pass")
	}
	fail = false
	if err := r.Resync(); err != nil {
		t.Fatal(err)
	}
	if got, _ := k.Timeouts(); got.UDP != 10*time.Second {
		t.Fatalf("udp timeout %v after the retry", got.UDP)
	}
}

func TestTimeoutsValidated(t *testing.T) {
	for _, tc := range []struct {
		t    Timeouts
		want string
	}{
		{Timeouts{UDP: 1500 * time.Millisecond}, "udp timeout 1.5s must be whole seconds"},
		{Timeouts{TCP: -time.Second}, "tcp timeout -1s is negative"},
		{Timeouts{TCPFin: 1000 * 24 * time.Hour}, "tcpfin timeout 24000h0m0s too long"},
	} {
		err := Table{Timeouts: tc.t}.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.t, err, tc.want)
		}
	}
}

func TestTimeoutsEncoding(t *testing.T) {
	b, err := encodeTimeouts(Timeouts{UDP: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// one attribute: len 8, type 6, value 10 (host order)
	if len(b) != 8 || b[2] != ipvsCmdAttrTimeoutUDP {
		t.Fatalf("encoded %x, want the UDP attribute alone", b)
	}
}

// A real server in RemoveNow leaves at once, connections or not, even one
// already waiting out its grace; others that leave still wait.
func TestRemoveNow(t *testing.T) {
	k := NewFake()
	r, _ := newTestReconciler(t, k)
	key := udp("10.0.0.2:53")
	a, b, c := dest("192.168.1.1:53", 1, DR), dest("192.168.1.2:53", 1, DR), dest("192.168.1.3:53", 1, DR)
	if err := r.Apply(Table{Services: []VirtualService{vsvc(key, "rr", a, b, c)}}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []Destination{a, b, c} {
		k.SetConns(key, d.Key(), 0, 5)
	}
	// c leaves gracefully (an operator's edit): it waits at weight 0.
	if err := r.Apply(Table{Services: []VirtualService{vsvc(key, "rr", a, b)}}); err != nil {
		t.Fatal(err)
	}
	// b fails, and so does c while it waits: both go at once.
	vs := vsvc(key, "rr", a)
	vs.RemoveNow = []DestKey{b.Key(), c.Key()}
	k.ResetCounts()
	if err := r.Apply(Table{Services: []VirtualService{vs}}); err != nil {
		t.Fatal(err)
	}
	got := k.Table().Services[0].Destinations
	if len(got) != 1 || got[0] != a {
		t.Fatalf("kernel has %v, want only %v", got, a)
	}
	if n := k.Count(OpRemoveDestination); n != 2 {
		t.Fatalf("%d removals, want 2", n)
	}
	if r.Counters().Removing != 0 {
		t.Fatalf("still %d removing", r.Counters().Removing)
	}

	bad := vsvc(key, "rr", a)
	bad.RemoveNow = []DestKey{a.Key()}
	if err := (Table{Services: []VirtualService{bad}}).Validate(); err == nil || !strings.Contains(err.Error(), "both wanted and to remove now") {
		t.Fatalf("a real server both wanted and removed: %v", err)
	}
}
