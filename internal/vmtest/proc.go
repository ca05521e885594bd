//go:build linux

package vmtest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Proc is a long-running process started by a test, such as lbd. Its stdout
// and stderr are kept line by line; at the end of the test it is stopped
// (SIGTERM, then SIGKILL after a grace period) and, if the test failed, its
// output is logged.
type Proc struct {
	Name string

	cmd  *exec.Cmd
	done chan struct{}
	err  error // exit status, valid once done is closed

	mu    sync.Mutex
	lines []string
	part  []byte
}

// stopGrace bounds how long a process may take to exit after SIGTERM.
const stopGrace = 10 * time.Second

// Start starts cmd (its Stdout and Stderr must be unset) and registers its
// teardown with t.Cleanup.
func Start(t testing.TB, name string, cmd *exec.Cmd) *Proc {
	t.Helper()
	p := &Proc{Name: name, cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p, p
	// Its own process group, so Stop reaches whatever it started; and a
	// child that keeps the output pipe open must not hold up Wait.
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = 2 * time.Second
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("vmtest: start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Logf("vmtest: %s: %v", name, err)
		}
		if t.Failed() {
			t.Logf("vmtest: output of %s:\n%s", name, strings.Join(p.Lines(), "\n"))
		}
	})
	return p
}

// Write collects output; it implements io.Writer for exec.Cmd.
func (p *Proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.part = append(p.part, b...)
	for {
		i := bytes.IndexByte(p.part, '\n')
		if i < 0 {
			break
		}
		p.lines = append(p.lines, string(p.part[:i]))
		p.part = p.part[i+1:]
	}
	return len(b), nil
}

// Lines returns the complete output lines so far.
func (p *Proc) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// Mark returns the number of lines so far, to look only at later ones with
// WaitLine.
func (p *Proc) Mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lines)
}

// WaitLine waits up to timeout for an output line after the first since
// lines for which match is true, and returns it. ok is false on timeout or
// when the process exits first.
func (p *Proc) WaitLine(since int, timeout time.Duration, match func(string) bool) (line string, ok bool) {
	deadline := time.Now().Add(timeout)
	for {
		lines := p.Lines()
		for i := since; i < len(lines); i++ {
			if match(lines[i]) {
				return lines[i], true
			}
		}
		if time.Now().After(deadline) || p.Exited() {
			if p.Exited() { // the last words may have raced the exit
				lines = p.Lines()
				for i := since; i < len(lines); i++ {
					if match(lines[i]) {
						return lines[i], true
					}
				}
			}
			return "", false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits up to timeout for the process to exit; exited tells whether
// it did, err is its exit error then (nil for status 0).
func (p *Proc) Wait(timeout time.Duration) (exited bool, err error) {
	select {
	case <-p.done:
		return true, p.err
	case <-time.After(timeout):
		return false, nil
	}
}

// Stop ends the process and its process group: SIGTERM, then SIGKILL if it
// is still running after a grace period. It returns an error if the process
// had to be killed or exited with a failure status after SIGTERM.
func (p *Proc) Stop() error {
	if p.Exited() {
		return nil
	}
	pgid := -p.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	if ok, err := p.Wait(stopGrace); ok {
		_ = syscall.Kill(pgid, syscall.SIGKILL) // stragglers
		if err != nil {
			return errors.New("exited after SIGTERM with " + err.Error())
		}
		return nil
	}
	_ = syscall.Kill(pgid, syscall.SIGKILL)
	<-p.done
	return errors.New("did not exit within " + stopGrace.String() + " of SIGTERM; killed")
}
