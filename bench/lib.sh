# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# bench/lib.sh: what the benchmarks share (sourced, never run). Options,
# the build, the cached test images, measured runs of livebackup (wall
# time, CPU and peak RSS of every process), the test VM (under the
# machine-wide VM lock), a private sshd on 127.0.0.1, the results files.
# Processes a benchmark starts are recorded and stopped by PID on exit;
# the VM, libvirtd (if this run started it) and the lock holder too.
#
# A script sets BENCH_NAME (its name: results go to bench/results-NAME.md)
# and BENCH_USAGE (its own options, for --help), then calls
# bench_parse "$@" and bench_setup. Common options:
#   --workdir DIR   cache and scratch (default /var/tmp/livebackup-bench)
#   --bin-dir DIR   a build tree to use instead of building in WORKDIR/build
#   --size GIB      the test disk's size (default 3)
#   --repeat N      runs of each repeated measurement (default 3)
#   --quiet-wait S  wait up to S s before each measurement for the machine
#                   to be under 10% busy (default 300)
#   --keep          keep the scratch directory WORKDIR/NAME
#   --label TEXT    the conditions of the run, in the results' first line
# A script's own options: a function bench_opt ARG... that returns the
# number of arguments it used (0: not its option) in BENCH_USED.

set -euo pipefail
export LC_ALL=C
# `init` encrypts unless told otherwise (README, "Encryption"): these
# benchmarks measure unencrypted repositories; bench/crypto.sh compares the
# two. No configuration file or passphrase of the host's leaks in.
export LIVEBACKUP_ENCRYPTION=none LIVEBACKUP_CONFIG=
unset LIVEBACKUP_REPO LIVEBACKUP_PASSPHRASE LIVEBACKUP_PASSPHRASE_FILE
export PATH=$PATH:/usr/sbin:/sbin

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=$SRC/bench
WORKDIR=/var/tmp/livebackup-bench
BIN_DIR=
SIZE_GIB=3
REPEAT=3
QUIET_MAX=300
KEEP=0
LABEL=
FILL_PCT=65

log() { printf '%s: %s\n' "${BENCH_NAME:-bench}" "$*" >&2; }
die() {
    printf '%s: error: %s\n' "${BENCH_NAME:-bench}" "$*" >&2
    exit 1
}

bench_usage() {
    sed -n '3,/^[^#]/p' "$0" | sed -e '/^[^#]/d' -e 's/^# \{0,1\}//'
    cat <<EOF
Common options:
  --workdir DIR   cache and scratch directory (default $WORKDIR)
  --bin-dir DIR   use the build tree DIR instead of building in WORKDIR/build
  --size GIB      test disk size (default $SIZE_GIB)
  --repeat N      runs of each repeated measurement (default $REPEAT; median)
  --quiet-wait S  before each measurement wait up to S s for the machine to
                  be under 10% busy (default $QUIET_MAX)
  --keep          keep the scratch directory
  --label TEXT    the conditions, in the results' first line (e.g. "loaded
                  machine (helpers running)")
EOF
}

bench_parse() {
    BENCH_USED=0
    while (($#)); do
        case $1 in
        --workdir) WORKDIR=${2:?--workdir needs a value}; shift 2 ;;
        --bin-dir) BIN_DIR=${2:?--bin-dir needs a value}; shift 2 ;;
        --size) SIZE_GIB=${2:?--size needs a value}; shift 2 ;;
        --repeat) REPEAT=${2:?--repeat needs a value}; shift 2 ;;
        --quiet-wait) QUIET_MAX=${2:?--quiet-wait needs a value}; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --label) LABEL=${2:?--label needs a value}; shift 2 ;;
        -h | --help) bench_usage; exit 0 ;;
        *)
            BENCH_USED=0
            if declare -F bench_opt >/dev/null; then bench_opt "$@"; fi
            ((BENCH_USED > 0)) || { echo "$BENCH_NAME: unknown argument '$1' (try --help)" >&2; exit 2; }
            shift "$BENCH_USED"
            ;;
        esac
    done
    [[ $SIZE_GIB =~ ^[1-9][0-9]*$ ]] || { echo "$BENCH_NAME: --size wants whole GiB" >&2; exit 2; }
    [[ $REPEAT =~ ^[1-9][0-9]*$ ]] || { echo "$BENCH_NAME: --repeat wants a positive number" >&2; exit 2; }
    [[ $QUIET_MAX =~ ^[0-9]+$ ]] || { echo "$BENCH_NAME: --quiet-wait wants seconds" >&2; exit 2; }
}

# ---- processes and cleanup ----------------------------------------------------
BENCH_PIDS=()
BENCH_CLEANUPS=()
SLEEPFD=
# bench_on_exit FUNCTION: run FUNCTION on exit (last registered first).
bench_on_exit() { BENCH_CLEANUPS=("$1" "${BENCH_CLEANUPS[@]}"); }
# bench_track PID: a background process of ours, stopped on exit.
bench_track() { BENCH_PIDS+=("$1"); }
# _our_child PID: still an unreaped child of this shell (never signal a
# reaped PID: its number may have been reused).
_our_child() {
    local st ppid
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    st=${st##*) }
    read -r _ ppid _ <<<"$st"
    [[ $ppid == "$$" ]]
}
_bench_exit() {
    local rc=$? p f
    trap - EXIT
    set +e
    for p in "${BENCH_PIDS[@]}"; do
        if _our_child "$p"; then
            # a livebackup under time(1) first: its PID file
            for f in "$T"/runs/*/livebackup.pid; do
                [[ -s $f ]] || continue
                read -r f <"$f"
                [[ $(awk '{ print $4 }' "/proc/$f/stat" 2>/dev/null) == "$p" ]] && kill -TERM "$f" 2>/dev/null
            done
            kill -TERM "$p" 2>/dev/null
        fi
    done
    for p in "${BENCH_PIDS[@]}"; do wait "$p" 2>/dev/null; done
    for f in "${BENCH_CLEANUPS[@]}"; do "$f"; done
    if ((rc != 0)); then
        log "failed (exit $rc); logs are in ${T:-$WORKDIR}"
    elif [[ -n ${T:-} && $KEEP == 0 && -d $T ]]; then
        rm -rf "$T"
    fi
    exit "$rc"
}

# ---- helpers --------------------------------------------------------------------
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
now() { echo "$EPOCHREALTIME"; }
mb() { calc "$1 / 1e6" 1; }
mib() { if [[ ${1:-0} == 0 ]]; then echo -; else calc "$1 / 1024" 0; fi; } # KiB -> MiB
ms() { calc "$1 / 1000" "${2:-0}"; }                                      # us -> ms
# median V...: the middle value (of an even count: the higher middle one)
median() { printf '%s\n' "$@" | sort -g | sed -n "$(($# / 2 + 1))p"; }
# pctl P V...: the P-th percentile (nearest rank)
pctl() {
    local p=$1
    shift
    printf '%s\n' "$@" | sort -g | awk -v p="$p" -v n="$#" '{ v[NR] = $1 } END { r = int((p * n + 99) / 100); if (r < 1) r = 1; print v[r] }'
}
verdict() { if awk "BEGIN { exit !($1 $2 $3) }"; then echo PASS; else echo MISS; fi; }
json_get() { # json_get KEY < line: number or string value
    grep -o "\"$1\":\(\"[^\"]*\"\|[^,}]*\)" | sed -n '1{s/^[^:]*://; s/"//g; p}'
}
warm() { if (($#)); then cat "$@" >/dev/null; fi; }
# cold FILE...: each FILE written back and dropped from the page cache (a
# disk image nobody read lately), the rest of the machine's cache left.
cold() {
    local f
    for f; do
        sync "$f"
        dd if="$f" iflag=nocache count=0 status=none
    done
}

# The machine may be shared: before a measurement, wait (up to QUIET_MAX
# seconds) until other processes use less than 10% of the CPUs.
# The machine's CPU jiffies: busy (user, nice, system, irq, softirq) and
# all of those plus idle and iowait (bench/instant.sh has a copy: it
# cannot source this file, which sets the benchmarks' environment).
cpu_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat; }
cpu_busy_pct() { # over $1 seconds
    local b0 t0 b1 t1
    read -r b0 t0 < <(cpu_ticks)
    read -rt "$1" -u "$SLEEPFD" || true
    read -r b1 t1 < <(cpu_ticks)
    echo $((100 * (b1 - b0) / (t1 - t0 > 0 ? t1 - t0 : 1)))
}
# wait_quiet [PCT]: with a guest running, its idle cost is the floor: pass
# the busy share measured with it idle plus a margin.
wait_quiet() {
    local start=$SECONDS p lim=${1:-10}
    while p=$(cpu_busy_pct 1) && ((p >= lim)); do
        if ((SECONDS - start >= QUIET_MAX)); then
            log "warning: the machine stayed ${p}% busy for ${QUIET_MAX} s; measuring anyway"
            return
        fi
    done
    ((SECONDS - start < 2)) || log "waited $((SECONDS - start)) s for the machine to be quiet"
}
# CPU time the rest of the machine uses during a measurement: all busy
# jiffies minus ours (this shell and every child it reaped). A measurement
# is "disturbed" when the rest used more than 15% of the machine (beyond
# OTHER_FLOOR CPU seconds per second: a running guest's own idle cost).
jiffies_busy() { cpu_ticks | cut -d' ' -f1; }
jiffies_self() { sed 's/.*) //' /proc/$$/stat | awk '{ print $12 + $13 + $14 + $15 }'; }
OTHER_FLOOR=0
other_begin() { OB0=$(jiffies_busy) OS0=$(jiffies_self); }
other_end() { # other_end WALL_SECONDS: sets OTHER_S, DISTURBED (0/1)
    local b1 s1
    b1=$(jiffies_busy) s1=$(jiffies_self)
    OTHER_S=$(calc "(($b1 - $OB0) - ($s1 - $OS0)) / $CLK_TCK")
    DISTURBED=$(awk -v o="$OTHER_S" -v w="$1" -v n="$CPUS" -v f="$OTHER_FLOOR" 'BEGIN { print (o - f * w > 0.15 * w * n) ? 1 : 0 }')
}
settle() {
    sync
    wait_quiet "${QUIET_PCT:-10}"
    warm "$@"
}
# time -v fields (max or CPU sum over files)
tv_max() {
    local key=$1
    shift
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

# ---- setup: tools, build, scratch -----------------------------------------------
# Bench-only Debian packages (bench/packages.txt), installed when missing.
bench_deps() {
    local p missing=()
    # what the build, the test VM and the tools need (scripts/deps.sh,
    # idempotent: nothing to do on a machine the README's commands set up);
    # a fresh machine has none of it, and a bench builds its own tree
    if [[ $EUID == 0 ]]; then
        bash "$SRC/scripts/deps.sh" >&2 || die "scripts/deps.sh failed"
    fi
    while read -r p; do
        [[ -z $p || $p == \#* ]] && continue
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "install ok installed" >/dev/null || missing+=("$p")
    done <"$BENCH_DIR/packages.txt"
    ((${#missing[@]})) || return 0
    [[ $EUID == 0 ]] || die "missing Debian packages: ${missing[*]} (install them as root)"
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 ||
        { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; } ||
        die "cannot install ${missing[*]}"
}

# bench_setup: tools, WORKDIR, the build (LB, BACKUPD), REV and CLEAN, the
# scratch directory T (wiped), the measuring wrappers.
bench_setup() {
    bench_deps
    CLK_TCK=$(getconf CLK_TCK)
    CPUS=$(nproc)
    REAL_QEMU_NBD=$(command -v qemu-nbd)
    mkdir -p "$WORKDIR" || die "cannot create $WORKDIR"
    WORKDIR=$(cd "$WORKDIR" && pwd)
    IMG=$WORKDIR/images
    T=$WORKDIR/$BENCH_NAME
    rm -rf "$T"
    mkdir -p "$IMG" "$T/runs" "$T/wrap"
    chmod 755 "$T"
    exec {SLEEPFD}<> <(:)
    trap _bench_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    REV=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)
    if [[ -z $(git -C "$SRC" status --porcelain 2>/dev/null) ]]; then
        CLEAN="clean tree"
    else
        CLEAN="uncommitted changes: $(git -C "$SRC" status --porcelain | wc -l) files"
    fi
    if [[ -n $BIN_DIR ]]; then
        BUILD=$(cd "$BIN_DIR" 2>/dev/null && pwd) || die "no build tree $BIN_DIR"
    else
        BUILD=$WORKDIR/build
        log "building livebackup and backupd in $BUILD (RelWithDebInfo)"
        if ! { cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLB_TESTS=OFF &&
            cmake --build "$BUILD" -j "$CPUS" --target livebackup backupd; } >"$T/build.log" 2>&1; then
            tail -n 30 "$T/build.log" >&2
            die "build failed (full log: $T/build.log)"
        fi
    fi
    LB=$BUILD/agent/livebackup
    BACKUPD=$BUILD/backupd/backupd
    [[ -x $LB && -x $BACKUPD ]] || die "no $LB or $BACKUPD (build first, or check --bin-dir)"
    _bench_wrappers
    IDLE_BUSY=$(cpu_busy_pct 1)
    BENCH_START=$(now)
}

# Wrappers that run backupd and qemu-nbd under /usr/bin/time -v when
# LB_BENCH_RSS_DIR is set (the agent starts qemu-nbd by socket activation,
# agent/client/nbd_dl.c: LISTEN_PID must be its pid; a qemu-nbd that
# outlives its client is sent SIGTERM).
_bench_wrappers() {
    cat >"$T/wrap/backupd" <<EOF
#!/bin/sh
[ -n "\${LB_BENCH_RSS_DIR:-}" ] || exec "$BACKUPD" "\$@"
exec /usr/bin/time -v -o "\$LB_BENCH_RSS_DIR/backupd.\$\$.time" "$BACKUPD" "\$@"
EOF
    cat >"$T/wrap/qemu-nbd" <<EOF
#!/bin/bash
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
}

# lb ARGS...: livebackup, unmeasured.
lb() { LIVEBACKUP_BACKUPD=$BACKUPD "$LB" "$@"; }

# lb_run LABEL ARGS...: livebackup ARGS, measured (the local backupd it
# starts: LB_RUN_BACKUPD, default the measuring wrapper). Sets R_WALL, R_CPU_LB,
# R_CPU_BD, R_CPU_NBD, R_RSS_LB, R_RSS_BD, R_RSS_NBD (KiB), R_CPU_OTHER,
# R_DISTURBED and R_OUT (its stdout; stderr is R_OUT.err). livebackup's
# own peak RSS is its VmHWM sampled every 20 ms (time -v of it would fold
# in its children); its CPU is its time -v CPU minus its children's.
lb_run() {
    local label=$1
    shift
    local d=$T/runs/$label
    rm -rf "$d"
    mkdir -p "$d"
    other_begin
    LB_BENCH_RSS_DIR=$d PATH="$T/wrap:$PATH" LIVEBACKUP_BACKUPD="${LB_RUN_BACKUPD:-$T/wrap/backupd}" \
        /usr/bin/time -v -o "$d/livebackup.time" \
        /bin/sh -c 'echo $$ > "$0"; exec "$@"' "$d/livebackup.pid" "$LB" "$@" \
        >"$d/out" 2>"$d/out.err" &
    local tp=$! pid='' hwm=0 k v rc=0
    bench_track "$tp"
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
        cat "$d/out.err" >&2
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
    R_RSS_BD=$(tv_max 'Maximum resident' "${bd[@]}")
    R_RSS_NBD=$(tv_max 'Maximum resident' "${nb[@]}")
    R_OUT=$d/out
    ((R_RSS_LB > 0)) || R_RSS_LB=$(tv_max 'Maximum resident' "$d/livebackup.time")
}
# rec LABEL: keep the last lb_run's figures under LABEL (W, DIST, OTHER,
# CPU_LB/BD/NBD, RSS_LB/BD/NBD, SUM: its summary line).
declare -A W DIST OTHER CPU_LB CPU_BD CPU_NBD RSS_LB RSS_BD RSS_NBD SUM
rec() {
    W[$1]=$R_WALL DIST[$1]=$R_DISTURBED OTHER[$1]=$R_CPU_OTHER
    CPU_LB[$1]=$R_CPU_LB CPU_BD[$1]=$R_CPU_BD CPU_NBD[$1]=$R_CPU_NBD
    RSS_LB[$1]=$R_RSS_LB RSS_BD[$1]=$R_RSS_BD RSS_NBD[$1]=$R_RSS_NBD
    SUM[$1]=$(grep '"event":"summary"' "$R_OUT" || true)
    if ((R_DISTURBED)); then log "  $1: ${R_WALL} s (disturbed: other processes used ${R_CPU_OTHER} CPU s)"; else log "  $1: ${R_WALL} s"; fi
}
# sum_of LABEL KEY: a field of LABEL's summary ("" if absent)
sum_of() { json_get "$2" <<<"${SUM[$1]}"; }
# pick LABEL...: the label of the median run by wall time, among the
# undisturbed ones (all of them if every run was disturbed)
pick() {
    local l ok=()
    for l in "$@"; do [[ ${DIST[$l]} == 1 ]] || ok+=("$l"); done
    ((${#ok[@]})) || ok=("$@")
    for l in "${ok[@]}"; do echo "${W[$l]} $l"; done | sort -g | sed -n "$((${#ok[@]} / 2 + 1))p" | cut -d' ' -f2
}
# walls LABEL...: every run's time, disturbed ones marked *
walls() {
    local l out=()
    for l in "$@"; do out+=("${W[$l]}$([[ ${DIST[$l]} == 1 ]] && echo '*' || true)"); done
    local IFS=,
    echo "${out[*]}" | sed 's/,/, /g'
}
# peak ARRAY LABEL...: the max of ARRAY over the labels
peak() {
    local -n a=$1
    local l m=0
    shift
    for l in "$@"; do ((${a[$l]:-0} > m)) && m=${a[$l]}; done
    echo "$m"
}

# summary KEY: a field of the last lb_run's --json summary
summary() { grep '"event":"summary"' "$R_OUT" | json_get "$1"; }
# backup_field REPO ID KEY: a field of a backup in list --json
backup_field() { lb list --repo "$1" --json | grep "\"id\":\"$2\"" | json_get "$3"; }

# cmd_run LABEL CMD...: any command, measured: M_WALL, M_RSS (KiB, the
# largest process of the tree), M_CPU; output in $T/runs/LABEL/{out,err}.
cmd_run() {
    local label=$1 d rc=0
    shift
    d=$T/runs/$label
    rm -rf "$d"
    mkdir -p "$d"
    other_begin
    /usr/bin/time -v -o "$d/time" "$@" >"$d/out" 2>"$d/err" || rc=$?
    ((rc == 0)) || { tail -n 20 "$d/err" >&2; die "$* failed (exit $rc); see $d"; }
    M_WALL=$(tv_wall "$d/time")
    M_RSS=$(tv_max 'Maximum resident' "$d/time")
    M_CPU=$(tv_cpu "$d/time")
    other_end "$M_WALL"
}

# ---- images -------------------------------------------------------------------------
# Allocated data ranges of an image ("start length", merged) from qemu-img map.
data_ranges() {
    qemu-img map --output=json "$@" | awk '
        /"data": true/ {
            match($0, /"start": [0-9]+/); s = substr($0, RSTART + 9, RLENGTH - 9) + 0
            match($0, /"length": [0-9]+/); l = substr($0, RSTART + 10, RLENGTH - 10) + 0
            if (n && s == cs + cl) { cl += l } else { if (n) printf "%.0f %.0f\n", cs, cl; cs = s; cl = l; n = 1 }
        }
        END { if (n) printf "%.0f %.0f\n", cs, cl }'
}
sum_ranges() { awk '{ s += $2 } END { printf "%.0f\n", s }' "$1"; }

USR_LIST=
make_file_list() {
    USR_LIST=$IMG/usr-files.txt
    [[ -s $USR_LIST ]] && return
    log "listing files under /usr/bin /usr/lib /usr/share"
    find /usr/bin /usr/lib /usr/share -xdev -type f ! -name $'*\n*' -printf '%s %p\n' 2>/dev/null |
        sort -k2 >"$USR_LIST.tmp" || true
    [[ -s $USR_LIST.tmp ]] || die "found no files under /usr to fill the image with"
    mv "$USR_LIST.tmp" "$USR_LIST"
}

# make_image GIB PREFIX KEEP_RAW: PREFIX.qcow2 (and PREFIX.raw), cached: an
# ext4 filesystem (4 KiB blocks, no lazy init) filled to FILL_PCT% with
# real files from /usr (copied again under copyN/ until full).
make_image() {
    local gib=$1 pre=$2 keep_raw=$3
    local bytes=$((gib << 30))
    if [[ -f $pre.done && -f $pre.qcow2 && ($keep_raw == 0 || -f $pre.raw) ]]; then
        return
    fi
    make_file_list
    local tree=$pre.tree remaining=$((bytes * FILL_PCT / 100)) pass=0 dest
    rm -rf "$tree" "$pre".{raw,qcow2,done,sel,data.bin}
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

# image_data PREFIX: PREFIX.data.bin, the qcow2's allocated data ranges
# concatenated (cached); sets ALLOC (bytes) and NRANGES.
image_data() {
    local pre=$1
    data_ranges "$pre.qcow2" >"$T/ranges"
    ALLOC=$(sum_ranges "$T/ranges")
    NRANGES=$(wc -l <"$T/ranges")
    if [[ ! -f $pre.data.bin || $(stat -c %s "$pre.data.bin") != "$ALLOC" ]]; then
        log "extracting the allocated data ($NRANGES ranges) into $pre.data.bin"
        qemu-img convert -O raw "$pre.qcow2" "$T/image.raw"
        while read -r s l; do
            dd if="$T/image.raw" bs=1M iflag=skip_bytes,count_bytes skip="$s" count="$l" status=none
        done <"$T/ranges" >"$pre.data.bin.tmp"
        rm -f "$T/image.raw"
        mv "$pre.data.bin.tmp" "$pre.data.bin"
    fi
}

# zstd_baseline FILE [cold]: REPEAT runs of zstd -1 -T0 over FILE, read
# just before each (or, with cold, dropped from the page cache); sets Z_S
# (median seconds), Z_ALL (every run) and Z_BYTES (output size).
zstd_baseline() {
    local f=$1 r t0 t all=()
    for ((r = 1; r <= REPEAT; r++)); do
        if [[ ${2:-} == cold ]]; then
            settle
            cold "$f"
        else
            settle "$f"
        fi
        t0=$(now)
        Z_BYTES=$(zstd -1 -T0 -q -c "$f" | wc -c)
        t=$(calc "$(now) - $t0" 3)
        all+=("$t")
    done
    Z_S=$(median "${all[@]}")
    Z_ALL=$(printf '%s, ' "${all[@]}")
    Z_ALL=${Z_ALL%, }
}

# ---- the test VM ----------------------------------------------------------------------
# bench_vm_up: take the machine-wide VM lock (a recorded holder process
# keeps it until exit: libvirtd must not inherit it), build the test guest
# (cached), bring libvirtd up (or use the one running). Everything is
# undone on exit: our domains destroyed, libvirtd down if we started it.
VM_PREFIX=
bench_vm_up() {
    local locked=''
    log "waiting for the VM lock (/run/lock/livebackup-vm-tests.lock)"
    coproc VM_LOCK {
        exec 9>>/run/lock/livebackup-vm-tests.lock
        flock 9 && echo locked && exec sleep 100000
    }
    # Released last, after _bench_vm_down (registered below, so run
    # before it): the next holder must not meet our domains or libvirtd.
    BENCH_VM_LOCK_PID=$VM_LOCK_PID
    bench_on_exit _bench_vm_unlock
    read -r -t 7200 locked <&"${VM_LOCK[0]}" || true
    [[ $locked == locked ]] || die "the VM lock stayed held for 2 hours"
    export LB_TESTVM_DIR=${LB_TESTVM_DIR:-/var/cache/livebackup-testvm}
    bash "$SRC/tests/vm/build-testvm.sh" "$LB_TESTVM_DIR" >"$T/build-testvm.log" 2>&1 ||
        die "building the test VM failed: $(tail -n 20 "$T/build-testvm.log")"
    # shellcheck source=/dev/null
    . "$LB_TESTVM_DIR/env.sh"
    # shellcheck source=../tests/vm/vm.sh
    . "$SRC/tests/vm/vm.sh"
    # shellcheck source=../tests/vm/libvirt.sh
    . "$SRC/tests/vm/libvirt.sh"
    export LIVEBACKUP_STATE_DIR=$T/state
    VM_PREFIX="lbbench$$-"
    mkdir -p "$T/vm"
    chmod 755 "$T/vm"
    bench_on_exit _bench_vm_down
    lv_up "$T/libvirt" >"$T/libvirt.log" 2>&1 ||
        die "libvirtd did not come up: $(tail -n 20 "$T/libvirt.log")"
}
_bench_vm_unlock() {
    _our_child "$BENCH_VM_LOCK_PID" && kill -TERM "$BENCH_VM_LOCK_PID" 2>/dev/null
    wait "$BENCH_VM_LOCK_PID" 2>/dev/null
}
_bench_vm_down() {
    vm_cleanup_all "$VM_PREFIX" >/dev/null 2>&1
    lv_down "$T/libvirt" >/dev/null 2>&1
}

# bench_vm_start NAME [vm_define options]: define and start $VM_PREFIX$NAME,
# wait for its guest agent and the workload's first file; prints the name.
bench_vm_start() {
    local name=$VM_PREFIX$1
    shift
    vm_define "$name" "$T/vm" "$@" >/dev/null || die "cannot define $name"
    vm_start "$name" >/dev/null || die "cannot start $name"
    vm_wait_agent "$name" 180 >/dev/null || die "the guest agent of $name did not answer"
    echo "$name"
}

# guest_put DOMAIN HOSTFILE GUESTPATH: copy a file into the guest through
# its agent (guest-file-open/write/close; 48 KiB pieces: one argument of
# virsh stays far below the kernel's 128 KiB limit), mode 0755.
guest_put() {
    local dom=$1 src=$2 dst=$3 h off=0 size piece=49152 b64 r
    size=$(stat -c %s "$src")
    r=$(vm_agent "$dom" "{\"execute\":\"guest-file-open\",\"arguments\":{\"path\":\"$dst\",\"mode\":\"w\"}}") ||
        die "guest-file-open $dst in $dom failed"
    h=$(sed -n 's/.*"return": *\([0-9][0-9]*\).*/\1/p' <<<"$r")
    [[ -n $h ]] || die "guest-file-open: unexpected reply $r"
    while ((off < size)); do
        b64=$(dd if="$src" bs="$piece" iflag=skip_bytes skip="$off" count=1 status=none | base64 -w0)
        vm_agent "$dom" "{\"execute\":\"guest-file-write\",\"arguments\":{\"handle\":$h,\"buf-b64\":\"$b64\"}}" >/dev/null ||
            die "guest-file-write to $dst in $dom failed"
        off=$((off + piece))
    done
    vm_agent "$dom" "{\"execute\":\"guest-file-close\",\"arguments\":{\"handle\":$h}}" >/dev/null ||
        die "guest-file-close failed"
    vm_guest_exec "$dom" chmod 0755 "$dst" || die "chmod $dst in $dom failed"
}

# The change generator (bench/scatter.c), static, for the guest.
SCATTER=
build_scatter() {
    SCATTER=$T/scatter
    cc -std=c11 -static -O2 -s -Wall -Wextra -Wshadow -Wformat=2 -Wvla -Werror \
        -o "$SCATTER" "$BENCH_DIR/scatter.c" 2>"$T/scatter.log" ||
        die "building bench/scatter.c failed: $(cat "$T/scatter.log")"
}
# scatter DOMAIN COUNT SEED RANDOM_PCT: rewrite COUNT 4 KiB blocks inside
# the files of the guest's /data (see bench/scatter.c); fsync'd.
scatter() {
    local out
    out=$(VM_EXEC_TIMEOUT=600 vm_guest_exec "$1" /run/scatter /data "$2" "$3" "$4") ||
        die "scatter in $1 failed: $out"
    [[ $out == "scatter: $2 "* ]] || die "scatter in $1: unexpected output '$out'"
}

# ---- a private sshd on 127.0.0.1 ------------------------------------------------
# bench_sshd DIR: an sshd of our own on 127.0.0.1 (a free port between
# 20000 and 29999), with throwaway host and user keys in DIR, stopped on
# exit. It accepts the keys in DIR/authorized_keys, which the caller
# writes (with a forced command, or none: a shell). Sets SSH_PORT,
# SSH_CMD (ssh with the user key and no host key checks, for --rsh and
# rsync -e) and SSH_CIPHER (the cipher OpenSSH's client offers first).
bench_sshd() {
    local dir=$1 port _
    [[ -x /usr/sbin/sshd ]] || die "openssh-server is not installed (scripts/deps.sh installs it)"
    mkdir -p "$dir" /run/sshd
    chmod 700 "$dir"
    ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
    ssh-keygen -q -t ed25519 -N '' -f "$dir/user_key"
    : >"$dir/authorized_keys"
    chmod 600 "$dir/authorized_keys"
    SSH_PORT=
    for _ in $(seq 1 20); do
        port=$((20000 + RANDOM % 10000))
        cat >"$dir/sshd_config" <<EOS
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
LogLevel INFO
EOS
        /usr/sbin/sshd -D -e -f "$dir/sshd_config" 2>"$dir/sshd.log" &
        SSHD_PID=$!
        bench_track "$SSHD_PID"
        for _ in $(seq 1 100); do
            grep -q "Server listening" "$dir/sshd.log" && break
            _our_child "$SSHD_PID" || break
            read -rt 0.05 -u "$SLEEPFD" || true
        done
        if grep -q "Server listening on 127.0.0.1 port $port\." "$dir/sshd.log"; then
            SSH_PORT=$port
            break
        fi
        wait "$SSHD_PID" 2>/dev/null || true
    done
    [[ -n $SSH_PORT ]] || die "sshd did not start: $(cat "$dir/sshd.log")"
    SSH_CMD="ssh -i $dir/user_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR"
    SSH_CIPHER=$(ssh -G 127.0.0.1 2>/dev/null | awk '$1 == "ciphers" { split($2, c, ","); print c[1] }')
    log "sshd on 127.0.0.1:$SSH_PORT ($(ssh -V 2>&1), cipher $SSH_CIPHER)"
}

# bench_ssh_user DIR: the account bench_sshd's clients log in as, the one
# README's deployments give the repository (ssh://backup@server/...): a
# system user livebackup-bench (SSH_USER) whose shell is /bin/sh and whose
# home is DIR/home, made here and removed on exit. Not root: root's shell
# reads root's ~/.bashrc for every ssh command, which on a backup server
# does nothing, and on a development machine may do anything (this
# project's runs `pyenv init`: 0.2 s a command warm, 0.5 s cold, paid by
# every tool the same and by none in the field). DIR (bench_sshd's) is
# made searchable and its authorized_keys readable: sshd reads the file
# as the user. Files the user is to write must be given to it (chown).
SSH_USER=livebackup-bench
_bench_ssh_user_gone() { userdel "$SSH_USER" 2>/dev/null || log "could not remove the user $SSH_USER"; }
bench_ssh_user() {
    local dir=$1 gecos="livebackup bench, removed at its end"
    if getent passwd "$SSH_USER" >/dev/null; then
        # left by a bench that was killed: ours by its comment, or not ours
        [[ $(getent passwd "$SSH_USER" | cut -d: -f5) == "$gecos" ]] ||
            die "a user $SSH_USER exists and is not the benchmarks' own"
        usermod --home "$dir/home" "$SSH_USER" || die "usermod $SSH_USER failed"
    else
        # -p '*': no password, not locked (sshd refuses locked accounts)
        useradd --system --no-create-home --home-dir "$dir/home" --shell /bin/sh \
            --comment "$gecos" -p '*' "$SSH_USER" || die "useradd $SSH_USER failed"
    fi
    bench_on_exit _bench_ssh_user_gone
    install -d -o "$SSH_USER" -m 700 "$dir/home"
    chmod 711 "$dir"
    chmod 644 "$dir/authorized_keys"
    # a login (255: ssh's own failure; a forced command may answer true
    # with an error of its own)
    local rc=0
    $SSH_CMD -p "$SSH_PORT" "$SSH_USER@127.0.0.1" true </dev/null >/dev/null 2>&1 || rc=$?
    ((rc != 255)) || die "ssh as $SSH_USER to the private sshd failed"
}

# ---- results ----------------------------------------------------------------------------
# table rows: fields separated by |, the first row is the header, the
# argument before them the table's title
TABLES=()
table() { TABLES+=("$(printf '%s\n' "$@")"); }
NOTES=()
note() { NOTES+=("$*"); }

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

# bench_report TITLE [LINE...]: print the tables and notes, and write them
# as Markdown to bench/results-$BENCH_NAME.md with the commit, whether the
# tree was clean, the machine and its load.
bench_report() {
    local title=$1 head cpu qemu total out
    shift
    total=$(calc "$(now) - $BENCH_START" 0)
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    qemu=$(qemu-img --version | awk 'NR == 1 { print $3 }')
    head="$title ($REV, $CLEAN${LABEL:+, $LABEL}), $(date -u +%Y-%m-%d): $CPUS x $cpu, $(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo) GiB RAM, kernel $(uname -r), QEMU $qemu, libvirt $(virsh --version 2>/dev/null || echo -); CPU busy before the run ${IDLE_BUSY}%, load average $(cut -d' ' -f1-3 /proc/loadavg); whole run ${total} s"
    {
        echo "$head"
        if (($#)); then printf '\n%s\n' "$@"; fi
        render_text
        echo
        if ((${#NOTES[@]})); then printf '%s\n' "${NOTES[@]}"; fi
    } | tee "$T/results.txt"
    out=$BENCH_DIR/results-$BENCH_NAME.md
    {
        echo "<!-- generated by bench/$BENCH_NAME.sh; do not edit -->"
        echo "$head"
        if (($#)); then printf '\n%s\n' "$@"; fi
        render_md
        echo
        if ((${#NOTES[@]})); then printf -- '- %s\n' "${NOTES[@]}"; fi
    } >"$out"
    log "wrote $out (run took ${total} s)"
}
