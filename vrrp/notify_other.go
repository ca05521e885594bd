//go:build !unix

package vrrp

import "os/exec"

// ownProcessGroup does nothing without Unix process groups: a timeout
// kills the script itself (exec.CommandContext's default), not its
// children.
func ownProcessGroup(*exec.Cmd) {}
