// Package e2e holds end-to-end scenarios across processes and namespaces,
// always with the real lbd (and lbctl) binaries:
//
//   - `//go:build vm` tests run inside the kernel VM against real IPVS
//     (`make test-vm`, see scripts/vm/): DR and NAT traffic through a VIP,
//     the daemon's life (table from the TOML file, reload, drift repair,
//     graceful removal), health checks taking real servers out and back,
//     lbctl drain --wait, VRRP failover between two directors, and stateful
//     failover (stateful_test.go: connection sync keeps 20 long-lived
//     connections and every new request alive through crashes, graceful
//     handovers, preemption and reloads; stateful_bench_test.go is the
//     VM half of `make bench-failover`, lbd vs keepalived's lvs_sync_daemon);
//   - `//go:build !vm` tests run on the host as root in network namespaces
//     (`go test ./e2e`): VRRP election and takeover between lbd daemons, and
//     the failover benchmark against keepalived (`make bench-failover`);
//   - `//go:build vm && demo` is `make demo`, never a test.
package e2e
