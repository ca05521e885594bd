#!/usr/bin/env bash
# Checks the VM runner's contract in one boot: the payload's arguments
# arrive intact, its output comes back byte for byte (no \r from the serial
# line), the environment is set up (LBD_IN_VM, IPVS modules, iproute2), and
# its exit status becomes the runner's.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat >"$tmp/payload" <<'PAYLOAD'
#!/bin/sh
printf 'args:'; for a in "$@"; do printf ' [%s]' "$a"; done; echo
echo "in-vm=$LBD_IN_VM"
grep -q '^ip_vs ' /proc/modules && echo "ipvs=loaded"
ipvsadm -A -t 192.0.2.1:80 -s mh && ipvsadm -Sn
ip -V | cut -d, -f1
i=0
while [ $i -lt 500 ]; do echo "line $i"; i=$((i + 1)); done
exit 3
PAYLOAD
chmod +x "$tmp/payload"

{
	echo "args: [a b] [it's] [\$HOME] []"
	echo "in-vm=1"
	echo "ipvs=loaded"
	echo "-A -t 192.0.2.1:80 -s mh"
	echo "ip utility"
	for i in $(seq 0 499); do echo "line $i"; done
} >"$tmp/want"

rc=0
# shellcheck disable=SC2016 # a literal $HOME must arrive unexpanded
LBD_VM_QUIET=1 "$here/run" "$tmp/payload" "a b" "it's" '$HOME' "" >"$tmp/got" 2>"$tmp/err" || rc=$?
fail=
[ "$rc" = 3 ] || { echo "vm-selftest: exit status $rc, want 3" >&2; fail=1; }
if ! cmp -s "$tmp/want" "$tmp/got"; then
	echo "vm-selftest: output differs (want vs got):" >&2
	diff "$tmp/want" "$tmp/got" | head -n 20 >&2 || true
	fail=1
fi
if [ -n "$fail" ]; then
	cat "$tmp/err" >&2
	exit 1
fi
echo "vm-selftest: ok on the ${LBD_VM_KERNEL:-stable} kernel (output and exit status come back from the VM)"
