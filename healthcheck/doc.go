// Package healthcheck decides whether real servers are up.
//
// A Checker probes one target once (tcp connect, one HTTP/HTTPS request,
// send/expect, a program's exit status, a DNS question, a UDP datagram and
// its reply, or an SMTP greeting) within a deadline and returns a Result
// with a short reason ("connect: connection refused", "status 503",
// "body mismatch (status 200)", "exit 2", "timeout", "rcode SERVFAIL (want
// NOERROR)", "port unreachable", "EHLO: 550 go away").
//
// A Scheduler runs many checks: Set registers them by ID (the director uses
// "vsname/rsname"), Run drives them with a fixed pool of workers, and every
// state change reaches Options.OnTransition. Identical checks registered
// under several IDs run once and every ID gets the transition.
//
// Cost at scale (bench-health: 10,000 checks a second): workers take due
// checks in batches (scheduler.go) and keep their raw sockets from check
// to check with a new connection each time (connect_linux.go); HTTP
// replies are parsed in place (httpresp.go). Each of these layers has a
// standard-library twin (Layers) that the tests also run and
// bench-health compares it with; layers that did not pay were removed.
//
// States: a target is Unknown until its first success (then Up at once) or
// its Fall-th consecutive failure (then Down). After that, Fall consecutive
// failures take it Down and Rise consecutive successes bring it back Up.
// A check whose Spec changes keeps the ID's state, so a config edit never
// causes an outage by itself.
//
// The package is a leaf: it owns its types and imports nothing of lbd's;
// the director translates configuration into Specs.
package healthcheck
