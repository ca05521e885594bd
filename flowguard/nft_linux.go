package flowguard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// TableName is the nftables table (family inet) that holds both guards.
// lbd owns it whole: Open replaces whatever is found under this name.
const TableName = "lbd_flowguard"

// Priorities on the input hook. IPVS hooks input with ip_vs_out_hook at
// NF_IP_PRI_NAT_SRC-2 (98) and ip_vs_in_hook at NF_IP_PRI_NAT_SRC-1 (99),
// for IPv4 and IPv6 alike (net/netfilter/ipvs/ip_vs_core.c, ip_vs_ops4 and
// ip_vs_ops6); a packet that IPVS forwards is stolen there and never seen by
// later hooks.
const (
	quietPriority nftables.ChainPriority = 100 // after ip_vs_in: what IPVS left to the local stack
	holdPriority  nftables.ChainPriority = 0   // before IPVS: the SYN never gets scheduled
)

// TCP flag bits (the 14th byte of the TCP header).
const (
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// Bounds of one netlink exchange and of one batch.
const (
	// opTimeout bounds a whole request and its answers: the daemon must
	// never hang on a kernel that does not answer.
	opTimeout = 10 * time.Second
	// sendBuffer raises the socket's send buffer for batches with many
	// elements (the kernel caps it at twice net.core.wmem_max).
	sendBuffer = 4 << 20
	// chunk is the most elements in one message: a message's element list
	// is one netlink attribute, whose length has 16 bits.
	chunk = 1000
)

// A guard is one base chain on the input hook. Its rules let through what
// is no candidate (not TCP; TCP flags that do not match), look the packet up
// in the guard's sets of targets and send a hit to the guard's drop chain,
// which counts and drops it. The rules never change; Set replaces the sets'
// elements. The drop chain's counter lives as long as the table, so it only
// grows.
type guard struct {
	name     string // base chain, prefix of its sets, word in errors
	priority nftables.ChainPriority
	// A TCP segment is a candidate when flags&mask == want.
	mask, want byte
	comment    string // on the drop rule, for whoever lists the ruleset
}

func (g *guard) drop() string { return g.name + "_drop" }

var guards = [2]guard{
	{name: "quiet", priority: quietPriority, mask: tcpSYN | tcpRST, want: 0,
		comment: "lbd: segments IPVS left to the local stack after a takeover, dropped instead of reset"},
	{name: "hold", priority: holdPriority, mask: tcpSYN | tcpACK, want: tcpSYN,
		comment: "lbd: new connections held off while the VIP is given up"},
}

const (
	quietIdx = 0
	holdIdx  = 1
)

// setKind is one of the sets every guard has, by kind of target.
type setKind struct {
	suffix string
	key    nftables.SetDatatype
	concat bool
	// load checks the packet's family and loads the key into register 1
	// onwards; a concatenation takes one 32-bit register per 4 bytes.
	load []expr.Any
}

// The registers: NFT_REG_1 is the same storage as NFT_REG32_00, the first
// of sixteen 32-bit registers NFT_REG32_00..15 (8..23).
const (
	reg1       = 1  // NFT_REG_1 / NFT_REG32_00
	regAfter4  = 9  // NFT_REG32_01, after a 4-byte field
	regAfter16 = 12 // NFT_REG32_04, after a 16-byte field
)

const (
	setVIP4  = iota // ip daddr . tcp dport
	setVIP6         // ip6 daddr . tcp dport
	setAddr4        // ip daddr: every port
	setAddr6        // ip6 daddr: every port
	setMark         // meta nfproto . meta mark
	numSets
)

var setKinds = [numSets]setKind{
	setVIP4: {suffix: "vip4", concat: true,
		key: nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService),
		load: slices.Concat(family(unix.NFPROTO_IPV4), isTCP(),
			[]expr.Any{daddr(4, reg1), dport(regAfter4)})},
	setVIP6: {suffix: "vip6", concat: true,
		key: nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetService),
		load: slices.Concat(family(unix.NFPROTO_IPV6), isTCP(),
			[]expr.Any{daddr(16, reg1), dport(regAfter16)})},
	setAddr4: {suffix: "addr4", key: nftables.TypeIPAddr,
		load: append(family(unix.NFPROTO_IPV4), daddr(4, reg1))},
	setAddr6: {suffix: "addr6", key: nftables.TypeIP6Addr,
		load: append(family(unix.NFPROTO_IPV6), daddr(16, reg1))},
	setMark: {suffix: "mark", concat: true,
		key: nftables.MustConcatSetType(nftables.TypeNFProto, nftables.TypeMark),
		load: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg1},
			&expr.Meta{Key: expr.MetaKeyMARK, Register: regAfter4}}},
}

// family: meta nfproto == proto.
func family(proto byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{proto}},
	}
}

// isTCP: meta l4proto == tcp, the dependency of a load from the TCP header
// (the chain's first rule has let everything else through already).
func isTCP() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{unix.IPPROTO_TCP}},
	}
}

// dport loads the TCP destination port.
func dport(reg uint32) expr.Any {
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}
}

// daddr loads the IPv4 (n = 4) or IPv6 (n = 16) destination address.
func daddr(n uint32, reg uint32) expr.Any {
	offset := uint32(16) // in the IPv4 header
	if n == 16 {
		offset = 24 // in the IPv6 header
	}
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: n}
}

// elements returns the set elements of a target: one, or for a fwmark of
// either family, two.
func elements(t Target) []struct {
	set int
	key []byte
} {
	type elem = struct {
		set int
		key []byte
	}
	port := []byte{byte(t.Port >> 8), byte(t.Port), 0, 0} // padded to a register
	switch {
	case t.Fwmark != 0:
		var out []elem
		for _, p := range []struct {
			proto byte
			want  bool
		}{{unix.NFPROTO_IPV4, !t.Addr.Is6()}, {unix.NFPROTO_IPV6, !t.Addr.Is4()}} {
			if p.want {
				key := make([]byte, 8)
				key[0] = p.proto
				binary.NativeEndian.PutUint32(key[4:], t.Fwmark) // the mark is host order
				out = append(out, elem{setMark, key})
			}
		}
		return out
	case t.Addr.Is4() && t.Port == 0:
		return []elem{{setAddr4, t.Addr.AsSlice()}}
	case t.Addr.Is6() && t.Port == 0:
		return []elem{{setAddr6, t.Addr.AsSlice()}}
	case t.Addr.Is4():
		return []elem{{setVIP4, append(t.Addr.AsSlice(), port...)}}
	default:
		return []elem{{setVIP6, append(t.Addr.AsSlice(), port...)}}
	}
}

// NFT is a Guard on nftables, in the network namespace of the thread that
// called Open. It is safe for concurrent use.
//
// Every operation uses a netlink socket of its own, opened in that
// namespace and closed at its end, so an answer lost to a full buffer can
// never be mistaken for the answer to a later request.
type NFT struct {
	mu     sync.Mutex
	netns  *os.File // the namespace of Open's caller
	table  *nftables.Table
	held   [2][]Target // what the kernel holds, by guard, to rebuild the table
	closed bool
}

var _ Guard = (*NFT)(nil)

// Open creates lbd's table in the network namespace of the calling thread
// (a caller in another namespace locks its goroutine to the thread first);
// the guard keeps working there whichever thread calls it later. A table of
// the same name, as a crashed lbd leaves behind, is replaced in the same
// atomic batch, so both guards start switched off.
//
// The kernel could remove the table by itself with the socket that made it
// (NFT_TABLE_F_OWNER), but google/nftables v0.3.0 sends no table flags; so a
// table a crashed lbd leaves behind keeps its guards until the next Open.
func Open() (*NFT, error) {
	ns, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, fmt.Errorf("flowguard: open: network namespace: %w", err)
	}
	n := &NFT{netns: ns, table: &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}}
	c := n.conn()
	n.queueTable(c, n.held)
	if err := c.Flush(); err != nil {
		ns.Close()
		return nil, fmt.Errorf("flowguard: open: create table inet %s: %w", TableName, err)
	}
	return n, nil
}

// conn returns a connection for one batch or request.
func (n *NFT) conn() *nftables.Conn {
	c, _ := nftables.New( // never fails without AsLasting
		nftables.WithNetNSFd(int(n.netns.Fd())),
		nftables.WithSockOptions(func(nc *netlink.Conn) error {
			if err := nc.SetWriteBuffer(sendBuffer); err != nil {
				return err
			}
			return nc.SetDeadline(time.Now().Add(opTimeout))
		}))
	return c
}

// SetQuiet implements Guard.
func (n *NFT) SetQuiet(targets []Target) error { return n.set(quietIdx, targets) }

// SetHold implements Guard.
func (n *NFT) SetHold(targets []Target) error { return n.set(holdIdx, targets) }

// set replaces one guard's set elements in one batch: the kernel applies
// all of it or, on error, none.
func (n *NFT) set(i int, targets []Target) error {
	g := &guards[i]
	ts, err := normalize(targets)
	if err != nil {
		return fmt.Errorf("flowguard: set %s: %w", g.name, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return fmt.Errorf("flowguard: set %s: %w", g.name, ErrClosed)
	}
	c := n.conn()
	if err := queueElements(c, n.sets(i), ts, true); err != nil {
		return fmt.Errorf("flowguard: set %s: %w", g.name, err)
	}
	err = c.Flush()
	if errors.Is(err, unix.ENOENT) {
		// The table or a set is gone (someone ran `nft flush ruleset`):
		// build the table again whole, with the other guard's set.
		held := n.held
		held[i] = ts
		c = n.conn()
		rerr := n.queueTable(c, held)
		if rerr == nil {
			rerr = c.Flush()
		}
		if rerr == nil {
			n.held = held
			return nil
		}
		err = fmt.Errorf("%w; rebuilding table inet %s: %w", err, TableName, rerr)
	}
	if err != nil {
		return fmt.Errorf("flowguard: set %s (%d targets): %w", g.name, len(ts), err)
	}
	n.held[i] = ts
	return nil
}

// Counters returns how many packets each guard has dropped since Open (or
// since the table was last rebuilt), for metrics.
func (n *NFT) Counters() (quiet, hold uint64, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return 0, 0, fmt.Errorf("flowguard: counters: %w", ErrClosed)
	}
	var sum [2]uint64
	for i := range guards {
		rules, err := n.conn().GetRules(n.table, n.chain(guards[i].drop()))
		if err != nil {
			return 0, 0, fmt.Errorf("flowguard: counters: chain %s: %w", guards[i].drop(), err)
		}
		for _, r := range rules {
			for _, e := range r.Exprs {
				if ce, ok := e.(*expr.Counter); ok {
					sum[i] += ce.Packets
				}
			}
		}
	}
	return sum[quietIdx], sum[holdIdx], nil
}

// Close deletes the table, and with it both guards. A table that is already
// gone is no error. Later calls do nothing.
func (n *NFT) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	defer n.netns.Close()
	c := n.conn()
	c.DelTable(n.table)
	if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("flowguard: close: delete table inet %s: %w", TableName, err)
	}
	return nil
}

func (n *NFT) chain(name string) *nftables.Chain {
	return &nftables.Chain{Name: name, Table: n.table}
}

// sets returns guard i's sets, as AddSet wants them. Their IDs, which
// name a set to the rules of the batch that creates it, are set here: the
// library would otherwise count them in a global without a lock.
func (n *NFT) sets(i int) [numSets]*nftables.Set {
	var sets [numSets]*nftables.Set
	for k, sk := range setKinds {
		sets[k] = &nftables.Set{
			Table:         n.table,
			ID:            uint32(i*numSets + k + 1),
			Name:          guards[i].name + "_" + sk.suffix,
			KeyType:       sk.key,
			Concatenation: sk.concat,
		}
	}
	return sets
}

// queueTable queues the whole table with the given sets, replacing any
// table of the same name: add (so that the delete finds one), delete, add.
func (n *NFT) queueTable(c *nftables.Conn, held [2][]Target) error {
	c.AddTable(n.table)
	c.DelTable(n.table)
	c.AddTable(n.table)
	accept := nftables.ChainPolicyAccept
	for i := range guards {
		g := &guards[i]
		drop := c.AddChain(n.chain(g.drop()))
		c.AddRule(&nftables.Rule{
			Table:    n.table,
			Chain:    drop,
			Exprs:    []expr.Any{&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop}},
			UserData: userdata.AppendString(nil, userdata.TypeComment, g.comment),
		})
		nsets := n.sets(i)
		for _, s := range nsets {
			if err := c.AddSet(s, nil); err != nil {
				return fmt.Errorf("set %s: %w", s.Name, err)
			}
		}
		prio := g.priority
		base := c.AddChain(&nftables.Chain{
			Name:     g.name,
			Table:    n.table,
			Type:     nftables.ChainTypeFilter,
			Hooknum:  nftables.ChainHookInput,
			Priority: &prio,
			Policy:   &accept,
		})
		for _, exprs := range g.rules(nsets) {
			c.AddRule(&nftables.Rule{Table: n.table, Chain: base, Exprs: exprs})
		}
		if err := queueElements(c, nsets, held[i], false); err != nil {
			return err
		}
	}
	return nil
}

// rules returns the base chain's rules.
func (g *guard) rules(sets [numSets]*nftables.Set) [][]expr.Any {
	rules := [][]expr.Any{
		{ // meta l4proto != tcp return
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: []byte{unix.IPPROTO_TCP}},
			&expr.Verdict{Kind: expr.VerdictReturn},
		},
		// tcp flags & MASK != WANT return
		append(isTCP(),
			&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
			&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 1, Mask: []byte{g.mask}, Xor: []byte{0}},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: []byte{g.want}},
			&expr.Verdict{Kind: expr.VerdictReturn}),
	}
	for k := range setKinds {
		rules = append(rules, slices.Concat(setKinds[k].load, []expr.Any{
			&expr.Lookup{SourceRegister: reg1, SetName: sets[k].Name, SetID: sets[k].ID},
			&expr.Verdict{Kind: expr.VerdictGoto, Chain: g.drop()},
		}))
	}
	return rules
}

// queueElements queues the elements of targets in a guard's sets, after
// flushing them when flush is set.
func queueElements(c *nftables.Conn, sets [numSets]*nftables.Set, targets []Target, flush bool) error {
	var keys [numSets][]nftables.SetElement
	for _, t := range targets {
		for _, e := range elements(t) {
			keys[e.set] = append(keys[e.set], nftables.SetElement{Key: e.key})
		}
	}
	for k, s := range sets {
		if flush {
			c.FlushSet(s)
		}
		for part := range slices.Chunk(keys[k], chunk) {
			if err := c.SetAddElements(s, part); err != nil {
				return fmt.Errorf("set %s: %w", s.Name, err)
			}
		}
	}
	return nil
}
