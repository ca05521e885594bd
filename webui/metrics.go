package webui

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"lbd/api"
)

// metrics serves /metrics: the director's status read at scrape time by
// statusCollector (as gobgp's pkg/metrics does), and the library's Go and
// process collectors, through prometheus/client_golang. With
// console.metrics_auth it needs a token (read scope is enough) or a session.
func (s *Server) metrics(c *gin.Context) {
	cfg, _ := s.d.Config()
	if cfg.Console.MetricsAuth {
		_, _, sc := s.tokenAuth(c)
		_, sessOK := s.currentSession(c)
		if sc == scopeNone && !sessOK {
			c.Header("WWW-Authenticate", `Bearer realm="lbd"`)
			c.Data(http.StatusUnauthorized, "text/plain; charset=utf-8", []byte("metrics need an API token: Authorization: Bearer TOKEN\n"))
			return
		}
	}
	s.metricsHandler().ServeHTTP(c.Writer, c.Request)
}

// metricsHandler builds the registry once per server.
func (s *Server) metricsHandler() http.Handler {
	s.metricsOnce.Do(func() {
		reg := prometheus.NewRegistry()
		reg.MustRegister(
			statusCollector{status: s.d.Status},
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		)
		s.metricsHTTP = promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	})
	return s.metricsHTTP
}

// statusCollector turns one api.Status into metrics at every scrape: the
// status is the one source of truth, so nothing is counted twice. It is
// an unchecked collector (Describe sends nothing) because counter names
// come from the status's counter keys.
type statusCollector struct {
	status func() api.Status
}

// metricAreas are the parts of the status, one function each: a new area
// (BGP, several VRRP instances) is one more function in this list.
var metricAreas = []func(e emitter, st *api.Status){
	directorMetrics,
	vrrpMetrics,
	syncMetrics,
	serviceMetrics,
	realServerMetrics,
	alertMetrics,
	bgpMetrics,
}

func (statusCollector) Describe(chan<- *prometheus.Desc) {}

func (c statusCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.status()
	e := emitter{ch}
	for _, area := range metricAreas {
		area(e, &st)
	}
}

// emitter sends const metrics; labels alternate name, value.
type emitter struct{ ch chan<- prometheus.Metric }

func (e emitter) emit(name, help string, typ prometheus.ValueType, v float64, labels ...string) {
	names := make([]string, 0, len(labels)/2)
	values := make([]string, 0, len(labels)/2)
	for i := 0; i+1 < len(labels); i += 2 {
		names = append(names, labels[i])
		values = append(values, labels[i+1])
	}
	e.ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, help, names, nil), typ, v, values...)
}

func (e emitter) gauge(name, help string, v float64, labels ...string) {
	e.emit(name, help, prometheus.GaugeValue, v, labels...)
}

func (e emitter) counter(name, help string, v float64, labels ...string) {
	e.emit(name, help, prometheus.CounterValue, v, labels...)
}

// metricName turns a counter key from the status into a metric name part.
func metricName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

var vrrpStates = []string{"init", "backup", "master", "fault"}
var syncGuardStates = []string{"quiet", "hold"}
var healthStates = []string{"up", "down", "unknown", "unchecked"}

// Well-known director counters get fixed names; any other counter becomes
// lbd_<key>_total so new counters show up without a console change.
var directorCounters = map[string][2]string{
	"reconcile_writes":   {"lbd_reconcile_writes_total", "IPVS changes written by the reconciler."},
	"reconcile_errors":   {"lbd_reconcile_errors_total", "Reconciler runs that failed."},
	"reloads":            {"lbd_config_reloads_total", "Configuration reloads from the file (SIGHUP, lbctl reload)."},
	"reload_failures":    {"lbd_config_reload_failures_total", "Reloads refused because the file was invalid."},
	"edits":              {"lbd_config_edits_total", "Configuration changes applied from the console or the API."},
	"health_transitions": {"lbd_health_transitions_total", "Real-server health changes."},
}

func directorMetrics(e emitter, st *api.Status) {
	e.gauge("lbd_build_info", "lbd version and node name.", 1, "version", st.Version, "node", st.Node)
	if !st.Started.IsZero() {
		e.gauge("lbd_start_time_seconds", "When lbd started (Unix time).", float64(st.Started.UnixNano())/1e9)
	}
	if !st.LastReconcile.IsZero() {
		e.gauge("lbd_last_reconcile_timestamp_seconds", "When the IPVS table was last verified (Unix time).", float64(st.LastReconcile.UnixNano())/1e9)
	}
	e.gauge("lbd_reconcile_failing", "1 while the last reconcile failed.", b2f(st.ReconcileErr != ""))
	for _, k := range sortedKeys(st.Counters) {
		name, help := "lbd_"+metricName(k)+"_total", "Director counter "+k+"."
		if known, ok := directorCounters[k]; ok {
			name, help = known[0], known[1]
		}
		e.counter(name, help, float64(st.Counters[k]))
	}
}

func vrrpMetrics(e emitter, st *api.Status) {
	insts := st.VRRPInstances
	if len(insts) == 0 && st.VRRP != nil {
		insts = []api.VRRP{*st.VRRP}
	}
	for _, v := range insts {
		// vrrp_instance, not instance: Prometheus gives every target an
		// instance label of its own.
		id := []string{"vrid", strconv.Itoa(v.VRID)}
		if v.Name != "" {
			id = append(id, "vrrp_instance", v.Name)
		}
		with := func(kv ...string) []string { return append(slices.Clone(id), kv...) }
		const stateHelp = "VRRP state of the instance: 1 for the current state."
		for _, state := range vrrpStates {
			e.gauge("lbd_vrrp_state", stateHelp, b2f(v.State == state), with("interface", v.Interface, "state", state)...)
		}
		if !known(v.State, vrrpStates) {
			e.gauge("lbd_vrrp_state", stateHelp, 1, with("interface", v.Interface, "state", v.State)...)
		}
		e.gauge("lbd_vrrp_master", "1 while this director is VRRP master.", b2f(v.State == "master"), id...)
		e.gauge("lbd_vrrp_priority", "Configured VRRP priority.", float64(v.Priority), id...)
		e.gauge("lbd_vrrp_effective_priority", "VRRP priority after tracking penalties.", float64(v.EffectivePriority), id...)
		if !v.LastTransition.IsZero() {
			e.gauge("lbd_vrrp_last_transition_timestamp_seconds", "When the VRRP state last changed (Unix time).", float64(v.LastTransition.UnixNano())/1e9, id...)
		}
		for _, k := range sortedKeys(v.Counters) {
			n := float64(v.Counters[k])
			switch reason, isDrop := dropReason(k); {
			case isDrop:
				e.counter("lbd_vrrp_dropped_packets_total", "VRRP packets dropped, by reason.", n, with("reason", reason)...)
			case k == "transitions":
				e.counter("lbd_vrrp_transitions_total", "VRRP state transitions.", n, id...)
			default:
				e.counter("lbd_vrrp_"+metricName(k)+"_total", "VRRP counter "+k+".", n, id...)
			}
		}
	}
}

// syncMetrics: only when sync is on, so a director without it has no
// lbd_sync_ series at all.
func syncMetrics(e emitter, st *api.Status) {
	sy := st.Sync
	if sy == nil {
		return
	}
	for _, d := range sy.Daemons {
		e.gauge("lbd_sync_daemon_running", "1 while the kernel runs the IPVS sync daemon of this role (master sends this director's connections, backup learns the peer's).", b2f(d.Running), "role", d.Role)
	}
	const connHelp = "Connections in the IPVS table by origin: synced from the peer director, or local (scheduled here)."
	e.gauge("lbd_sync_connections", connHelp, float64(sy.SyncedConns), "origin", "synced")
	e.gauge("lbd_sync_connections", connHelp, float64(sy.LocalConns), "origin", "local")
	e.gauge("lbd_sync_warm", "1 when this director has learned the peer's connection table and may preempt.", b2f(sy.Warm))
	const guardHelp = "Handover guard: 1 for the state it is in (quiet: new master dropping unknown mid-flow segments; hold: resigning master holding new connections)."
	for _, g := range syncGuardStates {
		e.gauge("lbd_sync_guard", guardHelp, b2f(sy.Guard == g), "state", g)
	}
	if sy.Guard != "" && !known(sy.Guard, syncGuardStates) {
		e.gauge("lbd_sync_guard", guardHelp, 1, "state", sy.Guard)
	}
}

func serviceMetrics(e emitter, st *api.Status) {
	for _, sv := range st.Services {
		l := []string{"service", sv.Name}
		e.gauge("lbd_service_active", "1 when the virtual service is active (in IPVS).", b2f(sv.Active), l...)
		e.gauge("lbd_service_healthy", "1 when the healthy weight reaches the quorum.", b2f(sv.Healthy), l...)
		e.gauge("lbd_service_up_weight", "Total weight of healthy real servers.", float64(sv.UpWeight), l...)
		e.gauge("lbd_service_quorum", "Weight needed for the service to count as healthy.", float64(sv.Quorum), l...)
		e.gauge("lbd_service_sorry_active", "1 while the sorry server is in use.", b2f(sv.SorryActive), l...)
		statsMetrics(e, "lbd_service", sv.Stats, l)
	}
}

func realServerMetrics(e emitter, st *api.Status) {
	const healthHelp = "Real-server health: 1 for the current state."
	for _, sv := range st.Services {
		for _, rs := range sv.RealServers {
			l := []string{"service", sv.Name, "real_server", rs.Name}
			for _, h := range healthStates {
				e.gauge("lbd_real_server_health", healthHelp, b2f(rs.Health == h), append(l, "state", h)...)
			}
			if !known(rs.Health, healthStates) {
				e.gauge("lbd_real_server_health", healthHelp, 1, append(l, "state", rs.Health)...)
			}
			e.gauge("lbd_real_server_up", "1 when the real server's health check passes.", b2f(rs.Health == "up"), l...)
			e.gauge("lbd_real_server_weight", "Weight IPVS has now.", float64(rs.Weight), l...)
			e.gauge("lbd_real_server_configured_weight", "Weight in the configuration.", float64(rs.ConfiguredWeight), l...)
			e.gauge("lbd_real_server_drained", "1 while drained by an operator.", b2f(rs.Drained), l...)
			e.gauge("lbd_real_server_active", "1 when the real server is active in the configuration.", b2f(rs.Active), l...)
			e.gauge("lbd_real_server_in_kernel", "1 when the real server is in the IPVS table.", b2f(rs.InKernel), l...)
			e.gauge("lbd_real_server_active_connections", "IPVS active connections.", float64(rs.ActiveConns), l...)
			e.gauge("lbd_real_server_inactive_connections", "IPVS inactive connections.", float64(rs.InactConns), l...)
			statsMetrics(e, "lbd_real_server", rs.Stats, l)
		}
	}
}

// bgpMetrics writes the BGP state (only with [bgp]): every series comes
// from api.Status.BGP, so a rewrite of the exposition keeps the data.

// dropReason recognises VRRP drop counters ("drop_bad_ttl", "dropped_auth").
func dropReason(k string) (string, bool) {
	for _, p := range []string{"dropped_", "drops_", "drop_"} {
		if strings.HasPrefix(k, p) && len(k) > len(p) {
			return k[len(p):], true
		}
	}
	return "", false
}

func known(s string, set []string) bool {
	for _, x := range set {
		if x == s {
			return true
		}
	}
	return false
}

// statsMetrics writes IPVS counters and rates.
func statsMetrics(e emitter, prefix string, s api.Stats, l []string) {
	in := append(append([]string{}, l...), "direction", "in")
	out := append(append([]string{}, l...), "direction", "out")
	e.counter(prefix+"_connections_total", "IPVS connections scheduled.", float64(s.Conns), l...)
	e.counter(prefix+"_packets_total", "IPVS packets, by direction.", float64(s.InPkts), in...)
	e.counter(prefix+"_packets_total", "IPVS packets, by direction.", float64(s.OutPkts), out...)
	e.counter(prefix+"_bytes_total", "IPVS bytes, by direction.", float64(s.InBytes), in...)
	e.counter(prefix+"_bytes_total", "IPVS bytes, by direction.", float64(s.OutBytes), out...)
	e.gauge(prefix+"_connections_per_second", "IPVS connection rate (kernel estimate).", float64(s.CPS), l...)
	e.gauge(prefix+"_packets_per_second", "IPVS packet rate (kernel estimate), by direction.", float64(s.InPPS), in...)
	e.gauge(prefix+"_packets_per_second", "IPVS packet rate (kernel estimate), by direction.", float64(s.OutPPS), out...)
	e.gauge(prefix+"_bytes_per_second", "IPVS byte rate (kernel estimate), by direction.", float64(s.InBPS), in...)
	e.gauge(prefix+"_bytes_per_second", "IPVS byte rate (kernel estimate), by direction.", float64(s.OutBPS), out...)
}

// alertMetrics: each [[alert]] target's deliveries, and what became of
// its events.
func alertMetrics(e emitter, st *api.Status) {
	for _, a := range st.Alerts {
		for _, r := range []struct {
			result string
			n      int64
		}{{"sent", a.Sent}, {"failed", a.Failed}, {"dropped", a.Dropped}, {"deduped", a.Deduped}, {"suppressed", a.Suppressed}} {
			e.counter("lbd_alert_events_total", "Events per alert target by outcome: sent, failed after every retry, dropped (queue full), deduped, suppressed (left out of a digest).",
				float64(r.n), "alert", a.Name, "type", a.Type, "result", r.result)
		}
		e.counter("lbd_alert_deliveries_total", "Successful deliveries per alert target (a digest is one).", float64(a.Deliveries), "alert", a.Name, "type", a.Type)
		if !a.LastSent.IsZero() {
			e.gauge("lbd_alert_last_sent_timestamp_seconds", "When the alert target last took a delivery.", float64(a.LastSent.UnixNano())/1e9, "alert", a.Name, "type", a.Type)
		}
	}
}

// vrrpMetrics writes the VRRP instances' metrics: one set per instance,
// labelled by vrid, and by instance for a named [[vrrp_instance]] (an
// unnamed [vrrp] keeps its labels as before instances).

// bgpMetrics: only with [bgp].
func bgpMetrics(e emitter, st *api.Status) {
	b := st.BGP
	if b == nil {
		return
	}
	e.gauge("lbd_bgp_maintenance", "1 while this director is in BGP maintenance (every VIP withdrawn).", b2f(b.Maintenance))
	for _, s := range b.Sessions {
		e.gauge("lbd_bgp_session_established", "1 while the BGP session with the router is established.", b2f(s.State == "established"), "neighbor", s.Neighbor)
		e.gauge("lbd_bgp_prefixes_sent", "Prefixes (VIPs) the router has from this director now.", float64(s.PrefixesSent), "neighbor", s.Neighbor)
	}
	for _, v := range b.VIPs {
		e.gauge("lbd_bgp_vip_announced", "1 while the VIP is announced to the routers; 0 while withdrawn (below quorum, maintenance, stopping).", b2f(v.Announced), "vip", v.VIP)
	}
}
