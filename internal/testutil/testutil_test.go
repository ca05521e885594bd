package testutil

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestBufferConcurrent(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for range 100 {
				fmt.Fprintf(&b, "%d", i)
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if n := len(b.String()); n != 400 {
		t.Fatalf("%d bytes, want 400", n)
	}
	b.Reset()
	if b.String() != "" {
		t.Fatal("Reset left output")
	}
}

func TestEventuallyWaitsForAnotherGoroutine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		ready := false
		go func() {
			time.Sleep(time.Second)
			mu.Lock()
			ready = true
			mu.Unlock()
		}()
		took := Eventually(t, 5*time.Second, "ready", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return ready
		})
		if took < time.Second || took > time.Second+pollInterval {
			t.Errorf("took %v, want 1s (+ one poll)", took)
		}
	})
}

// fatalRecorder is a testing.TB whose Fatalf ends only the calling
// goroutine and keeps the message, so a test can check a failure.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls f with r in a goroutine of its own (Fatalf ends it).
func (r *fatalRecorder) run(f func(testing.TB)) {
	done := make(chan struct{})
	go func() { defer close(done); f(r) }()
	<-done
}

func TestEventuallyTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &fatalRecorder{TB: t}
		start := time.Now()
		r.run(func(tb testing.TB) { Eventually(tb, 3*time.Second, "nothing", func() bool { return false }) })
		if want := "timed out after 3s waiting for nothing"; r.msg != want {
			t.Errorf("failure %q, want %q", r.msg, want)
		}
		if took := time.Since(start); took < 3*time.Second || took > 3*time.Second+pollInterval {
			t.Errorf("gave up after %v, want 3s", took)
		}
	})
}

func TestWaitOutput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out Buffer
		go func() {
			time.Sleep(time.Second)
			fmt.Fprintln(&out, "listening on :3636")
		}()
		WaitOutput(t, 5*time.Second, &out, "listening")

		r := &fatalRecorder{TB: t}
		r.run(func(tb testing.TB) { WaitOutput(tb, time.Second, &out, "ready") })
		if !strings.Contains(r.msg, `"ready"`) || !strings.Contains(r.msg, "listening on :3636") {
			t.Errorf("failure does not show what was waited for and the output: %q", r.msg)
		}
	})
}
