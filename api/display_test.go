package api

import (
	"testing"
	"time"
)

// These are the texts both the console and lbctl print; their own tests
// check that they print them (webui TestScreens, lbctl TestStatus).
func TestDisplay(t *testing.T) {
	for _, tc := range []struct {
		addr string
		port int
		want string
	}{
		{"192.0.2.10", 80, "192.0.2.10:80"},
		{"2001:db8::53", 53, "[2001:db8::53]:53"},
		{"10.0.0.1", 0, "10.0.0.1"},
		{"ff02::81", 0, "[ff02::81]"},
		{"", 0, ""},
	} {
		if got := HostPort(tc.addr, tc.port); got != tc.want {
			t.Errorf("HostPort(%q, %d) = %q, want %q", tc.addr, tc.port, got, tc.want)
		}
	}
	for _, tc := range []struct {
		s    Service
		want string
	}{
		{Service{VIP: "192.0.2.10", Port: 80, Protocol: "tcp"}, "192.0.2.10:80/tcp"},
		{Service{VIP: "2001:db8::53", Port: 53, Protocol: "udp"}, "[2001:db8::53]:53/udp"},
		{Service{Fwmark: 5, Protocol: "tcp"}, "fwmark 5"},
		{Service{VIP: "192.0.2.10", Port: 80}, "192.0.2.10:80"},
	} {
		if got := tc.s.Address(); got != tc.want {
			t.Errorf("%+v.Address() = %q, want %q", tc.s, got, tc.want)
		}
	}
	for d, want := range map[time.Duration]string{
		3*time.Hour + 12*time.Minute + 5*time.Second: "3h12m",
		49 * time.Hour:                        "2d1h",
		75 * time.Second:                      "1m15s",
		1500 * time.Millisecond:               "1.5s",
		-time.Second:                          "0s",
		123 * time.Millisecond:                "120ms",
		time.Hour + time.Second:               "1h0m",
		10*time.Minute + 400*time.Millisecond: "10m0s",
	} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if got := Ago(now.Add(-75*time.Second), now); got != "1m15s ago" {
		t.Errorf("Ago = %q", got)
	}
	if got := Ago(time.Time{}, now); got != "never" {
		t.Errorf("Ago(zero) = %q", got)
	}
}
