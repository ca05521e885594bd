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
	// Clock defaults to real time.
	Clock Clock
	// OnTransition is called for every state change of every ID, in
	// order, from the Scheduler's own goroutine: it must not block (hand
	// the Transition to a channel). Transitions are levels ("ID is now
	// up"); after a Set, one may repeat a state the receiver already has.
	OnTransition func(Transition)
	// RootCAs verifies https certificates when TLSVerify is on; nil = the
	// system pool.
	RootCAs *x509.CertPool
	// NewChecker builds checkers; nil = NewChecker(spec, RootCAs). Tests
	// use it to script results.
	NewChecker func(Spec) (Checker, error)
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
// Concurrency checks in flight: one goroutine keeps a heap of checks
// ordered by due time and hands due ones to a fixed pool of workers. There
// is no goroutine per check.
type Scheduler struct {
	opts    Options
	log     *slog.Logger
	clock   Clock
	conc    int
	started atomic.Bool
	wake    chan struct{}

	setMu sync.Mutex // serializes Set

	mu       sync.Mutex
	groups   map[string]*group // by Spec key
	byID     map[string]*group
	queue    dueQueue
	pending  []Transition // from Set, delivered by the Run goroutine
	inFlight int
	checks   uint64
	failures uint64
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
		clock:  opts.Clock,
		conc:   opts.Concurrency,
		wake:   make(chan struct{}, 1),
		groups: map[string]*group{},
		byID:   map[string]*group{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.clock == nil {
		s.clock = realClock{}
	}
	s.queue.epoch = s.clock.Now()
	if s.conc <= 0 {
		s.conc = DefaultConcurrency
	}
	if s.opts.NewChecker == nil {
		roots := opts.RootCAs
		s.opts.NewChecker = func(sp Spec) (Checker, error) { return NewChecker(sp, roots) }
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
	now := s.clock.Now()
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

type job struct {
	g   *group
	due time.Time
}

type result struct {
	job
	res Result
	dur time.Duration
}

// Run drives the checks until ctx is done, then waits for the checks in
// flight to return (they are canceled) and returns nil. It may be called
// once.
func (s *Scheduler) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("healthcheck: Run called twice")
	}
	work := make(chan job, s.conc)
	// Room for every job in flight: workers never block on a result, so
	// the loop never waits on a worker that waits on the loop.
	results := make(chan result, s.conc)
	var wg sync.WaitGroup
	for range s.conc {
		wg.Go(func() { s.worker(ctx, work, results) })
	}
	defer func() {
		close(work)
		wg.Wait()
	}()

	timer := s.clock.NewTimer(time.Hour)
	defer timer.Stop()
	var deliver []Transition
	for {
		s.mu.Lock()
		now := s.clock.Now()
		for s.inFlight < s.conc {
			g := s.queue.popDue(now)
			if g == nil {
				break
			}
			s.inFlight++
			work <- job{g: g, due: g.due} // never blocks: buffer = conc
		}
		var next time.Time // zero: nothing to wake up for but results
		if s.inFlight < s.conc {
			next, _ = s.queue.peek()
		}
		deliver = append(deliver[:0], s.pending...)
		clear(s.pending)
		s.pending = s.pending[:0]
		s.mu.Unlock()

		s.deliver(deliver)
		if !next.IsZero() {
			timer.ResetAt(next)
		} else {
			timer.Stop()
		}
		select {
		case <-ctx.Done():
			return nil
		case r := <-results:
			s.finish(ctx, r, results)
		case <-timer.C():
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

func (s *Scheduler) worker(ctx context.Context, work <-chan job, results chan<- result) {
	// The worker's sockets, reused by its checks (see probe).
	var ps probes
	defer ps.close()
	wctx := withProbes(ctx, &ps)
	for j := range work {
		start := time.Now()
		cctx, cancel := context.WithTimeout(wctx, j.g.spec.Timeout)
		res := runCheck(cctx, j.g.checker)
		cancel()
		results <- result{job: j, res: res, dur: time.Since(start)}
	}
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

// finish records r and any other results already waiting, then delivers
// the transitions they caused.
func (s *Scheduler) finish(ctx context.Context, r result, results <-chan result) {
	var out []Transition
	s.mu.Lock()
	now := s.clock.Now()
	for {
		s.inFlight--
		// A check canceled because Run is stopping says nothing about
		// the target.
		if ctx.Err() == nil {
			out = s.record(r, now, out)
		}
		select {
		case r = <-results:
			continue
		default:
		}
		break
	}
	s.mu.Unlock()
	s.deliver(out)
}

// record applies one result; s.mu is held.
func (s *Scheduler) record(r result, now time.Time, out []Transition) []Transition {
	g := r.g
	s.checks++
	if !r.res.Up {
		s.failures++
	}
	if g.removed {
		return out
	}
	g.lastCheck, g.lastDur, g.lastUp, g.lastReason = now, r.dur, r.res.Up, r.res.Reason
	from := g.tr.state
	if g.tr.observe(r.res.Up) {
		g.reason, g.since = r.res.Reason, now
		level, msg := slog.LevelInfo, "healthcheck: target up"
		if g.tr.state == Down {
			level, msg = slog.LevelWarn, "healthcheck: target down"
		}
		s.log.Log(context.Background(), level, msg, "target", g.target, "type", g.spec.Type,
			"from", from, "reason", r.res.Reason, "ids", g.ids)
		for _, id := range g.ids {
			out = append(out, Transition{ID: id, Up: g.tr.state == Up, From: from, Reason: r.res.Reason, Time: now})
		}
	}
	// Keep the cadence anchored to the schedule, not to when the check
	// ended; if the pool fell behind, run as soon as possible once rather
	// than catching up with a burst.
	g.due = r.due.Add(g.spec.Interval)
	if g.due.Before(now) {
		g.due = now
	}
	s.queue.push(g.due, g)
	return out
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
