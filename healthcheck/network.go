package healthcheck

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"
)

// Layers chooses, layer by layer, the standard library instead of this
// package's own network code, which exists only to save CPU at thousands
// of checks a second: make bench-health measures each layer both ways in
// the same run, and a layer that does not pay for itself is removed (the
// figures are at the top of each layer's file). The zero value is the
// package's own code; the checker tests run against both. Outside Linux
// the standard library is always used.
type Layers struct {
	// StdConnect: net.Dialer connections instead of the workers' raw
	// sockets (connect_linux.go).
	StdConnect bool
	// StdHTTP: http.ReadResponse instead of the own response parser
	// (httpresp.go).
	StdHTTP bool
}

// effective is l with what this system cannot do replaced by the standard
// library.
func (l Layers) effective() Layers {
	if !haveRawSockets {
		l.StdConnect = true
	}
	return l
}

// target is where a network checker connects. There is one connect path
// for names and addresses: a name is resolved at every check (so a
// changed DNS answer is followed), an IP literal once at construction, and
// either way the check connects to addresses.
type target struct {
	host   string
	port   uint16
	hostPt string // host:port for messages
	lit    bool   // host is an IP literal: ap is the address
	ap     netip.AddrPort
	// sa is ap in the kernel's layout (raw path, literal without a
	// zone), built once so a check needs no allocation.
	sa    sockaddr
	saOK  bool
	std   bool // net.Dialer instead of raw sockets
	raddr *net.TCPAddr
	// mark, when not 0, is set as SO_MARK on every socket, and the
	// source address is the one the director uses toward via (the real
	// server behind the VIP), never the VIP itself: see Spec.ThroughVIP.
	mark uint32
	via  netip.Addr
}

func newTarget(host string, port int, l Layers) *target {
	l = l.effective()
	t := &target{host: host, port: uint16(port), hostPt: hostPort(host, port), std: l.StdConnect}
	if ap, ok := parseAddrPort(host, port); ok {
		t.lit, t.ap, t.raddr = true, ap, net.TCPAddrFromAddrPort(ap)
		if !t.std && ap.Addr().Zone() == "" {
			t.sa, t.saOK = makeSockaddr(ap), true
		}
	}
	return t
}

// eachAddr calls try with the target's addresses in order until one
// succeeds, and returns the last error. The whole check's deadline goes
// to each address in turn: a name whose first address hangs times out.
func (t *target) eachAddr(ctx context.Context, try func(ap netip.AddrPort) error) error {
	if t.lit {
		return try(t.ap)
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", t.host)
	if err != nil {
		return err
	}
	if len(ips) == 0 {
		return &net.DNSError{Err: "no address", Name: t.host, IsNotFound: true}
	}
	for _, ip := range ips {
		if err = try(netip.AddrPortFrom(ip.Unmap(), t.port)); err == nil || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// connect makes one connection and ends it at once: the tcp check.
func (t *target) connect(ctx context.Context) error {
	if t.saOK {
		return rawConnect(ctx, &t.sa)
	}
	return t.eachAddr(ctx, func(ap netip.AddrPort) error {
		if t.std {
			c, err := t.stdDial(ctx, ap)
			if err == nil {
				closeRST(c)
			}
			return err
		}
		sa, err := makeZonedSockaddr(ap)
		if err != nil {
			return err
		}
		return rawConnect(ctx, &sa)
	})
}

// dial opens a new TCP connection with the check's deadline on it; the
// caller ends it with done, which sends a RST. Checks never reuse a
// connection, so a dead server cannot hide behind a kept-alive one.
func (t *target) dial(ctx context.Context) (checkConn, error) {
	cc, err := t.connectTCP(ctx)
	if err == nil {
		if dl, ok := ctx.Deadline(); ok {
			_ = cc.SetDeadline(dl)
		}
	}
	return cc, err
}

func (t *target) connectTCP(ctx context.Context) (checkConn, error) {
	if t.saOK {
		return rawDial(ctx, &t.sa, t.raddr)
	}
	var cc checkConn
	err := t.eachAddr(ctx, func(ap netip.AddrPort) error {
		if t.std {
			c, err := t.stdDial(ctx, ap)
			if err == nil {
				// The deadline is on the connection; a cancellation
				// (the Scheduler stopping) must end its I/O too.
				stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
				cc = checkConn{Conn: c, stop: stop}
			}
			return err
		}
		sa, err := makeZonedSockaddr(ap)
		if err != nil {
			return err
		}
		cc, err = rawDial(ctx, &sa, net.TCPAddrFromAddrPort(ap))
		return err
	})
	return cc, err
}

// newMarkedTarget is a target reached through the VIP: host:port is the
// VIP's, mark the firewall mark of the IPVS service that sends it to via.
// Marked sockets take the standard library's connect: the raw path pools
// its sockets across targets.
func newMarkedTarget(vip string, port int, mark uint32, via netip.Addr, l Layers) *target {
	l.StdConnect = true
	t := newTarget(vip, port, l)
	t.mark, t.via = mark, via
	return t
}

// stdDial is the standard library's connect.
func (t *target) stdDial(ctx context.Context, ap netip.AddrPort) (*net.TCPConn, error) {
	d := net.Dialer{KeepAlive: -1} // a check's connection lives for one exchange
	if t.mark == 0 {
		return d.DialTCP(ctx, "tcp", netip.AddrPort{}, ap)
	}
	src, err := sourceToward(t.via)
	if err != nil {
		return nil, err
	}
	d.Control = markControl(t.mark)
	return d.DialTCP(ctx, "tcp", netip.AddrPortFrom(src, 0), ap)
}

// dialUDP opens a connected UDP socket to ap (marked like stdDial).
func (t *target) dialUDP(ap netip.AddrPort) (*net.UDPConn, error) {
	if t.mark == 0 {
		return net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(ap))
	}
	src, err := sourceToward(t.via)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Control: markControl(t.mark), LocalAddr: net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0))}
	c, err := d.Dial("udp", ap.String())
	if err != nil {
		return nil, err
	}
	return c.(*net.UDPConn), nil
}

// sourceToward is the director's address on its route to dst: a
// connected UDP socket is routed without sending anything. A check
// through a VIP the director holds would otherwise leave from the VIP,
// and the real server, which holds it too, would answer itself.
func sourceToward(dst netip.Addr) (netip.Addr, error) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 9)))
	if err != nil {
		return netip.Addr{}, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}

// closeRST closes c with a RST: no TIME_WAIT left behind on either side.
func closeRST(c *net.TCPConn) {
	_ = c.SetLinger(0)
	_ = c.Close()
}

// checkConn is one check's connection for checkers that exchange data.
// The checker calls done when finished with it.
type checkConn struct {
	net.Conn
	pc   *probeConn  // nil: a net.Dialer connection
	stop func() bool // a net.Dialer connection's cancellation
}

func (c checkConn) done() {
	if c.pc == nil {
		c.stop()
		closeRST(c.Conn.(*net.TCPConn))
		return
	}
	c.pc.done()
}

var errNoRawSockets = errors.New("raw-socket checks need Linux")
