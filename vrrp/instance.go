package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// system is everything kernel-facing: addresses, announcements, link state
// and the raw transport. linuxSystem is the real one; tests use a fake.
type system interface {
	// open returns the raw VRRP transport on the interface.
	open() (transport, error)
	// localAddr is the interface's primary IPv4 address or its IPv6
	// link-local address (the advert family's).
	localAddr() (netip.Addr, error)
	// watchLinks reports the current up/down state of the named links and
	// then every change until ctx ends.
	watchLinks(ctx context.Context, names []string) (map[string]bool, <-chan linkEvent, error)
	// addVIPs adds the VIPs missing from the interface (full-length prefix,
	// IPv6 without DAD); delVIPs removes the full-length VIP entries and
	// says how many there were.
	addVIPs(vips []netip.Addr) error
	delVIPs(vips []netip.Addr) (int, error)
	// announce sends one gratuitous ARP (IPv4) or unsolicited NA (IPv6)
	// per VIP and says how many went out.
	announce(vips []netip.Addr) (int, error)
	close()
}

// transport sends and receives raw VRRP messages on one interface.
type transport interface {
	sender
	// recv blocks for the next message; it fails once closed.
	recv(b []byte) (int, rxPacket, error)
	// pending returns a message already waiting in the socket without
	// blocking (ok false: none), even while recv blocks in another
	// goroutine: Run reads what is pending before a timer acts.
	pending(b []byte) (n int, p rxPacket, ok bool, err error)
	close() error
}

type linkEvent struct {
	name string
	up   bool
}

// Instance is one VRRP virtual router. Create it with New, run it with Run.
type Instance struct {
	p    params
	cfg  Config
	log  *slog.Logger
	sys  system
	core *core // owned by Run's goroutine
	cmds chan func(now time.Time)
	wake chan struct{}

	mu        sync.Mutex
	status    Status
	penalties map[string]int
	holds     map[string]string // HoldPreemption: source -> why
	faults    map[string]string // SetFault: source -> why
	running   chan struct{}     // non-nil while Run runs; closed when it returns
	notifyErr atomic.Int64

	// The reader goroutine screens packets before queuing them (see
	// read); its drops are counted here and merged into the status.
	rxMu     sync.Mutex
	rxCounts map[string]int
	rxLogAt  time.Time
	master   atomic.Pointer[netip.Addr] // the master the core follows: its adverts go first
}

// New validates cfg and returns an instance that runs in the calling
// process's network namespace. It touches nothing yet: Run does.
func New(cfg Config) (*Instance, error) {
	p, err := validate(&cfg)
	if err != nil {
		return nil, err
	}
	return newInstance(cfg, p, newLinuxSystem(p, cfg.Logger)), nil
}

func newInstance(cfg Config, p params, sys system) *Instance {
	log := cfg.Logger.With("vrrp", p.name, "vrid", p.vrid, "interface", p.iface)
	in := &Instance{
		p: p, cfg: cfg, log: log, sys: sys,
		cmds:      make(chan func(time.Time)),
		wake:      make(chan struct{}, 1),
		penalties: map[string]int{},
		holds:     map[string]string{},
		faults:    map[string]string{},
	}
	in.core = newCore(p, sys, log)
	in.core.penalty = in.penaltySum
	in.core.held = in.heldWhy
	in.core.forced = in.faultWhy
	if cfg.OnOwnFault != nil {
		in.core.ownFault = cfg.OnOwnFault
	}
	in.core.clock = time.Now
	in.publish()
	return in
}

func (in *Instance) errorf(format string, a ...any) error {
	return fmt.Errorf("vrrp: vrid %d on %s: %s", in.p.vrid, in.p.iface, fmt.Sprintf(format, a...))
}

// Run takes part in the election until ctx ends. Then a master sends a
// priority-0 advert (the backup takes over after Skew_Time) and removes its
// VIPs before Run returns nil. It returns an error only if the instance
// cannot start (no such interface, no raw socket).
//
// With Config.RTPriority set, the loop and the socket reader each run on a
// dedicated OS thread (runtime.LockOSThread), named lbd-vrrp and
// lbd-vrrp-rx, with real-time scheduling; the threads end with Run.
// Without it they are ordinary goroutines: a locked thread costs a
// handoff between OS threads at every wake-up, which only pays when the
// thread has a scheduling class of its own.
func (in *Instance) Run(ctx context.Context) error {
	if in.cfg.LockMemory {
		in.lockMemory()
	}
	if in.cfg.RTPriority == 0 {
		return in.run(ctx)
	}
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread, with its name and scheduling
		// class, exits with this goroutine instead of going back to the
		// runtime's pool.
		runtime.LockOSThread()
		in.realtime("lbd-vrrp")
		errc <- in.run(ctx)
	}()
	return <-errc
}

func (in *Instance) run(ctx context.Context) error {
	in.mu.Lock()
	if in.running != nil {
		in.mu.Unlock()
		return in.errorf("already running")
	}
	done := make(chan struct{})
	in.running = done
	in.mu.Unlock()
	defer func() {
		in.mu.Lock()
		in.running = nil
		in.mu.Unlock()
		close(done)
	}()

	n := newNotifier(in.cfg, in.log, &in.notifyErr)
	defer n.close()
	c := in.core
	c.transitioned = func(t Transition) {
		in.log.Info("vrrp transition", "from", t.From, "to", t.To, "reason", t.Reason,
			"priority", t.Priority, "master", addrString(t.MasterAddr))
		if in.cfg.OnTransition != nil {
			in.cfg.OnTransition(t)
		}
		n.notify(t)
	}

	tr, err := in.open(ctx)
	if err != nil || tr == nil {
		return err // tr == nil: ctx ended while waiting for the interface
	}
	defer in.sys.close()
	linkCtx, stopLinks := context.WithCancel(ctx)
	defer stopLinks()
	links, linkEvents, err := in.sys.watchLinks(linkCtx, in.trackedNames())
	if err != nil {
		tr.close()
		return in.errorf("watch links: %v", err)
	}
	c.tr = tr

	rx := make(chan rxPacket, rxQueue)
	rxFirst := make(chan rxPacket, rxFirstQueue)
	// Receive buffers go round between the reader and the loop: one for
	// each queue slot, the reader's and the loop's, so the reader never
	// waits for one and nothing is allocated per packet.
	free := make(chan []byte, rxQueue+rxFirstQueue+2)
	for range cap(free) {
		free <- make([]byte, rxBufSize)
	}
	readerDone := make(chan struct{})
	go in.read(tr, rx, rxFirst, free, readerDone)
	defer func() {
		tr.close()
		<-readerDone
	}()

	pendBuf := make([]byte, rxBufSize)
	receive := func(p rxPacket) {
		c.receive(time.Now(), p)
		free <- p.b[:cap(p.b)]
	}
	c.start(time.Now(), links)
	in.publish()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := time.Hour
		if t := c.next(); !t.IsZero() {
			wait = max(t.Sub(time.Now()), 0)
		}
		timer.Reset(wait)
		// Adverts from the master or a configured peer go first: a flood
		// of others waits (or is dropped) behind them.
		select {
		case p := <-rxFirst:
			receive(p)
			c.expire(time.Now())
			in.publish()
			continue
		default:
		}
		select {
		case <-ctx.Done():
			c.shutdown(time.Now())
			in.publish()
			return nil
		case p := <-rxFirst:
			receive(p)
		case p := <-rx:
			receive(p)
		case ev, ok := <-linkEvents:
			if ok {
				c.link(time.Now(), ev.name, ev.up)
			} else {
				linkEvents = nil
			}
		case cmd := <-in.cmds:
			cmd(time.Now())
		case <-in.wake:
			c.reevaluate(time.Now(), "forced fault lifted")
		case <-timer.C:
			// An advert already queued, or still waiting in the socket
			// (the reader thread has not run yet: a loaded box), is read
			// before the timer acts: a master that is merely late must not
			// lose the election.
			for len(rxFirst) > 0 {
				receive(<-rxFirst)
			}
			in.readPending(tr, pendBuf)
		}
		c.expire(time.Now())
		in.publish()
	}
}

// open opens the transport. An interface that does not exist (yet: a
// late driver, a rename at boot) is a Fault, retried every second; any
// other failure (no permission for raw sockets) is returned.
func (in *Instance) open(ctx context.Context) (transport, error) {
	for {
		tr, err := in.sys.open()
		if err == nil {
			return tr, nil
		}
		if !errors.Is(err, errNoInterface) {
			return nil, in.errorf("%v", err)
		}
		if in.core.state != Fault {
			in.core.setState(time.Now(), Fault, err.Error())
			in.publish()
		}
		retry := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
			retry.Stop()
			in.core.shutdown(time.Now())
			in.publish()
			return nil, nil
		case cmd := <-in.cmds:
			cmd(time.Now())
		case <-retry.C:
		}
		retry.Stop()
	}
}

// errNoInterface is returned by system.open when the interface is missing.
var errNoInterface = errors.New("no such interface")

// Receive queues: the first for adverts of the master and configured
// peers, the other for everything else that passed the screen.
const (
	rxQueue      = 64
	rxFirstQueue = 16
	// rxBufSize holds the largest valid advert with its IPv4 header (an
	// IPv6 one with 255 addresses is 4,088 bytes); anything longer is
	// truncated and fails its checksum.
	rxBufSize = 4200
)

// read feeds received packets to the loop until the transport is closed.
// It screens each one first with the checks that need no state (interface,
// family, TTL, version, type, VRID, allowed source), so a flood of packets
// that would be dropped anyway never fills the queue, and it queues the
// adverts of the master it follows and of configured peers apart, ahead of
// the rest: under a flood of 20,000 foreign packets a second the real
// master's adverts still arrive. A full queue drops the packet and counts
// it as an overrun.
func (in *Instance) read(tr transport, rx, rxFirst chan<- rxPacket, free chan []byte, done chan<- struct{}) {
	defer close(done)
	if in.cfg.RTPriority > 0 {
		runtime.LockOSThread() // never unlocked: see Run
		in.realtime("lbd-vrrp-rx")
	}
	buf := <-free
	var errLogAt time.Time
	for {
		n, p, err := tr.recv(buf)
		if err != nil {
			if errors.Is(err, errClosed) {
				return
			}
			if time.Now().After(errLogAt) {
				errLogAt = time.Now().Add(10 * time.Second)
				in.log.Error("vrrp: receive", "err", err)
			}
			time.Sleep(10 * time.Millisecond) // do not spin on a persistent error
			continue
		}
		if r, ok := in.screen(p, buf[:n]); !ok {
			in.countRx(r)
			continue
		}
		p.b = buf[:n]
		q := rx
		if m := in.master.Load(); m != nil && *m == p.src || slices.Contains(in.p.peers, p.src) {
			q = rxFirst
		}
		select {
		case q <- p:
			buf = <-free
		default:
			// The loop is behind (a flood); VRRP tolerates lost adverts.
			in.countRx(DropOverrun)
		}
	}
}

// maxPendingReads bounds one pending pass: a flood cannot keep a timer
// from acting.
const maxPendingReads = 64

// readPending hands the core every message already waiting in the socket,
// screened as the reader does. Only Run's loop calls it.
func (in *Instance) readPending(tr transport, buf []byte) {
	for range maxPendingReads {
		n, p, ok, err := tr.pending(buf)
		if err != nil || !ok {
			return
		}
		if r, pass := in.screen(p, buf[:n]); !pass {
			in.countRx(r)
			continue
		}
		p.b = buf[:n]
		in.core.receive(time.Now(), p)
		in.core.count("pending_read")
	}
}

// errClosed is returned by transport.recv once the transport is closed.
var errClosed = errors.New("transport closed")

// screen applies the receive checks that need no state of the core; the
// core applies them again (and the rest) to what passes.
func (in *Instance) screen(p rxPacket, b []byte) (DropReason, bool) {
	switch {
	case !p.ifOK:
		return DropInterface, false
	case p.src.Is6() != in.p.v6:
		return DropFamily, false
	case p.ttl != 255:
		return DropTTL, false
	case len(b) < 8:
		return DropLength, false
	case int(b[0]>>4) != in.p.version:
		return DropVersion, false
	case b[0]&0x0f != 1:
		return DropType, false
	case b[1] != in.p.vrid:
		return DropVRID, false
	case len(in.p.peers) > 0 && !slices.Contains(in.p.peers, p.src):
		now := time.Now()
		in.rxMu.Lock()
		logIt := now.After(in.rxLogAt)
		if logIt {
			in.rxLogAt = now.Add(time.Minute)
		}
		in.rxMu.Unlock()
		if logIt {
			in.log.Warn("vrrp: packet from a source that is not a configured peer: dropped (logged once a minute)",
				"src", p.src, "peers", in.p.peers)
		}
		return DropForeign, false
	}
	return "", true
}

// countRx counts a packet the reader dropped.
func (in *Instance) countRx(r DropReason) {
	in.rxMu.Lock()
	if in.rxCounts == nil {
		in.rxCounts = map[string]int{}
	}
	in.rxCounts["packets_received"]++
	in.rxCounts["drop_"+string(r)]++
	in.rxMu.Unlock()
}

func (in *Instance) trackedNames() []string {
	names := []string{in.p.iface}
	for _, t := range in.p.tracks {
		if !slices.Contains(names, t.Name) {
			names = append(names, t.Name)
		}
	}
	return names
}

// do runs fn in Run's goroutine and waits for it.
func (in *Instance) do(fn func(now time.Time) error) error {
	in.mu.Lock()
	running := in.running
	in.mu.Unlock()
	if running == nil {
		return in.errorf("not running")
	}
	reply := make(chan error, 1)
	select {
	case in.cmds <- func(now time.Time) {
		err := fn(now)
		in.publish() // the caller sees the effect in Status at once
		reply <- err
	}:
	case <-running:
		return in.errorf("not running")
	}
	return <-reply
}

// Resign makes a master step down for `lbctl failover`: it sends a
// priority-0 advert (the backup takes over after its Skew_Time), removes
// the VIPs, becomes Backup and does not preempt for holdoff. It fails if
// the instance is not master.
func (in *Instance) Resign(holdoff time.Duration) error {
	return in.do(func(now time.Time) error {
		if err := in.core.resign(now, holdoff); err != nil {
			return in.errorf("resign: %v", err)
		}
		return nil
	})
}

// SetPenalty lowers the priority by n on behalf of source (e.g. "services"
// while a virtual service is below quorum); n = 0 clears it. Penalties of
// all sources add up. The new priority is advertised from the next advert.
func (in *Instance) SetPenalty(source string, n int) {
	in.mu.Lock()
	if n <= 0 {
		delete(in.penalties, source)
	} else {
		in.penalties[source] = n
	}
	in.mu.Unlock()
	select {
	case in.wake <- struct{}{}:
	default:
	}
	in.publishPriority()
}

// HoldPreemption keeps a backup from preempting a lower-priority master on
// behalf of source while why is not empty (e.g. "sync": the connection
// table is not learned yet); why = "" lifts that source's hold. It does not
// keep a backup from taking over when the master is gone.
func (in *Instance) HoldPreemption(source, why string) {
	in.mu.Lock()
	if why == "" {
		delete(in.holds, source)
	} else {
		in.holds[source] = why
	}
	in.mu.Unlock()
}

// SetFault holds the instance in Fault on behalf of source while why is
// not empty (a sync group: another member is in Fault); why = "" lifts it.
// A master gives its VIPs up as it would for a link down. It does not
// block: the instance acts on it in its own goroutine.
func (in *Instance) SetFault(source, why string) {
	in.mu.Lock()
	if why == "" {
		delete(in.faults, source)
	} else {
		in.faults[source] = why
	}
	in.mu.Unlock()
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

func (in *Instance) faultWhy() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.faults) == 0 {
		return ""
	}
	srcs := slices.Sorted(maps.Keys(in.faults))
	return in.faults[srcs[0]]
}

func (in *Instance) heldWhy() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.holds) == 0 {
		return ""
	}
	srcs := slices.Sorted(maps.Keys(in.holds))
	return srcs[0] + ": " + in.holds[srcs[0]]
}

func (in *Instance) penaltySum() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	s := 0
	for _, n := range in.penalties {
		s += n
	}
	return s
}

// Status returns a snapshot of the instance.
func (in *Instance) Status() Status {
	in.mu.Lock()
	defer in.mu.Unlock()
	s := in.status
	s.VIPs = slices.Clone(s.VIPs)
	s.Counters = maps.Clone(s.Counters)
	// The reader's drops are added here, not in publish: a drop the loop
	// never hears of (it only counts) shows at once.
	in.rxMu.Lock()
	if s.Counters == nil && len(in.rxCounts) > 0 {
		s.Counters = map[string]int{}
	}
	for k, v := range in.rxCounts {
		s.Counters[k] += v
	}
	in.rxMu.Unlock()
	return s
}

// publish copies the core's state into the status snapshot. Only Run's
// goroutine (or New) calls it.
func (in *Instance) publish() {
	c := in.core
	if m := in.master.Load(); c.masterAddr.IsValid() && (m == nil || *m != c.masterAddr) {
		a := c.masterAddr
		in.master.Store(&a)
	}
	// In place: the loop publishes after every advert and allocates
	// nothing for it (Status copies). effectivePriority takes in.mu
	// (penalties): read it first.
	eff := c.effectivePriority()
	in.mu.Lock()
	defer in.mu.Unlock()
	s := &in.status
	s.Name, s.State, s.VRID, s.Version = in.p.name, c.state, int(in.p.vrid), in.p.version
	s.Interface, s.Priority, s.EffectivePriority = in.p.iface, in.p.priority, eff
	s.MasterAddr, s.AdvertInterval, s.MasterAdvertInterval = c.masterAddr, in.p.interval, c.masterInterval
	s.LastTransition, s.Reason = c.lastTransition, c.reason
	if s.VIPs == nil {
		s.VIPs = slices.Clone(in.p.vips)
	}
	if s.Counters == nil {
		s.Counters = map[string]int{}
	}
	for k, v := range c.counters {
		s.Counters[k] = v
	}
	if e := in.notifyErr.Load(); e > 0 {
		s.Counters["notify_errors"] = int(e)
	}
	if c.state != Master && c.state != Backup {
		s.MasterAddr = netip.Addr{}
	}
}

// publishPriority refreshes the effective priority in the snapshot right
// away (SetPenalty may be called while Run is not running).
func (in *Instance) publishPriority() {
	sum := in.penaltySum()
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.running != nil {
		return // Run publishes after handling the wake-up
	}
	p := in.p.priority
	if sum > 0 {
		p = min(max(p-sum, 1), 254)
	}
	in.status.EffectivePriority = p
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
