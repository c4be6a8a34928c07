#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bench/crypto.sh: what encryption costs. Run by hand; prints the figures
# and writes them to bench/results-crypto.md. Not a test: nothing fails
# because a target is missed.
#
#   bench/crypto.sh [--restore-dir DIR] [common options, see --help]
#
# On the same data, in the same run, alternating the two so that drift in
# a shared machine's load hits both alike, and which of the two goes
# first in a round alternating too (default 5 runs of each):
#   - a full backup-image of the cached ext4 test image (lib.sh's
#     make_image, --size GiB, 3 by default) into a new unencrypted
#     repository, and into a new encrypted one (repokey);
#   - a restore of each to a raw file (then fsync'd), on tmpfs
#     (/dev/shm) when it has room, or in --restore-dir: the same bytes
#     are written either way, and writeback to a shared disk is the
#     noisiest part of a restore;
#   - the fixed cost of unlocking a repository (Argon2id, on a thread of
#     its own while the command does what needs no key): `show` of the
#     encrypted backup against the unencrypted one;
# with the CPU time and peak RSS of livebackup, backupd and qemu-nbd
# (lib.sh's lb_run), and for backup and restore the median of each
# round's ratio as well (a drift of the machine's speed over the run
# cancels out there). The targets: the encrypted backup's and restore's
# throughput at least 0.95 of the unencrypted ones; memory unchanged. Both
# repositories are local (the agent's backupd child), page cache warm (the
# image is read once before each measurement). Runs during which other
# processes used more than 15% of the machine are marked * and left out
# of the medians when undisturbed ones exist.
BENCH_NAME=crypto
. "$(dirname "$0")/lib.sh"
REPEAT=5
OUTDIR=
bench_opt() {
    case $1 in
    --restore-dir) OUTDIR=${2:?--restore-dir needs a value}; BENCH_USED=2 ;;
    esac
}
bench_parse "$@"
bench_setup

PRE=$IMG/ext4-${SIZE_GIB}g
make_image "$SIZE_GIB" "$PRE" 0
IMAGE=$PRE.qcow2
data_ranges "$IMAGE" >"$T/ranges"
DATA=$(sum_ranges "$T/ranges")
head -c 32 /dev/urandom | base64 >"$T/passphrase"
export LIVEBACKUP_PASSPHRASE_FILE=$T/passphrase

if [[ -z $OUTDIR ]]; then
    OUTDIR=$T
    avail=$(df --output=avail -B1 /dev/shm 2>/dev/null | tail -n 1 || echo 0)
    vsize=$(qemu-img info --output=json "$IMAGE" | awk -F: '/"virtual-size"/ { printf "%.0f", $2 }')
    ((vsize + (1 << 30) < avail)) && OUTDIR=/dev/shm
fi
OUT=$OUTDIR/livebackup-bench-restore.$$.raw
_crypto_cleanup() { rm -f "$OUT"; }
bench_on_exit _crypto_cleanup

log "image $IMAGE: $(mb "$DATA") MB of data; $REPEAT runs of each, alternating"
MODES=(none repokey)
for ((i = 1; i <= REPEAT; i++)); do
    # which mode goes first alternates with the round: whatever the
    # machine carries from one run into the next (writeback, the freed
    # tmpfs pages of the last restore) falls on each mode as often
    order=("${MODES[@]}")
    ((i % 2)) || order=("${MODES[1]}" "${MODES[0]}")
    for mode in "${order[@]}"; do
        rm -rf "$T/repo-$mode"
        lb init --repo "$T/repo-$mode" --encryption "$mode" >/dev/null
        settle "$IMAGE"
        lb_run "backup-$mode-$i" backup-image --repo "$T/repo-$mode" --name bench \
            --disk vda="$IMAGE"
        rec "backup-$mode-$i"
    done
    for mode in "${order[@]}"; do
        rm -f "$OUT"
        settle
        lb_run "restore-$mode-$i" restore-image --repo "$T/repo-$mode" --name bench \
            --disk vda --to "$OUT"
        rec "restore-$mode-$i"
    done
done
qemu-img compare -q -f raw -F qcow2 "$OUT" "$IMAGE" || die "the restore differs from the image"
rm -f "$OUT"
for ((i = 1; i <= REPEAT; i++)); do
    for mode in "${MODES[@]}"; do
        settle
        lb_run "show-$mode-$i" show --repo "$T/repo-$mode" --name bench --backup latest
        rec "show-$mode-$i"
    done
done

# labels WHAT MODE: every run's label
labels() { local k; for ((k = 1; k <= REPEAT; k++)); do echo "$1-$2-$k"; done; }
cpu3() { calc "${CPU_LB[$1]} + ${CPU_BD[$1]} + ${CPU_NBD[$1]}"; }
# pairs WHAT: the median of each round's unencrypted time over its
# encrypted one (the two run back to back, so a drift of the machine's
# speed over the whole run cancels out in each pair)
pairs() {
    local k r=()
    for ((k = 1; k <= REPEAT; k++)); do r+=("$(calc "${W[$1-none-$k]} / ${W[$1-repokey-$k]}" 3)"); done
    calc "$(median "${r[@]}")"
}
rows=("## Encrypted against unencrypted, same data, same run (medians of $REPEAT alternating runs)" "figure|unencrypted|encrypted (repokey)|ratio (throughput)|target")
for what in backup restore; do
    mapfile -t ln < <(labels "$what" none)
    mapfile -t le < <(labels "$what" repokey)
    a=$(pick "${ln[@]}") b=$(pick "${le[@]}")
    rows+=("full $what: s (MB/s)|${W[$a]} ($(calc "$DATA / 1e6 / ${W[$a]}" 0))|${W[$b]} ($(calc "$DATA / 1e6 / ${W[$b]}" 0))|$(calc "${W[$a]} / ${W[$b]}")|>= 0.95")
    rows+=("full $what: median of the rounds' ratios (each pair run back to back)|||$(pairs "$what")|")
    ca=$(cpu3 "$a") cb=$(cpu3 "$b")
    rows+=("full $what: CPU s, livebackup + backupd + qemu-nbd|$ca (${CPU_LB[$a]} + ${CPU_BD[$a]} + ${CPU_NBD[$a]})|$cb (${CPU_LB[$b]} + ${CPU_BD[$b]} + ${CPU_NBD[$b]})|$(calc "$ca / $cb")|")
    rows+=("full $what: peak RSS livebackup / backupd, MiB|$(mib "$(peak RSS_LB "${ln[@]}")") / $(mib "$(peak RSS_BD "${ln[@]}")")|$(mib "$(peak RSS_LB "${le[@]}")") / $(mib "$(peak RSS_BD "${le[@]}")")||unchanged")
    note "$what, every run (s): unencrypted $(walls "${ln[@]}"); encrypted $(walls "${le[@]}")"
done
mapfile -t ln < <(labels show none)
mapfile -t le < <(labels show repokey)
a=$(pick "${ln[@]}") b=$(pick "${le[@]}")
rows+=("show of one backup (unlocking the key: Argon2id), s|${W[$a]}|${W[$b]}|+$(calc "${W[$b]} - ${W[$a]}") s|")
rows+=("chunk files stored, MB|$(mb "$(du -sb "$T/repo-none/chunks" | cut -f1)")|$(mb "$(du -sb "$T/repo-repokey/chunks" | cut -f1)")||")
table "${rows[@]}"
note "image ext4-${SIZE_GIB}g.qcow2, $(mb "$DATA") MB of data; local repositories (the agent's backupd child); warm page cache; restores written to $OUTDIR."
bench_report "Encryption (bench/crypto.sh)"
