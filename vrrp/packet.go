package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// IPProto is VRRP's IP protocol number (v2 and v3).
const IPProto = 112

// Multicast groups adverts are sent to (RFC 5798 5.1.1.2, 5.1.2.2).
var (
	GroupIPv4 = netip.MustParseAddr("224.0.0.18")
	GroupIPv6 = netip.MustParseAddr("ff02::12")
)

const (
	headerLen   = 8 // version/type .. checksum, both versions
	v2AuthLen   = 8 // RFC 3768 5.3.10: authentication data, always present
	typeAdvert  = 1
	maxV3Centis = 0x0fff // 12-bit Max Adver Int

	// AuthNone and AuthSimple are VRRPv2 authentication types
	// (RFC 3768 5.3.6; type 2, IP AH, is obsolete and refused).
	AuthNone   = 0
	AuthSimple = 1
)

// Advert is one VRRP advertisement, v2 or v3, IPv4 or IPv6.
type Advert struct {
	Version  int // 2 or 3
	VRID     uint8
	Priority uint8
	// Interval is Max Adver Int (v3, centiseconds on the wire, 10ms..40.95s)
	// or Adver Int (v2, whole seconds on the wire, 1..255s).
	Interval time.Duration
	// AuthType and AuthData exist only in v2. AuthData holds the simple-text
	// password padded with zeros.
	AuthType uint8
	AuthData [v2AuthLen]byte
	// Addrs are the virtual addresses, all of the packet's IP family.
	Addrs []netip.Addr
}

// DropReason says why a received packet was discarded. Each reason is a
// counter in Status ("drop_" + reason).
type DropReason string

// Reasons a received packet is dropped.
const (
	DropTTL       DropReason = "ttl"       // TTL / hop limit is not 255
	DropVersion   DropReason = "version"   // not the configured version
	DropType      DropReason = "type"      // not an advertisement
	DropLength    DropReason = "length"    // shorter than its header and address count say
	DropChecksum  DropReason = "checksum"  // bad checksum
	DropVRID      DropReason = "vrid"      // another virtual router
	DropInterval  DropReason = "interval"  // interval 0 (v3) or different from ours (v2)
	DropVIPs      DropReason = "vips"      // address list differs from ours (sender not owner)
	DropAuth      DropReason = "auth"      // v2 authentication type or data differ
	DropFamily    DropReason = "family"    // IP family differs from the instance's
	DropInterface DropReason = "interface" // arrived on another interface
	DropForeign   DropReason = "foreign"   // source is not a configured peer (unicast or allowed peers)
	DropOverrun   DropReason = "overrun"   // the receive queue was full (a flood): not looked at
	DropOwn       DropReason = "own"       // our own advert looped back
)

// ParseError is a packet rejected by Parse.
type ParseError struct {
	Reason DropReason
	Detail string
}

func (e *ParseError) Error() string {
	return "vrrp: bad packet (" + string(e.Reason) + "): " + e.Detail
}

func parseErr(r DropReason, format string, a ...any) error {
	return &ParseError{Reason: r, Detail: fmt.Sprintf(format, a...)}
}

// ReasonOf returns the drop reason of a Parse error ("" if not one).
func ReasonOf(err error) DropReason {
	var pe *ParseError
	if errors.As(err, &pe) {
		return pe.Reason
	}
	return ""
}

// Marshal encodes the advert as sent from src to dst, with its checksum.
// src and dst matter for v3, whose checksum covers an IP pseudo-header;
// they must be of the advert's family (v2 is IPv4 only).
func (a *Advert) Marshal(src, dst netip.Addr) ([]byte, error) {
	b := make([]byte, a.size(src))
	n, err := a.MarshalTo(b, src, dst)
	if err != nil {
		return nil, err
	}
	return b[:n], nil
}

// size is the encoded length of a (what MarshalTo needs).
func (a *Advert) size(src netip.Addr) int {
	alen := 4
	if src.Is6() {
		alen = 16
	}
	n := headerLen + alen*len(a.Addrs)
	if a.Version == 2 {
		n += v2AuthLen
	}
	return n
}

// MarshalTo is Marshal into b, which must be large enough; it returns
// the length and allocates nothing (the advert path sends without
// allocating).
func (a *Advert) MarshalTo(b []byte, src, dst netip.Addr) (int, error) {
	if src.Is4() != dst.Is4() || !src.IsValid() || !dst.IsValid() {
		return 0, fmt.Errorf("vrrp: marshal: source %v and destination %v must be valid and of one family", src, dst)
	}
	v6 := src.Is6()
	if len(a.Addrs) > 255 {
		return 0, fmt.Errorf("vrrp: marshal: %d addresses (max 255)", len(a.Addrs))
	}
	for _, ad := range a.Addrs {
		if ad.Is6() != v6 || ad.Is4In6() {
			return 0, fmt.Errorf("vrrp: marshal: address %v is not of the packet's family", ad)
		}
	}
	n := a.size(src)
	var word uint16
	switch a.Version {
	case 3:
		cs := a.Interval / (10 * time.Millisecond)
		if cs < 1 || cs > maxV3Centis {
			return 0, fmt.Errorf("vrrp: marshal: v3 interval %v out of range 10ms..40.95s", a.Interval)
		}
		word = uint16(cs)
	case 2:
		if v6 {
			return 0, errors.New("vrrp: marshal: VRRPv2 is IPv4 only")
		}
		s := a.Interval / time.Second
		if s < 1 || s > 255 {
			return 0, fmt.Errorf("vrrp: marshal: v2 interval %v out of range 1s..255s", a.Interval)
		}
		word = uint16(a.AuthType)<<8 | uint16(s)
	default:
		return 0, fmt.Errorf("vrrp: marshal: version %d (want 2 or 3)", a.Version)
	}
	if len(b) < n {
		return 0, fmt.Errorf("vrrp: marshal: %d bytes of room for a %d-byte advert", len(b), n)
	}
	b = b[:n]
	clear(b)
	b[0] = byte(a.Version)<<4 | typeAdvert
	b[1] = a.VRID
	b[2] = a.Priority
	b[3] = byte(len(a.Addrs))
	binary.BigEndian.PutUint16(b[4:], word)
	off := headerLen
	for _, ad := range a.Addrs {
		if v6 {
			a16 := ad.As16()
			off += copy(b[off:], a16[:])
		} else {
			a4 := ad.As4()
			off += copy(b[off:], a4[:])
		}
	}
	if a.Version == 2 {
		copy(b[off:], a.AuthData[:])
	}
	binary.BigEndian.PutUint16(b[6:], checksum(b, a.Version, src, dst))
	return n, nil
}

// Parse decodes a VRRP message (the IP payload) received from src for dst
// and checks what the packet alone can tell: version, type, length,
// checksum and a non-zero interval. Everything else (VRID, addresses,
// authentication) is the instance's business. It never panics.
func Parse(b []byte, src, dst netip.Addr) (*Advert, error) {
	a := &Advert{}
	if err := parseInto(a, b, src, dst); err != nil {
		return nil, err
	}
	return a, nil
}

// parseInto is Parse into a, reusing a.Addrs' storage: a valid advert
// whose addresses fit in its capacity is decoded without allocating.
func parseInto(a *Advert, b []byte, src, dst netip.Addr) error {
	if len(b) < headerLen {
		return parseErr(DropLength, "%d bytes, header is %d", len(b), headerLen)
	}
	*a = Advert{Version: int(b[0] >> 4), VRID: b[1], Priority: b[2], Addrs: a.Addrs[:0]}
	if a.Version != 2 && a.Version != 3 {
		return parseErr(DropVersion, "version %d", a.Version)
	}
	if a.Version == 2 && src.Is6() {
		return parseErr(DropVersion, "VRRPv2 over IPv6")
	}
	if t := b[0] & 0x0f; t != typeAdvert {
		return parseErr(DropType, "type %d", t)
	}
	alen := 4
	if src.Is6() {
		alen = 16
	}
	count := int(b[3])
	need := headerLen + count*alen
	if a.Version == 2 {
		need += v2AuthLen
	}
	if len(b) < need {
		return parseErr(DropLength, "%d bytes, %d addresses need %d", len(b), count, need)
	}
	if sum := checksum(b, a.Version, src, dst); sum != binary.BigEndian.Uint16(b[6:]) {
		return parseErr(DropChecksum, "checksum %#04x, computed %#04x", binary.BigEndian.Uint16(b[6:]), sum)
	}
	word := binary.BigEndian.Uint16(b[4:])
	if a.Version == 3 {
		a.Interval = time.Duration(word&maxV3Centis) * 10 * time.Millisecond
	} else {
		a.AuthType = uint8(word >> 8)
		a.Interval = time.Duration(word&0xff) * time.Second
	}
	if a.Interval == 0 {
		return parseErr(DropInterval, "advertisement interval 0")
	}
	if cap(a.Addrs) < count {
		a.Addrs = make([]netip.Addr, 0, count)
	}
	for i := 0; i < count; i++ {
		p := b[headerLen+i*alen : headerLen+(i+1)*alen]
		if alen == 4 {
			a.Addrs = append(a.Addrs, netip.AddrFrom4([4]byte(p)))
		} else {
			a.Addrs = append(a.Addrs, netip.AddrFrom16([16]byte(p)))
		}
	}
	if a.Version == 2 {
		copy(a.AuthData[:], b[headerLen+count*alen:])
	}
	return nil
}

// checksum computes the VRRP checksum of b with its checksum field taken
// as zero. v2 sums the message alone (RFC 3768 5.3.8); v3 adds the IPv4 or
// IPv6 pseudo-header (RFC 5798 5.2.8).
func checksum(b []byte, version int, src, dst netip.Addr) uint16 {
	var sum uint32
	if version == 3 {
		if src.Is4() {
			s, d := src.As4(), dst.As4()
			sum = sumWords(sum, s[:])
			sum = sumWords(sum, d[:])
		} else {
			s, d := src.As16(), dst.As16()
			sum = sumWords(sum, s[:])
			sum = sumWords(sum, d[:])
		}
		if src.Is4() {
			sum += IPProto + uint32(len(b)) // zero, protocol, 16-bit length
		} else {
			sum += uint32(len(b)>>16) + uint32(len(b)&0xffff) + IPProto // 32-bit length, zeros, next header
		}
	}
	sum = sumWords(sum, b[:6])
	sum = sumWords(sum, b[8:])
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// sumWords adds b as big-endian 16-bit words (odd tail padded with zero).
func sumWords(sum uint32, b []byte) uint32 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
		if sum > 0xffff0000 { // fold early so long inputs cannot overflow
			sum = sum>>16 + sum&0xffff
		}
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}
