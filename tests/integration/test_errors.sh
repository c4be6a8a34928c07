#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Errors a user can act on: each bad situation fails (never a usage error
# or a crash) with a message that says what is wrong, and leaves the
# repository usable.
. "$(dirname "$0")/lib.sh"

R=$T/repo
mkimage "$T/a.qcow2" qcow2 32

# Repository missing, not a repository, init refusals.
expect_fail "no repository at $T/nope.*livebackup init" \
    livebackup list --repo "$T/nope"
mkdir "$T/foreign" && echo data >"$T/foreign/file"
expect_fail "not a livebackup repository" livebackup list --repo "$T/foreign"
expect_fail "not empty and is not a livebackup repository" \
    livebackup init --repo "$T/foreign"
run_ok livebackup init --repo "$R"
expect_fail "already a livebackup repository" livebackup init --repo "$R"
rc=0
livebackup init --repo "$T/w" --window-size 3M 2>"$T/err" || rc=$?
[[ $rc -eq 2 ]] && grep -q "power of two" "$T/err" || fail "bad --window-size"
ok "a bad window size is a usage error"

# A repository whose format is newer than this livebackup.
cp -a "$R" "$T/newer"
sed -i 's/^livebackup-repository 1$/livebackup-repository 9/' "$T/newer/config"
expect_fail "format version 9, newer than this livebackup supports.*upgrade" \
    livebackup list --repo "$T/newer"

# Missing and unreadable images; a layer not in the chain.
expect_fail "cannot read image $T/missing.qcow2" \
    livebackup backup-image --repo "$R" --name x --disk vda="$T/missing.qcow2"
head -c 1M /dev/urandom >"$T/garbage.qcow2"
printf 'QFI\xfb' | dd of="$T/garbage.qcow2" conv=notrunc status=none
expect_fail "cannot read image $T/garbage.qcow2" \
    livebackup backup-image --repo "$R" --name x --disk vda="$T/garbage.qcow2"
overlay "$T/o.qcow2" "$T/a.qcow2" qcow2
expect_fail "has made no backup of x.*without --since" \
    livebackup backup-image --repo "$R" --name x --disk vda="$T/o.qcow2" \
    --since "$T/a.qcow2"
run_ok livebackup backup-image --repo "$R" --name x --disk vda="$T/a.qcow2"
mkimage "$T/other.qcow2" qcow2 32
expect_fail "not in the backing chain of $T/o.qcow2" \
    livebackup backup-image --repo "$R" --name x --disk vda="$T/o.qcow2" \
    --since "$T/other.qcow2"
expect_fail "is the image itself" \
    livebackup backup-image --repo "$R" --name x --disk vda="$T/o.qcow2" \
    --since "$T/o.qcow2"
# An incremental on a disk of another size: refused, nothing committed.
qemu-img create -q -f qcow2 "$T/big.qcow2" 64M
overlay "$T/bo.qcow2" "$T/big.qcow2" qcow2
expect_fail "differs from the parent's.*incremental is not possible" \
    livebackup backup-image --repo "$R" --name x --disk vda="$T/bo.qcow2" \
    --since "$T/big.qcow2"
run_ok livebackup list --repo "$R" --name x --json
[[ $(grep -c '"event":"backup"' "$T/out") -eq 1 ]] || fail "a failed backup was committed"
ok "failed backups leave nothing behind"

# The parent of an image incremental (issue 10, item 3) is the backup this
# host made, never merely the set's newest: another host's backup of the
# same name (or a junk commit, or one of ours whose acknowledgement was
# lost) makes it ambiguous, an error; --parent ID names it.
snapshot_raw "$T/o.qcow2" "$T/truth-o.raw"
xid=$(livebackup list --repo "$R" --name x --json | jq -r .id)
expect_fail "has made no backup of x" env LIVEBACKUP_STATE_DIR="$T/host2" \
    livebackup backup-image --repo "$R" --name x --disk vda="$T/o.qcow2" \
    --since "$T/a.qcow2"
mkimage "$T/host2.qcow2" qcow2 32
LIVEBACKUP_STATE_DIR="$T/host2" run_ok livebackup backup-image --json \
    --repo "$R" --name x --disk vda="$T/host2.qcow2"
hid=$(json_field "$T/out" summary id)
expect_fail "x has a newer backup \($hid\) than the last this host made \($xid\).*ambiguous.*--parent ID" \
    livebackup backup-image --repo "$R" --name x --disk vda="$T/o.qcow2" \
    --since "$T/a.qcow2"
run_ok livebackup backup-image --json --repo "$R" --name x \
    --disk vda="$T/o.qcow2" --since "$T/a.qcow2" --parent "$xid"
[[ $(json_field "$T/out" summary parent) == "$xid" ]] || fail "--parent not taken"
run_ok livebackup restore-image --repo "$R" --name x --disk vda --to "$T/ro.raw"
same_image "$T/ro.raw" raw "$T/truth-o.raw" raw
ok "another host's backup of x: an ambiguous parent is refused; --parent ID restores identical"
expect_fail "is not a backup of nobody" livebackup backup-image --repo "$R" \
    --name nobody --disk vda="$T/o.qcow2" --since "$T/a.qcow2" --parent "$xid"
# An acknowledgement lost (backupd killed after its commit): the next
# incremental does not guess.
LIVEBACKUP_FAULT=backupd:after-commit expect_fail "killed|connection closed" \
    livebackup backup-image --repo "$R" --name x --disk vda="$T/o.qcow2" \
    --since "$T/a.qcow2"
expect_fail "x has a newer backup .* than the last this host made" \
    livebackup backup-image --repo "$R" --name x --disk vda="$T/o.qcow2" \
    --since "$T/a.qcow2"
run_ok livebackup list --repo "$R" --name x --json
[[ $(grep -c '"event":"backup"' "$T/out") -eq 4 ]] || fail "backups of x: $(cat "$T/out")"
ok "a lost acknowledgement: the next incremental refuses to guess its parent"

# Unknown names, ids, disks and times.
expect_fail "no backups of nobody" livebackup restore-image --repo "$R" \
    --name nobody --disk vda --to "$T/r.raw"
expect_fail "no backup 20200101-000000-abcd of x" livebackup restore-image \
    --repo "$R" --name x --backup 20200101-000000-abcd --disk vda --to "$T/r.raw"
expect_fail "neither a backup id, 'latest', nor a time" livebackup \
    restore-image --repo "$R" --name x --backup yesterday --disk vda --to "$T/r.raw"
expect_fail "no backup of x at or before 2001-01-01 \(the first is from" \
    livebackup restore-image --repo "$R" --name x --backup 2001-01-01 \
    --disk vda --to "$T/r.raw"
expect_fail "has no disk vdz \(it has: vda\)" livebackup restore-image \
    --repo "$R" --name x --disk vdz --to "$T/r.raw"
expect_fail "no backup 20200101-000000-abcd" \
    livebackup delete --repo "$R" --backup 20200101-000000-abcd
touch "$T/exists.raw"
expect_fail "already exists.*--force" livebackup restore-image --repo "$R" \
    --name x --disk vda --to "$T/exists.raw"
run_ok livebackup restore-image --repo "$R" --name x --disk vda \
    --to "$T/exists.raw" --force
same_image "$T/exists.raw" raw "$T/a.qcow2" qcow2
ok "--force replaces an existing file"
# A directory or a fifo at --to, even with --force: refused before any
# data is read (a directory failed the rename at the end).
mkdir "$T/adir"
expect_fail "$T/adir is a directory.*--to names the image file to write, e.g. $T/adir/vda.raw" \
    livebackup restore-image --repo "$R" --name x --disk vda --to "$T/adir" --force
mkfifo "$T/afifo"
expect_fail "$T/afifo is not a regular file" \
    livebackup restore-image --repo "$R" --name x --disk vda --to "$T/afifo" --force
[[ -z $(ls -A "$T/adir") ]] || fail "a restore wrote into $T/adir: $(ls -A "$T/adir")"
ok "a directory or a fifo at --to is refused, with --force too"

# A block device (an LV a domain runs on) at --to: written in place with
# --force, raw, every byte of the disk (its holes as zeros over what the
# device held), what lies past the disk's end left alone. Before, --force
# replaced the device's node by a file and never wrote the device.
# (a disk of 64 MiB: windows without data, and windows with a few blocks)
mkimage "$T/h.qcow2" qcow2 64
run_ok livebackup backup-image --repo "$R" --name holes --disk vda="$T/h.qcow2"
run_ok livebackup restore-image --repo "$R" --name holes --disk vda --to "$T/h.raw"
size=$(stat -c %s "$T/h.raw")
head -c $((size + 1048576)) /dev/zero | tr '\0' '\252' >"$T/aa.bin"
cp "$T/aa.bin" "$T/dev.img"
loop_attach "$T/dev.img"
expect_fail "$LOOP_DEV is a block device: the restore would write over it.*add --force to write the disk onto $LOOP_DEV" \
    livebackup restore-image --repo "$R" --name holes --disk vda --to "$LOOP_DEV"
expect_fail "$LOOP_DEV is a block device: a disk is written onto one raw" \
    livebackup restore-image --repo "$R" --name holes --disk vda --to "$LOOP_DEV" \
    --force --format qcow2
hold_open "$LOOP_DEV"
expect_fail "$LOOP_DEV is open in process $HOLD_PID \((sleep|bash)\).*shut it off" \
    livebackup restore-image --repo "$R" --name holes --disk vda --to "$LOOP_DEV" --force
release_open
cmp "$LOOP_DEV" "$T/aa.bin" || fail "a refused restore wrote to the device"
run_ok livebackup restore-image --repo "$R" --name holes --disk vda --to "$LOOP_DEV" --force
cmp -n "$size" "$LOOP_DEV" "$T/h.raw" || fail "the device does not hold the disk"
cmp -i "$size:$size" "$LOOP_DEV" "$T/aa.bin" || fail "the device's bytes past the disk were written"
[[ -b $LOOP_DEV ]] || fail "$LOOP_DEV is no longer a block device"
# Thin stays thin: a device over a sparse file (a loop device here, a thin
# LV on a host) whose every block held data, restored with a disk whose
# only data is in its first window: the holes are deallocated, not
# written (or zeroed but kept allocated: BLKZEROOUT alone).
qemu-img create -q -f qcow2 "$T/thin.qcow2" 64M
qemu-io -f qcow2 -c "write -P 7 0 64k" "$T/thin.qcow2" >/dev/null
run_ok livebackup backup-image --repo "$R" --name thin --disk vda="$T/thin.qcow2"
run_ok livebackup restore-image --repo "$R" --name thin --disk vda --to "$T/thin.raw"
head -c $((64 << 20)) /dev/urandom >"$T/thin.img"
loop_attach "$T/thin.img"
run_ok livebackup restore-image --repo "$R" --name thin --disk vda --to "$LOOP_DEV" --force
cmp "$LOOP_DEV" "$T/thin.raw" || fail "the thin device does not hold the disk"
sync "$T/thin.img"
a=$(alloc_bytes "$T/thin.img")
((a <= 8 << 20)) || fail "restored onto a loop device over a full file, $((a >> 20)) MiB of it stay allocated (the disk's data: 64 KiB)"
truncate -s $((size / 2)) "$T/small.img"
loop_attach "$T/small.img"
expect_fail "$LOOP_DEV holds $((size / 2)) bytes, the disk $size" \
    livebackup restore-image --repo "$R" --name holes --disk vda --to "$LOOP_DEV" --force
ok "restore-image onto a block device: --force and raw, not in use, large enough; every byte of the disk, nothing past it; its holes deallocated (thin stays thin)"

# A restore ended by a signal (Ctrl-C, a SIGTERM) removes its partial
# file: it stayed hidden beside the target, as large as what had been
# written, until a restore to the same path.
for how in TERM:raw INT:raw TERM:qcow2; do
    sig=${how%:*} fmt=${how#*:} rc=0
    LIVEBACKUP_FAULT_HOOK="agent:mid-restore@2:kill -$sig \$PPID" \
        livebackup restore-image --repo "$R" --name holes --disk vda \
        --to "$T/sig.$fmt" --format "$fmt" >"$T/out" 2>"$T/err" || rc=$?
    no_sanitizer_report "$T/err"
    [[ $rc -eq $((128 + $(kill -l "$sig"))) ]] ||
        fail "restore-image killed by SIG$sig ($fmt): exit $rc: $(cat "$T/err")"
    for f in "$T/sig.$fmt" "$T"/.sig.*; do
        [[ ! -e $f ]] || fail "SIG$sig left $f ($fmt)"
    done
done
ok "a restore ended by SIGTERM or SIGINT leaves no partial file (raw, qcow2)"
# A restore onto a device that fails midway cannot take back what it
# wrote: it says so. (The disk's first window is empty, zeroed on the
# device before its second, whose only chunk is damaged, is fetched.)
truncate -s 8M "$T/pw.raw"
head -c 4096 /dev/urandom | dd of="$T/pw.raw" bs=1M seek=5 conv=notrunc status=none
run_ok livebackup backup-image --json --repo "$R" --name pw --disk vda="$T/pw.raw"
pw=$(json_field "$T/out" summary id)
chunk=$(manifest_chunks "$R/backups/$pw" vda | awk '{ print $3 }' | sed -n 1p)
[[ -n $chunk ]] || fail "backup $pw lists no chunk"
flip_bytes "$(chunk_file "$R" "$chunk")" 40 4
truncate -s 8M "$T/pwdev.img"
loop_attach "$T/pwdev.img"
expect_fail "$LOOP_DEV is partly written: the restore did not finish.*chunk [0-9a-f]+ .* is damaged" \
    livebackup restore-image --repo "$R" --name pw --disk vda --to "$LOOP_DEV" --force
run_ok livebackup delete --repo "$R" --backup "$pw"
ok "a restore onto a device that fails says the device is partly written"
# A destination whose directory is missing: the error names the path asked
# for and the missing directory (not only the partial file's name).
for f in raw qcow2; do
    expect_fail "livebackup: error: cannot restore to $T/nodir/r.$f: $T/nodir: No such file or directory" \
        livebackup restore-image --repo "$R" --name x --disk vda --format $f \
        --to "$T/nodir/r.$f"
done
ok "a missing destination directory is named, raw and qcow2"

# A locked repository: a clear error naming the holder, not a hang.
echo "an exclusive operation (pid 4242 on testhost since 2026-01-01T00:00:00Z)" >"$R/lock"
hold_lock -x "$R/lock"
expect_fail "locked by an exclusive operation \(pid 4242 on testhost" \
    timeout 20 livebackup backup-image --repo "$R" --name x --disk vda="$T/a.qcow2"
start=$(date +%s%N)
expect_fail "locked by" timeout 20 livebackup backup-image --lock-wait 2 \
    --repo "$R" --name x --disk vda="$T/a.qcow2"
waited_ms=$((($(date +%s%N) - start) / 1000000))
[[ $waited_ms -ge 2000 ]] || fail "--lock-wait 2 waited $waited_ms ms"
ok "--lock-wait waits, then fails clearly"
release_lock
# Two writers at once are fine (shared lock).
hold_lock -s "$R/lock"
run_ok livebackup backup-image --repo "$R" --name y --disk vda="$T/a.qcow2"
ok "a backup runs beside another writer"
expect_fail "in use by running backups" livebackup delete --repo "$R" \
    --backup "$(livebackup list --repo "$R" --json | sed -n 1p | sed 's/.*"id":"\([^"]*\)".*/\1/')"
release_lock

# A damaged chunk: restore refuses to write bad data and names the backup.
mkimage "$T/d.qcow2" qcow2 16
run_ok livebackup backup-image --json --repo "$R" --name dmg --disk vda="$T/d.qcow2"
dmg=$(json_field "$T/out" summary id)
# a chunk of dmg's that no other backup names
for f in "$R"/backups/*; do
    [[ $f == */$dmg ]] || manifest_chunks "$f" vda
done | awk '{ print $3 }' >"$T/others"
chunk=$(manifest_chunks "$R/backups/$dmg" vda | awk '{ print $3 }' | grep -vxF -f "$T/others" | sed -n 1p || true)
[[ -n $chunk ]] || fail "backup $dmg has no chunk of its own"
chunk=$(chunk_file "$R" "$chunk")
flip_bytes "$chunk" 40 4
expect_fail "backup [0-9a-f-]+, disk vda: chunk [0-9a-f]+ .* is damaged" \
    livebackup restore-image --repo "$R" --name dmg --disk vda --to "$T/dmg.raw"
[[ ! -e $T/dmg.raw ]] || fail "a damaged restore left its output"
ls "$T"/.dmg.raw.* 2>/dev/null && fail "a damaged restore left its temp file"
expect_fail "DAMAGED backup [0-9a-f-]+ \(dmg\) disk vda" livebackup verify --repo "$R"
rm "$chunk"
expect_fail "chunk\(s\) missing from the repository" \
    livebackup restore-image --repo "$R" --name dmg --disk vda --to "$T/dmg.raw"
run_ok livebackup restore-image --repo "$R" --name x --disk vda --to "$T/x.raw"
same_image "$T/x.raw" raw "$T/a.qcow2" qcow2
ok "other backups still restore"

# A chunk lookup that fails (QUERY: backupd answers it on a thread of
# its own while its session reads on): the backup ends with the store's
# error, nothing is committed, and the retry succeeds once it is repaired.
run_ok livebackup init --repo "$T/rq"
head -c $((12 << 20)) /dev/urandom >"$T/q.raw"
run_ok livebackup backup-image --repo "$T/rq" --name q --disk vda="$T/q.raw"
qdir=$(dirname "$(find "$T/rq/chunks" -type f | sed -n 1p)")
mv "$qdir" "$qdir.aside" && echo not-a-directory >"$qdir"
expect_fail "chunks/.*: Not a directory" \
    livebackup backup-image --repo "$T/rq" --name q --disk vda="$T/q.raw"
run_ok livebackup list --repo "$T/rq" --json
[[ $(grep -c '"id"' "$T/out") -eq 1 ]] || fail "a failed lookup committed: $(cat "$T/out")"
rm "$qdir" && mv "$qdir.aside" "$qdir"
run_ok livebackup backup-image --repo "$T/rq" --name q --disk vda="$T/q.raw"
run_ok livebackup verify --repo "$T/rq"
ok "a failed chunk lookup ends the backup with its error, nothing committed"

# libnbd is loaded when an image is first opened (agent/client/nbd_dl.c):
# without it (an empty file bind-mounted over it, in a mount namespace of
# its own), what needs no image works, and a backup of an image fails with
# the package to install, nothing committed. The sanitized build links it
# at start by design (agent/CMakeLists.txt): there it must be linked.
libnbd=$(readlink -f "$(ldconfig -p | awk '$1 == "libnbd.so.0" { print $NF; exit }')")
[[ -f $libnbd ]] || fail "libnbd.so.0 is not installed"
needed=$(readelf -d "$LIVEBACKUP")
if [[ $needed == *"[libnbd.so.0]"* ]]; then
    [[ $needed == *"[libasan.so."* ]] ||
        fail "only the sanitized build links libnbd"
    ok "the sanitized build links libnbd (so no test without it)"
else
    without_nbd() {
        unshare -m bash -c 'mount --bind /dev/null "$1" && shift && exec "$@"' \
            _ "$libnbd" "$@"
    }
    run_ok livebackup init --repo "$T/nonbd"
    without_nbd "$LIVEBACKUP" list --repo "$T/nonbd" >"$T/out" 2>"$T/err" ||
        fail "list without libnbd: $(cat "$T/err")"
    rc=0
    without_nbd "$LIVEBACKUP" backup-image --repo "$T/nonbd" --name x \
        --disk vda="$T/a.qcow2" >"$T/out" 2>"$T/err" || rc=$?
    [[ $rc -eq 1 ]] || fail "backup-image without libnbd: exit $rc: $(cat "$T/err")"
    grep -q "cannot load libnbd.so.0 for reading or writing an image" "$T/err" &&
        grep -q "apt install libnbd0" "$T/err" ||
        fail "backup-image without libnbd: $(cat "$T/err")"
    run_ok livebackup list --repo "$T/nonbd" --json
    ! grep -q '"id"' "$T/out" || fail "a backup without libnbd committed: $(cat "$T/out")"
    ok "without libnbd: list works, an image backup says which package to install"
fi

# Usage errors are usage errors (exit 2).
rc=0
livebackup backup-image --repo "$R" >/dev/null 2>&1 || rc=$?
[[ $rc -eq 2 ]] || fail "usage error exit status $rc"
ok "usage errors exit 2"
