package healthcheck

import "testing"

// eachOwnPath runs a checker test over the package's own layers: with a
// new raw socket per check (a checker used on its own), and as Scheduler
// workers run checks: one socket set reused by every check of the
// subtest, so each check runs on a socket that earlier checks (refused,
// timed out, reset...) have used.
func eachOwnPath(t *testing.T, body func(t *testing.T)) {
	runPath(t, "new", func(*testing.T) testPath { return testPath{} }, body)
	runPath(t, "reused", func(t *testing.T) testPath {
		ps := &probes{}
		t.Cleanup(ps.close)
		return testPath{probes: ps}
	}, body)
}
