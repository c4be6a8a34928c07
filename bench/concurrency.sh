#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bench/concurrency.sh: aggregate backup throughput of 1, 2 and 4 agents at
# once into one `backupd listen`, against one agent with `backupd serve`
# (no daemon), on the same data in the same run; and backupd's peak memory.
# Run by hand; prints the figures and writes them as Markdown to
# bench/results-concurrency.md. Not a test: a missed target fails nothing.
#
#   bench/concurrency.sh [--bin-dir BUILD] [--workdir DIR] [--repeat N]
#
# Data: the allocated data of bench/run.sh's 3 GiB ext4 image (real files
# from /usr; made by `bench/run.sh --prepare` if not cached in WORKDIR),
# cut into 4 equal parts, each a raw image of its own (different content:
# no chunk is shared between parts, so nothing is deduplicated away).
# Every configuration backs up the same 4 parts, as 4 disks, into a new
# repository:
#   serve x1   one livebackup backup-image with 4 disks; the agent starts
#              `backupd serve` (no daemon): the baseline
#   listen x1  the same through a `backupd listen` daemon
#   listen x2  2 agents at once, 2 disks each, one daemon
#   listen x4  4 agents at once, 1 disk each, one daemon
# Aggregate MB/s = 10^6 bytes of the 4 parts / wall time from the start of
# the first agent to the end of the last. Before each run: sync, the parts
# read once (page cache warm). Each configuration runs --repeat times
# (default 3); the median is reported. The daemon runs under
# /usr/bin/time -v: its peak RSS covers every session it served.
set -euo pipefail

WORKDIR=/var/tmp/livebackup-bench
BIN_DIR=
REPEAT=3
while (($#)); do
    case $1 in
    --bin-dir) BIN_DIR=${2:?}; shift 2 ;;
    --workdir) WORKDIR=${2:?}; shift 2 ;;
    --repeat) REPEAT=${2:?}; shift 2 ;;
    -h | --help) sed -n '3,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "concurrency: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || { echo "concurrency: --repeat N" >&2; exit 2; }

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export LC_ALL=C
log() { printf 'concurrency: %s\n' "$*" >&2; }
die() { printf 'concurrency: error: %s\n' "$*" >&2; exit 1; }

if [[ -z $BIN_DIR ]]; then
    BIN_DIR=$WORKDIR/build
    log "building in $BIN_DIR"
    { cmake -S "$SRC" -B "$BIN_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLB_TESTS=OFF &&
        cmake --build "$BIN_DIR" -j "$(nproc)" --target livebackup backupd; } >/dev/null ||
        die "build failed"
fi
BIN_DIR=$(cd "$BIN_DIR" && pwd)
LB=$BIN_DIR/agent/livebackup
BACKUPD=$BIN_DIR/backupd/backupd
[[ -x $LB && -x $BACKUPD ]] || die "no $LB or $BACKUPD"
DATA=$WORKDIR/images/ext4-3g.data.bin
if [[ ! -s $DATA ]]; then
    log "preparing the data (bench/run.sh --prepare)"
    "$SRC/bench/run.sh" --prepare --bin-dir "$BIN_DIR" --workdir "$WORKDIR" >&2
fi

T=$WORKDIR/concurrency
rm -rf "$T"
mkdir -p "$T"
DAEMON=
cleanup() {
    if [[ -n $DAEMON ]]; then
        [[ -s $T/repo/listen ]] && kill -TERM "$(sed -n 2p "$T/repo/listen")" 2>/dev/null
        kill -TERM "$DAEMON" 2>/dev/null || true
        wait "$DAEMON" 2>/dev/null || true
    fi
    rm -rf "$T"
}
trap cleanup EXIT

# 4 parts, a whole number of 4 KiB clusters each.
TOTAL=$(stat -c %s "$DATA")
PART=$((TOTAL / 4 / 4096 * 4096))
for i in 1 2 3 4; do
    dd if="$DATA" of="$T/part$i.raw" bs=1M iflag=skip_bytes,count_bytes \
        skip=$(((i - 1) * PART)) count=$PART status=none
done
BYTES=$((4 * PART))
log "4 parts of $((PART >> 20)) MiB ($((BYTES / 1000000)) MB in all)"

now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }

# run CONFIG AGENTS: one measurement; prints "seconds rss_kib"
run() {
    local cfg=$1 n=$2 repo=$T/repo t0 t1 pids=() rss=0 i k
    rm -rf "$repo"
    "$LB" init --encryption none --repo "$repo" >/dev/null
    sync
    cat "$T"/part*.raw >/dev/null
    if [[ $cfg == listen ]]; then
        /usr/bin/time -v -o "$T/daemon.time" "$BACKUPD" listen --repo "$repo" \
            --socket "$T/sock" --log-stderr 2>"$T/daemon.log" &
        DAEMON=$!
        # the socket, then the marker agents find the daemon by
        for _ in $(seq 1 100); do [[ -S $T/sock && -s $repo/listen ]] && break; sleep 0.05; done
        [[ -s $repo/listen ]] || die "backupd listen did not start: $(cat "$T/daemon.log")"
    fi
    t0=$(now)
    for ((i = 0; i < n; i++)); do
        local disks=()
        for ((k = i + 1; k <= 4; k += n)); do
            disks+=(--disk "part$k=$T/part$k.raw")
        done
        "$LB" backup-image --repo "$repo" --name "agent$i" "${disks[@]}" \
            >"$T/agent$i.out" 2>&1 &
        pids+=($!)
    done
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || die "agent $i failed: $(cat "$T/agent$i.out")"
    done
    t1=$(now)
    if [[ $cfg == listen ]]; then
        grep -q "bridged session" "$T/daemon.log" || die "the agents did not reach the daemon"
        # TERM to backupd itself (its pid is in the marker), not to time(1)
        kill -TERM "$(sed -n 2p "$repo/listen")"
        wait "$DAEMON" || true
        DAEMON=
        rss=$(awk -F': ' '/Maximum resident/ { print $2 }' "$T/daemon.time")
    fi
    echo "$(calc "$t1 - $t0" 3) $rss"
}

declare -A SECS ALL RSS
for cfg in "serve 1" "listen 1" "listen 2" "listen 4"; do
    read -r mode n <<<"$cfg"
    key="$mode x$n"
    log "$key: $REPEAT runs"
    ts=() all="" peak=0
    for ((r = 1; r <= REPEAT; r++)); do
        read -r s rss < <(run "$mode" "$n")
        ts+=("$s")
        all+="${all:+, }$s"
        ((rss > peak)) && peak=$rss
        log "  $s s"
    done
    SECS[$key]=$(printf '%s\n' "${ts[@]}" | sort -n | sed -n "$((${#ts[@]} / 2 + 1))p")
    ALL[$key]=$all
    RSS[$key]=$peak
done

mbps() { calc "$BYTES / $1 / 1000000" 0; }
base=${SECS[serve x1]}
rows=()
for key in "serve x1" "listen x1" "listen x2" "listen x4"; do
    s=${SECS[$key]}
    r=$(calc "$base / $s")
    m=-
    [[ ${RSS[$key]} != 0 ]] && m=$((RSS[$key] / 1024))
    rows+=("| $key | $s (${ALL[$key]}) | $(mbps "$s") | $r | $m |")
done
verdict() { awk "BEGIN { exit !($1) }" && echo PASS || echo MISS; }
worst=$(calc "$base / ${SECS[listen x4]}")
for key in "listen x1" "listen x2"; do
    x=$(calc "$base / ${SECS[$key]}")
    awk "BEGIN { exit !($x < $worst) }" && worst=$x
done
peak_mib=$((RSS[listen x4] / 1024))
REV=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$SRC" diff --quiet 2>/dev/null || REV="$REV+changes"
out=$(
    echo "<!-- generated by bench/concurrency.sh; do not edit -->"
    echo "livebackup concurrency benchmark ($REV), $(date -u +%Y-%m-%d): $(nproc) CPUs, $((BYTES / 1000000)) MB of ext4 file data in 4 parts, local repository; median of $REPEAT runs, all in brackets"
    echo
    echo "| configuration | seconds | aggregate MB/s | vs serve x1 | backupd peak RSS MiB |"
    echo "|---|---:|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "| figure | value | target | result |"
    echo "|---|---:|---:|---:|"
    echo "| lowest aggregate throughput with a daemon / serve x1 | $worst | >= 0.95 (never lower, within run-to-run noise) | $(verdict "$worst >= 0.95") |"
    echo "| backupd listen peak RSS with 4 sessions, MiB | $peak_mib | < 256 | $(verdict "$peak_mib < 256") |"
)
echo "$out"
echo "$out" >"$SRC/bench/results-concurrency.md"
log "written to bench/results-concurrency.md"
