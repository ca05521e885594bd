package vrrp

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"
)

// Defaults applied by New to zero fields where zero is not a setting. lbd's
// director passes config's resolved [vrrp] (none of these is ever zero
// there), so they only serve other callers and tests; the director's
// agreement test keeps them equal to config's defaults. GARPCount has none:
// zero is a setting (no burst).
const (
	DefaultAdvertInterval = time.Second
	DefaultVersion        = 3
	DefaultGARPInterval   = 100 * time.Millisecond
	DefaultNotifyTimeout  = 10 * time.Second
	// DefaultLearnedIntervalFactor: MaxLearnedInterval is this many advert
	// intervals unless set.
	DefaultLearnedIntervalFactor = 3
	// MaxRTPriority is the highest SCHED_FIFO priority Linux has.
	MaxRTPriority = 99
)

// validate checks cfg, fills its defaults in place and derives params.
func validate(cfg *Config) (params, error) {
	var p params
	where := fmt.Sprintf("vrrp: vrid %d on %s", cfg.VRID, cfg.Interface)
	bad := func(format string, a ...any) (params, error) {
		return params{}, fmt.Errorf("%s: %s", where, fmt.Sprintf(format, a...))
	}
	if cfg.VRID < 1 || cfg.VRID > 255 {
		return bad("vrid %d out of range 1..255", cfg.VRID)
	}
	if cfg.Priority < 1 || cfg.Priority > 255 {
		return bad("priority %d out of range 1..255 (0 is reserved for resigning)", cfg.Priority)
	}
	if cfg.Interface == "" {
		return bad("no interface")
	}
	if cfg.Version == 0 {
		cfg.Version = DefaultVersion
	}
	if cfg.AdvertInterval == 0 {
		cfg.AdvertInterval = DefaultAdvertInterval
	}
	switch cfg.Version {
	case 3:
		if cfg.AdvertInterval < 10*time.Millisecond || cfg.AdvertInterval > maxV3Centis*10*time.Millisecond ||
			cfg.AdvertInterval%(10*time.Millisecond) != 0 {
			return bad("advert interval %v: VRRPv3 takes 10ms..40.95s in 10ms steps", cfg.AdvertInterval)
		}
	case 2:
		if cfg.AdvertInterval < time.Second || cfg.AdvertInterval > 255*time.Second ||
			cfg.AdvertInterval%time.Second != 0 {
			return bad("advert interval %v: VRRPv2 takes whole seconds 1s..255s", cfg.AdvertInterval)
		}
	default:
		return bad("version %d (want 2 or 3)", cfg.Version)
	}
	if len(cfg.VIPs) == 0 {
		return bad("no VIPs")
	}
	if len(cfg.VIPs) > 255 {
		return bad("%d VIPs (an advert carries at most 255)", len(cfg.VIPs))
	}
	v6 := cfg.VIPs[0].Is6() && !cfg.VIPs[0].Is4In6()
	var vips, advert []netip.Addr
	for _, v := range cfg.VIPs {
		if !v.IsValid() || v.IsUnspecified() || v.IsMulticast() || v.IsLoopback() {
			return bad("VIP %v is not a usable unicast address", v)
		}
		v = v.Unmap().WithZone("")
		if slices.Contains(vips, v) {
			return bad("VIP %v listed twice", v)
		}
		vips = append(vips, v)
		if v.Is6() == v6 {
			advert = append(advert, v)
		}
	}
	if cfg.Version == 2 && v6 {
		return bad("VRRPv2 is IPv4 only, but the first VIP %v is IPv6", cfg.VIPs[0])
	}
	var peers []netip.Addr
	for _, a := range cfg.UnicastPeers {
		a = a.Unmap()
		if !a.IsValid() || a.Is6() != v6 {
			return bad("unicast peer %v is not an address of the advert family (that of the first VIP)", a)
		}
		peers = append(peers, a.WithZone(""))
	}
	if len(cfg.AllowedPeers) > 0 && len(peers) > 0 {
		return bad("allowed peers are for multicast mode; with unicast peers, those are the allowed sources")
	}
	for _, a := range cfg.AllowedPeers {
		a = a.Unmap()
		if !a.IsValid() || a.Is6() != v6 {
			return bad("allowed peer %v is not an address of the advert family (that of the first VIP)", a)
		}
		peers = append(peers, a.WithZone(""))
	}
	if cfg.MaxLearnedInterval == 0 {
		// At most what v3 can advertise, at least our own interval.
		cfg.MaxLearnedInterval = min(DefaultLearnedIntervalFactor*cfg.AdvertInterval, max(maxV3Centis*10*time.Millisecond, cfg.AdvertInterval))
	}
	if cfg.MaxLearnedInterval < cfg.AdvertInterval {
		return bad("max learned interval %v is below the advert interval %v", cfg.MaxLearnedInterval, cfg.AdvertInterval)
	}
	src := cfg.UnicastSource.Unmap().WithZone("")
	if src.IsValid() && src.Is6() != v6 {
		return bad("unicast source %v is not of the advert family", src)
	}
	var authData [v2AuthLen]byte
	authType := uint8(AuthNone)
	if cfg.AuthPass != "" {
		if cfg.Version != 2 {
			return bad("auth_pass exists only in VRRPv2 (RFC 5798 removed authentication)")
		}
		if len(cfg.AuthPass) > v2AuthLen {
			return bad("auth_pass longer than %d bytes", v2AuthLen)
		}
		copy(authData[:], cfg.AuthPass)
		authType = AuthSimple
	}
	for _, t := range cfg.TrackInterfaces {
		if t.Name == "" {
			return bad("track interface without a name")
		}
		if t.Weight < 0 || t.Weight > 254 {
			return bad("track interface %s: weight %d out of range 0..254", t.Name, t.Weight)
		}
	}
	if cfg.RTPriority < 0 || cfg.RTPriority > MaxRTPriority {
		return bad("rt priority %d out of range 0..%d (0: ordinary scheduling)", cfg.RTPriority, MaxRTPriority)
	}
	if cfg.PreemptDelay < 0 {
		return bad("negative preempt delay")
	}
	if cfg.GARPCount < 0 || cfg.GARPInterval < 0 || cfg.GARPRefresh < 0 || cfg.NotifyTimeout < 0 {
		return bad("negative GARP count, interval, refresh or notify timeout")
	}
	if cfg.GARPInterval == 0 {
		cfg.GARPInterval = DefaultGARPInterval
	}
	if cfg.NotifyTimeout == 0 {
		cfg.NotifyTimeout = DefaultNotifyTimeout
	}
	if cfg.Name == "" {
		cfg.Name = fmt.Sprintf("vrid%d", cfg.VRID)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p = params{
		name: cfg.Name, vrid: uint8(cfg.VRID), version: cfg.Version, priority: cfg.Priority,
		interval: cfg.AdvertInterval, iface: cfg.Interface, v6: v6,
		advertVIPs: advert, vips: vips, peers: peers, unicastSrc: src,
		unicast: len(cfg.UnicastPeers) > 0, maxLearned: cfg.MaxLearnedInterval,
		preempt: cfg.Preempt, preemptDelay: cfg.PreemptDelay,
		authType: authType, authData: authData,
		tracks:    slices.Clone(cfg.TrackInterfaces),
		garpCount: cfg.GARPCount, garpInterval: cfg.GARPInterval, garpRefresh: cfg.GARPRefresh,
	}
	return p, nil
}
