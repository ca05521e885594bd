package director

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"lbd/alert"
	"lbd/internal/testutil"
)

// TestAlertsReachTargets runs a director with a webhook target on a real
// HTTP server: a real server's failure, the quorum it costs and a refused
// reload arrive as events of their classes, signed; the API counts them.
func TestAlertsReachTargets(t *testing.T) {
	var mu sync.Mutex
	var got []alert.Event
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b alert.WebhookBody
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		mu.Lock()
		got = append(got, b.Events...)
		mu.Unlock()
	}))
	defer srv.Close()
	classes := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, e := range got {
			out = append(out, e.Class+" "+e.Subject)
		}
		return out
	}
	cfg := baseConfig + `
[[alert]]
name = "hook"
type = "webhook"
url = "` + srv.URL + `"
events = ["rs_down", "quorum_lost", "reload_refused"]
rate_limit = 0
`
	r := newRig(t, cfg)
	r.health.set("192.0.2.11", true)
	testutil.Eventually(t, 10*time.Second, "rs_down and quorum_lost delivered", func() bool {
		c := classes()
		return slices.Contains(c, "rs_down web/rs1") && slices.Contains(c, "quorum_lost web")
	})
	os.WriteFile(r.path, []byte(cfg+"\nbogus = 1\n"), 0o640)
	if err := r.d.Reload(context.Background()); err == nil {
		t.Fatal("broken reload accepted")
	}
	testutil.Eventually(t, 10*time.Second, "reload_refused delivered", func() bool {
		return slices.Contains(classes(), "reload_refused "+r.path)
	})
	for _, c := range classes() {
		if c == "rs_up web/rs1" || c == "quorum_ok web" {
			t.Errorf("%q delivered to a target that did not ask for it", c)
		}
	}
	st := r.d.Status().Alerts
	if len(st) != 1 || st[0].Name != "hook" || st[0].Type != "webhook" || st[0].Sent < 3 || st[0].Failed != 0 {
		t.Errorf("alert status %+v", st)
	}
	// A reload that keeps the targets keeps the dispatcher and its counters.
	os.WriteFile(r.path, []byte(cfg), 0o640)
	if err := r.d.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st2 := r.d.Status().Alerts; len(st2) != 1 || st2[0].Sent < st[0].Sent {
		t.Errorf("alert status after a reload %+v, want the counters kept", st2)
	}
}
