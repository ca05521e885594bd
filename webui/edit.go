package webui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"lbd/config"
)

// notFoundError names an unknown virtual or real server and the closest
// existing name.
type notFoundError struct {
	What       string // "virtual server" | "real server"
	Name       string
	In         string // the virtual server, for a real server
	Suggestion string
}

func (e *notFoundError) Error() string {
	msg := fmt.Sprintf("no %s %q", e.What, e.Name)
	if e.In != "" {
		msg += fmt.Sprintf(" in virtual server %q", e.In)
	}
	if e.Suggestion != "" {
		msg += fmt.Sprintf("; did you mean %q?", e.Suggestion)
	}
	return msg
}

// saveBothField is the edit forms' "Save on both directors" button.
const saveBothField = "both"

// errFormInvalid stops an edit whose form could not even be read (a weight
// that is not a number); the form already carries the messages.
var errFormInvalid = errors.New("webui: form has errors")

func lookupVS(cfg *config.Config, name string) (int, error) {
	names := make([]string, 0, len(cfg.VirtualServers))
	for i := range cfg.VirtualServers {
		if cfg.VirtualServers[i].Name == name {
			return i, nil
		}
		names = append(names, cfg.VirtualServers[i].Name)
	}
	return -1, &notFoundError{What: "virtual server", Name: name, Suggestion: config.Suggest(name, names)}
}

func lookupRS(vs *config.VirtualServer, name string) (int, error) {
	names := make([]string, 0, len(vs.RealServers))
	for j := range vs.RealServers {
		if vs.RealServers[j].Name == name {
			return j, nil
		}
		names = append(names, vs.RealServers[j].Name)
	}
	return -1, &notFoundError{What: "real server", Name: name, In: vs.Name, Suggestion: config.Suggest(name, names)}
}

// lookup finds a virtual server and, when rsName is set, one of its real
// servers.
func lookup(cfg *config.Config, vsName, rsName string) (i, j int, err error) {
	i, err = lookupVS(cfg, vsName)
	if err != nil || rsName == "" {
		return i, -1, err
	}
	j, err = lookupRS(&cfg.VirtualServers[i], rsName)
	return i, j, err
}

// edit is the console's only way to change anything: fn changes a copy of
// the running configuration and the director applies it. base is the
// version the operator's screen showed; Apply refuses when it is no longer
// the running one. With base "" (API calls that name one object and carry
// no version) the change is made against whatever is running, retried if
// another edit lands in between.
func (s *Server) edit(ctx context.Context, base, src string, fn func(*config.Config) error) (string, error) {
	for attempt := 0; ; attempt++ {
		cfg, running := s.d.Config()
		if err := fn(cfg); err != nil {
			return "", err
		}
		if err := s.checkConsoleTLS(cfg); err != nil {
			return "", err
		}
		b := base
		if b == "" {
			b = running
		}
		v, err := s.d.Apply(ctx, cfg, b, src)
		if base == "" && errors.Is(err, config.ErrStale) && !changedOnDisk(err) && attempt < 3 {
			continue
		}
		return v, err
	}
}

// checkConsoleTLS refuses a new configuration whose console TLS files would
// not load, when they are not the running ones: after the next restart the
// console would not start, and it is the way to repair the config.
func (s *Server) checkConsoleTLS(cfg *config.Config) error {
	running, _ := s.d.Config()
	cert, key := cfg.Console.TLSCert, cfg.Console.TLSKey
	if cert == running.Console.TLSCert && key == running.Console.TLSKey {
		return nil
	}
	if (cert == "") != (key == "") {
		return nil // config validation names the missing one
	}
	if err := CheckTLS(cert, key); err != nil {
		return config.Problems{{File: running.Path, Key: "console.tls_cert", Message: fmt.Sprintf(
			"console.tls_cert and console.tls_key do not load as a certificate and its key (%v); the console would not start with them", errors.Unwrap(err))}}
	}
	return nil
}

// changedOnDisk reports whether err says the config file holds changes
// that were never loaded (a hand edit, lbd token or passwd): unlike a
// concurrent edit, retrying cannot help; the operator reloads first.
func changedOnDisk(err error) bool {
	var m interface{ ChangedOnDisk() }
	return errors.As(err, &m)
}

// --- the one edit path every screen shares ---

// editScreen is one editing screen.
type editScreen struct {
	tmpl   string   // template name
	fields []string // field specs, see bind.go
	// object returns the edited object, a pointer to a config struct inside
	// cfg, and the key prefix of its settings. When saving, an "add" screen
	// appends a new object to cfg; when showing, it returns a blank one
	// to start from. A nil object leaves nothing to bind.
	object func(c *gin.Context, cfg *config.Config, f *form, saving bool) (obj any, prefix string, err error)
	// fixup applies a rule of the screen after binding; nil for none.
	fixup func(obj any)
	// page is the page around the form (without Form and Version).
	page func(s *Server, c *gin.Context, cfg *config.Config) (*page, error)
	// saved is the message after a save and where to go next.
	saved func(c *gin.Context, f *form) (msg, to string)
}

// editPage shows a screen's form filled from the running config.
func (s *Server) editPage(sc *editScreen) gin.HandlerFunc {
	return func(c *gin.Context) {
		cfg, ver := s.d.Config()
		f := newForm("", sc.fields...)
		obj, prefix, err := sc.object(c, cfg, f, false)
		if err != nil {
			s.pageNotFound(c, err)
			return
		}
		f.prefix = prefix
		f.load(obj)
		s.renderForm(c, sc, cfg, http.StatusOK, f, ver)
	}
}

// editPost saves a screen's form: binds the posted fields to a copy of the
// running config, lets inherited settings follow their parents
// (config.Inherit) and hands the result to the director. On success it
// redirects with a message; otherwise the form comes back as typed, with
// the messages next to their fields.
func (s *Server) editPost(sc *editScreen) gin.HandlerFunc {
	return func(c *gin.Context) {
		f := newForm("", sc.fields...)
		f.read(c)
		code := s.applyForm(c, f, func(cfg *config.Config) error {
			f.Errors = map[string][]string{} // a retried edit binds again
			before := cfg.Clone()
			obj, prefix, err := sc.object(c, cfg, f, true)
			if err != nil {
				return err
			}
			f.prefix = prefix
			var unset []string
			if obj != nil {
				for _, name := range f.bind(obj) {
					unset = append(unset, prefix+name)
				}
				if sc.fixup != nil {
					sc.fixup(obj)
				}
			}
			config.Inherit(before, cfg, unset...)
			return nil
		})
		if code == 0 {
			msg, to := sc.saved(c, f)
			kind := "ok"
			if c.PostForm(saveBothField) != "" {
				// "Save on both directors": the local save is done; the
				// peer's result is told beside it, and a failure stays
				// on the pair view until the configurations agree.
				both, ok := s.saveOnPeer(c)
				msg = strings.TrimSuffix(msg, ".") + ": " + both + "."
				if !ok {
					kind = "error"
				}
			}
			s.sessions.setFlash(sess(c).id, flash{kind, msg})
			c.Redirect(http.StatusSeeOther, to)
			return
		}
		cfg, _ := s.d.Config()
		s.renderForm(c, sc, cfg, code, f, s.formVersion(c, f))
	}
}

func (s *Server) renderForm(c *gin.Context, sc *editScreen, cfg *config.Config, code int, f *form, version string) {
	p, err := sc.page(s, c, cfg)
	if err != nil {
		s.pageNotFound(c, err)
		return
	}
	p.Form, p.Version = f, version
	if vs := c.Param("vs"); vs != "" && (sc == serviceScreen || sc == realScreen) {
		p.Charts = s.charts(vs, c.Param("rs"))
	}
	s.render(c, code, sc.tmpl, p)
}

// applyForm applies fn's change for a submitted form. It returns 0 when the
// change is applied, otherwise the HTTP status to re-render the form with;
// the form then carries the messages.
func (s *Server) applyForm(c *gin.Context, f *form, fn func(*config.Config) error) int {
	base := c.PostForm(versionField)
	if base == "" {
		f.General = append(f.General, "The form carries no configuration version; reload the page and try again.")
		return http.StatusBadRequest
	}
	_, err := s.edit(c, base, source(c), func(cfg *config.Config) error {
		if err := fn(cfg); err != nil {
			return err
		}
		if f.Invalid() {
			return errFormInvalid
		}
		return nil
	})
	var ps config.Problems
	var nf *notFoundError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errFormInvalid):
		return http.StatusUnprocessableEntity
	case errors.As(err, &ps):
		f.placeProblems(ps)
		return http.StatusUnprocessableEntity
	case changedOnDisk(err):
		f.General = append(f.General, titleCase(err.Error())+".")
		return http.StatusConflict
	case errors.Is(err, config.ErrStale):
		f.Conflict = true
		return http.StatusConflict
	case errors.As(err, &nf):
		f.General = append(f.General, titleCase(nf.Error())+".")
		return http.StatusNotFound
	default:
		s.log.Error("console edit failed", "path", c.Request.URL.Path, "err", err)
		f.General = append(f.General, "Not applied: "+err.Error())
		return http.StatusInternalServerError
	}
}

// formVersion is the version a re-rendered form carries: the one it was
// opened with, unless the save was refused as stale, in which case the
// operator has been told and may save again over the current version.
func (s *Server) formVersion(c *gin.Context, f *form) string {
	if f.Conflict {
		_, v := s.d.Config()
		return v
	}
	return c.PostForm(versionField)
}

// applyAction runs a one-button change (drain, delete, ...) and redirects
// back with a message, or shows why nothing changed.
func (s *Server) applyAction(c *gin.Context, fn func(*config.Config) error, okMsg, back string) {
	base := c.PostForm(versionField)
	if base == "" {
		s.errorPage(c, http.StatusBadRequest, "Not changed", "The form carries no configuration version; reload the page and try again.")
		return
	}
	_, err := s.edit(c, base, source(c), fn)
	var ps config.Problems
	var nf *notFoundError
	switch {
	case err == nil:
		s.sessions.setFlash(sess(c).id, flash{"ok", okMsg})
		c.Redirect(http.StatusSeeOther, back)
	case changedOnDisk(err):
		s.errorPage(c, http.StatusConflict, "Not changed: the file changed on disk", titleCase(err.Error())+".")
	case errors.Is(err, config.ErrStale):
		s.errorPage(c, http.StatusConflict, "Not changed: the configuration changed",
			"Someone else saved a change since this page was loaded, so your action was not applied (it might have been based on what you no longer see). Reload the page, check, and try again.")
	case errors.As(err, &ps):
		s.errorPage(c, http.StatusUnprocessableEntity, "Not changed: the result would be invalid", errText(err))
	case errors.As(err, &nf):
		s.errorPage(c, http.StatusNotFound, "Not found", titleCase(nf.Error())+".")
	default:
		s.log.Error("console action failed", "path", c.Request.URL.Path, "err", err)
		s.errorPage(c, http.StatusInternalServerError, "Not changed", err.Error())
	}
}
