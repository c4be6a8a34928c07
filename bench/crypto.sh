#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bench/crypto.sh: what encryption costs. Run by hand; prints the figures
# and writes them to bench/results-crypto.md. Not a test: nothing fails
# because a target is missed.
#
#   bench/crypto.sh [--image QCOW2] [--workdir DIR] [--bin-dir BUILD] [--repeat N]
#
# On the same data, in the same run, alternating the two so that drift in
# a shared machine's load hits both alike:
#   - a full backup-image of the image (default: bench/run.sh's cached
#     3 GiB ext4 image, /var/tmp/livebackup-bench/images/ext4-3g.qcow2,
#     made by `bench/run.sh --prepare` if missing) into a new unencrypted
#     repository, and into a new encrypted one (repokey);
#   - a restore of each to a raw file (then fsync'd), on tmpfs
#     (/dev/shm) when it has room: the same bytes are written either way,
#     and writeback to a shared disk is the noisiest part of a restore;
#   - the fixed cost of unlocking a repository (scrypt): `show` of the
#     encrypted backup against the unencrypted one;
# each N times (default 5; median), with the CPU time of the whole tree
# (livebackup, backupd, qemu-nbd), the peak RSS of livebackup (VmHWM
# sampled every 20 ms) and of backupd (time -v). The targets: the
# encrypted backup's and restore's throughput at least 0.95 of the
# unencrypted ones; memory unchanged. Both repositories are local (the
# agent's own backupd child), page cache warm (the image is read once
# before each measurement). The machine may be shared: before each run
# the script waits (up to 60 s) for the CPUs to be under 20% busy, and
# the CPU time is the steadier figure when the wall time is noisy.
set -euo pipefail

WORKDIR=/var/tmp/livebackup-bench/crypto
OUTDIR=
IMAGE=/var/tmp/livebackup-bench/images/ext4-3g.qcow2
BIN_DIR=
REPEAT=5

while (($#)); do
    case $1 in
    --image) IMAGE=${2:?}; shift 2 ;;
    --workdir) WORKDIR=${2:?}; shift 2 ;;
    --bin-dir) BIN_DIR=${2:?}; shift 2 ;;
    --repeat) REPEAT=${2:?}; shift 2 ;;
    --restore-dir) OUTDIR=${2:?}; shift 2 ;;
    -h | --help) sed -n '/^#   bench\/crypto.sh/p' "$0" | sed 's/^# //'; exit 0 ;;
    *) echo "bench: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || { echo "bench: --repeat wants a positive number" >&2; exit 2; }

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export LC_ALL=C
log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

mkdir -p "$WORKDIR"
T=$WORKDIR/run
rm -rf "$T"
mkdir -p "$T"
SAMPLER=
cleanup() {
    [[ -n $SAMPLER ]] && kill "$SAMPLER" 2>/dev/null
    rm -rf "$T"/repo-* "${OUT:-$T/none}"
}
trap cleanup EXIT

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
BACKUPD=$BUILD/backupd/backupd
[[ -x $LB && -x $BACKUPD ]] || die "no $LB or $BACKUPD"
cat >"$T/backupd" <<EOF
#!/bin/sh
exec /usr/bin/time -v -o "\$LB_BENCH_RSS.\$\$" "$BACKUPD" "\$@"
EOF
chmod +x "$T/backupd"
head -c 32 /dev/urandom | base64 >"$T/passphrase"
export LIVEBACKUP_PASSPHRASE_FILE=$T/passphrase

if [[ -z $OUTDIR ]]; then
    OUTDIR=$T
    avail=$(df --output=avail -B1 /dev/shm 2>/dev/null | tail -n 1 || echo 0)
    vsize=$(qemu-img info --output=json "$IMAGE" | awk -F: '/"virtual-size"/ { printf "%.0f", $2 }')
    if ((vsize + (1 << 30) < avail)); then
        OUTDIR=/dev/shm
    fi
fi
OUT=$OUTDIR/livebackup-bench-restore.$$.raw
DATA=$(qemu-img map --output=json "$IMAGE" |
    awk '/"data": true/ { match($0, /"length": [0-9]+/); s += substr($0, RSTART + 10, RLENGTH - 10) } END { printf "%.0f", s }')

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
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# run LABEL ARGS...: livebackup ARGS, timed; sets WALL, CPU (s, the
# whole tree), RSS_LB, RSS_BD (KiB).
run() {
    local label=$1 pid='' tp hwm=0 k v
    shift
    rm -f "$T/bd.$label".* "$T/lb.pid"
    wait_quiet
    LB_BENCH_RSS=$T/bd.$label LIVEBACKUP_BACKUPD=$T/backupd \
        /usr/bin/time -f "%e %U %S" -o "$T/time.$label" \
        /bin/sh -c 'echo $$ > "$0"; exec "$@"' "$T/lb.pid" "$LB" "$@" \
        >"$T/$label.out" 2>"$T/$label.err" &
    tp=$!
    while kill -0 "$tp" 2>/dev/null; do
        [[ -z $pid && -s $T/lb.pid ]] && read -r pid <"$T/lb.pid"
        if [[ -n $pid ]]; then
            { while read -r k v _; do
                [[ $k == VmHWM: ]] && ((v > hwm)) && hwm=$v
            done </proc/"$pid"/status; } 2>/dev/null || true
        fi
        sleep 0.02
    done
    wait "$tp" || { cat "$T/$label.err" >&2; die "livebackup $* failed"; }
    read -r WALL u sy <"$T/time.$label"
    CPU=$(calc "$u + $sy")
    RSS_LB=$hwm
    RSS_BD=$(awk -F': ' '/Maximum resident/ { v = $2 + 0; if (v > m) m = v } END { print m + 0 }' "$T/bd.$label".*)
}

log "image $IMAGE: $(calc "$DATA / 1e6" 0) MB of data; $REPEAT runs of each, alternating"
declare -A W C R1 R2
for i in $(seq 1 "$REPEAT"); do
    for mode in none repokey; do
        rm -rf "$T/repo-$mode"
        "$LB" init --repo "$T/repo-$mode" --encryption "$mode" >/dev/null
        sync
        cat "$IMAGE" >/dev/null
        run "backup-$mode-$i" backup-image --repo "$T/repo-$mode" --name bench --disk vda="$IMAGE"
        W[backup-$mode]+="$WALL "
        C[backup-$mode]+="$CPU "
        R1[backup-$mode]=$((RSS_LB > ${R1[backup-$mode]:-0} ? RSS_LB : ${R1[backup-$mode]:-0}))
        R2[backup-$mode]=$((RSS_BD > ${R2[backup-$mode]:-0} ? RSS_BD : ${R2[backup-$mode]:-0}))
        log "backup  $mode $i: $WALL s, CPU $CPU s"
    done
    for mode in none repokey; do
        rm -f "$OUT"
        sync
        run "restore-$mode-$i" restore-image --repo "$T/repo-$mode" --name bench --disk vda \
            --to "$OUT"
        W[restore-$mode]+="$WALL "
        C[restore-$mode]+="$CPU "
        R1[restore-$mode]=$((RSS_LB > ${R1[restore-$mode]:-0} ? RSS_LB : ${R1[restore-$mode]:-0}))
        R2[restore-$mode]=$((RSS_BD > ${R2[restore-$mode]:-0} ? RSS_BD : ${R2[restore-$mode]:-0}))
        log "restore $mode $i: $WALL s, CPU $CPU s"
    done
done
qemu-img compare -q -f raw -F qcow2 "$OUT" "$IMAGE" || die "the restore differs from the image"
rm -f "$OUT"
for i in $(seq 1 "$REPEAT"); do
    for mode in none repokey; do
        run "show-$mode-$i" show --repo "$T/repo-$mode" --name bench --backup latest
        W[show-$mode]+="$WALL "
    done
done
unlock=$(calc "$(echo "${W[show-repokey]}" | tr ' ' '\n' | grep . | median) - $(echo "${W[show-none]}" | tr ' ' '\n' | grep . | median)")
stored_none=$(du -sb "$T/repo-none/chunks" | cut -f1)
stored_enc=$(du -sb "$T/repo-repokey/chunks" | cut -f1)

{
    echo "# Encryption: encrypted against unencrypted, same data, same run"
    echo
    echo "$(date -u +%Y-%m-%d), $(nproc) CPUs, $(uname -r); image $(basename "$IMAGE"), $(calc "$DATA / 1e6" 0) MB of data;"
    echo "medians of $REPEAT alternating runs; local repositories (the agent's backupd child); warm page cache;"
    echo "restores written to $OUTDIR."
    echo
    echo "| figure | unencrypted | encrypted (repokey) | ratio (throughput) | target |"
    echo "|---|---:|---:|---:|---:|"
    for what in backup restore; do
        a=$(echo "${W[$what-none]}" | tr ' ' '\n' | grep . | median)
        b=$(echo "${W[$what-repokey]}" | tr ' ' '\n' | grep . | median)
        echo "| full $what: s (MB/s) | $a ($(calc "$DATA / 1e6 / $a" 0)) | $b ($(calc "$DATA / 1e6 / $b" 0)) | **$(calc "$a / $b")** | >= 0.95 |"
        a=$(echo "${C[$what-none]}" | tr ' ' '\n' | grep . | median)
        b=$(echo "${C[$what-repokey]}" | tr ' ' '\n' | grep . | median)
        echo "| full $what: CPU s of livebackup, backupd, qemu-nbd | $a | $b | $(calc "$a / $b") | |"
    done
    for what in backup restore; do
        echo "| peak RSS during $what, livebackup / backupd (MiB) | $((R1[$what-none] / 1024)) / $((R2[$what-none] / 1024)) | $((R1[$what-repokey] / 1024)) / $((R2[$what-repokey] / 1024)) | | unchanged |"
    done
    echo "| chunk files stored (MB) | $(calc "$stored_none / 1e6" 1) | $(calc "$stored_enc / 1e6" 1) | | |"
    echo "| unlocking the key (scrypt), once per command: s | | $unlock | | |"
    echo
    echo "Every run, wall s: backup ${W[backup-none]}/ ${W[backup-repokey]}; restore ${W[restore-none]}/ ${W[restore-repokey]}(unencrypted / encrypted)."
    echo "CPU s: backup ${C[backup-none]}/ ${C[backup-repokey]}; restore ${C[restore-none]}/ ${C[restore-repokey]}."
} >"$T/results.md"
cat "$T/results.md"
cp "$T/results.md" "$SRC/bench/results-crypto.md"
