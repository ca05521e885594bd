package healthcheck

import (
	"context"
	"errors"
	"testing"
	"time"
)

type ctxKey struct{}

func TestCheckCtx(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))
	defer cancelParent()

	// Deadline, values, and Err without anyone asking for Done.
	c := newCheckCtx(parent, time.Hour)
	if dl, ok := c.Deadline(); !ok || time.Until(dl) > time.Hour || time.Until(dl) < 59*time.Minute {
		t.Errorf("deadline %v %v", dl, ok)
	}
	if c.Value(ctxKey{}) != "v" {
		t.Error("value not passed through")
	}
	if c.Err() != nil {
		t.Errorf("err before the deadline: %v", c.Err())
	}
	c.end()
	c = newCheckCtx(parent, time.Millisecond)
	time.Sleep(10 * time.Millisecond)
	if !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Errorf("err after the deadline: %v", c.Err())
	}
	c.end()

	// Done closes at the deadline, and AfterFunc (used by the checkers
	// that wait) fires.
	c = newCheckCtx(parent, 50*time.Millisecond)
	fired := make(chan struct{})
	context.AfterFunc(c, func() { close(fired) })
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed at the deadline")
	}
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Fatal("AfterFunc did not fire")
	}
	if !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Errorf("err: %v", c.Err())
	}
	c.end()

	// end closes a Done asked for before or after it.
	c = newCheckCtx(parent, time.Hour)
	done := c.Done()
	c.end()
	select {
	case <-done:
	default:
		t.Error("Done still open after end")
	}
	c = newCheckCtx(parent, time.Hour)
	c.end()
	select {
	case <-c.Done():
	default:
		t.Error("Done asked for after end is open")
	}

	// The parent's cancellation (Run stopping) reaches the check.
	c = newCheckCtx(parent, time.Hour)
	lazy := newCheckCtx(parent, time.Hour)
	done = c.Done()
	cancelParent()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("parent cancel did not close Done")
	}
	if !errors.Is(c.Err(), context.Canceled) || !errors.Is(lazy.Err(), context.Canceled) {
		t.Errorf("errs after parent cancel: %v, %v", c.Err(), lazy.Err())
	}
	c.end()
	lazy.end()
}

// TestCheckCtxTimeouts runs checkers that wait (a stuck connect, a hung
// program) under a checkCtx: the deadline still ends them.
func TestCheckCtxTimeouts(t *testing.T) {
	host, port := stuckListener(t)
	hang := script(t, "sleep 30\n")
	for _, sp := range []Spec{
		{Type: TCP, Address: host, Port: port},
		{Type: Exec, Address: host, Port: port, Command: []string{hang}},
	} {
		sp.Timeout, sp.Interval = 200*time.Millisecond, time.Second
		c, err := NewChecker(sp, nil)
		if err != nil {
			t.Fatal(err)
		}
		parent := context.Background()
		var ps *probes
		if haveRawSockets {
			ps = &probes{pl: testPoller(t)}
			parent = withProbes(parent, ps)
		}
		ctx := newCheckCtx(parent, sp.Timeout)
		start := time.Now()
		res := c.Check(ctx)
		ctx.end()
		if ps != nil {
			ps.close()
		}
		if el := time.Since(start); res.Up || !(res.Reason == "timeout" || res.Reason == "connect: timeout") || el > 2*time.Second {
			t.Errorf("%s: %+v after %v", sp.Type, res, el)
		}
	}
}
