#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bench/scale.sh: does an incremental cost what changed, or what the disk
# is? The same number of rewritten 4 KiB clusters on the live path, on a
# disk of SIZE GiB and one 4x larger, in the same run. Run by hand (it
# takes the machine-wide VM lock); prints the figures and writes
# bench/results-scale.md. Not a test.
#
#   bench/scale.sh [common options, see --help]
#
# For each size, the test VM on an ext4 disk filled with files from /usr
# (bench/lib.sh make_image; the 4x one is bench/run.sh's large image):
# a full backup (not compared), then --repeat incrementals, each after the
# guest rewrote K = 1% of the SMALL disk's 4 KiB clusters inside its files
# (bench/scatter.c), with the workload paused (so that only the rewrites,
# and ext4's own metadata and journal, change). Then, to see what the
# repository costs (one chunk file per touched window, each fdatasync'd),
# --repeat more incrementals of each with backupd under eatmydata (its
# fsync, fdatasync and syncfs made no-ops: a measurement, never a way to
# run it), and one with backupd under `strace -f -c` (not in the timings).
BENCH_NAME=scale
. "$(dirname "$0")/lib.sh"
bench_parse "$@"
bench_setup
build_scatter
command -v strace >/dev/null || die "strace is not installed (bench/packages.txt)"

BIG_GIB=$((SIZE_GIB * 4))
K=$(((SIZE_GIB << 30) / 4096 / 100))
make_image "$SIZE_GIB" "$IMG/ext4-${SIZE_GIB}g" 1
make_image "$BIG_GIB" "$IMG/ext4-${BIG_GIB}g" 0
cat >"$T/wrap/backupd-strace" <<EOF
#!/bin/sh
exec strace -f -c -o "$T/strace.\$\$" "$T/wrap/backupd" "\$@"
EOF
cat >"$T/wrap/backupd-nosync" <<EOF
#!/bin/sh
exec eatmydata "$T/wrap/backupd" "\$@"
EOF
chmod +x "$T/wrap/backupd-strace" "$T/wrap/backupd-nosync"
bench_vm_up

declare -A STRACE
for gib in "$SIZE_GIB" "$BIG_GIB"; do
    log "$gib GiB disk"
    cp "$IMG/ext4-${gib}g.qcow2" "$T/vm/vda-$gib.qcow2"
    DOM=$(bench_vm_start "s$gib" --disk "vda=$T/vm/vda-$gib.qcow2:qcow2" --mem 256)
    vm_wait_workload "$DOM" 2 >/dev/null || die "the workload of $DOM did not start"
    guest_put "$DOM" "$SCATTER" /run/scatter
    vm_guest_exec "$DOM" touch /run/lbtest.pause >/dev/null || die "cannot pause the workload"
    vm_wait_console "$DOM" '^lbtest: paused' 60 >/dev/null || die "the workload did not pause"
    GUEST_BUSY=$(cpu_busy_pct 3)
    QUIET_PCT=$((GUEST_BUSY + 10))
    OTHER_FLOOR=$(calc "$GUEST_BUSY * $CPUS / 100")
    REPO=$T/repo-$gib
    lb init --repo "$REPO" >/dev/null
    settle "$T/vm/vda-$gib.qcow2"
    lb_run "full-$gib" backup --json "$DOM" --repo "$REPO"
    rec "full-$gib"
    for ((r = 1; r <= 2 * REPEAT + 1; r++)); do
        scatter "$DOM" "$K" "$r" 50
        settle
        if ((r <= REPEAT)); then
            lb_run "incr-$gib.$r" backup --json "$DOM" --repo "$REPO"
            rec "incr-$gib.$r"
        elif ((r <= 2 * REPEAT)); then
            LB_RUN_BACKUPD=$T/wrap/backupd-nosync lb_run "nosync-$gib.$((r - REPEAT))" backup --json "$DOM" --repo "$REPO"
            rec "nosync-$gib.$((r - REPEAT))"
        else
            rm -f "$T"/strace.*
            LB_RUN_BACKUPD=$T/wrap/backupd-strace lb_run "strace-$gib" backup --json "$DOM" --repo "$REPO"
            rec "strace-$gib"
            cat "$T"/strace.* >"$T/strace-$gib.txt"
        fi
    done
    vm_destroy "$DOM"
    rm -f "$T/vm/vda-$gib.qcow2"
done

# ---- report ---------------------------------------------------------------------
labels() { local r; for ((r = 1; r <= REPEAT; r++)); do echo "${2:-incr}-$1.$r"; done; }
declare -A M MN
for gib in "$SIZE_GIB" "$BIG_GIB"; do
    mapfile -t ls < <(labels "$gib")
    M[$gib]=$(pick "${ls[@]}")
    mapfile -t ls < <(labels "$gib" nosync)
    MN[$gib]=$(pick "${ls[@]}")
done
PH=(plan overlay freeze snapshot open data close commit ack blockcommit)
row() { # row GIB [nosync]
    local gib=$1 m=${M[$1]} p out
    [[ -z ${2:-} ]] || m=${MN[$1]}
    mapfile -t ls < <(labels "$gib" "${2:-incr}")
    out="$gib GiB${2:+, backupd without syncs}|${W[$m]} ($(walls "${ls[@]}"))|$(sum_of "$m" agent_bytes_read)|$(sum_of "$m" windows_set) / $(sum_of "$m" windows_pushed)|$(sum_of "$m" chunks_new)|$(sum_of "$m" bytes_new)"
    for p in "${PH[@]}"; do out+="|$(ms "$(sum_of "$m" "us_$p")")"; done
    echo "$out"
}
table "## The same rewritten clusters ($K x 4 KiB) on both disks, live path (median of $REPEAT, every run in brackets; phases in ms)" \
    "disk|seconds|bytes read|windows full / delta|chunks new|bytes stored|$(IFS='|'; echo "${PH[*]}")" \
    "$(row "$SIZE_GIB")" "$(row "$BIG_GIB")" "$(row "$SIZE_GIB" nosync)" "$(row "$BIG_GIB" nosync)"
sys_row() { # sys_row GIB: fdatasync, fsync, rename and openat of backupd
    local f=$T/strace-$1.txt c out
    out="$1 GiB ($(sum_of "strace-$1" chunks_new) new chunks)"
    for c in fdatasync fsync renameat2 rename openat syncfs; do
        out+="|$(awk -v c="$c" '$NF == c { printf "%d / %.0f", $4, $2 * 1000; f = 1 } END { if (!f) printf "0" }' "$f")"
    done
    echo "$out"
}
table "## backupd's system calls during one more such incremental (strace -f -c; calls / ms of system time)" \
    "disk|fdatasync|fsync|renameat2|rename|openat|syncfs" \
    "$(sys_row "$SIZE_GIB")" "$(sys_row "$BIG_GIB")"
RATIO=$(calc "${W[${M[$BIG_GIB]}]} / ${W[${M[$SIZE_GIB]}]}")
RATIO_NS=$(calc "${W[${MN[$BIG_GIB]}]} / ${W[${MN[$SIZE_GIB]}]}")
table "## Targets" \
    "figure|value|target|result" \
    "incremental time, $BIG_GIB GiB / $SIZE_GIB GiB, same rewritten clusters (${W[${M[$BIG_GIB]}]} / ${W[${M[$SIZE_GIB]}]} s)|$RATIO|<= 1.2|$(verdict "$RATIO" '<=' 1.2)" \
    "(info) the same with backupd's syncs made no-ops: what the repository's per-chunk fdatasync costs (${W[${MN[$BIG_GIB]}]} / ${W[${MN[$SIZE_GIB]}]} s)|$RATIO_NS|-|-"
note "Each incremental after \`scatter /data $K SEED 50\` in the guest (the same $K 4 KiB blocks count, drawn over each disk's files: on the larger disk they touch more windows); the guest's workload paused (ext4's journal and metadata writes remain)."
note "backupd without syncs: eatmydata (LD_PRELOAD) turns its fsync, fdatasync and syncfs into no-ops; the repository is then NOT durable: this only measures what the syncs cost."
note "Phases from the --json summary (us_*); data: map, read, compress and send; commit: the repository's commit (COMMIT to COMMITTED); blockcommit: QEMU merging the layer into the image."
note "The full backups (not compared): $SIZE_GIB GiB ${W[full-$SIZE_GIB]} s, $BIG_GIB GiB ${W[full-$BIG_GIB]} s."
bench_report "livebackup incremental cost vs disk size, live path" \
    "Disks: ext4 of $SIZE_GIB and $BIG_GIB GiB, ~$FILL_PCT% full of files from /usr, each the vda (qcow2 copy) of its own test VM."
