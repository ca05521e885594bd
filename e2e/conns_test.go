package e2e

// The traffic harness: a client that holds long-lived keep-alive HTTP
// connections through a VIP and, beside them, opens a new connection per
// request, recording every failure with its time. The stateful-failover
// scenarios (stateful_test.go) and the failover benchmarks use it.
//
// It has no build tag and knows nothing of the lab: it needs a way to dial
// from the client (a namespace's Dial) and the VIP:port of a service whose
// real servers answer every request with "NAME REMOTEADDR" (the lab's
// real servers do).
//
//	tr := startTraffic(t, statefulTraffic(l.client.Dial, netip.AddrPortFrom(l.vip, 80)))
//	... fail the master over ...
//	rep := tr.stop()
//	if rep.survivors() != 20 || len(rep.FreshFailures) > 0 { t.Errorf("%v", rep) }

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// trafficDialer opens a TCP connection from the client, e.g. the client
// namespace's (*netlab.NS).Dial.
type trafficDialer func(network, addr string, timeout time.Duration) (net.Conn, error)

// trafficOptions say what the client does. Zero counts mean "none of
// that kind"; zero durations take the defaults noted.
type trafficOptions struct {
	Dial   trafficDialer  // required
	Target netip.AddrPort // VIP:port, IPv4 or IPv6; required

	// Held long-lived connections, each sending an HTTP/1.1 keep-alive
	// request every HeldEvery (default 50ms) and waiting at most
	// HeldTimeout (default 10s) for its answer. A held connection fails,
	// for good, on its first error, timeout, or answer from another real
	// server than its first one, or that saw another client port.
	Held        int
	HeldEvery   time.Duration
	HeldTimeout time.Duration

	// Fresh loops, each opening one new connection per HTTP/1.0 request,
	// back to back with FreshPause between (default none), FreshTimeout
	// (default 10s: a lost SYN is retried after 1s, 3s, 7s) bounding a
	// request, connect included.
	Fresh        int
	FreshTimeout time.Duration
	FreshPause   time.Duration
}

// statefulTraffic is the load of the stateful-failover scenarios: 20 held
// connections with a request every 50ms, and one loop of new connections.
func statefulTraffic(dial trafficDialer, target netip.AddrPort) trafficOptions {
	return trafficOptions{Dial: dial, Target: target, Held: 20, Fresh: 1}
}

// traffic is a running client; startTraffic starts it, stop ends it.
type traffic struct {
	o       trafficOptions
	started time.Time
	stopc   chan struct{}
	wg      sync.WaitGroup
	once    sync.Once

	mu      sync.Mutex
	held    []*trafficHeld
	freshOK int
	// freshMax is the longest successful fresh request.
	freshMax time.Duration
	failures []trafficFailure
	ended    time.Time
}

// trafficHeld is one held connection and what became of it.
type trafficHeld struct {
	LocalPort  int    // the client's port: the connection in ipvsadm -Lnc
	Server     string // the real server that answered the first request
	Requests   int    // requests answered
	MaxLatency time.Duration
	Err        error     // why it failed; nil while it lives
	FailedAt   time.Time // when Err happened (the request's end)
	LastOK     time.Time // the last answered request's end

	c  net.Conn
	br *bufio.Reader
}

// trafficFailure is one failed fresh request.
type trafficFailure struct {
	Start, End time.Time
	LocalPort  int // the client's port; 0 when it did not connect
	Err        error
}

// trafficReport is a snapshot of what the client saw.
type trafficReport struct {
	Started, Ended time.Time // Ended is zero while running
	Held           []trafficHeld
	FreshOK        int
	FreshMax       time.Duration // the longest successful fresh request
	FreshFailures  []trafficFailure
}

// startTraffic opens the held connections (each must be answered once, or
// the test fails), then starts every loop. It is stopped at the end of the
// test at the latest.
func startTraffic(t testing.TB, o trafficOptions) *traffic {
	t.Helper()
	if o.Dial == nil || !o.Target.IsValid() {
		t.Fatalf("traffic: Dial and Target are required")
	}
	if o.HeldEvery == 0 {
		o.HeldEvery = 50 * time.Millisecond
	}
	if o.HeldTimeout == 0 {
		o.HeldTimeout = 10 * time.Second
	}
	if o.FreshTimeout == 0 {
		o.FreshTimeout = 10 * time.Second
	}
	tr := &traffic{o: o, stopc: make(chan struct{})}
	t.Cleanup(func() { tr.stop() })
	for i := 0; i < o.Held; i++ {
		h, err := tr.open()
		if err != nil {
			t.Fatalf("traffic: held connection %d of %d to %v: %v", i+1, o.Held, o.Target, err)
		}
		tr.held = append(tr.held, h)
	}
	tr.started = time.Now()
	for _, h := range tr.held {
		tr.wg.Add(1)
		go tr.holdLoop(h)
	}
	for i := 0; i < o.Fresh; i++ {
		tr.wg.Add(1)
		go tr.freshLoop()
	}
	return tr
}

func (tr *traffic) network() string {
	if tr.o.Target.Addr().Is4() {
		return "tcp4"
	}
	return "tcp6"
}

// open dials a held connection and makes its first request.
func (tr *traffic) open() (*trafficHeld, error) {
	c, err := tr.o.Dial(tr.network(), tr.o.Target.String(), tr.o.HeldTimeout)
	if err != nil {
		return nil, err
	}
	h := &trafficHeld{c: c, br: bufio.NewReader(c), LocalPort: c.LocalAddr().(*net.TCPAddr).Port}
	server, err := trafficRequest(c, h.br, "HTTP/1.1", h.LocalPort, time.Now().Add(tr.o.HeldTimeout))
	if err != nil {
		c.Close()
		return nil, err
	}
	h.Server, h.Requests, h.LastOK = server, 1, time.Now()
	return h, nil
}

func (tr *traffic) stopped() bool {
	select {
	case <-tr.stopc:
		return true
	default:
		return false
	}
}

func (tr *traffic) holdLoop(h *trafficHeld) {
	defer tr.wg.Done()
	tick := time.NewTicker(tr.o.HeldEvery)
	defer tick.Stop()
	for {
		select {
		case <-tr.stopc:
			return
		case <-tick.C:
		}
		start := time.Now()
		server, err := trafficRequest(h.c, h.br, "HTTP/1.1", h.LocalPort, start.Add(tr.o.HeldTimeout))
		end := time.Now()
		if err == nil && server != h.Server {
			err = fmt.Errorf("answered by %s, not %s as before", server, h.Server)
		}
		if err != nil && tr.stopped() {
			return // stop closed the connection under the request
		}
		tr.mu.Lock()
		if err != nil {
			h.Err, h.FailedAt = fmt.Errorf("request %d (sent %s): %w", h.Requests+1, start.Format("15:04:05.000"), err), end
		} else {
			h.Requests++
			h.LastOK = end
			h.MaxLatency = max(h.MaxLatency, end.Sub(start))
		}
		tr.mu.Unlock()
		if err != nil {
			h.c.Close()
			return
		}
	}
}

func (tr *traffic) freshLoop() {
	defer tr.wg.Done()
	for !tr.stopped() {
		start := time.Now()
		port, err := tr.fresh(start.Add(tr.o.FreshTimeout))
		end := time.Now()
		tr.mu.Lock()
		if err != nil {
			tr.failures = append(tr.failures, trafficFailure{Start: start, End: end, LocalPort: port, Err: err})
		} else {
			tr.freshOK++
			tr.freshMax = max(tr.freshMax, end.Sub(start))
		}
		tr.mu.Unlock()
		if tr.o.FreshPause > 0 {
			select {
			case <-tr.stopc:
			case <-time.After(tr.o.FreshPause):
			}
		}
	}
}

// fresh makes one request on a new connection and returns the client's
// port (0 when it did not connect).
func (tr *traffic) fresh(deadline time.Time) (int, error) {
	c, err := tr.o.Dial(tr.network(), tr.o.Target.String(), time.Until(deadline))
	if err != nil {
		return 0, err
	}
	defer c.Close()
	port := c.LocalAddr().(*net.TCPAddr).Port
	_, err = trafficRequest(c, bufio.NewReader(c), "HTTP/1.0", port, deadline)
	return port, err
}

// trafficRequest sends one GET and reads its answer, "NAME REMOTEADDR",
// checking that the real server saw the client's port; it returns NAME.
func trafficRequest(c net.Conn, br *bufio.Reader, proto string, localPort int, deadline time.Time) (string, error) {
	c.SetDeadline(deadline)
	if _, err := io.WriteString(c, "GET / "+proto+"\r\nHost: lab\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "", err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s: %q", resp.Status, body)
	}
	f := strings.Fields(string(body))
	if len(f) != 2 {
		return "", fmt.Errorf("unexpected body %q", body)
	}
	_, port, err := net.SplitHostPort(f[1])
	if err != nil || port != strconv.Itoa(localPort) {
		return "", fmt.Errorf("%s saw the client as %s, not port %d", f[0], f[1], localPort)
	}
	return f[0], nil
}

// localPorts are the client ports of the held connections.
func (tr *traffic) localPorts() []int {
	var ps []int
	for _, h := range tr.held {
		ps = append(ps, h.LocalPort)
	}
	return ps
}

// report is a snapshot while the client runs (or after stop).
func (tr *traffic) report() trafficReport {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	r := trafficReport{Started: tr.started, Ended: tr.ended, FreshOK: tr.freshOK, FreshMax: tr.freshMax,
		FreshFailures: append([]trafficFailure(nil), tr.failures...)}
	for _, h := range tr.held {
		r.Held = append(r.Held, *h)
	}
	return r
}

// stop ends every loop, waits for the requests in flight (bounded by the
// timeouts), closes the held connections and returns the final report.
// It may be called more than once.
func (tr *traffic) stop() trafficReport {
	tr.once.Do(func() {
		close(tr.stopc)
		tr.wg.Wait()
		tr.mu.Lock()
		tr.ended = time.Now()
		tr.mu.Unlock()
		for _, h := range tr.held {
			h.c.Close()
		}
	})
	return tr.report()
}

// survivors is how many held connections never failed.
func (r trafficReport) survivors() int {
	n := 0
	for _, h := range r.Held {
		if h.Err == nil {
			n++
		}
	}
	return n
}

// servers counts the held connections by real server.
func (r trafficReport) servers() map[string]int {
	m := map[string]int{}
	for _, h := range r.Held {
		m[h.Server]++
	}
	return m
}

// heldMaxLatency is the longest answer on any held connection.
func (r trafficReport) heldMaxLatency() time.Duration {
	var d time.Duration
	for _, h := range r.Held {
		d = max(d, h.MaxLatency)
	}
	return d
}

// String summarizes the report; times are offsets from Started.
func (r trafficReport) String() string {
	var b strings.Builder
	ended := r.Ended
	if ended.IsZero() {
		ended = time.Now()
	}
	off := func(at time.Time) string { return "+" + at.Sub(r.Started).Round(time.Millisecond).String() }
	fmt.Fprintf(&b, "from %s, over %v: %d of %d held connections survived (by server %v, slowest answer %v); fresh: %d ok (slowest %v), %d failed",
		r.Started.Format("15:04:05.000"), ended.Sub(r.Started).Round(time.Millisecond), r.survivors(), len(r.Held), r.servers(),
		r.heldMaxLatency().Round(time.Millisecond), r.FreshOK, r.FreshMax.Round(time.Millisecond), len(r.FreshFailures))
	for _, h := range r.Held {
		if h.Err != nil {
			fmt.Fprintf(&b, "\n  held :%d on %s failed at %s after %d answers (last at %s): %v",
				h.LocalPort, h.Server, off(h.FailedAt), h.Requests, off(h.LastOK), h.Err)
		}
	}
	for i, f := range r.FreshFailures {
		if i == 20 {
			fmt.Fprintf(&b, "\n  ... %d more fresh failures", len(r.FreshFailures)-i)
			break
		}
		fmt.Fprintf(&b, "\n  fresh %s..%s (:%d): %v", off(f.Start), off(f.End), f.LocalPort, f.Err)
	}
	return b.String()
}

// freshFailuresOutside returns the fresh failures that do not touch the
// window [from, to]: a request that ended before from, or started after to.
func (r trafficReport) freshFailuresOutside(from, to time.Time) []trafficFailure {
	var out []trafficFailure
	for _, f := range r.FreshFailures {
		if f.End.Before(from) || f.Start.After(to) {
			out = append(out, f)
		}
	}
	return out
}

// TestTrafficHarness proves the harness on loopback, without a lab: held
// connections live while the server answers and fail when it closes them,
// and fresh requests fail (with their times) while nothing listens.
func TestTrafficHarness(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "rs1 %s\n", r.RemoteAddr)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	target := ln.Addr().(*net.TCPAddr).AddrPort()

	o := statefulTraffic(net.DialTimeout, target)
	o.Held, o.FreshTimeout, o.FreshPause = 3, time.Second, 10*time.Millisecond
	tr := startTraffic(t, o)
	time.Sleep(300 * time.Millisecond)
	if r := tr.report(); r.survivors() != 3 || r.FreshOK == 0 || len(r.FreshFailures) != 0 {
		t.Fatalf("while serving: %v", r)
	}
	if len(tr.localPorts()) != 3 {
		t.Errorf("localPorts: %v", tr.localPorts())
	}

	// Closing the server ends the held connections and refuses new ones.
	srv.Close()
	closed := time.Now()
	time.Sleep(300 * time.Millisecond)
	r := tr.stop()
	t.Logf("%v", r)
	if r.survivors() != 0 {
		t.Errorf("%d held connections survived the server's close", r.survivors())
	}
	if len(r.FreshFailures) == 0 {
		t.Errorf("no fresh failure while nothing listened")
	}
	if out := r.freshFailuresOutside(closed.Add(-time.Second), time.Now()); len(out) != 0 {
		t.Errorf("failures outside the window: %v", out)
	}
	if out := r.freshFailuresOutside(time.Now(), time.Now()); len(out) != len(r.FreshFailures) {
		t.Errorf("failures before a later window: %d of %d", len(out), len(r.FreshFailures))
	}
	if again := tr.stop(); again.FreshOK != r.FreshOK {
		t.Errorf("a second stop changed the report")
	}
}
