#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# livebackup mount: backups as read-only files (FUSE), DIR/NAME/BACKUP/DISK,
# equal to restore-image; with --fs the ext4 filesystems inside the disks
# (the whole disk, or GPT and MBR partitions) mounted by fuse2fs, a file
# copied out byte for byte; a server that stalls under a read is given up
# on and the read asked again on a new session; umount leaves no mount and
# no process behind,
# and never touches another program's FUSE mount. No loop device or
# kernel NBD client is used.
. "$(dirname "$0")/lib.sh"

R=$T/repo
run_ok livebackup init --repo "$R"
# Two ext4 filesystems with known files: one for a whole disk, one put
# into partition 1 of a GPT disk and partition 2 of an MBR disk.
mkdir -p "$T/src/sub"
echo "hello from a backup" >"$T/src/sub/hello.txt"
random_file "$T/src/rand.bin" 3
mkfs.ext4 -q -F -d "$T/src" "$T/fs.img" 40M
cp --sparse=always "$T/fs.img" "$T/whole.raw"
truncate -s 96M "$T/whole.raw"
truncate -s 96M "$T/gpt.raw"
printf 'label: gpt\nstart=2048, size=81920, type=L\nstart=86016, size=40960, type=L\n' |
    sfdisk -q "$T/gpt.raw"
dd if="$T/fs.img" of="$T/gpt.raw" bs=512 seek=2048 conv=notrunc,sparse status=none
truncate -s 96M "$T/mbr.raw"
printf 'label: dos\nstart=2048, size=20480, type=83\nstart=22528, size=81920, type=83\n' |
    sfdisk -q "$T/mbr.raw"
dd if="$T/fs.img" of="$T/mbr.raw" bs=512 seek=22528 conv=notrunc,sparse status=none
run_ok livebackup backup-image --json --repo "$R" --name disks \
    --disk vda="$T/whole.raw" --disk vdb="$T/gpt.raw" --disk vdc="$T/mbr.raw"
id=$(json_field "$T/out" summary id)
ok "a backup ($id) of three disks: ext4 on the whole disk, in a GPT and an MBR partition"

M=$T/mnt
mkdir -p "$M"
lb_watch_log "$T/mount.err"
# unmount_all: what a failed test leaves mounted goes (deepest first)
unmount_all() {
    livebackup umount "$M" >/dev/null 2>&1 || true
    # (a build that mounted over the file: its umount may not find it)
    livebackup umount "$T/afile" >/dev/null 2>&1 || umount "$T/afile" 2>/dev/null || true
}
trap 'rc=$?; unmount_all; lb_cleanup "$rc"' EXIT

run_ok livebackup mount --repo "$R" "$M"
for d in vda vdb vdc; do
    [[ -f $M/disks/$id/$d ]] || fail "no $M/disks/$id/$d: $(find "$M" | head)"
done
rm -f "$T/ref.raw"
run_ok livebackup restore-image --repo "$R" --name disks --disk vdb --to "$T/ref.raw"
cmp "$M/disks/$id/vdb" "$T/ref.raw" || fail "the mounted disk differs from restore-image"
[[ $(stat -c %s "$M/disks/$id/vdb") == $((96 << 20)) ]] || fail "size of the mounted disk"
if { echo x >>"$M/disks/$id/vda"; } 2>/dev/null; then fail "a mounted disk is writable"; fi
run_ok livebackup umount "$M"
grep -q " $M " /proc/self/mountinfo && fail "still mounted"
ok "mount: the disks are read-only files equal to restore-image"

# A repository server that stalls under a read of the mount (the disk's
# backupd stopped by a hook at its third chunk sent, once): the mount
# gives up on that session after LIVEBACKUP_IO_TIMEOUT (3 s here), says
# so, and reads again on a new one (the read it stalled, or the next: the
# kernel's reads ahead make it either); the file reads exact. In the
# foreground, to see what it says. Bounded: without the stall limit the read
# waits for ever (timeout ends cmp at 60 s, and the check fails).
hook=$(lb_stop_hook backupd:chunk-sent@3)
LIVEBACKUP_IO_TIMEOUT=3 LIVEBACKUP_FAULT_HOOK=$hook \
    livebackup mount --foreground --repo "$R" "$M" 2>"$T/mstall.err" &
MOUNT_PID=$!
lb_track "$MOUNT_PID"
mounted() {
    lb_alive "$MOUNT_PID" || fail "livebackup mount exited: $(tail -n 5 "$T/mstall.err")"
    [[ -f $M/disks/$id/vdb ]]
}
wait_until 60 "the mount in the foreground" mounted
timeout 60 cmp "$M/disks/$id/vdb" "$T/ref.raw" ||
    fail "a read of the mount through a stalled server: $(tail -n 5 "$T/mstall.err")"
[[ -s $T/stopped.pid ]] || fail "the hook did not stop the disk's backupd"
! lb_alive "$(cat "$T/stopped.pid")" || fail "the stopped backupd was left behind"
grep -Eq "took and sent nothing for 3 s: gave up on it; (reading again on a new session|the next read connects again)" "$T/mstall.err" ||
    fail "the mount did not say it gave up: $(tail -n 5 "$T/mstall.err")"
run_ok livebackup umount "$M"
wait_until 30 "the foreground mount to end" eval "! lb_alive $MOUNT_PID"
ok "a stalled server under a read of the mount: given up on, read again on a new session, exact"

# --fs, its output to a pipe: the pipe ends with the command (neither the
# mount's process nor what it started, a backupd and fuse2fs, holds it;
# the reader gives up after 60 s). test_mount_xfs sees the warnings it
# prints while it starts.
{
    livebackup mount --repo "$R" --name disks --fs "$M"
    echo "exit $?"
} 2>&1 | { timeout 60 cat >"$T/mount.out" || echo "the output stayed open" >>"$T/mount.out"; }
[[ $(cat "$T/mount.out") == "exit 0" ]] || fail "mount --fs, its output to a pipe: $(cat "$T/mount.out")"
for fs in vda.fs vdb.p1 vdc.p2; do
    cmp "$M/disks/$id/$fs/rand.bin" "$T/src/rand.bin" ||
        fail "$fs/rand.bin differs"
    [[ $(cat "$M/disks/$id/$fs/sub/hello.txt") == "hello from a backup" ]] ||
        fail "$fs/sub/hello.txt"
done
[[ ! -e $M/disks/$id/vdb.p2 && ! -e $M/disks/$id/vdc.p1 ]] ||
    fail "a partition without a filesystem got a mountpoint"
mounts=$(grep -c " $M" /proc/self/mountinfo)
[[ $mounts == 4 ]] || fail "$mounts mounts under $M: $(grep " $M" /proc/self/mountinfo)"
ok "--fs: ext4 on the whole disk, in GPT partition 1 and MBR partition 2, files read right"

run_ok livebackup umount "$M"
! grep -q " $M" /proc/self/mountinfo || fail "left mounted: $(grep " $M" /proc/self/mountinfo)"
pids=$(pgrep -f "fuse2fs $M|livebackup mount --repo $R" || true)
[[ -z $pids ]] || fail "processes left: $(ps -o pid,args -p "${pids//$'\n'/,}")"
[[ -z $(ls -A "$M") ]] || fail "files left in $M: $(ls -A "$M")"
ok "umount: no mount and no process left"

# The mount's warnings reach the command's stderr even when the command
# reads them late: a hook holds it 1 s before it reads, so the mount has
# warned (no fuse2fs on PATH) and said it is ready by then. The mount's
# process, which goes on reading its stderr's pipe for its log once the
# command has returned, read them first and they were lost (now and then
# in test_mount_xfs; always with the hook).
mkdir -p "$T/bin"
ln -s "$(command -v livebackup)" "$(command -v backupd)" "$T/bin/"
LIVEBACKUP_FAULT_HOOK='mount:relay:/bin/sleep 1' PATH=$T/bin \
    run_ok livebackup mount --repo "$R" --name disks --fs "$M"
n=$(grep -c "fuse2fs failed" "$T/err" || true)
[[ $n == 3 ]] || fail "$n of 3 warnings reached the command: $(cat "$T/err")"
msg=$(grep -m 1 "fuse2fs failed" "$T/err")
run_ok livebackup umount "$M"
ok "the mount's warnings reach the command, read late: $msg"

expect_fail "no livebackup mount at or below $M" livebackup umount "$M"

# umount of a directory that also holds another program's FUSE mount (a
# user's fuse2fs beside ours, in a directory name with a space): only ours
# goes, theirs stays mounted and readable.
P="$T/top dir"
mkdir -p "$P/backups" "$P/own"
unmount_all() {
    livebackup umount "$M" >/dev/null 2>&1 || true
    livebackup umount "$P" >/dev/null 2>&1 || true
    fusermount3 -u "$P/own" 2>/dev/null || true
}
fuse2fs -o ro "$T/fs.img" "$P/own" >/dev/null 2>&1 || fail "fuse2fs of a user's own mount"
run_ok livebackup mount --repo "$R" --name disks --fs "$P/backups"
[[ -f $P/backups/disks/$id/vda.fs/sub/hello.txt ]] || fail "--fs under '$P/backups'"
run_ok livebackup umount "$P"
! grep -q " ${P// /\\040}/backups" /proc/self/mountinfo ||
    fail "ours left mounted: $(grep " ${P// /\\040}" /proc/self/mountinfo)"
[[ $(cat "$P/own/sub/hello.txt" 2>&1) == "hello from a backup" ]] ||
    fail "the user's own FUSE mount under $P was unmounted: $(grep " ${P// /\\040}" /proc/self/mountinfo)"
expect_fail "no livebackup mount at or below $P" livebackup umount "$P"
fusermount3 -u "$P/own"
ok "umount leaves another program's FUSE mount below DIR alone (a path with a space)"
# A mount point whose mountinfo line is long: 1,250 spaces in five
# directory names are 5,000 bytes there (each written \040).
sp=$(printf '%250s' '')
LP="$T/$sp/$sp/$sp/$sp/$sp"
mkdir -p "$LP"
unmount_all() {
    livebackup umount "$M" >/dev/null 2>&1 || true
    livebackup umount "$LP" >/dev/null 2>&1 || true
    # what a umount that cannot read the line left (deepest first)
    local mp
    P5=${LP// /\\040} awk 'index($5, ENVIRON["P5"]) == 1 { print length($5), $5 }' /proc/self/mountinfo |
        sort -rn | while read -r _ mp; do fusermount3 -u "$(printf '%b' "$mp")" || true; done
}
run_ok livebackup mount --repo "$R" --name disks --fs "$LP"
[[ $(cat "$LP/disks/$id/vda.fs/sub/hello.txt") == "hello from a backup" ]] || fail "--fs under a long path"
run_ok livebackup umount "$LP"
n=$(grep -c " $T/\\040" /proc/self/mountinfo || true)
[[ $n == 0 ]] || fail "$n mounts left under the long path"
[[ -z $(ls -A "$LP") ]] || fail "files left in the long path: $(ls -A "$LP")"
pids=$(pgrep -f "fuse2fs $LP" || true)
[[ -z $pids ]] || fail "fuse2fs left running: $pids"
rm -r "${T:?}/$sp"
ok "mount --fs and umount at a mount point of 1,250 spaces (5,000 bytes in mountinfo)"
expect_fail "no backups of nosuch" livebackup mount --repo "$R" --name nosuch "$M"
! grep -q " $M" /proc/self/mountinfo || fail "a failed mount left a mount"
# A file as the mount point: FUSE mounted over it (the file then read as
# I/O errors until umount) and mount said nothing.
echo keep >"$T/afile"
expect_fail "$T/afile is not a directory.*mkdir one" livebackup mount --repo "$R" "$T/afile"
! grep -qF " $T/afile " /proc/self/mountinfo || fail "mount went over the file $T/afile"
[[ $(cat "$T/afile") == keep ]] || fail "the file under the refused mount point reads $(cat "$T/afile")"
ok "a file as the mount point is refused, nothing mounted over it"
