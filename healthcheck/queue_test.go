package healthcheck

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestDueQueueOrderAndLazyRemoval(t *testing.T) {
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	q := dueQueue{epoch: epoch}
	r := rand.New(rand.NewPCG(1, 2))
	var groups []*group
	for i := 0; i < 500; i++ {
		g := &group{due: epoch.Add(time.Duration(r.IntN(10000)) * time.Millisecond)}
		groups = append(groups, g)
		q.push(g.due, g)
	}
	for i := 0; i < len(groups); i += 3 {
		groups[i].removed = true
	}
	var last time.Time
	n := 0
	for {
		g := q.popDue(epoch.Add(time.Hour))
		if g == nil {
			break
		}
		if g.removed {
			t.Fatal("removed group popped")
		}
		if g.due.Before(last) {
			t.Fatalf("out of order: %v after %v", g.due, last)
		}
		last = g.due
		n++
	}
	if want := 500 - 167; n != want || q.len() != 0 {
		t.Errorf("popped %d, want %d; %d left", n, want, q.len())
	}
	// Not due yet.
	g := &group{}
	q.push(epoch.Add(time.Second), g)
	if q.popDue(epoch) != nil {
		t.Error("popped a group before it was due")
	}
	if at, ok := q.peek(); !ok || !at.Equal(epoch.Add(time.Second)) {
		t.Errorf("peek = %v %v", at, ok)
	}
}

func TestDueQueueCountDue(t *testing.T) {
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	q := dueQueue{epoch: epoch}
	r := rand.New(rand.NewPCG(3, 4))
	var groups []*group
	for i := 0; i < 1000; i++ {
		g := &group{due: epoch.Add(time.Duration(r.IntN(10000)) * time.Millisecond)}
		groups = append(groups, g)
		q.push(g.due, g)
	}
	for i := 0; i < len(groups); i += 4 {
		groups[i].removed = true
	}
	for _, at := range []time.Duration{-time.Second, 0, 5 * time.Millisecond, 2500 * time.Millisecond, 9999 * time.Millisecond, time.Hour} {
		want := 0
		for _, g := range groups {
			if !g.removed && !g.due.After(epoch.Add(at)) {
				want++
			}
		}
		if got := q.countDue(epoch.Add(at), 1<<30); got != want {
			t.Errorf("countDue(%v) = %d, want %d", at, got, want)
		}
		if got := q.countDue(epoch.Add(at), 7); got != min(want, 7) {
			t.Errorf("countDue(%v, limit 7) = %d, want %d", at, got, min(want, 7))
		}
	}
}
