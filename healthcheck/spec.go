package healthcheck

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Type names a checker.
type Type string

// Checker types.
const (
	TCP        Type = "tcp"         // TCP connect
	HTTP       Type = "http"        // one HTTP/1.1 request on a fresh connection
	HTTPS      Type = "https"       // the same over TLS
	SendExpect Type = "send_expect" // send a string, match the reply against a regexp
	Exec       Type = "exec"        // run a program, exit 0 = up
	DNS        Type = "dns"         // one DNS question over UDP or TCP
	UDP        Type = "udp"         // send a datagram, match the reply against a regexp
	SMTP       Type = "smtp"        // banner, EHLO (STARTTLS), QUIT
)

// Defaults applied by Spec.Normalize to zero-valued fields, for callers
// that leave them out (tests, benchhealth). lbd's defaults are config's:
// the director hands over fully resolved specs, which Normalize leaves as
// they are, and its agreement test keeps these equal to config's defaults.
const (
	DefaultInterval = 2 * time.Second
	DefaultTimeout  = time.Second
	DefaultRise     = 2
	DefaultFall     = 3
	DefaultMethod   = "GET"
	DefaultPath     = "/"
	DefaultStatus   = "200-399"

	DefaultQueryName    = "."
	DefaultQueryType    = "SOA"
	DefaultDNSTransport = "udp" // DNS's own; lbd's config defaults to the service's protocol
	DefaultExpectRcode  = "NOERROR"
	DefaultHeloName     = "localhost" // lbd's config defaults to the node name
)

// Spec describes one check of one target. Zero values mean the defaults
// above. Two Specs that normalize to the same target and settings are the
// same check: the Scheduler runs it once for all IDs that registered it.
type Spec struct {
	Type Type

	// Address and Port are the real server. CheckAddress and CheckPort,
	// when set, send the check elsewhere (a health endpoint on another
	// port or host); exec's %h and %p are the address and port checked.
	Address      string // IP literal or host name
	Port         int
	CheckAddress string
	CheckPort    int

	Interval time.Duration // between the starts of two checks; default 2s
	Timeout  time.Duration // per check; must be < Interval; default 1s
	Rise     int           // consecutive successes to come back up; default 2
	Fall     int           // consecutive failures to go down; default 3

	// http / https
	Method string // default GET
	Path   string // default /
	// Host is the Host header; default the address checked (with the port
	// when it is not the scheme's default).
	Host string
	// SNI is the TLS server name; default Host when it is a name (an IP
	// address is never sent as SNI).
	SNI string
	// ExpectStatus lists accepted status codes, each "200" or "200-399";
	// default 200-399.
	ExpectStatus []string
	// ExpectBody is a regular expression that the first MaxBody bytes of
	// the body must match; empty = not checked.
	ExpectBody string
	// TLSVerify verifies the server certificate against the name in SNI
	// (or Host, or the address). Off by default: real servers often have
	// certificates for the VIP's name, not their own address.
	TLSVerify bool

	// send_expect: Send is written as is (may be empty for banner
	// protocols), then the reply must match the regular expression Expect
	// (empty = connect and send only).
	// udp: Send is the datagram (required), Expect a regular expression
	// one reply datagram must match (empty = any reply).
	Send   string
	Expect string

	// exec: argv; %h and %p in any argument are replaced by the address
	// and port checked.
	Command []string

	// dns: the question is QueryName (default ".") of QueryType (a type
	// name such as A, AAAA, SOA; default SOA), class IN, asked over
	// DNSTransport ("udp" or "tcp"; default udp). The reply must carry
	// ExpectRcode (a name such as NOERROR, NXDOMAIN; default NOERROR) and,
	// when ExpectAnswer is set, an answer matching it: an IP address must be
	// among the A/AAAA answers, anything else is a regular expression that
	// one answer record in zone-file form ("example.com.\t300\tIN\tA\t...")
	// must match.
	QueryName    string
	QueryType    string
	DNSTransport string
	ExpectRcode  string
	ExpectAnswer string

	// smtp: HeloName is EHLO's argument (default localhost); StartTLS
	// upgrades the session after EHLO, with SNI and TLSVerify as for https
	// (the server name defaults to the address checked).
	HeloName string
	StartTLS bool

	// ThroughVIP, when set, sends the check to the service's virtual IP
	// (same port as the check) with the firewall mark Mark on the socket,
	// instead of to the real server's own address: the director's IPVS
	// holds a firewall-mark service for Mark whose only destination is
	// this real server, so the check travels the way client traffic does
	// (DR/TUN) and fails on a real server that does not accept the VIP.
	// The source address is the director's own on the route to Address,
	// never the VIP (a real server answers the VIP to its own lo). When
	// the check fails, the real server's own address is tried once to
	// tell "server down" from "does not accept the VIP".
	ThroughVIP string
	Mark       uint32
}

// MaxBody bounds how much of a reply a checker reads (HTTP body,
// send_expect reply): a misbehaving server cannot make a check slow or big.
const MaxBody = 64 << 10

// Target returns the address and port actually checked (through the VIP,
// the real server's address: the VIP is only the way there).
func (s Spec) Target() (string, int) {
	host, port := s.Address, s.Port
	if s.CheckAddress != "" {
		host = s.CheckAddress
	}
	if s.CheckPort != 0 {
		port = s.CheckPort
	}
	return host, port
}

// Normalize returns s with the zero-value defaults above filled in, and
// validated. Errors name the offending field.
func (s Spec) Normalize() (Spec, error) {
	if s.Interval == 0 {
		s.Interval = DefaultInterval
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultTimeout
	}
	if s.Rise == 0 {
		s.Rise = DefaultRise
	}
	if s.Fall == 0 {
		s.Fall = DefaultFall
	}
	if s.Type == HTTP || s.Type == HTTPS {
		if s.Method == "" {
			s.Method = DefaultMethod
		}
		if s.Path == "" {
			s.Path = DefaultPath
		}
		if len(s.ExpectStatus) == 0 {
			s.ExpectStatus = []string{DefaultStatus}
		}
	}
	if s.Type == DNS {
		if s.QueryName == "" {
			s.QueryName = DefaultQueryName
		}
		if s.QueryType == "" {
			s.QueryType = DefaultQueryType
		}
		if s.DNSTransport == "" {
			s.DNSTransport = DefaultDNSTransport
		}
		if s.ExpectRcode == "" {
			s.ExpectRcode = DefaultExpectRcode
		}
	}
	if s.Type == SMTP && s.HeloName == "" {
		s.HeloName = DefaultHeloName
	}
	return s, s.validate()
}

func (s Spec) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	switch s.Type {
	case TCP, HTTP, HTTPS, SendExpect, Exec, DNS, UDP, SMTP:
	case "":
		bad("type is empty")
	default:
		bad("unknown type %q (want tcp, http, https, send_expect, exec, dns, udp or smtp)", s.Type)
	}
	host, port := s.Target()
	if host == "" {
		bad("no address to check")
	} else if strings.ContainsAny(host, " \t\r\n/") {
		bad("bad address %q", host)
	}
	minPort := 1
	if s.Type == Exec {
		minPort = 0 // fwmark services have no port; the program may not need one
	}
	if port < minPort || port > 65535 {
		bad("port %d out of range %d..65535", port, minPort)
	}
	if s.Interval < 0 {
		bad("interval %v is negative", s.Interval)
	}
	if s.Timeout <= 0 {
		bad("timeout %v must be positive", s.Timeout)
	} else if s.Timeout >= s.Interval {
		// A check still running when the next is due would either pile
		// up or be skipped; both hide the real cadence.
		bad("timeout %v must be shorter than interval %v", s.Timeout, s.Interval)
	}
	if s.Rise < 1 {
		bad("rise %d must be at least 1", s.Rise)
	}
	if s.Fall < 1 {
		bad("fall %d must be at least 1", s.Fall)
	}

	if s.Type == HTTP || s.Type == HTTPS {
		if !isToken(s.Method) {
			bad("bad HTTP method %q", s.Method)
		}
		if !strings.HasPrefix(s.Path, "/") || strings.ContainsAny(s.Path, " \t\r\n") {
			bad("bad HTTP path %q (must start with / and contain no spaces)", s.Path)
		}
		if strings.ContainsAny(s.Host, " \t\r\n") {
			bad("bad Host header %q", s.Host)
		}
		if strings.ContainsAny(s.SNI, " \t\r\n/:") {
			bad("bad SNI %q", s.SNI)
		}
		if _, err := parseStatusRanges(s.ExpectStatus); err != nil {
			errs = append(errs, err)
		}
		if _, err := regexp.Compile(s.ExpectBody); err != nil {
			bad("expect_body: %v", err)
		}
	}
	if s.Type == SendExpect || s.Type == UDP {
		if _, err := regexp.Compile(s.Expect); err != nil {
			bad("expect: %v", err)
		}
	}
	if s.ThroughVIP != "" || s.Mark != 0 {
		a, err := netip.ParseAddr(s.ThroughVIP)
		switch {
		case err != nil:
			bad("through-VIP check: bad VIP %q", s.ThroughVIP)
		case s.Mark == 0:
			bad("through-VIP check needs a firewall mark")
		case s.Type == Exec:
			bad("an exec check cannot go through the VIP")
		case s.CheckAddress != "":
			bad("a check sent to another address cannot go through the VIP")
		default:
			if ra, err := netip.ParseAddr(s.Address); err != nil || ra.Unmap().Is4() != a.Unmap().Is4() {
				bad("through-VIP check: real server %q must be an IP address of the VIP's family", s.Address)
			}
		}
	}
	if s.Type == UDP && s.Send == "" {
		// A datagram with no payload is legal but few servers answer it,
		// and an empty send is more likely a forgotten setting.
		bad("udp needs a payload to send")
	}
	if s.Type == SMTP {
		if s.HeloName == "" || strings.ContainsAny(s.HeloName, " \t\r\n") || len(s.HeloName) > 255 {
			bad("bad helo name %q", s.HeloName)
		}
		if strings.ContainsAny(s.SNI, " \t\r\n/:") {
			bad("bad SNI %q", s.SNI)
		}
	}
	if s.Type == DNS {
		if _, err := parseDNSSpec(s); err != nil {
			errs = append(errs, err)
		}
	}
	if s.Type == Exec {
		if len(s.Command) == 0 || s.Command[0] == "" {
			bad("exec needs a command")
		} else if !strings.Contains(s.Command[0], "%") {
			if _, err := exec.LookPath(s.Command[0]); err != nil {
				bad("command %q: %v", s.Command[0], unwrapExecErr(err))
			}
		}
	}
	return errors.Join(errs...)
}

func unwrapExecErr(err error) error {
	var e *exec.Error
	if errors.As(err, &e) {
		err = e.Err
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return err
}

// isToken reports whether s is an RFC 9110 token (an HTTP method).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

type statusRange struct{ lo, hi int }

func parseStatusRanges(in []string) ([]statusRange, error) {
	out := make([]statusRange, 0, len(in))
	for _, s := range in {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(s), "-")
		a, err1 := strconv.Atoi(strings.TrimSpace(lo))
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(strings.TrimSpace(hi))
		}
		if err1 != nil || err2 != nil || a < 100 || b > 599 || a > b {
			return nil, fmt.Errorf("expect_status %q: want a code 100..599 or a range like 200-399", s)
		}
		out = append(out, statusRange{a, b})
	}
	return out, nil
}

// key identifies a normalized Spec's check: equal keys run once. Fields
// are quoted so no two different specs can collide.
func (s Spec) key() string {
	host, port := s.Target()
	var b strings.Builder
	q := func(v string) { b.WriteString(strconv.Quote(v)); b.WriteByte(' ') }
	n := func(v int64) { b.WriteString(strconv.FormatInt(v, 10)); b.WriteByte(' ') }
	q(string(s.Type))
	q(host)
	n(int64(port))
	n(int64(s.Interval))
	n(int64(s.Timeout))
	n(int64(s.Rise))
	n(int64(s.Fall))
	if s.Mark != 0 {
		q(s.ThroughVIP)
		n(int64(s.Mark))
	}
	switch s.Type {
	case HTTP, HTTPS:
		q(s.Method)
		q(s.Path)
		q(s.Host)
		q(s.SNI)
		n(int64(len(s.ExpectStatus)))
		for _, e := range s.ExpectStatus {
			q(e)
		}
		q(s.ExpectBody)
		if s.TLSVerify {
			q("verify")
		}
	case SendExpect, UDP:
		q(s.Send)
		q(s.Expect)
	case SMTP:
		q(s.HeloName)
		q(s.SNI)
		if s.StartTLS {
			q("starttls")
		}
		if s.TLSVerify {
			q("verify")
		}
	case Exec:
		n(int64(len(s.Command)))
		for _, a := range s.Command {
			q(a)
		}
	case DNS:
		q(s.QueryName)
		q(s.QueryType)
		q(s.DNSTransport)
		q(s.ExpectRcode)
		q(s.ExpectAnswer)
	}
	return b.String()
}

// hostPort joins host and port, bracketing IPv6 literals.
func hostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// parseAddrPort returns the target as a netip.AddrPort when host is an IP
// literal, so dials skip name resolution and string parsing.
func parseAddrPort(host string, port int) (netip.AddrPort, bool) {
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), true
}
