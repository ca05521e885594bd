package healthcheck

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// A check that waits on its socket (a handshake under way, an HTTP reply)
// would normally park in Go's poller, which wakes a thread for every
// event on every socket it watches. At 10,000 checks a second that is
// thousands of thread wake-ups a second, and on a virtual machine a thread
// that sleeps and wakes costs tens of µs of CPU each time, more than the
// check's own system calls. The workers' sockets are therefore watched by
// an epoll instance of the Scheduler's own, which a single goroutine looks
// at once per batch window (without waiting: epoll_wait with timeout 0):
// the events of a whole window are handled in one wake-up, and the
// sockets never wake anyone by themselves. A waiting check sees its event
// at most one window late, and its deadline is checked at the same ticks.
//
// Each wait arms the socket with EPOLLONESHOT, so a socket says nothing
// between waits (a connect that completes at once, the RST of a
// disconnect).

// poller is the Scheduler's epoll instance and the checks waiting on it.
type poller struct {
	epfd int
	kick chan struct{} // cap 1: a wait began while nobody was waiting

	mu      sync.Mutex
	waiting map[int32]*waiter // by fd
	soonest time.Time         // no waiter's deadline is earlier; zero: none
	closed  bool
}

// waiter is one probe's side of the poller.
type waiter struct {
	fd       int32
	armed    bool       // fd is in the epoll set (reset when the socket closes)
	done     chan error // cap 1: the outcome of the current wait
	deadline time.Time
}

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	return &poller{epfd: epfd, kick: make(chan struct{}, 1), waiting: map[int32]*waiter{}}, nil
}

var errPollerClosed = context.Canceled

// wait blocks until w's socket may be ready for events (the caller retries
// its system call), the deadline (zero: none) passes, or the poller
// closes. intr, when set, makes it fail with net.ErrClosed; interrupt
// ends a wait under way the same way (set intr first).
func (pl *poller) wait(w *waiter, events uint32, deadline time.Time, intr *atomic.Bool) error {
	pl.mu.Lock()
	switch {
	case pl.closed:
		pl.mu.Unlock()
		return errPollerClosed
	case intr.Load():
		pl.mu.Unlock()
		return net.ErrClosed
	}
	first := len(pl.waiting) == 0
	w.deadline = deadline
	pl.waiting[w.fd] = w
	if !deadline.IsZero() && (pl.soonest.IsZero() || deadline.Before(pl.soonest)) {
		pl.soonest = deadline
	}
	pl.mu.Unlock()

	// Armed only once registered, so that no event can come before the
	// waiter is there to receive it.
	op := unix.EPOLL_CTL_MOD
	if !w.armed {
		op = unix.EPOLL_CTL_ADD
	}
	ev := unix.EpollEvent{Events: events | unix.EPOLLONESHOT, Fd: w.fd}
	if err := unix.EpollCtl(pl.epfd, op, int(w.fd), &ev); err != nil {
		pl.mu.Lock()
		mine := pl.waiting[w.fd] == w
		if mine {
			delete(pl.waiting, w.fd)
		}
		pl.mu.Unlock()
		if !mine {
			<-w.done // the poller ended the wait meanwhile
		}
		return os.NewSyscallError("epoll_ctl", err)
	}
	w.armed = true
	if first {
		select {
		case pl.kick <- struct{}{}:
		default:
		}
	}
	return <-w.done
}

// interrupt ends w's wait, if any, with net.ErrClosed.
func (pl *poller) interrupt(w *waiter) {
	pl.mu.Lock()
	if pl.waiting[w.fd] == w {
		delete(pl.waiting, w.fd)
		w.done <- net.ErrClosed
	}
	pl.mu.Unlock()
}

// run looks at the sockets once per batch window while anyone waits,
// until stop is closed; then it ends every wait and refuses new ones.
func (pl *poller) run(stop <-chan struct{}) {
	defer pl.close()
	events := make([]unix.EpollEvent, 256)
	tick := time.NewTimer(time.Hour)
	tick.Stop()
	for {
		pl.mu.Lock()
		idle := len(pl.waiting) == 0
		pl.mu.Unlock()
		if idle {
			select {
			case <-pl.kick:
				continue
			case <-stop:
				return
			}
		}
		tick.Reset(time.Until(nextTick(time.Now())))
		select {
		case <-tick.C:
		case <-stop:
			tick.Stop()
			return
		}
		pl.poll(events, time.Now())
	}
}

// poll ends the waits whose sockets have events or whose deadline passed.
func (pl *poller) poll(events []unix.EpollEvent, now time.Time) {
	for {
		n, err := unix.EpollWait(pl.epfd, events, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		pl.mu.Lock()
		for _, ev := range events[:max(n, 0)] {
			if w := pl.waiting[ev.Fd]; w != nil {
				delete(pl.waiting, ev.Fd)
				w.done <- nil
			}
		}
		pl.mu.Unlock()
		if n < len(events) {
			break
		}
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.soonest.IsZero() || now.Before(pl.soonest) {
		return // no deadline has passed: skip the scan
	}
	pl.soonest = time.Time{}
	for fd, w := range pl.waiting {
		switch {
		case w.deadline.IsZero():
		case !now.Before(w.deadline):
			delete(pl.waiting, fd)
			w.done <- os.ErrDeadlineExceeded
		case pl.soonest.IsZero() || w.deadline.Before(pl.soonest):
			pl.soonest = w.deadline
		}
	}
}

func (pl *poller) close() {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.closed {
		return
	}
	pl.closed = true
	for fd, w := range pl.waiting {
		delete(pl.waiting, fd)
		w.done <- errPollerClosed
	}
	unix.Close(pl.epfd)
}

// pollWait is the wait of a probe outside a Scheduler (a checker used on
// its own): poll(2) on the one socket, in slices short enough to notice
// ctx ending or intr.
func pollWait(ctx context.Context, fd int, events uint32, deadline time.Time, intr *atomic.Bool) error {
	const slice = 50 * time.Millisecond
	for {
		if intr.Load() {
			return net.ErrClosed
		}
		if err := ctx.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		wait := slice
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return os.ErrDeadlineExceeded
			}
			wait = min(wait, left)
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: int16(events)}}
		n, err := unix.Poll(fds, int(max(wait/time.Millisecond, 1)))
		if err != nil && !errors.Is(err, unix.EINTR) {
			return os.NewSyscallError("poll", err)
		}
		if n > 0 {
			return nil
		}
	}
}
