//go:build vm

package e2e

import (
	"net"
	"testing"
	"time"
)

// TestDRTraffic sends requests from the client to the VIP through a real
// lbd in direct-routing mode: round robin must alternate between the real
// servers, each real server must see the client's own address, and every
// reply frame must come straight from the real server that served it (its
// MAC), never through the director.
func TestDRTraffic(t *testing.T) {
	l := newDRLab(t)
	web := vs{name: "web", port: 80, sched: "rr", rs: l.rsAll()}
	d := l.startLBD(l.config("", web))
	l.waitRules(d, l.rules(web), 60*time.Second)

	sn := l.sniff(80)
	replies := l.mustGet(80, 8)
	checkAlternates(t, replies, "rs1", "rs2")
	for i, r := range replies {
		checkSeenClient(t, l, i, r)
		want := l.serverNamed(r.server).mac.String()
		frames := sn.framesTo(r.localPort, 2) // at least SYN-ACK and data
		if len(frames) < 2 {
			t.Errorf("request %d: sniffed %d reply frames, want at least 2", i+1, len(frames))
		}
		for _, f := range frames {
			if f.srcIP != l.vip {
				t.Errorf("request %d: reply from %v, want the VIP %v", i+1, f.srcIP, l.vip)
			}
			if f.srcMAC != want {
				t.Errorf("request %d (served by %s, MAC %s): reply frame from MAC %s (director %s)", i+1, r.server, want, f.srcMAC, l.dirMAC)
			}
		}
	}
}

// TestNATTraffic does the same in NAT mode: the real servers sit on a
// back network behind the director, which rewrites the destination on the
// way in and the source on the way back, so every reply frame comes from
// the director with the VIP as source, while the real servers still see the
// client's address.
func TestNATTraffic(t *testing.T) {
	l := newNATLab(t)
	web := vs{name: "web", port: 80, sched: "rr", rs: l.rsAll()}
	d := l.startLBD(l.config("", web))
	l.waitRules(d, l.rules(web), 60*time.Second)

	sn := l.sniff(80)
	replies := l.mustGet(80, 8)
	checkAlternates(t, replies, "rs1", "rs2")
	for i, r := range replies {
		checkSeenClient(t, l, i, r)
		frames := sn.framesTo(r.localPort, 2)
		if len(frames) < 2 {
			t.Errorf("request %d: sniffed %d reply frames, want at least 2", i+1, len(frames))
		}
		for _, f := range frames {
			if f.srcIP != l.vip || f.srcMAC != l.dirMAC.String() {
				t.Errorf("request %d (served by %s): reply frame from %v / %s, want the VIP %v from the director's MAC %s",
					i+1, r.server, f.srcIP, f.srcMAC, l.vip, l.dirMAC)
			}
		}
	}
}

// checkAlternates asserts strict round robin over two servers.
func checkAlternates(t *testing.T, replies []reply, a, b string) {
	t.Helper()
	count := map[string]int{}
	for i, r := range replies {
		count[r.server]++
		if i > 0 && r.server == replies[i-1].server {
			t.Errorf("requests %d and %d both served by %s: round robin does not alternate", i, i+1, r.server)
		}
	}
	if count[a] != len(replies)/2 || count[b] != len(replies)/2 {
		t.Errorf("served by %v, want %d each from %s and %s", count, len(replies)/2, a, b)
	}
}

func checkSeenClient(t *testing.T, l *lab, i int, r reply) {
	t.Helper()
	host, _, err := net.SplitHostPort(r.seenFrom)
	if err != nil || host != l.client.IPv4.Addr().String() {
		t.Errorf("request %d: %s saw the client as %q, want %v", i+1, r.server, r.seenFrom, l.client.IPv4.Addr())
	}
}
