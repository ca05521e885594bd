package webui

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

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
	if r.StatusCode == http.StatusOK && r.Header.Get("Content-Type") != "text/plain; version=0.0.4; charset=utf-8" {
		t.Fatalf("content type %q", r.Header.Get("Content-Type"))
	}
	return r.StatusCode, string(b)
}

var sampleRe = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*)\})? (-?[0-9.e+]+|NaN|[+-]Inf)$`)

// checkExposition checks the text format: every sample line parses, every
// family has HELP and TYPE once, before its samples, and its samples are
// contiguous.
func checkExposition(t *testing.T, text string) {
	t.Helper()
	typed := map[string]bool{}
	done := map[string]bool{}
	current := ""
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "# HELP "):
			name := strings.Fields(line)[2]
			if done[name] || typed[name] {
				t.Fatalf("line %d: family %s declared twice", i+1, name)
			}
			if current != "" {
				done[current] = true
			}
			current = name
		case strings.HasPrefix(line, "# TYPE "):
			f := strings.Fields(line)
			if f[2] != current || (f[3] != "gauge" && f[3] != "counter") {
				t.Fatalf("line %d: %q", i+1, line)
			}
			typed[current] = true
		default:
			m := sampleRe.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("line %d does not parse: %q", i+1, line)
			}
			if m[1] != current || !typed[current] {
				t.Fatalf("line %d: sample of %s outside its family (%s)", i+1, m[1], current)
			}
			if !strings.HasPrefix(m[1], "lbd_") {
				t.Fatalf("line %d: no lbd_ prefix", i+1)
			}
		}
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
		`lbd_build_info{version="test",node="lvs-test"} 1`,
		`lbd_vrrp_state{vrid="51",interface="eth0",state="master"} 1`,
		`lbd_vrrp_state{vrid="51",interface="eth0",state="backup"} 0`,
		`lbd_vrrp_transitions_total{vrid="51"} 2`,
		`lbd_vrrp_dropped_packets_total{vrid="51",reason="bad_ttl"} 3`,
		`lbd_vrrp_dropped_packets_total{vrid="51",reason="vrid_mismatch"} 1`,
		`lbd_vrrp_adverts_sent_total{vrid="51"} 3600`,
		`lbd_vrrp_priority{vrid="51"} 150`,
		`lbd_reconcile_writes_total 12`,
		`lbd_reconcile_errors_total 1`,
		`lbd_config_reloads_total 0`,
		`lbd_config_edits_total 0`,
		`lbd_service_healthy{service="web"} 1`,
		`lbd_service_connections_total{service="web"} 1000`,
		`lbd_service_bytes_per_second{service="web",direction="in"} 48000`,
		`lbd_real_server_health{service="web",real_server="rs1",state="down"} 1`,
		`lbd_real_server_health{service="web",real_server="rs1",state="up"} 0`,
		`lbd_real_server_up{service="web",real_server="rs2"} 1`,
		`lbd_real_server_weight{service="web",real_server="rs1"} 0`,
		`lbd_real_server_weight{service="web",real_server="rs2"} 2`,
		`lbd_real_server_active_connections{service="web",real_server="rs2"} 20`,
		`lbd_real_server_packets_total{service="web",real_server="rs1",direction="in"} 0`,
		`lbd_real_server_bytes_total{service="web",real_server="rs2",direction="out"} 0`,
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

func TestEscapeLabel(t *testing.T) {
	if got := escapeLabel("a\"b\\c\nd"); got != `a\"b\\c\nd` {
		t.Fatalf("escapeLabel = %q", got)
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

func TestBGPMetrics(t *testing.T) {
	out := string(writeMetrics(api.Status{BGP: &api.BGP{LocalASN: 65001, Maintenance: true,
		Sessions: []api.BGPSession{{Neighbor: "10.1.0.1", ASN: 65000, State: "established", PrefixesSent: 1}, {Neighbor: "10.1.1.1", State: "active"}},
		VIPs:     []api.BGPVIP{{VIP: "192.0.2.10", Announced: true}, {VIP: "192.0.2.20", Reason: "below quorum: dns"}},
	}}))
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
	if strings.Contains(string(writeMetrics(api.Status{})), "lbd_bgp_") {
		t.Error("lbd_bgp_ series without [bgp]")
	}
}
