package healthcheck

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
)

// Checker probes one target once. The context carries the check's deadline
// (the Spec's timeout); Check must return by then.
//
// A Checker is never run concurrently with itself by the Scheduler, but
// must not keep state that would let one check hide another's failure
// (e.g. a reused connection to a dead server).
type Checker interface {
	Check(ctx context.Context) Result
}

// Result is one check's outcome. Reason is short and human: "connected",
// "status 200", "connect: connection refused", "status 503", "exit 2",
// "timeout".
type Result struct {
	Up     bool
	Reason string
}

func up(reason string) Result   { return Result{Up: true, Reason: reason} }
func down(reason string) Result { return Result{Reason: reason} }

// failed describes err during phase ("connect", "read", ...).
func failed(phase string, err error) Result {
	return down(phase + ": " + describe(err))
}

// NewChecker builds the checker for a Spec (normalized first). rootCAs
// verifies https certificates when TLSVerify is on; nil = the system pool.
func NewChecker(spec Spec, rootCAs *x509.CertPool) (Checker, error) {
	return Layers{}.NewChecker(spec, rootCAs)
}

// NewChecker is the package's NewChecker with l's choice of network code.
func (l Layers) NewChecker(spec Spec, rootCAs *x509.CertPool) (Checker, error) {
	s, err := spec.Normalize()
	if err != nil {
		return nil, err
	}
	host, port := s.Target()
	t := newTarget(host, port, l)
	switch s.Type {
	case TCP:
		return &tcpChecker{target: t}, nil
	case HTTP, HTTPS:
		return newHTTPChecker(s, t, rootCAs, l.StdHTTP)
	case SendExpect:
		return newSendExpectChecker(s, t)
	case Exec:
		return newExecChecker(s)
	case DNS:
		return newDNSChecker(s, t)
	}
	return nil, fmt.Errorf("unknown type %q", s.Type)
}

// describe turns a network error into a short cause.
func describe(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no local address or port available"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.EPIPE):
		return "connection closed"
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return "certificate: " + describeCert(certErr.Err)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "dns: " + dnsErr.Err
	}
	// Strip net.OpError's "dial tcp 10.0.0.1:80: " prefix: the target is
	// known from context.
	for {
		var op *net.OpError
		var pe *os.PathError
		var se *os.SyscallError
		switch {
		case errors.As(err, &op) && op.Err != nil:
			err = op.Err
		case errors.As(err, &pe) && pe.Err != nil:
			err = pe.Err
		case errors.As(err, &se) && se.Err != nil:
			err = se.Err
		default:
			return err.Error()
		}
	}
}

func describeCert(err error) string {
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(err, &ua):
		return "signed by unknown authority"
	case errors.As(err, &hn):
		return "not valid for " + hn.Host
	case errors.As(err, &ci):
		return ci.Error()
	}
	return err.Error()
}

type tcpChecker struct{ target *target }

func (c *tcpChecker) Check(ctx context.Context) Result {
	if err := c.target.connect(ctx); err != nil {
		return failed("connect", err)
	}
	return up("connected")
}
