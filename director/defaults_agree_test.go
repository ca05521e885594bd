package director

import (
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"lbd/balancer"
	"lbd/config"
	"lbd/flowguard"
	"lbd/healthcheck"
	"lbd/vrrp"
)

// config owns lbd's defaults and ranges; the libraries keep a few copies
// of their own (zero-value defaults for standalone callers, protocol
// limits). These tests prove that every remaining copy agrees with config,
// and that what the director hands over leaves no library default to
// apply.

// omitted leaves out everything that has a default.
const omitted = `
[global]
interface = "eth0"

[vrrp]
vrid = 51
priority = 100

[[virtual_server]]
name = "web"
vip = "192.0.2.10"
port = 80

[virtual_server.health_check]
type = "http"

[[virtual_server.real_server]]
name = "rs1"
address = "10.0.0.1"
`

func parse(t *testing.T, toml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("lbd.toml", []byte(toml))
	if err != nil {
		t.Fatalf("parse:\n%s\n%v", toml, err)
	}
	return cfg
}

func settingsOf(t *testing.T, cfg *config.Config) vrrp.Config {
	t.Helper()
	d := &Director{log: slog.New(slog.DiscardHandler)}
	s, err := d.vrrpSettings(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOmittedSettingsReachLibrariesAsTheirDefaults(t *testing.T) {
	cfg := parse(t, omitted)

	// Health checks: config's defaults equal healthcheck's zero-value
	// ones, and the spec is final: Normalize changes nothing.
	spec, ok := healthSpecs(cfg)["web/rs1"]
	if !ok {
		t.Fatal("no health check for web/rs1")
	}
	// Through the VIP is config's default for a dr service; the library
	// cannot have it (it knows no VIP), so its zero value is a plain check.
	if spec.ThroughVIP == "" || !config.IsCheckMark(spec.Mark) {
		t.Errorf("dr check not through the VIP by default: %q mark %#x", spec.ThroughVIP, spec.Mark)
	}
	spec.ThroughVIP, spec.Mark = "", 0
	want := healthcheck.Spec{
		Type: healthcheck.HTTP, Address: "10.0.0.1", Port: 80,
		Interval: healthcheck.DefaultInterval, Timeout: healthcheck.DefaultTimeout,
		Rise: healthcheck.DefaultRise, Fall: healthcheck.DefaultFall,
		Method: healthcheck.DefaultMethod, Path: healthcheck.DefaultPath,
		ExpectStatus: []string{healthcheck.DefaultStatus},
	}
	if !reflect.DeepEqual(spec, want) {
		t.Errorf("health spec from omitted settings:\n got %+v\nwant %+v (healthcheck's defaults)", spec, want)
	}
	if n, err := spec.Normalize(); err != nil || !reflect.DeepEqual(n, spec) {
		t.Errorf("Normalize changed a resolved spec: %+v, %v", n, err)
	}
	// The dns check's, on a udp service (whose protocol is DNS's default
	// transport).
	udp := strings.Replace(strings.Replace(omitted, `type = "http"`, `type = "dns"`, 1), "port = 80\n", "port = 53\nprotocol = \"udp\"\n", 1)
	spec = healthSpecs(parse(t, udp))["web/rs1"]
	spec.ThroughVIP, spec.Mark = "", 0
	want = healthcheck.Spec{
		Type: healthcheck.DNS, Address: "10.0.0.1", Port: 53,
		Interval: healthcheck.DefaultInterval, Timeout: healthcheck.DefaultTimeout,
		Rise: healthcheck.DefaultRise, Fall: healthcheck.DefaultFall,
		Method: healthcheck.DefaultMethod, Path: healthcheck.DefaultPath,
		ExpectStatus: []string{healthcheck.DefaultStatus},
		QueryName:    healthcheck.DefaultQueryName, QueryType: healthcheck.DefaultQueryType,
		DNSTransport: healthcheck.DefaultDNSTransport, ExpectRcode: healthcheck.DefaultExpectRcode,
	}
	if !reflect.DeepEqual(spec, want) {
		t.Errorf("dns spec from omitted settings:\n got %+v\nwant %+v (healthcheck's defaults)", spec, want)
	}
	if n, err := spec.Normalize(); err != nil || !reflect.DeepEqual(n, spec) {
		t.Errorf("Normalize changed a resolved dns spec: %+v, %v", n, err)
	}
	// smtp's EHLO name is the node name.
	smtp := strings.Replace(strings.Replace(omitted, `type = "http"`, `type = "smtp"`, 1), "[global]\n", "[global]\nnode_name = \"lb1\"\n", 1)
	if spec = healthSpecs(parse(t, smtp))["web/rs1"]; spec.HeloName != "lb1" || spec.StartTLS {
		t.Errorf("smtp spec from omitted settings: helo name %q, starttls %v; want the node name lb1, false", spec.HeloName, spec.StartTLS)
	}

	// VRRP: config's defaults equal vrrp's zero-value ones, and the
	// instance runs with the values handed over.
	s := settingsOf(t, cfg)
	if s.Version != vrrp.DefaultVersion || s.AdvertInterval != vrrp.DefaultAdvertInterval ||
		s.GARPInterval != vrrp.DefaultGARPInterval || s.NotifyTimeout != vrrp.DefaultNotifyTimeout {
		t.Errorf("vrrp settings from omitted settings: version %d, advert %v, garp interval %v, notify timeout %v; "+
			"vrrp's defaults are %d, %v, %v, %v", s.Version, s.AdvertInterval, s.GARPInterval, s.NotifyTimeout,
			vrrp.DefaultVersion, vrrp.DefaultAdvertInterval, vrrp.DefaultGARPInterval, vrrp.DefaultNotifyTimeout)
	}
	if config.DefaultLearnedIntervalFactor != vrrp.DefaultLearnedIntervalFactor ||
		s.MaxLearnedInterval != time.Duration(vrrp.DefaultLearnedIntervalFactor)*vrrp.DefaultAdvertInterval {
		t.Errorf("max learned interval from omitted settings %v (factor %d); vrrp's default factor is %d",
			s.MaxLearnedInterval, config.DefaultLearnedIntervalFactor, vrrp.DefaultLearnedIntervalFactor)
	}
	if s.Interface != "eth0" || !s.Preempt || s.GARPCount != 5 {
		t.Errorf("vrrp settings: interface %q, preempt %v, garp count %d; want eth0 (global.interface), true, 5",
			s.Interface, s.Preempt, s.GARPCount)
	}
	inst, err := vrrp.New(s)
	if err != nil {
		t.Fatal(err)
	}
	if st := inst.Status(); st.Version != s.Version || st.AdvertInterval != s.AdvertInterval || st.Interface != s.Interface {
		t.Errorf("vrrp instance runs with version %d, advert %v on %s; handed %d, %v on %s",
			st.Version, st.AdvertInterval, st.Interface, s.Version, s.AdvertInterval, s.Interface)
	}

	// The reconciler: config's resync default equals balancer's.
	if got := cfg.Global.ResyncInterval.Duration; got != balancer.DefaultResyncInterval {
		t.Errorf("resync_interval default %v, balancer's %v", got, balancer.DefaultResyncInterval)
	}

	// IPVS: the real server inherits port and forwarding, weight 1.
	p, err := buildPlan(cfg, func(string) (healthcheck.State, bool) { return 0, false })
	if err != nil {
		t.Fatal(err)
	}
	svc := p.table.Services[0]
	d := svc.Destinations[0]
	if svc.Scheduler != "wlc" || d.Port != 80 || d.Weight != 1 || d.Forwarding != balancer.DR {
		t.Errorf("IPVS from omitted settings: scheduler %s, destination %+v; want wlc, port 80, weight 1, dr", svc.Scheduler, d)
	}
}

// Every health-check spec the director builds from a resolved config is
// final: healthcheck's zero-value defaults never apply to lbd's checks.
func TestHealthSpecsAreResolved(t *testing.T) {
	checks := []string{
		`type = "tcp"`,
		`type = "http"` + "\npath = \"/health\"\nexpect_status = [\"200\", \"301-302\"]\nrise = 1\nfall = 1",
		`type = "https"` + "\ninterval = \"5s\"\ntimeout = \"4s\"\nmethod = \"HEAD\"\ntls_verify = true\nhost = \"www.example.com\"",
		`type = "send_expect"` + "\nsend = \"PING\\r\\n\"\nexpect = \"^\\\\+PONG\"\nport = 6379",
		`type = "exec"` + "\ncommand = [\"true\", \"%h\", \"%p\"]",
		`type = "dns"`,
		`type = "smtp"`,
		`type = "smtp"` + "\nhelo_name = \"lb1.example.net\"\nstarttls = true\ntls_verify = true\nsni = \"mx.example.com\"",
		`type = "dns"` + "\nquery_name = \"example.org\"\nquery_type = \"a\"\nexpect_rcode = \"nxdomain\"\nexpect_answer = \"^example\"\ndns_transport = \"udp\"",
	}
	for _, hc := range checks {
		cfg := parse(t, fmt.Sprintf(`
[[virtual_server]]
name = "web"
vip = "192.0.2.10"
port = 80
[virtual_server.health_check]
%s
[[virtual_server.real_server]]
name = "rs1"
address = "10.0.0.1"
port = 80
`, hc))
		for id, spec := range healthSpecs(cfg) {
			n, err := spec.Normalize()
			if err != nil {
				t.Errorf("%s: healthcheck refuses what config accepted (%s): %v", id, hc, err)
				continue
			}
			if !reflect.DeepEqual(n, spec) {
				t.Errorf("%s: healthcheck's defaults changed a resolved spec (%s):\n got %+v\nfrom %+v", id, hc, n, spec)
			}
		}
	}
}

// vrrpProbe is one value of a [vrrp] setting on both sides of a bound.
type vrrpProbe struct {
	name  string
	toml  string             // the setting as written
	apply func(*vrrp.Config) // the same value on vrrp's side
}

// Both config and vrrp check the VRRP ranges (config for lbd, vrrp as the
// protocol's facts): probed on both sides of every bound config exports,
// they accept and refuse the same values.
func TestVRRPRangesAgree(t *testing.T) {
	var probes []vrrpProbe
	intProbes := func(key string, lo, hi int, set func(*vrrp.Config, int)) {
		for _, n := range []int{lo - 1, lo, hi, hi + 1} {
			probes = append(probes, vrrpProbe{fmt.Sprintf("%s %d", key, n), fmt.Sprintf("%s = %d", key, n),
				func(c *vrrp.Config) { set(c, n) }})
		}
	}
	intProbes("vrid", config.MinVRID, config.MaxVRID, func(c *vrrp.Config, n int) { c.VRID = n })
	intProbes("priority", config.MinPriority, config.MaxPriority, func(c *vrrp.Config, n int) { c.Priority = n })
	for _, v := range []int{1, 2, 3, 4} {
		probes = append(probes, vrrpProbe{fmt.Sprintf("version %d", v), fmt.Sprintf("version = %d\nadvert_interval = \"1s\"", v),
			func(c *vrrp.Config) { c.Version, c.AdvertInterval = v, time.Second }})
	}
	for _, version := range []int{2, 3} {
		lo, hi, step, ok := config.AdvertIntervalRange(version)
		if !ok {
			t.Fatalf("no advert interval range for version %d", version)
		}
		values := []time.Duration{lo - step/2, lo, lo + step/2, hi - step, hi, hi + step}
		// Not 0: vrrp's zero-value default, which lbd never hands over.
		if lo-step > 0 {
			values = append(values, lo-step)
		}
		for _, ai := range values {
			probes = append(probes, vrrpProbe{fmt.Sprintf("v%d advert %v", version, ai),
				fmt.Sprintf("version = %d\nadvert_interval = %q", version, ai),
				// The learned bound follows the interval: vrrp's own default.
				func(c *vrrp.Config) { c.Version, c.AdvertInterval, c.MaxLearnedInterval = version, ai, 0 }})
		}
	}
	for _, w := range []int{-1, 0, config.MaxTrackWeight, config.MaxTrackWeight + 1} {
		probes = append(probes, vrrpProbe{fmt.Sprintf("track weight %d", w),
			fmt.Sprintf("[[vrrp.track_interface]]\nname = \"eth1\"\nweight = %d", w),
			func(c *vrrp.Config) { c.TrackInterfaces = []vrrp.Track{{Name: "eth1", Weight: w}} }})
	}
	for _, n := range []int{config.MaxAuthPassLen, config.MaxAuthPassLen + 1} {
		pass := strings.Repeat("p", n)
		probes = append(probes, vrrpProbe{fmt.Sprintf("auth_pass of %d bytes", n),
			fmt.Sprintf("version = 2\nauth_pass = %q", pass),
			func(c *vrrp.Config) { c.Version, c.AuthPass = 2, pass }})
	}

	base := settingsOf(t, parse(t, omitted))
	for _, pr := range probes {
		// Settings after the table's keys: a [[...]] probe opens its own table.
		file := strings.Replace(omitted, "priority = 100\n", "priority = 100\n"+pr.toml+"\n", 1)
		if strings.HasPrefix(pr.toml, "vrid") {
			file = strings.Replace(omitted, "vrid = 51\n", "", 1)
			file = strings.Replace(file, "priority = 100\n", "priority = 100\n"+pr.toml+"\n", 1)
		}
		if strings.HasPrefix(pr.toml, "priority") {
			file = strings.Replace(omitted, "priority = 100\n", pr.toml+"\n", 1)
		}
		_, cerr := config.Parse("lbd.toml", []byte(file))
		s := base
		s.TrackInterfaces = nil
		pr.apply(&s)
		_, verr := vrrp.New(s)
		if (cerr == nil) != (verr == nil) {
			t.Errorf("%s: config says %v, vrrp says %v", pr.name, errText(cerr), errText(verr))
		}
	}
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}

// Where zero is a setting in config (remove_grace = "0s", garp_count = 0),
// the library takes it as given instead of replacing it with a default of
// its own.
func TestZeroSettingsReachLibraries(t *testing.T) {
	s := settingsOf(t, parse(t, strings.Replace(omitted, "priority = 100\n", "priority = 100\ngarp_count = 0\n", 1)))
	if s.GARPCount != 0 {
		t.Errorf("garp_count = 0 handed to vrrp as %d", s.GARPCount)
	}
	if _, err := vrrp.New(s); err != nil {
		t.Errorf("vrrp refuses garp_count = 0: %v", err)
	}

	two := omitted + "\n[[virtual_server.real_server]]\nname = \"rs2\"\naddress = \"10.0.0.2\"\n"
	for _, tc := range []struct {
		grace string // "" = the default
		gone  bool
	}{{"0s", true}, {"", false}} {
		file := two
		if tc.grace != "" {
			file = strings.Replace(two, "interface = \"eth0\"\n", "interface = \"eth0\"\nremove_grace = \""+tc.grace+"\"\n", 1)
		}
		cfg := parse(t, file)
		k := balancer.NewFake()
		r := balancer.NewReconciler(k, balancer.Options{
			ResyncInterval: cfg.Global.ResyncInterval.Duration,
			RemoveGrace:    cfg.Global.RemoveGrace.Duration,
			Logger:         slog.New(slog.DiscardHandler),
		})
		up := func(string) (healthcheck.State, bool) { return 0, false }
		p, err := buildPlan(cfg, up)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Apply(p.table); err != nil {
			t.Fatal(err)
		}
		rs2 := p.table.Services[0].Destinations[1]
		if !k.SetConns(p.table.Services[0].Key, rs2.Key(), 3, 1) {
			t.Fatal("rs2 not in the kernel")
		}
		cfg.VirtualServers[0].RealServers = cfg.VirtualServers[0].RealServers[:1]
		if p, err = buildPlan(cfg, up); err != nil {
			t.Fatal(err)
		}
		if err := r.Apply(p.table); err != nil {
			t.Fatal(err)
		}
		dests := k.Table().Services[0].Destinations
		if gone := len(dests) == 1; gone != tc.gone {
			t.Errorf("remove_grace %q (%v): a removed real server with connections gone at once = %v, want %v (%+v)",
				tc.grace, cfg.Global.RemoveGrace, gone, tc.gone, dests)
		}
	}
}

// A configuration built in code gets the defaults a file gets: New
// resolves it, so the director never meets an unresolved setting.
func TestNewResolvesAConfigBuiltInCode(t *testing.T) {
	k := balancer.NewFake()
	d, err := New(Options{
		Config: &config.Config{
			Global: config.Global{NodeName: "lb1"},
			VirtualServers: []config.VirtualServer{{
				Name: "web", VIP: "192.0.2.10", Port: 80, Quorum: 1, Forwarding: "nat",
				RealServers: []config.RealServer{{Name: "rs1", Address: "10.0.0.1", Port: 8080}},
			}},
		},
		Logger:     slog.New(slog.DiscardHandler),
		OpenKernel: func() (balancer.Kernel, error) { return k, nil },
		Sysctl:     balancer.ProcSys{Root: t.TempDir()},
		OpenGuard:  func() (flowguard.Guard, error) { return &flowguard.Fake{}, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := d.Config()
	rs := cfg.VirtualServers[0].RealServers[0]
	if rs.Weight == nil || *rs.Weight != 1 || rs.Active == nil || !*rs.Active || rs.Forwarding != "nat" || cfg.Global.Forwarding != "dr" {
		t.Errorf("running config not resolved: global forwarding %q, real server %+v", cfg.Global.Forwarding, rs)
	}
	want := balancer.Destination{Addr: netip.MustParseAddr("10.0.0.1"), Port: 8080, Weight: 1, Forwarding: balancer.NAT}
	if got := k.Table().Services; len(got) != 1 || len(got[0].Destinations) != 1 || got[0].Destinations[0] != want {
		t.Errorf("kernel table %+v, want one service with %+v", got, want)
	}
}

// The connection timeouts: config and balancer accept the same values,
// probed on both sides of every bound.
func TestConnTimeoutRangesAgree(t *testing.T) {
	values := []time.Duration{-time.Second, 0, 1500 * time.Millisecond, time.Second,
		config.MaxConnTimeout, config.MaxConnTimeout + time.Second}
	for _, key := range []string{"tcp_timeout", "tcpfin_timeout", "udp_timeout"} {
		for _, v := range values {
			file := fmt.Sprintf("[global]\n%s = %q\n", key, v)
			_, cerr := config.Parse("lbd.toml", []byte(file))
			var to balancer.Timeouts
			switch key {
			case "tcp_timeout":
				to.TCP = v
			case "tcpfin_timeout":
				to.TCPFin = v
			default:
				to.UDP = v
			}
			berr := balancer.Table{Timeouts: to}.Validate()
			if (cerr == nil) != (berr == nil) {
				t.Errorf("%s = %v: config says %v, balancer says %v", key, v, errText(cerr), errText(berr))
			}
		}
	}
	if config.MaxConnTimeout != balancer.MaxTimeout {
		t.Errorf("config.MaxConnTimeout %v, balancer.MaxTimeout %v", config.MaxConnTimeout, balancer.MaxTimeout)
	}
}
