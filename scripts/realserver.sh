#!/usr/bin/env bash
# realserver.sh - prepare a Linux host as a real server behind lbd with
# direct routing (DR).
#
# In DR the director forwards the client's packet unchanged (destination =
# the VIP) to the real server's MAC address, and the real server answers the
# client directly from the VIP. So every real server must own the VIP, but
# must never claim it on the LAN, or clients and routers would send VIP
# traffic to it instead of the director. This script:
#
#   * puts each VIP on the loopback interface: IPv4 as /32, IPv6 as /128
#     with nodad (a /24 on lo would make the host claim the whole subnet);
#   * IPv4: sets arp_ignore=1 (answer ARP only for addresses configured on
#     the interface the request came in on, so never for lo's VIPs) and
#     arp_announce=2 (never use a lo VIP as the source of our own ARP
#     requests, which would teach neighbours VIP -> our MAC), both in
#     net.ipv4.conf.all and on the outward interface(s). The kernel applies
#     the larger of "all" and the interface value, so "all" alone is enough;
#     the interface is set too so the intent is visible there;
#   * IPv6: there is no ARP. Neighbour discovery already behaves the way
#     arp_ignore=1 + arp_announce=2 make IPv4 behave: Linux answers a
#     neighbour solicitation only for an address on the receiving interface,
#     and its own solicitations take their source address from the outgoing
#     interface. There is no sysctl to set; the VIP is added with nodad
#     (duplicate address detection is meaningless on lo).
#
# Usage:
#   realserver.sh [options] up VIP [VIP...]    add the VIPs, set the sysctls
#   realserver.sh [options] down VIP [VIP...]  remove the VIPs; restore the
#                                              sysctls when no VIP is left on lo
#   realserver.sh [options] status [VIP...]    check the setup; exit 1 if wrong
#
# Options:
#   --interface IF  the outward interface (repeatable); default: the
#                   interface(s) of the default route(s)
#   --persist       up: also write a sysctl.d file and a systemd unit
#                   (oneshot, runs `up` at boot) so the setup survives a
#                   reboot; down: remove the VIPs from it (and the files
#                   when none is left)
#   --root DIR      write every file under DIR instead of / (for tests and
#                   image builds; env REALSERVER_ROOT)
#   -h, --help      this text
#
# `up` is idempotent: running it again changes nothing. Every address is
# checked before anything changes. Exit codes: 0 ok, 1 failure (or, for
# status, something not set up), 2 usage error or invalid address.
set -euo pipefail

PROG=${0##*/}
NAME=lbd-realserver
ROOT=${REALSERVER_ROOT:-}
PERSIST=0
INTERFACES=()

die() { echo "$PROG: $*" >&2; exit 1; }
usage_error() { echo "$PROG: $*" >&2; echo "Run '$PROG --help' for usage." >&2; exit 2; }
say() { echo "$*"; }
warn() { echo "$PROG: warning: $*" >&2; }

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

# ---- address validation ------------------------------------------------

# valid_ipv4 ADDR: dotted quad, no leading zeros (they read as octal to some
# tools), and usable as a VIP: not 0/8, loopback, multicast or reserved.
valid_ipv4() {
	local a=$1 o
	local -a oct
	[[ $a =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] || return 1
	oct=("${BASH_REMATCH[@]:1}")
	for o in "${oct[@]}"; do
		[[ $o =~ ^(0|[1-9][0-9]*)$ ]] && ((o <= 255)) || return 1
	done
	((oct[0] != 0 && oct[0] != 127 && oct[0] < 224))
}

# ipv6_first_group ADDR: prints the first 16-bit group of a valid IPv6
# address (as a number) and returns 0, or returns 1 when ADDR is not a
# plain IPv6 address (embedded IPv4 and zones are refused: not VIPs).
ipv6_groups() {
	local a=${1,,} head tail g n=0
	local -a hg=() tg=()
	[[ $a =~ ^[0-9a-f:]+$ ]] || return 1
	[[ $a == *:::* ]] && return 1
	if [[ $a == *::* ]]; then
		head=${a%%::*} tail=${a#*::}
		[[ $tail == *::* ]] && return 1
		[[ -n $head ]] && IFS=: read -ra hg <<<"$head"
		[[ -n $tail ]] && IFS=: read -ra tg <<<"$tail"
		((${#hg[@]} + ${#tg[@]} <= 7)) || return 1
	else
		[[ $a == :* || $a == *: ]] && return 1
		IFS=: read -ra hg <<<"$a"
		((${#hg[@]} == 8)) || return 1
	fi
	for g in "${hg[@]}" "${tg[@]}"; do
		[[ $g =~ ^[0-9a-f]{1,4}$ ]] || return 1
		((n += 16#$g)) || true
	done
	# Print the first group (0 when the address starts with ::) and the sum
	# of all groups (0 only for ::).
	if ((${#hg[@]} > 0)); then echo "$((16#${hg[0]})) $n"; else echo "0 $n"; fi
}

# valid_ipv6 ADDR: a global or unique-local unicast address.
valid_ipv6() {
	local first sum
	read -r first sum < <(ipv6_groups "$1") || return 1
	[[ -n $first ]] || return 1
	((sum != 0)) || return 1                         # ::
	((first != 0)) || return 1                       # ::1, ::ffff:0:0/96 and the rest of ::/8
	(((first & 0xffc0) != 0xfe80)) || return 1       # link-local
	(((first & 0xff00) != 0xff00)) || return 1       # multicast
}

# family VIP: prints 4 or 6 for a usable VIP (optionally with /32 or
# /128), or explains and returns 1.
family() {
	local v=$1 addr=${1%/*} plen=
	[[ $v == */* ]] && plen=${v#*/}
	if valid_ipv4 "$addr"; then
		[[ -z $plen || $plen == 32 ]] || { echo "$PROG: $v: a VIP on lo must be a /32" >&2; return 1; }
		echo 4
	elif valid_ipv6 "$addr"; then
		[[ -z $plen || $plen == 128 ]] || { echo "$PROG: $v: a VIP on lo must be a /128" >&2; return 1; }
		echo 6
	else
		echo "$PROG: $v: not a usable VIP (want an IPv4 or IPv6 unicast address, e.g. 192.0.2.10 or 2001:db8::10)" >&2
		return 1
	fi
}

# ---- kernel state --------------------------------------------------------

SYSCTL_DIR=/proc/sys/net/ipv4/conf

sysctl_get() { cat "$SYSCTL_DIR/$1/$2"; }

# sysctl_set DEV KEY VALUE: writes only when different, so a second `up`
# changes nothing.
sysctl_set() {
	local cur
	cur=$(sysctl_get "$1" "$2")
	if [[ $cur == "$3" ]]; then
		say "net.ipv4.conf.$1.$2 = $3 (already)"
	else
		echo "$3" >"$SYSCTL_DIR/$1/$2"
		say "net.ipv4.conf.$1.$2 = $3 (was $cur)"
	fi
}

# outward_interfaces: --interface values, else the devices of the default
# routes (IPv4 first, then IPv6), deduplicated.
outward_interfaces() {
	if ((${#INTERFACES[@]} > 0)); then
		printf '%s\n' "${INTERFACES[@]}"
		return
	fi
	{ ip -4 route show default; ip -6 route show default; } 2>/dev/null |
		awk '{for (i = 1; i < NF; i++) if ($i == "dev") print $(i+1)}' | awk '!seen[$0]++'
}

# addr_lines VIP FAMILY: `ip -o addr` lines (any device) holding VIP.
addr_lines() {
	local plen=32
	[[ $2 == 6 ]] && plen=128
	ip -o "-$2" addr show to "${1%/*}/$plen" 2>/dev/null || true
}

# vip_state VIP FAMILY: prints "ok", "absent", "wrong-prefix PLEN" (on lo
# with another prefix length) or "elsewhere DEV".
vip_state() {
	local dev plen line
	local lines
	lines=$(addr_lines "$1" "$2")
	[[ -n $lines ]] || { echo absent; return; }
	while read -r line; do
		# "1: lo    inet 192.0.2.10/32 scope global lo ..."
		dev=$(awk '{print $2}' <<<"$line")
		plen=$(awk '{print $4}' <<<"$line")
		plen=${plen#*/}
		if [[ $dev != lo ]]; then
			echo "elsewhere $dev"
			return
		fi
		if [[ $2 == 4 && $plen != 32 ]] || [[ $2 == 6 && $plen != 128 ]]; then
			echo "wrong-prefix $plen"
			return
		fi
	done <<<"$lines"
	echo ok
}

# vips_on_lo: addresses on lo other than loopback itself.
vips_on_lo() {
	ip -o addr show dev lo 2>/dev/null | awk '{split($4, a, "/"); if (a[1] !~ /^127\./ && a[1] != "::1") print a[1]}'
}

# ---- files -----------------------------------------------------------------

state_dir() { echo "$ROOT/var/lib/$NAME"; }
saved_file() { echo "$(state_dir)/sysctl.saved"; }
sysctl_conf() { echo "$ROOT/etc/sysctl.d/90-$NAME.conf"; }
unit_file() { echo "$ROOT/etc/systemd/system/$NAME.service"; }
wants_link() { echo "$ROOT/etc/systemd/system/multi-user.target.wants/$NAME.service"; }
env_file() { echo "$ROOT/etc/default/$NAME"; }
installed_script() { echo "$ROOT/usr/local/sbin/$NAME"; }

# write_file PATH MODE: atomically replaces PATH with stdin; prints whether
# anything changed.
write_file() {
	local path=$1 mode=$2 tmp
	mkdir -p "$(dirname "$path")"
	tmp=$(mktemp "$path.XXXXXX")
	cat >"$tmp"
	chmod "$mode" "$tmp"
	if [[ -f $path ]] && cmp -s "$tmp" "$path"; then
		rm -f "$tmp"
		say "$path unchanged"
	else
		mv -f "$tmp" "$path"
		say "wrote $path"
	fi
}

# persisted_vips: the VIPs in the persisted list, one per line.
persisted_vips() {
	local f
	f=$(env_file)
	[[ -f $f ]] || return 0
	sed -n 's/^VIPS="\(.*\)"$/\1/p' "$f" | tr ' ' '\n' | sed '/^$/d'
}

persist_up() {
	local -a vips=("$@") ifs=() all=()
	local v opts="" i
	mapfile -t ifs < <(outward_interfaces)
	mapfile -t all < <({ persisted_vips; printf '%s\n' "${vips[@]}"; } | awk '!seen[$0]++')
	for i in "${ifs[@]}"; do opts+="--interface $i "; done

	install_self
	{
		echo "# Written by realserver.sh for lbd direct routing; see $NAME.service."
		echo "net.ipv4.conf.all.arp_ignore = 1"
		echo "net.ipv4.conf.all.arp_announce = 2"
		for i in "${ifs[@]}"; do
			# The slash form keeps interface names with dots (eth0.100) intact.
			echo "net/ipv4/conf/$i/arp_ignore = 1"
			echo "net/ipv4/conf/$i/arp_announce = 2"
		done
	} | write_file "$(sysctl_conf)" 0644
	{
		echo "# Written by realserver.sh: the VIPs $NAME.service puts on lo at boot."
		echo "OPTS=\"${opts% }\""
		echo "VIPS=\"${all[*]}\""
	} | write_file "$(env_file)" 0644
	write_file "$(unit_file)" 0644 <<EOF
# Written by realserver.sh: lbd direct-routing real server setup.
[Unit]
Description=lbd real server: VIPs on lo, ARP suppressed (direct routing)
Documentation=man:ip-address(8)
# Before the network comes up, so the host never answers ARP for a VIP.
Wants=network-pre.target
Before=network-pre.target

[Service]
Type=oneshot
RemainAfterExit=yes
EnvironmentFile=/etc/default/$NAME
ExecStart=/usr/local/sbin/$NAME \$OPTS up \$VIPS
ExecStop=/usr/local/sbin/$NAME down \$VIPS

[Install]
WantedBy=multi-user.target
EOF
	local link
	link=$(wants_link)
	if [[ ! -L $link ]]; then
		mkdir -p "$(dirname "$link")"
		ln -sf "/etc/systemd/system/$NAME.service" "$link"
		say "enabled $NAME.service"
	fi
	if [[ -z $ROOT && -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
		systemctl daemon-reload
	fi
}

install_self() {
	local self dst
	self=$(readlink -f "${BASH_SOURCE[0]}")
	dst=$(installed_script)
	[[ $self == "$(readlink -f "$dst" 2>/dev/null || true)" ]] && return 0
	write_file "$dst" 0755 <"$self"
}

persist_down() {
	local -a gone=("$@") keep=()
	local v g drop
	while read -r v; do
		[[ -n $v ]] || continue
		drop=0
		for g in "${gone[@]}"; do
			if [[ $(canon "$g") == "$(canon "$v")" ]]; then drop=1; fi
		done
		((drop)) || keep+=("$v")
	done < <(persisted_vips)
	if ((${#keep[@]} > 0)); then
		local opts
		opts=$(sed -n 's/^OPTS="\(.*\)"$/\1/p' "$(env_file)")
		{
			echo "# Written by realserver.sh: the VIPs $NAME.service puts on lo at boot."
			echo "OPTS=\"$opts\""
			echo "VIPS=\"${keep[*]}\""
		} | write_file "$(env_file)" 0644
		return
	fi
	local f
	for f in "$(wants_link)" "$(unit_file)" "$(env_file)" "$(sysctl_conf)" "$(installed_script)"; do
		if [[ -e $f || -L $f ]]; then
			rm -f "$f"
			say "removed $f"
		fi
	done
	if [[ -z $ROOT && -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
		systemctl daemon-reload
	fi
}

# canon VIP: the address without a prefix length, lower case (enough to
# compare what the operator typed with what the script wrote).
canon() { local v=${1%/*}; echo "${v,,}"; }

# ---- commands --------------------------------------------------------------

require_root() {
	[[ $(id -u) -eq 0 ]] || die "must run as root: it changes addresses and sysctls (try: sudo $PROG $*)"
}

# check_vips VIP...: validates every VIP before anything changes; prints
# "VIP FAMILY" lines.
check_vips() {
	local v f bad=0
	for v in "$@"; do
		if f=$(family "$v"); then
			echo "$(canon "$v") $f"
		else
			bad=1
		fi
	done
	return "$bad"
}

# lock serialises concurrent runs (a boot unit and an operator, say) by
# locking the script file itself, so a refused command leaves no file.
lock() {
	if command -v flock >/dev/null; then
		exec 9<"$(readlink -f "${BASH_SOURCE[0]}")"
		flock 9
	fi
}

cmd_up() {
	(($# > 0)) || usage_error "up: give at least one VIP"
	local checked
	checked=$(check_vips "$@") || exit 2
	require_root up "$@"
	lock

	local -a vips=() fams=()
	local v f st
	while read -r v f; do
		st=$(vip_state "$v" "$f")
		case $st in
		ok | absent) ;;
		wrong-prefix*) die "$v is on lo as /${st#wrong-prefix }; remove it first (ip addr del $v/${st#wrong-prefix } dev lo)" ;;
		elsewhere*) die "$v is configured on ${st#elsewhere }: this host would answer ARP for it there; remove it first" ;;
		esac
		vips+=("$v") fams+=("$f")
	done <<<"$checked"

	local -a ifs=()
	mapfile -t ifs < <(outward_interfaces)
	if ((${#ifs[@]} == 0)); then
		warn "no default route: setting only net.ipv4.conf.all (enough; give --interface IF to set it there too)"
	fi

	# Remember the sysctls as they were before the first `up`, so the last
	# `down` can put them back. A second `up` must not overwrite them.
	local saved i k
	saved=$(saved_file)
	if [[ ! -f $saved ]]; then
		mkdir -p "$(state_dir)"
		{
			for i in all "${ifs[@]}"; do
				[[ -d $SYSCTL_DIR/$i ]] || continue
				for k in arp_ignore arp_announce; do
					echo "$i $k $(sysctl_get "$i" "$k")"
				done
			done
		} >"$saved.tmp"
		mv -f "$saved.tmp" "$saved"
	fi

	# ARP suppression first, addresses second: never a moment in which the
	# host owns a VIP and would answer ARP for it.
	for i in all "${ifs[@]}"; do
		if [[ ! -d $SYSCTL_DIR/$i ]]; then
			warn "interface $i does not exist: not setting it (net.ipv4.conf.all covers it)"
			continue
		fi
		sysctl_set "$i" arp_ignore 1
		sysctl_set "$i" arp_announce 2
	done

	ip link set lo up
	for ((k = 0; k < ${#vips[@]}; k++)); do
		v=${vips[k]} f=${fams[k]}
		if [[ $(vip_state "$v" "$f") == ok ]]; then
			say "$v already on lo"
		elif [[ $f == 4 ]]; then
			ip -4 addr add "$v/32" dev lo
			say "$v/32 added to lo"
		else
			ip -6 addr add "$v/128" dev lo nodad
			say "$v/128 added to lo"
		fi
	done

	if ((PERSIST)); then
		persist_up "${vips[@]}"
	fi
}

cmd_down() {
	(($# > 0)) || usage_error "down: give at least one VIP"
	local checked
	checked=$(check_vips "$@") || exit 2
	require_root down "$@"
	lock

	local v f plen=32
	local -a vips=()
	while read -r v f; do
		vips+=("$v")
		plen=32
		[[ $f == 6 ]] && plen=128
		if [[ $(vip_state "$v" "$f") == ok ]]; then
			ip "-$f" addr del "$v/$plen" dev lo
			say "$v removed from lo"
		else
			say "$v not on lo"
		fi
	done <<<"$checked"

	local -a left=()
	mapfile -t left < <(vips_on_lo)
	if ((${#left[@]} > 0)); then
		say "ARP sysctls kept: still on lo: ${left[*]}"
	else
		restore_sysctls
	fi

	if ((PERSIST)); then
		persist_down "${vips[@]}"
	else
		local p g
		while read -r p; do
			for g in "${vips[@]}"; do
				if [[ $(canon "$p") == "$g" ]]; then
					warn "$g is persisted and comes back at boot; use 'down --persist $g' to forget it"
				fi
			done
		done < <(persisted_vips)
	fi
}

restore_sysctls() {
	local saved i k val
	saved=$(saved_file)
	if [[ ! -f $saved ]]; then
		say "no VIP left on lo; no saved sysctls to restore"
		return
	fi
	while read -r i k val; do
		[[ -f $SYSCTL_DIR/$i/$k ]] || continue
		if [[ $(sysctl_get "$i" "$k") != "$val" ]]; then
			echo "$val" >"$SYSCTL_DIR/$i/$k"
			say "net.ipv4.conf.$i.$k = $val (restored)"
		fi
	done <"$saved"
	rm -f "$saved"
}

cmd_status() {
	local checked bad=0
	local -a vips=()
	if (($# > 0)); then
		checked=$(check_vips "$@") || exit 2
	else
		local -a found=()
		mapfile -t found < <({ vips_on_lo; persisted_vips; } | awk '!seen[$0]++')
		if ((${#found[@]} == 0)); then
			say "no VIP on lo"
			exit 1
		fi
		checked=$(check_vips "${found[@]}") || exit 1
	fi

	local i k want cur
	local -a ifs=()
	mapfile -t ifs < <(outward_interfaces)
	local has4=0
	[[ $checked == *" 4"* ]] && has4=1
	if ((has4)); then
		for i in all "${ifs[@]}"; do
			if [[ ! -d $SYSCTL_DIR/$i ]]; then
				[[ $i == all ]] || { say "interface $i: missing"; bad=1; }
				continue
			fi
			for k in arp_ignore arp_announce; do
				want=1
				[[ $k == arp_announce ]] && want=2
				cur=$(sysctl_get "$i" "$k")
				if [[ $cur == "$want" ]]; then
					say "net.ipv4.conf.$i.$k = $cur: ok"
				else
					say "net.ipv4.conf.$i.$k = $cur: WRONG, want $want"
					bad=1
				fi
			done
		done
	fi

	local v f st
	while read -r v f; do
		st=$(vip_state "$v" "$f")
		case $st in
		ok)
			if [[ $f == 4 ]]; then
				say "$v: ok (on lo as /32)"
			else
				say "$v: ok (on lo as /128; IPv6 has no ARP, nothing to suppress)"
			fi
			;;
		absent) say "$v: NOT on lo"; bad=1 ;;
		wrong-prefix*) say "$v: WRONG: on lo as /${st#wrong-prefix }"; bad=1 ;;
		elsewhere*) say "$v: WRONG: configured on ${st#elsewhere }, which answers ARP/ND for it"; bad=1 ;;
		esac
	done <<<"$checked"

	if ((bad)); then
		exit 1
	fi
}

main() {
	local cmd=""
	local -a args=()
	while (($# > 0)); do
		case $1 in
		-h | --help) usage; exit 0 ;;
		--persist) PERSIST=1 ;;
		--interface)
			(($# > 1)) || usage_error "--interface needs a value"
			[[ $2 =~ ^[A-Za-z0-9._@-]{1,15}$ ]] || usage_error "--interface: bad interface name '$2'"
			INTERFACES+=("$2")
			shift
			;;
		--interface=*) set -- --interface "${1#*=}" "${@:2}"; continue ;;
		--root)
			(($# > 1)) || usage_error "--root needs a directory"
			ROOT=$2
			shift
			;;
		--root=*) ROOT=${1#*=} ;;
		--) shift; args+=("$@"); break ;;
		-*) usage_error "unknown option '$1'" ;;
		*)
			if [[ -z $cmd ]]; then cmd=$1; else args+=("$1"); fi
			;;
		esac
		shift
	done
	if [[ -n $ROOT ]]; then
		[[ -d $ROOT ]] || usage_error "--root $ROOT: no such directory"
		ROOT=$(cd "$ROOT" && pwd)
	fi
	case $cmd in
	up) cmd_up "${args[@]}" ;;
	down) cmd_down "${args[@]}" ;;
	status) cmd_status "${args[@]}" ;;
	"") usage_error "give a command: up, down or status" ;;
	*) usage_error "unknown command '$cmd' (want up, down or status)" ;;
	esac
}

main "$@"
