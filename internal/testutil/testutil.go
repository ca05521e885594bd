// Package testutil holds the small helpers the tests of several packages
// share: a goroutine-safe buffer for logs and process output, and bounded
// polling for conditions another goroutine or process brings about.
//
// Inside a testing/synctest bubble the helpers run on the bubble's virtual
// clock: a poll sleeps only until every goroutine of the bubble is blocked,
// so Eventually costs no real time there. Code that runs only in a bubble
// needs no polling at all: synctest.Wait and then a plain check say more.
package testutil

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// Buffer is a bytes.Buffer that one goroutine (a logger, a process's
// stdout) may write while another reads it. The zero value is ready.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written since the last Reset.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Reset forgets what was written, so a test can look at what comes next.
func (b *Buffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b.Reset()
}

// pollInterval is how often Eventually looks again: short next to the
// time anything under test takes, long enough not to starve it.
const pollInterval = 5 * time.Millisecond

// Eventually polls cond until it holds and returns how long that took; if
// it does not hold within timeout, the test fails with "timed out after
// TIMEOUT waiting for WHAT". Timeouts are generous bounds for a loaded
// machine, never the expected time.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(pollInterval)
	}
	return time.Since(start)
}

// WaitOutput waits until out contains sub; on timeout the test fails with
// the output so far.
func WaitOutput(t testing.TB, timeout time.Duration, out *Buffer, sub string) {
	t.Helper()
	start := time.Now()
	for !strings.Contains(out.String(), sub) {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %v waiting for %q in the output:\n%s", timeout, sub, out)
		}
		time.Sleep(pollInterval)
	}
}
