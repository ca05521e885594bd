//go:build !linux

package main

import (
	"fmt"
	"runtime"
)

// canDirect refuses to start the director outside Linux, before it opens
// anything: IPVS, VRRP's raw sockets and nftables are Linux's. The rest of
// lbd (-t, passwd, token) works on an operator's laptop.
func canDirect() error {
	return fmt.Errorf("the director needs Linux (IPVS, VRRP, nftables), not %s; here only -t, passwd and token work", runtime.GOOS)
}
