package webui

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/bcrypt"

	"lbd/api"
	"lbd/config"
)

const (
	sessionCookie = "lbd_session"
	loginCookie   = "lbd_login" // double-submit CSRF token of the login form
	csrfField     = "csrf"
	// versionField carries the configuration version a form was rendered
	// from (not "version": that is a VRRP setting).
	versionField = "config_version"
	csrfHeader   = "X-CSRF-Token"
	// fragmentHeader marks the status screen's background refresh, which
	// must get a 401 rather than a redirect to the login page.
	fragmentHeader = "X-LBD-Fragment"
	maxSessions    = 1000
	maxBody        = 1 << 20
	// maxConfigBytes is the largest configuration the API checks or takes:
	// the cap config.Load puts on the file. A PUT carries it JSON-escaped,
	// which can double it.
	maxConfigBytes = config.MaxFileSize
	maxConfigBody  = 2*maxConfigBytes + 64<<10
	defaultTimeout = 8 * time.Hour
	// maxSessionLifetime ends a session this long after its login however
	// busy it is: a stolen cookie does not work forever.
	maxSessionLifetime = 24 * time.Hour
)

// randomToken returns n random bytes, base64url encoded.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux (Go ≥1.24 panics instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

type flash struct{ Kind, Text string }

type session struct {
	id   string
	user string
	csrf string
	// last is the operator's last request; the session expires after
	// console.session_timeout without one. The status screen's background
	// refresh does not count, or an open tab would never expire.
	last time.Time
	// created is the login; the session ends maxSessionLifetime after it.
	created time.Time
	flash   flash
}

// sessionStore keeps console sessions in memory: a restart logs everyone
// out, which is what an operator expects from a restarted director.
//
// Sessions belong to one console password: the store remembers a digest of
// the password hash its sessions logged in with, and when the running
// configuration's hash differs (`lbd passwd` and a reload, a console or
// API edit) every session ends at once.
type sessionStore struct {
	mu sync.Mutex
	m  map[string]*session
	pw string // passwordGeneration of the hash the sessions logged in with
}

func newSessionStore() *sessionStore { return &sessionStore{m: make(map[string]*session)} }

// passwordGeneration identifies a console password hash without keeping
// the hash itself in the session store.
func passwordGeneration(hash string) string {
	sum := sha256.Sum256([]byte(hash))
	return hex.EncodeToString(sum[:])
}

// checkPasswordLocked ends every session when the password changed.
func (st *sessionStore) checkPasswordLocked(pw string) {
	if st.pw != pw {
		clear(st.m)
		st.pw = pw
	}
}

// create opens a session for a login checked against the password whose
// generation is pw.
func (st *sessionStore) create(user string, ttl time.Duration, now time.Time, pw string) session {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.checkPasswordLocked(pw)
	if len(st.m) >= maxSessions {
		st.pruneLocked(now, ttl)
	}
	for len(st.m) >= maxSessions { // still full: drop the longest idle
		var oldest *session
		for _, s := range st.m {
			if oldest == nil || s.last.Before(oldest.last) {
				oldest = s
			}
		}
		delete(st.m, oldest.id)
	}
	s := &session{id: randomToken(32), user: user, csrf: randomToken(32), last: now, created: now}
	st.m[s.id] = s
	return *s
}

func (st *sessionStore) pruneLocked(now time.Time, ttl time.Duration) {
	for id, s := range st.m {
		if s.expired(now, ttl) {
			delete(st.m, id)
		}
	}
}

// expired: idle for ttl, or older than maxSessionLifetime.
func (s *session) expired(now time.Time, ttl time.Duration) bool {
	return !now.Before(s.last.Add(ttl)) || !now.Before(s.created.Add(maxSessionLifetime))
}

// get returns the session if it has not expired and the console password
// (generation pw) is still the one it logged in with; touch records the
// request as activity.
func (st *sessionStore) get(id string, now time.Time, ttl time.Duration, pw string, touch bool) (session, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.checkPasswordLocked(pw)
	s, ok := st.m[id]
	if !ok {
		return session{}, false
	}
	if s.expired(now, ttl) {
		delete(st.m, id)
		return session{}, false
	}
	if touch {
		s.last = now
	}
	return *s, true
}

func (st *sessionStore) delete(id string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.m, id)
}

func (st *sessionStore) setFlash(id string, f flash) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if s, ok := st.m[id]; ok {
		s.flash = f
	}
}

func (st *sessionStore) takeFlash(id string) flash {
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.m[id]
	if !ok {
		return flash{}
	}
	f := s.flash
	s.flash = flash{}
	return f
}

// loginLimiter allows a fixed number of login attempts per client address
// per window. Attempts are counted before the password is checked, so
// parallel guesses cannot slip through while bcrypt is busy.
type loginLimiter struct {
	mu       sync.Mutex
	attempts int
	window   time.Duration
	m        map[string]*attemptWindow
}

type attemptWindow struct {
	count int
	reset time.Time
}

func newLoginLimiter(attempts int, window time.Duration) *loginLimiter {
	return &loginLimiter{attempts: attempts, window: window, m: make(map[string]*attemptWindow)}
}

// allow counts one attempt from ip. When over the limit it returns false
// and how long until the next attempt is allowed.
func (l *loginLimiter) allow(ip string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.m) > 10000 {
		for k, w := range l.m {
			if !now.Before(w.reset) {
				delete(l.m, k)
			}
		}
	}
	w, ok := l.m[ip]
	if !ok || !now.Before(w.reset) {
		w = &attemptWindow{reset: now.Add(l.window)}
		l.m[ip] = w
	}
	if w.count >= l.attempts {
		return false, w.reset.Sub(now)
	}
	w.count++
	return true, 0
}

// succeeded forgets ip's attempts after a correct password.
func (l *loginLimiter) succeeded(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, ip)
}

// limitKey is what the login limiter counts attempts by: an IPv4 address,
// or the /64 of an IPv6 address (one host usually holds a whole /64, so
// counting per address would give it 2^64 tries).
func limitKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a, 64).Masked().String()
}

// clientIP is the TCP peer's address. Forwarded-for headers are ignored on
// purpose: trusting them would let anyone dodge the login rate limit.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) setCookie(c *gin.Context, name, value, path string, maxAge int) {
	http.SetCookie(c.Writer, &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     path,
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   c.Request.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
}

func sessionTimeoutOf(cfg *config.Config) time.Duration {
	if t := cfg.Console.SessionTimeout.Duration; t > 0 {
		return t
	}
	return defaultTimeout
}

// currentSession returns the request's valid session, if any.
func (s *Server) currentSession(c *gin.Context) (session, bool) {
	id, err := c.Cookie(sessionCookie)
	if err != nil || id == "" {
		return session{}, false
	}
	touch := c.GetHeader(fragmentHeader) == ""
	return s.sessionByID(id, touch)
}

// sessionByID returns the session id if it is still valid under the running
// configuration (timeout, password).
func (s *Server) sessionByID(id string, touch bool) (session, bool) {
	cfg, _ := s.d.Config()
	return s.sessions.get(id, time.Now(), sessionTimeoutOf(cfg), passwordGeneration(cfg.Console.PasswordHash), touch)
}

func sess(c *gin.Context) session {
	v, _ := c.Get("session")
	se, _ := v.(session)
	return se
}

// source names who made a change, for the director's event log.
func source(c *gin.Context) string {
	if v, ok := c.Get("source"); ok {
		return v.(string)
	}
	return "console"
}

// safeNext keeps a post-login redirect on this site. It judges the path as
// the browser will see it: http.Redirect cleans the path ("/./\x" becomes
// "/\x", which browsers read as the host x), so the cleaned path must
// start with exactly one '/'. Backslashes and control characters are
// refused anywhere; anything doubtful goes to "/".
func safeNext(next string) string {
	if next == "" {
		return "/status"
	}
	for i := 0; i < len(next); i++ {
		if b := next[i]; b < 0x20 || b == 0x7f || b == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "/"
	}
	p, query, hasQuery := strings.Cut(next, "?")
	if p == "" || p[0] != '/' {
		return "/"
	}
	trailing := strings.HasSuffix(p, "/")
	p = path.Clean(p)
	if trailing && !strings.HasSuffix(p, "/") {
		p += "/"
	}
	if len(p) > 1 && (p[1] == '/' || p[1] == '\\') {
		return "/"
	}
	if hasQuery {
		p += "?" + query
	}
	return p
}

func (s *Server) requireSession(c *gin.Context) {
	se, ok := s.currentSession(c)
	if !ok {
		if c.GetHeader(fragmentHeader) != "" {
			c.AbortWithStatus(http.StatusUnauthorized)
			return
		}
		target := "/login"
		if c.Request.Method == http.MethodGet && c.Request.URL.Path != "/" {
			target += "?next=" + url.QueryEscape(c.Request.URL.RequestURI())
		}
		c.Redirect(http.StatusSeeOther, target)
		c.Abort()
		return
	}
	c.Set("session", se)
	c.Set("source", "console "+se.user)
	c.Next()
}

// csrf refuses a form whose token is not the session's.
func (s *Server) csrf(c *gin.Context) {
	got := c.PostForm(csrfField)
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(sess(c).csrf)) != 1 {
		s.log.Warn("form refused: bad CSRF token", "path", c.Request.URL.Path, "client", clientIP(c.Request))
		s.errorPage(c, http.StatusForbidden, "Form refused",
			"This form did not come from your current console session (missing or wrong CSRF token), so nothing was changed. Reload the page and try again.")
		c.Abort()
		return
	}
	c.Next()
}

func (s *Server) loginPage(c *gin.Context) {
	if _, ok := s.currentSession(c); ok {
		c.Redirect(http.StatusSeeOther, "/status")
		return
	}
	s.renderLogin(c, http.StatusOK, "", c.Query("next"), "")
}

func (s *Server) renderLogin(c *gin.Context, code int, msg, next, user string) {
	tok := randomToken(24)
	s.setCookie(c, loginCookie, tok, "/login", 600)
	s.render(c, code, "login", &page{
		Title: "Log in",
		CSRF:  tok,
		Data:  loginData{Next: next, User: user, Message: msg},
	})
}

type loginData struct{ Next, User, Message string }

func (s *Server) loginPost(c *gin.Context) {
	ip := clientIP(c.Request)
	next := c.PostForm("next")
	user := cleanUser(c.PostForm("user"))
	if ok, wait := s.limiter.allow(limitKey(ip), time.Now()); !ok {
		secs := int(wait.Round(time.Second) / time.Second)
		if secs < 1 {
			secs = 1
		}
		s.log.Warn("console login refused: too many attempts", "client", ip)
		c.Header("Retry-After", fmt.Sprint(secs))
		s.renderLogin(c, http.StatusTooManyRequests,
			fmt.Sprintf("Too many login attempts from %s. Try again in %d seconds.", ip, secs), next, user)
		return
	}
	cookieTok, _ := c.Cookie(loginCookie)
	formTok := c.PostForm(csrfField)
	if cookieTok == "" || subtle.ConstantTimeCompare([]byte(cookieTok), []byte(formTok)) != 1 {
		s.log.Warn("console login refused: bad CSRF token", "client", ip)
		s.errorPage(c, http.StatusForbidden, "Form refused",
			"The login form expired or did not come from this console (bad CSRF token). Open the login page again.")
		return
	}
	cfg, _ := s.d.Config()
	err := bcrypt.CompareHashAndPassword([]byte(cfg.Console.PasswordHash), []byte(c.PostForm("password")))
	if err != nil {
		s.log.Warn("console login failed", "client", ip, "user", user)
		s.renderLogin(c, http.StatusUnauthorized, "Wrong password.", next, user)
		return
	}
	s.limiter.succeeded(limitKey(ip))
	se := s.sessions.create(user, sessionTimeoutOf(cfg), time.Now(), passwordGeneration(cfg.Console.PasswordHash))
	s.setCookie(c, loginCookie, "", "/login", -1)
	// A browser-session cookie: the server enforces the idle timeout.
	s.setCookie(c, sessionCookie, se.id, "/", 0)
	s.log.Info("console login", "client", ip, "user", user)
	c.Redirect(http.StatusSeeOther, safeNext(next))
}

// cleanUser keeps the self-declared operator name printable and short; it
// only labels changes in the event log.
func cleanUser(u string) string {
	var b strings.Builder
	for _, r := range strings.TrimSpace(u) {
		if r < 128 && (r == '.' || r == '-' || r == '_' || r == '@' ||
			(r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')) {
			b.WriteRune(r)
		}
		if b.Len() >= 32 {
			break
		}
	}
	if b.Len() == 0 {
		return "admin"
	}
	return b.String()
}

func (s *Server) logout(c *gin.Context) {
	se := sess(c)
	s.sessions.delete(se.id)
	s.setCookie(c, sessionCookie, "", "/", -1)
	s.log.Info("console logout", "user", se.user, "client", clientIP(c.Request))
	c.Redirect(http.StatusSeeOther, "/login")
}

// tokenName reads the label `lbd token -name` put in front of the secret
// part ("NAME.SECRET"), for the event log.
func tokenName(tok string) string {
	name, _, ok := strings.Cut(tok, ".")
	if !ok || name == "" || len(name) > 32 {
		return "token"
	}
	for _, r := range name {
		if !(r == '-' || r == '_' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')) {
			return "token"
		}
	}
	return name
}

// tokenValid compares the token's SHA-256 with every configured hash in
// constant time.
func tokenValid(tok string, hashes []string) bool {
	if tok == "" {
		return false
	}
	sum := sha256.Sum256([]byte(tok))
	got := []byte(hex.EncodeToString(sum[:]))
	ok := 0
	for _, h := range hashes {
		ok |= subtle.ConstantTimeCompare(got, []byte(strings.ToLower(strings.TrimSpace(h))))
	}
	return ok == 1
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:]), true
	}
	return "", false
}

// scope is what a credential may do.
type scope int

const (
	scopeNone scope = iota
	// scopeRead may GET the API and /metrics: a scraper's or a
	// dashboard's token (console.read_token_hashes).
	scopeRead
	// scopeAdmin may do everything: console.token_hashes and the console
	// session.
	scopeAdmin
)

// tokenScope is what tok may do under cfg; an admin hash wins if a token
// is listed twice.
func tokenScope(tok string, cfg *config.Config) scope {
	switch {
	case tokenValid(tok, cfg.Console.TokenHashes):
		return scopeAdmin
	case tokenValid(tok, cfg.Console.ReadTokenHashes):
		return scopeRead
	}
	return scopeNone
}

// tokenAuth reports whether the request carries a valid bearer token, and
// its scope.
func (s *Server) tokenAuth(c *gin.Context) (name string, present bool, sc scope) {
	tok, present := bearer(c.Request)
	if !present {
		return "", false, scopeNone
	}
	cfg, _ := s.d.Config()
	sc = tokenScope(tok, cfg)
	if sc == scopeNone {
		return "", true, scopeNone
	}
	return tokenName(tok), true, sc
}

// credential is what authenticated an API request: a bearer token or a
// console session. Long requests (the event stream) ask valid() again to
// learn whether it was revoked since.
type credential struct {
	// key identifies the credential without holding the secret: a token's
	// SHA-256, a session's id (already in server memory).
	key   string
	valid func() bool
}

func (s *Server) tokenCredential(tok string) credential {
	sum := sha256.Sum256([]byte(tok))
	return credential{key: "token " + hex.EncodeToString(sum[:]), valid: func() bool {
		cfg, _ := s.d.Config()
		return tokenScope(tok, cfg) != scopeNone
	}}
}

func (s *Server) sessionCredential(id string) credential {
	return credential{key: "session " + id, valid: func() bool {
		_, ok := s.sessionByID(id, false)
		return ok
	}}
}

func credentialOf(c *gin.Context) (credential, bool) {
	v, ok := c.Get("credential")
	cr, _ := v.(credential)
	return cr, ok
}

// requireAPIAuth accepts a bearer token or a console session; a session
// changing state must also send its CSRF token in X-CSRF-Token.
func (s *Server) requireAPIAuth(c *gin.Context) {
	name, present, sc := s.tokenAuth(c)
	if present {
		if sc == scopeNone {
			s.log.Warn("api request refused: unknown token", "client", clientIP(c.Request), "path", c.Request.URL.Path)
			c.Header("WWW-Authenticate", `Bearer realm="lbd"`)
			c.AbortWithStatusJSON(http.StatusUnauthorized, api.Error{Error: "invalid API token"})
			return
		}
		if m := c.Request.Method; sc != scopeAdmin && m != http.MethodGet && m != http.MethodHead {
			s.log.Warn("api request refused: read-only token", "client", clientIP(c.Request), "token", name, "method", m, "path", c.Request.URL.Path)
			c.AbortWithStatusJSON(http.StatusForbidden, api.Error{Error: "token " + name + " is read-only (console.read_token_hashes): it may only read (GET) the API and /metrics; changes need an admin token (console.token_hashes, `lbd token`)"})
			return
		}
		tok, _ := bearer(c.Request)
		c.Set("credential", s.tokenCredential(tok))
		c.Set("source", "api "+name)
		c.Next()
		return
	}
	se, ok := s.currentSession(c)
	if !ok {
		c.Header("WWW-Authenticate", `Bearer realm="lbd"`)
		c.AbortWithStatusJSON(http.StatusUnauthorized, api.Error{Error: "authentication required: send Authorization: Bearer TOKEN (create one with `lbd token`) or log in to the console"})
		return
	}
	if m := c.Request.Method; m != http.MethodGet && m != http.MethodHead {
		got := c.GetHeader(csrfHeader)
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(se.csrf)) != 1 {
			c.AbortWithStatusJSON(http.StatusForbidden, api.Error{Error: "missing or wrong " + csrfHeader + " header for a session-authenticated change"})
			return
		}
	}
	c.Set("session", se)
	c.Set("credential", s.sessionCredential(se.id))
	c.Set("source", "console "+se.user)
	c.Next()
}

// contentSecurityPolicy allows nothing inline and nothing from elsewhere.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func (s *Server) securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	if c.Request.TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	if !strings.HasPrefix(c.Request.URL.Path, "/static/") {
		h.Set("Cache-Control", "no-store")
	}
	if c.Request.Body != nil {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, bodyLimit(c.Request))
	}
	c.Next()
}

// bodyLimit is the most a request may send: a whole configuration for the
// two API routes that take one, 1 MB for forms and other API calls.
func bodyLimit(r *http.Request) int64 {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == api.Prefix+"/check":
		return maxConfigBytes
	case r.Method == http.MethodPut && r.URL.Path == api.Prefix+"/config":
		return maxConfigBody
	}
	return maxBody
}

// recoverer turns a handler panic into a logged 500: a console bug must
// never take the director down.
func (s *Server) recoverer(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			s.log.Error("console handler panic", "path", c.Request.URL.Path, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			if !c.Writer.Written() {
				c.AbortWithStatus(http.StatusInternalServerError)
			}
		}
	}()
	c.Next()
}
