package webui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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
	if f.sync != nil {
		sy := *f.sync
		sy.Daemons = slices.Clone(f.sync.Daemons)
		st.Sync = &sy
	}
	for i, vs := range f.cfg.VirtualServers {
		sv := api.Service{
			Name: vs.Name, VIP: vs.VIP, Port: vs.Port, Protocol: vs.Protocol, Fwmark: vs.Fwmark,
			Scheduler: vs.Scheduler, Forwarding: vs.Forwarding, Active: *vs.Active, Quorum: vs.Quorum,
			Stats: api.Stats{Conns: uint64(1000 * (i + 1)), CPS: uint64(12 * (i + 1)), InPPS: 340, OutPPS: 20, InBPS: 48000, OutBPS: 2100},
		}
		for j, rs := range vs.RealServers {
			key := vs.Name + "/" + rs.Name
			h := f.health[key]
			if h == "" {
				h = "up"
				if vs.HealthCheck == nil || vs.HealthCheck.Type == "none" {
					h = "unchecked"
				}
			}
			reason := f.reasons[key]
			if reason == "" && h == "up" {
				reason = "HTTP 200 in 3ms"
			}
			w := *rs.Weight
			if rs.Drained || h == "down" {
				w = 0
			}
			if h != "down" {
				sv.UpWeight += *rs.Weight
			}
			sv.RealServers = append(sv.RealServers, api.RealServer{
				Name: rs.Name, Address: rs.Address, Port: rs.Port, Forwarding: rs.Forwarding,
				ConfiguredWeight: *rs.Weight, Weight: w, Active: *rs.Active, Drained: rs.Drained,
				Health: h, HealthReason: reason, LastCheck: time.Now().Add(-time.Second),
				InKernel: *rs.Active && *vs.Active, ActiveConns: 10 * (j + 1), InactConns: 3 * (j + 1),
				Stats: api.Stats{Conns: uint64(400 * (j + 1)), CPS: uint64(6 * (j + 1)), InPPS: 170, OutPPS: 10, InBPS: 24000, OutBPS: 1050},
			})
		}
		sv.Healthy = sv.UpWeight >= vs.Quorum
		st.Services = append(st.Services, sv)
	}
	return st
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
