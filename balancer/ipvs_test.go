package balancer

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"
)

func TestOpenWithoutIPVS(t *testing.T) {
	// ipvs.New fails like this when the generic netlink family is missing.
	_, err := openIPVS(func() (ipvs.Client, error) {
		return nil, fmt.Errorf("netlink receive: %w", os.ErrNotExist)
	})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err %v does not wrap ErrUnavailable", err)
	}
	const want = "balancer: IPVS is not available in this kernel: load ip_vs (modprobe ip_vs) or run a kernel with CONFIG_IP_VS"
	if err.Error() != want {
		t.Fatalf("message %q\nwant    %q", err, want)
	}

	_, err = openIPVS(func() (ipvs.Client, error) { return nil, syscall.EACCES })
	if errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.EACCES) {
		t.Fatalf("other errors pass through: %v", err)
	}
}

// TestOpenOnThisHost runs against whatever kernel the tests run on: one
// without IPVS (the CI host) must give the operator's message, one with it
// must give a working client.
func TestOpenOnThisHost(t *testing.T) {
	k, err := Open()
	if err != nil {
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Open: %v (want ErrUnavailable or success)", err)
		}
		return
	}
	defer k.Close()
	if _, err := k.Services(); err != nil && !errors.Is(err, syscall.EPERM) {
		t.Fatalf("Services on a kernel with IPVS: %v", err)
	}
}

func TestIPVSConversions(t *testing.T) {
	svcs := []Service{
		{Key: tcp("10.0.0.1:80"), Scheduler: "rr"},
		{Key: udp("[2001:db8::1]:53"), Scheduler: "mh", Flags: FlagMHFallback | FlagMHPort,
			Persistence: 30 * time.Second, PersistenceNetmask: 64},
		{Key: FwmarkKey(9, IPv4), Scheduler: "sh", Flags: FlagOnePacket, Persistence: time.Hour, PersistenceNetmask: 24},
		{Key: FwmarkKey(10, IPv6)},
	}
	for _, s := range svcs {
		x := toIPVSService(s)
		if !x.Netmask.IsValid() {
			t.Errorf("%s: no netmask (the kernel would answer EINVAL)", s.Key)
		}
		if (s.Persistence > 0) != (x.Flags&ipvs.ServicePersistent != 0) {
			t.Errorf("%s: persistent flag %v", s.Key, x.Flags)
		}
		// The kernel echoes it back with the hashed flag set.
		x.Flags |= ipvs.ServiceHashed
		back, ok := fromIPVSService(ipvs.ServiceExtended{Service: x})
		if !ok || back.Service != s.normalized() {
			t.Errorf("round trip of %+v gave %+v", s.normalized(), back.Service)
		}
	}
	if m := toIPVSService(svcs[0]).Netmask; m != netmask.MaskFrom(32, 32) {
		t.Errorf("IPv4 host mask %v", m)
	}
	if m := toIPVSService(svcs[3]).Netmask; m != netmask.MaskFrom(128, 128) {
		t.Errorf("IPv6 host mask %v", m)
	}

	for _, d := range []Destination{
		dest("192.168.1.1:80", 5, DR), dest("192.168.1.1:8080", 0, NAT),
		dest("[2001:db8::5]:0", 65535, Tunnel),
	} {
		x := toIPVSDest(d)
		back := fromIPVSDest(ipvs.DestinationExtended{Destination: x, ActiveConnections: 3,
			Stats64: ipvs.Stats{Connections: 7, ConnectionRate: 2}})
		if back.Destination != d || back.ActiveConns != 3 || back.Stats.Conns != 7 || back.Stats.CPS != 2 {
			t.Errorf("round trip of %+v gave %+v", d, back)
		}
	}
	if f := fromIPVSDest(ipvs.DestinationExtended{Destination: ipvs.Destination{
		Address: netip.MustParseAddr("10.1.1.1"), FwdMethod: ipvs.Local}}).Forwarding; f == DR || f == NAT || f == Tunnel {
		t.Errorf("local forwarding read as %v", f)
	}
	// Old kernels send only 32-bit stats.
	if s := pickStats(ipvs.Stats{Connections: 4}, ipvs.Stats{}); s.Conns != 4 {
		t.Errorf("32-bit fallback: %+v", s)
	}
}
