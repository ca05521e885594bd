package vrrp

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"lbd/internal/testutil"
)

// SetFault takes a master to Fault (VIPs released, priority 0 sent) and
// lifting it brings the instance back; OnOwnFault reports the instance's
// own causes only, not the forced one.
func TestSetFaultAndOwnFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(255)
		var mu sync.Mutex
		var own []string
		cfg.OnOwnFault = func(cause string) {
			mu.Lock()
			own = append(own, cause)
			mu.Unlock()
		}
		in, sys, _ := runInstance(t, cfg)
		testutil.Eventually(t, 5*time.Second, "master", func() bool { return in.Status().State == Master })
		drain(sys.tr)

		in.SetFault("group", "sync group g: web in fault")
		testutil.Eventually(t, 5*time.Second, "forced fault", func() bool { return in.Status().State == Fault })
		if st := in.Status(); sys.anyVIP() || st.Reason != "sync group g: web in fault" {
			t.Fatalf("forced fault: %q, VIP %v", st.Reason, sys.anyVIP())
		}
		zero := false
		for _, s := range drain(sys.tr) {
			zero = zero || s.a.Priority == 0
		}
		if !zero {
			t.Fatal("no priority-0 advert when forced out of Master")
		}
		in.SetFault("group", "")
		testutil.Eventually(t, 5*time.Second, "back to master", func() bool { return in.Status().State == Master })

		sys.mu.Lock()
		ch := sys.linkCh
		sys.mu.Unlock()
		ch <- linkEvent{"eth0", false}
		testutil.Eventually(t, 5*time.Second, "own fault", func() bool { return in.Status().State == Fault })
		ch <- linkEvent{"eth0", true}
		testutil.Eventually(t, 5*time.Second, "recovered", func() bool { return in.Status().State == Master })
		mu.Lock()
		defer mu.Unlock()
		if len(own) != 2 || own[0] != "interface eth0 down" || own[1] != "" {
			t.Fatalf("OnOwnFault saw %q, want the link fault and its end only", own)
		}
	})
}
