package healthcheck

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
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
	if s.Mark != 0 {
		return l.newVIPChecker(s, rootCAs)
	}
	host, port := s.Target()
	return l.newChecker(s, newTarget(host, port, l), rootCAs)
}

func (l Layers) newChecker(s Spec, t *target, rootCAs *x509.CertPool) (Checker, error) {
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
	case UDP:
		return newUDPChecker(s, t)
	case SMTP:
		return newSMTPChecker(s, t, rootCAs)
	}
	return nil, fmt.Errorf("unknown type %q", s.Type)
}

// vipChecker checks a real server through the VIP (Spec.ThroughVIP) and,
// when that fails, once more at its own address, so the reason says
// which of the two is wrong: the server, or its VIP setup.
type vipChecker struct {
	vip, plain Checker
}

// NotAcceptVIP starts the reason of a real server that answers at its own
// address but not through the VIP: it lacks the VIP on lo, or answers ARP
// for it (the director's packet then never reaches it as the VIP).
const NotAcceptVIP = "does not accept the VIP (check realserver.sh on it)"

func (l Layers) newVIPChecker(s Spec, rootCAs *x509.CertPool) (Checker, error) {
	host, port := s.Target()
	via, err := netip.ParseAddr(host)
	if err != nil {
		return nil, err // validate has refused it already
	}
	vip, err := l.newChecker(s, newMarkedTarget(s.ThroughVIP, port, s.Mark, via.Unmap(), l), rootCAs)
	if err != nil {
		return nil, err
	}
	plain := s
	plain.ThroughVIP, plain.Mark = "", 0
	pc, err := l.newChecker(plain, newTarget(host, port, l), rootCAs)
	if err != nil {
		return nil, err
	}
	return &vipChecker{vip: vip, plain: pc}, nil
}

func (c *vipChecker) Check(ctx context.Context) Result {
	// A real server without the VIP mostly drops the packet in silence,
	// so the VIP check times out and leaves no time for the second one:
	// past half the timeout, the server's own address is tried alongside.
	// Only a failed VIP check uses that answer.
	hedge := time.Duration(-1)
	if dl, ok := ctx.Deadline(); ok {
		hedge = time.Until(dl) / 2
	}
	vipc := make(chan Result, 1)
	go func() { vipc <- c.vip.Check(ctx) }()
	var r Result
	var plainc chan Result
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if hedge < 0 {
		r = <-vipc
	} else {
		t := time.NewTimer(hedge)
		select {
		case r = <-vipc:
			t.Stop()
		case <-t.C:
			plainc = make(chan Result, 1)
			go func() { plainc <- c.plain.Check(pctx) }()
			r = <-vipc
		}
	}
	if r.Up || ctx.Err() == context.Canceled {
		if plainc != nil {
			cancel()
			<-plainc // a Checker never runs concurrently with itself
		}
		return r
	}
	var p Result
	if plainc != nil {
		p = <-plainc
	} else {
		p = c.plain.Check(ctx)
	}
	if p.Up {
		return down(NotAcceptVIP + "; through the VIP: " + r.Reason)
	}
	return p
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
