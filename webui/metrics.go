package webui

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"lbd/api"
)

// metrics serves the director's status in the Prometheus text format
// (version 0.0.4). It is written by hand: the status already holds every
// number, so a client library would only add a second source of truth.
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
	c.Data(http.StatusOK, "text/plain; version=0.0.4; charset=utf-8", writeMetrics(s.d.Status()))
}

// promWriter collects samples by family and writes each family as one
// group, as the exposition format requires, in order of first use.
type promWriter struct {
	order []*promFamily
	fams  map[string]*promFamily
}

type promFamily struct {
	name, typ, help string
	lines           bytes.Buffer
}

func newPromWriter() *promWriter { return &promWriter{fams: make(map[string]*promFamily)} }

// family declares a metric family once.
func (w *promWriter) family(name, typ, help string) *promFamily {
	f, ok := w.fams[name]
	if !ok {
		f = &promFamily{name: name, typ: typ, help: help}
		w.fams[name] = f
		w.order = append(w.order, f)
	}
	return f
}

// sample adds one sample to a declared family; labels alternate name, value.
func (w *promWriter) sample(name string, v float64, labels ...string) {
	f := w.fams[name]
	b := &f.lines
	b.WriteString(name)
	if len(labels) > 0 {
		b.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(labels[i])
			b.WriteString(`="`)
			b.WriteString(escapeLabel(labels[i+1]))
			b.WriteByte('"')
		}
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	b.WriteByte('\n')
}

func (w *promWriter) bytes() []byte {
	var out bytes.Buffer
	for _, f := range w.order {
		fmt.Fprintf(&out, "# HELP %s %s\n# TYPE %s %s\n", f.name, f.help, f.name, f.typ)
		out.Write(f.lines.Bytes())
	}
	return out.Bytes()
}

func (w *promWriter) metric(name, typ, help string, v float64, labels ...string) {
	w.family(name, typ, help)
	w.sample(name, v, labels...)
}

func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
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

func writeMetrics(st api.Status) []byte {
	w := newPromWriter()
	w.metric("lbd_build_info", "gauge", "lbd version and node name.", 1, "version", st.Version, "node", st.Node)
	if !st.Started.IsZero() {
		w.metric("lbd_start_time_seconds", "gauge", "When lbd started (Unix time).", float64(st.Started.UnixNano())/1e9)
	}
	if !st.LastReconcile.IsZero() {
		w.metric("lbd_last_reconcile_timestamp_seconds", "gauge", "When the IPVS table was last verified (Unix time).", float64(st.LastReconcile.UnixNano())/1e9)
	}
	w.metric("lbd_reconcile_failing", "gauge", "1 while the last reconcile failed.", b2f(st.ReconcileErr != ""))
	for _, k := range sortedKeys(st.Counters) {
		name, help := "lbd_"+metricName(k)+"_total", "Director counter "+k+"."
		if known, ok := directorCounters[k]; ok {
			name, help = known[0], known[1]
		}
		w.metric(name, "counter", help, float64(st.Counters[k]))
	}

	if v := st.VRRP; v != nil {
		vrid := strconv.Itoa(v.VRID)
		w.family("lbd_vrrp_state", "gauge", "VRRP state of the instance: 1 for the current state.")
		for _, state := range vrrpStates {
			w.sample("lbd_vrrp_state", b2f(v.State == state), "vrid", vrid, "interface", v.Interface, "state", state)
		}
		if !known(v.State, vrrpStates) {
			w.sample("lbd_vrrp_state", 1, "vrid", vrid, "interface", v.Interface, "state", v.State)
		}
		w.metric("lbd_vrrp_master", "gauge", "1 while this director is VRRP master.", b2f(v.State == "master"), "vrid", vrid)
		w.metric("lbd_vrrp_priority", "gauge", "Configured VRRP priority.", float64(v.Priority), "vrid", vrid)
		w.metric("lbd_vrrp_effective_priority", "gauge", "VRRP priority after tracking penalties.", float64(v.EffectivePriority), "vrid", vrid)
		if !v.LastTransition.IsZero() {
			w.metric("lbd_vrrp_last_transition_timestamp_seconds", "gauge", "When the VRRP state last changed (Unix time).", float64(v.LastTransition.UnixNano())/1e9, "vrid", vrid)
		}
		for _, k := range sortedKeys(v.Counters) {
			n := float64(v.Counters[k])
			switch reason, isDrop := dropReason(k); {
			case isDrop:
				w.metric("lbd_vrrp_dropped_packets_total", "counter", "VRRP packets dropped, by reason.", n, "vrid", vrid, "reason", reason)
			case k == "transitions":
				w.metric("lbd_vrrp_transitions_total", "counter", "VRRP state transitions.", n, "vrid", vrid)
			default:
				w.metric("lbd_vrrp_"+metricName(k)+"_total", "counter", "VRRP counter "+k+".", n, "vrid", vrid)
			}
		}
	}

	if sy := st.Sync; sy != nil {
		syncMetrics(w, sy)
	}
	if b := st.BGP; b != nil {
		bgpMetrics(w, b)
	}

	for _, sv := range st.Services {
		l := []string{"service", sv.Name}
		w.metric("lbd_service_active", "gauge", "1 when the virtual service is active (in IPVS).", b2f(sv.Active), l...)
		w.metric("lbd_service_healthy", "gauge", "1 when the healthy weight reaches the quorum.", b2f(sv.Healthy), l...)
		w.metric("lbd_service_up_weight", "gauge", "Total weight of healthy real servers.", float64(sv.UpWeight), l...)
		w.metric("lbd_service_quorum", "gauge", "Weight needed for the service to count as healthy.", float64(sv.Quorum), l...)
		w.metric("lbd_service_sorry_active", "gauge", "1 while the sorry server is in use.", b2f(sv.SorryActive), l...)
		statsMetrics(w, "lbd_service", sv.Stats, l)
	}
	for _, sv := range st.Services {
		for _, rs := range sv.RealServers {
			l := []string{"service", sv.Name, "real_server", rs.Name}
			w.family("lbd_real_server_health", "gauge", "Real-server health: 1 for the current state.")
			for _, h := range healthStates {
				w.sample("lbd_real_server_health", b2f(rs.Health == h), append(l, "state", h)...)
			}
			if !known(rs.Health, healthStates) {
				w.sample("lbd_real_server_health", 1, append(l, "state", rs.Health)...)
			}
			w.metric("lbd_real_server_up", "gauge", "1 when the real server's health check passes.", b2f(rs.Health == "up"), l...)
			w.metric("lbd_real_server_weight", "gauge", "Weight IPVS has now.", float64(rs.Weight), l...)
			w.metric("lbd_real_server_configured_weight", "gauge", "Weight in the configuration.", float64(rs.ConfiguredWeight), l...)
			w.metric("lbd_real_server_drained", "gauge", "1 while drained by an operator.", b2f(rs.Drained), l...)
			w.metric("lbd_real_server_active", "gauge", "1 when the real server is active in the configuration.", b2f(rs.Active), l...)
			w.metric("lbd_real_server_in_kernel", "gauge", "1 when the real server is in the IPVS table.", b2f(rs.InKernel), l...)
			w.metric("lbd_real_server_active_connections", "gauge", "IPVS active connections.", float64(rs.ActiveConns), l...)
			w.metric("lbd_real_server_inactive_connections", "gauge", "IPVS inactive connections.", float64(rs.InactConns), l...)
			statsMetrics(w, "lbd_real_server", rs.Stats, l)
		}
	}
	return w.bytes()
}

// syncMetrics writes the connection-sync state; only called when sync is on,
// so a director without it has no lbd_sync_ series at all.
func syncMetrics(w *promWriter, sy *api.Sync) {
	if len(sy.Daemons) > 0 {
		w.family("lbd_sync_daemon_running", "gauge", "1 while the kernel runs the IPVS sync daemon of this role (master sends this director's connections, backup learns the peer's).")
		for _, d := range sy.Daemons {
			w.sample("lbd_sync_daemon_running", b2f(d.Running), "role", d.Role)
		}
	}
	w.family("lbd_sync_connections", "gauge", "Connections in the IPVS table by origin: synced from the peer director, or local (scheduled here).")
	w.sample("lbd_sync_connections", float64(sy.SyncedConns), "origin", "synced")
	w.sample("lbd_sync_connections", float64(sy.LocalConns), "origin", "local")
	w.metric("lbd_sync_warm", "gauge", "1 when this director has learned the peer's connection table and may preempt.", b2f(sy.Warm))
	w.family("lbd_sync_guard", "gauge", "Handover guard: 1 for the state it is in (quiet: new master dropping unknown mid-flow segments; hold: resigning master holding new connections).")
	for _, g := range syncGuardStates {
		w.sample("lbd_sync_guard", b2f(sy.Guard == g), "state", g)
	}
	if sy.Guard != "" && !known(sy.Guard, syncGuardStates) {
		w.sample("lbd_sync_guard", 1, "state", sy.Guard)
	}
}

// bgpMetrics writes the BGP state (only with [bgp]): every series comes
// from api.Status.BGP, so a rewrite of the exposition keeps the data.
func bgpMetrics(w *promWriter, b *api.BGP) {
	w.metric("lbd_bgp_maintenance", "gauge", "1 while this director is in BGP maintenance (every VIP withdrawn).", b2f(b.Maintenance))
	if len(b.Sessions) > 0 {
		w.family("lbd_bgp_session_established", "gauge", "1 while the BGP session with the router is established.")
		for _, s := range b.Sessions {
			w.sample("lbd_bgp_session_established", b2f(s.State == "established"), "neighbor", s.Neighbor)
		}
		w.family("lbd_bgp_prefixes_sent", "gauge", "Prefixes (VIPs) the router has from this director now.")
		for _, s := range b.Sessions {
			w.sample("lbd_bgp_prefixes_sent", float64(s.PrefixesSent), "neighbor", s.Neighbor)
		}
	}
	if len(b.VIPs) > 0 {
		w.family("lbd_bgp_vip_announced", "gauge", "1 while the VIP is announced to the routers; 0 while withdrawn (below quorum, maintenance, stopping).")
		for _, v := range b.VIPs {
			w.sample("lbd_bgp_vip_announced", b2f(v.Announced), "vip", v.VIP)
		}
	}
}

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

// statsMetrics writes IPVS counters and rates. Grouping by family keeps each
// family's samples together, as the exposition format requires.
func statsMetrics(w *promWriter, prefix string, s api.Stats, l []string) {
	in := append(append([]string{}, l...), "direction", "in")
	out := append(append([]string{}, l...), "direction", "out")
	w.metric(prefix+"_connections_total", "counter", "IPVS connections scheduled.", float64(s.Conns), l...)
	w.metric(prefix+"_packets_total", "counter", "IPVS packets, by direction.", float64(s.InPkts), in...)
	w.sample(prefix+"_packets_total", float64(s.OutPkts), out...)
	w.metric(prefix+"_bytes_total", "counter", "IPVS bytes, by direction.", float64(s.InBytes), in...)
	w.sample(prefix+"_bytes_total", float64(s.OutBytes), out...)
	w.metric(prefix+"_connections_per_second", "gauge", "IPVS connection rate (kernel estimate).", float64(s.CPS), l...)
	w.metric(prefix+"_packets_per_second", "gauge", "IPVS packet rate (kernel estimate), by direction.", float64(s.InPPS), in...)
	w.sample(prefix+"_packets_per_second", float64(s.OutPPS), out...)
	w.metric(prefix+"_bytes_per_second", "gauge", "IPVS byte rate (kernel estimate), by direction.", float64(s.InBPS), in...)
	w.sample(prefix+"_bytes_per_second", float64(s.OutBPS), out...)
}
