package balancer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for zero Options. lbd's director passes config's resolved
// resync_interval (never zero), so DefaultResyncInterval only serves other
// callers and tests; the director's agreement test keeps it equal to
// config's default.
const (
	DefaultResyncInterval  = 5 * time.Second
	DefaultPendingInterval = time.Second
	DefaultRetryDelay      = time.Second
)

// Options tune a Reconciler; zero values take the defaults, except
// RemoveGrace, where zero is a setting.
type Options struct {
	// ResyncInterval is how often Run re-reads the whole kernel table and
	// repairs drift.
	ResyncInterval time.Duration
	// RemoveGrace bounds how long a real server that left the desired
	// table waits at weight 0 for its connections (active and inactive)
	// to end. Zero removes it at once, connections or not.
	RemoveGrace time.Duration
	// PendingInterval is how often Run checks on such servers.
	PendingInterval time.Duration
	// RetryDelay is how soon Run resyncs after a failed kernel call; it
	// doubles on each further failure up to ResyncInterval.
	RetryDelay time.Duration
	Logger     *slog.Logger
	// Previous lists services an earlier run of lbd managed (the
	// director keeps them in a state file). Those the first desired table
	// no longer has are removed instead of being left alone as foreign,
	// so a service dropped from the config while lbd was down still goes.
	Previous []Key
	// OnNotice hears of what the reconciler found changed behind its back
	// and repaired. It is called from the reconciling goroutine and must
	// not block.
	OnNotice func(Notice)
}

// Notice is a repair an operator should hear of.
type Notice struct {
	Kind    NoticeKind
	Message string
}

// NoticeKind says what was repaired.
type NoticeKind string

const (
	// DriftRepaired: a resync found the kernel's table changed and put it
	// back (someone ran ipvsadm).
	DriftRepaired NoticeKind = "drift_repaired"
	// SyncDaemonDown: a wanted sync daemon was found stopped or changed
	// (and is being started again).
	SyncDaemonDown NoticeKind = "sync_down"
)

func (r *Reconciler) notice(kind NoticeKind, format string, a ...any) {
	if r.opt.OnNotice != nil {
		r.opt.OnNotice(Notice{Kind: kind, Message: fmt.Sprintf(format, a...)})
	}
}

func (o Options) withDefaults() Options {
	if o.ResyncInterval <= 0 {
		o.ResyncInterval = DefaultResyncInterval
	}
	if o.RemoveGrace < 0 {
		o.RemoveGrace = 0
	}
	if o.PendingInterval <= 0 {
		o.PendingInterval = DefaultPendingInterval
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = DefaultRetryDelay
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Counters are the reconciler's running totals and health, for metrics and
// the console.
type Counters struct {
	Writes  uint64 // kernel writes issued, failed ones included
	Errors  uint64 // kernel calls that failed (reads and writes)
	Resyncs uint64 // full passes (re-reading every managed service)
	// LastResync is when a full pass last finished without error.
	LastResync time.Time
	// LastError is the error of the latest pass; empty when it succeeded.
	LastError string
	Managed   int // services in the desired table
	Removing  int // real servers waiting at weight 0 to be removed
	Foreign   int // kernel services lbd leaves alone
}

// Reconciler makes the kernel's IPVS table match a desired Table. It only
// touches services in the table (and ones it is still removing), writes
// only what differs, and is safe for concurrent use.
type Reconciler struct {
	k   Kernel
	opt Options
	log *slog.Logger

	mu       sync.Mutex // one pass at a time; guards the fields below
	started  bool       // Apply has been called
	desired  []*wantService
	byKey    map[Key]*wantService
	removing map[Key]bool                  // services left out of the table, still in the kernel
	verified map[Key]*wantService          // services whose last pass matched the kernel fully
	view     map[Key]*kernelService        // the kernel as last read or written
	pending  map[Key]map[DestKey]time.Time // real servers being removed: deadline
	foreign  map[Key]bool                  // logged once each
	lastFull time.Time
	lastPass time.Time
	failures int // consecutive failed passes
	lastErr  error

	// The connection timeouts wanted (zero fields: the kernel's), and
	// the kernel's as last read or written (nil: unknown).
	timeouts      Timeouts
	timeoutsSeen  *Timeouts
	timeoutsDirty bool

	// The connection-sync daemons (sync.go), desired state since the
	// first SetSync; before it, any daemon is foreign and left alone.
	syncSet   bool
	syncWant  []SyncDaemon                // validated, master first
	syncOwned map[SyncRole]bool           // roles wanted in this process: stopped once no longer wanted
	syncView  map[SyncRole]SyncDaemon     // the kernel's daemons as last read or written; nil: unknown
	syncState map[SyncRole]*syncRoleState // per wanted role
	syncDirty bool                        // the wanted daemons changed since the last pass
	conns     ConnCounts                  // the last good reading
	connsAt   time.Time                   // when it was taken
	connsErr  string                      // why the last reading failed
	connsNext time.Time                   // no reading before (slow reads are spaced out)
	syncSnap  atomic.Pointer[SyncStatus]

	writes, errs, resyncs atomic.Uint64
	snap                  atomic.Pointer[[]ServiceSnapshot]
	counters              atomic.Pointer[Counters]
	kick                  chan struct{}
}

// wantService is a desired service, normalized as the kernel reports it.
type wantService struct {
	svc       Service
	dests     []Destination // sorted by key
	byKey     map[DestKey]Destination
	removeNow map[DestKey]bool
}

func (w *wantService) equal(o *wantService) bool {
	return o != nil && w.svc == o.svc && slices.Equal(w.dests, o.dests) && maps.Equal(w.removeNow, o.removeNow)
}

// syncRoleState is what the reconciler knows of a wanted sync daemon.
type syncRoleState struct {
	running bool      // runs with the wanted settings
	since   time.Time // since when, without a gap seen
	err     string    // the last failure to start (or restart) it
}

type kernelService struct {
	st    ServiceStatus
	dests map[DestKey]*DestinationStatus
}

// NewReconciler returns a reconciler for k. Nothing is touched until Apply.
func NewReconciler(k Kernel, opt Options) *Reconciler {
	opt = opt.withDefaults()
	r := &Reconciler{
		k: k, opt: opt, log: opt.Logger,
		byKey:    map[Key]*wantService{},
		removing: map[Key]bool{},
		verified: map[Key]*wantService{},
		view:     map[Key]*kernelService{},
		pending:  map[Key]map[DestKey]time.Time{},
		foreign:  map[Key]bool{},
		kick:     make(chan struct{}, 1),

		syncOwned: map[SyncRole]bool{},
		syncState: map[SyncRole]*syncRoleState{},
	}
	for _, k := range opt.Previous {
		r.removing[k] = true
	}
	r.counters.Store(&Counters{})
	r.snap.Store(&[]ServiceSnapshot{})
	r.syncSnap.Store(&SyncStatus{})
	return r
}

// Managed lists the services the reconciler owns: the desired ones and
// those it is still removing, sorted. The director persists it as the next
// run's Options.Previous.
func (r *Reconciler) Managed() []Key {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys := make([]Key, 0, len(r.byKey)+len(r.removing))
	for k := range r.byKey {
		keys = append(keys, k)
	}
	for k := range r.removing {
		if r.byKey[k] == nil {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, compareKeys)
	return keys
}

// Apply makes t the desired table and brings the kernel to it. An invalid
// table is refused whole, before any write. Otherwise Apply writes what
// differs, carrying on past failed calls; the returned error lists them and
// Run retries soon. Services dropped from t are removed from the kernel;
// real servers dropped from a kept service are set to weight 0 and removed
// once their connections (active and inactive) end or RemoveGrace passes.
//
// Apply re-reads the real servers only of services that changed since they
// last matched; Resync re-reads everything.
func (r *Reconciler) Apply(t Table) error {
	if err := t.Validate(); err != nil {
		return err
	}
	want := make([]*wantService, 0, len(t.Services))
	byKey := make(map[Key]*wantService, len(t.Services))
	for _, vs := range t.Services {
		w := &wantService{svc: vs.Service.normalized(), byKey: make(map[DestKey]Destination, len(vs.Destinations))}
		w.dests = slices.Clone(vs.Destinations)
		for i := range w.dests {
			w.dests[i].Addr = w.dests[i].Addr.Unmap()
			w.byKey[w.dests[i].Key()] = w.dests[i]
		}
		sortDests(w.dests)
		for _, dk := range vs.RemoveNow {
			if w.removeNow == nil {
				w.removeNow = map[DestKey]bool{}
			}
			w.removeNow[DestKey{Addr: dk.Addr.Unmap(), Port: dk.Port}] = true
		}
		want = append(want, w)
		byKey[w.svc.Key] = w
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.byKey {
		if byKey[k] == nil {
			r.removing[k] = true
		}
	}
	for k := range byKey {
		delete(r.removing, k)
	}
	r.desired, r.byKey, r.started = want, byKey, true
	if t.Timeouts != r.timeouts {
		r.timeouts, r.timeoutsDirty = t.Timeouts, true
	}
	return r.pass(false, true)
}

// Resync re-reads every managed service and the sync daemons from the
// kernel and repairs any difference from the desired state (someone ran
// ipvsadm). It does nothing before the first Apply or SetSync.
func (r *Reconciler) Resync() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.active() {
		return nil
	}
	return r.pass(true, true)
}

// active reports whether there is desired state to keep.
func (r *Reconciler) active() bool { return r.started || r.syncSet }

// Run resyncs every ResyncInterval, checks real servers waiting for removal
// every PendingInterval, and resyncs soon after a failed pass, until ctx
// ends. Errors are logged and counted, not returned.
func (r *Reconciler) Run(ctx context.Context) error {
	for {
		wait, full := r.next()
		select {
		case <-ctx.Done():
			return nil
		case <-r.kick:
			continue // the schedule changed: recompute
		case <-time.After(wait):
		}
		r.mu.Lock()
		// Re-check: an Apply may have run while we waited.
		if wait, full = r.nextLocked(); r.active() && wait <= 0 {
			_ = r.pass(full, true)
		}
		r.mu.Unlock()
	}
}

// next says how long Run sleeps and whether the pass after it is full.
func (r *Reconciler) next() (time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nextLocked()
}

func (r *Reconciler) nextLocked() (time.Duration, bool) {
	now := time.Now()
	if !r.active() {
		return r.opt.ResyncInterval, false
	}
	fullAt := r.lastFull.Add(r.opt.ResyncInterval)
	if r.failures > 0 {
		d := r.opt.RetryDelay << min(r.failures-1, 16)
		fullAt = minTime(fullAt, r.lastPass.Add(min(d, r.opt.ResyncInterval)))
	}
	at, full := fullAt, true
	if len(r.pending) > 0 {
		if p := r.lastPass.Add(r.opt.PendingInterval); p.Before(fullAt) {
			at, full = p, false
		}
	}
	return max(at.Sub(now), 0), full
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// Snapshot returns the managed services as the kernel last showed them, with
// counters, sorted by key. Stats are as fresh as the last pass that read the
// service (a resync reads all of them every ResyncInterval).
func (r *Reconciler) Snapshot() []ServiceSnapshot {
	src := *r.snap.Load()
	out := make([]ServiceSnapshot, len(src))
	for i, s := range src {
		out[i] = s
		out[i].Destinations = slices.Clone(s.Destinations)
	}
	return out
}

// Counters returns the running totals.
func (r *Reconciler) Counters() Counters {
	c := *r.counters.Load()
	c.Writes, c.Errors, c.Resyncs = r.writes.Load(), r.errs.Load(), r.resyncs.Load()
	return c
}

// pass is one reconcile: read the service list, remove dropped services,
// bring each desired service in line, then the sync daemons. full re-reads
// every service's real servers and the running daemons; otherwise only
// the real servers of services not known to match, and the daemons only
// when the wanted ones changed. services=false leaves the services out
// (SetSync); they are never touched before the first Apply.
func (r *Reconciler) pass(full, services bool) error {
	start := time.Now()
	w0, e0 := r.writes.Load(), r.errs.Load()
	p := &passErrs{}
	if services && r.started {
		r.sync(full, p)
		r.syncTimeouts(full, p)
	}
	// The sync daemons' repairs have notices of their own.
	tableWrites := r.writes.Load() - w0
	r.syncDaemons(full, p)
	now := time.Now()
	r.lastPass = now
	err := p.err()
	if r.lastFull.IsZero() {
		// The first Apply read what it needed: the first resync is one
		// interval later.
		r.lastFull = now
	}
	if err == nil {
		r.failures = 0
		if full {
			r.lastFull = now
			r.resyncs.Add(1)
		}
	} else {
		r.failures++
		if full {
			// Count the attempt for the schedule, not as a good resync.
			r.lastFull = now
		}
	}
	r.lastErr = err
	r.publish(full && err == nil, now)
	r.publishSync()

	writes, errs := r.writes.Load()-w0, r.errs.Load()-e0
	switch {
	case err != nil:
		r.log.Warn("balancer: reconcile failed", "full", full, "writes", writes, "errors", errs,
			"took", now.Sub(start), "err", err)
		select {
		case r.kick <- struct{}{}:
		default:
		}
	case writes > 0 && full:
		r.log.Info("balancer: repaired IPVS drift", "writes", writes, "took", now.Sub(start))
		if tableWrites > 0 {
			r.notice(DriftRepaired, "IPVS table changed behind lbd's back: repaired with %d writes", tableWrites)
		}
	case writes > 0:
		r.log.Info("balancer: IPVS updated", "writes", writes, "took", now.Sub(start))
	}
	return err
}

// passErrs collects a pass's errors, keeping the first few in full.
type passErrs struct {
	list []error
	more int
}

const maxPassErrs = 8

func (p *passErrs) add(err error) {
	if len(p.list) < maxPassErrs {
		p.list = append(p.list, err)
		return
	}
	p.more++
}

func (p *passErrs) err() error {
	if len(p.list) == 0 {
		return nil
	}
	if p.more > 0 {
		p.list = append(p.list, fmt.Errorf("balancer: and %d more errors", p.more))
	}
	return errors.Join(p.list...)
}

func (r *Reconciler) call(p *passErrs, write bool, err error) bool {
	if write {
		r.writes.Add(1)
	}
	if err != nil {
		r.errs.Add(1)
		p.add(err)
		return false
	}
	return true
}

func (r *Reconciler) sync(full bool, p *passErrs) {
	list, err := r.k.Services()
	if !r.call(p, false, err) {
		return
	}
	inKernel := make(map[Key]ServiceStatus, len(list))
	for _, s := range list {
		inKernel[s.Key] = s
	}

	// Foreign services: left alone, logged once each.
	for k := range r.foreign {
		if _, ok := inKernel[k]; !ok || r.byKey[k] != nil || r.removing[k] {
			delete(r.foreign, k)
		}
	}
	for _, s := range list {
		if r.byKey[s.Key] == nil && !r.removing[s.Key] && !r.foreign[s.Key] {
			r.foreign[s.Key] = true
			r.log.Info("balancer: leaving IPVS service lbd does not manage alone", "service", s.Key.String(),
				"scheduler", s.Scheduler)
		}
	}

	// Services dropped from the table: delete them.
	for k := range r.removing {
		if _, ok := inKernel[k]; ok && !r.call(p, true, r.k.RemoveService(k)) {
			continue
		}
		delete(r.removing, k)
		delete(r.view, k)
		delete(r.pending, k)
	}
	for k := range r.view {
		if r.byKey[k] == nil && !r.removing[k] {
			delete(r.view, k)
		}
	}
	for k := range r.verified {
		if r.byKey[k] == nil {
			delete(r.verified, k)
		}
	}

	for _, w := range r.desired {
		ks, ok := inKernel[w.svc.Key]
		if r.syncService(w, ks, ok, full, p) {
			r.verified[w.svc.Key] = w
		} else {
			delete(r.verified, w.svc.Key)
		}
	}
}

// syncService brings one service in line and reports whether it now matches.
func (r *Reconciler) syncService(w *wantService, ks ServiceStatus, present, full bool, p *passErrs) bool {
	key := w.svc.Key
	if !present {
		delete(r.view, key)
		delete(r.pending, key)
		if !r.call(p, true, r.k.CreateService(w.svc)) {
			return false
		}
		v := &kernelService{st: ServiceStatus{Service: w.svc}, dests: make(map[DestKey]*DestinationStatus, len(w.dests))}
		r.view[key] = v
		ok := true
		for _, d := range w.dests {
			if r.call(p, true, r.k.CreateDestination(key, d)) {
				v.dests[d.Key()] = &DestinationStatus{Destination: d}
			} else {
				ok = false
			}
		}
		return ok
	}

	v := r.view[key]
	if v == nil {
		v = &kernelService{}
		r.view[key] = v
	}
	v.st = ks
	ok := true
	if !w.svc.sameSettings(ks.Service) {
		if r.call(p, true, r.k.UpdateService(w.svc)) {
			v.st.Service = w.svc
		} else {
			ok = false
		}
	}

	if !full && w.equal(r.verified[key]) && len(r.pending[key]) == 0 && v.dests != nil {
		return ok // unchanged since it last matched: Resync checks its servers
	}
	kds, err := r.k.Destinations(key)
	if !r.call(p, false, err) {
		return false
	}
	v.dests = make(map[DestKey]*DestinationStatus, len(kds))
	for i := range kds {
		kds[i].Addr = kds[i].Addr.Unmap()
		v.dests[kds[i].Key()] = &kds[i]
	}

	// Add and update first, so the service never runs short while
	// servers are swapped.
	for _, d := range w.dests {
		dk := d.Key()
		cur := v.dests[dk]
		switch {
		case cur == nil:
			if r.call(p, true, r.k.CreateDestination(key, d)) {
				v.dests[dk] = &DestinationStatus{Destination: d}
			} else {
				ok = false
			}
		case cur.Weight != d.Weight || cur.Forwarding != d.Forwarding:
			if r.call(p, true, r.k.UpdateDestination(key, d)) {
				cur.Destination = d
			} else {
				ok = false
			}
		}
		r.clearPending(key, dk)
	}

	now := time.Now()
	for dk, cur := range v.dests {
		if _, wanted := w.byKey[dk]; wanted {
			continue
		}
		if w.removeNow[dk] {
			if !r.removeNow(key, v, cur, p) {
				ok = false
			}
			continue
		}
		if !r.removeGracefully(key, v, cur, now, p) {
			ok = false
		}
	}
	return ok
}

// removeGracefully handles one real server that left the table: with no
// connections at all (or no grace period) it goes at once; otherwise it is
// quiesced (weight 0) and removed when they end or the grace period is over.
//
// Inactive connections count too: they are ones still in their handshake
// (SYN_RECV) or closing (FIN_WAIT, TIME_WAIT ...), and UDP flows. Removing
// the server under them with expire_nodest_conn=1 (lbd's setting) drops
// their next packet and the client gets a reset mid-handshake or
// mid-close.
func (r *Reconciler) removeGracefully(key Key, v *kernelService, cur *DestinationStatus, now time.Time, p *passErrs) bool {
	dk := cur.Key()
	deadline, waiting := r.pending[key][dk]
	expired := waiting && !now.Before(deadline) || r.opt.RemoveGrace == 0
	conns := cur.ActiveConns + cur.InactiveConns
	if conns == 0 || expired {
		if !r.call(p, true, r.k.RemoveDestination(key, dk)) {
			return false
		}
		if expired && conns > 0 {
			r.log.Info("balancer: removal grace ended, removing real server with connections",
				"service", key.String(), "real_server", dk.String(), "active_conns", cur.ActiveConns,
				"inactive_conns", cur.InactiveConns)
		}
		delete(v.dests, dk)
		r.clearPending(key, dk)
		return true
	}
	if !waiting {
		deadline = now.Add(r.opt.RemoveGrace)
		if r.pending[key] == nil {
			r.pending[key] = map[DestKey]time.Time{}
		}
		r.pending[key][dk] = deadline
		r.log.Info("balancer: quiescing real server before removal", "service", key.String(),
			"real_server", dk.String(), "active_conns", cur.ActiveConns, "inactive_conns", cur.InactiveConns,
			"remove_by", deadline)
	}
	if cur.Weight != 0 {
		d := cur.Destination
		d.Weight = 0
		if !r.call(p, true, r.k.UpdateDestination(key, d)) {
			return false
		}
		cur.Weight = 0
	}
	return true
}

// removeNow removes a real server listed in RemoveNow at once, whatever
// its connections, even one already waiting for its grace to end.
func (r *Reconciler) removeNow(key Key, v *kernelService, cur *DestinationStatus, p *passErrs) bool {
	dk := cur.Key()
	if !r.call(p, true, r.k.RemoveDestination(key, dk)) {
		return false
	}
	if conns := cur.ActiveConns + cur.InactiveConns; conns > 0 {
		r.log.Info("balancer: removed failed real server with its connections", "service", key.String(),
			"real_server", dk.String(), "active_conns", cur.ActiveConns, "inactive_conns", cur.InactiveConns)
	}
	delete(v.dests, dk)
	r.clearPending(key, dk)
	return true
}

func (r *Reconciler) clearPending(key Key, dk DestKey) {
	if m := r.pending[key]; m != nil {
		delete(m, dk)
		if len(m) == 0 {
			delete(r.pending, key)
		}
	}
}

// publish stores an immutable copy of the view for Snapshot and Counters.
func (r *Reconciler) publish(fullOK bool, now time.Time) {
	snap := make([]ServiceSnapshot, 0, len(r.view))
	removing := 0
	for k, v := range r.view {
		if r.byKey[k] == nil {
			continue // being deleted
		}
		s := ServiceSnapshot{ServiceStatus: v.st, Destinations: make([]DestSnapshot, 0, len(v.dests))}
		for dk, d := range v.dests {
			ds := DestSnapshot{DestinationStatus: *d}
			if by, ok := r.pending[k][dk]; ok {
				ds.Removing, ds.RemoveBy = true, by
				removing++
			}
			s.Destinations = append(s.Destinations, ds)
		}
		slices.SortFunc(s.Destinations, func(a, b DestSnapshot) int { return compareDestKeys(a.Key(), b.Key()) })
		snap = append(snap, s)
	}
	slices.SortFunc(snap, func(a, b ServiceSnapshot) int { return compareKeys(a.Key, b.Key) })
	r.snap.Store(&snap)

	c := *r.counters.Load()
	if fullOK {
		c.LastResync = now
	}
	c.LastError = ""
	if r.lastErr != nil {
		c.LastError = r.lastErr.Error()
	}
	c.Managed, c.Removing, c.Foreign = len(r.desired), removing, len(r.foreign)
	r.counters.Store(&c)
}
