//go:build linux

package vmtest

import (
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

// Kernel is the running kernel's release, e.g. "6.12.117+deb12-amd64",
// with its major and minor version.
type Kernel struct {
	Release      string
	Major, Minor int
}

// AtLeast reports whether the kernel is major.minor or newer.
func (k Kernel) AtLeast(major, minor int) bool {
	return k.Major > major || k.Major == major && k.Minor >= minor
}

// RunningKernel reads the release of the kernel the test runs on (the
// VM's: scripts/vm boots the one LBD_VM_KERNEL chose).
func RunningKernel(t testing.TB) Kernel {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatalf("vmtest: uname: %v", err)
	}
	k, err := ParseKernelRelease(unix.ByteSliceToString(u.Release[:]))
	if err != nil {
		t.Fatalf("vmtest: %v", err)
	}
	return k
}

// ParseKernelRelease reads "6.1.0-57-amd64" or "6.12.117+deb12-amd64".
func ParseKernelRelease(release string) (Kernel, error) {
	k := Kernel{Release: release}
	if _, err := fmt.Sscanf(release, "%d.%d", &k.Major, &k.Minor); err != nil {
		return Kernel{}, fmt.Errorf("kernel release %q: %w", release, err)
	}
	return k, nil
}
