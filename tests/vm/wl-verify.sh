#!/bin/bash
# Verifies the test guest's workload on a raw ext4 image, without mounting it
# (debugfs reads it; a journal left to replay, as after a crash or a hard
# stop, is first replayed with e2fsck on a private copy, never on IMAGE).
# Checks: /wl/done lists 1..M contiguously, every file /wl/f000001../wl/fM
# has exactly the content guest/wlgen.awk makes for it, a renamed but not yet
# listed f(M+1) is also correct, nothing else but temp files is in /wl,
# e2fsck -fn finds no error (unless WL_VERIFY_FSCK=0), and M >= MIN_N when
# MIN_N is given. Prints M on stdout; exits non-zero with a message on any
# mismatch. An image without /wl (workload never ran) gives M=0.
# Needs e2fsprogs and busybox (for the guest's awk; falls back to awk).
# Usage: wl-verify.sh IMAGE [MIN_N]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
gen=$here/guest/wlgen.awk

die() {
	echo "wl-verify: FAIL: $*" >&2
	exit 1
}
note() { echo "wl-verify: $*" >&2; }

[[ $# -ge 1 && $# -le 2 ]] || {
	echo "usage: $0 IMAGE [MIN_N]" >&2
	exit 2
}
image=$1
min_n=${2:-}
[[ -f $image ]] || die "no such image: $image"
[[ -z $min_n || $min_n =~ ^[0-9]+$ ]] || die "MIN_N must be a number: $min_n"
for t in debugfs e2fsck dumpe2fs; do
	command -v "$t" >/dev/null || die "$t missing (apt-get install e2fsprogs)"
done
# the guest runs busybox awk: use the very same implementation when we can
if command -v busybox >/dev/null; then
	awk_cmd=(busybox awk)
else
	awk_cmd=(awk)
fi

tmp=$(mktemp -d /tmp/wl-verify.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

if ! features=$(dumpe2fs -h "$image" 2>/dev/null | grep '^Filesystem features:'); then
	die "$image is not a raw ext4 image (convert a qcow2 with qemu-img convert -O raw)"
fi
if [[ $features == *needs_recovery* ]]; then
	note "journal needs recovery: replaying it on a copy"
	cp --sparse=always "$image" "$tmp/image"
	e2fsck -E journal_only -y "$tmp/image" >"$tmp/replay.log" 2>&1 || {
		cat "$tmp/replay.log" >&2
		die "journal replay failed"
	}
	image=$tmp/image
fi
if [[ ${WL_VERIFY_FSCK:-1} != 0 ]]; then
	e2fsck -fn "$image" >"$tmp/fsck.log" 2>&1 || {
		cat "$tmp/fsck.log" >&2
		die "e2fsck -fn reports errors"
	}
fi

mkdir "$tmp/out"
m=0
if ! debugfs -R 'stat /wl' "$image" 2>&1 | grep 'Type: directory' >/dev/null; then
	note "no /wl directory: the workload never ran on this disk"
else
	debugfs -R "rdump /wl $tmp/out" "$image" >/dev/null 2>"$tmp/rdump.log" || true
	wl=$tmp/out/wl
	[[ -d $wl ]] || {
		cat "$tmp/rdump.log" >&2
		die "could not read /wl from $image"
	}
	# no done file yet counts as an empty one
	[[ -f $wl/done ]] || : >"$wl/done"
	[[ ! -s $wl/done || "$(tail -c 1 "$wl/done" | od -An -c | tr -d ' ')" == '\n' ]] ||
		die "/wl/done does not end with a newline"
	while IFS= read -r line; do
		[[ $line =~ ^[0-9]+$ ]] || die "/wl/done line $((m + 1)) is '$line', not a number"
		((10#$line == m + 1)) || die "/wl/done line $((m + 1)) is $line, expected $((m + 1))"
		m=$((m + 1))
	done <"$wl/done"

	check_file() { # N
		local f
		f=$(printf 'f%06d' "$1")
		[[ -f $wl/$f ]] || die "/wl/$f is missing (listed in done)"
		"${awk_cmd[@]}" -v n="$1" -f "$gen" >"$tmp/expected"
		cmp -s "$tmp/expected" "$wl/$f" ||
			die "/wl/$f has wrong content ($(stat -c %s "$wl/$f") bytes, expected $(stat -c %s "$tmp/expected")): $(cmp "$tmp/expected" "$wl/$f" 2>&1 || true)"
	}
	for ((i = 1; i <= m; i++)); do
		check_file "$i"
	done
	extra=()
	while IFS= read -r -d '' p; do
		name=${p##*/}
		case $name in
		done) ;;
		.tmp.*) note "ignoring temp file /wl/$name" ;;
		f[0-9][0-9][0-9][0-9][0-9][0-9]*)
			n=$((10#${name#f}))
			if ((n > m + 1)) || [[ $name != "$(printf 'f%06d' "$n")" ]]; then
				extra+=("$name")
			elif ((n == m + 1)); then
				note "/wl/$name is renamed but not yet in done: checking it too"
				check_file "$n"
			fi
			;;
		*) extra+=("$name") ;;
		esac
	done < <(find "$wl" -mindepth 1 -print0)
	((${#extra[@]} == 0)) || die "unexpected entries in /wl: ${extra[*]}"
fi

if [[ -n $min_n ]] && ((m < min_n)); then
	die "only $m workload files, expected at least $min_n"
fi
note "OK: $m files verified"
echo "$m"
