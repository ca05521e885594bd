package webui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"lbd/api"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// assetVersion changes whenever a static file changes, so browsers may
// cache assets and still never run an old script against a new page.
var assetVersion = func() string {
	h := sha256.New()
	_ = fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := staticFS.ReadFile(p)
		h.Write([]byte(p))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}()

// page is what every template gets.
type page struct {
	Title      string
	Path       string // the request path, to reload a form
	Nav        string // highlighted menu entry
	User       string
	CSRF       string
	Version    string // config version the page's forms were rendered from
	Flash      flash
	Build      string
	Node       string
	Role       string // VRRP state, "" without VRRP
	RefreshMS  int
	Breadcrumb []crumb
	Here       string // the last breadcrumb: this page
	Form       *form
	Data       any
	Charts     template.HTML // a virtual or real server's history, on its page
	PeerName   string        // the peer director's name: "Save on both directors" (pair.go)
}

type crumb struct{ Href, Text string }

var funcs = template.FuncMap{
	"asset": func(name string) string { return "/static/" + name + "?v=" + assetVersion },
	"field": func(f *form, name, label, hint string) fieldData {
		return fieldData{F: f, Name: name, Label: label, Hint: hint}
	},
	"choice": func(f *form, name, label, hint string, options ...string) fieldData {
		fd := fieldData{F: f, Name: name, Label: label, Hint: hint}
		for _, o := range options {
			v, l, ok := strings.Cut(o, "=")
			if !ok {
				l = v
			}
			fd.Options = append(fd.Options, option{Value: v, Label: l})
		}
		return fd
	},
	"fid":      fieldID,
	"ts":       func(t time.Time) string { return fmtTime(t) },
	"ago":      func(t time.Time) string { return api.Ago(t, time.Now()) },
	"hostport": api.HostPort,
	// A kernel without IPVS: the same words as lbctl's.
	"ipvsUnavailable": func() string { return api.IPVSUnavailableText },
	"si":              si,
	"bytes":           humanBytes,
	"dur":             fmtDuration,
	"upper":           strings.ToUpper,
	"title":           titleCase,
	"health":          healthClass,
	"percent":         func(a, b int) int { return percent(a, b) },
	"add":             func(a, b int) int { return a + b },
	"join":            strings.Join,
	"svcaddr":         func(sv api.Service) string { return sv.Address() },
	"syncview":        newSyncView,
	"guard":           guardText,
	"count":           count,
	"short": func(v string) string {
		if len(v) > 12 {
			return v[:12]
		}
		return v
	},
	"instances": func(p *page, list []api.VRRP, back string, edit bool) instanceTable {
		return instanceTable{Instances: list, CSRF: p.CSRF, Back: back, Edit: edit}
	},
	"vrrpform": func(f *form, named bool, vipsHint string) vrrpForm {
		return vrrpForm{F: f, Named: named, VIPsHint: vipsHint}
	},
	"act": func(p *page, url, label, class, id, back, confirm string) actionData {
		return actionData{URL: url, Label: label, Class: class, ID: id, Back: back, Confirm: confirm, CSRF: p.CSRF, Version: p.Version}
	},
}

// vrrpForm is the "vrrpfields" template's argument.
type vrrpForm struct {
	F        *form
	Named    bool // the [[vrrp_instance]] form: a name field first
	VIPsHint string
}

// instanceTable is the "vrrpinstances" template's argument.
type instanceTable struct {
	Instances  []api.VRRP
	CSRF, Back string
	Edit       bool
}

// actionData is a one-button form (drain, delete, ...).
type actionData struct {
	URL, Label, Class, ID, Back, Confirm string
	CSRF, Version                        string
}

type fieldData struct {
	F       *form
	Name    string
	Label   string
	Hint    string
	Options []option
}

type option struct{ Value, Label string }

func fieldID(name string) string {
	r := strings.NewReplacer(".", "-", "[", "-", "]", "")
	return "f-" + r.Replace(name)
}

func parseTemplates() (map[string]*template.Template, error) {
	base, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/fields.html", "templates/pairparts.html")
	if err != nil {
		return nil, err
	}
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := make(map[string]*template.Template)
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if name == "layout" || name == "fields" || name == "pairparts" {
			continue
		}
		t, err := base.Clone()
		if err != nil {
			return nil, err
		}
		if _, err := t.ParseFS(templateFS, f); err != nil {
			return nil, err
		}
		pages[name] = t
	}
	return pages, nil
}

// fill completes the page fields every screen shows.
func (s *Server) fill(c *gin.Context, p *page) {
	p.Build = s.opts.Version
	p.Path = c.Request.URL.Path
	if se, ok := c.Get("session"); ok {
		se := se.(session)
		p.User = se.user
		if p.CSRF == "" {
			p.CSRF = se.csrf
		}
		st := s.d.Status()
		p.Node = st.Node
		if st.VRRP != nil {
			p.Role = st.VRRP.State
		}
		for _, v := range st.VRRPInstances {
			// Several instances in different states: no one role.
			if v.State != p.Role {
				p.Role = "mixed"
			}
		}
		if p.Version == "" {
			p.Version = st.ConfigVersion
		}
		p.PeerName = s.peerName()
	}
	p.RefreshMS = int(s.opts.RefreshInterval / time.Millisecond)
}

// render executes a page template into a buffer first, so a template error
// becomes a clean 500 instead of half a page.
func (s *Server) render(c *gin.Context, code int, name string, p *page) {
	s.fill(c, p)
	// Only whole pages take the one-shot message: a background refresh
	// racing the redirect after a POST must not swallow it.
	if se, ok := c.Get("session"); ok && p.Flash.Text == "" {
		p.Flash = s.sessions.takeFlash(se.(session).id)
	}
	s.renderTemplate(c, code, name, "layout", p)
}

func (s *Server) renderTemplate(c *gin.Context, code int, name, tmpl string, data any) {
	t, ok := s.pages[name]
	if !ok {
		s.log.Error("no such template", "name", name)
		c.Data(http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("internal error"))
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, tmpl, data); err != nil {
		s.log.Error("template failed", "name", name, "err", err)
		c.Data(http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("internal error"))
		return
	}
	c.Data(code, "text/html; charset=utf-8", buf.Bytes())
}

type errorData struct {
	Message string
	Back    string
}

func (s *Server) errorPage(c *gin.Context, code int, title, msg string) {
	back := "/status"
	if b := c.PostForm("back"); b != "" && c.Request.Method == http.MethodPost {
		back = safeNext(b)
	} else if c.Request.Method == http.MethodPost {
		back = c.Request.URL.Path
		if i := strings.LastIndex(back, "/"); i > 0 && isActionPath(back) {
			back = back[:i]
		}
	}
	s.render(c, code, "error", &page{Title: title, Data: errorData{Message: msg, Back: back}})
}

func isActionPath(p string) bool {
	for _, a := range []string{"/delete", "/activate", "/deactivate", "/drain", "/undrain", "/weight"} {
		if strings.HasSuffix(p, a) {
			return true
		}
	}
	return false
}

func (s *Server) notFound(c *gin.Context) {
	if strings.HasPrefix(c.Request.URL.Path, api.Prefix+"/") {
		c.JSON(http.StatusNotFound, api.Error{Error: "no such API path: " + c.Request.URL.Path})
		return
	}
	if _, ok := s.currentSession(c); !ok {
		c.Redirect(http.StatusSeeOther, "/login")
		return
	}
	se, _ := s.currentSession(c)
	c.Set("session", se)
	s.errorPage(c, http.StatusNotFound, "Not found", "There is no page at "+c.Request.URL.Path+".")
}

func (s *Server) methodNotAllowed(c *gin.Context) {
	if strings.HasPrefix(c.Request.URL.Path, api.Prefix+"/") {
		c.JSON(http.StatusMethodNotAllowed, api.Error{Error: c.Request.Method + " is not allowed on " + c.Request.URL.Path})
		return
	}
	c.Data(http.StatusMethodNotAllowed, "text/plain; charset=utf-8", []byte("method not allowed\n"))
}

func (s *Server) static(c *gin.Context) {
	name := strings.TrimPrefix(path.Clean(c.Param("file")), "/")
	b, err := staticFS.ReadFile("static/" + name)
	if err != nil || name == "" {
		c.Data(http.StatusNotFound, "text/plain; charset=utf-8", []byte("not found\n"))
		return
	}
	ct := "application/octet-stream"
	switch path.Ext(name) {
	case ".css":
		ct = "text/css; charset=utf-8"
	case ".js":
		ct = "text/javascript; charset=utf-8"
	case ".svg":
		ct = "image/svg+xml"
	}
	if c.Query("v") == assetVersion {
		c.Header("Cache-Control", "public, max-age=86400, immutable")
	} else {
		c.Header("Cache-Control", "no-cache")
	}
	c.Data(http.StatusOK, ct, b)
}

// --- formatting helpers used by templates ---

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// si prints a count with a k/M/G suffix.
func si(n uint64) string {
	f := float64(n)
	for _, u := range []string{"", "k", "M", "G", "T"} {
		if f < 1000 {
			if u == "" {
				return strconv.FormatUint(n, 10)
			}
			return strconv.FormatFloat(f, 'f', 1, 64) + u
		}
		f /= 1000
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + "P"
}

func humanBytes(n uint64) string {
	f := float64(n)
	for _, u := range []string{"B", "KiB", "MiB", "GiB", "TiB"} {
		if f < 1024 {
			if u == "B" {
				return strconv.FormatUint(n, 10) + " B"
			}
			return strconv.FormatFloat(f, 'f', 1, 64) + " " + u
		}
		f /= 1024
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + " PiB"
}

func fmtDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	return d.String()
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func healthClass(h string) string {
	switch h {
	case "up", "master", "healthy":
		return "ok"
	case "down", "fault", "unhealthy":
		return "bad"
	case "backup":
		return "info"
	default:
		return "muted"
	}
}

func percent(a, b int) int {
	if b <= 0 {
		return 0
	}
	p := a * 100 / b
	if p > 100 {
		p = 100
	}
	return p
}

// sortedKeys returns m's keys in order, for stable output.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
