package healthcheck

import (
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// zone answers like a small authoritative server: the root SOA,
// example.org A and TXT, NXDOMAIN for the rest.
func zone(q *dns.Msg) *dns.Msg {
	r := new(dns.Msg)
	r.SetReply(q)
	qq := q.Question[0]
	switch {
	case qq.Name == "." && qq.Qtype == dns.TypeSOA:
		rr, _ := dns.NewRR(". 3600 IN SOA a.root. nstld. 2026112900 1800 900 604800 86400")
		r.Answer = append(r.Answer, rr)
	case strings.EqualFold(qq.Name, "example.org.") && qq.Qtype == dns.TypeA:
		a1, _ := dns.NewRR("example.org. 300 IN A 192.0.2.1")
		a2, _ := dns.NewRR("example.org. 300 IN A 192.0.2.2")
		r.Answer = append(r.Answer, a1, a2)
	case strings.EqualFold(qq.Name, "example.org."):
		// NODATA: the name exists.
	default:
		r.Rcode = dns.RcodeNameError
	}
	return r
}

// udpResponder answers each datagram with what reply returns (zero or
// more datagrams, sent in order).
func udpResponder(t *testing.T, pc net.PacketConn, reply func(q *dns.Msg, raw []byte) [][]byte) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			raw := append([]byte(nil), buf[:n]...)
			q := new(dns.Msg)
			if q.Unpack(raw) != nil || len(q.Question) != 1 {
				continue
			}
			for _, b := range reply(q, raw) {
				_, _ = pc.WriteTo(b, from)
			}
		}
	})
	t.Cleanup(func() { pc.Close(); wg.Wait() })
}

// tcpResponder serves DNS over TCP on l: each query gets what reply
// returns, written as is (length prefixes included).
func tcpResponder(t *testing.T, l net.Listener, reply func(q *dns.Msg) []byte) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				for {
					var n uint16
					if binary.Read(c, binary.BigEndian, &n) != nil {
						return
					}
					raw := make([]byte, n)
					if _, err := io.ReadFull(c, raw); err != nil {
						return
					}
					q := new(dns.Msg)
					if q.Unpack(raw) != nil {
						return
					}
					if b := reply(q); b != nil {
						_, _ = c.Write(b)
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

func pack(t *testing.T, m *dns.Msg) []byte {
	b, err := m.Pack()
	if err != nil {
		t.Error(err)
	}
	return b
}

func framed(b []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)
}

// dnsPorts listens on one loopback port for UDP and TCP (DNS serves both
// on the same port); tcp is nil when without is set.
func dnsPorts(t *testing.T, withTCP bool) (string, int, net.PacketConn, net.Listener) {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		host, port := addrOf(t, pc.LocalAddr().String())
		if !withTCP {
			return host, port, pc, nil
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return host, port, pc, l
		}
		pc.Close()
	}
	t.Fatal("no loopback port free for both UDP and TCP")
	return "", 0, nil, nil
}

// zoneServer is a well-behaved DNS server on UDP and TCP.
func zoneServer(t *testing.T) (string, int) {
	host, port, pc, l := dnsPorts(t, true)
	udpResponder(t, pc, func(q *dns.Msg, _ []byte) [][]byte { return [][]byte{pack(t, zone(q))} })
	tcpResponder(t, l, func(q *dns.Msg) []byte { return framed(pack(t, zone(q))) })
	return host, port
}

func TestDNS(t *testing.T) { eachPath(t, testDNS) }

func testDNS(t *testing.T) {
	host, port := zoneServer(t)
	spec := func(mod func(*Spec)) Spec {
		s := Spec{Type: DNS, Address: host, Port: port}
		mod(&s)
		return s
	}
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			tr := func(s *Spec) { s.DNSTransport = transport }
			wantResult(t, check(t, spec(tr), nil), true, "rcode NOERROR")
			wantResult(t, check(t, spec(func(s *Spec) {
				tr(s)
				s.QueryName, s.QueryType, s.ExpectAnswer = "example.org", "a", "192.0.2.2"
			}), nil), true, "rcode NOERROR, answer 192.0.2.2")
			wantResult(t, check(t, spec(func(s *Spec) {
				tr(s)
				s.QueryName, s.QueryType, s.ExpectAnswer = "example.org", "A", "::ffff:192.0.2.1"
			}), nil), true, "rcode NOERROR, answer 192.0.2.1")
			wantResult(t, check(t, spec(func(s *Spec) {
				tr(s)
				s.QueryName, s.QueryType, s.ExpectAnswer = "example.org", "A", "192.0.2.9"
			}), nil), false, "answer: 192.0.2.9 not among 2 answer records")
			wantResult(t, check(t, spec(func(s *Spec) {
				tr(s)
				s.QueryName, s.QueryType, s.ExpectAnswer = "example.org.", "A", `IN\s+A\s+192\.0\.2\.1$`
			}), nil), true, "rcode NOERROR, answer matched")
			wantResult(t, check(t, spec(func(s *Spec) {
				tr(s)
				s.QueryName, s.QueryType, s.ExpectAnswer = "example.org", "AAAA", `.`
			}), nil), false, "answer: none of 0 answer records matches")
			wantResult(t, check(t, spec(func(s *Spec) {
				tr(s)
				s.QueryName = "nosuch.example.org"
			}), nil), false, "rcode NXDOMAIN (want NOERROR)")
			wantResult(t, check(t, spec(func(s *Spec) {
				tr(s)
				s.QueryName, s.ExpectRcode = "nosuch.example.org", "nxdomain"
			}), nil), true, "rcode NXDOMAIN")
		})
	}
	// Nobody there: ICMP port unreachable over UDP, a refused connection
	// over TCP.
	_, _, pc, _ := dnsPorts(t, false)
	_, closed := addrOf(t, pc.LocalAddr().String())
	pc.Close()
	wantResult(t, check(t, Spec{Type: DNS, Address: host, Port: closed}, nil), false, "port unreachable")
	wantResult(t, check(t, Spec{Type: DNS, Address: host, Port: closedPort(t), DNSTransport: "tcp"}, nil), false, "connect: connection refused")
	// A name as the target is resolved at each check.
	wantResult(t, check(t, Spec{Type: DNS, Address: "localhost", CheckAddress: "", Port: port, DNSTransport: "tcp"}, nil), true, "rcode NOERROR")
}

func TestDNSHostile(t *testing.T) { eachPath(t, testDNSHostile) }

func testDNSHostile(t *testing.T) {
	short := func(s Spec) Spec {
		s.Timeout, s.Interval = 300*time.Millisecond, time.Second
		return s
	}
	wrongID := func(q *dns.Msg) *dns.Msg {
		r := zone(q)
		r.Id = q.Id ^ 0x5a5a
		return r
	}

	t.Run("another id first", func(t *testing.T) {
		host, port, pc, _ := dnsPorts(t, false)
		udpResponder(t, pc, func(q *dns.Msg, _ []byte) [][]byte {
			return [][]byte{pack(t, wrongID(q)), pack(t, wrongID(q)), pack(t, zone(q))}
		})
		wantResult(t, check(t, Spec{Type: DNS, Address: host, Port: port}, nil), true, "rcode NOERROR")
	})
	t.Run("only other ids", func(t *testing.T) {
		host, port, pc, l := dnsPorts(t, true)
		udpResponder(t, pc, func(q *dns.Msg, _ []byte) [][]byte { return [][]byte{pack(t, wrongID(q))} })
		tcpResponder(t, l, func(q *dns.Msg) []byte { return framed(pack(t, wrongID(q))) })
		wantResult(t, check(t, short(Spec{Type: DNS, Address: host, Port: port}), nil), false, "no reply (timeout)")
		wantResult(t, check(t, Spec{Type: DNS, Address: host, Port: port, DNSTransport: "tcp"}, nil), false, "reply with another id")
	})
	t.Run("echo", func(t *testing.T) {
		// A UDP echo server sends the query back: same id, rcode 0, but
		// not an answer.
		host, port, pc, _ := dnsPorts(t, false)
		udpResponder(t, pc, func(_ *dns.Msg, raw []byte) [][]byte { return [][]byte{raw} })
		wantResult(t, check(t, Spec{Type: DNS, Address: host, Port: port}, nil), false, "bad reply: not a response")
	})
	t.Run("another question", func(t *testing.T) {
		host, port, pc, _ := dnsPorts(t, false)
		udpResponder(t, pc, func(q *dns.Msg, _ []byte) [][]byte {
			r := zone(q)
			r.Question[0].Name = "example.net."
			return [][]byte{pack(t, r)}
		})
		wantResult(t, check(t, Spec{Type: DNS, Address: host, Port: port}, nil), false, "bad reply: not to our question")
	})
	t.Run("garbage", func(t *testing.T) {
		host, port, pc, _ := dnsPorts(t, false)
		udpResponder(t, pc, func(q *dns.Msg, _ []byte) [][]byte {
			// The right id, then a header promising records that are not
			// there.
			b := pack(t, zone(q))[:12]
			b[7] = 5 // ancount
			return [][]byte{append(b, 0xff, 0xff)}
		})
		wantResult(t, check(t, Spec{Type: DNS, Address: host, Port: port}, nil), false, "bad reply: ")
	})
	t.Run("truncated then tcp", func(t *testing.T) {
		host, port, pc, l := dnsPorts(t, true)
		udpResponder(t, pc, func(q *dns.Msg, _ []byte) [][]byte {
			r := zone(q)
			r.Truncated = true
			full := pack(t, r)
			// Cut inside the answer: as a server that truncates bytes
			// rather than records would.
			return [][]byte{full[:len(full)-7]}
		})
		tcpResponder(t, l, func(q *dns.Msg) []byte { return framed(pack(t, zone(q))) })
		wantResult(t, check(t, Spec{Type: DNS, Address: host, Port: port, QueryName: "example.org", QueryType: "A", ExpectAnswer: "192.0.2.1"}, nil),
			true, "rcode NOERROR, answer 192.0.2.1 (over tcp after a truncated udp reply)")
	})
	t.Run("truncated without tcp", func(t *testing.T) {
		host, port, pc, _ := dnsPorts(t, false)
		udpResponder(t, pc, func(q *dns.Msg, _ []byte) [][]byte {
			r := zone(q)
			r.Truncated, r.Answer = true, nil
			return [][]byte{pack(t, r)}
		})
		wantResult(t, check(t, Spec{Type: DNS, Address: host, Port: port}, nil), false, "truncated udp reply; tcp: connect: connection refused")
	})
	t.Run("tcp reply cut short", func(t *testing.T) {
		host, port := tcpOnly(t, func(q *dns.Msg) []byte {
			b := framed(pack(t, zone(q)))
			return b[:len(b)-5]
		}, true)
		wantResult(t, check(t, short(Spec{Type: DNS, Address: host, Port: port, DNSTransport: "tcp"}), nil), false, "read: ")
	})
	t.Run("tcp never answers", func(t *testing.T) {
		host, port := tcpOnly(t, func(*dns.Msg) []byte { return nil }, false)
		wantResult(t, check(t, short(Spec{Type: DNS, Address: host, Port: port, DNSTransport: "tcp"}), nil), false, "no reply (timeout)")
	})
	t.Run("udp never answers", func(t *testing.T) {
		host, port, pc, _ := dnsPorts(t, false)
		udpResponder(t, pc, func(*dns.Msg, []byte) [][]byte { return nil })
		wantResult(t, check(t, short(Spec{Type: DNS, Address: host, Port: port}), nil), false, "no reply (timeout)")
	})
}

// tcpOnly serves DNS over TCP with reply; closeAfter closes the
// connection after the reply.
func tcpOnly(t *testing.T, reply func(*dns.Msg) []byte, closeAfter bool) (string, int) {
	return rawListener(t, func(c net.Conn) {
		defer c.Close()
		var n uint16
		if binary.Read(c, binary.BigEndian, &n) != nil {
			return
		}
		raw := make([]byte, n)
		if _, err := io.ReadFull(c, raw); err != nil {
			return
		}
		q := new(dns.Msg)
		if q.Unpack(raw) != nil {
			return
		}
		if b := reply(q); b != nil {
			_, _ = c.Write(b)
		}
		if !closeAfter {
			_, _ = io.Copy(io.Discard, c)
		}
	})
}

func TestDNSSpecValidation(t *testing.T) {
	for _, b := range []struct {
		spec Spec
		want string
	}{
		{Spec{Type: DNS, Address: "10.0.0.1", Port: 53, QueryType: "NOPE"}, `query_type "NOPE" is not a DNS record type`},
		{Spec{Type: DNS, Address: "10.0.0.1", Port: 53, QueryName: "a..b"}, `query_name "a..b" is not a domain name`},
		{Spec{Type: DNS, Address: "10.0.0.1", Port: 53, ExpectRcode: "FINE"}, `expect_rcode "FINE"`},
		{Spec{Type: DNS, Address: "10.0.0.1", Port: 53, DNSTransport: "quic"}, `dns_transport "quic"`},
		{Spec{Type: DNS, Address: "10.0.0.1", Port: 53, ExpectAnswer: "(("}, "expect_answer: error parsing regexp"},
	} {
		if _, err := b.spec.Normalize(); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("Normalize(%+v) = %v, want error containing %q", b.spec, err, b.want)
		}
	}
	s, err := Spec{Type: DNS, Address: "10.0.0.1", Port: 53}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	if s.QueryName != "." || s.QueryType != "SOA" || s.DNSTransport != "udp" || s.ExpectRcode != "NOERROR" {
		t.Errorf("dns defaults: %+v", s)
	}
}
