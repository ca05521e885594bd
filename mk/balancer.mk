# balancer: the IPVS reconciler. Its `//go:build vm` tests run inside the
# kernel VM (mk/vm.mk); bench-reconcile times it against `ipvsadm -R` there.
APT_PKGS += ipvsadm
VM_PKGS += ./balancer

.PHONY: test-balancer test-sync-vm bench-reconcile
test-balancer:
	$(GO) test -race -count=1 ./balancer

# The connection-sync VM tests alone (sync daemons on the real kernel, a
# real sync between two director namespaces), in one VM.
test-sync-vm: deps vm-kernel
	CGO_ENABLED=0 $(GO) test -tags vm -exec $(CURDIR)/scripts/vm/go-test-exec \
		-count=1 -timeout 10m -run 'Sync' ./balancer

# 1,000 virtual services x 20 real servers: first apply, no-op resync and a
# one-weight change through lbd, then `ipvsadm -R` of the same table, in one
# VM. BENCH_SMP sets the VM's CPU count.
BENCH_SMP ?= 2
bench-reconcile: deps vm-kernel
	LBD_VM_SMP=$(BENCH_SMP) CGO_ENABLED=0 $(GO) test -tags vm -exec $(CURDIR)/scripts/vm/go-test-exec \
		-count=1 -timeout 20m -run '^$$' -bench '^BenchmarkReconcile$$' -benchtime 1x ./balancer
