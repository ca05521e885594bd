// Package e2e holds end-to-end scenarios that run inside the kernel VM
// against real IPVS: traffic through a VIP in DR and NAT mode, and the lbd
// daemon's life (table programmed from the TOML file, reload, drift repair,
// graceful removal). The tests carry the `vm` build tag; run them with
// `make test-vm` (see scripts/vm/ and mk/vm.mk).
package e2e
