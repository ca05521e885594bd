// Command lbd is the load-balancer director daemon: it programs kernel IPVS
// from a TOML file, health-checks real servers, runs VRRP with a backup
// director and serves the web console.
//
//	lbd -config /etc/lbd/lbd.toml      run in the foreground
//	lbd -t -config FILE                check a configuration and exit (warnings
//	                                   for what this host lacks: interfaces, IPVS)
//	lbd passwd -config FILE            set the console password
//	lbd token -config FILE             create an API token for lbctl
//	lbd token -read-only -config FILE  create a read-only API token (scrapers, dashboards)
//	lbd -version                       print the version
//
// Signals: HUP reloads the file (an invalid file is refused and the running
// state kept), TERM and INT stop gracefully (a VRRP master resigns first).
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"lbd/api"
	"lbd/config"
	"lbd/director"
	"lbd/webui"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const defaultConfig = "/etc/lbd/lbd.toml"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "passwd":
			return runPasswd(args[1:])
		case "token":
			return runToken(args[1:])
		}
	}
	fs := flag.NewFlagSet("lbd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", defaultConfig, "configuration `file`")
	check := fs.Bool("t", false, "check the configuration file and exit (0 = OK, 1 = errors; warnings for interfaces or IPVS this host lacks)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	stateFile := fs.String("state", "", "`file` recording the IPVS services lbd manages (default /run/lbd/managed-<hash of the config path>.json)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: lbd [-config FILE] [-t] [-version] [-log-level L]\n       lbd passwd -config FILE\n       lbd token -config FILE [-name NAME] [-read-only]\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "lbd: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if *showVersion {
		fmt.Fprintf(stdout, "lbd %s\n", version)
		return 0
	}
	if *check {
		return checkConfig(*configPath, realHostChecks(), stdout, stderr)
	}
	if err := canDirect(); err != nil {
		fmt.Fprintf(stderr, "lbd: %v\n", err)
		return 1
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "lbd: bad -log-level %q\n", *logLevel)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	cfg, err := config.Load(*configPath)
	if err != nil {
		printConfigError(stderr, err)
		return 1
	}

	warnConfigMode(log, *configPath)
	// Once, at start-up: an interface this host lacks. IPVS the director
	// checks itself (it fails without it when there are virtual servers,
	// and says so at ERROR when it runs VRRP only).
	for _, p := range realHostChecks().missingInterfaces(cfg) {
		log.Error(p)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	if *stateFile == "" {
		*stateFile = defaultStateFile(*configPath)
	}
	d, err := director.New(director.Options{Config: cfg, Logger: log, Version: version, StateFile: *stateFile, HoldVIPs: true, OpenKernel: openKernel})
	if err != nil {
		fmt.Fprintf(stderr, "lbd: %v\n", err)
		return 1
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := d.Reload(ctx); err != nil {
					log.Error("reload refused, running configuration kept", "err", oneLine(err))
				}
			}
		}
	}()

	startConsole(ctx, d, log)

	if err := d.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "lbd: %v\n", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// startConsole serves the web console and API. A console that cannot start
// is logged as an ERROR but does not stop the director: balancing and
// failover matter more than the screens. Without a usable password it
// starts after the reload or edit that sets one (`lbd passwd`, then
// SIGHUP); when it cannot listen or load its TLS certificate and key, it is
// tried again with a bounded backoff, and at once after each reload or
// edit, so a freed port, a restored certificate or a file repaired by hand
// and reloaded brings it back without a restart.
func startConsole(ctx context.Context, d *director.Director, log *slog.Logger) {
	go superviseConsole(ctx, d, log, defaultConsoleRetry)
}

// consoleRetry bounds the wait between attempts to start the console: it
// starts at first and doubles up to most.
type consoleRetry struct{ first, most time.Duration }

var defaultConsoleRetry = consoleRetry{first: time.Second, most: 30 * time.Second}

// superviseConsole runs the console until ctx ends, restarting it when it
// cannot start or stops.
func superviseConsole(ctx context.Context, d *director.Director, log *slog.Logger, retry consoleRetry) {
	wait := retry.first
	for ctx.Err() == nil {
		// Subscribed before trying, so a reload that lands while this
		// attempt fails is not missed; dropped while the console runs, so
		// its buffer does not overflow.
		events, unsubscribe := d.Subscribe()
		var timer *time.Timer
		srv, err := webui.New(d, webui.Options{Logger: log, Version: version})
		if err != nil {
			// Only a new configuration can supply the password.
			log.Error("console not started; it starts after the reload that fixes this", "err", err)
		} else {
			unsubscribe()
			cfg, _ := d.Config()
			started := time.Now()
			err = srv.Serve(ctx, cfg.Global.Listen, cfg.Console.TLSCert, cfg.Console.TLSKey)
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				err = errors.New("console stopped")
			}
			if time.Since(started) > retry.most {
				wait = retry.first // it ran fine for a while: a new failure
			}
			log.Error("console down, retrying; the director keeps running", "listen", cfg.Global.Listen, "err", err, "retry_in", wait.String())
			timer = time.NewTimer(wait)
			wait = min(2*wait, retry.most)
			events, unsubscribe = d.Subscribe()
		}
		waitForConsoleRetry(ctx, events, timer)
		if timer != nil {
			timer.Stop()
		}
		unsubscribe()
	}
}

// waitForConsoleRetry returns when timer fires (nil: never), a reload or
// edit happens, or ctx ends.
func waitForConsoleRetry(ctx context.Context, events <-chan api.Event, timer *time.Timer) {
	var tick <-chan time.Time
	if timer != nil {
		tick = timer.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			return
		case ev, ok := <-events:
			if !ok || ev.Kind == "reload" || ev.Kind == "edit" {
				return
			}
		}
	}
}

// warnConfigMode logs a WARN when the configuration file, which holds the
// console's password and token hashes, can be read or written by group or
// others. lbd writes it 0600 itself; an older file or a copy keeps its mode.
func warnConfigMode(log *slog.Logger, path string) {
	if msg := config.CheckMode(path); msg != "" {
		log.Warn(msg)
	}
}

// defaultStateFile is per config file, so directors in several network
// namespaces of one host (a lab) keep separate records; under /run because
// the IPVS table it describes does not survive a reboot either.
func defaultStateFile(configPath string) string {
	abs, err := filepath.Abs(configPath)
	if err != nil {
		abs = configPath
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join("/run/lbd", "managed-"+hex.EncodeToString(sum[:6])+".json")
}

// checkConfig is -t: 1 when the file is invalid; 0 when it is valid, with
// a warning line on stderr for each host fact it does not fit (a missing
// interface, no IPVS), which another machine may well have.
func checkConfig(path string, host hostChecks, stdout, stderr io.Writer) int {
	cfg, err := config.Load(path)
	if err != nil {
		printConfigError(stderr, err)
		return 1
	}
	for _, w := range host.warnings(cfg) {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	fmt.Fprintln(stdout, "configuration OK")
	return 0
}

func printConfigError(w io.Writer, err error) {
	var probs config.Problems
	if errors.As(err, &probs) {
		for _, p := range probs {
			fmt.Fprintln(w, p.String())
		}
		return
	}
	fmt.Fprintf(w, "lbd: %v\n", err)
}

func oneLine(err error) string {
	var probs config.Problems
	if errors.As(err, &probs) {
		s := ""
		for i, p := range probs {
			if i > 0 {
				s += "; "
			}
			s += p.String()
		}
		return s
	}
	return err.Error()
}
