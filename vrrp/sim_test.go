package vrrp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// This file holds the fakes: a kernel (addresses, announcements, links) and
// a simulated Ethernet segment in virtual time that carries the encoded
// adverts between cores, so multi-router scenarios run deterministically
// and timers can be checked to the nanosecond.

// fakeSys is an in-memory kernel for one router.
type fakeSys struct {
	mu        sync.Mutex
	local     netip.Addr
	addrs     map[netip.Addr]bool // full-length VIP entries present
	announced []netip.Addr        // every GARP/NA sent, in order
	announceT []time.Time
	addErr    error
	now       func() time.Time
	links     map[string]bool
	linkCh    chan linkEvent
	tr        *chanTransport // for Run-based tests
	openErrs  []error        // returned by the next open calls, in order
}

func newFakeSys(local netip.Addr) *fakeSys {
	return &fakeSys{local: local, addrs: map[netip.Addr]bool{}, links: map[string]bool{"eth0": true},
		now: func() time.Time { return time.Time{} }}
}

func (f *fakeSys) open() (transport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.openErrs) > 0 {
		err := f.openErrs[0]
		f.openErrs = f.openErrs[1:]
		return nil, err
	}
	if f.tr == nil {
		return nil, errors.New("fake: no transport")
	}
	return f.tr, nil
}

func (f *fakeSys) localAddr() (netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.local.IsValid() {
		return netip.Addr{}, errors.New("fake: no address")
	}
	return f.local, nil
}

func (f *fakeSys) watchLinks(ctx context.Context, names []string) (map[string]bool, <-chan linkEvent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := map[string]bool{}
	for _, n := range names {
		m[n] = f.links[n]
	}
	f.linkCh = make(chan linkEvent, 16)
	return m, f.linkCh, nil
}

func (f *fakeSys) addVIPs(vips []netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.addErr != nil {
		return f.addErr
	}
	for _, v := range vips {
		f.addrs[v] = true
	}
	return nil
}

func (f *fakeSys) delVIPs(vips []netip.Addr) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, v := range vips {
		if f.addrs[v] {
			n++
			delete(f.addrs, v)
		}
	}
	return n, nil
}

func (f *fakeSys) announce(vips []netip.Addr) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.announced = append(f.announced, vips...)
	for range vips {
		f.announceT = append(f.announceT, f.now())
	}
	return len(vips), nil
}

func (f *fakeSys) close() {}

func (f *fakeSys) hasVIPs(vips []netip.Addr) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range vips {
		if !f.addrs[v] {
			return false
		}
	}
	return true
}

func (f *fakeSys) anyVIP() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.addrs) > 0
}

// sent is one advert put on the simulated wire.
type sent struct {
	at       time.Time
	from     int
	b        []byte
	src, dst netip.Addr
	a        *Advert
}

// wire is a shared segment in virtual time. Delivery takes `latency`.
type wire struct {
	t       *testing.T
	now     time.Time
	latency time.Duration
	nodes   []*node
	queue   []sent // in flight
	log     []sent // everything ever sent
	cut     map[int]bool
}

type node struct {
	i     int
	w     *wire
	c     *core
	sys   *fakeSys
	trans []Transition
}

func (n *node) send(b []byte, src, dst netip.Addr) error {
	a, err := Parse(b, src, dst)
	if err != nil {
		n.w.t.Fatalf("node %d sent an unparsable packet: %v", n.i, err)
	}
	s := sent{at: n.w.now, from: n.i, b: slices.Clone(b), src: src, dst: dst, a: a}
	n.w.queue = append(n.w.queue, s)
	n.w.log = append(n.w.log, s)
	return nil
}

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func newWire(t *testing.T) *wire {
	return &wire{t: t, now: t0, latency: time.Millisecond, cut: map[int]bool{}}
}

// testConfig is a v3 IPv4 config with one VIP and lbd's GARP burst.
func testConfig(prio int) Config {
	return Config{VRID: 51, Priority: prio, Interface: "eth0", Preempt: true, GARPCount: 5,
		VIPs: []netip.Addr{netip.MustParseAddr("10.77.0.100")}, Logger: discard}
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// add creates a router with cfg whose primary address is 10.77.0.<last>
// (or fe80::<last> for IPv6 configs). It is not started.
func (w *wire) add(cfg Config, last byte) *node {
	w.t.Helper()
	p, err := validate(&cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	local := netip.AddrFrom4([4]byte{10, 77, 0, last})
	if p.v6 {
		local = netip.AddrFrom16([16]byte{0: 0xfe, 1: 0x80, 15: last})
	}
	n := &node{i: len(w.nodes), w: w, sys: newFakeSys(local)}
	n.sys.now = func() time.Time { return w.now }
	for _, tr := range cfg.TrackInterfaces {
		n.sys.links[tr.Name] = true
	}
	n.c = newCore(p, n.sys, discard)
	n.c.tr = n
	n.c.transitioned = func(t Transition) { n.trans = append(n.trans, t) }
	w.nodes = append(w.nodes, n)
	return n
}

func (n *node) start() { n.c.start(n.w.now, cloneLinks(n.sys.links)) }

func cloneLinks(m map[string]bool) map[string]bool {
	out := map[string]bool{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// run advances virtual time to `until`, delivering packets and firing
// timers in time order.
func (w *wire) run(d time.Duration) {
	until := w.now.Add(d)
	for steps := 0; ; steps++ {
		if steps > 1_000_000 {
			w.t.Fatal("simulation does not settle")
		}
		// earliest event: a delivery or a timer
		next := until.Add(time.Nanosecond)
		for _, s := range w.queue {
			if at := s.at.Add(w.latency); at.Before(next) {
				next = at
			}
		}
		for _, n := range w.nodes {
			if t := n.c.next(); !t.IsZero() && t.Before(next) {
				next = t
			}
		}
		if next.After(until) {
			w.now = until
			return
		}
		if next.After(w.now) {
			w.now = next
		}
		var deliver []sent
		rest := w.queue[:0]
		for _, s := range w.queue {
			if !s.at.Add(w.latency).After(w.now) {
				deliver = append(deliver, s)
			} else {
				rest = append(rest, s)
			}
		}
		w.queue = rest
		for _, s := range deliver {
			for _, n := range w.nodes {
				if n.i == s.from || w.cut[n.i] || w.cut[s.from] || n.c.state == Initialize {
					continue
				}
				n.c.receive(w.now, rxPacket{b: s.b, src: s.src, dst: s.dst, ttl: 255, ifOK: true})
			}
		}
		for _, n := range w.nodes {
			if n.c.state != Initialize {
				n.c.expire(w.now)
			}
		}
	}
}

// runUntil advances until cond holds (checking after every event) or d
// passes; it returns the virtual time taken and whether cond held.
func (w *wire) runUntil(d time.Duration, cond func() bool) (time.Duration, bool) {
	start := w.now
	for w.now.Sub(start) < d {
		if cond() {
			return w.now.Sub(start), true
		}
		w.run(time.Millisecond)
	}
	return w.now.Sub(start), cond()
}

// inject delivers a hand-made packet to node n now.
func (n *node) inject(a Advert, src netip.Addr) {
	n.w.t.Helper()
	dst := GroupIPv4
	if src.Is6() {
		dst = GroupIPv6
	}
	b, err := a.Marshal(src, dst)
	if err != nil {
		n.w.t.Fatal(err)
	}
	n.c.receive(n.w.now, rxPacket{b: b, src: src, dst: dst, ttl: 255, ifOK: true})
}

// sentBy lists the adverts node i sent (in order).
func (w *wire) sentBy(i int) []sent {
	var out []sent
	for _, s := range w.log {
		if s.from == i {
			out = append(out, s)
		}
	}
	return out
}

func (n *node) String() string { return fmt.Sprintf("node%d(%v)", n.i, n.c.state) }

// chanTransport is a fake transport for Run-based tests: sends go to a
// channel, receives come from one.
type chanTransport struct {
	out chan sent
	in  chan rxPacket
	// waiting are messages in the socket that the reader thread has not
	// read (it is stalled): only pending sees them.
	waiting chan rxPacket
	closed  chan struct{}
	once    sync.Once
}

func newChanTransport() *chanTransport {
	return &chanTransport{out: make(chan sent, 1024), in: make(chan rxPacket, 16), waiting: make(chan rxPacket, 16), closed: make(chan struct{})}
}

func (c *chanTransport) send(b []byte, src, dst netip.Addr) error {
	a, err := Parse(b, src, dst)
	if err != nil {
		return err
	}
	select {
	case c.out <- sent{at: time.Now(), b: slices.Clone(b), src: src, dst: dst, a: a}:
	default:
	}
	return nil
}

func (c *chanTransport) recv(b []byte) (int, rxPacket, error) {
	select {
	case p := <-c.in:
		return copy(b, p.b), p, nil
	case <-c.closed:
		return 0, rxPacket{}, errClosed
	}
}

func (c *chanTransport) pending(b []byte) (int, rxPacket, bool, error) {
	select {
	case p := <-c.waiting:
		return copy(b, p.b), p, true, nil
	case p := <-c.in:
		return copy(b, p.b), p, true, nil
	default:
		return 0, rxPacket{}, false, nil
	}
}

func (c *chanTransport) close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}
