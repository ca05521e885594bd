# Kernel-VM tests: packages whose `//go:build vm` tests need real IPVS run
# inside a qemu VM booted on a stock Debian kernel (scripts/vm/). Each
# package boots one VM. Areas add their package here: VM_PKGS += ./yourpkg
#
# VM_KERNELS: the kernels every VM package runs on, one after the other
# (LBD_VM_KERNEL, scripts/vm/env.sh): Debian's default (stable: 6.1 in
# Debian 12) and the newest the apt sources offer (newest: 6.12 today, the
# first with the twos scheduler). Both resolve through metapackages, never
# a pinned ABI. Sequential, not side by side: test-vm already runs two
# package VMs at once, which keeps both cores busy (TCG), so four VMs at
# once would take as long and stretch every timing in the tests.
# `make test-vm VM_KERNELS=newest` runs one.
APT_PKGS += qemu-system-x86 busybox-static cpio kmod ipvsadm iproute2 xz-utils
VM_PKGS += ./e2e
VM_TEST_FLAGS ?= -count=1 -timeout 10m
VM_KERNELS ?= stable newest

.PHONY: vm-kernel test-vm test-vm-harness vm-shell

# Fetches the kernels (cached in .cache/vm) and builds their base initramfs.
vm-kernel: deps
	@for k in $(VM_KERNELS); do \
		LBD_VM_KERNEL=$$k scripts/vm/kernel.sh >/dev/null && \
		LBD_VM_KERNEL=$$k scripts/vm/initramfs.sh >/dev/null || exit 1; \
	done

# The runner's own contract: output and exit status come back from the VM.
test-vm-harness: vm-kernel
	@for k in $(VM_KERNELS); do LBD_VM_KERNEL=$$k scripts/vm/selftest.sh || exit 1; done

# e2e is the long pole: ~7 minutes in one VM while the other packages take
# ~2. Its tests run in two VMs side by side: E2E_FIRST (the stateful,
# failover and scale-out tests, which mostly wait on timers) in one, the rest
# of e2e and then the other packages, one at a time, in the other. That is
# two VMs at once, as before, each on one core.
E2E_FIRST ?= ^(TestStateful|TestActiveActive|TestScaleOut|TestFailover)
VM_GO_TEST = CGO_ENABLED=0 $(GO) test -tags vm -exec $(CURDIR)/scripts/vm/go-test-exec $(VM_TEST_FLAGS)

test-vm: deps vm-kernel build test-vm-harness
	CGO_ENABLED=0 $(GO) vet -tags vm $(sort $(VM_PKGS))
	@rc=0; for k in $(VM_KERNELS); do \
		echo "== VM tests on the $$k kernel ($$(sed -n 's/^KVER=//p' "$$(LBD_VM_KERNEL=$$k scripts/vm/kernel.sh)"))"; \
		start=$$(date +%s); \
		LBD_VM_KERNEL=$$k $(VM_GO_TEST) -run '$(E2E_FIRST)' ./e2e & first=$$!; \
		LBD_VM_KERNEL=$$k $(VM_GO_TEST) -p 1 -skip '$(E2E_FIRST)' $(sort $(VM_PKGS)) || rc=1; \
		wait $$first || rc=1; \
		echo "== VM tests on the $$k kernel: $$(( $$(date +%s) - start ))s"; \
	done; exit $$rc

# An interactive shell in the VM (lbd, lbctl, ip, ipvsadm on PATH); exit
# with `exit` or Ctrl-D. LBD_VM_KERNEL=newest for the newest kernel.
vm-shell: vm-kernel
	@scripts/vm/run --shell
