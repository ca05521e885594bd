package healthcheck

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"syscall"
	"time"
)

// connectCheck opens a TCP connection to ap and closes it with a RST; it is
// the whole tcp check for IP targets.
//
// It talks to the socket API directly instead of through net.Dialer, which
// costs a dozen system calls per connection (bind, getsockname,
// getpeername, TCP_NODELAY, epoll add and delete...) where a connect check
// needs five. At thousands of checks per second, system calls are most of
// the director's health-check CPU. When the handshake completes while
// connect() runs (a local or very near server), no poller is involved at
// all; otherwise the socket is handed to Go's poller to wait.
func connectCheck(ctx context.Context, ap netip.AddrPort) error {
	sa, family := sockaddr(ap)
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
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
		closeRST(fd)
		return nil
	case syscall.EALREADY, syscall.EINPROGRESS:
		return waitConnect(ctx, fd, sa)
	}
	syscall.Close(fd)
	return err
}

// waitConnect waits in Go's poller for the handshake on fd to end.
func waitConnect(ctx context.Context, fd int, sa syscall.Sockaddr) error {
	f := os.NewFile(uintptr(fd), "") // non-blocking, so registered with the poller
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return err
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
	if werr == nil && (cerr == nil || cerr == syscall.EISCONN) {
		_ = rc.Control(func(fd uintptr) { setLingerZero(int(fd)) })
		f.Close()
		return nil
	}
	f.Close()
	if werr != nil {
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return ctx.Err()
		}
		return werr
	}
	return cerr
}

func sockaddr(ap netip.AddrPort) (syscall.Sockaddr, int) {
	if ap.Addr().Is4() {
		return &syscall.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}, syscall.AF_INET
	}
	return &syscall.SockaddrInet6{Addr: ap.Addr().As16(), Port: int(ap.Port())}, syscall.AF_INET6
}

func setLingerZero(fd int) {
	_ = syscall.SetsockoptLinger(fd, syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 0})
}

// closeRST closes with a RST; see closeHard.
func closeRST(fd int) {
	setLingerZero(fd)
	syscall.Close(fd)
}
