//go:build !linux

package healthcheck

import (
	"context"
	"net"
	"net/netip"
)

// Outside Linux there are no raw-socket checks: Layers.effective picks the
// standard library's connect, so these are never reached; they fail
// clearly if they ever are.

const haveRawSockets = false

type sockaddr struct{}

func makeSockaddr(netip.AddrPort) sockaddr { return sockaddr{} }

func makeZonedSockaddr(netip.AddrPort) (sockaddr, error) { return sockaddr{}, errNoRawSockets }

func rawConnect(context.Context, *sockaddr) error { return errNoRawSockets }

func rawDial(context.Context, *sockaddr, *net.TCPAddr) (checkConn, error) {
	return checkConn{}, errNoRawSockets
}

type probeConn struct{}

func (*probeConn) done() {}

type probes struct{}

func (*probes) close() {}

func withProbes(ctx context.Context, _ *probes) context.Context { return ctx }
