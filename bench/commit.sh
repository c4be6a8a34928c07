#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bench/commit.sh: is the live incremental's block commit QEMU's work or
# the agent's waiting? QEMU's commit of a layer like the incremental's,
# timed in a bare QEMU (qemu-system-x86_64 -M none, QMP on stdio: no
# guest, no libvirt, no livebackup). Run by hand (no libvirt domain: no VM
# lock); prints the figures and writes bench/results-commit.md. Not a test.
#
#   bench/commit.sh [--blocks N] [common options, see --help]
#
# The layer: the agent's overlay format (qcow2, 128 KiB clusters,
# extended L2: 4 KiB subclusters) over a copy of bench/live.sh's disk
# image, with N random 4 KiB blocks written into it (qemu-io; default 1%
# of the disk's 4 KiB clusters, bench/live.sh's rewrite), and an empty
# overlay above it (the guest's new one). Each run starts from fresh
# copies of the disk and the layer and times, from the QMP command to
# BLOCK_JOB_COMPLETED:
#   intermediate  block-commit of the layer into the disk: what libvirt
#                 runs for the agent (virDomainBlockCommit with a top)
#   active        the same data by an active commit of the whole chain
#                 (QEMU's mirror job), completed as soon as it is READY
#   intermediate, cache.direct   the first with O_DIRECT (a domain's
#                 cache='none' or 'directsync')
BENCH_NAME=commit
BLOCKS=
bench_opt() {
    case $1 in
    --blocks) BLOCKS=${2:?}; BENCH_USED=2 ;;
    esac
}
. "$(dirname "$0")/lib.sh"
bench_parse "$@"
bench_setup
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 is not installed (scripts/deps.sh)"
command -v qemu-io >/dev/null || die "qemu-io is not installed (qemu-utils)"

PRE=$IMG/ext4-${SIZE_GIB}g
make_image "$SIZE_GIB" "$PRE" 0
[[ -n $BLOCKS ]] || BLOCKS=$(((SIZE_GIB << 30) / 4096 / 100))
[[ $BLOCKS =~ ^[1-9][0-9]*$ ]] || die "--blocks wants a positive number"

# The layer, once: N distinct random 4 KiB blocks of the disk (seeded).
log "the layer: $BLOCKS random 4 KiB writes into an overlay of the disk"
cp "$PRE.qcow2" "$T/disk0.qcow2"
qemu-img create -q -f qcow2 -b "$T/disk0.qcow2" -F qcow2 \
    -o cluster_size=128k,extended_l2=on "$T/layer0.qcow2"
awk -v n="$BLOCKS" -v total="$(((SIZE_GIB << 30) / 4096))" 'BEGIN {
        srand(7)
        while (k < n) { b = int(rand() * total); if (!(b in seen)) { seen[b]; k++
            printf "write -P %d %d 4k\n", k % 250 + 1, b * 4096 } } }' >"$T/writes"
qemu-io -t unsafe -f qcow2 "$T/layer0.qcow2" <"$T/writes" >"$T/qemu-io.log" ||
    die "qemu-io failed: $(tail -n 3 "$T/qemu-io.log")"
LAYER_BYTES=$(qemu-img map --output=json "$T/layer0.qcow2" |
    jq '[.[] | select(.depth == 0 and .data) | .length] | add // 0')
sync

# one MODE LABEL: fresh copies, a bare QEMU on the chain, the job timed
one() {
    local mode=$1 label=$2 direct=false t0 t1 line
    [[ $mode == direct ]] && direct=true
    rm -f "$T"/disk.qcow2 "$T"/layer.qcow2 "$T"/top.qcow2
    cp "$T/disk0.qcow2" "$T/disk.qcow2"
    cp "$T/layer0.qcow2" "$T/layer.qcow2"
    qemu-img rebase -u -f qcow2 -b "$T/disk.qcow2" -F qcow2 "$T/layer.qcow2"
    qemu-img create -q -f qcow2 -b "$T/layer.qcow2" -F qcow2 \
        -o cluster_size=128k,extended_l2=on "$T/top.qcow2"
    sync
    node() { # node NAME FILE BACKING-JSON
        printf '{"driver":"qcow2","node-name":"%s","cache":{"direct":%s},"file":{"driver":"file","filename":"%s","cache":{"direct":%s}},"backing":%s}' \
            "$1" "$direct" "$2" "$direct" "$3"
    }
    local chain
    chain=$(node top "$T/top.qcow2" "$(node layer "$T/layer.qcow2" "$(node disk "$T/disk.qcow2" null)")")
    wait_quiet
    coproc QMP { exec qemu-system-x86_64 -M none -nodefaults -display none -qmp stdio -blockdev "$chain" 2>"$T/qemu.log"; }
    local qpid=$QMP_PID
    bench_track "$qpid"
    qmp_send() { printf '%s\n' "$1" >&"${QMP[1]}"; }
    # qmp_until REGEX: read lines until one matches (the line in QLINE)
    qmp_until() {
        while read -r -t 600 QLINE <&"${QMP[0]}"; do
            [[ $QLINE =~ $1 ]] && return 0
            [[ $QLINE == *'"error"'* ]] && die "QMP: $QLINE"
        done
        die "QMP: no answer matching $1 ($(tail -n 3 "$T/qemu.log"))"
    }
    qmp_until '"QMP"'
    qmp_send '{"execute":"qmp_capabilities"}'
    qmp_until '"return"'
    other_begin
    t0=$(now)
    if [[ $mode == active ]]; then
        qmp_send '{"execute":"block-commit","arguments":{"job-id":"j","device":"top","base-node":"disk"}}'
        qmp_until '"BLOCK_JOB_READY"'
        qmp_send '{"execute":"job-complete","arguments":{"id":"j"}}'
    else
        qmp_send '{"execute":"block-commit","arguments":{"job-id":"j","device":"top","top-node":"layer","base-node":"disk"}}'
    fi
    qmp_until '"BLOCK_JOB_COMPLETED"'
    t1=$(now)
    line=$QLINE
    [[ $line != *'"error"'* ]] || die "$label: $line"
    qmp_send '{"execute":"quit"}'
    wait "$qpid" 2>/dev/null || true
    W[$label]=$(calc "$t1 - $t0" 3)
    other_end "${W[$label]}"
    DIST[$label]=$DISTURBED
    LEN[$label]=$(jq -r '.data.len' <<<"$line")
    log "$label: ${W[$label]} s"
}
declare -A LEN
MODES=(intermediate active direct)
for ((r = 1; r <= REPEAT; r++)); do
    for m in "${MODES[@]}"; do one "$m" "$m.$r"; done
done
rm -f "$T"/*.qcow2

# ---- report ---------------------------------------------------------------------
labels() { local r; for ((r = 1; r <= REPEAT; r++)); do echo "$1.$r"; done; }
name_of() {
    case $1 in
    intermediate) echo "intermediate commit of the layer (the agent's, through libvirt)" ;;
    active) echo "active commit of the chain (mirror), completed at READY" ;;
    direct) echo "intermediate commit, cache.direct (O_DIRECT)" ;;
    esac
}
declare -A MED
rows=()
for m in "${MODES[@]}"; do
    mapfile -t ls < <(labels "$m")
    med=$(pick "${ls[@]}")
    MED[$m]=${W[$med]}
    rows+=("$(name_of "$m")|${MED[$m]} ($(walls "${ls[@]}"))|${LEN[$med]}|$(calc "${MED[$m]} / ${MED[intermediate]}")")
done
table "## QEMU's block commit of the layer (median of $REPEAT runs, every run in brackets)" \
    "job|seconds|bytes the job walked|/ intermediate" \
    "${rows[@]}"
note "Layer: $BLOCKS random 4 KiB writes (qemu-io) into a qcow2 overlay (128 KiB clusters, extended L2) of the ${SIZE_GIB} GiB ext4 disk image of bench/live.sh, $(mb "$LAYER_BYTES") MB allocated in it; an empty overlay of the same format above it."
note "QEMU alone (qemu-system-x86_64 -M none, QMP on stdio, aio=threads): no guest competes for the CPUs, no libvirt, no agent. Seconds: from the block-commit command to BLOCK_JOB_COMPLETED. Compare with the blockcommit phase (us_blockcommit) of bench/live.sh's incremental (7864 rewrites inside files on the live VM, plus the guest's journal and metadata writes)."
note "QEMU's commit job copies one allocated run at a time (one read, one write in flight); the mirror copies whole clusters, several at once."
bench_report "QEMU's block commit of an incremental's layer, without a guest" \
    "Disk: $PRE.qcow2 (qcow2, $(qemu-img info --output=json "$PRE.qcow2" | jq '."cluster-size"') byte clusters), copied for each run."
