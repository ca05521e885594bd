package healthcheck

import "time"

// dueQueue is a min-heap of checks by due time. Entries hold the due time
// inline, as an offset from a monotonic epoch, so ordering never touches
// the groups: at 10,000 checks a second, a pointer chase per comparison is
// most of the scheduler's own CPU. Removed groups are not dug out of the
// heap; they are dropped when they reach the top.
type dueQueue struct {
	epoch time.Time
	items []dueItem
}

type dueItem struct {
	at time.Duration // since epoch
	g  *group
}

func (q *dueQueue) push(at time.Time, g *group) {
	q.items = append(q.items, dueItem{at: at.Sub(q.epoch), g: g})
	// Sift up.
	i := len(q.items) - 1
	for i > 0 {
		p := (i - 1) / 2
		if q.items[p].at <= q.items[i].at {
			break
		}
		q.items[p], q.items[i] = q.items[i], q.items[p]
		i = p
	}
}

// peek returns the earliest live entry's due time.
func (q *dueQueue) peek() (time.Time, bool) {
	for len(q.items) > 0 {
		if !q.items[0].g.removed {
			return q.epoch.Add(q.items[0].at), true
		}
		q.pop()
	}
	return time.Time{}, false
}

// popDue removes and returns the earliest live group if it is due at now.
func (q *dueQueue) popDue(now time.Time) *group {
	at, ok := q.peek()
	if !ok || at.After(now) {
		return nil
	}
	return q.pop()
}

func (q *dueQueue) pop() *group {
	items := q.items
	g := items[0].g
	last := len(items) - 1
	items[0] = items[last]
	items[last] = dueItem{}
	items = items[:last]
	q.items = items
	// Sift down.
	i := 0
	for {
		l := 2*i + 1
		if l >= len(items) {
			break
		}
		m := l
		if r := l + 1; r < len(items) && items[r].at < items[l].at {
			m = r
		}
		if items[i].at <= items[m].at {
			break
		}
		items[i], items[m] = items[m], items[i]
		i = m
	}
	return g
}

// countDue counts live entries due at or before at, up to limit.
func (q *dueQueue) countDue(at time.Time, limit int) int {
	return q.countFrom(0, at.Sub(q.epoch), limit)
}

// countFrom counts the subtree at i; a node due after t has no due
// descendants.
func (q *dueQueue) countFrom(i int, t time.Duration, limit int) int {
	if limit <= 0 || i >= len(q.items) || q.items[i].at > t {
		return 0
	}
	n := 0
	if !q.items[i].g.removed {
		n = 1
	}
	n += q.countFrom(2*i+1, t, limit-n)
	return n + q.countFrom(2*i+2, t, limit-n)
}

// live counts entries, removed or not (for tests).
func (q *dueQueue) len() int { return len(q.items) }
