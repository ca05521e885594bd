package vrrp

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"
	"time"
)

var (
	src4 = netip.MustParseAddr("10.0.0.1")
	src6 = netip.MustParseAddr("fe80::1")
)

// naiveChecksum is an independent, deliberately plain implementation of the
// Internet checksum over an explicit pseudo-header, to cross-check checksum.
func naiveChecksum(pseudo, msg []byte) uint16 {
	buf := append(append([]byte{}, pseudo...), msg...)
	buf[len(pseudo)+6], buf[len(pseudo)+7] = 0, 0
	if len(buf)%2 == 1 {
		buf = append(buf, 0)
	}
	var s uint64
	for i := 0; i < len(buf); i += 2 {
		s += uint64(binary.BigEndian.Uint16(buf[i:]))
	}
	for s>>16 != 0 {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

func pseudo4(src, dst netip.Addr, n int) []byte {
	p := append(src.AsSlice(), dst.AsSlice()...)
	return append(p, 0, IPProto, byte(n>>8), byte(n))
}

func pseudo6(src, dst netip.Addr, n int) []byte {
	p := append(src.AsSlice(), dst.AsSlice()...)
	return append(p, byte(n>>24), byte(n>>16), byte(n>>8), byte(n), 0, 0, 0, IPProto)
}

func TestMarshalLayoutAndChecksums(t *testing.T) {
	vip4 := []netip.Addr{netip.MustParseAddr("10.0.0.100"), netip.MustParseAddr("10.0.0.101")}
	vip6 := []netip.Addr{netip.MustParseAddr("fd00::100")}
	tests := []struct {
		name     string
		a        Advert
		src, dst netip.Addr
		want     []byte // header bytes 0..5
		pseudo   []byte // nil: v2 (no pseudo-header)
		n        int
	}{
		{"v3 ipv4", Advert{Version: 3, VRID: 51, Priority: 100, Interval: time.Second, Addrs: vip4},
			src4, GroupIPv4, []byte{0x31, 51, 100, 2, 0x00, 100}, pseudo4(src4, GroupIPv4, 16), 16},
		{"v3 ipv4 40.95s", Advert{Version: 3, VRID: 1, Priority: 255, Interval: 40950 * time.Millisecond, Addrs: vip4[:1]},
			src4, GroupIPv4, []byte{0x31, 1, 255, 1, 0x0f, 0xff}, pseudo4(src4, GroupIPv4, 12), 12},
		{"v3 ipv6", Advert{Version: 3, VRID: 7, Priority: 0, Interval: 100 * time.Millisecond, Addrs: vip6},
			src6, GroupIPv6, []byte{0x31, 7, 0, 1, 0x00, 10}, pseudo6(src6, GroupIPv6, 24), 24},
		{"v2 auth", Advert{Version: 2, VRID: 9, Priority: 150, Interval: 3 * time.Second, AuthType: AuthSimple,
			AuthData: [8]byte{'s', 'e', 'c', 'r', 'e', 't'}, Addrs: vip4},
			src4, GroupIPv4, []byte{0x21, 9, 150, 2, 1, 3}, nil, 24},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.a.Marshal(tt.src, tt.dst)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != tt.n || !bytes.Equal(b[:6], tt.want) {
				t.Fatalf("got % x (len %d), want header % x, len %d", b, len(b), tt.want, tt.n)
			}
			if got, want := binary.BigEndian.Uint16(b[6:]), naiveChecksum(tt.pseudo, b); got != want {
				t.Fatalf("checksum %#04x, independent computation %#04x", got, want)
			}
			back, err := Parse(b, tt.src, tt.dst)
			if err != nil {
				t.Fatal(err)
			}
			if back.Version != tt.a.Version || back.VRID != tt.a.VRID || back.Priority != tt.a.Priority ||
				back.Interval != tt.a.Interval || back.AuthType != tt.a.AuthType || back.AuthData != tt.a.AuthData ||
				!sameAddrs(back.Addrs, slices.SortedFunc(slices.Values(tt.a.Addrs), netip.Addr.Compare)) {
				t.Fatalf("round trip: %+v, want %+v", back, tt.a)
			}
		})
	}
}

// A v3 IPv4 checksum depends on the pseudo-header: the same bytes from
// another source must fail, a v2 one must not care.
func TestChecksumCoversPseudoHeader(t *testing.T) {
	a := Advert{Version: 3, VRID: 1, Priority: 100, Interval: time.Second, Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.9")}}
	b, _ := a.Marshal(src4, GroupIPv4)
	if _, err := Parse(b, netip.MustParseAddr("10.0.0.2"), GroupIPv4); ReasonOf(err) != DropChecksum {
		t.Fatalf("v3 from another source: %v, want checksum error", err)
	}
	a.Version = 2
	b, _ = a.Marshal(src4, GroupIPv4)
	if _, err := Parse(b, netip.MustParseAddr("10.0.0.2"), GroupIPv4); err != nil {
		t.Fatalf("v2 checksum must not cover addresses: %v", err)
	}
}

func TestParseRejects(t *testing.T) {
	good := func(v int) []byte {
		a := Advert{Version: v, VRID: 1, Priority: 100, Interval: time.Second, Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.9")}}
		b, err := a.Marshal(src4, GroupIPv4)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	resum := func(b []byte, v int) []byte {
		binary.BigEndian.PutUint16(b[6:], checksum(b, v, src4, GroupIPv4))
		return b
	}
	tests := []struct {
		name string
		b    []byte
		src  netip.Addr
		want DropReason
	}{
		{"empty", nil, src4, DropLength},
		{"short header", good(3)[:7], src4, DropLength},
		{"truncated address", good(3)[:11], src4, DropLength},
		{"v2 without auth data", good(2)[:12], src4, DropLength},
		{"count too high", resum(func() []byte { b := good(3); b[3] = 2; return b }(), 3), src4, DropLength},
		{"version 4", resum(func() []byte { b := good(3); b[0] = 0x41; return b }(), 3), src4, DropVersion},
		{"version 1", func() []byte { b := good(3); b[0] = 0x11; return b }(), src4, DropVersion},
		{"v2 over ipv6", good(2), src6, DropVersion},
		{"type 2", resum(func() []byte { b := good(3); b[0] = 0x32; return b }(), 3), src4, DropType},
		{"bad checksum", func() []byte { b := good(3); b[7] ^= 1; return b }(), src4, DropChecksum},
		{"v2 bad checksum", func() []byte { b := good(2); b[6] ^= 0x80; return b }(), src4, DropChecksum},
		{"interval 0", resum(func() []byte { b := good(3); b[4], b[5] = 0xf0, 0; return b }(), 3), src4, DropInterval},
		{"v2 interval 0", resum(func() []byte { b := good(2); b[5] = 0; return b }(), 2), src4, DropInterval},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.b, tt.src, GroupIPv4)
			if got := ReasonOf(err); got != tt.want {
				t.Fatalf("reason %q (%v), want %q", got, err, tt.want)
			}
		})
	}
}

func TestMarshalRefuses(t *testing.T) {
	v4 := []netip.Addr{netip.MustParseAddr("10.0.0.9")}
	tests := []struct {
		name     string
		a        Advert
		src, dst netip.Addr
	}{
		{"v3 interval 5ms", Advert{Version: 3, Interval: 5 * time.Millisecond, Addrs: v4}, src4, GroupIPv4},
		{"v3 interval 41s", Advert{Version: 3, Interval: 41 * time.Second, Addrs: v4}, src4, GroupIPv4},
		{"v2 interval 500ms", Advert{Version: 2, Interval: 500 * time.Millisecond, Addrs: v4}, src4, GroupIPv4},
		{"v2 ipv6", Advert{Version: 2, Interval: time.Second}, src6, GroupIPv6},
		{"version 4", Advert{Version: 4, Interval: time.Second, Addrs: v4}, src4, GroupIPv4},
		{"mixed family", Advert{Version: 3, Interval: time.Second, Addrs: v4}, src6, GroupIPv6},
		{"src/dst family", Advert{Version: 3, Interval: time.Second, Addrs: v4}, src4, GroupIPv6},
	}
	for _, tt := range tests {
		if _, err := tt.a.Marshal(tt.src, tt.dst); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}

// Trailing bytes after the addresses (and auth data) are tolerated, as long
// as the checksum covers them.
func TestParseToleratesPadding(t *testing.T) {
	a := Advert{Version: 3, VRID: 1, Priority: 100, Interval: time.Second, Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.9")}}
	b, _ := a.Marshal(src4, GroupIPv4)
	b = append(b, 0, 0, 0, 0)
	binary.BigEndian.PutUint16(b[6:], checksum(b, 3, src4, GroupIPv4))
	if _, err := Parse(b, src4, GroupIPv4); err != nil {
		t.Fatal(err)
	}
}
