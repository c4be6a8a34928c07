#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bench/copy.sh: livebackup copy against rsync -a of the same repository
# files. Run by hand; prints the figures and writes them to
# bench/results-copy.md. Not a test: nothing fails because a target is
# missed.
#
#   bench/copy.sh [--image QCOW2] [--workdir DIR] [--bin-dir BUILD] [--repeat N] [--nights N]
#
# A source repository gets a full backup-image of the image (default:
# bench/run.sh's cached 1 GiB ext4 image, made by `bench/run.sh --prepare`
# if missing), then N nights (default 7) of incrementals, each changing
# about 2% of the image (random 64 KiB writes, incompressible). In the
# same run, alternating which goes first:
#   - to an empty repository: `livebackup copy` of every backup, against
#     `rsync -a` of the repository's files (and `rsync -a` then `sync -f`,
#     since copy returns only once every chunk and manifest is durable);
#   - after one more night's backup: the copy of that backup into the
#     copy, against `rsync -a` of the repository onto the rsync'd one
#     (the same change: its new chunks, its manifest, seq).
# Both ends are local directories (the agent's backupd children; rsync
# local to local), page cache warm. Targets: the full copy no slower than
# rsync -a; the incremental copy at least 3 times faster.
set -euo pipefail

WORKDIR=/var/tmp/livebackup-bench/copy
IMAGE=/var/tmp/livebackup-bench/images/ext4-1g.qcow2
BIN_DIR=
REPEAT=3
NIGHTS=7

while (($#)); do
    case $1 in
    --image) IMAGE=${2:?}; shift 2 ;;
    --workdir) WORKDIR=${2:?}; shift 2 ;;
    --bin-dir) BIN_DIR=${2:?}; shift 2 ;;
    --repeat) REPEAT=${2:?}; shift 2 ;;
    --nights) NIGHTS=${2:?}; shift 2 ;;
    -h | --help) sed -n '/^#   bench\/copy.sh/p' "$0" | sed 's/^# //'; exit 0 ;;
    *) echo "bench: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
[[ $REPEAT =~ ^[1-9][0-9]*$ && $NIGHTS =~ ^[0-9]+$ ]] ||
    { echo "bench: --repeat and --nights want numbers" >&2; exit 2; }

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export LC_ALL=C
export LIVEBACKUP_ENCRYPTION=none
log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

mkdir -p "$WORKDIR"
T=$WORKDIR/run
rm -rf "$T"
mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
export LIVEBACKUP_STATE_DIR=$T/state

if [[ ! -f $IMAGE ]]; then
    log "no $IMAGE: making it with bench/run.sh --prepare"
    bash "$SRC/bench/run.sh" --prepare >&2
fi
[[ -f $IMAGE ]] || die "no image $IMAGE"
if [[ -n $BIN_DIR ]]; then
    BUILD=$(cd "$BIN_DIR" && pwd)
else
    BUILD=$WORKDIR/build
    log "building in $BUILD"
    { cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLB_TESTS=OFF &&
        cmake --build "$BUILD" -j "$(nproc)" --target livebackup backupd; } >"$T/build.log" 2>&1 ||
        { tail -n 30 "$T/build.log" >&2; die "build failed"; }
fi
LB=$BUILD/agent/livebackup
[[ -x $LB && -x $BUILD/backupd/backupd ]] || die "no $LB or backupd in $BUILD"
command -v rsync >/dev/null || die "rsync is not installed (scripts/deps.sh installs it)"

calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
busy_pct() { # over one second
    local b0 t0 b1 t1
    read -r b0 t0 < <(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat)
    sleep 1
    read -r b1 t1 < <(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat)
    echo $((100 * (b1 - b0) / (t1 - t0 > 0 ? t1 - t0 : 1)))
}
wait_quiet() {
    local start=$SECONDS
    while (($(busy_pct) >= 20 && SECONDS - start < 60)); do :; done
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# timed CMD...: wall seconds into WALL.
timed() {
    local t0 t1
    wait_quiet
    t0=$(date +%s.%N)
    "$@" >"$T/cmd.out" 2>"$T/cmd.err" || { cat "$T/cmd.err" >&2; die "$* failed"; }
    t1=$(date +%s.%N)
    WALL=$(calc "$t1 - $t0" 3)
}
rsync_sync() { rsync -a "$1" "$2" && sync -f "$2"; }

# a night: about 2% of the image rewritten, 64 KiB at a time, then an
# incremental backup of the overlay.
VSIZE=$(qemu-img info --output=json "$IMAGE" | awk -F: '/"virtual-size"/ { printf "%.0f", $2 }')
TOP=$T/base.qcow2
night() {
    local n=$1 cmds=() k off count=$((VSIZE / 50 / 65536))
    qemu-img create -q -f qcow2 -o cluster_size=128k,extended_l2=on -b "$TOP" -F qcow2 "$T/n$n.qcow2"
    head -c $((count * 65536)) /dev/urandom >"$T/night.bin"
    for ((k = 0; k < count; k++)); do
        off=$(((RANDOM * 32768 + RANDOM) % (VSIZE / 65536) * 65536))
        cmds+=(-c "write -s $T/night.bin $off 64k")
    done
    qemu-io -f qcow2 "${cmds[@]}" "$T/n$n.qcow2" >/dev/null
    "$LB" backup-image --repo "$T/src" --name bench --disk vda="$T/n$n.qcow2" --since "$TOP" >/dev/null
    TOP=$T/n$n.qcow2
}

log "source: a full backup of $IMAGE and $NIGHTS nights"
cp "$IMAGE" "$T/base.qcow2"
"$LB" init --repo "$T/src" >/dev/null
"$LB" backup-image --repo "$T/src" --name bench --disk vda="$T/base.qcow2" >/dev/null
for ((i = 1; i <= NIGHTS; i++)); do night "$i"; done
FULL=$(du -sb "$T/src" | cut -f1)
FILES=$(find "$T/src" -type f | wc -l)
log "source repository: $(calc "$FULL / 1e6" 0) MB in $FILES files"

declare -A W
for i in $(seq 1 "$REPEAT"); do
    "$LB" init --repo "$T/copy-$i" >/dev/null
    cat "$T"/src/chunks/*/* >/dev/null
    order="copy rsync rsync-sync"
    ((i % 2)) || order="rsync-sync rsync copy"
    for what in $order; do
        case $what in
        copy) timed "$LB" copy --from "$T/src" --to "$T/copy-$i" ;;
        rsync) timed rsync -a "$T/src/" "$T/rsync-$i/" ;;
        rsync-sync) timed rsync_sync "$T/src/" "$T/rsync-sync-$i/" ;;
        esac
        W[full-$what]+="$WALL "
        log "full $what $i: $WALL s"
    done
done
log "one more night"
night $((NIGHTS + 1))
NEW=$(($(du -sb "$T/src" | cut -f1) - FULL))
# every round starts from the state the full copies left (copy-N and
# rsync-N of the same run); the incremental is measured once per copy.
for i in $(seq 1 "$REPEAT"); do
    cat "$T"/src/chunks/*/* >/dev/null
    order="copy rsync rsync-sync"
    ((i % 2)) || order="rsync-sync rsync copy"
    for what in $order; do
        case $what in
        copy) timed "$LB" copy --from "$T/src" --to "$T/copy-$i" ;;
        rsync) timed rsync -a "$T/src/" "$T/rsync-$i/" ;;
        rsync-sync) timed rsync_sync "$T/src/" "$T/rsync-sync-$i/" ;;
        esac
        W[incr-$what]+="$WALL "
        log "incremental $what $i: $WALL s"
    done
    "$LB" verify --repo "$T/copy-$i" >/dev/null || die "copy-$i does not verify"
done

{
    echo "# Copy: livebackup copy against rsync -a of the repository, same run"
    echo
    echo "$(date -u +%Y-%m-%d), $(nproc) CPUs, $(uname -r), $(df --output=fstype "$T" | tail -n 1) on the work directory;"
    echo "source: a full backup of $(basename "$IMAGE") and $NIGHTS nights of 2% changes:"
    echo "$(calc "$FULL / 1e6" 0) MB in $FILES files; one more night adds $(calc "$NEW / 1e6" 1) MB."
    echo "Medians of $REPEAT alternating runs, local to local, warm page cache."
    echo
    echo "| copy | livebackup copy, s | rsync -a, s | ratio | rsync -a + sync, s | ratio | target |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for what in full incr; do
        c=$(echo "${W[$what-copy]}" | median)
        r=$(echo "${W[$what-rsync]}" | median)
        s=$(echo "${W[$what-rsync-sync]}" | median)
        [[ $what == full ]] && t=">= 1" || t=">= 3"
        echo "| $([[ $what == full ]] && echo "to an empty repository" || echo "one night's backup") | $c | $r | **$(calc "$r / $c")** | $s | **$(calc "$s / $c")** | $t |"
    done
    echo
    echo "Ratio: rsync's time over copy's (above 1: copy is faster)."
} | tee "$SRC/bench/results-copy.md"
