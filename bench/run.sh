#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bench/run.sh: the livebackup benchmark. Run by hand; it prints figures
# (and writes them as Markdown to bench/results.md for the README). It is
# not a test: nothing here fails because a target is missed.
#
#   bench/run.sh [--size GIB] [--workdir DIR] [--bin-dir BUILD] [--repeat N]
#                [--quiet-wait S] [--profile] [--keep] [--prepare]
#
# In one run, on the same data:
#   1. an ext4 image of SIZE GiB (default 3): a sparse raw file made by
#      mkfs.ext4 -d from real files of /usr (hard links, so no copy) up to
#      ~65% of the size, converted to qcow2. The same at 4x SIZE. Both are
#      cached in the workdir (default /var/tmp/livebackup-bench).
#   2. baselines: zstd -1 -T0 over the image's allocated data (and over the
#      whole raw file, holes read as zeros), zstd -d of that back to a file
#      (the restore's baseline, measured just before the restores),
#      qemu-img convert (read limit),
#      nbdcopy through qemu-nbd (NBD read limit, if nbdcopy is installed).
#   3. livebackup: full backup, incremental after rewriting 1% of the 4 KiB
#      clusters with random data, the same on the 4x image with the same
#      number of changed clusters, restore of the latest backup to raw, and
#      incrementals with nothing changed (fixed cost).
#   4. incremental bytes stored vs zstd -1 of exactly the changed clusters.
#   5. peak RSS and CPU time of livebackup, backupd and qemu-nbd.
#
# Method notes (printed in the output too):
# - Page cache: before every measurement the script runs sync, then reads
#   the measured inputs once (cat > /dev/null), so every figure is "warm".
# - Shared machines: before every measurement the script waits (up to
#   --quiet-wait seconds) for the CPUs to be under 10% busy, and it measures
#   the CPU time the rest of the machine used during each run (/proc/stat
#   minus its own children). A run where that exceeded 15% of the machine
#   is marked * and, for repeated measurements, run again and left out of
#   the median. Everything but the 4x full backup runs --repeat times
#   (default 3; a new random overlay, and the previous incremental deleted,
#   for each incremental; a new repository for each full backup).
# - "Allocated data" is what qemu-img map reports as data for the qcow2
#   image, i.e. exactly the ranges livebackup reads; MB/s = 10^6 bytes/s of
#   it. data.bin is those ranges concatenated (cached).
# - Changes: K = 1% of the image's 4 KiB clusters (virtual size / 4096),
#   distinct cluster indices drawn uniformly (awk srand, fixed seed), each
#   written with a different 4 KiB block of /dev/urandom by
#   qemu-io "write -s BLOCKFILE OFF 4k" into a qcow2 overlay
#   (cluster_size=128k,extended_l2=on). The changed clusters are those
#   blocks, in disk order (OVERLAY.chg); the script checks that the overlay's
#   allocated data is exactly K * 4 KiB and, after the restore, that the
#   restored image equals the overlay (qemu-img compare).
# - Peak RSS / CPU: backupd is run through LIVEBACKUP_BACKUPD=a wrapper that
#   runs it under /usr/bin/time -v; qemu-nbd through a wrapper first on
#   PATH that runs it under /usr/bin/time -v (it resets LISTEN_PID so
#   socket activation still works, and forwards a SIGTERM).
#   livebackup runs under /usr/bin/time -v too, but the kernel folds
#   reaped children into that figure, so its own peak is sampled from
#   /proc/PID/status VmHWM every 20 ms (a high-water mark, so only a peak in
#   the last 20 ms could be missed); its own CPU is its time -v CPU minus
#   the children's.
BENCH_NAME=run
PROFILE=0
PREPARE=0
SEED=20240601
bench_opt() {
    case $1 in
    --profile) PROFILE=1; BENCH_USED=1 ;;
    --prepare) PREPARE=1; BENCH_USED=1 ;;
    esac
}
. "$(dirname "$0")/lib.sh"
bench_parse "$@"
bench_setup
HAVE_NBDCOPY=0
command -v nbdcopy >/dev/null && HAVE_NBDCOPY=1

fs_used_pct() { # of a raw ext4 image
    dumpe2fs -h "$1" 2>/dev/null | awk -F: '/^Block count/ { c = $2 } /^Free blocks/ { f = $2 } END { if (c) printf "%.0f", 100 * (c - f) / c; else print "?" }'
}

# make_changes BASE OVERLAY K SEED: overlay over BASE (qcow2) with K random
# 4 KiB clusters rewritten with random data; the changed clusters, in disk
# order, go to OVERLAY.chg
make_changes() {
    local base=$1 ovl=$2 k=$3 seed=$4
    local vsize n blocks=$T/blocks.$$
    vsize=$(qemu-img info --output=json "$base" | json_get virtual-size)
    n=$((vsize / 4096))
    rm -f "$ovl"
    qemu-img create -q -f qcow2 -o cluster_size=128k,extended_l2=on -b "$base" -F qcow2 "$ovl"
    rm -rf "$blocks"
    mkdir -p "$blocks"
    head -c $((k * 4096)) /dev/urandom >"$ovl.chg"
    split -b 4096 -a 7 -d "$ovl.chg" "$blocks/b."
    awk -v n="$n" -v k="$k" -v seed="$seed" 'BEGIN {
            srand(seed)
            while (c < k) { i = int(rand() * n); if (!(i in s)) { s[i] = 1; c++ } }
            for (i in s) printf "%.0f\n", i
        }' | sort -n | awk -v dir="$blocks" '{ printf "write -q -s %s/b.%07d %.0f 4k\n", dir, NR - 1, $1 * 4096 }' \
        >"$ovl.cmds"
    qemu-io -f qcow2 "$ovl" <"$ovl.cmds" >"$T/qemu-io.log" 2>&1 || { tail "$T/qemu-io.log" >&2; die "qemu-io failed"; }
    rm -rf "$blocks"
    # the overlay must hold exactly the K written clusters
    local got
    got=$(qemu-img map --output=json "$ovl" | awk '/"depth": 0/ && /"data": true/ {
            match($0, /"length": [0-9]+/); s += substr($0, RSTART + 10, RLENGTH - 10) } END { printf "%.0f", s }')
    ((got == k * 4096)) || die "overlay $ovl holds $got bytes, expected $((k * 4096)) (qemu-io: $T/qemu-io.log)"
}

# ============================================================================================
# Room for the images (if not cached), the repositories and a restore.
FREE_GIB=$(($(stat -f -c '%a * %S' "$WORKDIR") >> 30))
NEED_GIB=$((SIZE_GIB * 3 + 1))
[[ -f $IMG/ext4-${SIZE_GIB}g.done && -f $IMG/ext4-$((SIZE_GIB * 4))g.done ]] || NEED_GIB=$((NEED_GIB + SIZE_GIB * 8))
((FREE_GIB >= NEED_GIB)) || die "$WORKDIR has $FREE_GIB GiB free, the benchmark needs about $NEED_GIB GiB"
# Other load on the machine skews everything: measure it for a second.
((IDLE_BUSY < 10)) || log "warning: the machine is already ${IDLE_BUSY}% busy; measurements will wait for it to be quiet"
BIG_GIB=$((SIZE_GIB * 4))
SMALL=$IMG/ext4-${SIZE_GIB}g
BIG=$IMG/ext4-${BIG_GIB}g
make_image "$SIZE_GIB" "$SMALL" 1
make_image "$BIG_GIB" "$BIG" 0

# Allocated data of the small image (cached data.bin).
data_ranges "$SMALL.qcow2" >"$T/ranges"
ALLOC=$(sum_ranges "$T/ranges")
NRANGES=$(wc -l <"$T/ranges")
if [[ ! -f $SMALL.data.bin || $(stat -c %s "$SMALL.data.bin") != "$ALLOC" ]]; then
    log "extracting the allocated data ($NRANGES ranges) into $SMALL.data.bin"
    while read -r s l; do
        dd if="$SMALL.raw" bs=1M iflag=skip_bytes,count_bytes skip="$s" count="$l" status=none
    done <"$T/ranges" >"$SMALL.data.bin.tmp"
    mv "$SMALL.data.bin.tmp" "$SMALL.data.bin"
fi
[[ $(stat -c %s "$SMALL.data.bin") == "$ALLOC" ]] || die "data.bin has the wrong size"
data_ranges "$BIG.qcow2" >"$T/ranges.big"
ALLOC_BIG=$(sum_ranges "$T/ranges.big")
if ((PREPARE)); then
    log "prepared: $SMALL.qcow2, $BIG.qcow2 ($(mb "$ALLOC") and $(mb "$ALLOC_BIG") MB of data)"
    exit 0
fi
VSIZE=$((SIZE_GIB << 30))
VSIZE_BIG=$((BIG_GIB << 30))
USED_PCT=$(fs_used_pct "$SMALL.raw")
K=$((VSIZE / 4096 / 100))

log "small image: $SIZE_GIB GiB, ext4 ${USED_PCT}% used, $(mb "$ALLOC") MB allocated in $NRANGES ranges"
log "large image: $BIG_GIB GiB, $(mb "$ALLOC_BIG") MB allocated"
MEM_KB=$(awk '/^MemTotal/ { print $2 }' /proc/meminfo)
(((ALLOC_BIG >> 10) * 3 / 2 < MEM_KB)) ||
    log "warning: $((MEM_KB >> 20)) GiB of RAM may not keep the $BIG_GIB GiB image in the page cache"

# ---- baselines -----------------------------------------------------------------------
# baseline NAME FILE_TO_WARM CMD...: REPEAT runs, each after settle; sets
# BL_S (median seconds), BL_ALL (every run) and BL_OUT (the last stdout).
baseline() {
    local name=$1 warmf=$2 r=0 t0 t goodt=() all=()
    shift 2
    log "baseline: $name"
    while ((${#goodt[@]} < REPEAT && r < 2 * REPEAT)); do
        r=$((r + 1))
        settle "$warmf"
        other_begin
        t0=$(now)
        BL_OUT=$("$@") || die "baseline \"$name\" failed"
        t=$(calc "$(now) - $t0" 3)
        other_end "$t"
        if ((DISTURBED)); then
            all+=("$t*")
            log "  run $r disturbed by other processes ($OTHER_S CPU s); repeating"
        else
            all+=("$t") goodt+=("$t")
        fi
    done
    ((${#goodt[@]})) || goodt=("${all[@]%\*}")
    BL_S=$(printf '%s\n' "${goodt[@]}" | sort -n | sed -n "$((${#goodt[@]} / 2 + 1))p")
    BL_ALL=$(printf '%s, ' "${all[@]}")
    BL_ALL=${BL_ALL%, }
}
zstd_size() { zstd -1 -T0 -q -c "$1" | wc -c; }
baseline "zstd -1 -T0 over the allocated data" "$SMALL.data.bin" zstd_size "$SMALL.data.bin"
Z_DATA_S=$BL_S Z_DATA_ALL=$BL_ALL Z_DATA_BYTES=$BL_OUT
baseline "zstd -1 -T0 over the whole raw image" "$SMALL.raw" zstd_size "$SMALL.raw"
Z_RAW_S=$BL_S Z_RAW_ALL=$BL_ALL Z_RAW_BYTES=$BL_OUT
baseline "qemu-img convert qcow2 -> null-co" "$SMALL.qcow2" \
    qemu-img convert -n -f qcow2 "$SMALL.qcow2" --target-image-opts "driver=null-co,size=$VSIZE"
C_NULL_S=$BL_S C_NULL_ALL=$BL_ALL
convert_raw() {
    rm -f "$T/convert.raw"
    qemu-img convert -f qcow2 -O raw "$SMALL.qcow2" "$T/convert.raw"
}
baseline "qemu-img convert qcow2 -> raw file" "$SMALL.qcow2" convert_raw
C_RAW_S=$BL_S C_RAW_ALL=$BL_ALL
rm -f "$T/convert.raw"
if ((HAVE_NBDCOPY)); then
    baseline "nbdcopy from qemu-nbd to null:" "$SMALL.qcow2" \
        nbdcopy -- [ "$REAL_QEMU_NBD" -r -f qcow2 "$SMALL.qcow2" ] null:
    NBDCOPY_S=$BL_S NBDCOPY_ALL=$BL_ALL
fi

# ---- livebackup ----------------------------------------------------------------------
declare -A W WALL_ALL DIST CO CL CB CN RL RB RN READ STORED RECV WSET WPUSH CHUNKS ZCHG
disturbed() { [[ ${DIST[$1]:-0} == 1 ]]; }
record() { # record KEY
    W[$1]=$R_WALL DIST[$1]=$R_DISTURBED CO[$1]=$R_CPU_OTHER CL[$1]=$R_CPU_LB CB[$1]=$R_CPU_BD CN[$1]=$R_CPU_NBD
    RL[$1]=$R_RSS_LB RB[$1]=$R_RSS_BD RN[$1]=$R_RSS_NBD
}
# backup KEY REPO ARGS...: run backup-image --json, record; BACKUP_ID, and
# the bytes stored from list --json
backup() {
    local key=$1 repo=$2 sum
    shift 2
    lb_run "$key" backup-image --repo "$repo" --json "$@"
    record "$key"
    sum=$(grep '"event":"summary"' "$R_OUT" || true)
    BACKUP_ID=$(json_get id <<<"$sum")
    [[ -n $BACKUP_ID ]] || die "no summary from backup-image ($key); see $T/runs/$key"
    READ[$key]=$(json_get agent_bytes_read <<<"$sum")
    WSET[$key]=$(json_get windows_set <<<"$sum")
    WPUSH[$key]=$(json_get windows_pushed <<<"$sum")
    CHUNKS[$key]=$(json_get chunks_new <<<"$sum")
    STORED[$key]=$(backup_field "$repo" "$BACKUP_ID" bytes_new)
    RECV[$key]=$(backup_field "$repo" "$BACKUP_ID" bytes_received)
    [[ -n ${STORED[$key]} ]] || die "backup $BACKUP_ID not in list --json"
}
# pick_median KEY SUBKEY...: KEY gets the figures of the median (by time)
# of the SUBKEY runs, the max of their peak RSS, and WALL_ALL every time.
pick_median() {
    local key=$1 f med
    local -a ok=()
    shift
    for f in "$@"; do disturbed "$f" || ok+=("$f"); done
    ((${#ok[@]})) || ok=("$@")
    med=$(for f in "${ok[@]}"; do echo "${W[$f]} $f"; done | sort -n | sed -n "$((${#ok[@]} / 2 + 1))p" | cut -d' ' -f2)
    DIST[$key]=${DIST[$med]}
    W[$key]=${W[$med]} CO[$key]=${CO[$med]} CL[$key]=${CL[$med]} CB[$key]=${CB[$med]} CN[$key]=${CN[$med]}
    READ[$key]=${READ[$med]:-} STORED[$key]=${STORED[$med]:-} RECV[$key]=${RECV[$med]:-}
    WSET[$key]=${WSET[$med]:-} WPUSH[$key]=${WPUSH[$med]:-} CHUNKS[$key]=${CHUNKS[$med]:-}
    ZCHG[$key]=${ZCHG[$med]:-}
    RL[$key]=0 RB[$key]=0 RN[$key]=0 WALL_ALL[$key]=
    for f in "$@"; do
        ((RL[$f] > RL[$key])) && RL[$key]=${RL[$f]}
        ((RB[$f] > RB[$key])) && RB[$key]=${RB[$f]}
        ((RN[$f] > RN[$key])) && RN[$key]=${RN[$f]}
        WALL_ALL[$key]+="${WALL_ALL[$key]:+, }${W[$f]}$(disturbed "$f" && echo '*' || true)"
    done
    (($# > 1)) || WALL_ALL[$key]=
}
# incrementals KEY REPO NAME BASE OVERLAY NCHANGED SEED: REPEAT times: a
# fresh overlay with NCHANGED new random clusters, an incremental of it,
# then (but for the last) delete that backup so the next one has the same
# parent and the same amount of new data. KEY gets the median run's
# figures (peak RSS: the max), WALL_ALL[KEY] every run's time.
incrementals() {
    local key=$1 repo=$2 name=$3 base=$4 ovl=$5 k=$6 seed=$7 r=0 ngood=0 prev=''
    local -a keys=()
    local parent
    # Every run builds on the same parent, named: the agent's memory of
    # the last backup this host made of NAME is the one just deleted.
    parent=$(lb list --repo "$repo" --json | jq -r --arg n "$name" \
        'select(.event == "backup" and .name == $n) | "\(.seq) \(.id)"' |
        sort -n | tail -n 1 | cut -d' ' -f2)
    [[ -n $parent ]] || die "no backup of $name in $repo to build on"
    while ((ngood < REPEAT && r < 2 * REPEAT)); do
        r=$((r + 1))
        [[ -z $prev ]] || lb delete --repo "$repo" --backup "$prev" >/dev/null
        make_changes "$base" "$ovl" "$k" "$((seed + r))"
        settle "$base" "$ovl"
        backup "$key.$r" "$repo" --name "$name" --disk "vda=$ovl" --since "$base" \
            --parent "$parent"
        prev=$BACKUP_ID
        ZCHG[$key.$r]=$(zstd -1 -T0 -q -c "$ovl.chg" | wc -c)
        keys+=("$key.$r")
        if disturbed "$key.$r"; then
            log "  run $r disturbed by other processes (${CO[$key.$r]} CPU s); repeating"
        else
            ngood=$((ngood + 1))
        fi
    done
    pick_median "$key" "${keys[@]}"
}

REPO=$T/repo
REPO_BIG=$T/repo-big
bigs=()

log "livebackup: $REPEAT full backups, $SIZE_GIB GiB, each into a new repository"
fulls=()
ngood=0 r=0
while ((ngood < REPEAT && r < 2 * REPEAT)); do
    r=$((r + 1))
    rm -rf "$REPO"
    lb init --encryption none --repo "$REPO" >/dev/null
    settle "$SMALL.qcow2"
    backup "full.$r" "$REPO" --name small --disk "vda=$SMALL.qcow2"
    fulls+=("full.$r")
    if disturbed "full.$r"; then
        log "  run $r disturbed by other processes (${CO[full.$r]} CPU s); repeating"
    else
        ngood=$((ngood + 1))
    fi
done
pick_median full "${fulls[@]}"

log "livebackup: $REPEAT incrementals, $SIZE_GIB GiB, $K random 4 KiB clusters written each time"
incrementals incr "$REPO" small "$SMALL.qcow2" "$T/small-ovl.qcow2" "$K" "$SEED"

log "livebackup: full backup, $BIG_GIB GiB (once, again if disturbed: the parent of the incrementals)"
for r in 1 2; do
    rm -rf "$REPO_BIG"
    lb init --encryption none --repo "$REPO_BIG" >/dev/null
    settle "$BIG.qcow2"
    backup "full_big.$r" "$REPO_BIG" --name big --disk "vda=$BIG.qcow2"
    bigs+=("full_big.$r")
    disturbed "full_big.$r" || break
    ((r == 2)) || log "  run $r disturbed by other processes (${CO[full_big.$r]} CPU s); repeating"
done
pick_median full_big "${bigs[@]}"

log "livebackup: $REPEAT incrementals, $BIG_GIB GiB, the same $K random 4 KiB clusters each time"
incrementals incr_big "$REPO_BIG" big "$BIG.qcow2" "$T/big-ovl.qcow2" "$K" "$((SEED + 1000))"

# The restore's baseline: decompress the same data, zstd -1 compressed, to
# a file on the repository's filesystem and make it durable (a restore
# fsyncs its image before renaming it into place). Measured here, just
# before the restores, so that both meet the page cache in the same state
# (by now it holds the 12 GiB image and its repository).
zstd -1 -T0 -q -f "$SMALL.data.bin" -o "$T/data.zst"
zstd_dec() {
    rm -f "$T/zstd-d.raw"
    zstd -d -T0 -q "$T/data.zst" -o "$T/zstd-d.raw" && sync "$T/zstd-d.raw"
}
baseline "zstd -d of the same data to a file, then sync" "$T/data.zst" zstd_dec
ZD_S=$BL_S ZD_ALL=$BL_ALL
rm -f "$T/zstd-d.raw" "$T/data.zst"

log "livebackup: $REPEAT restores of the latest backup ($SIZE_GIB GiB) to raw"
rests=()
ngood=0 r=0
while ((ngood < REPEAT && r < 2 * REPEAT)); do
    r=$((r + 1))
    rm -f "$T/restore.raw"
    settle
    find "$REPO" -type f -exec cat {} + >/dev/null # the repository, warm
    lb_run "restore.$r" restore-image --repo "$REPO" --name small --backup latest --disk vda \
        --to "$T/restore.raw" --format raw --json
    record "restore.$r"
    rests+=("restore.$r")
    if disturbed "restore.$r"; then
        log "  run $r disturbed by other processes (${CO[restore.$r]} CPU s); repeating"
    else
        ngood=$((ngood + 1))
    fi
done
pick_median restore "${rests[@]}"
RESTORE_DATA=$(data_ranges "$T/small-ovl.qcow2" | sum_ranges /dev/stdin)
log "checking the restored image against the overlay"
qemu-img compare -q -f raw -F qcow2 "$T/restore.raw" "$T/small-ovl.qcow2" ||
    die "the restored image differs from the overlay it was backed up from"
rm -f "$T/restore.raw"

log "livebackup: $REPEAT incrementals with nothing changed (fixed cost), both sizes"
incrementals empty "$REPO" small "$SMALL.qcow2" "$T/small-empty.qcow2" 0 0
incrementals empty_big "$REPO_BIG" big "$BIG.qcow2" "$T/big-empty.qcow2" 0 0

if ((PROFILE)); then
    if perf record -q -o "$T/perf.test" -e cpu-clock true >/dev/null 2>&1; then
        log "profiling a full backup with perf record -e cpu-clock (livebackup and its children; not in the figures)"
        lb init --encryption none --repo "$T/repo-prof" >/dev/null
        settle "$SMALL.qcow2"
        perf record -q -e cpu-clock -F 999 -o "$T/perf.data" -- \
            env PATH="$T/wrap:$PATH" LIVEBACKUP_BACKUPD="$BACKUPD" \
            "$LB" backup-image --repo "$T/repo-prof" --name p --disk "vda=$SMALL.qcow2" >/dev/null 2>"$T/perf.log" ||
            die "perf record failed: $(tail -n3 "$T/perf.log")"
        prep() { perf report -i "$T/perf.data" --no-children --stdio "$@" 2>/dev/null | awk -v m="${PREP_MAX:-30}" '!/^#/ && NF { if (++n <= m) print }'; }
        {
            echo "CPU samples by process:"
            PREP_MAX=6 prep --sort comm
            echo
            echo "by process and object:"
            PREP_MAX=20 prep --sort comm,dso
            echo
            echo "top symbols:"
            PREP_MAX=30 prep --sort comm,dso,sym
        } >"$T/profile.txt"
        rm -rf "$T/repo-prof"
    else
        log "perf does not work here; skipping --profile"
    fi
fi
TOTAL_S=$(calc "$(now) - $BENCH_START" 0)

# ---- report ----------------------------------------------------------------------------
mbps() { calc "$1 / $2 / 1e6" 0; } # bytes seconds
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MEM_GIB=$(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
QEMU_VER=$(qemu-img --version | awk 'NR == 1 { print $3 }')
ZSTD_VER=$(zstd -V | grep -o 'v[0-9.]*' | sed -n 1p)


# table rows: fields separated by |, first row is the header

both() { if ((REPEAT > 1)); then echo "$1 ($2)"; else echo "$1"; fi; }
BASE_ROWS=(
    "measurement|seconds|MB/s|output bytes"
    "zstd -1 -T0 of the allocated data (qemu-img map data ranges, concatenated)|$(both "$Z_DATA_S" "$Z_DATA_ALL")|$(mbps "$ALLOC" "$Z_DATA_S")|$Z_DATA_BYTES"
    "zstd -1 -T0 of the whole raw image (holes read as zeros; MB/s of allocated data)|$(both "$Z_RAW_S" "$Z_RAW_ALL")|$(mbps "$ALLOC" "$Z_RAW_S")|$Z_RAW_BYTES"
    "zstd -d -T0 of that zstd -1 output to a file, then sync (restore's baseline)|$(both "$ZD_S" "$ZD_ALL")|$(mbps "$ALLOC" "$ZD_S")|$ALLOC"
    "qemu-img convert qcow2 -> null-co (read limit)|$(both "$C_NULL_S" "$C_NULL_ALL")|$(mbps "$ALLOC" "$C_NULL_S")|-"
    "qemu-img convert qcow2 -> raw file|$(both "$C_RAW_S" "$C_RAW_ALL")|$(mbps "$ALLOC" "$C_RAW_S")|-"
)
((HAVE_NBDCOPY)) && BASE_ROWS+=("nbdcopy [ qemu-nbd -r ] -> null: (NBD read limit)|$(both "$NBDCOPY_S" "$NBDCOPY_ALL")|$(mbps "$ALLOC" "$NBDCOPY_S")|-")
BL_NOTE=""
((REPEAT > 1)) && BL_NOTE="; median of $REPEAT runs, all in brackets"
table "## Baselines (page cache warm; MB/s of the image's allocated data, $(mb "$ALLOC") MB$BL_NOTE)" "${BASE_ROWS[@]}"

secs() { # seconds of KEY, with every run's time when repeated
    if [[ -n ${WALL_ALL[$1]:-} ]]; then echo "${W[$1]} (${WALL_ALL[$1]})"; else echo "${W[$1]}"; fi
}
row() { # row KEY LABEL DATA_BYTES
    local k=$1
    printf '%s|%s|%s|%s|%s|%s|%s|%s\n' "$2" "$(secs "$k")" \
        "$(awk -v b="$3" -v s="${W[$k]}" 'BEGIN { if (b == "-") print "-"; else printf "%.0f", b / s / 1e6 }')" \
        "${READ[$k]:--}" "${WSET[$k]:--} / ${WPUSH[$k]:--} / ${CHUNKS[$k]:--}" \
        "${STORED[$k]:--}" "${RECV[$k]:--}" \
        "$(awk -v b="${STORED[$k]:--}" -v s="${W[$k]}" 'BEGIN { if (b == "-") print "-"; else printf "%.0f", b / s / 1e6 }')"
}
res_row() { # res_row KEY LABEL
    local k=$1
    printf '%s|%s|%s|%s|%s|%s|%s|%s|%s|%s\n' "$2" "${W[$k]}" "${CL[$k]}" "${CB[$k]}" "${CN[$k]}" \
        "$(calc "(${CL[$k]} + ${CB[$k]} + ${CN[$k]}) / ${W[$k]}")" \
        "${CO[$k]}$(disturbed "$k" && echo ' *' || true)" \
        "$(mib "${RL[$k]}")" "$(mib "${RB[$k]}")" "$(mib "${RN[$k]}")"
}
L_FULL="full, $SIZE_GIB GiB image"
L_INCR="incremental, $SIZE_GIB GiB, $K x 4 KiB changed (1%)"
L_FULL_BIG="full, $BIG_GIB GiB image"
L_INCR_BIG="incremental, $BIG_GIB GiB, same $K x 4 KiB ($(calc "100 * $K * 4096 / $VSIZE_BIG")%)"
L_RESTORE="restore latest ($SIZE_GIB GiB, incremental) to raw"
L_EMPTY="incremental, $SIZE_GIB GiB, nothing changed"
L_EMPTY_BIG="incremental, $BIG_GIB GiB, nothing changed"
RUNS_NOTE=""
((REPEAT > 1)) && RUNS_NOTE="; median of $REPEAT runs, all in brackets, but for the $BIG_GIB GiB full backup (one run, two if the first was disturbed)"
table "## livebackup: time and bytes (local repository; MB/s of the data read$RUNS_NOTE)" \
    "run|seconds|MB/s|bytes read|windows set / pushed / chunks new|bytes stored|bytes received|MB/s stored" \
    "$(row full "$L_FULL" "$ALLOC")" \
    "$(row incr "$L_INCR" "$((K * 4096))")" \
    "$(row full_big "$L_FULL_BIG" "$ALLOC_BIG")" \
    "$(row incr_big "$L_INCR_BIG" "$((K * 4096))")" \
    "$(row restore "$L_RESTORE" "$RESTORE_DATA")" \
    "$(row empty "$L_EMPTY" -)" \
    "$(row empty_big "$L_EMPTY_BIG" -)"
table "## livebackup: CPU and memory per process" \
    "run|seconds|CPU s livebackup|CPU s backupd|CPU s qemu-nbd|CPUs busy (these 3)|CPU s other processes|peak RSS MiB livebackup|peak RSS MiB backupd|peak RSS MiB qemu-nbd" \
    "$(res_row full "$L_FULL")" \
    "$(res_row incr "$L_INCR")" \
    "$(res_row full_big "$L_FULL_BIG")" \
    "$(res_row incr_big "$L_INCR_BIG")" \
    "$(res_row restore "$L_RESTORE")" \
    "$(res_row empty "$L_EMPTY")" \
    "$(res_row empty_big "$L_EMPTY_BIG")"

R_FULL=$(calc "$Z_DATA_S / ${W[full]}")
R_FULL_BIG=$(calc "($ALLOC_BIG / ${W[full_big]}) / ($ALLOC / $Z_DATA_S)")
R_INCR=$(calc "${W[incr_big]} / ${W[incr]}")
R_BYTES=$(calc "${STORED[incr]} / ${ZCHG[incr]}" 3)
R_RESTORE=$(calc "($RESTORE_DATA / ${W[restore]}) / ($ALLOC / $ZD_S)")
R_BYTES_BIG=$(calc "${STORED[incr_big]} / ${ZCHG[incr_big]}" 3)
PK_LB=0 PK_BD=0 PK_NBD=0
for k in full incr full_big incr_big restore empty empty_big; do
    ((RL[$k] > PK_LB)) && PK_LB=${RL[$k]}
    ((RB[$k] > PK_BD)) && PK_BD=${RB[$k]}
    ((RN[$k] > PK_NBD)) && PK_NBD=${RN[$k]}
done
table "## Targets" \
    "figure|value|target|result" \
    "full backup MB/s / zstd -1 -T0 MB/s, $SIZE_GIB GiB ($(mbps "$ALLOC" "${W[full]}") / $(mbps "$ALLOC" "$Z_DATA_S"))|$R_FULL|>= 0.8|$(verdict "$R_FULL" '>=' 0.8)" \
    "same, $BIG_GIB GiB full backup ($(mbps "$ALLOC_BIG" "${W[full_big]}") / $(mbps "$ALLOC" "$Z_DATA_S"))|$R_FULL_BIG|>= 0.8|$(verdict "$R_FULL_BIG" '>=' 0.8)" \
    "incremental time, $BIG_GIB GiB / $SIZE_GIB GiB, same changed data (${W[incr_big]} s / ${W[incr]} s)|$R_INCR|< 1.5|$(verdict "$R_INCR" '<' 1.5)" \
    "incremental bytes stored / zstd -1 of the changed clusters, $SIZE_GIB GiB (${STORED[incr]} / ${ZCHG[incr]})|$R_BYTES|<= 1.1|$(verdict "$R_BYTES" '<=' 1.1)" \
    "same, $BIG_GIB GiB (${STORED[incr_big]} / ${ZCHG[incr_big]})|$R_BYTES_BIG|<= 1.1|$(verdict "$R_BYTES_BIG" '<=' 1.1)" \
    "peak RSS livebackup, MiB (max over all runs)|$(mib "$PK_LB")|< 256|$(verdict "$PK_LB" '<' $((256 * 1024)))" \
    "peak RSS backupd, MiB (max over all runs)|$(mib "$PK_BD")|< 256|$(verdict "$PK_BD" '<' $((256 * 1024)))" \
    "peak RSS qemu-nbd, MiB (max over all runs)|$(mib "$PK_NBD")|< 256|$(verdict "$PK_NBD" '<' $((256 * 1024)))" \
    "(info) full backup bytes stored / zstd -1 -T0 of the allocated data (${STORED[full]} / $Z_DATA_BYTES)|$(calc "${STORED[full]} / $Z_DATA_BYTES" 3)|-|-" \
    "restore MB/s / zstd -d MB/s, $SIZE_GIB GiB ($(mbps "$RESTORE_DATA" "${W[restore]}") / $(mbps "$ALLOC" "$ZD_S"))|$R_RESTORE|>= 0.8|$(verdict "$R_RESTORE" '>=' 0.8)" \
    "(info) restore MB/s / qemu-img convert to raw MB/s ($(mbps "$RESTORE_DATA" "${W[restore]}") / $(mbps "$ALLOC" "$C_RAW_S"))|$(calc "($RESTORE_DATA / ${W[restore]}) / ($ALLOC / $C_RAW_S)")|-|-"

HEAD="livebackup benchmark ($REV, $CLEAN${LABEL:+, $LABEL}), $(date -u +%Y-%m-%d): $CPUS x $CPU_MODEL, $MEM_GIB GiB RAM, kernel $(uname -r), QEMU $QEMU_VER, zstd $ZSTD_VER; CPU busy before the run ${IDLE_BUSY}%; whole run ${TOTAL_S} s"
IMGLINE="Images: ext4 (mkfs.ext4 -d, files from /usr), $SIZE_GIB GiB with ${USED_PCT}% used, $(mb "$ALLOC") MB allocated in the qcow2 ($NRANGES ranges); $BIG_GIB GiB with $(mb "$ALLOC_BIG") MB allocated. Changes: $K distinct random 4 KiB clusters (1% of $SIZE_GIB GiB) of /dev/urandom data written with qemu-io into a qcow2 overlay (cluster_size=128k, extended_l2=on); the same number on the $BIG_GIB GiB image."
NOTES=(
    "Before every measurement: sync, then the inputs are read once (page cache warm)."
    "MB/s = 10^6 bytes per second of allocated data (what livebackup reads); backup times are wall clock of the livebackup command, including starting backupd and qemu-nbd and the repository's commit."
    "bytes stored and bytes received are bytes_new and bytes_received from list --json."
    "CPU s other processes: CPU time the rest of the machine used during the run (from /proc/stat; includes the kernel's writeback of the repository); * marks runs where it exceeded 15% of the machine (disturbed). Every measurement first waits (up to ${QUIET_MAX} s) for the machine to be under 10% busy; a disturbed run of a repeated measurement is run again (at most 2x the runs) and left out of the median (of an even number of runs: the slower middle one)."
    "CPU and peak RSS: backupd and qemu-nbd under /usr/bin/time -v (through wrappers); livebackup's peak RSS is its VmHWM sampled every 20 ms, its CPU its time -v CPU minus its children's."
)

{
    echo "$HEAD"
    echo
    echo "$IMGLINE"
    render_text
    echo
    printf '%s\n' "${NOTES[@]}"
    if ((PROFILE)) && [[ -f $T/profile.txt ]]; then
        echo
        echo "## perf profile of a full backup ($SIZE_GIB GiB; cpu-clock samples of livebackup, backupd, qemu-nbd)"
        cat "$T/profile.txt"
    fi
} | tee "$T/results.txt"

{
    echo "<!-- generated by bench/run.sh; do not edit -->"
    echo "$HEAD"
    echo
    echo "$IMGLINE"
    render_md
    echo
    printf -- '- %s\n' "${NOTES[@]}"
} >"$BENCH_DIR/results.md"
log "wrote $BENCH_DIR/results.md (run took ${TOTAL_S} s)"
