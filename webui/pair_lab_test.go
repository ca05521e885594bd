//go:build linux && !vm

package webui

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"

	"lbd/api"
	"lbd/config"
	"lbd/internal/apiclient"
	"lbd/internal/netlab"
	"lbd/internal/testutil"
)

// pairLBD is one real lbd daemon (built with -tags fakeipvs: the host
// kernel has no IPVS) serving its console on a loopback port.
type pairLBD struct {
	t          *testing.T
	name, conf string
	url, token string
	cmd        *exec.Cmd
	out        *testutil.Buffer
	done       chan struct{}
	client     *apiclient.Client
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// pairConfig is a director's file: rs2's exec check fails where the
// daemon's environment has PAIR_DOWN set to its address, so the two
// directors disagree on its health.
func pairConfig(name string, port int, hash []byte) string {
	return fmt.Sprintf(`[global]
node_name = %q
listen = "127.0.0.1:%d"

[console]
password_hash = %q

[[virtual_server]]
name = "web"
vip = "192.0.2.80"
port = 80

[virtual_server.health_check]
type = "exec"
command = ["/bin/sh", "-c", "test \"$PAIR_DOWN\" != %%h"]
interval = "300ms"
timeout = "250ms"
rise = 1
fall = 1

[[virtual_server.real_server]]
name = "rs1"
address = "10.0.1.1"

[[virtual_server.real_server]]
name = "rs2"
address = "10.0.1.2"
`, name, port, hash)
}

func (d *pairLBD) start(bin string, env ...string) {
	t := d.t
	d.cmd = exec.Command(bin, "-config", d.conf, "-state", filepath.Join(t.TempDir(), "state.json"))
	d.cmd.Env = append(os.Environ(), env...)
	d.out = &testutil.Buffer{}
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.done = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { _ = c.Wait(); close(done) }(d.cmd, d.done)
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			t.Logf("lbd %s said:\n%s", d.name, d.out.String())
		}
	})
}

func (d *pairLBD) stop() {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(15 * time.Second):
		d.t.Errorf("lbd %s did not stop on SIGTERM", d.name)
		_ = d.cmd.Process.Kill()
		<-d.done
	}
	d.cmd = nil
}

func (d *pairLBD) pair(t *testing.T) *api.Pair {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := d.client.Pair(ctx)
	if err != nil {
		t.Fatalf("GET /pair on %s: %v", d.name, err)
	}
	return p
}

func (d *pairLBD) config(t *testing.T) (*config.Config, string) {
	t.Helper()
	doc, err := d.client.Config(context.Background())
	if err != nil {
		t.Fatalf("GET /config on %s: %v", d.name, err)
	}
	c, err := config.DecodeUnvalidated(d.name, []byte(doc.TOML))
	if err != nil {
		t.Fatal(err)
	}
	return c, doc.Version
}

func driftKeys(p *api.Pair) []string {
	var out []string
	for _, d := range p.Drift {
		out = append(out, d.Key+"="+d.Local+"/"+d.Peer)
	}
	return out
}

// TestPairLab runs two real lbd daemons that name each other as [peer]
// and proves the pair promises end to end: both directors in GET /pair,
// the console and lbctl status; drift named by key after a one-sided
// change; save on both (API, lbctl and the console's button, in headless
// Chromium) making the shared settings equal while the peer keeps its
// per-node ones; and "not applied on lvs2" with the reason when the peer's
// validation refuses and when it is down.
func TestPairLab(t *testing.T) {
	if os.Getuid() != 0 && os.Getenv("CI") != "" {
		t.Fatal("the pair lab runs as root in CI")
	}
	bin := netlab.BuildBinaryTags(t, "lbd/cmd/lbd", "fakeipvs")
	lbctl := netlab.BuildBinary(t, "lbd/cmd/lbctl")
	hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	lvs1 := &pairLBD{t: t, name: "lvs1", conf: filepath.Join(dir, "lvs1.toml")}
	lvs2 := &pairLBD{t: t, name: "lvs2", conf: filepath.Join(dir, "lvs2.toml")}
	for _, d := range []*pairLBD{lvs1, lvs2} {
		port := freePort(t)
		d.url = fmt.Sprintf("http://127.0.0.1:%d", port)
		if err := os.WriteFile(d.conf, []byte(pairConfig(d.name, port, hash)), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "token", "-config", d.conf, "-name", "pair").Output()
		if err != nil {
			t.Fatalf("lbd token: %v", err)
		}
		d.token = strings.Fields(string(out))[0]
		if d.client, err = apiclient.New(d.url, d.token, apiclient.WithTimeout(20*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	// lvs2 names lvs1 through a token file, lvs1 names lvs2 inline.
	tokFile := filepath.Join(dir, "lvs1.token")
	if err := os.WriteFile(tokFile, []byte(lvs1.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	appendFile(t, lvs1.conf, fmt.Sprintf("\n[peer]\nname = \"lvs2\"\nurl = %q\ntoken = %q\n", lvs2.url, lvs2.token))
	appendFile(t, lvs2.conf, fmt.Sprintf("\n[peer]\nname = \"lvs1\"\nurl = %q\ntoken_file = %q\n", lvs1.url, tokFile))

	// A check program found in lvs1's PATH only: lvs2's validation
	// refuses a health check that runs it.
	binDir := filepath.Join(dir, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(binDir, "pair-check"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	lvs1.start(bin, "PATH="+binDir+":"+os.Getenv("PATH"))
	lvs2.start(bin, "PAIR_DOWN=10.0.1.2")

	// Both directors, no drift, and the health disagreement on rs2.
	var p *api.Pair
	testutil.Eventually(t, 30*time.Second, "lvs1 shows lvs2 reachable, configurations agreeing, rs2's health disagreed on", func() bool {
		p, err = lvs1.client.Pair(context.Background())
		return err == nil && p.Peer.Reachable && p.DriftKnown && len(p.Drift) == 0 && len(p.HealthDisagreements) == 1 &&
			p.Local.IPVSInSync && p.Peer.IPVSInSync
	})
	if p.Local.Name != "lvs1" || p.Peer.Name != "lvs2" || p.Peer.URL != lvs2.url || p.Local.Role != "standalone" || p.Peer.Role != "standalone" {
		t.Fatalf("pair nodes: %+v / %+v", p.Local, p.Peer)
	}
	if h := p.HealthDisagreements[0]; h.Service != "web" || h.RealServer != "rs2" || h.Local != "up" || h.Peer != "down" {
		t.Fatalf("health disagreement %+v, want web/rs2 up on lvs1, down on lvs2", h)
	}
	_, v2 := lvs2.config(t)
	if p.Peer.ConfigVersion != v2 || p.Local.SharedVersion != p.Peer.SharedVersion || p.Local.ConfigVersion == p.Peer.ConfigVersion {
		t.Fatalf("versions: local %s/%s peer %s/%s, lvs2's own %s", p.Local.ConfigVersion, p.Local.SharedVersion, p.Peer.ConfigVersion, p.Peer.SharedVersion, v2)
	}
	if p.Local.Sync != "off" || p.Peer.Sync != "off" {
		t.Fatalf("ipvs/sync: %+v / %+v", p.Local, p.Peer)
	}
	// The peer token never leaves lvs1 in GET /config.
	doc, _ := lvs1.client.Config(context.Background())
	if strings.Contains(doc.TOML, lvs2.token) || !strings.Contains(doc.TOML, "[peer]") {
		t.Fatalf("GET /config of lvs1 shows the peer token (or no [peer]):\n%s", doc.TOML)
	}
	out, err := exec.Command(lbctl, "--url", lvs1.url, "--token", lvs1.token, "status").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "lvs2 ("+lvs2.url+")") || !strings.Contains(string(out), "drift: none") ||
		!strings.Contains(string(out), "health differs: web/rs2 is up on lvs1, down on lvs2") {
		t.Fatalf("lbctl status: %v\n%s", err, out)
	}

	// A one-sided change shows as drift, by key.
	ctx := context.Background()
	if _, err := lvs2.client.SetWeight(ctx, "web", "rs1", 5); err != nil {
		t.Fatal(err)
	}
	wantKey := `virtual_server["web"].real_server["rs1"].weight=1/5`
	testutil.Eventually(t, 15*time.Second, "lvs1 flags the weight changed on lvs2", func() bool {
		p = lvs1.pair(t)
		return len(p.Drift) == 1 && driftKeys(p)[0] == wantKey
	})
	if p.Local.SharedVersion == p.Peer.SharedVersion {
		t.Fatal("shared versions equal while the configurations differ")
	}
	out, _ = exec.Command(lbctl, "--url", lvs1.url, "--token", lvs1.token, "status").CombinedOutput()
	t.Logf("lbctl status with drift:\n%s", out)
	out, _ = exec.Command(lbctl, "--url", lvs1.url, "--token", lvs1.token, "-o", "json", "status").CombinedOutput()
	if !strings.Contains(string(out), `"key": "virtual_server[\"web\"].real_server[\"rs1\"].weight"`) || !strings.Contains(string(out), `"services"`) {
		t.Fatalf("lbctl -o json status lacks the drift (or the status):\n%s", out)
	}

	// Save on both (lbctl sync-config): lvs2 takes lvs1's shared
	// settings, keeps its per-node ones.
	if _, err := lvs1.client.SetWeight(ctx, "web", "rs2", 3); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(lbctl, "--url", lvs1.url, "--token", lvs1.token, "sync-config").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "saved on lvs2") {
		t.Fatalf("lbctl sync-config: %v\n%s", err, out)
	}
	checkPeerKept := func(wantRS1, wantRS2 int) {
		t.Helper()
		c2, _ := lvs2.config(t)
		rs := c2.VirtualServers[0].RealServers
		if *rs[0].Weight != wantRS1 || *rs[1].Weight != wantRS2 {
			t.Fatalf("lvs2's weights %d,%d after the save on both, want %d,%d", *rs[0].Weight, *rs[1].Weight, wantRS1, wantRS2)
		}
		file, err := os.ReadFile(lvs2.conf)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`node_name = "lvs2"`, `listen = "` + strings.TrimPrefix(lvs2.url, "http://"), `url = "` + lvs1.url, `token_file = "` + tokFile, "password_hash", "token_hashes"} {
			if !strings.Contains(string(file), want) {
				t.Fatalf("lvs2's file lost its per-node %s:\n%s", want, file)
			}
		}
		if strings.Contains(string(file), lvs2.token) || strings.Contains(string(file), "lvs1\"\nlisten") {
			t.Fatalf("lvs2's file took lvs1's per-node settings:\n%s", file)
		}
	}
	checkPeerKept(1, 3)
	testutil.Eventually(t, 15*time.Second, "no drift after the save on both", func() bool {
		p = lvs1.pair(t)
		return p.DriftKnown && len(p.Drift) == 0
	})
	if p.Local.SharedVersion != p.Peer.SharedVersion || p.LastPush == nil || !p.LastPush.Applied || p.NotApplied != nil {
		t.Fatalf("after the save on both: shared %s / %s, last push %+v, not applied %+v", p.Local.SharedVersion, p.Peer.SharedVersion, p.LastPush, p.NotApplied)
	}

	// The console, in headless Chromium (the other parts run without it).
	var shotPeerDown func()
	if hasChromium() {
		shotPeerDown = pairBrowser(t, lvs1, lvs2)
	} else {
		t.Log("chromium is not installed and CI is unset: the browser part is left out")
	}

	// The peer's validation refuses: not applied, with its reason, and
	// flagged until the configurations agree.
	c1, v1 := lvs1.config(t)
	c1.VirtualServers[0].HealthCheck.Command = []string{"pair-check", "%h"}
	b, _ := config.Encode(c1)
	if _, err := lvs1.client.PutConfig(ctx, api.ConfigDoc{Version: v1, TOML: string(b)}); err != nil {
		t.Fatalf("lvs1 refused a check program in its PATH: %v", err)
	}
	if file, _ := os.ReadFile(lvs1.conf); !strings.Contains(string(file), lvs2.token) {
		t.Fatalf("a PUT of GET /config's document (no peer token) lost lvs1's peer token:\n%s", file)
	}
	res, err := lvs1.client.PushPair(ctx)
	if err != nil || res.Applied || !strings.Contains(res.Error, `program "pair-check" not found in PATH`) {
		t.Fatalf("push of a config lvs2 must refuse: %+v, %v", res, err)
	}
	testutil.Eventually(t, 15*time.Second, "lvs1 shows not applied on lvs2 and the drifting key", func() bool {
		p = lvs1.pair(t)
		return p.NotApplied != nil && len(p.Drift) == 1 && strings.HasPrefix(p.Drift[0].Key, `virtual_server["web"].health_check.command`)
	})
	if !strings.Contains(p.NotApplied.Error, "not found in PATH") || p.NotApplied.Peer != "lvs2" {
		t.Fatalf("not applied: %+v", p.NotApplied)
	}
	out, _ = exec.Command(lbctl, "--url", lvs1.url, "--token", lvs1.token, "status").CombinedOutput()
	if !strings.Contains(string(out), "NOT APPLIED on lvs2") || !strings.Contains(string(out), "not found in PATH") {
		t.Fatalf("lbctl status does not show the refused save:\n%s", out)
	}

	// The peer down: the save is not applied, the pair view says lvs2 is
	// unreachable since when, and shows none of its old data.
	lvs2.stop()
	out, err = exec.Command(lbctl, "--url", lvs1.url, "--token", lvs1.token, "sync-config").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "NOT applied on lvs2") || !strings.Contains(string(out), "not reachable") {
		t.Fatalf("lbctl sync-config with lvs2 stopped: %v\n%s", err, out)
	}
	testutil.Eventually(t, 15*time.Second, "lvs1 shows lvs2 unreachable", func() bool {
		p = lvs1.pair(t)
		return !p.Peer.Reachable && p.Peer.Error != "" && !p.Peer.ErrorSince.IsZero()
	})
	if p.Peer.HasData || p.Peer.ConfigVersion != "" || p.DriftKnown || p.NotApplied == nil || !strings.Contains(p.NotApplied.Error, "not reachable") {
		t.Fatalf("pair with lvs2 down: %+v, drift known %v, not applied %+v", p.Peer, p.DriftKnown, p.NotApplied)
	}
	out, _ = exec.Command(lbctl, "--url", lvs1.url, "--token", lvs1.token, "status").CombinedOutput()
	if !strings.Contains(string(out), "NO: ") || !strings.Contains(string(out), "NOT APPLIED on lvs2") {
		t.Fatalf("lbctl status with lvs2 down:\n%s", out)
	}
	if shotPeerDown != nil {
		shotPeerDown()
	}
}

// hasChromium: the browser part runs when chromium is installed, always
// in CI (chromium fails the test there when it is missing).
func hasChromium() bool {
	if os.Getenv("CI") != "" {
		return true
	}
	for _, p := range []string{os.Getenv("LBD_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return true
		}
	}
	return false
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// pairBrowser logs in to lvs1's console in headless Chromium, looks at the
// pair view and the status panel, and saves a real server's weight on
// both directors from its edit screen. It returns the last step, for when
// lvs2 is down: the pair view says so.
func pairBrowser(t *testing.T, lvs1, lvs2 *pairLBD) func() {
	b := newBrowser(t, lvs1.url)
	b.open("/login")
	b.run("login page", chromedp.WaitVisible(chromedp.CSS("#f-password")))
	b.fill("#f-user", "admin", "#f-password", testPassword)
	b.submit("login", "#login")
	b.run("status", chromedp.WaitVisible(chromedp.CSS("#pair-panel")))
	if s := b.text("#pair-panel"); !strings.Contains(s, "configurations agree") || !strings.Contains(s, "lvs2") {
		t.Fatalf("status page's pair panel: %q", s)
	}
	b.shot("19-status-pair-panel")
	b.open("/pair")
	b.run("pair view", chromedp.WaitVisible(chromedp.CSS("#pair-lvs2")))
	for _, sel := range []string{"#pair-lvs1", "#pair-lvs2"} {
		if s := b.text(sel); !strings.Contains(s, "STANDALONE") || !strings.Contains(s, "in sync") {
			t.Fatalf("%s: %q", sel, s)
		}
	}
	if s := b.text("#health-disagree"); !strings.Contains(s, "rs2") {
		t.Fatalf("health disagreement: %q", s)
	}
	b.shot("20-pair")

	b.open("/vs/web/rs/rs1")
	b.run("real server screen", chromedp.WaitVisible(chromedp.CSS("#save-both")))
	b.fill("#f-weight", "4")
	b.submit("save on both", "#save-both")
	flash := b.text("#flash")
	if !strings.Contains(flash, "saved on lvs1; saved on lvs2") {
		t.Fatalf("flash after save on both: %q", flash)
	}
	b.shot("21-saved-on-both")
	c2, _ := lvs2.config(t)
	if w := *c2.VirtualServers[0].RealServers[0].Weight; w != 4 {
		t.Fatalf("lvs2's rs1 weight %d after the console's save on both, want 4", w)
	}
	b.checkClean()
	return func() {
		b.open("/pair")
		b.run("pair view, lvs2 down", chromedp.WaitVisible(chromedp.CSS("#not-applied")))
		if s := b.text("#pair-lvs2"); !strings.Contains(s, "unreachable") {
			t.Errorf("pair view with lvs2 down: %q", s)
		}
		b.shot("22-pair-peer-down")
	}
}

// TestPairVRRP runs two real lbd daemons with VRRP between them in network
// namespaces: each one's pair view shows the two VRRP states and
// priorities, and a save on both keeps the backup's own priority and
// unicast addresses while the pair keeps its roles.
func TestPairVRRP(t *testing.T) {
	if os.Getuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("TestPairVRRP needs root (network namespaces) and CI is set")
		}
		t.Skip("needs root for network namespaces")
	}
	netlab.Require(t, "ip")
	bin := netlab.BuildBinaryTags(t, "lbd/cmd/lbd", "fakeipvs")
	hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	lan := netlab.NewLAN(t, "pairv", 2)
	h1, h2 := lan.Hosts[0], lan.Hosts[1]
	ip1, ip2 := h1.IPv4.Addr().String(), h2.IPv4.Addr().String()
	vip := lan.IPv4(100).String()
	dir := t.TempDir()
	conf := func(name string, prio int, own, peer string) string {
		return fmt.Sprintf(`[global]
node_name = %q
interface = "eth0"
listen = "%s:3636"

[console]
password_hash = %q

[vrrp]
vrid = 61
priority = %d
advert_interval = "200ms"
vips = [%q]
unicast_source = %q
unicast_peers = [%q]

[sync]
enabled = false

[[virtual_server]]
name = "web"
vip = %q
port = 80

[virtual_server.health_check]
type = "none"

[[virtual_server.real_server]]
name = "rs1"
address = "10.77.0.50"
`, name, own, hash, prio, vip, own, peer, vip)
	}
	type node struct {
		h            *netlab.Host
		conf, token  string
		client       *apiclient.Client
		cmd          *exec.Cmd
		out          *testutil.Buffer
		name, ip, up string
	}
	nodes := []*node{{h: h1, name: "lvs1", ip: ip1, up: ip2}, {h: h2, name: "lvs2", ip: ip2, up: ip1}}
	for i, n := range nodes {
		n.conf = filepath.Join(dir, n.name+".toml")
		if err := os.WriteFile(n.conf, []byte(conf(n.name, 150-50*i, n.ip, n.up)), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "token", "-config", n.conf, "-name", "pair").Output()
		if err != nil {
			t.Fatalf("lbd token: %v", err)
		}
		n.token = strings.Fields(string(out))[0]
		h := n.h
		hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return h.Dial(network, addr, 5*time.Second)
		}}}
		if n.client, err = apiclient.New("http://"+n.ip+":3636", n.token, apiclient.WithHTTPClient(hc), apiclient.WithTimeout(20*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		peer := nodes[0]
		if n == nodes[0] {
			peer = nodes[1]
		}
		appendFile(t, n.conf, fmt.Sprintf("\n[peer]\nname = %q\nurl = \"http://%s:3636\"\ntoken = %q\n", peer.name, peer.ip, peer.token))
	}
	for _, n := range nodes {
		n.out = &testutil.Buffer{}
		n.cmd = n.h.Cmd(bin, "-config", n.conf, "-state", filepath.Join(dir, n.name+".state"))
		n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
		if err := n.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func(c *exec.Cmd) { _ = c.Wait(); close(done) }(n.cmd)
		t.Cleanup(func() {
			_ = n.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				_ = n.cmd.Process.Kill()
				<-done
			}
			if t.Failed() {
				t.Logf("lbd %s said:\n%s", n.name, n.out.String())
			}
		})
	}

	var p *api.Pair
	testutil.Eventually(t, 30*time.Second, "lvs1 master and lvs2 backup in lvs1's pair view, configurations agreeing", func() bool {
		p, err = nodes[0].client.Pair(context.Background())
		return err == nil && p.Peer.Reachable && p.DriftKnown && p.Local.Role == "master" && p.Peer.Role == "backup"
	})
	if len(p.Drift) != 0 || len(p.Local.VRRP) != 1 || len(p.Peer.VRRP) != 1 ||
		p.Local.VRRP[0] != (api.PairInstance{VRID: 61, State: "master", Priority: 150}) ||
		p.Peer.VRRP[0] != (api.PairInstance{VRID: 61, State: "backup", Priority: 100}) {
		t.Fatalf("pair: drift %v, local %+v, peer %+v", p.Drift, p.Local.VRRP, p.Peer.VRRP)
	}
	// lvs2 sees the same pair from its side.
	testutil.Eventually(t, 15*time.Second, "lvs2's pair view", func() bool {
		q, err := nodes[1].client.Pair(context.Background())
		return err == nil && q.Peer.Reachable && q.Local.Role == "backup" && q.Peer.Role == "master"
	})

	// Save on both from the master: lvs2 takes the weight, keeps its
	// priority and unicast addresses, and stays backup.
	ctx := context.Background()
	if _, err := nodes[0].client.SetWeight(ctx, "web", "rs1", 6); err != nil {
		t.Fatal(err)
	}
	res, err := nodes[0].client.PushPair(ctx)
	if err != nil || !res.Applied {
		t.Fatalf("save on both: %+v, %v", res, err)
	}
	doc, err := nodes[1].client.Config(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := config.DecodeUnvalidated("lvs2", []byte(doc.TOML))
	if err != nil {
		t.Fatal(err)
	}
	if c2.VRRP.Priority != 100 || c2.VRRP.UnicastSource != ip2 || len(c2.VRRP.UnicastPeers) != 1 || c2.VRRP.UnicastPeers[0] != ip1 ||
		*c2.VirtualServers[0].RealServers[0].Weight != 6 || c2.Global.NodeName != "lvs2" {
		t.Fatalf("lvs2 after the save on both: vrrp %+v, weight %d, node %s", *c2.VRRP, *c2.VirtualServers[0].RealServers[0].Weight, c2.Global.NodeName)
	}
	testutil.Eventually(t, 15*time.Second, "no drift, roles kept", func() bool {
		p, err = nodes[0].client.Pair(context.Background())
		return err == nil && p.DriftKnown && len(p.Drift) == 0 && p.Local.Role == "master" && p.Peer.Role == "backup"
	})
}
