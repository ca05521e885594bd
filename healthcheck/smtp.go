package healthcheck

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"strconv"
	"strings"
)

// smtpChecker has one short SMTP conversation: the 220 banner, EHLO and
// its 250, optionally STARTTLS (220), a TLS handshake and EHLO again, then
// QUIT (221). A reply with another code fails the check with the server's
// own line in the reason ("EHLO: 550 go away").
//
// It reads replies itself rather than through net/smtp or
// net/textproto: both read a line of any length and a multi-line reply of
// any number of lines, so a hostile or broken server could grow a check
// without bound until its deadline. Here a line is at most smtpMaxLine
// bytes and a reply at most smtpMaxLines lines (RFC 5321 allows 512-byte
// lines; an EHLO reply has one line per extension), and the few commands
// are written by hand. The connection is the checks' own (a RST at the
// end, no TIME_WAIT), as for http.
type smtpChecker struct {
	target *target
	ehlo   []byte      // "EHLO name\r\n"
	tls    *tls.Config // nil: no STARTTLS
}

const (
	smtpMaxLine  = 1024
	smtpMaxLines = 100
)

func newSMTPChecker(s Spec, t *target, rootCAs *x509.CertPool) (*smtpChecker, error) {
	c := &smtpChecker{target: t, ehlo: []byte("EHLO " + s.HeloName + "\r\n")}
	if s.StartTLS {
		host, _ := s.Target()
		name := s.SNI
		if name == "" {
			name = host
		}
		c.tls = &tls.Config{
			// Go never sends an IP address as SNI but verifies it
			// against the certificate's IP SANs.
			ServerName:         name,
			InsecureSkipVerify: !s.TLSVerify,
			RootCAs:            rootCAs,
		}
	}
	return c, nil
}

func (c *smtpChecker) Check(ctx context.Context) Result {
	conn, err := c.target.dial(ctx)
	if err != nil {
		return failed("connect", err)
	}
	defer conn.done()
	s := newSMTPSession(conn.Conn)
	if res, ok := s.reply("banner", 220); !ok {
		return res
	}
	lines, res, ok := s.command("EHLO", c.ehlo, 250)
	if !ok {
		return res
	}
	if c.tls == nil {
		return s.quit("EHLO 250")
	}
	if !offers(lines, "STARTTLS") {
		return down("EHLO: no STARTTLS offered")
	}
	if _, res, ok := s.command("STARTTLS", []byte("STARTTLS\r\n"), 220); !ok {
		return res
	}
	tc := tls.Client(conn.Conn, c.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		return failed("tls handshake", err)
	}
	// RFC 3207: the client forgets what it knew and says EHLO again.
	s = newSMTPSession(tc)
	if _, res, ok := s.command("EHLO after STARTTLS", c.ehlo, 250); !ok {
		return res
	}
	return s.quit("EHLO 250 over TLS")
}

type smtpSession struct {
	w io.Writer
	r *bufio.Reader
}

func newSMTPSession(rw io.ReadWriter) *smtpSession {
	return &smtpSession{w: rw, r: bufio.NewReaderSize(rw, smtpMaxLine)}
}

// command writes cmd and reads its reply; phase names it in the reason.
func (s *smtpSession) command(phase string, cmd []byte, want int) ([]string, Result, bool) {
	if _, err := s.w.Write(cmd); err != nil {
		return nil, failed(phase, err), false
	}
	return s.replyLines(phase, want)
}

// quit ends the session politely: a server that does not answer QUIT
// with 221 is not well, so it fails the check too.
func (s *smtpSession) quit(reason string) Result {
	if _, res, ok := s.command("QUIT", []byte("QUIT\r\n"), 221); !ok {
		return res
	}
	return up(reason)
}

func (s *smtpSession) reply(phase string, want int) (Result, bool) {
	_, res, ok := s.replyLines(phase, want)
	return res, ok
}

var errSMTPTooLong = errors.New("reply too long")

// replyLines reads one (possibly multi-line) reply and checks its code.
// It returns the text of its lines.
func (s *smtpSession) replyLines(phase string, want int) ([]string, Result, bool) {
	var lines []string
	code := 0
	for {
		line, err := s.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) || err == nil && len(lines) == smtpMaxLines {
			return nil, down(phase + ": " + errSMTPTooLong.Error()), false
		}
		if err != nil {
			if len(lines) > 0 && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
				return nil, down(phase + ": connection closed in a multi-line reply"), false
			}
			return nil, failed(phase, err), false
		}
		l := strings.TrimRight(string(line), "\r\n")
		c, cont, text, ok := parseSMTPLine(l)
		if !ok || code != 0 && c != code {
			return nil, down(phase + ": bad reply " + quoteReply([]byte(l))), false
		}
		code = c
		lines = append(lines, text)
		if cont {
			continue
		}
		if code != want {
			// The first line says why; the rest (EHLO's extensions,
			// a long banner) would only clutter the reason.
			return nil, down(phase + ": " + strconv.Itoa(code) + replyText(lines[0])), false
		}
		return lines, Result{}, true
	}
}

// parseSMTPLine splits "250-text" or "250 text" (RFC 5321 4.2).
func parseSMTPLine(l string) (code int, cont bool, text string, ok bool) {
	if len(l) < 3 || (len(l) > 3 && l[3] != ' ' && l[3] != '-') {
		return 0, false, "", false
	}
	code, err := strconv.Atoi(l[:3])
	if err != nil || code < 200 || code > 599 {
		return 0, false, "", false
	}
	if len(l) > 3 {
		cont, text = l[3] == '-', l[4:]
	}
	return code, cont, text, true
}

// replyText is a server's reply text fit for a reason: printable, short.
func replyText(s string) string {
	const max = 120
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > max {
		s = s[:max] + "..."
	}
	if s == "" {
		return ""
	}
	return " " + s
}

// offers reports whether EHLO's reply lines (after the greeting) list
// extension ext.
func offers(lines []string, ext string) bool {
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) > 0 && strings.EqualFold(f[0], ext) {
			return true
		}
	}
	return false
}
