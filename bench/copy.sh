#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bench/copy.sh: livebackup copy against rsync -a of the same repository
# files. Run by hand; prints the figures and writes them to
# bench/results-copy.md. Not a test: nothing fails because a target is
# missed.
#
#   bench/copy.sh [--nights N,M...] [--encryption repokey,none] [--files N]
#                 [common options, see --help]
#
# For each encryption mode in --encryption (default repokey, the default
# of init and the headline, then none), a source repository gets a full
# backup-image of bench/lib.sh's ext4 test image (--size GIB, default 1
# here), then nights of incrementals, each changing about 2% of the image
# (random 64 KiB writes, incompressible). At each size in --nights
# (default 30: a month of nightly backups), in the same run, alternating
# which goes first:
#   - to an empty repository: `livebackup copy` of every backup, against
#     `rsync -a` of the repository's files (and `rsync -a` then `sync -f`,
#     since copy returns only once every chunk and manifest is durable);
#   - after one more night's backup: the copy of that backup into the
#     copy, against `rsync -a` of the repository onto the rsync'd one
#     (the same change: its new chunks, its manifest, seq); --repeat
#     nights, one after the other, each measured once.
# Then, with --files N (default 100000; 0: not measured), the same source
# gets a stand-in set whose small chunks give it about N files, the count
# of a real repository (see standin_images below), and the one-more-night
# copies are measured again: rsync walks every file, copy reads only the
# new backup.
# The same again with the destination over ssh (what an off-site push
# is), to a private sshd on 127.0.0.1 (bench/lib.sh, bench_sshd; OpenSSH's
# default cipher, named in the results) as a user of its own that owns the
# destinations (bench_ssh_user; not root, whose ~/.bashrc on a development
# machine is no backup server's): `livebackup copy --to ssh://...`
# against `rsync -a -e ssh` (and then `ssh ... sync -f`) through the same
# sshd and key. There the destination's backupd checks what it receives
# (an ssh client is not trusted): an unencrypted chunk is re-hashed after
# the source checked it, so on one host both checks, and both ends of
# ssh, share its CPUs.
# It needs about 8 times the largest source's size free in --workdir (30
# nights of a 1 GiB image: a 1.7 GB source, about 14 GB in all), and
# about 25 minutes at the defaults.
# The destinations (both tools') are on a journaled ext4 of their own,
# loop-mounted (--dest-fs ext4, the default; needs root and a loop
# device), or in --workdir (--dest-fs workdir).
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
NIGHTS_AT=30
ENCS=repokey,none
STANDIN_FILES=100000
DEST_FS=ext4
bench_opt() {
    case $1 in
    --dest-fs) DEST_FS=${2:?--dest-fs needs a value}; BENCH_USED=2 ;;
    --nights) NIGHTS_AT=${2:?--nights needs a value}; BENCH_USED=2 ;;
    --encryption) ENCS=${2:?--encryption needs a value}; BENCH_USED=2 ;;
    --files) STANDIN_FILES=${2:?--files needs a value}; BENCH_USED=2 ;;
    esac
}
bench_parse "$@"
[[ $NIGHTS_AT =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--nights wants counts, e.g. 7,30"
[[ $DEST_FS == ext4 || $DEST_FS == workdir ]] || die "--dest-fs wants ext4 or workdir"
[[ $ENCS =~ ^(repokey|none)(,(repokey|none))*$ ]] || die "--encryption wants repokey and/or none, e.g. repokey,none"
IFS=, read -ra MODES <<<"$ENCS"
if ! [[ $STANDIN_FILES =~ ^[0-9]+$ ]] || ((STANDIN_FILES != 0 && STANDIN_FILES < 20000)); then
    die "--files wants 0 (no stand-in set) or at least 20000"
fi
IFS=, read -ra AT <<<"$NIGHTS_AT"
mapfile -t AT < <(printf '%s\n' "${AT[@]}" | sort -n -u)
bench_setup
command -v rsync >/dev/null || die "rsync is not installed (scripts/deps.sh installs it)"
[[ -w /proc/sys/vm/drop_caches ]] ||
    die "dropping the page cache (the cold rows) needs root: /proc/sys/vm/drop_caches"
# The destinations: a journaled ext4 of their own (mkfs.ext4's defaults,
# in a sparse file in the work directory, loop-mounted on D), what a
# backup server's disk has; --dest-fs workdir: in the work directory.
# Why: this machine's root filesystem is an ext4 without a journal, where
# ext4 passes over every inode freed in the last minute (six if its
# inode table block is still dirty) one by one when it allocates one, and each round
# deletes the previous round's copies right before: the allocations then
# cost by where each tool's inodes land, not by the tools.
_dest_umount() { mountpoint -q "$D" && umount "$D"; }
DEST_GIB=$((SIZE_GIB * 12 + 8)) # sparse: room for the six copies
if [[ $DEST_FS == ext4 ]]; then
    D=$T/dest
    mkdir -p "$D"
    # sparse; its inode tables and journal written now, not by the
    # kernel's lazy init thread during the measurements
    truncate -s "${DEST_GIB}G" "$T/dest.img"
    mkfs.ext4 -q -F -L lbbench-dest -E lazy_itable_init=0,lazy_journal_init=0 "$T/dest.img" ||
        die "mkfs.ext4 of the destination failed"
    mount -o loop "$T/dest.img" "$D" || die "cannot loop-mount the destination's filesystem ($T/dest.img)"
    bench_on_exit _dest_umount
    chmod 755 "$D"
else
    D=$T
fi
# the destination over ssh: a shell for rsync and for copy's backupd
bench_sshd "$T/ssh"
echo "restrict $(cat "$T/ssh/user_key.pub")" >"$T/ssh/authorized_keys"
bench_ssh_user "$T/ssh"
SSH_TO=$SSH_USER@127.0.0.1
RSYNC_E="$SSH_CMD -p $SSH_PORT"

PRE=$IMG/ext4-${SIZE_GIB}g
make_image "$SIZE_GIB" "$PRE" 0
VSIZE=$((SIZE_GIB << 30))
S=$T/src

# ssh_true USER: seconds of `ssh USER@127.0.0.1 true` (the notes compare
# the ssh user's with root's)
ssh_true() {
    local t0
    t0=$(now)
    $SSH_CMD -p "$SSH_PORT" "$1@127.0.0.1" true </dev/null || die "ssh $1@127.0.0.1 true failed"
    calc "$(now) - $t0" 3
}

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
        settle
        find "$S/chunks" -type f -exec cat {} + >/dev/null
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
# page cache as CACHE says (cold, warm); walls into
# W[MODE-CACHE-WHAT-N-tool] (MODE: the repositories' encryption),
# CPU times into C[...] (over ssh: this side's only, ssh client included;
# sshd and what it runs are not counted).
TOOLS=(copy rsync rsync-sync copy-ssh rsync-ssh rsync-ssh-sync)
declare -A W C
round() {
    local what=$MODE-$CACHE-$1 n=$2 i=$3 order tool
    order=("${TOOLS[@]}")
    ((i % 2)) || mapfile -t order < <(printf '%s\n' "${TOOLS[@]}" | tac)
    for tool in "${order[@]}"; do
        case $tool in
        copy) timed env -u LIVEBACKUP_PASSPHRASE LIVEBACKUP_BACKUPD="$BACKUPD" "$LB" copy --from "$S" --to "$D/copy" ;;
        rsync) timed rsync -a "$S/" "$D/rsync/" ;;
        rsync-sync) timed sh -c 'rsync -a "$1" "$2" && sync -f "$2"' sh "$S/" "$D/rsync-sync/" ;;
        copy-ssh)
            timed env -u LIVEBACKUP_PASSPHRASE LIVEBACKUP_BACKUPD="$BACKUPD" "$LB" copy --from "$S" \
                --to "ssh://$SSH_TO:$SSH_PORT$D/copy-ssh" --rsh "$SSH_CMD" --remote-backupd "$BACKUPD"
            ;;
        rsync-ssh) timed rsync -a -e "$RSYNC_E" "$S/" "$SSH_TO:$D/rsync-ssh/" ;;
        rsync-ssh-sync)
            # shellcheck disable=SC2016 # expanded by sh -c
            timed sh -c 'rsync -a -e "$1" "$2" "$3:$4" && $1 "$3" sync -f "$4"' sh \
                "$RSYNC_E" "$S/" "$SSH_TO" "$D/rsync-ssh-sync/"
            ;;
        esac
        W[$what-$n-$tool]+="$WALL "
        C[$what-$n-$tool]+="$CPU "
        log "$n, $what, $tool $i: $WALL s (CPU $CPU s)"
    done
}
copies() { echo "$D/copy" "$D/rsync" "$D/rsync-sync" "$D/copy-ssh" "$D/rsync-ssh" "$D/rsync-ssh-sync"; }

# The repositories' encryption (--encryption): MODE, its environment for
# lb (a passphrase for repokey; copy itself runs without one: it needs
# no key), and init of a destination with the source's key.
BENCH_PASS=livebackup-bench
mode_env() {
    MODE=$1
    if [[ $MODE == none ]]; then
        export LIVEBACKUP_ENCRYPTION=none
        unset LIVEBACKUP_PASSPHRASE
    else
        export LIVEBACKUP_ENCRYPTION=$MODE LIVEBACKUP_PASSPHRASE=$BENCH_PASS
    fi
}
init_copy() {
    if [[ $MODE == none ]]; then
        lb init --repo "$1" >/dev/null
    else
        lb init --repo "$1" --key-from "$T/src.key" >/dev/null
    fi
}
mode_label() {
    case $1 in
    repokey) echo "encrypted repositories (repokey, the default)" ;;
    none) echo "unencrypted repositories (init --encryption none)" ;;
    esac
}

# The stand-in set (--files): a repository of a month of nights of a
# 1 GiB disk has about 4,600 files, a real one (a few VMs of tens of GiB)
# hundreds of thousands, and rsync walks and compares every one of them
# on every run while copy reads only the new backup's. To give rsync the
# walk of a realistic repository without hours of backups, a second set
# ("standin") is added to the source: a 39 GiB qcow2 (10,000 windows of
# 4 MiB) with two 4 KiB blocks of a byte pattern in each window, then
# nights writing two such blocks into every window again, STANDIN_FILES
# chunk files in all (a full chunk or a DELTA per window and backup; the
# few patterns that repeat dedup). Its files are real chunks of real
# backups, small ones: it stands for the count of files, not the bytes.
STANDIN_WINDOWS=10000
# standin_image OUT [BACKING]: a qcow2 (an overlay of BACKING) with two
# 4 KiB pattern blocks at random places in every window, written with
# qemu-io (cache=unsafe: a scratch image, flushed once at exit).
standin_image() {
    if [[ -n ${2:-} ]]; then
        qemu-img create -q -f qcow2 -o cluster_size=128k,extended_l2=on -b "$2" -F qcow2 "$1"
    else
        qemu-img create -q -f qcow2 -o cluster_size=128k,extended_l2=on "$1" $((STANDIN_WINDOWS * 4))M
    fi
    awk -v n="$STANDIN_WINDOWS" -v seed="$RANDOM$RANDOM" 'BEGIN {
        srand(seed)
        for (i = 0; i < n; i++)
            for (k = 0; k < 2; k++)
                printf "write -P %d %d 4k\n", int(rand() * 256),
                    i * 4194304 + (k * 512 + int(rand() * 512)) * 4096
    }' | qemu-io -t unsafe -f qcow2 "$1" >/dev/null || die "qemu-io could not write $1"
}
# standin_images: the base and its nights (once per run, shared by the
# modes), into STANDIN (the images, oldest first).
STANDIN=()
standin_images() {
    local k nimg=$(((STANDIN_FILES + STANDIN_WINDOWS - 1) / STANDIN_WINDOWS))
    ((${#STANDIN[@]} == 0)) || return 0
    mkdir -p "$T/standin"
    log "stand-in set: a $((STANDIN_WINDOWS * 4)) MiB qcow2, $STANDIN_WINDOWS windows, $((nimg - 1)) nights of a write in every window"
    standin_image "$T/standin/0.qcow2"
    STANDIN=("$T/standin/0.qcow2")
    for ((k = 1; k < nimg; k++)); do
        standin_image "$T/standin/$k.qcow2" "${STANDIN[k - 1]}"
        STANDIN+=("$T/standin/$k.qcow2")
    done
}
# standin_backup: the stand-in set backed up into the source.
standin_backup() {
    local k
    lb backup-image --repo "$S" --name standin --disk vda="${STANDIN[0]}" >/dev/null
    for ((k = 1; k < ${#STANDIN[@]}; k++)); do
        lb backup-image --repo "$S" --name standin --disk vda="${STANDIN[k]}" \
            --since "${STANDIN[k - 1]}" >/dev/null
    done
}

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
# source_size WHAT: the source's bytes into full and its files into
# files, logged, and the check that cold is cold (find_time) into FINDS
source_size() {
    local fc fw
    full=$(du -sb "$S" | cut -f1)
    files=$(find "$S" -type f | wc -l)
    log "$1: $(mb "$full") MB in $files files"
    CACHE=cold fc=$(find_time)
    CACHE=warm fw=$(find_time)
    FINDS+=("$MODE, $1 ($files files): cold $fc s, warm $fw s")
}
# verify_copies: both copies that livebackup made verify
verify_copies() {
    lb verify --repo "$D/copy" >/dev/null || die "the copy does not verify"
    lb verify --repo "$D/copy-ssh" >/dev/null || die "the copy over ssh does not verify"
}
# fresh_copies: empty destinations (repositories for copy, directories
# for rsync)
fresh_copies() {
    # shellcheck disable=SC2046 # paths without spaces
    rm -rf $(copies)
    init_copy "$D/copy"
    init_copy "$D/copy-ssh"
    # over ssh: the destinations are the ssh user's (bench_ssh_user)
    chown -R "$SSH_USER:" "$D/copy-ssh"
    install -d -o "$SSH_USER" "$D/rsync-ssh" "$D/rsync-ssh-sync"
}
# incr_rounds N: 2 x REPEAT more nights, each copied onto the copies, cold
# and warm alternating; NEWS gets each night's new bytes
incr_rounds() {
    local i before
    NEWS=()
    for ((i = 1; i <= 2 * REPEAT; i++)); do
        CACHE=$( ((i % 2)) && echo cold || echo warm)
        before=$(du -sb "$S" | cut -f1)
        night
        NEWS+=($(($(du -sb "$S" | cut -f1) - before)))
        round incr "$1" $(((i + 1) / 2))
    done
}
# add_rows N LABEL [FULL_NOTE]: the table rows of size N (cold and warm,
# local and over ssh, full and incremental) where measured
add_rows() {
    local n=$1 full_label=$2 full_note=${3:-} cache via what k c r s cc cr label target new
    new=$(median "${NEWS[@]}")
    for cache in cold warm; do
        for via in "" -ssh; do
            for what in full incr; do
                k=$MODE-$cache-$what-$n
                [[ -n ${W[$k-copy$via]:-} ]] || continue
                # shellcheck disable=SC2086 # word lists of walls
                {
                    c=$(median ${W[$k-copy$via]})
                    r=$(median ${W[$k-rsync$via]})
                    s=$(median ${W[$k-rsync$via-sync]})
                    cc=$(median ${C[$k-copy$via]})
                    cr=$(median ${C[$k-rsync$via]})
                }
                if [[ $what == full ]]; then
                    label="$full_label to an empty repository$full_note"
                    target=1
                else
                    label="$full_label: one more night's backup ($(mb "$new") MB; median of $REPEAT nights)"
                    target=3
                fi
                [[ -z $via ]] || label="$label, over ssh"
                [[ $cache == cold ]] || label="$label, warm page cache"
                ROWS[$MODE-$cache]+="$label|$c|$r|$(calc "$r / $c")|$s|$(calc "$s / $c")|>= $target $(verdict "$(calc "$r / $c")" ">=" "$target")|$cc / $cr"$'\n'
            done
        done
    done
}

# an ssh command's own cost, warm and cold, as the ssh user and as root
declare -A SSHT
for ((i = 1; i <= 5; i++)); do
    for u in "$SSH_USER" root; do
        SSHT[$u-warm]+="$(ssh_true "$u") "
        if ((i <= 3)); then
            drop_caches
            SSHT[$u-cold]+="$(ssh_true "$u") "
        fi
    done
done
# shellcheck disable=SC2086 # word lists of walls
SSH_TRUE="as $SSH_USER $(median ${SSHT[$SSH_USER-warm]}) s warm, $(median ${SSHT[$SSH_USER-cold]}) s cold; as root $(median ${SSHT[root-warm]}) s warm, $(median ${SSHT[root-cold]}) s cold"
log "ssh 127.0.0.1 true: $SSH_TRUE"

for MODE in "${MODES[@]}"; do
    mode_env "$MODE"
    S=$T/src-$MODE
    log "$(mode_label "$MODE"): source a full backup of $PRE.qcow2, then ${AT[*]} nights of 2% changes"
    cp "$PRE.qcow2" "$T/base.qcow2"
    TOP=$T/base.qcow2
    NIGHT=0
    lb init --repo "$S" >/dev/null
    rm -f "$T/src.key"
    [[ $MODE == none ]] || lb key export --repo "$S" --to "$T/src.key" >/dev/null
    lb backup-image --repo "$S" --name bench --disk vda="$T/base.qcow2" >/dev/null
    for n in "${AT[@]}"; do
        while ((NIGHT < n)); do night; done # a size's extra nights count
        source_size "$n nights"
        # to empty directories, REPEAT times per page cache state, cold and
        # warm alternating; the last round's copies stay
        for ((i = 1; i <= 2 * REPEAT; i++)); do
            CACHE=$( ((i % 2)) && echo cold || echo warm)
            fresh_copies
            round full "$n" $(((i + 1) / 2))
        done
        # then 2 x REPEAT more nights, each copied onto the last round's
        # copies, cold and warm alternating
        incr_rounds "$n"
        verify_copies
        add_rows "$n" "$n nights ($(mb "$full") MB, $files files)"
    done
    if ((STANDIN_FILES)); then
        # the stand-in set beside the nights: its full copy once (cold),
        # then the nights of the 1 GiB set again, each copied
        standin_images
        standin_backup
        at=$NIGHT
        source_size "with the stand-in set"
        CACHE=cold
        fresh_copies
        round full standin 1
        incr_rounds standin
        verify_copies
        add_rows standin "$at nights and the stand-in set ($(mb "$full") MB, $files files)" " (one run)"
    fi
    # shellcheck disable=SC2046 # paths without spaces
    rm -rf $(copies) "$S"
done

finds=$(printf '%s; ' "${FINDS[@]}")
finds=${finds%; }
HEAD="copy|livebackup copy, s|rsync -a, s|ratio|rsync -a + sync, s|ratio|target (rsync -a)|CPU s, copy / rsync -a"
for MODE in "${MODES[@]}"; do
    mapfile -t rows < <(printf '%s' "${ROWS[$MODE-cold]}")
    table "## $(mode_label "$MODE"): livebackup copy against rsync -a of the repository, cold (page cache dropped before every run; medians of $REPEAT alternating runs, local to local and to a local directory over ssh)" \
        "$HEAD" "${rows[@]}"
done
for MODE in "${MODES[@]}"; do
    mapfile -t rows < <(printf '%s' "${ROWS[$MODE-warm]}")
    table "## $(mode_label "$MODE"): the same, warm page cache (the source's chunks read just before every run: a shortcut, not what a nightly copy meets)" \
        "$HEAD" "${rows[@]}"
done
note "Ratio: rsync's time over copy's (above 1: copy is faster). The source is a full backup of a ${SIZE_GIB} GiB ext4 image (bench/lib.sh, make_image) and nights of 2% random 64 KiB rewrites; each encryption mode has its own source and nights."
((STANDIN_FILES == 0)) || note "The stand-in set (rows \"and the stand-in set\"): a second set in the same source, a $((STANDIN_WINDOWS * 4)) MiB qcow2 (sparse) with two 4 KiB pattern blocks in each of its $STANDIN_WINDOWS windows and nights rewriting two in every window, so that the repository has the file count of a real one (hundreds of GiB of VMs over a month) without its bytes: its chunks are small (a few KiB stored), real chunks of real backups. It is there for rsync's walk of every file; copy reads only the new backup's manifest and chunks. Its full copy (one cold run) is a copy of many small files: the per-chunk cost (a file created, fdatasync'd and linked, each checked) against rsync's per-file cost."
note "Cold: \`sync; echo 3 >/proc/sys/vm/drop_caches\` before every timed run of either tool (the whole machine's page cache, dentries and inodes; both repositories' files read from disk). Cold rounds and nights alternate with warm ones. As a check, \`find SRC -type f | wc -l\`: $finds."
note "Over ssh: to a private sshd on 127.0.0.1 (OpenSSH's default cipher, $SSH_CIPHER) as the user $SSH_USER (shell /bin/sh, made for the run; bench/lib.sh, bench_ssh_user), who owns the destinations, as README's deployments have a user own the repository: root's shell on this machine reads a ~/.bashrc that runs \`pyenv init\`, which every ssh command would pay, either tool the same, and no backup server does (\`ssh 127.0.0.1 true\`, medians: $SSH_TRUE). copy's destination is a \`backupd serve\` run by sshd, rsync's an \`rsync --server\`; + sync is \`ssh ... sync -f\` after rsync. CPU: this side's (copy, its source backupd and ssh client; rsync and its ssh client), not sshd's or what it runs."
if [[ $DEST_FS == ext4 ]]; then
    note "Destinations: a journaled ext4 of their own (mkfs.ext4's defaults, $DEST_GIB GiB in a sparse file in the work directory, loop-mounted), what a backup server's disk has, for every destination of both tools (--dest-fs workdir: the work directory's filesystem). On this machine the work directory's filesystem is an ext4 without a journal, where ext4 passes over every inode freed in the last minute one by one when it allocates one; each round deletes the last round's copies right before it, so there the allocations cost by where each tool's inodes land. A journal also makes an fdatasync of a new file a journal commit of its own: copy makes the chunks written and waiting durable by one syncfs for up to 32 (store/FORMAT.md, \"Chunk files\")."
fi
note "What copy checks (PROTOCOL.md, GET_STORED; rsync -a checks nothing): in an encrypted repository (the default) the source's backupd checks each chunk's stored bytes against their CRC-32C, and the destination over ssh checks their sizes (neither has the key); in an unencrypted one the source decompresses and re-hashes every chunk (SHA-256 of its plaintext, the whole window), and the destination over ssh, which does not trust its client, does it again: here both, and both ends of ssh, on the same CPUs. copy makes every chunk and the manifest durable before it returns (rsync -a + sync is durable)."
note "copy runs without the key or a passphrase (it moves sealed chunks as they are); the destinations of the encrypted rows are made with \`init --key-from\` the source's exported key."
((DISTURBS == 0)) || note "$DISTURBS measurement(s) ran while the rest of the machine was busy (more than 15% of its CPUs): figures from a loaded machine."
bench_report "bench/copy.sh: livebackup copy against rsync -a"
