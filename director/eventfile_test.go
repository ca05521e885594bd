package director

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEventLogSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "events.jsonl")
	log := slog.New(slog.DiscardHandler)
	l := newEventLog(10, time.Now)
	if err := l.persist(path, log); err != nil {
		t.Fatal(err)
	}
	for i := range 25 {
		l.add("health", fmt.Sprintf("web/rs%d", i), "down: refused")
	}
	l.file.close()
	// Compaction keeps the file bounded: at most twice the log.
	if b, _ := os.ReadFile(path); strings.Count(string(b), "\n") >= 20 {
		t.Errorf("file holds %d events for a log of 10", strings.Count(string(b), "\n"))
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	// A torn last line (a crash mid-write) and garbage are skipped.
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("not json\n{\"seq\":26,\"kind\":\"hea")
	f.Close()

	l2 := newEventLog(10, time.Now)
	if err := l2.persist(path, log); err != nil {
		t.Fatal(err)
	}
	got := l2.since(0)
	if len(got) != 10 || got[0].Seq != 16 || got[9].Seq != 25 || got[9].Subject != "web/rs24" {
		t.Fatalf("after a restart: %d events, %+v .. %+v", len(got), got[0], got[len(got)-1])
	}
	ev := l2.add("start", "lb1", "lbd started")
	if ev.Seq != 26 {
		t.Errorf("numbering restarted at %d, want 26 (a follower by sequence sees no repeat)", ev.Seq)
	}
	l2.file.close()
}

// A file grown far beyond the log costs a bounded read.
func TestEventFileHostileSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	line := `{"seq":1,"kind":"x","subject":"` + strings.Repeat("a", 1000) + `"}` + "\n"
	if err := os.WriteFile(path, []byte(strings.Repeat(line, 20000)), 0o600); err != nil {
		t.Fatal(err)
	}
	events, _, err := readEventFile(path, 500)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 500 {
		t.Errorf("read %d events, want the newest 500", len(events))
	}
}
