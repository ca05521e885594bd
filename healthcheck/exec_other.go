//go:build !unix

package healthcheck

import "os/exec"

// Without Unix process groups only the program itself is killed at the
// timeout (exec.CommandContext's default); its children may outlive it.
func ownGroup(*exec.Cmd) {}

func killGroup(*exec.Cmd) error { return nil }
