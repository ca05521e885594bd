package balancer

import (
	"errors"
	"fmt"
	"slices"
	"syscall"
	"time"
)

// connsReadBudget spaces out the readings of the connection table: the
// next waits at least this many times as long as the last one took, so a
// huge table (the kernel's listing is quadratic in its size) costs at most
// about 2% of a CPU.
const connsReadBudget = 50

// SetSync makes ds the desired sync daemons (at most one per role) and
// brings the kernel to them at once, like Apply does for the table: a
// wanted role that does not run is started; one that runs with other
// settings is stopped and started again; a role wanted earlier in this
// process and left out of ds is stopped. Roles never wanted are left
// alone, and before the first SetSync every daemon is. Zero settings mean
// the kernel's defaults, and the kernel's answer for them is taken as
// matching. Invalid daemons are refused whole, before any call.
//
// Run re-reads the daemons on every resync, so one stopped behind lbd's
// back (ipvsadm --stop-daemon) runs again within a ResyncInterval; a
// failed start fails the pass (retried like any failure) and shows in
// SyncStatus.
func (r *Reconciler) SetSync(ds []SyncDaemon) error {
	want, err := validateSync(ds)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.syncSet || !slices.Equal(want, r.syncWant) {
		r.syncDirty = true
	}
	r.syncSet, r.syncWant = true, want
	return r.pass(false, false)
}

func validateSync(ds []SyncDaemon) ([]SyncDaemon, error) {
	var errs []error
	seen := map[SyncRole]bool{}
	want := make([]SyncDaemon, 0, len(ds))
	for _, d := range ds {
		if err := d.validate(); err != nil {
			errs = append(errs, fmt.Errorf("balancer: sync daemon %s: %w", d.Role, err))
			continue
		}
		if seen[d.Role] {
			errs = append(errs, fmt.Errorf("balancer: sync daemon %s: listed twice (the kernel runs one per role)", d.Role))
		}
		seen[d.Role] = true
		want = append(want, d)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	sortSyncDaemons(want)
	return want, nil
}

// SyncStatus returns the wanted sync daemons with what the kernel runs, as
// of the last pass, and the connection table's origins as of the last
// full pass.
func (r *Reconciler) SyncStatus() SyncStatus {
	s := *r.syncSnap.Load()
	s.Daemons = slices.Clone(s.Daemons)
	return s
}

// syncDaemons brings the sync daemons in line (see SetSync).
func (r *Reconciler) syncDaemons(full bool, p *passErrs) {
	if !r.syncSet || (len(r.syncWant) == 0 && len(r.syncOwned) == 0) {
		r.syncDirty = false
		return // none wanted, none to stop: whatever runs is foreign
	}
	if r.syncView == nil || full || r.syncDirty {
		list, err := r.k.SyncDaemons()
		if !r.call(p, false, err) {
			return
		}
		r.syncView = make(map[SyncRole]SyncDaemon, len(list))
		for _, d := range list {
			r.syncView[d.Role] = d
		}
	}
	r.syncDirty = false
	now := time.Now()

	wanted := make(map[SyncRole]bool, len(r.syncWant))
	for _, d := range r.syncWant {
		wanted[d.Role] = true
	}
	for role := range r.syncOwned {
		if wanted[role] {
			continue
		}
		if cur, ok := r.syncView[role]; ok {
			if !r.call(p, true, ignoreErrno(r.k.StopSyncDaemon(role), syscall.ESRCH)) {
				continue // still owned: the retry stops it
			}
			r.log.Info("balancer: stopped sync daemon no longer wanted", "daemon", cur.String())
		}
		delete(r.syncView, role)
		delete(r.syncOwned, role)
		delete(r.syncState, role)
	}
	for role := range r.syncState {
		if !wanted[role] {
			delete(r.syncState, role)
		}
	}

	reread := false
	for _, d := range r.syncWant {
		r.syncOwned[d.Role] = true
		st := r.syncState[d.Role]
		if st == nil {
			st = &syncRoleState{}
			r.syncState[d.Role] = st
		}
		cur, running := r.syncView[d.Role]
		if running && d.matches(cur) {
			if !st.running {
				st.running, st.since, st.err = true, now, ""
			}
			continue
		}
		if st.running {
			if running {
				r.log.Warn("balancer: sync daemon runs with other settings than wanted", "daemon", cur.String(),
					"want", d.String())
				r.notice(SyncDaemonDown, "sync daemon runs with other settings (%s) than wanted (%s): restarting it", cur, d)
			} else {
				r.log.Warn("balancer: sync daemon stopped behind lbd's back", "daemon", d.String())
				r.notice(SyncDaemonDown, "sync daemon %s stopped behind lbd's back: starting it again", d)
			}
		}
		st.running, st.since = false, time.Time{}
		if running {
			if err := ignoreErrno(r.k.StopSyncDaemon(d.Role), syscall.ESRCH); !r.call(p, true, err) {
				st.err = err.Error()
				continue
			}
			delete(r.syncView, d.Role)
		}
		err := r.k.StartSyncDaemon(d)
		if !r.call(p, true, err) {
			st.err = err.Error()
			// Started by someone else since the read: read again next time.
			reread = reread || errors.Is(err, syscall.EEXIST)
			continue
		}
		r.syncView[d.Role] = d.normalized()
		st.running, st.since, st.err = true, now, ""
		r.log.Info("balancer: started sync daemon", "daemon", d.String(), "restart", running)
	}
	if reread {
		r.syncView = nil
	}

	if full && len(r.syncWant) > 0 {
		r.readConns(now)
	}
}

// readConns reads the connection table's origins. A failure is counted
// and shown, but does not fail the pass: nothing in the kernel is wrong.
func (r *Reconciler) readConns(now time.Time) {
	if now.Before(r.connsNext) {
		return
	}
	t0 := time.Now() // the cost, not the schedule: real time
	c, err := r.k.ConnCounts()
	r.connsNext = now.Add(connsReadBudget * time.Since(t0))
	if err != nil {
		r.errs.Add(1)
		if msg := err.Error(); msg != r.connsErr {
			r.log.Warn("balancer: cannot count synced connections", "err", err)
			r.connsErr = msg
		}
		return
	}
	r.conns, r.connsAt, r.connsErr = c, now, ""
}

// publishSync stores an immutable copy of the sync status.
func (r *Reconciler) publishSync() {
	if !r.syncSet {
		return
	}
	s := SyncStatus{Daemons: make([]SyncDaemonStatus, 0, len(r.syncWant))}
	if len(r.syncWant) > 0 { // counted only while sync is wanted
		s.Conns, s.ConnsAt, s.ConnsErr = r.conns, r.connsAt, r.connsErr
	}
	for _, d := range r.syncWant {
		ds := SyncDaemonStatus{Want: d}
		if st := r.syncState[d.Role]; st != nil {
			ds.Running, ds.Since, ds.Err = st.running, st.since, st.err
		}
		s.Daemons = append(s.Daemons, ds)
	}
	r.syncSnap.Store(&s)
}

// ignoreErrno drops err when it is errno: a daemon already stopped is as
// good as one stopped now.
func ignoreErrno(err error, errno syscall.Errno) error {
	if errors.Is(err, errno) {
		return nil
	}
	return err
}
