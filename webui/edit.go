package webui

import (
	"context"
	"errors"
	"fmt"

	"lbd/config"
)

// notFoundError names an unknown virtual or real server and the closest
// existing name.
type notFoundError struct {
	What       string // "virtual server" | "real server"
	Name       string
	In         string // the virtual server, for a real server
	Suggestion string
}

func (e *notFoundError) Error() string {
	msg := fmt.Sprintf("no %s %q", e.What, e.Name)
	if e.In != "" {
		msg += fmt.Sprintf(" in virtual server %q", e.In)
	}
	if e.Suggestion != "" {
		msg += fmt.Sprintf("; did you mean %q?", e.Suggestion)
	}
	return msg
}

// errFormInvalid stops an edit whose form could not even be read (a weight
// that is not a number); the form already carries the messages.
var errFormInvalid = errors.New("webui: form has errors")

func lookupVS(cfg *config.Config, name string) (int, error) {
	names := make([]string, 0, len(cfg.VirtualServers))
	for i := range cfg.VirtualServers {
		if cfg.VirtualServers[i].Name == name {
			return i, nil
		}
		names = append(names, cfg.VirtualServers[i].Name)
	}
	return -1, &notFoundError{What: "virtual server", Name: name, Suggestion: config.Suggest(name, names)}
}

func lookupRS(vs *config.VirtualServer, name string) (int, error) {
	names := make([]string, 0, len(vs.RealServers))
	for j := range vs.RealServers {
		if vs.RealServers[j].Name == name {
			return j, nil
		}
		names = append(names, vs.RealServers[j].Name)
	}
	return -1, &notFoundError{What: "real server", Name: name, In: vs.Name, Suggestion: config.Suggest(name, names)}
}

// lookup finds a virtual server and, when rsName is set, one of its real
// servers.
func lookup(cfg *config.Config, vsName, rsName string) (i, j int, err error) {
	i, err = lookupVS(cfg, vsName)
	if err != nil || rsName == "" {
		return i, -1, err
	}
	j, err = lookupRS(&cfg.VirtualServers[i], rsName)
	return i, j, err
}

// edit is the console's only way to change anything: fn changes a copy of
// the running configuration and the director applies it. base is the
// version the operator's screen showed; Apply refuses when it is no longer
// the running one. With base "" (API calls that name one object and carry
// no version) the change is made against whatever is running, retried if
// another edit lands in between.
func (s *Server) edit(ctx context.Context, base, src string, fn func(*config.Config) error) (string, error) {
	for attempt := 0; ; attempt++ {
		cfg, running := s.d.Config()
		if err := fn(cfg); err != nil {
			return "", err
		}
		if err := s.checkConsoleTLS(cfg); err != nil {
			return "", err
		}
		b := base
		if b == "" {
			b = running
		}
		v, err := s.d.Apply(ctx, cfg, b, src)
		if base == "" && errors.Is(err, config.ErrStale) && !changedOnDisk(err) && attempt < 3 {
			continue
		}
		return v, err
	}
}

// checkConsoleTLS refuses a new configuration whose console TLS files would
// not load, when they are not the running ones: after the next restart the
// console would not start, and it is the way to repair the config.
func (s *Server) checkConsoleTLS(cfg *config.Config) error {
	running, _ := s.d.Config()
	cert, key := cfg.Console.TLSCert, cfg.Console.TLSKey
	if cert == running.Console.TLSCert && key == running.Console.TLSKey {
		return nil
	}
	if (cert == "") != (key == "") {
		return nil // config validation names the missing one
	}
	if err := CheckTLS(cert, key); err != nil {
		return config.Problems{{File: running.Path, Key: "console.tls_cert", Message: fmt.Sprintf(
			"console.tls_cert and console.tls_key do not load as a certificate and its key (%v); the console would not start with them", errors.Unwrap(err))}}
	}
	return nil
}

// changedOnDisk reports whether err says the config file holds changes
// that were never loaded (a hand edit, lbd token or passwd): unlike a
// concurrent edit, retrying cannot help; the operator reloads first.
func changedOnDisk(err error) bool {
	var m interface{ ChangedOnDisk() }
	return errors.As(err, &m)
}
