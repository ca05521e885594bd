package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"lbd/api"
	"lbd/internal/apiclient"
)

func (a *app) json() bool { return a.output == "json" }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (a *app) statusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show this director's role, VRRP state, services and real servers (and its peer's)",
		Long: `Show this director's role, VRRP state, and every virtual service with its real
servers: addresses, weights, health, drain state, connections and rates (the
picture ` + "`ipvsadm -Ln --rate`" + ` gives, with names and health). With a [peer]
configured, both directors side by side: role, VRRP and BGP state, config
versions, IPVS and connection-sync state, the shared settings that differ
and the real servers whose health they disagree on.`,
		Args:              cobra.NoArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: a.action(func(ctx context.Context, c *apiclient.Client, _ []string) error {
			st, err := c.Status(ctx)
			if err != nil {
				return err
			}
			pair, pairErr := pairOf(ctx, c)
			if a.json() {
				return writeJSON(a.stdout, statusWithPair{Status: st, Pair: pair, PairError: pairErr})
			}
			if err := renderStatus(a.stdout, st, time.Now()); err != nil {
				return err
			}
			if st.BGP != nil {
				fmt.Fprintln(a.stdout)
				if err := renderBGP(a.stdout, st.BGP, time.Now()); err != nil {
					return err
				}
			}
			switch {
			case pair != nil:
				fmt.Fprintln(a.stdout)
				renderPair(a.stdout, pair, time.Now())
			case pairErr != "":
				fmt.Fprintf(a.stdout, "\npair: not read: %s\n", pairErr)
			}
			return nil
		}),
	}
}

func (a *app) listCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "list [VS]",
		Short:             "List virtual services, or the real servers of one",
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: a.completeNames,
		RunE: a.action(func(ctx context.Context, c *apiclient.Client, args []string) error {
			if len(args) == 0 {
				svcs, err := c.Services(ctx)
				if err != nil {
					return err
				}
				if a.json() {
					if svcs == nil {
						svcs = []api.Service{}
					}
					return writeJSON(a.stdout, svcs)
				}
				return renderServiceList(a.stdout, svcs)
			}
			svc, err := c.Service(ctx, args[0])
			if err != nil {
				return err
			}
			if a.json() {
				rs := svc.RealServers
				if rs == nil {
					rs = []api.RealServer{}
				}
				return writeJSON(a.stdout, rs)
			}
			return renderRealList(a.stdout, svc.RealServers)
		}),
	}
}

func (a *app) showCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "show VS [RS]",
		Short:             "Show one virtual service, or one of its real servers, in detail",
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: a.completeNames,
		RunE: a.action(func(ctx context.Context, c *apiclient.Client, args []string) error {
			if len(args) == 1 {
				svc, err := c.Service(ctx, args[0])
				if err != nil {
					return err
				}
				if a.json() {
					return writeJSON(a.stdout, svc)
				}
				return renderService(a.stdout, svc, time.Now())
			}
			rs, err := c.RealServer(ctx, args[0], args[1])
			if err != nil {
				return err
			}
			if a.json() {
				return writeJSON(a.stdout, rs)
			}
			return renderReal(a.stdout, args[0], rs, time.Now())
		}),
	}
}

func (a *app) drainCmd() *cobra.Command {
	var (
		wait    bool
		timeout time.Duration
		poll    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "drain VS RS",
		Short: "Stop new connections to a real server; existing ones finish",
		Long: `Set the real server's weight to 0: IPVS sends it no new connections and the
existing ones continue. The drain is written into lbd's configuration, so it
stays in place across restarts until ` + "`lbctl enable`" + `.

With --wait, lbctl shows the active connections counting down and exits 0
when they reach 0, or 6 when --timeout passes first (the drain stays).`,
		Example:           "  lbctl drain web rs1 --wait --timeout 10m",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: a.completeNames,
		RunE: a.action(func(ctx context.Context, c *apiclient.Client, args []string) error {
			if timeout <= 0 || poll <= 0 {
				return usageErr("--timeout and --poll must be positive")
			}
			vs, rsName := args[0], args[1]
			rs, err := c.Drain(ctx, vs, rsName)
			if err != nil {
				return err
			}
			if !wait {
				if a.json() {
					return writeJSON(a.stdout, rs)
				}
				fmt.Fprintf(a.stdout, "%s/%s drained: weight %d, %s\n", vs, rsName, rs.Weight, plural(rs.ActiveConns, "active connection"))
				return nil
			}
			if !a.json() {
				fmt.Fprintf(a.stdout, "%s/%s drained: weight %d; waiting for active connections to end (timeout %v)\n",
					vs, rsName, rs.Weight, timeout)
			}
			final, err := a.waitDrained(ctx, c, vs, rsName, rs, timeout, poll)
			if err != nil {
				return err
			}
			if a.json() {
				return writeJSON(a.stdout, final)
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the real server has no active connections")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "with --wait: give up after this long (exit 6)")
	cmd.Flags().DurationVar(&poll, "poll", time.Second, "with --wait: how often to ask lbd for the connection count")
	return cmd
}

// waitDrained polls the real server until its active connections reach 0,
// showing a live count. On a terminal the line is redrawn in place;
// otherwise a line is printed each time the count changes.
func (a *app) waitDrained(ctx context.Context, c *apiclient.Client, vs, rsName string, rs *api.RealServer,
	timeout, poll time.Duration) (*api.RealServer, error) {
	w := a.stdout
	if a.json() {
		w = a.stderr // keep stdout a single JSON document
	}
	live := newLiveLine(w, a.isTTY(w))
	start := time.Now()
	deadline := start.Add(timeout)
	tick := time.NewTicker(poll)
	defer tick.Stop()
	unreachable := false
	for {
		if unreachable {
			live.show(fmt.Sprintf("%s/%s: lbd not reachable, retrying (%s left)", vs, rsName, api.Duration(time.Until(deadline))), "unreachable")
		} else {
			if !rs.Drained {
				live.done()
				return nil, &cliError{code: exitError, msg: fmt.Sprintf("%s/%s was enabled again while waiting for it to drain", vs, rsName)}
			}
			if rs.ActiveConns <= 0 {
				live.show(fmt.Sprintf("%s/%s: 0 active connections, drained after %s", vs, rsName, api.Duration(time.Since(start))), "0")
				live.done()
				return rs, nil
			}
			live.show(fmt.Sprintf("%s/%s: %s, %d inactive (%s left)", vs, rsName,
				plural(rs.ActiveConns, "active connection"), rs.InactConns, api.Duration(time.Until(deadline))),
				strconv.Itoa(rs.ActiveConns))
		}
		if !time.Now().Before(deadline) {
			live.done()
			n := rs.ActiveConns
			return nil, &cliError{code: exitTimeout, msg: fmt.Sprintf(
				"timeout after %v: %s/%s still has %s (it stays drained)", timeout, vs, rsName, plural(n, "active connection"))}
		}
		timer := time.NewTimer(time.Until(deadline))
		select {
		case <-ctx.Done():
			timer.Stop()
			live.done()
			return nil, &cliError{code: exitError, msg: fmt.Sprintf("interrupted: %s/%s stays drained", vs, rsName)}
		case <-tick.C:
		case <-timer.C:
		}
		timer.Stop()
		next, err := c.RealServer(ctx, vs, rsName)
		var un *apiclient.Unreachable
		switch {
		case err == nil:
			rs, unreachable = next, false
		case errors.As(err, &un):
			// lbd restarting mid-drain is normal; the drain is in its config.
			unreachable = true
		default:
			live.done()
			return nil, err
		}
	}
}

// liveLine shows a changing status line: redrawn in place on a terminal,
// appended as a new line (only when its key changes) elsewhere.
type liveLine struct {
	w       io.Writer
	tty     bool
	lastKey string
	drawn   bool
}

func newLiveLine(w io.Writer, tty bool) *liveLine { return &liveLine{w: w, tty: tty} }

func (l *liveLine) show(text, key string) {
	if l.tty {
		fmt.Fprintf(l.w, "\r\x1b[K%s", text)
		l.drawn = true
		return
	}
	if l.drawn && key == l.lastKey {
		return
	}
	fmt.Fprintln(l.w, text)
	l.lastKey, l.drawn = key, true
}

func (l *liveLine) done() {
	if l.tty && l.drawn {
		fmt.Fprintln(l.w)
	}
	l.drawn = false
}

func (a *app) enableCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "enable VS RS",
		Short:             "Undo a drain: give the real server its configured weight again",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: a.completeNames,
		RunE: a.action(func(ctx context.Context, c *apiclient.Client, args []string) error {
			rs, err := c.Enable(ctx, args[0], args[1])
			if err != nil {
				return err
			}
			if a.json() {
				return writeJSON(a.stdout, rs)
			}
			fmt.Fprintf(a.stdout, "%s/%s enabled: weight %d (health %s)\n", args[0], args[1], rs.ConfiguredWeight, rs.Health)
			return nil
		}),
	}
}

func (a *app) weightCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "weight VS RS N",
		Short:             "Set a real server's configured weight (0..65535)",
		Args:              cobra.ExactArgs(3),
		ValidArgsFunction: a.completeNames,
		RunE: a.action(func(ctx context.Context, c *apiclient.Client, args []string) error {
			n, err := strconv.Atoi(args[2])
			if err != nil || n < 0 || n > 65535 {
				return usageErr("weight must be a whole number from 0 to 65535, not %q", args[2])
			}
			rs, err := c.SetWeight(ctx, args[0], args[1], n)
			if err != nil {
				return err
			}
			if a.json() {
				return writeJSON(a.stdout, rs)
			}
			note := ""
			if rs.Drained {
				note = " (drained: stays at 0 until `lbctl enable`)"
			}
			fmt.Fprintf(a.stdout, "%s/%s weight %d%s\n", args[0], args[1], rs.ConfiguredWeight, note)
			return nil
		}),
	}
}

func (a *app) reloadCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "reload",
		Short: "Re-read lbd's configuration file (same as SIGHUP)",
		Long: `Ask lbd to re-read its configuration file, like SIGHUP. If the new file is
invalid lbd keeps running the old one and lbctl prints each problem as
FILE:LINE: message and exits 1.`,
		Args:              cobra.NoArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: a.action(func(ctx context.Context, c *apiclient.Client, _ []string) error {
			st, err := c.Reload(ctx)
			var he *apiclient.HTTPError
			if errors.As(err, &he) && he.Status == 422 {
				if a.json() {
					_ = writeJSON(a.stdout, he.Body)
				}
				ce := a.classify(err).(*cliError)
				ce.msg = "reload refused, lbd keeps the running configuration: " + ce.msg
				return ce
			}
			if err != nil {
				return err
			}
			if a.json() {
				return writeJSON(a.stdout, st)
			}
			fmt.Fprintf(a.stdout, "reloaded %s: config %s, %s\n", st.ConfigPath, shortVersion(st.ConfigVersion), plural(len(st.Services), "service"))
			return nil
		}),
	}
}

func (a *app) failoverCmd() *cobra.Command {
	var holdoff time.Duration
	cmd := &cobra.Command{
		Use:   "failover [INSTANCE]",
		Short: "Make this director (the master) hand the VIPs to the backup",
		Long: `Ask this director, if it is the VRRP master, to resign (it sends priority 0
adverts so the backup takes over at once) and not to preempt back for
--holdoff, for planned maintenance.

With several VRRP instances ([[vrrp_instance]]), name the one to resign;
without a name the command fails and lists them.`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: a.action(func(ctx context.Context, c *apiclient.Client, args []string) error {
			if holdoff < 0 {
				return usageErr("--holdoff must not be negative")
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			v, err := c.FailoverInstance(ctx, name, holdoff)
			if err != nil {
				return err
			}
			if a.json() {
				return writeJSON(a.stdout, v)
			}
			who := ""
			if v.Name != "" {
				who = v.Name + ": "
			}
			fmt.Fprintf(a.stdout, "%svrid %d on %s: now %s; not preempting for %v\n", who, v.VRID, v.Interface, strings.ToUpper(v.State), holdoff)
			return nil
		}),
	}
	cmd.Flags().DurationVar(&holdoff, "holdoff", 5*time.Minute, "how long this director holds back from taking mastership again")
	return cmd
}

// completeNames completes VS names for the first argument and RS names of
// that VS for the second, asking lbd; it offers nothing when lbd is away.
func (a *app) completeNames(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	nofile := cobra.ShellCompDirectiveNoFileComp
	if len(args) > 1 {
		return nil, nofile
	}
	c, err := a.client()
	if err != nil {
		return nil, nofile
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var out []cobra.Completion
	if len(args) == 0 {
		svcs, err := c.Services(ctx)
		if err != nil {
			return nil, nofile
		}
		for _, s := range svcs {
			out = append(out, cobra.CompletionWithDesc(s.Name, s.Address()))
		}
		return out, nofile
	}
	if cmd.Name() == "list" {
		return nil, nofile
	}
	svc, err := c.Service(ctx, args[0])
	if err != nil {
		return nil, nofile
	}
	for _, r := range svc.RealServers {
		out = append(out, cobra.CompletionWithDesc(r.Name, api.HostPort(r.Address, r.Port)))
	}
	return out, nofile
}
