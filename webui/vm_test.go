//go:build vm

package webui

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lbd/config"
	"lbd/director"
	"lbd/internal/vmtest"
)

// TestConsoleEditsRealIPVS runs the real director on the VM's kernel and
// drives it through the console's forms: each edit must show up in the
// kernel's IPVS table, read back over netlink.
func TestConsoleEditsRealIPVS(t *testing.T) {
	vmtest.Require(t)
	path := filepath.Join(t.TempDir(), "lbd.toml")
	toml := `[global]
node_name = "vm-director"
remove_grace = "0s"
resync_interval = "1s"

[console]
password_hash = "` + passwordHash(t) + `"

[[virtual_server]]
name = "web"
vip = "10.99.0.10"
port = 80
scheduler = "rr"

[[virtual_server.real_server]]
name = "rs1"
address = "10.99.1.1"

[[virtual_server.real_server]]
name = "rs2"
address = "10.99.1.2"
weight = 2
`
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	d, err := director.New(director.Options{Config: cfg, Version: "vm-test"})
	if err != nil {
		t.Fatalf("director: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("director did not stop")
		}
	})

	srv, err := New(d, Options{Version: "vm-test"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	c := loginAt(t, ts.URL)
	ipvs := vmtest.IPVS(t, nil)

	waitRules := func(what, want string) {
		t.Helper()
		vmtest.Eventually(t, 30*time.Second, 200*time.Millisecond, what, func() (bool, string) {
			got := vmtest.MustReadTable(t, ipvs).Rules()
			return got == want, fmt.Sprintf("table:\n%s\nwant:\n%s", got, want)
		})
	}
	waitRules("initial table", "TCP 10.99.0.10:80 rr\n  -> 10.99.1.1:80 Route weight=1\n  -> 10.99.1.2:80 Route weight=2\n")

	post := func(path string, kv ...string) {
		t.Helper()
		r := c.post(path, with(c.formOf("/vs/web"), kv...))
		if r.StatusCode != http.StatusSeeOther {
			t.Fatalf("POST %s: %d\n%s", path, r.StatusCode, r.body)
		}
	}

	post("/vs/web/rs/rs2/drain")
	waitRules("rs2 drained", "TCP 10.99.0.10:80 rr\n  -> 10.99.1.1:80 Route weight=1\n  -> 10.99.1.2:80 Route weight=0\n")

	post("/vs/web/rs/rs1/weight", "weight", "5")
	post("/vs/web/rs/rs2/undrain")
	waitRules("weights", "TCP 10.99.0.10:80 rr\n  -> 10.99.1.1:80 Route weight=5\n  -> 10.99.1.2:80 Route weight=2\n")

	// A new service with a NAT real server on another port.
	r := c.post("/services/add", with(c.formOf("/services/add"), "name", "api", "vip", "10.99.0.10", "port", "8443",
		"protocol", "tcp", "scheduler", "wlc", "quorum", "1", "on_failure", "quiesce", "active", "on", "forwarding", "nat"))
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("add service: %d\n%s", r.StatusCode, r.body)
	}
	r = c.post("/vs/api/add-real", with(c.formOf("/vs/api/add-real"), "name", "a1", "address", "10.99.1.3", "port", "443", "weight", "1", "active", "on"))
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("add real server: %d\n%s", r.StatusCode, r.body)
	}
	waitRules("service added", "TCP 10.99.0.10:80 rr\n  -> 10.99.1.1:80 Route weight=5\n  -> 10.99.1.2:80 Route weight=2\n"+
		"TCP 10.99.0.10:8443 wlc\n  -> 10.99.1.3:443 Masq weight=1\n")

	// An invalid edit changes neither the kernel nor the file.
	before, _ := os.ReadFile(path)
	r = c.post("/vs/web/rs/rs1/weight", with(c.formOf("/vs/web"), "weight", "99999"))
	if r.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("invalid weight: %d", r.StatusCode)
	}
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Fatal("an invalid edit changed the file")
	}

	post("/vs/web/deactivate")
	waitRules("web deactivated", "TCP 10.99.0.10:8443 wlc\n  -> 10.99.1.3:443 Masq weight=1\n")

	file, _ := os.ReadFile(path)
	for _, want := range []string{`name = "api"`, "weight = 5", "active = false"} {
		if !strings.Contains(string(file), want) {
			t.Errorf("file lacks %q:\n%s", want, file)
		}
	}
}
