#!/usr/bin/env bash
# Builds (or reuses) the base initramfs of the test VM: busybox, the kernel
# modules IPVS and the network tests need, iproute2, ipvsadm, bash and
# keepalived with their libraries, and /init. The per-run payload (test
# binary, lbd, args) is a second cpio archive appended by scripts/vm/run.
#
# The image name carries a hash of everything it is made of, so a change to
# the kernel, a host tool or this script yields a new image. Prints its path.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=env.sh
. "$here/env.sh"
mkdir -p "$cache"

log() { echo "vm-initramfs: $*" >&2; }

load_kenv

# Modules in load order. Dependencies come from modprobe --show-depends, so
# only the leaves matter here. crc32c is a softdep of libcrc32c that
# --show-depends lists on this kernel but is named first to be sure. A
# module this kernel lacks (ip_vs_twos appeared in 6.6) is left out.
want=(
	crc32c libcrc32c nf_defrag_ipv4 nf_defrag_ipv6 nf_conntrack ip_vs
	ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_lblc ip_vs_lblcr ip_vs_dh
	ip_vs_sh ip_vs_sed ip_vs_nq ip_vs_fo ip_vs_ovf ip_vs_mh ip_vs_twos
	veth dummy llc stp bridge macvlan
	# A real system loads these on demand when a netlink socket of their
	# family is opened (vishvananda/netlink's NewHandle() opens XFRM and
	# NETFILTER sockets); the VM has no modprobe to do it.
	xfrm_user nfnetlink
	# lbd's handover guard (flowguard) programs nftables.
	nf_tables
	# The NIC of scripts/vm/run --forward (qemu user networking); without
	# --forward the VM has no device for them.
	virtio_pci virtio_net
)
declare -A opts=([dummy]="numdummies=0")
# Debian's static busybox runs its own applets before anything on PATH
# (sh "standalone" mode): `ip` in a script would be busybox's ip. dash
# becomes /bin/sh so that scripts get the real tools. bash is there for the
# project's bash scripts (scripts/realserver.sh sets up the lab's real
# servers); /bin/sh stays dash. keepalived is the reference the stateful
# failover benchmark (e2e/stateful_bench_test.go) measures lbd against: it
# programs IPVS and runs the kernel's sync daemon itself. It needs nothing
# but its libraries when given -f and its pid files (the benchmark makes
# /run/keepalived, as /run is a tmpfs at boot).
tools=(/usr/sbin/ipvsadm /bin/ip /bin/ss /sbin/bridge /bin/dash /bin/bash /usr/sbin/keepalived)
busybox=/bin/busybox
for t in "$busybox" "${tools[@]}"; do
	[ -x "$t" ] || { log "missing $t (make deps installs busybox-static, iproute2, ipvsadm, dash, bash, keepalived)"; exit 1; }
done
# FRR, the upstream router of the BGP/ECMP lab (e2e/scaleout_vm_test.go):
# zebra (routes into the kernel), bgpd, bfdd and vtysh, only when the host
# has them (Debian's frr; make deps installs it). A test that needs them
# finds them missing on PATH and says so. The daemons run as root (-u root
# -g root); FRR insists that this user be in its vty group, frrvty.
frr=()
for t in /usr/lib/frr/zebra /usr/lib/frr/bgpd /usr/lib/frr/bfdd /usr/bin/vtysh; do
	[ -x "$t" ] && frr+=("$t")
done
[ ${#frr[@]} -eq 4 ] || { [ ${#frr[@]} -eq 0 ] || log "FRR incomplete on this host (${frr[*]}); left out"; frr=(); }

key=$( {
	echo "$KVER $VMLINUZ"
	printf '%s\n' "${want[@]}"
	sha256sum "$here/initramfs.sh" "$here/init" "$busybox" "${tools[@]}" "${frr[@]}"
} | sha256sum | cut -c1-16)
img=$cache/initramfs-$KVER-$key.cpio.gz
if [ -f "$img" ]; then
	echo "$img"
	exit 0
fi

exec 9>"$cache/.initramfs.lock"
flock 9
[ -f "$img" ] && { echo "$img"; exit 0; } # built while we waited

modlist=$(
	seen=" "
	for m in "${want[@]}"; do
		if ! deps=$(modprobe -d "$KROOT" -S "$KVER" --show-depends "$m" 2>/dev/null); then
			log "kernel $KVER has no module $m; left out"
			continue
		fi
		while read -r kind path _; do
			[ "$kind" = insmod ] || continue # "builtin X": nothing to load
			case "$seen" in *" $path "*) continue ;; esac
			seen="$seen$path "
			name=$(basename "$path"); name=${name%%.ko*}
			echo "$path ${opts[${name//-/_}]:-}"
		done <<<"$deps"
	done
)

stage=$(mktemp -d "$cache/.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
cd "$stage"
mkdir -p bin sbin usr/bin usr/sbin usr/local/bin usr/local/sbin etc root \
	proc sys dev tmp run var lib/modules payload
ln -s ../run var/run
cp "$busybox" bin/busybox
for l in $(bin/busybox --list-full); do
	[ -e "$l" ] || ln -s /bin/busybox "$l"
done
for t in "${tools[@]}" "${frr[@]}"; do
	rm -f ".$t" "sbin/$(basename "$t")" "usr/sbin/$(basename "$t")" "bin/$(basename "$t")"
	mkdir -p ".$(dirname "$t")"
	cp "$t" ".$t"
	ldd "$t" | awk '/=> \// { print $3 } /^\t\// { print $1 }' | while read -r lib; do
		mkdir -p ".$(dirname "$lib")"
		cp -L "$lib" ".$lib"
	done
done
[ -d /etc/iproute2 ] && cp -r /etc/iproute2 etc/
printf 'root:x:0:0:root:/root:/bin/sh\n' >etc/passwd
printf 'root:x:0:\n' >etc/group
if [ ${#frr[@]} -gt 0 ]; then
	printf 'frr:x:100:\nfrrvty:x:101:root\n' >>etc/group
	# The FRR daemons on PATH; vtysh lets root in without PAM (the VM has
	# none); /var/tmp/frr is where the daemons keep their crash logs.
	for t in "${frr[@]}"; do
		[ -e "usr/sbin/$(basename "$t")" ] || ln -s "$t" "usr/sbin/$(basename "$t")"
	done
	mkdir -p etc/frr var/tmp/frr
	printf 'username root nopassword\n' >etc/frr/vtysh.conf
fi
printf '127.0.0.1 localhost\n::1 localhost\n' >etc/hosts

: >etc/vm-modules
while read -r path args; do
	[ -n "$path" ] || continue
	rel=${path#"$KROOT/lib/modules/$KVER/"}
	dst=lib/modules/${rel%.ko*}.ko
	mkdir -p "$(dirname "$dst")"
	# busybox insmod cannot read .zst; store every module uncompressed.
	case "$path" in
	*.ko) cp "$path" "$dst" ;;
	*.ko.xz) xz -dc "$path" >"$dst" ;;
	*.ko.gz) gzip -dc "$path" >"$dst" ;;
	*.ko.zst) zstd -qdc "$path" >"$dst" ;;
	*) log "unknown module format: $path"; exit 1 ;;
	esac
	echo "${dst#lib/modules/} $args" >>etc/vm-modules
done <<<"$modlist"

ln -sf dash bin/sh
cp "$here/init" init
chmod 755 init
find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 | gzip -6 >"$img.tmp"
# The payload archive is appended uncompressed; the kernel skips zero
# padding between archives, so align the end of this one.
size=$(stat -c %s "$img.tmp")
pad=$(( (512 - size % 512) % 512 ))
head -c "$pad" /dev/zero >>"$img.tmp"
mv "$img.tmp" "$img"
# Keep only the newest few images of this kernel (another kernel's are in
# use by VMs on that kernel).
find "$cache" -maxdepth 1 -name "initramfs-$KVER-*.cpio.gz" -printf '%T@ %p\n' |
	sort -rn | tail -n +4 | cut -d' ' -f2- | xargs -r rm -f
log "built $img ($(du -h "$img" | cut -f1))"
echo "$img"
