#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bench/rados.sh: the RADOS backend against the file backend on this
# machine (issue 16), on a throwaway single-node cluster (one mon, one
# memstore OSD: tests/integration/cephlib.sh) started and stopped here.
# Run by hand; prints the figures and writes them as Markdown to
# bench/results-rados.md. Not a test: a missed target (>= 0.7x) fails
# nothing.
#
#   bench/rados.sh [--bin-dir BUILD] [--size MIB] [--repeat N] [--note TEXT]
#
# --note TEXT goes into the results' header (say "loaded machine" there
# when other jobs ran).
#
# Data: a raw image of --size MiB (default 512) of incompressible data
# (no chunk is deduplicated away); the incremental changes 4 KiB at 64
# scattered offsets on a qcow2 overlay above it (--since the base).
#   full          backup-image into a new repository
#   incremental   the overlay, --since the base (64 windows changed):
#                 fixed costs (connections, round trips) more than data;
#                 and the same through a `backupd listen` daemon of the
#                 repository (after one untimed session): a pool's
#                 daemon keeps its cluster connections between sessions
#   a night       1 % of the disk rewritten in scattered 4 KiB blocks of
#                 random data (every window changed), --since the base
#   2 front ends  two backup-image at once (two backupd processes), each
#                 its own image of half the size, into one repository
#   64 KiB windows  the same full, then 1024 windows changed by 4 KiB of
#                 random data each (many small delta objects), and a listing of that
#                 repository (which walks every object of the namespace)
#   list one set  200 backups of a 64 KiB image in 10 sets, then a listing
#                 of one set (what every incremental's parent check asks)
# MB/s = 10^6 bytes of image / wall time of the command; the median of
# --repeat runs (default 3). RADOS operations per backed-up window: what
# the backend sent during the incremental (LIVEBACKUP_RADOS_OPS), divided
# by the windows it backed up (the line also says how many connections to
# the cluster the session made: a second one for lookups only behind 4 MiB
# of creates in flight).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
BIN_DIR=$here/build
SIZE=512
REPEAT=3
NOTE=
while (($#)); do
    case $1 in
    --bin-dir) BIN_DIR=${2:?}; shift 2 ;;
    --size) SIZE=${2:?}; shift 2 ;;
    --repeat) REPEAT=${2:?}; shift 2 ;;
    --note) NOTE=${2:?}; shift 2 ;;
    -h | --help) sed -n '3,39p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "rados: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done
export LB_BUILD=$BIN_DIR LB_SRC=$here
# The tests' helpers: $T, cleanup by recorded PID, the cluster.
. "$here/tests/integration/lib.sh"
. "$here/tests/integration/cephlib.sh"

ceph_start
start_secs=$CEPH_START_SECS

head -c "$((SIZE << 20))" /dev/urandom >"$T/base.raw"
half=$((SIZE / 2))
head -c "$((half << 20))" /dev/urandom >"$T/p1.raw"
head -c "$((half << 20))" /dev/urandom >"$T/p2.raw"
# Overlays as the agent makes them on a live VM (agent/live/livebk.c):
# 4 KiB subclusters, so that a 4 KiB write changes 4 KiB, not a 64 KiB
# cluster (with 64 KiB windows, a whole window: RAW, not a delta).
ovl() { qemu-img create -q -f qcow2 -o cluster_size=128k,extended_l2=on \
    -b "$T/base.raw" -F raw "$1"; }
ovl "$T/top.qcow2"
cmds=()
for k in $(seq 0 63); do
    cmds+=(-c "write -P $((k + 1)) $(((k * 7919 % (SIZE * 256 - 1)) * 4096)) 4k")
done
qemu-io "${cmds[@]}" "$T/top.qcow2" >/dev/null
# A night's change: 1 % of the disk in scattered 4 KiB blocks of random
# data (every 4 MiB window touched).
nblk=$((SIZE * 256 / 100))
mkdir -p "$T/blk"
# (and at least 1024 of them for the 64 KiB windows' deltas below)
head -c "$(((nblk > 1024 ? nblk : 1024) * 4096))" /dev/urandom |
    split -b 4096 -a 5 - "$T/blk/b"
ovl "$T/night.qcow2"
cmds=()
k=0
for blk in "$T"/blk/b*; do
    ((k < nblk)) || break
    cmds+=(-c "write -s $blk $(((k * 7919 % (SIZE * 256)) * 4096)) 4k")
    k=$((k + 1))
done
qemu-io "${cmds[@]}" "$T/night.qcow2" >/dev/null
# Many small deltas: 1024 windows of 64 KiB changed by 4 KiB each, of
# random data (a repeating pattern would make many deltas the same chunk:
# a 4 KiB run at the same place in its window).
ovl "$T/many.qcow2"
cmds=()
k=0
for blk in "$T"/blk/b*; do
    ((k < 1024)) || break
    cmds+=(-c "write -s $blk $(((k * 7919 % (SIZE * 16)) * 65536 + 8192)) 4k")
    k=$((k + 1))
done
qemu-io "${cmds[@]}" "$T/many.qcow2" >/dev/null
# 64 KiB of random data: the backups of the listing by set
head -c 65536 /dev/urandom >"$T/tiny.raw"

# secs CMD...: wall seconds of CMD (which must succeed)
secs() {
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >"$T/out" 2>"$T/err" || { cat "$T/err" >&2; fail "failed: $*"; }
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
mbps() { echo "scale=1; $1 * 1048576 / 1000000 / $2" | bc; }

# What fresh memory costs on this host (page faults): a memstore OSD
# keeps its objects in memory it has just allocated, so its speed follows
# this, which has varied on these machines from one day to the next by
# several times (README, the RADOS benchmark).
fault_secs=$(secs dd if=/dev/zero of=/dev/null bs=1G count=1 status=none)

n=0
# newrepo KIND: a fresh repository argument in R
newrepo() {
    n=$((n + 1))
    if [[ $1 == file ]]; then
        R=$T/repo$n
    else
        R=$(ceph_repo "b$n")
    fi
}

# Each round on a cluster of its own, started afresh: an OSD that removes
# the last round's pool in the background (memstore gives its memory back
# only so) runs the next round's backups at a half or a third of the
# speed, and not the same from one run to the next. And one untimed
# backup first: the first one a freshly started OSD takes runs 1.5-3x
# slower than the next (its memory is new: page faults), and a
# deployment's OSDs are not fresh.
warm=()
fresh_cluster() {
    if (($1 > 1)); then
        ceph_stop
        rm -rf "$CEPH_DIR"
        ceph_start
    fi
    newrepo rados
    run_ok livebackup init --repo "$R"
    warm+=("$(secs livebackup backup-image --repo "$R" --name w --disk vda="$T/base.raw")")
}

declare -A full incr dincr night two ops sfull sincr slist slist1 sops rounds
declare -A f i di n1 w sf si sl ls1
for round in $(seq "$REPEAT"); do
    fresh_cluster "$round"
    # alternating which backend goes first
    kinds=(file rados)
    ((round % 2)) || kinds=(rados file)
    for kind in "${kinds[@]}"; do
        newrepo "$kind"
        run_ok livebackup init --repo "$R"
        f[$kind]+=" $(secs livebackup backup-image --json --repo "$R" --name b \
            --disk vda="$T/base.raw")"
        fid=$(json_field "$T/out" summary id)
        rm -f "$T/ops"
        i[$kind]+=" $(LIVEBACKUP_RADOS_OPS=$T/ops secs livebackup backup-image \
            --json --repo "$R" --name b --disk vda="$T/top.qcow2" \
            --since vda="$T/base.raw")"
        windows=$(($(json_field "$T/out" summary windows_set) + $(json_field "$T/out" summary windows_pushed)))
        if [[ $kind == rados ]]; then
            # the backupd session's line (the agent opens no backend)
            total=$(awk '{s += $2 + $4 + $6 + $8 + $10} END {print s}' "$T/ops")
            ops[$kind]="$total ops for $windows windows: $(echo "scale=1; $total / $windows" | bc) per window ($(tr '\n' ' ' <"$T/ops"))"
        fi
        n1[$kind]+=" $(secs livebackup backup-image --json --repo "$R" \
            --name b --parent "$fid" --disk vda="$T/night.qcow2" \
            --since vda="$T/base.raw")"
        # The same incremental through a `backupd listen` daemon of the
        # repository (a front end's path: agents over ssh with socket=, or
        # local ones), which keeps its cluster connections from one
        # session to the next; an untimed one first (a daemon runs for
        # days: its first session, which loads librados and connects, is
        # not the steady state). A directory's daemon is found by its
        # REPO/listen, a pool's named by socket=.
        sock=$T/d$n.sock
        "$BACKUPD" listen --repo "$R" --socket "$sock" --log-stderr \
            >"$T/d$n.log" 2>&1 &
        dpid=$!
        lb_track "$dpid"
        wait_until 60 "backupd listen on $sock" grep -qs "listening on" "$T/d$n.log"
        DR=$R
        [[ $kind == rados ]] && DR="$R&socket=$sock"
        run_ok livebackup backup-image --repo "$DR" --name b \
            --disk vda="$T/top.qcow2" --since vda="$T/base.raw"
        di[$kind]+=" $(secs livebackup backup-image --json --repo "$DR" \
            --name b --disk vda="$T/top.qcow2" --since vda="$T/base.raw")"
        kill -TERM "$dpid"
        wait "$dpid" || fail "backupd listen did not stop cleanly: $(cat "$T/d$n.log")"
        grep -q "bridged session" "$T/d$n.log" ||
            fail "the daemon served nothing: $(cat "$T/d$n.log")"
        newrepo "$kind"
        run_ok livebackup init --repo "$R"
        t0=$(date +%s.%N)
        livebackup backup-image --repo "$R" --name p1 --disk vda="$T/p1.raw" \
            >"$T/p1.out" 2>&1 &
        p1=$!
        livebackup backup-image --repo "$R" --name p2 --disk vda="$T/p2.raw" \
            >"$T/p2.out" 2>&1 &
        p2=$!
        wait "$p1" && wait "$p2" || fail "two front ends: $(cat "$T/p1.out" "$T/p2.out")"
        w[$kind]+=" $(echo "$(date +%s.%N) - $t0" | bc)"
        # 64 KiB windows: many small objects
        newrepo "$kind"
        run_ok livebackup init --repo "$R" --window-size 64K
        sf[$kind]+=" $(secs livebackup backup-image --json --repo "$R" --name b \
            --disk vda="$T/base.raw")"
        rm -f "$T/ops"
        si[$kind]+=" $(LIVEBACKUP_RADOS_OPS=$T/ops secs livebackup backup-image \
            --json --repo "$R" --name b --disk vda="$T/many.qcow2" \
            --since vda="$T/base.raw")"
        windows=$(($(json_field "$T/out" summary windows_set) + $(json_field "$T/out" summary windows_pushed)))
        if [[ $kind == rados ]]; then
            total=$(awk '{s += $2 + $4 + $6 + $8 + $10} END {print s}' "$T/ops")
            sops[$kind]="$total ops for $windows windows: $(echo "scale=1; $total / $windows" | bc) per window ($(tr '\n' ' ' <"$T/ops"))"
        fi
        sl[$kind]+=" $(secs livebackup list --repo "$R")"
        # Listing one set among many backups: what every incremental's
        # parent check asks (200 small backups of 10 sets, 20 each).
        newrepo "$kind"
        run_ok livebackup init --repo "$R"
        for k in $(seq 200); do
            livebackup backup-image --repo "$R" --name "s$((k % 10))" \
                --disk vda="$T/tiny.raw" >/dev/null 2>"$T/err" ||
                fail "backup $k of 200: $(cat "$T/err")"
        done
        ls1[$kind]+=" $(secs livebackup list --repo "$R" --name s3)"
    done
done
# med "LIST": the median of a space-separated list
med() { tr ' ' '\n' <<<"$1" | grep . | median; }
for kind in file rados; do
    sfull[$kind]=$(med "${sf[$kind]}")
    sincr[$kind]=$(med "${si[$kind]}")
    slist[$kind]=$(med "${sl[$kind]}")
    slist1[$kind]=$(med "${ls1[$kind]}")
    rounds[$kind]="${f[$kind]# }"
    full[$kind]=$(med "${f[$kind]}")
    incr[$kind]=$(med "${i[$kind]}")
    dincr[$kind]=$(med "${di[$kind]}")
    night[$kind]=$(med "${n1[$kind]}")
    two[$kind]=$(med "${w[$kind]}")
done

t0=$(date +%s.%N)
ceph_stop
stop_secs=$(echo "$(date +%s.%N) - $t0" | bc)

ratio() { echo "scale=2; $1 / $2" | bc; }
# before the results file is truncated below, which would make the tree
# look dirty
commit="$(git -C "$here" rev-parse --short HEAD)$(git -C "$here" diff --quiet || echo ' (dirty)')"
{
    echo "# bench/rados.sh — $commit, $(date -u +%F)"
    echo
    echo "One mon + one memstore OSD on this 2-core machine, started afresh for each round (first cluster up in ${start_secs}s, last down in ${stop_secs}s;"
    echo "an untimed first RADOS backup warms each fresh OSD up: ${warm[*]} s); rounds alternate which backend goes first;"
    echo "fresh memory on this host: 1 GiB faulted in (dd bs=1G from /dev/zero) in ${fault_secs}s;"
    echo "image ${SIZE} MiB of random data; median of $REPEAT. Ratio = RADOS speed / file speed (target >= 0.7).${NOTE:+ $NOTE.}"
    echo
    echo "| run | file s | file MB/s | rados s | rados MB/s | ratio |"
    echo "|---|---|---|---|---|---|"
    echo "| full | ${full[file]} | $(mbps "$SIZE" "${full[file]}") | ${full[rados]} | $(mbps "$SIZE" "${full[rados]}") | $(ratio "${full[file]}" "${full[rados]}") |"
    echo "| incremental (64 x 4 KiB) | ${incr[file]} | $(mbps "$SIZE" "${incr[file]}") | ${incr[rados]} | $(mbps "$SIZE" "${incr[rados]}") | $(ratio "${incr[file]}" "${incr[rados]}") |"
    echo "| incremental (64 x 4 KiB) through backupd listen (its connections kept) | ${dincr[file]} | $(mbps "$SIZE" "${dincr[file]}") | ${dincr[rados]} | $(mbps "$SIZE" "${dincr[rados]}") | $(ratio "${dincr[file]}" "${dincr[rados]}") |"
    echo "| incremental, a night: 1 % of the disk ($nblk x 4 KiB) | ${night[file]} | $(mbps "$SIZE" "${night[file]}") | ${night[rados]} | $(mbps "$SIZE" "${night[rados]}") | $(ratio "${night[file]}" "${night[rados]}") |"
    echo "| 2 front ends at once | ${two[file]} | $(mbps "$SIZE" "${two[file]}") | ${two[rados]} | $(mbps "$SIZE" "${two[rados]}") | $(ratio "${two[file]}" "${two[rados]}") |"
    echo "| full, 64 KiB windows ($((SIZE * 16)) chunks) | ${sfull[file]} | $(mbps "$SIZE" "${sfull[file]}") | ${sfull[rados]} | $(mbps "$SIZE" "${sfull[rados]}") | $(ratio "${sfull[file]}" "${sfull[rados]}") |"
    echo "| incremental, 64 KiB windows (1024 x 4 KiB) | ${sincr[file]} | $(mbps "$SIZE" "${sincr[file]}") | ${sincr[rados]} | $(mbps "$SIZE" "${sincr[rados]}") | $(ratio "${sincr[file]}" "${sincr[rados]}") |"
    echo "| list, 64 KiB windows (2 backups, $((SIZE * 16))+ chunks) | ${slist[file]} | | ${slist[rados]} | | $(ratio "${slist[file]}" "${slist[rados]}") |"
    echo "| list one set of 20 among 200 backups (the parent check) | ${slist1[file]} | | ${slist1[rados]} | | $(ratio "${slist1[file]}" "${slist1[rados]}") |"
    echo
    echo "Full backup, each round (s): file ${rounds[file]}; rados ${rounds[rados]}."
    echo
    echo "RADOS operations in the incremental (4 MiB windows): ${ops[rados]}."
    echo
    echo "RADOS operations in the incremental (64 KiB windows): ${sops[rados]}."
} | tee "$here/bench/results-rados.md"
