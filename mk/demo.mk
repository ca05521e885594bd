# make demo: a narrated tour of lbd in the kernel VM (e2e/demo_test.go):
# two lbd directors with VRRP in front of two real servers, round robin,
# lbctl status, drain, a health check taking out a dead real server, and
# the master killed while a client measures the outage. On a fresh machine
# deps, vm-kernel and build provide the packages, the kernel and the
# binaries. The `demo` build tag keeps it out of make test-vm.
.PHONY: demo
demo: deps vm-kernel build
	CGO_ENABLED=0 $(GO) test -tags 'vm demo' -exec $(CURDIR)/scripts/vm/go-test-exec \
		-count=1 -timeout 5m -run '^TestDemo$$' -v ./e2e
