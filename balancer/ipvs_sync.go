package balancer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
)

// The IPVS generic netlink family's sync-daemon messages
// (include/uapi/linux/ip_vs.h). cloudflare/ipvs keeps these constants in an
// internal package and has no calls for them.
const (
	ipvsGenlName    = "IPVS"
	ipvsGenlVersion = 1

	ipvsCmdNewDaemon = 9  // start a daemon; also the reply type of a GET_DAEMON dump
	ipvsCmdDelDaemon = 10 // stop a daemon
	ipvsCmdGetDaemon = 11 // dump the running daemons

	ipvsCmdAttrDaemon = 3 // nested IPVS_DAEMON_ATTR_*

	daemonAttrState       = 1 // u32: IP_VS_STATE_MASTER 1, IP_VS_STATE_BACKUP 2
	daemonAttrMcastIfn    = 2 // NUL-terminated string, at most 15 bytes
	daemonAttrSyncID      = 3 // u32 (the sync messages carry one byte)
	daemonAttrSyncMaxLen  = 4 // u16
	daemonAttrMcastGroup  = 5 // 4 bytes, network order (nla_get_in_addr)
	daemonAttrMcastGroup6 = 6 // 16 bytes
	daemonAttrMcastPort   = 7 // u16, host order
	daemonAttrMcastTTL    = 8 // u8
)

// syncCallTimeout bounds the wait for the answer to one sync-daemon
// request. The kernel handles a generic netlink request inside the
// sender's sendmsg call, so the answer is queued before Send returns, or
// never comes (see StopSyncDaemon): without a bound the reconciler would
// wait forever. The bound only has to cover this process being scheduled.
const syncCallTimeout = time.Second

// connSyncPath lists the connection table with each entry's origin. It is
// per network namespace; thread-self, not self, because /proc/self/net is
// the namespace of the process's main thread, and Open may run on a thread
// that entered another one.
const connSyncPath = "/proc/thread-self/net/ip_vs_conn_sync"

// syncConn is what the sync-daemon calls of IPVS use: a generic netlink
// socket of their own and the open connection-table file. Both are made
// by Open in the caller's namespace and stay bound to it.
type syncConn struct {
	gc     *genetlink.Conn // nil when err says why
	family genetlink.Family
	err    error

	callMu sync.Mutex // one request at a time, with its deadline
	dirty  bool       // a request went unanswered: drain before the next

	mu       sync.Mutex // one reader of conns at a time
	conns    *os.File   // nil when connsErr says why
	connsErr error
	rd       *bufio.Reader
}

func openSyncConn() *syncConn {
	s := &syncConn{}
	c, err := genetlink.Dial(nil)
	if err == nil {
		s.family, err = c.GetFamily(ipvsGenlName)
		if err != nil {
			c.Close()
		} else {
			s.gc = c
		}
	}
	if err != nil {
		s.err = fmt.Errorf("balancer: open IPVS generic netlink for the sync daemons: %w", err)
	}
	// Opened once, here: the file stays bound to this namespace, whatever
	// thread reads it later. Each read seeks back to the start.
	if s.conns, err = os.Open(connSyncPath); err != nil {
		s.connsErr = fmt.Errorf("balancer: open the IPVS connection table: %w", err)
	}
	s.rd = bufio.NewReaderSize(nil, 16<<10)
	return s
}

func (s *syncConn) close() error {
	if s == nil {
		return nil
	}
	var err error
	if s.gc != nil {
		err = s.gc.Close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns != nil {
		err = errors.Join(err, s.conns.Close())
		s.conns = nil
		s.connsErr = errors.New("balancer: IPVS closed")
	}
	return err
}

// netlink returns the socket for a sync-daemon call, or why there is none.
func (k *IPVS) syncNetlink() (*syncConn, error) {
	if k.daemons == nil {
		return nil, errors.New("IPVS was not opened with Open")
	}
	if k.daemons.gc == nil {
		return nil, k.daemons.err
	}
	return k.daemons, nil
}

// execute sends one request and waits at most syncCallTimeout for its
// answer. A request left unanswered (or answered out of turn) may still
// get its reply later: the socket is drained before the next request, so
// that reply is not taken for the next one's.
func (s *syncConn) execute(cmd uint8, data []byte, flags netlink.HeaderFlags) ([]genetlink.Message, error) {
	s.callMu.Lock()
	defer s.callMu.Unlock()
	if s.dirty {
		s.drain()
	}
	if err := s.gc.SetReadDeadline(time.Now().Add(syncCallTimeout)); err != nil {
		return nil, err
	}
	msgs, err := s.gc.Execute(genetlink.Message{
		Header: genetlink.Header{Command: cmd, Version: ipvsGenlVersion},
		Data:   data,
	}, s.family.ID, flags)
	_ = s.gc.SetReadDeadline(time.Time{})
	var errno syscall.Errno
	if err != nil && !errors.As(err, &errno) {
		s.dirty = true // no clean answer from the kernel
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("no answer from the kernel within %v: %w", syncCallTimeout, err)
	}
	return msgs, err
}

// drain reads and drops whatever replies are waiting.
func (s *syncConn) drain() {
	for {
		if err := s.gc.SetReadDeadline(time.Now().Add(10 * time.Millisecond)); err != nil {
			return
		}
		if _, _, err := s.gc.Receive(); err != nil {
			var errno syscall.Errno
			if !errors.As(err, &errno) { // an error reply is a reply: go on
				s.dirty = false
				return
			}
		}
	}
}

// SyncDaemons implements SyncKernel (IPVS_CMD_GET_DAEMON, a dump).
func (k *IPVS) SyncDaemons() ([]SyncDaemon, error) {
	s, err := k.syncNetlink()
	if err != nil {
		return nil, fmt.Errorf("balancer: list sync daemons: %w", err)
	}
	msgs, err := s.execute(ipvsCmdGetDaemon, nil, netlink.Request|netlink.Dump)
	if err != nil {
		return nil, syncListErr(err)
	}
	ds, err := parseSyncDaemons(msgs)
	if err != nil {
		return nil, syncListErr(err)
	}
	return ds, nil
}

func syncListErr(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		err = errno
	}
	hint := ""
	if errors.Is(err, syscall.EPERM) {
		hint = " (needs root or CAP_NET_ADMIN)"
	}
	return fmt.Errorf("balancer: list sync daemons: %w%s", err, hint)
}

// StartSyncDaemon implements SyncKernel (IPVS_CMD_NEW_DAEMON). Zero
// settings are left out of the message, so the kernel fills in its
// defaults.
func (k *IPVS) StartSyncDaemon(d SyncDaemon) error {
	if err := d.validate(); err != nil {
		return fmt.Errorf("balancer: start sync daemon %s: %w", d.Role, err)
	}
	s, err := k.syncNetlink()
	if err != nil {
		return fmt.Errorf("balancer: start sync daemon %s on %s: %w", d.Role, d.Interface, err)
	}
	data, err := encodeSyncDaemon(d)
	if err != nil {
		return fmt.Errorf("balancer: start sync daemon %s on %s: %w", d.Role, d.Interface, err)
	}
	_, err = s.execute(ipvsCmdNewDaemon, data, netlink.Request|netlink.Acknowledge)
	return syncOpErr("start", d.Role, d.Interface, err)
}

// StopSyncDaemon implements SyncKernel (IPVS_CMD_DEL_DAEMON).
//
// The kernel does not answer when it stops a daemon whose thread has not
// run yet (stopped right after the start): stop_sync_thread returns what
// kthread_stop returns, -EINTR for a thread that never ran, and
// netlink_rcv_skb sends no reply at all for -EINTR, not even an error.
// On 6.1 in the VM about half the stops sent right after a start went
// unanswered (ipvsadm, a new process each time, comes too late to meet
// it). The daemon is stopped all the same. So when no answer comes,
// StopSyncDaemon asks the kernel whether the role still runs and reports
// success when it does not.
func (k *IPVS) StopSyncDaemon(role SyncRole) error {
	s, err := k.syncNetlink()
	if err != nil {
		return fmt.Errorf("balancer: stop sync daemon %s: %w", role, err)
	}
	data, err := encodeSyncDaemon(SyncDaemon{Role: role})
	if err != nil {
		return fmt.Errorf("balancer: stop sync daemon %s: %w", role, err)
	}
	_, err = s.execute(ipvsCmdDelDaemon, data, netlink.Request|netlink.Acknowledge)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if ds, lerr := k.SyncDaemons(); lerr == nil && !slices.ContainsFunc(ds, func(d SyncDaemon) bool { return d.Role == role }) {
			return nil
		}
	}
	return syncOpErr("stop", role, "", err)
}

// encodeSyncDaemon builds the IPVS_CMD_ATTR_DAEMON attribute: the state
// alone (DEL_DAEMON) when the daemon names no interface, otherwise the
// state, interface and sync id NEW_DAEMON needs and each setting that is
// not zero.
func encodeSyncDaemon(d SyncDaemon) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	ae.Nested(ipvsCmdAttrDaemon, func(nae *netlink.AttributeEncoder) error {
		nae.Uint32(daemonAttrState, uint32(d.Role))
		if d.Interface == "" {
			return nil
		}
		nae.String(daemonAttrMcastIfn, d.Interface)
		nae.Uint32(daemonAttrSyncID, uint32(d.SyncID))
		if d.MaxLen != 0 {
			nae.Uint16(daemonAttrSyncMaxLen, d.MaxLen)
		}
		switch g := d.Group; {
		case g.Is4():
			b := g.As4() // network order, as nla_get_in_addr reads it
			nae.Bytes(daemonAttrMcastGroup, b[:])
		case g.Is6():
			b := g.As16()
			nae.Bytes(daemonAttrMcastGroup6, b[:])
		}
		if d.Port != 0 {
			nae.Uint16(daemonAttrMcastPort, d.Port)
		}
		if d.TTL != 0 {
			nae.Uint8(daemonAttrMcastTTL, d.TTL)
		}
		return nil
	})
	return ae.Encode()
}

// parseSyncDaemons reads a GET_DAEMON dump: one message per running
// daemon, sorted master first.
func parseSyncDaemons(msgs []genetlink.Message) ([]SyncDaemon, error) {
	var out []SyncDaemon
	for _, m := range msgs {
		ad, err := netlink.NewAttributeDecoder(m.Data)
		if err != nil {
			return nil, err
		}
		for ad.Next() {
			if ad.Type() != ipvsCmdAttrDaemon {
				continue
			}
			var d SyncDaemon
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				for nad.Next() {
					switch nad.Type() {
					case daemonAttrState:
						d.Role = SyncRole(nad.Uint32())
					case daemonAttrMcastIfn:
						d.Interface = nad.String()
					case daemonAttrSyncID:
						d.SyncID = uint8(nad.Uint32())
					case daemonAttrSyncMaxLen:
						d.MaxLen = nad.Uint16()
					case daemonAttrMcastGroup:
						if b := nad.Bytes(); len(b) == 4 {
							d.Group = netip.AddrFrom4([4]byte(b))
						}
					case daemonAttrMcastGroup6:
						if b := nad.Bytes(); len(b) == 16 {
							d.Group = netip.AddrFrom16([16]byte(b))
						}
					case daemonAttrMcastPort:
						d.Port = nad.Uint16()
					case daemonAttrMcastTTL:
						d.TTL = nad.Uint8()
					}
				}
				return nil
			})
			if d.Role != 0 {
				out = append(out, d)
			}
		}
		if err := ad.Err(); err != nil {
			return nil, err
		}
	}
	sortSyncDaemons(out)
	return out, nil
}

// ConnCounts implements SyncKernel: it streams the namespace's
// /proc/net/ip_vs_conn_sync through a fixed buffer, so memory stays
// constant however large the table.
//
// The kernel walks its connection hash from the start for every read
// call of about a page (ip_vs_conn_seq_start), so a read costs
// O(n²/page) on a huge table: the reconciler reads it on full passes only
// and spaces the reads out when they get slow.
func (k *IPVS) ConnCounts() (ConnCounts, error) {
	s := k.daemons
	if s == nil {
		return ConnCounts{}, errors.New("balancer: count connections: IPVS was not opened with Open")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		return ConnCounts{}, s.connsErr
	}
	if _, err := s.conns.Seek(0, io.SeekStart); err != nil {
		return ConnCounts{}, fmt.Errorf("balancer: read the IPVS connection table: %w", err)
	}
	s.rd.Reset(s.conns)
	c, err := countConns(s.rd)
	s.rd.Reset(nil)
	if err != nil {
		return ConnCounts{}, fmt.Errorf("balancer: read the IPVS connection table: %w", err)
	}
	return c, nil
}

// countConns counts the lines of an ip_vs_conn_sync listing by origin.
// The format (ip_vs_conn.c, ip_vs_conn_sync_seq_show) is a header line,
// then one line per entry, persistence templates included:
//
//	Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Origin Expires
//	TCP 0A4D000D B5E2 0A4D0064 0050 0A4D000E 0050 ESTABLISHED SYNC       899
//
// Every field is one word (IPv6 addresses are written without spaces), so
// the origin, LOCAL or SYNC, is the next to last.
func countConns(rd *bufio.Reader) (ConnCounts, error) {
	var c ConnCounts
	for n := 1; ; n++ {
		line, err := rd.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return c, fmt.Errorf("line %d longer than %d bytes", n, rd.Size())
		}
		if len(line) > 0 {
			if perr := countConnLine(line, &c); perr != nil {
				return c, fmt.Errorf("line %d: %w", n, perr)
			}
		}
		if err == io.EOF {
			return c, nil
		}
		if err != nil {
			return c, err
		}
	}
}

func countConnLine(line []byte, c *ConnCounts) error {
	line = bytes.TrimRight(line, " \t\r\n")
	if len(line) == 0 || bytes.HasPrefix(line, []byte("Pro ")) {
		return nil // the header
	}
	i := bytes.LastIndexAny(line, " \t") // before Expires
	if i < 0 {
		return fmt.Errorf("unexpected %q", line)
	}
	rest := bytes.TrimRight(line[:i], " \t")
	origin := rest[bytes.LastIndexAny(rest, " \t")+1:]
	switch {
	case bytes.EqualFold(origin, []byte("SYNC")):
		c.Synced++
	case bytes.EqualFold(origin, []byte("LOCAL")):
		c.Local++
	default:
		return fmt.Errorf("unexpected origin %q in %q", origin, line)
	}
	return nil
}

// The IPVS generic netlink family's config messages: the connection
// timeouts (ipvsadm --set). cloudflare/ipvs has calls for them, but its
// SetConfig always sends all three attributes, and the kernel
// (ip_vs_genl_set_config) takes every attribute present, zero included:
// lbd sends only the timeouts it sets.
const (
	ipvsCmdSetConfig = 12 // set; also the reply type of GET_CONFIG
	ipvsCmdGetConfig = 13

	ipvsCmdAttrTimeoutTCP    = 4 // u32, seconds
	ipvsCmdAttrTimeoutTCPFin = 5
	ipvsCmdAttrTimeoutUDP    = 6
)

// Timeouts implements Kernel (IPVS_CMD_GET_CONFIG).
func (k *IPVS) Timeouts() (Timeouts, error) {
	s, err := k.syncNetlink()
	if err != nil {
		return Timeouts{}, fmt.Errorf("balancer: read IPVS timeouts: %w", err)
	}
	msgs, err := s.execute(ipvsCmdGetConfig, nil, netlink.Request)
	if err != nil {
		return Timeouts{}, fmt.Errorf("balancer: read IPVS timeouts: %w", err)
	}
	t, err := parseTimeouts(msgs)
	if err != nil {
		return Timeouts{}, fmt.Errorf("balancer: read IPVS timeouts: %w", err)
	}
	return t, nil
}

// SetTimeouts implements Kernel (IPVS_CMD_SET_CONFIG with the non-zero
// timeouts only).
func (k *IPVS) SetTimeouts(t Timeouts) error {
	if err := t.validate(); err != nil {
		return err
	}
	s, err := k.syncNetlink()
	if err != nil {
		return fmt.Errorf("balancer: set IPVS timeouts %s: %w", t, err)
	}
	data, err := encodeTimeouts(t)
	if err != nil {
		return fmt.Errorf("balancer: set IPVS timeouts %s: %w", t, err)
	}
	if len(data) == 0 {
		return nil
	}
	if _, err := s.execute(ipvsCmdSetConfig, data, netlink.Request|netlink.Acknowledge); err != nil {
		hint := ""
		if errors.Is(err, syscall.EPERM) {
			hint = " (needs root or CAP_NET_ADMIN)"
		}
		return fmt.Errorf("balancer: set IPVS timeouts %s: %w%s", t, err, hint)
	}
	return nil
}

func encodeTimeouts(t Timeouts) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	for _, a := range []struct {
		typ uint16
		d   time.Duration
	}{{ipvsCmdAttrTimeoutTCP, t.TCP}, {ipvsCmdAttrTimeoutTCPFin, t.TCPFin}, {ipvsCmdAttrTimeoutUDP, t.UDP}} {
		if a.d > 0 {
			ae.Uint32(a.typ, uint32(a.d/time.Second))
		}
	}
	return ae.Encode()
}

func parseTimeouts(msgs []genetlink.Message) (Timeouts, error) {
	var t Timeouts
	if len(msgs) == 0 {
		return t, errors.New("no answer")
	}
	for _, m := range msgs {
		ad, err := netlink.NewAttributeDecoder(m.Data)
		if err != nil {
			return t, err
		}
		for ad.Next() {
			secs := func() time.Duration { return time.Duration(ad.Uint32()) * time.Second }
			switch ad.Type() {
			case ipvsCmdAttrTimeoutTCP:
				t.TCP = secs()
			case ipvsCmdAttrTimeoutTCPFin:
				t.TCPFin = secs()
			case ipvsCmdAttrTimeoutUDP:
				t.UDP = secs()
			}
		}
		if err := ad.Err(); err != nil {
			return t, err
		}
	}
	return t, nil
}
