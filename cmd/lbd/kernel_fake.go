//go:build fakeipvs

package main

import (
	"fmt"
	"os"

	"lbd/balancer"
)

// openKernel, in a binary built with -tags fakeipvs, gives the director an
// in-memory IPVS table: the namespace tests of BGP run real lbd processes
// (speaker, health checks, VIPs on lo, signals, API) on a host kernel
// without IPVS. Never in a release build.
var openKernel = func() (balancer.Kernel, error) {
	fmt.Fprintln(os.Stderr, "lbd: built with -tags fakeipvs: IPVS is an in-memory fake, nothing is balanced")
	return balancer.NewFake(), nil
}
