package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// The dns check asks one question and judges the reply. Messages are
// packed, parsed and exchanged by github.com/miekg/dns (CoreDNS's library):
// DNS has too many corners (name compression, EDNS, every record type's
// text form) to parse by hand in a health checker. What the library does
// not decide is ours:
//
//   - A reply with another id is not the answer: over UDP it is ignored
//     and the check keeps reading until the deadline (it may be a late
//     answer to an earlier query, or a spoof), even when it does not
//     parse; over TCP, where the stream carries one exchange, it is a
//     failure. (The library's Client.Exchange would stop at the first
//     datagram that does not parse, whatever its id, so the checker
//     writes and reads with the library's Conn itself.)
//   - A reply must be a response (QR set) to our question: a server that
//     echoes datagrams back must not pass for a DNS server.
//   - A truncated UDP reply (TC set) is asked again over TCP within the
//     same deadline, as a resolver would: the rcode of a truncated reply may
//     be fine, but its answer section is not to be judged, and a DNS server
//     must serve TCP anyway (RFC 7766). A server without TCP then fails with
//     "truncated udp reply; tcp: ...".
//   - Over UDP the query carries EDNS0 with a 1232-byte buffer (the 2020
//     DNS flag day's size) so that ordinary answers are not truncated.
//   - An ICMP port unreachable (ECONNREFUSED on the connected socket) is
//     "port unreachable".

// Cost (make bench-health -type dns: 10,000 loopback UDP servers checked
// every second, 2 cores shared with other work, 29 Nov 2026): 1.3 to 1.6 cores
// per 10,000 checks/s against 0.46 for tcp in the same hour. A profile
// puts 55% of it in the query's write, where the kernel delivers the
// datagram over loopback to the server and wakes it, billed to the
// checker, and about 25% in opening and closing net's UDP socket per
// check. A worker's socket kept from check to check, as the tcp checks
// do, would save at most that quarter; not done yet.

// ednsSize is the UDP payload size advertised in EDNS0 queries.
const ednsSize = 1232

// dnsQuery is a dns Spec's question and expectations, parsed.
type dnsQuery struct {
	question dns.Question
	tcp      bool
	rcode    int
	answerIP netip.Addr     // valid: an A or AAAA answer must hold it
	answerRE *regexp.Regexp // else, non-nil: an answer's text must match
}

// parseDNSSpec checks and parses a normalized dns Spec's settings.
func parseDNSSpec(s Spec) (dnsQuery, error) {
	var q dnsQuery
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	name := dns.Fqdn(s.QueryName)
	if _, ok := dns.IsDomainName(name); !ok || strings.ContainsAny(name, " \t\r\n") {
		bad("query_name %q is not a domain name", s.QueryName)
	}
	qtype, ok := dns.StringToType[strings.ToUpper(s.QueryType)]
	if !ok || qtype == dns.TypeNone {
		bad("query_type %q is not a DNS record type", s.QueryType)
	}
	switch s.DNSTransport {
	case "udp":
	case "tcp":
		q.tcp = true
	default:
		bad("dns_transport %q: want udp or tcp", s.DNSTransport)
	}
	rcode, ok := dns.StringToRcode[strings.ToUpper(s.ExpectRcode)]
	if !ok {
		bad("expect_rcode %q is not a DNS rcode (NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ...)", s.ExpectRcode)
	}
	if a, err := netip.ParseAddr(s.ExpectAnswer); err == nil {
		q.answerIP = a.Unmap()
	} else if s.ExpectAnswer != "" {
		re, err := regexp.Compile(s.ExpectAnswer)
		if err != nil {
			bad("expect_answer: %v", err)
		}
		q.answerRE = re
	}
	q.question = dns.Question{Name: name, Qtype: qtype, Qclass: dns.ClassINET}
	q.rcode = rcode
	return q, errors.Join(errs...)
}

type dnsChecker struct {
	target *target
	q      dnsQuery
}

func newDNSChecker(s Spec, t *target) (*dnsChecker, error) {
	q, err := parseDNSSpec(s)
	if err != nil {
		return nil, err
	}
	return &dnsChecker{target: t, q: q}, nil
}

func (c *dnsChecker) Check(ctx context.Context) Result {
	var res Result
	errDown := errors.New("down")
	err := c.target.eachAddr(ctx, func(ap netip.AddrPort) error {
		res = c.ask(ctx, ap, c.q.tcp)
		if !res.Up && !c.q.tcp && res.Reason == "truncated" {
			if r := c.ask(ctx, ap, true); r.Up {
				res = up(r.Reason + " (over tcp after a truncated udp reply)")
			} else {
				res = down("truncated udp reply; tcp: " + r.Reason)
			}
		}
		if !res.Up {
			return errDown
		}
		return nil
	})
	if err != nil && err != errDown {
		return failed("resolve", err)
	}
	return res
}

// ask makes one exchange with ap and judges the reply. A UDP reply with
// the TC bit comes back as down("truncated").
func (c *dnsChecker) ask(ctx context.Context, ap netip.AddrPort, tcp bool) Result {
	m := &dns.Msg{
		MsgHdr:   dns.MsgHdr{Id: dns.Id(), RecursionDesired: true, Opcode: dns.OpcodeQuery},
		Question: []dns.Question{c.q.question},
	}
	var co *dns.Conn
	if tcp {
		// The checks' own TCP path: a RST at the end, no TIME_WAIT.
		cc, err := c.target.dial(ctx)
		if err != nil {
			return failed("connect", err)
		}
		defer cc.done()
		co = &dns.Conn{Conn: cc}
	} else {
		m.SetEdns0(ednsSize, false)
		uc, err := c.target.dialUDP(ap)
		if err != nil {
			return failed("connect", err)
		}
		defer uc.Close()
		// The library sets deadlines from the context's deadline; a
		// cancellation (the Scheduler stopping) must end the wait too.
		stop := context.AfterFunc(ctx, func() { _ = uc.SetDeadline(time.Unix(1, 0)) })
		defer stop()
		co = &dns.Conn{Conn: uc}
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = co.SetDeadline(dl)
	}
	co.UDPSize = ednsSize // the read buffer
	if err := co.WriteMsg(m); err != nil {
		return failed("send", err)
	}
	for {
		// ReadMsg returns the header with an error when the rest does
		// not parse: a truncated reply may be cut inside a record.
		r, err := co.ReadMsg()
		switch {
		case r == nil:
			return dnsFailed(err, tcp)
		case r.Id != m.Id && tcp:
			// A stream carries our exchange only.
			return down("reply with another id")
		case r.Id != m.Id:
			// Not the answer to this query (a late one, or a spoof):
			// keep waiting for ours until the deadline.
			continue
		case err != nil && r.Response && r.Truncated && !tcp:
			return down("truncated")
		case err != nil:
			return down("bad reply: " + describe(err))
		}
		return c.judge(r, tcp)
	}
}

// dnsFailed describes a failed read.
func dnsFailed(err error, tcp bool) Result {
	switch {
	case !tcp && errors.Is(err, syscall.ECONNREFUSED):
		return down("port unreachable")
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return down("no reply (timeout)")
	}
	return failed("read", err)
}

// judge decides on a reply to our query (the id already matched).
func (c *dnsChecker) judge(r *dns.Msg, tcp bool) Result {
	if !r.Response {
		return down("bad reply: not a response (QR unset)")
	}
	if len(r.Question) != 1 || !strings.EqualFold(r.Question[0].Name, c.q.question.Name) ||
		r.Question[0].Qtype != c.q.question.Qtype || r.Question[0].Qclass != c.q.question.Qclass {
		return down("bad reply: not to our question")
	}
	if r.Truncated && !tcp {
		return down("truncated")
	}
	if r.Rcode != c.q.rcode {
		return down(fmt.Sprintf("rcode %s (want %s)", rcodeName(r.Rcode), rcodeName(c.q.rcode)))
	}
	switch {
	case c.q.answerIP.IsValid():
		for _, rr := range r.Answer {
			var ip net.IP
			switch a := rr.(type) {
			case *dns.A:
				ip = a.A
			case *dns.AAAA:
				ip = a.AAAA
			default:
				continue
			}
			if got, ok := netip.AddrFromSlice(ip); ok && got.Unmap() == c.q.answerIP {
				return up("rcode " + rcodeName(r.Rcode) + ", answer " + c.q.answerIP.String())
			}
		}
		return down(fmt.Sprintf("answer: %s not among %d answer records", c.q.answerIP, len(r.Answer)))
	case c.q.answerRE != nil:
		for _, rr := range r.Answer {
			if c.q.answerRE.MatchString(rr.String()) {
				return up("rcode " + rcodeName(r.Rcode) + ", answer matched")
			}
		}
		return down(fmt.Sprintf("answer: none of %d answer records matches", len(r.Answer)))
	}
	return up("rcode " + rcodeName(r.Rcode))
}

func rcodeName(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", rc)
}
