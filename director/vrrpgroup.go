package director

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"lbd/config"
)

// syncGroups makes the members of a [[vrrp_sync_group]] fail over
// together, as keepalived's sync groups do for faults: while a member is in
// Fault for a cause of its own (its interface, a weight-0 tracked
// interface, no address), every other member is held in Fault as well, so
// a master gives up all the group's VIPs and the peer director takes all of
// them; when no member has a fault left, the hold is lifted and the
// members elect as usual. Its methods are safe for concurrent use; the
// instances' callbacks call ownFault from their own goroutines.
type syncGroups struct {
	mu      sync.Mutex
	groupOf map[string]string   // instance -> its group
	members map[string][]string // group -> instances, in config order
	inst    map[string]vrrpInstance
	own     map[string]string // instance -> its own fault cause
	applied map[string]string // instance -> the hold it was given
}

const groupFaultSource = "sync-group"

// configure sets the groups and the running instances (keyed by name) and
// re-applies the holds.
func (g *syncGroups) configure(groups []config.VRRPSyncGroup, runners []*vrrpRunner) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.groupOf, g.members, g.inst = map[string]string{}, map[string][]string{}, map[string]vrrpInstance{}
	if g.own == nil {
		g.own, g.applied = map[string]string{}, map[string]string{}
	}
	for _, r := range runners {
		g.inst[r.key] = r.inst
	}
	for _, gr := range groups {
		g.members[gr.Name] = slices.Clone(gr.Instances)
		for _, m := range gr.Instances {
			g.groupOf[m] = gr.Name
		}
	}
	for name, why := range g.applied {
		// A member that left its group (or was restarted) is released.
		if in, ok := g.inst[name]; ok && g.groupOf[name] == "" && why != "" {
			in.SetFault(groupFaultSource, "")
			delete(g.applied, name)
		}
	}
	g.applyLocked()
}

// forget drops a stopped instance's state.
func (g *syncGroups) forget(name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.own, name)
	delete(g.applied, name)
	delete(g.inst, name)
}

// ownFault is an instance's report of its own fault cause ("" = none).
func (g *syncGroups) ownFault(name, cause string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if cause == "" {
		delete(g.own, name)
	} else {
		g.own[name] = cause
	}
	g.applyLocked()
}

// applyLocked holds every member of a group with a faulty member in Fault.
func (g *syncGroups) applyLocked() {
	for name, grp := range g.groupOf {
		in, ok := g.inst[name]
		if !ok {
			continue
		}
		var faulty []string
		for _, m := range g.members[grp] {
			if c := g.own[m]; m != name && c != "" {
				faulty = append(faulty, m+" ("+c+")")
			}
		}
		why := ""
		if len(faulty) > 0 {
			why = fmt.Sprintf("sync group %s: %s in fault", grp, strings.Join(faulty, ", "))
		}
		if g.applied[name] != why {
			g.applied[name] = why
			in.SetFault(groupFaultSource, why)
		}
	}
}

// vrrpRoles tracks which instances are master, for the handover guard's
// targets that no instance owns (fwmark services): those are guarded as a
// master's only while every instance is master (with mixed roles unknown
// TCP segments to them are dropped rather than reset). It is read by the
// transition callback, which must not take d.mu.
type vrrpRoles struct {
	mu     sync.Mutex
	names  []string
	master map[string]bool
}

func (r *vrrpRoles) configure(runners []*vrrpRunner) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.master
	r.names, r.master = nil, map[string]bool{}
	for _, v := range runners {
		r.names = append(r.names, v.name)
		r.master[v.name] = old[v.name]
	}
}

// update records a transition and reports whether every instance is now
// master. With one instance (or a transition of an unknown one, as in
// tests) it is that transition's own answer, as before instances.
func (r *vrrpRoles) update(name string, master bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.master[name]; !ok || len(r.names) <= 1 {
		if ok {
			r.master[name] = master
		}
		return master
	}
	r.master[name] = master
	for _, n := range r.names {
		if !r.master[n] {
			return false
		}
	}
	return true
}

func (r *vrrpRoles) all() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.names {
		if !r.master[n] {
			return false
		}
	}
	return len(r.names) > 0
}
