//go:build linux && !vm

package e2e

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"lbd/internal/netlab"
)

// BenchmarkVRRPFailover is `make bench-failover`: the client-observed
// outage when the master director dies, lbd against keepalived in the same
// topology (two directors, priorities 200/100, VRID 51, one VIP; a client
// probing a TCP service bound on the VIP on both directors every 10ms).
// A trial stops the master's service and SIGKILLs its VRRP daemon at the
// same instant (the director is gone; the VIP it held stays on its
// interface, as after a crash). The outage is the gap between the last
// successful probe before the failure and the first one after it.
// Run with -benchtime 1x; LBD_FAILOVER_TRIALS sets the trials per case
// (default 10).
func BenchmarkVRRPFailover(b *testing.B) {
	netlab.Require(b, "keepalived")
	bin := os.Getenv("LBD_BIN")
	if bin == "" {
		bin = netlab.BuildBinary(b, "lbd/cmd/lbd")
	}
	trials := 10
	if s := os.Getenv("LBD_FAILOVER_TRIALS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("LBD_FAILOVER_TRIALS=%q", s)
		}
		trials = n
	}
	type result struct {
		impl     string
		interval time.Duration
		trials   []vrrpTrial
	}
	var results []result
	for range b.N {
		results = results[:0]
		for _, interval := range vrrpBenchIntervals {
			for _, impl := range []string{"lbd", "keepalived"} {
				results = append(results, result{impl, interval, vrrpFailoverTrials(b, impl, bin, interval, trials)})
			}
		}
	}
	var report strings.Builder
	fmt.Fprintf(&report, "\nfailover after SIGKILL of the master, %d trials each (crash phases spread over the advert cycle)\n", trials)
	fmt.Fprintf(&report, "outage: client-observed, a TCP probe every %v (%d staggered threads, %v dial timeout); takeover: last advert of the old master -> first gratuitous ARP\n",
		vrrpProbeEvery/vrrpProbeThreads, vrrpProbeThreads, vrrpProbeTimeout)
	fmt.Fprintf(&report, "of the new one, minus the daemon's Master_Down_Interval (3x advert + skew, backup priority 100), i.e. its own latency\n\n")
	fmt.Fprintf(&report, "%-10s %-7s %14s %9s %9s %16s %16s\n", "daemon", "advert", "outage median", "min", "max", "Master_Down_Int.", "takeover median")
	medians := map[string]time.Duration{}
	for _, r := range results {
		var outs, lat []time.Duration
		for _, tr := range r.trials {
			outs = append(outs, tr.outage)
			lat = append(lat, tr.latency)
		}
		med := vrrpMedian(outs)
		medians[fmt.Sprint(r.impl, r.interval)] = med
		fmt.Fprintf(&report, "%-10s %-7v %14v %9v %9v %16v %16v\n", r.impl, r.interval, med.Round(time.Millisecond),
			slices.Min(outs).Round(time.Millisecond), slices.Max(outs).Round(time.Millisecond), vrrpDownOf(r.impl, 100, r.interval),
			vrrpMedian(lat).Round(100*time.Microsecond))
		b.ReportMetric(float64(med.Microseconds())/1000, fmt.Sprintf("ms-outage-%s-%v", r.impl, r.interval))
	}
	fmt.Fprintf(&report, "\nper trial (same crash phases for both daemons):\n%-7s %-6s %12s %12s\n", "advert", "phase", "lbd", "keepalived")
	for i, r := range results {
		if r.impl != "lbd" || i+1 >= len(results) {
			continue
		}
		k := results[i+1]
		for j := range r.trials {
			fmt.Fprintf(&report, "%-7v %-6v %12v %12v\n", r.interval, r.trials[j].phase.Round(time.Millisecond),
				r.trials[j].outage.Round(time.Millisecond), k.trials[j].outage.Round(time.Millisecond))
		}
	}
	fmt.Fprintln(&report)
	for _, interval := range vrrpBenchIntervals {
		l, k := medians[fmt.Sprint("lbd", interval)], medians[fmt.Sprint("keepalived", interval)]
		fmt.Fprintf(&report, "advert %v: outage median lbd/keepalived = %.3f\n", interval, float64(l)/float64(k))
	}
	goal := 3*100*time.Millisecond + vrrpSkew(100, 100*time.Millisecond) + 30*time.Millisecond
	l100, k100 := medians[fmt.Sprint("lbd", 100*time.Millisecond)], medians[fmt.Sprint("keepalived", 100*time.Millisecond)]
	verdict := "met"
	if l100 > goal || l100 > k100 {
		verdict = "NOT met"
	}
	fmt.Fprintf(&report, "goal at 100ms: lbd <= 3x100ms + skew + 30ms = %v and <= keepalived (%v): %s (lbd %v)\n",
		goal, k100.Round(time.Millisecond), verdict, l100.Round(time.Millisecond))
	l10, k10 := medians[fmt.Sprint("lbd", 10*time.Millisecond)], medians[fmt.Sprint("keepalived", 10*time.Millisecond)]
	verdict = "met"
	if l10 > 30*time.Millisecond {
		verdict = "NOT met"
	}
	fmt.Fprintf(&report, "goal at 10ms: lbd outage median <= 30ms: %s (lbd %v, keepalived %v)\n",
		verdict, l10.Round(time.Millisecond), k10.Round(time.Millisecond))
	fmt.Print(report.String())
}

// vrrpBenchIntervals are the advert intervals of `make bench-failover`
// (VRRPv3 allows 10ms steps).
var vrrpBenchIntervals = []time.Duration{time.Second, 100 * time.Millisecond, 20 * time.Millisecond, 10 * time.Millisecond}

// vrrpDownOf is the Master_Down_Interval of impl: lbd computes Skew_Time
// in centiseconds as RFC 5798 writes it (rounded down: 0 at 10ms for
// priority 100), keepalived in microseconds (0.6ms at 10ms).
func vrrpDownOf(impl string, prio int, interval time.Duration) time.Duration {
	if impl == "keepalived" {
		return 3*interval + time.Duration(256-prio)*interval/256
	}
	return vrrpDown(prio, interval)
}

func vrrpMedian(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// vrrpDaemon is a VRRP daemon (lbd or keepalived) the bench can start and
// kill on one director.
type vrrpDaemon interface {
	start()
	kill()
}

// vrrpLbd runs lbd with a VRRP-only config.
type vrrpLbd struct{ d *vrrpDirector }

func (l vrrpLbd) start() { l.d.start() }
func (l vrrpLbd) kill()  { l.d.signal(syscall.SIGKILL) }

// vrrpKeepalived runs keepalived VRRP-only in a namespace.
type vrrpKeepalived struct {
	b    testing.TB
	h    *netlab.Host
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

func newVRRPKeepalived(b testing.TB, h *netlab.Host, prio int, interval time.Duration, vip netip.Addr) *vrrpKeepalived {
	k := &vrrpKeepalived{b: b, h: h, dir: b.TempDir()}
	conf := fmt.Sprintf(`global_defs {
  vrrp_version 3
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority %d
  advert_int %s
  virtual_ipaddress {
    %s/32
  }
}
`, prio, strconv.FormatFloat(interval.Seconds(), 'f', -1, 64), vip)
	if err := os.WriteFile(filepath.Join(k.dir, "keepalived.conf"), []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	h.Exec("keepalived", "-t", "-f", filepath.Join(k.dir, "keepalived.conf"))
	b.Cleanup(k.kill)
	return k
}

func (k *vrrpKeepalived) start() {
	// -G: no syslog. Without /dev/log (a lab namespace, a container)
	// keepalived's syslog lines end on the console and stall the box for
	// milliseconds at each takeover, which would count against it here.
	k.cmd = k.h.Cmd("keepalived", "-n", "-l", "-G", "-P", "-f", filepath.Join(k.dir, "keepalived.conf"),
		"-p", filepath.Join(k.dir, "keepalived.pid"), "-r", filepath.Join(k.dir, "vrrp.pid"))
	if err := k.cmd.Start(); err != nil {
		k.b.Fatal(err)
	}
	k.done = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { c.Wait(); close(done) }(k.cmd, k.done)
}

// kill SIGKILLs keepalived and its VRRP child at once.
func (k *vrrpKeepalived) kill() {
	if k.cmd == nil {
		return
	}
	if b, err := os.ReadFile(filepath.Join(k.dir, "vrrp.pid")); err == nil {
		if child, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			syscall.Kill(child, syscall.SIGKILL)
		}
	}
	k.cmd.Process.Kill()
	<-k.done
	k.cmd = nil
	// A zombie child would make keepalived believe it is still running.
	os.Remove(filepath.Join(k.dir, "vrrp.pid"))
	os.Remove(filepath.Join(k.dir, "keepalived.pid"))
}

// vrrpService is a TCP service on VIP:port in a director's namespace,
// bound before the VIP exists (IP_FREEBIND).
type vrrpService struct {
	ln net.Listener
	wg sync.WaitGroup
}

func startVRRPService(b testing.TB, h *netlab.Host, addr netip.AddrPort) *vrrpService {
	s := &vrrpService{}
	err := h.Do(func() error {
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
			})
			return errors.Join(err, serr)
		}}
		var err error
		s.ln, err = lc.Listen(b.Context(), "tcp", addr.String())
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return s
}

func (s *vrrpService) stop() {
	s.ln.Close()
	s.wg.Wait()
}

// vrrpProber connects to the VIP from the client: vrrpProbeThreads
// threads, each every 10ms and staggered, so a probe starts every 2ms
// while the service answers and every few ms while a probe waits out its
// dial timeout (one thread alone would see the outage in 10ms or, while
// its dial hangs, timeout-sized steps: too coarse at 10ms adverts).
type vrrpProber struct {
	mu     sync.Mutex
	probes []vrrpProbe
	stopc  chan struct{}
	done   chan error
}

type vrrpProbe struct {
	at time.Time
	ok bool
}

const (
	vrrpProbeThreads = 5
	vrrpProbeEvery   = 10 * time.Millisecond
	vrrpProbeTimeout = 20 * time.Millisecond
)

func startVRRPProber(client *netlab.Host, addr netip.AddrPort) *vrrpProber {
	p := &vrrpProber{stopc: make(chan struct{}), done: make(chan error, vrrpProbeThreads)}
	for i := range vrrpProbeThreads {
		go func() {
			// One thread in the client namespace per prober, for the whole run.
			p.done <- client.Do(func() error {
				select {
				case <-p.stopc:
					return nil
				case <-time.After(time.Duration(i) * vrrpProbeEvery / vrrpProbeThreads):
				}
				d := net.Dialer{Timeout: vrrpProbeTimeout}
				tick := time.NewTicker(vrrpProbeEvery)
				defer tick.Stop()
				for {
					at := time.Now()
					c, err := d.Dial("tcp", addr.String())
					if err == nil {
						c.Close()
					}
					p.mu.Lock()
					p.probes = append(p.probes, vrrpProbe{at, err == nil})
					p.mu.Unlock()
					select {
					case <-p.stopc:
						return nil
					case <-tick.C:
					}
				}
			})
		}()
	}
	return p
}

func (p *vrrpProber) stop() error {
	close(p.stopc)
	var first error
	for range vrrpProbeThreads {
		if err := <-p.done; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// snapshot returns the probes in the order they started.
func (p *vrrpProber) snapshot() []vrrpProbe {
	p.mu.Lock()
	ps := slices.Clone(p.probes)
	p.mu.Unlock()
	slices.SortStableFunc(ps, func(a, b vrrpProbe) int { return a.at.Compare(b.at) })
	return ps
}

// okSince reports whether every probe of the last d succeeded (and there
// were some).
func (p *vrrpProber) okSince(d time.Duration) bool {
	ps := p.snapshot()
	from := time.Now().Add(-d)
	n := 0
	for i := len(ps) - 1; i >= 0 && ps[i].at.After(from); i-- {
		if !ps[i].ok {
			return false
		}
		n++
	}
	return n >= int(d/(20*time.Millisecond))
}

// outageAfter measures the failure that started at or after t: from the
// last successful probe before it to the first success after it. ok is
// false if it has not ended yet.
func (p *vrrpProber) outageAfter(t time.Time) (time.Duration, bool) {
	ps := p.snapshot()
	first := slices.IndexFunc(ps, func(x vrrpProbe) bool { return !x.ok && !x.at.Before(t) })
	if first < 0 {
		return 0, false
	}
	last := first - 1
	for last >= 0 && !ps[last].ok {
		last--
	}
	if last < 0 {
		return 0, false
	}
	for i := first; i < len(ps); i++ {
		if ps[i].ok {
			return ps[i].at.Sub(ps[last].at), true
		}
	}
	return 0, false
}

// vrrpSniffer records, in the client namespace, the arrival of every VRRP
// advert (so trials can kill the master at a chosen phase of its advert
// cycle) and of every gratuitous ARP (so the takeover can be timed on the
// wire, without the probes' 10ms granularity).
type vrrpSniffer struct {
	adverts chan vrrpSeen // VRRP adverts, by source address
	mu      sync.Mutex
	garps   []vrrpSeen // gratuitous ARPs, by sender MAC
}

type vrrpSeen struct {
	at  time.Time
	src string // IP (adverts) or MAC (gratuitous ARPs)
}

func startVRRPSniffer(b testing.TB, client *netlab.Host, vip netip.Addr) *vrrpSniffer {
	var pc *ipv4.PacketConn
	var ac *packet.Conn
	err := client.Do(func() error {
		ifi, err := net.InterfaceByName(client.Link)
		if err != nil {
			return err
		}
		c, err := net.ListenPacket("ip4:112", "0.0.0.0")
		if err != nil {
			return err
		}
		pc = ipv4.NewPacketConn(c)
		if err := pc.JoinGroup(ifi, &net.IPAddr{IP: net.IPv4(224, 0, 0, 18)}); err != nil {
			c.Close()
			return err
		}
		ac, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_ARP, nil)
		if err != nil {
			c.Close()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	s := &vrrpSniffer{adverts: make(chan vrrpSeen, 64)}
	go func() {
		buf := make([]byte, 1500)
		for {
			_, _, src, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			select {
			case s.adverts <- vrrpSeen{time.Now(), src.String()}:
			default:
			}
		}
	}()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := ac.ReadFrom(buf)
			if err != nil {
				return
			}
			at := time.Now()
			var f ethernet.Frame
			var a arp.Packet
			if f.UnmarshalBinary(buf[:n]) != nil || a.UnmarshalBinary(f.Payload) != nil {
				continue
			}
			if a.SenderIP == vip && a.TargetIP == vip {
				s.mu.Lock()
				s.garps = append(s.garps, vrrpSeen{at, a.SenderHardwareAddr.String()})
				s.mu.Unlock()
			}
		}
	}()
	b.Cleanup(func() { pc.Close(); ac.Close() })
	return s
}

// nextAdvert waits for the next advert from src and returns its arrival.
func (s *vrrpSniffer) nextAdvert(b testing.TB, src netip.Addr, timeout time.Duration) time.Time {
	for len(s.adverts) > 0 {
		<-s.adverts
	}
	deadline := time.After(timeout)
	for {
		select {
		case a := <-s.adverts:
			if a.src == src.String() {
				return a.at
			}
		case <-deadline:
			b.Fatalf("no advert from %v within %v", src, timeout)
		}
	}
}

// garpAfter is the first gratuitous ARP for the VIP from mac at or after t.
func (s *vrrpSniffer) garpAfter(mac net.HardwareAddr, t time.Time) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.garps {
		if g.src == mac.String() && !g.at.Before(t) {
			return g.at, true
		}
	}
	return time.Time{}, false
}

// vrrpTrial is one measured failover.
type vrrpTrial struct {
	phase   time.Duration // crash this long after the master's last advert
	outage  time.Duration // client-observed
	latency time.Duration // first GARP of the new master - last advert of the old - Master_Down_Interval
}

// vrrpFailoverTrials measures `trials` failovers of one implementation at
// one advert interval on a fresh LAN.
func vrrpFailoverTrials(b *testing.B, impl, bin string, interval time.Duration, trials int) []vrrpTrial {
	lan := netlab.NewLAN(b, "vrb", 3)
	h1, h2, client := lan.Hosts[0], lan.Hosts[1], lan.Hosts[2]
	vip := lan.IPv4(100)
	svc := netip.AddrPortFrom(vip, 8080)
	var d1, d2 vrrpDaemon
	if impl == "lbd" {
		d1 = vrrpLbd{newVRRPDirector(b, h1, bin, vrrpOpts{priority: 200, interval: interval, vip: vip})}
		d2 = vrrpLbd{newVRRPDirector(b, h2, bin, vrrpOpts{priority: 100, interval: interval, vip: vip})}
	} else {
		d1 = newVRRPKeepalived(b, h1, 200, interval, vip)
		d2 = newVRRPKeepalived(b, h2, 100, interval, vip)
	}
	s1 := startVRRPService(b, h1, svc)
	s2 := startVRRPService(b, h2, svc)
	defer func() { s1.stop(); s2.stop() }()
	d1.start()
	d2.start()
	p := startVRRPProber(client, svc)
	defer p.stop()

	settle := func() {
		deadline := time.Now().Add(3*vrrpDown(200, interval) + 10*time.Second)
		for !(h1.HasAddr(b, vip) && !h2.HasAddr(b, vip) && p.okSince(300*time.Millisecond)) {
			if time.Now().After(deadline) {
				b.Fatalf("%s at %v: director 1 did not become the stable master", impl, interval)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if mac, _, ok := client.Neighbour(b, vip); !ok || mac.String() != h1.MAC.String() {
			b.Fatalf("%s at %v: client's neighbour entry %v, want director 1 %v", impl, interval, mac, h1.MAC)
		}
	}
	sniff := startVRRPSniffer(b, client, vip)
	var out []vrrpTrial
	for i := 0; i < trials; i++ {
		settle()
		// Crash at phase (i+0.5)/trials of the advert cycle: the same
		// phases for every daemon, spread evenly as random crashes would be.
		last := sniff.nextAdvert(b, h1.IPv4.Addr(), max(3*interval, time.Second))
		phase := (time.Duration(2*i+1) * interval) / time.Duration(2*trials)
		time.Sleep(time.Until(last.Add(phase)))
		// The service goes first, so that a probe failing for another
		// reason (a loaded machine) cannot be taken for the start of the
		// outage while the dying director still answers.
		killed := time.Now()
		s1.stop()
		d1.kill()
		giveUp := killed.Add(vrrpDown(100, interval) + 10*time.Second)
		for {
			outage, ok := p.outageAfter(killed)
			garp, seen := sniff.garpAfter(h2.MAC, killed)
			if ok && seen {
				out = append(out, vrrpTrial{phase: killed.Sub(last), outage: outage,
					latency: garp.Sub(last) - vrrpDownOf(impl, 100, interval)})
				break
			}
			if time.Now().After(giveUp) {
				b.Fatalf("%s at %v trial %d: the service did not come back (or no gratuitous ARP seen)", impl, interval, i+1)
			}
			time.Sleep(10 * time.Millisecond)
		}
		s1 = startVRRPService(b, h1, svc)
		d1.start()
	}
	return out
}
