package vrrp

import (
	"bytes"
	"context"
	"log/slog"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// notifier runs the configured notify command for each transition, one at
// a time and in order, on its own goroutine so a slow command never delays
// the election.
type notifier struct {
	argv    []string
	timeout time.Duration
	log     *slog.Logger
	queue   chan Transition
	done    chan struct{}
	errs    *atomic.Int64 // failed or timed-out commands
}

func newNotifier(cfg Config, log *slog.Logger, errs *atomic.Int64) *notifier {
	n := &notifier{argv: slices.Clone(cfg.Notify), timeout: cfg.NotifyTimeout, log: log, errs: errs}
	if len(n.argv) == 0 {
		return n
	}
	n.queue = make(chan Transition, 32)
	n.done = make(chan struct{})
	go n.loop()
	return n
}

func (n *notifier) notify(t Transition) {
	if n.queue == nil {
		return
	}
	select {
	case n.queue <- t:
	default:
		n.errs.Add(1)
		n.log.Error("vrrp: notify queue full, transition not notified", "from", t.From, "to", t.To)
	}
}

// close waits for queued commands (each bounded by the timeout).
func (n *notifier) close() {
	if n.queue == nil {
		return
	}
	close(n.queue)
	<-n.done
}

func (n *notifier) loop() {
	defer close(n.done)
	for t := range n.queue {
		n.run(t)
	}
}

func (n *notifier) run(t Transition) {
	ctx, cancel := context.WithTimeout(context.Background(), n.timeout)
	defer cancel()
	args := append(slices.Clone(n.argv[1:]), t.Name, t.From.String(), t.To.String())
	cmd := exec.CommandContext(ctx, n.argv[0], args...)
	ownProcessGroup(cmd)
	cmd.WaitDelay = time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	if err != nil {
		n.errs.Add(1)
	}
	if ctx.Err() == context.DeadlineExceeded {
		n.log.Error("vrrp: notify command timed out and was killed", "command", n.argv[0], "timeout", n.timeout,
			"from", t.From, "to", t.To)
		return
	}
	if err != nil {
		n.log.Error("vrrp: notify command failed", "command", n.argv[0], "err", err,
			"output", strings.TrimSpace(limit(out.String(), 512)), "from", t.From, "to", t.To)
		return
	}
	n.log.Debug("vrrp: notify command ran", "command", n.argv[0], "took", time.Since(start).Round(time.Millisecond))
}

func limit(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
