// Package apiclient is a small client for lbd's JSON API (/api/v1). lbctl is
// built on it, and end-to-end tests can drive a director with it.
//
// Every method returns either the decoded answer or an error that callers
// can classify: *Unreachable (no connection to lbd), *HTTPError (lbd answered
// with a non-2xx status and, usually, an api.Error body).
package apiclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"lbd/api"
)

// Client talks to one lbd console. The zero value is not usable; use New.
type Client struct {
	base    string // e.g. http://127.0.0.1:3636, without trailing slash
	token   string
	http    *http.Client
	timeout time.Duration
	agent   string
}

// Option changes a Client built by New.
type Option func(*Client)

// WithTimeout bounds every request except the event stream. Default 10s.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithHTTPClient replaces the underlying *http.Client (for TLS settings).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.agent = ua } }

// New returns a client for the console at baseURL (scheme://host:port) that
// sends token as a bearer token when it is not empty.
func New(baseURL, token string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("apiclient: bad URL %q: %w", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("apiclient: bad URL %q: scheme must be http or https", baseURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("apiclient: bad URL %q: no host", baseURL)
	}
	c := &Client{
		base:    strings.TrimRight(baseURL, "/"),
		token:   token,
		http:    &http.Client{},
		timeout: 10 * time.Second,
		agent:   "lbd-apiclient",
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// URL is the console address the client talks to.
func (c *Client) URL() string { return c.base }

// Unreachable means no HTTP answer came back: lbd is not running, the
// address is wrong, or it did not answer in time.
type Unreachable struct {
	URL     string
	Timeout bool // the connection or the answer took longer than allowed
	Err     error
}

func (e *Unreachable) Error() string {
	if e.Timeout {
		return fmt.Sprintf("lbd at %s did not answer in time (%v)", e.URL, e.Err)
	}
	return fmt.Sprintf("lbd is not reachable at %s (%v)", e.URL, e.Err)
}

func (e *Unreachable) Unwrap() error { return e.Err }

// HTTPError is a non-2xx answer. Body is the decoded api.Error; when lbd sent
// something that is not an api.Error (a proxy, an old build), Body.Error holds
// the start of the raw text.
type HTTPError struct {
	Method string
	Path   string
	Status int
	Body   api.Error
}

func (e *HTTPError) Error() string {
	msg := e.Body.Error
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if s := e.Body.Suggestion; s != "" {
		// lbd may already have worded the suggestion into the message;
		// say it once, the same way whatever the server's phrasing.
		msg = strings.TrimSuffix(msg, fmt.Sprintf("; did you mean %q?", s))
		msg = strings.TrimSuffix(msg, fmt.Sprintf(" (did you mean %q?)", s))
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return msg
}

// StatusOf returns the HTTP status of err when it is an *HTTPError, else 0.
func StatusOf(err error) int {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Status
	}
	return 0
}

func (c *Client) do(ctx context.Context, method, path string, in any, rawBody []byte, out any) error {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	var body io.Reader
	ctype := ""
	switch {
	case in != nil:
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("apiclient: encode %s %s: %w", method, path, err)
		}
		body, ctype = bytes.NewReader(b), "application/json"
	case rawBody != nil:
		body, ctype = bytes.NewReader(rawBody), "text/plain; charset=utf-8"
	}
	resp, err := c.send(ctx, method, path, body, ctype, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return readHTTPError(method, path, resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		if ue := c.unreachable(err); ue != nil {
			return ue
		}
		return fmt.Errorf("apiclient: %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

func (c *Client) send(ctx context.Context, method, path string, body io.Reader, ctype, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+api.Prefix+path, body)
	if err != nil {
		return nil, fmt.Errorf("apiclient: %s %s: %w", method, path, err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", c.agent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ue := c.unreachable(err); ue != nil {
			return nil, ue
		}
		return nil, fmt.Errorf("apiclient: %s %s: %w", method, path, err)
	}
	return resp, nil
}

// unreachable classifies transport failures; it returns nil for errors that
// are the caller's own cancellation.
func (c *Client) unreachable(err error) *Unreachable {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	var ne net.Error
	timeout := errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
	// Strip net/url's "Get \"http://...\": " prefix: the URL is printed anyway.
	inner := err
	var ue *url.Error
	if errors.As(err, &ue) {
		inner = ue.Err
	}
	var oe *net.OpError
	if errors.As(inner, &oe) && oe.Err != nil {
		inner = oe.Err
	}
	var se *os.SyscallError
	if errors.As(inner, &se) {
		inner = se.Err
	}
	return &Unreachable{URL: c.base, Timeout: timeout, Err: inner}
}

func readHTTPError(method, path string, resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	he := &HTTPError{Method: method, Path: path, Status: resp.StatusCode}
	if err := json.Unmarshal(raw, &he.Body); err != nil || (he.Body.Error == "" && len(he.Body.Problems) == 0) {
		text := strings.TrimSpace(string(raw))
		if len(text) > 200 {
			text = text[:200] + "..."
		}
		he.Body = api.Error{Error: text}
	}
	return he
}

func esc(s string) string { return url.PathEscape(s) }

// Status returns the whole picture of the director.
func (c *Client) Status(ctx context.Context) (*api.Status, error) {
	var s api.Status
	return &s, c.do(ctx, http.MethodGet, "/status", nil, nil, &s)
}

// Config returns the running configuration.
func (c *Client) Config(ctx context.Context) (*api.ConfigDoc, error) {
	var d api.ConfigDoc
	return &d, c.do(ctx, http.MethodGet, "/config", nil, nil, &d)
}

// Services lists every virtual service.
func (c *Client) Services(ctx context.Context) ([]api.Service, error) {
	var s []api.Service
	return s, c.do(ctx, http.MethodGet, "/services", nil, nil, &s)
}

// Service returns one virtual service by name.
func (c *Client) Service(ctx context.Context, vs string) (*api.Service, error) {
	var s api.Service
	return &s, c.do(ctx, http.MethodGet, "/services/"+esc(vs), nil, nil, &s)
}

// RealServer returns one real server of a virtual service.
func (c *Client) RealServer(ctx context.Context, vs, rs string) (*api.RealServer, error) {
	var r api.RealServer
	return &r, c.do(ctx, http.MethodGet, "/services/"+esc(vs)+"/real/"+esc(rs), nil, nil, &r)
}

// Drain sets the real server to weight 0 persistently.
func (c *Client) Drain(ctx context.Context, vs, rs string) (*api.RealServer, error) {
	var r api.RealServer
	return &r, c.do(ctx, http.MethodPost, "/services/"+esc(vs)+"/real/"+esc(rs)+"/drain", nil, nil, &r)
}

// Enable undoes Drain.
func (c *Client) Enable(ctx context.Context, vs, rs string) (*api.RealServer, error) {
	var r api.RealServer
	return &r, c.do(ctx, http.MethodPost, "/services/"+esc(vs)+"/real/"+esc(rs)+"/enable", nil, nil, &r)
}

// SetWeight sets the real server's configured weight persistently.
func (c *Client) SetWeight(ctx context.Context, vs, rs string, weight int) (*api.RealServer, error) {
	var r api.RealServer
	return &r, c.do(ctx, http.MethodPost, "/services/"+esc(vs)+"/real/"+esc(rs)+"/weight",
		api.WeightRequest{Weight: weight}, nil, &r)
}

// Reload re-reads the config file, like SIGHUP. A refused config comes back
// as an *HTTPError with status 422 and Body.Problems.
func (c *Client) Reload(ctx context.Context) (*api.Status, error) {
	var s api.Status
	return &s, c.do(ctx, http.MethodPost, "/reload", nil, nil, &s)
}

// Check validates TOML text on the director without applying it.
func (c *Client) Check(ctx context.Context, toml []byte) (*api.CheckResult, error) {
	var r api.CheckResult
	return &r, c.do(ctx, http.MethodPost, "/check", nil, toml, &r)
}

// Failover asks the master to resign and not preempt for holdoff.
func (c *Client) Failover(ctx context.Context, holdoff time.Duration) (*api.VRRP, error) {
	return c.FailoverInstance(ctx, "", holdoff)
}

// FailoverInstance is Failover of the VRRP instance called name ("" = the
// only one).
func (c *Client) FailoverInstance(ctx context.Context, name string, holdoff time.Duration) (*api.VRRP, error) {
	var v api.VRRP
	return &v, c.do(ctx, http.MethodPost, "/failover", api.FailoverRequest{Holdoff: holdoff, Instance: name}, nil, &v)
}

// Maintenance turns this director's BGP maintenance on (every VIP
// withdrawn) or off, and returns the BGP status.
func (c *Client) Maintenance(ctx context.Context, on bool) (*api.BGP, error) {
	var b api.BGP
	return &b, c.do(ctx, http.MethodPost, "/bgp/maintenance", api.MaintenanceRequest{On: on}, nil, &b)
}

// Events returns the events after sequence number since, oldest first.
func (c *Client) Events(ctx context.Context, since uint64) ([]api.Event, error) {
	var ev []api.Event
	return ev, c.do(ctx, http.MethodGet, "/events?since="+strconv.FormatUint(since, 10), nil, nil, &ev)
}

// StreamEvents reads GET /events/stream?since=SEQ (server-sent events: the
// events after since, then live ones) and calls fn for each event until ctx
// ends, the stream closes (nil error), or fn fails. Data that is not a JSON
// event (keep-alive comments) is skipped.
func (c *Client) StreamEvents(ctx context.Context, since uint64, fn func(api.Event) error) error {
	path := "/events/stream?since=" + strconv.FormatUint(since, 10)
	resp, err := c.send(ctx, http.MethodGet, path, nil, "", "text/event-stream")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return readHTTPError(http.MethodGet, path, resp)
	}
	var cbErr error
	err = readSSE(resp.Body, func(data string) error {
		var ev api.Event
		if json.Unmarshal([]byte(data), &ev) != nil || ev.Seq == 0 && ev.Kind == "" {
			return nil
		}
		if err := fn(ev); err != nil {
			cbErr = err
			return err
		}
		return nil
	})
	switch {
	case cbErr != nil:
		return cbErr
	case ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		if ue := c.unreachable(err); ue != nil {
			return ue
		}
		return err
	}
	return nil
}

// readSSE splits a text/event-stream into events and hands each event's
// data (its data: lines joined by newlines) to fn.
func readSSE(r io.Reader, fn func(data string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var data []string
	flush := func() error {
		if len(data) == 0 {
			return nil
		}
		d := strings.Join(data, "\n")
		data = data[:0]
		return fn(d)
	}
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		switch {
		case line == "":
			if err := flush(); err != nil {
				return err
			}
		case strings.HasPrefix(line, ":"): // comment / keep-alive
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			if field == "data" {
				data = append(data, value)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return flush()
}

// Pair returns both directors of the pair as this director sees them; an
// *HTTPError with status 404 when no [peer] is configured.
func (c *Client) Pair(ctx context.Context) (*api.Pair, error) {
	var p api.Pair
	return &p, c.do(ctx, http.MethodGet, "/pair", nil, nil, &p)
}

// PushPair saves this director's shared configuration on its peer (what
// "Save on both directors" does after the local save).
func (c *Client) PushPair(ctx context.Context) (*api.PushResult, error) {
	var r api.PushResult
	return &r, c.do(ctx, http.MethodPost, "/pair/push", nil, nil, &r)
}

// PutShared is the peer's side of a save on both: the director merges the
// shared settings of doc with its own per-node ones, validates and applies
// the result. Admin token only.
func (c *Client) PutShared(ctx context.Context, doc api.SharedConfig) (*api.Status, error) {
	var s api.Status
	return &s, c.do(ctx, http.MethodPost, "/config/shared", doc, nil, &s)
}

// PutConfig replaces the whole configuration; doc.Version must be the one
// it was based on (409 when stale, 422 with problems when invalid).
func (c *Client) PutConfig(ctx context.Context, doc api.ConfigDoc) (*api.Status, error) {
	var s api.Status
	return &s, c.do(ctx, http.MethodPut, "/config", doc, nil, &s)
}
