package main

import (
	"strings"
	"testing"
	"time"

	"lbd/api"
)

func TestRenderBGP(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var b strings.Builder
	err := renderBGP(&b, &api.BGP{LocalASN: 65001, Maintenance: true,
		Sessions: []api.BGPSession{{Neighbor: "10.1.0.1", ASN: 65000, State: "established", Since: now.Add(-90 * time.Second), PrefixesSent: 2},
			{Neighbor: "10.1.1.1", ASN: 65000, State: "active", LastError: "connection refused"}},
		VIPs: []api.BGPVIP{{VIP: "192.0.2.10", Announced: true}, {VIP: "192.0.2.20", Reason: "below quorum: dns"}},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"BGP AS 65001: MAINTENANCE (every VIP withdrawn)",
		"10.1.0.1  65000  established  1m30s  2     ",
		"10.1.1.1  65000  active       -      0     connection refused",
		"192.0.2.10  yes",
		"192.0.2.20  no         below quorum: dns",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
