//go:build vm

package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// stWatch follows what decides where the client's packets go, for the
// whole test: which VIPs each director has on its interface and the
// client's neighbour entry for the traffic's VIP (netlink, every 25ms), and
// every VRRP advert and ARP packet from a VIP on the LAN (a packet socket
// on the client). It keeps a
// timeline of the changes (and of gaps in a director's adverts), so a
// scenario can say exactly when the VIPs moved and explain a failure.
type stWatch struct {
	s     *stLab
	stopc chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
	pkt   *os.File

	mu     sync.Mutex
	held   map[*stDirector][]netip.Addr // the VIPs on its interface now
	since  map[*stDirector]time.Time    // since when held is what it is
	neigh  string                       // the client's entry for the VIP
	events []stEvent
	advert map[netip.Addr]stAdvertSeen // the last advert from each source
	gaps   []stGap
}

// stGap is a pause in a source's adverts longer than two and a half
// intervals, ending at end.
type stGap struct {
	src string
	end time.Time
	gap time.Duration
}

type stEvent struct {
	at   time.Time
	what string
}

type stAdvertSeen struct {
	at   time.Time
	prio byte
}

// watch starts the lab's watch; it runs until the end of the test.
func (s *stLab) watch() *stWatch {
	t := s.t
	w := &stWatch{s: s, stopc: make(chan struct{}), held: map[*stDirector][]netip.Addr{},
		since: map[*stDirector]time.Time{}, advert: map[netip.Addr]stAdvertSeen{}}
	type polled struct {
		d    *stDirector // nil: the client
		h    *netlink.Handle
		link int
	}
	var ps []polled
	for _, d := range []*stDirector{s.a, s.b, nil} {
		host := s.client
		if d != nil {
			host = d.host
		}
		h, err := netlink.NewHandleAt(host.Handle())
		if err != nil {
			t.Fatalf("netlink in %s: %v", host.Name, err)
		}
		t.Cleanup(h.Close)
		link, err := h.LinkByName(host.Link)
		if err != nil {
			t.Fatalf("%s in %s: %v", host.Link, host.Name, err)
		}
		ps = append(ps, polled{d, h, link.Attrs().Index})
	}
	w.openSniffer(t)
	w.wg.Add(2)
	go func() {
		defer w.wg.Done()
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, p := range ps {
				if p.d == nil {
					w.pollNeigh(p.h, p.link)
				} else {
					w.pollVIPs(p.d, p.h, p.link)
				}
			}
			select {
			case <-w.stopc:
				return
			case <-tick.C:
			}
		}
	}()
	go w.sniff()
	t.Cleanup(w.stop)
	return w
}

func (w *stWatch) stop() {
	w.once.Do(func() {
		close(w.stopc)
		w.pkt.Close()
		w.wg.Wait()
	})
}

func (w *stWatch) note(at time.Time, format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events = append(w.events, stEvent{at, fmt.Sprintf(format, args...)})
}

func (w *stWatch) pollVIPs(d *stDirector, h *netlink.Handle, link int) {
	addrs, err := h.AddrList(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: link}}, netlink.FAMILY_ALL)
	if err != nil {
		return
	}
	now := time.Now()
	var held []netip.Addr
	for _, v := range w.s.vips {
		if slices.ContainsFunc(addrs, func(a netlink.Addr) bool { return a.IP.Equal(v.AsSlice()) }) {
			held = append(held, v)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	old, seen := w.held[d]
	if seen && slices.Equal(old, held) {
		return
	}
	w.held[d], w.since[d] = held, now
	if len(held) == 0 {
		w.events = append(w.events, stEvent{now, d.name + " holds no VIP"})
	} else {
		w.events = append(w.events, stEvent{now, fmt.Sprintf("%s holds %v", d.name, held)})
	}
}

func (w *stWatch) pollNeigh(h *netlink.Handle, link int) {
	vip := w.s.vips[0]
	fam := netlink.FAMILY_V4
	if vip.Is6() {
		fam = netlink.FAMILY_V6
	}
	ns, err := h.NeighList(link, fam)
	if err != nil {
		return
	}
	cur := "no entry"
	for _, n := range ns {
		if n.IP.Equal(vip.AsSlice()) && len(n.HardwareAddr) > 0 {
			cur = w.macName(n.HardwareAddr)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if cur != w.neigh {
		w.neigh = cur
		w.events = append(w.events, stEvent{time.Now(), "the client sends to " + cur})
	}
}

func (w *stWatch) macName(mac net.HardwareAddr) string {
	for _, d := range []*stDirector{w.s.a, w.s.b} {
		if mac.String() == d.host.MAC.String() {
			return d.name + "'s MAC"
		}
	}
	return mac.String()
}

// vrrpFilter accepts IPv4 and IPv6 packets of protocol 112 (VRRP), and
// ARP.
var vrrpFilter = func() []bpf.RawInstruction {
	p, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 12, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.ETH_P_IP, SkipFalse: 2},
		bpf.LoadAbsolute{Off: 14 + 9, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 112, SkipTrue: 4, SkipFalse: 5},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.ETH_P_IPV6, SkipFalse: 2},
		bpf.LoadAbsolute{Off: 14 + 6, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 112, SkipTrue: 1, SkipFalse: 2},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.ETH_P_ARP, SkipFalse: 1},
		bpf.RetConstant{Val: 0xffff},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		panic(err)
	}
	return p
}()

func (w *stWatch) openSniffer(t *testing.T) {
	c := w.s.client
	err := c.Do(func() error {
		ifi, err := net.InterfaceByName(c.Link)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		var prog []unix.SockFilter
		for _, r := range vrrpFilter {
			prog = append(prog, unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K})
		}
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}); err != nil {
			unix.Close(fd)
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return err
		}
		w.pkt = os.NewFile(uintptr(fd), "vrrp sniffer")
		return nil
	})
	if err != nil {
		t.Fatalf("VRRP sniffer on the client: %v", err)
	}
}

// sniff records each source's adverts: its first, a priority change, and a
// gap longer than two and a half advert intervals.
func (w *stWatch) sniff() {
	defer w.wg.Done()
	buf := make([]byte, 2048)
	for {
		n, err := w.pkt.Read(buf)
		if err != nil {
			return
		}
		now := time.Now()
		b := buf[:n]
		var src netip.Addr
		var vrrp []byte
		switch {
		case n >= 14+20 && b[12] == 0x08 && b[13] == 0x00 && b[14+9] == 112:
			ihl := int(b[14]&0x0f) * 4
			src = netip.AddrFrom4([4]byte(b[26:30]))
			if n >= 14+ihl+3 {
				vrrp = b[14+ihl:]
			}
		case n >= 14+40+3 && b[12] == 0x86 && b[13] == 0xdd && b[14+6] == 112:
			src = netip.AddrFrom16([16]byte(b[22:38]))
			vrrp = b[14+40:]
		case n >= 14+28 && b[12] == 0x08 && b[13] == 0x06:
			// An ARP packet from a VIP's owner (a gratuitous ARP, or a
			// reply to the client) moves the client's entry.
			if spa := netip.AddrFrom4([4]byte(b[28:32])); slices.Contains(w.s.vips, spa) {
				op := "request"
				if b[21] == 2 {
					op = "reply"
				}
				w.mu.Lock()
				w.events = append(w.events, stEvent{now, fmt.Sprintf("ARP %s for %v from %s", op, spa, w.macName(net.HardwareAddr(b[22:28])))})
				w.mu.Unlock()
			}
		}
		if vrrp == nil {
			continue
		}
		prio := vrrp[2]
		w.mu.Lock()
		last, seen := w.advert[src]
		name := w.srcName(src)
		switch {
		case !seen:
			w.events = append(w.events, stEvent{now, fmt.Sprintf("adverts from %s (priority %d)", name, prio)})
		case last.prio != prio:
			w.events = append(w.events, stEvent{now, fmt.Sprintf("adverts from %s: priority %d (was %d)", name, prio, last.prio)})
		case now.Sub(last.at) > 3*time.Second:
			w.events = append(w.events, stEvent{now, fmt.Sprintf("adverts from %s again (priority %d)", name, prio)})
		case now.Sub(last.at) > stAdvert*5/2:
			// Master_Down_Interval is 3 intervals and a skew: a gap
			// this long is close to a peer taking over.
			w.events = append(w.events, stEvent{now, fmt.Sprintf("adverts from %s again after a gap of %v", name, now.Sub(last.at).Round(time.Millisecond))})
			w.gaps = append(w.gaps, stGap{name, now, now.Sub(last.at)})
		}
		w.advert[src] = stAdvertSeen{now, prio}
		w.mu.Unlock()
	}
}

func (w *stWatch) srcName(a netip.Addr) string {
	for _, d := range []*stDirector{w.s.a, w.s.b} {
		if a == d.host.IPv4.Addr() || a == d.host.LinkLocal {
			return d.name
		}
	}
	return a.String()
}

// holds reports whether d has every VIP (all) or any VIP on its interface.
func (w *stWatch) holds(d *stDirector, all bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if all {
		return len(w.held[d]) == len(w.s.vips)
	}
	return len(w.held[d]) > 0
}

// heldSince is since when d holds the VIPs it holds (zero: none).
func (w *stWatch) heldSince(d *stDirector) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.held[d]) == 0 {
		return time.Time{}
	}
	return w.since[d]
}

// master reports whether m holds every VIP and other (unless nil) none, and
// since when that is so.
func (w *stWatch) master(m, other *stDirector) (bool, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.held[m]) != len(w.s.vips) {
		return false, time.Time{}
	}
	since := w.since[m]
	if other != nil {
		if len(w.held[other]) > 0 {
			return false, time.Time{}
		}
		if w.since[other].After(since) {
			since = w.since[other]
		}
	}
	return true, since
}

// maxGap is the longest pause in the adverts of the director called name
// that ended between from and to (while it was advertising).
func (w *stWatch) maxGap(name string, from, to time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var d time.Duration
	for _, g := range w.gaps {
		if g.src == name && !g.end.Before(from) && !g.end.After(to) {
			d = max(d, g.gap)
		}
	}
	return d
}

// timeline renders the events between from and to, as offsets from ref.
func (w *stWatch) timeline(from, to, ref time.Time) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	evs := slices.Clone(w.events)
	// Notes from polls (the status API) may come in after later events.
	slices.SortStableFunc(evs, func(x, y stEvent) int { return x.at.Compare(y.at) })
	var b strings.Builder
	for _, e := range evs {
		if e.at.Before(from) || e.at.After(to) {
			continue
		}
		fmt.Fprintf(&b, "\n  %+8.3fs %s", e.at.Sub(ref).Seconds(), e.what)
	}
	if b.Len() == 0 {
		return " (nothing changed)"
	}
	return b.String()
}
