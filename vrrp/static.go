package vrrp

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
)

// Static holds VIPs on an interface without an election: a single director
// (no [vrrp]) owns its VIPs all the time. It adds them the way an elected
// master does (/32 or /128, IPv6 without DAD), announces new ones with
// gratuitous ARP / unsolicited NA, and removes only the full-length entries
// it was asked to drop.
type Static struct {
	iface string
	sys   system
	held  []netip.Addr
}

// OpenStatic opens the interface's address table.
func OpenStatic(iface string, log *slog.Logger) (*Static, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sys, err := openStaticSystem(iface, log)
	if err != nil {
		return nil, fmt.Errorf("vrrp: static VIPs on %s: %w", iface, err)
	}
	return &Static{iface: iface, sys: sys}, nil
}

// Set makes vips the held set: missing ones are added and announced, ones
// held before and no longer wanted are removed.
func (s *Static) Set(vips []netip.Addr) error {
	var added, dropped []netip.Addr
	for _, v := range vips {
		if !slices.Contains(s.held, v) {
			added = append(added, v)
		}
	}
	for _, v := range s.held {
		if !slices.Contains(vips, v) {
			dropped = append(dropped, v)
		}
	}
	var errs []error
	if len(dropped) > 0 {
		if _, err := s.sys.delVIPs(dropped); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.sys.addVIPs(vips); err != nil {
		errs = append(errs, err)
	}
	if len(added) > 0 {
		if _, err := s.sys.announce(added); err != nil {
			errs = append(errs, err)
		}
	}
	s.held = slices.Clone(vips)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("vrrp: static VIPs on %s: %w", s.iface, err)
	}
	return nil
}

// Close releases the interface; the VIPs stay, like the IPVS table, so a
// restarted lbd takes over without an outage.
func (s *Static) Close() { s.sys.close() }
