package webui

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"lbd/api"
)

// instancesConfig is testConfig with two [[vrrp_instance]] in a sync group
// instead of [vrrp].
func instancesConfig(t *testing.T) string {
	return strings.Replace(testConfig(t, ""), `[vrrp]
vrid = 51
priority = 150
unicast_peers = ["192.0.2.3"]
`, `[[vrrp_instance]]
name = "web"
vrid = 51
priority = 150
vips = ["192.0.2.10"]

[[vrrp_instance]]
name = "spare"
vrid = 52
priority = 100
vips = ["192.0.2.20"]

[[vrrp_sync_group]]
name = "g"
instances = ["web", "spare"]
`, 1)
}

// The redundancy and status screens list every instance; an instance is
// edited, added and deleted through the console's one edit path.
func TestRedundancyInstances(t *testing.T) {
	h := newHarnessConfig(t, instancesConfig(t))
	c := h.login()
	for _, path := range []string{"/redundancy", "/status"} {
		r := c.get(path)
		mustStatus(t, r, http.StatusOK)
		for _, want := range []string{`id="vrrp-instances"`, `id="vrrp-instance-web"`, `id="vrrp-instance-spare"`, "192.0.2.20", `name="instance" value="web"`} {
			if !strings.Contains(r.body, want) {
				t.Errorf("%s lacks %q", path, want)
			}
		}
	}
	if r := c.get("/redundancy"); strings.Contains(r.body, `id="vrrp-form"`) {
		t.Error("the [vrrp] form is shown beside [[vrrp_instance]]")
	}

	mustContain(t, c.get("/redundancy/instance/spare").body, `value="spare"`, `value="52"`, "192.0.2.20")
	v := c.formOf("/redundancy/instance/spare")
	r := c.post("/redundancy/instance/spare", with(v, "name", "spare", "vrid", "52", "priority", "120",
		"advert_interval", "500ms", "vips", "192.0.2.20", "preempt", "on"))
	mustStatus(t, r, http.StatusSeeOther)
	cfg, _ := h.d.Config()
	if p := cfg.VRRPInstances[1]; p.Priority != 120 || p.AdvertInterval.String() != "500ms" || cfg.VRRPInstances[0].Priority != 150 {
		t.Fatalf("after edit: %+v", cfg.VRRPInstances)
	}

	// A VIP already owned by another instance is refused next to its field.
	mustContain(t, c.get("/redundancy/add-instance").body, `value="53"`) // the next free VRID
	v = c.formOf("/redundancy/add-instance")
	v = with(v, "vrid", "53", "priority", "100", "preempt", "on")
	r = c.post("/redundancy/add-instance", with(v, "name", "mail", "vips", "192.0.2.20"))
	mustStatus(t, r, http.StatusUnprocessableEntity)
	if !strings.Contains(r.body, "already owned by instance") {
		t.Fatalf("shared VIP not refused:\n%s", r.body)
	}
	r = c.post("/redundancy/add-instance", with(v, "name", "mail", "vips", "192.0.2.30"))
	mustStatus(t, r, http.StatusSeeOther)
	cfg, _ = h.d.Config()
	if len(cfg.VRRPInstances) != 3 || cfg.VRRPInstances[2].Name != "mail" || cfg.VRRPInstances[2].VRID != 53 {
		t.Fatalf("after add: %+v", cfg.VRRPInstances)
	}

	// Deleting an instance takes it out of its sync group.
	v = c.formOf("/redundancy/instance/spare")
	r = c.post("/redundancy/instance/spare/delete", with(v, "back", "/redundancy"))
	mustStatus(t, r, http.StatusSeeOther)
	cfg, _ = h.d.Config()
	if len(cfg.VRRPInstances) != 2 || cfg.VRRPInstances[1].Name != "mail" || len(cfg.VRRPSyncGroups) != 1 ||
		strings.Join(cfg.VRRPSyncGroups[0].Instances, ",") != "web" {
		t.Fatalf("after delete: %+v %+v", cfg.VRRPInstances, cfg.VRRPSyncGroups)
	}
	if r := c.get("/redundancy/instance/nope"); r.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown instance: %d", r.StatusCode)
	}
}

// Every instance gets its own series, labelled vrrp_instance (Prometheus
// keeps "instance" for the target); an unnamed [vrrp] keeps its labels.
func TestVRRPMetricsPerInstance(t *testing.T) {
	text := exposition(t, api.Status{VRRPInstances: []api.VRRP{
		{Name: "web", VRID: 51, Interface: "eth0", State: "master", Priority: 150, EffectivePriority: 150, Counters: map[string]int{"transitions": 2}},
		{Name: "mail", VRID: 52, Interface: "eth0", State: "backup", Priority: 100, EffectivePriority: 100},
	}})
	for _, want := range []string{
		`lbd_vrrp_state{interface="eth0",state="master",vrid="51",vrrp_instance="web"} 1`,
		`lbd_vrrp_state{interface="eth0",state="backup",vrid="52",vrrp_instance="mail"} 1`,
		`lbd_vrrp_master{vrid="51",vrrp_instance="web"} 1`,
		`lbd_vrrp_master{vrid="52",vrrp_instance="mail"} 0`,
		`lbd_vrrp_priority{vrid="52",vrrp_instance="mail"} 100`,
		`lbd_vrrp_transitions_total{vrid="51",vrrp_instance="web"} 2`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("metrics lack %s:\n%s", want, text)
		}
	}
	text = exposition(t, api.Status{VRRP: &api.VRRP{VRID: 51, Interface: "eth0", State: "master"}})
	if !strings.Contains(text, `lbd_vrrp_master{vrid="51"} 1`+"\n") {
		t.Errorf("unnamed [vrrp] metrics:\n%s", text)
	}
}

// exposition is the text /metrics would serve for st.
func exposition(t *testing.T, st api.Status) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(statusCollector{status: func() api.Status { return st }})
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("metrics: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}
