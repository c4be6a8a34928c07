#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bench/copy.sh: livebackup copy against rsync -a of the same repository
# files. Run by hand; prints the figures and writes them to
# bench/results-copy.md. Not a test: nothing fails because a target is
# missed.
#
#   bench/copy.sh [--nights N,M...] [common options, see --help]
#
# A source repository gets a full backup-image of bench/lib.sh's ext4 test
# image (--size GIB, default 1 here), then nights of incrementals, each
# changing about 2% of the image (random 64 KiB writes, incompressible).
# At each size in --nights (default 7,30: the size this benchmark had,
# and a month of nightly backups, where rsync's walk of every file of the
# repository starts to show), in the same run, alternating which goes
# first:
#   - to an empty repository: `livebackup copy` of every backup, against
#     `rsync -a` of the repository's files (and `rsync -a` then `sync -f`,
#     since copy returns only once every chunk and manifest is durable);
#   - after one more night's backup: the copy of that backup into the
#     copy, against `rsync -a` of the repository onto the rsync'd one
#     (the same change: its new chunks, its manifest, seq); --repeat
#     nights, one after the other, each measured once.
# The same again with the destination over ssh (what an off-site push
# is), to a private sshd on 127.0.0.1 (bench/lib.sh, bench_sshd; OpenSSH's
# default cipher, named in the results): `livebackup copy --to ssh://...`
# against `rsync -a -e ssh` (and then `ssh ... sync -f`) through the same
# sshd and key. There the destination's backupd re-hashes every chunk it
# receives (an ssh client is not trusted) after the source checked it:
# on one host both checks, and both ends of ssh, share its CPUs.
# It needs about 8 times the largest source's size free in --workdir (30
# nights of a 1 GiB image: a 1.7 GB source, about 14 GB in all), and
# about twice the time it took with warm runs only (every measurement is
# made cold and warm).
# Both local ends are directories (the agent's backupd children; rsync
# local to local). Targets: the full copy no slower than rsync -a; the
# incremental copy at least 3 times faster.
#
# Page cache: every measurement is made twice over, on its own round (and
# for the incremental copy on its own nights): cold, the headline, with
# the page cache dropped before each timed run of either tool (`sync; echo
# 3 >/proc/sys/vm/drop_caches`: what a nightly off-site pull meets, the
# repository's old inodes and directories not cached), and warm, the
# source's chunks read just before (labelled "warm page cache"). Dropping
# the page cache needs root and empties it for the WHOLE machine: other
# programs running beside the benchmark lose their cache too, and slow
# down for a moment. As a check that cold means cold, the time of `find
# SRC -type f | wc -l` cold and warm is printed beside the tables.
BENCH_NAME=copy
. "$(dirname "$0")/lib.sh"
SIZE_GIB=1
NIGHTS_AT=7,30
bench_opt() {
    case $1 in
    --nights) NIGHTS_AT=${2:?--nights needs a value}; BENCH_USED=2 ;;
    esac
}
bench_parse "$@"
[[ $NIGHTS_AT =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--nights wants counts, e.g. 7,30"
IFS=, read -ra AT <<<"$NIGHTS_AT"
mapfile -t AT < <(printf '%s\n' "${AT[@]}" | sort -n -u)
bench_setup
command -v rsync >/dev/null || die "rsync is not installed (scripts/deps.sh installs it)"
[[ -w /proc/sys/vm/drop_caches ]] ||
    die "dropping the page cache (the cold rows) needs root: /proc/sys/vm/drop_caches"
# the destination over ssh: a shell for rsync and for copy's backupd
bench_sshd "$T/ssh"
echo "restrict $(cat "$T/ssh/user_key.pub")" >"$T/ssh/authorized_keys"
SSH_TO=root@127.0.0.1
RSYNC_E="$SSH_CMD -p $SSH_PORT"

PRE=$IMG/ext4-${SIZE_GIB}g
make_image "$SIZE_GIB" "$PRE" 0
VSIZE=$((SIZE_GIB << 30))
S=$T/src

# drop_caches: the page cache, dentries and inodes of the whole machine
# dropped, after writing back what is dirty.
drop_caches() {
    sync
    echo 3 >/proc/sys/vm/drop_caches || die "cannot drop the page cache"
}

# timed CMD...: (a program, not a function) wall seconds into WALL, CPU seconds (user + system, of
# every process of the command: copy's backupd children, rsync's own) into
# CPU; DISTURBS counts the measurements during which the rest of the
# machine was busy (lib.sh, other_end): on a loaded machine the CPU time
# is the steadier figure. CACHE=cold: the page cache dropped just before;
# CACHE=warm: the source's chunks read just before.
DISTURBS=0
CACHE=cold
timed() {
    local t0
    if [[ $CACHE == cold ]]; then
        settle
        drop_caches
    else
        settle "$S"/chunks/*/*
    fi
    other_begin
    t0=$(now)
    /usr/bin/time -f "%U %S" -o "$T/cmd.time" "$@" >"$T/cmd.out" 2>"$T/cmd.err" ||
        { cat "$T/cmd.err" >&2; die "$* failed"; }
    WALL=$(calc "$(now) - $t0" 3)
    other_end "$WALL"
    DISTURBS=$((DISTURBS + DISTURBED))
    CPU=$(awk 'END { printf "%.2f", $1 + $2 }' "$T/cmd.time")
}

# night N: about 2% of the image rewritten, 64 KiB at a time, then an
# incremental backup of the overlay.
TOP=$T/base.qcow2
NIGHT=0
night() {
    local cmds=() k off count=$((VSIZE / 50 / 65536))
    NIGHT=$((NIGHT + 1))
    qemu-img create -q -f qcow2 -o cluster_size=128k,extended_l2=on -b "$TOP" -F qcow2 \
        "$T/n$NIGHT.qcow2"
    head -c $((count * 65536)) /dev/urandom >"$T/night.bin"
    for ((k = 0; k < count; k++)); do
        off=$(((RANDOM * 32768 + RANDOM) % (VSIZE / 65536) * 65536))
        cmds+=(-c "write -s $T/night.bin $off 64k")
    done
    qemu-io -f qcow2 "${cmds[@]}" "$T/n$NIGHT.qcow2" >/dev/null
    lb backup-image --repo "$S" --name bench --disk vda="$T/n$NIGHT.qcow2" --since "$TOP" >/dev/null
    TOP=$T/n$NIGHT.qcow2
}

# round WHAT N I: copy, rsync -a and rsync -a + sync of the source into
# T/copy, T/rsync, T/rsync-sync, and the same over ssh into T/copy-ssh,
# T/rsync-ssh, T/rsync-ssh-sync, in an order that alternates with I,
# page cache as CACHE says (cold, warm); walls into W[CACHE-WHAT-N-tool],
# CPU times into C[...] (over ssh: this side's only, ssh client included;
# sshd and what it runs are not counted).
TOOLS=(copy rsync rsync-sync copy-ssh rsync-ssh rsync-ssh-sync)
declare -A W C
round() {
    local what=$CACHE-$1 n=$2 i=$3 order tool
    order=("${TOOLS[@]}")
    ((i % 2)) || mapfile -t order < <(printf '%s\n' "${TOOLS[@]}" | tac)
    for tool in "${order[@]}"; do
        case $tool in
        copy) timed env LIVEBACKUP_BACKUPD="$BACKUPD" "$LB" copy --from "$S" --to "$T/copy" ;;
        rsync) timed rsync -a "$S/" "$T/rsync/" ;;
        rsync-sync) timed sh -c 'rsync -a "$1" "$2" && sync -f "$2"' sh "$S/" "$T/rsync-sync/" ;;
        copy-ssh)
            timed env LIVEBACKUP_BACKUPD="$BACKUPD" "$LB" copy --from "$S" \
                --to "ssh://$SSH_TO:$SSH_PORT$T/copy-ssh" --rsh "$SSH_CMD" --remote-backupd "$BACKUPD"
            ;;
        rsync-ssh) timed rsync -a -e "$RSYNC_E" "$S/" "$SSH_TO:$T/rsync-ssh/" ;;
        rsync-ssh-sync)
            # shellcheck disable=SC2016 # expanded by sh -c
            timed sh -c 'rsync -a -e "$1" "$2" "$3:$4" && $1 "$3" sync -f "$4"' sh \
                "$RSYNC_E" "$S/" "$SSH_TO" "$T/rsync-ssh-sync/"
            ;;
        esac
        W[$what-$n-$tool]+="$WALL "
        C[$what-$n-$tool]+="$CPU "
        log "$n nights, $what, $tool $i: $WALL s (CPU $CPU s)"
    done
}
copies() { echo "$T/copy" "$T/rsync" "$T/rsync-sync" "$T/copy-ssh" "$T/rsync-ssh" "$T/rsync-ssh-sync"; }

log "source: a full backup of $PRE.qcow2, then ${AT[*]} nights of 2% changes"
cp "$PRE.qcow2" "$T/base.qcow2"
lb init --repo "$S" >/dev/null
lb backup-image --repo "$S" --name bench --disk vda="$T/base.qcow2" >/dev/null
declare -A ROWS
FINDS=()
# find_time: seconds of `find S -type f | wc -l`, page cache as CACHE says
find_time() {
    local t0
    if [[ $CACHE == cold ]]; then drop_caches; else find "$S" -type f >/dev/null; fi
    t0=$(now)
    find "$S" -type f | wc -l >/dev/null
    calc "$(now) - $t0" 3
}
for n in "${AT[@]}"; do
    while ((NIGHT < n)); do night; done # a size's extra nights count
    full=$(du -sb "$S" | cut -f1)
    files=$(find "$S" -type f | wc -l)
    log "$n nights: $(mb "$full") MB in $files files"
    CACHE=cold fc=$(find_time)
    CACHE=warm fw=$(find_time)
    FINDS+=("$n nights ($files files): cold $fc s, warm $fw s")
    # to empty directories, REPEAT times per page cache state, cold and
    # warm alternating; the last round's copies stay
    for ((i = 1; i <= 2 * REPEAT; i++)); do
        CACHE=$( ((i % 2)) && echo cold || echo warm)
        # shellcheck disable=SC2046 # paths without spaces
        rm -rf $(copies)
        lb init --repo "$T/copy" >/dev/null
        lb init --repo "$T/copy-ssh" >/dev/null
        round full "$n" $(((i + 1) / 2))
    done
    # then 2 x REPEAT more nights, each copied onto the last round's
    # copies, cold and warm alternating
    news=()
    for ((i = 1; i <= 2 * REPEAT; i++)); do
        CACHE=$( ((i % 2)) && echo cold || echo warm)
        before=$(du -sb "$S" | cut -f1)
        night
        news+=($(($(du -sb "$S" | cut -f1) - before)))
        round incr "$n" $(((i + 1) / 2))
    done
    lb verify --repo "$T/copy" >/dev/null || die "the copy does not verify"
    lb verify --repo "$T/copy-ssh" >/dev/null || die "the copy over ssh does not verify"
    # shellcheck disable=SC2046 # paths without spaces
    rm -rf $(copies)
    new=$(median "${news[@]}")
    for cache in cold warm; do
        for via in "" -ssh; do
            for what in full incr; do
                k=$cache-$what-$n
                # shellcheck disable=SC2086 # word lists of walls
                {
                    c=$(median ${W[$k-copy$via]})
                    r=$(median ${W[$k-rsync$via]})
                    s=$(median ${W[$k-rsync$via-sync]})
                    cc=$(median ${C[$k-copy$via]})
                    cr=$(median ${C[$k-rsync$via]})
                }
                if [[ $what == full ]]; then
                    label="$n nights ($(mb "$full") MB, $files files) to an empty repository"
                    target=1
                else
                    label="$n nights: one more night's backup ($(mb "$new") MB; median of $REPEAT nights)"
                    target=3
                fi
                [[ -z $via ]] || label="$label, over ssh"
                [[ $cache == cold ]] || label="$label, warm page cache"
                ROWS[$cache]+="$label|$c|$r|$(calc "$r / $c")|$s|$(calc "$s / $c")|>= $target $(verdict "$(calc "$r / $c")" ">=" "$target")|$cc / $cr"$'\n'
            done
        done
    done
done

finds=$(printf '%s; ' "${FINDS[@]}")
finds=${finds%; }
HEAD="copy|livebackup copy, s|rsync -a, s|ratio|rsync -a + sync, s|ratio|target (rsync -a)|CPU s, copy / rsync -a"
mapfile -t rows < <(printf '%s' "${ROWS[cold]}")
table "## livebackup copy against rsync -a of the repository, cold (page cache dropped before every run; medians of $REPEAT alternating runs, local to local and to a local directory over ssh)" \
    "$HEAD" "${rows[@]}"
mapfile -t rows < <(printf '%s' "${ROWS[warm]}")
table "## The same, warm page cache (the source's chunks read just before every run: a shortcut, not what a nightly copy meets)" \
    "$HEAD" "${rows[@]}"
note "Ratio: rsync's time over copy's (above 1: copy is faster). The source is a full backup of a ${SIZE_GIB} GiB ext4 image (bench/lib.sh, make_image) and nights of 2% random 64 KiB rewrites."
note "Cold: \`sync; echo 3 >/proc/sys/vm/drop_caches\` before every timed run of either tool (the whole machine's page cache, dentries and inodes; both repositories' files read from disk). Cold rounds and nights alternate with warm ones. As a check, \`find SRC -type f | wc -l\`: $finds."
note "Over ssh: to a private sshd on 127.0.0.1 (OpenSSH's default cipher, $SSH_CIPHER), copy's destination a \`backupd serve\` run by sshd, rsync's an \`rsync --server\`; + sync is \`ssh ... sync -f\` after rsync. The destination's backupd re-hashes every chunk (an ssh client is not trusted) after the source checked it: here both, and both ends of ssh, on the same CPUs. CPU: this side's (copy, its source backupd and ssh client; rsync and its ssh client), not sshd's or what it runs."
note "copy checks every chunk it reads in the source (decompressed and re-hashed: PROTOCOL.md, GET_STORED) and makes every chunk and the manifest durable before it returns; rsync -a does neither (rsync -a + sync is durable, unchecked)."
((DISTURBS == 0)) || note "$DISTURBS measurement(s) ran while the rest of the machine was busy (more than 15% of its CPUs): figures from a loaded machine."
bench_report "bench/copy.sh: livebackup copy against rsync -a"
