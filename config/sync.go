package config

import (
	"net/netip"
	"time"
)

// SyncSettings is [sync] with every default resolved, for the director.
type SyncSettings struct {
	Interface     string
	ID            int
	Group         netip.Addr // IPv4, or IPv6 when group6 is set
	Port          int
	TTL           int
	MaxPacketLen  int // 0 = from the interface MTU
	RefreshPeriod time.Duration
	WarmUp        time.Duration
	HandoverHold  time.Duration
	TakeoverQuiet time.Duration
}

// SyncSettings returns the resolved connection-sync settings of a parsed
// (defaulted, validated) configuration and whether sync is on.
func (c *Config) SyncSettings() (SyncSettings, bool) {
	s := c.Sync
	if s == nil || s.Enabled == nil || !*s.Enabled {
		return SyncSettings{}, false
	}
	out := SyncSettings{
		Interface: s.Interface, Port: s.Port, TTL: s.TTL, MaxPacketLen: s.MaxPacketLen,
		RefreshPeriod: s.RefreshPeriod.Duration, WarmUp: s.WarmUp.Duration,
		HandoverHold: s.HandoverHold.Duration, TakeoverQuiet: s.TakeoverQuiet.Duration,
	}
	if s.ID != nil {
		out.ID = *s.ID
	}
	group := s.Group
	if s.Group6 != "" {
		group = s.Group6
	}
	out.Group, _ = netip.ParseAddr(group) // validated
	return out, true
}
