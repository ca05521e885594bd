package flowguard

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

var (
	vip4 = netip.MustParseAddr("192.0.2.10")
	vip6 = netip.MustParseAddr("2001:db8::10")
)

func TestTargetString(t *testing.T) {
	for _, c := range []struct {
		t    Target
		want string
	}{
		{Target{Addr: vip4, Port: 80}, "tcp/192.0.2.10:80"},
		{Target{Addr: vip6, Port: 443}, "tcp/[2001:db8::10]:443"},
		{Target{Addr: vip4}, "tcp/192.0.2.10:0"},
		{Target{Fwmark: 7, Addr: vip4}, "fwmark/7/ipv4"},
		{Target{Fwmark: 7, Addr: vip6}, "fwmark/7/ipv6"},
		{Target{Fwmark: 7}, "fwmark/7"},
	} {
		if got := c.t.String(); got != c.want {
			t.Errorf("%#v: %q, want %q", c.t, got, c.want)
		}
	}
}

func TestNormalize(t *testing.T) {
	mapped := netip.AddrFrom16(vip4.As16())
	got, err := normalize([]Target{
		{Addr: vip4, Port: 80},
		{Addr: mapped, Port: 80}, // the same service, written as IPv4-mapped IPv6
		{Addr: vip6, Port: 80},
		{Fwmark: 3},
		{Fwmark: 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []Target{{Addr: vip4, Port: 80}, {Addr: vip6, Port: 80}, {Fwmark: 3}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("normalize: %v, want %v", got, want)
	}

	for _, c := range []struct {
		t    Target
		want string
	}{
		{Target{Port: 80}, "no address and no fwmark"},
		{Target{Addr: netip.IPv4Unspecified(), Port: 80}, "unspecified address"},
		{Target{Addr: netip.MustParseAddr("fe80::1%eth0"), Port: 80}, "zone"},
		{Target{Fwmark: 3, Port: 80}, "no port"},
	} {
		_, err := normalize([]Target{{Addr: vip4, Port: 1}, c.t})
		if err == nil || !strings.Contains(err.Error(), "target 1") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("normalize %#v: %v, want an error about target 1: %s", c.t, err, c.want)
		}
	}
	if got, err := normalize(nil); err != nil || len(got) != 0 {
		t.Errorf("normalize(nil): %v, %v", got, err)
	}
}

func TestFake(t *testing.T) {
	var f Fake
	var _ Guard = &f
	a, b := Target{Addr: vip4, Port: 80}, Target{Addr: vip6, Port: 443}
	if err := f.SetQuiet([]Target{a, b, a}); err != nil {
		t.Fatal(err)
	}
	if err := f.SetHold([]Target{b}); err != nil {
		t.Fatal(err)
	}
	if got := f.Quiet(); !reflect.DeepEqual(got, []Target{a, b}) {
		t.Errorf("Quiet: %v", got)
	}
	if got := f.Hold(); !reflect.DeepEqual(got, []Target{b}) {
		t.Errorf("Hold: %v", got)
	}

	// A bad target and an injected error both leave the sets alone.
	if err := f.SetQuiet([]Target{{Port: 1}}); err == nil || !strings.HasPrefix(err.Error(), "flowguard: set quiet: target 0") {
		t.Errorf("bad target: %v", err)
	}
	boom := errors.New("boom")
	f.Inject(func(c Call) error {
		if c.Op == OpSetHold && len(c.Targets) == 0 {
			return boom
		}
		return nil
	})
	if err := f.SetHold(nil); !errors.Is(err, boom) || err.Error() != "flowguard: set hold: boom" {
		t.Errorf("injected: %v", err)
	}
	if got := f.Hold(); !reflect.DeepEqual(got, []Target{b}) {
		t.Errorf("Hold after a failed call: %v", got)
	}
	if got := f.Quiet(); !reflect.DeepEqual(got, []Target{a, b}) {
		t.Errorf("Quiet after a failed call: %v", got)
	}
	f.Inject(nil)
	if err := f.SetQuiet([]Target{}); err != nil {
		t.Fatal(err)
	}
	if got := f.Quiet(); got != nil {
		t.Errorf("Quiet after SetQuiet(empty): %v, want nil", got)
	}

	calls := f.Calls()
	var ops []string
	for _, c := range calls {
		s := c.Op.String()
		if c.Err != nil {
			s += "!"
		}
		ops = append(ops, s)
	}
	if want := "set quiet,set hold,set quiet!,set hold!,set quiet"; strings.Join(ops, ",") != want {
		t.Errorf("calls: %s, want %s", strings.Join(ops, ","), want)
	}
	if !reflect.DeepEqual(calls[0].Targets, []Target{a, b, a}) {
		t.Errorf("first call recorded %v, want the targets as passed", calls[0].Targets)
	}

	f.SetCounters(3, 4, nil)
	if q, h, err := f.Counters(); q != 3 || h != 4 || err != nil {
		t.Errorf("Counters: %d %d %v", q, h, err)
	}

	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if !f.Closed() || f.Hold() != nil {
		t.Errorf("after Close: closed %v, hold %v", f.Closed(), f.Hold())
	}
	if err := f.SetHold([]Target{a}); !errors.Is(err, ErrClosed) {
		t.Errorf("SetHold after Close: %v, want ErrClosed", err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
