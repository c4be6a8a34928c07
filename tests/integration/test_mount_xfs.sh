#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# livebackup mount --fs with XFS (issue 11): Debian 12 has no FUSE driver
# for XFS, so mount mounts it with libguestfs's guestmount, whose
# appliance reads the disk file mount serves. XFS on a whole disk and in
# GPT partition 2, made without a loop device (mkfs.xfs -p, a prototype
# file), backed up with backup-image; the files read back byte for byte;
# umount leaves no mount and none of the processes it recorded (guestmount,
# its appliance's QEMU, mount's own). --fs-appliance mounts ext4 there
# too. Then the failures that cost no appliance: guestmount not
# installed, an appliance that cannot start.
. "$(dirname "$0")/lib.sh"

# The machines this runs on have a /dev/kvm under which the libguestfs
# appliance hangs before its kernel prints a line (measured: nothing in
# 10 min); under TCG it boots in 20-40 s.
export LIBGUESTFS_BACKEND_SETTINGS=${LIBGUESTFS_BACKEND_SETTINGS:-force_tcg}

R=$T/repo
run_ok livebackup init --repo "$R"
mkdir -p "$T/src/sub"
echo "hello from an XFS backup" >"$T/src/sub/hello.txt"
random_file "$T/src/rand.bin" 3
cat >"$T/proto" <<EOF
/dev/null
0 0
d--755 0 0
rand.bin ---644 0 0 $T/src/rand.bin
sub d--755 0 0
hello.txt ---644 0 0 $T/src/sub/hello.txt
\$
\$
EOF
# 300 MiB: the smallest XFS mkfs.xfs 6.1 makes (sparse: its log is the
# only thing written besides the files)
truncate -s 300M "$T/xfs.img"
mkfs.xfs -q -p "$T/proto" "$T/xfs.img"
cp --sparse=always "$T/xfs.img" "$T/whole.raw"
truncate -s 400M "$T/gpt.raw"
printf 'label: gpt\nstart=2048, size=40960, type=L\nstart=43008, size=614400, type=L\n' |
    sfdisk -q "$T/gpt.raw"
dd if="$T/xfs.img" of="$T/gpt.raw" bs=512 seek=43008 conv=notrunc,sparse status=none
run_ok livebackup backup-image --json --repo "$R" --name xfs \
    --disk vda="$T/whole.raw" --disk vdb="$T/gpt.raw"
id=$(json_field "$T/out" summary id)
ok "a backup ($id): XFS on the whole disk and in GPT partition 2"

M=$T/mnt
mkdir -p "$M"
unmount_all() { livebackup umount "$M" >/dev/null 2>&1 || true; }
trap 'rc=$?; unmount_all; lb_cleanup "$rc"' EXIT

# The processes serving the mounts below $M, from the mount table: ours
# (livebackup:PID) and guestmount's (livebackup-guestmount:PID), and each
# guestmount's children (its appliance's QEMU).
served_by() {
    local src p
    for src in $(awk -v m="$M" '$5 == m || index($5, m "/") == 1 {
            for (i = 7; $i != "-"; i++) ; print $(i + 2) }' /proc/self/mountinfo); do
        p=${src##*:}
        [[ $p =~ ^[0-9]+$ ]] || continue
        echo "$p"
        pgrep -P "$p" || true
    done
}

start=$SECONDS
run_ok livebackup mount --repo "$R" --name xfs --fs "$M"
mount_s=$((SECONDS - start))
for fs in vda.fs vdb.p2; do
    cmp "$M/xfs/$id/$fs/rand.bin" "$T/src/rand.bin" || fail "$fs/rand.bin differs"
    [[ $(cat "$M/xfs/$id/$fs/sub/hello.txt") == "hello from an XFS backup" ]] ||
        fail "$fs/sub/hello.txt"
done
[[ ! -e $M/xfs/$id/vdb.p1 ]] || fail "a partition without a filesystem got a mountpoint"
grep " $M/xfs/$id/vda.fs " /proc/self/mountinfo | grep " - fuse livebackup-guestmount:[0-9]* ro" >/dev/null ||
    fail "vda.fs is not a read-only guestmount: $(grep " $M" /proc/self/mountinfo)"
if { echo x >>"$M/xfs/$id/vda.fs/sub/hello.txt"; } 2>/dev/null; then
    fail "a file of a mounted XFS is writable"
fi
mounts=$(grep -c " $M" /proc/self/mountinfo)
[[ $mounts == 3 ]] || fail "$mounts mounts under $M: $(grep " $M" /proc/self/mountinfo)"
mapfile -t pids < <(served_by | sort -u)
# ours and its backupd sessions, and per XFS a guestmount, its appliance's
# QEMU and its libguestfs recovery process
qemus=$(ps -o comm= -p "$(IFS=,; echo "${pids[*]}")" | grep -c "^qemu-system")
((${#pids[@]} >= 7 && qemus == 2)) || fail "serving processes: $(ps -o pid,ppid,args -p "$(IFS=,; echo "${pids[*]}")")"
ok "--fs: XFS on the whole disk and in GPT partition 2 mounted by guestmount (${mount_s} s, two appliances), files read right"

run_ok livebackup umount "$M"
! grep -q " $M" /proc/self/mountinfo || fail "left mounted: $(grep " $M" /proc/self/mountinfo)"
for p in "${pids[@]}"; do
    if lb_alive "$p"; then fail "process $p left: $(ps -o pid,args -p "$p")"; fi
done
[[ -z $(ls -A "$M") ]] || fail "files left in $M: $(ls -A "$M")"
ok "umount: no mount and none of the ${#pids[@]} processes that served them left"

# --fs-appliance: ext4 in the appliance too (fuse2fs would parse the
# guest's filesystem as root on this host); --fs alone uses fuse2fs.
mkdir -p "$T/extsrc"
echo "hello from an ext4 backup" >"$T/extsrc/hello.txt"
mkfs.ext4 -q -F -d "$T/extsrc" "$T/ext.raw" 32M >/dev/null
run_ok livebackup backup-image --json --repo "$R" --name ext --disk vda="$T/ext.raw"
eid=$(json_field "$T/out" summary id)
run_ok livebackup mount --repo "$R" --name ext --fs-appliance "$M"
[[ $(cat "$M/ext/$eid/vda.fs/hello.txt") == "hello from an ext4 backup" ]] ||
    fail "--fs-appliance: hello.txt of the ext4"
grep " $M/ext/$eid/vda.fs " /proc/self/mountinfo | grep " - fuse livebackup-guestmount:[0-9]* ro" >/dev/null ||
    fail "--fs-appliance: the ext4 is not a guestmount: $(grep " $M" /proc/self/mountinfo)"
mapfile -t pids < <(served_by | sort -u)
run_ok livebackup umount "$M"
for p in "${pids[@]}"; do
    if lb_alive "$p"; then fail "process $p left: $(ps -o pid,args -p "$p")"; fi
done
run_ok livebackup mount --repo "$R" --name ext --fs "$M"
grep " $M/ext/$eid/vda.fs " /proc/self/mountinfo | grep " - fuse.ext4 $M/ext/$eid/vda " >/dev/null ||
    fail "--fs: the ext4 is not fuse2fs's: $(grep " $M" /proc/self/mountinfo)"
run_ok livebackup umount "$M"
! grep -q " $M" /proc/self/mountinfo || fail "left mounted: $(grep " $M" /proc/self/mountinfo)"
ok "--fs-appliance mounts an ext4 in the appliance (guestmount), --fs by fuse2fs"

# Without guestmount: the disks are mounted, the XFS is not, and the
# warning says what to install.
mkdir -p "$T/bin"
ln -s "$(command -v livebackup)" "$(command -v backupd)" "$T/bin/"
PATH=$T/bin run_ok livebackup mount --repo "$R" --name xfs --fs "$M"
grep -q "XFS not mounted: guestmount on $M/xfs/$id/vda.fs: guestmount not found; install Debian's libguestfs-tools" "$T/err" ||
    fail "no clear warning without guestmount: $(cat "$T/err")"
[[ -f $M/xfs/$id/vda && -z $(ls -A "$M/xfs/$id/vda.fs") ]] || fail "the disks without guestmount"
msg=$(head -c 240 "$T/err")
run_ok livebackup umount "$M"
ok "without guestmount: $msg"

# An appliance that cannot start (no appliance where libguestfs looks)
LIBGUESTFS_PATH=$T/nosuch run_ok livebackup mount --repo "$R" --name xfs --fs "$M"
grep -q "XFS not mounted: guestmount on $M/xfs/$id/vda.fs failed (exit status 1): .*libguestfs: error: .*; libguestfs-test-tool" "$T/err" ||
    fail "no clear warning when the appliance cannot start: $(cat "$T/err")"
msg=$(head -c 240 "$T/err")
run_ok livebackup umount "$M"
! grep -q " $M" /proc/self/mountinfo || fail "a failed guestmount left a mount"
[[ -z $(pgrep -f "guestmount --no-fork .* $M/" || true) ]] || fail "a failed guestmount left its process"
ok "an appliance that cannot start: $msg"
