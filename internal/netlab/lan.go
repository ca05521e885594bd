//go:build linux

package netlab

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"testing"
)

// LAN is one Ethernet segment: a bridge living in its own namespace, with
// hosts (each in its own namespace) attached by veth pairs. Addresses are
// the same in every LAN (10.77.0.0/24, fd00:77::/64): namespaces isolate
// them, so concurrent tests do not collide.
type LAN struct {
	Bridge *NS
	Hosts  []*Host
}

// Host is a namespace with one interface, Link ("eth0"), on the LAN.
type Host struct {
	*NS
	Link      string
	MAC       net.HardwareAddr
	IPv4      netip.Prefix // 10.77.0.(11+i)/24
	IPv6      netip.Prefix // fd00:77::b/64 upwards (same last byte as IPv4), without DAD
	LinkLocal netip.Addr   // fe80::... of Link, usable at once (DAD off)

	port string // the veth end in the bridge namespace
	lan  *LAN
}

// NewLAN creates a bridge and n hosts named prefix-hI-XXXXXX. The bridge
// forwards at once (no STP, no forward delay) and floods multicast (no
// snooping), so VRRP adverts reach every host without an IGMP/MLD querier.
// DAD is off in the hosts so IPv6 addresses work immediately.
func NewLAN(t testing.TB, prefix string, n int) *LAN {
	t.Helper()
	if n < 1 || n > 100 {
		t.Fatalf("netlab: NewLAN: %d hosts (1..100)", n)
	}
	l := &LAN{Bridge: NewNS(t, prefix+"-br")}
	l.Bridge.Exec("ip", "link", "add", "br0", "type", "bridge",
		"stp_state", "0", "forward_delay", "0", "mcast_snooping", "0")
	l.Bridge.Exec("ip", "link", "set", "br0", "up")
	for i := 0; i < n; i++ {
		l.Hosts = append(l.Hosts, l.addHost(t, prefix, i))
	}
	return l
}

func (l *LAN) addHost(t testing.TB, prefix string, i int) *Host {
	t.Helper()
	h := &Host{
		NS:   NewNS(t, fmt.Sprintf("%s-h%d", prefix, i)),
		Link: "eth0",
		MAC:  net.HardwareAddr{0x02, 0x4c, 0x42, 0x00, 0x00, byte(i + 1)},
		IPv4: netip.PrefixFrom(l.IPv4(byte(11+i)), 24),
		IPv6: netip.PrefixFrom(l.IPv6(byte(11+i)), 64),
		port: fmt.Sprintf("v%d", i),
		lan:  l,
	}
	// DAD off before the interface exists: new interfaces copy "default".
	h.Exec("sysctl", "-q", "-w", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	l.Bridge.Exec("ip", "link", "add", h.port, "type", "veth",
		"peer", "name", h.Link, "netns", h.Name, "address", h.MAC.String())
	l.Bridge.Exec("ip", "link", "set", h.port, "master", "br0", "up")
	h.Exec("ip", "link", "set", h.Link, "up")
	h.Exec("ip", "addr", "add", h.IPv4.String(), "dev", h.Link)
	h.Exec("ip", "addr", "add", h.IPv6.String(), "dev", h.Link, "nodad")
	ll, err := h.linkLocal()
	if err != nil {
		t.Fatal(err)
	}
	h.LinkLocal = ll
	return h
}

// IPv4 returns 10.77.0.last, an address on the LAN's IPv4 subnet. Hosts use
// .11 upwards; pick VIPs elsewhere (e.g. .100).
func (l *LAN) IPv4(last byte) netip.Addr { return netip.AddrFrom4([4]byte{10, 77, 0, last}) }

// IPv6 returns fd00:77::last (last written in hex), on the LAN's IPv6 subnet.
func (l *LAN) IPv6(last byte) netip.Addr {
	return netip.AddrFrom16([16]byte{0: 0xfd, 2: 0x00, 3: 0x77, 15: last})
}

// Cut detaches the host's cable from the bridge while its link stays up
// (carrier on both ends), as when a switch in between fails: the host sees
// no traffic and believes nothing is wrong. Used for split-brain tests.
func (h *Host) Cut(t testing.TB) {
	t.Helper()
	h.lan.Bridge.Exec("ip", "link", "set", h.port, "nomaster")
}

// Heal reattaches a cut host; it forwards immediately.
func (h *Host) Heal(t testing.TB) {
	t.Helper()
	h.lan.Bridge.Exec("ip", "link", "set", h.port, "master", "br0")
}

// LinkDown and LinkUp switch the bridge end of the host's veth, so the host
// sees its carrier drop (link down) without touching its own configuration.
func (h *Host) LinkDown(t testing.TB) {
	t.Helper()
	h.lan.Bridge.Exec("ip", "link", "set", h.port, "down")
}

// LinkUp undoes LinkDown.
func (h *Host) LinkUp(t testing.TB) {
	t.Helper()
	h.lan.Bridge.Exec("ip", "link", "set", h.port, "up")
}

// HasAddr reports whether addr is configured on the host's Link.
func (h *Host) HasAddr(t testing.TB, addr netip.Addr) bool {
	t.Helper()
	addrs, err := h.Addrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if a.Addr() == addr {
			return true
		}
	}
	return false
}

// Addrs lists the addresses configured on the host's Link.
func (h *Host) Addrs() ([]netip.Prefix, error) {
	out, err := h.Run("ip", "-j", "addr", "show", "dev", h.Link)
	if err != nil {
		return nil, err
	}
	var links []struct {
		AddrInfo []struct {
			Local     string `json:"local"`
			PrefixLen int    `json:"prefixlen"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		return nil, fmt.Errorf("netlab: parse ip -j addr in %s: %w", h.Name, err)
	}
	var ps []netip.Prefix
	for _, l := range links {
		for _, a := range l.AddrInfo {
			ip, err := netip.ParseAddr(a.Local)
			if err != nil {
				continue
			}
			ps = append(ps, netip.PrefixFrom(ip, a.PrefixLen))
		}
	}
	return ps, nil
}

func (h *Host) linkLocal() (netip.Addr, error) {
	addrs, err := h.Addrs()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		if a.Addr().Is6() && a.Addr().IsLinkLocalUnicast() {
			return a.Addr(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("netlab: no IPv6 link-local address on %s in %s", h.Link, h.Name)
}

// Neighbour returns the MAC in the host's neighbour table for ip (on Link)
// and the entry's state flags; ok is false when there is no entry with a
// link-layer address.
func (h *Host) Neighbour(t testing.TB, ip netip.Addr) (mac net.HardwareAddr, state []string, ok bool) {
	t.Helper()
	out := h.Exec("ip", "-j", "neigh", "show", "to", ip.String(), "dev", h.Link)
	var entries []struct {
		LLAddr string   `json:"lladdr"`
		State  []string `json:"state"`
	}
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatalf("netlab: parse ip -j neigh in %s: %v: %q", h.Name, err, out)
	}
	for _, e := range entries {
		if e.LLAddr == "" {
			continue
		}
		m, err := net.ParseMAC(e.LLAddr)
		if err != nil {
			continue
		}
		return m, e.State, true
	}
	return nil, nil, false
}
