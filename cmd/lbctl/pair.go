package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"lbd/api"
	"lbd/internal/apiclient"
)

// statusWithPair is `lbctl status -o json`: the status as before, with the
// pair beside it when a peer is configured.
type statusWithPair struct {
	*api.Status
	Pair      *api.Pair `json:"pair,omitempty"`
	PairError string    `json:"pair_error,omitempty"`
}

// pairOf reads the pair; nil and "" when the director has no [peer].
func pairOf(ctx context.Context, c *apiclient.Client) (*api.Pair, string) {
	p, err := c.Pair(ctx)
	if apiclient.StatusOf(err) == 404 {
		return nil, ""
	}
	if err != nil {
		return nil, err.Error()
	}
	return p, ""
}

// renderPair prints both directors side by side, the drift and the
// disagreements.
func renderPair(w io.Writer, p *api.Pair, now time.Time) {
	fmt.Fprintln(w, "pair")
	tw := newTable(w)
	l, r := &p.Local, &p.Peer
	row := func(k string, f func(n *api.PairNode) string) {
		v := func(n *api.PairNode) string {
			if !n.Reachable {
				return "-"
			}
			return f(n)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", k, v(l), v(r))
	}
	fmt.Fprintf(tw, "  \t%s (this director)\t%s (%s)\n", l.Name, r.Name, r.URL)
	fmt.Fprintf(tw, "  reachable\tyes\t%s\n", peerReach(r, now))
	row("role", func(n *api.PairNode) string { return n.Role })
	row("vrrp", func(n *api.PairNode) string {
		var s []string
		for _, v := range n.VRRP {
			name := v.Name
			if name == "" {
				name = fmt.Sprintf("vrid %d", v.VRID)
			}
			s = append(s, fmt.Sprintf("%s %s (prio %d)", name, v.State, v.Priority))
		}
		if len(s) == 0 {
			return "-"
		}
		return strings.Join(s, ", ")
	})
	row("bgp", func(n *api.PairNode) string { return orDash(n.BGP) })
	row("config", func(n *api.PairNode) string {
		return fmt.Sprintf("version %s, shared %s", shortVersion(n.ConfigVersion), shortVersion(n.SharedVersion))
	})
	row("ipvs", func(n *api.PairNode) string { return n.IPVS })
	row("conn sync", func(n *api.PairNode) string { return n.Sync })
	tw.Flush()
	switch {
	case !p.DriftKnown && p.DriftError != "":
		fmt.Fprintf(w, "  drift: unknown: %s\n", p.DriftError)
	case !p.DriftKnown:
		fmt.Fprintf(w, "  drift: unknown while %s does not answer\n", r.Name)
	case len(p.Drift) == 0:
		fmt.Fprintln(w, "  drift: none (shared settings agree)")
	default:
		fmt.Fprintf(w, "  drift: %d shared setting(s) differ\n", len(p.Drift))
		tw := newTable(w)
		fmt.Fprintf(tw, "    KEY\t%s\t%s\n", strings.ToUpper(l.Name), strings.ToUpper(r.Name))
		for _, d := range p.Drift {
			fmt.Fprintf(tw, "    %s\t%s\t%s\n", d.Key, d.Local, d.Peer)
		}
		tw.Flush()
	}
	if na := p.NotApplied; na != nil {
		fmt.Fprintf(w, "  NOT APPLIED on %s (save on both, %s): %s\n", na.Peer, api.Ago(na.Time, now), na.Error)
	}
	for _, h := range p.HealthDisagreements {
		fmt.Fprintf(w, "  health differs: %s/%s is %s on %s, %s on %s\n", h.Service, h.RealServer, h.Local, l.Name, h.Peer, r.Name)
	}
}

func peerReach(n *api.PairNode, now time.Time) string {
	if n.Reachable {
		return "yes"
	}
	s := "NO: " + n.Error
	if !n.ErrorSince.IsZero() {
		s += " (since " + api.Ago(n.ErrorSince, now) + ")"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (a *app) syncConfigCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "sync-config",
		Short: "Save this director's shared configuration on its peer ([peer])",
		Long: `Send this director's running configuration to the peer named in its [peer]
table. The peer keeps its own per-node settings (node name, VRRP priority,
interfaces, unicast addresses, listen address, TLS files, credentials, BGP
router id, [peer]) and validates, writes and applies the rest, like the
console's "Save on both directors". Exit status 1 when the peer did not
apply it (unreachable, or its validation refused it: the reason is printed).`,
		Args:              cobra.NoArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: a.action(func(ctx context.Context, c *apiclient.Client, _ []string) error {
			r, err := c.PushPair(ctx)
			if err != nil {
				return err
			}
			if a.json() {
				if err := writeJSON(a.stdout, r); err != nil {
					return err
				}
			} else if r.Applied {
				fmt.Fprintf(a.stdout, "%s's shared configuration saved on %s (version %s)\n", r.Local, r.Peer, shortVersion(r.PeerVersion))
			}
			if !r.Applied {
				return &cliError{code: exitError, msg: r.Text()}
			}
			return nil
		}),
	}
}
