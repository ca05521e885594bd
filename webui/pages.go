package webui

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"lbd/api"
	"lbd/config"
)

// --- status ---

type statusData struct {
	St     api.Status
	Events []api.Event
	Charts map[string]template.HTML // by service name
	Pair   *api.Pair                // both directors; nil without [peer] (pair.go)
}

func (s *Server) statusData() (*page, api.Status) {
	st := s.d.Status()
	_, ver := s.d.Config()
	charts := map[string]template.HTML{}
	for _, sv := range st.Services {
		charts[sv.Name] = s.charts(sv.Name, "")
	}
	return &page{
		Title:   "Status",
		Nav:     "status",
		Version: ver,
		Data:    statusData{St: st, Events: newestFirst(s.d.Events(0), 8), Charts: charts, Pair: s.pairView()},
	}, st
}

func (s *Server) statusPage(c *gin.Context) {
	p, _ := s.statusData()
	s.render(c, http.StatusOK, "status", p)
}

// statusLive is the fragment the status screen's script swaps in.
func (s *Server) statusLive(c *gin.Context) {
	p, _ := s.statusData()
	s.fill(c, p)
	s.renderTemplate(c, http.StatusOK, "status", "live", p)
}

func newestFirst(evs []api.Event, n int) []api.Event {
	if len(evs) > n {
		evs = evs[len(evs)-n:]
	}
	out := slices.Clone(evs)
	slices.Reverse(out)
	return out
}

func (s *Server) reloadPost(c *gin.Context) {
	back := safeNext(c.PostForm("back"))
	err := s.d.Reload(c)
	se := sess(c)
	if err != nil {
		s.sessions.setFlash(se.id, flash{"error", "Reload refused, the running configuration is kept: " + errText(err)})
	} else {
		cfg, _ := s.d.Config()
		s.sessions.setFlash(se.id, flash{"ok", "Configuration reloaded from " + cfg.Path + "."})
	}
	c.Redirect(http.StatusSeeOther, back)
}

func (s *Server) failoverPost(c *gin.Context) {
	back := safeNext(c.PostForm("back"))
	se := sess(c)
	holdoff := time.Minute
	if v := c.PostForm("holdoff"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			s.sessions.setFlash(se.id, flash{"error", fmt.Sprintf("Hold-off %q is not a duration.", v)})
			c.Redirect(http.StatusSeeOther, back)
			return
		}
		holdoff = d
	}
	inst := c.PostForm("instance")
	if err := s.d.FailoverInstance(c, inst, holdoff); err != nil {
		s.sessions.setFlash(se.id, flash{"error", "Failover refused: " + err.Error()})
	} else {
		s.log.Info("failover requested from the console", "source", source(c), "holdoff", holdoff, "instance", inst)
		what := "This director resigned mastership"
		if inst != "" {
			what = "This director resigned mastership of instance " + inst
		}
		s.sessions.setFlash(se.id, flash{"ok", what + "; it will not take it back for " + holdoff.String() + "."})
	}
	c.Redirect(http.StatusSeeOther, back)
}

// errText flattens an error, listing validation problems one after another.
func errText(err error) string {
	var ps config.Problems
	if errors.As(err, &ps) {
		s := ""
		for i, p := range ps {
			if i > 0 {
				s += "; "
			}
			s += p.String()
		}
		return s
	}
	return err.Error()
}

func (s *Server) flashOK(c *gin.Context, msg string) {
	s.sessions.setFlash(sess(c).id, flash{"ok", msg})
}

// pageNotFound answers an unknown virtual/real server in a page URL.
func (s *Server) pageNotFound(c *gin.Context, err error) {
	msg := err.Error()
	var nf *notFoundError
	if errors.As(err, &nf) {
		msg = titleCase(nf.Error()) + "."
	}
	s.errorPage(c, http.StatusNotFound, "Not found", msg)
}

func vsURL(name string) string { return "/vs/" + url.PathEscape(name) }
func rsURL(vs, rs string) string {
	return vsURL(vs) + "/rs/" + url.PathEscape(rs)
}

// --- global settings ---

// --- redundancy ---

// redundancyData is the live state the redundancy screen shows above its
// form: the VRRP instance (nil without [vrrp]) and the connection sync (nil
// when off).
type redundancyData struct {
	VRRP *api.VRRP
	Sync *api.Sync
	// Instances lists every [[vrrp_instance]] (nil with a lone [vrrp]):
	// the screen then shows them in a table and edits them one by one.
	Instances []api.VRRP
}

func (s *Server) redundancyData() redundancyData {
	st := s.d.Status()
	d := redundancyData{VRRP: st.VRRP, Sync: st.Sync}
	if cfg, _ := s.d.Config(); cfg != nil && len(cfg.VRRPInstances) > 0 {
		d.Instances = st.VRRPInstances
		if d.Instances == nil {
			d.Instances = []api.VRRP{}
		}
	}
	return d
}

// --- virtual servers ---

type vsRow struct {
	Name        string
	Addr        string
	Scheduler   string
	Forwarding  string
	Active      bool
	RealServers int
	HasCheck    string
	St          *api.Service
}

type rsRow struct {
	Name       string
	Addr       string
	Weight     int
	Forwarding string
	Active     bool
	Drained    bool
	St         *api.RealServer
}

func statusService(st api.Status, name string) *api.Service {
	for i := range st.Services {
		if st.Services[i].Name == name {
			return &st.Services[i]
		}
	}
	return nil
}

func statusReal(sv *api.Service, name string) *api.RealServer {
	if sv == nil {
		return nil
	}
	for i := range sv.RealServers {
		if sv.RealServers[i].Name == name {
			return &sv.RealServers[i]
		}
	}
	return nil
}

// configAddr is a configured service's address, worded as lbctl and the
// status screen word it.
func configAddr(vs *config.VirtualServer) string {
	return api.ServiceAddress(vs.VIP, vs.Port, vs.Protocol, vs.Fwmark)
}

func (s *Server) servicesPage(c *gin.Context) {
	cfg, ver := s.d.Config()
	st := s.d.Status()
	var rows []vsRow
	for i := range cfg.VirtualServers {
		vs := &cfg.VirtualServers[i]
		check := "none"
		if vs.HealthCheck != nil && vs.HealthCheck.Type != "" {
			check = vs.HealthCheck.Type
		}
		rows = append(rows, vsRow{
			Name: vs.Name, Addr: configAddr(vs), Scheduler: vs.Scheduler, Forwarding: vs.Forwarding,
			Active: *vs.Active, RealServers: len(vs.RealServers), HasCheck: check,
			St: statusService(st, vs.Name),
		})
	}
	s.render(c, http.StatusOK, "services", &page{Title: "Virtual servers", Nav: "services", Version: ver, Data: rows})
}

type serviceData struct {
	New     bool
	Name    string // the saved name (the form may hold a new one)
	Rows    []rsRow
	St      *api.Service
	Check   string
	Default string // the global forwarding method
}

func (s *Server) serviceData(cfg *config.Config, i int) serviceData {
	vs := &cfg.VirtualServers[i]
	st := statusService(s.d.Status(), vs.Name)
	d := serviceData{Name: vs.Name, St: st, Check: "none", Default: cfg.Global.Forwarding}
	if vs.HealthCheck != nil && vs.HealthCheck.Type != "" {
		d.Check = vs.HealthCheck.Type
	}
	for j := range vs.RealServers {
		rs := &vs.RealServers[j]
		d.Rows = append(d.Rows, rsRow{
			Name: rs.Name, Addr: api.HostPort(rs.Address, rs.Port), Weight: *rs.Weight,
			Forwarding: rs.Forwarding, Active: *rs.Active, Drained: rs.Drained,
			St: statusReal(st, rs.Name),
		})
	}
	return d
}

// instanceDelete removes a [[vrrp_instance]] and its sync group
// memberships (a group left empty goes too).
func (s *Server) instanceDelete(c *gin.Context) {
	name := c.Param("name")
	s.applyAction(c, func(cfg *config.Config) error {
		i, err := lookupInstance(cfg, name)
		if err != nil {
			return err
		}
		cfg.VRRPInstances = slices.Delete(cfg.VRRPInstances, i, i+1)
		groups := cfg.VRRPSyncGroups[:0]
		for _, g := range cfg.VRRPSyncGroups {
			g.Instances = slices.DeleteFunc(g.Instances, func(m string) bool { return m == name })
			if len(g.Instances) > 0 {
				groups = append(groups, g)
			}
		}
		cfg.VRRPSyncGroups = groups
		return nil
	}, "VRRP instance "+name+" deleted.", "/redundancy")
}

func (s *Server) serviceDelete(c *gin.Context) {
	name := c.Param("vs")
	s.applyAction(c, func(cfg *config.Config) error {
		i, err := lookupVS(cfg, name)
		if err != nil {
			return err
		}
		cfg.VirtualServers = slices.Delete(cfg.VirtualServers, i, i+1)
		return nil
	}, "Virtual server "+name+" deleted.", "/services")
}

func (s *Server) serviceActivate(on bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		name := c.Param("vs")
		msg := "Virtual server " + name + " deactivated: it is no longer in the IPVS table."
		if on {
			msg = "Virtual server " + name + " activated."
		}
		s.applyAction(c, func(cfg *config.Config) error {
			i, err := lookupVS(cfg, name)
			if err != nil {
				return err
			}
			cfg.VirtualServers[i].Active = &on
			return nil
		}, msg, safeNextOr(c.PostForm("back"), "/services"))
	}
}

func safeNextOr(next, def string) string {
	if next == "" {
		return def
	}
	return safeNext(next)
}

// --- monitoring (health check) ---

type monitoringData struct {
	Name string
	Addr string
}

// --- real servers ---

type realData struct {
	New  bool
	VS   string
	Name string
	Addr string
	St   *api.RealServer
}

// realAction handles the one-button real-server changes.
func (s *Server) realAction(c *gin.Context) {
	vsName, rsName, action := c.Param("vs"), c.Param("rs"), c.Param("action")
	back := safeNextOr(c.PostForm("back"), vsURL(vsName))
	who := vsName + "/" + rsName
	var change func(rs *config.RealServer)
	var msg string
	switch action {
	case "drain":
		change = func(rs *config.RealServer) { rs.Drained = true }
		msg = "Real server " + who + " drained: no new connections, existing ones finish."
	case "undrain":
		change = func(rs *config.RealServer) { rs.Drained = false }
		msg = "Real server " + who + " takes new connections again."
	case "activate":
		change = func(rs *config.RealServer) { on := true; rs.Active = &on }
		msg = "Real server " + who + " activated."
	case "deactivate":
		change = func(rs *config.RealServer) { off := false; rs.Active = &off }
		msg = "Real server " + who + " deactivated: it is out of the IPVS table."
	case "weight":
		v := c.PostForm("weight")
		w, err := strconv.Atoi(v)
		if err != nil {
			s.errorPage(c, http.StatusUnprocessableEntity, "Not changed", fmt.Sprintf("The weight %q is not a whole number.", v))
			return
		}
		change = func(rs *config.RealServer) { rs.Weight = &w }
		msg = fmt.Sprintf("Real server %s now has weight %d.", who, w)
	case "delete":
		s.applyAction(c, func(cfg *config.Config) error {
			i, j, err := lookup(cfg, vsName, rsName)
			if err != nil {
				return err
			}
			vs := &cfg.VirtualServers[i]
			vs.RealServers = slices.Delete(vs.RealServers, j, j+1)
			return nil
		}, "Real server "+who+" deleted.", back)
		return
	default:
		s.errorPage(c, http.StatusNotFound, "Not found", "There is no real-server action "+strconv.Quote(action)+".")
		return
	}
	s.applyAction(c, func(cfg *config.Config) error {
		i, j, err := lookup(cfg, vsName, rsName)
		if err != nil {
			return err
		}
		change(&cfg.VirtualServers[i].RealServers[j])
		return nil
	}, msg, back)
}

// --- events ---

func (s *Server) eventsData() *page {
	return &page{Title: "Events", Nav: "events", Data: newestFirst(s.d.Events(0), s.opts.EventsShown)}
}

func (s *Server) eventsPage(c *gin.Context) {
	s.render(c, http.StatusOK, "events", s.eventsData())
}

func (s *Server) eventsLive(c *gin.Context) {
	p := s.eventsData()
	s.fill(c, p)
	s.renderTemplate(c, http.StatusOK, "events", "live", p)
}
