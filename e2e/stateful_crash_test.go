//go:build vm

package e2e

import "testing"

// TestStatefulIPv6 is the master crash (cable cut, lbd killed) for an IPv6
// service: an IPv6 VIP (the VRRP instance advertises over IPv6), real
// servers with the VIP on lo (realserver.sh), the connections synced by
// the daemons over the IPv4 sync group of the same interface.
func TestStatefulIPv6(t *testing.T) {
	s := newStatefulLab(t, "dr", 2, true)
	s.up()
	t.Run("master crash", func(t *testing.T) { s.crash(t) })
}

// TestStatefulNAT is the master crash for a NAT service, one-armed: client,
// directors and real servers share one bridge, the real servers in
// 10.79.0.0/24 with the directors' second VIP, 10.79.0.1, as their default
// gateway, so their replies follow the master (whose IPVS rewrites them)
// across the takeover.
func TestStatefulNAT(t *testing.T) {
	s := newStatefulLab(t, "nat", 2, false)
	s.up()
	t.Run("master crash", func(t *testing.T) { s.crash(t) })
}
