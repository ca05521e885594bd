# bgp: active-active directors announcing VIPs over BGP (ECMP). The host
# namespace tests (e2e/bgp_ns_test.go) run real lbd daemons, built with
# -tags fakeipvs as the host has no IPVS, against FRR (zebra + bgpd) and
# BIRD 2 as the router.
APT_PKGS += frr bird2 iproute2

.PHONY: test-bgp
test-bgp: deps
	$(GO) test -count=1 ./bgp ./director ./config
	$(GO) test -count=1 -run '^TestBGP' ./e2e
