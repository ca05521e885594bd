// Command lbd is the load-balancer director daemon: it programs kernel IPVS
// from a TOML file, health-checks real servers, runs VRRP with a backup
// director and serves the web console.
//
//	lbd -config /etc/lbd/lbd.toml      run in the foreground
//	lbd -t -config FILE                check a configuration and exit
//	lbd passwd -config FILE            set the console password
//	lbd token -config FILE             create an API token for lbctl
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
	check := fs.Bool("t", false, "check the configuration file and exit (0 = OK, 1 = errors)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	stateFile := fs.String("state", "", "`file` recording the IPVS services lbd manages (default /run/lbd/managed-<hash of the config path>.json)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: lbd [-config FILE] [-t] [-version] [-log-level L]\n       lbd passwd -config FILE\n       lbd token -config FILE [-name NAME]\n\nflags:\n")
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
		return checkConfig(*configPath, stdout, stderr)
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

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	if *stateFile == "" {
		*stateFile = defaultStateFile(*configPath)
	}
	d, err := director.New(director.Options{Config: cfg, Logger: log, Version: version, StateFile: *stateFile, HoldVIPs: true})
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
// (no password set yet, port taken) is logged loudly but does not stop the
// director: balancing and failover matter more than the screens. It is
// tried again after each reload, so `lbd passwd` followed by a reload
// brings it up.
func startConsole(ctx context.Context, d *director.Director, log *slog.Logger) {
	events, cancel := d.Subscribe()
	go func() {
		defer cancel()
		for {
			if serveConsole(ctx, d, log) {
				return
			}
			for retry := false; !retry; {
				select {
				case <-ctx.Done():
					return
				case ev := <-events:
					retry = ev.Kind == "reload" || ev.Kind == "edit"
				}
			}
		}
	}()
}

// serveConsole starts the console; false means it could not start.
func serveConsole(ctx context.Context, d *director.Director, log *slog.Logger) bool {
	srv, err := webui.New(d, webui.Options{Logger: log, Version: version})
	if err != nil {
		log.Error("console not started", "err", err)
		return false
	}
	cfg, _ := d.Config()
	go func() {
		err := srv.Serve(ctx, cfg.Global.Listen, cfg.Console.TLSCert, cfg.Console.TLSKey)
		if err != nil && ctx.Err() == nil {
			log.Error("console stopped", "listen", cfg.Global.Listen, "err", err)
		}
	}()
	return true
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

func checkConfig(path string, stdout, stderr io.Writer) int {
	if _, err := config.Load(path); err != nil {
		printConfigError(stderr, err)
		return 1
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
