package director

import (
	"strings"
	"sync"
	"time"

	"lbd/api"
)

// The director keeps the last hour of each service's and real server's
// figures (connections/s, active connections, bytes/s) at a 5 s step, for
// the console's charts: what piranha's users drew with cacti, without a
// second program. It is bounded: HistorySamples points per series, and a
// series of a service or real server that is gone is dropped with it.
const (
	HistoryStep    = 5 * time.Second
	HistorySamples = 720 // one hour
)

// history is a ring of samples per series (by "vs" or "vs/rs").
type history struct {
	mu     sync.Mutex
	series map[string]*ring
}

type ring struct {
	pts  [HistorySamples]api.HistoryPoint
	next int // where the next point goes
	n    int // points held
}

func (r *ring) add(p api.HistoryPoint) {
	r.pts[r.next] = p
	r.next = (r.next + 1) % HistorySamples
	r.n = min(r.n+1, HistorySamples)
}

// points returns the held points, oldest first.
func (r *ring) points() []api.HistoryPoint {
	out := make([]api.HistoryPoint, 0, r.n)
	start := (r.next - r.n + HistorySamples) % HistorySamples
	for i := range r.n {
		out = append(out, r.pts[(start+i)%HistorySamples])
	}
	return out
}

// sample records st's figures at now; series no longer in st are dropped.
func (h *history) sample(now time.Time, st api.Status) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.series == nil {
		h.series = map[string]*ring{}
	}
	seen := map[string]bool{}
	add := func(key string, p api.HistoryPoint) {
		seen[key] = true
		r := h.series[key]
		if r == nil {
			r = new(ring)
			h.series[key] = r
		}
		p.Time = now
		r.add(p)
	}
	for _, s := range st.Services {
		active := 0
		for _, rs := range s.RealServers {
			active += rs.ActiveConns
			add(s.Name+"/"+rs.Name, point(rs.Stats, rs.ActiveConns))
		}
		add(s.Name, point(s.Stats, active))
	}
	for k := range h.series {
		if !seen[k] {
			delete(h.series, k)
		}
	}
}

func point(s api.Stats, active int) api.HistoryPoint {
	return api.HistoryPoint{CPS: float64(s.CPS), ActiveConns: float64(active), BPS: float64(s.InBPS + s.OutBPS)}
}

// get returns the points of a series.
func (h *history) get(key string) ([]api.HistoryPoint, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.series[key]
	if r == nil {
		return nil, false
	}
	return r.points(), true
}

// History returns the recent figures of a virtual server (rs == "") or of
// one of its real servers, with the transitions of that window.
func (d *Director) History(vs, rs string) (api.History, bool) {
	key := vs
	if rs != "" {
		key += "/" + rs
	}
	pts, ok := d.history.get(key)
	if !ok {
		return api.History{}, false
	}
	h := api.History{Step: HistoryStep, Points: pts, Marks: []api.Event{}}
	from := time.Now().Add(-HistoryStep * HistorySamples)
	if len(pts) > 0 {
		from = pts[0].Time
	}
	for _, ev := range d.events.since(0) {
		if ev.Time.Before(from) || !marks(ev, vs, rs) {
			continue
		}
		h.Marks = append(h.Marks, ev)
	}
	return h, true
}

// marks says whether ev belongs on the chart of vs (rs == "") or vs/rs:
// its health events (every real server's on the service's chart), its
// quorum changes, and VRRP transitions, which move every service.
func marks(ev api.Event, vs, rs string) bool {
	switch ev.Kind {
	case "vrrp":
		return true
	case "quorum":
		return ev.Subject == vs
	case "health":
		if rs != "" {
			return ev.Subject == vs+"/"+rs
		}
		return strings.HasPrefix(ev.Subject, vs+"/")
	}
	return false
}
