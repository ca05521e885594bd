package balancer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sync"
	"syscall"

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

// SyncDaemons implements SyncKernel (IPVS_CMD_GET_DAEMON, a dump).
func (k *IPVS) SyncDaemons() ([]SyncDaemon, error) {
	s, err := k.syncNetlink()
	if err != nil {
		return nil, fmt.Errorf("balancer: list sync daemons: %w", err)
	}
	msgs, err := s.gc.Execute(genetlink.Message{
		Header: genetlink.Header{Command: ipvsCmdGetDaemon, Version: ipvsGenlVersion},
	}, s.family.ID, netlink.Request|netlink.Dump)
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
	_, err = s.gc.Execute(genetlink.Message{
		Header: genetlink.Header{Command: ipvsCmdNewDaemon, Version: ipvsGenlVersion},
		Data:   data,
	}, s.family.ID, netlink.Request|netlink.Acknowledge)
	return syncOpErr("start", d.Role, d.Interface, err)
}

// StopSyncDaemon implements SyncKernel (IPVS_CMD_DEL_DAEMON).
func (k *IPVS) StopSyncDaemon(role SyncRole) error {
	s, err := k.syncNetlink()
	if err != nil {
		return fmt.Errorf("balancer: stop sync daemon %s: %w", role, err)
	}
	data, err := encodeSyncDaemon(SyncDaemon{Role: role})
	if err != nil {
		return fmt.Errorf("balancer: stop sync daemon %s: %w", role, err)
	}
	_, err = s.gc.Execute(genetlink.Message{
		Header: genetlink.Header{Command: ipvsCmdDelDaemon, Version: ipvsGenlVersion},
		Data:   data,
	}, s.family.ID, netlink.Request|netlink.Acknowledge)
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
