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
#   socket activation still works, and forwards libnbd's SIGTERM).
#   livebackup runs under /usr/bin/time -v too, but the kernel folds
#   reaped children into that figure, so its own peak is sampled from
#   /proc/PID/status VmHWM every 20 ms (a high-water mark, so only a peak in
#   the last 20 ms could be missed); its own CPU is its time -v CPU minus
#   the children's.
set -euo pipefail

SIZE_GIB=3
WORKDIR=/var/tmp/livebackup-bench
BIN_DIR=
PROFILE=0
PREPARE=0
QUIET_MAX=300
KEEP=0
REPEAT=3
SEED=20240601
FILL_PCT=65

usage() {
    sed -n '/^#   bench\/run.sh/,/--keep\]/p' "$0" | sed 's/^# //'
    cat <<EOF
  --size GIB      image size in GiB (default $SIZE_GIB); the large image is 4x
  --workdir DIR   cache and scratch directory (default $WORKDIR)
  --bin-dir DIR   use the build tree DIR (DIR/agent/livebackup,
                  DIR/backupd/backupd) instead of building in WORKDIR/build
  --repeat N      run each measurement (but the 4x full backup) N times and
                  report the median (default $REPEAT)
  --quiet-wait S  before each measurement, wait up to S seconds (default
                  $QUIET_MAX) for other processes to leave the CPUs under 10% busy
  --profile       also profile a full backup with perf record (livebackup,
                  backupd, qemu-nbd) and print where the CPU time goes
  --keep          keep the repositories, overlays and restored image
  --prepare       only build, make the images and data.bin (cached), then stop
EOF
}

while (($#)); do
    case $1 in
    --size) SIZE_GIB=${2:?--size needs a value}; shift 2 ;;
    --size=*) SIZE_GIB=${1#*=}; shift ;;
    --workdir) WORKDIR=${2:?--workdir needs a value}; shift 2 ;;
    --workdir=*) WORKDIR=${1#*=}; shift ;;
    --bin-dir) BIN_DIR=${2:?--bin-dir needs a value}; shift 2 ;;
    --bin-dir=*) BIN_DIR=${1#*=}; shift ;;
    --repeat) REPEAT=${2:?--repeat needs a value}; shift 2 ;;
    --repeat=*) REPEAT=${1#*=}; shift ;;
    --profile) PROFILE=1; shift ;;
    --keep) KEEP=1; shift ;;
    --prepare) PREPARE=1; shift ;;
    --quiet-wait) QUIET_MAX=${2:?--quiet-wait needs a value}; shift 2 ;;
    --quiet-wait=*) QUIET_MAX=${1#*=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done
[[ $SIZE_GIB =~ ^[1-9][0-9]*$ ]] || { echo "bench: --size wants a whole number of GiB" >&2; exit 2; }
[[ $QUIET_MAX =~ ^[0-9]+$ ]] || { echo "bench: --quiet-wait wants seconds" >&2; exit 2; }
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || { echo "bench: --repeat wants a positive number" >&2; exit 2; }

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=$SRC/bench
export PATH=$PATH:/usr/sbin:/sbin
export LC_ALL=C

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
    printf 'bench: error: %s\n' "$*" >&2
    exit 1
}

# ---- processes we start: killed (by pid) on exit --------------------------------
BG=()
declare -A BGLABEL
SLEEPFD=
cleanup() {
    local rc=$? p f
    for p in "${BG[@]}"; do
        if kill -0 "$p" 2>/dev/null; then
            # the livebackup under that time(1) first, then time(1)
            f=$T/runs/${BGLABEL[$p]:-}/livebackup.pid
            if [[ -s $f ]] && read -r f <"$f" && kill -0 "$f" 2>/dev/null; then
                kill -TERM "$f" 2>/dev/null || true
            fi
            kill -TERM "$p" 2>/dev/null || true
        fi
    done
    for p in "${BG[@]}"; do wait "$p" 2>/dev/null || true; done
    if ((rc != 0)); then
        log "failed (exit $rc); logs are in ${T:-$WORKDIR}"
    fi
    if [[ -n ${T:-} && $KEEP == 0 && -d $T ]]; then
        rm -rf "$T"/repo* "$T"/*.qcow2 "$T"/*.raw "$T"/blocks* "$T"/perf.data* 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- tools --------------------------------------------------------------------------
need_pkgs=()
for pair in qemu-img:qemu-utils qemu-nbd:qemu-utils qemu-io:qemu-utils \
    zstd:zstd mkfs.ext4:e2fsprogs dumpe2fs:e2fsprogs; do
    command -v "${pair%%:*}" >/dev/null || need_pkgs+=("${pair#*:}")
done
[[ -x /usr/bin/time ]] || need_pkgs+=(time)
if ((${#need_pkgs[@]})); then
    mapfile -t need_pkgs < <(printf '%s\n' "${need_pkgs[@]}" | sort -u)
    if [[ $EUID == 0 ]] && command -v apt-get >/dev/null; then
        log "installing ${need_pkgs[*]}"
        apt-get install -y --no-install-recommends "${need_pkgs[@]}" >&2 ||
            { apt-get update >&2 && apt-get install -y --no-install-recommends "${need_pkgs[@]}" >&2; } ||
            die "cannot install ${need_pkgs[*]}"
    else
        die "missing tools; install the Debian packages: ${need_pkgs[*]}"
    fi
fi
HAVE_NBDCOPY=0
command -v nbdcopy >/dev/null && HAVE_NBDCOPY=1
REAL_QEMU_NBD=$(command -v qemu-nbd)
CLK_TCK=$(getconf CLK_TCK)
CPUS=$(nproc)

mkdir -p "$WORKDIR" || die "cannot create $WORKDIR"
WORKDIR=$(cd "$WORKDIR" && pwd)
IMG=$WORKDIR/images # cached images
T=$WORKDIR/run      # this run's scratch (wiped at start)
rm -rf "$T"
mkdir -p "$IMG" "$T/runs" "$T/wrap"
exec {SLEEPFD}<> <(:)

# ---- build ---------------------------------------------------------------------------
if [[ -n $BIN_DIR ]]; then
    BUILD=$(cd "$BIN_DIR" 2>/dev/null && pwd) || die "no build tree $BIN_DIR"
else
    BUILD=$WORKDIR/build
    for t in cmake make cc pkg-config; do
        command -v "$t" >/dev/null || die "building needs $t (or pass --bin-dir BUILD_TREE)"
    done
    log "building livebackup and backupd in $BUILD (log: $T/build.log)"
    if ! { cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLB_TESTS=OFF &&
        cmake --build "$BUILD" -j "$(nproc)" --target livebackup backupd; } >"$T/build.log" 2>&1; then
        tail -n 30 "$T/build.log" >&2
        die "build failed (full log: $T/build.log)"
    fi
fi
LB=$BUILD/agent/livebackup
BACKUPD=$BUILD/backupd/backupd
[[ -x $LB && -x $BACKUPD ]] || die "no $LB or $BACKUPD (build first, or check --bin-dir)"

# Wrappers measuring backupd and qemu-nbd (see the header).
cat >"$T/wrap/backupd" <<EOF
#!/bin/sh
[ -n "\${LB_BENCH_RSS_DIR:-}" ] || exec "$BACKUPD" "\$@"
exec /usr/bin/time -v -o "\$LB_BENCH_RSS_DIR/backupd.\$\$.time" "$BACKUPD" "\$@"
EOF
cat >"$T/wrap/qemu-nbd" <<EOF
#!/bin/bash
# libnbd starts qemu-nbd by socket activation (LISTEN_PID must be its pid,
# the socket is fd 3) and ends it with SIGTERM: keep both working.
[ -n "\${LB_BENCH_RSS_DIR:-}" ] || exec "$REAL_QEMU_NBD" "\$@"
out=\$LB_BENCH_RSS_DIR/qemu-nbd.\$\$
/usr/bin/time -v -o "\$out.time" /bin/sh -c 'echo \$\$ > "\$0.pid"; LISTEN_PID=\$\$; export LISTEN_PID; exec "\$@"' "\$out" "$REAL_QEMU_NBD" "\$@" &
tp=\$!
fwd() {
    for _ in 1 2 3 4 5 6 7 8 9 10; do [ -s "\$out.pid" ] && break; sleep 0.05; done
    [ -s "\$out.pid" ] && kill -"\$1" "\$(cat "\$out.pid")" 2>/dev/null
}
trap 'fwd TERM' TERM
trap 'fwd INT' INT
wait "\$tp"; rc=\$?
while kill -0 "\$tp" 2>/dev/null; do wait "\$tp"; rc=\$?; done
exit \$rc
EOF
chmod +x "$T/wrap/backupd" "$T/wrap/qemu-nbd"

# ---- helpers -------------------------------------------------------------------------
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
now() { echo "$EPOCHREALTIME"; }
mb() { calc "$1 / 1e6" 1; }
warm() { if (($#)); then cat "$@" >/dev/null; fi; }
# The machine may be shared: before a measurement, wait (up to
# QUIET_MAX seconds) until other processes use less than 10% of the CPUs.
cpu_busy_pct() { # over $1 seconds
    local b0 t0 b1 t1
    read -r b0 t0 < <(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat)
    read -rt "$1" -u "$SLEEPFD" || true
    read -r b1 t1 < <(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat)
    echo $((100 * (b1 - b0) / (t1 - t0 > 0 ? t1 - t0 : 1)))
}
wait_quiet() {
    local start=$SECONDS p
    while p=$(cpu_busy_pct 1) && ((p >= 10)); do
        if ((SECONDS - start >= QUIET_MAX)); then
            log "warning: the machine stayed ${p}% busy for ${QUIET_MAX} s; measuring anyway"
            return
        fi
    done
    ((SECONDS - start < 2)) || log "waited $((SECONDS - start)) s for the machine to be quiet"
}
# CPU time the rest of the machine uses during a measurement: all busy
# jiffies minus ours (this shell and every child it reaped, which includes
# the measured commands). A measurement is "disturbed" when the rest used
# more than 15% of the machine.
jiffies_busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
jiffies_self() { sed 's/.*) //' /proc/$$/stat | awk '{ print $12 + $13 + $14 + $15 }'; }
other_begin() {
    OB0=$(jiffies_busy) OS0=$(jiffies_self)
}
other_end() { # other_end WALL_SECONDS: sets OTHER_S, DISTURBED (0/1)
    local b1 s1
    b1=$(jiffies_busy) s1=$(jiffies_self)
    OTHER_S=$(calc "(($b1 - $OB0) - ($s1 - $OS0)) / $CLK_TCK")
    DISTURBED=$(awk -v o="$OTHER_S" -v w="$1" -v n="$CPUS" 'BEGIN { print (o > 0.15 * w * n) ? 1 : 0 }')
}
settle() {
    sync
    wait_quiet
    warm "$@"
}
json_get() { # json_get KEY < line: number or string value
    grep -o "\"$1\":\(\"[^\"]*\"\|[^,}]*\)" | sed -n '1{s/^[^:]*://; s/"//g; p}'
}
# time -v field (sum or max over files)
tv_max() {
    local key=$1; shift
    (($#)) || { echo 0; return; }
    awk -F': ' -v k="$key" '$1 ~ k { v = $2 + 0; if (v > m) m = v } END { print m + 0 }' "$@"
}
tv_cpu() {
    (($#)) || { echo 0; return; }
    awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.2f", s }' "$@"
}
tv_wall() { # "Elapsed (wall clock) time (h:mm:ss or m:ss): 0:01.23"
    awk '/Elapsed/ { n = split($NF, a, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + a[i]; printf "%.2f", s }' "$1"
}
mib() { if [[ ${1:-0} == 0 ]]; then echo -; else calc "$1 / 1024" 0; fi; } # KiB -> MiB

# Allocated data ranges of an image ("start length", merged) from qemu-img map.
data_ranges() {
    qemu-img map --output=json "$1" | awk '
        /"data": true/ {
            match($0, /"start": [0-9]+/); s = substr($0, RSTART + 9, RLENGTH - 9) + 0
            match($0, /"length": [0-9]+/); l = substr($0, RSTART + 10, RLENGTH - 10) + 0
            if (n && s == cs + cl) { cl += l } else { if (n) printf "%.0f %.0f\n", cs, cl; cs = s; cl = l; n = 1 }
        }
        END { if (n) printf "%.0f %.0f\n", cs, cl }'
}
sum_ranges() { awk '{ s += $2 } END { printf "%.0f\n", s }' "$1"; }

# ---- images --------------------------------------------------------------------------
USR_LIST=$IMG/usr-files.txt
make_file_list() {
    [[ -s $USR_LIST ]] && return
    log "listing files under /usr/bin /usr/lib /usr/share"
    find /usr/bin /usr/lib /usr/share -xdev -type f ! -name $'*\n*' -printf '%s %p\n' 2>/dev/null |
        sort -k2 >"$USR_LIST.tmp" || true
    [[ -s $USR_LIST.tmp ]] || die "found no files under /usr to fill the image with"
    mv "$USR_LIST.tmp" "$USR_LIST"
}

# make_image GIB PREFIX KEEP_RAW: PREFIX.qcow2 (and PREFIX.raw), cached.
make_image() {
    local gib=$1 pre=$2 keep_raw=$3
    local bytes=$((gib << 30))
    if [[ -f $pre.done && -f $pre.qcow2 && ($keep_raw == 0 || -f $pre.raw) ]]; then
        log "using the cached $gib GiB image $pre.qcow2"
        return
    fi
    make_file_list
    local tree=$pre.tree remaining=$((bytes * FILL_PCT / 100)) pass=0 dest
    rm -rf "$tree" "$pre".{raw,qcow2,done,sel}
    mkdir -p "$tree"
    log "building a $gib GiB ext4 image filled to ~$FILL_PCT% with files from /usr"
    while ((remaining > 0)); do
        remaining=$(awk -v r="$remaining" -v out="$pre.sel" '
            r <= 0 { exit }
            { b = int(($1 + 4095) / 4096) * 4096; r -= b; print substr($0, index($0, " ") + 1) > out }
            END { printf "%.0f\n", (r > 0 ? r : 0) }' "$USR_LIST")
        [[ -s $pre.sel ]] || die "no files selected"
        dest=$tree
        if ((pass == 0)); then
            # hard links cost nothing; mkfs.ext4 -d copies the data
            if ! tr '\n' '\0' <"$pre.sel" | xargs -0 cp -l --parents -t "$dest" 2>/dev/null; then
                tr '\n' '\0' <"$pre.sel" | xargs -0 cp --parents -t "$dest"
            fi
        else
            # later passes need real copies: mkfs.ext4 -d stores hard links once
            dest=$tree/copy$pass
            mkdir -p "$dest"
            tr '\n' '\0' <"$pre.sel" | xargs -0 cp --parents -t "$dest"
        fi
        rm -f "$pre.sel"
        pass=$((pass + 1))
    done
    truncate -s "${gib}G" "$pre.raw"
    mkfs.ext4 -q -F -b 4096 -E lazy_itable_init=0,lazy_journal_init=0 -L lbbench \
        -d "$tree" "$pre.raw" >"$T/mkfs.log" 2>&1 || { cat "$T/mkfs.log" >&2; die "mkfs.ext4 -d failed"; }
    rm -rf "$tree"
    log "converting to qcow2"
    qemu-img convert -O qcow2 "$pre.raw" "$pre.qcow2"
    ((keep_raw)) || rm -f "$pre.raw"
    touch "$pre.done"
}

fs_used_pct() { # of a raw ext4 image
    dumpe2fs -h "$1" 2>/dev/null | awk -F: '/^Block count/ { c = $2 } /^Free blocks/ { f = $2 } END { if (c) printf "%.0f", 100 * (c - f) / c; else print "?" }'
}

# ---- running livebackup, measured -------------------------------------------------------
# lb_run LABEL ARGS...: sets R_WALL R_CPU_LB R_CPU_BD R_CPU_NBD R_RSS_LB
# R_RSS_BD R_RSS_NBD (KiB) R_OUT (stdout file).
lb_run() {
    local label=$1
    shift
    local d=$T/runs/$label
    rm -rf "$d"
    mkdir -p "$d"
    other_begin
    LB_BENCH_RSS_DIR=$d PATH="$T/wrap:$PATH" LIVEBACKUP_BACKUPD="$T/wrap/backupd" \
        /usr/bin/time -v -o "$d/livebackup.time" \
        /bin/sh -c 'echo $$ > "$0"; exec "$@"' "$d/livebackup.pid" "$LB" "$@" \
        >"$d/out" 2>"$d/err" &
    local tp=$! pid='' hwm=0 k v rc=0
    BG+=("$tp")
    BGLABEL[$tp]=$label
    while kill -0 "$tp" 2>/dev/null; do
        [[ -z $pid && -s $d/livebackup.pid ]] && read -r pid <"$d/livebackup.pid"
        if [[ -n $pid && -r /proc/$pid/status ]]; then
            { while read -r k v _; do
                [[ $k == VmHWM: ]] && ((v > hwm)) && hwm=$v
            done </proc/"$pid"/status; } 2>/dev/null || true
        fi
        read -rt 0.02 -u "$SLEEPFD" || true
    done
    wait "$tp" || rc=$?
    if ((rc != 0)); then
        cat "$d/err" >&2
        die "livebackup $* failed (exit $rc); see $d"
    fi
    local bd=("$d"/backupd.*.time) nb=("$d"/qemu-nbd.*.time)
    [[ -e ${bd[0]} ]] || bd=()
    [[ -e ${nb[0]} ]] || nb=()
    R_WALL=$(tv_wall "$d/livebackup.time")
    R_CPU_BD=$(tv_cpu "${bd[@]}")
    R_CPU_NBD=$(tv_cpu "${nb[@]}")
    R_CPU_LB=$(calc "$(tv_cpu "$d/livebackup.time") - $R_CPU_BD - $R_CPU_NBD")
    other_end "$R_WALL"
    R_CPU_OTHER=$OTHER_S R_DISTURBED=$DISTURBED
    R_RSS_LB=$hwm
    R_RSS_TREE=$(tv_max 'Maximum resident' "$d/livebackup.time")
    R_RSS_BD=$(tv_max 'Maximum resident' "${bd[@]}")
    R_RSS_NBD=$(tv_max 'Maximum resident' "${nb[@]}")
    R_OUT=$d/out
    ((R_RSS_LB > 0)) || R_RSS_LB=$R_RSS_TREE # too short to sample
}

lb() { PATH="$T/wrap:$PATH" LIVEBACKUP_BACKUPD=$BACKUPD "$LB" "$@"; }

# backup_bytes REPO ID KEY: a field of a backup from list --json
backup_field() {
    lb list --repo "$1" --json | grep "\"id\":\"$2\"" | json_get "$3"
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
START=$(now)
# Room for the images (if not cached), the repositories and a restore.
FREE_GIB=$(($(stat -f -c '%a * %S' "$WORKDIR") >> 30))
NEED_GIB=$((SIZE_GIB * 3 + 1))
[[ -f $IMG/ext4-${SIZE_GIB}g.done && -f $IMG/ext4-$((SIZE_GIB * 4))g.done ]] || NEED_GIB=$((NEED_GIB + SIZE_GIB * 8))
((FREE_GIB >= NEED_GIB)) || die "$WORKDIR has $FREE_GIB GiB free, the benchmark needs about $NEED_GIB GiB"
# Other load on the machine skews everything: measure it for a second.
IDLE_BUSY=$(cpu_busy_pct 1)
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
    while ((ngood < REPEAT && r < 2 * REPEAT)); do
        r=$((r + 1))
        [[ -z $prev ]] || lb delete --repo "$repo" --backup "$prev" >/dev/null
        make_changes "$base" "$ovl" "$k" "$((seed + r))"
        settle "$base" "$ovl"
        backup "$key.$r" "$repo" --name "$name" --disk "vda=$ovl" --since "$base"
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
TOTAL_S=$(calc "$(now) - $START" 0)

# ---- report ----------------------------------------------------------------------------
mbps() { calc "$1 / $2 / 1e6" 0; } # bytes seconds
verdict() { # value op target
    if awk "BEGIN { exit !($1 $2 $3) }"; then echo PASS; else echo MISS; fi
}
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MEM_GIB=$(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
QEMU_VER=$(qemu-img --version | awk 'NR == 1 { print $3 }')
ZSTD_VER=$(zstd -V | grep -o 'v[0-9.]*' | sed -n 1p)
REV=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$SRC" diff --quiet HEAD -- 2>/dev/null || REV="$REV+changes"


# table rows: fields separated by |, first row is the header
TABLES=()
table() { TABLES+=("$(printf '%s\n' "$@")"); }

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

HEAD="livebackup benchmark ($REV), $(date -u +%Y-%m-%d): $CPUS x $CPU_MODEL, $MEM_GIB GiB RAM, kernel $(uname -r), QEMU $QEMU_VER, zstd $ZSTD_VER; CPU busy before the run ${IDLE_BUSY}%; whole run ${TOTAL_S} s"
IMGLINE="Images: ext4 (mkfs.ext4 -d, files from /usr), $SIZE_GIB GiB with ${USED_PCT}% used, $(mb "$ALLOC") MB allocated in the qcow2 ($NRANGES ranges); $BIG_GIB GiB with $(mb "$ALLOC_BIG") MB allocated. Changes: $K distinct random 4 KiB clusters (1% of $SIZE_GIB GiB) of /dev/urandom data written with qemu-io into a qcow2 overlay (cluster_size=128k, extended_l2=on); the same number on the $BIG_GIB GiB image."
NOTES=(
    "Before every measurement: sync, then the inputs are read once (page cache warm)."
    "MB/s = 10^6 bytes per second of allocated data (what livebackup reads); backup times are wall clock of the livebackup command, including starting backupd and qemu-nbd and the repository's commit."
    "bytes stored and bytes received are bytes_new and bytes_received from list --json."
    "CPU s other processes: CPU time the rest of the machine used during the run (from /proc/stat; includes the kernel's writeback of the repository); * marks runs where it exceeded 15% of the machine (disturbed). Every measurement first waits (up to ${QUIET_MAX} s) for the machine to be under 10% busy; a disturbed run of a repeated measurement is run again (at most 2x the runs) and left out of the median (of an even number of runs: the slower middle one)."
    "CPU and peak RSS: backupd and qemu-nbd under /usr/bin/time -v (through wrappers); livebackup's peak RSS is its VmHWM sampled every 20 ms, its CPU its time -v CPU minus its children's."
)

render_text() {
    local t
    for t in "${TABLES[@]}"; do
        awk -F'|' 'NR == 1 { print ""; print substr($0, 4); next }
            { n++; for (i = 1; i <= NF; i++) { c[n, i] = $i; if (length($i) > w[i]) w[i] = length($i) }; if (NF > nf) nf = NF }
            END { for (r = 1; r <= n; r++) { line = ""
                    for (i = 1; i <= nf; i++) line = line sprintf(i == 1 ? "%-" w[i] "s" : "  %" w[i] "s", c[r, i])
                    print line
                    if (r == 1) { gsub(/./, "-", line); print line } } }' <<<"$t"
    done
}
render_md() {
    local t
    for t in "${TABLES[@]}"; do
        awk -F'|' 'NR == 1 { print ""; print; print ""; next }
            { gsub(/\*/, "\\*"); line = "|"; for (i = 1; i <= NF; i++) line = line " " $i " |"; print line
              if (NR == 2) { line = "|"; for (i = 1; i <= NF; i++) line = line (i == 1 ? "---|" : "---:|"); print line } }' <<<"$t"
    done
}

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
