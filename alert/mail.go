package alert

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"strings"
	"time"
)

// Mail sends a plain-text mail through an SMTP relay, like keepalived's
// smtp_alert. With StartTLS the relay must offer STARTTLS and the session
// is encrypted before any authentication or message; Username turns on
// AUTH PLAIN, which net/smtp only sends over TLS (or to localhost).
type Mail struct {
	Server   string // host:port
	From     string
	To       []string
	Username string
	Password string
	StartTLS bool
	// TLS configures STARTTLS (server name, roots); nil: the system's
	// roots and the server's host name.
	TLS      *tls.Config
	HeloName string // default "localhost"
	Node     string // in the subject
}

func (m *Mail) Notify(ctx context.Context, batch []Event, suppressed int) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.Server)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	host, _, _ := net.SplitHostPort(m.Server)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	defer c.Close()
	helo := m.HeloName
	if helo == "" {
		helo = "localhost"
	}
	if err := c.Hello(helo); err != nil {
		return fmt.Errorf("smtp EHLO: %w", err)
	}
	if m.StartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("smtp: the server does not offer STARTTLS")
		}
		cfg := m.TLS
		if cfg == nil {
			cfg = &tls.Config{ServerName: host}
		}
		if err := c.StartTLS(cfg); err != nil {
			return fmt.Errorf("smtp STARTTLS: %w", err)
		}
	}
	if m.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", m.Username, m.Password, host)); err != nil {
			return fmt.Errorf("smtp AUTH: %w", err)
		}
	}
	if err := c.Mail(m.From); err != nil {
		return fmt.Errorf("smtp MAIL FROM: %w", err)
	}
	for _, to := range m.To {
		if err := c.Rcpt(to); err != nil {
			return fmt.Errorf("smtp RCPT TO %s: %w", to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp DATA: %w", err)
	}
	if _, err := w.Write(m.message(batch, suppressed)); err != nil {
		return fmt.Errorf("smtp DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp DATA: %w", err)
	}
	return c.Quit()
}

// message is the mail: headers and a plain-text body, CRLF line ends.
func (m *Mail) message(batch []Event, suppressed int) []byte {
	subject := fmt.Sprintf("[lbd %s] %s %s: %s", m.Node, batch[0].Class, batch[0].Subject, batch[0].Message)
	if len(batch) > 1 || suppressed > 0 {
		subject = fmt.Sprintf("[lbd %s] %d events", m.Node, len(batch)+suppressed)
	}
	var id [12]byte
	_, _ = rand.Read(id[:])
	var b strings.Builder
	header := func(k, v string) { b.WriteString(k + ": " + oneLine(v) + "\r\n") }
	header("From", m.From)
	header("To", strings.Join(m.To, ", "))
	header("Subject", subject)
	header("Date", time.Now().Format(time.RFC1123Z))
	header("Message-ID", fmt.Sprintf("<%x@lbd>", id))
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")
	for _, ev := range batch {
		fmt.Fprintf(&b, "%s  %s  %-14s %s: %s\r\n", ev.Time.UTC().Format(time.RFC3339), ev.Node, ev.Class, oneLine(ev.Subject), oneLine(ev.Message))
	}
	if suppressed > 0 {
		fmt.Fprintf(&b, "(%d more events left out)\r\n", suppressed)
	}
	return []byte(b.String())
}

// oneLine keeps a value on one line: a header injection or a forged body
// line cannot come from an event's text.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r < 0x20 && r != '\t' {
			return ' '
		}
		return r
	}, s)
}
