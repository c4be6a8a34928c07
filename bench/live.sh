#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bench/live.sh: the live VM path, end to end. Run by hand (it takes the
# machine-wide VM lock); prints the figures and writes
# bench/results-live.md. Not a test: a missed target fails nothing.
#
#   bench/live.sh [common options, see --help]
#
# In one run, on the same data:
#   - the test VM (tests/vm: TCG guest, qemu-guest-agent, its workload
#     writing a file every 0.5 s) with a data disk of SIZE GiB (default 3):
#     ext4 filled to ~65% with real files from /usr (bench/lib.sh
#     make_image, cached), a qcow2 copy of it as the guest's vda;
#   - baseline: zstd -1 -T0 over that disk's allocated data (qemu-img map
#     ranges concatenated), its file dropped from the page cache before
#     each run (cold: a disk nobody read lately, what a nightly full
#     meets), and with the page cache warm (a shortcut);
#   - full backups (quiesced, into a new local repository each; `untrack`
#     in between), the disk's image cold, then warm (read just before);
#     then incrementals, each after the guest rewrote 1% of
#     the disk's 4 KiB clusters scattered inside its files (bench/scatter.c
#     run in the guest: half random bytes, half their own data edited),
#     the same with --background-commit (and when QEMU's commit ended),
#     then incrementals with the workload paused and nothing rewritten
#     (the fixed cost); every backup's phases (the --json summary's us_*);
#   - restores of the latest backup to raw and to qcow2 (checked: e2fsck
#     -fn on the raw image, qemu-img compare of the two).
# Each measurement runs --repeat times (median; a run disturbed by other
# processes is marked * and left out of the median).
BENCH_NAME=live
. "$(dirname "$0")/lib.sh"
bench_parse "$@"
bench_setup
build_scatter

PRE=$IMG/ext4-${SIZE_GIB}g
make_image "$SIZE_GIB" "$PRE" 1
image_data "$PRE"
VSIZE=$((SIZE_GIB << 30))
K=$((VSIZE / 4096 / 100))
log "disk: $SIZE_GIB GiB, $(mb "$ALLOC") MB allocated; incrementals rewrite $K x 4 KiB (1%)"

log "baseline: zstd -1 -T0 over the allocated data, cold then warm ($REPEAT runs each)"
zstd_baseline "$PRE.data.bin" cold
ZC_S=$Z_S ZC_ALL=$Z_ALL
zstd_baseline "$PRE.data.bin"

bench_vm_up
cp "$PRE.qcow2" "$T/vm/vda.qcow2"
DOM=$(bench_vm_start live --disk "vda=$T/vm/vda.qcow2:qcow2" --mem 256)
vm_wait_workload "$DOM" 2 >/dev/null || die "the workload of $DOM did not start"
guest_put "$DOM" "$SCATTER" /run/scatter
# The guest's own CPU use (TCG, workload) is the floor of "quiet".
GUEST_BUSY=$(cpu_busy_pct 3)
QUIET_PCT=$((GUEST_BUSY + 10))
OTHER_FLOOR=$(calc "$GUEST_BUSY * $CPUS / 100")
log "guest $DOM runs; it keeps the machine ${GUEST_BUSY}% busy"

backup() { # backup LABEL REPO KIND [OPTION...]: a measured backup of DOM, checked
    lb_run "$1" backup --json "$DOM" --repo "$2" "${@:4}"
    rec "$1"
    [[ $(sum_of "$1" kind) == "$3" ]] || die "$1: not a $3 backup: ${SUM[$1]}"
}

# Fulls from a cold image, then from a warm one (the last one's repository
# takes the incrementals).
COLDS=() FULLS=()
for ((r = 1; r <= 2 * REPEAT; r++)); do
    REPO=$T/repo.$r
    lb init --repo "$REPO" >/dev/null
    ((r == 1)) || lb untrack "$DOM" >/dev/null
    if ((r <= REPEAT)); then
        settle
        cold "$T/vm/vda.qcow2"
        backup "cold.$r" "$REPO" full
        COLDS+=("cold.$r")
    else
        rm -rf "$T/repo.$((r - REPEAT))"
        settle "$T/vm/vda.qcow2"
        backup "full.$r" "$REPO" full
        FULLS+=("full.$r")
    fi
done

INCRS=()
for ((r = 1; r <= REPEAT; r++)); do
    scatter "$DOM" "$K" "$r" 50
    settle
    backup "incr.$r" "$REPO" incremental
    INCRS+=("incr.$r")
done

# The same with --background-commit, and when QEMU's commit ended.
declare -A COMMIT_DONE
BGS=()
for ((r = 1; r <= REPEAT; r++)); do
    scatter "$DOM" "$K" "$((100 + r))" 50
    settle
    backup "bg.$r" "$REPO" incremental --background-commit
    t0=$(now)
    while [[ $(virsh -q -c qemu:///system blockjob "$DOM" vda 2>&1) == *"Block Commit"* ]]; do
        read -rt 0.02 -u "$SLEEPFD" || true
    done
    COMMIT_DONE[bg.$r]=$(calc "${W[bg.$r]} + $(now) - $t0")
    lb recover "$DOM" >/dev/null 2>&1 || die "recover after a background commit failed"
    BGS+=("bg.$r")
done

vm_guest_exec "$DOM" touch /run/lbtest.pause >/dev/null || die "cannot pause the workload"
vm_wait_console "$DOM" '^lbtest: paused' 60 >/dev/null || die "the workload did not pause"
EMPTYS=()
for ((r = 1; r <= REPEAT; r++)); do
    settle
    backup "empty.$r" "$REPO" incremental
    EMPTYS+=("empty.$r")
done
vm_guest_exec "$DOM" rm -f /run/lbtest.pause >/dev/null || die "cannot resume the workload"

LATEST=$(sum_of "${EMPTYS[-1]}" id)
RAWS=() QCOWS=()
for fmt in raw qcow2; do
    for ((r = 1; r <= REPEAT; r++)); do
        rm -f "$T/restore.$fmt"
        settle
        find "$REPO" -type f -exec cat {} + >/dev/null # the repository, warm
        lb_run "restore_$fmt.$r" restore-image --repo "$REPO" --name "$DOM" --backup "$LATEST" \
            --disk vda --to "$T/restore.$fmt" --format "$fmt" --json
        rec "restore_$fmt.$r"
        if [[ $fmt == raw ]]; then RAWS+=("restore_$fmt.$r"); else QCOWS+=("restore_$fmt.$r"); fi
    done
done
log "checking the restored images (e2fsck -fn, raw = qcow2)"
e2fsck -fn "$T/restore.raw" >"$T/e2fsck.log" 2>&1 || die "the restored image fails e2fsck: $(tail "$T/e2fsck.log")"
qemu-img compare -q -f raw -F qcow2 "$T/restore.raw" "$T/restore.qcow2" || die "raw and qcow2 restores differ"
RESTORED=$(data_ranges -f raw "$T/restore.raw" | sum_ranges /dev/stdin)
rm -f "$T/restore.raw" "$T/restore.qcow2"

# ---- report --------------------------------------------------------------------
C=$(pick "${COLDS[@]}") F=$(pick "${FULLS[@]}") I=$(pick "${INCRS[@]}") E=$(pick "${EMPTYS[@]}")
RR=$(pick "${RAWS[@]}") RQ=$(pick "${QCOWS[@]}")
B=$(pick "${BGS[@]}")
ALL_RUNS=("${COLDS[@]}" "${FULLS[@]}" "${INCRS[@]}" "${BGS[@]}" "${EMPTYS[@]}" "${RAWS[@]}" "${QCOWS[@]}")
Z_MBS=$(calc "$ALLOC / $Z_S / 1e6" 0)
ZC_MBS=$(calc "$ALLOC / $ZC_S / 1e6" 0)
rate() { calc "$(sum_of "$1" agent_bytes_read) / ${W[$1]} / 1e6" 0; }

table "## Time and bytes (local repository; median of $REPEAT runs, every run in brackets)" \
    "run|seconds|MB/s read|bytes read|bytes stored|frozen ms|peak RSS MiB livebackup / backupd / qemu-nbd" \
    "zstd -1 -T0 of the allocated data ($(mb "$ALLOC") MB), cold|$ZC_S ($ZC_ALL)|$ZC_MBS|$ALLOC|$Z_BYTES|-|-" \
    "zstd -1 -T0 of the same, page cache warm (a shortcut)|$Z_S ($Z_ALL)|$Z_MBS|$ALLOC|$Z_BYTES|-|-" \
    "$(for k in C F I B E; do
        l=${!k}
        case $k in C) set -- "${COLDS[@]}"; n="full backup, image cold" ;; F) set -- "${FULLS[@]}"; n="full backup, image warm (a shortcut)" ;; I) set -- "${INCRS[@]}"; n="incremental, $K x 4 KiB rewritten in files (1%)" ;; B) set -- "${BGS[@]}"; n="the same, --background-commit (QEMU's commit done after $(printf '%s\n' "${COMMIT_DONE[@]}" | sort -g | sed -n "$((${#BGS[@]} / 2 + 1))p") s)" ;; E) set -- "${EMPTYS[@]}"; n="incremental, workload paused, nothing rewritten" ;; esac
        echo "$n|${W[$l]} ($(walls "$@"))|$(rate "$l")|$(sum_of "$l" agent_bytes_read)|$(sum_of "$l" bytes_new)|$(sum_of "$l" freeze_ms)|$(mib "$(peak RSS_LB "$@")") / $(mib "$(peak RSS_BD "$@")") / $(mib "$(peak RSS_NBD "$@")")"
    done)" \
    "restore of the latest backup to raw|${W[$RR]} ($(walls "${RAWS[@]}"))|$(calc "$RESTORED / ${W[$RR]} / 1e6" 0)|-|-|-|$(mib "$(peak RSS_LB "${RAWS[@]}")") / $(mib "$(peak RSS_BD "${RAWS[@]}")") / -" \
    "restore of the latest backup to qcow2|${W[$RQ]} ($(walls "${QCOWS[@]}"))|$(calc "$RESTORED / ${W[$RQ]} / 1e6" 0)|-|-|-|$(mib "$(peak RSS_LB "${QCOWS[@]}")") / $(mib "$(peak RSS_BD "${QCOWS[@]}")") / $(mib "$(peak RSS_NBD "${QCOWS[@]}")")"

PHASES=(libvirt repo recover plan overlay guard freeze snapshot thaw journal begin open data close commit ack blockcommit)
phase_row() { # phase_row NAME LABEL
    local p row=$1 sum=0 v
    for p in "${PHASES[@]}"; do
        v=$(sum_of "$2" "us_$p")
        v=${v:-0}
        sum=$((sum + v))
        row+="|$(ms "$v" 1)"
    done
    echo "$row|$(ms "$sum" 0)|$(calc "${W[$2]} * 1000" 0)"
}
table "## Where the time goes (ms; the median run of each; \"outside\" = wall - phases: process start and exit, and the rest)" \
    "run|$(IFS='|'; echo "${PHASES[*]}")|sum|wall" \
    "$(phase_row "full, cold" "$C")" "$(phase_row "full, warm" "$F")" "$(phase_row incremental "$I")" "$(phase_row "incremental, --background-commit" "$B")" "$(phase_row "nothing rewritten" "$E")"

R_FULL=$(calc "$(rate "$C") / $ZC_MBS")
R_WARM=$(calc "$(rate "$F") / $Z_MBS")
PK=$(peak RSS_LB "${ALL_RUNS[@]}")
PKB=$(peak RSS_BD "${ALL_RUNS[@]}")
PKN=$(peak RSS_NBD "${ALL_RUNS[@]}")
PKMAX=$(printf '%s\n' "$PK" "$PKB" "$PKN" | sort -n | tail -n1)
R_RESTORE=$(calc "${W[$RR]} / ${W[$RQ]}")
table "## Targets" \
    "figure|value|target|result" \
    "live full MB/s / zstd -1 -T0 MB/s, image cold ($(rate "$C") / $ZC_MBS)|$R_FULL|>= 0.9|$(verdict "$R_FULL" '>=' 0.9)" \
    "the same, page cache warm (a shortcut: $(rate "$F") / $Z_MBS)|$R_WARM|>= 0.9|$(verdict "$R_WARM" '>=' 0.9)" \
    "live incremental of 1% scattered rewrites, end to end, s|${W[$I]}|<= 1.0|$(verdict "${W[$I]}" '<=' 1.0)" \
    "the same with --background-commit (the command's wall time; QEMU's commit runs on), s|${W[$B]}|<= 1.0|$(verdict "${W[$B]}" '<=' 1.0)" \
    "restore to qcow2 speed / restore to raw (${W[$RR]} s / ${W[$RQ]} s)|$R_RESTORE|>= 0.9|$(verdict "$R_RESTORE" '>=' 0.9)" \
    "peak RSS, any process, MiB (livebackup $(mib "$PK"), backupd $(mib "$PKB"), qemu-nbd $(mib "$PKN"))|$(mib "$PKMAX")|< 256|$(verdict "$PKMAX" '<' $((256 * 1024)))"

note "Guest: tests/vm (TCG, 256 MiB, 1 vCPU), its workload writing one file every 0.5 s throughout; it kept the machine ${GUEST_BUSY}% busy before the runs (each measurement waited for the machine to be under $QUIET_PCT% busy; \"disturbed\" means other processes used more than 15% of the machine beyond that)."
note "Backups are \`livebackup backup --json DOMAIN\` into a local repository (a \`backupd serve\` child, trusted: no re-hashing), quiesced (guest agent freeze), wall clock of the command: libvirt, freeze, snapshot, thaw, qemu-nbd, read, compress, send, the repository's commit, block commit."
note "Cold: the file (the baseline's data file, the guest's vda.qcow2) written back and dropped from the page cache before each run (\`dd iflag=nocache count=0\`), the rest of the machine's cache left: a disk nobody read lately, what a nightly full meets. A full reads past the page cache (O_DIRECT), so warm or cold differs little for it; zstd reads through it."
note "MB/s = 10^6 bytes of the disk's data read per second (agent_bytes_read); the baseline's of the image's allocated data. bytes stored = bytes_new of the backup."
note "Incrementals: each after \`scatter /data $K SEED 50\` in the guest (bench/scatter.c: $K distinct 4 KiB blocks inside existing files, half random bytes, half their own data with 64 bytes changed, fsync'd), on the previous backup; the guest's workload and ext4 journal add their own changes."
note "--background-commit: the command returns once the repository acknowledged the backup and QEMU's block commit of the layer is started; \"commit done after\" is when virsh blockjob stopped showing it, from the command's start (median run). \`livebackup recover\` then deletes the committed overlay (not measured)."
note "Restores: \`restore-image --backup LATEST\` (the last incremental) of vda, the repository's files read once before (warm); MB/s of the restored image's allocated data ($(mb "$RESTORED") MB)."
bench_report "livebackup live VM benchmark" \
    "Disk: ext4 of $SIZE_GIB GiB filled with files from /usr ($(mb "$ALLOC") MB allocated in the qcow2, $NRANGES ranges), the guest's vda (a qcow2 copy)."
