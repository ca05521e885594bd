package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"lbd/api"
)

// fakeLBD serves the documented /api/v1 routes from in-memory state, the
// way lbd's console does, so lbctl can be tested without a director.
type fakeLBD struct {
	t     *testing.T
	srv   *httptest.Server
	token string // required bearer token; "" = no auth

	mu       sync.Mutex
	status   api.Status
	events   []api.Event
	subs     []chan api.Event
	requests []string // "METHOD path" in order
	// reloadProblems makes POST /reload answer 422 with them.
	reloadProblems []api.Problem
	// drainStep is subtracted from a drained real server's active
	// connections on every GET of it (the connections finishing).
	drainStep int
	// enableAfterGets re-enables a drained server after this many GETs
	// (someone else undid the drain).
	enableAfterGets  int
	gets             int
	failoverHoldoff  time.Duration
	failoverInstance string
	noStream         bool          // GET /events/stream is 404, as on an old lbd
	noReplay         bool          // the stream ignores ?since=
	delay            time.Duration // answer every request this late
}

func newFake(t *testing.T) *fakeLBD {
	t.Helper()
	f := &fakeLBD{t: t, status: sampleStatus()}
	mux := http.NewServeMux()
	p := api.Prefix
	mux.HandleFunc("GET "+p+"/status", f.handleStatus)
	mux.HandleFunc("GET "+p+"/services", f.handleServices)
	mux.HandleFunc("GET "+p+"/services/{vs}", f.handleService)
	mux.HandleFunc("GET "+p+"/services/{vs}/real/{rs}", f.handleReal)
	mux.HandleFunc("POST "+p+"/services/{vs}/real/{rs}/{action}", f.handleRealAction)
	mux.HandleFunc("POST "+p+"/reload", f.handleReload)
	mux.HandleFunc("POST "+p+"/failover", f.handleFailover)
	mux.HandleFunc("GET "+p+"/events", f.handleEvents)
	mux.HandleFunc("GET "+p+"/events/stream", f.handleStream)
	f.srv = httptest.NewServer(f.auth(mux))
	t.Cleanup(f.close)
	return f
}

func (f *fakeLBD) close() {
	f.mu.Lock()
	for _, c := range f.subs {
		close(c)
	}
	f.subs = nil
	f.mu.Unlock()
	f.srv.CloseClientConnections()
	f.srv.Close()
}

func (f *fakeLBD) URL() string { return f.srv.URL }

func sampleStatus() api.Status {
	started := time.Now().Add(-3*time.Hour - 12*time.Minute)
	rs := func(name, addr string, w int, drained bool, health string, act int) api.RealServer {
		weight := w
		if drained || health != "up" {
			weight = 0
		}
		return api.RealServer{
			Name: name, Address: addr, Port: 80, Forwarding: "dr",
			ConfiguredWeight: w, Weight: weight, Active: true, Drained: drained,
			Health: health, InKernel: true, ActiveConns: act, InactConns: 2,
			LastCheck: time.Now().Add(-time.Second),
			Stats:     api.Stats{Conns: 1000, CPS: 5, InBPS: 1234, OutBPS: 56789},
		}
	}
	down := rs("rs3", "10.0.0.3", 1, false, "down", 0)
	down.HealthReason = "connection refused"
	return api.Status{
		Node: "lb1", Version: "v1.2.3", ConfigVersion: "3f2a9c1d5e6f7a8b", ConfigPath: "/etc/lbd/lbd.toml",
		Started: started, LastReconcile: time.Now().Add(-2 * time.Second),
		VRRP: &api.VRRP{State: "master", VRID: 51, Version: 3, Interface: "eth0", Priority: 100,
			EffectivePriority: 100, VIPs: []string{"192.0.2.10"}, LastTransition: started.Add(time.Minute),
			Reason: "higher priority", AdvertInterval: time.Second},
		Sync: &api.Sync{Interface: "eth1", SyncID: 51, Group: "224.0.0.81", Port: 8848,
			Daemons: []api.SyncDaemon{
				{Role: "master", Running: true, Since: started.Add(time.Minute)},
				{Role: "backup", Running: true, Since: started.Add(time.Minute)},
			},
			Warm: true, WarmReason: "backup daemon running for 3h11m of 15s", WarmUp: 15 * time.Second,
			SyncedConns: 1234, LocalConns: 56},
		Services: []api.Service{
			{
				Name: "web", VIP: "192.0.2.10", Port: 80, Protocol: "tcp", Scheduler: "wlc", Forwarding: "dr",
				Active: true, Healthy: true, UpWeight: 3, Quorum: 1,
				Stats: api.Stats{CPS: 12, InBPS: 1200, OutBPS: 3_400_000},
				RealServers: []api.RealServer{
					rs("rs1", "10.0.0.1", 2, false, "up", 3),
					rs("rs2", "10.0.0.2", 1, true, "up", 1),
					down,
				},
			},
			{
				Name: "dns6", VIP: "2001:db8::53", Port: 53, Protocol: "udp", Scheduler: "rr", Forwarding: "dr",
				Active: true, Healthy: false, UpWeight: 0, Quorum: 1,
				RealServers: []api.RealServer{},
			},
		},
		Counters: map[string]uint64{"reloads": 2},
	}
}

func (f *fakeLBD) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
		delay := f.delay
		f.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
			writeJSONStatus(w, http.StatusUnauthorized, api.Error{Error: "authentication required"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSONStatus(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeLBD) handleStatus(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	writeJSONStatus(w, 200, f.status)
}

func (f *fakeLBD) handleServices(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	writeJSONStatus(w, 200, f.status.Services)
}

// lookup finds vs (and rs when not "") or writes the 404 lbd writes.
// Callers hold f.mu.
func (f *fakeLBD) lookup(w http.ResponseWriter, vs, rs string) (*api.Service, *api.RealServer) {
	var names []string
	for i := range f.status.Services {
		s := &f.status.Services[i]
		names = append(names, s.Name)
		if s.Name != vs {
			continue
		}
		if rs == "" {
			return s, nil
		}
		var rnames []string
		for j := range s.RealServers {
			if s.RealServers[j].Name == rs {
				return s, &s.RealServers[j]
			}
			rnames = append(rnames, s.RealServers[j].Name)
		}
		writeJSONStatus(w, 404, api.Error{Error: fmt.Sprintf("no real server %q in %q", rs, vs), Suggestion: closest(rs, rnames)})
		return nil, nil
	}
	writeJSONStatus(w, 404, api.Error{Error: fmt.Sprintf("no virtual server %q", vs), Suggestion: closest(vs, names)})
	return nil, nil
}

func (f *fakeLBD) handleService(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, _ := f.lookup(w, r.PathValue("vs"), ""); s != nil {
		writeJSONStatus(w, 200, s)
	}
}

func (f *fakeLBD) handleReal(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, rs := f.lookup(w, r.PathValue("vs"), r.PathValue("rs"))
	if rs == nil {
		return
	}
	f.gets++
	if rs.Drained {
		rs.ActiveConns = max(0, rs.ActiveConns-f.drainStep)
		if f.enableAfterGets > 0 && f.gets >= f.enableAfterGets {
			rs.Drained = false
			rs.Weight = rs.ConfiguredWeight
		}
	}
	writeJSONStatus(w, 200, rs)
}

func (f *fakeLBD) handleRealAction(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	vs, rsName := r.PathValue("vs"), r.PathValue("rs")
	_, rs := f.lookup(w, vs, rsName)
	if rs == nil {
		return
	}
	switch r.PathValue("action") {
	case "drain":
		rs.Drained, rs.Weight = true, 0
	case "enable":
		rs.Drained, rs.Weight = false, rs.ConfiguredWeight
	case "weight":
		var req api.WeightRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeJSONStatus(w, 400, api.Error{Error: "bad body: " + err.Error()})
			return
		}
		rs.ConfiguredWeight = req.Weight
		if !rs.Drained {
			rs.Weight = req.Weight
		}
	default:
		writeJSONStatus(w, 404, api.Error{Error: "no such action"})
		return
	}
	f.emit(api.Event{Kind: "drain", Subject: vs + "/" + rsName, Message: r.PathValue("action")})
	writeJSONStatus(w, 200, rs)
}

func (f *fakeLBD) handleReload(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reloadProblems) > 0 {
		writeJSONStatus(w, 422, api.Error{Error: "invalid configuration", Problems: f.reloadProblems})
		return
	}
	f.status.Counters["reloads"]++
	writeJSONStatus(w, 200, f.status)
}

func (f *fakeLBD) handleFailover(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var req api.FailoverRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSONStatus(w, 400, api.Error{Error: "bad body: " + err.Error()})
		return
	}
	f.failoverInstance = req.Instance
	if req.Instance != "" {
		for i := range f.status.VRRPInstances {
			if v := &f.status.VRRPInstances[i]; v.Name == req.Instance {
				f.failoverHoldoff = req.Holdoff
				v.State = "backup"
				writeJSONStatus(w, 200, v)
				return
			}
		}
		writeJSONStatus(w, 409, api.Error{Error: "no VRRP instance " + req.Instance})
		return
	}
	if f.status.VRRP == nil || f.status.VRRP.State != "master" {
		writeJSONStatus(w, 409, api.Error{Error: "not the VRRP master"})
		return
	}
	f.failoverHoldoff = req.Holdoff
	f.status.VRRP.State = "backup"
	writeJSONStatus(w, 200, f.status.VRRP)
}

// emit appends an event and hands it to the streams. Callers hold f.mu.
func (f *fakeLBD) emit(ev api.Event) {
	ev.Seq = uint64(len(f.events) + 1)
	if ev.Time.IsZero() {
		ev.Time = time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	}
	f.events = append(f.events, ev)
	for _, c := range f.subs {
		select {
		case c <- ev:
		default:
		}
	}
}

func (f *fakeLBD) Emit(kind, subject, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.emit(api.Event{Kind: kind, Subject: subject, Message: msg})
}

func (f *fakeLBD) handleEvents(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	since, _ := strconv.ParseUint(r.URL.Query().Get("since"), 10, 64)
	out := []api.Event{}
	for _, ev := range f.events {
		if ev.Seq > since {
			out = append(out, ev)
		}
	}
	writeJSONStatus(w, 200, out)
}

func (f *fakeLBD) handleStream(w http.ResponseWriter, r *http.Request) {
	if f.noStream {
		http.NotFound(w, r)
		return
	}
	c := make(chan api.Event, 64)
	f.mu.Lock()
	f.subs = append(f.subs, c)
	var backlog []api.Event
	if since, err := strconv.ParseUint(r.URL.Query().Get("since"), 10, 64); err == nil && !f.noReplay {
		for _, ev := range f.events {
			if ev.Seq > since {
				backlog = append(backlog, ev)
			}
		}
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(200)
	fl := w.(http.Flusher)
	_, _ = io.WriteString(w, ": hello\n\n")
	for _, ev := range backlog {
		b, _ := json.Marshal(ev)
		fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.Seq, ev.Kind, b)
	}
	fl.Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-c:
			if !ok {
				return
			}
			b, _ := json.Marshal(ev)
			fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.Seq, ev.Kind, b)
			fl.Flush()
		}
	}
}

func (f *fakeLBD) subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

func (f *fakeLBD) rs(vs, rs string) api.RealServer {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.status.Services {
		for _, r := range s.RealServers {
			if s.Name == vs && r.Name == rs {
				return r
			}
		}
	}
	f.t.Fatalf("fake: no %s/%s", vs, rs)
	return api.RealServer{}
}

func (f *fakeLBD) requested(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.requests {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

// closest is the suggestion lbd makes: the name with the smallest edit
// distance, if it is close enough to be a typo.
func closest(name string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(name, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// tcpProxy forwards connections to target; while down it closes every
// connection at once, as a restarting lbd does.
type tcpProxy struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]bool
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{l: l, target: target, conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(func() {
		l.Close()
		p.setDown(true)
	})
	return p
}

func (p *tcpProxy) addr() string { return p.l.Addr().String() }

func (p *tcpProxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
	}
}

func (p *tcpProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		c.Close()
		return false
	}
	p.conns[c] = true
	return true
}

func (p *tcpProxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			continue
		}
		go func() {
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				return
			}
			if !p.track(up) {
				c.Close()
				return
			}
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			_, _ = io.Copy(c, up)
			c.Close()
		}()
	}
}
