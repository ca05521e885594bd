package flowguard

import (
	"encoding/binary"
	"reflect"
	"testing"
)

// TestElements pins the set keys: concatenated fields are padded to 4
// bytes, addresses and ports in network order, the mark in host order
// after the one-byte family.
func TestElements(t *testing.T) {
	type elem = struct {
		set int
		key []byte
	}
	host := func(v uint32) []byte { // the mark as the kernel holds it
		b := make([]byte, 4)
		binary.NativeEndian.PutUint32(b, v)
		return b
	}
	for _, c := range []struct {
		t    Target
		want []elem
	}{
		{Target{Addr: vip4, Port: 0x1f90}, []elem{{setVIP4, []byte{192, 0, 2, 10, 0x1f, 0x90, 0, 0}}}},
		{Target{Addr: vip6, Port: 443}, []elem{{setVIP6, append(vip6.AsSlice(), 0x01, 0xbb, 0, 0)}}},
		{Target{Addr: vip4}, []elem{{setAddr4, []byte{192, 0, 2, 10}}}},
		{Target{Addr: vip6}, []elem{{setAddr6, vip6.AsSlice()}}},
		{Target{Fwmark: 0x01020304, Addr: vip4}, []elem{{setMark, append([]byte{2, 0, 0, 0}, host(0x01020304)...)}}},
		{Target{Fwmark: 5, Addr: vip6}, []elem{{setMark, append([]byte{10, 0, 0, 0}, host(5)...)}}},
		{Target{Fwmark: 5}, []elem{
			{setMark, append([]byte{2, 0, 0, 0}, host(5)...)},
			{setMark, append([]byte{10, 0, 0, 0}, host(5)...)}}},
	} {
		got := elements(c.t)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("elements(%v):\n got %v\nwant %v", c.t, got, c.want)
		}
		for _, e := range got {
			if n := len(e.key); uint32(n) != setKinds[e.set].key.Bytes {
				t.Errorf("elements(%v): key of %d bytes for set %s of %d", c.t, n, setKinds[e.set].suffix, setKinds[e.set].key.Bytes)
			}
		}
	}
}
