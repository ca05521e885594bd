package director

import (
	"log/slog"
	"net/netip"
	"slices"

	"lbd/config"
	"lbd/vrrp"
)

// vipHolder keeps VIPs on an interface without an election; tests use a
// fake.
type vipHolder interface {
	Set(vips []netip.Addr) error
	Close()
}

func openStatic(iface string, log *slog.Logger) (vipHolder, error) {
	return vrrp.OpenStatic(iface, log)
}

// configureStaticVIPs makes a director without [vrrp] hold its virtual
// servers' VIPs on the global interface, as piranha's pulse does for a lone
// director. With [vrrp], the elected master holds them instead. d.mu is
// held.
func (d *Director) configureStaticVIPs(cfg *config.Config) {
	if !d.opt.HoldVIPs || cfg.VRRP != nil || cfg.BGP != nil || cfg.Global.Interface == "" || len(cfg.VirtualServers) == 0 {
		if d.static != nil {
			// VRRP takes over (it cleans up stale VIPs at start) or
			// there is nothing to hold: leave the addresses as they are.
			d.static.Close()
			d.static, d.staticIface = nil, ""
		}
		return
	}
	var vips []netip.Addr
	for _, s := range cfg.VIPs() {
		if a, err := parseVIP(s); err == nil {
			vips = append(vips, a)
		}
	}
	if d.static != nil && d.staticIface != cfg.Global.Interface {
		d.static.Close()
		d.static = nil
	}
	if d.static == nil {
		h, err := d.opt.newStatic(cfg.Global.Interface, d.log.With("part", "vips"))
		if err != nil {
			d.log.Error("cannot hold the VIPs", "interface", cfg.Global.Interface, "err", err)
			d.events.add("vips", cfg.Global.Interface, "cannot hold the VIPs: "+err.Error())
			return
		}
		d.static, d.staticIface, d.staticVIPs = h, cfg.Global.Interface, nil
	}
	if slices.Equal(vips, d.staticVIPs) {
		return
	}
	if err := d.static.Set(vips); err != nil {
		d.log.Error("cannot hold the VIPs", "err", err)
		d.events.add("vips", cfg.Global.Interface, err.Error())
		return
	}
	d.staticVIPs = vips
	d.log.Info("holding VIPs without VRRP", "interface", cfg.Global.Interface, "vips", vips)
}

// parseVIP reads an address with an optional prefix length.
func parseVIP(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err == nil {
		return a, nil
	}
	p, perr := netip.ParsePrefix(s)
	if perr != nil {
		return netip.Addr{}, err
	}
	return p.Addr(), nil
}
