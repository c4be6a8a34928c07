#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bench/peer.sh: livebackup against its peer, virtnbdbackup (Debian 12's,
# bench/packages.txt), on the same test VM, disk and changes, in the same
# run. Run by hand (it takes the machine-wide VM lock); prints the figures
# and writes bench/results-peer.md. Not a test.
#
#   bench/peer.sh [common options, see --help]
#
# The data disk is bench/live.sh's (ext4 of SIZE GiB, files from /usr).
# Each tool gets its own copy of the VM (a qcow2 copy of the disk, the
# same guest and workload), one after the other, so that livebackup's
# tracking overlays and virtnbdbackup's checkpoints (qcow2 bitmaps, QEMU's
# backup job) never meet. Per repetition, on each:
#   livebackup      full (new repository), the guest rewrites 1% of the
#                   disk's 4 KiB clusters in its files (bench/scatter.c,
#                   seed = repetition), incremental, restore of that
#                   incremental to qcow2 and to raw; another such rewrite
#                   and an incremental with --background-commit
#   virtnbdbackup   full --compress (lz4) into its own directory, full
#                   uncompressed into another (a new checkpoint chain),
#                   the same rewrite, incremental into the uncompressed
#                   chain, virtnbdrestore of that chain (to qcow2)
# Wall time, peak RSS (the largest process; /usr/bin/time -v) and bytes
# written; virtnbdbackup copies the domain's kernel and initrd into every
# backup directory: its disk data (*.data) is reported apart.
BENCH_NAME=peer
. "$(dirname "$0")/lib.sh"
bench_parse "$@"
bench_setup
build_scatter

PRE=$IMG/ext4-${SIZE_GIB}g
make_image "$SIZE_GIB" "$PRE" 1
image_data "$PRE"
K=$(((SIZE_GIB << 30) / 4096 / 100))
log "disk: $SIZE_GIB GiB, $(mb "$ALLOC") MB allocated; $K x 4 KiB rewritten before each incremental"
log "baseline: zstd -1 -T0 over the allocated data ($REPEAT runs)"
zstd_baseline "$PRE.data.bin"
bench_vm_up

start_guest() { # start_guest NAME: a fresh copy of the disk, booted
    cp "$PRE.qcow2" "$T/vm/$1.qcow2"
    DOM=$(bench_vm_start "$1" --disk "vda=$T/vm/$1.qcow2:qcow2" --mem 256)
    vm_wait_workload "$DOM" 2 >/dev/null || die "the workload of $DOM did not start"
    guest_put "$DOM" "$SCATTER" /run/scatter
    GUEST_BUSY=$(cpu_busy_pct 3)
    QUIET_PCT=$((GUEST_BUSY + 10))
    OTHER_FLOOR=$(calc "$GUEST_BUSY * $CPUS / 100")
    log "guest $DOM runs ($GUEST_BUSY% busy)"
}

# ---- livebackup -------------------------------------------------------------
start_guest lb
for ((r = 1; r <= REPEAT; r++)); do
    REPO=$T/repo.$r
    lb init --repo "$REPO" >/dev/null
    ((r == 1)) || lb untrack "$DOM" >/dev/null
    settle "$T/vm/lb.qcow2"
    lb_run "lb_full.$r" backup --json "$DOM" --repo "$REPO"
    rec "lb_full.$r"
    LB_FULL_STORED[r]=$(du -sb "$REPO" | cut -f1)
    scatter "$DOM" "$K" "$r" 50
    settle
    lb_run "lb_incr.$r" backup --json "$DOM" --repo "$REPO"
    rec "lb_incr.$r"
    [[ $(sum_of "lb_incr.$r" kind) == incremental ]] || die "not an incremental: ${SUM[lb_incr.$r]}"
    LB_INCR_STORED[r]=$(($(du -sb "$REPO" | cut -f1) - LB_FULL_STORED[r]))
    for fmt in qcow2 raw; do
        rm -f "$T/restore.$fmt"
        settle
        find "$REPO" -type f -exec cat {} + >/dev/null
        lb_run "lb_restore_$fmt.$r" restore-image --repo "$REPO" --name "$DOM" --backup latest \
            --disk vda --to "$T/restore.$fmt" --format "$fmt" --json
        rec "lb_restore_$fmt.$r"
    done
    e2fsck -fn "$T/restore.raw" >"$T/e2fsck.log" 2>&1 || die "livebackup's restore fails e2fsck"
    rm -f "$T/restore.raw" "$T/restore.qcow2"
    # the same change again, backed up with --background-commit
    scatter "$DOM" "$K" "$((100 + r))" 50
    settle
    lb_run "lb_bg.$r" backup --json "$DOM" --repo "$REPO" --background-commit
    rec "lb_bg.$r"
    lb recover "$DOM" >/dev/null 2>&1 || die "recover after a background commit failed"
done
vm_destroy "$DOM"

# ---- virtnbdbackup ----------------------------------------------------------
# vnb LABEL ARGS...: virtnbdbackup, measured with cmd_run into rec's arrays
vnb() {
    local label=$1
    shift
    cmd_run "$label" "$@"
    W["$label"]=$M_WALL DIST["$label"]=$DISTURBED RSS_LB["$label"]=$M_RSS CPU_LB["$label"]=$M_CPU
    log "  $label: $M_WALL s"
}
# data_bytes DIR [GLOB]: bytes of the disk data files; other_bytes DIR:
# the kernel and initrd copies
data_bytes() { find "$1" -maxdepth 1 -name "${2:-*}.data" -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f", s }'; }
kernel_bytes() { # kernel_bytes DIR N: the copies made by backup N of the chain
    find "$1" -maxdepth 1 \( -name "$(basename "$LB_TESTVM_KERNEL").virtnbdbackup.$2" \
        -o -name "$(basename "$LB_TESTVM_INITRD").virtnbdbackup.$2" \) -printf '%s\n' |
        awk '{ s += $1 } END { printf "%.0f", s }'
}
start_guest vnb
for ((r = 1; r <= REPEAT; r++)); do
    Z=$T/vnb-lz4.$r U=$T/vnb.$r
    settle "$T/vm/vnb.qcow2"
    vnb "vnb_full_lz4.$r" virtnbdbackup -n -d "$DOM" -l full --compress -o "$Z" -S "$T"
    settle "$T/vm/vnb.qcow2"
    vnb "vnb_full.$r" virtnbdbackup -n -d "$DOM" -l full -o "$U" -S "$T"
    VNB_FULL_DATA[r]=$(data_bytes "$U") VNB_FULL_ALL[r]=$(du -sb "$U" | cut -f1)
    VNB_LZ4_DATA[r]=$(data_bytes "$Z") VNB_LZ4_ALL[r]=$(du -sb "$Z" | cut -f1)
    VNB_KERNEL[r]=$(kernel_bytes "$U" 0)
    scatter "$DOM" "$K" "$r" 50
    settle
    vnb "vnb_incr.$r" virtnbdbackup -n -d "$DOM" -l inc -o "$U" -S "$T"
    VNB_INCR_DATA[r]=$(data_bytes "$U" '*.inc.*')
    VNB_INCR_KERNEL[r]=$(kernel_bytes "$U" 1)
    VNB_INCR_ALL[r]=$(($(du -sb "$U" | cut -f1) - VNB_FULL_ALL[r]))
    rm -rf "$T/vnb-restore"
    settle
    warm "$U"/*.data
    vnb "vnb_restore.$r" virtnbdrestore -n -i "$U" -o "$T/vnb-restore"
    rm -rf "$T/vnb-restore" "$Z"
    ((r == REPEAT)) || rm -rf "$U"
done
vm_destroy "$DOM"

# ---- report ---------------------------------------------------------------------
labels() { local r; for ((r = 1; r <= REPEAT; r++)); do echo "$1.$r"; done; }
Z_MBS=$(calc "$ALLOC / $Z_S / 1e6" 0)
declare -A MED
for p in lb_full lb_incr lb_bg lb_restore_qcow2 lb_restore_raw vnb_full vnb_full_lz4 vnb_incr vnb_restore; do
    mapfile -t ls < <(labels "$p")
    MED[$p]=${W[$(pick "${ls[@]}")]}
done
row() { # row NAME PREFIX BYTES_WRITTEN [DATA_BYTES KERNEL_BYTES]
    local -a ls
    mapfile -t ls < <(labels "$2")
    local rss rate=-
    rss=$(printf '%s\n' "$(peak RSS_LB "${ls[@]}")" "$(peak RSS_BD "${ls[@]}")" "$(peak RSS_NBD "${ls[@]}")" | sort -n | tail -n1)
    [[ $2 != *full* ]] || rate=$(calc "$ALLOC / ${MED[$2]} / 1e6" 0)
    echo "$1|${MED[$2]} ($(walls "${ls[@]}"))|$rate|$3|${4:--}|${5:--}|$(mib "$rss")"
}
LR=$REPEAT
table "## Same VM, same disk, same changes (median of $REPEAT runs, every run in brackets; bytes of the last run)" \
    "run|seconds|MB/s of the disk's data|bytes written|disk data bytes|kernel + initrd bytes|peak RSS MiB (largest process)" \
    "zstd -1 -T0 of the allocated data ($(mb "$ALLOC") MB)|$Z_S ($Z_ALL)|$Z_MBS|$Z_BYTES|-|-|-" \
    "$(row "livebackup full (zstd, local repository)" lb_full "${LB_FULL_STORED[LR]}")" \
    "$(row "virtnbdbackup full, uncompressed" vnb_full "${VNB_FULL_ALL[LR]}" "${VNB_FULL_DATA[LR]}" "${VNB_KERNEL[LR]}")" \
    "$(row "virtnbdbackup full --compress (lz4)" vnb_full_lz4 "${VNB_LZ4_ALL[LR]}" "${VNB_LZ4_DATA[LR]}" "${VNB_KERNEL[LR]}")" \
    "$(row "livebackup incremental, $K x 4 KiB rewritten" lb_incr "${LB_INCR_STORED[LR]}")" \
    "$(row "livebackup incremental, the same again, --background-commit" lb_bg -)" \
    "$(row "virtnbdbackup incremental, same rewrite" vnb_incr "${VNB_INCR_ALL[LR]}" "${VNB_INCR_DATA[LR]}" "${VNB_INCR_KERNEL[LR]}")" \
    "$(row "livebackup restore of the incremental to qcow2" lb_restore_qcow2 -)" \
    "$(row "livebackup restore of the incremental to raw" lb_restore_raw -)" \
    "$(row "virtnbdrestore of full + incremental (qcow2)" vnb_restore -)"

mapfile -t ALLLB < <(labels lb_full; labels lb_incr; labels lb_bg; labels lb_restore_qcow2; labels lb_restore_raw)
PK=$(printf '%s\n' "$(peak RSS_LB "${ALLLB[@]}")" "$(peak RSS_BD "${ALLLB[@]}")" "$(peak RSS_NBD "${ALLLB[@]}")" | sort -n | tail -n1)
FASTEST=$(printf '%s\n' "${MED[vnb_full]}" "${MED[vnb_full_lz4]}" | sort -g | sed -n 1p)
R_FULL=$(calc "$FASTEST / ${MED[lb_full]}")
R_INCR=$(calc "${MED[vnb_incr]} / ${MED[lb_incr]}")
table "## Targets" \
    "figure|value|target|result" \
    "livebackup full speed / virtnbdbackup's fastest full (${MED[lb_full]} s / $FASTEST s)|$R_FULL|>= 1.7|$(verdict "$R_FULL" '>=' 1.7)" \
    "livebackup incremental speed / virtnbdbackup's (${MED[lb_incr]} s / ${MED[vnb_incr]} s)|$R_INCR|>= 3|$(verdict "$R_INCR" '>=' 3)" \
    "the same with --background-commit (${MED[lb_bg]} s / ${MED[vnb_incr]} s)|$(calc "${MED[vnb_incr]} / ${MED[lb_bg]}")|>= 3|$(verdict "$(calc "${MED[vnb_incr]} / ${MED[lb_bg]}")" '>=' 3)" \
    "(info) livebackup restore to qcow2 speed / virtnbdrestore's (${MED[lb_restore_qcow2]} s / ${MED[vnb_restore]} s)|$(calc "${MED[vnb_restore]} / ${MED[lb_restore_qcow2]}")|-|-" \
    "peak RSS of livebackup's processes (livebackup, backupd, qemu-nbd), MiB|$(mib "$PK")|< 256|$(verdict "$PK" '<' $((256 * 1024)))"

note "Guest: tests/vm (TCG, 256 MiB, 1 vCPU) running its workload (one file every 0.5 s); each tool on its own copy of the VM, one after the other, on a fresh qcow2 copy of the same disk."
note "livebackup: \`livebackup backup --json DOMAIN\` into a local repository (trusted \`backupd serve\` child), quiesced; bytes written = growth of the repository directory (du -sb); restores with \`restore-image --format qcow2|raw\`."
note "virtnbdbackup $(virtnbdbackup -V 2>&1 | tail -n1): \`virtnbdbackup -n -d DOMAIN -l full|inc [--compress] -o DIR -S SCRATCH\` (libvirt backup job in pull mode, QEMU's NBD export, checkpoints as qcow2 bitmaps; it freezes the guest through its agent too); \`virtnbdrestore -n -i DIR -o OUT\` (qcow2). bytes written = du -sb of its directory (for the incremental: its growth); disk data = its *.data files; it also copies the domain's kernel and initrd into every backup directory."
note "MB/s (full backups) = 10^6 bytes of the disk's allocated data ($(mb "$ALLOC") MB) per second."
note "--background-commit: livebackup returns once the repository acknowledged the backup and QEMU's block commit is started (README); virtnbdbackup has no commit (QEMU's dirty bitmaps track the changes)."
note "Peak RSS: livebackup's rows, the largest of livebackup (VmHWM), backupd and qemu-nbd; virtnbdbackup's, the largest process of its tree (time -v)."
bench_report "livebackup vs virtnbdbackup" \
    "Disk: ext4 of $SIZE_GIB GiB filled with files from /usr ($(mb "$ALLOC") MB allocated), the guest's vda (qcow2); changes: $K distinct 4 KiB blocks rewritten inside files (bench/scatter.c, half random, half edited)."
