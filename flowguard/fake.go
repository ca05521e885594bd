package flowguard

import (
	"fmt"
	"slices"
	"sync"
)

// Op names a Guard method, for the Fake's call log and error injection.
type Op uint8

// Guard operations.
const (
	OpSetQuiet Op = iota
	OpSetHold
	OpClose
)

func (o Op) String() string {
	switch o {
	case OpSetQuiet:
		return "set quiet"
	case OpSetHold:
		return "set hold"
	case OpClose:
		return "close"
	}
	return "op?"
}

// Call is one call made to a Fake.
type Call struct {
	Op      Op
	Targets []Target // as passed, for the Set operations
	Err     error    // what the call returned
}

// Fake is an in-memory Guard for the director's tests. It checks targets
// like NFT does, keeps the sets a successful call installed (a failed call
// changes nothing, like NFT's atomic batches), logs every call and fails
// calls on demand. The zero value is ready to use; it is safe for
// concurrent use.
type Fake struct {
	mu        sync.Mutex
	quiet     []Target
	hold      []Target
	closed    bool
	calls     []Call
	inject    func(Call) error
	qdrops    uint64
	hdrops    uint64
	countsErr error
}

var _ Guard = (*Fake)(nil)

// Inject makes every later call first ask fn (with Op and Targets set); a
// non-nil error fails the call without changing the sets. nil removes the
// hook.
func (f *Fake) Inject(fn func(Call) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inject = fn
}

// SetQuiet implements Guard.
func (f *Fake) SetQuiet(targets []Target) error { return f.set(OpSetQuiet, targets) }

// SetHold implements Guard.
func (f *Fake) SetHold(targets []Target) error { return f.set(OpSetHold, targets) }

func (f *Fake) set(op Op, targets []Target) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := Call{Op: op, Targets: slices.Clone(targets)}
	ts, err := normalize(targets)
	switch {
	case f.closed:
		err = ErrClosed
	case err == nil && f.inject != nil:
		err = f.inject(c)
	}
	if err != nil {
		c.Err = fmt.Errorf("flowguard: %v: %w", op, err)
		f.calls = append(f.calls, c)
		return c.Err
	}
	if len(ts) == 0 {
		ts = nil
	}
	if op == OpSetQuiet {
		f.quiet = ts
	} else {
		f.hold = ts
	}
	f.calls = append(f.calls, c)
	return nil
}

// Close implements Guard: it switches both guards off. Later calls of Set
// fail with ErrClosed; a second Close does nothing.
func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := Call{Op: OpClose}
	if !f.closed && f.inject != nil {
		if err := f.inject(c); err != nil {
			c.Err = fmt.Errorf("flowguard: close: %w", err)
		}
	}
	// Like NFT, a failed Close still leaves the guard closed.
	f.closed, f.quiet, f.hold = true, nil, nil
	f.calls = append(f.calls, c)
	return c.Err
}

// Quiet returns the quiet set in force (normalized; nil when off).
func (f *Fake) Quiet() []Target {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.quiet)
}

// Hold returns the hold set in force (normalized; nil when off).
func (f *Fake) Hold() []Target {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.hold)
}

// Closed reports whether Close was called.
func (f *Fake) Closed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// Calls returns every call so far, failed ones included, in order.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// SetCounters sets what Counters returns, for metrics tests.
func (f *Fake) SetCounters(quiet, hold uint64, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.qdrops, f.hdrops, f.countsErr = quiet, hold, err
}

// Counters mirrors NFT.Counters with the values of SetCounters.
func (f *Fake) Counters() (quiet, hold uint64, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.qdrops, f.hdrops, f.countsErr
}
