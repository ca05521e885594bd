package healthcheck

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultConcurrency bounds checks in flight when Options.Concurrency is 0.
// Most checks take well under a millisecond; the bound matters when many
// targets hang until their timeout.
const DefaultConcurrency = 256

// Options configure a Scheduler.
type Options struct {
	// Concurrency is the number of worker goroutines, hence the most
	// checks in flight at once. Default DefaultConcurrency.
	Concurrency int
	// Logger receives one line per state change. Default: discard.
	Logger *slog.Logger
	// OnTransition is called for every state change of every ID, in
	// order, from the Scheduler's own goroutine: it must not block (hand
	// the Transition to a channel). Transitions are levels ("ID is now
	// up"); after a Set, one may repeat a state the receiver already has.
	OnTransition func(Transition)
	// RootCAs verifies https certificates when TLSVerify is on; nil = the
	// system pool.
	RootCAs *x509.CertPool
	// NewChecker builds checkers; nil = Layers.NewChecker(spec, RootCAs).
	// Tests use it to script results.
	NewChecker func(Spec) (Checker, error)
	// Layers chooses the standard library instead of the package's own
	// network code (bench-health compares them); zero: the package's own.
	Layers Layers
}

// Transition is an ID entering Up or Down (never Unknown).
type Transition struct {
	ID     string
	Up     bool
	From   State
	Reason string // the result that decided it: "connect: connection refused", "status 503", "exit 2"
	Time   time.Time
}

// Status is what the Scheduler knows about one ID.
type Status struct {
	ID     string
	Type   Type
	Target string // host:port checked
	State  State
	// Reason is the result that put the target in State; Since is when.
	Reason string
	Since  time.Time
	// The latest check, which may disagree with State while rise or fall
	// is being counted. LastCheck is zero before the first check ends.
	LastCheck    time.Time
	LastDuration time.Duration
	LastUp       bool
	LastReason   string
	// Consecutive successes or failures so far (one of them is 0).
	Successes, Failures int
}

// Stats are running totals for metrics.
type Stats struct {
	Checks   uint64 // checks completed
	Failures uint64 // of which failed
	InFlight int
	Targets  int // distinct checks (after deduplication)
	IDs      int
}

// Scheduler runs every registered check on its interval with at most
// Concurrency checks in flight: a fixed pool of workers takes due checks
// from a heap ordered by due time, and one goroutine (Run) wakes parked
// workers when checks come due. There is no goroutine per check. Each
// worker also keeps its own sockets from check to check (see probe).
type Scheduler struct {
	opts    Options
	log     *slog.Logger
	conc    int
	started atomic.Bool
	wake    chan struct{} // pokes the Run goroutine
	run     chan struct{} // tokens that wake parked workers; closed when Run ends

	setMu sync.Mutex // serializes Set

	mu       sync.Mutex
	groups   map[string]*group // by Spec key
	byID     map[string]*group
	queue    dueQueue
	pending  []Transition // from Set and the workers, delivered by the Run goroutine
	inFlight int
	checks   uint64
	failures uint64
	begun    uint64    // checks started: progress, for the Run goroutine's stall test
	idle     int       // workers parked on run
	armed    time.Time // when Run looks at the queue again; zero: only when poked
	stopping bool
}

// group is one distinct check and every ID that registered it. spec and
// checker never change after creation, so workers read them unlocked; the
// rest is guarded by Scheduler.mu.
type group struct {
	key     string
	spec    Spec
	target  string
	checker Checker

	ids     []string // sorted
	tr      tracker
	reason  string
	since   time.Time
	due     time.Time
	removed bool

	lastCheck  time.Time
	lastDur    time.Duration
	lastUp     bool
	lastReason string
}

// New returns a Scheduler with no checks; add them with Set, then Run.
func New(opts Options) *Scheduler {
	s := &Scheduler{
		opts:   opts,
		log:    opts.Logger,
		conc:   opts.Concurrency,
		wake:   make(chan struct{}, 1),
		groups: map[string]*group{},
		byID:   map[string]*group{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.queue.epoch = time.Now()
	if s.conc <= 0 {
		s.conc = DefaultConcurrency
	}
	s.run = make(chan struct{}, s.conc)
	s.opts.Layers = s.opts.Layers.effective()
	if s.opts.NewChecker == nil {
		roots, layers := opts.RootCAs, s.opts.Layers
		s.opts.NewChecker = func(sp Spec) (Checker, error) { return layers.NewChecker(sp, roots) }
	}
	return s
}

// Set replaces the registered checks (ID → Spec). IDs whose check is
// unchanged keep their state and schedule; removed ones stop; new ones
// start at a point of their interval derived from the check, so checks
// spread evenly instead of firing in one burst.
//
// An ID whose Spec changed starts a new check that keeps the ID's previous
// Up/Down state (counters reset), so editing a check does not cause an
// outage; the new check corrects the state within Fall or Rise checks. An
// ID joining a check that other IDs already share gets a Transition with
// its current state at once.
//
// If any Spec is invalid, Set changes nothing and returns every problem,
// each prefixed with its ID.
func (s *Scheduler) Set(checks map[string]Spec) error {
	s.setMu.Lock()
	defer s.setMu.Unlock()

	ids := make([]string, 0, len(checks))
	for id := range checks {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	norm := make(map[string]Spec, len(checks))
	keys := make(map[string]string, len(checks))
	var errs []error
	for _, id := range ids {
		sp, err := checks[id].Normalize()
		if err != nil {
			errs = append(errs, fmt.Errorf("healthcheck: %s: %w", id, err))
			continue
		}
		norm[id] = sp
		keys[id] = sp.key()
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	// Build checkers for new checks outside s.mu: compiling regexps must
	// not stall the running schedule. Only Set adds groups, and Set is
	// serialized, so the set of existing keys cannot change meanwhile.
	s.mu.Lock()
	fresh := map[string]*group{}
	for _, id := range ids {
		k := keys[id]
		if _, ok := s.groups[k]; !ok && fresh[k] == nil {
			host, port := norm[id].Target()
			fresh[k] = &group{key: k, spec: norm[id], target: hostPort(host, port),
				tr: tracker{rise: norm[id].Rise, fall: norm[id].Fall}}
		}
	}
	s.mu.Unlock()
	for _, g := range fresh {
		c, err := s.opts.NewChecker(g.spec)
		if err != nil {
			errs = append(errs, fmt.Errorf("healthcheck: %s: %w", g.target, err))
		}
		g.checker = c
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	oldByID := s.byID
	newByID := make(map[string]*group, len(ids))
	for _, g := range s.groups {
		g.ids = g.ids[:0]
	}
	for _, id := range ids {
		k := keys[id]
		g := s.groups[k]
		if g == nil {
			g = fresh[k]
		}
		g.ids = append(g.ids, id)
		newByID[id] = g
	}
	// Retire checks nobody references any more.
	for k, g := range s.groups {
		if len(g.ids) == 0 {
			g.removed = true // the queue drops it lazily
			delete(s.groups, k)
		}
	}
	for k, g := range fresh {
		inheritState(g, oldByID)
		g.due = now.Add(startOffset(k, g.spec.Interval))
		s.groups[k] = g
		s.queue.push(g.due, g)
	}
	for _, id := range ids {
		g := newByID[id]
		was := Unknown
		if og := oldByID[id]; og != nil {
			was = og.tr.state
		}
		if g.tr.state != Unknown && g.tr.state != was {
			s.pending = append(s.pending, Transition{
				ID: id, Up: g.tr.state == Up, From: was, Reason: g.reason, Time: now,
			})
		}
	}
	s.byID = newByID
	s.poke()
	return nil
}

// inheritedNote marks a Reason carried over from an ID's previous check.
const inheritedNote = " (before the check changed)"

// inheritState gives a new check the state its IDs had under their old
// checks, when they agree on a known one.
func inheritState(g *group, oldByID map[string]*group) {
	var from *group
	for _, id := range g.ids {
		og := oldByID[id]
		if og == nil || og.tr.state == Unknown || (from != nil && og.tr.state != from.tr.state) {
			return
		}
		from = og
	}
	if from != nil {
		g.tr.state = from.tr.state
		g.reason = from.reason
		if !strings.HasSuffix(g.reason, inheritedNote) {
			g.reason += inheritedNote
		}
		g.since = from.since
	}
}

// startOffset spreads checks over their interval. It is derived from the
// check itself rather than random so that schedules are reproducible.
func startOffset(key string, interval time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(key))
	return time.Duration(h.Sum64() % uint64(interval))
}

func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// batchWindow is how long the Run goroutine lets due checks gather before
// it wakes a worker for them, and how often it looks again while checks
// wait. Checks run up to this late (the cadence stays anchored to the
// schedule, so lateness never adds up). Spread over their interval, 10,000
// checks a second are one due every 100µs: waking a worker for each would
// cost more than the checks themselves; a window of 2ms runs them in
// batches of ~20 with two wake-ups per batch. (Measured with bench-health:
// 1ms → 2ms saves ~3% of a core; wider windows save little more.)
const batchWindow = 2 * time.Millisecond

// nextTick is the next batch-window boundary after t. Run wakes on these
// boundaries, so checks that come due within one window start together.
func nextTick(t time.Time) time.Time {
	return t.Truncate(batchWindow).Add(batchWindow)
}

// Run drives the checks until ctx is done, then waits for the checks in
// flight to return (they are canceled) and returns nil. It may be called
// once.
//
// The workers take due checks from the heap themselves, one after the
// other, and park when none is due; Run only wakes parked workers. A worker
// that finds checks due after its own goes on with them without any
// hand-off, so fast checks (a connect to a server that answers at once)
// run back to back on one goroutine. Workers stuck in slow checks are seen
// by their effect: checks left waiting for a whole batch window. Run then
// wakes more workers, doubling the awake ones at most every window, so
// slow targets never hold up the others for long.
func (s *Scheduler) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("healthcheck: Run called twice")
	}
	var wg sync.WaitGroup
	for range s.conc {
		wg.Go(func() { s.worker(ctx) })
	}
	defer func() {
		s.mu.Lock()
		s.stopping = true
		s.mu.Unlock()
		close(s.run)
		wg.Wait() // the checks in flight are canceled with ctx
	}()

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// The stall test has a timer of its own: it asks whether workers make
	// progress, which is about the CPU, not about the schedule.
	watch := time.NewTimer(time.Hour)
	watch.Stop()
	defer watch.Stop()
	watching := false
	var deliver []Transition
	var lastBegun uint64
	stalled := false
	for {
		s.mu.Lock()
		now := time.Now()
		next, ok := s.queue.peek()
		waiting := ok && !next.After(now)
		if waiting {
			active := s.conc - s.idle
			n := 0
			if active == 0 || (stalled && s.begun == lastBegun) {
				n = 1
			}
			// Checks overdue by a whole window: the awake workers fall
			// behind.
			n = max(n, s.queue.countDue(now.Add(-batchWindow), active))
			for ; n > 0 && s.idle > 0; n-- {
				s.idle--
				s.run <- struct{}{} // never blocks: one token per parked worker
			}
			lastBegun = s.begun
		}
		// When Run looks again by itself: a worker that queues a check
		// due before then (or into an empty queue) must poke it.
		var armed time.Time // for the timer; zero: stopped
		switch {
		case waiting:
			s.armed = now.Add(batchWindow) // the stall timer
		case ok:
			// On a window boundary (see nextTick).
			armed = next
			if !next.Equal(next.Truncate(batchWindow)) {
				armed = nextTick(next)
			}
			s.armed = armed
		default:
			s.armed = time.Time{} // every check is in flight
		}
		deliver = append(deliver[:0], s.pending...)
		clear(s.pending)
		s.pending = s.pending[:0]
		s.mu.Unlock()

		s.deliver(deliver)
		if !armed.IsZero() {
			// Go ≥1.23 timers: Reset and Stop discard an expiry not yet
			// received, so no drain dance is needed.
			timer.Reset(time.Until(armed))
		} else {
			timer.Stop()
		}
		if waiting && !watching {
			// At a window boundary at least half a window away.
			now := time.Now()
			watch.Reset(nextTick(now.Add(batchWindow / 2)).Sub(now))
			watching = true
		} else if !waiting && watching {
			watch.Stop()
			watching = false
		}
		stalled = false
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-watch.C:
			watching, stalled = false, true
		case <-s.wake:
		}
	}
}

func (s *Scheduler) deliver(ts []Transition) {
	if s.opts.OnTransition == nil {
		return
	}
	for _, t := range ts {
		s.opts.OnTransition(t)
	}
}

// worker runs due checks until Run ends, parking when none is due.
func (s *Scheduler) worker(ctx context.Context) {
	// The worker's sockets, reused by its checks (see probe).
	var ps probes
	defer ps.close()
	wctx := withProbes(ctx, &ps)
	s.mu.Lock()
	for !s.stopping {
		g := s.queue.popDue(time.Now())
		if g == nil {
			s.idle++
			s.mu.Unlock()
			<-s.run
			s.mu.Lock()
			continue
		}
		due := g.due
		s.inFlight++
		s.begun++
		s.mu.Unlock()

		start := time.Now()
		cctx, cancel := context.WithTimeout(wctx, g.spec.Timeout)
		res := runCheck(cctx, g.checker)
		cancel()
		dur := time.Since(start)

		s.mu.Lock()
		s.inFlight--
		// A check canceled because Run is stopping says nothing about
		// the target.
		if ctx.Err() == nil {
			s.record(g, due, res, dur)
		}
	}
	s.mu.Unlock()
}

// runCheck turns a checker panic into a failed result: one broken checker
// must not take the director down.
func runCheck(ctx context.Context, c Checker) (res Result) {
	defer func() {
		if p := recover(); p != nil {
			res = down(fmt.Sprintf("checker panic: %v", p))
		}
	}()
	return c.Check(ctx)
}

// record applies one result of g's check that was due at due; s.mu is
// held. Transitions go to s.pending for the Run goroutine to deliver.
func (s *Scheduler) record(g *group, due time.Time, res Result, dur time.Duration) {
	now := time.Now()
	s.checks++
	if !res.Up {
		s.failures++
	}
	if g.removed {
		return
	}
	g.lastCheck, g.lastDur, g.lastUp, g.lastReason = now, dur, res.Up, res.Reason
	from := g.tr.state
	if g.tr.observe(res.Up) {
		g.reason, g.since = res.Reason, now
		level, msg := slog.LevelInfo, "healthcheck: target up"
		if g.tr.state == Down {
			level, msg = slog.LevelWarn, "healthcheck: target down"
		}
		s.log.Log(context.Background(), level, msg, "target", g.target, "type", g.spec.Type,
			"from", from, "reason", res.Reason, "ids", g.ids)
		for _, id := range g.ids {
			s.pending = append(s.pending, Transition{ID: id, Up: g.tr.state == Up, From: from, Reason: res.Reason, Time: now})
		}
		s.poke()
	}
	// Keep the cadence anchored to the schedule, not to when the check
	// ended; if the pool fell behind, run as soon as possible once rather
	// than catching up with a burst.
	g.due = due.Add(g.spec.Interval)
	if g.due.Before(now) {
		g.due = now
	}
	s.queue.push(g.due, g)
	if s.armed.IsZero() || g.due.Before(s.armed) {
		s.poke() // due before Run means to look again
	}
}

// Status reports the state of one ID.
func (s *Scheduler) Status(id string) (Status, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.byID[id]
	if g == nil {
		return Status{}, false
	}
	return g.status(id), true
}

// Snapshot reports every ID, sorted by ID.
func (s *Scheduler) Snapshot() []Status {
	s.mu.Lock()
	out := make([]Status, 0, len(s.byID))
	for id, g := range s.byID {
		out = append(out, g.status(id))
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Status) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// Stats reports running totals.
func (s *Scheduler) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Checks: s.checks, Failures: s.failures, InFlight: s.inFlight, Targets: len(s.groups), IDs: len(s.byID)}
}

func (g *group) status(id string) Status {
	return Status{
		ID: id, Type: g.spec.Type, Target: g.target,
		State: g.tr.state, Reason: g.reason, Since: g.since,
		LastCheck: g.lastCheck, LastDuration: g.lastDur, LastUp: g.lastUp, LastReason: g.lastReason,
		Successes: g.tr.okRun, Failures: g.tr.failRun,
	}
}
