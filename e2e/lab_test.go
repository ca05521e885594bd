//go:build vm

package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"lbd/internal/netlab"
	"lbd/internal/vmtest"
)

// A lab is one director between a client and two real servers, all in
// namespaces of their own inside the VM:
//
//	DR:  client, director (two for failover), rs1, rs2 on one bridge
//	     (10.77.0.0/24); the real servers hold the VIP on lo and answer
//	     the client directly.
//	NAT: client and director on the front bridge (10.77.0.0/24); director
//	     (10.78.0.1) and the real servers on a back bridge (10.78.0.0/24),
//	     their default route through the director, which forwards.
//
// Each real server runs an HTTP server on every port in labPorts that
// answers "NAME REMOTEADDR", so a reply says who served it and whom it saw.
type lab struct {
	t         *testing.T
	mode      string // "dr" or "nat"
	client    *netlab.Host
	director  *netlab.NS
	dirMAC    net.HardwareAddr // the director's interface on the client's LAN
	directors []*netlab.Host   // DR labs: every director (the first is director)
	vip       netip.Addr
	rs        []*realServer
}

type realServer struct {
	name string
	ns   *netlab.NS
	addr netip.Addr       // where the director sends traffic
	mac  net.HardwareAddr // source MAC of frames it sends towards the client
	// script runs realserver.sh on it with its interface and state
	// directory (DR labs): append the command and the VIP.
	script []string

	mu      sync.Mutex
	servers map[int]*http.Server // by port; nil while stopped
}

// labPorts are the ports every real server serves HTTP on.
var labPorts = []int{80, 8080, 9090}

func newDRLab(t *testing.T) *lab {
	t.Helper()
	l := newDRLabN(t, 1)
	// The VRRP owner would add the VIP; here the lab does, since failover
	// is not what these tests are about.
	l.director.Exec("ip", "addr", "add", l.vip.String()+"/32", "dev", "eth0")
	return l
}

// newDRLabN builds a DR lab with n directors and leaves the VIP to them.
func newDRLabN(t *testing.T, n int) *lab {
	t.Helper()
	vmtest.Require(t)
	vmtest.Binary(t, "lbd") // before the lab: every lab test runs lbd
	lan := netlab.NewLAN(t, "dr", 3+n)
	l := &lab{t: t, mode: "dr", client: lan.Hosts[0], director: lan.Hosts[1].NS,
		dirMAC: lan.Hosts[1].MAC, directors: lan.Hosts[1 : 1+n], vip: lan.IPv4(100)}
	script := realServerScript(t)
	for i, h := range lan.Hosts[1+n:] {
		// A real server is prepared the way an operator prepares one, with
		// scripts/realserver.sh: the VIP on lo makes it accept packets for
		// the VIP, and the ARP settings keep it from answering ARP for it on
		// the LAN (else the client could reach it without the director).
		// --root keeps the script's state (the sysctls `down` restores) per
		// real server: every namespace in the VM shares one filesystem.
		root := t.TempDir()
		h.Exec(script, "--interface", h.Link, "--root", root, "up", l.vip.String())
		l.addRealServer(fmt.Sprintf("rs%d", i+1), h.NS, h.IPv4.Addr(), h.MAC)
		rs := l.rs[len(l.rs)-1]
		rs.script = []string{script, "--interface", h.Link, "--root", root}
	}
	return l
}

// realServerScript returns the path of scripts/realserver.sh as the VM sees
// it: testdata/realserver.sh is a link to it, and go-test-exec copies the
// package's testdata/ (links followed) into the VM. It runs under the VM's
// bash (scripts/vm/initramfs.sh).
func realServerScript(t testing.TB) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", "realserver.sh"))
	if err == nil {
		_, err = os.Stat(p)
	}
	if err != nil {
		t.Fatalf("realserver.sh for the lab's real servers: %v (e2e/testdata/realserver.sh links to scripts/realserver.sh)", err)
	}
	// bash's process substitution, <(...), needs /dev/fd, which udev or
	// systemd creates on a real system; the VM mounts a bare devtmpfs.
	if _, err := os.Lstat("/dev/fd"); errors.Is(err, fs.ErrNotExist) {
		if err := os.Symlink("/proc/self/fd", "/dev/fd"); err != nil && !errors.Is(err, fs.ErrExist) {
			t.Fatalf("realserver.sh needs /dev/fd: %v", err)
		}
	}
	return p
}

func newNATLab(t *testing.T) *lab {
	t.Helper()
	vmtest.Require(t)
	vmtest.Binary(t, "lbd")
	front := netlab.NewLAN(t, "nat", 2)
	l := &lab{t: t, mode: "nat", client: front.Hosts[0], director: front.Hosts[1].NS,
		dirMAC: front.Hosts[1].MAC, vip: front.IPv4(100)}
	l.director.Exec("ip", "addr", "add", l.vip.String()+"/32", "dev", "eth0")
	l.director.Exec("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")

	back := netlab.NewNS(t, "natback")
	back.Exec("ip", "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
	back.Exec("ip", "link", "set", "br0", "up")
	plug := func(ns *netlab.NS, port, link, addr string) {
		back.Exec("ip", "link", "add", port, "type", "veth", "peer", "name", link, "netns", ns.Name)
		back.Exec("ip", "link", "set", port, "master", "br0", "up")
		ns.Exec("ip", "link", "set", link, "up")
		ns.Exec("ip", "addr", "add", addr, "dev", link)
	}
	plug(l.director, "dir", "eth1", "10.78.0.1/24")
	for i := 0; i < 2; i++ {
		ns := netlab.NewNS(t, fmt.Sprintf("nat-rs%d", i+1))
		addr := netip.AddrFrom4([4]byte{10, 78, 0, byte(11 + i)})
		plug(ns, fmt.Sprintf("rs%d", i+1), "eth0", addr.String()+"/24")
		ns.Exec("ip", "route", "add", "default", "via", "10.78.0.1")
		// Seen from the client, every reply must come from the director.
		l.addRealServer(fmt.Sprintf("rs%d", i+1), ns, addr, nil)
	}
	return l
}

func (l *lab) addRealServer(name string, ns *netlab.NS, addr netip.Addr, mac net.HardwareAddr) {
	l.t.Helper()
	rs := &realServer{name: name, ns: ns, addr: addr, mac: mac, servers: map[int]*http.Server{}}
	for _, port := range labPorts {
		rs.start(l.t, port)
	}
	l.t.Cleanup(func() {
		for _, port := range labPorts {
			rs.stop(port)
		}
	})
	l.rs = append(l.rs, rs)
}

// start serves HTTP on port; the server answers "NAME REMOTEADDR".
func (rs *realServer) start(t testing.TB, port int) {
	t.Helper()
	ln, err := rs.ns.Listen("tcp4", fmt.Sprintf(":%d", port))
	if err != nil {
		t.Fatalf("%s: listen on :%d: %v", rs.name, port, err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s\n", rs.name, r.RemoteAddr)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go srv.Serve(ln)
	rs.mu.Lock()
	rs.servers[port] = srv
	rs.mu.Unlock()
}

// stop closes the server on port and its connections: the port refuses
// connections until start.
func (rs *realServer) stop(port int) {
	rs.mu.Lock()
	srv := rs.servers[port]
	rs.servers[port] = nil
	rs.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// reply is what one request through the VIP brought back.
type reply struct {
	server    string // the real server that answered
	seenFrom  string // the client address the real server saw
	localPort int    // the client's port, to match sniffed frames
}

// get makes one HTTP/1.0 request (a new connection) from the client to
// VIP:port.
func (l *lab) get(port int) (reply, error) {
	c, err := l.client.Dial("tcp4", netip.AddrPortFrom(l.vip, uint16(port)).String(), 5*time.Second)
	if err != nil {
		return reply{}, err
	}
	defer c.Close()
	r := reply{localPort: c.LocalAddr().(*net.TCPAddr).Port}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\nHost: lab\r\n\r\n"); err != nil {
		return r, err
	}
	body, err := readResponse(bufio.NewReader(c))
	if err != nil {
		return r, err
	}
	if _, err := fmt.Sscan(body, &r.server, &r.seenFrom); err != nil {
		return r, fmt.Errorf("unexpected body %q", body)
	}
	return r, nil
}

func readResponse(br *bufio.Reader) (string, error) {
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s: %s", resp.Status, b)
	}
	return string(b), nil
}

// mustGet makes n requests to VIP:port and returns the replies in order.
func (l *lab) mustGet(port, n int) []reply {
	l.t.Helper()
	var rs []reply
	for i := 0; i < n; i++ {
		r, err := l.get(port)
		if err != nil {
			l.t.Fatalf("request %d to %v:%d: %v", i+1, l.vip, port, err)
		}
		rs = append(rs, r)
	}
	return rs
}

// heldConn is a kept-alive HTTP connection through the VIP.
type heldConn struct {
	c      net.Conn
	br     *bufio.Reader
	server string
}

// hold opens a connection to VIP:port, makes one HTTP/1.1 request on it and
// keeps it open; the caller closes it.
func (l *lab) hold(port int) *heldConn {
	l.t.Helper()
	c, err := l.client.Dial("tcp4", netip.AddrPortFrom(l.vip, uint16(port)).String(), 5*time.Second)
	if err != nil {
		l.t.Fatal(err)
	}
	h := &heldConn{c: c, br: bufio.NewReader(c)}
	l.t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: lab\r\n\r\n"); err != nil {
		l.t.Fatal(err)
	}
	body, err := readResponse(h.br)
	if err != nil {
		l.t.Fatal(err)
	}
	h.server = strings.Fields(body)[0]
	c.SetDeadline(time.Time{})
	return h
}

// serverNamed returns the lab's real server called name.
func (l *lab) serverNamed(name string) *realServer {
	for _, rs := range l.rs {
		if rs.name == name {
			return rs
		}
	}
	l.t.Fatalf("no real server %q", name)
	return nil
}

// sniffer records, on the client's interface, the source MAC and IP of
// every TCP segment coming from a server port, keyed by client port. It
// sees frames before the client's TCP stack does.
type sniffer struct {
	f    *os.File
	port uint16
	done chan struct{}

	mu     sync.Mutex
	frames map[int][]frame
}

type frame struct {
	srcMAC string
	srcIP  netip.Addr
}

func (l *lab) sniff(port int) *sniffer {
	l.t.Helper()
	s := &sniffer{port: uint16(port), done: make(chan struct{}), frames: map[int][]frame{}}
	err := l.client.Do(func() error {
		ifi, err := net.InterfaceByName(l.client.Link)
		if err != nil {
			return err
		}
		proto := int(htons(unix.ETH_P_IP))
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return fmt.Errorf("bind packet socket: %w", err)
		}
		s.f = os.NewFile(uintptr(fd), "packet") // non-blocking: Close ends a pending Read
		return nil
	})
	if err != nil {
		l.t.Fatalf("sniffer in %s: %v", l.client.Name, err)
	}
	go s.loop()
	l.t.Cleanup(func() { s.f.Close(); <-s.done })
	return s
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (s *sniffer) loop() {
	defer close(s.done)
	buf := make([]byte, 65536)
	for {
		n, err := s.f.Read(buf)
		if err != nil {
			return
		}
		s.record(buf[:n])
	}
}

// record parses Ethernet/IPv4/TCP just far enough for the ports.
func (s *sniffer) record(b []byte) {
	if len(b) < 14+20 || b[12] != 0x08 || b[13] != 0x00 {
		return
	}
	ip := b[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[9] != unix.IPPROTO_TCP || len(ip) < ihl+4 {
		return
	}
	tcp := ip[ihl:]
	sport := uint16(tcp[0])<<8 | uint16(tcp[1])
	dport := int(tcp[2])<<8 | int(tcp[3])
	if sport != s.port {
		return
	}
	f := frame{srcMAC: net.HardwareAddr(b[6:12]).String(), srcIP: netip.AddrFrom4([4]byte(ip[12:16]))}
	s.mu.Lock()
	s.frames[dport] = append(s.frames[dport], f)
	s.mu.Unlock()
}

// framesTo returns the frames sent to the client's port so far, waiting a
// little for the reader to catch up with at least want of them.
func (s *sniffer) framesTo(clientPort, want int) []frame {
	deadline := time.Now().Add(2 * time.Second)
	for {
		s.mu.Lock()
		fs := append([]frame(nil), s.frames[clientPort]...)
		s.mu.Unlock()
		if len(fs) >= want || time.Now().After(deadline) {
			return fs
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// daemon is an lbd process running in the lab's director namespace.
type daemon struct {
	*vmtest.Proc
	config string
}

// startLBD writes config to a file and runs `lbd -config FILE` in the
// director namespace.
func (l *lab) startLBD(config string) *daemon {
	l.t.Helper()
	return l.startLBDIn(l.director, config)
}

// startLBDIn runs lbd in the namespace ns.
func (l *lab) startLBDIn(ns *netlab.NS, config string) *daemon {
	l.t.Helper()
	bin := vmtest.Binary(l.t, "lbd")
	path := filepath.Join(l.t.TempDir(), "lbd.toml")
	d := &daemon{config: path}
	d.write(l.t, config)
	d.Proc = vmtest.Start(l.t, "lbd in "+ns.Name, ns.Cmd(bin, "-config", path))
	return d
}

// write replaces the config file atomically, as an editor or config
// management would.
func (d *daemon) write(t *testing.T, config string) {
	t.Helper()
	tmp := d.config + ".tmp"
	if err := os.WriteFile(tmp, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, d.config); err != nil {
		t.Fatal(err)
	}
}

// waitRules waits until the director's IPVS table is exactly want (see
// vmtest.Table.Rules) and returns the table.
func (l *lab) waitRules(d *daemon, want string, timeout time.Duration) vmtest.Table {
	l.t.Helper()
	return l.waitRulesIn(l.director, d, want, timeout)
}

// waitRulesIn is waitRules for the director in namespace ns.
func (l *lab) waitRulesIn(ns *netlab.NS, d *daemon, want string, timeout time.Duration) vmtest.Table {
	l.t.Helper()
	c := vmtest.IPVS(l.t, ns)
	var tab vmtest.Table
	vmtest.Eventually(l.t, timeout, 100*time.Millisecond, "IPVS table", func() (bool, string) {
		if d != nil && d.Exited() {
			l.t.Fatalf("%s exited:\n%s", d.Name, strings.Join(d.Lines(), "\n"))
		}
		var err error
		tab, err = vmtest.ReadTable(c)
		if err != nil {
			return false, err.Error()
		}
		got := tab.Rules()
		return got == want, fmt.Sprintf("have\n%swant\n%s", got, want)
	})
	return tab
}

// loader sends requests to VIP:port one after the other in the background
// until stopped (at most max), counting failures.
type loader struct {
	stopc chan struct{}
	done  chan struct{}

	mu       sync.Mutex
	ok, fail int
	lastErr  error
}

func (l *lab) load(port, max int) *loader {
	ld := &loader{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(ld.done)
		for i := 0; i < max; i++ {
			select {
			case <-ld.stopc:
				return
			default:
			}
			_, err := l.get(port)
			ld.mu.Lock()
			if err != nil {
				ld.fail++
				ld.lastErr = err
			} else {
				ld.ok++
			}
			ld.mu.Unlock()
		}
	}()
	l.t.Cleanup(func() { ld.stop() })
	return ld
}

// stop ends the loader and returns its counts.
func (ld *loader) stop() (ok, fail int, lastErr error) {
	select {
	case <-ld.stopc:
	default:
		close(ld.stopc)
	}
	<-ld.done
	ld.mu.Lock()
	defer ld.mu.Unlock()
	return ld.ok, ld.fail, ld.lastErr
}
