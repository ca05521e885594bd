package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Write encodes c canonically and stores it at path atomically (see
// WriteBytes). It does not validate: pass it a config from Parse or
// Normalize.
func Write(path string, c *Config) error {
	data, err := Encode(c)
	if err != nil {
		return err
	}
	return WriteBytes(path, data)
}

// WriteBytes replaces the file at path with data so that a crash or error
// at any point leaves either the old or the new file, never a mix: data
// goes to a temporary file in the same directory, is synced, the previous
// version is kept as path.bak, the temporary file is renamed over path and
// the directory is synced. The file holds password and token hashes: a new
// file gets mode 0600, a rewritten one keeps its mode without the group and
// other bits (0644 becomes 0600, 0400 stays), and so does path.bak. If path
// is a symlink, its target is replaced. On failure the old file is intact and the temporary file gone.
func WriteBytes(path string, data []byte) error {
	return writeAtomic(path, data, nil)
}

// writeHooks lets tests inject a failure after a given step.
type writeHooks struct {
	fail func(step string) error
}

func (h *writeHooks) check(step string) error {
	if h == nil || h.fail == nil {
		return nil
	}
	return h.fail(step)
}

// WriteFileAtomic replaces the file at path with data so that a crash or
// error at any point leaves either the old or the new file, never a mix or
// an empty file: data goes to a temporary file in the same directory, is
// synced, is renamed over path, and the directory is synced. A new file
// gets perm; a rewritten one keeps its mode. If path is a symlink, its
// target is replaced. On failure the old file is intact and the temporary
// file gone. It is WriteBytes for files other than the config: no backup,
// no narrowing of the mode.
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	return writeFileAtomic(path, data, perm, nil)
}

func writeFileAtomic(path string, data []byte, perm fs.FileMode, hooks *writeHooks) error {
	return replaceFile(path, data, func(old fs.FileInfo) fs.FileMode {
		if old == nil {
			return perm
		}
		return old.Mode().Perm()
	}, nil, hooks)
}

func writeAtomic(path string, data []byte, hooks *writeHooks) error {
	// The file holds password and token hashes: new is 0600, and a
	// rewrite narrows it to the owner and never widens it (a 0400 file
	// stays 0400).
	mode := func(old fs.FileInfo) fs.FileMode {
		if old == nil {
			return 0o600
		}
		return old.Mode().Perm() & 0o600
	}
	err := replaceFile(path, data, mode, func(path string, mode fs.FileMode) error {
		if err := backup(path, mode, hooks); err != nil {
			return fmt.Errorf("keeping the previous version: %w", err)
		}
		return nil
	}, hooks)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// replaceFile is the atomic replacement behind WriteFileAtomic and
// WriteBytes. mode gives the new file's mode from the old file's (nil
// when there is none); beforeRename, when the old file exists, runs just
// before the rename (the config keeps its backup there).
func replaceFile(path string, data []byte, mode func(old fs.FileInfo) fs.FileMode,
	beforeRename func(path string, mode fs.FileMode) error, hooks *writeHooks) (err error) {
	if target, err := filepath.EvalSymlinks(path); err == nil {
		path = target
	}
	wrap := func(err error) error { return fmt.Errorf("write %s: %w", path, err) }

	old, statErr := os.Stat(path)
	switch {
	case statErr == nil:
		if !old.Mode().IsRegular() {
			return wrap(errors.New("not a regular file"))
		}
	case errors.Is(statErr, fs.ErrNotExist):
		old = nil
	default:
		return wrap(statErr)
	}
	perm := mode(old)

	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return wrap(err)
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return wrap(err)
	}
	if err = hooks.check("write"); err != nil {
		return wrap(err)
	}
	if err = tmp.Chmod(perm); err != nil {
		return wrap(err)
	}
	if err = tmp.Sync(); err != nil {
		return wrap(err)
	}
	if err = tmp.Close(); err != nil {
		return wrap(err)
	}
	if old != nil && beforeRename != nil {
		if err = beforeRename(path, perm); err != nil {
			return wrap(err)
		}
	}
	if err = hooks.check("rename"); err != nil {
		return wrap(err)
	}
	if err = os.Rename(tmpName, path); err != nil {
		return wrap(err)
	}
	// The rename is durable only once the directory entry is on disk.
	if err := syncDir(dir); err != nil {
		return wrap(err)
	}
	return nil
}

// backup makes path.bak a copy of path, replacing any older backup
// atomically: a hard link when the filesystem allows it, else a copy.
// The backup gets mode (the old file is about to be replaced anyway, so
// narrowing the hard-linked inode is harmless).
func backup(path string, mode fs.FileMode, hooks *writeHooks) error {
	bak := path + ".bak"
	tmp := fmt.Sprintf("%s.tmp-%d", bak, os.Getpid())
	os.Remove(tmp)
	if err := os.Link(path, tmp); err != nil {
		if err := copyFile(path, tmp); err != nil {
			os.Remove(tmp)
			return err
		}
	}
	if err := os.Chmod(tmp, mode); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := hooks.check("backup"); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, bak); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm()&0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// CheckMode returns a warning when the file at path can be read or written
// by its group or by others, "" when not (or when it cannot be looked at:
// reading it reports that). The daemon logs the warning at start: the file
// holds the console's password hash and token hashes.
func CheckMode(path string) (warning string) {
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	perm := fi.Mode().Perm()
	if perm&0o066 == 0 {
		return ""
	}
	who := "its group or others"
	switch {
	case perm&0o060 == 0:
		who = "others"
	case perm&0o006 == 0:
		who = "its group"
	}
	return fmt.Sprintf("config: %s can be read or written by %s (mode %04o) and holds password and token hashes; run chmod 600 %s",
		path, who, perm, path)
}
