package bgp

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
)

// Fake is an in-memory Speaker for tests: it records what is announced and
// lets the test set each session's state.
type Fake struct {
	mu        sync.Mutex
	routes    map[netip.Prefix]Route
	neighbors []Neighbor
	states    map[netip.Addr]string
	closed    bool
	// Err, when set, is returned by Announce and Withdraw (nothing changes).
	Err error
	// Log records every call in order: "announce 192.0.2.1/32",
	// "withdraw ...", "shutdown".
	Log []string
}

// NewFake returns a Fake with the neighbours of c, all established.
func NewFake(c Config) *Fake {
	f := &Fake{routes: map[netip.Prefix]Route{}, states: map[netip.Addr]string{}}
	_ = f.SetNeighbors(c.Neighbors)
	return f
}

var errClosed = errors.New("bgp: speaker shut down")

// Announce implements Speaker.
func (f *Fake) Announce(r Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errClosed
	}
	if f.Err != nil {
		return f.Err
	}
	f.routes[r.Prefix] = r
	f.Log = append(f.Log, "announce "+r.Prefix.String())
	return nil
}

// Withdraw implements Speaker.
func (f *Fake) Withdraw(p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errClosed
	}
	if f.Err != nil {
		return f.Err
	}
	delete(f.routes, p)
	f.Log = append(f.Log, "withdraw "+p.String())
	return nil
}

// SetNeighbors implements Speaker; new neighbours start established.
func (f *Fake) SetNeighbors(ns []Neighbor) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.neighbors = slices.Clone(ns)
	for _, n := range ns {
		if _, ok := f.states[n.Address]; !ok {
			f.states[n.Address] = StateEstablished
		}
	}
	return nil
}

// SetState sets a session's state.
func (f *Fake) SetState(a netip.Addr, state string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.states[a] = state
}

// Peers implements Speaker.
func (f *Fake) Peers() []PeerStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []PeerStatus
	for _, n := range f.neighbors {
		p := PeerStatus{Address: n.Address, ASN: n.ASN, State: f.states[n.Address]}
		if p.State == StateEstablished {
			for pfx := range f.routes {
				if pfx.Addr().Is4() == n.Address.Is4() {
					p.PrefixesSent++
				}
			}
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b PeerStatus) int { return a.Address.Compare(b.Address) })
	return out
}

// Routes returns the announced routes by prefix order.
func (f *Fake) Routes() []Route {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Route, 0, len(f.routes))
	for _, r := range f.routes {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Route) int { return a.Prefix.Addr().Compare(b.Prefix.Addr()) })
	return out
}

// Closed reports whether Shutdown was called.
func (f *Fake) Closed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// Shutdown implements Speaker.
func (f *Fake) Shutdown(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	for p := range f.routes {
		delete(f.routes, p)
	}
	f.closed = true
	f.Log = append(f.Log, "shutdown")
	return nil
}
