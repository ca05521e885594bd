package director

import (
	"strings"
	"testing"

	"lbd/balancer"
	"lbd/config"
	"lbd/healthcheck"
)

const throughVIPConfig = `
[global]
forwarding = "dr"

[[virtual_server]]
name = "web"
vip = "192.0.2.10"
port = 80
quorum = 2
  [virtual_server.health_check]
  type = "http"
  [[virtual_server.real_server]]
  name = "rs1"
  address = "192.0.2.11"
  [[virtual_server.real_server]]
  name = "rs2"
  address = "192.0.2.12"
  [[virtual_server.real_server]]
  name = "rs3"
  address = "192.0.2.13"
  forwarding = "nat"

[[virtual_server]]
name = "tls"
vip = "192.0.2.10"
port = 443
  [virtual_server.health_check]
  type = "tcp"
  [[virtual_server.real_server]]
  name = "rs1"
  address = "192.0.2.11"
`

func TestThroughVIPChecks(t *testing.T) {
	cfg := parse(t, throughVIPConfig)
	specs := healthSpecs(cfg)
	marks := map[string]uint32{}
	for id, s := range specs {
		marks[id] = s.Mark
	}
	// dr real servers are checked through the VIP; one mark per server,
	// shared by its services; a nat one is checked plainly.
	if s := specs["web/rs1"]; s.ThroughVIP != "192.0.2.10" || !config.IsCheckMark(s.Mark) || s.Address != "192.0.2.11" {
		t.Errorf("web/rs1 = %+v", s)
	}
	if marks["web/rs1"] != marks["tls/rs1"] || marks["web/rs1"] == marks["web/rs2"] {
		t.Errorf("marks %v: want one per real server", marks)
	}
	if s := specs["web/rs3"]; s.Mark != 0 || s.ThroughVIP != "" {
		t.Errorf("nat real server checked through the VIP: %+v", s)
	}

	// Every check is down: the user services quiesce, the check services
	// keep their one real server at weight 1 (the check must reach it to
	// see it come back), and are not services the director reports.
	p, err := buildPlan(cfg, func(string) (healthcheck.State, bool) { return healthcheck.Down, true })
	if err != nil {
		t.Fatal(err)
	}
	var checks []balancer.VirtualService
	for _, s := range p.table.Services {
		if isCheckService(s.Key) {
			checks = append(checks, s)
		}
	}
	if len(checks) != 2 || len(p.services) != 2 {
		t.Fatalf("%d check services, %d services: %+v", len(checks), len(p.services), p.table.Services)
	}
	for _, s := range checks {
		if len(s.Destinations) != 1 || s.Destinations[0].Weight != 1 || s.Destinations[0].Forwarding != balancer.DR || s.Scheduler != "rr" {
			t.Errorf("check service %+v", s)
		}
		if want := marks["web/rs1"]; s.Destinations[0].Addr.String() == "192.0.2.11" && s.Fwmark != want {
			t.Errorf("rs1's service has mark %#x, its check %#x", s.Fwmark, want)
		}
	}
	if p.services["web"].healthy || p.services["web"].upWeight != 0 {
		t.Errorf("check services counted by quorum: %+v", p.services["web"])
	}

	// A mark stays when other real servers come and go.
	more := parse(t, strings.Replace(throughVIPConfig, "  [[virtual_server.real_server]]\n  name = \"rs3\"", "  [[virtual_server.real_server]]\n  name = \"rs4\"\n  address = \"192.0.2.14\"\n  [[virtual_server.real_server]]\n  name = \"rs3\"", 1))
	for id, s := range healthSpecs(more) {
		if m, ok := marks[id]; ok && s.Mark != m {
			t.Errorf("%s: mark %#x became %#x when rs4 joined", id, m, s.Mark)
		}
	}

	// through_vip = false: no marks, no check services.
	off := parse(t, strings.ReplaceAll(throughVIPConfig, "  [[virtual_server.real_server]]\n  name = \"rs1\"", "  through_vip = false\n  [[virtual_server.real_server]]\n  name = \"rs1\""))
	p, err = buildPlan(off, func(string) (healthcheck.State, bool) { return 0, false })
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range p.table.Services {
		if isCheckService(s.Key) {
			t.Errorf("check service %v without through-VIP checks", s.Key)
		}
	}
	for id, s := range healthSpecs(off) {
		if s.Mark != 0 {
			t.Errorf("%s still through the VIP", id)
		}
	}
}
