package healthcheck

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// socketPair returns two connected non-blocking sockets, closed at the end
// of the test.
func socketPair(t *testing.T) (int, int) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fds[0]); syscall.Close(fds[1]) })
	return fds[0], fds[1]
}

func newWaiter(fd int) *waiter { return &waiter{fd: int32(fd), done: make(chan error, 1)} }

func TestPoller(t *testing.T) {
	pl := testPoller(t)
	var noIntr atomic.Bool

	// Readiness, twice on the same socket (the second wait re-arms it).
	a, b := socketPair(t)
	w := newWaiter(a)
	for i := range 2 {
		go func() { time.Sleep(20 * time.Millisecond); syscall.Write(b, []byte("x")) }()
		start := time.Now()
		if err := pl.wait(w, unix.EPOLLIN, time.Now().Add(5*time.Second), &noIntr); err != nil {
			t.Fatalf("wait %d: %v", i, err)
		}
		if el := time.Since(start); el < 15*time.Millisecond {
			t.Errorf("wait %d returned after %v, before the data", i, el)
		}
		if n, err := syscall.Read(a, make([]byte, 8)); n != 1 || err != nil {
			t.Fatalf("read after wait %d: %d %v", i, n, err)
		}
	}

	// The deadline, with nothing to read.
	start := time.Now()
	err := pl.wait(w, unix.EPOLLIN, start.Add(30*time.Millisecond), &noIntr)
	if el := time.Since(start); !errors.Is(err, os.ErrDeadlineExceeded) || el < 30*time.Millisecond || el > 2*time.Second {
		t.Errorf("deadline: %v after %v", err, el)
	}

	// Interrupted while waiting, and before.
	var intr atomic.Bool
	errc := make(chan error)
	go func() { errc <- pl.wait(w, unix.EPOLLIN, time.Time{}, &intr) }()
	time.Sleep(20 * time.Millisecond)
	intr.Store(true)
	pl.interrupt(w)
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Errorf("interrupted wait: %v", err)
	}
	if err := pl.wait(w, unix.EPOLLIN, time.Time{}, &intr); !errors.Is(err, net.ErrClosed) {
		t.Errorf("wait after interrupt: %v", err)
	}

	// Many waiters at once, each woken by its own socket.
	const n = 100
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range n {
		a, b := socketPair(t)
		w := newWaiter(a)
		wg.Go(func() {
			if err := pl.wait(w, unix.EPOLLIN, time.Now().Add(5*time.Second), &noIntr); err != nil {
				failed.Add(1)
			}
		})
		syscall.Write(b, []byte("x"))
	}
	wg.Wait()
	if f := failed.Load(); f != 0 {
		t.Errorf("%d of %d waits failed", f, n)
	}
}

func TestPollerClose(t *testing.T) {
	pl, err := newPoller()
	if err != nil {
		t.Fatal(err)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { pl.run(stop); close(done) }()
	a, _ := socketPair(t)
	w := newWaiter(a)
	var noIntr atomic.Bool
	errc := make(chan error)
	go func() { errc <- pl.wait(w, unix.EPOLLIN, time.Time{}, &noIntr) }()
	time.Sleep(20 * time.Millisecond)
	close(stop)
	<-done
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("wait when the poller stops: %v", err)
	}
	if err := pl.wait(w, unix.EPOLLIN, time.Time{}, &noIntr); !errors.Is(err, context.Canceled) {
		t.Errorf("wait on a stopped poller: %v", err)
	}
}

func TestPollWait(t *testing.T) {
	a, b := socketPair(t)
	var intr atomic.Bool
	ctx := context.Background()
	go func() { time.Sleep(20 * time.Millisecond); syscall.Write(b, []byte("x")) }()
	if err := pollWait(ctx, a, unix.EPOLLIN, time.Now().Add(5*time.Second), &intr); err != nil {
		t.Errorf("readable: %v", err)
	}
	syscall.Read(a, make([]byte, 8))
	start := time.Now()
	if err := pollWait(ctx, a, unix.EPOLLIN, start.Add(30*time.Millisecond), &intr); !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) < 30*time.Millisecond {
		t.Errorf("deadline: %v after %v", err, time.Since(start))
	}
	cctx, cancel := context.WithCancel(ctx)
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if err := pollWait(cctx, a, unix.EPOLLIN, time.Time{}, &intr); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
	go func() { time.Sleep(20 * time.Millisecond); intr.Store(true) }()
	if err := pollWait(ctx, a, unix.EPOLLIN, time.Time{}, &intr); !errors.Is(err, net.ErrClosed) {
		t.Errorf("interrupted: %v", err)
	}
}
