// Package webui is lbd's web console and HTTP API: piranha's screens
// rendered on the server from embedded templates, the JSON API under
// /api/v1 for lbctl, and Prometheus metrics on /metrics.
//
// The console never changes running state by itself: every edit takes a
// copy of the running configuration, changes it and hands it to the
// director's Apply, the same path as a reload. Apply validates, writes the
// file and programs the kernel, or refuses and changes nothing.
package webui

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/bcrypt"

	"lbd/api"
	"lbd/config"
)

// Director is what the console needs from the director. It is declared here
// so the console can be tested without a kernel.
type Director interface {
	Status() api.Status
	// Config returns a deep copy of the running config and its version.
	Config() (cfg *config.Config, version string)
	// Apply validates cfg (config.Normalize), refuses with config.ErrStale
	// when baseVersion is not the running version, writes the file
	// atomically and applies it; on any error nothing changed. Invalid
	// input returns config.Problems. source is logged in the event log.
	Apply(ctx context.Context, cfg *config.Config, baseVersion, source string) (version string, err error)
	// Reload re-reads the file (the SIGHUP path); config.Problems when invalid.
	Reload(ctx context.Context) error
	Failover(ctx context.Context, holdoff time.Duration) error
	// FailoverInstance is Failover of one VRRP instance by name ("" =
	// the only one; an error listing the names when there are several).
	FailoverInstance(ctx context.Context, name string, holdoff time.Duration) error
	// SetMaintenance withdraws (on) or announces again (off) every BGP
	// VIP of this director; an error without [bgp].
	SetMaintenance(ctx context.Context, on bool) error
	Events(since uint64) []api.Event
	Subscribe() (events <-chan api.Event, cancel func())
	// History is the recent figures of a virtual server (rs == "") or a
	// real server, and the transitions of that window; false when there
	// are none.
	History(vs, rs string) (api.History, bool)
}

// Options tune the console. The zero value is usable.
type Options struct {
	Logger  *slog.Logger
	Version string // lbd build version, shown in the footer and metrics

	// LoginAttempts login tries are allowed per client address per
	// LoginWindow; more are answered 429. Defaults: 5 per minute.
	LoginAttempts int
	LoginWindow   time.Duration
	// RefreshInterval is how often the status screen refreshes itself.
	// Default 3s.
	RefreshInterval time.Duration
	// EventsShown is how many events the events screen lists. Default 300.
	EventsShown int
	// StreamKeepalive is how often an idle event stream gets a keepalive
	// and its credential is checked again. Default 25s.
	StreamKeepalive time.Duration
	// Listening, when set, is called once Serve listens (sd_notify READY).
	Listening func(addr net.Addr)
}

// Server is the console. Create it with New.
type Server struct {
	d        Director
	log      *slog.Logger
	opts     Options
	engine   *gin.Engine
	pages    map[string]*template.Template
	sessions *sessionStore
	limiter  *loginLimiter
	streams  *streamLimiter

	metricsOnce sync.Once    // builds metricsHTTP (metrics.go)
	metricsHTTP http.Handler // the Prometheus registry's handler
}

// New builds the console. It refuses when the running configuration has no
// usable console password, because a console without one would be open to
// anyone who can reach the port.
func New(d Director, opts Options) (*Server, error) {
	if d == nil {
		return nil, errors.New("webui: no director")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	if opts.LoginAttempts <= 0 {
		opts.LoginAttempts = 5
	}
	if opts.LoginWindow <= 0 {
		opts.LoginWindow = time.Minute
	}
	if opts.RefreshInterval <= 0 {
		opts.RefreshInterval = 3 * time.Second
	}
	if opts.EventsShown <= 0 {
		opts.EventsShown = 300
	}
	if opts.StreamKeepalive <= 0 {
		opts.StreamKeepalive = defaultStreamKeepalive
	}
	s := &Server{
		d:        d,
		log:      opts.Logger.With("component", "webui"),
		opts:     opts,
		sessions: newSessionStore(),
		limiter:  newLoginLimiter(opts.LoginAttempts, opts.LoginWindow),
		streams:  newStreamLimiter(maxStreamsPerCredential, maxStreams),
	}
	if err := s.checkPassword(); err != nil {
		return nil, err
	}
	pages, err := parseTemplates()
	if err != nil {
		return nil, fmt.Errorf("webui: templates: %w", err)
	}
	s.pages = pages
	s.engine = s.routes()
	return s, nil
}

// checkPassword refuses a running config without a bcrypt password hash and
// says how to set one.
func (s *Server) checkPassword() error {
	cfg, _ := s.d.Config()
	path := cfg.Path
	if path == "" {
		path = "FILE"
	}
	h := cfg.Console.PasswordHash
	if h == "" {
		return fmt.Errorf("webui: no console password is set in %s; set one with `lbd passwd -config %s`, then reload", path, path)
	}
	if _, err := bcrypt.Cost([]byte(h)); err != nil {
		return fmt.Errorf("webui: console.password_hash in %s is not a bcrypt hash (%v); set the password again with `lbd passwd -config %s`", path, err, path)
	}
	return nil
}

// Handler returns the console's HTTP handler (pages, API, metrics, assets).
func (s *Server) Handler() http.Handler { return s.engine }

// CheckTLS reports whether the console could serve HTTPS with these files:
// both set, readable, and a certificate with its key. Both empty is plain
// HTTP and fine.
func CheckTLS(certFile, keyFile string) error {
	if certFile == "" && keyFile == "" {
		return nil
	}
	if certFile == "" || keyFile == "" {
		return errors.New("webui: TLS needs both tls_cert and tls_key")
	}
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		return fmt.Errorf("webui: tls_cert %s and tls_key %s: %w", certFile, keyFile, err)
	}
	return nil
}

// Serve listens on listenAddr and serves until ctx ends, then shuts down
// gracefully. With tlsCert and tlsKey it serves HTTPS only.
//
// Serve never stops the process: when the console cannot start (no
// password, a TLS certificate or key that does not load, an address it
// cannot listen on) it returns the error at once, and when serving fails
// later it returns that error. The caller logs it and calls Serve again
// (on this Server or a new one) after a pause or a reload; it returns nil
// only when ctx ends.
func (s *Server) Serve(ctx context.Context, listenAddr, tlsCert, tlsKey string) error {
	if err := s.checkPassword(); err != nil {
		return err
	}
	if err := CheckTLS(tlsCert, tlsKey); err != nil {
		return err
	}
	if listenAddr == "" {
		listenAddr = ":3636"
	}
	srv := &http.Server{
		Handler:           s.engine,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// No WriteTimeout: the event stream is long-lived.
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(tlsCert, tlsKey)
		if err != nil {
			return fmt.Errorf("webui: tls: %w", err)
		}
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return fmt.Errorf("webui: console cannot listen: %w", err)
	}
	if srv.TLSConfig != nil {
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	s.log.Info("console listening", "addr", ln.Addr().String(), "tls", srv.TLSConfig != nil)
	if s.opts.Listening != nil {
		s.opts.Listening(ln.Addr())
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("webui: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		// Event streams do not end by themselves; close them.
		_ = srv.Close()
	}
	<-errc
	return nil
}

// routes wires every path. Pages need a session; the API takes a session or
// a bearer token; /metrics may be open or need a token.
func (s *Server) routes() *gin.Engine {
	// gin's mode is process-wide; release mode only stops its debug
	// printing, which would otherwise bypass our structured log.
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.ContextWithFallback = true
	e.RedirectTrailingSlash = true
	e.HandleMethodNotAllowed = true
	_ = e.SetTrustedProxies(nil)
	e.Use(s.recoverer, s.securityHeaders)

	e.GET("/static/*file", s.static)
	e.GET("/login", s.loginPage)
	e.POST("/login", s.loginPost)
	e.GET("/metrics", s.metrics)

	p := e.Group("/", s.requireSession)
	p.GET("/", func(c *gin.Context) { c.Redirect(http.StatusSeeOther, "/status") })
	p.POST("/logout", s.csrf, s.logout)
	p.GET("/status", s.statusPage)
	p.GET("/status/live", s.statusLive)
	p.POST("/reload", s.csrf, s.reloadPost)
	p.POST("/failover", s.csrf, s.failoverPost)
	p.GET("/global", s.editPage(globalScreen))
	p.POST("/global", s.csrf, s.editPost(globalScreen))
	p.GET("/redundancy", s.editPage(redundancyScreen))
	p.POST("/redundancy", s.csrf, s.editPost(redundancyScreen))
	p.GET("/redundancy/add-instance", s.editPage(instanceAddScreen))
	p.POST("/redundancy/add-instance", s.csrf, s.editPost(instanceAddScreen))
	p.GET("/redundancy/instance/:name", s.editPage(instanceScreen))
	p.POST("/redundancy/instance/:name", s.csrf, s.editPost(instanceScreen))
	p.POST("/redundancy/instance/:name/delete", s.csrf, s.instanceDelete)
	p.GET("/services", s.servicesPage)
	p.GET("/services/add", s.editPage(serviceAddScreen))
	p.POST("/services/add", s.csrf, s.editPost(serviceAddScreen))
	p.GET("/vs/:vs", s.editPage(serviceScreen))
	p.POST("/vs/:vs", s.csrf, s.editPost(serviceScreen))
	p.POST("/vs/:vs/delete", s.csrf, s.serviceDelete)
	p.POST("/vs/:vs/activate", s.csrf, s.serviceActivate(true))
	p.POST("/vs/:vs/deactivate", s.csrf, s.serviceActivate(false))
	p.GET("/vs/:vs/monitoring", s.editPage(monitoringScreen))
	p.POST("/vs/:vs/monitoring", s.csrf, s.editPost(monitoringScreen))
	p.GET("/vs/:vs/add-real", s.editPage(realAddScreen))
	p.POST("/vs/:vs/add-real", s.csrf, s.editPost(realAddScreen))
	p.GET("/vs/:vs/rs/:rs", s.editPage(realScreen))
	p.POST("/vs/:vs/rs/:rs", s.csrf, s.editPost(realScreen))
	p.POST("/vs/:vs/rs/:rs/:action", s.csrf, s.realAction)
	p.GET("/events", s.eventsPage)
	p.GET("/events/live", s.eventsLive)

	a := e.Group(api.Prefix, s.requireAPIAuth)
	a.GET("/status", s.apiStatus)
	a.GET("/config", s.apiConfigGet)
	a.PUT("/config", s.apiConfigPut)
	a.POST("/reload", s.apiReload)
	a.POST("/check", s.apiCheck)
	a.GET("/services", s.apiServices)
	a.GET("/services/:vs", s.apiService)
	a.GET("/services/:vs/real/:rs", s.apiRealServer)
	a.GET("/services/:vs/history", s.apiHistory)
	a.GET("/services/:vs/real/:rs/history", s.apiHistory)
	a.POST("/services/:vs/real/:rs/drain", s.apiRealDrain(true))
	a.POST("/services/:vs/real/:rs/enable", s.apiRealDrain(false))
	a.POST("/services/:vs/real/:rs/weight", s.apiRealWeight)
	a.POST("/failover", s.apiFailover)
	a.POST("/bgp/maintenance", s.apiMaintenance)
	a.GET("/events", s.apiEvents)
	a.GET("/events/stream", s.apiEventStream)
	s.pairRoutes(p, a)

	e.NoRoute(s.notFound)
	e.NoMethod(s.methodNotAllowed)
	return e
}
