package main

// systemd integration (Type=notify): READY=1 once the IPVS table is
// programmed (director.New applies it) and the console's first start
// attempt is over, RELOADING=1 / READY=1 around a reload, STOPPING=1 on the
// way out, and WATCHDOG=1 pings while the director answers, when the unit
// sets WatchdogSec. Outside systemd (no NOTIFY_SOCKET) every call is a
// no-op.

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

type notifier struct {
	log   *slog.Logger
	ready sync.Once
}

func (n *notifier) send(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.log.Warn("sd_notify failed", "state", state, "err", err)
	}
}

// readyOnce sends READY=1 the first time it is called.
func (n *notifier) readyOnce(status string) {
	n.ready.Do(func() { n.send("READY=1\nSTATUS=" + status) })
}

// watchdog pings systemd at half the WatchdogSec interval for as long as
// alive returns promptly (it takes the director's lock: a director stuck
// on it stops the pings and systemd restarts lbd).
func (n *notifier) watchdog(ctx context.Context, alive func()) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval <= 0 {
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			alive()
			n.send("WATCHDOG=1")
		}
	}
}
