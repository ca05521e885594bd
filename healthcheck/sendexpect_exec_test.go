package healthcheck

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestSendExpect(t *testing.T) { eachPath(t, testSendExpect) }

func testSendExpect(t *testing.T) {
	// SMTP-like banner: nothing to send.
	host, port := rawListener(t, func(c net.Conn) {
		io.WriteString(c, "220 mail.example.test ESMTP ready\r\n")
		io.Copy(io.Discard, c)
	})
	wantResult(t, check(t, Spec{Type: SendExpect, Address: host, Port: port, Expect: `^220 `}, nil), true, "reply matched")
	wantResult(t, check(t, Spec{Type: SendExpect, Address: host, Port: port, Expect: `^554 `, Timeout: 300 * time.Millisecond, Interval: time.Second}, nil),
		false, `reply mismatch (timeout): "220 mail.example.test ESMTP ready\r\n"`)

	// Request/response: the server must see exactly what was sent.
	var mu sync.Mutex
	var got []string
	host, port = rawListener(t, func(c net.Conn) {
		line, _ := bufio.NewReader(c).ReadString('\n')
		mu.Lock()
		got = append(got, line)
		mu.Unlock()
		if line == "PING\r\n" {
			io.WriteString(c, "+PONG\r\n")
		} else {
			io.WriteString(c, "-ERR unknown\r\n")
		}
		c.Close()
	})
	wantResult(t, check(t, Spec{Type: SendExpect, Address: host, Port: port, Send: "PING\r\n", Expect: `^\+PONG`}, nil), true, "reply matched")
	wantResult(t, check(t, Spec{Type: SendExpect, Address: host, Port: port, Send: "PONG\r\n", Expect: `^\+PONG`}, nil),
		false, `reply mismatch (connection closed): "-ERR unknown\r\n"`)
	mu.Lock()
	if len(got) != 2 || got[0] != "PING\r\n" || got[1] != "PONG\r\n" {
		t.Errorf("server received %q", got)
	}
	mu.Unlock()

	// Send only, no expectation.
	wantResult(t, check(t, Spec{Type: SendExpect, Address: host, Port: port, Send: "PING\r\n"}, nil), true, "sent")

	// A silent server: reads forever, never answers.
	host, port = rawListener(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	spec := Spec{Type: SendExpect, Address: host, Port: port, Send: "HELLO\r\n", Expect: "OK", Timeout: 300 * time.Millisecond, Interval: time.Second}
	wantResult(t, check(t, spec, nil), false, "read: timeout")

	// A server that floods without ever matching: bounded read.
	host, port = rawListener(t, func(c net.Conn) {
		chunk := bytes.Repeat([]byte("y"), 4096)
		for i := 0; i < 64; i++ {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	})
	wantResult(t, check(t, Spec{Type: SendExpect, Address: host, Port: port, Expect: "OK"}, nil), false, `reply mismatch: "yyyy`)

	wantResult(t, check(t, Spec{Type: SendExpect, Address: "127.0.0.1", Port: closedPort(t), Expect: "x"}, nil),
		false, "connect: connection refused")
}

// script writes an executable shell script into a temporary directory.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "check.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExec(t *testing.T) {
	dir := t.TempDir()
	argsFile := filepath.Join(dir, "args")
	ok := script(t, `echo "$@" > `+argsFile+"\nexit 0\n")
	wantResult(t, check(t, Spec{Type: Exec, Address: "192.0.2.7", Port: 8080, Command: []string{ok, "--host=%h", "%h:%p"}}, nil), true, "exit 0")
	b, err := os.ReadFile(argsFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "--host=192.0.2.7 192.0.2.7:8080" {
		t.Errorf("program got args %q", got)
	}
	// %h/%p follow the check address override.
	wantResult(t, check(t, Spec{Type: Exec, Address: "192.0.2.7", Port: 8080, CheckAddress: "192.0.2.9", CheckPort: 9000,
		Command: []string{ok, "%h", "%p"}}, nil), true, "exit 0")
	b, _ = os.ReadFile(argsFile)
	if got := strings.TrimSpace(string(b)); got != "192.0.2.9 9000" {
		t.Errorf("program got args %q with override", got)
	}

	fail := script(t, "echo 'backend in maintenance' >&2\nexit 2\n")
	wantResult(t, check(t, Spec{Type: Exec, Address: "192.0.2.7", Command: []string{fail}}, nil), false, `exit 2: "backend in maintenance"`)
	quiet := script(t, "exit 3\n")
	res := check(t, Spec{Type: Exec, Address: "192.0.2.7", Command: []string{quiet}}, nil)
	if res.Up || res.Reason != "exit 3" {
		t.Errorf("quiet failure: %+v", res)
	}
	signaled := script(t, "kill -TERM $$\nsleep 5\n")
	wantResult(t, check(t, Spec{Type: Exec, Address: "192.0.2.7", Command: []string{signaled}}, nil), false, "signal terminated")

	// A program that vanished after validation.
	gone := script(t, "exit 0\n")
	c, err := NewChecker(Spec{Type: Exec, Address: "192.0.2.7", Command: []string{gone}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(gone)
	if res := c.Check(t.Context()); res.Up || res.Reason != "exec: program not found" {
		t.Errorf("vanished program: %+v", res)
	}
}

// alive reports whether pid exists and is not a zombie (an orphaned
// zombie waits for init to reap it, but it is dead).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X')
}

func waitDead(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("pid %d still alive", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pid in %s", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestExecTimeoutKillsWholeGroup(t *testing.T) {
	dir := t.TempDir()
	childPid, selfPid := filepath.Join(dir, "child"), filepath.Join(dir, "self")
	// The script forks a child that ignores SIGTERM/SIGHUP, then hangs.
	hang := script(t, "echo $$ > "+selfPid+"\n"+
		"sh -c 'trap \"\" TERM HUP; sleep 300' &\n"+
		"echo $! > "+childPid+"\n"+
		"sleep 300\n")
	spec := Spec{Type: Exec, Address: "192.0.2.7", Command: []string{hang}, Timeout: 500 * time.Millisecond, Interval: time.Second}
	start := time.Now()
	wantResult(t, check(t, spec, nil), false, "timeout")
	if el := time.Since(start); el < 500*time.Millisecond {
		t.Errorf("timed out after %v, before the timeout", el)
	}
	waitDead(t, readPid(t, selfPid))
	waitDead(t, readPid(t, childPid))
}

func TestExecLeftoverChildrenDie(t *testing.T) {
	// The program exits 0 at once but leaves a background child holding
	// its output pipe: the check still ends promptly and the child dies.
	dir := t.TempDir()
	childPid := filepath.Join(dir, "child")
	leave := script(t, "sleep 300 &\necho $! > "+childPid+"\nexit 0\n")
	spec := Spec{Type: Exec, Address: "192.0.2.7", Command: []string{leave}, Timeout: 3 * time.Second, Interval: 4 * time.Second}
	wantResult(t, check(t, spec, nil), true, "exit 0")
	waitDead(t, readPid(t, childPid))
}
