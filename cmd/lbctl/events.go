package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"lbd/api"
	"lbd/internal/apiclient"
)

func (a *app) eventsCmd() *cobra.Command {
	var (
		follow bool
		since  uint64
		poll   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Show the director's event log (VRRP, health, edits, reloads, drains)",
		Long: `Show the director's event log, oldest first. With --follow, keep printing new
events as they happen (from lbd's event stream; if lbd restarts, lbctl
reconnects) until interrupted. With --output json, the log is one JSON array;
with --follow it is one JSON object per line.`,
		Args:              cobra.NoArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: a.action(func(ctx context.Context, c *apiclient.Client, _ []string) error {
			if poll <= 0 {
				return usageErr("--poll must be positive")
			}
			evs, err := c.Events(ctx, since)
			if err != nil {
				return err
			}
			if !follow {
				if a.json() {
					if evs == nil {
						evs = []api.Event{}
					}
					return writeJSON(a.stdout, evs)
				}
				for _, ev := range evs {
					a.printEvent(ev)
				}
				return nil
			}
			f := &follower{a: a, c: c, last: since, poll: poll}
			if st, err := c.Status(ctx); err == nil {
				f.started = st.Started
			}
			f.print(evs)
			return f.run(ctx)
		}),
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events until interrupted")
	cmd.Flags().Uint64Var(&since, "since", 0, "only events after this sequence number")
	cmd.Flags().DurationVar(&poll, "poll", time.Second, "with --follow: polling interval when lbd's event stream is not available")
	return cmd
}

func (a *app) printEvent(ev api.Event) {
	if a.json() {
		b, _ := json.Marshal(ev)
		fmt.Fprintf(a.stdout, "%s\n", b)
		return
	}
	fmt.Fprintf(a.stdout, "%6d  %s  %-9s %-16s %s\n", ev.Seq, ev.Time.Local().Format("2006-01-02 15:04:05"), ev.Kind, ev.Subject, ev.Message)
}

// follower prints events past last exactly once, whether they come from the
// stream or from polling.
type follower struct {
	a    *app
	c    *apiclient.Client
	last uint64
	poll time.Duration
	// started is lbd's start time: a restarted lbd numbers its events
	// from 1 again, so last must start over too.
	started time.Time
}

// back is called when lbd answers again after being unreachable.
func (f *follower) back(ctx context.Context) {
	fmt.Fprintf(f.a.stderr, "lbctl: lbd is back at %s\n", f.c.URL())
	st, err := f.c.Status(ctx)
	if err != nil || st.Started.Equal(f.started) {
		return
	}
	if !f.started.IsZero() {
		fmt.Fprintf(f.a.stderr, "lbctl: lbd restarted at %s; its event log starts over\n", st.Started.Local().Format(time.TimeOnly))
		f.last = 0
	}
	f.started = st.Started
}

func (f *follower) print(evs []api.Event) {
	for _, ev := range evs {
		if ev.Seq > f.last {
			f.a.printEvent(ev)
			f.last = ev.Seq
		}
	}
}

// run follows until ctx ends. It prefers the SSE stream, asking it to replay
// what came after the last event printed; should a streamed event still
// leave a gap (a server that does not replay), a GET /events fills it
// first. When the stream is missing (404) it polls instead; when lbd goes
// away it keeps retrying, like tail -F.
func (f *follower) run(ctx context.Context) error {
	stream := true
	away := false
	// gone reports whether err means lbd is away (keep retrying) and says
	// so once.
	gone := func(err error) bool {
		var un *apiclient.Unreachable
		if !errors.As(err, &un) {
			return false
		}
		if !away {
			fmt.Fprintf(f.a.stderr, "lbctl: lbd is not reachable at %s, retrying\n", f.c.URL())
			away = true
		}
		return true
	}
	for {
		// While lbd is away only the poll below probes for it, so that
		// back() runs (and notices a restart) before events are printed.
		if stream && !away {
			err := f.c.StreamEvents(ctx, f.last, func(ev api.Event) error {
				if ev.Seq > f.last+1 {
					evs, err := f.c.Events(ctx, f.last)
					if err != nil {
						return err
					}
					f.print(evs)
				}
				f.print([]api.Event{ev})
				return nil
			})
			if s := apiclient.StatusOf(err); s == 404 || s == 405 || s == 406 {
				stream = false
				continue
			}
			if ctx.Err() != nil {
				return nil // interrupted: the normal end of --follow
			}
			if err != nil && !gone(err) {
				return err
			}
		}
		// The stream closed (lbd restarting), or it is time to poll.
		if !sleep(ctx, f.poll) {
			return nil
		}
		// Poll: the whole feed without a stream, a catch-up on what the
		// stream missed while down, and the probe for lbd being back.
		evs, err := f.c.Events(ctx, f.last)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if gone(err) {
				continue
			}
			return err
		}
		if away {
			away = false
			f.back(ctx)
			if evs, err = f.c.Events(ctx, f.last); err != nil {
				continue
			}
		}
		f.print(evs)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
