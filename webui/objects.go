package webui

import (
	"fmt"

	"github.com/gin-gonic/gin"

	"lbd/api"
	"lbd/config"
)

// Each screen's fields are named after their TOML keys, so a validator
// message keyed "virtual_server[1].real_server[0].weight" lands next to the
// weight field of that real server's form, and bind.go maps them to the
// config's fields by the structs' toml tags.

var (
	globalFields = []string{
		"global.node_name", "global.interface", "global.forwarding", "global.listen",
		"global.resync_interval", "global.remove_grace",
		"global.tcp_timeout", "global.tcpfin_timeout", "global.udp_timeout",
		"console.session_timeout", "console.metrics_auth", "console.tls_cert", "console.tls_key",
	}
	vrrpFields = []string{
		"enabled:own", "version", "vrid", "priority", "advert_interval", "interface", "vips",
		"unicast_peers", "unicast_source", "preempt", "preempt_delay", "track_interface:track",
		"service_penalty", "garp_count", "garp_interval", "garp_refresh", "notify:lines",
		"notify_timeout", "auth_pass",
	}
	vsFields = []string{
		"name", "vip", "port", "protocol", "fwmark", "family", "scheduler", "scheduler_flags:checks",
		"persistence", "persistence_netmask", "forwarding", "active", "quorum", "on_failure",
		"sorry_server",
	}
	rsFields = []string{"name", "address", "port", "weight", "forwarding", "active", "drained"}
	hcFields = []string{
		"type", "address", "port", "interval", "timeout", "rise", "fall", "method", "path",
		"host", "sni", "expect_status:commas", "expect_body", "tls_verify", "send:crlf", "expect", "command:lines",
		"query_name", "query_type", "dns_transport", "expect_rcode", "expect_answer", "helo_name", "starttls",
	}
)

func vsPrefix(i int) string    { return fmt.Sprintf("virtual_server[%d].", i) }
func rsPrefix(i, j int) string { return fmt.Sprintf("virtual_server[%d].real_server[%d].", i, j) }
func hcPrefix(i int) string    { return fmt.Sprintf("virtual_server[%d].health_check.", i) }

// The blank objects an "add" form starts from: config's defaults that do
// not depend on the object's place (config.NewVirtualServer...). Unset
// settings show blank and get config's defaults when saved.
func blankVS() *config.VirtualServer { return config.NewVirtualServer() }
func blankRS() *config.RealServer    { return config.NewRealServer() }
func blankCheck() *config.HealthCheck {
	return config.NewHealthCheck("none")
}

// blankVRRP suggests keepalived's sample VRID and a middle priority; the
// rest are config's defaults.
func blankVRRP() *config.VRRP {
	v := config.NewVRRP()
	v.VRID, v.Priority = 51, 100
	return v
}

// The editing screens. Each says where its object lives in the config,
// the page around the form, and what saving says; editPage and editPost
// do the rest the same way for all.

var globalScreen = &editScreen{
	tmpl: "global", fields: globalFields,
	object: func(_ *gin.Context, cfg *config.Config, _ *form, _ bool) (any, string, error) {
		return cfg, "", nil
	},
	page: func(_ *Server, _ *gin.Context, cfg *config.Config) (*page, error) {
		return &page{Title: "Global settings", Nav: "global", Data: cfg.Path}, nil
	},
	saved: func(*gin.Context, *form) (string, string) {
		return "Global settings saved. A new listen address or TLS setting takes effect when lbd restarts.", "/global"
	},
}

// redundancyScreen edits [vrrp]; its "enabled" box says whether there is
// one. Without [vrrp] the form shows the usual defaults with "enabled" off.
var redundancyScreen = &editScreen{
	tmpl: "redundancy", fields: vrrpFields,
	object: func(_ *gin.Context, cfg *config.Config, f *form, saving bool) (any, string, error) {
		switch {
		case !saving:
			f.setBool("enabled", cfg.VRRP != nil)
			if cfg.VRRP == nil {
				return blankVRRP(), "vrrp.", nil
			}
		case !f.On("enabled"):
			cfg.VRRP = nil
			return nil, "vrrp.", nil
		case cfg.VRRP == nil:
			cfg.VRRP = &config.VRRP{}
		}
		return cfg.VRRP, "vrrp.", nil
	},
	page: func(s *Server, _ *gin.Context, _ *config.Config) (*page, error) {
		return &page{Title: "Redundancy", Nav: "redundancy", Data: s.redundancyData()}, nil
	},
	saved: func(*gin.Context, *form) (string, string) { return "Redundancy settings saved.", "/redundancy" },
}

var servicesCrumb = []crumb{{"/services", "Virtual servers"}}

// vsCrumbs lead to a page below the virtual server vs.
func vsCrumbs(vs string) []crumb { return append(servicesCrumb[:1:1], crumb{vsURL(vs), vs}) }

var serviceAddScreen = &editScreen{
	tmpl: "service", fields: vsFields, fixup: vsFixup,
	object: func(_ *gin.Context, cfg *config.Config, _ *form, saving bool) (any, string, error) {
		i := len(cfg.VirtualServers)
		if !saving {
			return blankVS(), vsPrefix(i), nil
		}
		cfg.VirtualServers = append(cfg.VirtualServers, config.VirtualServer{})
		return &cfg.VirtualServers[i], vsPrefix(i), nil
	},
	page: func(_ *Server, _ *gin.Context, cfg *config.Config) (*page, error) {
		return &page{Title: "Add a virtual server", Nav: "services", Here: "Add",
			Data: serviceData{New: true, Default: cfg.Global.Forwarding}, Breadcrumb: servicesCrumb}, nil
	},
	saved: func(_ *gin.Context, f *form) (string, string) {
		return "Virtual server " + f.V("name") + " added. Add its real servers below.", vsURL(f.V("name"))
	},
}

// serviceOf is the virtual server a page's URL names, and its index.
func serviceOf(c *gin.Context, cfg *config.Config) (*config.VirtualServer, int, error) {
	i, err := lookupVS(cfg, c.Param("vs"))
	if err != nil {
		return nil, -1, err
	}
	return &cfg.VirtualServers[i], i, nil
}

var serviceScreen = &editScreen{
	tmpl: "service", fields: vsFields, fixup: vsFixup,
	object: func(c *gin.Context, cfg *config.Config, _ *form, _ bool) (any, string, error) {
		vs, i, err := serviceOf(c, cfg)
		return vs, vsPrefix(i), err
	},
	page: func(s *Server, c *gin.Context, cfg *config.Config) (*page, error) {
		_, i, err := serviceOf(c, cfg)
		if err != nil {
			return nil, err
		}
		name := c.Param("vs")
		return &page{Title: "Virtual server " + name, Nav: "services", Here: name,
			Data: s.serviceData(cfg, i), Breadcrumb: servicesCrumb}, nil
	},
	saved: func(_ *gin.Context, f *form) (string, string) {
		return "Virtual server " + f.V("name") + " saved.", vsURL(f.V("name"))
	},
}

// vsFixup: with a VIP the address family follows from the address; the
// family select is for firewall-mark services only.
func vsFixup(obj any) {
	if vs := obj.(*config.VirtualServer); vs.Fwmark == 0 {
		vs.Family = ""
	}
}

var monitoringScreen = &editScreen{
	tmpl: "monitoring", fields: hcFields,
	object: func(c *gin.Context, cfg *config.Config, _ *form, saving bool) (any, string, error) {
		vs, i, err := serviceOf(c, cfg)
		if err != nil {
			return nil, "", err
		}
		switch {
		case vs.HealthCheck != nil:
		case saving:
			vs.HealthCheck = &config.HealthCheck{}
		default:
			return blankCheck(), hcPrefix(i), nil
		}
		return vs.HealthCheck, hcPrefix(i), nil
	},
	page: func(_ *Server, c *gin.Context, cfg *config.Config) (*page, error) {
		name := c.Param("vs")
		return &page{Title: "Monitoring " + name, Nav: "services", Here: "Monitoring",
			Data:       monitoringData{Name: name, Addr: configAddrOf(cfg, name)},
			Breadcrumb: vsCrumbs(name)}, nil
	},
	saved: func(c *gin.Context, _ *form) (string, string) {
		return "Health check of " + c.Param("vs") + " saved.", vsURL(c.Param("vs"))
	},
}

var realAddScreen = &editScreen{
	tmpl: "real", fields: rsFields,
	object: func(c *gin.Context, cfg *config.Config, _ *form, saving bool) (any, string, error) {
		vs, i, err := serviceOf(c, cfg)
		if err != nil {
			return nil, "", err
		}
		j := len(vs.RealServers)
		if !saving {
			return blankRS(), rsPrefix(i, j), nil
		}
		vs.RealServers = append(vs.RealServers, config.RealServer{})
		return &vs.RealServers[j], rsPrefix(i, j), nil
	},
	page: func(_ *Server, c *gin.Context, cfg *config.Config) (*page, error) {
		name := c.Param("vs")
		return &page{Title: "Add a real server to " + name, Nav: "services", Here: "Add real server",
			Data:       realData{New: true, VS: name, Addr: configAddrOf(cfg, name)},
			Breadcrumb: vsCrumbs(name)}, nil
	},
	saved: func(c *gin.Context, f *form) (string, string) {
		return "Real server " + f.V("name") + " added to " + c.Param("vs") + ".", vsURL(c.Param("vs"))
	},
}

var realScreen = &editScreen{
	tmpl: "real", fields: rsFields,
	object: func(c *gin.Context, cfg *config.Config, _ *form, _ bool) (any, string, error) {
		i, j, err := lookup(cfg, c.Param("vs"), c.Param("rs"))
		if err != nil {
			return nil, "", err
		}
		return &cfg.VirtualServers[i].RealServers[j], rsPrefix(i, j), nil
	},
	page: func(s *Server, c *gin.Context, cfg *config.Config) (*page, error) {
		vsName, rsName := c.Param("vs"), c.Param("rs")
		return &page{Title: "Real server " + vsName + "/" + rsName, Nav: "services", Here: rsName,
			Data: realData{VS: vsName, Name: rsName, Addr: configAddrOf(cfg, vsName),
				St: statusReal(statusService(s.d.Status(), vsName), rsName)},
			Breadcrumb: vsCrumbs(vsName)}, nil
	},
	saved: func(c *gin.Context, f *form) (string, string) {
		return "Real server " + c.Param("vs") + "/" + f.V("name") + " saved.", vsURL(c.Param("vs"))
	},
}

// configAddrOf is the address of the named service, "" when it is gone.
func configAddrOf(cfg *config.Config, name string) string {
	if vs := cfg.FindVirtualServer(name); vs != nil {
		return configAddr(vs)
	}
	return ""
}

// The VRRP instances ([[vrrp_instance]]) are edited one by one, with the
// redundancy screen's fields and a name.

var instanceFields = append([]string{"name"}, vrrpFields[1:]...) // no "enabled"

func instancePrefix(i int) string { return fmt.Sprintf("vrrp_instance[%d].", i) }

// instanceData is the instance screen's page data.
type instanceData struct {
	New  bool
	Name string
	St   *api.VRRP // live state; nil when new or not running
}

func lookupInstance(cfg *config.Config, name string) (int, error) {
	names := make([]string, 0, len(cfg.VRRPInstances))
	for i := range cfg.VRRPInstances {
		if cfg.VRRPInstances[i].Name == name {
			return i, nil
		}
		names = append(names, cfg.VRRPInstances[i].Name)
	}
	return -1, &notFoundError{What: "VRRP instance", Name: name, Suggestion: config.Suggest(name, names)}
}

var redundancyCrumb = []crumb{{"/redundancy", "Redundancy"}}

var instanceAddScreen = &editScreen{
	tmpl: "instance", fields: instanceFields,
	object: func(_ *gin.Context, cfg *config.Config, _ *form, saving bool) (any, string, error) {
		i := len(cfg.VRRPInstances)
		if !saving {
			v := blankVRRP()
			for _, o := range cfg.VRRPInstances {
				// Suggest the next free VRID.
				v.VRID = max(v.VRID, min(o.VRID+1, config.MaxVRID))
			}
			return v, instancePrefix(i), nil
		}
		cfg.VRRPInstances = append(cfg.VRRPInstances, config.VRRP{})
		return &cfg.VRRPInstances[i], instancePrefix(i), nil
	},
	page: func(_ *Server, _ *gin.Context, _ *config.Config) (*page, error) {
		return &page{Title: "Add a VRRP instance", Nav: "redundancy", Here: "Add instance",
			Data: instanceData{New: true}, Breadcrumb: redundancyCrumb}, nil
	},
	saved: func(_ *gin.Context, f *form) (string, string) {
		return "VRRP instance " + f.V("name") + " added.", "/redundancy"
	},
}

var instanceScreen = &editScreen{
	tmpl: "instance", fields: instanceFields,
	object: func(c *gin.Context, cfg *config.Config, _ *form, _ bool) (any, string, error) {
		i, err := lookupInstance(cfg, c.Param("name"))
		if err != nil {
			return nil, "", err
		}
		return &cfg.VRRPInstances[i], instancePrefix(i), nil
	},
	page: func(s *Server, c *gin.Context, cfg *config.Config) (*page, error) {
		name := c.Param("name")
		if _, err := lookupInstance(cfg, name); err != nil {
			return nil, err
		}
		d := instanceData{Name: name}
		for _, v := range s.d.Status().VRRPInstances {
			if v.Name == name {
				d.St = &v
			}
		}
		return &page{Title: "VRRP instance " + name, Nav: "redundancy", Here: name, Data: d, Breadcrumb: redundancyCrumb}, nil
	},
	saved: func(_ *gin.Context, f *form) (string, string) {
		return "VRRP instance " + f.V("name") + " saved.", "/redundancy"
	},
}
