package webui

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"lbd/api"
)

const readToken = "grafana.cmVhZG9ubHlyZWFkb25seXJlYWRvbmx5cmVhZG9ubHk"

// TestTokenScopes: a read-only token may GET the API (events stream
// included) and /metrics and nothing else, with a 403 that says why; an
// admin token and the console session may change things; GET /config
// hides the read-only hashes too and a PUT keeps them.
func TestTokenScopes(t *testing.T) {
	h := newHarnessConfig(t, testConfig(t, `read_token_hashes = ["`+tokenHash(readToken)+`"]`+"\nmetrics_auth = true"))
	ro := "Bearer " + readToken
	for _, path := range []string{"/status", "/config", "/services", "/services/web", "/events"} {
		wantCode(t, h.apiCall("GET", path, ro, "", nil), http.StatusOK)
	}
	if code, _ := getMetrics(t, h, ro); code != http.StatusOK {
		t.Fatalf("metrics with a read-only token: %d", code)
	}
	req, _ := http.NewRequest(http.MethodGet, h.ts.URL+api.Prefix+"/events/stream", nil)
	req.Header.Set("Authorization", ro)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("event stream with a read-only token: %d", resp.StatusCode)
	}

	var doc api.ConfigDoc
	wantCode(t, h.apiCall("GET", "/config", ro, "", &doc), http.StatusOK)
	if strings.Contains(doc.TOML, "read_token_hashes") || strings.Contains(doc.TOML, tokenHash(readToken)) {
		t.Fatalf("GET /config sends the read-only token hashes:\n%s", doc.TOML)
	}
	put, _ := json.Marshal(api.ConfigDoc{Version: doc.Version, TOML: strings.Replace(doc.TOML, `name = "rs2"`, `name = "rs2-new"`, 1)})
	for _, c := range []struct{ method, path, body string }{
		{"PUT", "/config", string(put)},
		{"POST", "/reload", ""},
		{"POST", "/check", ""},
		{"POST", "/services/web/real/rs1/drain", ""},
		{"POST", "/services/web/real/rs1/weight", `{"weight": 3}`},
		{"POST", "/failover", ""},
	} {
		var e api.Error
		wantCode(t, h.apiCall(c.method, c.path, ro, c.body, &e), http.StatusForbidden)
		if !strings.Contains(e.Error, "read-only") || !strings.Contains(e.Error, "admin token") {
			t.Fatalf("%s %s with a read-only token: %+v", c.method, c.path, e)
		}
	}
	if h.d.applies != 0 || len(h.d.failovers) != 0 {
		t.Fatal("a read-only token changed something")
	}
	// The admin token may; the read-only hashes survive its PUT.
	wantCode(t, h.apiCall("PUT", "/config", "", string(put), nil), http.StatusOK)
	if !strings.Contains(h.d.fileBytes(t), tokenHash(readToken)) {
		t.Fatal("a PUT without read_token_hashes lost them")
	}
	wantCode(t, h.apiCall("GET", "/status", ro, "", nil), http.StatusOK)
	wantCode(t, h.apiCall("POST", "/services/web/real/rs1/drain", "", "", nil), http.StatusOK)
	// The console session is admin.
	c := h.login()
	req, _ = http.NewRequest(http.MethodPost, h.ts.URL+api.Prefix+"/services/web/real/rs1/enable", nil)
	req.Header.Set(csrfHeader, c.csrf)
	if r := c.do(req); r.StatusCode != http.StatusOK {
		t.Fatalf("session enable: %d %s", r.StatusCode, r.body)
	}
}
