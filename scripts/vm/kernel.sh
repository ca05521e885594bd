#!/usr/bin/env bash
# Fetches and caches a stock Debian kernel the VM tests boot.
#
# LBD_VM_KERNEL chooses which (scripts/vm/env.sh maps it to its files):
#   stable (default)  the package behind the linux-image-amd64 metapackage
#                     (Debian 12: 6.1)
#   newest            the newest kernel the apt sources offer: the highest of
#                     linux-image-amd64 and the linux-image-X.Y-amd64
#                     metapackages (Debian 12: linux-image-6.12-amd64)
#   X.Y               the series X.Y: linux-image-X.Y-amd64, or
#                     linux-image-amd64 when that is X.Y
# The package is resolved through a metapackage at run time, never pinned:
# old ABI versions (6.1.0-NN, 6.12.NN+deb12) vanish from the archive.
# The result is unpacked under $LBD_VM_CACHE/kernel/<package>/ and described
# in $LBD_VM_CACHE/kernel.env (stable) or kernel-<choice>.env (KVER,
# VMLINUZ, KERNEL, KROOT). A cached kernel is reused without downloading;
# when apt cannot resolve or fetch a package (offline, stale lists) the
# newest cached kernel of the choice is used with a warning.
#
# TCG spends seconds decompressing a bzImage, so when the kernel has a PVH
# entry point the ELF vmlinux inside it is extracted once (VMLINUX) and
# booted directly; qemu's -kernel loads it through the PVH note.
#
# Prints the path of kernel.env on stdout.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=env.sh
. "$here/env.sh"
kdir=$cache/kernel
mkdir -p "$kdir"

log() { echo "vm-kernel: $*" >&2; }

# depends META: the kernel package a metapackage points at:
# "  Depends: linux-image-6.1.0-56-amd64" -> linux-image-6.1.0-56-amd64
depends() {
	apt-cache depends "$1" 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

# series PKG: linux-image-6.12.117+deb12-amd64 -> 6.12
series() { sed -E 's/^linux-image-([0-9]+)\.([0-9]+)[^0-9].*/\1.\2/' <<<"$1"; }

resolve() {
	local stable meta
	stable=$(depends linux-image-amd64)
	case $LBD_VM_KERNEL in
	stable) echo "$stable" ;;
	newest)
		# The series metapackages (linux-image-6.12-amd64) name no ABI;
		# the highest of them and the default kernel wins.
		{
			[ -n "$stable" ] && echo "$stable"
			for meta in $(apt-cache pkgnames linux-image- 2>/dev/null | grep -E '^linux-image-[0-9]+\.[0-9]+-amd64$'); do
				depends "$meta"
			done
		} | sort -V | tail -n1
		;;
	*)
		if [ -n "$stable" ] && [ "$(series "$stable")" = "$LBD_VM_KERNEL" ]; then
			echo "$stable"
		else
			depends "linux-image-$LBD_VM_KERNEL-amd64"
		fi
		;;
	esac
}

# extract_vmlinux BZIMAGE OUT: finds the compressed payload by its magic and
# unpacks it; succeeds only if an ELF comes out.
extract_vmlinux() {
	local magic off cmd
	for magic in 'xz:\xfd7zXZ\x00' 'gzip:\x1f\x8b\x08' 'zstd:\x28\xb5\x2f\xfd'; do
		cmd=${magic%%:*}
		command -v "$cmd" >/dev/null || continue
		for off in $(LC_ALL=C grep -obUaP "${magic#*:}" "$1" | cut -d: -f1 | head -n 3); do
			case $cmd in
			xz) tail -c +$((off + 1)) "$1" | xz -dcq --single-stream >"$2.$$.tmp" 2>/dev/null || true ;;
			gzip) tail -c +$((off + 1)) "$1" | gzip -dcq >"$2.$$.tmp" 2>/dev/null || true ;;
			zstd) tail -c +$((off + 1)) "$1" | zstd -dcq >"$2.$$.tmp" 2>/dev/null || true ;;
			esac
			if [ "$(head -c 4 "$2.$$.tmp" 2>/dev/null | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
				mv "$2.$$.tmp" "$2"
				return 0
			fi
		done
	done
	rm -f "$2.$$.tmp"
	return 1
}

write_env() { # $1 = unpacked package dir
	local pkgroot=$1 vmlinuz kver boot
	vmlinuz=$(find "$pkgroot/boot" -maxdepth 1 -name 'vmlinuz-*' | sort | tail -n1)
	[ -n "$vmlinuz" ] || { log "no vmlinuz in $pkgroot/boot"; exit 1; }
	kver=${vmlinuz##*/vmlinuz-}
	[ -d "$pkgroot/lib/modules/$kver" ] || { log "no modules for $kver in $pkgroot"; exit 1; }
	boot=$vmlinuz
	if grep -qx 'CONFIG_PVH=y' "$pkgroot/boot/config-$kver" 2>/dev/null; then
		if [ -f "$pkgroot/vmlinux" ] || extract_vmlinux "$vmlinuz" "$pkgroot/vmlinux"; then
			boot=$pkgroot/vmlinux
		else
			log "cannot extract vmlinux from $vmlinuz; booting the bzImage (slower)"
		fi
	fi
	{
		echo "KVER=$kver"
		echo "VMLINUZ=$vmlinuz"
		echo "KERNEL=$boot"
		echo "KROOT=$pkgroot"
	} >"$kenv.$$.tmp"
	mv "$kenv.$$.tmp" "$kenv"
	echo "$kenv"
}

# newest_cached: the cached kernel to use offline: the one the env file
# already names, else the highest version of the chosen series (any series
# for stable and newest).
newest_cached() {
	local prev pat='linux-image-*'
	if [ -f "$kenv" ]; then
		prev=$(sed -n 's/^KROOT=//p' "$kenv")
		[ -f "$prev/.ok" ] && { echo "$prev"; return; }
	fi
	case $LBD_VM_KERNEL in stable | newest) ;; *) pat="linux-image-$LBD_VM_KERNEL[.-]*" ;; esac
	find "$kdir" -mindepth 2 -maxdepth 2 -path "*/$pat/.ok" -printf '%h\n' 2>/dev/null |
		sort -V | tail -n1
}

fallback() {
	local c
	c=$(newest_cached)
	[ -n "$c" ] || { log "$1, and no kernel is cached in $kdir"; exit 1; }
	log "$1; using cached $(basename "$c")"
	write_env "$c"
	exit 0
}

pkg=$(resolve || true)
if [ -z "$pkg" ]; then
	# The package lists may be missing (fresh machine): refresh once.
	[ "$(id -u)" -eq 0 ] && { log "apt-get update"; apt-get update -qq >&2 || true; }
	pkg=$(resolve || true)
fi
[ -n "$pkg" ] || fallback "cannot resolve the $LBD_VM_KERNEL kernel package (LBD_VM_KERNEL)"

dest=$kdir/$pkg
if [ -f "$dest/.ok" ]; then
	write_env "$dest"
	exit 0
fi

# Parallel VM runs on a fresh machine: one downloads, the others wait.
exec 9>"$kdir/.lock"
flock 9
if [ -f "$dest/.ok" ]; then
	write_env "$dest"
	exit 0
fi

# As root, apt fetches as its _apt user, which may not reach this tree.
aptopts=()
[ "$(id -u)" -eq 0 ] && aptopts=(-o APT::Sandbox::User=root)
tmp=$(mktemp -d "$kdir/.dl.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log "downloading $pkg"
if ! (cd "$tmp" && apt-get download -q "${aptopts[@]}" "$pkg" >&2); then
	# The lists may name a version the mirror already dropped.
	[ "$(id -u)" -eq 0 ] && { log "apt-get update"; apt-get update -qq >&2 || true; }
	pkg2=$(resolve || true)
	if [ -z "$pkg2" ] || ! (cd "$tmp" && apt-get download -q "${aptopts[@]}" "$pkg2" >&2); then
		fallback "cannot download $pkg"
	fi
	pkg=$pkg2
	dest=$kdir/$pkg
fi
deb=$(ls "$tmp"/*.deb)
mkdir -p "$tmp/x"
dpkg-deb -x "$deb" "$tmp/x"
for d in "$tmp"/x/lib/modules/*/; do kver=$(basename "$d"); break; done
# Debian ships no modules.dep; build it so modprobe can order the modules.
depmod -b "$tmp/x" "$kver"
rm -rf "$dest"
mv "$tmp/x" "$dest"
touch "$dest/.ok"
log "cached $pkg ($kver) in $dest"
write_env "$dest"
