package main

import (
	"strings"
	"testing"
	"time"

	"lbd/api"
)

// Several VRRP instances: status shows each with its name, role and sync
// group; failover resigns the one named.
func TestStatusAndFailoverInstances(t *testing.T) {
	f := newFake(t)
	first := *f.status.VRRP
	first.Name, first.SyncGroup = "web", "front"
	second := first
	second.Name, second.VRID, second.State, second.VIPs, second.MasterAddr = "mail", 52, "backup", []string{"192.0.2.11"}, "192.0.2.3"
	f.status.VRRPInstances = []api.VRRP{first, second}
	r := lbctl(t, runOpts{}, "--url", f.URL(), "status")
	r.wantCode(t, 0)
	contains(t, "status", r.stdout,
		"role web   MASTER since",
		"role mail  BACKUP since",
		"vrid 51 v3 on eth0, priority 100, vips 192.0.2.10",
		"vrid 52 v3 on eth0, priority 100, vips 192.0.2.11, master 192.0.2.3, sync group front",
	)
	if strings.Count(r.stdout, "vrid 51") != 1 {
		t.Errorf("instance shown twice:\n%s", r.stdout)
	}

	r = lbctl(t, runOpts{}, "--url", f.URL(), "failover", "mail", "--holdoff", "1m")
	r.wantCode(t, 0)
	contains(t, "failover", r.stdout, "mail: vrid 52 on eth0: now BACKUP; not preempting for 1m0s")
	if f.failoverInstance != "mail" || f.failoverHoldoff != time.Minute {
		t.Fatalf("failover asked for %q %v", f.failoverInstance, f.failoverHoldoff)
	}
}
