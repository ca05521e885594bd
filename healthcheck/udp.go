package healthcheck

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"regexp"
	"syscall"
	"time"
)

// udpChecker is send/expect over UDP: one datagram out, then replies are
// read until one matches Expect (or, with no Expect, until any reply).
//
// UDP says nothing when a server is silent, so "no reply" is all a check
// can see of a dead server, a lost datagram and a server that ignores the
// payload alike: a service that does not answer the configured payload
// cannot be checked this way. What UDP does say is used: the socket is
// connected, so an ICMP port unreachable from the real server's host
// (nothing listens on the port) ends the check at once as "port
// unreachable" instead of waiting for the timeout.
//
// Each check has a socket of its own (a new source port), so a late reply
// to an earlier check can never be taken for this one's.
type udpChecker struct {
	target *target
	send   []byte
	expect *regexp.Regexp // nil: any reply
}

func newUDPChecker(s Spec, t *target) (*udpChecker, error) {
	re, err := compileOptional(s.Expect)
	if err != nil {
		return nil, err
	}
	return &udpChecker{target: t, send: []byte(s.Send), expect: re}, nil
}

func (c *udpChecker) Check(ctx context.Context) Result {
	var res Result
	errDown := errors.New("down")
	err := c.target.eachAddr(ctx, func(ap netip.AddrPort) error {
		if res = c.exchange(ctx, ap); !res.Up {
			return errDown
		}
		return nil
	})
	if err != nil && err != errDown {
		return failed("resolve", err)
	}
	return res
}

func (c *udpChecker) exchange(ctx context.Context, ap netip.AddrPort) Result {
	conn, err := c.target.dialUDP(ap)
	if err != nil {
		return failed("connect", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// A cancellation (the Scheduler stopping) ends the wait too.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := conn.Write(c.send); err != nil {
		return udpFailed("send", err)
	}
	bp := replyPool.Get().(*[]byte)
	defer replyPool.Put(bp)
	buf := (*bp)[:MaxBody]
	var last []byte // the last reply that did not match, for the reason
	for {
		n, err := conn.Read(buf)
		if err != nil {
			if last != nil {
				return down("reply mismatch (" + describe(err) + "): " + quoteReply(last))
			}
			return udpFailed("read", err)
		}
		if c.expect == nil {
			return up("reply received")
		}
		if c.expect.Match(buf[:n]) {
			return up("reply matched")
		}
		last = append(last[:0], buf[:n]...)
	}
}

// udpFailed names what UDP can tell: the ICMP port unreachable that a
// connected socket reports as ECONNREFUSED, and silence.
func udpFailed(phase string, err error) Result {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return down("port unreachable")
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return down("no reply (timeout)")
	}
	return failed(phase, err)
}
