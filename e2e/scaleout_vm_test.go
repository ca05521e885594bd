//go:build vm

package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"lbd/internal/vmtest"
)

// TestScaleOutECMP proves active-active directors with lbd's own BGP
// speaker against a real router (FRR) in the scale-out lab
// (scaleout_lab_test.go), with a hold time of 6s: twice the smallest lbd
// accepts, because a loaded machine can stall the emulated VM for more
// than 3s, and a session that expires before the test kills a director
// proves nothing:
//   - the router learns the VIP from both directors and installs one route
//     with both as next hops;
//   - lbd's BGP mode programs mh with mh-port and mh-fallback and sets
//     sloppy_tcp;
//   - new connections from one client (many source ports) are spread over
//     both directors (each one's IPVS counters grow) and both real servers;
//   - a director dies (cable cut, processes killed): the router drops its
//     next hop when the hold timer expires, and every established
//     connection lives on, including each one that was on the dead director
//     and had to move: the survivor, seeing it mid-flow, picks the same real
//     server (the harness fails a connection answered by another one);
//   - new connections work again through the survivor.
func TestScaleOutECMP(t *testing.T) {
	const hold = 6 * time.Second
	l := newSOLab(t, "lbd", hold)
	l.startDirectors()
	l.waitNextHops(60*time.Second, l.dirs...)
	t.Logf("router:\n%s", l.vtysh("show ip route "+l.vip.String()+"/32"))
	// The router offers FRR's 180s; the session takes lbd's hold_time.
	for _, d := range l.dirs {
		out := l.vtysh("show bgp neighbors " + d.IPv4.Addr().String())
		if want := fmt.Sprintf("Hold time is %d seconds", hold/time.Second); !strings.Contains(out, want) {
			t.Errorf("router's session with %s does not run with lbd's hold_time of %v:\n%s", d.Name, hold, out)
		}
	}

	for _, d := range l.dirs {
		want := fmt.Sprintf("TCP %s:%d mh flags=0x18\n", l.vip, soPort)
		for _, rs := range l.rs {
			want += fmt.Sprintf("  -> %s:%d Route weight=1\n", rs.addr, soPort)
		}
		vmtest.Eventually(t, 30*time.Second, 100*time.Millisecond, "IPVS table of "+d.Name, func() (bool, string) {
			tab, err := vmtest.ReadTable(vmtest.IPVS(t, d.NS))
			if err != nil {
				return false, err.Error()
			}
			return tab.Rules() == want, fmt.Sprintf("have\n%swant\n%s", tab.Rules(), want)
		})
		if v := strings.TrimSpace(d.Exec("cat", "/proc/sys/net/ipv4/vs/sloppy_tcp")); v != "1" {
			t.Errorf("%s: net.ipv4.vs.sloppy_tcp = %s, want 1 in BGP mode", d.Name, v)
		}
	}

	// New connections: spread over both directors and both real servers.
	before := l.dirConnections()
	const fresh = 30
	byServer := map[string]int{}
	for i := 0; i < fresh; i++ {
		r, err := l.get()
		if err != nil {
			t.Fatalf("new connection %d: %v", i+1, err)
		}
		byServer[r.server]++
	}
	// The kernel sums its per-CPU counters into what it reports every 2s
	// (the rate estimator): wait until all the connections show.
	var after []uint64
	vmtest.Eventually(t, 20*time.Second, 200*time.Millisecond, "IPVS counters", func() (bool, string) {
		after = l.dirConnections()
		n := after[0] + after[1] - before[0] - before[1]
		return n >= fresh, fmt.Sprintf("%d of %d new connections counted: %v before, %v now", n, fresh, before, after)
	})
	t.Logf("%d new connections: by director %v (before %v), by real server %v", fresh, after, before, byServer)
	for i, d := range l.dirs {
		if after[i] <= before[i] {
			t.Errorf("%s scheduled none of %d new connections (IPVS connections %d before, %d after)", d.Name, fresh, before[i], after[i])
		}
	}
	for _, rs := range l.rs {
		if byServer[rs.name] == 0 {
			t.Errorf("%s served none of %d new connections: %v", rs.name, fresh, byServer)
		}
	}

	res := l.failover(20)
	t.Logf("failover: %v", res)
	t.Logf("traffic: %v", res.report)
	if res.moved == 0 || res.moved == res.held {
		t.Fatalf("%d of %d held connections on the killed director: the router did not spread them", res.moved, res.held)
	}
	if res.survived != res.held {
		t.Errorf("%d of %d established connections survived the death of a director, want all", res.survived, res.held)
	}
	if res.movedSeen != res.moved {
		t.Errorf("%d of %d connections of the dead director are in the survivor's IPVS table", res.movedSeen, res.moved)
	}
	for i := 0; i < 10; i++ {
		if _, err := l.get(); err != nil {
			t.Fatalf("new connection %d after the failover: %v", i+1, err)
		}
	}
}

// dirConnections reads every director's IPVS connection counter of the
// service (dead directors: 0).
func (l *soLab) dirConnections() []uint64 {
	var n []uint64
	for _, d := range l.dirs {
		tab, err := vmtest.ReadTable(vmtest.IPVS(l.tb, d.NS))
		if err != nil {
			l.tb.Fatal(err)
		}
		n = append(n, tab[fmt.Sprintf("TCP %s:%d", l.vip, soPort)].Stats.Connections)
	}
	return n
}

// get makes one request on a new connection from the client.
func (l *soLab) get() (reply, error) {
	lb := &lab{client: l.client, vip: l.vip}
	return lb.get(soPort)
}

// BenchmarkScaleOutFailover measures, in the scale-out lab, what the death
// of one of two active-active directors does: the share of established
// connections that survive, the time until the router withdrew the dead
// next hop (its hold timer: nothing else tells it) and until every
// connection answered again. Each speaker (LBD_SCALEOUT_SPEAKERS,
// default "lbd lbd+bfd frr": lbd's own [bgp], the same with BFD (FRR's
// bfdd on the router, its default 300ms intervals and multiplier 3), and
// FRR's bgpd beside an lbd without [bgp] as the reference) runs with each hold time (LBD_SCALEOUT_HOLDS,
// default "3s 90s": the smallest, and lbd's default), on a fresh lab each.
func BenchmarkScaleOutFailover(b *testing.B) {
	speakers := strings.Fields(envOr("LBD_SCALEOUT_SPEAKERS", "lbd lbd+bfd frr"))
	var holds []time.Duration
	for _, f := range strings.Fields(envOr("LBD_SCALEOUT_HOLDS", "3s 90s")) {
		d, err := time.ParseDuration(f)
		if err != nil || d < 3*time.Second {
			b.Fatalf("LBD_SCALEOUT_HOLDS: %q: want durations of at least 3s", f)
		}
		holds = append(holds, d)
	}
	const held = 40
	var lines []string
	for _, hold := range holds {
		for _, sp := range speakers {
			b.Run(fmt.Sprintf("%s-hold%v", sp, hold), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					l := newSOLab(b, sp, hold)
					l.startDirectors()
					l.waitNextHops(2*hold+60*time.Second, l.dirs...)
					res := l.failover(held)
					line := fmt.Sprintf("scaleout: speaker=%s hold=%v: %d/%d established connections survived (%.0f%%), %d moved from the dead director; router's session ended by %s, dead next hop out of its kernel after %.2fs; all answering after %.2fs; %d new connections failed during the failover",
						sp, hold, res.survived, res.held, 100*float64(res.survived)/float64(res.held), res.moved,
						res.downReason, res.withdrawn.Seconds(), res.recovered.Seconds(), len(res.report.FreshFailures))
					b.Log(res.report)
					fmt.Println(line)
					lines = append(lines, line)
				}
			})
		}
	}
	fmt.Println("scaleout: summary")
	for _, l := range lines {
		fmt.Println(l)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
