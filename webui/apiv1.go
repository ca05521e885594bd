package webui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"lbd/api"
	"lbd/config"
)

// apiError answers err with the status it deserves: 404 with a suggestion
// for unknown names, 409 for a stale version, 422 with the problems for an
// invalid config.
func (s *Server) apiError(c *gin.Context, err error) {
	var ps config.Problems
	var nf *notFoundError
	switch {
	case errors.As(err, &nf):
		c.JSON(http.StatusNotFound, api.Error{Error: nf.Error(), Suggestion: nf.Suggestion})
	case changedOnDisk(err):
		c.JSON(http.StatusConflict, api.Error{Error: err.Error()})
	case errors.Is(err, config.ErrStale):
		c.JSON(http.StatusConflict, api.Error{Error: "the configuration changed since you read it (stale version); read it again and retry"})
	case errors.As(err, &ps):
		c.JSON(http.StatusUnprocessableEntity, api.Error{Error: "invalid configuration", Problems: apiProblems(ps)})
	default:
		s.log.Error("api request failed", "path", c.Request.URL.Path, "err", err)
		c.JSON(http.StatusInternalServerError, api.Error{Error: err.Error()})
	}
}

func apiProblems(ps config.Problems) []api.Problem {
	out := make([]api.Problem, 0, len(ps))
	for _, p := range ps {
		out = append(out, api.Problem{File: p.File, Line: p.Line, Message: p.Message})
	}
	return out
}

func badRequest(c *gin.Context, msg string) {
	c.JSON(http.StatusBadRequest, api.Error{Error: msg})
}

// bodyError answers a body that could not be read: 413 when it was over the
// route's limit.
func bodyError(c *gin.Context, what string, err error) {
	if mb, ok := errors.AsType[*http.MaxBytesError](err); ok {
		c.JSON(http.StatusRequestEntityTooLarge, api.Error{Error: fmt.Sprintf(
			"%s is over %d bytes: a director's configuration is far smaller (the file itself may be at most %d bytes)",
			what, mb.Limit, maxConfigBytes)})
		return
	}
	badRequest(c, "bad "+what+": "+err.Error())
}

// readJSON decodes the body into v, refusing unknown fields so a typo in a
// hand-written request is an error rather than a silent no-op.
func readJSON(c *gin.Context, v any) bool {
	dec := json.NewDecoder(c.Request.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		bodyError(c, "JSON body", err)
		return false
	}
	return true
}

// checkCancelled answers a config check or edit whose client left (or
// whose deadline passed) while its TOML was being checked.
func (s *Server) checkCancelled(c *gin.Context, err error) bool {
	if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	s.log.Info("configuration check stopped: its request ended", "path", c.Request.URL.Path, "client", clientIP(c.Request), "err", err)
	c.JSON(http.StatusServiceUnavailable, api.Error{Error: "the check stopped because the request ended (" + err.Error() + ")"})
	return true
}

func (s *Server) apiStatus(c *gin.Context) { c.JSON(http.StatusOK, s.d.Status()) }

// withoutSecrets blanks what must never leave the director: the console
// password hash and the API token hashes (admin and read-only) (offline guessing material, and
// a hash list tells which tokens exist), alerts' webhook secrets and mail
// passwords. cfg is changed in place.
func withoutSecrets(cfg *config.Config) *config.Config {
	cfg.Console.PasswordHash = ""
	cfg.Console.TokenHashes = nil
	cfg.Console.ReadTokenHashes = nil
	for i := range cfg.Alerts {
		cfg.Alerts[i].Secret, cfg.Alerts[i].Password = "", ""
	}
	if cfg.Peer != nil {
		cfg.Peer.Token = "" // an admin credential of the peer
	}
	return cfg
}

// keepSecrets gives a configuration sent over the API the running
// configuration's secrets wherever it does not set its own: GET /config
// never sends them, so a document read, edited and sent back keeps them.
func keepSecrets(cfg, running *config.Config) {
	if cfg.Console.PasswordHash == "" {
		cfg.Console.PasswordHash = running.Console.PasswordHash
	}
	if len(cfg.Console.TokenHashes) == 0 {
		cfg.Console.TokenHashes = running.Console.TokenHashes
	}
	if len(cfg.Console.ReadTokenHashes) == 0 {
		cfg.Console.ReadTokenHashes = running.Console.ReadTokenHashes
	}
	if p := cfg.Peer; p != nil && running.Peer != nil && p.Token == "" && p.TokenFile == "" {
		p.Token, p.TokenFile = running.Peer.Token, running.Peer.TokenFile
	}
	// An alert's webhook secret and mail password, by alert name.
	for i := range cfg.Alerts {
		a := &cfg.Alerts[i]
		for _, r := range running.Alerts {
			if r.Name == a.Name && r.Type == a.Type {
				if a.Secret == "" {
					a.Secret = r.Secret
				}
				if a.Password == "" {
					a.Password = r.Password
				}
			}
		}
	}
}

// keepPeerToken gives a document whose [peer] has neither token nor
// token_file (GET /config hides the token) the running peer token, before
// validation, which requires one: the document re-encoded, and true.
func keepPeerToken(data []byte, running *config.Config) ([]byte, bool) {
	if running.Peer == nil || !bytes.Contains(data, []byte("peer")) {
		return nil, false
	}
	raw, err := config.DecodeUnvalidated("api", data)
	if err != nil || raw.Peer == nil || raw.Peer.Token != "" || raw.Peer.TokenFile != "" {
		return nil, false
	}
	raw.Peer.Token, raw.Peer.TokenFile = running.Peer.Token, running.Peer.TokenFile
	b, err := config.Encode(raw)
	return b, err == nil
}

// apiConfigGet sends the running configuration without its secrets.
func (s *Server) apiConfigGet(c *gin.Context) {
	cfg, ver := s.d.Config()
	b, err := config.Encode(withoutSecrets(cfg))
	if err != nil {
		s.apiError(c, fmt.Errorf("encode config: %w", err))
		return
	}
	c.JSON(http.StatusOK, api.ConfigDoc{Version: ver, TOML: string(b)})
}

// apiConfigPut replaces the whole configuration. The document must name the
// version it was based on. Secrets it leaves out (as GET sends it) are kept
// from the running configuration.
func (s *Server) apiConfigPut(c *gin.Context) {
	var doc api.ConfigDoc
	if !readJSON(c, &doc) {
		return
	}
	if doc.Version == "" {
		badRequest(c, "the document has no version: GET /config first and send back its version")
		return
	}
	if len(doc.TOML) > maxConfigBytes {
		c.JSON(http.StatusRequestEntityTooLarge, api.Error{Error: fmt.Sprintf(
			"the configuration is %d bytes; a configuration file may be at most %d bytes", len(doc.TOML), maxConfigBytes)})
		return
	}
	data := []byte(doc.TOML)
	running, _ := s.d.Config()
	if b, ok := keepPeerToken(data, running); ok {
		data = b
	}
	cfg, err := config.ParseContext(c.Request.Context(), "api", data)
	if s.checkCancelled(c, err) {
		return
	}
	if err != nil {
		s.apiError(c, err)
		return
	}
	cfg.Path = running.Path
	keepSecrets(cfg, running)
	if err := s.checkConsoleTLS(cfg); err != nil {
		s.apiError(c, err)
		return
	}
	if cfg.Console.PasswordHash == "" {
		// Without it the console would refuse to start next time.
		c.JSON(http.StatusUnprocessableEntity, api.Error{Error: "invalid configuration", Problems: []api.Problem{{
			File: "api", Message: "console.password_hash is empty: the console needs a password (set it with `lbd passwd`)",
		}}})
		return
	}
	if _, err := s.d.Apply(c, cfg, doc.Version, source(c)); err != nil {
		s.apiError(c, err)
		return
	}
	c.JSON(http.StatusOK, s.d.Status())
}

func (s *Server) apiReload(c *gin.Context) {
	if err := s.d.Reload(c); err != nil {
		s.apiError(c, err)
		return
	}
	c.JSON(http.StatusOK, s.d.Status())
}

// apiCheck validates TOML text like `lbd -t`, without applying anything.
// The body may be as large as a config file may be; the check stops when
// the request ends.
func (s *Server) apiCheck(c *gin.Context) {
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		bodyError(c, "body", err)
		return
	}
	ctx := c.Request.Context()
	res := api.CheckResult{OK: true}
	cfg, err := config.ParseContext(ctx, "check", body)
	if err == nil {
		if err = ctx.Err(); err == nil {
			_, _, err = config.Normalize(cfg)
		}
	}
	if s.checkCancelled(c, err) {
		return
	}
	if err != nil {
		var ps config.Problems
		if !errors.As(err, &ps) {
			ps = config.Problems{{File: "check", Message: err.Error()}}
		}
		res = api.CheckResult{OK: false, Problems: apiProblems(ps)}
	}
	c.JSON(http.StatusOK, res)
}

func (s *Server) apiServices(c *gin.Context) {
	sv := s.d.Status().Services
	if sv == nil {
		sv = []api.Service{}
	}
	c.JSON(http.StatusOK, sv)
}

// findStatus finds a service (and a real server) in the status, or says
// which names exist.
func (s *Server) findStatus(vsName, rsName string) (*api.Service, *api.RealServer, error) {
	st := s.d.Status()
	names := make([]string, 0, len(st.Services))
	for i := range st.Services {
		names = append(names, st.Services[i].Name)
	}
	sv := statusService(st, vsName)
	if sv == nil {
		return nil, nil, &notFoundError{What: "virtual server", Name: vsName, Suggestion: config.Suggest(vsName, names)}
	}
	if rsName == "" {
		return sv, nil, nil
	}
	rs := statusReal(sv, rsName)
	if rs == nil {
		names = names[:0]
		for _, r := range sv.RealServers {
			names = append(names, r.Name)
		}
		return sv, nil, &notFoundError{What: "real server", Name: rsName, In: vsName, Suggestion: config.Suggest(rsName, names)}
	}
	return sv, rs, nil
}

func (s *Server) apiService(c *gin.Context) {
	sv, _, err := s.findStatus(c.Param("vs"), "")
	if err != nil {
		s.apiError(c, err)
		return
	}
	c.JSON(http.StatusOK, sv)
}

func (s *Server) apiRealServer(c *gin.Context) {
	_, rs, err := s.findStatus(c.Param("vs"), c.Param("rs"))
	if err != nil {
		s.apiError(c, err)
		return
	}
	c.JSON(http.StatusOK, rs)
}

// changeReal applies change to one real server of the running config and
// answers with its new status.
func (s *Server) changeReal(c *gin.Context, change func(*config.RealServer)) {
	vsName, rsName := c.Param("vs"), c.Param("rs")
	_, err := s.edit(c, "", source(c), func(cfg *config.Config) error {
		i, j, err := lookup(cfg, vsName, rsName)
		if err != nil {
			return err
		}
		change(&cfg.VirtualServers[i].RealServers[j])
		return nil
	})
	if err != nil {
		s.apiError(c, err)
		return
	}
	s.apiRealServer(c)
}

// apiRealDrain drains a real server, or (enable) undrains and activates it.
func (s *Server) apiRealDrain(drain bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		s.changeReal(c, func(rs *config.RealServer) {
			rs.Drained = drain
			if !drain {
				on := true
				rs.Active = &on
			}
		})
	}
}

func (s *Server) apiRealWeight(c *gin.Context) {
	var req api.WeightRequest
	if !readJSON(c, &req) {
		return
	}
	s.changeReal(c, func(rs *config.RealServer) { w := req.Weight; rs.Weight = &w })
}

func (s *Server) apiFailover(c *gin.Context) {
	var req api.FailoverRequest
	if c.Request.ContentLength != 0 {
		if !readJSON(c, &req) {
			return
		}
	}
	if req.Holdoff < 0 {
		badRequest(c, "holdoff_ns must not be negative")
		return
	}
	if err := s.d.FailoverInstance(c, req.Instance, req.Holdoff); err != nil {
		c.JSON(http.StatusConflict, api.Error{Error: err.Error()})
		return
	}
	s.log.Info("failover requested over the API", "source", source(c), "holdoff", req.Holdoff, "instance", req.Instance)
	st := s.d.Status()
	v := st.VRRP
	for i := range st.VRRPInstances {
		if req.Instance != "" && st.VRRPInstances[i].Name == req.Instance {
			v = &st.VRRPInstances[i]
		}
	}
	if v == nil {
		v = &api.VRRP{}
	}
	c.JSON(http.StatusOK, v)
}

// apiMaintenance turns BGP maintenance on or off and answers the BGP
// status.
func (s *Server) apiMaintenance(c *gin.Context) {
	var req api.MaintenanceRequest
	if !readJSON(c, &req) {
		return
	}
	if err := s.d.SetMaintenance(c, req.On); err != nil {
		c.JSON(http.StatusConflict, api.Error{Error: err.Error()})
		return
	}
	s.log.Info("BGP maintenance set over the API", "source", source(c), "on", req.On)
	b := s.d.Status().BGP
	if b == nil {
		b = &api.BGP{}
	}
	c.JSON(http.StatusOK, b)
}

func (s *Server) apiEvents(c *gin.Context) {
	var since uint64
	if v := c.Query("since"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			badRequest(c, "since must be an event sequence number")
			return
		}
		since = n
	}
	evs := s.d.Events(since)
	if evs == nil {
		evs = []api.Event{}
	}
	c.JSON(http.StatusOK, evs)
}

const (
	// maxStreamsPerCredential and maxStreams bound open event streams: a
	// dashboard or two per token, a few tabs per session, and a total that
	// a loop of reconnecting clients cannot push the daemon beyond.
	maxStreamsPerCredential = 8
	maxStreams              = 64
	defaultStreamKeepalive  = 25 * time.Second
)

// streamLimiter counts open event streams per credential and in total.
type streamLimiter struct {
	mu           sync.Mutex
	perCred, max int
	total        int
	open         map[string]int
}

func newStreamLimiter(perCred, max int) *streamLimiter {
	return &streamLimiter{perCred: perCred, max: max, open: map[string]int{}}
}

// acquire takes a slot for key or says why not.
func (l *streamLimiter) acquire(key string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key] >= l.perCred {
		return fmt.Errorf("too many event streams: this credential already has %d open (the limit); close one first", l.open[key])
	}
	if l.total >= l.max {
		return fmt.Errorf("too many event streams: %d are open on this director (the limit); try again later", l.total)
	}
	l.open[key]++
	l.total++
	return nil
}

func (l *streamLimiter) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.open[key]--; l.open[key] <= 0 {
		delete(l.open, key)
	}
}

// apiEventStream sends events as Server-Sent Events: first those after
// ?since= (if given), then live ones, each once. The credential that
// opened the stream is checked again at every keepalive: a revoked token,
// a logout or a password change ends the stream.
func (s *Server) apiEventStream(c *gin.Context) {
	cred, ok := credentialOf(c)
	if !ok {
		c.JSON(http.StatusUnauthorized, api.Error{Error: "authentication required"})
		return
	}
	if err := s.streams.acquire(cred.key); err != nil {
		s.log.Warn("event stream refused", "client", clientIP(c.Request), "source", source(c), "err", err)
		c.Header("Retry-After", "30")
		c.JSON(http.StatusTooManyRequests, api.Error{Error: err.Error()})
		return
	}
	defer s.streams.release(cred.key)
	ch, cancel := s.d.Subscribe()
	defer cancel()
	w := c.Writer
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	var last uint64
	send := func(ev api.Event) bool {
		if ev.Seq != 0 && ev.Seq <= last {
			return true
		}
		last = ev.Seq
		b, _ := json.Marshal(ev)
		if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.Seq, ev.Kind, b); err != nil {
			return false
		}
		w.Flush()
		return true
	}
	if v := c.Query("since"); v != "" {
		if since, err := strconv.ParseUint(v, 10, 64); err == nil {
			for _, ev := range s.d.Events(since) {
				if !send(ev) {
					return
				}
			}
		}
	}
	w.Flush()
	keepalive := time.NewTicker(s.opts.StreamKeepalive)
	defer keepalive.Stop()
	for {
		select {
		case <-c.Request.Context().Done():
			return
		case ev, ok := <-ch:
			if !ok || !send(ev) {
				return
			}
		case <-keepalive.C:
			if !cred.valid() {
				s.log.Info("event stream closed: its credential is no longer valid", "source", source(c), "client", clientIP(c.Request))
				_, _ = io.WriteString(w, ": credential no longer valid (token revoked, logout or password change); closing\n\n")
				w.Flush()
				return
			}
			// A comment line keeps proxies from closing an idle stream.
			if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil {
				return
			}
			w.Flush()
		}
	}
}
