//go:build vm

package e2e

import (
	"net/netip"
	"regexp"
	"strconv"
	"testing"

	"github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"

	"lbd/internal/netlab"
	"lbd/internal/vmtest"
)

// schedulers are the IPVS schedulers the VM image loads (ip_vs_twos only
// exists from kernel 6.6 on, so it is not required here).
var schedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh"}

// TestHarnessIPVS proves the VM harness itself: the kernel has IPVS, every
// scheduler module is loaded (the guest has no modprobe to load one on
// demand), and a service created over netlink with cloudflare/ipvs is what
// ipvsadm reads back.
func TestHarnessIPVS(t *testing.T) {
	vmtest.Require(t)
	ns := netlab.NewNS(t, "harness")
	c := vmtest.IPVS(t, ns)

	vip := netip.MustParseAddr("192.0.2.10")
	for i, sched := range schedulers {
		svc := ipvs.Service{
			Address: vip, Port: uint16(8000 + i), Family: ipvs.INET, Protocol: ipvs.TCP,
			Netmask: netmask.MaskFrom(32, 32), Scheduler: sched,
		}
		if err := c.CreateService(svc); err != nil {
			t.Fatalf("create service with scheduler %s: %v", sched, err)
		}
		dst := ipvs.Destination{Address: netip.MustParseAddr("192.0.2.20"), Port: 80, Family: ipvs.INET, FwdMethod: ipvs.DirectRoute, Weight: uint32(i + 1)}
		if err := c.CreateDestination(svc, dst); err != nil {
			t.Fatalf("create destination under %s: %v", sched, err)
		}
	}

	tab := vmtest.MustReadTable(t, c)
	if len(tab) != len(schedulers) {
		t.Fatalf("read back %d services, want %d:\n%s", len(tab), len(schedulers), tab.Rules())
	}

	out := ns.Exec("ipvsadm", "-Ln")
	for i, sched := range schedulers {
		svcLine := regexp.MustCompile(`(?m)^TCP\s+192\.0\.2\.10:` + strconv.Itoa(8000+i) + `\s+` + sched + `\b`)
		if !svcLine.MatchString(out) {
			t.Errorf("ipvsadm -Ln lacks the %s service on port %d:\n%s", sched, 8000+i, out)
		}
	}
	dstLine := regexp.MustCompile(`(?m)^\s+->\s+192\.0\.2\.20:80\s+Route\s+13\s+0\s+0\s*$`)
	if !dstLine.MatchString(out) {
		t.Errorf("ipvsadm -Ln lacks the destination with weight 13:\n%s", out)
	}

	// The table belongs to the namespace: the VM's own stays empty.
	if root := vmtest.MustReadTable(t, vmtest.IPVS(t, nil)); len(root) != 0 {
		t.Errorf("services leaked into the root namespace:\n%s", root.Rules())
	}
}
