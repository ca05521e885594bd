package director

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"time"

	"lbd/alert"
	"lbd/api"
	"lbd/balancer"
	"lbd/config"
)

// alerter runs the [[alert]] targets of the running configuration. A
// reload that changes them replaces the dispatcher (queued events of the
// old one are dropped with it); one that does not keeps it and its
// counters.
type alerter struct {
	mu   sync.Mutex
	conf []config.Alert
	node string
	disp *alert.Dispatcher
	stop context.CancelFunc
}

// alertTargets translates resolved [[alert]] tables.
func alertTargets(as []config.Alert) []alert.Target {
	out := make([]alert.Target, 0, len(as))
	for _, a := range as {
		t := alert.Target{
			Name: a.Name, Classes: a.Events,
			Timeout: a.Timeout.Duration, Retries: a.Retries,
			Backoff: a.Backoff.Duration, MaxBackoff: config.AlertMaxBackoff,
			Dedup:    a.Dedup.Duration,
			QueueLen: config.AlertQueueLen, DigestMax: config.AlertDigestMax,
		}
		if a.RateLimit > 0 {
			t.RateBurst, t.RatePer = a.RateLimit, a.RatePeriod.Duration
		}
		switch a.Type {
		case "webhook":
			t.Notifier = &alert.Webhook{URL: a.URL, Secret: []byte(a.Secret)}
		case "mail":
			t.Notifier = &alert.Mail{Server: a.SMTPServer, From: a.From, To: a.To, Username: a.Username,
				Password: a.Password, StartTLS: a.StartTLS != nil && *a.StartTLS, HeloName: a.HeloName}
		case "program":
			t.Notifier = &alert.Program{Argv: a.Command}
		}
		out = append(out, t)
	}
	return out
}

// configureAlerts starts the targets of cfg. d.mu is held.
func (d *Director) configureAlerts(cfg *config.Config) {
	a := &d.alerts
	a.mu.Lock()
	defer a.mu.Unlock()
	a.node = cfg.Global.NodeName
	if reflect.DeepEqual(a.conf, cfg.Alerts) {
		return
	}
	if a.stop != nil {
		a.stop()
		a.stop, a.disp = nil, nil
	}
	a.conf = cfg.Alerts
	if len(cfg.Alerts) == 0 {
		return
	}
	disp, err := alert.New(alertTargets(cfg.Alerts), d.log.With("part", "alert"))
	if err != nil {
		// Validated by config: a bug, not an operator error.
		d.log.Error("alerts not started", "err", err)
		return
	}
	a.disp = disp
	start := func(ctx context.Context) {
		ctx, cancel := context.WithCancel(ctx)
		a.stop = cancel
		go disp.Run(ctx)
	}
	if d.runCtx != nil {
		start(d.runCtx)
	} else {
		d.pending = append(d.pending, func(ctx context.Context) {
			a.mu.Lock()
			defer a.mu.Unlock()
			if a.disp == disp {
				start(ctx)
			}
		})
	}
}

// alert sends an event to the targets that want its class. It never
// blocks, so it may be called with d.mu held.
func (d *Director) alert(class, subject, message string) {
	a := &d.alerts
	a.mu.Lock()
	disp, node := a.disp, a.node
	a.mu.Unlock()
	if disp == nil {
		return
	}
	disp.Send(alert.Event{Time: time.Now(), Node: node, Class: class, Subject: subject, Message: message})
}

// alertStatus is the targets' counters for the API.
func (d *Director) alertStatus() []api.AlertTarget {
	a := &d.alerts
	a.mu.Lock()
	disp, conf := a.disp, a.conf
	a.mu.Unlock()
	if disp == nil {
		return nil
	}
	out := []api.AlertTarget{}
	for i, st := range disp.Stats() {
		t := api.AlertTarget{Name: st.Name, Sent: st.Sent, Deliveries: st.Deliveries, Failed: st.Failed,
			Dropped: st.Dropped, Deduped: st.Deduped, Suppressed: st.Suppressed, LastError: st.LastError, LastSent: st.LastSent}
		if i < len(conf) {
			t.Type = conf[i].Type
		}
		out = append(out, t)
	}
	return out
}

// balancerNotice turns a reconciler's repair into an event and an alert.
func (d *Director) balancerNotice(n balancer.Notice) {
	switch n.Kind {
	case balancer.DriftRepaired:
		d.events.add("reconcile", "ipvs", n.Message)
		d.alert(alert.DriftRepaired, "ipvs", n.Message)
	case balancer.SyncDaemonDown:
		d.events.add("sync", "daemon", n.Message)
		d.alert(alert.SyncDown, "sync daemon", n.Message)
	}
}

// quorumChanges reports services whose health (up weight against quorum)
// changed between two plans. d.mu is held.
func (d *Director) quorumChanges(old, cur plan) {
	for name, sp := range cur.services {
		was, ok := old.services[name]
		if !ok || was.healthy == sp.healthy {
			continue
		}
		quorum := 0
		for i := range d.cfg.VirtualServers {
			if d.cfg.VirtualServers[i].Name == name {
				quorum = d.cfg.VirtualServers[i].Quorum
			}
		}
		class, msg := alert.QuorumRestored, fmt.Sprintf("quorum met again: up weight %d, quorum %d", sp.upWeight, quorum)
		if !sp.healthy {
			class, msg = alert.QuorumLost, fmt.Sprintf("below quorum: up weight %d, quorum %d", sp.upWeight, quorum)
		}
		d.log.Warn("virtual service quorum changed", "vs", name, "healthy", sp.healthy, "up_weight", sp.upWeight, "quorum", quorum)
		d.events.add("quorum", name, msg)
		d.alert(class, name, msg)
	}
}
