package webui

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"lbd/api"
	"lbd/config"
)

// TestAPIConfigShared: the receiving side of a save on both keeps this
// director's per-node settings, takes the shared ones, validates like any
// edit, and takes an admin token only.
func TestAPIConfigShared(t *testing.T) {
	h := newHarness(t)
	running, _ := h.d.Config()
	other := running.Clone()
	other.Global.NodeName = "lvs-other"
	other.VRRP.Priority = 99
	other.Console.PasswordHash, other.Console.TokenHashes = "", nil
	w := 7
	other.VirtualServers[0].RealServers[0].Weight = &w
	body := func(c *config.Config) string {
		b, err := config.Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		j, _ := json.Marshal(api.SharedConfig{From: "lvs-other", TOML: string(b)})
		return string(j)
	}

	// A console session may not call it, even with its CSRF token.
	c := h.login()
	req, _ := http.NewRequest("POST", h.ts.URL+"/api/v1/config/shared", strings.NewReader(body(other)))
	req.Header.Set(csrfHeader, c.csrf)
	req.Header.Set("Content-Type", "application/json")
	if r := c.do(req); r.StatusCode != http.StatusForbidden {
		t.Fatalf("session POST /config/shared: %d %s", r.StatusCode, r.body)
	}

	var e api.Error
	bad := other.Clone()
	bad.VirtualServers[0].Scheduler = "nope"
	wantCode(t, h.apiCall("POST", "/config/shared", "", body(bad), &e), http.StatusUnprocessableEntity)
	if len(e.Problems) == 0 || !strings.Contains(e.Problems[0].Message, "nope") {
		t.Fatalf("an invalid shared config: %+v", e)
	}

	wantCode(t, h.apiCall("POST", "/config/shared", "", body(other), nil), http.StatusOK)
	got, _ := h.d.Config()
	if got.Global.NodeName != "lvs-test" || got.VRRP.Priority != 150 || got.Console.PasswordHash == "" || len(got.Console.TokenHashes) != 1 {
		t.Fatalf("per-node settings not kept: %+v %+v %+v", got.Global, *got.VRRP, got.Console)
	}
	if *got.VirtualServers[0].RealServers[0].Weight != 7 {
		t.Fatal("the shared weight was not taken")
	}
	if !strings.Contains(h.d.lastSrc, "save on both from lvs-other") {
		t.Fatalf("source %q", h.d.lastSrc)
	}

	// Without a peer-aware director there is no pair.
	wantCode(t, h.apiCall("GET", "/pair", "", "", &e), http.StatusNotFound)
}
