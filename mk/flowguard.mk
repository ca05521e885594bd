# flowguard: the quiet and hold guards on nftables. Its host tests (root,
# network namespaces) run with `go test ./...`; its `//go:build vm` test
# proves the hook ordering beside real IPVS in the kernel VM.
APT_PKGS += iproute2
VM_PKGS += ./flowguard

.PHONY: test-flowguard test-flowguard-vm
test-flowguard:
	$(GO) test -race -count=1 ./flowguard

test-flowguard-vm: deps vm-kernel
	CGO_ENABLED=0 $(GO) vet -tags vm ./flowguard
	CGO_ENABLED=0 $(GO) test -tags vm -exec $(CURDIR)/scripts/vm/go-test-exec $(VM_TEST_FLAGS) ./flowguard
