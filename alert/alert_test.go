package alert

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// recorder is a Notifier that records batches and fails while failing > 0.
type recorder struct {
	mu      sync.Mutex
	batches [][]Event
	over    []int
	at      []time.Time
	failing int
	block   chan struct{} // non-nil: Notify waits for it or ctx
}

func (r *recorder) Notify(ctx context.Context, batch []Event, suppressed int) error {
	if r.block != nil {
		select {
		case <-r.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.at = append(r.at, time.Now())
	if r.failing > 0 {
		r.failing--
		return errors.New("refused")
	}
	r.batches = append(r.batches, slices.Clone(batch))
	r.over = append(r.over, suppressed)
	return nil
}

func (r *recorder) got() ([][]Event, []int, []time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.batches), slices.Clone(r.over), slices.Clone(r.at)
}

func target(n Notifier) Target {
	return Target{Name: "t", Notifier: n, Timeout: time.Second, QueueLen: 64, DigestMax: 50}
}

// run starts d in the bubble and returns its stop function.
func run(t *testing.T, d *Dispatcher) func() {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}

func ev(class, subject, msg string) Event {
	return Event{Time: time.Now(), Node: "lvs1", Class: class, Subject: subject, Message: msg}
}

func TestRateLimitMakesDigests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{}
		tg := target(r)
		tg.RateBurst, tg.RatePer, tg.DigestMax = 2, time.Minute, 10
		d, err := New([]Target{tg}, nil)
		if err != nil {
			t.Fatal(err)
		}
		stop := run(t, d)
		defer stop()
		// A flapping real server: 100 transitions in 50 s.
		for i := range 100 {
			class := RealServerDown
			if i%2 == 1 {
				class = RealServerUp
			}
			d.Send(ev(class, "web/rs1", fmt.Sprintf("transition %d", i)))
			time.Sleep(500 * time.Millisecond)
			synctest.Wait()
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		batches, over, at := r.got()
		// 2 deliveries in the first minute, then one digest per minute.
		if len(batches) != 3 {
			t.Fatalf("%d deliveries for 100 events in 50 s at 2 per minute, want 3 (2 singles and a digest)", len(batches))
		}
		if len(batches[0]) != 1 || len(batches[1]) != 1 {
			t.Errorf("first deliveries carry %d and %d events, want one each", len(batches[0]), len(batches[1]))
		}
		if n := len(batches[2]); n != 10 || over[2] != 88 {
			t.Errorf("digest carries %d events and %d left out, want 10 and 88", n, over[2])
		}
		if gap := at[2].Sub(at[0]); gap != time.Minute {
			t.Errorf("digest sent %v after the first delivery, want exactly the rate period (1m)", gap)
		}
		st := d.Stats()[0]
		if st.Sent != 12 || st.Suppressed != 88 || st.Deliveries != 3 || st.Dropped != 0 {
			t.Errorf("stats %+v, want 12 sent, 88 suppressed, 3 deliveries", st)
		}
	})
}

func TestDedupAndClasses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{}
		tg := target(r)
		tg.Dedup = time.Minute
		tg.Classes = []string{RealServerDown, VRRP}
		d, err := New([]Target{tg}, nil)
		if err != nil {
			t.Fatal(err)
		}
		stop := run(t, d)
		defer stop()
		send := func(e Event) { d.Send(e); synctest.Wait() }
		send(ev(RealServerDown, "web/rs1", "down: connect: connection refused"))
		send(ev(RealServerDown, "web/rs1", "down: connect: connection refused")) // repeat: deduped
		send(ev(RealServerUp, "web/rs1", "up"))                                  // class not wanted
		send(ev(RealServerDown, "web/rs2", "down: connect: connection refused")) // other subject
		time.Sleep(61 * time.Second)
		send(ev(RealServerDown, "web/rs1", "down: connect: connection refused")) // window over
		send(ev(VRRP, "vrid 51", "backup -> master"))
		batches, _, _ := r.got()
		var subjects []string
		for _, b := range batches {
			for _, e := range b {
				subjects = append(subjects, e.Class+" "+e.Subject)
			}
		}
		want := []string{"rs_down web/rs1", "rs_down web/rs2", "rs_down web/rs1", "vrrp vrid 51"}
		if !slices.Equal(subjects, want) {
			t.Errorf("delivered %q, want %q", subjects, want)
		}
		if st := d.Stats()[0]; st.Deduped != 1 {
			t.Errorf("deduped %d, want 1", st.Deduped)
		}
	})
}

func TestRetriesWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{failing: 3}
		tg := target(r)
		tg.Retries, tg.Backoff, tg.MaxBackoff = 3, time.Second, 3*time.Second
		d, err := New([]Target{tg}, nil)
		if err != nil {
			t.Fatal(err)
		}
		stop := run(t, d)
		defer stop()
		start := time.Now()
		d.Send(ev(ReloadRefused, "/etc/lbd/lbd.toml", "line 3: bad"))
		time.Sleep(time.Minute)
		synctest.Wait()
		batches, _, at := r.got()
		if len(batches) != 1 {
			t.Fatalf("%d deliveries, want 1 after 3 failures", len(batches))
		}
		var waits []time.Duration
		for _, a := range at {
			waits = append(waits, a.Sub(start))
		}
		if want := []time.Duration{0, time.Second, 3 * time.Second, 6 * time.Second}; !slices.Equal(waits, want) {
			t.Errorf("attempts at %v, want %v (backoff 1s doubling, at most 3s)", waits, want)
		}
		// A fourth failure exhausts the retries: failed, counted.
		r.mu.Lock()
		r.failing = 4
		r.mu.Unlock()
		d.Send(ev(ReloadRefused, "/etc/lbd/lbd.toml", "line 4: bad"))
		time.Sleep(time.Minute)
		synctest.Wait()
		if st := d.Stats()[0]; st.Failed != 1 || st.LastError != "refused" || st.Sent != 1 {
			t.Errorf("stats %+v, want 1 sent, 1 failed with the last error", st)
		}
	})
}

// A target that never answers costs Send nothing: events beyond its queue
// are dropped and counted, other targets still get theirs, and Run stops.
func TestDeadTargetNeverBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dead := &recorder{block: make(chan struct{})}
		live := &recorder{}
		td := target(dead)
		td.Name, td.QueueLen, td.Timeout, td.Retries, td.Backoff, td.MaxBackoff = "dead", 8, time.Hour, 5, time.Hour, time.Hour
		tl := target(live)
		tl.Name, tl.QueueLen = "live", 1000
		d, err := New([]Target{td, tl}, nil)
		if err != nil {
			t.Fatal(err)
		}
		stop := run(t, d)
		start := time.Now()
		for i := range 500 {
			d.Send(ev(RealServerDown, fmt.Sprintf("web/rs%d", i), "down"))
		}
		if time.Since(start) != 0 {
			t.Errorf("Send took %v of virtual time, want none", time.Since(start))
		}
		synctest.Wait()
		n := 0
		batches, _, _ := live.got()
		for _, b := range batches {
			n += len(b)
		}
		if n != 500 {
			t.Errorf("live target got %d events, want 500", n)
		}
		if st := d.Stats()[0]; st.Dropped < 500-8-50 {
			t.Errorf("dead target dropped %d, want the events beyond its queue counted", st.Dropped)
		}
		stop() // must return although the dead target's attempt is pending
	})
}

func TestNewRefusesNonsense(t *testing.T) {
	ok := target(&recorder{})
	for _, b := range []struct {
		mod  func(*Target)
		want string
	}{
		{func(t *Target) { t.Notifier = nil }, "no notifier"},
		{func(t *Target) { t.Classes = []string{"rs_dwon"} }, `unknown event class "rs_dwon"`},
		{func(t *Target) { t.RateBurst = 3 }, "needs both"},
		{func(t *Target) { t.Timeout = 0 }, "must be positive"},
	} {
		tg := ok
		b.mod(&tg)
		if _, err := New([]Target{tg}, nil); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("New = %v, want %q", err, b.want)
		}
	}
	if _, err := New([]Target{ok, ok}, nil); err == nil || !strings.Contains(err.Error(), "defined twice") {
		t.Errorf("two targets named alike: %v", err)
	}
}
