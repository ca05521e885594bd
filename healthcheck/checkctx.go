package healthcheck

import (
	"context"
	"sync"
	"time"
)

// checkCtx is the context a Scheduler worker gives one check: the worker's
// context with the check's deadline. context.WithTimeout would arm a timer
// and register with the parent for every check, a few percent of the CPU
// at 10,000 checks a second, and most checks never look at Done: tcp
// connects and plain HTTP exchanges put the deadline on the socket. So the
// timer and the registration are made only when something asks for Done.
type checkCtx struct {
	parent   context.Context
	deadline time.Time

	mu     sync.Mutex
	inner  context.Context // context.WithDeadline(parent, deadline), on demand
	cancel context.CancelFunc
	ended  bool
}

func newCheckCtx(parent context.Context, timeout time.Duration) *checkCtx {
	return &checkCtx{parent: parent, deadline: time.Now().Add(timeout)}
}

func (c *checkCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *checkCtx) Value(key any) any { return c.parent.Value(key) }

func (c *checkCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inner == nil {
		c.inner, c.cancel = context.WithDeadline(c.parent, c.deadline)
		if c.ended {
			c.cancel()
		}
	}
	return c.inner.Done()
}

func (c *checkCtx) Err() error {
	c.mu.Lock()
	inner := c.inner
	c.mu.Unlock()
	if inner != nil {
		return inner.Err()
	}
	if err := c.parent.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// end is the worker's cancel: the check is over.
func (c *checkCtx) end() {
	c.mu.Lock()
	c.ended = true
	if c.cancel != nil {
		c.cancel()
	}
	c.mu.Unlock()
}
