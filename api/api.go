// Package api holds the JSON shapes of lbd's HTTP API (/api/v1), shared by
// the director (which produces them), the console (which serves them) and
// lbctl (which reads them), and the display helpers (display.go) both front
// ends print with. It imports nothing of ours.
//
// Routes (all under /api/v1, bearer-token or session auth):
//
//	GET  /status                         Status
//	GET  /config                         ConfigDoc (the running config + version)
//	PUT  /config                         ConfigDoc -> Status | Error (409 on stale version, 422 invalid)
//	POST /reload                         -> Status | Error (422 with Problems)
//	POST /check                          body: TOML text -> CheckResult
//	GET  /services                       []Service
//	GET  /services/{vs}                  Service
//	GET  /services/{vs}/real/{rs}        RealServer
//	POST /services/{vs}/real/{rs}/drain  -> RealServer
//	POST /services/{vs}/real/{rs}/enable -> RealServer
//	POST /services/{vs}/real/{rs}/weight body: WeightRequest -> RealServer
//	POST /failover                       body: FailoverRequest -> VRRP
//	POST /bgp/maintenance                body: MaintenanceRequest -> BGP
//	GET  /events?since=SEQ               []Event (oldest first)
//	GET  /events/stream                  text/event-stream of Event
//	GET  /pair                           Pair: both directors (404 without [peer]; pair.go)
//	POST /pair/push                      -> PushResult: save the shared configuration on the peer
//	POST /config/shared                  body: SharedConfig -> Status: a peer's save on both (admin token only)
package api

import "time"

// Prefix is the API's path prefix.
const Prefix = "/api/v1"

// Status is the whole picture of one director.
type Status struct {
	Node          string    `json:"node"`
	Version       string    `json:"version"`        // lbd build version
	ConfigVersion string    `json:"config_version"` // hash of the running config
	ConfigPath    string    `json:"config_path"`
	Started       time.Time `json:"started"`
	VRRP          *VRRP     `json:"vrrp,omitempty"` // nil when no [vrrp]; with [[vrrp_instance]] the first instance
	// VRRPInstances lists every VRRP instance, the lone [vrrp] included.
	VRRPInstances []VRRP    `json:"vrrp_instances,omitempty"`
	Sync          *Sync     `json:"sync,omitempty"` // nil when connection sync is off
	BGP           *BGP      `json:"bgp,omitempty"`  // nil when no [bgp]
	Services      []Service `json:"services"`
	// LastReconcile is the last time the IPVS table was verified.
	LastReconcile time.Time `json:"last_reconcile"`
	ReconcileErr  string    `json:"reconcile_error,omitempty"`
	// IPVSUnavailable: the kernel has no IPVS, so this director runs a
	// configuration without virtual servers, VRRP only (see IPVSUnavailableText).
	IPVSUnavailable bool `json:"ipvs_unavailable,omitempty"`
	// Counters: reconcile_writes, reconcile_errors, reloads, reload_failures, ...
	Counters map[string]uint64 `json:"counters"`
	// Alerts are the [[alert]] targets' delivery counters.
	Alerts []AlertTarget `json:"alerts,omitempty"`
}

// AlertTarget is one [[alert]] target's delivery record.
type AlertTarget struct {
	Name       string    `json:"name"`
	Type       string    `json:"type"`       // webhook | mail | program
	Sent       int64     `json:"sent"`       // events delivered
	Deliveries int64     `json:"deliveries"` // successful deliveries (a digest is one)
	Failed     int64     `json:"failed"`     // events not delivered after every retry
	Dropped    int64     `json:"dropped"`    // events lost to a full queue
	Deduped    int64     `json:"deduped"`    // repeats not sent again
	Suppressed int64     `json:"suppressed"` // left out of a full digest
	LastError  string    `json:"last_error,omitempty"`
	LastSent   time.Time `json:"last_sent,omitzero"`
}

// VRRP is this director's redundancy state.
type VRRP struct {
	// Name is the [[vrrp_instance]] name ("" for an unnamed [vrrp]);
	// SyncGroup its [[vrrp_sync_group]], if any.
	Name              string         `json:"name,omitempty"`
	SyncGroup         string         `json:"sync_group,omitempty"`
	State             string         `json:"state"` // init | backup | master | fault
	VRID              int            `json:"vrid"`
	Version           int            `json:"version"`
	Interface         string         `json:"interface"`
	Priority          int            `json:"priority"`           // configured
	EffectivePriority int            `json:"effective_priority"` // after tracking penalties
	MasterAddr        string         `json:"master_addr,omitempty"`
	AdvertInterval    time.Duration  `json:"advert_interval_ns"`
	MasterAdvertIntvl time.Duration  `json:"master_advert_interval_ns"`
	VIPs              []string       `json:"vips"`
	LastTransition    time.Time      `json:"last_transition"`
	Reason            string         `json:"reason"`
	Counters          map[string]int `json:"counters"` // adverts sent/received, drops by reason, transitions
}

// Sync is the state of the kernel's IPVS connection synchronization, which
// copies the connection table to the peer director so established
// connections live through a failover.
type Sync struct {
	Interface string `json:"interface"`
	SyncID    int    `json:"sync_id"`
	Group     string `json:"group"` // multicast group
	Port      int    `json:"port"`
	// Daemons are the master (sends this director's connections) and backup
	// (learns the peer's) daemons: wanted and what the kernel runs.
	Daemons []SyncDaemon `json:"daemons"`
	// Warm says this director has learned the peer's connection table: its
	// backup daemon has run, with a master heard, for at least WarmUp. A
	// director that is not warm does not preempt.
	Warm       bool          `json:"warm"`
	WarmReason string        `json:"warm_reason"`
	WarmUp     time.Duration `json:"warm_up_ns"`
	// Connections in the kernel table by origin: learned from the peer's
	// sync messages, and scheduled by this director.
	SyncedConns int `json:"synced_conns"`
	LocalConns  int `json:"local_conns"`
	// Guard says what the handover guard does now: "" (nothing), "quiet"
	// (just became master: unknown mid-flow TCP segments are dropped, not
	// reset, until the old master's last sync messages arrive) or "hold"
	// (resigning: new connections wait until the peer has taken over).
	Guard string `json:"guard,omitempty"`
}

// BGP is this director's announcement of its VIPs to the routers.
type BGP struct {
	LocalASN uint32 `json:"local_asn"`
	// Maintenance: every VIP withdrawn on the operator's request
	// (lbctl maintenance on) until turned off.
	Maintenance bool         `json:"maintenance"`
	Stopping    bool         `json:"stopping,omitempty"`
	Error       string       `json:"error,omitempty"` // why the speaker is not running
	Sessions    []BGPSession `json:"sessions"`
	VIPs        []BGPVIP     `json:"vips"`
}

// BGPSession is one router's session.
type BGPSession struct {
	Neighbor string `json:"neighbor"`
	ASN      uint32 `json:"asn"`
	State    string `json:"state"` // idle | connect | active | opensent | openconfirm | established
	// Since is when the session last came up (established) or went down.
	Since        time.Time `json:"since"`
	PrefixesSent int       `json:"prefixes_sent"`
	LastError    string    `json:"last_error,omitempty"`
	BFD          string    `json:"bfd,omitempty"` // BFD session state when BFD is on
}

// BGPVIP is one VIP: announced, or withdrawn and why ("below quorum:
// web", "maintenance", "stopping", "no active virtual service").
type BGPVIP struct {
	VIP       string `json:"vip"`
	Announced bool   `json:"announced"`
	Reason    string `json:"reason,omitempty"`
}

// MaintenanceRequest turns this director's BGP maintenance on or off.
type MaintenanceRequest struct {
	On bool `json:"on"`
}

// SyncDaemon is one role of the kernel's sync daemon.
type SyncDaemon struct {
	Role    string `json:"role"` // master | backup
	Running bool   `json:"running"`
	// Since is when lbd last saw it start running (zero when not running).
	Since time.Time `json:"since"`
	Error string    `json:"error,omitempty"` // why it could not be started
}

// Service is one virtual service with its real servers.
type Service struct {
	Name       string `json:"name"`
	VIP        string `json:"vip,omitempty"`
	Port       int    `json:"port,omitempty"`
	Protocol   string `json:"protocol,omitempty"`
	Fwmark     uint32 `json:"fwmark,omitempty"`
	Scheduler  string `json:"scheduler"`
	Forwarding string `json:"forwarding"`
	Active     bool   `json:"active"`
	// Healthy is false when the up weight is below Quorum.
	Healthy     bool         `json:"healthy"`
	UpWeight    int          `json:"up_weight"`
	Quorum      int          `json:"quorum"`
	SorryActive bool         `json:"sorry_active"`
	Stats       Stats        `json:"stats"`
	RealServers []RealServer `json:"real_servers"`
}

// RealServer is one destination as lbd sees it.
type RealServer struct {
	Name             string `json:"name"`
	Address          string `json:"address"`
	Port             int    `json:"port"`
	Forwarding       string `json:"forwarding"`
	ConfiguredWeight int    `json:"configured_weight"`
	Weight           int    `json:"weight"` // what IPVS has now
	Active           bool   `json:"active"`
	Drained          bool   `json:"drained"`
	// Health: up | down | unknown | unchecked
	Health       string    `json:"health"`
	HealthReason string    `json:"health_reason,omitempty"`
	LastCheck    time.Time `json:"last_check"`
	InKernel     bool      `json:"in_kernel"`
	ActiveConns  int       `json:"active_conns"`
	InactConns   int       `json:"inactive_conns"`
	Stats        Stats     `json:"stats"`
}

// Stats are IPVS counters and rates (per second, kernel-estimated).
type Stats struct {
	Conns    uint64 `json:"conns"`
	InPkts   uint64 `json:"in_pkts"`
	OutPkts  uint64 `json:"out_pkts"`
	InBytes  uint64 `json:"in_bytes"`
	OutBytes uint64 `json:"out_bytes"`
	CPS      uint64 `json:"cps"`
	InPPS    uint64 `json:"in_pps"`
	OutPPS   uint64 `json:"out_pps"`
	InBPS    uint64 `json:"in_bps"`
	OutBPS   uint64 `json:"out_bps"`
}

// Event is one transition in the director's event log.
type Event struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`    // vrrp | health | edit | reload | drain | reconcile | start
	Subject string    `json:"subject"` // e.g. "web/rs1" or "vrid 51"
	Message string    `json:"message"`
}

// ConfigDoc carries the running configuration as TOML with its version.
type ConfigDoc struct {
	Version string `json:"version"`
	TOML    string `json:"toml"`
}

// Problem is one validation error.
type Problem struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Message string `json:"message"`
}

// CheckResult is the answer to an offline config check.
type CheckResult struct {
	OK       bool      `json:"ok"`
	Problems []Problem `json:"problems,omitempty"`
}

// WeightRequest sets a real server's configured weight.
type WeightRequest struct {
	Weight int `json:"weight"`
}

// FailoverRequest asks the master to resign and hold back from preempting.
type FailoverRequest struct {
	Holdoff time.Duration `json:"holdoff_ns"`
	// Instance names the VRRP instance to resign; required with several.
	Instance string `json:"instance,omitempty"`
}

// Error is every non-2xx answer's body.
type Error struct {
	Error    string    `json:"error"`
	Problems []Problem `json:"problems,omitempty"`
	// Suggestion names the closest existing name for an unknown VS/RS.
	Suggestion string `json:"suggestion,omitempty"`
}

// History is one service's or real server's recent figures, oldest first,
// one point per HistoryStep, and the transitions in that window.
type History struct {
	Step   time.Duration  `json:"step_ns"`
	Points []HistoryPoint `json:"points"`
	// Marks are the health, quorum and VRRP events of the window that
	// concern the subject (and every VRRP transition).
	Marks []Event `json:"marks"`
}

// HistoryPoint is one sample.
type HistoryPoint struct {
	Time        time.Time `json:"time"`
	CPS         float64   `json:"cps"`          // new connections per second
	ActiveConns float64   `json:"active_conns"` // established connections
	BPS         float64   `json:"bps"`          // bytes per second, both ways
}
