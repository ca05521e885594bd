package director

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"lbd/config"
)

// A change written to the file but not reloaded (a hand edit, `lbd token`,
// `lbd passwd`) must not be overwritten by a console or lbctl edit.
func TestApplyRefusesWhenFileChangedOnDisk(t *testing.T) {
	r := newRig(t, baseConfig)
	handEdited := strings.Replace(baseConfig, "weight = 2", "weight = 7", 1)
	if err := os.WriteFile(r.path, []byte(handEdited), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, version := r.d.Config()
	cfg.FindVirtualServer("web").FindRealServer("rs1").Drained = true
	r.kernel.ResetCounts()
	_, err := r.d.Apply(context.Background(), cfg, version, "test")
	if !errors.Is(err, ErrChangedOnDisk) || !errors.Is(err, config.ErrStale) {
		t.Fatalf("apply over a hand edit: err = %v, want ErrChangedOnDisk (a config.ErrStale)", err)
	}
	if !strings.Contains(err.Error(), "the file changed on disk; reload first") {
		t.Fatalf("message = %q", err)
	}
	after, _ := os.ReadFile(r.path)
	if string(after) != handEdited {
		t.Fatal("the hand edit was overwritten")
	}
	if r.kernel.Writes() != 0 || r.weights()["192.0.2.11"] != 3 {
		t.Fatal("a refused edit changed the table")
	}
	if _, v := r.d.Config(); v != version {
		t.Fatal("a refused edit changed the running version")
	}

	// After the reload the edit goes through, on top of the hand edit.
	if err := r.d.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg, version = r.d.Config()
	cfg.FindVirtualServer("web").FindRealServer("rs1").Drained = true
	if _, err := r.d.Apply(context.Background(), cfg, version, "test"); err != nil {
		t.Fatalf("apply after reload: %v", err)
	}
	reread, err := config.Load(r.path)
	if err != nil {
		t.Fatal(err)
	}
	vs := reread.FindVirtualServer("web")
	if !vs.FindRealServer("rs1").Drained || *vs.FindRealServer("rs2").Weight != 7 {
		t.Fatal("the saved file lost the edit or the reloaded hand edit")
	}
}

// A file removed behind lbd's back is a change on disk too.
func TestApplyRefusesWhenFileRemoved(t *testing.T) {
	r := newRig(t, baseConfig)
	if err := os.Remove(r.path); err != nil {
		t.Fatal(err)
	}
	cfg, version := r.d.Config()
	cfg.FindVirtualServer("web").FindRealServer("rs1").Drained = true
	if _, err := r.d.Apply(context.Background(), cfg, version, "test"); !errors.Is(err, ErrChangedOnDisk) {
		t.Fatalf("err = %v, want ErrChangedOnDisk", err)
	}
}
