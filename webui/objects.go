package webui

import (
	"fmt"
	"strconv"
	"strings"

	"lbd/config"
)

// Each screen's fields are named after their TOML keys, so a validator
// message keyed "virtual_server[1].real_server[0].weight" lands next to the
// weight field of that real server's form.

var (
	globalFields = []string{
		"global.node_name", "global.interface", "global.forwarding", "global.listen",
		"global.resync_interval", "global.remove_grace",
		"console.session_timeout", "console.metrics_auth", "console.tls_cert", "console.tls_key",
	}
	vrrpFields = []string{
		"enabled", "version", "vrid", "priority", "advert_interval", "interface", "vips",
		"unicast_peers", "unicast_source", "preempt", "preempt_delay", "track_interface",
		"service_penalty", "garp_count", "garp_interval", "garp_refresh", "notify",
		"notify_timeout", "auth_pass",
	}
	vsFields = []string{
		"name", "vip", "port", "protocol", "fwmark", "family", "scheduler", "scheduler_flags",
		"persistence", "persistence_netmask", "forwarding", "active", "quorum", "on_failure",
		"sorry_server",
	}
	rsFields = []string{"name", "address", "port", "weight", "forwarding", "active", "drained"}
	hcFields = []string{
		"type", "address", "port", "interval", "timeout", "rise", "fall", "method", "path",
		"host", "sni", "expect_status", "expect_body", "tls_verify", "send", "expect", "command",
	}
)

func vsPrefix(i int) string    { return fmt.Sprintf("virtual_server[%d].", i) }
func rsPrefix(i, j int) string { return fmt.Sprintf("virtual_server[%d].real_server[%d].", i, j) }
func hcPrefix(i int) string    { return fmt.Sprintf("virtual_server[%d].health_check.", i) }
func numOrEmpty(n int) string  { return map[bool]string{true: "", false: strconv.Itoa(n)}[n == 0] }
func fwmarkString(m uint32) string {
	if m == 0 {
		return ""
	}
	return strconv.FormatUint(uint64(m), 10)
}

func globalForm(c *config.Config) *form {
	f := newForm("", globalFields...)
	f.Values["global.node_name"] = c.Global.NodeName
	f.Values["global.interface"] = c.Global.Interface
	f.Values["global.forwarding"] = c.Global.Forwarding
	f.Values["global.listen"] = c.Global.Listen
	f.Values["global.resync_interval"] = durString(c.Global.ResyncInterval)
	f.Values["global.remove_grace"] = durString(c.Global.RemoveGrace)
	f.Values["console.session_timeout"] = durString(c.Console.SessionTimeout)
	f.setBool("console.metrics_auth", c.Console.MetricsAuth)
	f.Values["console.tls_cert"] = c.Console.TLSCert
	f.Values["console.tls_key"] = c.Console.TLSKey
	return f
}

func (f *form) toGlobal(c *config.Config) {
	old := c.Global
	defer func() {
		// After loading, inherited settings are spelled out in every
		// service and real server; those that had the old global value
		// were (most likely) inherited and follow the new one.
		for i := range c.VirtualServers {
			vs := &c.VirtualServers[i]
			if vs.Forwarding == old.Forwarding {
				vs.Forwarding = c.Global.Forwarding
				for j := range vs.RealServers {
					if vs.RealServers[j].Forwarding == old.Forwarding {
						vs.RealServers[j].Forwarding = c.Global.Forwarding
					}
				}
			}
		}
		if c.VRRP != nil && c.VRRP.Interface == old.Interface {
			c.VRRP.Interface = c.Global.Interface
		}
	}()
	c.Global.NodeName = f.V("global.node_name")
	c.Global.Interface = f.V("global.interface")
	c.Global.Forwarding = f.V("global.forwarding")
	c.Global.Listen = f.V("global.listen")
	c.Global.ResyncInterval = f.duration("global.resync_interval")
	c.Global.RemoveGrace = f.duration("global.remove_grace")
	c.Console.SessionTimeout = f.duration("console.session_timeout")
	c.Console.MetricsAuth = f.On("console.metrics_auth")
	c.Console.TLSCert = f.V("console.tls_cert")
	c.Console.TLSKey = f.V("console.tls_key")
}

// vrrpForm shows the redundancy settings; a config without [vrrp] shows the
// usual defaults with "enabled" off.
func vrrpForm(c *config.Config) *form {
	f := newForm("vrrp.", vrrpFields...)
	v := c.VRRP
	f.setBool("enabled", v != nil)
	if v == nil {
		v = &config.VRRP{VRID: 51, Priority: 100, Version: 3, GARPCount: 5}
		v.AdvertInterval.Duration = 1e9
	}
	f.Values["version"] = itoa(v.Version)
	f.Values["vrid"] = itoa(v.VRID)
	f.Values["priority"] = itoa(v.Priority)
	f.Values["advert_interval"] = durString(v.AdvertInterval)
	f.Values["interface"] = v.Interface
	f.Values["vips"] = strings.Join(v.VIPs, "\n")
	f.Values["unicast_peers"] = strings.Join(v.UnicastPeers, "\n")
	f.Values["unicast_source"] = v.UnicastSource
	f.setBool("preempt", ptrBool(v.Preempt, true))
	f.Values["preempt_delay"] = durString(v.PreemptDelay)
	var tr []string
	for _, t := range v.TrackInterfaces {
		tr = append(tr, fmt.Sprintf("%s %d", t.Name, t.Weight))
	}
	f.Values["track_interface"] = strings.Join(tr, "\n")
	f.Values["service_penalty"] = itoa(v.ServicePenalty)
	f.Values["garp_count"] = itoa(v.GARPCount)
	f.Values["garp_interval"] = durString(v.GARPInterval)
	f.Values["garp_refresh"] = durString(v.GARPRefresh)
	f.Values["notify"] = strings.Join(v.Notify, "\n")
	f.Values["notify_timeout"] = durString(v.NotifyTimeout)
	f.Values["auth_pass"] = v.AuthPass
	return f
}

func (f *form) toVRRP(c *config.Config) {
	if !f.On("enabled") {
		c.VRRP = nil
		return
	}
	if c.VRRP == nil {
		c.VRRP = &config.VRRP{}
	}
	v := c.VRRP
	v.Version = f.int("version", 3)
	v.VRID = f.int("vrid", 0)
	v.Priority = f.int("priority", 0)
	v.AdvertInterval = f.duration("advert_interval")
	v.Interface = f.V("interface")
	v.VIPs = f.list("vips")
	v.UnicastPeers = f.list("unicast_peers")
	v.UnicastSource = f.V("unicast_source")
	v.Preempt = f.boolPtr("preempt")
	v.PreemptDelay = f.duration("preempt_delay")
	v.TrackInterfaces = nil
	for _, l := range f.lines("track_interface") {
		parts := strings.Fields(l)
		t := config.TrackInterface{Name: parts[0]}
		if len(parts) > 2 {
			f.addError("track_interface", fmt.Sprintf("%q: write one interface per line as NAME [WEIGHT]", l))
			continue
		}
		if len(parts) == 2 {
			w, err := strconv.Atoi(parts[1])
			if err != nil {
				f.addError("track_interface", fmt.Sprintf("%q: the weight %q is not a whole number", l, parts[1]))
				continue
			}
			t.Weight = w
		}
		v.TrackInterfaces = append(v.TrackInterfaces, t)
	}
	v.ServicePenalty = f.int("service_penalty", 0)
	v.GARPCount = f.int("garp_count", 0)
	v.GARPInterval = f.duration("garp_interval")
	v.GARPRefresh = f.duration("garp_refresh")
	v.Notify = f.lines("notify")
	v.NotifyTimeout = f.duration("notify_timeout")
	v.AuthPass = f.V("auth_pass")
}

func vsForm(i int, vs *config.VirtualServer) *form {
	f := newForm(vsPrefix(i), vsFields...)
	f.Values["name"] = vs.Name
	f.Values["vip"] = vs.VIP
	f.Values["port"] = numOrEmpty(vs.Port)
	f.Values["protocol"] = vs.Protocol
	f.Values["fwmark"] = fwmarkString(vs.Fwmark)
	f.Values["family"] = vs.Family
	f.Values["scheduler"] = vs.Scheduler
	f.Multi["scheduler_flags"] = vs.SchedulerFlags
	f.Values["persistence"] = durString(vs.Persistence)
	f.Values["persistence_netmask"] = numOrEmpty(vs.PersistenceNetmask)
	f.Values["forwarding"] = vs.Forwarding
	f.setBool("active", ptrBool(vs.Active, true))
	f.Values["quorum"] = itoa(vs.Quorum)
	f.Values["on_failure"] = vs.OnFailure
	f.Values["sorry_server"] = vs.SorryServer
	return f
}

// newVSForm is the empty "add virtual server" form with the defaults.
func newVSForm(i int) *form {
	vs := &config.VirtualServer{Protocol: "tcp", Scheduler: "wlc", Quorum: 1, OnFailure: "quiesce"}
	return vsForm(i, vs)
}

func (f *form) toVS(vs *config.VirtualServer) {
	old := *vs
	defer func() {
		// Real servers inherit port and forwarding from their service and,
		// once loaded, carry them explicitly: those matching the old
		// service values follow the new ones.
		for j := range vs.RealServers {
			rs := &vs.RealServers[j]
			if old.Port != 0 && rs.Port == old.Port {
				rs.Port = vs.Port
			}
			if rs.Forwarding == old.Forwarding {
				rs.Forwarding = vs.Forwarding
			}
		}
		// With a VIP the address family and its default persistence
		// prefix follow from the address.
		if vs.Fwmark == 0 {
			vs.Family = ""
			if old.PersistenceNetmask == vs.PersistenceNetmask && defaultNetmask(old.Family) == vs.PersistenceNetmask {
				vs.PersistenceNetmask = 0
			}
		}
	}()
	vs.Name = f.V("name")
	vs.VIP = f.V("vip")
	vs.Port = f.int("port", 0)
	vs.Protocol = f.V("protocol")
	vs.Fwmark = f.uint32("fwmark")
	vs.Family = f.V("family")
	vs.Scheduler = f.V("scheduler")
	vs.SchedulerFlags = nil
	for _, fl := range f.Multi["scheduler_flags"] {
		if fl = strings.TrimSpace(fl); fl != "" {
			vs.SchedulerFlags = append(vs.SchedulerFlags, fl)
		}
	}
	vs.Persistence = f.duration("persistence")
	vs.PersistenceNetmask = f.int("persistence_netmask", 0)
	vs.Forwarding = f.V("forwarding")
	vs.Active = f.boolPtr("active")
	vs.Quorum = f.int("quorum", 1)
	vs.OnFailure = f.V("on_failure")
	vs.SorryServer = f.V("sorry_server")
}

func defaultNetmask(family string) int {
	if family == "inet6" {
		return 128
	}
	return 32
}

func rsForm(i, j int, rs *config.RealServer) *form {
	f := newForm(rsPrefix(i, j), rsFields...)
	f.Values["name"] = rs.Name
	f.Values["address"] = rs.Address
	f.Values["port"] = numOrEmpty(rs.Port)
	f.Values["weight"] = itoa(ptrInt(rs.Weight, 1))
	f.Values["forwarding"] = rs.Forwarding
	f.setBool("active", ptrBool(rs.Active, true))
	f.setBool("drained", rs.Drained)
	return f
}

func (f *form) toRS(rs *config.RealServer) {
	rs.Name = f.V("name")
	rs.Address = f.V("address")
	rs.Port = f.int("port", 0)
	rs.Weight = f.intPtr("weight")
	rs.Forwarding = f.V("forwarding")
	rs.Active = f.boolPtr("active")
	rs.Drained = f.On("drained")
}

func hcForm(i int, hc *config.HealthCheck) *form {
	f := newForm(hcPrefix(i), hcFields...)
	if hc == nil {
		hc = &config.HealthCheck{Type: "none", Rise: 2, Fall: 3}
		hc.Interval.Duration = 2e9
		hc.Timeout.Duration = 1e9
	}
	f.Values["type"] = hc.Type
	f.Values["address"] = hc.Address
	f.Values["port"] = numOrEmpty(hc.Port)
	f.Values["interval"] = durString(hc.Interval)
	f.Values["timeout"] = durString(hc.Timeout)
	f.Values["rise"] = itoa(hc.Rise)
	f.Values["fall"] = itoa(hc.Fall)
	f.Values["method"] = hc.Method
	f.Values["path"] = hc.Path
	f.Values["host"] = hc.Host
	f.Values["sni"] = hc.SNI
	f.Values["expect_status"] = strings.Join(hc.ExpectStatus, ", ")
	f.Values["expect_body"] = hc.ExpectBody
	f.setBool("tls_verify", ptrBool(hc.TLSVerify, false))
	f.Values["send"] = escapeCRLF(hc.Send)
	f.Values["expect"] = hc.Expect
	f.Values["command"] = strings.Join(hc.Command, "\n")
	return f
}

func (f *form) toHC(vs *config.VirtualServer) {
	if vs.HealthCheck == nil {
		vs.HealthCheck = &config.HealthCheck{}
	}
	hc := vs.HealthCheck
	hc.Type = f.V("type")
	hc.Address = f.V("address")
	hc.Port = f.int("port", 0)
	hc.Interval = f.duration("interval")
	hc.Timeout = f.duration("timeout")
	hc.Rise = f.int("rise", 0)
	hc.Fall = f.int("fall", 0)
	hc.Method = f.V("method")
	hc.Path = f.V("path")
	hc.Host = f.V("host")
	hc.SNI = f.V("sni")
	hc.ExpectStatus = f.list("expect_status")
	hc.ExpectBody = f.V("expect_body")
	hc.TLSVerify = f.boolPtr("tls_verify")
	// send may carry protocol line endings; keep \r\n escapes as typed.
	hc.Send = unescapeCRLF(f.Values["send"])
	hc.Expect = f.V("expect")
	hc.Command = f.lines("command")
}

// unescapeCRLF turns the two-character sequences \r and \n into real line
// endings, so "GET / HTTP/1.0\r\n\r\n" can be typed on one line.
func unescapeCRLF(s string) string {
	return strings.NewReplacer(`\r`, "\r", `\n`, "\n").Replace(s)
}

func escapeCRLF(s string) string {
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
}
