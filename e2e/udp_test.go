//go:build vm

package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudflare/ipvs"
	"github.com/miekg/dns"

	"lbd/internal/netlab"
	"lbd/internal/vmtest"
)

// Issue 12's proof for UDP services: a DNS service on VIP:53 over UDP and
// TCP (two virtual services, the common DNS shape), each real server
// running a DNS server that names itself in its answers.
//
// The health check is lbd's dns check, at a fast cadence; fall 2.
const (
	udpInterval = 500 * time.Millisecond
	udpTimeout  = 250 * time.Millisecond
	udpRise     = 2
	udpFall     = 2
	// udpBound is how long a dead real server may take to leave the
	// table: fall × interval + timeout, plus the VM's margin (hvMargin,
	// see health_vm_test.go).
	udpBound = udpFall*udpInterval + udpTimeout + hvMargin

	// udpQueryTimeout is how long a client waits for one answer: far
	// above the lab's round trip (a few ms, even under emulation), below
	// the check's bound.
	udpQueryTimeout = 500 * time.Millisecond
	// udpEvery paces the background clients.
	udpEvery = 40 * time.Millisecond
	// udpFixedPort is the source port of the client that keeps it, as a
	// resolver does.
	udpFixedPort = 5300
	// udpKernelTimeout is the udp_timeout lbd sets (a global setting).
	udpKernelTimeout = 10 * time.Second
)

// udpCheckType is the check of both services.
var udpCheckType = "dns"

func udpCheck() string {
	return fmt.Sprintf("  type = %q\n  interval = %q\n  timeout = %q\n  rise = %d\n  fall = %d",
		udpCheckType, udpInterval, udpTimeout, udpRise, udpFall)
}

// dnsServer answers every query for its real server on port 53, over UDP
// and TCP: a TXT question gets a TXT record with the server's name, SOA
// (the check's question) an SOA record, anything else an empty NOERROR.
type dnsServer struct {
	name string
	ns   *netlab.NS

	mu       sync.Mutex
	udp, tcp *dns.Server // nil while stopped
}

func startDNS(t *testing.T, rs *realServer) *dnsServer {
	t.Helper()
	s := &dnsServer{name: rs.name, ns: rs.ns}
	s.start(t)
	t.Cleanup(s.stop)
	return s
}

func (s *dnsServer) handler() dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		if len(r.Question) == 1 {
			q := r.Question[0]
			hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Rrtype: q.Qtype}
			switch q.Qtype {
			case dns.TypeTXT:
				m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr, Txt: []string{s.name}})
			case dns.TypeSOA:
				m.Answer = append(m.Answer, &dns.SOA{Hdr: hdr, Ns: "ns." + s.name + ".lab.", Mbox: "hostmaster.lab.",
					Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 60})
			}
		}
		w.WriteMsg(m)
	})
}

// start serves on :53. The UDP server answers from the address a query
// came to (miekg/dns reads it with IP_PKTINFO): the VIP in DR, where the
// VIP sits on lo, else the client would see the real server's address.
func (s *dnsServer) start(t *testing.T) {
	t.Helper()
	var pc net.PacketConn
	var ln net.Listener
	err := s.ns.Do(func() (err error) {
		if pc, err = net.ListenPacket("udp4", ":53"); err != nil {
			return err
		}
		if ln, err = net.Listen("tcp4", ":53"); err != nil {
			pc.Close()
		}
		return err
	})
	if err != nil {
		t.Fatalf("%s: dns server: %v", s.name, err)
	}
	started := make(chan struct{}, 2)
	up := &dns.Server{PacketConn: pc, Handler: s.handler(), NotifyStartedFunc: func() { started <- struct{}{} }}
	tp := &dns.Server{Listener: ln, Handler: s.handler(), NotifyStartedFunc: func() { started <- struct{}{} }}
	go up.ActivateAndServe()
	go tp.ActivateAndServe()
	for range 2 {
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: dns server did not start", s.name)
		}
	}
	s.mu.Lock()
	s.udp, s.tcp = up, tp
	s.mu.Unlock()
}

// stop closes both sockets: UDP queries to the server get ICMP port
// unreachable, TCP connections are refused.
func (s *dnsServer) stop() {
	s.mu.Lock()
	up, tp := s.udp, s.tcp
	s.udp, s.tcp = nil, nil
	s.mu.Unlock()
	if up != nil {
		up.Shutdown()
		tp.Shutdown()
	}
}

// query is one DNS question through the VIP and what came of it.
type query struct {
	at     time.Time // when it was sent
	server string    // who answered; "" when err
	err    error
}

// udpQuery asks VIP:53 for TXT who.lab. on pc and returns the name in the
// answer. Late answers to earlier questions on the same socket are
// skipped by their ID.
func udpQuery(pc net.PacketConn, vip netip.Addr, id uint16) (string, error) {
	m := new(dns.Msg)
	m.SetQuestion("who.lab.", dns.TypeTXT)
	m.Id = id
	b, err := m.Pack()
	if err != nil {
		return "", err
	}
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(vip, 53))
	if _, err := pc.WriteTo(b, to); err != nil {
		return "", err
	}
	pc.SetReadDeadline(time.Now().Add(udpQueryTimeout))
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return "", err
		}
		r := new(dns.Msg)
		if r.Unpack(buf[:n]) != nil || r.Id != id {
			continue
		}
		if got := from.(*net.UDPAddr).AddrPort(); got.Addr().Unmap() != vip || got.Port() != 53 {
			return "", fmt.Errorf("answer from %v, not from the VIP", got)
		}
		return answerName(r)
	}
}

func answerName(r *dns.Msg) (string, error) {
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		return "", fmt.Errorf("answer rcode %s with %d records", dns.RcodeToString[r.Rcode], len(r.Answer))
	}
	txt, ok := r.Answer[0].(*dns.TXT)
	if !ok || len(txt.Txt) != 1 {
		return "", fmt.Errorf("unexpected answer %v", r.Answer[0])
	}
	return txt.Txt[0], nil
}

// newUDPSocket opens a UDP socket in the client's namespace on port (0:
// any, as a new client gets).
func (l *lab) newUDPSocket(port int) (net.PacketConn, error) {
	var pc net.PacketConn
	err := l.client.Do(func() (err error) {
		pc, err = net.ListenPacket("udp4", fmt.Sprintf(":%d", port))
		return err
	})
	return pc, err
}

// udpAsk asks once from a new socket: a new flow, scheduled afresh.
func (l *lab) udpAsk(id uint16) query {
	q := query{at: time.Now()}
	pc, err := l.newUDPSocket(0)
	if err != nil {
		q.err = err
		return q
	}
	defer pc.Close()
	q.server, q.err = udpQuery(pc, l.vip, id)
	return q
}

// tcpAsk asks over TCP on a new connection.
func (l *lab) tcpAsk() query {
	q := query{at: time.Now()}
	c, err := l.client.Dial("tcp4", netip.AddrPortFrom(l.vip, 53).String(), udpQueryTimeout)
	if err != nil {
		q.err = err
		return q
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	co := &dns.Conn{Conn: c}
	m := new(dns.Msg)
	m.SetQuestion("who.lab.", dns.TypeTXT)
	if err := co.WriteMsg(m); err != nil {
		q.err = err
		return q
	}
	r, err := co.ReadMsg()
	if err != nil {
		q.err = err
		return q
	}
	q.server, q.err = answerName(r)
	return q
}

// asker sends a question every udpEvery in the background until stopped:
// from one socket on fixedPort, or (0) each from a new socket.
type asker struct {
	stopc, done chan struct{}
	mu          sync.Mutex
	qs          []query
}

func (l *lab) ask(t *testing.T, fixedPort int) *asker {
	t.Helper()
	a := &asker{stopc: make(chan struct{}), done: make(chan struct{})}
	var pc net.PacketConn
	if fixedPort != 0 {
		var err error
		if pc, err = l.newUDPSocket(fixedPort); err != nil {
			t.Fatal(err)
		}
	}
	go func() {
		defer close(a.done)
		if pc != nil {
			defer pc.Close()
		}
		tick := time.NewTicker(udpEvery)
		defer tick.Stop()
		for id := uint16(1); ; id++ {
			var q query
			if pc != nil {
				q = query{at: time.Now()}
				q.server, q.err = udpQuery(pc, l.vip, id)
			} else {
				q = l.udpAsk(id)
			}
			a.mu.Lock()
			a.qs = append(a.qs, q)
			a.mu.Unlock()
			select {
			case <-a.stopc:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(a.stop)
	return a
}

func (a *asker) stop() {
	select {
	case <-a.stopc:
	default:
		close(a.stopc)
	}
	<-a.done
}

// since returns the questions sent at or after t.
func (a *asker) since(t time.Time) []query {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []query
	for _, q := range a.qs {
		if !q.at.Before(t) {
			out = append(out, q)
		}
	}
	return out
}

// waitAnswers waits until at least n questions sent at or after t have
// come back (answered or not).
func (a *asker) waitAnswers(t *testing.T, since time.Time, n int) []query {
	t.Helper()
	var qs []query
	vmtest.Eventually(t, programTimeout, 20*time.Millisecond, fmt.Sprintf("%d questions", n), func() (bool, string) {
		qs = a.since(since)
		return len(qs) >= n, fmt.Sprintf("%d so far", len(qs))
	})
	return qs
}

// tally counts answers by server, and the failures.
func tally(qs []query) (by map[string]int, fails int, lastErr error) {
	by = map[string]int{}
	for _, q := range qs {
		if q.err != nil {
			fails++
			lastErr = q.err
			continue
		}
		by[q.server]++
	}
	return by, fails, lastErr
}

// checkAllFrom fails unless every question was answered by want.
func checkAllFrom(t *testing.T, what string, qs []query, want string) {
	t.Helper()
	by, fails, lastErr := tally(qs)
	t.Logf("%s: %d questions: answers %v, %d failed", what, len(qs), by, fails)
	if fails > 0 || by[want] != len(qs) {
		t.Errorf("%s: %d questions, answers %v and %d failures (last: %v); want every one answered by %s", what, len(qs), by, fails, lastErr, want)
	}
}

// checkQueriesAlternate fails unless n answers alternate between a and b.
func checkQueriesAlternate(t *testing.T, what string, qs []query, a, b string) {
	t.Helper()
	by := map[string]int{}
	for i, q := range qs {
		if q.err != nil {
			t.Errorf("%s: question %d: %v", what, i+1, q.err)
			continue
		}
		by[q.server]++
		if i > 0 && q.server == qs[i-1].server {
			t.Errorf("%s: questions %d and %d both answered by %s: round robin does not alternate", what, i, i+1, q.server)
		}
	}
	if by[a] != len(qs)/2 || by[b] != len(qs)/2 {
		t.Errorf("%s: answered by %v, want %d each from %s and %s", what, by, len(qs)/2, a, b)
	}
}

// dnsRules is the IPVS table for the pair: VIP:53 over UDP and TCP, rr,
// each with its real servers.
func (l *lab) dnsRules(udp, tcp []rs) string {
	fwd := ipvs.DirectRoute
	if l.mode == "nat" {
		fwd = ipvs.Masquerade
	}
	tab := vmtest.Table{}
	for _, p := range []struct {
		proto ipvs.Protocol
		rs    []rs
	}{{ipvs.UDP, udp}, {ipvs.TCP, tcp}} {
		s := vmtest.Service{}
		s.Address, s.Port, s.Protocol, s.Family, s.Scheduler = l.vip, 53, p.proto, ipvs.INET, "rr"
		for _, r := range p.rs {
			w := uint32(1)
			if r.quiesced {
				w = 0
			}
			d := ipvs.DestinationExtended{}
			d.Address, d.Port, d.FwdMethod, d.Weight, d.Family = r.addr, 53, fwd, w, ipvs.INET
			s.Dests = append(s.Dests, d)
		}
		tab[s.Key()] = s
	}
	return sortDests(tab).Rules()
}

// watchUDPDestGone polls the director's UDP service on VIP:53 every 5ms
// and sends the time addr was first seen gone from it.
func (l *lab) watchUDPDestGone(t *testing.T, addr netip.Addr) <-chan time.Time {
	t.Helper()
	c := vmtest.IPVS(t, l.director)
	svc := ipvs.Service{Address: l.vip, Port: 53, Protocol: ipvs.UDP, Family: ipvs.INET}
	out := make(chan time.Time, 1)
	go func() {
		deadline := time.Now().Add(programTimeout)
		for time.Now().Before(deadline) {
			ds, err := c.Destinations(svc)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				if !slices.ContainsFunc(ds, func(d ipvs.DestinationExtended) bool { return d.Address == addr }) {
					out <- time.Now()
					return
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		out <- time.Time{}
	}()
	return out
}

// udpConnDest reads the director's connection table (/proc/net/ip_vs_conn)
// and returns the real server of the UDP entry from the client's port.
func (l *lab) udpConnDest(t *testing.T, clientPort int) (netip.Addr, bool) {
	t.Helper()
	out := l.director.Exec("cat", "/proc/net/ip_vs_conn")
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// Pro FromIP FPrt ToIP TPrt DestIP DPrt State Expires ...
		if len(f) < 8 || f[0] != "UDP" {
			continue
		}
		if p, err := strconv.ParseUint(f[2], 16, 16); err != nil || int(p) != clientPort {
			continue
		}
		v, err := strconv.ParseUint(f[5], 16, 32)
		if err != nil {
			t.Fatalf("ip_vs_conn: %q", sc.Text())
		}
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
	}
	return netip.Addr{}, false
}

func TestUDPDNSServiceDR(t *testing.T)  { testUDPDNSService(t, newDRLab(t)) }
func TestUDPDNSServiceNAT(t *testing.T) { testUDPDNSService(t, newNATLab(t)) }

// testUDPDNSService: queries to VIP:53 alternate between the real servers
// over UDP and TCP; the real server a fixed-port client (a resolver) is on
// dies; within the dns check's bound its UDP destination leaves the table
// (on_failure defaults to remove for udp, at once, flows or not) and
// every question of that client, and of new clients, is answered by the
// live real server: the client's entry moved with its next datagram
// (expire_nodest_conn). Brought back, the real server rejoins both
// services.
func testUDPDNSService(t *testing.T, l *lab) {
	servers := map[string]*dnsServer{}
	for _, r := range l.rs {
		servers[r.name] = startDNS(t, r)
	}
	console, token := hvConsole(t)
	udpVS := hvService{vs: vs{name: "dns", port: 53, sched: "rr", rs: l.rsAll(), hc: udpCheck()}, extra: "protocol = \"udp\"\n"}
	tcpVS := hvService{vs: vs{name: "dns-tcp", port: 53, sched: "rr", rs: l.rsAll(), hc: udpCheck()}, extra: "protocol = \"tcp\"\n"}
	d := l.startLBD(hvConfig(l, fmt.Sprintf("udp_timeout = %q", udpKernelTimeout), console, udpVS, tcpVS))
	c := vmtest.IPVS(t, l.director)
	healthy := l.dnsRules(l.rsAll(), l.rsAll())
	l.waitRules(d, healthy, programTimeout)
	api := hvAPI(t, l.director, token)
	hvAllUp(t, api, "dns")
	hvAllUp(t, api, "dns-tcp")

	// The global settings reached the kernel: the udp timeout lbd was
	// told, the others left as they were; expire_nodest_conn on.
	cfg, err := c.Config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.UDPTimeout != uint32(udpKernelTimeout/time.Second) || cfg.TCPTimeout != 900 || cfg.TCPFinTimeout != 120 {
		t.Errorf("kernel timeouts tcp %ds tcpfin %ds udp %ds, want 900, 120 (the kernel's) and %v", cfg.TCPTimeout, cfg.TCPFinTimeout, cfg.UDPTimeout, udpKernelTimeout)
	}
	if v := strings.TrimSpace(l.director.Exec("cat", "/proc/sys/net/ipv4/vs/expire_nodest_conn")); v != "1" {
		t.Errorf("expire_nodest_conn = %s, want 1", v)
	}

	rs1, rs2 := l.rs[0].name, l.rs[1].name
	var qs []query
	for i := range 6 {
		qs = append(qs, l.udpAsk(uint16(100+i)))
	}
	checkQueriesAlternate(t, "new UDP clients", qs, rs1, rs2)
	qs = qs[:0]
	for range 6 {
		qs = append(qs, l.tcpAsk())
	}
	checkQueriesAlternate(t, "new TCP clients", qs, rs1, rs2)
	if t.Failed() {
		return
	}

	// The resolver: one source port for good. It sticks to one real
	// server, the one that dies.
	resolver := l.ask(t, udpFixedPort)
	qs = resolver.waitAnswers(t, time.Time{}, 10)
	victimName := qs[0].server
	checkAllFrom(t, "fixed-port client before", qs, victimName)
	victim := l.serverNamed(victimName)
	var live *realServer
	for _, r := range l.rs {
		if r != victim {
			live = r
		}
	}
	if a, ok := l.udpConnDest(t, udpFixedPort); !ok || a != victim.addr {
		t.Errorf("the fixed-port client's connection entry goes to %v (found %v), want %s %v", a, ok, victim.name, victim.addr)
	}
	newClients := l.ask(t, 0)
	if t.Failed() {
		return
	}

	t.Run("a real server dies", func(t *testing.T) {
		mark := d.Mark()
		gone := l.watchUDPDestGone(t, victim.addr)
		start := time.Now()
		servers[victim.name].stop()
		var liveOnly []rs
		for _, r := range l.rsAll() {
			if r.name == live.name {
				liveOnly = append(liveOnly, r)
			}
		}
		quiesced := l.rsAll()
		for i := range quiesced {
			quiesced[i].quiesced = quiesced[i].name == victim.name
		}
		// UDP: removed; TCP: quiesced (its default), connections finish.
		hvWaitRules(t, c, d, l.dnsRules(liveOnly, quiesced), start)
		removed := <-gone
		if removed.IsZero() {
			t.Fatalf("%s never left the UDP service", victim.name)
		}
		took := removed.Sub(start)
		t.Logf("%s out of the UDP service %v after it died (bound fall×interval+timeout = %v, +%v VM margin)",
			victim.name, took.Round(time.Millisecond), udpFall*udpInterval+udpTimeout, hvMargin)
		if took > udpBound {
			t.Errorf("%s left the table after %v, bound %v", victim.name, took.Round(time.Millisecond), udpBound)
		}
		hvSplit(t, start, took, hvHealthLine(t, d, mark, "dns/"+victim.name, "down"))

		// From the removal on, every question is answered by the live
		// real server: the resolver's (its entry expired at its next
		// datagram, which went to a live one) and new clients'.
		//
		// Since Linux 5.9, the datagram that finds its entry's real server
		// removed expires the entry and is scheduled at once, unless the
		// packet carries a confirmed conntrack entry (conntrack in use on
		// the director): that one datagram is dropped and the client's
		// retry is scheduled. The kernel also flushes a removed real
		// server's entries in the background right after the removal,
		// which leaves a datagram little time to meet one. So the first
		// question after the removal may be lost; no other.
		after := resolver.waitAnswers(t, removed, 30)
		if len(after) > 0 && after[0].err != nil {
			t.Logf("the first question after the removal was lost (%v): the datagram that met the expired entry", after[0].err)
			after = after[1:]
		}
		checkAllFrom(t, "fixed-port client after the removal", after, live.name)
		checkAllFrom(t, "new clients after the removal", newClients.waitAnswers(t, removed, 20), live.name)
		// When the resolver got its first answer from the live server,
		// counted from the death.
		for _, q := range resolver.since(start) {
			if q.err == nil && q.server == live.name {
				t.Logf("fixed-port client answered by %s %v after %s died", live.name, q.at.Sub(start).Round(time.Millisecond), victim.name)
				// A question in flight at the removal waits out its
				// timeout first, as a resolver's would.
				if q.at.Sub(start) > udpBound+udpQueryTimeout+udpEvery {
					t.Errorf("fixed-port client first answered by %s after %v, bound %v", live.name, q.at.Sub(start), udpBound+udpQueryTimeout+udpEvery)
				}
				break
			}
		}
		by, fails, _ := tally(resolver.since(start))
		t.Logf("fixed-port client from the death on: answers %v, %d timeouts (while the check had not yet decided)", by, fails)
		for _, q := range resolver.since(start) {
			if q.err != nil {
				t.Logf("  question at %v (removal at %v): %v", q.at.Sub(start).Round(time.Millisecond), took.Round(time.Millisecond), q.err)
			}
		}
		if a, ok := l.udpConnDest(t, udpFixedPort); !ok || a != live.addr {
			t.Errorf("the fixed-port client's connection entry goes to %v (found %v), want %s %v", a, ok, live.name, live.addr)
		}
		// TCP: the quiesced real server gets no new connection.
		var qs []query
		for range 4 {
			qs = append(qs, l.tcpAsk())
		}
		checkAllFrom(t, "new TCP clients", qs, live.name)
	})
	if t.Failed() {
		return
	}

	t.Run("it comes back", func(t *testing.T) {
		newClients.stop()
		resolver.stop()
		mark := d.Mark()
		servers[victim.name].start(t)
		start := time.Now()
		took := hvWaitRules(t, c, d, healthy, start)
		bound := udpRise*udpInterval + udpTimeout + hvMargin
		t.Logf("%s back in both services %v after it came back (bound %v)", victim.name, took.Round(time.Millisecond), bound)
		if took > bound {
			t.Errorf("%s rejoined after %v, bound %v", victim.name, took.Round(time.Millisecond), bound)
		}
		hvSplit(t, start, took, hvHealthLine(t, d, mark, "dns/"+victim.name, "up"))
		var qs []query
		for i := range 6 {
			qs = append(qs, l.udpAsk(uint16(200+i)))
		}
		checkQueriesAlternate(t, "new UDP clients", qs, rs1, rs2)
		qs = qs[:0]
		for range 6 {
			qs = append(qs, l.tcpAsk())
		}
		checkQueriesAlternate(t, "new TCP clients", qs, rs1, rs2)
	})
	if t.Failed() {
		return
	}

	// Draining is the operator's weight 0, and keeps its meaning for UDP:
	// no new flows, and existing ones, a resolver's too, continue.
	t.Run("a drained one keeps its flows", func(t *testing.T) {
		resolver := l.ask(t, udpFixedPort+1)
		qs := resolver.waitAnswers(t, time.Time{}, 5)
		drained := l.serverNamed(qs[0].server)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := api.Drain(ctx, "dns", drained.name); err != nil {
			t.Fatal(err)
		}
		rules := l.rsAll()
		for i := range rules {
			rules[i].quiesced = rules[i].name == drained.name
		}
		l.waitRules(d, l.dnsRules(rules, l.rsAll()), programTimeout)
		since := time.Now()
		checkAllFrom(t, "fixed-port client on the drained real server", resolver.waitAnswers(t, since, 20), drained.name)
		var other string
		for _, r := range l.rs {
			if r != drained {
				other = r.name
			}
		}
		var fresh []query
		for i := range 4 {
			fresh = append(fresh, l.udpAsk(uint16(300+i)))
		}
		checkAllFrom(t, "new UDP clients while drained", fresh, other)
		resolver.stop()
		if _, err := api.Enable(ctx, "dns", drained.name); err != nil {
			t.Fatal(err)
		}
		l.waitRules(d, healthy, programTimeout)
	})
}
