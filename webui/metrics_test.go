package webui

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"lbd/api"
)

func getMetrics(t *testing.T, h *harness, auth string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", h.ts.URL+"/metrics", nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode == http.StatusOK && !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain; version=0.0.4; charset=utf-8") {
		t.Fatalf("content type %q", r.Header.Get("Content-Type"))
	}
	return r.StatusCode, string(b)
}

// checkExposition parses the text with Prometheus's own parser (which
// refuses a malformed line or a family split in two) and checks every lbd
// family's prefix.
func checkExposition(t *testing.T, text string) {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("exposition does not parse: %v\n%s", err, text)
	}
	if _, ok := fams["lbd_build_info"]; !ok {
		t.Fatalf("no lbd_build_info")
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Fatalf("no Go collector metrics")
	}
}

func TestMetrics(t *testing.T) {
	h := newHarness(t)
	h.d.setHealth("web", "rs1", "down", `connect: "refused"`)
	code, text := getMetrics(t, h, "")
	if code != http.StatusOK {
		t.Fatalf("metrics: %d %s", code, text)
	}
	checkExposition(t, text)
	for _, want := range []string{
		`lbd_build_info{node="lvs-test",version="test"} 1`,
		`lbd_vrrp_state{interface="eth0",state="master",vrid="51"} 1`,
		`lbd_vrrp_state{interface="eth0",state="backup",vrid="51"} 0`,
		`lbd_vrrp_transitions_total{vrid="51"} 2`,
		`lbd_vrrp_dropped_packets_total{reason="bad_ttl",vrid="51"} 3`,
		`lbd_vrrp_dropped_packets_total{reason="vrid_mismatch",vrid="51"} 1`,
		`lbd_vrrp_adverts_sent_total{vrid="51"} 3600`,
		`lbd_vrrp_priority{vrid="51"} 150`,
		`lbd_reconcile_writes_total 12`,
		`lbd_reconcile_errors_total 1`,
		`lbd_config_reloads_total 0`,
		`lbd_config_edits_total 0`,
		`lbd_service_healthy{service="web"} 1`,
		`lbd_service_connections_total{service="web"} 1200`,
		`lbd_service_bytes_per_second{direction="in",service="web"} 24000`,
		`lbd_real_server_health{real_server="rs1",service="web",state="down"} 1`,
		`lbd_real_server_health{real_server="rs1",service="web",state="up"} 0`,
		`lbd_real_server_up{real_server="rs2",service="web"} 1`,
		`lbd_real_server_weight{real_server="rs1",service="web"} 0`,
		`lbd_real_server_weight{real_server="rs2",service="web"} 2`,
		`lbd_real_server_active_connections{real_server="rs2",service="web"} 20`,
		`lbd_real_server_packets_total{direction="in",real_server="rs1",service="web"} 0`,
		`lbd_real_server_bytes_total{direction="out",real_server="rs2",service="web"} 0`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestMetricsAuth(t *testing.T) {
	h := newHarnessConfig(t, testConfig(t, "metrics_auth = true"))
	if code, _ := getMetrics(t, h, ""); code != http.StatusUnauthorized {
		t.Fatalf("metrics without token: %d", code)
	}
	if code, _ := getMetrics(t, h, "Bearer ci.nope"); code != http.StatusUnauthorized {
		t.Fatalf("metrics with a bad token: %d", code)
	}
	code, text := getMetrics(t, h, "Bearer "+testToken)
	if code != http.StatusOK || !strings.Contains(text, "lbd_vrrp_state") {
		t.Fatalf("metrics with token: %d", code)
	}
}

func TestMetricsSync(t *testing.T) {
	cases := []struct {
		name string
		sync func() *api.Sync
		want []string
		not  []string
	}{
		{
			name: "running and warm",
			sync: warmSync,
			want: []string{
				`lbd_sync_daemon_running{role="master"} 1`,
				`lbd_sync_daemon_running{role="backup"} 1`,
				`lbd_sync_connections{origin="synced"} 1234`,
				`lbd_sync_connections{origin="local"} 56`,
				`lbd_sync_warm 1`,
				`lbd_sync_guard{state="quiet"} 0`,
				`lbd_sync_guard{state="hold"} 0`,
			},
		},
		{
			name: "backup stopped, not warm, guard quiet",
			sync: func() *api.Sync {
				s := warmSync()
				s.Daemons[0] = api.SyncDaemon{Role: "backup", Error: "no such device"}
				s.Warm, s.WarmReason, s.Guard = false, "backup daemon not running", "quiet"
				s.SyncedConns, s.LocalConns = 0, 7
				return s
			},
			want: []string{
				`lbd_sync_daemon_running{role="master"} 1`,
				`lbd_sync_daemon_running{role="backup"} 0`,
				`lbd_sync_connections{origin="synced"} 0`,
				`lbd_sync_connections{origin="local"} 7`,
				`lbd_sync_warm 0`,
				`lbd_sync_guard{state="quiet"} 1`,
				`lbd_sync_guard{state="hold"} 0`,
			},
		},
		{
			name: "guard hold",
			sync: func() *api.Sync { s := warmSync(); s.Guard = "hold"; return s },
			want: []string{`lbd_sync_guard{state="quiet"} 0`, `lbd_sync_guard{state="hold"} 1`},
		},
		{
			name: "off",
			sync: func() *api.Sync { return nil },
			not:  []string{"lbd_sync_"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.d.setSync(tc.sync())
			code, text := getMetrics(t, h, "")
			if code != http.StatusOK {
				t.Fatalf("metrics: %d %s", code, text)
			}
			checkExposition(t, text)
			for _, want := range tc.want {
				if !strings.Contains(text, want+"\n") {
					t.Errorf("metrics lack %s", want)
				}
			}
			for _, not := range tc.not {
				if strings.Contains(text, not) {
					t.Errorf("metrics have %s:\n%s", not, text)
				}
			}
			if tc.sync() != nil {
				for _, fam := range []string{"lbd_sync_daemon_running", "lbd_sync_connections", "lbd_sync_warm", "lbd_sync_guard"} {
					if !strings.Contains(text, "# TYPE "+fam+" gauge\n") {
						t.Errorf("no gauge family %s", fam)
					}
				}
				// One sample per guard state, each present whether on or off.
				if n := strings.Count(text, "\nlbd_sync_guard{"); n != 2 {
					t.Errorf("lbd_sync_guard has %d samples, want 2", n)
				}
			}
		})
	}
}

// TestMetricNames lists every lbd metric family with its type, from a
// status that has every area (VRRP, sync, services, real servers): a
// renamed, retyped, added or removed metric fails here, so dashboards and
// alerts never break silently. Update the list on purpose only.
func TestMetricNames(t *testing.T) {
	h := newHarness(t)
	h.d.setSync(warmSync())
	h.d.mu.Lock()
	h.d.alerts = []api.AlertTarget{{Name: "ops", Type: "mail", Sent: 3, Deliveries: 2, Failed: 1, LastSent: time.Now()}}
	h.d.bgp = &api.BGP{LocalASN: 65001, Sessions: []api.BGPSession{{Neighbor: "10.1.0.1", ASN: 65000, State: "established"}},
		VIPs: []api.BGPVIP{{VIP: "192.0.2.10", Announced: true}}}
	h.d.mu.Unlock()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(statusCollector{status: h.d.Status})
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fams {
		got = append(got, f.GetName()+" "+strings.ToLower(f.GetType().String()))
	}
	want := metricNamesList
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("metric families changed:\n got %q\nwant %q", got, want)
	}
}

var metricNamesList = []string{
	"lbd_alert_deliveries_total counter",
	"lbd_alert_events_total counter",
	"lbd_alert_last_sent_timestamp_seconds gauge",
	"lbd_bgp_maintenance gauge",
	"lbd_bgp_prefixes_sent gauge",
	"lbd_bgp_session_established gauge",
	"lbd_bgp_vip_announced gauge",
	"lbd_build_info gauge",
	"lbd_config_edits_total counter",
	"lbd_config_reload_failures_total counter",
	"lbd_config_reloads_total counter",
	"lbd_last_reconcile_timestamp_seconds gauge",
	"lbd_real_server_active gauge",
	"lbd_real_server_active_connections gauge",
	"lbd_real_server_bytes_per_second gauge",
	"lbd_real_server_bytes_total counter",
	"lbd_real_server_configured_weight gauge",
	"lbd_real_server_connections_per_second gauge",
	"lbd_real_server_connections_total counter",
	"lbd_real_server_drained gauge",
	"lbd_real_server_health gauge",
	"lbd_real_server_in_kernel gauge",
	"lbd_real_server_inactive_connections gauge",
	"lbd_real_server_packets_per_second gauge",
	"lbd_real_server_packets_total counter",
	"lbd_real_server_up gauge",
	"lbd_real_server_weight gauge",
	"lbd_reconcile_errors_total counter",
	"lbd_reconcile_failing gauge",
	"lbd_reconcile_writes_total counter",
	"lbd_service_active gauge",
	"lbd_service_bytes_per_second gauge",
	"lbd_service_bytes_total counter",
	"lbd_service_connections_per_second gauge",
	"lbd_service_connections_total counter",
	"lbd_service_healthy gauge",
	"lbd_service_packets_per_second gauge",
	"lbd_service_packets_total counter",
	"lbd_service_quorum gauge",
	"lbd_service_sorry_active gauge",
	"lbd_service_up_weight gauge",
	"lbd_start_time_seconds gauge",
	"lbd_sync_connections gauge",
	"lbd_sync_daemon_running gauge",
	"lbd_sync_guard gauge",
	"lbd_sync_warm gauge",
	"lbd_vrrp_adverts_received_total counter",
	"lbd_vrrp_adverts_sent_total counter",
	"lbd_vrrp_dropped_packets_total counter",
	"lbd_vrrp_effective_priority gauge",
	"lbd_vrrp_last_transition_timestamp_seconds gauge",
	"lbd_vrrp_master gauge",
	"lbd_vrrp_priority gauge",
	"lbd_vrrp_state gauge",
	"lbd_vrrp_transitions_total counter",
}

func TestBGPMetrics(t *testing.T) {
	out := exposition(t, api.Status{BGP: &api.BGP{LocalASN: 65001, Maintenance: true,
		Sessions: []api.BGPSession{{Neighbor: "10.1.0.1", ASN: 65000, State: "established", PrefixesSent: 1}, {Neighbor: "10.1.1.1", State: "active"}},
		VIPs:     []api.BGPVIP{{VIP: "192.0.2.10", Announced: true}, {VIP: "192.0.2.20", Reason: "below quorum: dns"}},
	}})
	for _, want := range []string{
		"lbd_bgp_maintenance 1\n",
		`lbd_bgp_session_established{neighbor="10.1.0.1"} 1` + "\n",
		`lbd_bgp_session_established{neighbor="10.1.1.1"} 0` + "\n",
		`lbd_bgp_prefixes_sent{neighbor="10.1.0.1"} 1` + "\n",
		`lbd_bgp_vip_announced{vip="192.0.2.10"} 1` + "\n",
		`lbd_bgp_vip_announced{vip="192.0.2.20"} 0` + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(exposition(t, api.Status{}), "lbd_bgp_") {
		t.Error("lbd_bgp_ series without [bgp]")
	}
}
