//go:build linux

package vrrp

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"lbd/internal/netlab"
	"lbd/internal/testutil"
)

// Interop with Debian's keepalived (2.2.7) running VRRP-only in a namespace:
// each side must accept the other's adverts (checksums, format, v2 auth),
// elect correctly and take over from the other in both directions.

type keepalived struct {
	h       *netlab.Host
	dir     string
	conf    string
	out     *testutil.Buffer
	pid     int
	waitErr chan error
}

type kaParams struct {
	version  int
	prio     int
	interval time.Duration
	vip      netip.Addr
	authPass string
}

func keepalivedConf(p kaParams) string {
	prefix := 32
	if p.vip.Is6() {
		prefix = 128
	}
	auth := ""
	if p.authPass != "" {
		auth = fmt.Sprintf("  authentication {\n    auth_type PASS\n    auth_pass %s\n  }\n", p.authPass)
	}
	return fmt.Sprintf(`global_defs {
  vrrp_version %d
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority %d
  advert_int %s
%s  virtual_ipaddress {
    %s/%d
  }
}
`, p.version, p.prio, strconv.FormatFloat(p.interval.Seconds(), 'f', -1, 64), auth, p.vip, prefix)
}

// startKeepalived runs keepalived in h's namespace: checked with -t first,
// then in the foreground, VRRP only, logging to the console.
func startKeepalived(t *testing.T, h *netlab.Host, p kaParams) *keepalived {
	t.Helper()
	dir := t.TempDir()
	k := &keepalived{h: h, dir: dir, conf: filepath.Join(dir, "keepalived.conf"), out: &testutil.Buffer{}}
	if err := os.WriteFile(k.conf, []byte(keepalivedConf(p)), 0o644); err != nil {
		t.Fatal(err)
	}
	h.Exec("keepalived", "-t", "-f", k.conf)
	k.start(t)
	t.Cleanup(func() {
		k.kill()
		if t.Failed() {
			t.Logf("keepalived in %s said:\n%s", h.Name, k.out.String())
		}
	})
	return k
}

func (k *keepalived) start(t *testing.T) {
	t.Helper()
	cmd := k.h.Cmd("keepalived", "-n", "-l", "-D", "-P", "-f", k.conf,
		"-p", filepath.Join(k.dir, "keepalived.pid"), "-r", filepath.Join(k.dir, "vrrp.pid"))
	cmd.Stdout, cmd.Stderr = k.out, k.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	k.pid = cmd.Process.Pid
	k.waitErr = make(chan error, 1)
	go func() { k.waitErr <- cmd.Wait() }()
}

// kill is a crash: SIGKILL to keepalived and its VRRP child, no priority 0,
// VIPs left behind.
func (k *keepalived) kill() {
	if k.pid == 0 {
		return
	}
	if b, err := os.ReadFile(filepath.Join(k.dir, "vrrp.pid")); err == nil {
		if child, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			syscall.Kill(child, syscall.SIGKILL)
		}
	}
	syscall.Kill(k.pid, syscall.SIGKILL)
	<-k.waitErr
	k.pid = 0
	// The orphaned child may linger as a zombie (this machine's init need
	// not reap promptly); keepalived would take its pid file for a live
	// daemon and refuse to start again.
	os.Remove(filepath.Join(k.dir, "vrrp.pid"))
	os.Remove(filepath.Join(k.dir, "keepalived.pid"))
}

// stop is a graceful stop (SIGTERM): keepalived sends priority 0 and
// removes its VIPs.
func (k *keepalived) stop(t *testing.T) {
	t.Helper()
	if k.pid == 0 {
		return
	}
	syscall.Kill(k.pid, syscall.SIGTERM)
	select {
	case <-k.waitErr:
		k.pid = 0
	case <-time.After(10 * time.Second):
		t.Fatal("keepalived did not stop on SIGTERM")
	}
}

// hasVIP reports whether keepalived's host holds the VIP.
func hasVIP(t *testing.T, h *netlab.Host, vip netip.Addr) func() bool {
	return func() bool { return h.HasAddr(t, vip) }
}

func not(f func() bool) func() bool { return func() bool { return !f() } }

// holds checks that cond stays true for d.
func holds(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if !cond() {
			t.Fatalf("no longer %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func noDrops(t *testing.T, r *nsRouter) {
	t.Helper()
	for k, v := range r.in.Status().Counters {
		if strings.HasPrefix(k, "drop_") {
			t.Errorf("lbd dropped %d of keepalived's packets: %s", v, k)
		}
	}
}

func TestKeepalivedInterop(t *testing.T) {
	netlab.Require(t, "keepalived")
	cases := []struct {
		name     string
		version  int
		interval time.Duration
		v6       bool
		auth     string
	}{
		{"v3-ipv4", 3, 100 * time.Millisecond, false, ""},
		{"v3-ipv6", 3, 100 * time.Millisecond, true, ""},
		{"v2-ipv4-auth", 2, time.Second, false, "s3cret"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lan := netlab.NewLAN(t, "vrka", 2)
			kh, lh := lan.Hosts[0], lan.Hosts[1]
			vip := lan.IPv4(100)
			if tc.v6 {
				vip = lan.IPv6(100)
			}
			down := masterDownInterval(tc.version, 100, tc.interval) + time.Second // + slack
			lbdCfg := func(prio int) Config {
				return Config{VRID: 51, Priority: prio, Version: tc.version, AdvertInterval: tc.interval,
					VIPs: []netip.Addr{vip}, AuthPass: tc.auth, Preempt: true}
			}
			ka := kaParams{version: tc.version, interval: tc.interval, vip: vip, authPass: tc.auth}

			t.Run("keepalived master, lbd backup", func(t *testing.T) {
				ka.prio = 200
				k := startKeepalived(t, kh, ka)
				testutil.Eventually(t, 2*down, "keepalived master", hasVIP(t, kh, vip))
				r := startRouter(t, lh, lbdCfg(100))
				testutil.Eventually(t, down, "lbd hears keepalived", func() bool {
					return r.in.Status().Counters["adverts_received"] >= 3
				})
				holds(t, down, "lbd backup", func() bool { return r.state() == Backup && !lh.HasAddr(t, vip) })
				noDrops(t, r)
				want := kh.IPv4.Addr()
				if tc.v6 {
					want = kh.LinkLocal
				}
				if got := r.in.Status().MasterAddr; got != want {
					t.Fatalf("lbd sees master %v, want keepalived at %v", got, want)
				}
				// keepalived crashes: lbd takes over.
				k.kill()
				testutil.Eventually(t, down, "lbd master after keepalived crash", func() bool { return r.state() == Master && lh.HasAddr(t, vip) })
				// keepalived returns with the higher priority and preempts;
				// lbd steps down and gives the VIP up.
				k.start(t)
				testutil.Eventually(t, 2*down, "lbd backup after keepalived returns", func() bool { return r.state() == Backup && !lh.HasAddr(t, vip) })
				testutil.Eventually(t, down, "keepalived master again", hasVIP(t, kh, vip))
				noDrops(t, r)
				k.stop(t)
				if kh.HasAddr(t, vip) {
					t.Fatal("keepalived left its VIP")
				}
			})

			t.Run("lbd master, keepalived backup", func(t *testing.T) {
				r := startRouter(t, lh, lbdCfg(200))
				testutil.Eventually(t, 2*down, "lbd master", func() bool { return r.state() == Master })
				ka.prio = 100
				k := startKeepalived(t, kh, ka)
				// keepalived accepts our adverts (a checksum it rejected
				// would make it master within its Master_Down_Interval).
				holds(t, 2*down, "keepalived backup", not(hasVIP(t, kh, vip)))
				if log := k.out.String(); strings.Contains(strings.ToLower(log), "checksum") || strings.Contains(log, "MASTER STATE") {
					t.Fatalf("keepalived objected:\n%s", log)
				}
				// lbd stops gracefully (priority 0): keepalived takes over.
				start := time.Now()
				r.stop(t)
				testutil.Eventually(t, down, "keepalived master after lbd's priority 0", hasVIP(t, kh, vip))
				t.Logf("keepalived took over %v after lbd's priority 0", time.Since(start))
				// lbd returns with the higher priority: keepalived steps down.
				r2 := startRouter(t, lh, lbdCfg(200))
				testutil.Eventually(t, 2*down, "lbd master again", func() bool { return r2.state() == Master && lh.HasAddr(t, vip) })
				testutil.Eventually(t, down, "keepalived gives the VIP up", not(hasVIP(t, kh, vip)))
				noDrops(t, r2)
			})
		})
	}
}
