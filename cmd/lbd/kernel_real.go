//go:build !fakeipvs

package main

import "lbd/balancer"

// openKernel is nil: the director opens the kernel's IPVS (netlink).
var openKernel func() (balancer.Kernel, error)
