package vrrp

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"
)

// core is the virtual router's logic: receive checks, the RFC 5798 state
// machine and its timers. It does no I/O of its own and never reads the
// clock: every event carries "now", and next() says when it wants to be
// woken. One goroutine owns it (Run's loop, or a test with virtual time).
type core struct {
	p   params
	sys system
	tr  sender
	log *slog.Logger
	// penalty returns the sum of the director's penalties (SetPenalty).
	penalty func() int
	// clock, when set, is read after slow kernel calls (adding or removing
	// VIPs), so a timer armed after one counts from when it really ends:
	// on a stalled box, a Master_Down_Timer armed from the event's time
	// could expire before the adverts already queued are read.
	clock func() time.Time
	// held says why preemption is held back by the director
	// (HoldPreemption), "" when it is not.
	held func() string
	// transitioned is told every state change, after the change is done.
	transitioned func(Transition)
	// forced says why the director holds the instance in Fault
	// (SetFault: a sync group member is in Fault), "" when it does not.
	forced func() string
	// ownFault is told every change of the instance's own fault cause
	// (its interface, tracked links, address; not forced), "" when none.
	ownFault     func(cause string)
	lastOwnFault string

	state      State
	localAddr  netip.Addr // our primary address: advert source, tie-breaker
	masterAddr netip.Addr
	// masterInterval is Master_Adver_Interval (v3 backups learn it).
	masterInterval time.Duration
	links          map[string]bool // tracked interfaces (and ours): up?

	adverAt      time.Time // Adver_Timer (Master)
	downAt       time.Time // Master_Down_Timer (Backup)
	downWhy      string    // why downAt was shortened (priority 0 seen)
	preemptAt    time.Time // preempt_delay: may preempt a lower master from then on
	holdUntil    time.Time // Resign: no preemption before then
	garpAt       time.Time // next GARP/NA round of the takeover burst
	garpLeft     int
	refreshAt    time.Time // next periodic GARP/NA round
	retryAt      time.Time // Fault for lack of an address: look again then
	lowerAt      time.Time // rate limit for answering a lower-priority master
	heldLogAt    time.Time // rate limit for the preemption-held log line
	vipLogAt     time.Time // rate limit for the VIP-mismatch log line
	foreignLogAt time.Time // rate limit for the foreign-source log line
	learnLogAt   time.Time // rate limit for the clamped-interval log line

	lastTransition time.Time
	reason         string
	counters       map[string]int

	// Scratch space of the advert path, which allocates nothing.
	txBuf    []byte       // the advert being sent
	dsts     []netip.Addr // where adverts go
	rxAdvert Advert       // the advert being received (Addrs keeps its room)
	// sortedVIPs are the advert's VIPs sorted, to compare received lists.
	sortedVIPs []netip.Addr
}

// params is the validated, defaulted configuration.
type params struct {
	name       string
	vrid       uint8
	version    int
	priority   int
	interval   time.Duration
	iface      string
	v6         bool         // advert family
	advertVIPs []netip.Addr // VIPs of the advert family, in config order
	vips       []netip.Addr // all VIPs
	// peers are the accepted sources: the unicast peers, or the allowed
	// peers in multicast mode (empty: any source).
	peers        []netip.Addr
	unicast      bool // adverts go to peers, not to the multicast group
	maxLearned   time.Duration
	unicastSrc   netip.Addr
	preempt      bool
	preemptDelay time.Duration
	authType     uint8
	authData     [v2AuthLen]byte
	tracks       []Track
	garpCount    int
	garpInterval time.Duration
	garpRefresh  time.Duration
}

// sender sends one VRRP message from src to dst.
type sender interface {
	send(b []byte, src, dst netip.Addr) error
}

// rxPacket is one received VRRP message with what the IP layer told us.
type rxPacket struct {
	b        []byte
	src, dst netip.Addr
	ttl      int  // TTL / hop limit; -1 if unknown
	ifOK     bool // arrived on the instance's interface
}

func newCore(p params, sys system, log *slog.Logger) *core {
	dsts := []netip.Addr{GroupIPv4}
	if p.v6 {
		dsts[0] = GroupIPv6
	}
	if p.unicast {
		dsts = p.peers
	}
	return &core{
		txBuf:      make([]byte, headerLen+16*255+v2AuthLen),
		dsts:       dsts,
		rxAdvert:   Advert{Addrs: make([]netip.Addr, 0, 255)},
		sortedVIPs: slices.SortedFunc(slices.Values(p.advertVIPs), netip.Addr.Compare),
		p:          p, sys: sys, log: log,
		penalty:        func() int { return 0 },
		forced:         func() string { return "" },
		ownFault:       func(string) {},
		held:           func() string { return "" },
		transitioned:   func(Transition) {},
		links:          map[string]bool{},
		counters:       map[string]int{},
		masterInterval: p.interval,
	}
}

func (c *core) count(k string) { c.counters[k]++ }

// effectivePriority is the configured priority lowered by tracked
// interfaces that are down and by the director's penalties. A lowered
// priority stays within 1..254: a penalised owner is no longer the owner.
func (c *core) effectivePriority() int {
	red := c.penalty()
	for _, t := range c.p.tracks {
		if t.Weight > 0 && !c.links[t.Name] {
			red += t.Weight
		}
	}
	if red <= 0 {
		return c.p.priority
	}
	return min(max(c.p.priority-red, 1), 254)
}

// skewTime is ((256 - Priority) * Master_Adver_Interval) / 256: v3 in
// centiseconds (RFC 5798 6.1), v2 (256 - Priority) / 256 seconds (RFC 3768
// 6.1). A lower priority waits longer, so the best backup wins the race.
func skewTime(version, priority int, masterInterval time.Duration) time.Duration {
	if version == 2 {
		return time.Duration(256-priority) * time.Second / 256
	}
	cs := int64(masterInterval / (10 * time.Millisecond))
	return time.Duration((int64(256-priority)*cs)/256) * 10 * time.Millisecond
}

// masterDownInterval is 3 * Master_Adver_Interval + Skew_Time.
func masterDownInterval(version, priority int, masterInterval time.Duration) time.Duration {
	return 3*masterInterval + skewTime(version, priority, masterInterval)
}

func (c *core) skew() time.Duration {
	return skewTime(c.p.version, c.effectivePriority(), c.masterInterval)
}

func (c *core) downInterval() time.Duration {
	return masterDownInterval(c.p.version, c.effectivePriority(), c.masterInterval)
}

// start runs once when the instance starts: clean up VIPs a crashed lbd
// left behind (we are not master yet, so any full-length VIP entry is
// stale), then enter Backup/Master, or Fault if something is missing.
func (c *core) start(now time.Time, links map[string]bool) {
	for k, v := range links {
		c.links[k] = v
	}
	if n, err := c.sys.delVIPs(c.p.vips); err != nil {
		c.count("vip_errors")
		c.log.Error("vrrp: cannot remove stale VIPs", "err", err)
	} else if n > 0 {
		c.log.Warn("vrrp: removed VIPs left on the interface by an earlier run", "count", n)
	}
	c.resolveLocal()
	c.reevaluate(now, "startup")
}

// resolveLocal finds our primary address (unless configured).
func (c *core) resolveLocal() {
	if c.p.unicastSrc.IsValid() {
		c.localAddr = c.p.unicastSrc
		return
	}
	a, err := c.sys.localAddr()
	if err != nil {
		c.localAddr = netip.Addr{}
		return
	}
	c.localAddr = a
}

// faultCause says why the instance cannot take part ("" if it can): its
// own cause first, then the director's.
func (c *core) faultCause() string {
	if why := c.ownFaultCause(); why != "" {
		return why
	}
	return c.forced()
}

// ownFaultCause is faultCause without the director's forced fault.
func (c *core) ownFaultCause() string {
	if !c.links[c.p.iface] {
		return "interface " + c.p.iface + " down"
	}
	for _, t := range c.p.tracks {
		if t.Weight == 0 && !c.links[t.Name] {
			return "tracked interface " + t.Name + " down"
		}
	}
	if !c.localAddr.IsValid() {
		fam := "IPv4 address"
		if c.p.v6 {
			fam = "IPv6 link-local address"
		}
		return "no " + fam + " on " + c.p.iface
	}
	return ""
}

// reevaluate enters or leaves Fault after a change of links or addresses.
func (c *core) reevaluate(now time.Time, why string) {
	if own := c.ownFaultCause(); own != c.lastOwnFault {
		c.lastOwnFault = own
		c.ownFault(own)
	}
	cause := c.faultCause()
	switch {
	case cause != "" && c.state != Fault:
		if c.state == Master {
			c.sendAdvert(0) // best effort: lets the backup take over after Skew_Time
			c.leaveMaster()
		}
		c.clearTimers()
		if !c.localAddr.IsValid() {
			c.retryAt = now.Add(time.Second)
		}
		c.setState(now, Fault, cause)
	case cause != "" && c.state == Fault:
		if !c.localAddr.IsValid() {
			c.retryAt = now.Add(time.Second)
		}
	case cause == "" && (c.state == Fault || c.state == Initialize):
		c.retryAt = time.Time{}
		c.startup(now, why)
	}
}

// startup is the RFC's Startup event: the owner becomes Master at once,
// everyone else listens as Backup for Master_Down_Interval first.
func (c *core) startup(now time.Time, why string) {
	if c.effectivePriority() == 255 && c.held() == "" {
		c.becomeMaster(now, why+": address owner (priority 255)")
		return
	}
	c.masterInterval = c.p.interval
	c.masterAddr = netip.Addr{}
	c.downAt = now.Add(c.downInterval())
	c.downWhy = ""
	c.setState(now, Backup, why)
}

func (c *core) clearTimers() {
	c.adverAt, c.downAt, c.garpAt, c.refreshAt, c.preemptAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
	c.garpLeft = 0
}

// fresh is now, or the clock's time if that is later.
func (c *core) fresh(now time.Time) time.Time {
	if c.clock != nil {
		if t := c.clock(); t.After(now) {
			return t
		}
	}
	return now
}

func (c *core) becomeMaster(now time.Time, why string) {
	c.clearTimers()
	if err := c.sys.addVIPs(c.p.vips); err != nil {
		c.count("vip_errors")
		c.log.Error("vrrp: cannot add VIPs", "err", err)
	}
	now = c.fresh(now)
	c.sendAdvert(c.effectivePriority())
	c.adverAt = now.Add(c.p.interval)
	c.masterAddr = c.localAddr
	c.masterInterval = c.p.interval
	c.announce()
	if c.p.garpCount > 1 {
		c.garpLeft = c.p.garpCount - 1
		c.garpAt = now.Add(c.p.garpInterval)
	}
	if c.p.garpRefresh > 0 {
		c.refreshAt = now.Add(c.p.garpRefresh)
	}
	c.setState(now, Master, why)
}

// leaveMaster gives the VIPs up; the caller picks the next state.
func (c *core) leaveMaster() {
	if _, err := c.sys.delVIPs(c.p.vips); err != nil {
		c.count("vip_errors")
		c.log.Error("vrrp: cannot remove VIPs", "err", err)
	}
}

func (c *core) becomeBackup(now time.Time, why string) {
	if c.state == Master {
		c.leaveMaster()
		now = c.fresh(now)
	}
	c.clearTimers()
	c.downAt = now.Add(c.downInterval())
	c.downWhy = ""
	c.setState(now, Backup, why)
}

func (c *core) setState(now time.Time, to State, why string) {
	from := c.state
	c.state, c.lastTransition, c.reason = to, now, why
	c.count("transitions")
	c.transitioned(Transition{
		Name: c.p.name, VRID: int(c.p.vrid), From: from, To: to, Reason: why, At: now,
		Priority: c.effectivePriority(), MasterAddr: c.masterAddr,
	})
}

func (c *core) sendAdvert(priority int) {
	if c.tr == nil || !c.localAddr.IsValid() {
		return
	}
	a := Advert{
		Version: c.p.version, VRID: c.p.vrid, Priority: uint8(priority),
		Interval: c.p.interval, Addrs: c.p.advertVIPs,
	}
	if c.p.version == 2 {
		a.AuthType, a.AuthData = c.p.authType, c.p.authData
	}
	for _, dst := range c.dsts {
		n, err := a.MarshalTo(c.txBuf, c.localAddr, dst)
		if err == nil {
			err = c.tr.send(c.txBuf[:n], c.localAddr, dst)
		}
		if err != nil {
			c.count("send_errors")
			c.log.Debug("vrrp: send advert", "dst", dst, "err", err)
			continue
		}
		c.count("adverts_sent")
		if priority == 0 {
			c.count("priority_zero_sent")
		}
	}
}

func (c *core) announce() {
	n, err := c.sys.announce(c.p.vips)
	c.counters["garp_sent"] += n
	if err != nil {
		c.count("garp_errors")
		c.log.Debug("vrrp: gratuitous ARP/NA", "err", err)
	}
}

// drop counts a discarded packet.
func (c *core) drop(r DropReason) { c.count("drop_" + string(r)) }

// receive applies the receive checks of RFC 5798 7.1 / RFC 3768 7.1 to a
// packet and, if it passes, hands the advert to the state machine. Every
// rejected packet is counted by reason.
func (c *core) receive(now time.Time, rx rxPacket) {
	c.count("packets_received")
	switch {
	case !rx.ifOK:
		c.drop(DropInterface)
		return
	case rx.src.Is6() != c.p.v6:
		c.drop(DropFamily)
		return
	case rx.ttl != 255:
		c.drop(DropTTL)
		return
	}
	a := &c.rxAdvert
	if err := parseInto(a, rx.b, rx.src, rx.dst); err != nil {
		c.drop(ReasonOf(err))
		return
	}
	switch {
	case a.Version != c.p.version:
		c.drop(DropVersion)
		return
	case a.VRID != c.p.vrid:
		c.drop(DropVRID)
		return
	case rx.src == c.localAddr:
		c.drop(DropOwn)
		return
	case len(c.p.peers) > 0 && !slices.Contains(c.p.peers, rx.src):
		c.drop(DropForeign)
		if now.After(c.foreignLogAt) {
			c.foreignLogAt = now.Add(time.Minute)
			c.log.Warn("vrrp: advert from a source that is not a configured peer: dropped (logged once a minute)",
				"src", rx.src, "priority", a.Priority, "peers", c.p.peers)
		}
		return
	}
	if c.p.version == 2 {
		if a.AuthType != c.p.authType || (a.AuthType == AuthSimple && a.AuthData != c.p.authData) {
			c.drop(DropAuth)
			return
		}
		if a.Interval != c.p.interval {
			c.drop(DropInterval)
			return
		}
	}
	if !sameAddrs(a.Addrs, c.sortedVIPs) {
		c.drop(DropVIPs)
		if now.After(c.vipLogAt) {
			c.vipLogAt = now.Add(10 * time.Second)
			c.log.Warn("vrrp: advert lists other VIPs than ours: misconfiguration",
				"src", rx.src, "theirs", a.Addrs, "ours", c.p.advertVIPs, "priority", a.Priority)
		}
		// RFC 5798 7.1: only the owner's advert is processed despite a mismatch.
		if a.Priority != 255 {
			return
		}
	}
	c.count("adverts_received")
	if a.Priority == 0 {
		c.count("priority_zero_received")
	}
	c.advert(now, a, rx.src)
}

// sameAddrs says whether a holds exactly the addresses of sorted (sorted,
// without duplicates: the validated VIPs), in any order. It allocates
// nothing (the advert path) and takes n log n for n <= 255 addresses.
func sameAddrs(a, sorted []netip.Addr) bool {
	if len(a) != len(sorted) || len(a) > 255 {
		return false
	}
	var seen [255]bool
	for _, x := range a {
		i, ok := slices.BinarySearchFunc(sorted, x, netip.Addr.Compare)
		if !ok || seen[i] {
			return false
		}
		seen[i] = true
	}
	return true
}

// advert is the state machine's reaction to a valid advertisement
// (RFC 5798 6.4.2 and 6.4.3).
func (c *core) advert(now time.Time, a *Advert, src netip.Addr) {
	prio := int(a.Priority)
	switch c.state {
	case Backup:
		if prio == 0 {
			// The master resigned: take over after Skew_Time only.
			c.downAt = now.Add(c.skew())
			c.downWhy = fmt.Sprintf("master %v resigned (priority 0)", src)
			return
		}
		if prio >= c.effectivePriority() || !c.mayPreempt(now) {
			if prio >= c.effectivePriority() {
				c.preemptAt = time.Time{} // a legitimate master: restart any preempt delay
			}
			if c.p.version == 3 {
				c.masterInterval = c.learn(now, a.Interval, src)
			}
			c.masterAddr = src
			c.downAt = now.Add(c.downInterval())
			c.downWhy = ""
			return
		}
		// A lower-priority master we may preempt: ignore it, so the
		// Master_Down_Timer expires and we take over.
	case Master:
		if prio == 0 {
			// Another router resigned while we are master: make sure the
			// network hears from us at once.
			c.sendAdvert(c.effectivePriority())
			c.adverAt = now.Add(c.p.interval)
			return
		}
		eff := c.effectivePriority()
		if prio > eff || (prio == eff && src.Compare(c.localAddr) > 0) {
			if c.p.version == 3 {
				c.masterInterval = c.learn(now, a.Interval, src)
			} else {
				c.masterInterval = c.p.interval
			}
			c.masterAddr = src
			// One last advert with our own priority: the new master takes it
			// for a lower-priority advert and re-announces the VIPs. After a
			// healed split brain, clients that followed us come back at once
			// instead of when their neighbour entry expires.
			c.sendAdvert(eff)
			c.becomeBackup(now, fmt.Sprintf("higher-priority master %v (priority %d, ours %d)", src, prio, eff))
			return
		}
		// A lower-priority router believes it is master (e.g. a healed split
		// brain): advert at once so it steps down, and re-announce the VIPs
		// in case clients followed it. At most once per interval.
		if !now.Before(c.lowerAt) {
			c.lowerAt = now.Add(c.p.interval)
			c.sendAdvert(eff)
			c.adverAt = now.Add(c.p.interval)
			c.announce()
			// Its own gratuitous ARPs may still be in flight and land
			// after ours: announce again in a burst, as at takeover, so
			// the last word on the segment is ours.
			if c.p.garpCount > 1 {
				c.garpLeft = c.p.garpCount - 1
				c.garpAt = now.Add(c.p.garpInterval)
			}
		}
	}
}

// learn returns the Master_Adver_Interval to adopt from an advert: the
// advertised one, bounded by maxLearned (see Config.MaxLearnedInterval).
func (c *core) learn(now time.Time, advertised time.Duration, src netip.Addr) time.Duration {
	if advertised <= c.p.maxLearned {
		return advertised
	}
	c.count("learned_interval_clamped")
	if now.After(c.learnLogAt) {
		c.learnLogAt = now.Add(time.Minute)
		c.log.Warn("vrrp: advert interval beyond max_learned_interval: using the maximum",
			"src", src, "advertised", advertised, "max", c.p.maxLearned)
	}
	return c.p.maxLearned
}

// mayPreempt says whether a backup may now take over from a lower-priority
// master. The owner always preempts (RFC 5798 6.1); Resign's holdoff, the
// director's holds (HoldPreemption) and preempt_delay hold preemption back.
// A hold also makes the owner start as Backup: a returning owner with an
// empty connection table would break every established connection.
func (c *core) mayPreempt(now time.Time) bool {
	if now.Before(c.holdUntil) {
		return false
	}
	if why := c.held(); why != "" {
		// The director is not ready to serve (connection table not
		// learned yet): the owner waits too, a lower master keeps serving.
		c.preemptAt = time.Time{}
		if !now.Before(c.heldLogAt) {
			c.heldLogAt = now.Add(10 * time.Second)
			c.log.Info("vrrp: lower-priority master seen; preemption held back", "why", why)
		}
		return false
	}
	if c.effectivePriority() == 255 {
		return true
	}
	if !c.p.preempt {
		return false
	}
	if c.p.preemptDelay > 0 {
		if c.preemptAt.IsZero() {
			c.preemptAt = now.Add(c.p.preemptDelay)
			c.log.Info("vrrp: lower-priority master seen; preempting after delay", "delay", c.p.preemptDelay)
		}
		return !now.Before(c.preemptAt)
	}
	return true
}

// next is the earliest deadline the core wants to be woken at (zero: none).
func (c *core) next() time.Time {
	var t time.Time
	for _, d := range []time.Time{c.adverAt, c.downAt, c.garpAt, c.refreshAt, c.retryAt} {
		if !d.IsZero() && (t.IsZero() || d.Before(t)) {
			t = d
		}
	}
	return t
}

func due(d, now time.Time) bool { return !d.IsZero() && !now.Before(d) }

// expire handles every timer due at now.
func (c *core) expire(now time.Time) {
	switch c.state {
	case Backup:
		if due(c.downAt, now) {
			why := c.downWhy
			if why == "" {
				why = fmt.Sprintf("no advert for Master_Down_Interval (%v)", c.downInterval())
			}
			c.becomeMaster(now, why)
		}
	case Master:
		if due(c.adverAt, now) {
			c.sendAdvert(c.effectivePriority())
			c.adverAt = c.adverAt.Add(c.p.interval)
			if !c.adverAt.After(now) { // we were stalled: do not burst to catch up
				c.adverAt = now.Add(c.p.interval)
			}
		}
		if due(c.garpAt, now) {
			c.announce()
			c.garpLeft--
			c.garpAt = time.Time{}
			if c.garpLeft > 0 {
				c.garpAt = now.Add(c.p.garpInterval)
			}
		}
		if due(c.refreshAt, now) {
			c.announce()
			c.refreshAt = now.Add(c.p.garpRefresh)
		}
	case Fault:
		if due(c.retryAt, now) {
			c.retryAt = time.Time{}
			c.resolveLocal()
			c.reevaluate(now, "address found")
		}
	}
}

// link records a tracked interface's state and re-evaluates.
func (c *core) link(now time.Time, name string, up bool) {
	if c.links[name] == up {
		return
	}
	c.links[name] = up
	if name == c.p.iface && !c.p.unicastSrc.IsValid() {
		c.resolveLocal()
	}
	state := "down"
	if up {
		state = "up"
	}
	c.log.Info("vrrp: tracked link changed", "link", name, "state", state, "effective_priority", c.effectivePriority())
	c.reevaluate(now, "link "+name+" "+state)
}

// resign is `lbctl failover`: a master sends priority 0, gives the VIPs up
// and will not preempt for holdoff.
func (c *core) resign(now time.Time, holdoff time.Duration) error {
	if c.state != Master {
		return fmt.Errorf("not master (state %v)", c.state)
	}
	c.sendAdvert(0)
	c.holdUntil = now.Add(holdoff)
	c.masterInterval = c.p.interval
	c.becomeBackup(now, fmt.Sprintf("resigned (failover requested; no preemption for %v)", holdoff))
	return nil
}

// shutdown is the RFC's Shutdown event: a master sends priority 0 and gives
// the VIPs up.
func (c *core) shutdown(now time.Time) {
	if c.state == Master {
		c.sendAdvert(0)
		c.leaveMaster()
	}
	c.clearTimers()
	c.retryAt = time.Time{}
	if c.state != Initialize {
		c.setState(now, Initialize, "shutdown")
	}
}
