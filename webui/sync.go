package webui

import (
	"slices"
	"strconv"

	"lbd/api"
)

// syncView is what the Status and Redundancy screens draw of the kernel's
// connection sync: the director's api.Sync with the daemons in a fixed
// order and the consequences spelled out, so the templates only print.
type syncView struct {
	*api.Sync
	Daemons []syncDaemonView // master first, then backup, then anything else
	// Addr is the multicast group and port, "224.0.0.81:8848".
	Addr string
	// Stopped says a wanted daemon is not running (or none is reported):
	// connections are not copied in at least one direction.
	Stopped bool
	// Healthy says every daemon runs and this director is warm.
	Healthy bool
}

type syncDaemonView struct {
	api.SyncDaemon
	// Loss says what a stopped daemon costs, for the warning.
	Loss string
}

// newSyncView returns nil when sync is off, so templates can say so with
// {{with}}...{{else}}.
func newSyncView(s *api.Sync) *syncView {
	if s == nil {
		return nil
	}
	v := &syncView{Sync: s, Addr: api.HostPort(s.Group, s.Port)}
	for _, d := range s.Daemons {
		v.Daemons = append(v.Daemons, syncDaemonView{SyncDaemon: d, Loss: daemonLoss(d.Role)})
		if !d.Running {
			v.Stopped = true
		}
	}
	slices.SortStableFunc(v.Daemons, func(a, b syncDaemonView) int { return roleOrder(a.Role) - roleOrder(b.Role) })
	if len(v.Daemons) == 0 {
		v.Stopped = true // sync is on, yet nothing runs
	}
	v.Healthy = !v.Stopped && s.Warm
	return v
}

func roleOrder(role string) int {
	switch role {
	case "master":
		return 0
	case "backup":
		return 1
	default:
		return 2
	}
}

func daemonLoss(role string) string {
	switch role {
	case "master":
		return "the peer is not learning this director's connections; they would be cut if the peer took over"
	case "backup":
		return "this director is not learning the peer's connections; they would be cut if it took over"
	default:
		return "connections are not synchronized in this direction"
	}
}

// guardText explains the handover guard's state.
func guardText(g string) string {
	switch g {
	case "quiet":
		return "just became master: mid-flow TCP segments of connections not learned yet are dropped, not reset, until the old master's last sync messages arrive"
	case "hold":
		return "resigning: new connections wait until the peer has taken over"
	default:
		return ""
	}
}

// count prints a whole number with thousands separators: 1,234,567.
func count(n int) string {
	s := strconv.Itoa(n)
	neg := ""
	if n < 0 {
		neg, s = "-", s[1:]
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return neg + s
}
