# vrrp: the redundancy protocol. Its namespace tests (vrrp/, e2e/vrrp_*)
# run on the host as root; keepalived is the interop peer and the benchmark's
# reference.
APT_PKGS += keepalived iproute2

.PHONY: test-vrrp fuzz-vrrp bench-failover

test-vrrp: deps
	$(GO) test -race -count=1 ./vrrp ./internal/netlab
	$(GO) test -count=1 -run '^TestVRRP' ./e2e

# FUZZTIME=10m make fuzz-vrrp; new inputs worth keeping land in the Go
# cache: copy them to vrrp/testdata/fuzz/FuzzParse.
FUZZTIME ?= 60s
fuzz-vrrp:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./vrrp

# Client-observed outage when the master dies, lbd vs keepalived, advert
# intervals 1s and 100ms, median of LBD_FAILOVER_TRIALS (default 10) trials.
# LBD_BIN=path tests a prebuilt lbd instead of building one.
bench-failover: deps
	$(GO) test -count=1 -timeout 30m -run '^$$' -bench '^BenchmarkVRRPFailover$$' -benchtime 1x ./e2e
