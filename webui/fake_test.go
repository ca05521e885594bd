package webui

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"lbd/api"
	"lbd/config"
)

// fakeDirector is the console's Director without a kernel. It validates
// and writes exactly like the real one (config.Normalize, config.Write), so
// tests see real validation messages and a real file.
type fakeDirector struct {
	mu      sync.Mutex
	path    string
	cfg     *config.Config
	version string
	started time.Time

	events []api.Event
	seq    uint64
	subs   map[int]chan api.Event
	nsub   int

	health    map[string]string // "vs/rs" -> health; default "up"
	reasons   map[string]string
	vrrp      *api.VRRP
	sync      *api.Sync // nil: connection sync off
	alerts    []api.AlertTarget
	counters  map[string]uint64
	applies   int
	applyErr  error // returned by every Apply when set
	calls     int   // Apply calls, refused ones included
	failovers []time.Duration
	lastSrc   string
	noIPVS    bool     // Status says the kernel has no IPVS (VRRP only)
	bgp       *api.BGP // Status's BGP block
}

func newFakeDirector(t testing.TB, toml string) *fakeDirector {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lbd.toml")
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("test config: %v", err)
	}
	f := &fakeDirector{
		path: path, cfg: cfg, version: config.Version([]byte(toml)), started: time.Now().Add(-90 * time.Minute),
		subs: map[int]chan api.Event{}, health: map[string]string{}, reasons: map[string]string{},
		counters: map[string]uint64{"reloads": 0, "reload_failures": 0, "edits": 0, "reconcile_writes": 12, "reconcile_errors": 1},
	}
	if cfg.VRRP != nil {
		f.vrrp = &api.VRRP{
			State: "master", VRID: cfg.VRRP.VRID, Version: cfg.VRRP.Version, Interface: cfg.VRRP.Interface,
			Priority: cfg.VRRP.Priority, EffectivePriority: cfg.VRRP.Priority, AdvertInterval: cfg.VRRP.AdvertInterval.Duration,
			MasterAdvertIntvl: cfg.VRRP.AdvertInterval.Duration, VIPs: cfg.VIPs(),
			LastTransition: time.Now().Add(-time.Hour), Reason: "master down interval expired",
			Counters: map[string]int{"adverts_sent": 3600, "adverts_received": 2, "transitions": 2, "drop_bad_ttl": 3, "drop_vrid_mismatch": 1},
		}
	}
	f.addEvent("start", f.cfg.Global.NodeName, "lbd started")
	return f
}

// fileBytes is the config file as it is on disk now.
func (f *fakeDirector) fileBytes(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (f *fakeDirector) setHealth(vs, rs, health, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.health[vs+"/"+rs] = health
	f.reasons[vs+"/"+rs] = reason
	f.addEventLocked("health", vs+"/"+rs, health+": "+reason)
}

// setSync sets the connection-sync state Status reports; nil turns it off.
func (f *fakeDirector) setSync(s *api.Sync) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sync = s
}

func (f *fakeDirector) addEvent(kind, subject, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addEventLocked(kind, subject, msg)
}

func (f *fakeDirector) addEventLocked(kind, subject, msg string) {
	f.seq++
	ev := api.Event{Seq: f.seq, Time: time.Now(), Kind: kind, Subject: subject, Message: msg}
	f.events = append(f.events, ev)
	for _, ch := range f.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

func (f *fakeDirector) Status() api.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := api.Status{
		Node: f.cfg.Global.NodeName, Version: "test", ConfigVersion: f.version, ConfigPath: f.path,
		Started: f.started, LastReconcile: time.Now().Add(-2 * time.Second), Services: []api.Service{},
		Counters: map[string]uint64{},
	}
	for k, v := range f.counters {
		st.Counters[k] = v
	}
	if f.noIPVS {
		st.LastReconcile, st.IPVSUnavailable = time.Time{}, true
	}
	if f.bgp != nil {
		b := *f.bgp
		st.BGP = &b
	}
	if f.vrrp != nil {
		v := *f.vrrp
		st.VRRP = &v
	}
	st.Alerts = f.alerts
	for i, v := range f.cfg.VRRPInstances {
		// [[vrrp_instance]]: the first is master, the others backup.
		state := "backup"
		if i == 0 {
			state = "master"
		}
		st.VRRPInstances = append(st.VRRPInstances, api.VRRP{
			Name: v.Name, SyncGroup: f.cfg.SyncGroupOf(v.Name), State: state, VRID: v.VRID, Version: v.Version,
			Interface: v.Interface, Priority: v.Priority, EffectivePriority: v.Priority, VIPs: slices.Clone(v.VIPs),
		})
	}
	if len(st.VRRPInstances) > 0 {
		st.VRRP = &st.VRRPInstances[0]
	}
	if f.sync != nil {
		sy := *f.sync
		sy.Daemons = slices.Clone(f.sync.Daemons)
		st.Sync = &sy
	}
	for _, vs := range f.cfg.VirtualServers {
		sv := api.Service{
			Name: vs.Name, VIP: vs.VIP, Port: vs.Port, Protocol: vs.Protocol, Fwmark: vs.Fwmark,
			Scheduler: vs.Scheduler, Forwarding: vs.Forwarding, Active: *vs.Active, Quorum: vs.Quorum,
		}
		for j, rs := range vs.RealServers {
			key := vs.Name + "/" + rs.Name
			// As director/status.go: an inactive service or real server
			// is not in the kernel and not checked.
			inKernel := *rs.Active && *vs.Active
			checked := vs.HealthCheck != nil && vs.HealthCheck.Type != "none" && inKernel
			h := f.health[key]
			if h == "" || !checked {
				h = "up"
				if !checked {
					h = "unchecked"
				}
			}
			reason := f.reasons[key]
			if !checked {
				reason = ""
			} else if reason == "" && h == "up" {
				reason = "HTTP 200 in 3ms"
			}
			w := *rs.Weight
			if rs.Drained || h == "down" || !inKernel {
				w = 0
			}
			// As director/translate.go counts it: a drained or inactive
			// real server adds nothing, so a service whose servers are all
			// at weight 0 is never shown healthy.
			if h != "down" && !rs.Drained && inKernel {
				sv.UpWeight += *rs.Weight
			}
			r := api.RealServer{
				Name: rs.Name, Address: rs.Address, Port: rs.Port, Forwarding: rs.Forwarding,
				ConfiguredWeight: *rs.Weight, Weight: w, Active: *rs.Active, Drained: rs.Drained,
				Health: h, HealthReason: reason, InKernel: inKernel,
			}
			if checked {
				r.LastCheck = time.Now().Add(-time.Second)
			}
			if inKernel {
				r.Stats, r.ActiveConns, r.InactConns = fakeTraffic(j, w, h, rs.Forwarding, vs.Forwarding)
				sv.Stats = addStats(sv.Stats, r.Stats)
			}
			sv.RealServers = append(sv.RealServers, r)
		}
		if !*vs.Active {
			sv.UpWeight = 0 // not in the plan: neither up weight nor healthy
		}
		sv.Healthy = *vs.Active && sv.UpWeight >= vs.Quorum
		st.Services = append(st.Services, sv)
	}
	return st
}

// fakeTraffic is what IPVS would count for the j-th real server at kernel
// weight w: new connections only at a weight above 0 (in proportion to
// it); a drained server still carries its open connections; a dead one
// carries none. Direct routing and tunnelling never see the replies, so
// their outbound figures are 0.
func fakeTraffic(j, w int, health, fwd, vsFwd string) (api.Stats, int, int) {
	st := api.Stats{Conns: uint64(400 * (j + 1))} // since the start: kept
	active, inact := 10*(j+1), 3*(j+1)
	switch {
	case health == "down":
		active = 0
	case w == 0:
		st.InPPS, st.InBPS = 20, 2400
	default:
		st.CPS, st.InPPS, st.InBPS = uint64(6*w), uint64(85*w), uint64(12000*w)
	}
	if fwd == "" {
		fwd = vsFwd
	}
	if fwd == "nat" {
		st.OutPPS, st.OutBPS = st.InPPS, st.InBPS*8
	}
	return st, active, inact
}

// addStats sums what the kernel sums: a service's figures are its real
// servers'.
func addStats(a, b api.Stats) api.Stats {
	a.Conns += b.Conns
	a.InPkts += b.InPkts
	a.OutPkts += b.OutPkts
	a.InBytes += b.InBytes
	a.OutBytes += b.OutBytes
	a.CPS += b.CPS
	a.InPPS += b.InPPS
	a.OutPPS += b.OutPPS
	a.InBPS += b.InBPS
	a.OutBPS += b.OutBPS
	return a
}

func (f *fakeDirector) Config() (*config.Config, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cfg.Clone(), f.version
}

func (f *fakeDirector) Apply(ctx context.Context, cfg *config.Config, baseVersion, source string) (string, error) {
	f.mu.Lock()
	f.calls++
	err := f.applyErr
	f.mu.Unlock()
	if err != nil {
		return "", err
	}
	c := cfg.Clone()
	c.Path = f.path
	parsed, data, err := config.Normalize(c)
	if err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if baseVersion != f.version {
		return "", config.ErrStale
	}
	v := config.Version(data)
	if v == f.version {
		return v, nil
	}
	if err := config.Write(f.path, parsed); err != nil {
		return "", err
	}
	f.cfg, f.version = parsed, v
	f.applies++
	f.lastSrc = source
	f.counters["edits"]++
	f.addEventLocked("edit", source, "configuration changed")
	return v, nil
}

func (f *fakeDirector) Reload(ctx context.Context) error {
	data, err := os.ReadFile(f.path)
	if err != nil {
		return err
	}
	cfg, err := config.Parse(f.path, data)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.counters["reload_failures"]++
		f.addEventLocked("reload", f.path, "refused")
		return err
	}
	f.cfg, f.version = cfg, config.Version(data)
	f.counters["reloads"]++
	f.addEventLocked("reload", f.path, "reloaded")
	return nil
}

func (f *fakeDirector) SetMaintenance(context.Context, bool) error {
	return errors.New("director: no [bgp] configured")
}

func (f *fakeDirector) Failover(ctx context.Context, holdoff time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.vrrp == nil {
		return errors.New("director: no [vrrp] configured: nothing to fail over")
	}
	f.failovers = append(f.failovers, holdoff)
	f.vrrp.State = "backup"
	f.vrrp.Reason = fmt.Sprintf("resigned by operator, holding back %s", holdoff)
	f.addEventLocked("vrrp", "vrid 51", "failover requested")
	return nil
}

func (f *fakeDirector) FailoverInstance(ctx context.Context, name string, holdoff time.Duration) error {
	if name == "" {
		return f.Failover(ctx, holdoff)
	}
	return fmt.Errorf("director: no VRRP instance %q", name)
}

func (f *fakeDirector) Events(since uint64) []api.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []api.Event
	for _, ev := range f.events {
		if ev.Seq > since {
			out = append(out, ev)
		}
	}
	return out
}

func (f *fakeDirector) Subscribe() (<-chan api.Event, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nsub++
	id := f.nsub
	ch := make(chan api.Event, 64)
	f.subs[id] = ch
	return ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, ok := f.subs[id]; ok {
			delete(f.subs, id)
			close(ch)
		}
	}
}

// The fake director shows only states the real one can reach: a service
// whose real servers are all drained is below its quorum, not healthy.
func TestFakeStatusFollowsDirectorRules(t *testing.T) {
	h := newHarness(t)
	cfg, ver := h.d.Config()
	vs := &cfg.VirtualServers[0]
	for i := range vs.RealServers {
		vs.RealServers[i].Drained = true
	}
	if _, err := h.d.Apply(context.Background(), cfg, ver, "test"); err != nil {
		t.Fatal(err)
	}
	for _, s := range h.d.Status().Services {
		if s.Name != vs.Name {
			continue
		}
		if s.Healthy || s.UpWeight != 0 {
			t.Errorf("every real server drained: healthy=%v up weight %d (quorum %d)", s.Healthy, s.UpWeight, s.Quorum)
		}
		for _, rs := range s.RealServers {
			if rs.Weight != 0 {
				t.Errorf("drained %s at weight %d", rs.Name, rs.Weight)
			}
			if rs.Stats.CPS != 0 {
				t.Errorf("drained %s gets %d new connections/s", rs.Name, rs.Stats.CPS)
			}
		}
		if s.Stats.CPS != 0 {
			t.Errorf("every real server drained, yet the service has %d conn/s", s.Stats.CPS)
		}
	}
}

// The fake's figures add up as the kernel's do: a service's are its real
// servers'; a dead one carries no connections; direct routing sees no
// replies; an inactive real server is neither in the kernel nor checked.
func TestFakeStatusFigures(t *testing.T) {
	h := newHarness(t)
	h.d.setHealth("web", "rs1", "down", "connect: connection refused")
	cfg, ver := h.d.Config()
	off := false
	cfg.VirtualServers[0].RealServers = append(cfg.VirtualServers[0].RealServers, config.RealServer{
		Name: "rs3", Address: "10.0.0.13", Active: &off, Weight: cfg.VirtualServers[0].RealServers[0].Weight})
	if _, err := h.d.Apply(context.Background(), cfg, ver, "test"); err != nil {
		t.Fatal(err)
	}
	s := h.d.Status().Services[0]
	var sum api.Stats
	for _, rs := range s.RealServers {
		sum = addStats(sum, rs.Stats)
		switch rs.Name {
		case "rs1":
			if rs.Weight != 0 || rs.Stats.CPS != 0 || rs.ActiveConns != 0 {
				t.Errorf("dead rs1: weight %d, %d conn/s, %d active", rs.Weight, rs.Stats.CPS, rs.ActiveConns)
			}
		case "rs3":
			if rs.InKernel || rs.Weight != 0 || rs.Health != "unchecked" || rs.Stats != (api.Stats{}) {
				t.Errorf("inactive rs3: %+v", rs)
			}
		}
		if rs.Stats.OutPPS != 0 || rs.Stats.OutBPS != 0 {
			t.Errorf("%s: direct routing, yet outbound figures %+v", rs.Name, rs.Stats)
		}
	}
	if s.Stats != sum {
		t.Errorf("service figures %+v, its real servers' sum %+v", s.Stats, sum)
	}
	if !s.Healthy || s.UpWeight != 2 {
		t.Errorf("rs2 (weight 2) up: healthy %v, up weight %d", s.Healthy, s.UpWeight)
	}
}

// History is an hour of made-up but plausible figures, with the fake's
// events as marks: enough for the charts and their screenshots.
func (f *fakeDirector) History(vs, rs string) (api.History, bool) {
	st := f.Status()
	var sv *api.Service
	for i := range st.Services {
		if st.Services[i].Name == vs {
			sv = &st.Services[i]
		}
	}
	if sv == nil {
		return api.History{}, false
	}
	stats, active := sv.Stats, 0
	for _, r := range sv.RealServers {
		active += r.ActiveConns
		if r.Name == rs {
			stats, active = r.Stats, r.ActiveConns
		}
	}
	h := api.History{Step: 5 * time.Second, Marks: []api.Event{}}
	end := time.Now().Truncate(5 * time.Second)
	for i := range 720 {
		wave := 1 + 0.3*math.Sin(float64(i)/40)
		h.Points = append(h.Points, api.HistoryPoint{
			Time: end.Add(time.Duration(i-719) * 5 * time.Second),
			CPS:  math.Round(float64(stats.CPS) * wave), ActiveConns: math.Round(float64(active) * wave),
			BPS: math.Round(float64(stats.InBPS+stats.OutBPS) * wave),
		})
	}
	for _, ev := range f.Events(0) {
		if ev.Kind == "vrrp" || ev.Kind == "health" && strings.HasPrefix(ev.Subject, vs+"/") {
			h.Marks = append(h.Marks, ev)
		}
	}
	return h, true
}
