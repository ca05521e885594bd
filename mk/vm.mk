# Kernel-VM tests: packages whose `//go:build vm` tests need real IPVS run
# inside a qemu VM booted on the stock Debian kernel (scripts/vm/). Each
# package boots one VM. Areas add their package here: VM_PKGS += ./yourpkg
APT_PKGS += qemu-system-x86 busybox-static cpio kmod ipvsadm iproute2 xz-utils
VM_PKGS += ./e2e
VM_TEST_FLAGS ?= -count=1 -timeout 10m

.PHONY: vm-kernel test-vm test-vm-harness vm-shell

# Fetches the kernel (cached in .cache/vm) and builds the base initramfs.
vm-kernel: deps
	@scripts/vm/kernel.sh >/dev/null
	@scripts/vm/initramfs.sh >/dev/null

# The runner's own contract: output and exit status come back from the VM.
test-vm-harness: vm-kernel
	@scripts/vm/selftest.sh

test-vm: deps vm-kernel build test-vm-harness
	CGO_ENABLED=0 $(GO) vet -tags vm $(sort $(VM_PKGS))
	CGO_ENABLED=0 $(GO) test -tags vm -exec $(CURDIR)/scripts/vm/go-test-exec $(VM_TEST_FLAGS) $(sort $(VM_PKGS))

# An interactive shell in the VM (lbd, lbctl, ip, ipvsadm on PATH); exit
# with `exit` or Ctrl-D.
vm-shell: vm-kernel
	@scripts/vm/run --shell
