package vrrp

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// The state machine against a virtual clock and a simulated segment: every
// RFC 5798 transition, with exact timer values.

func TestTimerFormulas(t *testing.T) {
	tests := []struct {
		version, prio int
		interval      time.Duration
		skew, down    time.Duration
	}{
		// v3: centiseconds, integer division: (156*100)/256 = 60cs
		{3, 100, time.Second, 600 * time.Millisecond, 3600 * time.Millisecond},
		{3, 100, 100 * time.Millisecond, 60 * time.Millisecond, 360 * time.Millisecond},
		{3, 200, time.Second, 210 * time.Millisecond, 3210 * time.Millisecond},
		{3, 254, 10 * time.Millisecond, 0, 30 * time.Millisecond},
		{3, 1, 40950 * time.Millisecond, 40790 * time.Millisecond, 3*40950*time.Millisecond + 40790*time.Millisecond},
		// v2: (256 - priority) / 256 seconds
		{2, 100, time.Second, 609375 * time.Microsecond, 3609375 * time.Microsecond},
		{2, 255, 3 * time.Second, 3906250 * time.Nanosecond, 9*time.Second + 3906250*time.Nanosecond},
	}
	for _, tt := range tests {
		if got := skewTime(tt.version, tt.prio, tt.interval); got != tt.skew {
			t.Errorf("v%d prio %d interval %v: skew %v, want %v", tt.version, tt.prio, tt.interval, got, tt.skew)
		}
		if got := masterDownInterval(tt.version, tt.prio, tt.interval); got != tt.down {
			t.Errorf("v%d prio %d interval %v: master down %v, want %v", tt.version, tt.prio, tt.interval, got, tt.down)
		}
	}
}

func states(n *node) []State {
	var s []State
	for _, t := range n.trans {
		s = append(s, t.To)
	}
	return s
}

func wantStates(t *testing.T, n *node, want ...State) {
	t.Helper()
	if got := states(n); !slices.Equal(got, want) {
		t.Fatalf("node %d transitions %v, want %v (reasons: %v)", n.i, got, want, reasons(n))
	}
}

func reasons(n *node) []string {
	var r []string
	for _, t := range n.trans {
		r = append(r, t.Reason)
	}
	return r
}

func lastTransitionAt(n *node) time.Duration { return n.trans[len(n.trans)-1].At.Sub(t0) }

func TestNoPeerBecomesMasterAfterMasterDownInterval(t *testing.T) {
	w := newWire(t)
	cfg := testConfig(100)
	a := w.add(cfg, 11)
	a.start()
	if a.c.state != Backup {
		t.Fatalf("after startup: %v, want backup", a.c.state)
	}
	w.run(3599 * time.Millisecond)
	if a.c.state != Backup || a.sys.anyVIP() || len(w.log) != 0 {
		t.Fatalf("master before Master_Down_Interval: %v", a)
	}
	w.run(time.Millisecond)
	wantStates(t, a, Backup, Master)
	if at := lastTransitionAt(a); at != 3600*time.Millisecond {
		t.Fatalf("became master at %v, want 3.6s", at)
	}
	if !a.sys.hasVIPs(cfg.VIPs) {
		t.Fatal("master without its VIP")
	}
	// Adverts every second from the takeover, with our priority.
	w.run(3 * time.Second)
	ads := w.sentBy(0)
	if len(ads) != 4 {
		t.Fatalf("%d adverts in 3s as master, want 4", len(ads))
	}
	for i, s := range ads {
		if want := t0.Add(3600*time.Millisecond + time.Duration(i)*time.Second); !s.at.Equal(want) {
			t.Errorf("advert %d at %v, want %v", i, s.at.Sub(t0), want.Sub(t0))
		}
		if s.a.Priority != 100 || s.dst != GroupIPv4 || !sameAddrs(s.a.Addrs, cfg.VIPs) {
			t.Errorf("advert %d: %+v to %v", i, s.a, s.dst)
		}
	}
	// GARP burst: 5 rounds, 100ms apart, starting at the takeover.
	if len(a.sys.announceT) != 5 {
		t.Fatalf("%d announcements, want 5", len(a.sys.announceT))
	}
	for i, at := range a.sys.announceT {
		if want := 3600*time.Millisecond + time.Duration(i)*100*time.Millisecond; at.Sub(t0) != want {
			t.Errorf("announcement %d at %v, want %v", i, at.Sub(t0), want)
		}
	}
	st := a.c.counters
	if st["adverts_sent"] != 4 || st["garp_sent"] != 5 || st["transitions"] != 2 {
		t.Errorf("counters %v", st)
	}
}

func TestGARPRefreshAndConfiguredBurst(t *testing.T) {
	w := newWire(t)
	cfg := testConfig(255)
	cfg.GARPCount, cfg.GARPInterval, cfg.GARPRefresh = 3, 50*time.Millisecond, 2*time.Second
	a := w.add(cfg, 11)
	a.start()
	w.run(5 * time.Second)
	var got []time.Duration
	for _, at := range a.sys.announceT {
		got = append(got, at.Sub(t0))
	}
	want := []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond, 2 * time.Second, 4 * time.Second}
	if !slices.Equal(got, want) {
		t.Fatalf("announcements at %v, want %v", got, want)
	}
}

func TestHigherPriorityWinsElection(t *testing.T) {
	w := newWire(t)
	hi, lo := w.add(testConfig(200), 11), w.add(testConfig(100), 12)
	hi.start()
	lo.start()
	w.run(20 * time.Second)
	wantStates(t, hi, Backup, Master)
	wantStates(t, lo, Backup)
	if at := hi.trans[1].At.Sub(t0); at != 3210*time.Millisecond {
		t.Fatalf("priority 200 became master at %v, want Master_Down_Interval 3.21s", at)
	}
	if lo.sys.anyVIP() || !hi.sys.hasVIPs(testConfig(0).VIPs) {
		t.Fatal("VIP not only on the master")
	}
	if got := lo.c.masterAddr; got != netip.MustParseAddr("10.77.0.11") {
		t.Fatalf("backup's master address %v", got)
	}
}

func TestBackupTakesOverWhenMasterDies(t *testing.T) {
	w := newWire(t)
	hi, lo := w.add(testConfig(200), 11), w.add(testConfig(100), 12)
	hi.start()
	lo.start()
	w.run(10 * time.Second)
	w.cut[hi.i] = true // the master dies silently
	lastAdvert := w.sentBy(hi.i)[len(w.sentBy(hi.i))-1].at.Add(w.latency)
	w.run(10 * time.Second)
	wantStates(t, lo, Backup, Master)
	if got := lo.trans[1].At.Sub(lastAdvert); got != 3600*time.Millisecond {
		t.Fatalf("backup took over %v after the last advert, want Master_Down_Interval 3.6s", got)
	}
}

func TestPriorityZeroTakeoverAfterSkew(t *testing.T) {
	w := newWire(t)
	hi, lo := w.add(testConfig(200), 11), w.add(testConfig(100), 12)
	hi.start()
	lo.start()
	w.run(5500 * time.Millisecond)
	stop := w.now
	hi.c.shutdown(w.now)
	wantStates(t, hi, Backup, Master, Initialize)
	if hi.sys.anyVIP() {
		t.Fatal("VIP kept after shutdown")
	}
	ads := w.sentBy(hi.i)
	if last := ads[len(ads)-1]; last.a.Priority != 0 || !last.at.Equal(stop) {
		t.Fatalf("last advert on shutdown: priority %d at %v", last.a.Priority, last.at.Sub(t0))
	}
	w.run(5 * time.Second)
	wantStates(t, lo, Backup, Master)
	// Skew_Time for priority 100 at 1s is 600ms.
	if got := lo.trans[1].At.Sub(stop); got != w.latency+600*time.Millisecond {
		t.Fatalf("takeover %v after priority 0, want latency + Skew_Time (601ms)", got)
	}
	if lo.c.counters["priority_zero_received"] != 1 {
		t.Fatalf("counters %v", lo.c.counters)
	}
}

func TestPreemptOnAndOff(t *testing.T) {
	for _, preempt := range []bool{true, false} {
		t.Run(map[bool]string{true: "on", false: "off"}[preempt], func(t *testing.T) {
			w := newWire(t)
			lo := w.add(testConfig(100), 11)
			lo.start()
			w.run(10 * time.Second) // lo is master alone
			cfg := testConfig(200)
			cfg.Preempt = preempt
			hi := w.add(cfg, 12)
			hi.start()
			started := w.now
			w.run(20 * time.Second)
			if !preempt {
				wantStates(t, hi, Backup)
				wantStates(t, lo, Backup, Master)
				return
			}
			wantStates(t, hi, Backup, Master)
			wantStates(t, lo, Backup, Master, Backup)
			// hi ignores the lower master's adverts: its down timer, started
			// at startup, runs out after 3.21s.
			if got := hi.trans[1].At.Sub(started); got != 3210*time.Millisecond {
				t.Fatalf("preempted %v after start, want 3.21s", got)
			}
			if got := lo.trans[2].At.Sub(hi.trans[1].At); got != w.latency {
				t.Fatalf("old master stepped down %v after the new one's first advert", got)
			}
			if lo.sys.anyVIP() {
				t.Fatal("old master kept the VIP")
			}
		})
	}
}

func TestPreemptDelay(t *testing.T) {
	w := newWire(t)
	lo := w.add(testConfig(100), 11)
	lo.start()
	w.run(10 * time.Second)
	cfg := testConfig(200)
	cfg.PreemptDelay = 5 * time.Second
	hi := w.add(cfg, 12)
	hi.start()
	started := w.now
	w.run(30 * time.Second)
	wantStates(t, hi, Backup, Master)
	// lo advertises at x.6s, so hi sees the first lower advert 601ms after
	// its start and holds preemption until 5s later (5.601s). It accepts
	// adverts until then; the last accepted one (4.601s) starts the final
	// Master_Down_Interval of 3.21s.
	got := hi.trans[1].At.Sub(started)
	if got < 5601*time.Millisecond || got != 4601*time.Millisecond+3210*time.Millisecond {
		t.Fatalf("preempted %v after start, want 7.811s", got)
	}
}

func TestEqualPriorityHigherAddressWins(t *testing.T) {
	w := newWire(t)
	a, b := w.add(testConfig(100), 11), w.add(testConfig(100), 12)
	a.start()
	b.start()
	w.run(20 * time.Second)
	// Same priority, same start: same Master_Down_Interval, both become
	// master; .12 > .11 so a steps down on b's advert, b ignores a's.
	wantStates(t, b, Backup, Master)
	wantStates(t, a, Backup, Master, Backup)
	if !b.sys.anyVIP() || a.sys.anyVIP() {
		t.Fatal("VIP on the wrong router")
	}
}

func TestOwnerTakesOverAtOnce(t *testing.T) {
	w := newWire(t)
	lo := w.add(testConfig(100), 11)
	lo.start()
	w.run(10 * time.Second)
	cfg := testConfig(255)
	cfg.Preempt = false // the owner preempts regardless
	owner := w.add(cfg, 12)
	owner.start()
	if owner.c.state != Master || lastTransitionAt(owner) != 10*time.Second {
		t.Fatalf("owner not master at startup: %v", owner)
	}
	w.run(10 * time.Millisecond)
	wantStates(t, lo, Backup, Master, Backup)
	// A skew of 0 for priority 255.
	if got := owner.c.skew(); got != 0 {
		t.Fatalf("owner skew %v", got)
	}
}

func TestV3BackupLearnsMasterInterval(t *testing.T) {
	w := newWire(t)
	cfgHi := testConfig(200)
	cfgHi.AdvertInterval = 2 * time.Second
	hi, lo := w.add(cfgHi, 11), w.add(testConfig(100), 12)
	hi.start()
	w.run(10 * time.Second)
	lo.start()
	w.run(15 * time.Second)
	wantStates(t, lo, Backup)
	if lo.c.masterInterval != 2*time.Second {
		t.Fatalf("backup's Master_Adver_Interval %v, want the master's 2s", lo.c.masterInterval)
	}
	w.cut[hi.i] = true
	lastAdvert := w.sentBy(hi.i)[len(w.sentBy(hi.i))-1].at.Add(w.latency)
	w.run(15 * time.Second)
	// 3*2s + (156*200cs)/256 = 6s + 121cs
	if got := lo.trans[1].At.Sub(lastAdvert); got != 7210*time.Millisecond {
		t.Fatalf("takeover %v after the last advert, want 7.21s (learned interval)", got)
	}
	// As master it advertises its own interval again.
	if ads := w.sentBy(lo.i); ads[0].a.Interval != time.Second {
		t.Fatalf("new master advertises %v", ads[0].a.Interval)
	}
}

func TestV2IntervalMismatchDropped(t *testing.T) {
	w := newWire(t)
	a, b := testConfig(200), testConfig(100)
	a.Version, b.Version = 2, 2
	a.AdvertInterval = 2 * time.Second
	hi, lo := w.add(a, 11), w.add(b, 12)
	hi.start()
	lo.start()
	w.run(20 * time.Second)
	if lo.c.counters["drop_interval"] == 0 || lo.c.state != Master {
		t.Fatalf("v2 backup accepted another interval: %v, %v", lo, lo.c.counters)
	}
}

func TestV2Election(t *testing.T) {
	w := newWire(t)
	a, b := testConfig(200), testConfig(100)
	a.Version, b.Version = 2, 2
	a.AuthPass, b.AuthPass = "secret", "secret"
	hi, lo := w.add(a, 11), w.add(b, 12)
	hi.start()
	lo.start()
	w.run(10 * time.Second)
	wantStates(t, hi, Backup, Master)
	wantStates(t, lo, Backup)
	// v2 skew: (256-200)/256 s = 218.75ms
	if got := lastTransitionAt(hi); got != 3*time.Second+218750*time.Microsecond {
		t.Fatalf("v2 master after %v", got)
	}
	if ad := w.sentBy(hi.i)[0].a; ad.AuthType != AuthSimple || string(ad.AuthData[:6]) != "secret" {
		t.Fatalf("v2 auth not sent: %+v", ad)
	}
}

func TestIPv6Election(t *testing.T) {
	w := newWire(t)
	cfg := func(p int) Config {
		c := testConfig(p)
		c.VIPs = []netip.Addr{netip.MustParseAddr("fd00:77::100"), netip.MustParseAddr("10.77.0.100")}
		return c
	}
	hi, lo := w.add(cfg(200), 11), w.add(cfg(100), 12)
	hi.start()
	lo.start()
	w.run(10 * time.Second)
	wantStates(t, hi, Backup, Master)
	wantStates(t, lo, Backup)
	s := w.sentBy(hi.i)[0]
	if s.dst != GroupIPv6 || !s.src.IsLinkLocalUnicast() {
		t.Fatalf("IPv6 advert %v -> %v", s.src, s.dst)
	}
	// Only the advert family's VIP is listed; both are held.
	if !slices.Equal(s.a.Addrs, []netip.Addr{netip.MustParseAddr("fd00:77::100")}) {
		t.Fatalf("advert lists %v", s.a.Addrs)
	}
	if !hi.sys.hasVIPs(cfg(0).VIPs) {
		t.Fatal("master does not hold the other family's VIP")
	}
}

func TestFaultAndRecovery(t *testing.T) {
	w := newWire(t)
	hi, lo := w.add(testConfig(200), 11), w.add(testConfig(100), 12)
	hi.start()
	lo.start()
	w.run(5 * time.Second)
	down := w.now
	hi.c.link(w.now, "eth0", false)
	wantStates(t, hi, Backup, Master, Fault)
	if hi.sys.anyVIP() {
		t.Fatal("VIP kept in Fault")
	}
	if last := w.sentBy(hi.i)[len(w.sentBy(hi.i))-1]; last.a.Priority != 0 || !last.at.Equal(down) {
		t.Fatal("no priority-0 advert when entering Fault as master")
	}
	sentInFault := len(w.sentBy(hi.i))
	w.run(5 * time.Second)
	wantStates(t, lo, Backup, Master)
	if got := lo.trans[1].At.Sub(down); got != 601*time.Millisecond {
		t.Fatalf("backup took over %v after the fault, want 601ms", got)
	}
	if len(w.sentBy(hi.i)) != sentInFault || !hi.c.next().IsZero() {
		t.Fatal("adverts or timers in Fault")
	}
	hi.c.link(w.now, "eth0", true)
	w.run(10 * time.Second)
	wantStates(t, hi, Backup, Master, Fault, Backup, Master) // recovers, then preempts
	wantStates(t, lo, Backup, Master, Backup)
}

func TestTrackedInterfaces(t *testing.T) {
	w := newWire(t)
	cfg := testConfig(200)
	cfg.TrackInterfaces = []Track{{Name: "eth1", Weight: 150}, {Name: "eth2", Weight: 0}}
	hi, lo := w.add(cfg, 11), w.add(testConfig(100), 12)
	hi.start()
	lo.start()
	w.run(5 * time.Second)
	wantStates(t, hi, Backup, Master)

	// Weighted: priority 200-150 = 50 < 100, so the backup preempts.
	hi.c.link(w.now, "eth1", false)
	if p := hi.c.effectivePriority(); p != 50 {
		t.Fatalf("effective priority %d, want 50", p)
	}
	w.run(10 * time.Second)
	wantStates(t, lo, Backup, Master)
	wantStates(t, hi, Backup, Master, Backup)

	// Back up: 200 > 100 and preempt on.
	hi.c.link(w.now, "eth1", true)
	w.run(10 * time.Second)
	wantStates(t, hi, Backup, Master, Backup, Master)

	// Weight 0: Fault.
	hi.c.link(w.now, "eth2", false)
	if hi.c.state != Fault || hi.c.reason != "tracked interface eth2 down" {
		t.Fatalf("%v: %q", hi, hi.c.reason)
	}
}

func TestPenaltyLowersPriority(t *testing.T) {
	w := newWire(t)
	hi, lo := w.add(testConfig(200), 11), w.add(testConfig(100), 12)
	pen := 0
	hi.c.penalty = func() int { return pen }
	hi.start()
	lo.start()
	w.run(5 * time.Second)
	pen = 150
	w.run(10 * time.Second)
	wantStates(t, lo, Backup, Master)
	if ads := w.sentBy(hi.i); ads[len(ads)-1].a.Priority != 50 {
		t.Fatalf("penalised master advertised %d", ads[len(ads)-1].a.Priority)
	}
	// A penalised owner is no longer the owner, and never below 1.
	own := w.add(testConfig(255), 13)
	own.c.penalty = func() int { return 300 }
	if p := own.c.effectivePriority(); p != 1 {
		t.Fatalf("priority %d", p)
	}
	own.c.penalty = func() int { return 1 }
	if p := own.c.effectivePriority(); p != 254 {
		t.Fatalf("priority %d", p)
	}
}

func TestMasterAnswersLowerPriorityAdvert(t *testing.T) {
	w := newWire(t)
	a := w.add(testConfig(200), 11)
	a.start()
	w.run(4 * time.Second) // master since 3.21s
	before, garps := len(w.sentBy(0)), len(a.sys.announced)
	lower := Advert{Version: 3, VRID: 51, Priority: 100, Interval: time.Second, Addrs: testConfig(0).VIPs}
	a.inject(lower, netip.MustParseAddr("10.77.0.12"))
	if len(w.sentBy(0)) != before+1 || len(a.sys.announced) != garps+1 {
		t.Fatal("lower-priority advert not answered with an advert and a GARP")
	}
	a.inject(lower, netip.MustParseAddr("10.77.0.12"))
	if len(w.sentBy(0)) != before+1 {
		t.Fatal("answers to lower-priority adverts are not rate-limited")
	}
	// The other router's own GARPs may land after ours: a burst follows.
	w.run(time.Second)
	if got := len(a.sys.announced) - garps; got != a.c.p.garpCount {
		t.Fatalf("%d GARP rounds after a lower-priority master, want a burst of %d", got, a.c.p.garpCount)
	}
	if a.c.state != Master {
		t.Fatal("master stepped down for a lower priority")
	}
	// A priority-0 advert from someone else: answered at once too.
	before = len(w.sentBy(0)) - 1
	a.inject(Advert{Version: 3, VRID: 51, Priority: 0, Interval: time.Second, Addrs: testConfig(0).VIPs}, netip.MustParseAddr("10.77.0.12"))
	if len(w.sentBy(0)) != before+2 {
		t.Fatal("priority-0 advert not answered")
	}
}

func TestResignHoldoff(t *testing.T) {
	w := newWire(t)
	hi, lo := w.add(testConfig(200), 11), w.add(testConfig(100), 12)
	hi.start()
	lo.start()
	w.run(5 * time.Second)
	if err := lo.c.resign(w.now, time.Second); err == nil {
		t.Fatal("a backup could resign")
	}
	at := w.now
	if err := hi.c.resign(w.now, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if hi.sys.anyVIP() || hi.c.state != Backup {
		t.Fatal("resigned master kept the VIP")
	}
	w.run(19 * time.Second)
	wantStates(t, lo, Backup, Master)
	if got := lo.trans[1].At.Sub(at); got != 601*time.Millisecond {
		t.Fatalf("takeover %v after resign, want latency + skew = 601ms", got)
	}
	wantStates(t, hi, Backup, Master, Backup) // held off
	w.run(10 * time.Second)
	wantStates(t, hi, Backup, Master, Backup, Master) // preempts after the holdoff
	if got := hi.trans[3].At.Sub(at); got < 20*time.Second || got > 20*time.Second+3210*time.Millisecond+time.Second {
		t.Fatalf("preempted again %v after resigning", got)
	}
}

func TestSplitBrainHeal(t *testing.T) {
	for _, prios := range [][2]int{{200, 100}, {100, 100}} {
		w := newWire(t)
		a, b := w.add(testConfig(prios[0]), 11), w.add(testConfig(prios[1]), 12)
		a.start()
		b.start()
		w.run(5 * time.Second)
		w.cut[a.i] = true
		w.run(10 * time.Second)
		if a.c.state != Master || b.c.state != Master {
			t.Fatalf("%v: split brain: %v %v, want both master", prios, a, b)
		}
		winner := map[bool]*node{true: a, false: b}[prios[0] > prios[1]]
		garps := len(winner.sys.announced)
		delete(w.cut, a.i)
		took, ok := w.runUntil(5*time.Second, func() bool { return (a.c.state == Master) != (b.c.state == Master) })
		if !ok || took > time.Second {
			t.Fatalf("%v: after heal %v %v (took %v), want exactly one master within one interval", prios, a, b, took)
		}
		w.run(10 * time.Second)
		// Whichever advert crossed first, the winner re-announced the VIPs
		// (the loser's step-down advert is a lower-priority advert to it).
		if len(winner.sys.announced) == garps {
			t.Fatalf("%v: winner did not re-announce the VIPs after the heal", prios)
		}
		if winner.c.state != Master || (a.c.state == Master) == (b.c.state == Master) {
			t.Fatalf("%v: settled on %v %v", prios, a, b)
		}
	}
}

func TestStaleVIPRemovedAtStart(t *testing.T) {
	w := newWire(t)
	a := w.add(testConfig(100), 11)
	a.sys.addrs[testConfig(0).VIPs[0]] = true
	a.start()
	if a.sys.anyVIP() {
		t.Fatal("stale VIP left on the interface at startup")
	}
}

func TestNoAddressIsFaultUntilOneAppears(t *testing.T) {
	w := newWire(t)
	a := w.add(testConfig(100), 11)
	a.sys.local = netip.Addr{}
	a.start()
	if a.c.state != Fault {
		t.Fatalf("%v, want fault", a)
	}
	w.run(3 * time.Second)
	a.sys.mu.Lock()
	a.sys.local = netip.MustParseAddr("10.77.0.11")
	a.sys.mu.Unlock()
	w.run(1100 * time.Millisecond)
	wantStates(t, a, Fault, Backup)
}

// Receive checks: every malformed or foreign packet is dropped and counted
// by its reason, and never disturbs the state.
func TestReceiveChecks(t *testing.T) {
	peer := netip.MustParseAddr("10.77.0.12")
	vips := testConfig(0).VIPs
	good := Advert{Version: 3, VRID: 51, Priority: 250, Interval: time.Second, Addrs: vips}
	mk := func(f func(a *Advert)) []byte {
		a := good
		f(&a)
		b, err := a.Marshal(peer, GroupIPv4)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ok := mk(func(*Advert) {})
	tests := []struct {
		name string
		rx   rxPacket
		cfg  func(*Config)
		want DropReason
	}{
		{"ttl 254", rxPacket{b: ok, src: peer, dst: GroupIPv4, ttl: 254, ifOK: true}, nil, DropTTL},
		{"ttl unknown", rxPacket{b: ok, src: peer, dst: GroupIPv4, ttl: -1, ifOK: true}, nil, DropTTL},
		{"other interface", rxPacket{b: ok, src: peer, dst: GroupIPv4, ttl: 255}, nil, DropInterface},
		{"v2 packet", rxPacket{b: mk(func(a *Advert) { a.Version = 2 }), src: peer, dst: GroupIPv4, ttl: 255, ifOK: true}, nil, DropVersion},
		{"other vrid", rxPacket{b: mk(func(a *Advert) { a.VRID = 52 }), src: peer, dst: GroupIPv4, ttl: 255, ifOK: true}, nil, DropVRID},
		{"bad checksum", rxPacket{b: ok, src: netip.MustParseAddr("10.77.0.13"), dst: GroupIPv4, ttl: 255, ifOK: true}, nil, DropChecksum},
		{"truncated", rxPacket{b: ok[:10], src: peer, dst: GroupIPv4, ttl: 255, ifOK: true}, nil, DropLength},
		{"other vips", rxPacket{b: mk(func(a *Advert) { a.Addrs = []netip.Addr{netip.MustParseAddr("10.77.0.99")} }), src: peer, dst: GroupIPv4, ttl: 255, ifOK: true}, nil, DropVIPs},
		{"no vips", rxPacket{b: mk(func(a *Advert) { a.Addrs = nil }), src: peer, dst: GroupIPv4, ttl: 255, ifOK: true}, nil, DropVIPs},
		{"ipv6 on ipv4 instance", rxPacket{b: ok, src: netip.MustParseAddr("fe80::2"), dst: GroupIPv6, ttl: 255, ifOK: true}, nil, DropFamily},
		{"own advert", rxPacket{b: ok, src: peer, dst: GroupIPv4, ttl: 255, ifOK: true}, func(c *Config) { c.UnicastSource = peer }, DropOwn},
		{"not a peer", rxPacket{b: ok, src: peer, dst: GroupIPv4, ttl: 255, ifOK: true},
			func(c *Config) { c.UnicastPeers = []netip.Addr{netip.MustParseAddr("10.77.0.13")} }, DropForeign},
		{"v2 wrong password", rxPacket{b: mk(func(a *Advert) { a.Version = 2; a.AuthType = AuthSimple; a.AuthData = [8]byte{'x'} }), src: peer, dst: GroupIPv4, ttl: 255, ifOK: true},
			func(c *Config) { c.Version = 2; c.AuthPass = "secret" }, DropAuth},
		{"v2 no auth, we want it", rxPacket{b: mk(func(a *Advert) { a.Version = 2 }), src: peer, dst: GroupIPv4, ttl: 255, ifOK: true},
			func(c *Config) { c.Version = 2; c.AuthPass = "secret" }, DropAuth},
		{"v2 other interval", rxPacket{b: mk(func(a *Advert) { a.Version = 2; a.Interval = 2 * time.Second }), src: peer, dst: GroupIPv4, ttl: 255, ifOK: true},
			func(c *Config) { c.Version = 2 }, DropInterval},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWire(t)
			cfg := testConfig(100)
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			n := w.add(cfg, 11)
			n.start()
			w.run(time.Second)
			downAt := n.c.downAt
			n.c.receive(w.now, tt.rx)
			if got := n.c.counters["drop_"+string(tt.want)]; got != 1 {
				t.Fatalf("drop_%s = %d; counters %v", tt.want, got, n.c.counters)
			}
			if n.c.counters["adverts_received"] != 0 || !n.c.downAt.Equal(downAt) || n.c.state != Backup {
				t.Fatal("a dropped packet changed the state machine")
			}
		})
	}

	// The owner's advert is processed despite an address mismatch (RFC 5798 7.1).
	w := newWire(t)
	n := w.add(testConfig(100), 11)
	n.start()
	n.inject(Advert{Version: 3, VRID: 51, Priority: 255, Interval: time.Second, Addrs: []netip.Addr{netip.MustParseAddr("10.77.0.99")}}, peer)
	if n.c.counters["drop_vips"] != 1 || n.c.counters["adverts_received"] != 1 || n.c.masterAddr != peer {
		t.Fatalf("owner advert with other VIPs: %v", n.c.counters)
	}
	// A good packet passes.
	n.inject(good, peer)
	if n.c.counters["adverts_received"] != 2 {
		t.Fatalf("good advert not accepted: %v", n.c.counters)
	}
}

func TestUnicastPeers(t *testing.T) {
	w := newWire(t)
	a, b := testConfig(200), testConfig(100)
	a.UnicastPeers = []netip.Addr{netip.MustParseAddr("10.77.0.12"), netip.MustParseAddr("10.77.0.13")}
	b.UnicastPeers = []netip.Addr{netip.MustParseAddr("10.77.0.11")}
	hi, lo := w.add(a, 11), w.add(b, 12)
	hi.start()
	lo.start()
	w.run(5 * time.Second)
	wantStates(t, hi, Backup, Master)
	wantStates(t, lo, Backup)
	ads := w.sentBy(hi.i)
	if ads[0].dst != a.UnicastPeers[0] || ads[1].dst != a.UnicastPeers[1] {
		t.Fatalf("unicast adverts went to %v, %v", ads[0].dst, ads[1].dst)
	}
}

// A held director (its connection table not learned yet) does not preempt
// a lower-priority master, the owner included, until the hold is lifted;
// then it preempts after one Master_Down_Interval. A master that dies is
// still replaced while the hold lasts.
func TestPreemptionHold(t *testing.T) {
	for _, prio := range []int{200, 255} {
		t.Run(fmt.Sprint(prio), func(t *testing.T) {
			w := newWire(t)
			lo := w.add(testConfig(100), 11)
			lo.start()
			w.run(10 * time.Second)
			hi := w.add(testConfig(prio), 12)
			why := "sync: not warm"
			hi.c.held = func() string { return why }
			hi.start()
			w.run(20 * time.Second)
			wantStates(t, hi, Backup)
			wantStates(t, lo, Backup, Master)
			why = ""
			lifted := w.now
			w.run(10 * time.Second)
			wantStates(t, hi, Backup, Master)
			wantStates(t, lo, Backup, Master, Backup)
			if got := hi.trans[1].At.Sub(lifted); got > 4*time.Second {
				t.Fatalf("preempted %v after the hold was lifted", got)
			}
		})
	}
	t.Run("takeover while held", func(t *testing.T) {
		w := newWire(t)
		lo := w.add(testConfig(100), 11)
		lo.start()
		hi := w.add(testConfig(200), 12)
		hi.c.held = func() string { return "sync: not warm" }
		w.run(10 * time.Second)
		hi.start()
		w.run(10 * time.Second)
		wantStates(t, hi, Backup)
		lo.c.shutdown(w.now) // priority 0: hi takes over although held
		w.run(5 * time.Second)
		wantStates(t, hi, Backup, Master)
	})
}

// A master whose VIP removal was slow (a stalled box) arms its
// Master_Down_Timer from when the removal ended, not from when the resign
// began: else it could take over again before reading the adverts of the
// master that took over meanwhile.
func TestDownTimerCountsFromAfterSlowVIPRemoval(t *testing.T) {
	w := newWire(t)
	a := w.add(testConfig(200), 11)
	a.start()
	w.run(4 * time.Second)
	if a.c.state != Master {
		t.Fatal("not master")
	}
	slow := 600 * time.Millisecond
	a.c.clock = func() time.Time { return w.now.Add(slow) }
	if err := a.c.resign(w.now, time.Minute); err != nil {
		t.Fatal(err)
	}
	if want := w.now.Add(slow + a.c.downInterval()); !a.c.downAt.Equal(want) {
		t.Fatalf("Master_Down_Timer at %v, want %v", a.c.downAt.Sub(w.now), want.Sub(w.now))
	}
}

// One forged advert with the 40.95s maximum interval must not hold a
// backup's preemption back for two minutes: the learned interval is
// bounded (default 3 advert intervals), counted and logged, and the real
// master's next advert is learned again.
func TestLearnedIntervalBounded(t *testing.T) {
	w := newWire(t)
	hi, lo := w.add(testConfig(200), 11), w.add(testConfig(100), 12)
	lo.start()
	w.run(5 * time.Second)
	hi.start() // hi preempts lo
	w.run(5 * time.Second)
	if lo.c.state != Backup || hi.c.state != Master {
		t.Fatalf("lo %v hi %v, want backup and master", lo.c.state, hi.c.state)
	}
	w.cut[hi.i] = true // hi dies...
	spoof := Advert{Version: 3, VRID: 51, Priority: 250, Interval: 40950 * time.Millisecond, Addrs: testConfig(0).VIPs}
	lo.inject(spoof, netip.MustParseAddr("10.77.0.66")) // ...and a forger claims the VIP's router
	if lo.c.masterInterval != 3*time.Second || lo.c.counters["learned_interval_clamped"] != 1 {
		t.Fatalf("learned %v (clamped %d), want the 3s bound", lo.c.masterInterval, lo.c.counters["learned_interval_clamped"])
	}
	at := w.now
	w.run(30 * time.Second)
	if lo.c.state != Master {
		t.Fatalf("lo %v 30s after the forged advert", lo.c.state)
	}
	// 3*3s + (156*300cs)/256 = 9s + 182cs
	if got := lo.trans[len(lo.trans)-1].At.Sub(at); got > 11*time.Second {
		t.Fatalf("takeover %v after the forged advert, want within the bounded Master_Down_Interval (10.82s)", got)
	}
	// A real master with a longer interval than ours but within the bound
	// is learned exactly.
	w2 := newWire(t)
	cfgHi := testConfig(200)
	cfgHi.AdvertInterval = 2 * time.Second
	hi2, lo2 := w2.add(cfgHi, 11), w2.add(testConfig(100), 12)
	hi2.start()
	lo2.start()
	w2.run(10 * time.Second)
	if lo2.c.masterInterval != 2*time.Second || lo2.c.counters["learned_interval_clamped"] != 0 {
		t.Fatalf("a 2s master learned as %v", lo2.c.masterInterval)
	}
}
