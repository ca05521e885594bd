package director

// Stateful failover: the director's part.
//
// The kernel's sync daemons copy the connection table between the two
// directors (balancer.Reconciler keeps both roles running on both boxes as
// desired state). Three gaps remain, and the director closes them:
//
//   - Warm-up. A director that has just started has an empty table; if it
//     preempted the current master at once, every established connection
//     would break (keepalived #1966). It holds preemption (not a takeover
//     from a dead master) until its backup daemon has run, in Backup with a
//     master heard, for [sync] warm_up: by then every connection that
//     carries traffic has been re-sent (sync_refresh_period) and the
//     kernel's partly filled messages (sent within 3 s) have arrived.
//   - Handshakes on a resigning master. A SYN scheduled by the old master
//     whose handshake ends on the new one is known to neither (the kernel
//     syncs a connection once it is ESTABLISHED). A master that resigns
//     gracefully (SIGTERM, lbctl failover) first holds new connections for
//     handover_hold (their SYNs are dropped; clients retry a second later
//     and reach the new master), then gives the VIPs up.
//   - The sync tail. The old master's newest connections reach the new one
//     up to 3 s late. For takeover_quiet after becoming master, TCP
//     segments that IPVS does not know are dropped instead of answered
//     with a reset; the client retransmits and IPVS takes them once the
//     sync message is in. While not master the same rule is in place (it
//     matches nothing without the VIPs), so a takeover never runs ahead
//     of it.
//
// Both guards are nftables rules (flowguard) that only match TCP to the
// virtual services.

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"lbd/api"
	"lbd/balancer"
	"lbd/config"
	"lbd/flowguard"
	"lbd/vrrp"
)

// syncDaemons is the desired pair of sync daemons for the settings.
func syncDaemons(s config.SyncSettings) []balancer.SyncDaemon {
	base := balancer.SyncDaemon{
		Interface: s.Interface, SyncID: uint8(s.ID), Group: s.Group,
		Port: uint16(s.Port), TTL: uint8(s.TTL), MaxLen: uint16(s.MaxPacketLen),
	}
	m, b := base, base
	m.Role, b.Role = balancer.SyncMaster, balancer.SyncBackup
	return []balancer.SyncDaemon{m, b}
}

// isCheckService reports whether k is one of lbd's own through-VIP check
// services (see checkMarks), which no operator sees or counts.
func isCheckService(k balancer.Key) bool { return k.Fwmark != 0 && config.IsCheckMark(k.Fwmark) }

// guardTargets are the table's TCP services (and firewall marks, which may
// carry TCP).
func guardTargets(t balancer.Table) []flowguard.Target {
	var out []flowguard.Target
	for _, vs := range t.Services {
		k := vs.Key
		switch {
		case isCheckService(k):
			// lbd's own check traffic starts here, not at the guard.
		case k.Fwmark != 0:
			a := netip.IPv4Unspecified()
			if k.Family == balancer.IPv6 {
				a = netip.IPv6Unspecified()
			}
			out = append(out, flowguard.Target{Addr: a, Fwmark: k.Fwmark})
		case k.Protocol == balancer.TCP:
			out = append(out, flowguard.Target{Addr: k.Addr, Port: k.Port})
		}
	}
	return out
}

// handover runs the guard: quiet while not master and for a while after
// becoming master, hold while a master resigns. Its methods are safe for
// concurrent use; nftables is written only when the wanted rules change.
type handover struct {
	g   flowguard.Guard
	log *slog.Logger
	now func() time.Time

	mu         sync.Mutex
	quiet      time.Duration // takeover_quiet
	targets    []flowguard.Target
	master     bool
	quietUntil time.Time
	holding    bool
	timer      *time.Timer
	appliedQ   []flowguard.Target // what the guard holds; empty = no rules
	appliedH   []flowguard.Target
	err        string

	// With several VRRP instances the quiet rule follows each VIP's own
	// instance: owner maps a VIP to its instance (nil with one instance:
	// the director-wide master flag above decides), inst says whether an
	// instance is master and until when it is in its takeover window.
	owner  map[netip.Addr]string
	inst   map[string]instanceRole
	closed bool // no rules are written after close
}

type instanceRole struct {
	master     bool
	quietUntil time.Time
}

func newHandover(g flowguard.Guard, log *slog.Logger) *handover {
	return &handover{g: g, log: log, now: time.Now}
}

// configure sets the services to guard and the quiet window.
func (h *handover) configure(targets []flowguard.Target, quiet time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.targets, h.quiet = targets, quiet
	h.applyLocked()
}

// vrrpState is told every VRRP transition.
func (h *handover) vrrpState(master bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if master && !h.master {
		h.quietUntil = h.now().Add(h.quiet)
		if h.timer != nil {
			h.timer.Stop()
		}
		h.timer = time.AfterFunc(h.quiet, func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.applyLocked()
		})
	}
	h.master = master
	h.applyLocked()
}

// setOwners says which instance owns each VIP (nil: one instance).
func (h *handover) setOwners(owner map[netip.Addr]string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.owner = owner
	if h.inst == nil {
		h.inst = map[string]instanceRole{}
	}
	h.applyLocked()
}

// instanceState is told every transition of one instance.
func (h *handover) instanceState(name string, master bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.inst == nil {
		h.inst = map[string]instanceRole{}
	}
	r := h.inst[name]
	if master && !r.master {
		r.quietUntil = h.now().Add(h.quiet)
		time.AfterFunc(h.quiet, func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.applyLocked()
		})
	}
	r.master = master
	h.inst[name] = r
	h.applyLocked()
}

// quietFor says whether target t gets the quiet rule now.
func (h *handover) quietFor(t flowguard.Target, now time.Time) bool {
	if name, ok := h.owner[t.Addr]; ok {
		r := h.inst[name]
		return !r.master || now.Before(r.quietUntil)
	}
	// One instance, or a target no instance owns (a fwmark service):
	// the director-wide state.
	return !h.master || now.Before(h.quietUntil)
}

// hold turns the resigning master's SYN hold on or off.
func (h *handover) hold(on bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.holding = on
	h.applyLocked()
}

// state is "quiet" in the window after a takeover, "hold" while resigning.
func (h *handover) state() (string, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.holding:
		return "hold", h.err
	case h.master && h.now().Before(h.quietUntil):
		return "quiet", h.err
	}
	return "", h.err
}

func (h *handover) applyLocked() {
	if h.closed {
		return
	}
	var q, hd []flowguard.Target
	now := h.now()
	switch {
	case h.owner == nil:
		if !h.master || now.Before(h.quietUntil) {
			q = h.targets
		}
	default:
		for _, t := range h.targets {
			if h.quietFor(t, now) {
				q = append(q, t)
			}
		}
	}
	if h.holding {
		hd = h.targets
	}
	var errs []string
	if !slices.Equal(q, h.appliedQ) {
		if err := h.g.SetQuiet(q); err != nil {
			errs = append(errs, err.Error())
		} else {
			h.appliedQ = slices.Clip(q)
		}
	}
	if !slices.Equal(hd, h.appliedH) {
		if err := h.g.SetHold(hd); err != nil {
			errs = append(errs, err.Error())
		} else {
			h.appliedH = slices.Clip(hd)
		}
	}
	if len(errs) > 0 {
		h.err = fmt.Sprint(errs)
		h.log.Error("handover guard not set", "err", h.err)
	} else {
		h.err = ""
	}
}

// close removes the rules.
func (h *handover) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.timer != nil {
		h.timer.Stop()
	}
	h.closed = true
	if err := h.g.Close(); err != nil {
		h.log.Warn("handover guard not removed", "err", err)
	}
}

// warmth says whether this director has learned the peer's connection
// table and may preempt, and if not why.
func warmth(now time.Time, s config.SyncSettings, backup balancer.SyncDaemonStatus, v vrrp.Status) (bool, string) {
	switch {
	case v.State == vrrp.Master:
		return true, "master: the peer learns from this director"
	case !backup.Running:
		why := "backup sync daemon not running"
		if backup.Err != "" {
			why += ": " + backup.Err
		}
		return false, why
	case v.State != vrrp.Backup:
		return false, "VRRP " + stateName(v.State)
	case !v.MasterAddr.IsValid():
		return false, "no master heard yet"
	}
	since := backup.Since
	if v.LastTransition.After(since) {
		since = v.LastTransition
	}
	if el := now.Sub(since); el < s.WarmUp {
		return false, fmt.Sprintf("learning the master's connections: %s of %s", el.Truncate(100*time.Millisecond), s.WarmUp)
	}
	return true, "connection table learned from " + v.MasterAddr.String()
}

// syncTick re-evaluates warmth and holds or releases preemption. It runs
// every warmTick while the director runs.
func (d *Director) syncTick() {
	d.mu.Lock()
	cfg, rec, vs := d.cfg, d.rec, slices.Clone(d.vrrps)
	d.mu.Unlock()
	if len(vs) == 0 {
		return
	}
	s, on := cfg.SyncSettings()
	var backup balancer.SyncDaemonStatus
	if on && rec != nil {
		backup = backupStatus(rec.SyncStatus())
	}
	for _, v := range vs {
		if !on || rec == nil {
			v.inst.HoldPreemption("sync", "")
			continue
		}
		// Each instance on its own: a director that is master of one
		// instance still learns the other's connections from its peer.
		warm, why := warmth(time.Now(), s, backup, v.inst.Status())
		if warm {
			why = ""
		}
		v.inst.HoldPreemption("sync", why)
	}
}

const warmTick = 250 * time.Millisecond

func backupStatus(st balancer.SyncStatus) balancer.SyncDaemonStatus {
	for _, ds := range st.Daemons {
		if ds.Want.Role == balancer.SyncBackup {
			return ds
		}
	}
	return balancer.SyncDaemonStatus{}
}

// syncStatus is the api view of connection sync (nil when off).
func (d *Director) syncStatus(cfg *config.Config, rec *balancer.Reconciler, vrrps []*vrrpRunner, h *handover) *api.Sync {
	s, on := cfg.SyncSettings()
	if !on || rec == nil {
		return nil
	}
	st := rec.SyncStatus()
	out := &api.Sync{
		Interface: s.Interface, SyncID: s.ID, Group: s.Group.String(), Port: s.Port,
		WarmUp: s.WarmUp, SyncedConns: st.Conns.Synced, LocalConns: st.Conns.Local,
		Daemons: []api.SyncDaemon{},
	}
	for _, ds := range st.Daemons {
		out.Daemons = append(out.Daemons, api.SyncDaemon{
			Role: ds.Want.Role.String(), Running: ds.Running, Since: ds.Since, Error: ds.Err,
		})
	}
	if len(vrrps) == 0 {
		// No VRRP: nothing to preempt.
		out.Warm, out.WarmReason = warmth(time.Now(), s, backupStatus(st), vrrp.Status{State: vrrp.Master})
	}
	for i, v := range vrrps {
		// Warm when every instance is; else the first one that is not.
		warm, why := warmth(time.Now(), s, backupStatus(st), v.inst.Status())
		if len(vrrps) > 1 {
			why = v.name + ": " + why
		}
		if i == 0 || out.Warm && !warm {
			out.Warm, out.WarmReason = warm, why
		}
	}
	if h != nil {
		var gerr string
		out.Guard, gerr = h.state()
		if gerr != "" {
			out.WarmReason += "; handover guard: " + gerr
		}
	}
	return out
}

// configureSync hands the desired sync daemons and sysctls to the balancer
// and the guarded services to the handover guard. d.mu is held.
func (d *Director) configureSync(cfg *config.Config, table balancer.Table) {
	if d.rec == nil {
		return
	}
	s, on := cfg.SyncSettings()
	if !on {
		if err := d.rec.SetSync(nil); err != nil {
			d.log.Error("sync daemons", "err", err)
		}
		if h := d.handoverP.Swap(nil); h != nil {
			h.close()
		}
		return
	}
	if err := balancer.SetSyncSysctls(d.opt.Sysctl, s.RefreshPeriod); err != nil {
		d.log.Warn("sync sysctls not set", "err", err)
	}
	if err := d.rec.SetSync(syncDaemons(s)); err != nil {
		d.log.Error("sync daemons", "err", err)
	}
	if !cfg.HasVRRP() {
		return // no failover to guard
	}
	h := d.handoverP.Load()
	if h == nil {
		g, err := d.opt.OpenGuard()
		if err != nil {
			d.log.Warn("handover guard unavailable: connections younger than the last sync message may be reset at a failover", "err", err)
			d.events.add("sync", "", "handover guard unavailable: "+err.Error())
			return
		}
		h = newHandover(g, d.log.With("part", "handover"))
		if len(d.vrrps) == 1 {
			h.vrrpState(d.vrrps[0].inst.Status().State == vrrp.Master)
		} else if len(d.vrrps) > 1 {
			h.vrrpState(d.roles.all())
			for _, v := range d.vrrps {
				h.instanceState(v.name, v.inst.Status().State == vrrp.Master)
			}
		}
		d.handoverP.Store(h)
	}
	var owner map[netip.Addr]string
	if len(d.vrrps) > 1 {
		owner = map[netip.Addr]string{}
		for _, v := range d.vrrps {
			for _, a := range v.vips {
				owner[a] = v.name
			}
		}
	}
	h.setOwners(owner)
	h.configure(guardTargets(table), s.TakeoverQuiet)
}

// resignGracefully is a master's handover: hold new connections so no
// handshake is left half-way here, then resign (the VIPs go), then release
// the hold. resign does the VRRP part.
func (d *Director) resignGracefully(vs []*vrrpRunner, resign func() error) error {
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	h := d.handoverP.Load()
	s, on := cfg.SyncSettings()
	master := false
	for _, v := range vs {
		master = master || v.inst.Status().State == vrrp.Master
	}
	if h == nil || !on || !master {
		return resign()
	}
	h.hold(true)
	defer h.hold(false)
	time.Sleep(s.HandoverHold)
	return resign()
}
