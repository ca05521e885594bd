package vrrp

import "testing"

// A zero GARPCount is a setting (lbd's garp_count = 0: no burst), not a
// value to replace with a default: the director hands it over resolved.
func TestZeroGARPCountIsKept(t *testing.T) {
	cfg := testConfig(100)
	cfg.GARPCount = 0
	p, err := validate(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p.garpCount != 0 || cfg.GARPCount != 0 {
		t.Fatalf("garp count %d (config %d), want 0 as given", p.garpCount, cfg.GARPCount)
	}
}
