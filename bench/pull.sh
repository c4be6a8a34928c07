#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bench/pull.sh: the instant restore's pull alone (issue 11), without a
# guest, libvirt or the agent: a bare QEMU (qemu-system-x86_64 -M none,
# QMP on stdio) holds a qcow2 overlay whose backing is the NBD export of a
# backup (nbdkit with livebackup's plugin, under nbdkit's stats filter),
# and copies the backup into local images two ways:
#   stream   block-stream into the overlay (QEMU 7.2: 512 KiB at a time,
#            one request in flight, every block of the disk read)
#   mirror   blockdev-mirror of the chain into a fresh qcow2 (what restore
#            --instant runs through libvirt's blockcopy: up to 16 requests
#            of 1 MiB in flight, the backup's holes skipped by block
#            status), until READY
# against restore-image of the same backup to a raw file. Prints the
# seconds and the export's per-operation counts and times (stats filter).
# Run by hand as root (no libvirt domain: no VM lock). Not a test.
#
#   bench/pull.sh [--size GIB]    (default 1; the disk: the cached image of
#                                  bench/instant.sh, G/2 GiB of random data)
set -euo pipefail

G=1
while (($#)); do
    case $1 in
    --size) G=${2:?} && shift 2 ;;
    *)
        echo "usage: $0 [--size GIB]" >&2
        exit 2
        ;;
    esac
done
here=$(cd "$(dirname "$0")/.." && pwd)
B=${LB_BUILD:-$here/build}
cache=/var/tmp/livebackup-bench-instant
img=$cache/data-$G.raw
[[ -f $img ]] || {
    echo "pull.sh: no $img: run bench/instant.sh --sizes $G once" >&2
    exit 1
}
D=$(mktemp -d /var/tmp/livebackup-bench-pull.XXXXXX)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$D"
}
trap cleanup EXIT
export LIVEBACKUP_BACKUPD=$B/backupd/backupd LIVEBACKUP_ENCRYPTION=none \
    LIVEBACKUP_STATE_DIR=$D/state
lb() { "$B/agent/livebackup" "$@"; }
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }

lb init --repo "$D/repo" >/dev/null
lb backup-image --repo "$D/repo" --name d --disk "vda=$img" >/dev/null
size=$(stat -c %s "$img")

# one MODE: a fresh export and QEMU, the job timed from its QMP command
one() {
    local mode=$1 S=$D/exp.sock t0 L npid qpid chain
    rm -f "$S" "$D/stats" "$D"/*.qcow2 "$D/nbdkit.pid"
    nbdkit --unix="$S" --pidfile="$D/nbdkit.pid" --readonly --filter=stats \
        "$B/agent/map/nbdkit-livebackup-plugin.so" statsfile="$D/stats" \
        repo="$D/repo" name=d backup=latest disk=vda
    for _ in $(seq 200); do [[ -s $D/nbdkit.pid ]] && break; sleep 0.05; done
    npid=$(cat "$D/nbdkit.pid")
    pids+=("$npid")
    qemu-img create -q -f qcow2 "$D/top.qcow2" "$size"
    qemu-img create -q -f qcow2 "$D/copy.qcow2" "$size"
    chain="{\"driver\":\"qcow2\",\"node-name\":\"top\",\"file\":{\"driver\":\"file\",\"filename\":\"$D/top.qcow2\"},\"backing\":{\"driver\":\"raw\",\"file\":{\"driver\":\"nbd\",\"server\":{\"type\":\"unix\",\"path\":\"$S\"}}}}"
    coproc QMP { exec qemu-system-x86_64 -M none -nodefaults -display none -qmp stdio -blockdev "$chain" 2>"$D/qemu.log"; }
    qpid=$QMP_PID
    pids+=("$qpid")
    send() { printf '%s\n' "$1" >&"${QMP[1]}"; }
    upto() {
        while read -r -t 300 L <&"${QMP[0]}"; do
            [[ $L =~ $1 ]] && return 0
            [[ $L == *'"error"'* ]] && break
        done
        echo "pull.sh: QMP: ${L:-no answer} $(cat "$D/qemu.log")" >&2
        exit 1
    }
    upto '"QMP"'
    send '{"execute":"qmp_capabilities"}'
    upto '"return"'
    send "{\"execute\":\"blockdev-add\",\"arguments\":{\"driver\":\"qcow2\",\"node-name\":\"copy\",\"file\":{\"driver\":\"file\",\"filename\":\"$D/copy.qcow2\"}}}"
    upto '"return"'
    t0=$(now)
    if [[ $mode == stream ]]; then
        send '{"execute":"block-stream","arguments":{"job-id":"j","device":"top"}}'
        upto '"BLOCK_JOB_COMPLETED"'
    else
        send '{"execute":"blockdev-mirror","arguments":{"job-id":"j","device":"top","target":"copy","sync":"full"}}'
        upto '"BLOCK_JOB_READY"'
    fi
    printf '%-7s %6.2f s\n' "$mode" "$(since "$t0")"
    send '{"execute":"quit"}'
    wait "$qpid" 2>/dev/null || true
    kill "$npid"
    for _ in $(seq 100); do kill -0 "$npid" 2>/dev/null || break; sleep 0.05; done
    grep -E '^(read|extents):' "$D/stats" | sed 's/^/        export /'
}

echo "# bench/pull.sh: a $G GiB disk ($(date -u +%Y-%m-%d), $(nproc) CPUs)"
find "$D/repo" -type f -exec cat {} + >/dev/null
t0=$(now)
lb restore-image --repo "$D/repo" --name d --disk vda --to "$D/r.raw" >/dev/null 2>&1
printf '%-7s %6.2f s   (restore-image to raw)\n' plain "$(since "$t0")"
rm -f "$D/r.raw"
one stream
one mirror
