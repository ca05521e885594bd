package healthcheck

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// execChecker runs a program; exit status 0 means up. The program runs in
// its own process group and the whole group is killed at the timeout (and
// after the program exits), so scripts that fork cannot leave a growing
// pile of processes behind one check per interval.
type execChecker struct {
	argv []string
}

// execWaitDelay bounds how long Wait keeps reading output after the
// program has exited while something in its group still holds the pipe.
const execWaitDelay = 100 * time.Millisecond

// maxExecOutput is how much output is kept for the failure reason.
const maxExecOutput = 512

func newExecChecker(s Spec) (*execChecker, error) {
	host, port := s.Target()
	argv := make([]string, len(s.Command))
	r := strings.NewReplacer("%h", host, "%p", strconv.Itoa(port))
	for i, a := range s.Command {
		argv[i] = r.Replace(a)
	}
	return &execChecker{argv: argv}, nil
}

func (c *execChecker) Check(ctx context.Context) Result {
	cmd := exec.CommandContext(ctx, c.argv[0], c.argv[1:]...)
	ownGroup(cmd)
	cmd.WaitDelay = execWaitDelay
	out := &limitedBuffer{max: maxExecOutput}
	cmd.Stdout, cmd.Stderr = out, out

	err := cmd.Run()
	// Children the program left running die with it. The group id cannot
	// have been reused: Linux does not hand out a pid still used as a
	// process group id by a live process.
	if cmd.Process != nil {
		_ = killGroup(cmd)
	}
	if cmd.ProcessState == nil { // never started
		return down("exec: " + describeExecErr(err))
	}
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return down("timeout")
		}
		return down("canceled")
	}
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	switch {
	case ws.Signaled():
		return down(withOutput("signal "+ws.Signal().String(), out))
	case ws.ExitStatus() != 0:
		return down(withOutput("exit "+strconv.Itoa(ws.ExitStatus()), out))
	}
	return up("exit 0")
}

func describeExecErr(err error) string {
	var ee *exec.Error
	if errors.As(err, &ee) {
		err = ee.Err
	}
	switch {
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, syscall.ENOENT):
		return "program not found"
	case errors.Is(err, syscall.EACCES):
		return "permission denied"
	}
	return err.Error()
}

// withOutput appends the first line of the program's output: a script's
// own explanation ("backend says: maintenance") beats a bare exit code.
func withOutput(reason string, out *limitedBuffer) string {
	line := out.firstLine()
	if line == "" {
		return reason
	}
	return reason + ": " + line
}

// limitedBuffer keeps the first max bytes written and discards the rest
// without failing the writer (a failing Write would kill the program with
// SIGPIPE and change its exit status).
type limitedBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (b *limitedBuffer) firstLine() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, l := range strings.Split(b.buf.String(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			if len(l) > 120 {
				l = l[:120] + "..."
			}
			return strconv.Quote(l)
		}
	}
	return ""
}
