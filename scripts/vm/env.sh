# shellcheck shell=bash
# Sourced by the VM scripts (after setting $root): where the cache is and
# which kernel the VM boots.
#
# LBD_VM_KERNEL: stable (default: the package behind linux-image-amd64),
# newest (the newest kernel the apt sources offer) or a series X.Y (6.1,
# 6.12). Each choice has its own description file, so VMs on two kernels
# can run side by side: kernel.env for stable (the name it always had),
# kernel-<choice>.env for the others.
cache=${LBD_VM_CACHE:-$root/.cache/vm}
LBD_VM_KERNEL=${LBD_VM_KERNEL:-stable}
case $LBD_VM_KERNEL in
stable | newest) ;;
*)
	if ! [[ $LBD_VM_KERNEL =~ ^[0-9]+\.[0-9]+$ ]]; then
		echo "vm: LBD_VM_KERNEL=$LBD_VM_KERNEL: want stable, newest or a series like 6.12" >&2
		exit 2
	fi
	;;
esac
export LBD_VM_KERNEL
if [ "$LBD_VM_KERNEL" = stable ]; then
	kenv=$cache/kernel.env
else
	kenv=$cache/kernel-$LBD_VM_KERNEL.env
fi

# load_kenv sources the kernel's description, resolving the kernel first
# when there is none or when the paths it names are gone (the checkout or
# its cache moved): never a boot of a kernel file that does not exist.
load_kenv() {
	KROOT=
	# shellcheck source=/dev/null
	[ -f "$kenv" ] && . "$kenv"
	if [ -z "$KROOT" ] || [ ! -d "$KROOT" ] || [ ! -f "$KERNEL" ]; then
		"$here/kernel.sh" >/dev/null
		# shellcheck source=/dev/null
		. "$kenv"
	fi
}
