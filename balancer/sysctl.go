package balancer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
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
	return setSysctls(w, Sysctls(forward4, forward6))
}

// SyncSysctls lists the kernel parameters for connection sync, with
// refresh, the period after which a connection is sent again, in whole
// seconds (rounded up, at least 1):
//
//   - sync_version=1: the message format that carries IPv6, firewall-mark
//     services and persistence data.
//   - sync_threshold="3 0": sync_period (the second number; there is no
//     sysctl of that name) 0. In ip_vs_sync_conn_needed (ip_vs_sync.c) a
//     TCP connection is considered only in ESTABLISHED and the closing
//     states, and a change into a closing state is sent at once. With
//     sync_period > 0 everything else is sent only when the packet count
//     modulo sync_period equals the threshold (packets 3, 53, 103 ... with
//     the default "3 50"), and that test comes before the state-change
//     one: the change to ESTABLISHED (with direct routing, the client's
//     second packet) is not sent by itself, so a connection whose client
//     has sent only its handshake is not on the peer. With sync_period 0
//     and sync_refresh_period > 0 the packet count plays no part: the
//     change to ESTABLISHED is sent on the packet that makes it, and after
//     that a connection is sent again on its first packet once
//     sync_refresh_period has passed since the last send (or half its
//     timeout, if shorter), so a quiet long-lived connection is refreshed
//     on the peer before it expires there. (With both 0 the ESTABLISHED
//     change would again wait for packet number sync_threshold: hence a
//     refresh of at least 1 s.) UDP has no states: a flow is sent on its
//     first packet, then by the refresh.
//   - sync_refresh_period: refresh, in seconds.
//   - sync_retries=1: each send is repeated once, sync_refresh_period/8
//     later, on the connection's next packet, in case the multicast
//     datagram was lost (sync has no acknowledgement).
//   - backup_only=0: a BACKUP daemon must never turn forwarding off, since
//     lbd runs both roles on both directors.
func SyncSysctls(refresh time.Duration) [][2]string {
	secs := max(int64((refresh+time.Second-1)/time.Second), 1)
	return [][2]string{
		{"net.ipv4.vs.sync_version", "1"},
		{"net.ipv4.vs.sync_threshold", "3 0"},
		{"net.ipv4.vs.sync_refresh_period", strconv.FormatInt(secs, 10)},
		{"net.ipv4.vs.sync_retries", "1"},
		{"net.ipv4.vs.backup_only", "0"},
	}
}

// SetSyncSysctls sets every parameter SyncSysctls lists, like SetSysctls.
// They are per network namespace, like the IPVS table.
func SetSyncSysctls(w SysctlWriter, refresh time.Duration) error {
	return setSysctls(w, SyncSysctls(refresh))
}

func setSysctls(w SysctlWriter, list [][2]string) error {
	var failed []string
	var errs []error
	for _, kv := range list {
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
