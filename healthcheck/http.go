package healthcheck

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync"
)

// httpChecker sends one HTTP/1.1 request on a fresh connection and reads
// the reply. It speaks the protocol itself instead of using http.Client:
// a Transport per check costs goroutines and allocations, and a shared one
// would reuse connections, the one thing a health check must not do.
type httpChecker struct {
	target  *target
	request []byte      // the whole request, built once
	head    bool        // a HEAD request: the response has no body
	tls     *tls.Config // nil for plain http
	status  []statusRange
	body    *regexp.Regexp
	stdHTTP bool // http.ReadResponse instead of respReader
}

func newHTTPChecker(s Spec, t *target, rootCAs *x509.CertPool, stdHTTP bool) (*httpChecker, error) {
	status, err := parseStatusRanges(s.ExpectStatus)
	if err != nil {
		return nil, err
	}
	c := &httpChecker{target: t, status: status, head: s.Method == "HEAD", stdHTTP: stdHTTP}
	if c.body, err = compileOptional(s.ExpectBody); err != nil {
		return nil, err
	}
	addr, port := s.Target()
	hostHeader := s.Host
	if hostHeader == "" {
		hostHeader = addr
		if ap, ok := parseAddrPort(addr, port); ok && ap.Addr().Is6() {
			hostHeader = "[" + addr + "]"
		}
		if (s.Type == HTTP && port != 80) || (s.Type == HTTPS && port != 443) {
			hostHeader = hostPort(addr, port)
		}
	}
	var b bytes.Buffer
	b.WriteString(s.Method + " " + s.Path + " HTTP/1.1\r\n")
	b.WriteString("Host: " + hostHeader + "\r\n")
	b.WriteString("User-Agent: lbd-healthcheck\r\nAccept: */*\r\nConnection: close\r\n")
	if s.Method != "GET" && s.Method != "HEAD" {
		b.WriteString("Content-Length: 0\r\n")
	}
	b.WriteString("\r\n")
	c.request = b.Bytes()

	if s.Type == HTTPS {
		name := s.SNI
		if name == "" {
			name = hostOnly(hostHeader)
		}
		if name == "" {
			name = addr
		}
		c.tls = &tls.Config{
			// Go never sends an IP address as SNI but verifies it
			// against the certificate's IP SANs.
			ServerName:         name,
			InsecureSkipVerify: !s.TLSVerify,
			RootCAs:            rootCAs,
			// No session cache: every check does a full handshake, so a
			// server whose TLS stack is stuck is seen.
			ClientSessionCache: nil,
		}
	}
	return c, nil
}

// hostOnly strips a port and IPv6 brackets from a Host header value.
func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}

var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (c *httpChecker) Check(ctx context.Context) Result {
	conn, err := c.target.dial(ctx)
	if err != nil {
		return failed("connect", err)
	}
	defer conn.done()
	var rw io.ReadWriter = conn.Conn
	if c.tls != nil {
		tc := tls.Client(conn.Conn, c.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return failed("tls handshake", err)
		}
		rw = tc
	}
	if _, err := rw.Write(c.request); err != nil {
		return failed("send request", err)
	}
	if c.stdHTTP {
		return c.readStd(rw)
	}
	var rr respReader
	rr.init(rw)
	defer rr.release()
	code, chunked, length, err := rr.readHead()
	if err != nil {
		return failed("read response", err)
	}
	if !c.statusOK(code) {
		return down("status " + strconv.Itoa(code))
	}
	if c.body == nil {
		return up("status " + strconv.Itoa(code))
	}
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bodyPool.Put(buf)
	switch {
	case c.head || code == 204 || code == 304:
	case chunked:
		err = rr.readChunked(buf)
	default:
		err = rr.readBody(buf, length)
	}
	if err != nil {
		return failed("read body", err)
	}
	if !c.body.Match(buf.Bytes()) {
		return down("body mismatch (status " + strconv.Itoa(code) + ")")
	}
	return up("status " + strconv.Itoa(code) + ", body matched")
}

// readStd reads the response with http.ReadResponse.
func (c *httpChecker) readStd(r io.Reader) Result {
	br := bufio.NewReader(r)
	req := &http.Request{Method: "GET"}
	if c.head {
		req.Method = "HEAD"
	}
	var resp *http.Response
	var err error
	for range maxInterim + 1 {
		resp, err = http.ReadResponse(br, req)
		if err != nil {
			return failed("read response", err)
		}
		// 1xx responses (100 Continue, 103 Early Hints) come before the
		// real one; 101 Switching Protocols is final.
		if resp.StatusCode >= 200 || resp.StatusCode == 101 {
			break
		}
		resp = nil
	}
	if resp == nil {
		return down("read response: too many interim (1xx) responses")
	}
	code := resp.StatusCode
	if !c.statusOK(code) {
		return down("status " + strconv.Itoa(code))
	}
	if c.body == nil {
		return up("status " + strconv.Itoa(code))
	}
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bodyPool.Put(buf)
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, MaxBody)); err != nil && !errors.Is(err, io.EOF) {
		return failed("read body", err)
	}
	if !c.body.Match(buf.Bytes()) {
		return down("body mismatch (status " + strconv.Itoa(code) + ")")
	}
	return up("status " + strconv.Itoa(code) + ", body matched")
}

func (c *httpChecker) statusOK(code int) bool {
	for _, r := range c.status {
		if code >= r.lo && code <= r.hi {
			return true
		}
	}
	return false
}
