//go:build !vm

package webui

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// In the kernel VM the repository's files are not there: this test runs
// on the host only.

// The Grafana dashboard in configs/ is built on the metric names this
// package exports: a renamed family breaks the test, not a user's panel.
func TestGrafanaDashboardNames(t *testing.T) {
	b, err := os.ReadFile("../configs/grafana-lbd.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	known := map[string]bool{}
	for _, l := range metricNamesList {
		known[strings.Fields(l)[0]] = true
	}
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, v := range x {
				if s, ok := v.(string); ok && k == "expr" {
					exprs = append(exprs, s)
				}
				walk(v)
			}
		case []any:
			for _, v := range x {
				walk(v)
			}
		}
	}
	walk(doc)
	if len(exprs) < 10 {
		t.Fatalf("%d queries in the dashboard", len(exprs))
	}
	name := regexp.MustCompile(`\blbd_[a-z0-9_]+`)
	for _, e := range exprs {
		for _, n := range name.FindAllString(e, -1) {
			if !known[n] {
				t.Errorf("dashboard query %q uses %s, which lbd does not export", e, n)
			}
		}
	}
}
