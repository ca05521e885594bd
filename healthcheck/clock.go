package healthcheck

import "time"

// Clock is the Scheduler's time source; tests use a fake one to script
// schedules exactly. Check timeouts always use real time.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is a resettable one-shot timer. ResetAt takes an absolute time so
// that a fake clock advanced between the Scheduler's reading of Now and its
// arming of the timer cannot push the expiry into the future. After ResetAt
// or Stop returns, no value from an earlier expiry may be received from C.
type Timer interface {
	C() <-chan time.Time
	ResetAt(at time.Time)
	Stop()
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

// realTimer relies on Go ≥1.23 timer semantics: Reset and Stop discard a
// pending expiry, so no drain dance is needed.
type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time  { return t.t.C }
func (t realTimer) ResetAt(at time.Time) { t.t.Reset(time.Until(at)) }
func (t realTimer) Stop()                { t.t.Stop() }
