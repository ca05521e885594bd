package healthcheck

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestProbeReuse drives one worker socket set through checks that leave
// it in every state (connected, refused, timed out mid-handshake, reset
// mid-exchange) and checks that each check still makes its own connection:
// the same socket is reused, the server sees a new connection ended by a
// RST every time, a listener that dies is seen dead at once, and no file
// descriptor leaks.
func TestProbeReuse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host, port := addrOf(t, l.Addr().String())
	// The server reads each connection to its end: a RST shows as
	// ECONNRESET, an orderly close (which would leave TIME_WAIT behind on
	// the director) as EOF.
	var mu sync.Mutex
	var accepted, resets, other int
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepted++
			mu.Unlock()
			wg.Go(func() {
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, err := c.Read(make([]byte, 1))
				c.Close()
				mu.Lock()
				defer mu.Unlock()
				if errors.Is(err, syscall.ECONNRESET) {
					resets++
				} else {
					other++
					t.Logf("server read: %v", err)
				}
			})
		}
	})
	t.Cleanup(func() { l.Close(); wg.Wait() })

	ps := &probes{}
	defer ps.close()
	run := func(sp Spec) Result {
		t.Helper()
		if sp.Timeout == 0 {
			sp.Timeout, sp.Interval = 5*time.Second, 10*time.Second
		}
		c, err := NewChecker(sp, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(withProbes(context.Background(), ps), sp.Timeout)
		defer cancel()
		return c.Check(ctx)
	}
	tcp := Spec{Type: TCP, Address: host, Port: port}
	sh, sp := stuckListener(t)
	hh, hp := rawListener(t, func(c net.Conn) {
		c.Read(make([]byte, 1024))
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	})

	// settle waits until the server has seen every connection end.
	settle := func(want int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			a, r, o := accepted, resets, other
			mu.Unlock()
			if (a == want && r+o == a) || time.Now().After(deadline) {
				if a != want || r != a {
					t.Errorf("server accepted %d connections (want %d), %d ended by RST, %d otherwise", a, want, r, o)
				}
				return
			}
			time.Sleep(time.Millisecond)
		}
	}

	wantResult(t, run(tcp), true, "connected")
	settle(1)
	fd := ps.v4.fd
	fds := openFDs(t)
	const n = 50
	for range n {
		wantResult(t, run(tcp), true, "connected")
	}
	if ps.v4.fd != fd || !ps.v4.open {
		t.Errorf("socket not reused: fd %d, then %d (open %v)", fd, ps.v4.fd, ps.v4.open)
	}

	// Refused, then timed out in the middle of a handshake, then an HTTP
	// exchange cut by the server, each followed by a good check.
	wantResult(t, run(Spec{Type: TCP, Address: "127.0.0.1", Port: closedPort(t)}), false, "connect: connection refused")
	wantResult(t, run(tcp), true, "connected")
	wantResult(t, run(Spec{Type: TCP, Address: sh, Port: sp, Timeout: 200 * time.Millisecond, Interval: time.Second}), false, "connect: timeout")
	wantResult(t, run(tcp), true, "connected")
	wantResult(t, run(Spec{Type: HTTP, Address: hh, Port: hp}), false, "read response: connection")
	wantResult(t, run(tcp), true, "connected")
	// 1+n+3 good checks, each its own connection.
	settle(n + 4)
	// (Fewer is fine: earlier tests' connections may still be closing.)
	if d := openFDs(t) - fds; d > 0 {
		t.Errorf("%d more file descriptors after the checks", d)
	}

	// Should a socket ever come back still connected (release prevents
	// it), a check must start over on a new socket, not trust it.
	ap, err := netip.ParseAddrPort(hostPort(hh, hp))
	if err != nil {
		t.Fatal(err)
	}
	live := makeSockaddr(ap)
	if err := ps.v4.connect(context.Background(), &live); err != nil {
		t.Fatal(err)
	}
	wantResult(t, run(Spec{Type: TCP, Address: "127.0.0.1", Port: closedPort(t)}), false, "connect: connection refused")
	ps.v4.release(nil) // what is left of the stale socket, if anything

	// The server dies: the very next check says so.
	l.Close()
	wantResult(t, run(tcp), false, "connect: connection refused")
}

// TestProbePollWait covers the wait used when Go's poller refuses one (a
// stale EPOLLERR mark on a reused socket): it returns once the socket is
// ready, and at the deadline when it never is.
func TestProbePollWait(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	send := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		<-send
		c.Write([]byte("x"))
		c.Read(make([]byte, 1)) // until the probe ends the connection
	}()
	sa := makeSockaddr(netip.MustParseAddrPort(l.Addr().String()))
	var p probe
	if _, err := acquireProbe(context.Background(), sa.family, &p); err != nil {
		t.Fatal(err)
	}
	defer p.close()
	if err := p.connect(context.Background(), &sa); err != nil {
		t.Fatal(err)
	}
	var got int
	read := func(uintptr) bool {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(p.fd), uintptr(unsafe.Pointer(&[1]byte{})), 1)
		got = int(n)
		return e != syscall.EAGAIN
	}
	start := time.Now()
	if err := p.pollWait(false, start.Add(100*time.Millisecond), read); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("pollWait on a silent socket = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 2*time.Second {
		t.Errorf("pollWait returned after %v, want the 100ms deadline", d)
	}
	close(send)
	if err := p.pollWait(false, time.Now().Add(5*time.Second), read); err != nil || got != 1 {
		t.Fatalf("pollWait with data on its way = %v (read %d bytes), want nil and 1 byte", err, got)
	}
	p.release(nil)
	<-done
}
