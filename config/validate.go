package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Schedulers are the IPVS schedulers of the Linux kernel, by name.
var schedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}

// schedulerFlags are the scheduler-specific IPVS flags, by the scheduler
// they belong to (ipvsadm's names).
var schedulerFlags = map[string][]string{
	"sh": {"sh-fallback", "sh-port"},
	"mh": {"mh-fallback", "mh-port"},
}

var (
	forwardings  = []string{"dr", "nat", "tun"}
	protocols    = []string{"tcp", "udp", "sctp"}
	families     = []string{"inet", "inet6"}
	onFailures   = []string{"quiesce", "remove"}
	checkTypes   = []string{"tcp", "http", "https", "send_expect", "exec", "dns", "udp", "smtp", "none"}
	transports   = []string{"udp", "tcp"}
	safeName     = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	statusRange  = regexp.MustCompile(`^([0-9]{3})(?:-([0-9]{3}))?$`)
	methodToken  = regexp.MustCompile(`^[A-Z]+$`)
	sha256Hex    = regexp.MustCompile(`^[0-9a-f]{64}$`)
	maxPreemptDl = 1000 * time.Second
)

// Length limits of free-text settings: generous for any real use, small
// enough that a mistaken paste or a hostile edit cannot make every log
// line, metric label and page carry megabytes.
const (
	maxNameLen = 64   // node_name and names of virtual and real servers
	maxPathLen = 4096 // file paths, program arguments, URL paths (PATH_MAX)
	maxArgs    = 64   // arguments of a notify or exec command
	maxHostLen = 255  // health_check.host and sni (a DNS name, maybe :port)
	maxTextLen = 4096 // send, expect and expect_body
)

// tooLong reports (and records) a string setting longer than limit bytes.
func (v *validator) tooLong(key, s string, limit int) bool {
	if len(s) <= limit {
		return false
	}
	v.addf(key, "is %d bytes long; at most %d are allowed", len(s), limit)
	return true
}

type validator struct {
	col *collector
	// present holds the key paths written in the source: "is required"
	// is only true of a key that is absent.
	present map[string]bool
}

func (v *validator) addf(key, format string, args ...any) {
	v.col.add(key, fmt.Sprintf(format, args...))
}

func oneOf(s string, set []string) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}

// enum checks that key's value s is one of set.
func (v *validator) enum(key, what, s string, set []string) bool {
	if oneOf(s, set) {
		return true
	}
	v.addf(key, "unknown %s %q (valid: %s)", what, s, strings.Join(set, ", "))
	return false
}

// inheritedEnum is enum for a setting whose default is inherited from an
// enclosing table: a value not written at key is checked (and reported)
// where it is written, once, not again in every table that inherits it.
func (v *validator) inheritedEnum(key, what, s string, set []string) bool {
	if !v.present[key] {
		return oneOf(s, set)
	}
	return v.enum(key, what, s, set)
}

// intRange checks lo <= n <= hi.
func (v *validator) intRange(key string, n, lo, hi int) bool {
	if n >= lo && n <= hi {
		return true
	}
	v.addf(key, "%d is out of range (%d..%d)", n, lo, hi)
	return false
}

// addr parses an IP address (no zone, no IPv4-mapped IPv6 form).
func (v *validator) addr(key, s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		v.addf(key, "%q is not an IP address", s)
		return a, false
	case a.Zone() != "":
		v.addf(key, "%q: zones are not allowed", s)
		return a, false
	case a.Is4In6():
		v.addf(key, "%q: write IPv4 addresses as IPv4 (%s)", s, a.Unmap())
		return a, false
	}
	return a, true
}

func familyOf(a netip.Addr) string {
	if a.Is4() {
		return "inet"
	}
	return "inet6"
}

func familyName(f string) string {
	if f == "inet6" {
		return "IPv6"
	}
	return "IPv4"
}

// ifname checks a Linux interface name as the kernel's dev_valid_name
// does: 1 to IFNAMSIZ-1 bytes, not "." or "..", no '/', ':' or ASCII
// whitespace.
func (v *validator) ifname(key, s string) {
	if s == "" || len(s) > 15 || s == "." || s == ".." || strings.ContainsAny(s, "/: \t\n\v\f\r") {
		v.addf(key, "%q is not a valid interface name (1 to 15 bytes, no '/', ':' or whitespace)", s)
	}
}

// name checks the name of a virtual or real server: required, and safe to
// put in a URL path or a shell command line.
func (v *validator) name(key, s string) {
	if s == "" {
		v.addf(key, "is required")
		return
	}
	switch {
	case len(s) > maxNameLen:
		v.tooLong(key, s, maxNameLen)
	case !safeName.MatchString(s):
		v.addf(key, "%q may contain only letters, digits, '.', '_' and '-'", s)
	case s == "." || s == "..":
		// Would be cleaned out of a URL path.
		v.addf(key, "%q is not a usable name", s)
	}
}

// program checks that argv's program exists and is executable.
func (v *validator) program(key string, argv []string) {
	if len(argv) == 0 || argv[0] == "" {
		v.addf(key, "is required (the program and its arguments)")
		return
	}
	if len(argv) > maxArgs {
		v.addf(key, "has %d arguments; at most %d are allowed", len(argv), maxArgs)
		return
	}
	long := false
	for i, a := range argv {
		long = v.tooLong(indexKey(key, i), a, maxPathLen) || long
	}
	if long {
		return
	}
	p := argv[0]
	if !strings.Contains(p, "/") {
		if _, err := exec.LookPath(p); err != nil {
			v.addf(key, "program %q not found in PATH", p)
		}
		return
	}
	if !strings.HasPrefix(p, "/") {
		v.addf(key, "program %q must be an absolute path or a name found in PATH", p)
		return
	}
	fi, err := os.Stat(p)
	switch {
	case err != nil:
		v.addf(key, "program %q not found", p)
	case fi.IsDir() || fi.Mode().Perm()&0o111 == 0:
		v.addf(key, "program %q is not executable", p)
	}
}

// validate checks c (decoded, defaults applied) and records every problem.
func validate(c *Config, col *collector, present map[string]bool) {
	v := &validator{col: col, present: present}
	v.global(&c.Global)
	v.console(&c.Console)
	if c.VRRP != nil {
		v.vrrp("vrrp", c.VRRP)
		if c.VRRP.Name != "" {
			v.name("vrrp.name", c.VRRP.Name)
		}
	}
	v.vrrpInstances(c)
	if c.Sync != nil {
		v.sync(c.Sync, c.HasVRRP())
	}
	if c.BGP != nil {
		v.bgp(c)
	}
	v.virtualServers(c.VirtualServers)
	v.alerts(c.Alerts)
	if c.Peer != nil {
		v.peer(c.Peer)
	}
}

func (v *validator) global(g *Global) {
	if g.NodeName == "" {
		v.addf("global.node_name", "must not be empty (leave it out to use the host name)")
	}
	v.tooLong("global.node_name", g.NodeName, maxNameLen)
	if g.Interface != "" {
		v.ifname("global.interface", g.Interface)
	}
	v.enum("global.forwarding", "forwarding method", g.Forwarding, forwardings)
	v.listen("global.listen", g.Listen)
	if g.ResyncInterval.Duration < time.Second {
		v.addf("global.resync_interval", "%v is too short (at least 1s)", g.ResyncInterval)
	}
	if g.RemoveGrace.Duration < 0 {
		v.addf("global.remove_grace", "must not be negative")
	}
	v.connTimeout("global.tcp_timeout", g.TCPTimeout.Duration)
	v.connTimeout("global.tcpfin_timeout", g.TCPFinTimeout.Duration)
	v.connTimeout("global.udp_timeout", g.UDPTimeout.Duration)
}

// connTimeout checks an IPVS connection timeout: whole seconds up to
// MaxConnTimeout; 0 (unset) leaves the kernel's.
func (v *validator) connTimeout(key string, d time.Duration) {
	switch {
	case d < 0:
		v.addf(key, "must not be negative (0 or unset keeps the kernel's)")
	case d%time.Second != 0:
		v.addf(key, "%v: must be whole seconds (the kernel counts seconds)", d)
	case d > MaxConnTimeout:
		v.addf(key, "%v is too long (at most %v)", d, MaxConnTimeout)
	}
}

func (v *validator) listen(key, s string) {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		v.addf(key, "%q is not host:port (for example \":3636\" or \"127.0.0.1:3636\")", s)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		v.addf(key, "%q: port must be 1..65535", s)
	}
}

func (v *validator) console(c *Console) {
	if c.PasswordHash != "" && (!strings.HasPrefix(c.PasswordHash, "$2") || len(c.PasswordHash) != 60) {
		v.addf("console.password_hash", "is not a bcrypt hash (set it with `lbd passwd`)")
	}
	admin := map[string]bool{}
	for i, h := range c.TokenHashes {
		if !sha256Hex.MatchString(h) {
			v.addf(indexKey("console.token_hashes", i), "is not a SHA-256 hex digest (create tokens with `lbd token`)")
		}
		admin[h] = true
	}
	for i, h := range c.ReadTokenHashes {
		switch {
		case !sha256Hex.MatchString(h):
			v.addf(indexKey("console.read_token_hashes", i), "is not a SHA-256 hex digest (create tokens with `lbd token`)")
		case admin[h]:
			v.addf(indexKey("console.read_token_hashes", i), "is also in token_hashes: a token has one scope (remove it from one list)")
		}
	}
	switch {
	case c.TLSCert != "" && c.TLSKey == "":
		v.addf("console.tls_key", "is required with tls_cert")
	case c.TLSKey != "" && c.TLSCert == "":
		v.addf("console.tls_cert", "is required with tls_key")
	case c.TLSCert != "":
		v.tlsPair(c.TLSCert, c.TLSKey)
	}
	if c.SessionTimeout.Duration <= 0 {
		v.addf("console.session_timeout", "must be positive")
	}
}

// tlsPair checks that the console's certificate and key files exist and
// load as a pair: a console edit with a wrong path would otherwise be
// accepted and keep the console down from the next start on.
func (v *validator) tlsPair(cert, key string) {
	if v.tooLong("console.tls_cert", cert, maxPathLen) || v.tooLong("console.tls_key", key, maxPathLen) {
		return
	}
	at, reason := "console.tls_cert", ""
	if _, err := os.Stat(cert); err != nil {
		reason = fileProblem(cert, err)
	} else if _, err := os.Stat(key); err != nil {
		at, reason = "console.tls_key", fileProblem(key, err)
	} else if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
		reason = err.Error()
	}
	if reason != "" {
		v.addf(at, "tls_cert %q and tls_key %q do not load as a certificate and its key (%s); the console would not start with them", cert, key, reason)
	}
}

func fileProblem(path string, err error) string {
	if errors.Is(err, fs.ErrNotExist) {
		return path + " does not exist"
	}
	return err.Error()
}

// vrrp checks one instance: [vrrp] (k = "vrrp") or a [[vrrp_instance]].
func (v *validator) vrrp(k string, r *VRRP) {
	if !v.present[k+".vrid"] {
		v.addf(k+".vrid", "is required (%d..%d, the same on both directors)", MinVRID, MaxVRID)
	} else {
		v.intRange(k+".vrid", r.VRID, MinVRID, MaxVRID)
	}
	if !v.present[k+".priority"] {
		v.addf(k+".priority", "is required (%d..%d, the higher becomes master)", MinPriority, MaxPriority)
	} else {
		v.intRange(k+".priority", r.Priority, MinPriority, MaxPriority)
	}
	lo, hi, step, versionOK := AdvertIntervalRange(r.Version)
	if !versionOK {
		v.addf(k+".version", "must be 2 or 3, not %d", r.Version)
	}
	ai := r.AdvertInterval.Duration
	switch {
	case !versionOK, ai >= lo && ai <= hi && ai%step == 0:
	case r.Version == 3:
		v.addf(k+".advert_interval", "%v: VRRPv3 needs %v..%v in steps of %v", ai, lo, hi, step)
	default:
		v.addf(k+".advert_interval", "%v: VRRPv2 needs whole seconds from %v to %ds", ai, lo, hi/time.Second)
	}
	switch {
	case r.Interface == "":
		v.addf(k+".interface", "is required (set %s.interface or global.interface)", strings.SplitN(k, "[", 2)[0])
	case v.present[k+".interface"]:
		v.ifname(k+".interface", r.Interface)
	}
	// Otherwise inherited from global.interface and checked there.
	for i, s := range r.VIPs {
		key := indexKey(k+".vips", i)
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				v.addf(key, "%q is not an IP address or address/prefix", s)
			} else if p.Addr().Zone() != "" || p.Addr().Is4In6() {
				v.addr(key, p.Addr().String())
			}
			continue
		}
		v.addr(key, s)
	}
	for i, s := range r.UnicastPeers {
		v.addr(indexKey(k+".unicast_peers", i), s)
	}
	if r.UnicastSource != "" {
		v.addr(k+".unicast_source", r.UnicastSource)
	}
	for i, s := range r.AllowedPeers {
		v.addr(indexKey(k+".allowed_peers", i), s)
	}
	if len(r.AllowedPeers) > 0 && len(r.UnicastPeers) > 0 {
		v.addf(k+".allowed_peers", "is for multicast mode; with unicast_peers only those peers are heard already")
	}
	if ml := r.MaxLearnedInterval.Duration; v.present[k+".max_learned_interval"] && versionOK && (ml < r.AdvertInterval.Duration || ml > hi) {
		v.addf(k+".max_learned_interval", "%v is out of range (advert_interval %v..%v)", ml, r.AdvertInterval.Duration, hi)
	}
	if r.PreemptDelay.Duration < 0 || r.PreemptDelay.Duration > maxPreemptDl {
		v.addf(k+".preempt_delay", "%v is out of range (0s..%v)", r.PreemptDelay, maxPreemptDl)
	}
	if r.AuthPass != "" {
		if versionOK && r.Version != 2 {
			v.addf(k+".auth_pass", "needs version = 2 (VRRPv3 has no authentication)")
		}
		if len(r.AuthPass) > MaxAuthPassLen {
			v.addf(k+".auth_pass", "is %d bytes long; VRRPv2 allows at most %d", len(r.AuthPass), MaxAuthPassLen)
		}
	}
	seen := map[string]bool{}
	for i, t := range r.TrackInterfaces {
		key := indexKey(k+".track_interface", i)
		if t.Name == "" {
			v.addf(key+".name", "is required")
		} else {
			v.ifname(key+".name", t.Name)
			if seen[t.Name] {
				v.addf(key+".name", "interface %q is tracked twice", t.Name)
			}
			seen[t.Name] = true
		}
		v.intRange(key+".weight", t.Weight, 0, MaxTrackWeight)
	}
	v.intRange(k+".service_penalty", r.ServicePenalty, 0, MaxTrackWeight)
	v.intRange(k+".rt_priority", r.RTPriority, 0, MaxRTPriority)
	v.intRange(k+".garp_count", r.GARPCount, 0, 100)
	if r.GARPInterval.Duration <= 0 || r.GARPInterval.Duration > 10*time.Second {
		v.addf(k+".garp_interval", "%v is out of range (more than 0s, at most 10s)", r.GARPInterval)
	}
	if r.GARPRefresh.Duration < 0 {
		v.addf(k+".garp_refresh", "must not be negative")
	}
	if len(r.Notify) > 0 {
		v.program(k+".notify", r.Notify)
	}
	if r.NotifyTimeout.Duration <= 0 {
		v.addf(k+".notify_timeout", "must be positive")
	}
}

// Limits of [sync]. The sync id is one byte on the wire; a sync message is
// one UDP datagram (65535 - 8 - 20 bytes of payload at most) and the
// kernel needs room for at least a header and a connection.
const (
	minSyncPacketLen    = 128
	maxSyncPacketLen    = 65507
	maxSyncRefresh      = time.Hour
	maxSyncWarmUp       = time.Hour
	maxSyncHandoverHold = 10 * time.Second
	maxSyncQuiet        = 60 * time.Second
)

// sync checks [sync]. Values the operator did not write are inherited
// (interface from [vrrp] or [global], id from vrrp.vrid, warm_up from
// refresh_period) and are checked where they are written, so a problem is
// never reported on a [sync] line that does not hold it.
func (v *validator) sync(s *Sync, hasVRRP bool) {
	const k = "sync"
	enabled := s.Enabled != nil && *s.Enabled
	switch {
	case v.present[k+".interface"] && s.Interface == "":
		v.addf(k+".interface", "must not be empty (leave it out to use vrrp.interface or global.interface)")
	case v.present[k+".interface"]:
		v.ifname(k+".interface", s.Interface)
	case enabled && s.Interface == "" && !hasVRRP:
		// With [vrrp], vrrp.interface reports the missing interface.
		v.addf(k+".interface", "is required with enabled = true (set sync.interface or global.interface)")
	}
	if v.present[k+".id"] && s.ID != nil && (*s.ID < 0 || *s.ID > 255) {
		v.addf(k+".id", "%d is out of range (0..255: the sync id is one byte on the wire)", *s.ID)
	}
	if v.present[k+".group"] {
		if a, ok := v.addr(k+".group", s.Group); ok {
			switch {
			case a.Is6():
				v.addf(k+".group", "%q is an IPv6 address: an IPv6 group goes in group6", s.Group)
			case !a.IsMulticast():
				v.addf(k+".group", "%q is not an IPv4 multicast address (224.0.0.0/4)", s.Group)
			}
		}
	}
	if v.present[k+".group6"] {
		if a, ok := v.addr(k+".group6", s.Group6); ok {
			switch {
			case a.Is4():
				v.addf(k+".group6", "%q is an IPv4 address: an IPv4 group goes in group", s.Group6)
			case !a.IsMulticast():
				v.addf(k+".group6", "%q is not an IPv6 multicast address (ff00::/8)", s.Group6)
			}
		}
		if v.present[k+".group"] {
			v.addf(k+".group6", "cannot be used with group: the sync daemon has one group (group6 is for a sync interface without IPv4)")
		}
	}
	v.intRange(k+".port", s.Port, 1, 65535)
	v.intRange(k+".ttl", s.TTL, 1, 255)
	if n := s.MaxPacketLen; n != 0 && (n < minSyncPacketLen || n > maxSyncPacketLen) {
		v.addf(k+".max_packet_len", "%d is out of range (0 for the interface MTU, or %d..%d)", n, minSyncPacketLen, maxSyncPacketLen)
	}
	rp := s.RefreshPeriod.Duration
	switch {
	case rp < time.Second || rp > maxSyncRefresh:
		v.addf(k+".refresh_period", "%v is out of range (1s..1h)", rp)
	case rp%time.Second != 0:
		v.addf(k+".refresh_period", "%v: must be whole seconds (the kernel's sync_refresh_period is in seconds)", rp)
	}
	if w := s.WarmUp.Duration; v.present[k+".warm_up"] && (w < 0 || w > maxSyncWarmUp) {
		v.addf(k+".warm_up", "%v is out of range (0s..1h; it delays every takeover after a start)", w)
	}
	if h := s.HandoverHold.Duration; h < 0 || h > maxSyncHandoverHold {
		v.addf(k+".handover_hold", "%v is out of range (0s..10s; new connections wait this long at a graceful handover)", h)
	}
	if q := s.TakeoverQuiet.Duration; q < 0 || q > maxSyncQuiet {
		v.addf(k+".takeover_quiet", "%v is out of range (0s..60s; unknown TCP segments are dropped this long after a takeover)", q)
	}
}

// vsIdentity is what makes two virtual services the same to the kernel.
func vsIdentity(vs *VirtualServer) (string, bool) {
	if vs.Fwmark != 0 {
		return fmt.Sprintf("fwmark %d/%s", vs.Fwmark, vs.Family), true
	}
	a, err := netip.ParseAddr(vs.VIP)
	if err != nil || vs.Port == 0 {
		return "", false
	}
	return netip.AddrPortFrom(a, uint16(vs.Port)).String() + "/" + vs.Protocol, true
}

func (v *validator) virtualServers(vss []VirtualServer) {
	names := map[string]int{}
	ids := map[string]int{}
	for i := range vss {
		if v.col.cancelled() {
			return
		}
		vs := &vss[i]
		key := indexKey("virtual_server", i)
		v.virtualServer(key, vs)
		if vs.Name != "" {
			if j, ok := names[vs.Name]; ok {
				v.addf(key+".name", "duplicate name %q (also virtual_server[%d])", vs.Name, j)
			} else {
				names[vs.Name] = i
			}
		}
		if id, ok := vsIdentity(vs); ok && !v.col.isBad(key) {
			if j, dup := ids[id]; dup {
				at := key + ".vip"
				if vs.Fwmark != 0 {
					at = key + ".fwmark"
				}
				v.addf(at, "duplicate virtual service %s (also virtual_server %q)", id, vss[j].Name)
			} else {
				ids[id] = i
			}
		}
	}
}

func (v *validator) virtualServer(key string, vs *VirtualServer) {
	v.name(key+".name", vs.Name)
	vipOK := false
	var vip netip.Addr
	if vs.Fwmark != 0 || v.present[key+".fwmark"] {
		if vs.Fwmark == 0 {
			v.addf(key+".fwmark", "must be 1..4294967295")
		} else if IsCheckMark(vs.Fwmark) {
			v.addf(key+".fwmark", "%#x is in lbd's own range %#x..%#x (through-VIP checks)", vs.Fwmark, CheckMarkBase, CheckMarkBase+CheckMarkCount-1)
		}
		if vs.VIP != "" {
			v.addf(key+".vip", "a virtual server has either vip and port or fwmark, not both")
		} else if vs.Port != 0 {
			v.addf(key+".port", "a virtual server has either vip and port or fwmark, not both")
		}
	} else {
		if !v.present[key+".vip"] {
			v.addf(key+".vip", "is required (or give a fwmark)")
		} else {
			vip, vipOK = v.addr(key+".vip", vs.VIP)
		}
		if !v.present[key+".port"] {
			v.addf(key+".port", "is required with vip")
		} else {
			v.intRange(key+".port", vs.Port, 1, 65535)
		}
	}
	v.enum(key+".protocol", "protocol", vs.Protocol, protocols)
	familyOK := v.enum(key+".family", "family", vs.Family, families)
	if vipOK && familyOK && familyOf(vip) != vs.Family {
		v.addf(key+".family", "%s does not match vip %s", vs.Family, vs.VIP)
		familyOK = false
	}
	if v.col.isBad(key+".vip") || v.col.isBad(key+".fwmark") || v.col.isBad(key+".family") || (vs.Fwmark == 0 && !vipOK) {
		familyOK = false // no family to compare real servers against
	}
	if v.enum(key+".scheduler", "scheduler", vs.Scheduler, schedulers) {
		seen := map[string]bool{}
		for i, f := range vs.SchedulerFlags {
			fk := indexKey(key+".scheduler_flags", i)
			valid := schedulerFlags[vs.Scheduler]
			switch {
			case !oneOf(f, valid) && len(valid) == 0:
				v.addf(fk, "scheduler %s takes no flags (got %q)", vs.Scheduler, f)
			case !oneOf(f, valid):
				v.addf(fk, "unknown flag %q for scheduler %s (valid: %s)", f, vs.Scheduler, strings.Join(valid, ", "))
			case seen[f]:
				v.addf(fk, "flag %q given twice", f)
			}
			seen[f] = true
		}
	}
	p := vs.Persistence.Duration
	if p < 0 || p%time.Second != 0 || p > 0xFFFFFFFF*time.Second {
		v.addf(key+".persistence", "%v: must be whole seconds, 0s (off) or more", p)
	}
	if familyOK {
		maxBits := 32
		if vs.Family == "inet6" {
			maxBits = 128
		}
		v.intRange(key+".persistence_netmask", vs.PersistenceNetmask, 1, maxBits)
	}
	fwdOK := v.inheritedEnum(key+".forwarding", "forwarding method", vs.Forwarding, forwardings)
	if vs.Quorum < 0 {
		v.addf(key+".quorum", "must not be negative")
	}
	v.enum(key+".on_failure", "on_failure action", vs.OnFailure, onFailures)
	if vs.SorryServer != "" {
		if a, ok := v.sorryServer(key+".sorry_server", vs.SorryServer); ok && familyOK && familyOf(a) != vs.Family {
			v.addf(key+".sorry_server", "%s is %s but the service is %s", vs.SorryServer, familyName(familyOf(a)), familyName(vs.Family))
		}
	}
	if vs.HealthCheck != nil {
		v.healthCheck(key+".health_check", vs.HealthCheck, vs)
	}

	portOK := vs.Fwmark == 0 && vs.Port >= 1 && vs.Port <= 65535 && !v.col.isBad(key+".port")
	names := map[string]int{}
	dests := map[string]int{}
	portless := false
	for j := range vs.RealServers {
		if v.col.cancelled() {
			return
		}
		rs := &vs.RealServers[j]
		rk := indexKey(key+".real_server", j)
		v.name(rk+".name", rs.Name)
		if rs.Name != "" {
			if o, ok := names[rs.Name]; ok {
				v.addf(rk+".name", "duplicate name %q (also real_server[%d] of this service)", rs.Name, o)
			} else {
				names[rs.Name] = j
			}
		}
		var a netip.Addr
		addrOK := false
		if !v.present[rk+".address"] {
			v.addf(rk+".address", "is required")
		} else if a, addrOK = v.addr(rk+".address", rs.Address); addrOK && familyOK && familyOf(a) != vs.Family {
			v.addf(rk+".address", "%s is %s but the service is %s", rs.Address, familyName(familyOf(a)), familyName(vs.Family))
		}
		// A fwmark service may leave the port out: the kernel keeps the
		// packet's destination port.
		if rs.Port != 0 || vs.Fwmark == 0 && portOK {
			v.intRange(rk+".port", rs.Port, 1, 65535)
		}
		if rs.Weight != nil {
			v.intRange(rk+".weight", *rs.Weight, 0, MaxWeight)
		}
		if v.inheritedEnum(rk+".forwarding", "forwarding method", rs.Forwarding, forwardings) && fwdOK {
			// DR and tunnelling deliver the packet unchanged, so the real
			// server sees the service's port; only NAT rewrites it.
			if rs.Forwarding != "nat" && portOK && rs.Port != vs.Port && !v.col.isBad(rk+".port") {
				v.addf(rk+".port", "%d differs from the service port %d: %s cannot remap ports (use forwarding = \"nat\" or the same port)",
					rs.Port, vs.Port, strings.ToUpper(rs.Forwarding))
			}
		}
		if addrOK && !v.col.isBad(rk+".port") {
			d := netip.AddrPortFrom(a, uint16(rs.Port)).String()
			if o, dup := dests[d]; dup {
				v.addf(rk+".address", "duplicate real server %s (also real_server %q)", d, vs.RealServers[o].Name)
			} else {
				dests[d] = j
			}
		}
		if hc := vs.HealthCheck; hc != nil && vs.Fwmark != 0 && rs.Port == 0 && hc.Port == 0 && needsPort(hc.Type) && !portless {
			v.addf(key+".health_check.port", "is required: real server %q has no port to check (fwmark service)", rs.Name)
			portless = true // once per service is enough
		}
	}
}

func needsPort(checkType string) bool {
	switch checkType {
	case "tcp", "http", "https", "send_expect", "dns", "udp", "smtp":
		return true
	}
	return false
}

// sorryServer parses "addr" or "addr:port" ("[v6]:port").
func (v *validator) sorryServer(key, s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			v.addf(key, "%q: port must be 1..65535", s)
			return ap.Addr(), false
		}
		return v.addr(key, ap.Addr().String())
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return v.addr(key, s)
	}
	v.addf(key, "%q is not an address or address:port", s)
	return netip.Addr{}, false
}

func (v *validator) healthCheck(key string, hc *HealthCheck, vs *VirtualServer) {
	if !v.present[key+".type"] {
		v.addf(key+".type", "is required (valid: %s)", strings.Join(checkTypes, ", "))
	} else if !v.enum(key+".type", "check type", hc.Type, checkTypes) {
		return
	}
	if hc.Type == "none" {
		return
	}
	v.checkFitsProtocol(key, hc, vs)
	v.tooLong(key+".host", hc.Host, maxHostLen)
	v.tooLong(key+".sni", hc.SNI, maxHostLen)
	v.tooLong(key+".send", hc.Send, maxTextLen)
	v.tooLong(key+".path", hc.Path, maxPathLen)
	if hc.Address != "" {
		v.addr(key+".address", hc.Address)
	}
	if hc.ThroughVIP != nil && *hc.ThroughVIP && !throughVIPFits(hc, vs) {
		v.addf(key+".through_vip", "needs a dr or tun service with vip and port, checked at the real servers (no address) by a type other than exec")
	}
	if hc.Port != 0 {
		v.intRange(key+".port", hc.Port, 1, 65535)
	}
	if hc.Interval.Duration <= 0 {
		v.addf(key+".interval", "must be positive")
	}
	switch {
	case hc.Timeout.Duration <= 0:
		v.addf(key+".timeout", "must be positive")
	case hc.Interval.Duration > 0 && hc.Timeout.Duration >= hc.Interval.Duration && !v.col.isBad(key+".interval"):
		v.addf(key+".timeout", "%v must be shorter than interval %v", hc.Timeout, hc.Interval)
	}
	if hc.Rise < 1 {
		v.addf(key+".rise", "must be at least 1")
	}
	if hc.Fall < 1 {
		v.addf(key+".fall", "must be at least 1")
	}
	if !methodToken.MatchString(hc.Method) {
		v.addf(key+".method", "%q is not an HTTP method (GET, HEAD, ...)", hc.Method)
	}
	if !strings.HasPrefix(hc.Path, "/") {
		v.addf(key+".path", "%q must start with /", hc.Path)
	}
	if len(hc.ExpectStatus) == 0 {
		v.addf(key+".expect_status", "must not be empty")
	}
	for i, s := range hc.ExpectStatus {
		if !validStatus(s) {
			v.addf(indexKey(key+".expect_status", i), "%q is not a status code or range (\"200\" or \"200-399\", 100..599)", s)
		}
	}
	if hc.ExpectBody != "" && !v.tooLong(key+".expect_body", hc.ExpectBody, maxTextLen) {
		if _, err := regexp.Compile(hc.ExpectBody); err != nil {
			v.addf(key+".expect_body", "invalid regular expression: %v", err)
		}
	}
	if hc.Expect != "" && !v.tooLong(key+".expect", hc.Expect, maxTextLen) {
		if _, err := regexp.Compile(hc.Expect); err != nil {
			v.addf(key+".expect", "invalid regular expression: %v", err)
		}
	}
	switch hc.Type {
	case "send_expect":
		if hc.Expect == "" {
			v.addf(key+".expect", "is required for a send_expect check")
		}
	case "exec":
		v.program(key+".command", hc.Command)
	case "dns":
		v.dnsCheck(key, hc)
	case "udp":
		if hc.Send == "" {
			v.addf(key+".send", "is required for a udp check (the datagram to send)")
		}
	case "smtp":
		if hc.HeloName == "" || strings.ContainsAny(hc.HeloName, " \t\r\n") || len(hc.HeloName) > maxHostLen {
			v.addf(key+".helo_name", "%q is not a host name for EHLO (no spaces, at most %d bytes)", hc.HeloName, maxHostLen)
		}
	}
}

// checkProtocols says which service protocols a check type can check on
// the real server's own port; types not listed (exec) check anything.
var checkProtocols = map[string][]string{
	"tcp":         {"tcp"},
	"http":        {"tcp"},
	"https":       {"tcp"},
	"send_expect": {"tcp"},
	"smtp":        {"tcp"},
	"dns":         {"tcp", "udp"},
	"udp":         {"udp"},
}

// checkFitsProtocol refuses a check that cannot work on the service's
// protocol: a tcp connect to a udp real server's port would fail, or
// worse, find an unrelated TCP listener and pass. With health_check.port
// set the check goes to an endpoint of the operator's choosing (an HTTP
// health page beside a UDP service), so any type is accepted; a fwmark
// service has no protocol of its own.
func (v *validator) checkFitsProtocol(key string, hc *HealthCheck, vs *VirtualServer) {
	protos, limited := checkProtocols[hc.Type]
	if !limited || vs.Fwmark != 0 || hc.Port != 0 || !oneOf(vs.Protocol, protocols) || oneOf(vs.Protocol, protos) {
		return
	}
	var fit []string
	for _, t := range checkTypes {
		if ps, ok := checkProtocols[t]; ok && oneOf(vs.Protocol, ps) {
			fit = append(fit, t)
		}
	}
	hint := "exec, or set port to a health endpoint"
	if n := len(fit); n > 0 {
		hint = fit[n-1]
		if n > 1 {
			hint = strings.Join(fit[:n-1], ", ") + " or " + hint
		}
	}
	a := "a"
	if vs.Protocol == "sctp" {
		a = "an"
	}
	v.addf(key+".type", "%q cannot check %s %s service (use %s)", hc.Type, a, vs.Protocol, hint)
}

// dnsCheck validates a dns check's question and expectations with the
// DNS library the check uses, so what passes here is what the check asks.
func (v *validator) dnsCheck(key string, hc *HealthCheck) {
	if !v.tooLong(key+".query_name", hc.QueryName, maxHostLen) {
		if _, ok := dns.IsDomainName(dns.Fqdn(hc.QueryName)); !ok || strings.ContainsAny(hc.QueryName, " \t\r\n") {
			v.addf(key+".query_name", "%q is not a domain name", hc.QueryName)
		}
	}
	if t, ok := dns.StringToType[strings.ToUpper(hc.QueryType)]; !ok || t == dns.TypeNone {
		v.addf(key+".query_type", "%q is not a DNS record type (A, AAAA, SOA, NS, MX, TXT, ...)", hc.QueryType)
	}
	v.enum(key+".dns_transport", "dns transport", hc.DNSTransport, transports)
	if _, ok := dns.StringToRcode[strings.ToUpper(hc.ExpectRcode)]; !ok {
		v.addf(key+".expect_rcode", "%q is not a DNS rcode (NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ...)", hc.ExpectRcode)
	}
	if a := hc.ExpectAnswer; a != "" && !v.tooLong(key+".expect_answer", a, maxTextLen) {
		if _, err := netip.ParseAddr(a); err != nil {
			if _, err := regexp.Compile(a); err != nil {
				v.addf(key+".expect_answer", "is neither an IP address nor a valid regular expression: %v", err)
			}
		}
	}
}

func validStatus(s string) bool {
	m := statusRange.FindStringSubmatch(s)
	if m == nil {
		return false
	}
	lo, _ := strconv.Atoi(m[1])
	hi := lo
	if m[2] != "" {
		hi, _ = strconv.Atoi(m[2])
	}
	return lo >= 100 && hi <= 599 && lo <= hi
}
