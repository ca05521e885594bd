//go:build linux && !vm

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sys/unix"

	"lbd/internal/netlab"
)

// BenchmarkVRRPStability is `make bench-vrrp-stability`: VRRP pairs at
// 10ms and 20ms adverts for STABILITY_MINUTES (default 10) each, with
// stress-ng loading every core and, inside lbd, an allocation-heavy load
// (console API polling: config checks and status, see vrrpAPILoad). The
// pairs run AT THE SAME TIME, each on its own LAN (namespaces), so the
// same load hits every daemon:
//
//   - lbd with its defaults, under the API load;
//   - lbd with rt_priority = 50 and lock_memory (the knobs), API load;
//   - lbd with its defaults and no API load (VRRP's own CPU);
//   - keepalived with its defaults;
//   - keepalived with vrrp_rt_priority 50 and vrrp_no_swap.
//
// An observer on each LAN timestamps every advert in the kernel
// (AF_PACKET, SO_TIMESTAMPNS), so a loaded bench process cannot invent
// gaps. Printed per daemon and interval: false transitions (episodes of
// adverts from the backup while the master is alive: a backup that
// became master), the longest gap between the master's adverts, and the
// CPU (utime+stime from /proc/PID/stat) per advert of the master and of
// the backup (keepalived: its VRRP process; lbd: the whole process, and
// its VRRP threads where it has dedicated ones).
func BenchmarkVRRPStability(b *testing.B) {
	netlab.Require(b, "keepalived", "stress-ng")
	bin := os.Getenv("LBD_BIN")
	if bin == "" {
		bin = netlab.BuildBinary(b, "lbd/cmd/lbd")
	}
	minutes := 10.0
	if s := os.Getenv("STABILITY_MINUTES"); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f <= 0 {
			b.Fatalf("STABILITY_MINUTES=%q", s)
		}
		minutes = f
	}
	window := time.Duration(minutes * float64(time.Minute))
	var lines []string
	for range b.N {
		lines = lines[:0]
		for i, interval := range []time.Duration{10 * time.Millisecond, 20 * time.Millisecond} {
			lines = append(lines, vrrpStabilityRun(b, bin, fmt.Sprintf("vs%d", i), interval, window)...)
		}
	}
	fmt.Printf("\nVRRP stability: all pairs at once, stress-ng --cpu 0 (every core) + lbd console API load, %v per interval\n", window)
	fmt.Printf("false: episodes of backup adverts while the master lives; gap: longest between the master's adverts (kernel timestamps);\n")
	fmt.Printf("cpu/adv: utime+stime per master advert (keepalived: VRRP process; lbd: whole process [VRRP threads])\n")
	fmt.Printf("%-15s %-6s %6s %14s %9s %7s %8s %16s %12s %9s\n", "daemon", "advert", "false", "adverts seen/due", "max gap", "x int", "gaps>2x",
		"cpu/adv master", "cpu/adv bkup", "api req/s")
	for _, l := range lines {
		fmt.Println(l)
	}
}

type vrrpStabVariant struct {
	name    string
	lbd     bool
	rt      bool
	apiLoad bool
}

var vrrpStabVariants = []vrrpStabVariant{
	{"lbd", true, false, true},
	{"lbd rt+mlock", true, true, true},
	{"lbd no-api", true, false, false},
	{"keepalived", false, false, false},
	{"keepalived rt", false, true, false},
}

// vrrpStabPair is one pair on its own LAN with its observer.
type vrrpStabPair struct {
	v       vrrpStabVariant
	lan     *netlab.LAN
	d1, d2  vrrpDaemon
	pid     [2]func() int // VRRP process of each director
	watch   *vrrpWire
	api     [2]*vrrpAPILoad
	cpu0    [2]vrrpCPU
	master  netip.Addr
	backup  netip.Addr
	started time.Time
}

func vrrpStabilityRun(b *testing.B, bin, prefix string, interval time.Duration, window time.Duration) []string {
	var pairs []*vrrpStabPair
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()
	console, token := vrrpConsole(b)
	for i, v := range vrrpStabVariants {
		lan := netlab.NewLAN(b, fmt.Sprintf("%s%d", prefix, i), 3)
		h1, h2 := lan.Hosts[0], lan.Hosts[1]
		vip := lan.IPv4(100)
		p := &vrrpStabPair{v: v, lan: lan, master: h1.IPv4.Addr(), backup: h2.IPv4.Addr()}
		extra := ""
		if v.rt {
			extra = "rt_priority = 50\nlock_memory = true\n"
		}
		if v.lbd {
			l1 := newVRRPDirector(b, h1, bin, vrrpOpts{priority: 200, interval: interval, vip: vip, extra: extra, tables: console})
			l2 := newVRRPDirector(b, h2, bin, vrrpOpts{priority: 100, interval: interval, vip: vip, extra: extra, tables: console})
			p.d1, p.d2 = vrrpLbd{l1}, vrrpLbd{l2}
			p.pid = [2]func() int{l1.pid, l2.pid}
			cleanups = append(cleanups, func() { l1.signal(syscall.SIGKILL); l2.signal(syscall.SIGKILL) })
		} else {
			k1 := newVRRPKeepalivedRT(b, h1, 200, interval, vip, v.rt)
			k2 := newVRRPKeepalivedRT(b, h2, 100, interval, vip, v.rt)
			p.d1, p.d2 = k1, k2
			p.pid = [2]func() int{k1.vrrpPID, k2.vrrpPID}
			cleanups = append(cleanups, func() { k1.kill(); k2.kill() })
		}
		p.watch = startVRRPWire(b, lan.Hosts[2])
		cleanups = append(cleanups, p.watch.stop)
		p.d1.start()
		time.Sleep(50 * time.Millisecond) // director 1 first: it wins at once
		p.d2.start()
		pairs = append(pairs, p)
	}
	// Every pair settled: director 1 master, director 2 backup.
	deadline := time.Now().Add(30 * time.Second)
	for _, p := range pairs {
		vip := p.lan.IPv4(100)
		for !(p.lan.Hosts[0].HasAddr(b, vip) && !p.lan.Hosts[1].HasAddr(b, vip) && p.pid[0]() > 0 && p.pid[1]() > 0) {
			if time.Now().After(deadline) {
				b.Fatalf("%s at %v: director 1 did not become master", p.v.name, interval)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(2 * time.Second)

	stress := exec.Command("stress-ng", "--cpu", "0", "--timeout", fmt.Sprintf("%ds", int((window+time.Minute).Seconds())), "--quiet")
	stress.Stdout, stress.Stderr = io.Discard, io.Discard
	if err := stress.Start(); err != nil {
		b.Fatal(err)
	}
	stressDone := make(chan struct{})
	go func() { stress.Wait(); close(stressDone) }()
	cleanups = append(cleanups, func() {
		stress.Process.Kill()
		<-stressDone
	})
	for _, p := range pairs {
		if !p.v.apiLoad {
			continue
		}
		for j, h := range p.lan.Hosts[:2] {
			p.api[j] = startVRRPAPILoad(b, h, token)
			cleanups = append(cleanups, p.api[j].stop)
		}
	}
	time.Sleep(2 * time.Second) // load running before the window opens
	for _, p := range pairs {
		p.watch.reset(interval)
		p.started = time.Now()
		for j := range 2 {
			p.cpu0[j] = readVRRPCPU(p.pid[j]())
		}
		for _, a := range p.api {
			if a != nil {
				a.done.Store(0)
			}
		}
	}
	time.Sleep(window)

	var lines []string
	for _, p := range pairs {
		elapsed := time.Since(p.started)
		var cpu [2]vrrpCPU
		for j := range 2 {
			cpu[j] = readVRRPCPU(p.pid[j]())
		}
		st := p.watch.stats(p.master, p.backup)
		alive := p.lan.Hosts[0].HasAddr(b, p.lan.IPv4(100))
		per := func(j int) string {
			if st.masterAdverts == 0 {
				return "-"
			}
			d := cpu[j].sub(p.cpu0[j])
			s := (d.process / time.Duration(st.masterAdverts)).Round(100 * time.Nanosecond).String()
			if d.vrrpThreads > 0 {
				s += fmt.Sprintf(" [%v]", (d.vrrpThreads / time.Duration(st.masterAdverts)).Round(100*time.Nanosecond))
			}
			return s
		}
		api := "-"
		if p.api[0] != nil {
			api = fmt.Sprintf("%.0f", float64(p.api[0].done.Load()+p.api[1].done.Load())/elapsed.Seconds())
		}
		falseT := strconv.Itoa(st.backupEpisodes)
		if !alive {
			falseT += "(!master lost VIP)"
		}
		lines = append(lines, fmt.Sprintf("%-15s %-6v %6s %14s %9v %7.2f %8d %16s %12s %9s", p.v.name, interval, falseT,
			fmt.Sprintf("%d/%d", st.masterAdverts, elapsed/interval), st.maxGap.Round(100*time.Microsecond), float64(st.maxGap)/float64(interval), st.gapsOver2x,
			per(0), per(1), api))
	}
	return lines
}

// newVRRPKeepalivedRT is newVRRPKeepalived with, when rt is set,
// vrrp_rt_priority 50 and vrrp_no_swap (keepalived's knobs).
func newVRRPKeepalivedRT(b testing.TB, h *netlab.Host, prio int, interval time.Duration, vip netip.Addr, rt bool) *vrrpKeepalived {
	k := newVRRPKeepalived(b, h, prio, interval, vip)
	if rt {
		conf := filepath.Join(k.dir, "keepalived.conf")
		old, err := os.ReadFile(conf)
		if err != nil {
			b.Fatal(err)
		}
		knobs := strings.Replace(string(old), "vrrp_version 3\n", "vrrp_version 3\n  vrrp_rt_priority 50\n  vrrp_no_swap\n", 1)
		if err := os.WriteFile(conf, []byte(knobs), 0o644); err != nil {
			b.Fatal(err)
		}
		h.Exec("keepalived", "-t", "-f", conf)
	}
	return k
}

// vrrpPID is keepalived's VRRP child process (0 if not known yet).
func (k *vrrpKeepalived) vrrpPID() int {
	data, err := os.ReadFile(filepath.Join(k.dir, "vrrp.pid"))
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return n
}

// pid is lbd's process id (`ip netns exec` execs it in place).
func (d *vrrpDirector) pid() int {
	if d.cmd == nil || d.cmd.Process == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

// vrrpCPU is a process's CPU time so far, and that of its threads named
// lbd-vrrp* (lbd's dedicated VRRP threads, with rt_priority).
type vrrpCPU struct{ process, vrrpThreads time.Duration }

func (c vrrpCPU) sub(o vrrpCPU) vrrpCPU {
	return vrrpCPU{c.process - o.process, c.vrrpThreads - o.vrrpThreads}
}

// clockTick is USER_HZ, the unit of /proc/PID/stat's times on Linux.
const clockTick = 10 * time.Millisecond

func statCPU(path string) time.Duration {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	// Fields after the command (which may hold spaces) in parentheses:
	// state is field 3, utime 14, stime 15.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * clockTick
}

func readVRRPCPU(pid int) vrrpCPU {
	if pid <= 0 {
		return vrrpCPU{}
	}
	c := vrrpCPU{process: statCPU(fmt.Sprintf("/proc/%d/stat", pid))}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	for _, t := range tasks {
		comm, _ := os.ReadFile(filepath.Join(t, "comm"))
		if strings.HasPrefix(string(comm), "lbd-vrrp") {
			c.vrrpThreads += statCPU(filepath.Join(t, "stat"))
		}
	}
	return c
}

// vrrpWire records every VRRP advert on a LAN from an observer host, on
// an AF_PACKET socket with kernel receive timestamps.
type vrrpWire struct {
	fd     int
	mu     sync.Mutex
	last   map[netip.Addr]time.Time
	counts map[netip.Addr]int
	maxGap map[netip.Addr]time.Duration
	over2x map[netip.Addr]int
	// episodes counts, per source, runs of adverts more than a second
	// apart: one for the master, each of the backup's is a takeover.
	episodes map[netip.Addr]int
	schedErr error // the observer could not get real-time scheduling
	stopped  atomic.Bool
	done     chan struct{}
	gapMin   time.Duration
}

type vrrpWireStats struct {
	masterAdverts  int
	maxGap         time.Duration
	gapsOver2x     int
	backupEpisodes int
}

func startVRRPWire(b testing.TB, h *netlab.Host) *vrrpWire {
	w := &vrrpWire{done: make(chan struct{})}
	w.reset(time.Second)
	err := h.Do(func() error {
		ifi, err := net.InterfaceByName(h.Link)
		if err != nil {
			return err
		}
		proto := int(htons(unix.ETH_P_IP))
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM, proto)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return err
		}
		for _, o := range []struct{ opt, v int }{{unix.SO_TIMESTAMPNS, 1}, {unix.SO_RCVBUFFORCE, 4 << 20}} {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, o.opt, o.v); err != nil {
				unix.Close(fd)
				return err
			}
		}
		tv := unix.NsecToTimeval((200 * time.Millisecond).Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(fd)
			return err
		}
		w.fd = fd
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	go w.read()
	return w
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (w *vrrpWire) read() {
	defer close(w.done)
	// The instrument must not lose packets to the load it measures: its
	// reading thread runs at a real-time priority above every daemon's.
	runtime.LockOSThread()
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: 90}
	if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
		w.schedErr = err
	}
	buf := make([]byte, 2048)
	oob := make([]byte, 256)
	for !w.stopped.Load() {
		n, oobn, _, _, err := unix.Recvmsg(w.fd, buf, oob, 0)
		if err != nil {
			continue // timeout (to look at stopped) or EINTR
		}
		if n < 20 || buf[0]>>4 != 4 || buf[9] != 112 {
			continue
		}
		ihl := int(buf[0]&0x0f) * 4
		if n < ihl+8 {
			continue
		}
		prio := buf[ihl+2]
		src := netip.AddrFrom4([4]byte(buf[12:16]))
		var at time.Time
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		for _, m := range msgs {
			if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPNS && len(m.Data) >= 16 {
				sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
				nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
				at = time.Unix(sec, nsec)
			}
		}
		if at.IsZero() {
			at = time.Now()
		}
		if prio == 0 {
			continue
		}
		w.mu.Lock()
		if l, ok := w.last[src]; !ok || at.Sub(l) > time.Second {
			w.episodes[src]++
		}
		if l, ok := w.last[src]; ok {
			g := at.Sub(l)
			if g > w.maxGap[src] {
				w.maxGap[src] = g
			}
			if w.gapMin > 0 && g > w.gapMin {
				w.over2x[src]++
			}
		}
		w.last[src] = at
		w.counts[src]++
		w.mu.Unlock()
	}
}

// reset starts a new window; a gap over 2 x interval is counted apart.
func (w *vrrpWire) reset(interval time.Duration) {
	w.mu.Lock()
	w.gapMin = 2 * interval
	defer w.mu.Unlock()
	w.last = map[netip.Addr]time.Time{}
	w.counts = map[netip.Addr]int{}
	w.maxGap = map[netip.Addr]time.Duration{}
	w.over2x = map[netip.Addr]int{}
	w.episodes = map[netip.Addr]int{}
}

func (w *vrrpWire) stats(master, backup netip.Addr) vrrpWireStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return vrrpWireStats{masterAdverts: w.counts[master], maxGap: w.maxGap[master],
		gapsOver2x: w.over2x[master], backupEpisodes: w.episodes[backup]}
}

func (w *vrrpWire) stop() {
	if w.stopped.Swap(true) {
		return
	}
	<-w.done
	unix.Close(w.fd)
}

// vrrpAPILoad polls lbd's console API from inside the director's
// namespace as fast as a few workers can, paced to at most apiRate
// requests a second: config checks (POST /api/v1/check parses and
// normalizes a TOML file of 5 virtual servers: allocation-heavy) and
// status reads, alternately. It stands in for a busy console: the host
// kernel has no IPVS, so lbd runs no health checks here.
type vrrpAPILoad struct {
	done   atomic.Int64
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

const apiRate = 250 // requests a second per director, at most

func startVRRPAPILoad(b testing.TB, h *netlab.Host, token string) *vrrpAPILoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &vrrpAPILoad{cancel: cancel}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := h.Do(func() error {
				var err error
				c, err = (&net.Dialer{Timeout: time.Second}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
		MaxIdleConnsPerHost: 8,
	}
	client := &http.Client{Transport: vrrpBearer{tr, token}, Timeout: 5 * time.Second}
	body := vrrpCheckBody()
	// One request to fail early if the API refuses.
	if resp, err := client.Post("http://127.0.0.1:3636/api/v1/check", "application/toml", strings.NewReader(body)); err != nil {
		b.Fatalf("API load on %s: %v", h.Name, err)
	} else {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("API load on %s: POST /api/v1/check: %s", h.Name, resp.Status)
		}
	}
	tick := time.NewTicker(time.Second / apiRate)
	reqs := make(chan int, 8)
	go func() {
		defer tick.Stop()
		defer close(reqs)
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			select {
			case reqs <- i:
			default: // the workers are behind: the load is what lbd can take
			}
		}
	}()
	for range 4 {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := range reqs {
				var resp *http.Response
				var err error
				if i%2 == 0 {
					resp, err = client.Post("http://127.0.0.1:3636/api/v1/check", "application/toml", strings.NewReader(body))
				} else {
					resp, err = client.Get("http://127.0.0.1:3636/api/v1/status")
				}
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					l.done.Add(1)
				}
			}
		}()
	}
	return l
}

func (l *vrrpAPILoad) stop() {
	l.cancel()
	l.wg.Wait()
}

// vrrpCheckBody is a configuration of 5 virtual servers with 4 real
// servers and an HTTP check each.
func vrrpCheckBody() string {
	var sb strings.Builder
	sb.WriteString("[global]\ninterface = \"eth0\"\n\n")
	for i := range 5 {
		fmt.Fprintf(&sb, "[[virtual_server]]\nname = \"web%d\"\nvip = \"192.0.2.%d\"\nport = 80\n", i, i+1)
		fmt.Fprintf(&sb, "[virtual_server.health_check]\ntype = \"http\"\npath = \"/healthz\"\n")
		for j := range 4 {
			fmt.Fprintf(&sb, "[[virtual_server.real_server]]\nname = \"rs%d\"\naddress = \"10.1.%d.%d\"\n", j, i, j+1)
		}
		sb.WriteString("\n")
	}
	return sb.String()
}

// vrrpBearer adds the API token to every request.
type vrrpBearer struct {
	rt    http.RoundTripper
	token string
}

func (a vrrpBearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+a.token)
	return a.rt.RoundTrip(r)
}

// vrrpConsole returns a [console] table with a password hash (the console
// does not start without one) and one API token, and the token.
func vrrpConsole(b testing.TB) (table, token string) {
	secret := make([]byte, 16)
	rand.Read(secret)
	pw, err := bcrypt.GenerateFromPassword([]byte(hex.EncodeToString(secret)), bcrypt.MinCost)
	if err != nil {
		b.Fatal(err)
	}
	rand.Read(secret)
	token = "bench." + hex.EncodeToString(secret)
	sum := sha256.Sum256([]byte(token))
	return fmt.Sprintf("\n[console]\npassword_hash = %q\ntoken_hashes = [%q]\n", pw, hex.EncodeToString(sum[:])), token
}
