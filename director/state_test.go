package director

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"lbd/balancer"
)

func TestManagedStateRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "managed.json")
	keys := []balancer.Key{
		balancer.ServiceKey(balancer.TCP, netip.MustParseAddrPort("192.0.2.10:80")),
		balancer.ServiceKey(balancer.UDP, netip.MustParseAddrPort("[2001:db8::1]:53")),
	}
	if err := writeManaged(path, keys); err != nil {
		t.Fatal(err)
	}
	got, err := readManaged(path)
	if err != nil || !slices.Equal(got, keys) {
		t.Fatalf("readManaged = %v, %v; want %v", got, err, keys)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, %v; want 0600", fi.Mode(), err)
	}
}

// A write that fails leaves the previous list: the next start must still
// know which services it owns. The failure is a real one that also happens
// as root: the state file's name is as long as a name may be, so the
// temporary file next to it cannot be created.
func TestManagedStateFailedWriteKeepsOld(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, strings.Repeat("m", 250))
	old := []balancer.Key{balancer.ServiceKey(balancer.TCP, netip.MustParseAddrPort("192.0.2.10:80"))}
	if err := writeManaged(path, old); err == nil {
		t.Fatal("write with a too-long temporary name succeeded; the test needs a failing write")
	}
	// Put the old list in place the plain way, then fail to replace it.
	data, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	newer := append(old, balancer.ServiceKey(balancer.UDP, netip.MustParseAddrPort("192.0.2.53:53")))
	if err := writeManaged(path, newer); err == nil {
		t.Fatal("write succeeded")
	}
	got, err := readManaged(path)
	if err != nil || !slices.Equal(got, old) {
		t.Fatalf("after a failed write: %v, %v; want the old %v", got, err, old)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the state file", len(ents))
	}
}
