//go:build linux

package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"lbd/internal/testutil"
)

// TestMain lets a test run this binary as the lbd daemon: with
// LBD_RUN_MAIN=1 it runs main with the newline-separated LBD_RUN_ARGS.
func TestMain(m *testing.M) {
	if os.Getenv("LBD_RUN_MAIN") == "1" {
		os.Exit(run(strings.Split(os.Getenv("LBD_RUN_ARGS"), "\n"), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestSystemdNotify runs the daemon (no virtual servers, so no IPVS is
// needed) with NOTIFY_SOCKET on a real unix datagram socket, as systemd
// does for Type=notify, and checks the messages in order: READY=1 once the
// console listens (it accepts a connection at that moment), WATCHDOG=1
// pings at half WATCHDOG_USEC, RELOADING=1 then READY=1 around a good and a
// refused reload (STATUS says which), STOPPING=1 on SIGTERM.
func TestSystemdNotify(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	path := filepath.Join(dir, "lbd.toml")
	good := consoleConfig(t, addr, true, "")
	if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs testutil.Buffer
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LBD_RUN_MAIN=1", "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=300000",
		"LBD_RUN_ARGS="+strings.Join([]string{"-config", path, "-state", filepath.Join(dir, "state.json")}, "\n"))
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()

	// next returns the next message other than a watchdog ping, counting
	// the pings.
	pings := 0
	next := func(what string) string {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case m := <-msgs:
				if m == "WATCHDOG=1" {
					pings++
					continue
				}
				return m
			case <-deadline:
				t.Fatalf("no %s message; log:\n%s", what, logs.String())
			}
		}
	}
	m := next("READY")
	if !strings.HasPrefix(m, "READY=1\nSTATUS=running; console on ") {
		t.Fatalf("first message %q, want READY=1 with the console address", m)
	}
	if c, err := net.Dial("tcp", addr); err != nil {
		t.Fatalf("READY=1 sent but the console does not accept connections: %v", err)
	} else {
		c.Close()
	}
	testutil.Eventually(t, 10*time.Second, "two watchdog pings", func() bool {
		for {
			select {
			case m := <-msgs:
				if m != "WATCHDOG=1" {
					t.Fatalf("unexpected %q", m)
				}
				pings++
			default:
				return pings >= 2
			}
		}
	})

	cmd.Process.Signal(syscall.SIGHUP)
	if m := next("RELOADING"); m != "RELOADING=1" {
		t.Fatalf("after SIGHUP: %q", m)
	}
	if m := next("READY after reload"); m != "READY=1\nSTATUS=running; configuration reloaded" {
		t.Fatalf("after reload: %q", m)
	}
	if err := os.WriteFile(path, []byte(good+"[[virtual_server]]\nname = \"x\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	if m := next("RELOADING"); m != "RELOADING=1" {
		t.Fatalf("after SIGHUP: %q", m)
	}
	if m := next("READY after refused reload"); !strings.HasPrefix(m, "READY=1\nSTATUS=reload refused, running configuration kept: ") {
		t.Fatalf("after a refused reload: %q", m)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	if m := next("STOPPING"); m != "STOPPING=1" {
		t.Fatalf("after SIGTERM: %q", m)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("lbd exited with %v; log:\n%s", err, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("lbd did not stop after SIGTERM")
	}
	if !strings.Contains(logs.String(), "lbd starting") || !strings.Contains(logs.String(), "config="+path) {
		t.Errorf("no start-up line with the config path:\n%s", logs.String())
	}
}
