package director

import (
	"context"
	"fmt"

	"net/netip"
	"reflect"
	"slices"
	"time"

	"lbd/alert"
	"lbd/api"
	"lbd/config"
	"lbd/vrrp"
)

// vrrpInstance is what the director needs of a VRRP instance; tests use a
// fake.
type vrrpInstance interface {
	Run(ctx context.Context) error
	Status() vrrp.Status
	SetPenalty(source string, n int)
	SetFault(source, why string)
	Resign(holdoff time.Duration) error
	HoldPreemption(source, why string)
}

// vrrpSettings is the instance configuration the director builds from
// [vrrp]; the transition callback is added by the director.
type vrrpSettings = vrrp.Config

func newVRRP(c vrrpSettings) (vrrpInstance, error) { return vrrp.New(c) }

// vrrpRunner is a running instance with its own lifetime: a reload that
// changes [vrrp] stops it (a master resigns) and starts a new one.
type vrrpRunner struct {
	name   string // in logs and events: the instance's name, or "vrid N on IF" for an unnamed [vrrp]
	key    string // the configured name ("" for an unnamed [vrrp])
	inputs any    // vrrpInputs it was started with
	// penalty is service_penalty; vips the addresses it owns.
	penalty int
	vips    []netip.Addr
	inst    vrrpInstance
	cancel  context.CancelFunc
	done    chan struct{}
}

func (r *vrrpRunner) stop() {
	if r.cancel != nil {
		r.cancel()
		<-r.done
	}
}

func (r *vrrpRunner) status() *api.VRRP {
	s := r.inst.Status()
	out := &api.VRRP{
		State: stateName(s.State), VRID: s.VRID, Version: s.Version, Interface: s.Interface,
		Priority: s.Priority, EffectivePriority: s.EffectivePriority,
		AdvertInterval: s.AdvertInterval, MasterAdvertIntvl: s.MasterAdvertInterval,
		LastTransition: s.LastTransition, Reason: s.Reason, Counters: s.Counters, VIPs: []string{},
		Name: r.key,
	}
	if s.MasterAddr.IsValid() {
		out.MasterAddr = s.MasterAddr.String()
	}
	for _, a := range s.VIPs {
		out.VIPs = append(out.VIPs, a.String())
	}
	return out
}

func stateName(s vrrp.State) string {
	switch s {
	case vrrp.Backup:
		return "backup"
	case vrrp.Master:
		return "master"
	case vrrp.Fault:
		return "fault"
	}
	return "init"
}

// configureVRRP starts, restarts or stops instances whose configuration
// (or the VIPs they own) changed; unchanged instances keep running
// untouched. d.mu is held.
func (d *Director) configureVRRP(old, cfg *config.Config) {
	want := cfg.Instances()
	running := map[string]*vrrpRunner{}
	for _, r := range d.vrrps {
		running[r.key] = r
	}
	next := make([]*vrrpRunner, len(want))
	for i, v := range want {
		if r := running[v.Name]; r != nil && old != nil && reflect.DeepEqual(r.inputs, vrrpInputs(cfg, v)) {
			next[i] = r
			delete(running, v.Name)
		}
	}
	// Stop the changed and removed instances first: a VIP moving to
	// another instance is released before it is taken.
	for _, r := range d.vrrps {
		if running[r.key] == r {
			r.stop()
			d.groups.forget(r.key)
		}
	}
	d.vrrps = d.vrrps[:0]
	for i, v := range want {
		if next[i] == nil {
			next[i] = d.startVRRP(cfg, v)
		}
		if next[i] != nil {
			d.vrrps = append(d.vrrps, next[i])
		}
	}
	d.groups.configure(cfg.VRRPSyncGroups, d.vrrps)
	d.roles.configure(d.vrrps)
	d.updatePenalty()
}

// startVRRP creates the instance for v and starts it (at once when the
// director runs, else when Run starts); nil when it cannot be created.
func (d *Director) startVRRP(cfg *config.Config, v *config.VRRP) *vrrpRunner {
	s, err := d.instanceSettings(cfg, v)
	if err != nil {
		d.log.Error("VRRP not started", "instance", v.Name, "err", err)
		d.events.add("vrrp", v.Name, "not started: "+err.Error())
		return nil
	}
	key := v.Name
	s.OnOwnFault = func(cause string) { d.groups.ownFault(key, cause) }
	inst, err := d.opt.NewVRRP(s)
	if err != nil {
		d.log.Error("VRRP not started", "err", err)
		d.events.add("vrrp", s.Name, "not started: "+err.Error())
		return nil
	}
	if _, on := cfg.SyncSettings(); on && d.rec != nil {
		// Not warm until the sync tick says so: no preemption (and no
		// owner start as master) before the table is learned.
		inst.HoldPreemption("sync", "starting: connection table not learned yet")
	}
	r := &vrrpRunner{
		name: s.Name, key: key, inst: inst, done: make(chan struct{}),
		inputs: vrrpInputs(cfg, v), penalty: v.ServicePenalty, vips: s.VIPs,
	}
	start := func(ctx context.Context) {
		ctx, r.cancel = context.WithCancel(ctx)
		go func() {
			defer close(r.done)
			if err := inst.Run(ctx); err != nil && ctx.Err() == nil {
				d.log.Error("VRRP stopped", "instance", r.name, "err", err)
				d.events.add("vrrp", r.name, "stopped: "+err.Error())
			}
		}()
	}
	if d.runCtx != nil {
		start(d.runCtx)
	} else {
		d.pending = append(d.pending, start)
	}
	return r
}

// vrrpInputs is everything instance v depends on, for change detection.
// Its sync group is not: syncGroups follows group changes without a
// restart.
func vrrpInputs(c *config.Config, v *config.VRRP) any {
	return struct {
		V    config.VRRP
		VIPs []string
		If   string
	}{*v, c.InstanceVIPs(v), c.Global.Interface}
}

// vrrpSettings is the first instance's settings.
func (d *Director) vrrpSettings(cfg *config.Config) (vrrpSettings, error) {
	return d.instanceSettings(cfg, cfg.Instances()[0])
}

func (d *Director) instanceSettings(cfg *config.Config, v *config.VRRP) (vrrpSettings, error) {
	// v is resolved: every setting given, none left to vrrp's zero-value defaults.
	name := v.Name
	if name == "" {
		name = fmt.Sprintf("vrid %d on %s", v.VRID, v.Interface)
	}
	s := vrrpSettings{
		Name:           name,
		VRID:           v.VRID,
		Priority:       v.Priority,
		AdvertInterval: v.AdvertInterval.Duration,
		Version:        v.Version,
		Interface:      v.Interface,
		Preempt:        *v.Preempt,
		PreemptDelay:   v.PreemptDelay.Duration,
		RTPriority:     v.RTPriority,
		LockMemory:     v.LockMemory,
		AuthPass:       v.AuthPass,
		GARPCount:      v.GARPCount,
		GARPInterval:   v.GARPInterval.Duration,
		GARPRefresh:    v.GARPRefresh.Duration,
		Notify:         v.Notify,
		NotifyTimeout:  v.NotifyTimeout.Duration,
		Logger:         d.log.With("part", "vrrp"),
		OnTransition:   d.vrrpTransition,
	}
	for _, t := range v.TrackInterfaces {
		s.TrackInterfaces = append(s.TrackInterfaces, vrrp.Track{Name: t.Name, Weight: t.Weight})
	}
	for _, a := range cfg.InstanceVIPs(v) {
		// A VIP may carry a prefix length ("192.0.2.10/24"); the instance
		// owns the address.
		ip, err := parseVIP(a)
		if err != nil {
			return s, fmt.Errorf("vip %q: %w", a, err)
		}
		s.VIPs = append(s.VIPs, ip)
	}
	for _, a := range v.UnicastPeers {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return s, fmt.Errorf("unicast peer %q: %w", a, err)
		}
		s.UnicastPeers = append(s.UnicastPeers, ip)
	}
	for _, a := range v.AllowedPeers {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return s, fmt.Errorf("allowed peer %q: %w", a, err)
		}
		s.AllowedPeers = append(s.AllowedPeers, ip)
	}
	s.MaxLearnedInterval = v.MaxLearnedInterval.Duration
	if v.UnicastSource != "" {
		ip, err := netip.ParseAddr(v.UnicastSource)
		if err != nil {
			return s, fmt.Errorf("unicast source %q: %w", v.UnicastSource, err)
		}
		s.UnicastSource = ip
	}
	return s, nil
}

func (d *Director) vrrpTransition(t vrrp.Transition) {
	msg := fmt.Sprintf("%s -> %s: %s", stateName(t.From), stateName(t.To), t.Reason)
	if t.MasterAddr.IsValid() {
		msg += " (master " + t.MasterAddr.String() + ")"
	}
	d.events.add("vrrp", t.Name, msg)
	d.alert(alert.VRRP, t.Name, msg)
	all := d.roles.update(t.Name, t.To == vrrp.Master)
	if h := d.handoverP.Load(); h != nil {
		h.vrrpState(all)
		h.instanceState(t.Name, t.To == vrrp.Master)
	}
}

// updatePenalty lowers an instance's priority while a virtual service on
// its VIPs is below its quorum, so a director that cannot serve hands the
// VIPs over. A lone instance counts every service (fwmark ones too), as
// [vrrp] always did; with several, a fwmark service (no VIP) counts for
// every instance. d.mu is held.
func (d *Director) updatePenalty() {
	if len(d.vrrps) == 0 || d.cfg == nil {
		return
	}
	for _, r := range d.vrrps {
		penalty := 0
		if r.penalty > 0 {
			for _, vs := range d.cfg.VirtualServers {
				sp, ok := d.plan.services[vs.Name]
				if !ok || sp.healthy {
					continue
				}
				if len(d.vrrps) == 1 || vs.Fwmark != 0 || ownsVIP(r.vips, vs.VIP) {
					penalty = r.penalty
					break
				}
			}
		}
		r.inst.SetPenalty("services", penalty)
	}
}

func ownsVIP(vips []netip.Addr, vip string) bool {
	a, err := netip.ParseAddr(vip)
	return err == nil && slices.Contains(vips, a.Unmap())
}
