//go:build unix

package alert

import (
	"os/exec"
	"syscall"
	"time"
)

// killGroup runs cmd in a process group of its own and makes its
// cancellation kill the whole group: a script's children die with it.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// Output pipes held open by an orphan must not hold Run forever.
	cmd.WaitDelay = time.Second
}
