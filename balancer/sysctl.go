package balancer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// SysctlWriter sets kernel parameters by dotted name.
type SysctlWriter interface {
	WriteSysctl(name, value string) error
}

// ProcSys writes sysctls as files under Root ("" means /proc/sys); tests
// point Root at a temporary directory.
type ProcSys struct {
	Root string
}

// WriteSysctl implements SysctlWriter.
func (p ProcSys) WriteSysctl(name, value string) error {
	root := p.Root
	if root == "" {
		root = "/proc/sys"
	}
	if name == "" || strings.Contains(name, "/") || strings.Contains(name, "..") {
		return fmt.Errorf("bad sysctl name %q", name)
	}
	path := filepath.Join(root, strings.ReplaceAll(name, ".", "/"))
	// O_TRUNC without O_CREATE: a missing file means a missing feature,
	// never something to invent.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(value + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Sysctls lists the kernel parameters lbd needs for the given forwarding:
// expire_nodest_conn drops connections to removed real servers at once
// (clients reconnect to a live one instead of hanging), and
// expire_quiescent_template lets persistent clients of a weight-0 server
// move on. NAT needs forwarding on in the family it is used.
func Sysctls(forward4, forward6 bool) [][2]string {
	s := [][2]string{
		{"net.ipv4.vs.expire_nodest_conn", "1"},
		{"net.ipv4.vs.expire_quiescent_template", "1"},
	}
	if forward4 {
		s = append(s, [2]string{"net.ipv4.ip_forward", "1"})
	}
	if forward6 {
		s = append(s, [2]string{"net.ipv6.conf.all.forwarding", "1"})
	}
	return s
}

// SetSysctls sets every parameter Sysctls lists, carrying on past failures,
// and returns one error naming each that could not be set.
func SetSysctls(w SysctlWriter, forward4, forward6 bool) error {
	var failed []string
	var errs []error
	for _, kv := range Sysctls(forward4, forward6) {
		if err := w.WriteSysctl(kv[0], kv[1]); err != nil {
			failed = append(failed, kv[0])
			errs = append(errs, fmt.Errorf("%s=%s: %w", kv[0], kv[1], err))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("balancer: could not set sysctls %s: %w", strings.Join(failed, ", "), errors.Join(errs...))
}

// NeedsForwarding reports whether the table uses NAT for IPv4 or IPv6 real
// servers, which needs IP forwarding in that family.
func (t Table) NeedsForwarding() (v4, v6 bool) {
	for _, vs := range t.Services {
		for _, d := range vs.Destinations {
			if d.Forwarding != NAT {
				continue
			}
			if familyOf(d.Addr) == IPv6 {
				v6 = true
			} else {
				v4 = true
			}
		}
	}
	return v4, v6
}
