//go:build !linux

package vrrp

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
)

// errNotLinux is what every kernel call fails with outside Linux: VRRP's
// raw sockets, the address table (rtnetlink) and the link watch are Linux
// interfaces. The codec, the state machine and the configuration build
// anywhere, so the packages that import vrrp do too.
var errNotLinux = errors.New("vrrp: VRRP and VIPs need Linux")

// newLinuxSystem returns a system whose every call fails: Run stops at
// once with errNotLinux.
func newLinuxSystem(params, *slog.Logger) system { return noSystem{} }

func openStaticSystem(string, *slog.Logger) (system, error) { return nil, errNotLinux }

type noSystem struct{}

func (noSystem) open() (transport, error)           { return nil, errNotLinux }
func (noSystem) localAddr() (netip.Addr, error)     { return netip.Addr{}, errNotLinux }
func (noSystem) addVIPs([]netip.Addr) error         { return errNotLinux }
func (noSystem) delVIPs([]netip.Addr) (int, error)  { return 0, errNotLinux }
func (noSystem) announce([]netip.Addr) (int, error) { return 0, errNotLinux }
func (noSystem) close()                             {}
func (noSystem) watchLinks(context.Context, []string) (map[string]bool, <-chan linkEvent, error) {
	return nil, nil, errNotLinux
}
