package healthcheck

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Checks talk to the socket API directly instead of through net.Dialer,
// which costs a dozen system calls and a park in the poller per connection
// (socket, bind-free connect, getsockname, getpeername, TCP_NODELAY,
// SO_ERROR, epoll add and delete, close...). At thousands of checks per
// second, system calls are most of the director's health-check CPU.
//
// A Scheduler worker also keeps its socket from check to check (a probe):
// every check still makes a new connection with its own handshake, so
// nothing of an earlier connection can answer for a dead server, but the
// socket outlives it. connect(AF_UNSPEC) ends a connection with a RST (no
// TIME_WAIT on either side, as SO_LINGER 0 would) and leaves the socket
// unconnected, ready to connect again. A tcp check to a server that answers
// at once is then three system calls (connect, connect to read the
// outcome, connect(AF_UNSPEC)) instead of five, and the socket's
// allocation and file descriptor are paid once per worker instead of once
// per check. Checks that have to wait (a slow handshake, a reply) wait in
// Go's poller, where the socket is registered once, when it is opened.
//
// Measured (make bench-health -rounds=3: 10,000 loopback targets, 2
// cores, a loaded machine; CPU of the checking process per 10,000
// checks/s, medians of 3 interleaved runs, 29 Nov 2026), this layer pays
// for itself: tcp 0.37 cores with raw sockets against 1.02 through
// net.Dialer (saves 63%), http 0.61 against 1.07 (43%). Layers.StdConnect
// keeps net.Dialer's path for comparison, for the tests, and outside
// Linux. Two other layers did not pay and were removed: the Scheduler's
// own epoll poller, looked at once per batch window (tcp 0.36 against
// 0.33 with Go's poller, http 0.60 against 0.56: it saved nothing), and a
// lazily armed check context (context.WithTimeout cost 2% more CPU for
// tcp, 9% for http; 1.1µs a check in a micro-benchmark).

const haveRawSockets = true

// probe is a TCP socket for checks.
type probe struct {
	open   bool
	fd     int
	family int
	// keep: a worker's probe, left open for the next check. Otherwise the
	// socket is closed when the check releases it.
	keep bool
	// f owns fd and makes it wait in Go's poller (through rc).
	f  *os.File
	rc syscall.RawConn
	// intr is set when the check's connection is closed under it
	// (crypto/tls does when the handshake's context ends): waits fail.
	intr atomic.Bool
}

// probes are one worker's sockets. A worker runs one check at a time, so
// they are never used by two checks at once.
type probes struct {
	v4, v6 probe
}

type probesKey struct{}

// withProbes lets the checks run with ctx reuse ps's sockets.
func withProbes(ctx context.Context, ps *probes) context.Context {
	return context.WithValue(ctx, probesKey{}, ps)
}

func (ps *probes) close() {
	ps.v4.close()
	ps.v6.close()
}

// acquireProbe returns an open socket of family for one check: the
// worker's from ctx, or else tmp (a new one if nil), closed again at
// release.
func acquireProbe(ctx context.Context, family int, tmp *probe) (*probe, error) {
	p := tmp
	if ps, _ := ctx.Value(probesKey{}).(*probes); ps != nil {
		p = &ps.v4
		if family == syscall.AF_INET6 {
			p = &ps.v6
		}
		p.keep = true
	} else if p == nil {
		p = new(probe)
	}
	p.intr.Store(false)
	if err := ctx.Err(); err != nil {
		return nil, err // Run is stopping, or the check is already late
	}
	if p.open {
		return p, nil
	}
	if err := p.openSocket(family); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *probe) openSocket(family int) error {
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	// A non-blocking descriptor joins Go's poller; the File owns it.
	p.open, p.fd, p.family = true, fd, family
	p.f = os.NewFile(uintptr(fd), "healthcheck probe")
	rc, err := p.f.SyscallConn()
	if err != nil {
		p.close()
		return err
	}
	p.rc = rc
	return nil
}

// connect connects p to sa. On an error the connection attempt is over
// (refused...) or abandoned (timeout, canceled); release p either way.
func (p *probe) connect(ctx context.Context, sa *sockaddr) error {
	err := sysConnect(p.fd, sa)
	if err == syscall.EISCONN || err == syscall.EALREADY {
		// A socket still connected (or connecting) from an earlier check
		// must never answer for this one. release prevents it; should it
		// ever happen, start over on a new socket.
		_ = sysDisconnect(p.fd)
		family := p.family
		p.close()
		if err := p.openSocket(family); err != nil {
			return err
		}
		err = sysConnect(p.fd, sa)
	}
	if err == syscall.EINPROGRESS {
		// A second connect() reports the outcome without waiting: 0 when
		// established, the error (ECONNREFUSED...) when refused, EALREADY
		// while the handshake is still under way. Against a local or near
		// server the handshake has finished inside the first call.
		err = sysConnect(p.fd, sa)
	}
	if err == syscall.EALREADY || err == syscall.EINPROGRESS {
		deadline, ok := ctx.Deadline()
		if !ok {
			deadline = time.Now().Add(DefaultTimeout)
		}
		if werr := p.retry(ctx, true, deadline, func() bool {
			err = sysConnect(p.fd, sa)
			return err != syscall.EALREADY && err != syscall.EINPROGRESS
		}); werr != nil {
			return werr
		}
	}
	if err == syscall.EISCONN {
		err = nil
	}
	return err
}

// retry runs try, a non-blocking system call on p's socket, until it
// reports done, waiting in Go's poller between attempts, or until the
// deadline passes or ctx ends. try runs inside RawConn's callback, after
// the poller armed the wait: a readiness event that lands between a
// failed attempt and the wait is kept, not reset (running the call before
// RawConn, and only waiting inside it, lost such events and timed out
// against healthy servers).
func (p *probe) retry(ctx context.Context, write bool, deadline time.Time, try func() (done bool)) error {
	// ctx's deadline is already the caller's; cancellation (the
	// Scheduler stopping) interrupts the wait. guard keeps a late
	// interruption from reaching the probe's next check.
	var guard sync.Mutex
	over := false
	f := p.f
	stop := context.AfterFunc(ctx, func() {
		guard.Lock()
		defer guard.Unlock()
		if !over {
			p.intr.Store(true)
			_ = f.SetDeadline(time.Unix(1, 0))
		}
	})
	defer func() {
		if !stop() {
			guard.Lock()
			over = true
			guard.Unlock()
		}
	}()
	attempt := func(uintptr) bool { return p.intr.Load() || try() }
	var err error
	if write {
		if err = p.f.SetWriteDeadline(deadline); err == nil {
			err = p.rc.Write(attempt)
		}
	} else {
		if err = p.f.SetReadDeadline(deadline); err == nil {
			err = p.rc.Read(attempt)
		}
	}
	if err != nil && !p.intr.Load() && !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, os.ErrClosed) {
		// Go's poller refuses to wait on a descriptor once an epoll
		// event carried only EPOLLERR ("not pollable"), and it keeps that
		// mark until the next event for the descriptor. A reused probe
		// gets such an event from the connection it ended before this
		// one (connect(AF_UNSPEC) reports ECONNRESET), so the mark can
		// be stale: seen in about 3% of runs of an SMTP check sequence
		// on one socket. The socket's own state is the truth: wait for it
		// with poll(2) instead.
		err = p.pollWait(write, deadline, attempt)
	}
	if p.intr.Load() {
		return interrupted(ctx)
	}
	return err
}

// pollWaitSlice bounds one poll(2) so an interruption (intr) is seen soon.
const pollWaitSlice = 20 * time.Millisecond

// pollWait is retry's wait without Go's poller: poll(2) on p's socket, in
// slices, until attempt reports done, intr is set or the deadline passes.
// The thread blocks meanwhile; it serves only the rare wait that the
// runtime poller refused.
func (p *probe) pollWait(write bool, deadline time.Time, attempt func(uintptr) bool) error {
	events := int16(unix.POLLIN)
	if write {
		events = unix.POLLOUT
	}
	fds := []unix.PollFd{{Fd: int32(p.fd), Events: events}}
	for !attempt(0) {
		wait := pollWaitSlice
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return os.ErrDeadlineExceeded
			}
			wait = min(wait, left)
		}
		if _, err := unix.Poll(fds, int(wait.Milliseconds())+1); err != nil && err != unix.EINTR {
			return os.NewSyscallError("poll", err)
		}
	}
	return nil
}

// interrupted is the error of I/O on an interrupted probe: ctx's end (a
// timeout or a cancellation) when that was the cause, else the
// connection was closed under the check.
func interrupted(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return net.ErrClosed
}

// interrupt ends a wait under way; intr is set.
func (p *probe) interrupt() {
	if p.f != nil {
		_ = p.f.SetDeadline(time.Unix(1, 0))
	}
}

// release ends a check's use of p. After connect returned err, the socket
// may hold a connection (or a handshake under way) unless the kernel
// already reset it; that is ended with a RST. A worker's socket then stays
// open for its next check; any other is closed.
func (p *probe) release(err error) {
	if !p.open {
		return
	}
	var errno syscall.Errno
	// An errno from connect means the kernel gave up on the attempt and
	// left the socket unconnected. Anything else (success, a deadline,
	// an exchange after connecting) may leave a connection behind.
	live := err == nil || !errors.As(err, &errno)
	if (live && sysDisconnect(p.fd) != nil) || !p.keep {
		p.close()
	}
}

// close closes p's socket.
// Callers end any connection first: a plain close would leave a TIME_WAIT
// socket behind.
func (p *probe) close() {
	if !p.open {
		return
	}
	p.f.Close() // and fd with it
	p.open, p.fd, p.f, p.rc = false, -1, nil, nil
}

// sockaddr is a target's address in the kernel's layout, built once per
// checker so connect needs no allocation.
type sockaddr struct {
	family int
	n      uintptr
	b      [unsafe.Sizeof(syscall.RawSockaddrInet6{})]byte
}

func makeSockaddr(ap netip.AddrPort) sockaddr {
	var sa sockaddr
	port := ap.Port()
	if ap.Addr().Is4() {
		raw := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&sa.b))
		raw.Family = syscall.AF_INET
		raw.Addr = ap.Addr().As4()
		p := (*[2]byte)(unsafe.Pointer(&raw.Port))
		p[0], p[1] = byte(port>>8), byte(port)
		sa.family, sa.n = syscall.AF_INET, unsafe.Sizeof(*raw)
		return sa
	}
	raw := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&sa.b))
	raw.Family = syscall.AF_INET6
	raw.Addr = ap.Addr().As16()
	p := (*[2]byte)(unsafe.Pointer(&raw.Port))
	p[0], p[1] = byte(port>>8), byte(port)
	sa.family, sa.n = syscall.AF_INET6, unsafe.Sizeof(*raw)
	return sa
}

// makeZonedSockaddr is makeSockaddr for addresses that may carry an IPv6
// zone (an interface name or index), looked up at each check like a name.
func makeZonedSockaddr(ap netip.AddrPort) (sockaddr, error) {
	zone := ap.Addr().Zone()
	sa := makeSockaddr(ap)
	if zone == "" || !ap.Addr().Is6() {
		return sa, nil
	}
	idx, err := strconv.Atoi(zone)
	if err != nil {
		ifi, ierr := net.InterfaceByName(zone)
		if ierr != nil {
			return sa, ierr
		}
		idx = ifi.Index
	}
	(*syscall.RawSockaddrInet6)(unsafe.Pointer(&sa.b)).Scope_id = uint32(idx)
	return sa, nil
}

// sysConnect is connect(2) on a non-blocking socket. It never sleeps, so
// it is a raw system call: the goroutine keeps its P. (On loopback the
// call also runs the listener's side of the handshake, tens of µs, which
// would otherwise make the runtime hand the P to another thread.)
func sysConnect(fd int, sa *sockaddr) error {
	_, _, e := syscall.RawSyscall(syscall.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa.b)), sa.n)
	if e != 0 {
		return e
	}
	return nil
}

// sysDisconnect is connect(AF_UNSPEC): the kernel ends the connection (a
// RST when one was established) and the socket can connect again.
func sysDisconnect(fd int) error {
	var unspec syscall.RawSockaddr // Family 0: AF_UNSPEC
	_, _, e := syscall.RawSyscall(syscall.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&unspec)), unsafe.Sizeof(unspec))
	if e != 0 {
		return e
	}
	return nil
}

// rawConnect is the whole tcp check: connect and end the connection.
func rawConnect(ctx context.Context, sa *sockaddr) error {
	var tmp probe
	p, err := acquireProbe(ctx, sa.family, &tmp)
	if err != nil {
		return err
	}
	err = p.connect(ctx, sa)
	p.release(err)
	return err
}

// rawDial connects a probe to sa for an exchange.
func rawDial(ctx context.Context, sa *sockaddr, raddr *net.TCPAddr) (checkConn, error) {
	p, err := acquireProbe(ctx, sa.family, nil)
	if err != nil {
		return checkConn{}, err
	}
	if err := p.connect(ctx, sa); err != nil {
		p.release(err)
		return checkConn{}, err
	}
	pc := &probeConn{p: p, ctx: ctx, raddr: raddr}
	return checkConn{Conn: pc, pc: pc}, nil
}

// probeConn is a connected probe as a net.Conn: non-blocking reads and
// writes as raw system calls that wait for the socket through the probe,
// with deadlines kept here and handed to each wait.
//
// Close only interrupts pending and later I/O: crypto/tls calls it from a
// goroutine of its own when the handshake's context ends, possibly after
// the check has returned and the socket serves the next one; once the
// check is done with the connection (done), Close does nothing.
type probeConn struct {
	p     *probe
	ctx   context.Context // its end interrupts waits
	raddr *net.TCPAddr

	mu       sync.Mutex
	rdl, wdl time.Time
	detached bool
}

// done ends the check's use of the connection.
func (c *probeConn) done() {
	c.mu.Lock()
	c.detached = true
	c.mu.Unlock()
	c.p.release(nil)
}

func (c *probeConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.detached {
		c.p.intr.Store(true)
		c.p.interrupt()
	}
	return nil
}

func (c *probeConn) Read(b []byte) (int, error) {
	if c.p.intr.Load() {
		return 0, interrupted(c.ctx)
	}
	var n uintptr
	var e syscall.Errno
	read := func() bool {
		n, _, e = syscall.RawSyscall(syscall.SYS_READ, uintptr(c.p.fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
		return e != syscall.EAGAIN
	}
	if !read() {
		c.mu.Lock()
		dl := c.rdl
		c.mu.Unlock()
		if err := c.p.retry(c.ctx, false, dl, read); err != nil {
			return 0, err
		}
	}
	switch {
	case e != 0:
		return 0, os.NewSyscallError("read", e)
	case n == 0 && len(b) > 0:
		return 0, io.EOF
	}
	return int(n), nil
}

func (c *probeConn) Write(b []byte) (int, error) {
	written := 0
	var e syscall.Errno
	write := func() bool {
		for written < len(b) {
			rest := b[written:]
			var n uintptr
			n, _, e = syscall.RawSyscall(syscall.SYS_WRITE, uintptr(c.p.fd), uintptr(unsafe.Pointer(unsafe.SliceData(rest))), uintptr(len(rest)))
			if e != 0 {
				return e != syscall.EAGAIN
			}
			written += int(n)
		}
		return true
	}
	if c.p.intr.Load() {
		return 0, interrupted(c.ctx)
	}
	if !write() {
		c.mu.Lock()
		dl := c.wdl
		c.mu.Unlock()
		if err := c.p.retry(c.ctx, true, dl, write); err != nil {
			return written, err
		}
	}
	if e != 0 {
		return written, os.NewSyscallError("write", e)
	}
	return written, nil
}

func (c *probeConn) LocalAddr() net.Addr  { return &net.TCPAddr{} }
func (c *probeConn) RemoteAddr() net.Addr { return c.raddr }

func (c *probeConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.rdl, c.wdl = t, t
	c.mu.Unlock()
	return nil
}

func (c *probeConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.rdl = t
	c.mu.Unlock()
	return nil
}

func (c *probeConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.wdl = t
	c.mu.Unlock()
	return nil
}
