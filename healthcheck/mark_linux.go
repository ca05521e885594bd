package healthcheck

import (
	"os"
	"syscall"
)

// markControl sets SO_MARK on a socket before it connects (needs
// CAP_NET_ADMIN): IPVS matches the mark in LOCAL_OUT and sends the
// packet to the one real server of the mark's service.
func markControl(mark uint32) func(network, address string, rc syscall.RawConn) error {
	return func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_MARK, int(mark))
		}); err != nil {
			return err
		}
		if serr != nil {
			return os.NewSyscallError("setsockopt SO_MARK", serr)
		}
		return nil
	}
}
