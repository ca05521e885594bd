//go:build linux

package flowguard

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"

	"lbd/internal/netlab"
	"lbd/internal/vmtest"
)

// Waits of the wire tests. An answer (a RST, a SYN-ACK) comes within
// milliseconds between namespaces; the waits for one are bounds, not
// expectations. silence is how long a test listens to conclude that no
// answer comes; the drop counters confirm each such silence independently.
// The VM emulates its CPU, so everything there takes longer.
var (
	answerWait = 5 * time.Second
	silence    = 1500 * time.Millisecond
)

func init() {
	if vmtest.InVM() {
		answerWait, silence = 15*time.Second, 2*time.Second
	}
}

const (
	flagSYN = 0x02
	flagRST = 0x04
	flagACK = 0x10
)

// prober sends hand-made TCP segments from a raw socket in a namespace and
// reads the answers, which a raw TCP socket receives as copies of every TCP
// segment to its address. It plays a client whose connection the server
// does not know: a bare ACK, as after a failover.
type prober struct {
	t    testing.TB
	src  netip.Addr
	conn *net.IPConn
}

func newProber(t testing.TB, ns *netlab.NS, src netip.Addr) *prober {
	t.Helper()
	network := "ip4:tcp"
	if src.Is6() {
		network = "ip6:tcp"
	}
	var c net.PacketConn
	if err := ns.Do(func() (err error) {
		c, err = net.ListenPacket(network, src.String())
		return err
	}); err != nil {
		t.Fatalf("raw TCP socket on %v in %s: %v", src, ns.Name, err)
	}
	t.Cleanup(func() { c.Close() })
	return &prober{t: t, src: src, conn: c.(*net.IPConn)}
}

// send sends one segment with flags to dst from a random port, which it
// returns.
func (p *prober) send(dst netip.AddrPort, flags byte) uint16 {
	p.t.Helper()
	sport := uint16(20000 + rand.IntN(30000))
	seg := make([]byte, 20)
	binary.BigEndian.PutUint16(seg[0:], sport)
	binary.BigEndian.PutUint16(seg[2:], dst.Port())
	binary.BigEndian.PutUint32(seg[4:], rand.Uint32()) // seq
	if flags&flagACK != 0 {
		binary.BigEndian.PutUint32(seg[8:], rand.Uint32()) // ack
	}
	seg[12] = 5 << 4 // data offset: 5 words, no options
	seg[13] = flags
	binary.BigEndian.PutUint16(seg[14:], 64240) // window
	binary.BigEndian.PutUint16(seg[16:], tcpChecksum(p.src, dst.Addr(), seg))
	if _, err := p.conn.WriteTo(seg, &net.IPAddr{IP: dst.Addr().AsSlice()}); err != nil {
		p.t.Fatalf("send %#x to %v: %v", flags, dst, err)
	}
	return sport
}

// answer waits up to wait for a segment from dst to sport and returns its
// flags; ok is false when none came.
func (p *prober) answer(dst netip.AddrPort, sport uint16, wait time.Duration) (flags byte, ok bool) {
	p.t.Helper()
	deadline := time.Now().Add(wait)
	if err := p.conn.SetReadDeadline(deadline); err != nil {
		p.t.Fatal(err)
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := p.conn.ReadFrom(buf)
		if errors.Is(err, net.ErrClosed) || (err != nil && time.Now().After(deadline)) {
			return 0, false
		}
		if err != nil {
			p.t.Fatalf("read raw TCP: %v", err)
		}
		fromAddr, _ := netip.AddrFromSlice(from.(*net.IPAddr).IP)
		if n < 20 || fromAddr.Unmap() != dst.Addr() ||
			binary.BigEndian.Uint16(buf[0:]) != dst.Port() || binary.BigEndian.Uint16(buf[2:]) != sport {
			continue // another segment to this address
		}
		return buf[13], true
	}
}

// resets sends a bare ACK for a connection dst does not know and reports
// whether a RST came back within wait.
func (p *prober) resets(dst netip.AddrPort, wait time.Duration) bool {
	p.t.Helper()
	sport := p.send(dst, flagACK)
	flags, ok := p.answer(dst, sport, wait)
	return ok && flags&flagRST != 0
}

// synAcked sends a SYN and reports whether a SYN-ACK came back within wait
// (the prober's own stack then resets the half-open connection).
func (p *prober) synAcked(dst netip.AddrPort, wait time.Duration) bool {
	p.t.Helper()
	sport := p.send(dst, flagSYN)
	flags, ok := p.answer(dst, sport, wait)
	return ok && flags&(flagSYN|flagACK) == flagSYN|flagACK
}

// tcpChecksum computes the checksum of a TCP segment (its checksum field
// zero) with the pseudo-header of src and dst.
func tcpChecksum(src, dst netip.Addr, seg []byte) uint16 {
	var pseudo []byte
	pseudo = append(pseudo, src.AsSlice()...)
	pseudo = append(pseudo, dst.AsSlice()...)
	if src.Is4() {
		pseudo = append(pseudo, 0, 6, byte(len(seg)>>8), byte(len(seg)))
	} else {
		pseudo = binary.BigEndian.AppendUint32(pseudo, uint32(len(seg)))
		pseudo = append(pseudo, 0, 0, 0, 6)
	}
	var sum uint32
	for _, b := range [][]byte{pseudo, seg} {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// serveEcho serves line echo on addr in ns until the end of the test.
func serveEcho(t testing.TB, ns *netlab.NS, addr string) {
	t.Helper()
	ln, err := ns.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, ns.Name, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

// echo sends a line over c and checks that it comes back within wait.
func echo(c net.Conn, line string, wait time.Duration) error {
	if err := c.SetDeadline(time.Now().Add(wait)); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(c, "%s\n", line); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if got != line+"\n" {
		return fmt.Errorf("echo %q, want %q", got, line+"\n")
	}
	return nil
}

// dialEcho connects from ns to addr and checks one echo; the connection is
// closed at the end of the test.
func dialEcho(t testing.TB, ns *netlab.NS, addr string) (net.Conn, error) {
	t.Helper()
	c, err := ns.Dial("tcp", addr, answerWait)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	if err := echo(c, "hello", answerWait); err != nil {
		return nil, fmt.Errorf("connection to %s: %w", addr, err)
	}
	return c, nil
}

// isTimeout reports whether err is a timeout (and not, say, a refusal).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// openIn opens a guard in ns, closed at the end of the test.
func openIn(t *testing.T, ns *netlab.NS) *NFT {
	t.Helper()
	var g *NFT
	if err := ns.Do(func() (err error) {
		g, err = Open()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Error(err)
		}
	})
	return g
}

func counters(t *testing.T, g *NFT) (quiet, hold uint64) {
	t.Helper()
	q, h, err := g.Counters()
	if err != nil {
		t.Fatal(err)
	}
	return q, h
}

// nftIn returns an nftables connection that works in ns from any thread.
func nftIn(t *testing.T, ns *netlab.NS) *nftables.Conn {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(int(ns.Handle())))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tableIn describes lbd's table in ns: "" when there is none, else its
// chains and sets, sorted.
func tableIn(t *testing.T, ns *netlab.NS) string {
	t.Helper()
	c := nftIn(t, ns)
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatalf("list tables in %s: %v", ns.Name, err)
	}
	for _, tab := range tables {
		if tab.Name != TableName {
			continue
		}
		var names []string
		chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range chains {
			if ch.Table.Name == TableName {
				names = append(names, "chain "+ch.Name)
			}
		}
		sets, err := c.GetSets(tab)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sets {
			names = append(names, "set "+s.Name)
		}
		slices.Sort(names)
		return strings.Join(names, ", ")
	}
	return ""
}

const wantTable = "chain hold, chain hold_drop, chain quiet, chain quiet_drop, " +
	"set hold_addr4, set hold_addr6, set hold_mark, set hold_vip4, set hold_vip6, " +
	"set quiet_addr4, set quiet_addr6, set quiet_mark, set quiet_vip4, set quiet_vip6"
