// Package director joins lbd's parts: it owns the running configuration
// and turns it, with health-check results, into the desired IPVS table, and
// runs the VRRP instance. Every change of running state — a reload, a
// console edit, lbctl drain, a health transition — goes through it.
package director

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"lbd/alert"
	"lbd/api"
	"lbd/balancer"
	"lbd/bgp"
	"lbd/config"
	"lbd/flowguard"
	"lbd/healthcheck"
)

// Options configure a Director.
type Options struct {
	// Config is the validated configuration to start with (config.Load,
	// or config.Normalize for one built in code); its Path is the file
	// reloads and edits read and write.
	Config *config.Config
	Logger *slog.Logger
	// Version is lbd's build version, shown by the console.
	Version string
	// OpenKernel opens the IPVS table; nil means balancer.Open (netlink).
	// It is only called once a configuration has virtual servers, so a
	// VRRP-only director runs on a kernel without IPVS.
	OpenKernel func() (balancer.Kernel, error)
	// Sysctl writes director sysctls; nil means /proc/sys.
	Sysctl balancer.SysctlWriter
	// NewChecker replaces the health checkers (tests); nil = real ones.
	NewChecker func(healthcheck.Spec) (healthcheck.Checker, error)
	// NewVRRP starts the redundancy instance; nil = the real one.
	NewVRRP func(vrrpSettings) (vrrpInstance, error)
	// EventLogSize bounds the event log; default 500.
	EventLogSize int
	// HoldVIPs makes a director without [vrrp] put its virtual servers'
	// VIPs on the global interface (the daemon sets it; library users and
	// tests must not touch the host's addresses by default).
	HoldVIPs bool
	// newStatic replaces the VIP holder in tests; nil = the interface's.
	newStatic func(iface string, log *slog.Logger) (vipHolder, error)
	// OpenGuard opens the handover guard (nftables) used with connection
	// sync; nil means flowguard.Open.
	OpenGuard func() (flowguard.Guard, error)
	// NewSpeaker starts the BGP speaker; nil = the real one (GoBGP).
	NewSpeaker func(bgp.Config) (bgp.Speaker, error)
	// newLoopbackVIPs replaces the BGP VIP holder (lo) in tests.
	newLoopbackVIPs func() (vipHolder, error)
	// StateFile records the IPVS services lbd manages across restarts;
	// "" keeps no record (a service dropped while lbd was down stays).
	StateFile string
	// EventFile keeps the event log across restarts (bounded like the
	// log: EventLogSize events); "" keeps it in memory only.
	EventFile string
}

// Director is the running director. Its methods are safe for concurrent
// use; the console and lbctl reach it through them.
type Director struct {
	opt     Options
	log     *slog.Logger
	path    string
	started time.Time
	events  *eventLog

	mu      sync.Mutex // serializes changes; guards the fields below
	cfg     *config.Config
	version string
	plan    plan
	kernel  balancer.Kernel
	rec     *balancer.Reconciler
	// noIPVS: the probe at start-up found no IPVS in the kernel (a
	// configuration without virtual servers runs VRRP only).
	noIPVS  bool
	vrrps   []*vrrpRunner // one per configured instance, in config order
	groups  syncGroups
	roles   vrrpRoles
	runCtx  context.Context // set by Run; instances started later use it
	pending []func(context.Context)

	savedManaged []balancer.Key

	static      vipHolder // VIPs held without VRRP
	staticIface string
	staticVIPs  []netip.Addr

	hc *healthcheck.Scheduler

	alerts  alerter
	peer    peerWatch // the other director's API ([peer]), peer.go
	history history
	bgp     *bgpState // nil without [bgp]

	// handover guards failovers while sync is on (nil: no guard). Set
	// with d.mu held; read without it by the VRRP transition callback.
	handoverP atomic.Pointer[handover]

	healthMu     sync.Mutex
	healthQueue  []healthcheck.Transition
	healthSignal chan struct{}

	reloads, reloadFailures, edits atomic.Uint64
}

// New builds a Director for a validated configuration. It opens IPVS when
// the configuration has virtual servers and fails with a clear message when
// the kernel has none.
//
// The director reads settings as config resolved them and decides no
// default itself: New resolves its configuration (config.Resolve; one from
// config.Load comes back equal), reload parses and Apply normalizes.
func New(opt Options) (*Director, error) {
	if opt.Config == nil {
		return nil, errors.New("director: no configuration")
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.EventLogSize <= 0 {
		opt.EventLogSize = 500
	}
	if opt.Sysctl == nil {
		opt.Sysctl = balancer.ProcSys{}
	}
	if opt.OpenKernel == nil {
		opt.OpenKernel = func() (balancer.Kernel, error) { return balancer.Open() }
	}
	if opt.OpenGuard == nil {
		opt.OpenGuard = func() (flowguard.Guard, error) { return flowguard.Open() }
	}
	if opt.NewVRRP == nil {
		opt.NewVRRP = newVRRP
	}
	if opt.newStatic == nil {
		opt.newStatic = openStatic
	}
	if opt.NewSpeaker == nil {
		opt.NewSpeaker = newSpeaker
	}
	if opt.newLoopbackVIPs == nil {
		opt.newLoopbackVIPs = openLoopbackVIPs
	}
	d := &Director{
		opt:          opt,
		log:          opt.Logger,
		path:         opt.Config.Path,
		started:      time.Now(),
		events:       newEventLog(opt.EventLogSize, time.Now),
		healthSignal: make(chan struct{}, 1),
	}
	if opt.EventFile != "" {
		if err := d.events.persist(opt.EventFile, opt.Logger); err != nil {
			opt.Logger.Warn("event log kept in memory only", "file", opt.EventFile, "err", err)
		}
	}
	d.hc = healthcheck.New(healthcheck.Options{
		Logger:       opt.Logger,
		OnTransition: d.queueHealth,
		NewChecker:   opt.NewChecker,
	})
	version := ""
	if data, err := os.ReadFile(d.path); err == nil {
		version = config.Version(data)
	}
	// Resolve, not validate again: the TLS files or a program checked at
	// load time may be missing now, which is reported when they are used
	// and must not keep the director from starting.
	cfg, err := config.Resolve(opt.Config)
	if err != nil {
		return nil, fmt.Errorf("director: %w", err)
	}
	if err := d.prepare(cfg); err != nil {
		return nil, err
	}
	if len(cfg.VirtualServers) == 0 {
		d.probeIPVS()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.install(cfg, version); err != nil {
		return nil, err
	}
	d.events.add("start", cfg.Global.NodeName, fmt.Sprintf("lbd %s started with %s (%d virtual servers)", opt.Version, d.path, len(cfg.VirtualServers)))
	return d, nil
}

// prepare opens IPVS when cfg needs it and it is not open yet. It runs
// before anything changes, so a refused configuration leaves all as it was.
func (d *Director) prepare(cfg *config.Config) error {
	d.mu.Lock()
	open := d.kernel != nil
	d.mu.Unlock()
	if open || len(cfg.VirtualServers) == 0 {
		return nil
	}
	k, err := d.opt.OpenKernel()
	if err != nil {
		return err
	}
	previous, err := readManaged(d.opt.StateFile)
	if err != nil {
		d.log.Warn("ignoring unreadable managed-services record", "err", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.kernel != nil { // opened concurrently
		if c, ok := k.(interface{ Close() error }); ok {
			c.Close()
		}
		return nil
	}
	d.kernel = k
	d.rec = balancer.NewReconciler(k, balancer.Options{
		ResyncInterval: cfg.Global.ResyncInterval.Duration,
		RemoveGrace:    cfg.Global.RemoveGrace.Duration,
		Logger:         d.log.With("part", "balancer"),
		Previous:       previous,
		OnNotice:       d.balancerNotice,
	})
	if d.runCtx != nil {
		ctx, rec := d.runCtx, d.rec
		go rec.Run(ctx)
	}
	return nil
}

// probeIPVS finds out at start-up whether the kernel has IPVS when the
// configuration needs none (no virtual servers), so that the operator
// learns it now, once, and not from the reload that adds the first virtual
// server; the console shows it too. A kernel with IPVS is closed again:
// nothing is managed until a virtual server is configured.
func (d *Director) probeIPVS() {
	k, err := d.opt.OpenKernel()
	switch {
	case err == nil:
		if c, ok := k.(interface{ Close() error }); ok {
			c.Close()
		}
	case errors.Is(err, balancer.ErrUnavailable):
		d.mu.Lock()
		d.noIPVS = true
		d.mu.Unlock()
		d.log.Error("IPVS not available (VRRP only): a virtual server added by a reload or an edit is refused until the kernel has IPVS", "err", err)
	default:
		d.log.Warn("cannot tell whether the kernel has IPVS", "err", err)
	}
}

// install makes cfg the running configuration. d.mu is held.
func (d *Director) install(cfg *config.Config, version string) error {
	p, err := buildPlan(cfg, d.healthOf)
	if err != nil {
		return fmt.Errorf("director: %w", err)
	}
	if err := d.hc.Set(healthSpecs(cfg)); err != nil {
		return fmt.Errorf("director: health checks: %w", err)
	}
	old := d.cfg
	d.cfg, d.version = cfg, version
	if d.rec != nil {
		v4, v6 := p.table.NeedsForwarding()
		if err := balancer.SetSysctls(d.opt.Sysctl, v4, v6); err != nil {
			d.log.Warn("director sysctls not set", "err", err)
		}
		if needsAcceptLocal(p.table) {
			// A through-VIP check leaves from the director's own address
			// to the VIP; the real server answers from the VIP, which the
			// master holds too: without accept_local the kernel drops
			// that reply as a martian (a local source from the wire).
			// It is left on when the checks go, like ip_forward.
			if err := d.opt.Sysctl.WriteSysctl("net.ipv4.conf.all.accept_local", "1"); err != nil {
				d.log.Warn("through-VIP checks: accept_local not set: a master's checks will fail", "err", err)
			}
		}
	}
	d.applyPlan(p)
	d.configureVRRP(old, cfg)
	d.configureSync(cfg, p.table)
	d.configureStaticVIPs(cfg)
	d.configureAlerts(cfg)
	d.configurePeer(cfg)
	d.configureBGP(cfg)
	return nil
}

// recompute rebuilds the plan from the running config and current health
// and hands it to the reconciler. d.mu is held.
func (d *Director) recompute() {
	p, err := buildPlan(d.cfg, d.healthOf)
	if err != nil {
		// The config was validated; this is a bug, not an operator error.
		d.log.Error("cannot build the IPVS table", "err", err)
		return
	}
	d.applyPlan(p)
}

func (d *Director) applyPlan(p plan) {
	d.quorumChanges(d.plan, p)
	d.plan = p
	if d.rec != nil {
		if err := d.rec.Apply(p.table); err != nil {
			d.log.Error("IPVS apply failed; will retry", "err", err)
		}
		d.saveManaged()
	}
	d.updatePenalty()
	d.updateBGP()
}

func (d *Director) healthOf(id string) (healthcheck.State, bool) {
	st, ok := d.hc.Status(id)
	return st.State, ok
}

// queueHealth is the scheduler's callback: it must not block.
func (d *Director) queueHealth(t healthcheck.Transition) {
	d.healthMu.Lock()
	d.healthQueue = append(d.healthQueue, t)
	d.healthMu.Unlock()
	select {
	case d.healthSignal <- struct{}{}:
	default:
	}
}

// Run runs health checks, the reconciler's drift repair and VRRP until ctx
// ends. On the way out a VRRP master resigns (priority 0) and removes its
// VIPs; the IPVS table is left in place so a restarted lbd adopts it
// without dropping a connection.
func (d *Director) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	d.mu.Lock()
	d.runCtx = ctx
	if d.rec != nil {
		rec := d.rec
		wg.Go(func() { rec.Run(ctx) })
	}
	for _, start := range d.pending {
		start(ctx)
	}
	d.pending = nil
	d.mu.Unlock()
	wg.Go(func() { d.hc.Run(ctx) })
	tick := time.NewTicker(warmTick)
	defer tick.Stop()
	sample := time.NewTicker(HistoryStep)
	defer sample.Stop()

	for {
		select {
		case <-ctx.Done():
			// Routers first: the VIPs are withdrawn, and the routers told,
			// while this director still serves what they send meanwhile.
			d.stopBGP()
			d.mu.Lock()
			vs := slices.Clone(d.vrrps)
			d.mu.Unlock()
			if len(vs) > 0 {
				// A master holds new connections before it resigns.
				_ = d.resignGracefully(vs, func() error {
					for _, v := range vs {
						v.stop()
					}
					return nil
				})
			}
			if h := d.handoverP.Swap(nil); h != nil {
				h.close()
			}
			wg.Wait()
			return nil
		case <-d.healthSignal:
			d.handleHealth()
		case <-tick.C:
			d.syncTick()
		case now := <-sample.C:
			d.history.sample(now, d.Status())
		}
	}
}

func (d *Director) handleHealth() {
	d.healthMu.Lock()
	q := d.healthQueue
	d.healthQueue = nil
	d.healthMu.Unlock()
	if len(q) == 0 {
		return
	}
	for _, t := range q {
		state := "down"
		if t.Up {
			state = "up"
		}
		if t.From == healthcheck.Unknown && t.Up {
			// First success of a new server: not news, only a debug line.
			d.log.Debug("real server checked up", "rs", t.ID, "reason", t.Reason)
			continue
		}
		d.log.Info("real server health changed", "rs", t.ID, "state", state, "reason", t.Reason)
		d.events.add("health", t.ID, fmt.Sprintf("%s: %s", state, t.Reason))
		class := alert.RealServerDown
		if t.Up {
			class = alert.RealServerUp
		}
		d.alert(class, t.ID, fmt.Sprintf("%s: %s", state, t.Reason))
	}
	d.mu.Lock()
	d.recompute()
	d.mu.Unlock()
}

// Config returns a deep copy of the running configuration and its version.
func (d *Director) Config() (*config.Config, string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg.Clone(), d.version
}

// Apply validates cfg like `lbd -t`, writes it to the config file
// atomically and makes it the running configuration. It refuses with
// config.ErrStale when baseVersion is set and is not the running version,
// with ErrChangedOnDisk (which is also ErrStale) when the file on disk is
// not the running version, and with config.Problems when cfg is invalid; then nothing changed.
func (d *Director) Apply(ctx context.Context, cfg *config.Config, baseVersion, source string) (string, error) {
	c := cfg.Clone()
	c.Path = d.path
	parsed, data, err := config.Normalize(c)
	if err != nil {
		return "", err
	}
	if err := d.prepare(parsed); err != nil {
		return "", err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if baseVersion != "" && baseVersion != d.version {
		return "", config.ErrStale
	}
	newVersion := config.Version(data)
	if newVersion == d.version {
		return d.version, nil
	}
	if err := d.checkDisk(); err != nil {
		return "", err
	}
	if err := config.WriteBytes(d.path, data); err != nil {
		return "", fmt.Errorf("director: saving %s: %w", d.path, err)
	}
	before := d.cfg
	if err := d.install(parsed, newVersion); err != nil {
		return "", err
	}
	d.edits.Add(1)
	msg := describeChange(before, parsed)
	d.log.Info("configuration edited", "source", source, "change", msg)
	d.events.add("edit", source, msg)
	return newVersion, nil
}

// ErrChangedOnDisk is returned by Apply when the configuration file no
// longer holds the running version: a hand edit, `lbd token` or `lbd
// passwd` not yet reloaded, or a reload that was refused. Writing the edit
// would silently discard that change, so the operator reloads first (and
// sees the change, or why it is refused). It satisfies
// errors.Is(err, config.ErrStale), so front ends answer 409.
var ErrChangedOnDisk error = changedOnDiskError{}

type changedOnDiskError struct{}

func (changedOnDiskError) Error() string {
	return "the file changed on disk; reload first (SIGHUP, lbctl reload or the console's reload), then redo your change"
}

func (changedOnDiskError) Is(target error) bool { return target == config.ErrStale }

// ChangedOnDisk marks the error for front ends, which tell it from a plain
// stale version without importing the director.
func (changedOnDiskError) ChangedOnDisk() {}

// checkDisk refuses with ErrChangedOnDisk when the file's content is not
// the running version. Called with d.mu held.
func (d *Director) checkDisk() error {
	onDisk := ""
	data, err := config.ReadFile(d.path)
	switch {
	case err == nil:
		onDisk = config.Version(data)
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("director: reading %s before saving: %w", d.path, err)
	}
	if onDisk != d.version {
		return fmt.Errorf("director: %s: %w", d.path, ErrChangedOnDisk)
	}
	return nil
}

// Reload re-reads the configuration file (SIGHUP, lbctl reload). An
// invalid file is refused with config.Problems and the running state kept.
func (d *Director) Reload(ctx context.Context) error {
	err := d.reload()
	if err != nil {
		d.reloadFailures.Add(1)
		d.events.add("reload", d.path, "refused: "+oneLine(err))
		d.alert(alert.ReloadRefused, d.path, "refused: "+oneLine(err))
		return err
	}
	return nil
}

func (d *Director) reload() error {
	data, err := config.ReadFile(d.path)
	if err != nil {
		return fmt.Errorf("director: reload: %w", err)
	}
	cfg, err := config.Parse(d.path, data)
	if err != nil {
		return err
	}
	if err := d.prepare(cfg); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	version := config.Version(data)
	before := d.cfg
	if err := d.install(cfg, version); err != nil {
		return err
	}
	d.reloads.Add(1)
	msg := describeChange(before, cfg)
	d.log.Info("configuration reloaded", "file", d.path, "change", msg)
	d.events.add("reload", d.path, msg)
	return nil
}

// Events returns the retained events with a sequence number above since.
func (d *Director) Events(since uint64) []api.Event { return d.events.since(since) }

// Subscribe streams new events until cancel is called.
func (d *Director) Subscribe() (<-chan api.Event, func()) { return d.events.subscribe() }

// Failover makes a VRRP master resign and hold back from preempting for
// holdoff (planned maintenance). With several instances it needs one's
// name: see FailoverInstance.
func (d *Director) Failover(ctx context.Context, holdoff time.Duration) error {
	return d.FailoverInstance(ctx, "", holdoff)
}

// FailoverInstance is Failover of the instance called name; "" means the
// only instance.
func (d *Director) FailoverInstance(ctx context.Context, name string, holdoff time.Duration) error {
	d.mu.Lock()
	vs := slices.Clone(d.vrrps)
	d.mu.Unlock()
	if len(vs) == 0 {
		return errors.New("director: no [vrrp] configured: nothing to fail over")
	}
	var v *vrrpRunner
	var names []string
	for _, r := range vs {
		names = append(names, r.key)
		if r.key == name || name == "" && len(vs) == 1 {
			v = r
		}
	}
	switch {
	case v == nil && name == "":
		return fmt.Errorf("director: %d VRRP instances: name the one to fail over (%s)", len(vs), strings.Join(names, ", "))
	case v == nil:
		return fmt.Errorf("director: no VRRP instance %q (instances: %s)", name, strings.Join(names, ", "))
	}
	if err := d.resignGracefully([]*vrrpRunner{v}, func() error { return v.inst.Resign(holdoff) }); err != nil {
		return fmt.Errorf("director: failover: %w", err)
	}
	d.events.add("vrrp", v.name, fmt.Sprintf("failover requested: resigning, holding back %s", holdoff))
	return nil
}

func oneLine(err error) string {
	var probs config.Problems
	if errors.As(err, &probs) {
		s := make([]string, 0, len(probs))
		for _, p := range probs {
			s = append(s, p.String())
		}
		return strings.Join(s, "; ")
	}
	return err.Error()
}
