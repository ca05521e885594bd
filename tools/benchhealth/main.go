//go:build linux

// Command benchhealth measures the health-check scheduler at scale: it
// checks N real servers on loopback (one listener per 127.x.y.z address,
// served by a helper process so their CPU is not counted), some refusing,
// some stuck, some slow, every interval for a while, kills a sample of
// listeners halfway and prints checks per second, CPU (% of one core, from
// getrusage of this process only), peak RSS and the time from a listener
// dying to its down transition.
//
// -std picks standard-library layers instead of the package's own
// (healthcheck.Layers); -compare runs the check type once per layer both
// ways, each in a process of its own, and prints what each own layer saves
// in CPU per 10,000 checks a second.
//
// -type dns checks UDP DNS servers (the helper answers every target's
// socket with miekg/dns); the check uses none of the layers, so -compare
// runs it once.
//
//	benchhealth -n 10000 -duration 30s -type tcp
//	benchhealth -compare -duration 10s -type http
//	benchhealth -compare -duration 10s -type dns
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"lbd/healthcheck"
)

const port = 8080

type config struct {
	n           int
	typ         string
	interval    time.Duration
	timeout     time.Duration
	rise, fall  int
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	kill        int
	// Percentages of targets by behaviour; the rest answer at once.
	refusePct, stuckPct, slowPct int
	slowDelay                    time.Duration
	seed                         uint64
	cpuprofile                   string
	layers                       healthcheck.Layers
	rounds                       int
	compareLayers                string
}

// kind is what the listener at index i does.
type kind int

const (
	normal kind = iota
	refuse      // nothing listens: connection refused
	stuck       // listens with a full backlog, never accepts: connects hang
	slow        // answers after slowDelay (http); connects like normal (tcp)
)

func (c *config) kindOf(i int) kind {
	switch p := i % 100; {
	case p < c.refusePct:
		return refuse
	case p < c.refusePct+c.stuckPct:
		return stuck
	case p < c.refusePct+c.stuckPct+c.slowPct:
		return slow
	}
	return normal
}

// addrOf spreads targets over 127.1.0.1 upwards, 250 per /24.
func addrOf(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{127, byte(1 + i/62500), byte(i / 250 % 250), byte(i%250 + 1)})
}

func main() {
	var c config
	serve := flag.Bool("serve", false, "internal: run the listener helper")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the measured window here")
	flag.IntVar(&c.n, "n", 10000, "targets")
	flag.StringVar(&c.typ, "type", "tcp", "check type: tcp, http or dns")
	flag.DurationVar(&c.interval, "interval", time.Second, "check interval")
	flag.DurationVar(&c.timeout, "timeout", 500*time.Millisecond, "check timeout")
	flag.IntVar(&c.rise, "rise", 2, "rise")
	flag.IntVar(&c.fall, "fall", 3, "fall")
	flag.DurationVar(&c.duration, "duration", 30*time.Second, "measured run time")
	flag.DurationVar(&c.warmup, "warmup", 3*time.Second, "unmeasured start (checks spread over the first interval)")
	flag.IntVar(&c.concurrency, "concurrency", 512, "scheduler workers")
	flag.IntVar(&c.kill, "kill", 200, "listeners killed halfway through")
	flag.IntVar(&c.refusePct, "refuse", 3, "% of targets with no listener")
	flag.IntVar(&c.stuckPct, "stuck", 2, "% of targets that never accept")
	flag.IntVar(&c.slowPct, "slow", 5, "% of targets that answer late (http, dns)")
	flag.DurationVar(&c.slowDelay, "slow-delay", 200*time.Millisecond, "how late slow targets answer")
	flag.Uint64Var(&c.seed, "seed", 1, "random seed for the killed sample")
	std := flag.String("std", "", "standard-library layers instead of healthcheck's own: comma-separated connect, http, or all")
	compare := flag.Bool("compare", false, "run once per layer both ways and print what each own layer saves")
	flag.IntVar(&c.rounds, "rounds", 1, "-compare: runs of each variant, interleaved; the median counts")
	flag.StringVar(&c.compareLayers, "compare-layers", "", "-compare: only these layers (comma-separated); default every layer the type uses")
	flag.Parse()
	log.SetFlags(0)
	raiseNofile()
	if *serve {
		if err := runServer(&c); err != nil {
			log.Fatalf("benchhealth helper: %v", err)
		}
		return
	}
	c.cpuprofile = *cpuprofile
	var err error
	if c.layers, err = parseLayers(*std); err != nil {
		log.Fatalf("benchhealth: %v", err)
	}
	if *compare {
		err = runCompare(&c)
	} else {
		err = runBench(&c)
	}
	if err != nil {
		log.Fatalf("benchhealth: %v", err)
	}
}

// raiseNofile lifts the soft fd limit to the hard one: 10,000 listeners
// and hundreds of checks in flight need more than the usual 1024.
func raiseNofile() {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return
	}
	r.Cur = r.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
}

// ---- helper process: the real servers ----

func runServer(c *config) error {
	listeners := make([]io.Closer, c.n)
	var stuckFDs []int
	var lc net.ListenConfig
	for i := 0; i < c.n; i++ {
		ap := netip.AddrPortFrom(addrOf(i), port)
		delay := time.Duration(0)
		if c.kindOf(i) == slow && c.typ != "tcp" {
			delay = c.slowDelay
		}
		switch k := c.kindOf(i); {
		case k == refuse:
			continue
		case c.typ == "dns":
			pc, err := lc.ListenPacket(context.Background(), "udp", ap.String())
			if err != nil {
				return fmt.Errorf("listen udp %s: %w", ap, err)
			}
			listeners[i] = pc
			if k != stuck { // stuck: bound, never read; queries vanish
				go serveDNS(pc, delay)
			}
			continue
		case k == stuck:
			fd, err := stuckListen(ap)
			if err != nil {
				return err
			}
			stuckFDs = append(stuckFDs, fd)
			continue
		}
		l, err := lc.Listen(context.Background(), "tcp", ap.String())
		if err != nil {
			return fmt.Errorf("listen %s: %w", ap, err)
		}
		listeners[i] = l
		go accept(l, c.typ, delay)
	}
	fmt.Println("ready")
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "kill" {
			continue
		}
		for _, s := range f[1:] {
			i, err := strconv.Atoi(s)
			if err == nil && i >= 0 && i < c.n && listeners[i] != nil {
				listeners[i].Close()
				listeners[i] = nil
			}
		}
		fmt.Printf("killed %d\n", time.Now().UnixNano())
	}
	for _, fd := range stuckFDs {
		syscall.Close(fd)
	}
	return nil
}

// serveDNS answers every query on pc like an authoritative server of the
// root: the SOA, NOERROR. A killed target's socket is closed, so its
// queries get an ICMP port unreachable.
func serveDNS(pc net.PacketConn, delay time.Duration) {
	soa, err := dns.NewRR(". 3600 IN SOA a.root. nstld. 2026112900 1800 900 604800 86400")
	if err != nil {
		panic(err)
	}
	buf := make([]byte, 1500)
	out := make([]byte, 0, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		var q, r dns.Msg
		if q.Unpack(buf[:n]) != nil || len(q.Question) != 1 {
			continue
		}
		r.SetReply(&q)
		r.Authoritative = true
		if q.Question[0].Qtype == dns.TypeSOA && q.Question[0].Name == "." {
			r.Answer = []dns.RR{soa}
		}
		b, err := r.PackBuffer(out)
		if err != nil {
			continue
		}
		if delay > 0 {
			go func(b []byte) {
				time.Sleep(delay)
				_, _ = pc.WriteTo(b, from)
			}(append([]byte(nil), b...))
			continue
		}
		_, _ = pc.WriteTo(b, from)
	}
}

// stuckListen listens with backlog 0 and never accepts: after one queued
// connection the kernel drops SYNs, so connects time out.
func stuckListen(ap netip.AddrPort) (int, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}); err != nil {
		syscall.Close(fd)
		return -1, fmt.Errorf("bind %s: %w", ap, err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		syscall.Close(fd)
		return -1, err
	}
	return fd, nil
}

var response = []byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")

func accept(l net.Listener, typ string, delay time.Duration) {
	for {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		if typ != "http" {
			conn.Close()
			continue
		}
		go func() {
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			br := bufio.NewReaderSize(conn, 1024)
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(line) <= 2 { // end of headers
					break
				}
			}
			if delay > 0 {
				time.Sleep(delay)
			}
			_, _ = conn.Write(response)
		}()
	}
}

// ---- the checking process ----

type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
}

func startHelper(c *config) (*helper, error) {
	args := append([]string{"-serve"}, os.Args[1:]...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	h := &helper{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	if !h.out.Scan() || h.out.Text() != "ready" {
		h.stop()
		return nil, fmt.Errorf("helper did not start: %q %v", h.out.Text(), h.out.Err())
	}
	return h, nil
}

func (h *helper) kill(ids []int) (time.Time, error) {
	var b strings.Builder
	b.WriteString("kill")
	for _, i := range ids {
		fmt.Fprintf(&b, " %d", i)
	}
	b.WriteByte('\n')
	if _, err := io.WriteString(h.stdin, b.String()); err != nil {
		return time.Time{}, err
	}
	if !h.out.Scan() {
		return time.Time{}, fmt.Errorf("helper: %v", h.out.Err())
	}
	f := strings.Fields(h.out.Text())
	if len(f) != 2 || f[0] != "killed" {
		return time.Time{}, fmt.Errorf("helper said %q", h.out.Text())
	}
	ns, err := strconv.ParseInt(f[1], 10, 64)
	return time.Unix(0, ns), err
}

func (h *helper) stop() {
	h.stdin.Close()
	done := make(chan struct{})
	go func() { h.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		h.cmd.Process.Kill()
		<-done
	}
}

// gapRecorder measures, per target, the time between the starts of two
// consecutive checks: the scheduler's cadence as the targets see it.
type gapRecorder struct {
	last  []atomic.Int64 // unix ns of the last check start, by target
	hist  [10000]atomic.Uint32
	count atomic.Uint64
}

func (g *gapRecorder) record(i int, now int64) {
	if prev := g.last[i].Swap(now); prev != 0 {
		ms := (now - prev) / int64(time.Millisecond)
		g.hist[min(max(ms, 0), int64(len(g.hist)-1))].Add(1)
		g.count.Add(1)
	}
}

func (g *gapRecorder) quantile(q float64) int {
	n := g.count.Load()
	if n == 0 {
		return 0
	}
	want := min(uint64(q*float64(n)), n-1)
	var acc uint64
	for ms := range g.hist {
		acc += uint64(g.hist[ms].Load())
		if acc > want {
			return ms
		}
	}
	return len(g.hist) - 1
}

func (g *gapRecorder) reset() {
	for i := range g.hist {
		g.hist[i].Store(0)
	}
	g.count.Store(0)
}

type timed struct {
	inner healthcheck.Checker
	i     int
	gaps  *gapRecorder
}

func (t *timed) Check(ctx context.Context) healthcheck.Result {
	t.gaps.record(t.i, time.Now().UnixNano())
	return t.inner.Check(ctx)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ctxSwitches counts this process's context switches (all threads):
// voluntary ones are mostly threads sleeping in epoll or futex and being
// woken again, the runtime's cost of waiting.
func ctxSwitches() (vol, invol int64) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Nvcsw, ru.Nivcsw
}

func sysTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Stime.Nano())
}

// procCPU is a process's user+system CPU time from /proc/PID/stat.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// Fields after the command: state is f[0], utime f[11], stime f[12].
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// procStatus reads a kB or count field from /proc/self/status.
func procStatus(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, field+":"); ok {
			v, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return v
		}
	}
	return -1
}

func runBench(c *config) error {
	if c.typ != "tcp" && c.typ != "http" && c.typ != "dns" {
		return fmt.Errorf("-type %q: want tcp, http or dns", c.typ)
	}
	fmt.Printf("benchhealth: %d %s targets on 127.1.x.y:%d, interval %v, timeout %v, rise %d, fall %d, %d workers, GOMAXPROCS %d, layers %s\n",
		c.n, c.typ, port, c.interval, c.timeout, c.rise, c.fall, c.concurrency, runtime.GOMAXPROCS(0), layersString(c.layers))
	fmt.Printf("  targets: %d%% refusing, %d%% stuck (never accept or answer), %d%% slow (%v, http and dns), %d killed halfway\n",
		c.refusePct, c.stuckPct, c.slowPct, c.slowDelay, c.kill)
	h, err := startHelper(c)
	if err != nil {
		return err
	}
	defer h.stop()

	// The sample to kill: targets that answer, chosen at random.
	rng := rand.New(rand.NewPCG(c.seed, 42))
	var candidates []int
	for i := 0; i < c.n; i++ {
		if k := c.kindOf(i); k == normal || k == slow {
			candidates = append(candidates, i)
		}
	}
	rng.Shuffle(len(candidates), func(a, b int) { candidates[a], candidates[b] = candidates[b], candidates[a] })
	killIDs := candidates[:min(c.kill, len(candidates))]
	isKilled := make(map[string]bool, len(killIDs))
	for _, i := range killIDs {
		isKilled[id(i)] = true
	}

	var mu sync.Mutex
	downAt := map[string]time.Time{}
	transitions := make(chan healthcheck.Transition, 1<<16)
	var dropped atomic.Int64
	gaps := &gapRecorder{last: make([]atomic.Int64, c.n)}
	indexOf := make(map[string]int, c.n)
	for i := 0; i < c.n; i++ {
		indexOf[addrOf(i).String()] = i
	}
	s := healthcheck.New(healthcheck.Options{
		Concurrency: c.concurrency,
		OnTransition: func(tr healthcheck.Transition) {
			select {
			case transitions <- tr:
			default:
				dropped.Add(1)
			}
		},
		Layers: c.layers,
		NewChecker: func(sp healthcheck.Spec) (healthcheck.Checker, error) {
			inner, err := c.layers.NewChecker(sp, nil)
			if err != nil {
				return nil, err
			}
			return &timed{inner: inner, i: indexOf[sp.Address], gaps: gaps}, nil
		},
	})
	go func() {
		for tr := range transitions {
			if !tr.Up && isKilled[tr.ID] {
				mu.Lock()
				if _, seen := downAt[tr.ID]; !seen {
					downAt[tr.ID] = tr.Time
				}
				mu.Unlock()
			}
		}
	}()

	specs := make(map[string]healthcheck.Spec, c.n)
	for i := 0; i < c.n; i++ {
		specs[id(i)] = healthcheck.Spec{
			Type: healthcheck.Type(c.typ), Address: addrOf(i).String(), Port: port,
			Path:     "/health",
			Interval: c.interval, Timeout: c.timeout, Rise: c.rise, Fall: c.fall,
		}
	}
	if err := s.Set(specs); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()

	time.Sleep(c.warmup)
	if c.cpuprofile != "" {
		f, err := os.Create(c.cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer f.Close()
	}
	gaps.reset()
	start, cpu0, sys0, checks0 := time.Now(), cpuTime(), sysTime(), s.Stats().Checks
	helper0 := procCPU(h.cmd.Process.Pid)
	vol0, invol0 := ctxSwitches()
	var perSecond []uint64
	var inFlight []int // sampled once a second
	var peakGoroutines, peakThreads int64
	killAt := start.Add(c.duration / 2)
	var killedAt time.Time
	tick := time.NewTicker(time.Second)
	last := checks0
	for now := range tick.C {
		st := s.Stats()
		perSecond = append(perSecond, st.Checks-last)
		inFlight = append(inFlight, st.InFlight)
		last = st.Checks
		peakGoroutines = max(peakGoroutines, int64(runtime.NumGoroutine()))
		peakThreads = max(peakThreads, procStatus("Threads"))
		if killedAt.IsZero() && !now.Before(killAt) {
			if killedAt, err = h.kill(killIDs); err != nil {
				return err
			}
		}
		if now.Sub(start) >= c.duration {
			break
		}
	}
	tick.Stop()
	if c.cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	wall := time.Since(start)
	cpu, sys := cpuTime()-cpu0, sysTime()-sys0
	helperCPU := procCPU(h.cmd.Process.Pid) - helper0
	vol1, invol1 := ctxSwitches()
	load, _ := os.ReadFile("/proc/loadavg")
	checks := s.Stats().Checks - checks0
	snap := s.Snapshot()
	cancel()
	if err := <-done; err != nil {
		return err
	}
	close(transitions)

	var up, down, unknown int
	for _, st := range snap {
		switch st.State {
		case healthcheck.Up:
			up++
		case healthcheck.Down:
			down++
		default:
			unknown++
		}
	}
	expectDown := len(killIDs)
	for i := 0; i < c.n; i++ {
		if k := c.kindOf(i); k == refuse || k == stuck {
			expectDown++
		}
	}

	mu.Lock()
	var detect []time.Duration
	for _, i := range killIDs {
		if t, ok := downAt[id(i)]; ok {
			detect = append(detect, t.Sub(killedAt))
		}
	}
	mu.Unlock()
	slices.Sort(detect)
	q := func(p float64) time.Duration {
		if len(detect) == 0 {
			return -1
		}
		return detect[min(int(p*float64(len(detect))), len(detect)-1)]
	}
	if os.Getenv("BENCH_DEBUG") != "" {
		fmt.Println("  per second:", perSecond)
		fmt.Println("  in flight: ", inFlight)
		for ms := range gaps.hist {
			if n := gaps.hist[ms].Load(); n > 0 && (ms < 950 || ms > 1050) {
				fmt.Printf("  gap %dms: %d\n", ms, n)
			}
		}
	}
	slices.Sort(perSecond)

	rate := float64(checks) / wall.Seconds()
	want := float64(c.n) / c.interval.Seconds()
	cpuPct := 100 * cpu.Seconds() / wall.Seconds()
	rssMB := float64(procStatus("VmHWM")) / 1024
	bound := time.Duration(c.fall)*c.interval + c.timeout + 100*time.Millisecond

	fmt.Printf("  window: %.1fs measured after %v warm-up\n", wall.Seconds(), c.warmup)
	fmt.Printf("  checks/s:        %.0f (target %.0f); per-second min %d, max %d\n", rate, want, perSecond[0], perSecond[len(perSecond)-1])
	fmt.Printf("  check spacing:   p50 %dms, p99 %dms, max %dms per target (interval %v)\n",
		gaps.quantile(0.5), gaps.quantile(0.99), gaps.quantile(1), c.interval)
	fmt.Printf("  CPU:             %.1f%% of one core (%.1f%% user, %.1f%% system)\n",
		cpuPct, 100*(cpu-sys).Seconds()/wall.Seconds(), 100*sys.Seconds()/wall.Seconds())
	fmt.Printf("  context switches: %.0f/s voluntary, %.0f/s involuntary (%.2f per check)\n",
		float64(vol1-vol0)/wall.Seconds(), float64(invol1-invol0)/wall.Seconds(), float64(vol1-vol0+invol1-invol0)/float64(max(checks, 1)))
	fmt.Printf("  (not counted:    listener helper %.1f%% of one core; machine load average %s)\n",
		100*helperCPU.Seconds()/wall.Seconds(), strings.Join(strings.Fields(string(load))[:3], " "))
	fmt.Printf("  peak RSS:        %.1f MB; goroutines ≤ %d, threads ≤ %d\n", rssMB, peakGoroutines, peakThreads)
	fmt.Printf("  final states:    %d up, %d down (expected %d), %d unknown\n", up, down, expectDown, unknown)
	fmt.Printf("  detection:       %d/%d killed listeners went down; p50 %v, p99 %v, max %v (bound fall×interval+timeout+100ms = %v)\n",
		len(detect), len(killIDs), q(0.5).Round(time.Millisecond), q(0.99).Round(time.Millisecond), q(1).Round(time.Millisecond), bound)
	if n := dropped.Load(); n > 0 {
		fmt.Printf("  WARNING: %d transitions dropped by the bench's own buffer\n", n)
	}
	verdict := func(ok bool) string {
		if ok {
			return "ok"
		}
		return "MISSED"
	}
	fmt.Printf("  goals: rate %s, cpu<50%% %s, rss<200MB %s, p99 detection %s\n",
		verdict(rate >= 0.99*want), verdict(cpuPct < 50), verdict(rssMB < 200),
		verdict(len(detect) == len(killIDs) && q(0.99) <= bound))
	// For -compare: CPU normalized to 10,000 checks a second, since a
	// slower variant also does fewer checks.
	fmt.Printf("%s %.4f %.0f\n", resultTag, cpu.Seconds()/wall.Seconds()*10000/max(rate, 1), rate)
	return nil
}

func id(i int) string { return "bench/rs" + strconv.Itoa(i) }

// ---- -std and -compare ----

// layerNames are -std's words, in healthcheck.Layers' order.
var layerNames = []string{"connect", "http"}

func layerFlag(l *healthcheck.Layers, name string) *bool {
	switch name {
	case "connect":
		return &l.StdConnect
	case "http":
		return &l.StdHTTP
	}
	return nil
}

func parseLayers(s string) (healthcheck.Layers, error) {
	var l healthcheck.Layers
	for _, name := range strings.Split(s, ",") {
		switch name = strings.TrimSpace(name); name {
		case "":
		case "all":
			for _, n := range layerNames {
				*layerFlag(&l, n) = true
			}
		default:
			f := layerFlag(&l, name)
			if f == nil {
				return l, fmt.Errorf("-std %q: want %s or all", name, strings.Join(layerNames, ", "))
			}
			*f = true
		}
	}
	return l, nil
}

func layersString(l healthcheck.Layers) string {
	var std []string
	for _, n := range layerNames {
		if *layerFlag(&l, n) {
			std = append(std, n)
		}
	}
	if len(std) == 0 {
		return "own"
	}
	return "std " + strings.Join(std, ",")
}

// resultTag starts the line a run prints for -compare: CPU cores per
// 10,000 checks/s and checks/s.
const resultTag = "benchhealth-result"

// stdName says what replaces each layer, for the comparison lines.
var stdName = map[string]string{
	"connect": "net.Dialer",
	"http":    "http.ReadResponse",
}

// runCompare runs the check type with every layer its own, with each
// relevant layer from the standard library in turn, and with all of them
// from the standard library, each in a new process (a clean heap and
// getrusage), then prints one line per layer.
func runCompare(c *config) error {
	layers := []string{"connect"}
	switch c.typ {
	case "http":
		layers = []string{"connect", "http"}
	case "dns":
		// A dns check over UDP uses none of the layers: one run.
		layers = nil
	}
	if c.compareLayers != "" {
		layers = strings.Split(c.compareLayers, ",")
	}
	variants := append([]string{""}, layers...)
	if len(layers) > 1 {
		variants = append(variants, "all")
	}
	cores := map[string][]float64{}
	var args []string
	for i := 1; i < len(os.Args); i++ {
		switch a := strings.TrimLeft(os.Args[i], "-"); {
		case a == "compare":
		case a == "rounds" || a == "compare-layers" || a == "std":
			i++ // and its value
		case strings.HasPrefix(a, "rounds=") || strings.HasPrefix(a, "compare-layers=") || strings.HasPrefix(a, "std="):
		default:
			args = append(args, os.Args[i])
		}
	}
	for round := range max(c.rounds, 1) {
		for _, v := range variants {
			cmd := exec.Command(os.Args[0], append([]string{"-std", v}, args...)...)
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			if err != nil {
				os.Stdout.Write(out)
				return fmt.Errorf("-std %q: %w", v, err)
			}
			var perTenK, rate float64
			for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
				if _, err := fmt.Sscanf(l, resultTag+" %g %g", &perTenK, &rate); err == nil {
					continue
				}
				// The full report for the package's own layers (first
				// round); the CPU line and the goals for the others.
				if (v == "" && round == 0) || strings.HasPrefix(l, "benchhealth:") || strings.Contains(l, "CPU:") ||
					strings.Contains(l, "checks/s:") || strings.Contains(l, "goals:") {
					fmt.Println(l)
				}
			}
			if perTenK == 0 {
				return fmt.Errorf("-std %q: no result line", v)
			}
			cores[v] = append(cores[v], perTenK)
		}
	}
	median := func(v []float64) float64 {
		v = slices.Clone(v)
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	runs := func(v []float64) string {
		if len(v) < 2 {
			return ""
		}
		s := make([]string, len(v))
		for i, x := range v {
			s[i] = fmt.Sprintf("%.2f", x)
		}
		return " (runs " + strings.Join(s, " ") + ")"
	}
	own := median(cores[""])
	line := func(name, std string, v []float64) {
		m := median(v)
		fmt.Printf("bench-health %s %s: own %.2f cores per 10k checks/s%s | std %s %.2f%s | saves %.0f%%\n",
			c.typ, name, own, runs(cores[""]), std, m, runs(v), 100*(m-own)/m)
	}
	if len(layers) == 0 {
		fmt.Printf("bench-health %s: own %.2f cores per 10k checks/s%s (no layer to compare)\n", c.typ, own, runs(cores[""]))
	}
	for _, l := range layers {
		line(l, stdName[l], cores[l])
	}
	if len(layers) > 1 {
		line("all layers", "all", cores["all"])
	}
	return nil
}
