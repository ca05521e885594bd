package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"lbd/api"
)

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// rate prints a per-second figure compactly: 950, 1.2k, 34M.
func rate(v uint64) string {
	units := []string{"", "k", "M", "G", "T"}
	f := float64(v)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	if i == 0 {
		return strconv.FormatUint(v, 10)
	}
	if f < 10 {
		return fmt.Sprintf("%.1f%s", f, units[i])
	}
	return fmt.Sprintf("%.0f%s", f, units[i])
}

func shortVersion(v string) string {
	if len(v) > 12 {
		return v[:12]
	}
	if v == "" {
		return "-"
	}
	return v
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// serviceHealth and serviceState are the service row's HEALTH and STATE.
func serviceHealth(s *api.Service) string {
	if s.Healthy {
		return "healthy"
	}
	return fmt.Sprintf("DOWN (up weight %d < quorum %d)", s.UpWeight, s.Quorum)
}

func serviceState(s *api.Service) string {
	switch {
	case !s.Active:
		return "inactive"
	case s.SorryActive:
		return "sorry-server"
	default:
		return "active"
	}
}

// realState says whether the real server takes new connections and, if not,
// why: drained by an operator, inactive in the config, or missing from IPVS.
func realState(r *api.RealServer) string {
	switch {
	case r.Drained:
		return "drained"
	case !r.Active:
		return "inactive"
	case !r.InKernel:
		return "not-in-ipvs"
	case r.Weight == 0:
		return "quiesced"
	default:
		return "serving"
	}
}

func realWeight(r *api.RealServer) string {
	if r.Weight == r.ConfiguredWeight {
		return strconv.Itoa(r.Weight)
	}
	return fmt.Sprintf("%d of %d", r.Weight, r.ConfiguredWeight)
}

func realHealth(r *api.RealServer) string {
	if r.Health == "" {
		return "unknown"
	}
	return r.Health
}

func serviceConns(s *api.Service) (active, inact int) {
	for _, r := range s.RealServers {
		active += r.ActiveConns
		inact += r.InactConns
	}
	return
}

const tableHeader = "NAME\tADDRESS\tSCHED\tFWD\tWEIGHT\tHEALTH\tSTATE\tACTIVE\tINACT\tCONN/S\tIN B/S\tOUT B/S\n"

func serviceRow(w io.Writer, s *api.Service) {
	act, inact := serviceConns(s)
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n",
		s.Name, s.Address(), s.Scheduler, s.Forwarding, s.UpWeight, serviceHealth(s), serviceState(s),
		act, inact, rate(s.Stats.CPS), rate(s.Stats.InBPS), rate(s.Stats.OutBPS))
}

func realRow(w io.Writer, indent string, r *api.RealServer) {
	fmt.Fprintf(w, "%s%s\t%s\t\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n",
		indent, r.Name, api.HostPort(r.Address, r.Port), r.Forwarding, realWeight(r), realHealth(r), realState(r),
		r.ActiveConns, r.InactConns, rate(r.Stats.CPS), rate(r.Stats.InBPS), rate(r.Stats.OutBPS))
}

func renderStatus(w io.Writer, st *api.Status, now time.Time) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "director\t%s (lbd %s, up %s)\n", st.Node, st.Version, api.Duration(now.Sub(st.Started)))
	fmt.Fprintf(tw, "config\t%s (version %s)\n", st.ConfigPath, shortVersion(st.ConfigVersion))
	insts := st.VRRPInstances
	if len(insts) == 0 && st.VRRP != nil {
		insts = []api.VRRP{*st.VRRP}
	}
	if len(insts) == 0 {
		fmt.Fprintf(tw, "role\tstandalone (no [vrrp])\n")
	}
	for _, v := range insts {
		// A lone unnamed [vrrp] reads as before instances; a named
		// instance says which.
		label, sub := "role", "vrrp"
		if v.Name != "" {
			label, sub = "role "+v.Name, "  vrrp"
		}
		role := strings.ToUpper(v.State) + " since " + api.Ago(v.LastTransition, now)
		if v.Reason != "" {
			role += ": " + v.Reason
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, role)
		prio := strconv.Itoa(v.Priority)
		if v.EffectivePriority != v.Priority {
			prio = fmt.Sprintf("%d (configured %d)", v.EffectivePriority, v.Priority)
		}
		line := fmt.Sprintf("vrid %d v%d on %s, priority %s, vips %s", v.VRID, v.Version, v.Interface, prio, strings.Join(v.VIPs, " "))
		if v.MasterAddr != "" {
			line += ", master " + v.MasterAddr
		}
		if v.SyncGroup != "" {
			line += ", sync group " + v.SyncGroup
		}
		fmt.Fprintf(tw, "%s\t%s\n", sub, line)
	}
	if st.Sync != nil {
		fmt.Fprintf(tw, "sync\t%s\n", syncLine(st.Sync, now))
	}
	if st.IPVSUnavailable {
		fmt.Fprintf(tw, "ipvs\t%s\n", api.IPVSUnavailableText)
	} else if st.ReconcileErr != "" {
		fmt.Fprintf(tw, "ipvs\tERROR: %s (last good sync %s)\n", st.ReconcileErr, api.Ago(st.LastReconcile, now))
	} else if st.LastReconcile.IsZero() {
		fmt.Fprintf(tw, "ipvs\tnot verified yet\n")
	} else {
		fmt.Fprintf(tw, "ipvs\tin sync, checked %s\n", api.Ago(st.LastReconcile, now))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(st.Services) == 0 {
		fmt.Fprintln(w, "no virtual services configured")
		return nil
	}
	tw = newTable(w)
	fmt.Fprint(tw, tableHeader)
	for i := range st.Services {
		s := &st.Services[i]
		serviceRow(tw, s)
		for j := range s.RealServers {
			realRow(tw, "  -> ", &s.RealServers[j])
		}
	}
	return tw.Flush()
}

// renderList prints items as a table under header, one row each, or the
// line empty when there are none.
func renderList[T any](w io.Writer, items []T, empty, header string, row func(io.Writer, *T)) error {
	if len(items) == 0 {
		fmt.Fprintln(w, empty)
		return nil
	}
	tw := newTable(w)
	fmt.Fprint(tw, header)
	for i := range items {
		row(tw, &items[i])
	}
	return tw.Flush()
}

func renderServiceList(w io.Writer, svcs []api.Service) error {
	return renderList(w, svcs, "no virtual services configured",
		"NAME\tADDRESS\tSCHED\tFWD\tREAL\tUP WEIGHT\tHEALTH\tSTATE\tACTIVE\tCONN/S\n",
		func(tw io.Writer, s *api.Service) {
			act, _ := serviceConns(s)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%d\t%s\n", s.Name, s.Address(), s.Scheduler, s.Forwarding,
				len(s.RealServers), s.UpWeight, serviceHealth(s), serviceState(s), act, rate(s.Stats.CPS))
		})
}

func renderRealList(w io.Writer, rss []api.RealServer) error {
	return renderList(w, rss, "no real servers",
		"NAME\tADDRESS\tFWD\tWEIGHT\tHEALTH\tSTATE\tACTIVE\tINACT\tCONN/S\tIN B/S\tOUT B/S\n",
		func(tw io.Writer, r *api.RealServer) {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", r.Name, api.HostPort(r.Address, r.Port), r.Forwarding,
				realWeight(r), realHealth(r), realState(r), r.ActiveConns, r.InactConns,
				rate(r.Stats.CPS), rate(r.Stats.InBPS), rate(r.Stats.OutBPS))
		})
}

func statsLines(tw io.Writer, st api.Stats) {
	fmt.Fprintf(tw, "totals\t%d connections, in %d packets (%d bytes), out %d packets (%d bytes)\n",
		st.Conns, st.InPkts, st.InBytes, st.OutPkts, st.OutBytes)
	fmt.Fprintf(tw, "rates\t%s conn/s, in %s pkt/s (%s B/s), out %s pkt/s (%s B/s)\n",
		rate(st.CPS), rate(st.InPPS), rate(st.InBPS), rate(st.OutPPS), rate(st.OutBPS))
}

func renderService(w io.Writer, s *api.Service, now time.Time) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "service\t%s\n", s.Name)
	fmt.Fprintf(tw, "address\t%s\n", s.Address())
	fmt.Fprintf(tw, "scheduler\t%s\n", s.Scheduler)
	fmt.Fprintf(tw, "forwarding\t%s\n", s.Forwarding)
	fmt.Fprintf(tw, "state\t%s\n", serviceState(s))
	fmt.Fprintf(tw, "health\t%s (up weight %d, quorum %d)\n", map[bool]string{true: "healthy", false: "DOWN"}[s.Healthy], s.UpWeight, s.Quorum)
	fmt.Fprintf(tw, "sorry server\t%s\n", map[bool]string{true: "in use", false: "not in use"}[s.SorryActive])
	act, inact := serviceConns(s)
	fmt.Fprintf(tw, "connections\t%d active, %d inactive\n", act, inact)
	statsLines(tw, s.Stats)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return renderRealList(w, s.RealServers)
}

func renderReal(w io.Writer, vs string, r *api.RealServer, now time.Time) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "real server\t%s/%s\n", vs, r.Name)
	fmt.Fprintf(tw, "address\t%s\n", api.HostPort(r.Address, r.Port))
	fmt.Fprintf(tw, "forwarding\t%s\n", r.Forwarding)
	fmt.Fprintf(tw, "state\t%s\n", realState(r))
	fmt.Fprintf(tw, "weight\t%d in IPVS, %d configured\n", r.Weight, r.ConfiguredWeight)
	fmt.Fprintf(tw, "drained\t%s\n", yesNo(r.Drained))
	health := realHealth(r)
	if r.HealthReason != "" {
		health += ": " + r.HealthReason
	}
	if !r.LastCheck.IsZero() {
		health += " (checked " + api.Ago(r.LastCheck, now) + ")"
	}
	fmt.Fprintf(tw, "health\t%s\n", health)
	fmt.Fprintf(tw, "in ipvs\t%s\n", yesNo(r.InKernel))
	fmt.Fprintf(tw, "connections\t%d active, %d inactive\n", r.ActiveConns, r.InactConns)
	statsLines(tw, r.Stats)
	return tw.Flush()
}

// syncLine is the connection sync in one line: each daemon and whether it
// runs, whether this director is warm (or why not), the connections by
// origin, the handover guard, and where the sync messages go.
func syncLine(s *api.Sync, now time.Time) string {
	var parts []string
	var daemons []string
	for _, d := range sortedDaemons(s.Daemons) {
		switch {
		case !d.Running && d.Error != "":
			daemons = append(daemons, d.Role+" STOPPED ("+d.Error+")")
		case !d.Running:
			daemons = append(daemons, d.Role+" STOPPED")
		case d.Since.IsZero():
			daemons = append(daemons, d.Role+" running")
		default:
			daemons = append(daemons, d.Role+" running for "+api.Duration(now.Sub(d.Since)))
		}
	}
	if len(daemons) == 0 {
		daemons = append(daemons, "NO DAEMONS")
	}
	parts = append(parts, strings.Join(daemons, ", "))
	if s.Warm {
		parts = append(parts, "warm")
	} else {
		warm := "NOT WARM"
		if s.WarmReason != "" {
			warm += " (" + s.WarmReason + ")"
		}
		parts = append(parts, warm+": will not preempt")
	}
	parts = append(parts, fmt.Sprintf("%d synced / %d local", s.SyncedConns, s.LocalConns))
	if s.Guard != "" {
		parts = append(parts, "guard "+s.Guard)
	}
	parts = append(parts, fmt.Sprintf("id %d on %s, group %s", s.SyncID, s.Interface, api.HostPort(s.Group, s.Port)))
	return strings.Join(parts, "; ")
}

// sortedDaemons puts the master daemon first, then the backup, then any
// other role, as lbd's console does.
func sortedDaemons(ds []api.SyncDaemon) []api.SyncDaemon {
	order := func(role string) int {
		switch role {
		case "master":
			return 0
		case "backup":
			return 1
		}
		return 2
	}
	out := slices.Clone(ds)
	slices.SortStableFunc(out, func(a, b api.SyncDaemon) int { return order(a.Role) - order(b.Role) })
	return out
}
