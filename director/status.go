package director

import (
	"fmt"
	"reflect"
	"strings"

	"lbd/api"
	"lbd/balancer"
	"lbd/config"
	"lbd/healthcheck"
)

// Status is the whole picture for the console, lbctl and /metrics: the
// configuration, the kernel's view of each managed service with its
// statistics, health and VRRP state.
func (d *Director) Status() api.Status {
	d.mu.Lock()
	cfg, version, p, rec, v, noIPVS := d.cfg, d.version, d.plan, d.rec, d.vrrp, d.noIPVS
	d.mu.Unlock()

	st := api.Status{
		Node:          cfg.Global.NodeName,
		Version:       d.opt.Version,
		ConfigVersion: version,
		ConfigPath:    d.path,
		Started:       d.started,
		Services:      []api.Service{},
		Counters: map[string]uint64{
			"reloads":         d.reloads.Load(),
			"reload_failures": d.reloadFailures.Load(),
			"edits":           d.edits.Load(),
		},
	}
	// IPVS loaded after start-up (modprobe ip_vs) and a reload that opened
	// it end the VRRP-only state.
	st.IPVSUnavailable = noIPVS && rec == nil
	kernel := map[balancer.Key]balancer.ServiceSnapshot{}
	if rec != nil {
		for _, s := range rec.Snapshot() {
			kernel[s.Key] = s
		}
		c := rec.Counters()
		st.LastReconcile = c.LastResync
		st.ReconcileErr = c.LastError
		st.Counters["reconcile_writes"] = c.Writes
		st.Counters["reconcile_errors"] = c.Errors
		st.Counters["reconcile_resyncs"] = c.Resyncs
		st.Counters["foreign_services"] = uint64(c.Foreign)
	}
	hs := d.hc.Stats()
	st.Counters["health_checks"] = hs.Checks
	st.Counters["health_check_failures"] = hs.Failures
	if v != nil {
		st.VRRP = v.status()
	}
	st.Sync = d.syncStatus(cfg, rec, v, d.handoverP.Load())
	d.mu.Lock()
	st.BGP = d.bgpStatus()
	d.mu.Unlock()
	for _, vs := range cfg.VirtualServers {
		st.Services = append(st.Services, d.serviceStatus(vs, p.services[vs.Name], kernel))
	}
	return st
}

func (d *Director) serviceStatus(vs config.VirtualServer, sp servicePlan, kernel map[balancer.Key]balancer.ServiceSnapshot) api.Service {
	out := api.Service{
		Name: vs.Name, VIP: vs.VIP, Port: vs.Port, Protocol: vs.Protocol, Fwmark: vs.Fwmark,
		Scheduler: vs.Scheduler, Forwarding: vs.Forwarding, Active: *vs.Active,
		Healthy: sp.healthy, UpWeight: sp.upWeight, Quorum: vs.Quorum, SorryActive: sp.sorryActive,
		RealServers: []api.RealServer{},
	}
	ks, inKernel := kernel[sp.key]
	if out.Active && inKernel {
		out.Stats = apiStats(ks.Stats)
	}
	dests := map[balancer.DestKey]balancer.DestSnapshot{}
	for _, ds := range ks.Destinations {
		dests[ds.Key()] = ds
	}
	for _, rs := range vs.RealServers {
		r := api.RealServer{
			Name: rs.Name, Address: rs.Address, Port: rs.Port, ConfiguredWeight: *rs.Weight,
			Active: *rs.Active, Drained: rs.Drained, Health: "unchecked",
			Forwarding: rs.Forwarding,
		}
		if vs.HealthCheck != nil && vs.HealthCheck.Type != "none" && r.Active && out.Active {
			if hst, ok := d.hc.Status(checkID(vs.Name, rs.Name)); ok {
				r.Health = hst.State.String()
				r.HealthReason = hst.Reason
				if hst.State == healthcheck.Unknown && hst.LastReason != "" {
					r.HealthReason = hst.LastReason
				}
				r.LastCheck = hst.LastCheck
			} else {
				r.Health = "unknown"
			}
		}
		if dst, err := destination(rs); err == nil {
			if ds, ok := dests[dst.Key()]; ok && out.Active && r.Active {
				r.InKernel = true
				r.Weight = ds.Weight
				r.ActiveConns = ds.ActiveConns
				r.InactConns = ds.InactiveConns
				r.Stats = apiStats(ds.Stats)
			}
		}
		out.RealServers = append(out.RealServers, r)
	}
	return out
}

func apiStats(s balancer.Stats) api.Stats {
	return api.Stats{
		Conns: s.Conns, InPkts: s.InPkts, OutPkts: s.OutPkts, InBytes: s.InBytes, OutBytes: s.OutBytes,
		CPS: s.CPS, InPPS: s.InPPS, OutPPS: s.OutPPS, InBPS: s.InBPS, OutBPS: s.OutBPS,
	}
}

// describeChange summarizes what a new configuration changes, by name, for
// the event log ("web: rs3 added; dns: changed").
func describeChange(before, after *config.Config) string {
	if before == nil {
		return "initial configuration"
	}
	var parts []string
	if !reflect.DeepEqual(before.Global, after.Global) {
		parts = append(parts, "global settings changed")
	}
	if !reflect.DeepEqual(before.VRRP, after.VRRP) {
		parts = append(parts, "redundancy settings changed")
	}
	if !reflect.DeepEqual(before.BGP, after.BGP) {
		parts = append(parts, "BGP settings changed")
	}
	if !reflect.DeepEqual(before.Sync, after.Sync) {
		parts = append(parts, "connection sync settings changed")
	}
	if !reflect.DeepEqual(before.Console, after.Console) {
		parts = append(parts, "console settings changed")
	}
	old := map[string]config.VirtualServer{}
	for _, vs := range before.VirtualServers {
		old[vs.Name] = vs
	}
	seen := map[string]bool{}
	for _, vs := range after.VirtualServers {
		seen[vs.Name] = true
		o, ok := old[vs.Name]
		switch {
		case !ok:
			parts = append(parts, fmt.Sprintf("virtual server %s added", vs.Name))
		case !reflect.DeepEqual(o, vs):
			parts = append(parts, fmt.Sprintf("virtual server %s: %s", vs.Name, describeVS(o, vs)))
		}
	}
	for _, vs := range before.VirtualServers {
		if !seen[vs.Name] {
			parts = append(parts, fmt.Sprintf("virtual server %s removed", vs.Name))
		}
	}
	if len(parts) == 0 {
		return "no change"
	}
	return strings.Join(parts, "; ")
}

func describeVS(o, n config.VirtualServer) string {
	var parts []string
	oldRS := map[string]config.RealServer{}
	for _, rs := range o.RealServers {
		oldRS[rs.Name] = rs
	}
	seen := map[string]bool{}
	for _, rs := range n.RealServers {
		seen[rs.Name] = true
		prev, ok := oldRS[rs.Name]
		switch {
		case !ok:
			parts = append(parts, rs.Name+" added")
		case prev.Drained != rs.Drained && rs.Drained:
			parts = append(parts, rs.Name+" drained")
		case prev.Drained != rs.Drained:
			parts = append(parts, rs.Name+" enabled")
		case !reflect.DeepEqual(prev, rs):
			parts = append(parts, rs.Name+" changed")
		}
	}
	for _, rs := range o.RealServers {
		if !seen[rs.Name] {
			parts = append(parts, rs.Name+" removed")
		}
	}
	a, b := o, n
	a.RealServers, b.RealServers = nil, nil
	if !reflect.DeepEqual(a, b) {
		parts = append(parts, "service settings changed")
	}
	return strings.Join(parts, ", ")
}
