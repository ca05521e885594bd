package api

import (
	"strings"
	"testing"
	"time"
)

func TestSummarizeNode(t *testing.T) {
	now := time.Now()
	st := &Status{Node: "lvs1", ConfigVersion: "v1", LastReconcile: now.Add(-time.Second),
		VRRPInstances: []VRRP{{Name: "a", VRID: 51, State: "master", EffectivePriority: 150}, {Name: "b", VRID: 52, State: "backup", EffectivePriority: 100}},
		Sync:          &Sync{Daemons: []SyncDaemon{{Role: "master", Running: true}, {Role: "backup", Error: "no such device"}}},
	}
	var n PairNode
	SummarizeNode(&n, st, now)
	if n.Name != "lvs1" || n.Role != "mixed" || len(n.VRRP) != 2 || n.VRRP[1] != (PairInstance{Name: "b", VRID: 52, State: "backup", Priority: 100}) ||
		!n.IPVSInSync || n.Sync != "master running, backup daemon failed: no such device, not warm" {
		t.Fatalf("%+v", n)
	}
	st.VRRPInstances = st.VRRPInstances[:1]
	st.ReconcileErr = "netlink: boom"
	SummarizeNode(&n, st, now)
	if n.Role != "master" || n.IPVSInSync || !strings.Contains(n.IPVS, "boom") || len(n.VRRP) != 1 {
		t.Fatalf("%+v", n)
	}
	SummarizeNode(&n, &Status{BGP: &BGP{Sessions: []BGPSession{{State: "established"}, {State: "active"}}}}, now)
	if n.Role != "active" || n.BGP != "1/2 sessions established" || n.Sync != "off" || n.IPVS != "not verified yet" {
		t.Fatalf("%+v", n)
	}
}

func TestHealthDisagreements(t *testing.T) {
	svc := func(h1, h2, h3 string) *Status {
		return &Status{Services: []Service{{Name: "web", RealServers: []RealServer{{Name: "a", Health: h1}, {Name: "b", Health: h2}, {Name: "c", Health: h3}}}}}
	}
	got := HealthDisagreements(svc("up", "up", "unknown"), svc("up", "down", "down"))
	if len(got) != 1 || got[0] != (HealthDisagreement{Service: "web", RealServer: "b", Local: "up", Peer: "down"}) {
		t.Fatalf("%+v", got)
	}
}
