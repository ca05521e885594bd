package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"lbd/api"
	"lbd/config"
)

func (a *app) checkCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE",
		Short: "Validate a configuration file offline (same as lbd -t)",
		Long: `Validate a configuration file without talking to lbd, with the same code and
the same output as ` + "`lbd -t -config FILE`" + `: "configuration OK" and exit 0, or one
FILE:LINE: message per problem and exit 1. With --output json it prints
{"ok": ..., "problems": [...]}.`,
		Args: cobra.ExactArgs(1),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return []cobra.Completion{"toml"}, cobra.ShellCompDirectiveFilterFileExt
		},
		RunE: a.offline(func(args []string) error {
			_, err := config.Load(args[0])
			var probs config.Problems
			isProbs := errors.As(err, &probs)
			if a.json() {
				res := api.CheckResult{OK: err == nil}
				for _, p := range probs {
					res.Problems = append(res.Problems, api.Problem{File: p.File, Line: p.Line, Message: p.Message})
				}
				if err != nil && !isProbs {
					res.Problems = append(res.Problems, api.Problem{File: args[0], Message: err.Error()})
				}
				if werr := writeJSON(a.stdout, res); werr != nil {
					return werr
				}
				if err != nil {
					return &cliError{code: exitError}
				}
				return nil
			}
			if err == nil {
				fmt.Fprintln(a.stdout, "configuration OK")
				return nil
			}
			if !isProbs {
				return err
			}
			ce := &cliError{code: exitError}
			for _, p := range probs {
				ce.detail = append(ce.detail, p.String())
			}
			return ce
		}),
	}
}
