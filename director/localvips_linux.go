package director

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// loVIPs holds VIPs on the loopback device: local, so IPVS takes their
// traffic, and never answered for by ARP or ND on another interface
// (with arp_ignore=1; IPv6 answers only for the receiving interface's
// addresses). It is how a BGP director holds its VIPs.
type loVIPs struct {
	nl   *netlink.Handle
	link netlink.Link
	held []netip.Addr
}

func openLoopbackVIPs() (vipHolder, error) {
	nl, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	link, err := nl.LinkByName("lo")
	if err != nil {
		nl.Close()
		return nil, fmt.Errorf("loopback: %w", err)
	}
	return &loVIPs{nl: nl, link: link}, nil
}

func hostIPNet(a netip.Addr) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(a.BitLen(), a.BitLen())}
}

// Set adds the missing VIPs (/32, /128) and removes the ones it added
// that are no longer wanted.
func (l *loVIPs) Set(vips []netip.Addr) error {
	var errs []error
	for _, v := range l.held {
		if !slices.Contains(vips, v) {
			if err := l.nl.AddrDel(l.link, &netlink.Addr{IPNet: hostIPNet(v)}); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				errs = append(errs, fmt.Errorf("remove %v from lo: %w", v, err))
			}
		}
	}
	for _, v := range vips {
		a := &netlink.Addr{IPNet: hostIPNet(v)}
		if v.Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := l.nl.AddrReplace(l.link, a); err != nil {
			errs = append(errs, fmt.Errorf("add %v to lo: %w", v, err))
		}
	}
	l.held = slices.Clone(vips)
	return errors.Join(errs...)
}

// Close keeps the addresses (like the IPVS table, for a restart without
// an outage) and releases the handle.
func (l *loVIPs) Close() { l.nl.Close() }
