package flowguard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// TableName is the nftables table (family inet) that holds both guards.
// lbd owns it whole: Open replaces whatever is found under this name.
const TableName = "lbd_flowguard"

// The chains of the table. Each guard has a base chain on the input hook
// whose rules pick the segments to drop and jump to a regular chain that
// counts and drops them. The base chain is rewritten by every Set; the drop
// chain's counter lives as long as the table, so it only ever grows.
const (
	quietChain = "quiet"
	holdChain  = "hold"
	quietDrop  = "quiet_drop"
	holdDrop   = "hold_drop"
)

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
	tcpFIN = 1 << iota
	tcpSYN
	tcpRST
	tcpPSH
	tcpACK
)

// guard describes one of the two guards.
type guard struct {
	name     string // base chain, and the word in errors
	drop     string // the counting drop chain
	priority nftables.ChainPriority
	// A TCP segment is a candidate when flags&mask == want.
	mask, want byte
	comment    string // on the drop rule, for whoever lists the ruleset
}

var guards = [2]guard{
	{name: quietChain, drop: quietDrop, priority: quietPriority, mask: tcpSYN | tcpRST, want: 0,
		comment: "lbd: segments IPVS left to the local stack after a takeover, dropped instead of reset"},
	{name: holdChain, drop: holdDrop, priority: holdPriority, mask: tcpSYN | tcpACK, want: tcpSYN,
		comment: "lbd: new connections held off while the VIP is given up"},
}

const (
	quietIdx = 0
	holdIdx  = 1
)

// NFT is a Guard on nftables, in the network namespace of the thread that
// called Open. It is safe for concurrent use.
type NFT struct {
	mu     sync.Mutex
	conn   *nftables.Conn
	table  *nftables.Table
	sets   [2][]Target // what the kernel holds, by guard, to rebuild the table
	closed bool
}

var _ Guard = (*NFT)(nil)

// Open creates lbd's table in the network namespace of the calling thread
// (a caller in another namespace locks its goroutine to the thread first);
// its netlink socket stays there. A table of the same name, as a crashed lbd
// leaves behind, is replaced in the same atomic batch, so the guards start
// switched off.
func Open() (*NFT, error) {
	conn, err := nftables.New(nftables.AsLasting())
	if err != nil {
		return nil, fmt.Errorf("flowguard: open: netlink: %w", err)
	}
	n := &NFT{conn: conn, table: &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}}
	n.queueTable(n.sets)
	if err := conn.Flush(); err != nil {
		conn.CloseLasting()
		return nil, fmt.Errorf("flowguard: open: create table inet %s: %w", TableName, err)
	}
	return n, nil
}

// SetQuiet implements Guard.
func (n *NFT) SetQuiet(targets []Target) error { return n.set(quietIdx, targets) }

// SetHold implements Guard.
func (n *NFT) SetHold(targets []Target) error { return n.set(holdIdx, targets) }

// set replaces one guard's rules in one batch: the kernel applies all of it
// or, on error, none.
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
	n.conn.FlushChain(n.chain(g.name))
	n.queueRules(g, ts)
	err = n.conn.Flush()
	if errors.Is(err, unix.ENOENT) {
		// The table or a chain is gone (someone ran `nft flush ruleset`):
		// build the table again whole, with the other guard's set.
		sets := n.sets
		sets[i] = ts
		n.queueTable(sets)
		if rerr := n.conn.Flush(); rerr != nil {
			err = fmt.Errorf("%w; rebuilding table inet %s: %w", err, TableName, rerr)
		} else {
			n.sets = sets
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("flowguard: set %s (%d targets): %w", g.name, len(ts), err)
	}
	n.sets[i] = ts
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
	var c [2]uint64
	for i := range guards {
		rules, err := n.conn.GetRules(n.table, n.chain(guards[i].drop))
		if err != nil {
			return 0, 0, fmt.Errorf("flowguard: counters: chain %s: %w", guards[i].drop, err)
		}
		for _, r := range rules {
			for _, e := range r.Exprs {
				if ce, ok := e.(*expr.Counter); ok {
					c[i] += ce.Packets
				}
			}
		}
	}
	return c[quietIdx], c[holdIdx], nil
}

// Close deletes the table, and with it both guards, and closes the netlink
// socket. A table that is already gone is no error. Later calls do nothing.
func (n *NFT) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	n.conn.DelTable(n.table)
	err := n.conn.Flush()
	if errors.Is(err, unix.ENOENT) {
		err = nil
	}
	if err != nil {
		err = fmt.Errorf("flowguard: close: delete table inet %s: %w", TableName, err)
	}
	if cerr := n.conn.CloseLasting(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("flowguard: close: netlink: %w", cerr))
	}
	return err
}

func (n *NFT) chain(name string) *nftables.Chain {
	return &nftables.Chain{Name: name, Table: n.table}
}

// queueTable queues the whole table with the given sets, replacing any
// table of the same name: add (so that the delete finds one), delete, add.
func (n *NFT) queueTable(sets [2][]Target) {
	n.conn.AddTable(n.table)
	n.conn.DelTable(n.table)
	n.conn.AddTable(n.table)
	accept := nftables.ChainPolicyAccept
	for i := range guards {
		g := &guards[i]
		n.conn.AddChain(n.chain(g.drop))
		n.conn.AddRule(&nftables.Rule{
			Table:    n.table,
			Chain:    n.chain(g.drop),
			Exprs:    []expr.Any{&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop}},
			UserData: comment(g.comment),
		})
		prio := g.priority
		n.conn.AddChain(&nftables.Chain{
			Name:     g.name,
			Table:    n.table,
			Type:     nftables.ChainTypeFilter,
			Hooknum:  nftables.ChainHookInput,
			Priority: &prio,
			Policy:   &accept,
		})
		n.queueRules(g, sets[i])
	}
}

// queueRules queues the base chain's rules for targets (none when empty):
// first the segments that are no candidates leave the chain, then one rule
// per target sends the rest to the drop chain.
func (n *NFT) queueRules(g *guard, targets []Target) {
	if len(targets) == 0 {
		return
	}
	base := n.chain(g.name)
	add := func(exprs []expr.Any) {
		n.conn.AddRule(&nftables.Rule{Table: n.table, Chain: base, Exprs: exprs})
	}
	// meta l4proto != tcp return
	add([]expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Verdict{Kind: expr.VerdictReturn},
	})
	// tcp flags & MASK != WANT return
	add([]expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{g.mask}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{g.want}},
		&expr.Verdict{Kind: expr.VerdictReturn},
	})
	for _, t := range targets {
		add(append(match(t), &expr.Verdict{Kind: expr.VerdictGoto, Chain: g.drop}))
	}
}

// match returns the expressions that select TCP packets to t: the family
// (meta nfproto), then the destination address and port, or the mark.
func match(t Target) []expr.Any {
	var e []expr.Any
	if t.Addr.IsValid() {
		proto := byte(unix.NFPROTO_IPV4)
		if t.Addr.Is6() {
			proto = unix.NFPROTO_IPV6
		}
		e = append(e,
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}})
	}
	e = append(e,
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}})
	if t.Fwmark != 0 {
		// The mark is a host-order integer in the register.
		var mark [4]byte
		binary.NativeEndian.PutUint32(mark[:], t.Fwmark)
		return append(e,
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: mark[:]})
	}
	addr := t.Addr.AsSlice()
	offset := uint32(16) // ip daddr
	if t.Addr.Is6() {
		offset = 24 // ip6 daddr
	}
	e = append(e,
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: uint32(len(addr))},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr})
	if t.Port != 0 {
		e = append(e,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(t.Port >> 8), byte(t.Port)}})
	}
	return e
}

// comment is a rule comment as the nft CLI shows it.
func comment(s string) []byte { return userdata.AppendString(nil, userdata.TypeComment, s) }
