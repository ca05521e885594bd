package director

import (
	"context"
	"fmt"
	"lbd/alert"
	"net/netip"
	"reflect"
	"time"

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
	name   string
	inst   vrrpInstance
	cancel context.CancelFunc
	done   chan struct{}
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

// configureVRRP starts, restarts or stops the instance when [vrrp] (or the
// VIPs it owns) changed. d.mu is held.
func (d *Director) configureVRRP(old, cfg *config.Config) {
	if old != nil && reflect.DeepEqual(vrrpInputs(old), vrrpInputs(cfg)) && (d.vrrp != nil) == (cfg.VRRP != nil) {
		return
	}
	if d.vrrp != nil {
		d.vrrp.stop()
		d.vrrp = nil
	}
	if cfg.VRRP == nil {
		return
	}
	s, err := d.vrrpSettings(cfg)
	if err != nil {
		d.log.Error("VRRP not started", "err", err)
		d.events.add("vrrp", "", "not started: "+err.Error())
		return
	}
	inst, err := d.opt.NewVRRP(s)
	if err != nil {
		d.log.Error("VRRP not started", "err", err)
		d.events.add("vrrp", s.Name, "not started: "+err.Error())
		return
	}
	if _, on := cfg.SyncSettings(); on && d.rec != nil {
		// Not warm until the sync tick says so: no preemption (and no
		// owner start as master) before the table is learned.
		inst.HoldPreemption("sync", "starting: connection table not learned yet")
	}
	r := &vrrpRunner{name: s.Name, inst: inst, done: make(chan struct{})}
	d.vrrp = r
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
	d.updatePenalty()
}

// vrrpInputs is everything the instance depends on, for change detection.
func vrrpInputs(c *config.Config) any {
	return struct {
		V    *config.VRRP
		VIPs []string
		If   string
	}{c.VRRP, c.VIPs(), c.Global.Interface}
}

func (d *Director) vrrpSettings(cfg *config.Config) (vrrpSettings, error) {
	v := cfg.VRRP // resolved: every setting given, none left to vrrp's zero-value defaults
	s := vrrpSettings{
		Name:           fmt.Sprintf("vrid %d on %s", v.VRID, v.Interface),
		VRID:           v.VRID,
		Priority:       v.Priority,
		AdvertInterval: v.AdvertInterval.Duration,
		Version:        v.Version,
		Interface:      v.Interface,
		Preempt:        *v.Preempt,
		PreemptDelay:   v.PreemptDelay.Duration,
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
	for _, a := range cfg.VIPs() {
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
	if h := d.handoverP.Load(); h != nil {
		h.vrrpState(t.To == vrrp.Master)
	}
}

// updatePenalty lowers the VRRP priority while any virtual service is below
// its quorum, so a director that cannot serve hands the VIP over. d.mu is
// held.
func (d *Director) updatePenalty() {
	if d.vrrp == nil || d.cfg == nil || d.cfg.VRRP == nil {
		return
	}
	penalty := 0
	if d.cfg.VRRP.ServicePenalty > 0 {
		for _, sp := range d.plan.services {
			if !sp.healthy {
				penalty = d.cfg.VRRP.ServicePenalty
				break
			}
		}
	}
	d.vrrp.inst.SetPenalty("services", penalty)
}
