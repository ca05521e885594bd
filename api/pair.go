package api

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Routes of the pair (both directors on one screen):
//
//	GET  /pair                           Pair (404 when no [peer] is configured)
//	POST /pair/push                      -> PushResult: save this director's shared configuration on the peer
//	POST /config/shared                  body: SharedConfig -> Status | Error: the peer's side of a save on both

// Pair is both directors of a pair side by side, as this director sees
// them.
type Pair struct {
	Local PairNode `json:"local"`
	Peer  PairNode `json:"peer"`
	// DriftKnown is false while the peer's configuration could not be
	// read: Drift is then empty because nothing could be compared.
	DriftKnown bool `json:"drift_known"`
	// DriftError says why the configurations could not be compared while
	// the peer answers (a peer running a newer lbd with settings this one
	// does not know).
	DriftError string `json:"drift_error,omitempty"`
	// Drift lists the shared settings that differ (per-node ones such as
	// node name, priority and interface are left out).
	Drift []DriftKey `json:"drift"`
	// HealthDisagreements are real servers one director sees up and the
	// other down.
	HealthDisagreements []HealthDisagreement `json:"health_disagreements"`
	// NotApplied is the last save on both that did not reach the peer,
	// kept while the two configurations may still differ.
	NotApplied *PushResult `json:"not_applied,omitempty"`
	// LastPush is the last save on both, whatever its result.
	LastPush *PushResult `json:"last_push,omitempty"`
}

// PairNode is one director of the pair.
type PairNode struct {
	Name string `json:"name"`
	URL  string `json:"url,omitempty"` // the peer's; "" for this director
	// Reachable: the last read of the peer succeeded (always true for
	// this director). Error and ErrorSince say why not and since when.
	Reachable  bool      `json:"reachable"`
	Error      string    `json:"error,omitempty"`
	ErrorSince time.Time `json:"error_since,omitzero"`
	// Updated is when the data below was read; Stale is set when it is
	// too old to be shown as live (the peer stopped answering).
	Updated time.Time `json:"updated,omitzero"`
	Stale   bool      `json:"stale,omitempty"`
	// HasData: the fields below hold what the director last reported.
	HasData bool `json:"has_data"`
	// Role: master | backup | mixed | fault | init | active (BGP) |
	// standalone (neither VRRP nor BGP).
	Role          string         `json:"role,omitempty"`
	VRRP          []PairInstance `json:"vrrp,omitempty"`
	BGP           string         `json:"bgp,omitempty"` // "2/2 sessions established", "maintenance"...
	ConfigVersion string         `json:"config_version,omitempty"`
	// SharedVersion hashes the shared settings only: equal on both
	// directors when their configurations agree.
	SharedVersion string `json:"shared_version,omitempty"`
	IPVSInSync    bool   `json:"ipvs_in_sync"`
	IPVS          string `json:"ipvs,omitempty"` // "in sync", "out of sync: ...", "not verified yet", "no IPVS"
	Sync          string `json:"sync,omitempty"` // connection sync: "off", "master+backup running, warm", ...
}

// PairInstance is one VRRP instance's state on one director.
type PairInstance struct {
	Name     string `json:"name,omitempty"`
	VRID     int    `json:"vrid"`
	State    string `json:"state"`
	Priority int    `json:"priority"` // effective
}

// DriftKey is one shared setting that differs between the two directors.
type DriftKey struct {
	Key   string `json:"key"` // virtual_server["web"].real_server["rs1"].weight
	Local string `json:"local"`
	Peer  string `json:"peer"`
}

// HealthDisagreement is a real server whose health the two directors see
// differently.
type HealthDisagreement struct {
	Service    string `json:"service"`
	RealServer string `json:"real_server"`
	Local      string `json:"local"`
	Peer       string `json:"peer"`
}

// PushResult is the outcome of saving the shared configuration on the
// peer.
type PushResult struct {
	Time    time.Time `json:"time"`
	Local   string    `json:"local"` // this director's name
	Peer    string    `json:"peer"`  // the peer's name
	Applied bool      `json:"applied"`
	Error   string    `json:"error,omitempty"`
	// PeerVersion is the peer's configuration version after the save.
	PeerVersion string `json:"peer_version,omitempty"`
}

// Text is the result for a person: "saved on lvs2" or "NOT applied on
// lvs2: reason".
func (r PushResult) Text() string {
	if r.Applied {
		return "saved on " + r.Peer
	}
	return "NOT applied on " + r.Peer + ": " + r.Error
}

// SharedConfig is what a director sends its peer in a save on both: its
// whole configuration (console credentials and its [peer] left out); the
// receiver keeps its own per-node settings.
type SharedConfig struct {
	From string `json:"from"` // the sending director's name
	TOML string `json:"toml"`
}

// SummarizeNode fills node's state fields from a director's status.
func SummarizeNode(node *PairNode, st *Status, now time.Time) {
	node.HasData = true
	if node.Name == "" {
		node.Name = st.Node
	}
	node.ConfigVersion = st.ConfigVersion
	node.VRRP = nil
	states := map[string]bool{}
	for _, v := range st.VRRPInstances {
		node.VRRP = append(node.VRRP, PairInstance{Name: v.Name, VRID: v.VRID, State: v.State, Priority: v.EffectivePriority})
		states[v.State] = true
	}
	if len(node.VRRP) == 0 && st.VRRP != nil {
		v := st.VRRP
		node.VRRP = []PairInstance{{Name: v.Name, VRID: v.VRID, State: v.State, Priority: v.EffectivePriority}}
		states[v.State] = true
	}
	switch {
	case len(states) == 1:
		for s := range states {
			node.Role = s
		}
	case len(states) > 1:
		node.Role = "mixed"
	case st.BGP != nil:
		node.Role = "active"
	default:
		node.Role = "standalone"
	}
	node.BGP = ""
	if b := st.BGP; b != nil {
		up := 0
		for _, s := range b.Sessions {
			if s.State == "established" {
				up++
			}
		}
		node.BGP = fmt.Sprintf("%d/%d sessions established", up, len(b.Sessions))
		if b.Maintenance {
			node.BGP += ", maintenance (VIPs withdrawn)"
		}
		if b.Error != "" {
			node.BGP = "speaker not running: " + b.Error
		}
	}
	switch {
	case st.IPVSUnavailable:
		node.IPVSInSync, node.IPVS = false, "no IPVS in the kernel"
	case st.ReconcileErr != "":
		node.IPVSInSync, node.IPVS = false, "out of sync: "+st.ReconcileErr
	case st.LastReconcile.IsZero():
		node.IPVSInSync, node.IPVS = false, "not verified yet"
	default:
		node.IPVSInSync, node.IPVS = true, "in sync, verified "+Ago(st.LastReconcile, now)
	}
	node.Sync = SyncSummary(st.Sync)
}

// SyncSummary says in a few words what the connection sync does.
func SyncSummary(s *Sync) string {
	if s == nil {
		return "off"
	}
	var parts []string
	for _, d := range s.Daemons {
		switch {
		case d.Error != "":
			parts = append(parts, d.Role+" daemon failed: "+d.Error)
		case d.Running:
			parts = append(parts, d.Role+" running")
		default:
			parts = append(parts, d.Role+" not running")
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "no daemon")
	}
	if s.Warm {
		parts = append(parts, "warm")
	} else {
		parts = append(parts, "not warm")
	}
	return strings.Join(parts, ", ")
}

// HealthDisagreements lists the real servers that both directors have
// and see differently (up on one, down on the other), in the local order.
// Health not known yet on either side (unknown, unchecked) is no
// disagreement.
func HealthDisagreements(local, peer *Status) []HealthDisagreement {
	known := func(h string) bool { return h == "up" || h == "down" }
	var out []HealthDisagreement
	for _, ls := range local.Services {
		i := slices.IndexFunc(peer.Services, func(p Service) bool { return p.Name == ls.Name })
		if i < 0 {
			continue
		}
		for _, lr := range ls.RealServers {
			j := slices.IndexFunc(peer.Services[i].RealServers, func(p RealServer) bool { return p.Name == lr.Name })
			if j < 0 {
				continue
			}
			pr := peer.Services[i].RealServers[j]
			if known(lr.Health) && known(pr.Health) && lr.Health != pr.Health {
				out = append(out, HealthDisagreement{Service: ls.Name, RealServer: lr.Name, Local: lr.Health, Peer: pr.Health})
			}
		}
	}
	return out
}
