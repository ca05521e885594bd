package healthcheck

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// scripted is a checker that returns results from a pattern ('o' up, 'x'
// down); it repeats the last one when the script runs out.
type scripted struct {
	mu      sync.Mutex
	pattern string
	calls   int
}

func (s *scripted) Check(ctx context.Context) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := min(s.calls, len(s.pattern)-1)
	s.calls++
	if s.pattern[i] == 'o' {
		return up(fmt.Sprintf("ok #%d", s.calls))
	}
	return down(fmt.Sprintf("fail #%d", s.calls))
}

func (s *scripted) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// harness runs a Scheduler with scripted checkers chosen by the Spec's
// Path, recording transitions. It runs in the test's synctest bubble:
// time passes when the test sleeps, and every goroutine is done with what
// a moment brought after synctest.Wait.
type harness struct {
	t        *testing.T
	s        *Scheduler
	mu       sync.Mutex
	checkers map[string]*scripted // by Path
	built    int
	trans    []Transition
}

func newHarness(t *testing.T, scripts map[string]string, conc int) *harness {
	h := &harness{t: t, checkers: map[string]*scripted{}}
	for path, p := range scripts {
		h.checkers[path] = &scripted{pattern: p}
	}
	h.s = New(Options{
		Concurrency: conc,
		OnTransition: func(tr Transition) {
			h.mu.Lock()
			h.trans = append(h.trans, tr)
			h.mu.Unlock()
		},
		NewChecker: func(sp Spec) (Checker, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.built++
			c := h.checkers[sp.Path]
			if c == nil {
				return nil, fmt.Errorf("no script for %q", sp.Path)
			}
			return c, nil
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return h
}

// spec is an HTTP spec whose Path selects a script.
func spec(path string) Spec {
	return Spec{Type: HTTP, Address: "192.0.2.1", Port: 80, Path: path, Interval: time.Second, Timeout: 500 * time.Millisecond}
}

// wantChecks requires that the scheduler has recorded n checks in total,
// none in flight, once the bubble is idle.
func (h *harness) wantChecks(n uint64) {
	h.t.Helper()
	synctest.Wait()
	if st := h.s.Stats(); st.Checks != n || st.InFlight != 0 {
		h.t.Fatalf("want %d checks: have %+v", n, st)
	}
}

// wantTransitions requires that at least n transitions have been
// delivered once the bubble is idle, and returns them all.
func (h *harness) wantTransitions(n int) []Transition {
	h.t.Helper()
	synctest.Wait()
	got := h.transitions()
	if len(got) < n {
		h.t.Fatalf("want %d transitions: have %v", n, got)
	}
	return got
}

func (h *harness) transitions() []Transition {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Transition(nil), h.trans...)
}

func describeTransitions(ts []Transition) string {
	var b strings.Builder
	for _, t := range ts {
		st := "down"
		if t.Up {
			st = "up"
		}
		fmt.Fprintf(&b, "%s %s->%s (%s); ", t.ID, t.From, st, t.Reason)
	}
	return b.String()
}

// step lets one interval pass and requires the expected total of checks.
func (h *harness) step(total uint64) {
	h.t.Helper()
	time.Sleep(time.Second)
	h.wantChecks(total)
}

func TestSchedulerRiseFallExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// checks:  1  2  3  4  5  6  7  8  9  10 11 12
		// result:  o  x  x  o  x  x  x  o  x  o  o  x
		// state:   U  U  U  U  U  U  D  D  D  D  U  U
		h := newHarness(t, map[string]string{"/a": "oxxoxxxoxoox"}, 4)
		if err := h.s.Set(map[string]Spec{"web/rs1": spec("/a")}); err != nil {
			t.Fatal(err)
		}
		if st, ok := h.s.Status("web/rs1"); !ok || st.State != Unknown || !st.LastCheck.IsZero() {
			t.Fatalf("before the first check: %+v %v", st, ok)
		}
		start := time.Now()
		for i := 1; i <= 12; i++ {
			h.step(uint64(i))
		}
		// Transitions reach OnTransition from Run's goroutine, shortly after
		// the check that caused them is counted.
		got := h.wantTransitions(3)
		want := "web/rs1 unknown->up (ok #1); web/rs1 up->down (fail #7); web/rs1 down->up (ok #11); "
		if d := describeTransitions(got); d != want {
			t.Fatalf("transitions:\n got %s\nwant %s", d, want)
		}
		// Times: check k ran in the k-th interval after Set.
		for i, k := range []int{1, 7, 11} {
			lo, hi := start.Add(time.Duration(k-1)*time.Second), start.Add(time.Duration(k)*time.Second)
			if tm := got[i].Time; tm.Before(lo) || tm.After(hi) {
				t.Errorf("transition %d at %v, want in (%v, %v]", i, tm, lo, hi)
			}
		}
		st, _ := h.s.Status("web/rs1")
		if st.State != Up || st.Reason != "ok #11" || st.LastUp || st.LastReason != "fail #12" || st.Failures != 1 || st.Successes != 0 ||
			st.Target != "192.0.2.1:80" || st.Type != HTTP {
			t.Errorf("status: %+v", st)
		}
	})
}

func TestSchedulerUnknownToDownNeedsFall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, map[string]string{"/dead": "x"}, 4)
		if err := h.s.Set(map[string]Spec{"web/rs1": spec("/dead")}); err != nil {
			t.Fatal(err)
		}
		h.step(1)
		h.step(2)
		if n := len(h.transitions()); n != 0 {
			t.Fatalf("down after 2 failures with fall 3: %v", h.transitions())
		}
		if st, _ := h.s.Status("web/rs1"); st.State != Unknown || st.Failures != 2 || st.LastReason != "fail #2" {
			t.Errorf("status after 2 failures: %+v", st)
		}
		h.step(3)
		if d := describeTransitions(h.wantTransitions(1)); d != "web/rs1 unknown->down (fail #3); " {
			t.Errorf("got %s", d)
		}
	})
}

func TestSchedulerDedup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, map[string]string{"/shared": "oxxx"}, 4)
		// Two virtual services, the same real server and check settings.
		if err := h.s.Set(map[string]Spec{"web/rs1": spec("/shared"), "web-tls/rs1": spec("/shared")}); err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 4; i++ {
			h.step(uint64(i))
		}
		if c := h.checkers["/shared"].count(); c != 4 {
			t.Errorf("shared check ran %d times in 4 intervals, want 4", c)
		}
		if h.built != 1 {
			t.Errorf("built %d checkers, want 1", h.built)
		}
		want := "web-tls/rs1 unknown->up (ok #1); web/rs1 unknown->up (ok #1); web-tls/rs1 up->down (fail #4); web/rs1 up->down (fail #4); "
		if d := describeTransitions(h.wantTransitions(4)); d != want {
			t.Errorf("transitions:\n got %s\nwant %s", d, want)
		}
		if st := h.s.Stats(); st.Targets != 1 || st.IDs != 2 {
			t.Errorf("stats: %+v", st)
		}
		// A different setting is a different check.
		other := spec("/shared")
		other.Fall = 5
		if err := h.s.Set(map[string]Spec{"web/rs1": spec("/shared"), "web-tls/rs1": other}); err != nil {
			t.Fatal(err)
		}
		if st := h.s.Stats(); st.Targets != 2 {
			t.Errorf("stats after split: %+v", st)
		}
	})
}

func TestSchedulerSetKeepsState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, map[string]string{"/a": "oooooooooo", "/b": "o", "/a2": "x"}, 4)
		if err := h.s.Set(map[string]Spec{"web/a": spec("/a")}); err != nil {
			t.Fatal(err)
		}
		h.step(1)
		h.step(2)
		before, _ := h.s.Status("web/a")

		// Adding another check leaves web/a alone: same state, same cadence.
		if err := h.s.Set(map[string]Spec{"web/a": spec("/a"), "web/b": spec("/b")}); err != nil {
			t.Fatal(err)
		}
		after, _ := h.s.Status("web/a")
		if after != before {
			t.Errorf("status changed by Set:\n before %+v\n after  %+v", before, after)
		}
		h.step(4) // one check each
		if c := h.checkers["/a"].count(); c != 3 {
			t.Errorf("web/a checked %d times after 3 intervals, want 3", c)
		}
		if st, _ := h.s.Status("web/a"); st.Successes != 3 || !st.Since.Equal(before.Since) {
			t.Errorf("web/a after Set: %+v", st)
		}

		// An invalid Set changes nothing.
		bad := spec("/b")
		bad.Timeout = 5 * time.Second
		err := h.s.Set(map[string]Spec{"web/b": bad})
		if err == nil || !strings.Contains(err.Error(), "healthcheck: web/b: timeout 5s must be shorter than interval 1s") {
			t.Errorf("invalid Set: %v", err)
		}
		if st := h.s.Stats(); st.IDs != 2 {
			t.Errorf("invalid Set removed checks: %+v", st)
		}

		// Changing web/a's check keeps its Up state: no transition, the new
		// check needs Fall failures to take it down.
		n := len(h.wantTransitions(2)) // web/a and web/b up
		if err := h.s.Set(map[string]Spec{"web/a": spec("/a2"), "web/b": spec("/b")}); err != nil {
			t.Fatal(err)
		}
		if st, _ := h.s.Status("web/a"); st.State != Up || st.Successes != 0 {
			t.Errorf("changed check: %+v", st)
		}
		h.step(6)
		h.step(8)
		if got := h.transitions()[n:]; len(got) != 0 {
			t.Errorf("transitions after 2 failures of the changed check: %s", describeTransitions(got))
		}
		h.step(10)
		if d := describeTransitions(h.wantTransitions(n + 1)[n:]); d != "web/a up->down (fail #3); " {
			t.Errorf("changed check going down: %s", d)
		}
		calls := h.checkers["/a"].count()

		// Removing web/a stops its check; web/b is unaffected.
		if err := h.s.Set(map[string]Spec{"web/b": spec("/b")}); err != nil {
			t.Fatal(err)
		}
		if _, ok := h.s.Status("web/a"); ok {
			t.Error("removed ID still has a status")
		}
		h.step(11)
		h.step(12)
		if c := h.checkers["/a"].count(); c != calls {
			t.Errorf("removed check still running: %d calls, had %d", c, calls)
		}
		if st := h.s.Stats(); st.Targets != 1 || st.IDs != 1 {
			t.Errorf("stats after removal: %+v", st)
		}
	})
}

func TestSchedulerJoinKnownCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, map[string]string{"/a": "o"}, 4)
		if err := h.s.Set(map[string]Spec{"web/rs1": spec("/a")}); err != nil {
			t.Fatal(err)
		}
		h.step(1)
		h.wantTransitions(1)
		// A new virtual service with the same real server and check learns
		// the state at once, without waiting for the next check.
		if err := h.s.Set(map[string]Spec{"web/rs1": spec("/a"), "new/rs1": spec("/a")}); err != nil {
			t.Fatal(err)
		}
		got := h.wantTransitions(2)
		if d := describeTransitions(got[1:]); d != "new/rs1 unknown->up (ok #1); " {
			t.Errorf("joining ID: %s", d)
		}
		if c := h.checkers["/a"].count(); c != 1 {
			t.Errorf("join ran an extra check: %d", c)
		}
	})
}

// blocking is a checker that holds every check until released and
// records the highest number of checks in flight at once.
type blocking struct {
	inFlight, max, calls atomic.Int64
	release              chan struct{}
}

func (b *blocking) Check(ctx context.Context) Result {
	n := b.inFlight.Add(1)
	for {
		m := b.max.Load()
		if n <= m || b.max.CompareAndSwap(m, n) {
			break
		}
	}
	b.calls.Add(1)
	defer b.inFlight.Add(-1)
	select {
	case <-b.release:
		return up("released")
	case <-ctx.Done():
		return down("timeout")
	}
}

// waitParked waits until every worker of a Scheduler running in the
// test's bubble is parked, so that what follows depends on Run waking
// them, not on workers that happen to be still starting.
func waitParked(t *testing.T, s *Scheduler) {
	t.Helper()
	synctest.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idle != s.conc {
		t.Fatalf("%d of %d workers parked", s.idle, s.conc)
	}
}

// dueAllAt makes every check of s due at the same instant, at: in virtual
// time the checks would otherwise come due one by one at their start
// offsets, and a test of a burst needs them due at once.
func dueAllAt(s *Scheduler, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = dueQueue{epoch: s.queue.epoch}
	for _, g := range s.groups {
		g.due = at
		s.queue.push(at, g)
	}
	s.poke()
}

func TestSchedulerConcurrencyBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &blocking{release: make(chan struct{})}
		s := New(Options{Concurrency: 3, NewChecker: func(Spec) (Checker, error) { return b, nil }})
		checks := map[string]Spec{}
		for i := 0; i < 20; i++ {
			sp := spec("/x")
			sp.Port = 1000 + i
			sp.Timeout = 900 * time.Millisecond
			checks[fmt.Sprintf("vs/rs%d", i)] = sp
		}
		if err := s.Set(checks); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- s.Run(ctx) }()
		defer func() { cancel(); <-done }()
		dueAllAt(s, time.Now().Add(time.Second))
		waitParked(t, s)

		time.Sleep(time.Second) // all 20 are due
		// Run wakes more workers for checks left waiting a batch window:
		// 100ms are many windows (an unbounded scheduler would have
		// overshot by then) and no timeout yet.
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if st := s.Stats(); st.InFlight != 3 || b.calls.Load() != 3 {
			t.Fatalf("with 3 workers: %d started, stats %+v", b.calls.Load(), st)
		}
		// Release them one at a time: each completion starts exactly one more.
		for released := 1; b.calls.Load() < 20; released++ {
			b.release <- struct{}{}
			synctest.Wait()
			if n := b.calls.Load(); n != int64(3+released) {
				t.Fatalf("%d checks started after %d released, want %d", n, released, 3+released)
			}
		}
		if m := b.max.Load(); m != 3 {
			t.Errorf("max in flight %d, want 3", m)
		}
	})
}

func TestSchedulerSpreadsStarts(t *testing.T) {
	// 1000 checks with a 1s interval must not all start in the same
	// 100ms: the start offsets spread them over the interval.
	specs := map[string]Spec{}
	for i := 0; i < 1000; i++ {
		sp := spec("/x")
		sp.Address = fmt.Sprintf("10.0.%d.%d", i/250, i%250+1)
		specs[fmt.Sprintf("vs/rs%d", i)] = sp
	}
	var buckets [10]int
	for _, sp := range specs {
		n, _ := sp.Normalize()
		buckets[startOffset(n.key(), n.Interval)/(100*time.Millisecond)]++
	}
	for i, n := range buckets {
		if n < 50 || n > 150 {
			t.Errorf("bucket %d has %d of 1000 starts: %v", i, n, buckets)
		}
	}
}

func TestSchedulerCheckerPanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got []Transition
		var mu sync.Mutex
		s := New(Options{NewChecker: func(Spec) (Checker, error) { return panicky{}, nil },
			OnTransition: func(tr Transition) { mu.Lock(); got = append(got, tr); mu.Unlock() }})
		sp := spec("/x")
		sp.Fall = 1
		if err := s.Set(map[string]Spec{"a": sp}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- s.Run(ctx) }()
		defer func() { cancel(); <-done }()
		time.Sleep(time.Second)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 1 {
			t.Fatalf("%d transitions after a panicking check, want 1", len(got))
		}
		if got[0].Up || got[0].Reason != "checker panic: boom" {
			t.Errorf("got %+v", got[0])
		}
		if err := s.Run(ctx); err == nil {
			t.Error("second Run succeeded")
		}
	})
}

type panicky struct{}

func (panicky) Check(context.Context) Result { panic("boom") }

// TestSchedulerRealServer drives real TCP and HTTP checks on real time: a
// listener that dies is taken down after fall failures with the kernel's
// reason, and brought back after rise successes when it returns.
func TestSchedulerRealServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	host, port := addrOf(t, addr)
	serve := func(l net.Listener) {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}
	go serve(l)

	trans := make(chan Transition, 16)
	s := New(Options{Concurrency: 2, OnTransition: func(tr Transition) { trans <- tr }})
	sp := Spec{Type: TCP, Address: host, Port: port, Interval: 100 * time.Millisecond, Timeout: 50 * time.Millisecond, Rise: 2, Fall: 2}
	if err := s.Set(map[string]Spec{"web/rs1": sp}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done; l.Close() }()

	next := func() Transition {
		t.Helper()
		select {
		case tr := <-trans:
			return tr
		case <-time.After(5 * time.Second):
			t.Fatal("no transition within 5s")
		}
		return Transition{}
	}
	if tr := next(); !tr.Up || tr.Reason != "connected" || tr.From != Unknown {
		t.Fatalf("first: %+v", tr)
	}
	l.Close()
	killed := time.Now()
	tr := next()
	if tr.Up || tr.Reason != "connect: connection refused" || tr.From != Up {
		t.Fatalf("after the listener died: %+v", tr)
	}
	// Detection needs fall (2) checks at most one interval apart.
	if el := tr.Time.Sub(killed); el < 100*time.Millisecond {
		t.Errorf("down after %v: fewer than 2 failed checks possible", el)
	}
	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("relisten on %s: %v", addr, err)
	}
	l = l2
	go serve(l2)
	if tr := next(); !tr.Up || tr.From != Down {
		t.Fatalf("after the listener returned: %+v", tr)
	}
	st, _ := s.Status("web/rs1")
	if st.State != Up || st.LastDuration <= 0 || st.LastCheck.IsZero() {
		t.Errorf("status: %+v", st)
	}
}

// TestSchedulerSlowChecksDoNotHoldUpOthers: workers take due checks one
// after the other, so a worker stuck in a hanging check must not keep the
// checks behind it waiting: more workers are woken for them.
func TestSchedulerSlowChecksDoNotHoldUpOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &blocking{release: make(chan struct{})}
		fast := &scripted{pattern: "o"}
		s := New(Options{Concurrency: 4, NewChecker: func(sp Spec) (Checker, error) {
			if sp.Path == "/hang" {
				return b, nil
			}
			return fast, nil
		}})
		checks := map[string]Spec{}
		for i := 0; i < 23; i++ {
			sp := spec("/fast")
			if i < 3 {
				sp.Path = "/hang"
			}
			sp.Port = 1000 + i
			// Long enough that the hanging checks are still in flight
			// when the fast ones are done.
			sp.Interval, sp.Timeout = 10*time.Second, 9*time.Second
			checks[fmt.Sprintf("vs/rs%d", i)] = sp
		}
		if err := s.Set(checks); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- s.Run(ctx) }()
		defer func() { cancel(); <-done }()
		dueAllAt(s, time.Now().Add(10*time.Second))
		waitParked(t, s)

		time.Sleep(10 * time.Second) // all 23 are due
		// A second: hundreds of batch windows, a ninth of the hanging
		// checks' timeout.
		time.Sleep(time.Second)
		synctest.Wait()
		if n := fast.count(); n != 20 {
			t.Fatalf("only %d of 20 fast checks ran; %d hanging in flight", n, b.inFlight.Load())
		}
		// The hanging checks have not timed out yet: the fast ones did not
		// wait for them.
		if n := b.inFlight.Load(); n != 3 {
			t.Errorf("%d hanging checks in flight, want 3", n)
		}
		for range 3 {
			b.release <- struct{}{}
		}
		synctest.Wait()
		if st := s.Stats(); st.InFlight > 3 {
			t.Errorf("stats: %+v", st)
		}
	})
}

// TestSchedulerRequeueWhileAllInFlight: while the only check is in
// flight, Run has nothing to time; the check queued again when it ends
// must still be run when it comes due.
func TestSchedulerRequeueWhileAllInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &blocking{release: make(chan struct{})}
		s := New(Options{Concurrency: 2, NewChecker: func(Spec) (Checker, error) { return b, nil }})
		sp := spec("/x")
		sp.Timeout = 900 * time.Millisecond
		if err := s.Set(map[string]Spec{"vs/rs": sp}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- s.Run(ctx) }()
		defer func() { cancel(); <-done }()
		// Due on the second, so that each round's check starts when the
		// test wakes and is released long before its timeout.
		dueAllAt(s, time.Now().Add(time.Second))
		waitParked(t, s)

		for round := int64(1); round <= 3; round++ {
			time.Sleep(time.Second)
			// Run has looked at the queue (empty: the check is in
			// flight) and gone to sleep before the check ends.
			synctest.Wait()
			if n := b.calls.Load(); n != round {
				t.Fatalf("round %d: %d checks started; stats %+v", round, n, s.Stats())
			}
			b.release <- struct{}{}
			synctest.Wait()
			if n := s.Stats().Checks; n != uint64(round) {
				t.Fatalf("round %d: %d checks recorded", round, n)
			}
		}
	})
}
