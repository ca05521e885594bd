package healthcheck

import (
	"bytes"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// udpServer answers each datagram with what reply returns (zero or more
// datagrams, in order).
func udpServer(t *testing.T, reply func(req []byte) [][]byte) (string, int) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			for _, b := range reply(append([]byte(nil), buf[:n]...)) {
				_, _ = pc.WriteTo(b, from)
			}
		}
	})
	t.Cleanup(func() { pc.Close(); wg.Wait() })
	return addrOf(t, pc.LocalAddr().String())
}

func TestUDP(t *testing.T) { eachPath(t, testUDP) }

func testUDP(t *testing.T) {
	short := func(s Spec) Spec {
		s.Timeout, s.Interval = 300*time.Millisecond, time.Second
		return s
	}
	// A memcached-like server: "version" gets "VERSION 1.6.21".
	host, port := udpServer(t, func(req []byte) [][]byte {
		if bytes.Equal(req, []byte("version\r\n")) {
			return [][]byte{[]byte("VERSION 1.6.21\r\n")}
		}
		return [][]byte{[]byte("ERROR\r\n")}
	})
	spec := Spec{Type: UDP, Address: host, Port: port, Send: "version\r\n", Expect: `^VERSION \d`}
	wantResult(t, check(t, spec, nil), true, "reply matched")
	spec.Expect = ""
	wantResult(t, check(t, spec, nil), true, "reply received")
	spec.Send, spec.Expect = "stats\r\n", `^VERSION`
	wantResult(t, check(t, short(spec), nil), false, `reply mismatch (timeout): "ERROR\r\n"`)

	// Several datagrams: the matching one need not be the first.
	host, port = udpServer(t, func([]byte) [][]byte { return [][]byte{[]byte("noise"), []byte("PONG")} })
	wantResult(t, check(t, Spec{Type: UDP, Address: host, Port: port, Send: "PING", Expect: "^PONG$"}, nil), true, "reply matched")

	// Silence: a server that ignores the payload, or is gone.
	host, port = udpServer(t, func([]byte) [][]byte { return nil })
	wantResult(t, check(t, short(Spec{Type: UDP, Address: host, Port: port, Send: "PING"}), nil), false, "no reply (timeout)")

	// Nothing listens: the ICMP port unreachable ends the check at once.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, closed := addrOf(t, pc.LocalAddr().String())
	pc.Close()
	start := time.Now()
	spec = Spec{Type: UDP, Address: "127.0.0.1", Port: closed, Send: "PING", Timeout: 3 * time.Second, Interval: 5 * time.Second}
	wantResult(t, check(t, spec, nil), false, "port unreachable")
	if el := time.Since(start); el > time.Second {
		t.Errorf("port unreachable took %v, want at once", el)
	}

	// A big reply is read whole (up to MaxBody).
	big := strings.Repeat("x", 60000) + "END"
	host, port = udpServer(t, func([]byte) [][]byte { return [][]byte{[]byte(big)} })
	wantResult(t, check(t, Spec{Type: UDP, Address: host, Port: port, Send: "GET", Expect: "END$"}, nil), true, "reply matched")
}

func TestUDPSpecValidation(t *testing.T) {
	for _, b := range []struct {
		spec Spec
		want string
	}{
		{Spec{Type: UDP, Address: "10.0.0.1", Port: 53}, "udp needs a payload to send"},
		{Spec{Type: UDP, Address: "10.0.0.1", Port: 53, Send: "x", Expect: "[a-"}, "expect: error parsing regexp"},
	} {
		if _, err := b.spec.Normalize(); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("Normalize(%+v) = %v, want error containing %q", b.spec, err, b.want)
		}
	}
}
