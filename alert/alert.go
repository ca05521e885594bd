// Package alert tells operators what the director saw: a real server that
// went down, a service below its quorum, a VRRP or BGP transition, a
// refused reload. Each target (a webhook, a mail relay, a program) gets the
// classes of events it asks for, with retries, deduplication and a rate
// limit, so a flapping real server sends a digest instead of a hundred
// mails. A target that is slow or dead never blocks the director: Send only
// queues, and a full queue drops (and counts) the event.
package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Event classes: what a target can subscribe to.
const (
	RealServerDown = "rs_down"        // a real server failed its health check
	RealServerUp   = "rs_up"          // and came back
	QuorumLost     = "quorum_lost"    // a service fell below its quorum
	QuorumRestored = "quorum_ok"      // and is above it again
	VRRP           = "vrrp"           // a VRRP state transition
	BGP            = "bgp"            // a BGP session or announcement change
	ReloadRefused  = "reload_refused" // a new configuration was refused
	DriftRepaired  = "drift_repaired" // IPVS changed behind lbd's back and was repaired
	SyncDown       = "sync_down"      // the connection-sync daemon is not running
)

// Classes lists every event class, in documentation order.
func Classes() []string {
	return []string{RealServerDown, RealServerUp, QuorumLost, QuorumRestored, VRRP, BGP, ReloadRefused, DriftRepaired, SyncDown}
}

// Event is one thing that happened on a director.
type Event struct {
	Time    time.Time `json:"time"`
	Node    string    `json:"node"`
	Class   string    `json:"class"`
	Subject string    `json:"subject"` // e.g. "web/rs1", "vrid 51"
	Message string    `json:"message"`
}

// Notifier delivers a batch of events: one event, or a digest of those
// held back by the rate limit. suppressed counts events that were dropped
// from the digest because it was full. An error means the delivery failed
// and may be retried.
type Notifier interface {
	Notify(ctx context.Context, batch []Event, suppressed int) error
}

// Target is one destination and its delivery policy. Zero values take the
// documented defaults (decided by the caller's configuration; the package
// itself only refuses nonsense).
type Target struct {
	Name     string
	Notifier Notifier
	// Classes the target receives; empty means all.
	Classes []string
	// Timeout bounds one delivery attempt.
	Timeout time.Duration
	// Retries after a failed attempt, the first after Backoff, each
	// following one after twice the previous wait (at most MaxBackoff).
	Retries    int
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Dedup: an event equal to one sent within this window (same class,
	// subject and message) is not sent again. 0 disables.
	Dedup time.Duration
	// RateBurst deliveries at most per RatePer; events beyond wait and
	// go out together as one digest when the next delivery is allowed.
	RateBurst int
	RatePer   time.Duration
	// QueueLen bounds the events waiting for delivery; more are dropped.
	QueueLen int
	// DigestMax bounds one digest; events beyond it are counted as
	// suppressed in it.
	DigestMax int
}

// Stats are one target's counters.
type Stats struct {
	Name       string    `json:"name"`
	Sent       int64     `json:"sent"`       // events delivered
	Deliveries int64     `json:"deliveries"` // successful deliveries (a digest is one)
	Failed     int64     `json:"failed"`     // events whose delivery failed after every retry
	Dropped    int64     `json:"dropped"`    // events lost to a full queue
	Deduped    int64     `json:"deduped"`    // events equal to one sent recently
	Suppressed int64     `json:"suppressed"` // events left out of a full digest
	LastError  string    `json:"last_error,omitempty"`
	LastSent   time.Time `json:"last_sent,omitzero"`
}

// Dispatcher fans events out to targets.
type Dispatcher struct {
	log     *slog.Logger
	targets []*worker
}

// New checks the targets and returns a dispatcher; Run delivers.
func New(targets []Target, log *slog.Logger) (*Dispatcher, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{log: log}
	names := map[string]bool{}
	for _, t := range targets {
		switch {
		case t.Notifier == nil:
			return nil, fmt.Errorf("alert %q: no notifier", t.Name)
		case names[t.Name]:
			return nil, fmt.Errorf("alert %q: defined twice", t.Name)
		case t.Timeout <= 0, t.QueueLen <= 0, t.DigestMax <= 0:
			return nil, fmt.Errorf("alert %q: timeout, queue length and digest size must be positive", t.Name)
		case t.Retries < 0, t.Backoff < 0, t.MaxBackoff < t.Backoff, t.Dedup < 0:
			return nil, fmt.Errorf("alert %q: negative retries, backoff or dedup window", t.Name)
		case (t.RateBurst > 0) != (t.RatePer > 0):
			return nil, fmt.Errorf("alert %q: a rate limit needs both a burst and a period", t.Name)
		}
		for _, c := range t.Classes {
			if !slices.Contains(Classes(), c) {
				return nil, fmt.Errorf("alert %q: unknown event class %q", t.Name, c)
			}
		}
		names[t.Name] = true
		d.targets = append(d.targets, &worker{
			t:     t,
			log:   log.With("alert", t.Name),
			queue: make(chan Event, t.QueueLen),
			sent:  map[string]time.Time{},
			stats: Stats{Name: t.Name},
		})
	}
	return d, nil
}

// Send queues ev for every target that wants its class. It never blocks.
func (d *Dispatcher) Send(ev Event) {
	for _, w := range d.targets {
		if len(w.t.Classes) > 0 && !slices.Contains(w.t.Classes, ev.Class) {
			continue
		}
		select {
		case w.queue <- ev:
		default:
			w.mu.Lock()
			w.stats.Dropped++
			w.mu.Unlock()
		}
	}
}

// Run delivers until ctx ends; then it returns once every target's current
// delivery attempt has ended (each is bounded by its timeout).
func (d *Dispatcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, w := range d.targets {
		wg.Go(func() { w.run(ctx) })
	}
	wg.Wait()
}

// Stats returns every target's counters, in configuration order.
func (d *Dispatcher) Stats() []Stats {
	out := make([]Stats, 0, len(d.targets))
	for _, w := range d.targets {
		w.mu.Lock()
		out = append(out, w.stats)
		w.mu.Unlock()
	}
	return out
}

// worker is one target's delivery loop.
type worker struct {
	t     Target
	log   *slog.Logger
	queue chan Event

	// Owned by run's goroutine.
	sent    map[string]time.Time // dedup key -> when last sent
	tokens  []time.Time          // rate limit: the deliveries within RatePer
	pending []Event              // waiting for the rate limit
	over    int                  // events left out of pending (digest full)

	mu    sync.Mutex
	stats Stats
}

func (w *worker) run(ctx context.Context) {
	var wait *time.Timer
	for {
		var due <-chan time.Time
		if len(w.pending) > 0 {
			d := w.nextSlot(time.Now())
			if wait == nil {
				wait = time.NewTimer(d)
			} else {
				wait.Reset(d)
			}
			due = wait.C
		}
		select {
		case <-ctx.Done():
			if wait != nil {
				wait.Stop()
			}
			return
		case ev := <-w.queue:
			w.take(ev)
		case <-due:
		}
		// Drain what else is queued, so a burst goes out in digests. A
		// full digest that may go now stops the draining: events are left
		// out of a digest only while the rate limit holds them back.
		for len(w.queue) > 0 && (len(w.pending) < w.t.DigestMax || w.nextSlot(time.Now()) > 0) {
			w.take(<-w.queue)
		}
		if len(w.pending) > 0 && w.nextSlot(time.Now()) == 0 {
			batch, over := w.pending, w.over
			w.pending, w.over = nil, 0
			w.deliver(ctx, batch, over)
		}
	}
}

// take adds ev to the pending batch unless it repeats a recent one.
func (w *worker) take(ev Event) {
	if w.t.Dedup > 0 {
		key := ev.Class + "\x00" + ev.Subject + "\x00" + ev.Message
		now := time.Now()
		if last, ok := w.sent[key]; ok && now.Sub(last) < w.t.Dedup {
			w.mu.Lock()
			w.stats.Deduped++
			w.mu.Unlock()
			return
		}
		w.sent[key] = now
		if len(w.sent) > 4*w.t.QueueLen { // bounded: forget what is out of the window
			for k, t := range w.sent {
				if now.Sub(t) >= w.t.Dedup {
					delete(w.sent, k)
				}
			}
		}
	}
	if len(w.pending) >= w.t.DigestMax {
		w.over++
		return
	}
	w.pending = append(w.pending, ev)
}

// nextSlot is how long until the rate limit allows a delivery (0: now).
func (w *worker) nextSlot(now time.Time) time.Duration {
	if w.t.RateBurst == 0 {
		return 0
	}
	for len(w.tokens) > 0 && now.Sub(w.tokens[0]) >= w.t.RatePer {
		w.tokens = w.tokens[1:]
	}
	if len(w.tokens) < w.t.RateBurst {
		return 0
	}
	return w.t.RatePer - now.Sub(w.tokens[0])
}

// deliver sends one batch with retries.
func (w *worker) deliver(ctx context.Context, batch []Event, over int) {
	if w.t.RateBurst > 0 {
		w.tokens = append(w.tokens, time.Now())
	}
	backoff := w.t.Backoff
	var err error
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, w.t.Timeout)
		err = w.t.Notifier.Notify(actx, batch, over)
		cancel()
		if err == nil {
			w.mu.Lock()
			w.stats.Sent += int64(len(batch))
			w.stats.Deliveries++
			w.stats.Suppressed += int64(over)
			w.stats.LastSent = time.Now()
			w.mu.Unlock()
			return
		}
		if attempt >= w.t.Retries || ctx.Err() != nil {
			break
		}
		w.log.Debug("alert: delivery failed, retrying", "err", err, "in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		backoff = min(2*backoff, w.t.MaxBackoff)
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = fmt.Errorf("stopped before delivery: %w", err)
	}
	w.log.Warn("alert: delivery failed", "events", len(batch), "err", err)
	w.mu.Lock()
	w.stats.Failed += int64(len(batch))
	w.stats.Suppressed += int64(over)
	w.stats.LastError = err.Error()
	w.mu.Unlock()
}
