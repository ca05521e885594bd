package importer

import (
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"lbd/config"
)

// PiranhaOptions says which director of the pair the lvs.cf is imported
// for: the file is the same on both, the lbd configs differ (priority,
// unicast source and peer).
type PiranhaOptions struct {
	Backup bool // import for the backup node (default: the primary)
	VRID   int  // VRRP router id; default 51
}

// piranha's defaults (lvs.cf(5), piranha's GUI).
const (
	piKeepalive = 6 * time.Second // seconds between heartbeats
	piTimeout   = 10 * time.Second
	piReentry   = 180 * time.Second
	piVRID      = 51
	// The check interval: nanny checks its real server every few seconds
	// (its -I, 2 by default as piranha starts it).
	piCheckInterval = 2 * time.Second
)

// Piranha reads a piranha lvs.cf and maps it to an lbd configuration.
func Piranha(path string, opt PiranhaOptions) (*Result, error) {
	data, err := config.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	return PiranhaBytes(path, data, opt), nil
}

// PiranhaBytes maps an lvs.cf held in memory.
func PiranhaBytes(name string, data []byte, opt PiranhaOptions) *Result {
	nodes, notes := parseTree(name, lex(data, "#"), nil)
	m := &piMapper{c: &config.Config{Global: config.NewGlobal()}, opt: opt, names: map[string]bool{}}
	m.notes = notes
	m.run(nodes)
	return m.result(m.c)
}

type piMapper struct {
	mapper
	c     *config.Config
	opt   PiranhaOptions
	names map[string]bool

	primary, backup string
	backupActive    bool
	keepalive       time.Duration
	vips            []string
	natRouter       *node
}

// piValue is a statement "key = value ...": its arguments without the "=".
func piValue(n *node) []string {
	if len(n.Args) > 0 && n.Args[0] == "=" {
		return n.Args[1:]
	}
	if strings.HasSuffix(n.Key, "=") {
		return n.Args
	}
	return n.Args
}

func piKey(n *node) string { return strings.TrimSuffix(n.Key, "=") }

func (m *piMapper) run(nodes []*node) {
	for _, n := range nodes {
		n.Key, n.Args = piKey(n), piValue(n)
	}
	sync := true
	for _, n := range nodes {
		switch n.Key {
		case "primary", "primary_private":
			if n.Key == "primary" || m.primary == "" {
				m.primary = n.arg(0)
			}
		case "backup", "backup_private":
			if n.Key == "backup" || m.backup == "" {
				m.backup = n.arg(0)
			}
		case "backup_active":
			m.backupActive = n.arg(0) == "1"
		case "service":
			if n.arg(0) != "lvs" {
				m.notMapped(n, "lbd directs LVS services; piranha's failover-only services are not mapped")
			}
		case "keepalive":
			if d, ok := m.seconds(n); ok && d > 0 {
				m.keepalive = d
			}
		case "deadtime":
			m.note(n, "deadtime %s: VRRP declares the master dead after 3 adverts plus a skew (vrrp.advert_interval = keepalive)", n.arg(0))
		case "heartbeat", "heartbeat_port", "serial_no", "rsh_command", "debug_level", "hard_shutdown", "lvs_command":
			if n.Key == "heartbeat" || n.Key == "heartbeat_port" {
				m.note(n, "%s: replaced by VRRP (protocol 112) between the directors", n.Key)
			}
		case "network":
			switch n.arg(0) {
			case "direct":
				m.c.Global.Forwarding = "dr"
			case "nat":
				m.c.Global.Forwarding = "nat"
			case "tunnel":
				m.c.Global.Forwarding = "tun"
			default:
				m.notMapped(n, "not direct, nat or tunnel")
			}
		case "nat_router":
			m.natRouter = n
		case "nat_nmask":
		case "syncdaemon":
			sync = n.arg(0) != "0"
		case "syncd_iface":
			if m.c.Sync == nil {
				m.c.Sync = config.NewSync()
			}
			m.c.Sync.Interface = n.arg(0)
		case "syncd_id":
			if id, ok := m.integer(n, 0, 255); ok {
				if m.c.Sync == nil {
					m.c.Sync = config.NewSync()
				}
				m.c.Sync.ID = ptr(id)
			}
		case "tcp_timeout", "tcpfin_timeout", "udp_timeout":
			if d, ok := m.seconds(n); ok {
				switch n.Key {
				case "tcp_timeout":
					m.c.Global.TCPTimeout = dur(d)
				case "tcpfin_timeout":
					m.c.Global.TCPFinTimeout = dur(d)
				default:
					m.c.Global.UDPTimeout = dur(d)
				}
			}
		case "virtual":
			m.virtual(n)
		case "failover":
			m.notMapped(n, "piranha failover services (no LVS) have no lbd equivalent")
		default:
			m.notMapped(n, "")
		}
	}
	m.redundancy(nodes, sync)
}

// redundancy maps primary/backup heartbeating to a unicast VRRP instance.
func (m *piMapper) redundancy(nodes []*node, sync bool) {
	if !m.backupActive || m.primary == "" || m.backup == "" {
		if m.c.Sync != nil || !sync {
			m.c.Sync = nil
		}
		return
	}
	self, peer, prio := m.primary, m.backup, 150
	if m.opt.Backup {
		self, peer, prio = m.backup, m.primary, 100
	}
	vrid := m.opt.VRID
	if vrid == 0 {
		vrid = piVRID
	}
	ka := m.keepalive
	if ka == 0 {
		ka = piKeepalive
	}
	lo, hi, step, _ := config.AdvertIntervalRange(3)
	ka = min(max(ka, lo), hi).Round(step)
	v := &config.VRRP{VRID: vrid, Priority: prio, Version: 3, AdvertInterval: dur(ka),
		UnicastPeers: []string{peer}, UnicastSource: self, GARPCount: 5, VIPs: m.vips}
	if r := m.natRouter; r != nil {
		addr, dev := r.arg(0), r.arg(1)
		base, _, _ := strings.Cut(dev, ":")
		if _, err := netip.ParseAddr(addr); err == nil && (base == "" || base == m.c.Global.Interface) {
			v.VIPs = append(v.VIPs, addr)
			m.note(r, "nat_router %s: held as a VIP with the others on %s", addr, m.c.Global.Interface)
		} else {
			m.notMapped(r, fmt.Sprintf("lbd's VRRP instance holds addresses on %s only", m.c.Global.Interface))
		}
	}
	m.c.VRRP = v
	if !sync {
		if m.c.Sync == nil {
			m.c.Sync = config.NewSync()
		}
		m.c.Sync.Enabled = ptr(false)
	}
	who := "primary"
	if m.opt.Backup {
		who = "backup"
	}
	m.note(nodes[0], "redundancy: VRRP for the %s (%s, priority %d, vrid %d, unicast to %s); import again with -backup for the other director; the vrid must be unique on the segment", who, self, prio, vrid, peer)
}

func (m *piMapper) virtual(n *node) {
	vs := *config.NewVirtualServer()
	vs.OnFailure = "remove" // nanny removes a failed real server unless quiesce_server
	hc := &config.HealthCheck{Type: "tcp", Interval: dur(piCheckInterval)}
	timeout, reentry := piTimeout, piReentry
	var send, expect string
	regex := false
	var program []string
	for _, s := range n.Children {
		s.Key, s.Args = piKey(s), piValue(s)
		switch s.Key {
		case "active":
			vs.Active = ptr(s.arg(0) != "0")
		case "address":
			if _, err := netip.ParseAddr(s.arg(0)); err != nil {
				m.notMapped(s, "not an address")
				continue
			}
			vs.VIP = s.arg(0)
			m.vips = appendNew(m.vips, s.arg(0))
			if dev := s.arg(1); dev != "" {
				base, _, _ := strings.Cut(dev, ":")
				if m.c.Global.Interface == "" {
					m.c.Global.Interface = base
				} else if base != m.c.Global.Interface {
					m.note(s, "%s on %s: lbd holds every VIP on %s", s.arg(0), base, m.c.Global.Interface)
				}
			}
		case "vip_nmask":
		case "port":
			if p, ok := m.integer(s, 1, 65535); ok {
				vs.Port = p
			}
		case "fwmark":
			if mark, err := strconv.ParseUint(s.arg(0), 0, 32); err == nil && mark > 0 {
				vs.Fwmark = uint32(mark)
			} else {
				m.notMapped(s, "not a firewall mark")
			}
		case "persistent":
			if d, ok := m.seconds(s); ok {
				vs.Persistence = dur(d.Round(time.Second))
			}
		case "pmask":
			if b, ok := maskBits(s.arg(0)); ok {
				vs.PersistenceNetmask = b
			} else {
				m.notMapped(s, "not a netmask")
			}
		case "scheduler":
			vs.Scheduler = strings.ToLower(s.arg(0))
		case "protocol":
			vs.Protocol = strings.ToLower(s.arg(0))
		case "send":
			send = unescape(s.value())
		case "expect":
			expect = unescape(s.value())
		case "use_regex":
			regex = s.arg(0) == "1"
		case "send_program":
			program = splitCommand(s.value())
		case "timeout":
			if d, ok := m.seconds(s); ok && d > 0 {
				timeout = d
			}
		case "reentry":
			if d, ok := m.seconds(s); ok {
				reentry = d
			}
		case "quiesce_server":
			if s.arg(0) == "1" {
				vs.OnFailure = "quiesce"
			}
		case "load_monitor":
			if s.arg(0) != "none" && s.arg(0) != "" {
				m.notMapped(s, "lbd does not set weights from the real servers' load")
			}
		case "server":
			if rs := m.server(s); rs != nil {
				vs.RealServers = append(vs.RealServers, *rs)
			}
		case "sorry_server":
			if _, err := netip.ParseAddr(s.arg(0)); err == nil {
				vs.SorryServer = s.arg(0)
			} else {
				m.notMapped(s, "not an address")
			}
		default:
			m.notMapped(s, "")
		}
	}
	checkPort := 0
	if vs.Fwmark != 0 {
		// The address is held by VRRP (vrrp.vips); nanny checks the port.
		checkPort = vs.Port
		vs.VIP, vs.Port, vs.Protocol = "", 0, ""
	}
	switch {
	case len(program) > 0:
		hc.Type, hc.Command = "exec", program
		if expect != "" {
			m.note(n, "send_program with expect %q: lbd's exec check passes on exit status 0; the output is not compared", expect)
		}
	case send != "" || expect != "":
		hc.Type, hc.Send = "send_expect", send
		if !regex {
			expect = regexp.QuoteMeta(expect)
		}
		hc.Expect = expect
		if hc.Expect == "" {
			hc.Expect = "." // any reply
		}
		if vs.Protocol == "udp" {
			hc.Type = "udp"
		}
	case vs.Protocol == "udp":
		hc = nil
		m.note(n, "virtual %s: a udp service without send/expect has no check in lbd (piranha's connect check cannot test UDP)", n.arg(0))
	}
	if hc != nil {
		// nanny declares a server dead after timeout seconds without an
		// answer and lets it back after reentry seconds of answers.
		hc.Timeout = dur(time.Second)
		if hc.Type != "exec" {
			hc.Port = checkPort
		}
		if vs.Fwmark != 0 && checkPort == 0 && hc.Type != "exec" {
			m.note(n, "virtual %s: fwmark service without a port: its check needs health_check.port", n.arg(0))
		}
		hc.Fall = max(1, int(math.Ceil(float64(timeout)/float64(piCheckInterval))))
		hc.Rise = max(1, int(math.Ceil(float64(reentry)/float64(piCheckInterval))))
		vs.HealthCheck = hc
	}
	if vs.Protocol == "udp" && vs.OnFailure == "remove" {
		vs.OnFailure = ""
	}
	vs.Name = uniqueName(safeName(n.arg(0)), m.names)
	m.c.VirtualServers = append(m.c.VirtualServers, vs)
}

func (m *piMapper) server(n *node) *config.RealServer {
	rs := &config.RealServer{Name: safeName(n.arg(0))}
	for _, s := range n.Children {
		s.Key, s.Args = piKey(s), piValue(s)
		switch s.Key {
		case "address":
			if _, err := netip.ParseAddr(s.arg(0)); err != nil {
				m.notMapped(s, "not an address")
				return nil
			}
			rs.Address = s.arg(0)
		case "port":
			if p, ok := m.integer(s, 1, 65535); ok {
				rs.Port = p
			}
		case "active":
			rs.Active = ptr(s.arg(0) != "0")
		case "weight":
			if w, ok := m.integer(s, 0, config.MaxWeight); ok {
				rs.Weight = ptr(w)
			}
		default:
			m.notMapped(s, "")
		}
	}
	if rs.Address == "" {
		m.notMapped(n, "server without an address")
		return nil
	}
	return rs
}

// unescape turns the \n, \r, \t and \\ of piranha's send and expect strings
// into the characters.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			switch s[i+1] {
			case 'n':
				b.WriteByte('\n')
				i++
				continue
			case 'r':
				b.WriteByte('\r')
				i++
				continue
			case 't':
				b.WriteByte('\t')
				i++
				continue
			case '\\':
				b.WriteByte('\\')
				i++
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
