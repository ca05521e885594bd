//go:build !linux

package vrrp

// Real-time scheduling and memory locking are Linux's; elsewhere the
// options are ignored.
func (in *Instance) realtime(name string) {}
func (in *Instance) lockMemory()          {}
