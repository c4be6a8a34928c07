#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bench/instant.sh: instant access to a backup, measured (issue 11,
# "Speed"). Run by hand as root; it brings up libvirtd and the test guest
# like the VM tests (tests/integration/vmlib.sh, one at a time on the
# machine) and prints every figure with its ratio against its baseline,
# also as Markdown to bench/results-instant.md. Not a test: nothing fails
# because a target is missed.
#
#   bench/instant.sh [--sizes "1 8"]     disk sizes in GiB (default 1 and 8)
#
# For each size G: the test guest with an ext4 data disk of G GiB holding
# a file of G/2 GiB of random data (mkfs.ext4 -d, cached in
# /var/tmp/livebackup-bench-instant), backed up (full); then
#   1. restore --instant of that backup, to the restored guest's agent
#      answering (guest-ping, polled every 50 ms): the time from the
#      command's start; target <= 5 s and flat in G;
#   2. the background pull: from the command's start until the watcher has
#      finished (the journal gone), against a plain `restore` of the same
#      backup to qcow2 (target <= 1.3x); also from the command's return
#      (the domain defined and started: the pull begins) to the same end;
#      and the export's peak RSS (VmHWM of its nbdkit, sampled every 100
#      ms; target < 256 MiB); beside them what else wanted the CPUs
#      meanwhile: the CPU time of the restored guest's QEMU (booting under
#      TCG) and how busy the machine's CPUs were (/proc/stat) from the
#      command's start to the pull's end;
#   3. `livebackup map` of the disk: nbdcopy of the export to a raw file
#      against restore-image of the same disk to a raw file (MB/s of the
#      disk's size; target >= 0.8x);
#   4. 2000 reads of 4 KiB at random offsets through the export, one at a
#      time (bench/randread.c): p50 and p99 in ms.
# Page cache: the repository is read once before each timed read of it.
set -euo pipefail

sizes="1 8"
while (($#)); do
    case $1 in
    --sizes) sizes=$2 && shift 2 ;;
    *)
        echo "usage: $0 [--sizes \"1 8\"]" >&2
        exit 2
        ;;
    esac
done
here=$(cd "$(dirname "$0")/.." && pwd)
export LB_SRC=$here LB_BUILD=${LB_BUILD:-$here/build}
cache=/var/tmp/livebackup-bench-instant
mkdir -p "$cache"
# shellcheck source=../tests/integration/lib.sh
. "$here/tests/integration/lib.sh"
# shellcheck source=../tests/integration/vmlib.sh
. "$here/tests/integration/vmlib.sh"

cc -O2 -Wall -o "$T/randread" "$here/bench/randread.c" -lnbd
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }
ratio() { echo "scale=2; $1 / $2" | bc; }
warm() { find "$1" -type f -exec cat {} + >/dev/null; }
# peak RSS (KiB) of PID until it exits, into $1
sample_hwm() {
    local pid=$1 out=$2 v max=0
    while [[ -r /proc/$pid/status ]]; do
        v=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
        [[ -n $v && $v -gt $max ]] && max=$v
        echo "$max" >"$out"
        sleep 0.1
    done
}
agent_wait_fast() {
    until virsh -q -c qemu:///system qemu-agent-command "$1" --timeout 1 \
        '{"execute":"guest-ping"}' >/dev/null 2>&1; do
        sleep 0.05
    done
}

# what was measured: the commit, and whether the tree was clean
rev=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$here" status --porcelain 2>/dev/null) ]]; then
    rev="$rev, uncommitted changes"
else
    rev="$rev, clean tree"
fi
load0=$(cut -d' ' -f1-3 /proc/loadavg)
R=$T/repo
run_ok livebackup init --repo "$R"
declare -A boot pull pullr plain seq rimg p50 p99 rss qcpu busy
tck=$(getconf CLK_TCK)
# The machine's CPU jiffies, busy and total: bench/lib.sh's cpu_ticks
# (that file is not sourced here: it sets the benchmarks' environment)
cpu_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat; }
for G in $sizes; do
    img=$cache/data-$G.raw
    if [[ ! -f $img ]]; then
        rm -rf "$cache/src-$G" && mkdir -p "$cache/src-$G"
        head -c $((G << 29)) /dev/urandom >"$cache/src-$G/random.bin"
        mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 \
            -d "$cache/src-$G" "$img.tmp" "${G}G"
        rm -rf "$cache/src-$G"
        mv "$img.tmp" "$img"
    fi
    cp --sparse=always "$img" "$VMDIR/d$G.raw"
    vm=$(new_vm "b$G" --disk "vda=$VMDIR/d$G.raw:raw" --noworkload)
    vm_wait_agent "$vm" 180 >/dev/null
    run_ok livebackup backup --json "$vm" --repo "$R"
    id=$(json_field "$T/out" summary id)
    virsh -q -c qemu:///system destroy "$vm" >/dev/null

    # 1, 2: restore --instant, the agent, the pull, the export's memory
    new=${VM_PREFIX}i$G
    warm "$R"
    read -r busy0 total0 < <(cpu_ticks)
    t0=$(now)
    run_ok livebackup restore "$vm" --repo "$R" --backup "$id" --instant \
        --to "$T/i$G" --name "$new" --keep-host-access
    t_ret=$(now)
    # The export serves from here on: on a quiet machine the 1 GiB pull
    # can end before the guest's agent answers, and the pid file with it.
    export_pid=$(cat "$LIVEBACKUP_STATE_DIR/$new-vda.export.pid") ||
        fail "no pid file of the instant restore's export"
    sample_hwm "$export_pid" "$T/hwm$G" &
    hwm_pid=$!
    # the pull's end, watched beside the wait for the agent (it may come
    # first)
    qemu_pid=$(cat "/run/libvirt/qemu/$new.pid")
    (
        while [[ -e $LIVEBACKUP_STATE_DIR/$new.instant ]]; do sleep 0.05; done
        now >"$T/pulled$G"
        cpu_ticks >"$T/ticks$G"
        awk '{ print $14 + $15 }' "/proc/$qemu_pid/stat" >"$T/qemu$G"
    ) &
    pull_watch=$!
    agent_wait_fast "$new"
    boot[$G]=$(since "$t0")
    wait "$pull_watch"
    pull[$G]=$(echo "$(cat "$T/pulled$G") - $t0" | bc)
    pullr[$G]=$(echo "$(cat "$T/pulled$G") - $t_ret" | bc)
    qcpu[$G]=$(echo "scale=2; $(cat "$T/qemu$G") / $tck" | bc)
    read -r busy1 total1 <"$T/ticks$G"
    busy[$G]=$(((busy1 - busy0) * 100 / (total1 - total0)))
    wait "$hwm_pid" || true
    rss[$G]=$(($(cat "$T/hwm$G") / 1024))
    vm_destroy "$new"
    rm -rf "$T/i$G"
    warm "$R"
    t0=$(now)
    run_ok livebackup restore "$vm" --repo "$R" --backup "$id" --to "$T/p$G" \
        --name "${VM_PREFIX}p$G"
    plain[$G]=$(since "$t0")
    rm -rf "$T/p$G"

    # 3, 4: map
    S=$T/m$G.sock
    livebackup map --repo "$R" --name "$vm" --backup "$id" --disk vda \
        --socket "$S" --pid-file "$S.pid" 2>"$T/map$G.log" &
    MAP_PID=$!
    lb_track "$MAP_PID"
    wait_until 60 "the export" test -s "$S.pid"
    warm "$R"
    t0=$(now)
    nbdcopy "nbd+unix:///?socket=$S" "$T/seq.raw"
    seq[$G]=$(echo "scale=1; $G * 1073.741824 / $(since "$t0")" | bc)
    rm -f "$T/seq.raw"
    read -r p50[$G] p99[$G] < <("$T/randread" "nbd+unix:///?socket=$S" 2000 4096)
    kill -TERM "$MAP_PID"
    wait "$MAP_PID" || true
    warm "$R"
    t0=$(now)
    run_ok livebackup restore-image --repo "$R" --name "$vm" --backup "$id" \
        --disk vda --to "$T/ri.raw"
    rimg[$G]=$(echo "scale=1; $G * 1073.741824 / $(since "$t0")" | bc)
    rm -f "$T/ri.raw"
    vm_destroy "$vm"
    rm -f "$VMDIR/d$G.raw"
done

{
    echo "# Instant access (bench/instant.sh at $rev, $(date -u +%Y-%m-%d), $(nproc) CPUs, load average before the run $load0)"
    echo
    echo "| figure | $(for G in $sizes; do printf '%s GiB | ' "$G"; done)target |"
    echo "|---|$(for G in $sizes; do printf -- '---:|'; done)---:|"
    printf '| restore --instant to guest agent answer (s) |'
    for G in $sizes; do printf ' %.2f |' "${boot[$G]}"; done
    echo ' <= 5, flat |'
    printf '| pull done (s) / plain restore (s) = ratio |'
    for G in $sizes; do printf ' %.1f / %.1f = **%s** |' "${pull[$G]}" "${plain[$G]}" "$(ratio "${pull[$G]}" "${plain[$G]}")"; done
    echo ' <= 1.3 |'
    printf '| the pull alone: from the command'"'"'s return (s) / plain restore = ratio |'
    for G in $sizes; do printf ' %.1f / %.1f = %s |' "${pullr[$G]}" "${plain[$G]}" "$(ratio "${pullr[$G]}" "${plain[$G]}")"; done
    echo ' - |'
    printf '| meanwhile: CPU-s of the restored guest'"'"'s QEMU (TCG boot) / the machine'"'"'s CPUs busy |'
    for G in $sizes; do printf ' %s / %s %% |' "${qcpu[$G]}" "${busy[$G]}"; done
    echo ' - |'
    printf '| nbdcopy of the export / restore-image (MB/s) = ratio |'
    for G in $sizes; do printf ' %s / %s = **%s** |' "${seq[$G]}" "${rimg[$G]}" "$(ratio "${seq[$G]}" "${rimg[$G]}")"; done
    echo ' >= 0.8 |'
    printf '| 4 KiB random reads through the export, p50 / p99 (ms) |'
    for G in $sizes; do printf ' %s / %s |' "${p50[$G]}" "${p99[$G]}"; done
    echo ' - |'
    printf '| the export'"'"'s peak RSS (MiB) |'
    for G in $sizes; do printf ' %s |' "${rss[$G]}"; done
    echo ' < 256 |'
} | tee "$here/bench/results-instant.md"
