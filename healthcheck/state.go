package healthcheck

// State is what the checks say about a target.
type State uint8

// States. A target starts Unknown: it has not been checked yet, or has
// failed fewer than Fall times since it started.
const (
	Unknown State = iota
	Up
	Down
)

func (s State) String() string {
	switch s {
	case Up:
		return "up"
	case Down:
		return "down"
	}
	return "unknown"
}

// tracker applies rise/fall to a stream of results.
//
// From Unknown, the first success means Up (a new real server enters
// rotation at once, no needless outage at start) but going Down takes Fall
// consecutive failures, the same evidence as from Up: one lost SYN at start
// must not mark a server down. After that, Fall consecutive failures take
// an Up target down and Rise consecutive successes bring a Down one back.
type tracker struct {
	state      State
	rise, fall int
	okRun      int // consecutive successes
	failRun    int // consecutive failures
}

// observe records one result and reports whether the state changed.
func (t *tracker) observe(ok bool) bool {
	if ok {
		t.okRun++
		t.failRun = 0
	} else {
		t.failRun++
		t.okRun = 0
	}
	old := t.state
	switch {
	case ok && t.state == Unknown:
		t.state = Up
	case ok && t.state == Down && t.okRun >= t.rise:
		t.state = Up
	case !ok && t.state != Down && t.failRun >= t.fall:
		t.state = Down
	}
	return t.state != old
}
