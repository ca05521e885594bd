package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"lbd/api"
	"lbd/internal/apiclient"
)

func (a *app) bgpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "bgp",
		Short: "Show this director's BGP sessions and which VIPs it announces",
		Long: `Show the BGP sessions with the routers (state, since when, prefixes sent) and
every VIP: announced, or withdrawn and why (below quorum, maintenance,
stopping).`,
		Args:              cobra.NoArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: a.action(func(ctx context.Context, c *apiclient.Client, _ []string) error {
			st, err := c.Status(ctx)
			if err != nil {
				return err
			}
			if st.BGP == nil {
				return errors.New("no [bgp] configured on this director")
			}
			if a.json() {
				return writeJSON(a.stdout, st.BGP)
			}
			return renderBGP(a.stdout, st.BGP, time.Now())
		}),
	}
}

func (a *app) maintenanceCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "maintenance on|off",
		Short: "Withdraw every VIP of this director from the routers (on), or announce them again (off)",
		Long: `Drain this director of a BGP/ECMP group: "on" withdraws every VIP it announces,
so the routers send new flows to the other directors, while this one keeps
serving what still arrives; "off" announces again the VIPs whose services are
healthy. Maintenance lasts until "off" or a restart of lbd.`,
		Args:              cobra.ExactArgs(1),
		ValidArgs:         []string{"on", "off"},
		ValidArgsFunction: cobra.FixedCompletions([]string{"on", "off"}, cobra.ShellCompDirectiveNoFileComp),
		RunE: a.action(func(ctx context.Context, c *apiclient.Client, args []string) error {
			var on bool
			switch args[0] {
			case "on":
				on = true
			case "off":
			default:
				return usageErr("maintenance takes on or off, not %q", args[0])
			}
			b, err := c.Maintenance(ctx, on)
			if err != nil {
				return err
			}
			if a.json() {
				return writeJSON(a.stdout, b)
			}
			return renderBGP(a.stdout, b, time.Now())
		}),
	}
}

func renderBGP(w io.Writer, b *api.BGP, now time.Time) error {
	mode := "announcing"
	switch {
	case b.Stopping:
		mode = "stopping"
	case b.Maintenance:
		mode = "MAINTENANCE (every VIP withdrawn)"
	}
	fmt.Fprintf(w, "BGP AS %d: %s\n", b.LocalASN, mode)
	if b.Error != "" {
		fmt.Fprintf(w, "speaker not running: %s\n", b.Error)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NEIGHBOR\tASN\tSTATE\tFOR\tSENT\tNOTE")
	for _, s := range b.Sessions {
		since := "-"
		if !s.Since.IsZero() {
			since = now.Sub(s.Since).Round(time.Second).String()
		}
		note := s.LastError
		if s.BFD != "" {
			note = "bfd " + s.BFD + " " + note
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\n", s.Neighbor, s.ASN, s.State, since, s.PrefixesSent, note)
	}
	fmt.Fprintln(tw, "\nVIP\tANNOUNCED\tWHY NOT")
	for _, v := range b.VIPs {
		ann := "no"
		if v.Announced {
			ann = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", v.VIP, ann, v.Reason)
	}
	return tw.Flush()
}
