package director

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"lbd/balancer"
	"lbd/config"
)

// The managed-services state file lists the IPVS services lbd owns, so a
// service dropped from the config while lbd was stopped is still removed
// on the next start instead of being mistaken for someone else's. It lives
// under /run by default: like the kernel table it describes, it does not
// survive a reboot.

func readManaged(path string) ([]balancer.Key, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var keys []balancer.Key
	if err := json.Unmarshal(data, &keys); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

// writeManaged replaces the state file the way the config is written
// (synced, renamed, directory synced): after a crash or a failed write the
// file is either the old list or the new one, never empty or torn, which
// would make the next start forget services it owns.
func writeManaged(path string, keys []balancer.Key) error {
	data, err := json.Marshal(keys)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return config.WriteFileAtomic(path, data, 0o600)
}

// saveManaged records the reconciler's services when they changed. d.mu is
// held.
func (d *Director) saveManaged() {
	if d.rec == nil || d.opt.StateFile == "" {
		return
	}
	keys := d.rec.Managed()
	if slices.Equal(keys, d.savedManaged) && d.savedManaged != nil {
		return
	}
	if err := writeManaged(d.opt.StateFile, keys); err != nil {
		d.log.Warn("cannot record managed IPVS services", "file", d.opt.StateFile, "err", err)
		return
	}
	d.savedManaged = keys
}
