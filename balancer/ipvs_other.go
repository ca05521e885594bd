//go:build !linux

package balancer

import (
	"fmt"
	"runtime"
)

// Open fails outside Linux: IPVS is part of the Linux kernel. The model,
// the reconciler and the fake build anywhere, so the director does too.
// The error wraps ErrUnavailable, as on a Linux kernel without IPVS.
func Open() (*IPVS, error) {
	return nil, fmt.Errorf("balancer: %w: IPVS needs Linux, not %s", ErrUnavailable, runtime.GOOS)
}
