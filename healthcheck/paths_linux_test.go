package healthcheck

import "testing"

// eachOwnPath runs a checker test over the package's own layers: with a
// new raw socket per check waiting in poll(2) (a checker used on its own),
// and as Scheduler workers run checks: one socket set reused by every
// check of the subtest, waiting in the Scheduler's poller ("reused") or
// in Go's ("reused-gopoller"), so each check runs on a socket that earlier
// checks (refused, timed out, reset...) have used.
func eachOwnPath(t *testing.T, body func(t *testing.T)) {
	runPath(t, "new", func(*testing.T) testPath { return testPath{} }, body)
	runPath(t, "reused", func(t *testing.T) testPath {
		ps := &probes{pl: testPoller(t)}
		t.Cleanup(ps.close)
		return testPath{probes: ps}
	}, body)
	runPath(t, "reused-gopoller", func(t *testing.T) testPath {
		ps := &probes{goPoll: true}
		t.Cleanup(ps.close)
		return testPath{layers: Layers{StdPoller: true}, probes: ps}
	}, body)
}
