package director

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"lbd/api"
	"lbd/config"
	"lbd/internal/apiclient"
)

// peerWatch reads the peer director's status and configuration on a
// timer, in one goroutine, and keeps the last answer with its time: the
// console and lbctl read that cache (Pair) and never wait for the peer.
type peerWatch struct {
	mu   sync.Mutex
	conf *config.Peer // the running [peer]; nil without one
	http *http.Client
	stop context.CancelFunc
	wake chan struct{}
	gen  int // which configuration the poller's answers belong to

	st       *api.Status    // the peer's last status
	cfg      *config.Config // and configuration (decoded, not validated)
	cfgErr   string         // why cfg is nil while the peer answers
	updated  time.Time      // when they were read
	err      string         // the last read's failure; "" when it worked
	errSince time.Time      // since when reads fail

	lastPush   *api.PushResult
	notApplied *api.PushResult // kept until the configurations agree
}

// configurePeer starts, replaces or stops the peer poller for cfg's
// [peer]. d.mu is held.
func (d *Director) configurePeer(cfg *config.Config) {
	w := &d.peer
	w.mu.Lock()
	defer w.mu.Unlock()
	if reflect.DeepEqual(w.conf, cfg.Peer) {
		return
	}
	if w.stop != nil {
		w.stop()
		w.stop = nil
	}
	w.gen++
	w.conf = cfg.Peer
	w.st, w.cfg, w.cfgErr, w.updated, w.err, w.errSince = nil, nil, "", time.Time{}, "", time.Time{}
	w.lastPush, w.notApplied = nil, nil
	if cfg.Peer == nil {
		return
	}
	hc, err := peerHTTPClient(cfg.Peer)
	if err != nil {
		// Validated by config; a CA file changed since is reported.
		w.err, w.errSince = err.Error(), time.Now()
	}
	w.http = hc
	w.wake = make(chan struct{}, 1)
	gen, wake := w.gen, w.wake
	start := func(ctx context.Context) {
		ctx, cancel := context.WithCancel(ctx)
		w.stop = cancel
		go d.runPeer(ctx, gen, wake)
	}
	if d.runCtx != nil {
		start(d.runCtx)
	} else {
		d.pending = append(d.pending, func(ctx context.Context) {
			w.mu.Lock()
			defer w.mu.Unlock()
			if w.gen == gen {
				start(ctx)
			}
		})
	}
}

// peerHTTPClient is the transport to the peer: its own CA when tls_ca is
// set, keep-alive between polls.
func peerHTTPClient(p *config.Peer) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // the peer is next door; a proxy would see its token
	tr.MaxIdleConnsPerHost = 2
	if p.TLSCA != "" {
		pool, err := config.PeerCAPool(p.TLSCA)
		if err != nil {
			return &http.Client{Transport: tr}, fmt.Errorf("peer.tls_ca: %w", err)
		}
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	}
	return &http.Client{Transport: tr}, nil
}

// peerClient returns an API client for the peer (the token read now, so a
// rotated token file is used at once).
func (w *peerWatch) client(timeout time.Duration) (*apiclient.Client, error) {
	w.mu.Lock()
	conf, hc := w.conf, w.http
	w.mu.Unlock()
	if conf == nil {
		return nil, errors.New("no [peer] is configured")
	}
	tok, err := conf.ReadToken()
	if err != nil {
		return nil, err
	}
	return apiclient.New(conf.URL, tok, apiclient.WithTimeout(timeout), apiclient.WithHTTPClient(hc), apiclient.WithUserAgent("lbd-peer"))
}

func (d *Director) runPeer(ctx context.Context, gen int, wake <-chan struct{}) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		next := config.PeerPollInterval
		if !d.pollPeer(ctx, gen) {
			next = config.PeerRetryInterval
		}
		t.Reset(next)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
		}
	}
}

// pollPeer reads the peer's status and configuration once, each read
// bounded by config.PeerTimeout; false when that failed.
func (d *Director) pollPeer(ctx context.Context, gen int) bool {
	w := &d.peer
	var st *api.Status
	var pc *config.Config
	c, err := w.client(config.PeerTimeout)
	if err == nil {
		st, err = c.Status(ctx)
	}
	var cfgErr string
	if err == nil {
		var doc *api.ConfigDoc
		if doc, err = c.Config(ctx); err == nil {
			// The peer answers; a configuration this build cannot read
			// (a newer peer's settings) only stops the comparison.
			var derr error
			if pc, derr = config.DecodeUnvalidated("peer", []byte(doc.TOML)); derr != nil {
				cfgErr = "the peer's configuration cannot be read here (another lbd version?): " + oneLine(derr)
			}
		}
	}
	if ctx.Err() != nil {
		return true
	}
	local, _ := d.Config()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.gen != gen {
		return true
	}
	now := time.Now()
	if err != nil {
		if w.err == "" {
			w.errSince = now
			d.log.Warn("peer director not read", "peer", w.conf.Name, "err", err)
			d.events.add("peer", w.conf.Name, "peer not reachable: "+peerErrText(err))
		}
		w.err = peerErrText(err)
		return false
	}
	if w.err != "" {
		d.events.add("peer", w.conf.Name, "peer reachable")
	}
	w.st, w.cfg, w.cfgErr, w.updated, w.err, w.errSince = st, pc, cfgErr, now, "", time.Time{}
	if w.notApplied != nil && pc != nil && len(config.SharedDiff(local, pc)) == 0 {
		w.notApplied = nil
	}
	return true
}

// peerErrText is a refusal or failure of the peer in one line: its
// validation problems included.
func peerErrText(err error) string {
	var he *apiclient.HTTPError
	if errors.As(err, &he) {
		msg := he.Error()
		if len(he.Body.Problems) > 0 {
			var ps []string
			for _, p := range he.Body.Problems {
				ps = append(ps, fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Message))
			}
			msg += ": " + strings.Join(ps, "; ")
		}
		return fmt.Sprintf("%s (HTTP %d)", msg, he.Status)
	}
	return err.Error()
}

// PeerName is the configured peer's name, "" without [peer].
func (d *Director) PeerName() string {
	w := &d.peer
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conf == nil {
		return ""
	}
	return w.conf.Name
}

// Pair is both directors side by side; false without [peer]. The peer's
// part is the poller's last answer: when the last read failed, or is
// older than config.PeerStaleAfter, the peer is shown unreachable with
// the error and since when, never with old data as if live.
func (d *Director) Pair() (api.Pair, bool) {
	st := d.Status()
	local, _ := d.Config()
	now := time.Now()
	w := &d.peer
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conf == nil {
		return api.Pair{}, false
	}
	p := api.Pair{
		Local: api.PairNode{Name: local.Global.NodeName, Reachable: true, Updated: now, SharedVersion: config.SharedVersion(local)},
		Peer:  api.PairNode{Name: w.conf.Name, URL: w.conf.URL, Updated: w.updated},
	}
	api.SummarizeNode(&p.Local, &st, now)
	switch {
	case w.err != "":
		p.Peer.Error, p.Peer.ErrorSince = w.err, w.errSince
	case w.st == nil:
		p.Peer.Error = "not read yet"
	case now.Sub(w.updated) > config.PeerStaleAfter:
		p.Peer.Stale = true
		p.Peer.Error, p.Peer.ErrorSince = "no answer since "+api.Ago(w.updated, now), w.updated
	default:
		p.Peer.Reachable = true
		api.SummarizeNode(&p.Peer, w.st, now)
		p.Peer.Name = w.conf.Name
		p.HealthDisagreements = api.HealthDisagreements(&st, w.st)
		if w.cfg == nil {
			p.DriftError = w.cfgErr
			break
		}
		p.Peer.SharedVersion = config.SharedVersion(w.cfg)
		p.DriftKnown = true
		for _, e := range config.SharedDiff(local, w.cfg) {
			p.Drift = append(p.Drift, api.DriftKey{Key: e.Key, Local: e.Local, Peer: e.Peer})
		}
		if len(p.Drift) == 0 {
			w.notApplied = nil
		}
	}
	if p.Drift == nil {
		p.Drift = []api.DriftKey{}
	}
	if p.HealthDisagreements == nil {
		p.HealthDisagreements = []api.HealthDisagreement{}
	}
	if w.notApplied != nil {
		na := *w.notApplied
		p.NotApplied = &na
	}
	if w.lastPush != nil {
		lp := *w.lastPush
		p.LastPush = &lp
	}
	return p, true
}

// SaveOnPeer sends this director's running configuration to the peer,
// which keeps its own per-node settings and validates, writes and applies
// the rest (POST /api/v1/config/shared). The console password and token
// hashes and the [peer] table are not sent. The result is recorded: a
// save that did not reach the peer stays visible (Pair().NotApplied)
// until the two configurations agree.
func (d *Director) SaveOnPeer(ctx context.Context, source string) api.PushResult {
	cfg, _ := d.Config()
	res := api.PushResult{Time: time.Now(), Local: cfg.Global.NodeName, Peer: d.PeerName()}
	err := func() error {
		c, err := d.peer.client(config.PeerPushTimeout)
		if err != nil {
			return err
		}
		send := cfg.Clone()
		send.Console.PasswordHash, send.Console.TokenHashes, send.Console.ReadTokenHashes = "", nil, nil
		send.Peer = nil
		data, err := config.Encode(send)
		if err != nil {
			return err
		}
		st, err := c.PutShared(ctx, api.SharedConfig{From: cfg.Global.NodeName, TOML: string(data)})
		if err != nil {
			return err
		}
		res.PeerVersion = st.ConfigVersion
		return nil
	}()
	res.Applied = err == nil
	if err != nil {
		res.Error = peerErrText(err)
	}
	w := &d.peer
	w.mu.Lock()
	w.lastPush = &res
	if res.Applied {
		w.notApplied = nil
	} else {
		na := res
		w.notApplied = &na
	}
	wake := w.wake
	w.mu.Unlock()
	if wake != nil {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	d.log.Info("configuration saved on the peer", "source", source, "peer", res.Peer, "applied", res.Applied, "err", res.Error)
	d.events.add("edit", source, res.Text())
	return res
}
