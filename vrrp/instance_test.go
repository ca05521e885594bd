package vrrp

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"lbd/internal/testutil"
)

func TestNewValidates(t *testing.T) {
	base := testConfig(100)
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"vrid 0", func(c *Config) { c.VRID = 0 }, "vrid 0 out of range"},
		{"vrid 256", func(c *Config) { c.VRID = 256 }, "vrid 256 out of range"},
		{"priority 0", func(c *Config) { c.Priority = 0 }, "priority 0 out of range"},
		{"no interface", func(c *Config) { c.Interface = "" }, "no interface"},
		{"version 4", func(c *Config) { c.Version = 4 }, "version 4"},
		{"v3 5ms", func(c *Config) { c.AdvertInterval = 5 * time.Millisecond }, "10ms..40.95s"},
		{"v3 15ms", func(c *Config) { c.AdvertInterval = 15 * time.Millisecond }, "10ms steps"},
		{"v2 1.5s", func(c *Config) { c.Version = 2; c.AdvertInterval = 1500 * time.Millisecond }, "whole seconds"},
		{"no vips", func(c *Config) { c.VIPs = nil }, "no VIPs"},
		{"duplicate vip", func(c *Config) { c.VIPs = append(c.VIPs, c.VIPs[0]) }, "listed twice"},
		{"multicast vip", func(c *Config) { c.VIPs = []netip.Addr{GroupIPv4} }, "not a usable unicast"},
		{"v2 ipv6", func(c *Config) { c.Version = 2; c.VIPs = []netip.Addr{netip.MustParseAddr("fd00::1")} }, "IPv4 only"},
		{"peer family", func(c *Config) { c.UnicastPeers = []netip.Addr{netip.MustParseAddr("fd00::1")} }, "unicast peer"},
		{"source family", func(c *Config) { c.UnicastSource = netip.MustParseAddr("fd00::1") }, "unicast source"},
		{"v3 auth", func(c *Config) { c.AuthPass = "x" }, "only in VRRPv2"},
		{"long auth", func(c *Config) { c.Version = 2; c.AuthPass = "123456789" }, "longer than 8"},
		{"track weight", func(c *Config) { c.TrackInterfaces = []Track{{Name: "eth1", Weight: 300}} }, "weight 300"},
		{"track name", func(c *Config) { c.TrackInterfaces = []Track{{Weight: 3}} }, "without a name"},
		{"negative garp", func(c *Config) { c.GARPCount = -1 }, "negative"},
	}
	for _, tt := range tests {
		c := base
		c.VIPs = append([]netip.Addr(nil), base.VIPs...)
		tt.mod(&c)
		_, err := New(c)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "vrrp: vrid ") {
			t.Errorf("%s: error %v, want one mentioning %q", tt.name, err, tt.want)
		}
	}
	in, err := New(base)
	if err != nil {
		t.Fatal(err)
	}
	st := in.Status()
	if st.State != Initialize || st.AdvertInterval != time.Second || st.Version != 3 || st.Name != "vrid51" ||
		st.EffectivePriority != 100 {
		t.Fatalf("status before Run: %+v", st)
	}
}

// runInstance runs an instance on a fake kernel and returns a stop
// function that cancels it and returns Run's result. In a synctest bubble
// the instance's timers run on the bubble's virtual clock.
func runInstance(t *testing.T, cfg Config) (*Instance, *fakeSys, func() error) {
	t.Helper()
	p, err := validate(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	sys := newFakeSys(netip.MustParseAddr("10.77.0.11"))
	sys.tr = newChanTransport()
	sys.now = time.Now
	in := newInstance(cfg, p, sys)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- in.Run(ctx) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-errc:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after cancel")
			return nil
		}
	}
	t.Cleanup(func() { stop() })
	return in, sys, stop
}

// drain returns the adverts sent so far.
func drain(tr *chanTransport) []sent {
	var out []sent
	for {
		select {
		case s := <-tr.out:
			out = append(out, s)
		default:
			return out
		}
	}
}

func TestRunMasterStopsGracefully(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(255)
		cfg.AdvertInterval = 20 * time.Millisecond
		var mu sync.Mutex
		var seen []Transition
		cfg.OnTransition = func(tr Transition) {
			mu.Lock()
			seen = append(seen, tr)
			mu.Unlock()
		}
		in, sys, stop := runInstance(t, cfg)
		testutil.Eventually(t, 5*time.Second, "master", func() bool { return in.Status().State == Master })
		if !sys.hasVIPs(cfg.VIPs) {
			t.Fatal("master without VIP")
		}
		testutil.Eventually(t, 5*time.Second, "adverts", func() bool { return in.Status().Counters["adverts_sent"] >= 3 })
		st := in.Status()
		if st.MasterAddr != netip.MustParseAddr("10.77.0.11") || st.Reason == "" || st.LastTransition.IsZero() {
			t.Fatalf("status %+v", st)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		ads := drain(sys.tr)
		if last := ads[len(ads)-1]; last.a.Priority != 0 {
			t.Fatalf("last advert before exit has priority %d, want 0", last.a.Priority)
		}
		if sys.anyVIP() {
			t.Fatal("VIP left after graceful stop")
		}
		if st := in.Status(); st.State != Initialize || st.Counters["priority_zero_sent"] != 1 {
			t.Fatalf("after stop: %v %v", st.State, st.Counters)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(seen) != 2 || seen[0].To != Master || seen[1].To != Initialize || seen[1].From != Master {
			t.Fatalf("OnTransition saw %+v", seen)
		}
	})
}

func TestRunResignAndPenalty(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(200)
		cfg.AdvertInterval = 20 * time.Millisecond // Master_Down_Interval 60ms + 4cs
		in, sys, _ := runInstance(t, cfg)
		if err := in.Resign(time.Second); err == nil {
			t.Fatal("resign while backup succeeded")
		}
		testutil.Eventually(t, 5*time.Second, "master", func() bool { return in.Status().State == Master })

		in.SetPenalty("services", 30)
		in.SetPenalty("other", 20)
		testutil.Eventually(t, 5*time.Second, "penalty", func() bool { return in.Status().EffectivePriority == 150 })
		drain(sys.tr)
		testutil.Eventually(t, 5*time.Second, "advert with lowered priority", func() bool {
			for _, s := range drain(sys.tr) {
				if s.a.Priority == 150 {
					return true
				}
			}
			return false
		})
		in.SetPenalty("other", 0)
		testutil.Eventually(t, 5*time.Second, "penalty cleared", func() bool { return in.Status().EffectivePriority == 170 })

		if err := in.Resign(time.Hour); err != nil {
			t.Fatal(err)
		}
		st := in.Status()
		if st.State != Backup || sys.anyVIP() || !strings.Contains(st.Reason, "resigned") {
			t.Fatalf("after resign: %v %q, VIP %v", st.State, st.Reason, sys.anyVIP())
		}
		// No peer answers, so after Master_Down_Interval it is master again:
		// the holdoff only stops preempting a live master.
		testutil.Eventually(t, 5*time.Second, "master again", func() bool { return in.Status().State == Master })
	})
}

func TestRunLinkFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(255)
		in, sys, _ := runInstance(t, cfg)
		testutil.Eventually(t, 5*time.Second, "master", func() bool { return in.Status().State == Master })
		sys.mu.Lock()
		ch := sys.linkCh
		sys.mu.Unlock()
		ch <- linkEvent{"eth0", false}
		testutil.Eventually(t, 5*time.Second, "fault", func() bool { return in.Status().State == Fault })
		if sys.anyVIP() || in.Status().Reason != "interface eth0 down" {
			t.Fatalf("fault: %q, VIP %v", in.Status().Reason, sys.anyVIP())
		}
		ch <- linkEvent{"eth0", true}
		testutil.Eventually(t, 5*time.Second, "recovered", func() bool { return in.Status().State == Master })
	})
}

func TestRunReceivesFromTransport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(100)
		in, sys, _ := runInstance(t, cfg)
		peer := netip.MustParseAddr("10.77.0.12")
		a := Advert{Version: 3, VRID: 51, Priority: 200, Interval: 2 * time.Second, Addrs: cfg.VIPs}
		b, _ := a.Marshal(peer, GroupIPv4)
		sys.tr.in <- rxPacket{b: b, src: peer, dst: GroupIPv4, ttl: 255, ifOK: true}
		sys.tr.in <- rxPacket{b: b, src: peer, dst: GroupIPv4, ttl: 64, ifOK: true}
		testutil.Eventually(t, 5*time.Second, "advert processed", func() bool {
			st := in.Status()
			return st.Counters["adverts_received"] == 1 && st.Counters["drop_ttl"] == 1
		})
		st := in.Status()
		if st.State != Backup || st.MasterAddr != peer || st.MasterAdvertInterval != 2*time.Second {
			t.Fatalf("status %+v", st)
		}
	})
}

// A packet the reader drops shows in Status at once, not at the loop's
// next event (a backup may have none for seconds).
func TestRunReaderDropShowsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(100)
		in, sys, _ := runInstance(t, cfg)
		testutil.Eventually(t, 5*time.Second, "backup", func() bool { return in.Status().State == Backup })
		peer := netip.MustParseAddr("10.77.0.12")
		a := Advert{Version: 3, VRID: 51, Priority: 200, Interval: 2 * time.Second, Addrs: cfg.VIPs}
		b, _ := a.Marshal(peer, GroupIPv4)
		sys.tr.in <- rxPacket{b: b, src: peer, dst: GroupIPv4, ttl: 64, ifOK: true}
		synctest.Wait()
		if st := in.Status(); st.Counters["drop_ttl"] != 1 || st.State != Backup {
			t.Fatalf("after a TTL-64 packet: %v %v", st.State, st.Counters)
		}
	})
}

func TestRunTwiceAndNotRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in, _, stop := runInstance(t, testConfig(100))
		testutil.Eventually(t, 5*time.Second, "backup", func() bool { return in.Status().State == Backup })
		if err := in.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "already running") {
			t.Fatalf("second Run: %v", err)
		}
		stop()
		if err := in.Resign(0); err == nil || !strings.Contains(err.Error(), "not running") {
			t.Fatalf("Resign after stop: %v", err)
		}
	})
}

func TestRunOpenFailure(t *testing.T) {
	cfg := testConfig(100)
	p, _ := validate(&cfg)
	in := newInstance(cfg, p, newFakeSys(netip.MustParseAddr("10.77.0.11"))) // no transport
	err := in.Run(context.Background())
	if err == nil || !strings.HasPrefix(err.Error(), "vrrp: vrid 51 on eth0: ") {
		t.Fatalf("Run: %v", err)
	}
}

func TestRunWaitsForMissingInterface(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(100)
		p, _ := validate(&cfg)
		sys := newFakeSys(netip.MustParseAddr("10.77.0.11"))
		sys.tr = newChanTransport()
		sys.openErrs = []error{fmt.Errorf("interface eth0: %w", errNoInterface), fmt.Errorf("interface eth0: %w", errNoInterface)}
		in := newInstance(cfg, p, sys)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		errc := make(chan error, 1)
		go func() { errc <- in.Run(ctx) }()
		synctest.Wait()
		if st := in.Status(); st.State != Fault || !strings.Contains(st.Reason, "no such interface") {
			t.Fatalf("status %v %q, want fault: no such interface", st.State, st.Reason)
		}
		if err := in.Resign(0); err == nil {
			t.Fatal("resign in fault succeeded")
		}
		// The command woke the wait: the second try has failed too. Tries
		// are a second apart; the interface "appears" on the third.
		synctest.Wait()
		if st := in.Status(); st.State != Fault {
			t.Fatalf("after the second try: %v", st.State)
		}
		time.Sleep(time.Second - time.Nanosecond)
		synctest.Wait()
		if st := in.Status(); st.State != Fault {
			t.Fatalf("before the third try: %v", st.State)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if st := in.Status(); st.State != Backup {
			t.Fatalf("after the third try: %v", st.State)
		}
		cancel()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	})
}

func TestNotifyCommand(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	script := filepath.Join(dir, "notify.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$@\" >> "+out+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(255)
	cfg.Name = "VI_1"
	cfg.Notify = []string{script, "--flag"}
	_, _, stop := runInstance(t, cfg)
	testutil.Eventually(t, 5*time.Second, "notify", func() bool { b, _ := os.ReadFile(out); return len(b) > 0 })
	stop() // waits for queued commands
	b, _ := os.ReadFile(out)
	want := "--flag VI_1 init master\n--flag VI_1 master init\n"
	if string(b) != want {
		t.Fatalf("notify calls:\n%s\nwant:\n%s", b, want)
	}
}

func TestNotifyTimeoutKillsCommand(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	script := filepath.Join(dir, "slow.sh")
	// The script's child would outlive a plain kill of the shell.
	if err := os.WriteFile(script, []byte("#!/bin/sh\nsleep 30 &\necho $! > "+pidFile+"\nwait\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(255)
	cfg.Notify = []string{script}
	cfg.NotifyTimeout = 200 * time.Millisecond
	in, _, _ := runInstance(t, cfg)
	testutil.Eventually(t, 5*time.Second, "notify error counted", func() bool { return in.Status().Counters["notify_errors"] >= 1 })
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(b))
	testutil.Eventually(t, 5*time.Second, "child killed", func() bool {
		st, err := os.ReadFile("/proc/" + pid + "/stat")
		return err != nil || strings.Contains(string(st), ") Z ")
	})
}

// An advert still waiting in the socket when the Master_Down_Timer fires
// (the reader thread has not run: a loaded box) is read before the timer
// acts: the backup stays backup. Without it, the backup takes over.
func TestRunReadsPendingAdvertBeforeTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(100)
		in, sys, _ := runInstance(t, cfg)
		peer := netip.MustParseAddr("10.77.0.12")
		a := Advert{Version: 3, VRID: 51, Priority: 200, Interval: time.Second, Addrs: cfg.VIPs}
		b, _ := a.Marshal(peer, GroupIPv4)
		pkt := rxPacket{b: b, src: peer, dst: GroupIPv4, ttl: 255, ifOK: true}
		synctest.Wait()
		sys.tr.in <- pkt
		synctest.Wait()
		down := masterDownInterval(3, 100, time.Second) // 3.6s
		if st := in.Status(); st.State != Backup || st.MasterAddr != peer {
			t.Fatalf("after the master's advert: %+v", st)
		}
		// The next advert arrives 0.1s before the timer but the reader
		// never picks it up: only a read before acting sees it.
		time.Sleep(down - 100*time.Millisecond)
		sys.tr.waiting <- pkt
		time.Sleep(100*time.Millisecond + time.Millisecond)
		synctest.Wait()
		st := in.Status()
		if st.State != Backup || st.Counters["pending_read"] != 1 || st.Counters["adverts_received"] != 2 {
			t.Fatalf("timer fired with an advert waiting in the socket: %v %q %v", st.State, st.Reason, st.Counters)
		}
		// Nothing more from the master: the backup takes over one
		// Master_Down_Interval after the advert read late.
		time.Sleep(down - 3*time.Millisecond) // the late advert was read at "down"
		synctest.Wait()
		if st := in.Status(); st.State != Backup {
			t.Fatalf("took over early: %v %q", st.State, st.Reason)
		}
		time.Sleep(5 * time.Millisecond)
		synctest.Wait()
		if st := in.Status(); st.State != Master {
			t.Fatalf("no takeover after Master_Down_Interval: %v", st.State)
		}
	})
}
