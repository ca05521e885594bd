package healthcheck

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// check builds a checker for spec and runs it once with spec's timeout,
// the way the eachPath subtest it runs under says (see testPath).
func check(t *testing.T, spec Spec, roots *x509.CertPool) Result {
	t.Helper()
	if spec.Timeout == 0 {
		// Generous where the test is not about timeouts: the machine
		// may be loaded (and -race makes TLS slow).
		spec.Timeout, spec.Interval = 5*time.Second, 10*time.Second
	}
	tp := pathOf(t)
	c, err := tp.layers.NewChecker(spec, roots)
	if err != nil {
		t.Fatalf("NewChecker(%+v): %v", spec, err)
	}
	timeout := spec.Timeout
	parent := context.Background()
	if tp.probes != nil {
		parent = withProbes(parent, tp.probes)
	}
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	start := time.Now()
	res := c.Check(ctx)
	// A checker that overstays its deadline stalls a worker; allow
	// scheduling slack on a loaded machine, not a second timeout.
	if el := time.Since(start); el > timeout+2*time.Second {
		t.Errorf("check took %v with timeout %v", el, timeout)
	}
	return res
}

// testPath is how the checks of one eachPath subtest reach the network:
// which layers are the standard library's, and the worker sockets reused
// by every check of the subtest (nil: a new socket per check, as for a
// checker used on its own).
type testPath struct {
	layers Layers
	probes *probes
}

var testPathsMu sync.Mutex
var testPaths = map[*testing.T]testPath{}

func pathOf(t *testing.T) testPath {
	testPathsMu.Lock()
	defer testPathsMu.Unlock()
	return testPaths[t]
}

// runPath runs body as subtest name with tp.
func runPath(t *testing.T, name string, tp func(t *testing.T) testPath, body func(t *testing.T)) {
	t.Run(name, func(t *testing.T) {
		testPathsMu.Lock()
		testPaths[t] = tp(t)
		testPathsMu.Unlock()
		t.Cleanup(func() {
			testPathsMu.Lock()
			delete(testPaths, t)
			testPathsMu.Unlock()
		})
		body(t)
	})
}

// eachPath runs a checker test over every network path: the standard
// library's ("std"), and where this system has them the package's own
// layers (paths_linux_test.go).
func eachPath(t *testing.T, body func(t *testing.T)) {
	eachOwnPath(t, body)
	runPath(t, "std", func(*testing.T) testPath {
		return testPath{layers: Layers{StdConnect: true, StdHTTP: true}}
	}, body)
}

func wantResult(t *testing.T, got Result, up bool, reasonPrefix string) {
	t.Helper()
	if got.Up != up || !strings.HasPrefix(got.Reason, reasonPrefix) {
		t.Errorf("got %+v, want up=%v reason starting %q", got, up, reasonPrefix)
	}
}

// addrOf splits a listener address into a Spec's address and port.
func addrOf(t *testing.T, a string) (string, int) {
	t.Helper()
	ap, err := netip.ParseAddrPort(a)
	if err != nil {
		t.Fatal(err)
	}
	return ap.Addr().String(), int(ap.Port())
}

// closedPort returns a loopback port nobody listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port := addrOf(t, l.Addr().String())
	l.Close()
	return port
}

// rawListener serves each accepted connection with fn in its own
// goroutine; everything is closed at the end of the test.
func rawListener(t *testing.T, fn func(net.Conn)) (string, int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { fn(c) })
		}
	})
	t.Cleanup(func() {
		close(done)
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	_ = done
	return addrOf(t, l.Addr().String())
}

// stuckListener listens with a backlog of 0 and never accepts; once its
// queue holds one connection the kernel drops further SYNs, so connects
// hang: a server too busy to accept.
func stuckListener(t *testing.T) (string, int) {
	t.Helper()
	host, port, _ := stuckListenerFD(t)
	return host, port
}

func stuckListenerFD(t *testing.T) (string, int, int) {
	t.Helper()
	// Close-on-exec under ForkLock, as package syscall does where
	// SOCK_CLOEXEC is missing: the exec tests' programs must not inherit it.
	syscall.ForkLock.RLock()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	port := sa.(*syscall.SockaddrInet4).Port
	// Fill the queue.
	c, err := net.DialTimeout("tcp", hostPort("127.0.0.1", port), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return "127.0.0.1", port, fd
}

func TestTCP(t *testing.T) { eachPath(t, testTCP) }

func testTCP(t *testing.T) {
	host, port := rawListener(t, func(c net.Conn) { c.Close() })
	wantResult(t, check(t, Spec{Type: TCP, Address: host, Port: port}, nil), true, "connected")

	wantResult(t, check(t, Spec{Type: TCP, Address: "127.0.0.1", Port: closedPort(t)}, nil),
		false, "connect: connection refused")

	host, port = stuckListener(t)
	wantResult(t, check(t, Spec{Type: TCP, Address: host, Port: port, Timeout: 300 * time.Millisecond, Interval: time.Second}, nil),
		false, "connect: timeout")
}

// TestTCPSlowHandshake covers connects that do not finish inside the
// connect() call and must wait: the listener's queue is full
// so the SYN is dropped, then room is made (or the listener closes) and
// the kernel's SYN retransmission (1s) completes (or is refused).
func TestTCPSlowHandshake(t *testing.T) { eachPath(t, testTCPSlowHandshake) }

func testTCPSlowHandshake(t *testing.T) {
	host, port, fd := stuckListenerFD(t)
	go func() {
		time.Sleep(200 * time.Millisecond)
		if nfd, _, err := syscall.Accept(fd); err == nil {
			syscall.Close(nfd)
		}
	}()
	spec := Spec{Type: TCP, Address: host, Port: port, Timeout: 4 * time.Second, Interval: 5 * time.Second}
	wantResult(t, check(t, spec, nil), true, "connected")

	host2, port2, fd2 := stuckListenerFD(t)
	go func() {
		time.Sleep(200 * time.Millisecond)
		syscall.Shutdown(fd2, syscall.SHUT_RDWR) // stops listening
	}()
	spec = Spec{Type: TCP, Address: host2, Port: port2, Timeout: 4 * time.Second, Interval: 5 * time.Second}
	wantResult(t, check(t, spec, nil), false, "connect: connection refused")
}

func TestTCPCheckAddressOverride(t *testing.T) { eachPath(t, testTCPCheckAddressOverride) }

func testTCPCheckAddressOverride(t *testing.T) {
	host, port := rawListener(t, func(c net.Conn) { c.Close() })
	// The real server's own port is closed; the health endpoint is elsewhere.
	spec := Spec{Type: TCP, Address: "127.0.0.1", Port: closedPort(t), CheckAddress: host, CheckPort: port}
	wantResult(t, check(t, spec, nil), true, "connected")
}

func TestTCPHostName(t *testing.T) { eachPath(t, testTCPHostName) }

func testTCPHostName(t *testing.T) {
	_, port := rawListener(t, func(c net.Conn) { c.Close() })
	wantResult(t, check(t, Spec{Type: TCP, Address: "localhost", Port: port}, nil), true, "connected")
}

// httpServer starts a real HTTP server on loopback and returns its address.
func httpServer(t *testing.T, h http.HandlerFunc) (string, int) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	return addrOf(t, srv.Listener.Addr().String())
}

func TestHTTP(t *testing.T) { eachPath(t, testHTTP) }

func testHTTP(t *testing.T) {
	var mu sync.Mutex
	var seenHost, seenUA, seenMethod string
	host, port := httpServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seenHost, seenUA, seenMethod = r.Host, r.UserAgent(), r.Method
		mu.Unlock()
		switch r.URL.Path {
		case "/ok":
			io.WriteString(w, "all good: version 42\n")
		case "/fail":
			w.WriteHeader(http.StatusInternalServerError)
		case "/maint":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/redirect":
			w.Header().Set("Location", "/ok")
			w.WriteHeader(http.StatusFound)
		case "/big":
			w.Write([]byte(strings.Repeat("x", 3*MaxBody)))
			io.WriteString(w, "MARKER")
		default:
			http.NotFound(w, r)
		}
	})
	base := Spec{Type: HTTP, Address: host, Port: port}
	with := func(f func(*Spec)) Spec { s := base; f(&s); return s }

	wantResult(t, check(t, with(func(s *Spec) { s.Path = "/ok" }), nil), true, "status 200")
	mu.Lock()
	if want := hostPort(host, port); seenHost != want || seenUA != "lbd-healthcheck" || seenMethod != "GET" {
		t.Errorf("server saw Host %q UA %q method %q, want Host %q", seenHost, seenUA, seenMethod, want)
	}
	mu.Unlock()

	wantResult(t, check(t, with(func(s *Spec) { s.Path = "/fail" }), nil), false, "status 500")
	wantResult(t, check(t, with(func(s *Spec) { s.Path = "/maint" }), nil), false, "status 503")
	wantResult(t, check(t, with(func(s *Spec) { s.Path = "/maint"; s.ExpectStatus = []string{"200", "503"} }), nil), true, "status 503")
	wantResult(t, check(t, with(func(s *Spec) { s.Path = "/redirect" }), nil), true, "status 302")
	wantResult(t, check(t, with(func(s *Spec) { s.Path = "/redirect"; s.ExpectStatus = []string{"200-299"} }), nil), false, "status 302")
	wantResult(t, check(t, with(func(s *Spec) { s.Path = "/nope" }), nil), false, "status 404")

	// Body regexp.
	wantResult(t, check(t, with(func(s *Spec) { s.Path = "/ok"; s.ExpectBody = `version \d+` }), nil), true, "status 200, body matched")
	wantResult(t, check(t, with(func(s *Spec) { s.Path = "/ok"; s.ExpectBody = `version 43` }), nil), false, "body mismatch")
	// Only MaxBody bytes are read: a marker beyond them is not seen.
	wantResult(t, check(t, with(func(s *Spec) { s.Path = "/big"; s.ExpectBody = `MARKER` }), nil), false, "body mismatch")
	wantResult(t, check(t, with(func(s *Spec) { s.Path = "/big"; s.ExpectBody = `^x+$` }), nil), true, "status 200")

	// Host header and method.
	wantResult(t, check(t, with(func(s *Spec) { s.Path = "/ok"; s.Host = "www.example.test"; s.Method = "HEAD" }), nil), true, "status 200")
	mu.Lock()
	if seenHost != "www.example.test" || seenMethod != "HEAD" {
		t.Errorf("server saw Host %q method %q", seenHost, seenMethod)
	}
	mu.Unlock()

	wantResult(t, check(t, Spec{Type: HTTP, Address: "127.0.0.1", Port: closedPort(t)}, nil), false, "connect: connection refused")

	// Interim responses come before the real one.
	host, port = rawListener(t, func(c net.Conn) {
		defer c.Close()
		c.Read(make([]byte, 1024))
		io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n")
		time.Sleep(10 * time.Millisecond)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nhealthy")
	})
	wantResult(t, check(t, Spec{Type: HTTP, Address: host, Port: port, ExpectBody: "^healthy$"}, nil), true, "status 200, body matched")
}

func TestHTTPHangingAndClosing(t *testing.T) { eachPath(t, testHTTPHangingAndClosing) }

func testHTTPHangingAndClosing(t *testing.T) {
	release := make(chan struct{})
	host, port := httpServer(t, func(w http.ResponseWriter, r *http.Request) { <-release })
	// Registered after the server's own cleanup so it runs first: Close
	// waits for handlers.
	t.Cleanup(func() { close(release) })
	spec := Spec{Type: HTTP, Address: host, Port: port, Timeout: 300 * time.Millisecond, Interval: time.Second}
	wantResult(t, check(t, spec, nil), false, "read response: timeout")

	// Accept and close at once without reading.
	host, port = rawListener(t, func(c net.Conn) { c.Close() })
	res := check(t, Spec{Type: HTTP, Address: host, Port: port}, nil)
	if res.Up || (res.Reason != "read response: connection closed" && res.Reason != "read response: connection reset" &&
		res.Reason != "send request: connection reset" && res.Reason != "send request: connection closed") {
		t.Errorf("closing server: got %+v", res)
	}

	// Reads the request, then closes without a reply.
	host, port = rawListener(t, func(c net.Conn) {
		buf := make([]byte, 1024)
		c.Read(buf)
		c.Close()
	})
	wantResult(t, check(t, Spec{Type: HTTP, Address: host, Port: port}, nil), false, "read response: connection closed")

	// Not HTTP at all.
	host, port = rawListener(t, func(c net.Conn) {
		io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n")
		time.Sleep(50 * time.Millisecond)
		c.Close()
	})
	wantResult(t, check(t, Spec{Type: HTTP, Address: host, Port: port}, nil), false, "read response: malformed HTTP")
}

// tlsServer starts an HTTPS server that records the SNI it was asked for.
func tlsServer(t *testing.T, handshakeDelay time.Duration) (host string, port int, roots *x509.CertPool, sni func() string) {
	t.Helper()
	var mu sync.Mutex
	var seen string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "tls ok")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		mu.Lock()
		seen = hello.ServerName
		mu.Unlock()
		time.Sleep(handshakeDelay)
		return nil, nil
	}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots = x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	host, port = addrOf(t, srv.Listener.Addr().String())
	return host, port, roots, func() string { mu.Lock(); defer mu.Unlock(); return seen }
}

func TestHTTPS(t *testing.T) { eachPath(t, testHTTPS) }

func testHTTPS(t *testing.T) {
	host, port, roots, sni := tlsServer(t, 0)
	base := Spec{Type: HTTPS, Address: host, Port: port, ExpectBody: "tls ok"}
	with := func(f func(*Spec)) Spec { s := base; f(&s); return s }

	// Verification off: the self-signed certificate is fine.
	wantResult(t, check(t, base, nil), true, "status 200, body matched")
	if got := sni(); got != "" {
		t.Errorf("server saw SNI %q for an IP target, want none", got)
	}
	// Verification on, unknown CA.
	wantResult(t, check(t, with(func(s *Spec) { s.TLSVerify = true }), nil), false, "tls handshake: certificate: signed by unknown authority")
	// Verification on, trusted CA, IP SAN 127.0.0.1.
	wantResult(t, check(t, with(func(s *Spec) { s.TLSVerify = true }), roots), true, "status 200")
	// SNI is sent and verified (httptest's certificate is for example.com).
	wantResult(t, check(t, with(func(s *Spec) { s.TLSVerify = true; s.SNI = "example.com" }), roots), true, "status 200")
	if got := sni(); got != "example.com" {
		t.Errorf("server saw SNI %q, want example.com", got)
	}
	wantResult(t, check(t, with(func(s *Spec) { s.TLSVerify = true; s.SNI = "wrong.test" }), roots), false, "tls handshake: certificate: not valid for wrong.test")
	if got := sni(); got != "wrong.test" {
		t.Errorf("server saw SNI %q, want wrong.test", got)
	}
	// The Host header's name is the SNI by default.
	wantResult(t, check(t, with(func(s *Spec) { s.Host = "example.com" }), nil), true, "status 200")
	if got := sni(); got != "example.com" {
		t.Errorf("server saw SNI %q from Host, want example.com", got)
	}
	// Plain HTTP to a TLS port.
	wantResult(t, check(t, Spec{Type: HTTP, Address: host, Port: port}, nil), false, "status 400")
}

func TestHTTPSSlowHandshake(t *testing.T) { eachPath(t, testHTTPSSlowHandshake) }

func testHTTPSSlowHandshake(t *testing.T) {
	host, port, roots, _ := tlsServer(t, 400*time.Millisecond)
	slow := Spec{Type: HTTPS, Address: host, Port: port, Timeout: 3 * time.Second, Interval: 4 * time.Second}
	wantResult(t, check(t, slow, nil), true, "status 200")
	slow.TLSVerify = true
	wantResult(t, check(t, slow, roots), true, "status 200")
	slow.Timeout = 150 * time.Millisecond
	wantResult(t, check(t, slow, roots), false, "tls handshake: timeout")
	slow.TLSVerify = false
	wantResult(t, check(t, slow, nil), false, "tls handshake: timeout")
	// crypto/tls closes the connection from a goroutine of its own when
	// the handshake's context ends, possibly after the check returned: on
	// a reused socket, the next check must not feel it.
	fh, fp := httpServer(t, func(w http.ResponseWriter, r *http.Request) {})
	wantResult(t, check(t, Spec{Type: HTTP, Address: fh, Port: fp}, nil), true, "status 200")

	// A server that accepts and never speaks TLS.
	host, port = rawListener(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	wantResult(t, check(t, Spec{Type: HTTPS, Address: host, Port: port, Timeout: 200 * time.Millisecond, Interval: time.Second}, nil),
		false, "tls handshake: timeout")
}

func TestSpecValidation(t *testing.T) {
	bad := []struct {
		spec Spec
		want string
	}{
		{Spec{Address: "10.0.0.1", Port: 80}, "type is empty"},
		{Spec{Type: "ping", Address: "10.0.0.1", Port: 80}, `unknown type "ping"`},
		{Spec{Type: TCP, Port: 80}, "no address"},
		{Spec{Type: TCP, Address: "10.0.0.1"}, "port 0 out of range"},
		{Spec{Type: TCP, Address: "10.0.0.1", Port: 80, Timeout: 2 * time.Second}, "timeout 2s must be shorter than interval 2s"},
		{Spec{Type: TCP, Address: "10.0.0.1", Port: 80, Rise: -1}, "rise -1"},
		{Spec{Type: TCP, Address: "10.0.0.1", Port: 80, Fall: -2}, "fall -2"},
		{Spec{Type: HTTP, Address: "10.0.0.1", Port: 80, ExpectBody: "("}, "expect_body: error parsing regexp"},
		{Spec{Type: HTTP, Address: "10.0.0.1", Port: 80, ExpectStatus: []string{"600"}}, `expect_status "600"`},
		{Spec{Type: HTTP, Address: "10.0.0.1", Port: 80, ExpectStatus: []string{"399-200"}}, `expect_status "399-200"`},
		{Spec{Type: HTTP, Address: "10.0.0.1", Port: 80, Path: "health"}, "bad HTTP path"},
		{Spec{Type: HTTP, Address: "10.0.0.1", Port: 80, Method: "GET /x"}, "bad HTTP method"},
		{Spec{Type: HTTP, Address: "10.0.0.1", Port: 80, Host: "a\r\nX-Evil: 1"}, "bad Host header"},
		{Spec{Type: SendExpect, Address: "10.0.0.1", Port: 25, Expect: "[a-"}, "expect: error parsing regexp"},
		{Spec{Type: Exec, Address: "10.0.0.1"}, "exec needs a command"},
		{Spec{Type: Exec, Address: "10.0.0.1", Command: []string{"/nonexistent/lbd-check"}}, `command "/nonexistent/lbd-check": no such file`},
	}
	for _, b := range bad {
		_, err := b.spec.Normalize()
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("Normalize(%+v) = %v, want error containing %q", b.spec, err, b.want)
		}
	}
	s, err := Spec{Type: HTTP, Address: "10.0.0.1", Port: 80}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	if s.Interval != 2*time.Second || s.Timeout != time.Second || s.Rise != 2 || s.Fall != 3 ||
		s.Method != "GET" || s.Path != "/" || len(s.ExpectStatus) != 1 || s.ExpectStatus[0] != "200-399" {
		t.Errorf("defaults: %+v", s)
	}
	// Exec without a port is fine (fwmark services).
	if _, err := (Spec{Type: Exec, Address: "10.0.0.1", Command: []string{"true"}}).Normalize(); err != nil {
		t.Errorf("exec without port: %v", err)
	}
}

func TestIPv6(t *testing.T) { eachPath(t, testIPv6) }

func testIPv6(t *testing.T) {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("IPv6 loopback unavailable in CI: %v", err)
		}
		t.Skipf("IPv6 loopback unavailable (CI unset): %v", err)
	}
	var mu sync.Mutex
	var seenHost string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seenHost = r.Host
		mu.Unlock()
	}))
	srv.Listener = l
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	host, port := addrOf(t, l.Addr().String())

	wantResult(t, check(t, Spec{Type: TCP, Address: host, Port: port}, nil), true, "connected")
	wantResult(t, check(t, Spec{Type: HTTP, Address: host, Port: port}, nil), true, "status 200")
	mu.Lock()
	if want := "[::1]:" + strconv.Itoa(port); seenHost != want {
		t.Errorf("Host %q, want %q", seenHost, want)
	}
	mu.Unlock()

	l2, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	_, closed := addrOf(t, l2.Addr().String())
	l2.Close()
	wantResult(t, check(t, Spec{Type: TCP, Address: "::1", Port: closed}, nil), false, "connect: connection refused")
}

// TestCheckCanceled: a check waiting on a hung server ends as soon as its
// context is canceled (the Scheduler stopping), not at its deadline.
func TestCheckCanceled(t *testing.T) { eachPath(t, testCheckCanceled) }

func testCheckCanceled(t *testing.T) {
	sh, sp := stuckListener(t)
	release := make(chan struct{})
	hh, hp := httpServer(t, func(w http.ResponseWriter, r *http.Request) { <-release })
	t.Cleanup(func() { close(release) })
	uh, uport := udpServer(t, func([]byte) [][]byte { return nil })
	mh, mp := rawListener(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	for _, spec := range []Spec{
		{Type: TCP, Address: sh, Port: sp},
		{Type: HTTP, Address: hh, Port: hp},
		{Type: UDP, Address: uh, Port: uport, Send: "PING"},
		{Type: DNS, Address: uh, Port: uport},
		{Type: DNS, Address: mh, Port: mp, DNSTransport: "tcp"},
		{Type: SMTP, Address: mh, Port: mp},
	} {
		spec.Timeout, spec.Interval = 10*time.Second, 20*time.Second
		tp := pathOf(t)
		c, err := tp.layers.NewChecker(spec, nil)
		if err != nil {
			t.Fatal(err)
		}
		parent := context.Background()
		if tp.probes != nil {
			parent = withProbes(parent, tp.probes)
		}
		ctx, cancel := context.WithTimeout(parent, spec.Timeout)
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		res := c.Check(ctx)
		cancel()
		// (Canceled I/O on a net.Dialer connection reads as a timeout;
		// the Scheduler ignores the results of canceled checks.)
		if el := time.Since(start); res.Up || el > 2*time.Second {
			t.Errorf("%s: %+v after %v, want canceled at once", spec.Type, res, el)
		}
	}
}
