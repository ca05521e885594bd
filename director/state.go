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

func writeManaged(path string, keys []balancer.Key) error {
	data, err := json.Marshal(keys)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".managed-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
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
