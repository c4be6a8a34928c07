#!/bin/sh
# Guest workload (busybox sh): writes files with verifiable content forever
# into /data/wl. File N (/data/wl/f%06d) holds `awk -v n=N -f wlgen.awk`; it
# is written to a temp name, fsync'd, renamed, then N is appended to
# /data/wl/done and synced, and "lbtest: done N" is printed on the console.
# Resumes after the last N in done when the disk already holds a run.
# While /run/lbtest.pause exists the loop pauses between two files (and
# prints "lbtest: paused N" once, "lbtest: resumed N" when it goes on).
# Usage: workload.sh [DIR] (default /data/wl)
set -eu

dir=${1:-/data/wl}
gen=/lbtest/wlgen.awk
interval=${LBTEST_WL_INTERVAL:-0.5}

mkdir -p "$dir"
rm -f "$dir"/.tmp.*
last=0
if [ -s "$dir/done" ]; then
	last=$(tail -n 1 "$dir/done")
fi
case $last in
'' | *[!0-9]*)
	echo "lbtest: workload: bad last line in $dir/done: '$last'" >&2
	exit 1
	;;
esac
n=$((last + 1))
echo "lbtest: workload start $n"
while :; do
	if [ -e /run/lbtest.pause ]; then
		echo "lbtest: paused $((n - 1))"
		while [ -e /run/lbtest.pause ]; do sleep 0.2; done
		echo "lbtest: resumed $((n - 1))"
	fi
	f=$(printf '%s/f%06d' "$dir" "$n")
	tmp="$dir/.tmp.$n"
	awk -v n="$n" -f "$gen" >"$tmp"
	# busybox awk does not report a short write (a full disk): check the
	# size, and stop cleanly rather than list a damaged file as done.
	want=$((64 * 64 * (1 + (n * 37) % 64)))
	if [ "$(wc -c <"$tmp")" -ne "$want" ]; then
		rm -f "$tmp"
		echo "lbtest: workload stopped at $((n - 1)): short write (disk full?)"
		exec sleep 2147483647
	fi
	sync "$tmp"
	mv "$tmp" "$f"
	echo "$n" >>"$dir/done"
	# fsync the done file and the directory (makes the rename durable too)
	sync "$dir/done" "$dir"
	echo "lbtest: done $n"
	n=$((n + 1))
	sleep "$interval"
done
