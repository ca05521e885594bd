package api

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// The display helpers below are the one place the console and lbctl take
// their wording from, so an address or an age reads the same on a screen
// and in a terminal.

// HostPort joins an address and a port, bracketing an IPv6 address even
// without a port so it never reads as address:port. Port 0 means none.
func HostPort(addr string, port int) string {
	if port == 0 {
		if strings.Contains(addr, ":") {
			return "[" + addr + "]"
		}
		return addr
	}
	return net.JoinHostPort(addr, strconv.Itoa(port))
}

// ServiceAddress names a virtual service: "192.0.2.10:80/tcp",
// "[2001:db8::53]:53/udp", or "fwmark 5" for a firewall-mark service.
func ServiceAddress(vip string, port int, protocol string, fwmark uint32) string {
	if fwmark != 0 {
		return fmt.Sprintf("fwmark %d", fwmark)
	}
	a := HostPort(vip, port)
	if protocol != "" {
		a += "/" + protocol
	}
	return a
}

// Address is the service's ServiceAddress.
func (s *Service) Address() string { return ServiceAddress(s.VIP, s.Port, s.Protocol, s.Fwmark) }

// Duration shortens a duration for people: 3d4h, 3h12m, 4m5s, 12s, 1.2s,
// 300ms. A negative one (clock skew) is 0s.
func Duration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d >= 48*time.Hour:
		days := d / (24 * time.Hour)
		return fmt.Sprintf("%dd%dh", days, (d-days*24*time.Hour)/time.Hour)
	case d >= time.Hour:
		return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	case d >= 10*time.Second:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(10 * time.Millisecond).String()
	}
}

// Ago says how long before now t was: "12s ago", or "never" for the zero
// time.
func Ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return Duration(now.Sub(t)) + " ago"
}

// IPVSUnavailableText is what the console and lbctl say about the IPVS
// table when Status.IPVSUnavailable is set: the kernel has none, and the
// director runs VRRP alone.
const IPVSUnavailableText = "IPVS not available (VRRP only)"
