# vrrp: the redundancy protocol. Its namespace tests (vrrp/, e2e/vrrp_*)
# run on the host as root; keepalived is the interop peer and the benchmark's
# reference.
APT_PKGS += keepalived iproute2 stress-ng

.PHONY: test-vrrp fuzz-vrrp bench-failover bench-vrrp-stability

test-vrrp: deps
	$(GO) test -race -count=1 ./vrrp ./internal/netlab
	$(GO) test -count=1 -run '^TestVRRP' ./e2e

# FUZZTIME=10m make fuzz-vrrp; new inputs worth keeping land in the Go
# cache: copy them to vrrp/testdata/fuzz/FuzzParse.
FUZZTIME ?= 60s
fuzz-vrrp:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./vrrp

# Two benchmarks, lbd vs keepalived each time:
# - on the host in namespaces, VRRP alone: client-observed outage when the
#   master dies, advert intervals 1s, 100ms, 20ms and 10ms, median of
#   LBD_FAILOVER_TRIALS (default 10) trials; LBD_BIN=path tests a prebuilt
#   lbd instead of building one;
# - in the kernel VM, stateful: a DR pair with IPVS and connection sync
#   (lbd's [sync], keepalived's lvs_sync_daemon), advert 200ms; how many of
#   20 established connections survive the master's death and the outage
#   for new connections, LBD_FAILOVER_TRIALS (default 3 there) trials, with
#   the lbd of `make build`. BENCH_SMP sets the VM's CPU count.
# Its companion, `make bench-vrrp-stability` (below), holds pairs at 10ms
# and 20ms adverts under full CPU load for STABILITY_MINUTES each and
# counts false transitions, advert gaps and CPU per advert.
BENCH_SMP ?= 2
bench-failover: deps vm-kernel build
	$(GO) test -count=1 -timeout 30m -run '^$$' -bench '^BenchmarkVRRPFailover$$' -benchtime 1x ./e2e
	LBD_VM_SMP=$(BENCH_SMP) CGO_ENABLED=0 $(GO) test -tags vm -exec $(CURDIR)/scripts/vm/go-test-exec \
		-count=1 -timeout 30m -run '^$$' -bench '^BenchmarkStatefulFailover$$' -benchtime 1x ./e2e

# lbd and keepalived pairs side by side (lbd with and without rt_priority
# and lock_memory, keepalived with and without vrrp_rt_priority and
# vrrp_no_swap), all at once, with stress-ng on every core and console API
# load inside lbd, STABILITY_MINUTES (default 10) at 10ms adverts and as
# long at 20ms. See BenchmarkVRRPStability in e2e/vrrp_stability_bench_test.go.
STABILITY_MINUTES ?= 10
bench-vrrp-stability: deps
	STABILITY_MINUTES=$(STABILITY_MINUTES) $(GO) test -count=1 -timeout 120m -run '^$$' \
		-bench '^BenchmarkVRRPStability$$' -benchtime 1x ./e2e
