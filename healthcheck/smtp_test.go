package healthcheck

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCert is httptest's certificate (example.com, 127.0.0.1) and a pool
// that trusts it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.StartTLS()
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	return srv.TLS.Certificates[0], roots
}

// fakeMTA is a scripted SMTP server. Replies are written as given
// (CRLFs included); empty fields take a well-behaved default.
type fakeMTA struct {
	banner   string
	ehlo     string
	quit     string
	starttls *tls.Config // nil: STARTTLS not offered

	mu    sync.Mutex
	helos []string // EHLO arguments seen, in order
	sni   string
}

func (m *fakeMTA) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	or := func(s, def string) string {
		if s == "" {
			return def
		}
		return s
	}
	io.WriteString(c, or(m.banner, "220 mx.test ESMTP ready\r\n"))
	ehlo := "250-mx.test hello\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
	if m.starttls != nil {
		ehlo = "250-mx.test hello\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
	}
	ehlo = or(m.ehlo, ehlo)
	var rw io.ReadWriter = c
	br := bufio.NewReader(rw)
	tlsOn := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(cmd, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			m.mu.Lock()
			m.helos = append(m.helos, arg)
			m.mu.Unlock()
			if tlsOn {
				io.WriteString(rw, "250-mx.test hello again\r\n250 8BITMIME\r\n")
			} else {
				io.WriteString(rw, ehlo)
			}
		case "STARTTLS":
			io.WriteString(rw, "220 go ahead\r\n")
			tc := tls.Server(c, m.starttls)
			if tc.Handshake() != nil {
				return
			}
			m.mu.Lock()
			m.sni = tc.ConnectionState().ServerName
			m.mu.Unlock()
			rw, br, tlsOn = tc, bufio.NewReader(tc), true
		case "QUIT":
			io.WriteString(rw, or(m.quit, "221 bye\r\n"))
			return
		default:
			io.WriteString(rw, "502 no\r\n")
		}
	}
}

func (m *fakeMTA) seen() ([]string, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.helos...), m.sni
}

func TestSMTP(t *testing.T) { eachPath(t, testSMTP) }

func testSMTP(t *testing.T) {
	cert, roots := testCert(t)
	mta := func(m *fakeMTA) (string, int) { return rawListener(t, m.serve) }
	short := func(s Spec) Spec {
		s.Timeout, s.Interval = 300*time.Millisecond, time.Second
		return s
	}

	good := &fakeMTA{}
	host, port := mta(good)
	wantResult(t, check(t, Spec{Type: SMTP, Address: host, Port: port, HeloName: "lb1.example.net"}, nil), true, "EHLO 250")
	if helos, _ := good.seen(); len(helos) != 1 || helos[0] != "lb1.example.net" {
		t.Errorf("EHLO arguments %q, want [lb1.example.net]", helos)
	}
	wantResult(t, check(t, Spec{Type: SMTP, Address: host, Port: port}, nil), true, "EHLO 250")
	if helos, _ := good.seen(); len(helos) != 2 || helos[1] != "localhost" {
		t.Errorf("EHLO arguments %q, want localhost by default", helos)
	}
	// STARTTLS asked of a server that does not offer it.
	wantResult(t, check(t, Spec{Type: SMTP, Address: host, Port: port, StartTLS: true}, nil), false, "EHLO: no STARTTLS offered")

	tlsMTA := &fakeMTA{starttls: &tls.Config{Certificates: []tls.Certificate{cert}}}
	host, port = mta(tlsMTA)
	base := Spec{Type: SMTP, Address: host, Port: port, StartTLS: true, HeloName: "lb1"}
	wantResult(t, check(t, base, nil), true, "EHLO 250 over TLS")
	if helos, sni := tlsMTA.seen(); len(helos) != 2 || sni != "" {
		t.Errorf("EHLO arguments %q and SNI %q, want EHLO twice (before and after STARTTLS) and no SNI for an address", helos, sni)
	}
	verify := base
	verify.TLSVerify = true
	wantResult(t, check(t, verify, nil), false, "tls handshake: certificate: signed by unknown authority")
	wantResult(t, check(t, verify, roots), true, "EHLO 250 over TLS")
	verify.SNI = "example.com"
	wantResult(t, check(t, verify, roots), true, "EHLO 250 over TLS")
	if _, sni := tlsMTA.seen(); sni != "example.com" {
		t.Errorf("SNI %q, want example.com", sni)
	}
	verify.SNI = "mx.wrong.test"
	wantResult(t, check(t, verify, roots), false, "tls handshake: certificate: not valid for mx.wrong.test")
	// Without starttls the TLS settings do nothing.
	verify.StartTLS = false
	wantResult(t, check(t, verify, roots), true, "EHLO 250")

	// Refusals carry the server's line.
	host, port = mta(&fakeMTA{banner: "421 mx.test busy, try later\r\n"})
	wantResult(t, check(t, Spec{Type: SMTP, Address: host, Port: port}, nil), false, "banner: 421 mx.test busy, try later")
	host, port = mta(&fakeMTA{ehlo: "550-go away\r\n550 really\r\n"})
	wantResult(t, check(t, Spec{Type: SMTP, Address: host, Port: port}, nil), false, "EHLO: 550 go away")
	host, port = mta(&fakeMTA{quit: "500 what\r\n"})
	wantResult(t, check(t, Spec{Type: SMTP, Address: host, Port: port}, nil), false, "QUIT: 500 what")
	// A control character in a reply does not reach the reason.
	host, port = mta(&fakeMTA{banner: "554 no\x1b[2J service\r\n"})
	wantResult(t, check(t, Spec{Type: SMTP, Address: host, Port: port}, nil), false, "banner: 554 no[2J service")

	// Hostile and broken servers.
	host, port = mta(&fakeMTA{banner: "220-mx.test\r\n220-still here\r\n"}) // never ends
	wantResult(t, check(t, short(Spec{Type: SMTP, Address: host, Port: port}), nil), false, "banner: timeout")
	host, port = rawListener(t, func(c net.Conn) {
		defer c.Close()
		// A banner that never ends, as fast as it can.
		line := []byte("220-" + strings.Repeat("x", 60) + "\r\n")
		for {
			if _, err := c.Write(line); err != nil {
				return
			}
		}
	})
	wantResult(t, check(t, short(Spec{Type: SMTP, Address: host, Port: port}), nil), false, "banner: reply too long")
	host, port = rawListener(t, func(c net.Conn) {
		defer c.Close()
		io.WriteString(c, "220 "+strings.Repeat("x", 5000)) // one endless line
		io.Copy(io.Discard, c)
	})
	wantResult(t, check(t, short(Spec{Type: SMTP, Address: host, Port: port}), nil), false, "banner: reply too long")
	host, port = rawListener(t, func(c net.Conn) { io.Copy(io.Discard, c) }) // silent
	wantResult(t, check(t, short(Spec{Type: SMTP, Address: host, Port: port}), nil), false, "banner: timeout")
	host, port = rawListener(t, func(c net.Conn) { io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n"); c.Close() })
	wantResult(t, check(t, Spec{Type: SMTP, Address: host, Port: port}, nil), false, `banner: bad reply "SSH-2.0-OpenSSH_9.6"`)
	host, port = rawListener(t, func(c net.Conn) { io.WriteString(c, "220-mx\r\n"); c.Close() })
	wantResult(t, check(t, Spec{Type: SMTP, Address: host, Port: port}, nil), false, "banner: connection closed in a multi-line reply")
	host, port = rawListener(t, func(c net.Conn) { io.WriteString(c, "220-mx\r\n250 mixed\r\n"); io.Copy(io.Discard, c) })
	wantResult(t, check(t, Spec{Type: SMTP, Address: host, Port: port}, nil), false, `banner: bad reply "250 mixed"`)
	wantResult(t, check(t, Spec{Type: SMTP, Address: "127.0.0.1", Port: closedPort(t)}, nil), false, "connect: connection refused")
}

func TestSMTPSpecValidation(t *testing.T) {
	for _, b := range []struct {
		spec Spec
		want string
	}{
		{Spec{Type: SMTP, Address: "10.0.0.1", Port: 25, HeloName: "lb1\r\nRCPT TO:<x>"}, "bad helo name"},
		{Spec{Type: SMTP, Address: "10.0.0.1", Port: 25, SNI: "a b"}, "bad SNI"},
	} {
		if _, err := b.spec.Normalize(); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("Normalize(%+v) = %v, want error containing %q", b.spec, err, b.want)
		}
	}
}
