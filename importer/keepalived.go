package importer

import (
	"fmt"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"time"

	"lbd/config"
)

// Keepalived reads a keepalived.conf (and the files it includes) and maps
// it to an lbd configuration.
func Keepalived(path string) (*Result, error) {
	r := &reader{comment: "#!"}
	nodes := r.readFile(path, 0)
	if nodes == nil && len(r.notes) > 0 && r.notes[0].Line == 0 {
		return nil, fmt.Errorf("import: %s", r.notes[0].Text)
	}
	return keepalivedTree(nodes, r.notes), nil
}

// KeepalivedBytes maps one keepalived.conf held in memory; includes are
// reported, not followed.
func KeepalivedBytes(name string, data []byte) *Result {
	r := &reader{comment: "#!"}
	nodes, notes := parseTree(name, lex(data, r.comment), func(n *node) []*node {
		r.notes = append(r.notes, Note{n.File, n.Line, "include not followed"})
		return nil
	})
	return keepalivedTree(nodes, append(notes, r.notes...))
}

// keepalived's checker defaults (keepalived.conf(5)).
const (
	kaDelayLoop      = 60 * time.Second
	kaConnectTimeout = 5 * time.Second
	kaRetry          = 1
	kaPriority       = 100
	kaVRRPVersion    = 2
)

type kaMapper struct {
	mapper
	c       *config.Config
	groups  map[string]*node
	version int // vrrp_version from global_defs; 0 = keepalived's default
	vsNames map[string]bool
}

func keepalivedTree(nodes []*node, notes []Note) *Result {
	m := &kaMapper{c: &config.Config{Global: config.NewGlobal()}, groups: map[string]*node{}, vsNames: map[string]bool{}}
	m.notes = notes
	// Groups and global_defs first: virtual servers and instances refer to them.
	for _, n := range nodes {
		switch n.Key {
		case "virtual_server_group":
			m.groups[n.arg(0)] = n
		case "global_defs":
			m.globalDefs(n)
		}
	}
	instances := 0
	for _, n := range nodes {
		if n.Key == "vrrp_instance" {
			instances++
		}
	}
	for _, n := range nodes {
		switch n.Key {
		case "global_defs", "virtual_server_group":
		case "vrrp_instance":
			v := m.vrrpInstance(n)
			if instances == 1 {
				m.c.VRRP = v // one instance: the [vrrp] table, as most pairs have it
			} else {
				// Several: [[vrrp_instance]] tables, by keepalived's names.
				v.Name = lbdName(n.arg(0))
				m.c.VRRPInstances = append(m.c.VRRPInstances, *v)
			}
		case "virtual_server":
			m.virtualServer(n)
		case "vrrp_sync_group":
			m.syncGroup(n, instances)
		case "vrrp_script":
			m.notMapped(n, "lbd tracks its virtual services (vrrp.service_penalty) and interfaces, not scripts")
		case "static_ipaddress", "static_routes", "static_rules", "virtual_routes", "virtual_rules":
			m.notMapped(n, "lbd does not manage addresses or routes besides the VIPs")
		default:
			m.notMapped(n, "")
		}
	}
	if m.c.VRRP != nil {
		m.finishVRRP(m.c.VRRP)
	}
	for i := range m.c.VRRPInstances {
		m.finishVRRP(&m.c.VRRPInstances[i])
	}
	m.coverVIPs(nodes)
	return m.result(m.c)
}

// syncGroup maps vrrp_sync_group NAME { group { I1 I2 } }.
func (m *kaMapper) syncGroup(n *node, instances int) {
	if instances < 2 {
		m.notMapped(n, "one VRRP instance needs no sync group")
		return
	}
	g := config.VRRPSyncGroup{Name: lbdName(n.arg(0))}
	for _, s := range n.Children {
		switch s.Key {
		case "group":
			for _, member := range s.Children {
				g.Instances = append(g.Instances, lbdName(member.Key))
			}
		default:
			m.notMapped(s, "lbd's sync groups hold their members in fault together; no scripts or notify of their own")
		}
	}
	m.note(n, "vrrp_sync_group %s: lbd moves the group together when a member is in fault (a link down); a priority change moves only its own instance", n.arg(0))
	m.c.VRRPSyncGroups = append(m.c.VRRPSyncGroups, g)
}

// coverVIPs gives every virtual server's address to an instance when there
// are several: lbd requires it, keepalived does not (a VIP held by no
// instance). Such an address goes to the first instance, with a note.
func (m *kaMapper) coverVIPs(nodes []*node) {
	if len(m.c.VRRPInstances) < 2 {
		return
	}
	owned := map[netip.Addr]bool{}
	for _, v := range m.c.VRRPInstances {
		for _, a := range v.VIPs {
			if p, err := netip.ParsePrefix(a); err == nil {
				owned[p.Addr()] = true
			} else if ip, err := netip.ParseAddr(a); err == nil {
				owned[ip] = true
			}
		}
	}
	first := &m.c.VRRPInstances[0]
	var at *node
	for _, n := range nodes {
		if n.Key == "vrrp_instance" {
			at = n
			break
		}
	}
	for _, vs := range m.c.VirtualServers {
		ip, err := netip.ParseAddr(vs.VIP)
		if err != nil || owned[ip] {
			continue
		}
		owned[ip] = true
		first.VIPs = append(first.VIPs, vs.VIP)
		m.note(at, "virtual server %s: its address %s is in no vrrp_instance; lbd needs an owner, so it was added to %s (move it if another instance should hold it)", vs.Name, vs.VIP, first.Name)
	}
}

// lbdName makes a keepalived name (VI_1, "web farm") an lbd name.
func lbdName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	if len(b) > 64 {
		b = b[:64]
	}
	if len(b) == 0 {
		return "vrrp"
	}
	return string(b)
}

func (m *kaMapper) globalDefs(n *node) {
	for _, s := range n.Children {
		switch s.Key {
		case "router_id":
			m.c.Global.NodeName = safeName(s.arg(0))
		case "vrrp_version":
			if v, ok := m.integer(s, 2, 3); ok {
				m.version = v
			}
		case "lvs_sync_daemon":
			// lvs_sync_daemon IFACE INSTANCE [id N] [maxlen N] [port N] [ttl N] [group ADDR]
			sy := config.NewSync()
			sy.Interface = s.arg(0)
			for i := 2; i+1 < len(s.Args); i += 2 {
				v, err := strconv.Atoi(s.Args[i+1])
				switch k := s.Args[i]; {
				case k == "group":
					if a, err := netip.ParseAddr(s.Args[i+1]); err == nil && a.Is6() {
						sy.Group6 = a.String()
					} else {
						sy.Group = s.Args[i+1]
					}
				case err != nil:
					m.note(s, "not mapped: lvs_sync_daemon %s %q is not a number", k, s.Args[i+1])
				case k == "id":
					sy.ID = ptr(v)
				case k == "maxlen":
					sy.MaxPacketLen = v
				case k == "port":
					sy.Port = v
				case k == "ttl":
					sy.TTL = v
				default:
					m.note(s, "not mapped: lvs_sync_daemon option %s", k)
				}
			}
			m.c.Sync = sy
		default:
			m.notMapped(s, "")
		}
	}
}

func (m *kaMapper) vrrpInstance(n *node) *config.VRRP {
	v := &config.VRRP{Priority: kaPriority, Version: m.version}
	garpSet := false
	if v.Version == 0 {
		v.Version = kaVRRPVersion
	}
	for _, s := range n.Children {
		switch s.Key {
		case "state":
			m.note(s, "state %s: lbd starts as backup and elects the master by priority", s.arg(0))
		case "interface":
			v.Interface = s.arg(0)
		case "virtual_router_id":
			if id, ok := m.integer(s, config.MinVRID, config.MaxVRID); ok {
				v.VRID = id
			}
		case "priority":
			if p, ok := m.integer(s, config.MinPriority, config.MaxPriority); ok {
				v.Priority = p
			}
		case "advert_int":
			if d, ok := m.seconds(s); ok {
				v.AdvertInterval = dur(d)
			}
		case "version":
			if ver, ok := m.integer(s, 2, 3); ok {
				v.Version = ver
			}
		case "virtual_ipaddress":
			for _, a := range s.Children {
				m.vip(v, a)
			}
		case "virtual_ipaddress_excluded":
			for _, a := range s.Children {
				m.vip(v, a)
			}
		case "unicast_src_ip":
			v.UnicastSource = s.arg(0)
		case "unicast_peer":
			for _, p := range s.Children {
				v.UnicastPeers = append(v.UnicastPeers, p.Key)
				if len(p.Args) > 0 {
					m.note(p, "unicast_peer options %q not mapped", p.value())
				}
			}
		case "authentication":
			m.auth(v, s)
		case "track_interface":
			for _, t := range s.Children {
				ti := config.TrackInterface{Name: t.Key}
				if t.arg(0) == "weight" {
					w, err := strconv.Atoi(t.arg(1))
					if err != nil || w > 0 || w < -config.MaxTrackWeight {
						m.note(t, "track_interface %s weight %q: lbd lowers the priority by 1..%d (a negative keepalived weight); taken as fault on link down", t.Key, t.arg(1), config.MaxTrackWeight)
					} else {
						ti.Weight = -w
					}
				}
				v.TrackInterfaces = append(v.TrackInterfaces, ti)
			}
		case "nopreempt":
			v.Preempt = ptr(false)
		case "preempt_delay":
			if d, ok := m.seconds(s); ok {
				v.PreemptDelay = dur(d)
			}
		case "notify":
			v.Notify = splitCommand(s.value())
			m.note(s, "notify %s: lbd runs it with the instance, the old and the new state as arguments (keepalived passes type, name, state, priority)", s.value())
		case "garp_master_repeat":
			if c, ok := m.integer(s, 0, 1000); ok {
				v.GARPCount, garpSet = c, true
			}
		case "garp_master_refresh":
			if d, ok := m.seconds(s); ok {
				v.GARPRefresh = dur(d)
			}
		case "notify_master", "notify_backup", "notify_fault", "notify_stop":
			m.notMapped(s, "use vrrp.notify: one command that gets the new state as an argument")
		case "track_script":
			m.notMapped(s, "lbd tracks its virtual services (vrrp.service_penalty), not scripts")
		default:
			m.notMapped(s, "")
		}
	}
	if !garpSet {
		v.GARPCount = 5 // keepalived sends 5 by default as well
	}
	if m.c.Global.Interface == "" {
		m.c.Global.Interface = v.Interface
	}
	if v.Interface == m.c.Global.Interface {
		v.Interface = ""
	}
	return v
}

// vip maps one virtual_ipaddress line: ADDR[/PREFIX] [dev IF] [label L] ...
func (m *kaMapper) vip(v *config.VRRP, a *node) {
	addr := a.Key
	if _, err := netip.ParsePrefix(addr); err != nil {
		if _, err := netip.ParseAddr(addr); err != nil {
			m.note(a, "not mapped: virtual_ipaddress %q is not an address", addr)
			return
		}
	}
	v.VIPs = append(v.VIPs, addr)
	for i := 0; i < len(a.Args); i++ {
		switch a.Args[i] {
		case "dev":
			if i+1 < len(a.Args) && a.Args[i+1] != v.Interface && v.Interface != "" {
				m.note(a, "%s dev %s: lbd holds every VIP on the instance's interface %s", addr, a.Args[i+1], v.Interface)
			}
			i++
		case "label", "brd", "scope":
			i++ // cosmetic for lbd: the address is added without them
		default:
			m.note(a, "virtual_ipaddress option %q not mapped", a.Args[i])
		}
	}
}

func (m *kaMapper) auth(v *config.VRRP, s *node) {
	typ, pass := "", ""
	for _, a := range s.Children {
		switch a.Key {
		case "auth_type":
			typ = strings.ToUpper(a.arg(0))
		case "auth_pass":
			pass = a.arg(0)
		}
	}
	if typ != "PASS" {
		m.notMapped(s, "only auth_type PASS (VRRPv2 simple text) exists in lbd")
		return
	}
	if len(pass) > config.MaxAuthPassLen {
		pass = pass[:config.MaxAuthPassLen] // keepalived sends the first 8 bytes too
	}
	v.AuthPass = pass
	m.note(s, "authentication PASS mapped to vrrp.auth_pass: it is insecure and needs version = 2")
}

// finishVRRP makes the instance fit lbd's rules: VRRPv2 needs whole-second
// adverts.
func (m *kaMapper) finishVRRP(v *config.VRRP) {
	if v.AdvertInterval.Duration == 0 {
		v.AdvertInterval = dur(time.Second)
	}
	if v.Version == 2 && v.AdvertInterval.Duration%time.Second != 0 {
		v.AdvertInterval = dur(v.AdvertInterval.Duration.Round(time.Second))
		if v.AdvertInterval.Duration == 0 {
			v.AdvertInterval = dur(time.Second)
		}
	}
}

// kaService is one virtual service of a virtual_server statement (a group
// gives several).
type kaService struct {
	name  string
	vip   string
	port  int
	mark  uint32
	start *node
}

func (m *kaMapper) virtualServer(n *node) {
	var svcs []kaService
	switch {
	case n.arg(0) == "fwmark":
		if mark, err := strconv.ParseUint(n.arg(1), 0, 32); err == nil && mark > 0 {
			svcs = append(svcs, kaService{name: "fwmark-" + n.arg(1), mark: uint32(mark)})
		}
	case n.arg(0) == "group":
		g := m.groups[n.arg(1)]
		if g == nil {
			m.note(n, "not mapped: virtual_server group %s: no virtual_server_group of that name", n.arg(1))
			return
		}
		svcs = m.groupMembers(g)
	default:
		port, err := strconv.Atoi(n.arg(1))
		if _, aerr := netip.ParseAddr(n.arg(0)); aerr == nil && err == nil {
			svcs = append(svcs, kaService{name: n.arg(0) + "-" + n.arg(1), vip: n.arg(0), port: port})
		}
	}
	if len(svcs) == 0 {
		m.notMapped(n, "not an address and port, fwmark N or group NAME")
		return
	}
	vs := *config.NewVirtualServer()
	vs.OnFailure = "remove" // keepalived removes a failed real server unless inhibit_on_failure
	proto := "tcp"
	var hc *config.HealthCheck
	var checkFrom string
	delay := kaDelayLoop
	for _, s := range n.Children {
		switch s.Key {
		case "delay_loop":
			if d, ok := m.seconds(s); ok && d > 0 {
				delay = d
			}
		case "lb_algo", "lvs_sched":
			vs.Scheduler = strings.ToLower(s.arg(0))
		case "lb_kind", "lvs_method":
			vs.Forwarding = m.forwarding(s)
		case "persistence_timeout":
			if d, ok := m.seconds(s); ok {
				vs.Persistence = dur(d.Round(time.Second))
			}
		case "persistence_granularity":
			if b, ok := maskBits(s.arg(0)); ok {
				vs.PersistenceNetmask = b
			} else {
				m.notMapped(s, "not a netmask")
			}
		case "protocol":
			proto = strings.ToLower(s.arg(0))
		case "sorry_server":
			port, perr := strconv.Atoi(s.arg(1))
			if _, err := netip.ParseAddr(s.arg(0)); err != nil {
				m.notMapped(s, "not an address")
			} else if s.arg(1) != "" && (perr != nil || port < 1 || port > 65535) {
				m.notMapped(s, "not a port")
			} else {
				vs.SorryServer = hostPort(s.arg(0), port)
			}
		case "quorum":
			if q, ok := m.integer(s, 0, 1<<30); ok {
				vs.Quorum = q
			}
		case "inhibit_on_failure":
			vs.OnFailure = "quiesce"
		case "sh-port", "sh-fallback", "mh-port", "mh-fallback":
			vs.SchedulerFlags = append(vs.SchedulerFlags, s.Key)
		case "virtualhost":
			// Host header of HTTP_GET/SSL_GET checks; applied below.
		case "real_server":
			rs, c := m.realServer(s, &vs, proto)
			if rs == nil {
				continue
			}
			vs.RealServers = append(vs.RealServers, *rs)
			switch {
			case c == nil:
			case hc == nil:
				hc, checkFrom = c, rs.Name
			case !reflect.DeepEqual(hc, c):
				m.note(s, "real_server %s: its check differs from %s's; lbd checks every real server of a service alike, with %s's", rs.Name, checkFrom, checkFrom)
			}
		default:
			m.notMapped(s, "")
		}
	}
	if hc != nil {
		hc.Interval = dur(delay)
		if vh := findChild(n, "virtualhost"); vh != nil && hc.Host == "" && (hc.Type == "http" || hc.Type == "https") {
			hc.Host = vh.arg(0)
		}
		m.clampTimeout(n, hc)
		vs.HealthCheck = hc
	}
	vs.Protocol = proto
	if proto == "udp" && vs.OnFailure == "remove" {
		vs.OnFailure = "" // lbd's default for udp
	}
	for _, sv := range svcs {
		out := vs
		out.RealServers = append([]config.RealServer(nil), vs.RealServers...)
		out.Name = uniqueName(safeName(sv.name), m.vsNames)
		out.VIP, out.Port, out.Fwmark = sv.vip, sv.port, sv.mark
		if sv.mark != 0 {
			out.Protocol = ""
		}
		if sv.vip != "" {
			if a := netip.MustParseAddr(sv.vip); a.Is6() {
				out.Family = ""
			}
		}
		m.c.VirtualServers = append(m.c.VirtualServers, out)
	}
}

func findChild(n *node, key string) *node {
	for _, c := range n.Children {
		if c.Key == key {
			return c
		}
	}
	return nil
}

func (m *kaMapper) forwarding(s *node) string {
	switch strings.ToUpper(s.arg(0)) {
	case "DR":
		return "dr"
	case "NAT":
		return "nat"
	case "TUN":
		return "tun"
	}
	m.notMapped(s, "lbd forwards by dr, nat or tun")
	return ""
}

// maxGroupRange bounds how many services one "ADDR-LAST PORT" group line
// expands to.
const maxGroupRange = 256

// groupMembers expands a virtual_server_group: "ADDR PORT", "ADDR-LAST PORT"
// (the last byte ranges) and "fwmark N".
func (m *kaMapper) groupMembers(g *node) []kaService {
	var out []kaService
	for _, e := range g.Children {
		if e.Key == "fwmark" {
			if mark, err := strconv.ParseUint(e.arg(0), 0, 32); err == nil && mark > 0 {
				out = append(out, kaService{name: g.arg(0) + "-fwmark-" + e.arg(0), mark: uint32(mark)})
				continue
			}
			m.notMapped(e, "not a firewall mark")
			continue
		}
		port, err := strconv.Atoi(e.arg(0))
		if err != nil {
			m.notMapped(e, "group member needs an address and a port")
			continue
		}
		first, last, ok := addrRange(e.Key)
		if !ok {
			m.notMapped(e, "not an address or address range")
			continue
		}
		for a, i := first, 0; ; a, i = a.Next(), i+1 {
			if i >= maxGroupRange {
				m.note(e, "range %s: only the first %d addresses were mapped", e.Key, maxGroupRange)
				break
			}
			out = append(out, kaService{name: g.arg(0) + "-" + a.String() + "-" + e.arg(0), vip: a.String(), port: port})
			if a == last {
				break
			}
		}
	}
	return out
}

// addrRange parses "10.0.0.1" or "10.0.0.1-20" (keepalived: the last
// byte, or the last 16-bit group for IPv6, ranges up to the number after
// the dash).
func addrRange(s string) (first, last netip.Addr, ok bool) {
	base, end, hasRange := strings.Cut(s, "-")
	a, err := netip.ParseAddr(base)
	if err != nil {
		return first, last, false
	}
	if !hasRange {
		return a, a, true
	}
	b := a.AsSlice()
	if a.Is4() {
		n, err := strconv.Atoi(end)
		if err != nil || n < int(b[3]) || n > 255 {
			return first, last, false
		}
		b[3] = byte(n)
	} else {
		n, err := strconv.ParseUint(end, 16, 16)
		cur := uint64(b[14])<<8 | uint64(b[15])
		if err != nil || n < cur {
			return first, last, false
		}
		b[14], b[15] = byte(n>>8), byte(n)
	}
	l, _ := netip.AddrFromSlice(b)
	return a, l, true
}

func (m *kaMapper) realServer(n *node, vs *config.VirtualServer, proto string) (*config.RealServer, *config.HealthCheck) {
	if _, err := netip.ParseAddr(n.arg(0)); err != nil {
		m.notMapped(n, "not an address")
		return nil, nil
	}
	port, _ := strconv.Atoi(n.arg(1))
	rs := &config.RealServer{Address: n.arg(0), Port: port}
	name := n.arg(0)
	if port != 0 {
		name += "-" + n.arg(1)
	}
	rs.Name = safeName(name)
	var hc *config.HealthCheck
	for _, s := range n.Children {
		switch s.Key {
		case "weight":
			if w, ok := m.integer(s, 0, config.MaxWeight); ok {
				rs.Weight = ptr(w)
			}
		case "inhibit_on_failure":
			if vs.OnFailure != "quiesce" {
				m.note(s, "inhibit_on_failure on one real server: lbd's on_failure is per service; the service is set to quiesce")
				vs.OnFailure = "quiesce"
			}
		case "lvs_method":
			rs.Forwarding = m.forwarding(s)
		case "HTTP_GET", "SSL_GET", "TCP_CHECK", "MISC_CHECK", "SMTP_CHECK", "DNS_CHECK":
			c := m.check(s, proto)
			if c == nil {
				continue
			}
			if hc != nil {
				m.note(s, "not mapped: a second check on real server %s (lbd runs one check per service)", rs.Name)
				continue
			}
			hc = c
		case "notify_up", "notify_down":
			m.notMapped(s, "lbd reports health changes in its log, events and metrics")
		default:
			m.notMapped(s, "")
		}
	}
	return rs, hc
}

// check maps one checker block; the interval (delay_loop) is set by the
// caller.
func (m *kaMapper) check(n *node, proto string) *config.HealthCheck {
	hc := &config.HealthCheck{Timeout: dur(kaConnectTimeout), Rise: 1, Fall: kaRetry + 1}
	switch n.Key {
	case "HTTP_GET":
		hc.Type = "http"
	case "SSL_GET":
		hc.Type = "https"
	case "TCP_CHECK":
		hc.Type = "tcp"
	case "MISC_CHECK":
		hc.Type = "exec"
	case "SMTP_CHECK":
		hc.Type = "smtp"
	case "DNS_CHECK":
		hc.Type = "dns"
	}
	urls := 0
	for _, s := range n.Children {
		switch s.Key {
		case "connect_timeout", "misc_timeout":
			if d, ok := m.seconds(s); ok && d > 0 {
				hc.Timeout = dur(d)
			}
		case "retry", "nb_get_retry":
			if r, ok := m.integer(s, 0, 1000); ok {
				hc.Fall = r + 1
			}
		case "delay_before_retry":
			m.note(s, "delay_before_retry: lbd retries at the check interval (fall = retry + 1 failed checks in a row)")
		case "connect_port":
			if p, ok := m.integer(s, 1, 65535); ok {
				hc.Port = p
			}
		case "connect_ip":
			hc.Address = s.arg(0)
			m.note(s, "connect_ip %s: lbd's check address is per service; every real server is checked at it", s.arg(0))
		case "url":
			urls++
			if urls > 1 {
				m.notMapped(s, "lbd checks one URL per service; the first was mapped")
				continue
			}
			m.url(hc, s)
		case "virtualhost":
			hc.Host = s.arg(0)
		case "misc_path":
			hc.Command = splitCommand(s.value())
		case "misc_dynamic":
			m.notMapped(s, "lbd does not set weights from a program's exit code")
		case "helo_name":
			hc.HeloName = s.arg(0)
		case "host":
			// SMTP_CHECK host { connect_ip, connect_port }: the first one.
			for _, h := range s.Children {
				switch h.Key {
				case "connect_ip":
					hc.Address = h.arg(0)
				case "connect_port":
					if p, ok := m.integer(h, 1, 65535); ok {
						hc.Port = p
					}
				}
			}
		case "type":
			hc.QueryType = strings.ToUpper(s.arg(0))
		case "name":
			hc.QueryName = s.arg(0)
		case "warmup", "bindto", "bind_port", "fwmark", "enable_sni", "tls_compliant":
			m.notMapped(s, "")
		default:
			m.notMapped(s, "")
		}
	}
	if hc.Type == "exec" && len(hc.Command) == 0 {
		m.notMapped(n, "MISC_CHECK without misc_path")
		return nil
	}
	if hc.Type == "dns" && proto == "tcp" {
		hc.DNSTransport = "tcp"
	}
	return hc
}

func (m *kaMapper) url(hc *config.HealthCheck, n *node) {
	for _, s := range n.Children {
		switch s.Key {
		case "path":
			hc.Path = s.arg(0)
		case "status_code":
			for _, a := range s.Args {
				hc.ExpectStatus = append(hc.ExpectStatus, a)
			}
		case "digest":
			m.notMapped(s, "lbd does not compare an MD5 digest of the page; consider health_check.expect_body")
		case "regex":
			hc.ExpectBody = s.value()
		default:
			m.notMapped(s, "")
		}
	}
	if hc.Path == "" {
		hc.Path = "/"
	}
	if len(hc.ExpectStatus) == 0 {
		hc.ExpectStatus = []string{"200-299"} // keepalived's default: any 2xx
	}
}

// splitCommand splits a command line at spaces, honouring single and double
// quotes (keepalived's misc_path and notify are run by a shell).
func splitCommand(s string) []string {
	var out []string
	var b strings.Builder
	var quote rune
	inWord := false
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			b.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				out = append(out, b.String())
				b.Reset()
				inWord = false
			}
		default:
			b.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		out = append(out, b.String())
	}
	return out
}
