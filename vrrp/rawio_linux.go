package vrrp

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawIO sends and receives VRRP on a raw IP socket with sendmsg and
// recvmsg on buffers it owns, so an advert sent or received costs no
// allocation (x/net's ipv4 and ipv6 control messages allocate at every
// call). The socket stays the runtime's: a receive waits in its poller.
// send is for one goroutine (Run's loop), recv for one (the reader) and
// pending for one (the loop); each has its own scratch.
type rawIO struct {
	rc      syscall.RawConn
	v6      bool
	ifindex int

	tx struct {
		b   []byte
		oob []byte
		to4 unix.SockaddrInet4
		to6 unix.SockaddrInet6
		to  unix.Sockaddr
		err error
		fn  func(fd uintptr) bool
	}
	rx, pend rawRx
}

// rawRx is one receiver's recvmsg scratch.
type rawRx struct {
	msg  unix.Msghdr
	iov  unix.Iovec
	name unix.RawSockaddrInet6 // room for either family
	oob  [256]byte
	n    int
	oobn int
	err  error
	fn   func(fd uintptr) bool // for RawConn.Read: false waits for data
	ctl  func(fd uintptr)      // for RawConn.Control: one try
}

func newRawIO(c net.PacketConn, v6 bool, ifindex int) (*rawIO, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, errors.New("raw socket without a file descriptor")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	r := &rawIO{rc: rc, v6: v6, ifindex: ifindex}
	// Packet info (interface and source) for every send, filled in by send.
	if v6 {
		r.tx.oob = make([]byte, unix.CmsgSpace(unix.SizeofInet6Pktinfo)+unix.CmsgSpace(4))
		h := (*unix.Cmsghdr)(unsafe.Pointer(&r.tx.oob[0]))
		h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
		h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
		off := unix.CmsgSpace(unix.SizeofInet6Pktinfo)
		h = (*unix.Cmsghdr)(unsafe.Pointer(&r.tx.oob[off]))
		h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT
		h.SetLen(unix.CmsgLen(4))
		*(*int32)(unsafe.Pointer(&r.tx.oob[off+unix.CmsgLen(0)])) = 255
		r.tx.to = &r.tx.to6
	} else {
		r.tx.oob = make([]byte, unix.CmsgSpace(unix.SizeofInet4Pktinfo))
		h := (*unix.Cmsghdr)(unsafe.Pointer(&r.tx.oob[0]))
		h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
		h.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
		r.tx.to = &r.tx.to4
	}
	r.tx.fn = func(fd uintptr) bool {
		_, r.tx.err = unix.SendmsgN(int(fd), r.tx.b, r.tx.oob, r.tx.to, 0)
		return r.tx.err != unix.EAGAIN
	}
	for _, x := range []*rawRx{&r.rx, &r.pend} {
		x.fn = func(fd uintptr) bool {
			x.recvmsg(fd)
			return x.err != unix.EAGAIN
		}
		x.ctl = func(fd uintptr) { x.recvmsg(fd) }
	}
	return r, nil
}

// send sends b from src to dst out of the instance's interface.
func (r *rawIO) send(b []byte, src, dst netip.Addr) error {
	r.tx.b = b
	data := r.tx.oob[unix.CmsgLen(0):]
	if r.v6 {
		pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&data[0]))
		pi.Addr, pi.Ifindex = src.As16(), uint32(r.ifindex)
		r.tx.to6.Addr = dst.As16()
		r.tx.to6.ZoneId = 0
		if dst.IsLinkLocalUnicast() || dst.IsLinkLocalMulticast() || dst.IsInterfaceLocalMulticast() {
			r.tx.to6.ZoneId = uint32(r.ifindex)
		}
	} else {
		pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0]))
		pi.Ifindex, pi.Spec_dst, pi.Addr = int32(r.ifindex), src.As4(), [4]byte{}
		r.tx.to4.Addr = dst.As4()
	}
	if err := r.rc.Write(r.tx.fn); err != nil {
		return err
	}
	return r.tx.err
}

// recvmsg reads one message into the buffer set in iov (non-blocking).
func (x *rawRx) recvmsg(fd uintptr) {
	x.msg.Name = (*byte)(unsafe.Pointer(&x.name))
	x.msg.Namelen = uint32(unsafe.Sizeof(x.name))
	x.msg.Iov = &x.iov
	x.msg.SetIovlen(1)
	x.msg.Control = &x.oob[0]
	x.msg.SetControllen(len(x.oob))
	n, _, e := unix.Syscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&x.msg)), unix.MSG_DONTWAIT)
	x.err = nil
	if e != 0 {
		x.err = e
		return
	}
	x.n, x.oobn = int(n), int(x.msg.Controllen)
}

// recv waits for the next message (block) or takes one already queued
// (!block: ok false when none).
func (r *rawIO) recv(x *rawRx, b []byte, block bool) (int, rxPacket, bool, error) {
	if len(b) == 0 {
		return 0, rxPacket{}, false, errors.New("no room")
	}
	x.iov.Base = &b[0]
	x.iov.SetLen(len(b))
	var err error
	if block {
		err = r.rc.Read(x.fn)
	} else {
		err = r.rc.Control(x.ctl)
	}
	x.iov.Base = nil // keep no pointer into b
	if err != nil {
		if errors.Is(err, net.ErrClosed) {
			err = errClosed
		}
		return 0, rxPacket{}, false, err
	}
	if x.err == unix.EAGAIN || x.err == unix.EINTR {
		return 0, rxPacket{}, false, nil
	}
	if x.err != nil {
		return 0, rxPacket{}, false, x.err
	}
	n := min(x.n, len(b))
	p := rxPacket{ttl: -1}
	if r.v6 {
		p.src = netip.AddrFrom16(x.name.Addr)
	} else {
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&x.name))
		p.src = netip.AddrFrom4(sa.Addr)
		// A raw IPv4 socket returns the IP header too.
		if n < 20 || b[0]>>4 != 4 {
			return 0, rxPacket{}, false, nil
		}
		hl := int(b[0]&0x0f) << 2
		if hl < 20 || hl > n {
			return 0, rxPacket{}, false, nil
		}
		n = copy(b, b[hl:n])
	}
	oob := x.oob[:min(x.oobn, len(x.oob))]
	for off := 0; off+unix.SizeofCmsghdr <= len(oob); {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[off]))
		l := int(h.Len)
		if l < unix.CmsgLen(0) || off+l > len(oob) {
			break
		}
		data := oob[off+unix.CmsgLen(0) : off+l]
		switch {
		case !r.v6 && h.Level == unix.IPPROTO_IP && h.Type == unix.IP_TTL && len(data) >= 4:
			p.ttl = int(*(*int32)(unsafe.Pointer(&data[0])))
		case !r.v6 && h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0]))
			p.dst, p.ifOK = netip.AddrFrom4(pi.Addr), int(pi.Ifindex) == r.ifindex
		case r.v6 && h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_HOPLIMIT && len(data) >= 4:
			p.ttl = int(*(*int32)(unsafe.Pointer(&data[0])))
		case r.v6 && h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&data[0]))
			p.dst, p.ifOK = netip.AddrFrom16(pi.Addr), int(pi.Ifindex) == r.ifindex
		}
		off += unix.CmsgSpace(l - unix.CmsgLen(0))
	}
	return n, p, true, nil
}
