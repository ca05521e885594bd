package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// linuxSystem is the real kernel: raw IP sockets, rtnetlink for addresses
// and links, AF_PACKET for gratuitous ARP and ICMPv6 for neighbour
// advertisements.
//
// Sockets belong to the network namespace of the thread that creates them.
// ns, when open, is the namespace to create them in (tests run several
// instances in one process); otherwise the caller's namespace is used.
type linuxSystem struct {
	ifname  string
	v6      bool
	vips    []netip.Addr
	unicast bool
	ns      netns.NsHandle
	log     *slog.Logger

	mu      sync.Mutex // guards the fields below
	nl      *netlink.Handle
	link    netlink.Link
	arpConn *packet.Conn
	icmp6   *ipv6.PacketConn
}

func newLinuxSystem(p params, log *slog.Logger) *linuxSystem {
	return &linuxSystem{ifname: p.iface, v6: p.v6, vips: p.vips, unicast: p.unicast, ns: netns.None(), log: log}
}

// openStaticSystem opens iface's address table for Static: no VRRP
// socket, only addresses and announcements.
func openStaticSystem(iface string, log *slog.Logger) (system, error) {
	sys := newLinuxSystem(params{iface: iface}, log)
	nl, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	link, err := nl.LinkByName(iface)
	if err != nil {
		nl.Close()
		return nil, err
	}
	sys.nl, sys.link = nl, link
	return sys, nil
}

// inNS runs fn on a thread in s.ns (or right here if no namespace is set).
func (s *linuxSystem) inNS(fn func() error) error {
	if !s.ns.IsOpen() {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if err := netns.Set(s.ns); err != nil {
			errc <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

func (s *linuxSystem) open() (transport, error) {
	var tr transport
	err := s.inNS(func() error {
		// Route netlink only: a bare NewHandle also opens XFRM and netfilter
		// sockets, which fail on kernels that cannot autoload those modules.
		nl, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return fmt.Errorf("netlink: %w", err)
		}
		link, err := nl.LinkByName(s.ifname)
		if err != nil {
			nl.Close()
			var nf netlink.LinkNotFoundError
			if errors.As(err, &nf) {
				return fmt.Errorf("interface %s: %w", s.ifname, errNoInterface)
			}
			return fmt.Errorf("interface %s: %w", s.ifname, err)
		}
		ifi := &net.Interface{Index: link.Attrs().Index, Name: s.ifname}
		if s.v6 {
			tr, err = openIPv6(ifi, s.unicast)
		} else {
			tr, err = openIPv4(ifi, s.unicast)
		}
		if err != nil {
			nl.Close()
			return err
		}
		s.mu.Lock()
		s.nl, s.link = nl, link
		s.mu.Unlock()
		return nil
	})
	if err == nil {
		s.prepareAnnounce()
	}
	return tr, err
}

// prepareAnnounce opens the GARP or NA socket before any takeover, so a
// backup that becomes master does not open a socket (and enter the
// namespace) between its timer and its first announcement. A failure here
// is retried, and reported, at the first announcement.
func (s *linuxSystem) prepareAnnounce() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.link == nil {
		return
	}
	if s.v6 {
		_ = s.openNA()
	} else if len(s.link.Attrs().HardwareAddr) == 6 {
		_ = s.openARP(s.link)
	}
}

func (s *linuxSystem) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.arpConn != nil {
		s.arpConn.Close()
		s.arpConn = nil
	}
	if s.icmp6 != nil {
		s.icmp6.Close()
		s.icmp6 = nil
	}
	if s.nl != nil {
		s.nl.Close()
		s.nl = nil
	}
}

// handle returns the netlink handle and the interface, refreshed in case it
// was recreated.
func (s *linuxSystem) handle() (*netlink.Handle, netlink.Link, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nl == nil {
		return nil, nil, errors.New("not open")
	}
	if l, err := s.nl.LinkByName(s.ifname); err == nil {
		s.link = l
	}
	return s.nl, s.link, nil
}

func (s *linuxSystem) localAddr() (netip.Addr, error) {
	nl, link, err := s.handle()
	if err != nil {
		return netip.Addr{}, err
	}
	fam := netlink.FAMILY_V4
	if s.v6 {
		fam = netlink.FAMILY_V6
	}
	addrs, err := nl.AddrList(link, fam)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("list addresses of %s: %w", s.ifname, err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if s.v6 {
			if ip.Is6() && ip.IsLinkLocalUnicast() && a.Flags&unix.IFA_F_TENTATIVE == 0 {
				return ip, nil
			}
			continue
		}
		ones, bits := a.Mask.Size()
		if a.Flags&unix.IFA_F_SECONDARY != 0 || (ones == bits && slices.Contains(s.vips, ip)) {
			continue
		}
		return ip, nil
	}
	return netip.Addr{}, fmt.Errorf("no usable address on %s", s.ifname)
}

func (s *linuxSystem) addVIPs(vips []netip.Addr) error {
	nl, link, err := s.handle()
	if err != nil {
		return err
	}
	have, err := nl.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", s.ifname, err)
	}
	var errs []error
	for _, v := range vips {
		if slices.ContainsFunc(have, func(a netlink.Addr) bool { return a.IP.Equal(v.AsSlice()) }) {
			continue // already there (ours, or the owner's real address): leave it
		}
		a := &netlink.Addr{IPNet: hostNet(v)}
		if v.Is6() {
			a.Flags = unix.IFA_F_NODAD // usable at once, not after DAD
		}
		if err := nl.AddrAdd(link, a); err != nil && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("add %v to %s: %w", v, s.ifname, err))
		}
	}
	return errors.Join(errs...)
}

// delVIPs removes only full-length VIP entries, which is how addVIPs adds
// them: an address configured by the operator with a real prefix (the
// owner's, for priority 255) is never touched.
func (s *linuxSystem) delVIPs(vips []netip.Addr) (int, error) {
	nl, link, err := s.handle()
	if err != nil {
		return 0, err
	}
	have, err := nl.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return 0, fmt.Errorf("list addresses of %s: %w", s.ifname, err)
	}
	var errs []error
	n := 0
	for _, a := range have {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ones, bits := a.Mask.Size()
		if ones != bits || !slices.Contains(vips, ip.Unmap()) {
			continue
		}
		n++
		if err := nl.AddrDel(link, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			errs = append(errs, fmt.Errorf("remove %v from %s: %w", ip, s.ifname, err))
		}
	}
	return n, errors.Join(errs...)
}

func hostNet(a netip.Addr) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(a.BitLen(), a.BitLen())}
}

func (s *linuxSystem) announce(vips []netip.Addr) (int, error) {
	_, link, err := s.handle()
	if err != nil {
		return 0, err
	}
	mac := link.Attrs().HardwareAddr
	if len(mac) != 6 {
		return 0, nil // no Ethernet address, no neighbour tables to update
	}
	var errs []error
	n := 0
	for _, v := range vips {
		var err error
		if v.Is4() {
			err = s.garp(link, v)
		} else {
			err = s.unsolicitedNA(link, v)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// dropAll is a BPF program accepting no packet: the ARP socket only sends.
var dropAll, _ = bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: 0}})

// garp broadcasts a gratuitous ARP request (sender = target = VIP), which
// makes every host on the segment with an entry for the VIP point it at us.
// We build the frame ourselves: arp.Dial would pick the interface's first
// address as sender, not the VIP.
func (s *linuxSystem) garp(link netlink.Link, vip netip.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	mac := link.Attrs().HardwareAddr
	if err := s.openARP(link); err != nil {
		return err
	}
	p, err := arp.NewPacket(arp.OperationRequest, mac, vip, make(net.HardwareAddr, 6), vip)
	if err != nil {
		return fmt.Errorf("gratuitous ARP for %v: %w", vip, err)
	}
	pb, err := p.MarshalBinary()
	if err != nil {
		return err
	}
	f := &ethernet.Frame{Destination: ethernet.Broadcast, Source: mac, EtherType: ethernet.EtherTypeARP, Payload: pb}
	fb, err := f.MarshalBinary()
	if err != nil {
		return err
	}
	if _, err := s.arpConn.WriteTo(fb, &packet.Addr{HardwareAddr: ethernet.Broadcast}); err != nil {
		return fmt.Errorf("gratuitous ARP for %v on %s: %w", vip, s.ifname, err)
	}
	return nil
}

// openARP opens the gratuitous-ARP socket once; s.mu is held.
func (s *linuxSystem) openARP(link netlink.Link) error {
	if s.arpConn != nil {
		return nil
	}
	ifi := &net.Interface{Index: link.Attrs().Index, Name: link.Attrs().Name, HardwareAddr: link.Attrs().HardwareAddr}
	err := s.inNS(func() (err error) {
		s.arpConn, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_ARP, &packet.Config{Filter: dropAll})
		return err
	})
	if err != nil {
		return fmt.Errorf("gratuitous ARP socket on %s: %w", s.ifname, err)
	}
	return nil
}

var allNodes = netip.MustParseAddr("ff02::1")

// unsolicitedNA sends a neighbour advertisement for the VIP to all nodes
// with the override flag, the IPv6 counterpart of a gratuitous ARP. The
// message is built with mdlayher/ndp but sent on our own ICMPv6 socket:
// ndp.Conn names the interface by zone, which resolves in the namespace of
// whichever thread writes, while an interface index in the control
// message does not depend on it.
func (s *linuxSystem) unsolicitedNA(link netlink.Link, vip netip.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.openNA(); err != nil {
		return err
	}
	na := &ndp.NeighborAdvertisement{
		Override:      true,
		TargetAddress: vip,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: link.Attrs().HardwareAddr}},
	}
	b, err := ndp.MarshalMessage(na)
	if err != nil {
		return fmt.Errorf("neighbour advertisement for %v: %w", vip, err)
	}
	cm := &ipv6.ControlMessage{IfIndex: link.Attrs().Index, HopLimit: ndp.HopLimit}
	if _, err := s.icmp6.WriteTo(b, cm, &net.IPAddr{IP: allNodes.AsSlice()}); err != nil {
		return fmt.Errorf("neighbour advertisement for %v on %s: %w", vip, s.ifname, err)
	}
	return nil
}

// openNA opens the neighbour-advertisement socket once; s.mu is held.
func (s *linuxSystem) openNA() error {
	if s.icmp6 != nil {
		return nil
	}
	err := s.inNS(func() error {
		c, err := net.ListenPacket("ip6:ipv6-icmp", "::")
		if err != nil {
			return err
		}
		pc := ipv6.NewPacketConn(c)
		var f ipv6.ICMPFilter
		f.SetAll(true) // send only: receive nothing
		for _, set := range []func() error{
			func() error { return pc.SetChecksum(true, 2) },
			func() error { return pc.SetICMPFilter(&f) },
			func() error { return pc.SetMulticastHopLimit(ndp.HopLimit) },
			func() error { return pc.SetMulticastLoopback(false) },
		} {
			if err := set(); err != nil {
				c.Close()
				return err
			}
		}
		s.icmp6 = pc
		return nil
	})
	if err != nil {
		return fmt.Errorf("neighbour advertisement socket on %s: %w", s.ifname, err)
	}
	return nil
}

// watchLinks subscribes to link changes first, then reads the current
// state, so no change falls in between.
func (s *linuxSystem) watchLinks(ctx context.Context, names []string) (map[string]bool, <-chan linkEvent, error) {
	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	opts := netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) {
			if ctx.Err() == nil { // closing the subscription reports an error too
				s.log.Error("vrrp: link updates", "err", err)
			}
		},
	}
	if s.ns.IsOpen() {
		ns := s.ns
		opts.Namespace = &ns
	}
	if err := netlink.LinkSubscribeWithOptions(updates, done, opts); err != nil {
		return nil, nil, fmt.Errorf("subscribe to link updates: %w", err)
	}
	nl, _, err := s.handle()
	if err != nil {
		close(done)
		return nil, nil, err
	}
	state := map[string]bool{}
	for _, n := range names {
		l, err := nl.LinkByName(n)
		state[n] = err == nil && linkUp(l.Attrs())
	}
	out := make(chan linkEvent, 16)
	go func() {
		defer close(out)
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case u, ok := <-updates:
				if !ok {
					s.log.Error("vrrp: link updates stopped; tracked links are no longer followed")
					return
				}
				name := u.Attrs().Name
				if !slices.Contains(names, name) {
					continue
				}
				up := u.Header.Type != unix.RTM_DELLINK && linkUp(u.Attrs())
				select {
				case out <- linkEvent{name, up}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return state, out, nil
}

// linkUp: administratively up and with carrier.
func linkUp(a *netlink.LinkAttrs) bool {
	return a.RawFlags&unix.IFF_UP != 0 && a.RawFlags&unix.IFF_LOWER_UP != 0
}

// ip4Transport is VRRP over a raw IPv4 socket (protocol 112).
type ip4Transport struct {
	c       net.PacketConn
	pc      *ipv4.PacketConn
	ifindex int
	io      *rawIO
}

func openIPv4(ifi *net.Interface, unicast bool) (*ip4Transport, error) {
	c, err := net.ListenPacket(fmt.Sprintf("ip4:%d", IPProto), "0.0.0.0")
	if err != nil {
		return nil, fmt.Errorf("raw IPv4 socket: %w", err)
	}
	pc := ipv4.NewPacketConn(c)
	io, err := newRawIO(c, false, ifi.Index)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("raw IPv4 socket: %w", err)
	}
	t := &ip4Transport{c: c, pc: pc, ifindex: ifi.Index, io: io}
	steps := []func() error{
		func() error {
			return pc.SetControlMessage(ipv4.FlagTTL|ipv4.FlagSrc|ipv4.FlagDst|ipv4.FlagInterface, true)
		},
		func() error { return pc.SetTTL(255) },
		func() error { return pc.SetMulticastTTL(255) },
		func() error { return pc.SetMulticastInterface(ifi) },
		func() error { return pc.SetMulticastLoopback(false) },
	}
	if !unicast {
		steps = append(steps, func() error { return pc.JoinGroup(ifi, &net.IPAddr{IP: GroupIPv4.AsSlice()}) })
	}
	for _, f := range steps {
		if err := f(); err != nil {
			c.Close()
			return nil, fmt.Errorf("raw IPv4 socket on %s: %w", ifi.Name, err)
		}
	}
	return t, nil
}

func (t *ip4Transport) send(b []byte, src, dst netip.Addr) error {
	return t.io.send(b, src, dst)
}

func (t *ip4Transport) recv(b []byte) (int, rxPacket, error) {
	for {
		n, p, ok, err := t.io.recv(&t.io.rx, b, true)
		if err != nil || ok {
			return n, p, err
		}
	}
}

func (t *ip4Transport) close() error { return t.c.Close() }

// ip6Transport is VRRP over a raw IPv6 socket; the kernel computes and
// verifies the checksum (IPV6_CHECKSUM at offset 6).
type ip6Transport struct {
	c       net.PacketConn
	pc      *ipv6.PacketConn
	ifindex int
	io      *rawIO
}

func openIPv6(ifi *net.Interface, unicast bool) (*ip6Transport, error) {
	c, err := net.ListenPacket(fmt.Sprintf("ip6:%d", IPProto), "::")
	if err != nil {
		return nil, fmt.Errorf("raw IPv6 socket: %w", err)
	}
	pc := ipv6.NewPacketConn(c)
	io, err := newRawIO(c, true, ifi.Index)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("raw IPv6 socket: %w", err)
	}
	t := &ip6Transport{c: c, pc: pc, ifindex: ifi.Index, io: io}
	steps := []func() error{
		func() error { return pc.SetChecksum(true, 6) },
		func() error {
			return pc.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagSrc|ipv6.FlagDst|ipv6.FlagInterface, true)
		},
		func() error { return pc.SetHopLimit(255) },
		func() error { return pc.SetMulticastHopLimit(255) },
		func() error { return pc.SetMulticastInterface(ifi) },
		func() error { return pc.SetMulticastLoopback(false) },
	}
	if !unicast {
		steps = append(steps, func() error { return pc.JoinGroup(ifi, &net.IPAddr{IP: GroupIPv6.AsSlice()}) })
	}
	for _, f := range steps {
		if err := f(); err != nil {
			c.Close()
			return nil, fmt.Errorf("raw IPv6 socket on %s: %w", ifi.Name, err)
		}
	}
	return t, nil
}

func (t *ip6Transport) send(b []byte, src, dst netip.Addr) error {
	return t.io.send(b, src, dst)
}

func (t *ip6Transport) recv(b []byte) (int, rxPacket, error) {
	for {
		n, p, ok, err := t.io.recv(&t.io.rx, b, true)
		if err != nil || ok {
			return n, p, err
		}
	}
}

func (t *ip6Transport) close() error { return t.c.Close() }

func (t *ip4Transport) pending(b []byte) (int, rxPacket, bool, error) {
	return t.io.recv(&t.io.pend, b, false)
}

func (t *ip6Transport) pending(b []byte) (int, rxPacket, bool, error) {
	return t.io.recv(&t.io.pend, b, false)
}
