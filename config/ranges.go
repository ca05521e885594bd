package config

import "time"

// Ranges of the settings that a library lbd drives checks as well: the
// VRRP ones are protocol facts (RFC 5798, RFC 3768) that the vrrp package
// enforces on its own, the weight is IPVS's. config decides them for lbd:
// validate checks against these constants, and the director's agreement
// test probes both sides of every bound against config.Parse and the
// library, so the two cannot drift apart.
const (
	MinVRID, MaxVRID         = 1, 255
	MinPriority, MaxPriority = 1, 255 // 255 = address owner; 0 means resigning, on the wire only
	// MaxTrackWeight bounds track_interface.weight and service_penalty
	// (0..MaxTrackWeight): a priority lowered by it stays at least 1.
	MaxTrackWeight = 254
	// MaxRTPriority bounds rt_priority (0..MaxRTPriority): Linux's
	// highest SCHED_FIFO priority; 0 is ordinary scheduling.
	MaxRTPriority = 99
	// MaxAuthPassLen is VRRPv2's simple-text authentication field.
	MaxAuthPassLen = 8
	// MaxWeight bounds a real server's weight (0..MaxWeight).
	MaxWeight = 65535
	// MaxConnTimeout bounds the IPVS connection timeouts (tcp_timeout,
	// tcpfin_timeout, udp_timeout): the kernel keeps them in jiffies in
	// an int, INT_MAX / HZ seconds with HZ up to 1000.
	MaxConnTimeout = (1<<31 - 1) / 1000 * time.Second
)

// AdvertIntervalRange returns the advert intervals VRRP version allows:
// min..max in multiples of step (v3: centiseconds in 12 bits, v2: whole
// seconds in one byte). ok is false for a version other than 2 or 3.
func AdvertIntervalRange(version int) (min, max, step time.Duration, ok bool) {
	switch version {
	case 3:
		return 10 * time.Millisecond, 4095 * 10 * time.Millisecond, 10 * time.Millisecond, true
	case 2:
		return time.Second, 255 * time.Second, time.Second, true
	}
	return 0, 0, 0, false
}

// BGP ranges (RFC 4271, RFC 6793, RFC 2385): the hold time is whole
// seconds in 16 bits and, when not 0, at least 3s; GoBGP cannot run a
// session without keepalives (it takes a hold time of 0 for "default"), so
// lbd refuses 0. AS 23456 (AS_TRANS) stands in for 4-byte ASNs on 2-byte
// speakers and is nobody's. A TCP MD5 key is at most 80 bytes
// (TCP_MD5SIG_MAXKEYLEN).
const (
	MinBGPHoldTime     = 3 * time.Second
	MaxBGPHoldTime     = 65535 * time.Second
	MinBGPConnectRetry = time.Second
	MaxBGPConnectRetry = time.Hour
	ASTrans            = 23456
	MaxBGPPasswordLen  = 80
	MaxBGPCommunities  = 64
)
