package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"lbd/api"
	"lbd/balancer"
	"lbd/config"
	"lbd/director"
	"lbd/internal/testutil"
	"lbd/webui"
)

// These tests run lbctl against the real console (webui) and the real
// director, with only the kernel's IPVS table replaced by balancer.Fake, so
// the API contract is checked on both ends. The interface named in the
// config does not exist: nothing on this host is touched.

const itToken = "ops.0123456789abcdef"

func itConfig(t *testing.T) string {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(itToken))
	return fmt.Sprintf(`[global]
node_name = "it1"
interface = "lbctlnone0"

[console]
password_hash = %q
token_hashes = [%q]

[[virtual_server]]
name = "web"
vip = "192.0.2.10"
port = 80

[virtual_server.health_check]
type = "none"

[[virtual_server.real_server]]
name = "rs1"
address = "10.0.0.1"
weight = 2

[[virtual_server.real_server]]
name = "rs2"
address = "10.0.0.2"
`, string(hash), hex.EncodeToString(sum[:]))
}

type itLab struct {
	url    string
	path   string
	kernel *balancer.Fake
}

func newITLab(t *testing.T) *itLab {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "lbd.toml")
	if err := os.WriteFile(path, []byte(itConfig(t)), 0o640); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	kernel := balancer.NewFake()
	d, err := director.New(director.Options{
		Config:     cfg,
		Logger:     slog.New(slog.DiscardHandler),
		Version:    "it",
		OpenKernel: func() (balancer.Kernel, error) { return kernel, nil },
		Sysctl:     balancer.ProcSys{Root: t.TempDir()},
	})
	if err != nil {
		t.Fatalf("director: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	ui, err := webui.New(d, webui.Options{Version: "it"})
	if err != nil {
		t.Fatalf("webui: %v", err)
	}
	srv := httptest.NewServer(ui.Handler())
	t.Cleanup(srv.Close)
	return &itLab{url: srv.URL, path: path, kernel: kernel}
}

func (l *itLab) lbctl(t *testing.T, args ...string) result {
	t.Helper()
	return lbctl(t, runOpts{env: map[string]string{"LBCTL_TOKEN": itToken}}, append([]string{"--url", l.url}, args...)...)
}

// kernelWeight is rs's weight in the (fake) IPVS table, -1 when absent.
func (l *itLab) kernelWeight(addr string) int {
	for _, s := range l.kernel.Table().Services {
		for _, d := range s.Destinations {
			if d.Addr.String() == addr {
				return d.Weight
			}
		}
	}
	return -1
}

func (l *itLab) fileRS(t *testing.T, name string) config.RealServer {
	t.Helper()
	cfg, err := config.Load(l.path)
	if err != nil {
		t.Fatalf("reading back %s: %v", l.path, err)
	}
	for _, rs := range cfg.VirtualServers[0].RealServers {
		if rs.Name == name {
			return rs
		}
	}
	t.Fatalf("%s not in %s", name, l.path)
	return config.RealServer{}
}

func TestAgainstConsole(t *testing.T) {
	l := newITLab(t)
	testutil.Eventually(t, 5*time.Second, "weight 2 on 10.0.0.1", func() bool { return l.kernelWeight("10.0.0.1") == 2 })

	r := l.lbctl(t, "status")
	r.wantCode(t, 0)
	contains(t, "status", r.stdout, "it1 (lbd it", "standalone", "192.0.2.10:80/tcp", "  -> rs1", "  -> rs2")

	r = l.lbctl(t, "-o", "json", "show", "web", "rs1")
	r.wantCode(t, 0)
	var rs api.RealServer
	if err := json.Unmarshal([]byte(r.stdout), &rs); err != nil || rs.Address != "10.0.0.1" || rs.ConfiguredWeight != 2 {
		t.Fatalf("show json: %v %+v", err, rs)
	}

	// Unknown names: 404 with the console's suggestion, said once.
	r = l.lbctl(t, "show", "wep")
	r.wantCode(t, exitNotFound)
	contains(t, "stderr", r.stderr, `no virtual server "wep" (did you mean "web"?)`)
	if strings.Count(r.stderr, "did you mean") != 1 {
		t.Errorf("suggestion repeated: %s", r.stderr)
	}
	r = l.lbctl(t, "drain", "web", "rs3")
	r.wantCode(t, exitNotFound)
	contains(t, "stderr", r.stderr, `did you mean "rs1"?`)

	// Auth: a wrong token and no token.
	r = lbctl(t, runOpts{}, "--url", l.url, "--token", "ops.wrong", "status")
	r.wantCode(t, exitAuth)
	contains(t, "stderr", r.stderr, "not authorised (check --token / LBCTL_TOKEN)")
	r = lbctl(t, runOpts{}, "--url", l.url, "status")
	r.wantCode(t, exitAuth)
	contains(t, "stderr", r.stderr, "no token given")

	// drain --wait: the fake kernel has no connections, so it ends at once;
	// the drain reaches IPVS and the file.
	r = l.lbctl(t, "drain", "web", "rs1", "--wait", "--poll", "50ms", "--timeout", "10s")
	r.wantCode(t, 0)
	contains(t, "drain", r.stdout, "web/rs1: 0 active connections, drained after")
	testutil.Eventually(t, 5*time.Second, "weight 0 on 10.0.0.1", func() bool { return l.kernelWeight("10.0.0.1") == 0 })
	if !l.fileRS(t, "rs1").Drained {
		t.Error("drain not written to the config file")
	}
	r = l.lbctl(t, "list", "web")
	r.wantCode(t, 0)
	contains(t, "list web", r.stdout, "drained")

	r = l.lbctl(t, "weight", "web", "rs2", "5")
	r.wantCode(t, 0)
	if w := l.fileRS(t, "rs2").Weight; w == nil || *w != 5 {
		t.Errorf("weight in file: %v", w)
	}
	testutil.Eventually(t, 5*time.Second, "weight 5 on 10.0.0.2", func() bool { return l.kernelWeight("10.0.0.2") == 5 })

	r = l.lbctl(t, "enable", "web", "rs1")
	r.wantCode(t, 0)
	if l.fileRS(t, "rs1").Drained {
		t.Error("enable not written to the config file")
	}
	testutil.Eventually(t, 5*time.Second, "weight 2 on 10.0.0.1", func() bool { return l.kernelWeight("10.0.0.1") == 2 })

	// The event log saw the operator's changes.
	r = l.lbctl(t, "-o", "json", "events")
	r.wantCode(t, 0)
	var evs []api.Event
	if err := json.Unmarshal([]byte(r.stdout), &evs); err != nil || len(evs) == 0 {
		t.Fatalf("events: %v %s", err, r.stdout)
	}
	if !strings.Contains(r.stdout, "rs1") {
		t.Errorf("no event about rs1:\n%s", r.stdout)
	}

	// events --follow over the console's SSE stream picks up a new change.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &testutil.Buffer{}
	done := make(chan result, 1)
	go func() {
		done <- lbctl(t, runOpts{ctx: ctx, stdout: out, env: map[string]string{"LBCTL_TOKEN": itToken}},
			"--url", l.url, "-o", "json", "events", "-f", "--since", fmt.Sprint(evs[len(evs)-1].Seq))
	}()
	// No need to wait for the stream to connect: whether the drain comes
	// before or after, the stream replays what came after --since.
	l.lbctl(t, "drain", "web", "rs2").wantCode(t, 0)
	testutil.WaitOutput(t, 5*time.Second, out, "rs2")
	cancel()
	(<-done).wantCode(t, 0)

	// reload of a broken file is refused with FILE:LINE: problems, the same
	// lines `lbctl check` (and so `lbd -t`) prints for it.
	data, _ := os.ReadFile(l.path)
	broken := strings.Replace(string(data), `address = "10.0.0.2"`, `address = "10.0.0.300"`, 1)
	if broken == string(data) {
		t.Fatalf("could not break the config:\n%s", data)
	}
	if err := os.WriteFile(l.path, []byte(broken), 0o640); err != nil {
		t.Fatal(err)
	}
	r = l.lbctl(t, "reload")
	r.wantCode(t, exitError)
	contains(t, "reload", r.stderr, "reload refused, lbd keeps the running configuration", l.path+":", "10.0.0.300")
	c := lbctl(t, runOpts{}, "check", l.path)
	c.wantCode(t, exitError)
	reloadProblems := strings.SplitN(r.stderr, "\n", 2)[1]
	if reloadProblems != c.stderr {
		t.Errorf("reload and check disagree:\nreload:\n%s\ncheck:\n%s", reloadProblems, c.stderr)
	}
	if err := os.WriteFile(l.path, data, 0o640); err != nil {
		t.Fatal(err)
	}
	r = l.lbctl(t, "reload")
	r.wantCode(t, 0)
	contains(t, "reload", r.stdout, "reloaded "+l.path)

	// failover without [vrrp] is refused by the director with a reason.
	r = l.lbctl(t, "failover")
	r.wantCode(t, exitError)
	if len(strings.TrimSpace(r.stderr)) < len("lbctl: x") {
		t.Errorf("failover refusal without a reason: %q", r.stderr)
	}
}
