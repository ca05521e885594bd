package healthcheck

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
)

// Checks talk to the socket API directly instead of through net.Dialer,
// which costs a dozen system calls and a park in the poller per connection
// (bind-free connect, getsockname, getpeername, TCP_NODELAY, SO_ERROR, epoll
// add and delete...) where a connect check needs five. At thousands of
// checks per second, system calls are most of the director's health-check
// CPU. When the handshake completes inside connect() (a local or very near
// server), the poller is not involved at all.

// connectFD opens a TCP connection to ap. It returns the socket either as
// a bare non-blocking fd (f == nil: the handshake finished inside
// connect()) or as an *os.File registered with Go's poller (it had to
// wait). On error nothing is left open.
func connectFD(ctx context.Context, ap netip.AddrPort) (fd int, f *os.File, err error) {
	sa, family := sockaddr(ap)
	fd, err = syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, nil, os.NewSyscallError("socket", err)
	}
	err = syscall.Connect(fd, sa)
	if err == syscall.EINPROGRESS {
		// A second connect() reports the outcome without waiting: 0 or
		// EISCONN when established, the error (ECONNREFUSED...) when
		// refused, EALREADY while the handshake is still under way.
		err = syscall.Connect(fd, sa)
	}
	switch err {
	case nil, syscall.EISCONN:
		return fd, nil, nil
	case syscall.EALREADY, syscall.EINPROGRESS:
		f, err = waitConnect(ctx, fd, sa)
		return -1, f, err
	}
	syscall.Close(fd)
	return -1, nil, err
}

// waitConnect waits in Go's poller for the handshake on fd to end.
func waitConnect(ctx context.Context, fd int, sa syscall.Sockaddr) (*os.File, error) {
	f := os.NewFile(uintptr(fd), "") // non-blocking, so registered with the poller
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(DefaultTimeout)
	}
	_ = f.SetWriteDeadline(dl)
	// Run stopping cancels the context before the deadline.
	stop := context.AfterFunc(ctx, func() { _ = f.SetWriteDeadline(time.Unix(1, 0)) })
	var cerr error
	werr := rc.Write(func(fd uintptr) bool {
		cerr = syscall.Connect(int(fd), sa)
		return cerr != syscall.EALREADY && cerr != syscall.EINPROGRESS
	})
	stop()
	_ = f.SetWriteDeadline(time.Time{})
	switch {
	case werr == nil && (cerr == nil || cerr == syscall.EISCONN):
		return f, nil
	case werr == nil:
		f.Close()
		return nil, cerr
	case ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded):
		f.Close()
		return nil, ctx.Err()
	}
	f.Close()
	return nil, werr
}

// connectCheck is the whole tcp check for IP targets: connect, then close
// with a RST.
func connectCheck(ctx context.Context, ap netip.AddrPort) error {
	fd, f, err := connectFD(ctx, ap)
	if err != nil {
		return err
	}
	if f != nil {
		closeFileRST(f)
		return nil
	}
	setLingerZero(fd)
	return syscall.Close(fd)
}

// dialConn connects to ap and returns the connection as a net.Conn whose
// Close sends a RST.
func dialConn(ctx context.Context, ap netip.AddrPort) (net.Conn, error) {
	fd, f, err := connectFD(ctx, ap)
	if err != nil {
		return nil, err
	}
	if f == nil {
		f = os.NewFile(uintptr(fd), "") // register with the poller for the exchange
	}
	return &fileConn{f: f, raddr: net.TCPAddrFromAddrPort(ap)}, nil
}

// fileConn is a connected TCP socket used through *os.File, which has
// deadlines and the poller but none of net.Conn's per-connection setup.
type fileConn struct {
	f     *os.File
	raddr *net.TCPAddr
}

func (c *fileConn) Read(b []byte) (int, error)         { return c.f.Read(b) }
func (c *fileConn) Write(b []byte) (int, error)        { return c.f.Write(b) }
func (c *fileConn) Close() error                       { closeFileRST(c.f); return nil }
func (c *fileConn) LocalAddr() net.Addr                { return &net.TCPAddr{} }
func (c *fileConn) RemoteAddr() net.Addr               { return c.raddr }
func (c *fileConn) SetDeadline(t time.Time) error      { return c.f.SetDeadline(t) }
func (c *fileConn) SetReadDeadline(t time.Time) error  { return c.f.SetReadDeadline(t) }
func (c *fileConn) SetWriteDeadline(t time.Time) error { return c.f.SetWriteDeadline(t) }

// lingerConn is a net.Dialer connection (host-name targets) whose Close
// sends a RST.
type lingerConn struct{ *net.TCPConn }

func (c lingerConn) Close() error {
	_ = c.SetLinger(0)
	return c.TCPConn.Close()
}

func sockaddr(ap netip.AddrPort) (syscall.Sockaddr, int) {
	if ap.Addr().Is4() {
		return &syscall.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}, syscall.AF_INET
	}
	return &syscall.SockaddrInet6{Addr: ap.Addr().As16(), Port: int(ap.Port())}, syscall.AF_INET6
}

// Checks close with a RST (SO_LINGER 0): at thousands of checks per second,
// orderly closes would leave a TIME_WAIT socket per check on the director.
func setLingerZero(fd int) {
	_ = syscall.SetsockoptLinger(fd, syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 0})
}

func closeFileRST(f *os.File) {
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { setLingerZero(int(fd)) })
	}
	f.Close()
}
