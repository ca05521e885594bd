package healthcheck

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fixedChecker answers res, after delay or when ctx ends (a silent drop).
type fixedChecker struct {
	res     Result
	delay   time.Duration // <0: only when ctx ends ("timeout")
	calls   atomic.Int32
	running atomic.Int32
}

func (f *fixedChecker) Check(ctx context.Context) Result {
	f.calls.Add(1)
	if f.running.Add(1) > 1 {
		panic("checker run concurrently with itself")
	}
	defer f.running.Add(-1)
	if f.delay < 0 {
		<-ctx.Done()
		return down("timeout")
	}
	select {
	case <-time.After(f.delay):
		return f.res
	case <-ctx.Done():
		return down("timeout")
	}
}

func TestVIPChecker(t *testing.T) {
	tests := []struct {
		name        string
		vip, plain  *fixedChecker
		wantUp      bool
		wantReason  string
		plainCalled bool
	}{
		{"through the VIP", &fixedChecker{res: up("connected")}, &fixedChecker{res: up("connected")}, true, "connected", false},
		{"VIP refused, own address answers", &fixedChecker{res: down("connect: connection refused")}, &fixedChecker{res: up("connected")},
			false, NotAcceptVIP + "; through the VIP: connect: connection refused", true},
		{"VIP silent, own address answers", &fixedChecker{delay: -1}, &fixedChecker{res: up("connected")},
			false, NotAcceptVIP + "; through the VIP: timeout", true},
		{"server down", &fixedChecker{res: down("connect: connection refused")}, &fixedChecker{res: down("connect: connection refused")},
			false, "connect: connection refused", true},
		{"slow but fine through the VIP", &fixedChecker{res: up("connected"), delay: 120 * time.Millisecond}, &fixedChecker{res: up("connected")}, true, "connected", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &vipChecker{vip: tt.vip, plain: tt.plain}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			r := c.Check(ctx)
			if r.Up != tt.wantUp || r.Reason != tt.wantReason {
				t.Errorf("Check = %+v, want up=%v %q", r, tt.wantUp, tt.wantReason)
			}
			if got := tt.plain.calls.Load() > 0; got != tt.plainCalled {
				t.Errorf("own address checked = %v, want %v", got, tt.plainCalled)
			}
			if tt.plain.running.Load() != 0 {
				t.Error("the own-address check still runs after Check returned")
			}
		})
	}
}

func TestThroughVIPSpec(t *testing.T) {
	base := Spec{Type: TCP, Address: "10.0.0.11", Port: 80, ThroughVIP: "10.0.0.100", Mark: 0x4c420001}
	if _, err := base.Normalize(); err != nil {
		t.Fatalf("valid through-VIP spec refused: %v", err)
	}
	plain := base
	plain.ThroughVIP, plain.Mark = "", 0
	a, _ := base.Normalize()
	b, _ := plain.Normalize()
	if a.key() == b.key() {
		t.Error("a through-VIP check and a plain one of the same server share a key")
	}
	for _, bad := range []struct {
		mod  func(*Spec)
		want string
	}{
		{func(s *Spec) { s.Mark = 0 }, "needs a firewall mark"},
		{func(s *Spec) { s.ThroughVIP = "vip.example" }, "bad VIP"},
		{func(s *Spec) { s.CheckAddress = "10.0.0.12" }, "another address"},
		{func(s *Spec) { s.Address = "2001:db8::1" }, "VIP's family"},
	} {
		s := base
		bad.mod(&s)
		if _, err := s.Normalize(); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("spec %+v: err = %v, want %q", s, err, bad.want)
		}
	}
}
