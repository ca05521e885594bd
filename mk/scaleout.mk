# scale-out: active-active directors behind BGP and ECMP. Its VM test
# (e2e/scaleout_vm_test.go, TestScaleOutECMP, part of test-vm) and
# benchmark run FRR (zebra, bgpd, bfdd, vtysh) as the upstream router inside
# the kernel VM: scripts/vm/initramfs.sh copies them in when the host has
# them.
APT_PKGS += frr

.PHONY: bench-scaleout

# bench-scaleout: two active-active directors, 40 established connections
# through the VIP, one director dies (cable cut, processes killed); prints
# per line the share of connections that survived, when the router ended
# the dead director's session and took its next hop out of the kernel, and
# when every connection answered again. Speakers: lbd's [bgp], lbd's [bgp]
# with BFD, and FRR's bgpd beside lbd (the reference), each with every hold
# time in BENCH_SCALEOUT_HOLDS (3s: the smallest; 90s: lbd's default). A
# fresh lab per run, all in one VM; about 15 minutes on an idle machine.
BENCH_SCALEOUT_HOLDS ?= 3s 90s
BENCH_SCALEOUT_SPEAKERS ?= lbd lbd+bfd frr
bench-scaleout: deps vm-kernel build
	LBD_SCALEOUT_HOLDS="$(BENCH_SCALEOUT_HOLDS)" LBD_SCALEOUT_SPEAKERS="$(BENCH_SCALEOUT_SPEAKERS)" \
	LBD_VM_SMP=$(BENCH_SMP) CGO_ENABLED=0 $(GO) test -tags vm -exec $(CURDIR)/scripts/vm/go-test-exec \
		-count=1 -timeout 60m -run '^$$' -bench '^BenchmarkScaleOutFailover$$' -benchtime 1x ./e2e
