// Command lbctl is the operator's CLI for lbd. It speaks only lbd's JSON API
// (/api/v1, see package api), except `lbctl check`, which validates a config
// file offline with the same code lbd uses.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"lbd/internal/apiclient"
)

var version = "dev" // set by -ldflags "-X main.version=..."

// Exit codes. They are part of lbctl's interface: scripts branch on them.
const (
	exitOK          = 0
	exitError       = 1 // anything else: refused config, server error, bad file
	exitUsage       = 2 // bad command line
	exitUnreachable = 3 // no answer from lbd at --url
	exitAuth        = 4 // token missing or refused
	exitNotFound    = 5 // no such virtual or real server
	exitTimeout     = 6 // drain --wait deadline passed, or lbd accepted but did not answer
)

const exitCodesHelp = `Exit codes:
  0  success
  1  error (config refused or invalid, lbd reported a failure, ...)
  2  usage error (unknown command or flag, bad argument)
  3  lbd is not reachable at --url
  4  not authorised (no token, or lbd refused it)
  5  no such virtual server or real server
  6  timed out (drain --wait --timeout passed, or lbd did not answer in --request-timeout)`

const defaultURL = "http://127.0.0.1:3636"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// app is one lbctl invocation: its environment and its global flags.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// isTTY says whether w is a terminal (live lines redraw in place).
	isTTY func(w io.Writer) bool
	// tokenFiles are the default token files, tried in order.
	tokenFiles []string

	url        string
	token      string
	tokenFile  string
	output     string
	reqTimeout time.Duration
}

func newApp(stdout, stderr io.Writer, getenv func(string) string) *app {
	a := &app{stdout: stdout, stderr: stderr, getenv: getenv, isTTY: fileIsTTY}
	if dir := getenv("XDG_CONFIG_HOME"); dir != "" {
		a.tokenFiles = append(a.tokenFiles, filepath.Join(dir, "lbctl", "token"))
	} else if home := getenv("HOME"); home != "" {
		a.tokenFiles = append(a.tokenFiles, filepath.Join(home, ".config", "lbctl", "token"))
	}
	a.tokenFiles = append(a.tokenFiles, "/etc/lbd/lbctl.token")
	return a
}

func fileIsTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

// run executes one command line and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	return newApp(stdout, stderr, getenv).run(ctx, args)
}

func (a *app) run(ctx context.Context, args []string) int {
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	var ce *cliError
	if !errors.As(err, &ce) {
		// Everything that does not come out of a command's own action is
		// cobra refusing the command line.
		name := root.Name()
		if cmd != nil {
			name = cmd.CommandPath()
		}
		fmt.Fprintf(a.stderr, "lbctl: %v\nRun '%s --help' for usage.\n", err, name)
		return exitUsage
	}
	if ce.msg != "" {
		fmt.Fprintf(a.stderr, "lbctl: %s\n", ce.msg)
	}
	for _, l := range ce.detail {
		fmt.Fprintln(a.stderr, l)
	}
	if ce.code == exitUsage && cmd != nil {
		fmt.Fprintf(a.stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return ce.code
}

// cliError is an error with the exit code it maps to; detail lines (config
// problems) are printed after the message, unprefixed.
type cliError struct {
	code   int
	msg    string
	detail []string
}

func (e *cliError) Error() string { return e.msg }

func usageErr(format string, args ...any) error {
	return &cliError{code: exitUsage, msg: fmt.Sprintf(format, args...)}
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "lbctl",
		Short: "Control the lbd load balancer director",
		Long: `lbctl controls a running lbd through its JSON API (` + defaultURL + `/api/v1 by default).

Drain, enable and weight changes are written into lbd's configuration file,
so they survive a restart of lbd and show in the web console.

Authentication: a bearer token from --token, else $LBCTL_TOKEN, else the file
named by --token-file, else the first readable of ~/.config/lbctl/token and
/etc/lbd/lbctl.token (create tokens with ` + "`lbd token`" + `).

` + exitCodesHelp,
		Version:           version,
		SilenceErrors:     true,
		SilenceUsage:      true,
		PersistentPreRunE: a.checkGlobalFlags,
	}
	root.SetVersionTemplate("lbctl {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return err })

	url := a.getenv("LBCTL_URL")
	if url == "" {
		url = defaultURL
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.url, "url", url, "lbd console address ($LBCTL_URL)")
	pf.StringVar(&a.token, "token", "", "API bearer token (default $LBCTL_TOKEN or the token file)")
	pf.StringVar(&a.tokenFile, "token-file", "", "file holding the API token (default ~/.config/lbctl/token, then /etc/lbd/lbctl.token)")
	pf.StringVarP(&a.output, "output", "o", "table", "output format: table or json")
	pf.DurationVar(&a.reqTimeout, "request-timeout", 10*time.Second, "how long to wait for each answer from lbd")
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))

	root.AddCommand(
		a.statusCmd(), a.listCmd(), a.showCmd(),
		a.drainCmd(), a.enableCmd(), a.weightCmd(),
		a.reloadCmd(), a.checkCmd(), a.failoverCmd(), a.bgpCmd(), a.maintenanceCmd(), a.eventsCmd(), a.syncConfigCmd(),
	)
	return root
}

func (a *app) checkGlobalFlags(cmd *cobra.Command, _ []string) error {
	if a.output != "table" && a.output != "json" {
		return usageErr("--output must be table or json, not %q", a.output)
	}
	if a.reqTimeout <= 0 {
		return usageErr("--request-timeout must be positive")
	}
	return nil
}

// action wraps a command's work so that every error it returns carries an
// exit code: an unclassified error there is exit 1, never "usage".
func (a *app) action(fn func(ctx context.Context, c *apiclient.Client, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := a.client()
		if err == nil {
			err = fn(cmd.Context(), c, args)
		}
		return a.classify(err)
	}
}

// offline is action for commands that do not talk to lbd.
func (a *app) offline(fn func(args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error { return a.classify(fn(args)) }
}

func (a *app) client() (*apiclient.Client, error) {
	token, _, err := a.resolveToken()
	if err != nil {
		return nil, err
	}
	c, err := apiclient.New(a.url, token,
		apiclient.WithTimeout(a.reqTimeout), apiclient.WithUserAgent("lbctl/"+version))
	if err != nil {
		return nil, usageErr("--url %q: must look like http://host:port", a.url)
	}
	return c, nil
}

// resolveToken finds the API token and says where it came from.
func (a *app) resolveToken() (token, source string, err error) {
	if a.token != "" {
		return a.token, "--token", nil
	}
	if t := a.getenv("LBCTL_TOKEN"); t != "" {
		return strings.TrimSpace(t), "LBCTL_TOKEN", nil
	}
	if a.tokenFile != "" {
		b, err := os.ReadFile(a.tokenFile)
		if err != nil {
			return "", "", &cliError{code: exitError, msg: fmt.Sprintf("token file: %v", err)}
		}
		return strings.TrimSpace(string(b)), a.tokenFile, nil
	}
	for _, f := range a.tokenFiles {
		if b, err := os.ReadFile(f); err == nil {
			return strings.TrimSpace(string(b)), f, nil
		}
	}
	return "", "", nil
}

// classify turns an error into a *cliError with an exit code and a message a
// person can act on.
func (a *app) classify(err error) error {
	if err == nil {
		return nil
	}
	var ce *cliError
	if errors.As(err, &ce) {
		return ce
	}
	var un *apiclient.Unreachable
	if errors.As(err, &un) {
		if un.Timeout {
			return &cliError{code: exitTimeout, msg: fmt.Sprintf("lbd at %s did not answer within %v", un.URL, a.reqTimeout)}
		}
		return &cliError{code: exitUnreachable, msg: fmt.Sprintf("lbd is not reachable at %s (%v)", un.URL, un.Err)}
	}
	var he *apiclient.HTTPError
	if errors.As(err, &he) {
		switch he.Status {
		case 401, 403:
			_, src, _ := a.resolveToken()
			msg := "not authorised (check --token / LBCTL_TOKEN)"
			if src == "" {
				msg = "not authorised: no token given (use --token, LBCTL_TOKEN or --token-file)"
			} else if src != "--token" && src != "LBCTL_TOKEN" {
				msg = fmt.Sprintf("not authorised: lbd refused the token from %s (check --token / LBCTL_TOKEN / --token-file)", src)
			}
			return &cliError{code: exitAuth, msg: msg}
		case 404:
			return &cliError{code: exitNotFound, msg: he.Error()}
		}
		ce := &cliError{code: exitError, msg: he.Error()}
		if ce.msg == "" {
			ce.msg = fmt.Sprintf("lbd answered %d to %s %s", he.Status, he.Method, he.Path)
		}
		for _, p := range he.Body.Problems {
			ce.detail = append(ce.detail, problemString(p.File, p.Line, p.Message))
		}
		return ce
	}
	if errors.Is(err, context.Canceled) {
		return &cliError{code: exitError, msg: "interrupted"}
	}
	return &cliError{code: exitError, msg: err.Error()}
}

// problemString formats a validation problem the way `lbd -t` does.
func problemString(file string, line int, msg string) string {
	switch {
	case file == "":
		return msg
	case line > 0:
		return fmt.Sprintf("%s:%d: %s", file, line, msg)
	default:
		return fmt.Sprintf("%s: %s", file, msg)
	}
}
