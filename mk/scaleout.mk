# scale-out: active-active directors behind BGP and ECMP. Its VM test
# (e2e/scaleout_vm_test.go) and benchmark run FRR (zebra, bgpd, bfdd,
# vtysh) as the upstream router inside the kernel VM: scripts/vm/initramfs.sh
# copies them in when the host has them.
APT_PKGS += frr
