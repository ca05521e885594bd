//go:build linux && !vm

package flowguard

// Namespace tests: the real NFT against the host kernel's nftables, with
// segments on the wire between a client and a server namespace. The host
// kernel has no IPVS, so every segment to the server reaches its local TCP
// stack, which stands in for a director's stack after IPVS has declined a
// packet. They run as root (outside CI they skip otherwise). The VM test
// (vm_test.go) repeats the essentials beside IPVS on the VM's Debian kernel.

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"

	"lbd/internal/netlab"
)

// lab is a client and a server on one LAN; the server holds the VIPs (as a
// master director does) and serves echo on ports 80, 81 and 82.
type lab struct {
	client, server *netlab.Host
	vip4, vip6     netip.Addr
	p4, p6         *prober // on the client
}

func newLab(t *testing.T) *lab {
	t.Helper()
	netlab.Require(t)
	lan := netlab.NewLAN(t, "fg", 2)
	l := &lab{client: lan.Hosts[0], server: lan.Hosts[1], vip4: lan.IPv4(100), vip6: lan.IPv6(100)}
	l.server.Exec("ip", "addr", "add", l.vip4.String()+"/32", "dev", l.server.Link)
	l.server.Exec("ip", "addr", "add", l.vip6.String()+"/128", "dev", l.server.Link, "nodad")
	for _, port := range []uint16{80, 81, 82} {
		serveEcho(t, l.server.NS, l.at(l.vip4, port).String())
		serveEcho(t, l.server.NS, l.at(l.vip6, port).String())
	}
	l.p4 = newProber(t, l.client.NS, l.client.IPv4.Addr())
	l.p6 = newProber(t, l.client.NS, l.client.IPv6.Addr())
	return l
}

func (l *lab) at(vip netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(vip, port) }

func (l *lab) prober(vip netip.Addr) *prober {
	if vip.Is4() {
		return l.p4
	}
	return l.p6
}

// wantReset checks that a bare ACK to dst is answered with a RST.
func (l *lab) wantReset(t *testing.T, dst netip.AddrPort, why string) {
	t.Helper()
	if !l.prober(dst.Addr()).resets(dst, answerWait) {
		t.Errorf("%s: a bare ACK to %v got no RST within %v", why, dst, answerWait)
	}
}

// wantSilence checks that a bare ACK to dst is not answered.
func (l *lab) wantSilence(t *testing.T, dst netip.AddrPort, why string) {
	t.Helper()
	p := l.prober(dst.Addr())
	sport := p.send(dst, flagACK)
	if flags, ok := p.answer(dst, sport, silence); ok {
		t.Errorf("%s: a bare ACK to %v was answered (flags %#x)", why, dst, flags)
	}
}

// TestQuiet: the local stack resets a segment of a connection it does not
// know; with the guard on for VIP:80 it stays silent on that service only,
// still answers SYNs there, and resets again once the guard is off.
func TestQuiet(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	vips := []netip.Addr{l.vip4, l.vip6}
	for _, vip := range vips {
		l.wantReset(t, l.at(vip, 80), "without a guard")
	}
	g := openIn(t, l.server.NS)
	for _, vip := range vips {
		l.wantReset(t, l.at(vip, 80), "guard open, quiet set empty")
	}
	if err := g.SetQuiet([]Target{{Addr: l.vip4, Port: 80}, {Addr: l.vip6, Port: 80}}); err != nil {
		t.Fatal(err)
	}
	for _, vip := range vips {
		l.wantSilence(t, l.at(vip, 80), "quiet on")
		l.wantReset(t, l.at(vip, 81), "quiet on for port 80 only")
		if p := l.prober(vip); !p.synAcked(l.at(vip, 80), answerWait) {
			t.Errorf("quiet on: a SYN to %v got no SYN-ACK: new connections must pass", l.at(vip, 80))
		}
	}
	// A RST passes too: the guard drops only what the stack would reset.
	l.p4.send(l.at(l.vip4, 80), flagRST|flagACK)
	if q, h := counters(t, g); q != 2 || h != 0 {
		t.Errorf("counters after two bare ACKs, two SYNs and a RST under quiet: quiet %d hold %d, want 2 and 0", q, h)
	}

	// A bad target fails the whole call and leaves the set in force.
	err := g.SetQuiet([]Target{{Addr: l.vip4, Port: 81}, {Port: 80}})
	if err == nil || !strings.Contains(err.Error(), "flowguard: set quiet: target 1") {
		t.Errorf("SetQuiet with a target without address: %v, want flowguard: set quiet: target 1 ...", err)
	}
	l.wantSilence(t, l.at(l.vip4, 80), "after a failed SetQuiet")
	l.wantReset(t, l.at(l.vip4, 81), "after a failed SetQuiet")

	if err := g.SetQuiet(nil); err != nil {
		t.Fatal(err)
	}
	for _, vip := range vips {
		l.wantReset(t, l.at(vip, 80), "quiet off again")
	}
	if q, _ := counters(t, g); q != 3 {
		t.Errorf("quiet counter %d at the end, want 3 (it counts drops since Open)", q)
	}
}

// TestQuietFwmarkAndEveryPort: a fwmark target matches packets with the
// mark in its family only (or both without an address), an address with
// port 0 every port of that address.
func TestQuietFwmarkAndEveryPort(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	markPort(t, l.server.NS, 82, 7)
	g := openIn(t, l.server.NS)
	if err := g.SetQuiet([]Target{{Fwmark: 7, Addr: netip.IPv4Unspecified()}}); err != nil { // the family only
		t.Fatal(err)
	}
	l.wantSilence(t, l.at(l.vip4, 82), "fwmark 7 (IPv4), marked packet")
	l.wantReset(t, l.at(l.vip4, 81), "fwmark 7 (IPv4), packet without the mark")
	l.wantReset(t, l.at(l.vip6, 82), "fwmark 7 for IPv4 only, marked IPv6 packet")

	if err := g.SetQuiet([]Target{{Addr: l.vip6}}); err != nil {
		t.Fatal(err)
	}
	l.wantSilence(t, l.at(l.vip6, 81), "IPv6 VIP, every port")
	l.wantSilence(t, l.at(l.vip6, 82), "IPv6 VIP, every port")
	l.wantReset(t, l.at(l.vip4, 82), "IPv6 VIP, every port: IPv4 marked packet")

	if err := g.SetQuiet([]Target{{Fwmark: 7}}); err != nil {
		t.Fatal(err)
	}
	l.wantSilence(t, l.at(l.vip6, 82), "fwmark 7 for both families, marked IPv6 packet")
	l.wantSilence(t, l.at(l.vip4, 82), "fwmark 7 for both families, marked IPv4 packet")
	l.wantReset(t, l.at(l.vip6, 81), "fwmark 7 for both families, IPv6 packet without the mark")
	if q, _ := counters(t, g); q != 5 {
		t.Errorf("quiet counter %d, want 5", q)
	}
}

// markPort adds a table of the test's own in ns that marks TCP to port
// with mark before routing, as an operator's rules for a fwmark service do.
func markPort(t *testing.T, ns *netlab.NS, port uint16, mark uint32) {
	t.Helper()
	c := nftIn(t, ns)
	tab := c.AddTable(&nftables.Table{Name: "test_mark", Family: nftables.TableFamilyINet})
	ch := c.AddChain(&nftables.Chain{Name: "pre", Table: tab, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityMangle})
	c.AddRule(&nftables.Rule{Table: tab, Chain: ch, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{6}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
		&expr.Immediate{Register: 1, Data: binaryutil.NativeEndian.PutUint32(mark)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
	}})
	if err := c.Flush(); err != nil {
		t.Fatalf("marking table in %s: %v", ns.Name, err)
	}
}

// TestHold: with the guard on, a connect() to VIP:80 gets no SYN-ACK while
// another port answers and an established connection to VIP:80 goes on;
// off again, VIP:80 accepts.
func TestHold(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	g := openIn(t, l.server.NS)
	vips := []netip.Addr{l.vip4, l.vip6}
	var established []net.Conn
	for _, vip := range vips {
		c, err := dialEcho(t, l.client.NS, l.at(vip, 80).String())
		if err != nil {
			t.Fatalf("before hold: %v", err)
		}
		established = append(established, c)
	}

	if err := g.SetHold([]Target{{Addr: l.vip4, Port: 80}, {Addr: l.vip6, Port: 80}}); err != nil {
		t.Fatal(err)
	}
	for i, vip := range vips {
		c, err := l.client.Dial("tcp", l.at(vip, 80).String(), silence)
		if err == nil {
			c.Close()
			t.Errorf("hold on: connect to %v succeeded", l.at(vip, 80))
		} else if !isTimeout(err) {
			t.Errorf("hold on: connect to %v: %v, want a timeout (SYN dropped silently)", l.at(vip, 80), err)
		}
		if _, err := dialEcho(t, l.client.NS, l.at(vip, 81).String()); err != nil {
			t.Errorf("hold on for port 80 only: %v", err)
		}
		if err := echo(established[i], "during hold", answerWait); err != nil {
			t.Errorf("hold on: connection to %v established before: %v", l.at(vip, 80), err)
		}
	}
	if q, h := counters(t, g); q != 0 || h < 2 {
		t.Errorf("counters after two connects held off: quiet %d hold %d, want 0 and at least 2", q, h)
	}

	if err := g.SetHold(nil); err != nil {
		t.Fatal(err)
	}
	for _, vip := range vips {
		if _, err := dialEcho(t, l.client.NS, l.at(vip, 80).String()); err != nil {
			t.Errorf("hold off again: %v", err)
		}
	}
}

// TestOpenReplacesStaleTable: a table under lbd's name, as a crashed lbd
// leaves it (here with a chain that drops all TCP), is gone after Open, and
// Close leaves no table behind.
func TestOpenReplacesStaleTable(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	c := nftIn(t, l.server.NS)
	tab := c.AddTable(&nftables.Table{Name: TableName, Family: nftables.TableFamilyINet})
	ch := c.AddChain(&nftables.Chain{Name: "hold", Table: tab, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter})
	c.AddRule(&nftables.Rule{Table: tab, Chain: ch, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{6}},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}})
	c.AddChain(&nftables.Chain{Name: "leftover", Table: tab})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	l.wantSilence(t, l.at(l.vip4, 80), "stale table dropping TCP")

	var g *NFT
	if err := l.server.Do(func() (err error) {
		g, err = Open()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got := tableIn(t, l.server.NS); got != wantTable {
		t.Errorf("after Open over a stale table:\n got %s\nwant %s", got, wantTable)
	}
	l.wantReset(t, l.at(l.vip4, 80), "after Open over a stale table")

	if err := g.SetQuiet([]Target{{Addr: l.vip4, Port: 80}}); err != nil {
		t.Fatal(err)
	}
	if err := g.SetHold([]Target{{Addr: l.vip4, Port: 81}}); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if got := tableIn(t, l.server.NS); got != "" {
		t.Errorf("after Close: table %s still there: %s", TableName, got)
	}
	l.wantReset(t, l.at(l.vip4, 80), "after Close")
	if err := g.SetQuiet(nil); !errors.Is(err, ErrClosed) {
		t.Errorf("SetQuiet after Close: %v, want ErrClosed", err)
	}
	if err := g.SetHold(nil); !errors.Is(err, ErrClosed) {
		t.Errorf("SetHold after Close: %v, want ErrClosed", err)
	}
	if _, _, err := g.Counters(); !errors.Is(err, ErrClosed) {
		t.Errorf("Counters after Close: %v, want ErrClosed", err)
	}
	if err := g.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestGuardStaysInItsNamespace: a guard opened in one namespace and driven
// from the test's goroutine (on whatever thread) programs only that
// namespace, and Open in another namespace is another table.
func TestGuardStaysInItsNamespace(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	g := openIn(t, l.server.NS)
	if err := g.SetQuiet([]Target{{Addr: l.vip4, Port: 80}}); err != nil {
		t.Fatal(err)
	}
	if got := tableIn(t, l.client.NS); got != "" {
		t.Errorf("table in the client namespace: %s", got)
	}
	if got := tableIn(t, l.server.NS); got != wantTable {
		t.Errorf("server namespace:\n got %s\nwant %s", got, wantTable)
	}
	other := openIn(t, l.client.NS)
	if err := other.SetHold([]Target{{Addr: l.client.IPv4.Addr(), Port: 9}}); err != nil {
		t.Fatal(err)
	}
	l.wantSilence(t, l.at(l.vip4, 80), "the server's guard beside the client's")
}

// TestSetRebuildsDeletedTable: when the table vanishes behind the guard's
// back (`nft flush ruleset`), the next Set builds it again with both sets.
func TestSetRebuildsDeletedTable(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	g := openIn(t, l.server.NS)
	if err := g.SetQuiet([]Target{{Addr: l.vip4, Port: 80}}); err != nil {
		t.Fatal(err)
	}
	c := nftIn(t, l.server.NS)
	c.DelTable(&nftables.Table{Name: TableName, Family: nftables.TableFamilyINet})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	l.wantReset(t, l.at(l.vip4, 80), "table deleted")
	if err := g.SetHold([]Target{{Addr: l.vip4, Port: 81}}); err != nil {
		t.Fatalf("SetHold with the table gone: %v", err)
	}
	if got := tableIn(t, l.server.NS); got != wantTable {
		t.Errorf("after the rebuild:\n got %s\nwant %s", got, wantTable)
	}
	l.wantSilence(t, l.at(l.vip4, 80), "quiet set restored by the rebuild")
	if l.p4.synAcked(l.at(l.vip4, 81), silence) {
		t.Errorf("hold set after the rebuild: a SYN to %v was answered", l.at(l.vip4, 81))
	}
	if q, h := counters(t, g); q != 1 || h < 1 {
		t.Errorf("counters after the rebuild: quiet %d hold %d, want 1 and at least 1", q, h)
	}
}

// TestManyTargets: thousands of services of both families go in one batch
// each time (the sets, not rules, carry them) and still match.
func TestManyTargets(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	g := openIn(t, l.server.NS)
	var many []Target
	for i := range 5000 {
		many = append(many,
			Target{Addr: netip.AddrFrom4([4]byte{10, 200, byte(i >> 8), byte(i)}), Port: 443},
			Target{Addr: netip.AddrFrom16([16]byte{0xfd, 0x99, 14: byte(i >> 8), 15: byte(i)}), Port: uint16(1 + i)},
			Target{Fwmark: uint32(1000 + i)})
	}
	for round := range 2 {
		ts := append(slices.Clone(many), Target{Addr: l.vip4, Port: 80}, Target{Addr: l.vip6, Port: 80})
		if round == 1 {
			slices.Reverse(ts)
		}
		if err := g.SetQuiet(ts); err != nil {
			t.Fatalf("round %d: SetQuiet with %d targets: %v", round, len(ts), err)
		}
		for _, vip := range []netip.Addr{l.vip4, l.vip6} {
			l.wantSilence(t, l.at(vip, 80), fmt.Sprintf("round %d, %d targets", round, len(ts)))
			l.wantReset(t, l.at(vip, 81), fmt.Sprintf("round %d, %d targets", round, len(ts)))
		}
	}
	elems, err := nftIn(t, l.server.NS).GetSetElements(&nftables.Set{
		Table: &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}, Name: "quiet_mark",
		KeyType: setKinds[setMark].key})
	if err != nil {
		t.Fatal(err)
	}
	if len(elems) != 2*5000 {
		t.Errorf("quiet_mark holds %d elements, want %d (two families per fwmark)", len(elems), 2*5000)
	}
}
