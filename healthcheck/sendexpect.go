package healthcheck

import (
	"context"
	"regexp"
	"strconv"
	"sync"
)

// sendExpectChecker is piranha's send/expect: write Send, then read until
// the reply matches Expect, the reply reaches MaxBody, the server closes or
// the deadline passes.
type sendExpectChecker struct {
	target *target
	send   []byte
	expect *regexp.Regexp // nil: connect and send only
}

func newSendExpectChecker(s Spec, t *target) (*sendExpectChecker, error) {
	re, err := compileOptional(s.Expect)
	if err != nil {
		return nil, err
	}
	return &sendExpectChecker{target: t, send: []byte(s.Send), expect: re}, nil
}

// compileOptional compiles a checker's optional regular expression: ""
// is no expectation (nil).
func compileOptional(expr string) (*regexp.Regexp, error) {
	if expr == "" {
		return nil, nil
	}
	return regexp.Compile(expr)
}

var replyPool = sync.Pool{New: func() any { b := make([]byte, 0, MaxBody); return &b }}

func (c *sendExpectChecker) Check(ctx context.Context) Result {
	conn, err := c.target.dial(ctx)
	if err != nil {
		return failed("connect", err)
	}
	defer conn.done()
	if len(c.send) > 0 {
		if _, err := conn.Write(c.send); err != nil {
			return failed("send", err)
		}
	}
	if c.expect == nil {
		if len(c.send) > 0 {
			return up("sent")
		}
		return up("connected")
	}
	bp := replyPool.Get().(*[]byte)
	defer replyPool.Put(bp)
	buf := (*bp)[:0]
	for {
		n, err := conn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		// Match after every read: a banner usually arrives in one
		// segment, and waiting for more would only wait for the timeout.
		if n > 0 && c.expect.Match(buf) {
			return up("reply matched")
		}
		if len(buf) == cap(buf) {
			return down("reply mismatch: " + quoteReply(buf))
		}
		if err != nil {
			if len(buf) == 0 {
				return failed("read", err)
			}
			// describe: the deadline may end the read through the
			// connection (os.ErrDeadlineExceeded) or through the check's
			// context (context.DeadlineExceeded), whichever fires first.
			return down("reply mismatch (" + describe(err) + "): " + quoteReply(buf))
		}
	}
}

// quoteReply shows the start of a reply in a reason, quoted so control
// characters cannot garble a log line.
func quoteReply(b []byte) string {
	const max = 40
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "..."
	}
	return strconv.Quote(string(b))
}
