//go:build !linux

package vrrp

// platform: thread names, real-time scheduling and memory locking are
// Linux's; elsewhere the options are ignored.
func (in *Instance) platform(name string) {}
