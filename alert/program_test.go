//go:build unix

package alert

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestProgram(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	p := &Program{Argv: []string{"/bin/sh", "-c", `cat > "$1.json"; echo "$LBD_EVENT_CLASS|$LBD_EVENT_SUBJECT|$LBD_EVENT_MESSAGE|$LBD_NODE|$LBD_EVENT_COUNT" > "$1"`, "notify", out}}
	batch := []Event{{Node: "lvs1", Class: VRRP, Subject: "vrid 51", Message: "backup -> master\nforged line"}}
	if err := p.Notify(context.Background(), batch, 2); err != nil {
		t.Fatal(err)
	}
	env, _ := os.ReadFile(out)
	if got, want := strings.TrimSpace(string(env)), "vrrp|vrid 51|backup -> master forged line|lvs1|3"; got != want {
		t.Errorf("environment %q, want %q", got, want)
	}
	js, _ := os.ReadFile(out + ".json")
	var b WebhookBody
	if err := json.Unmarshal(js, &b); err != nil || len(b.Events) != 1 || b.Suppressed != 2 {
		t.Errorf("stdin %q (%v), want the batch", js, err)
	}

	fail := &Program{Argv: []string{"/bin/sh", "-c", "echo no route to pager >&2; exit 3"}}
	if err := fail.Notify(context.Background(), batch, 0); err == nil || !strings.Contains(err.Error(), "exit status 3: no route to pager") {
		t.Errorf("failing program: %v", err)
	}
}

// At its timeout a program's whole process group dies, children included.
func TestProgramTimeoutKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child")
	p := &Program{Argv: []string{"/bin/sh", "-c", `sleep 60 & echo $! > "$0"; wait`, pidFile}}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := p.Notify(ctx, []Event{{Class: VRRP}}, 0)
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("Notify = %v, want killed at the timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Notify returned after %v", d)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		// A killed child may linger as a zombie until init reaps it.
		if st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && strings.Contains(string(st), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the program's child %d outlived the timeout", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
