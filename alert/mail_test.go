package alert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// relay is a real SMTP server (go-smtp) on loopback that records what it
// is given, with STARTTLS and AUTH PLAIN.
type relay struct {
	mu       sync.Mutex
	tlsSeen  bool // a message arrived over TLS
	authUser string
	from     string
	to       []string
	data     string
}

type relaySession struct {
	r     *relay
	conn  *smtp.Conn
	authd string
}

func (s *relaySession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *relaySession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != "alerts" || pass != "pw" {
			return errors.New("bad credentials")
		}
		s.authd = user
		return nil
	}), nil
}
func (s *relaySession) Reset()        {}
func (s *relaySession) Logout() error { return nil }
func (s *relaySession) Mail(from string, _ *smtp.MailOptions) error {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.from = from
	return nil
}
func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.to = append(s.r.to, to)
	return nil
}
func (s *relaySession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.data, s.r.tlsSeen, s.r.authUser = string(b), isTLS, s.authd
	return nil
}

// startRelay serves SMTP on loopback; tlsCfg nil: no STARTTLS offered.
func startRelay(t *testing.T, tlsCfg *tls.Config) (*relay, string) {
	r := &relay{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &relaySession{r: r, conn: c}, nil
	}))
	srv.Domain = "relay.test"
	srv.TLSConfig = tlsCfg
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return r, l.Addr().String()
}

func certAndRoots(t *testing.T) (tls.Certificate, *x509.CertPool) {
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.StartTLS()
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	return srv.TLS.Certificates[0], roots
}

func TestMail(t *testing.T) {
	cert, roots := certAndRoots(t)
	r, addr := startRelay(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	m := &Mail{Server: addr, From: "lbd@lvs1.example.net", To: []string{"ops@example.net", "oncall@example.net"},
		Username: "alerts", Password: "pw", StartTLS: true, Node: "lvs1",
		TLS: &tls.Config{RootCAs: roots, ServerName: "example.com"}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	batch := []Event{
		{Time: time.Date(2026, 11, 29, 21, 0, 0, 0, time.UTC), Node: "lvs1", Class: RealServerDown, Subject: "web/rs1", Message: "down: connect: connection refused"},
		{Time: time.Date(2026, 11, 29, 21, 0, 5, 0, time.UTC), Node: "lvs1", Class: QuorumLost, Subject: "web", Message: "1 of 2 real servers up\r\nBcc: victim@example.org"},
	}
	if err := m.Notify(ctx, batch, 3); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.tlsSeen || r.authUser != "alerts" || r.from != "lbd@lvs1.example.net" || strings.Join(r.to, ",") != "ops@example.net,oncall@example.net" {
		t.Errorf("relay saw tls=%v auth=%q from=%q to=%q", r.tlsSeen, r.authUser, r.from, r.to)
	}
	for _, want := range []string{
		"Subject: [lbd lvs1] 5 events\r\n",
		"2026-11-29T21:00:00Z  lvs1  rs_down        web/rs1: down: connect: connection refused\r\n",
		"quorum_lost    web: 1 of 2 real servers up  Bcc: victim@example.org\r\n",
		"(3 more events left out)\r\n",
	} {
		if !strings.Contains(r.data, want) {
			t.Errorf("message lacks %q:\n%s", want, r.data)
		}
	}
	if strings.Contains(r.data, "\nBcc:") {
		t.Error("an event's text injected a header line")
	}
}

func TestMailRefusals(t *testing.T) {
	cert, roots := certAndRoots(t)
	_, plainAddr := startRelay(t, nil)
	_, tlsAddr := startRelay(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	one := []Event{{Class: VRRP, Subject: "vrid 51", Message: "backup -> master"}}
	for _, b := range []struct {
		m    *Mail
		want string
	}{
		// STARTTLS demanded from a relay without it: nothing is sent in clear.
		{&Mail{Server: plainAddr, From: "a@b", To: []string{"c@d"}, StartTLS: true}, "does not offer STARTTLS"},
		// The relay offers no AUTH before TLS: the credentials stay unsent.
		{&Mail{Server: plainAddr, From: "a@b", To: []string{"c@d"}, Username: "alerts", Password: "pw"}, "smtp AUTH"},
		{&Mail{Server: tlsAddr, From: "a@b", To: []string{"c@d"}, StartTLS: true, TLS: &tls.Config{RootCAs: roots, ServerName: "example.com"}, Username: "alerts", Password: "wrong"}, "smtp AUTH"},
		{&Mail{Server: tlsAddr, From: "a@b", To: []string{"c@d"}, StartTLS: true, TLS: &tls.Config{ServerName: "example.com"}}, "certificate"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := b.m.Notify(ctx, one, 0)
		cancel()
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("Notify(%s) = %v, want an error with %q", b.m.Server, err, b.want)
		}
	}
}
