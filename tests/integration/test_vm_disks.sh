#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The disks of a domain, as the README describes them, on a running guest:
# a block device (a loop device over an ext4 image) is backed up live,
# incrementally, and restores with what the guest wrote to it; a cdrom, a
# read-only and a shareable disk are skipped with a note and left alone;
# a chain edited by hand under one disk (the user's own external
# snapshot) and a disk added make that disk, and only it, fall back to a
# full backup with a message saying why; an in-place restore writes over
# the block device (a device in use refused first), a restore to files
# rewrites it as a file.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vmlib.sh"

R=$T/repo
# An apostrophe in the overlays' directory: the snapshot's XML must carry
# it (it was printed into a '...' attribute and broke).
OV="$VMDIR/o'brien"
mkdir -p "$OV"
run_ok livebackup init --repo "$R"

cp "$LB_TESTVM_DISK_QCOW2" "$VMDIR/vda.qcow2"
cp --sparse=always "$LB_TESTVM_DISK_RAW" "$VMDIR/blk.raw"
loop_attach "$VMDIR/blk.raw"
blk=$LOOP_DEV
qemu-img create -q -f raw "$VMDIR/cd.iso" 1M
qemu-img create -q -f raw "$VMDIR/ro.raw" 16M
qemu-img create -q -f raw "$VMDIR/sh.raw" 16M
skipped_sums() { sha256sum "$VMDIR/cd.iso" "$VMDIR/ro.raw" "$VMDIR/sh.raw"; }
sums=$(skipped_sums)
vm=$(new_vm disks --disk "vda=$VMDIR/vda.qcow2:qcow2" --disk "vdb=$blk:raw" \
    --device "<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='$VMDIR/cd.iso'/><target dev='hdc' bus='ide'/><readonly/></disk>" \
    --device "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='$VMDIR/ro.raw'/><target dev='vdc' bus='virtio'/><readonly/></disk>" \
    --device "<disk type='file' device='disk'><driver name='qemu' type='raw' cache='none'/><source file='$VMDIR/sh.raw'/><target dev='vdd' bus='virtio'/><shareable/></disk>")
vm_wait_agent "$vm" 120 >/dev/null
vm_wait_workload "$vm" 3 >/dev/null
ok "guest $vm runs on a qcow2 file (vda) and the block device $blk (vdb), with a cdrom, a read-only and a shareable disk"

# backup [OPTIONS]: sets id; the overlays go to $OV (not next to /dev/loopN),
# given as a path relative to the current directory (unless NO_OVD is set:
# then from livebackup.conf).
# The cdrom, read-only and shareable disks are left out: a warning (exit
# status 3, status "warning", the skipped disks listed), unless WANT_RC=0.
# Every run writes the metrics file; the hook records what it got.
HOOK="cat >$T/hook.json; echo \$LIVEBACKUP_STATUS \$LIVEBACKUP_EXIT_STATUS >$T/hook.env"
backup() {
    local rc=0 want=${WANT_RC:-3}
    # --overlay-dir relative, from $VMDIR: it reaches libvirt absolute
    local ovd=(--overlay-dir "${OV##*/}")
    [[ -z ${NO_OVD:-} ]] || ovd=()
    (cd "$VMDIR" && exec livebackup backup --json "$vm" --repo "$R" "${ovd[@]}" \
        --on-failure "$HOOK" --metrics-file "$T/metrics.prom" "$@") >"$T/out" 2>"$T/err" || rc=$?
    no_sanitizer_report "$T/err"
    [[ $rc -eq $want ]] || { cat "$T/out" "$T/err" >&2; fail "backup $*: exit $rc, not $want"; }
    id=$(json_field "$T/out" summary id)
    json_schema_check "$T/out"
    if ((want == 3)); then
        jq -s -e 'map(select(.event == "summary"))[-1] | .status == "warning" and
            (.skipped | sort) == ["hdc: a cdrom", "vdc: read-only", "vdd: shareable"]' "$T/out" >/dev/null ||
            fail "summary of a backup that skipped disks: $(grep summary "$T/out")"
    fi
}
# disk_mode ID DISK: "full: REASON" or "incremental", from show --json.
disk_mode() {
    livebackup show --json --repo "$R" --backup "$1" >"$T/show" ||
        fail "show $1: $(cat "$T/show")"
    jq -r --arg d "$2" 'select(.event == "disk" and .disk == $d) |
        .mode + (if .full_reason then ": " + .full_reason else "" end)' "$T/show"
}
# disk_def TARGET: the <disk> element of TARGET in the domain's persistent
# definition, on one line.
disk_def() {
    virsh -q -c qemu:///system dumpxml --inactive "$vm" |
        awk -v t="$1" '/<disk /{d=""} {d=d $0} /<\/disk>/ && d ~ ("<target dev=." t ".") {print d}'
}
shown_disks() {
    livebackup show --json --repo "$R" --backup "$1" |
        jq -r 'select(.event == "disk") | .disk' | tr '\n' ' '
}
# guest_write FILE KIB: random data into the guest's FILE, synced.
guest_write() {
    vm_guest_exec "$vm" sh -c "dd if=/dev/urandom of=$1 bs=1k count=$2 2>/dev/null && sync" ||
        fail "guest write to $1"
}
# restored_file DISK ID FILE KIB: the restored DISK of backup ID is a clean
# ext4 holding FILE of KIB KiB.
restored_file() {
    rm -f "$T/rd.raw"
    run_ok livebackup restore-image --repo "$R" --name "$vm" --backup "$2" \
        --disk "$1" --to "$T/rd.raw"
    e2fsck -fn "$T/rd.raw" >/dev/null 2>&1 || fail "restored $1 of $2 fails e2fsck -fn"
    debugfs -R "stat $3" "$T/rd.raw" 2>/dev/null | grep "Size: $(($4 * 1024))\b" >/dev/null ||
        fail "restored $1 of $2 lacks $3 ($4 KiB)"
}

# ---- no overlay under /dev ---------------------------------------------------
# Beside /dev/loopN the overlay would live in memory (devtmpfs), lost at
# reboot with the guest's writes: refused, nothing made or switched.
expect_fail "error: $vm: disk vdb is on $blk: its tracking overlay would go to /dev, which is in memory and lost at reboot.*--overlay-dir DIR" \
    livebackup backup "$vm" --repo "$R"
[[ $(active_image "$vm" vda) == "$VMDIR/vda.qcow2" && $(active_image "$vm" vdb) == "$blk" ]] ||
    fail "a refused backup switched a disk: vda $(active_image "$vm" vda), vdb $(active_image "$vm" vdb)"
ls "$VMDIR" /dev | grep lbtrack >/dev/null && fail "a refused backup made an overlay: $(ls "$VMDIR" /dev | grep lbtrack)"
# overlay-dir must be absolute where no current directory says relative to what
echo "overlay-dir = o'brien" >"$T/lb.conf"
rc=0
LIVEBACKUP_CONFIG=$T/lb.conf livebackup backup "$vm" --repo "$R" 2>"$T/err" || rc=$?
[[ $rc -eq 2 && $(cat "$T/err") == "livebackup: $T/lb.conf:1: overlay-dir 'o'brien': expected an absolute path" ]] ||
    fail "a relative overlay-dir in livebackup.conf: exit $rc, $(cat "$T/err")"
echo "overlay-dir = $OV" >"$T/lb.conf"
ok "no overlay under /dev: refused with the way out; overlay-dir in livebackup.conf is an absolute path"

# ---- full: the block device backed up, the other three skipped with a note --
before=$(wl_done "$vm")
LIVEBACKUP_CONFIG=$T/lb.conf NO_OVD=1 backup
grep -q "disk hdc is a cdrom: skipped" "$T/err" &&
    grep -q "disk vdc is read-only: skipped" "$T/err" &&
    grep -q "disk vdd is shareable: skipped" "$T/err" ||
    fail "no note for the skipped disks: $(cat "$T/err")"
[[ $(shown_disks "$id") == "vda vdb " ]] || fail "backup $id holds: $(shown_disks "$id")"
[[ $(active_image "$vm" vdb) == "$OV"/*.lbtrack-*.qcow2 ]] ||
    fail "vdb is not on a tracking overlay in $OV (overlay-dir in livebackup.conf): $(active_image "$vm" vdb)"
[[ $(active_image "$vm" vda) == "$OV"/*.lbtrack-*.qcow2 ]] ||
    fail "vda is not on a tracking overlay in $OV (overlay-dir in livebackup.conf): $(active_image "$vm" vda)"
for d in hdc vdc vdd; do
    [[ $(active_image "$vm" $d) != *lbtrack* ]] || fail "$d was switched to an overlay"
done
ls /dev | grep lbtrack >/dev/null && fail "an overlay was made in /dev: $(ls /dev | grep lbtrack)"
assert_thawed "$vm"
full=$id
m=$(restore_verify "$R" "$vm" vda "$before" "$id")
ok "full backup $id: vda and the block device vdb; cdrom, read-only and shareable disks skipped with a note ($m files on vda)"

# ---- incremental: what the guest wrote to the block device ----------------
guest_write /data2/b1 3072
backup
[[ $(json_field "$T/out" summary kind) == incremental ]] || fail "not incremental"
[[ $(disk_mode "$id" vdb) == incremental ]] || fail "vdb: $(disk_mode "$id" vdb)"
restored_file vdb "$id" /b1 3072
restored_file vdb "$full" /lost+found 16
ok "incremental $id: the block device's changes restore (e2fsck clean, /b1 whole)"

# ---- the chain edited by hand under vda: vda alone is read whole ------------
ov_vda=$(active_image "$vm" vda)
virsh -q -c qemu:///system snapshot-create-as "$vm" --disk-only --atomic --no-metadata \
    --diskspec "vda,file=$VMDIR/user-snap.qcow2" --diskspec vdb,snapshot=no \
    --diskspec vdc,snapshot=no --diskspec vdd,snapshot=no --diskspec hdc,snapshot=no \
    >/dev/null || fail "the user's snapshot failed"
[[ $(active_image "$vm" vda) == "$VMDIR/user-snap.qcow2" ]] || fail "vda: $(active_image "$vm" vda)"
vm_wait_workload "$vm" $(($(wl_done "$vm") + 2)) >/dev/null
guest_write /data2/b2 1024
before=$(wl_done "$vm")
backup
grep -q "disk vda: tracking lost (its image is now $VMDIR/user-snap.qcow2, not the tracking overlay): full backup of this disk" "$T/err" ||
    fail "no tracking-lost message for vda: $(cat "$T/err")"
grep -q "disk vdb: tracking lost" "$T/err" && fail "vdb lost tracking too: $(cat "$T/err")"
[[ $(disk_mode "$id" vda) == "full: its image is now $VMDIR/user-snap.qcow2, not the tracking overlay" ]] ||
    fail "vda: $(disk_mode "$id" vda)"
[[ $(disk_mode "$id" vdb) == incremental ]] || fail "vdb: $(disk_mode "$id" vdb)"
# The user's chain (their snapshot over the overlay they found) is theirs:
# intact, and the guest keeps writing through it.
[[ -e $ov_vda ]] || fail "the overlay under the user's snapshot was deleted"
qemu-img info -U --backing-chain "$VMDIR/user-snap.qcow2" >"$T/chain" 2>&1 ||
    fail "the user's chain is broken: $(cat "$T/chain")"
grep -q "image: $ov_vda" "$T/chain" || fail "the user's chain lost $ov_vda: $(cat "$T/chain")"
m=$(restore_verify "$R" "$vm" vda "$before" "$id")
restored_file vdb "$id" /b2 1024
vm_wait_workload "$vm" $(($(wl_done "$vm") + 2)) >/dev/null
before=$(wl_done "$vm")
backup
[[ $(disk_mode "$id" vda) == incremental && $(disk_mode "$id" vdb) == incremental ]] ||
    fail "after the full of vda: vda $(disk_mode "$id" vda), vdb $(disk_mode "$id" vdb)"
m=$(restore_verify "$R" "$vm" vda "$before" "$id")
ok "a snapshot taken by hand under vda: vda alone read whole, with the reason; the user's chain left intact; then incremental again ($m files)"

# ---- a disk added: read whole, the others incremental ----------------------
# vde: a second block device, reached through a symlink beside the
# images (an LV by a path outside /dev).
cp --sparse=always "$LB_TESTVM_DISK_RAW" "$VMDIR/vde.raw"
loop_attach "$VMDIR/vde.raw"
vde_dev=$LOOP_DEV
ln -s "$vde_dev" "$VMDIR/vde.link"
virsh -q -c qemu:///system attach-disk "$vm" "$VMDIR/vde.link" vde --targetbus virtio \
    --driver qemu --subdriver raw --sourcetype block --live --persistent >/dev/null || fail "attach-disk vde"
backup
[[ $(disk_mode "$id" vde) == "full: first backup of this disk" ]] || fail "vde: $(disk_mode "$id" vde)"
[[ $(disk_mode "$id" vda) == incremental && $(disk_mode "$id" vdb) == incremental ]] ||
    fail "with vde added: vda $(disk_mode "$id" vda), vdb $(disk_mode "$id" vdb)"
grep -q "disk vde is new since the last backup: full backup of this disk" "$T/err" ||
    fail "no message for the added disk: $(cat "$T/err")"
run_ok livebackup restore-image --repo "$R" --name "$vm" --backup "$id" --disk vde --to "$T/vde.raw"
cmp "$T/vde.raw" "$vde_dev" >&2 || fail "vde restored differs from $vde_dev"
ok "a disk added: read whole with the reason, the others incremental"

# ---- the warning: status, the hook, the metrics; -j; --disks; a failure ----
run_ok livebackup status --json "$vm"
json_schema_check "$T/out"
jq -s -e 'map(select(.event == "status"))[0] | .last_run == "warning" and (.message | contains("hdc: a cdrom"))' \
    "$T/out" >/dev/null || fail "status --json after a warning: $(cat "$T/out")"
run_ok livebackup status "$vm"
grep "WARN, .*: skipped " "$T/out" | grep "hdc: a cdrom" | grep "vdc: read-only" |
    grep -q "vdd: shareable" ||
    fail "status after a warning: $(cat "$T/out")"
[[ $(cat "$T/hook.env") == "warning 3" ]] || fail "hook env: $(cat "$T/hook.env")"
jq -e --arg vm "$vm" --arg id "$id" '.event == "run" and .status == "warning" and .exit_status == 3
    and (.results | length) == 1 and .results[0].domain == $vm and .results[0].status == "warning"
    and .results[0].result.id == $id and (.results[0].last_success_time | type) == "number"' \
    "$T/hook.json" >/dev/null || fail "hook stdin: $(cat "$T/hook.json")"
# The textfile: HELP/TYPE comments and "name{domain=...} number" rows only.
grep -Ev '^# (HELP|TYPE) livebackup_[a-z_]+ ' "$T/metrics.prom" |
    grep -Ev '^livebackup_[a-z_]+\{domain="[^"]+"\} [0-9.e+]+$' &&
    fail "metrics file lines: $(cat "$T/metrics.prom")"
grep -q "^livebackup_last_run_exit_status{domain=\"$vm\"} 3$" "$T/metrics.prom" ||
    fail "metrics: exit status of $vm: $(cat "$T/metrics.prom")"
for m in last_success_timestamp_seconds last_run_timestamp_seconds last_run_duration_seconds \
    last_run_read_bytes last_run_sent_bytes last_run_frozen_milliseconds; do
    grep -Eq "^livebackup_$m\{domain=\"$vm\"\} [0-9.e+]+$" "$T/metrics.prom" ||
        fail "metrics: no $m for $vm: $(cat "$T/metrics.prom")"
done
ls "$T"/metrics.prom.*.tmp 2>/dev/null && fail "a temporary metrics file is left"
ok "a backup that skipped disks: exit 3, status WARN, the hook got the run (warning), metrics written"

# -j: a WARN row for the domain, a FAILED row for a domain that is not.
rc=0
livebackup backup -j 2 "$vm" "${VM_PREFIX}nosuch" --repo "$R" --overlay-dir "$OV" \
    --on-failure "$HOOK" --metrics-file "$T/metrics.prom" >"$T/out" 2>"$T/err" || rc=$?
[[ $rc -eq 1 ]] || fail "-j with a missing domain: exit $rc: $(cat "$T/out" "$T/err")"
grep -Eq "^$vm +WARN +[0-9]{8}-[0-9]{6}-[0-9a-f]{4} incremental" "$T/out" &&
    grep -Eq "^ +skipped .*hdc: a cdrom" "$T/out" &&
    grep -Eq "^${VM_PREFIX}nosuch +FAILED +.*${VM_PREFIX}nosuch" "$T/out" &&
    grep -q "1 domain(s) backed up (1 with a warning), 1 failed" "$T/out" ||
    fail "-j table: $(cat "$T/out")"
[[ $(cat "$T/hook.env") == "failed 1" ]] || fail "hook env after -j: $(cat "$T/hook.env")"
jq -e --arg vm "$vm" '[.results[] | {(.domain): .status}] | add
    | .[$vm] == "warning" and .["'"${VM_PREFIX}nosuch"'"] == "failed"' "$T/hook.json" >/dev/null ||
    fail "hook stdin after -j: $(cat "$T/hook.json")"
grep -q "^livebackup_last_run_exit_status{domain=\"${VM_PREFIX}nosuch\"} 1$" "$T/metrics.prom" &&
    grep -q "^livebackup_last_run_exit_status{domain=\"$vm\"} 3$" "$T/metrics.prom" ||
    fail "metrics after -j: $(cat "$T/metrics.prom")"
grep -q "last_success_timestamp_seconds{domain=\"${VM_PREFIX}nosuch\"}" "$T/metrics.prom" &&
    fail "a last success for a domain that never had one: $(cat "$T/metrics.prom")"
rc=0
livebackup backup --json -j 2 "$vm" "${VM_PREFIX}nosuch" --repo "$R" --overlay-dir "$OV" \
    >"$T/out" 2>"$T/err" || rc=$?
[[ $rc -eq 1 ]] || fail "-j --json: exit $rc"
json_schema_check "$T/out"
jq -s -e --arg vm "$vm" '(map(select(.event == "summary" and .domain == $vm and .status == "warning")) | length) == 1
    and (map(select(.event == "error")) | length) == 1
    and (map(select(.event == "done"))[0] | .failed == 1 and .warned == 1)' "$T/out" >/dev/null ||
    fail "-j --json: $(cat "$T/out")"
ok "-j: a WARN row and a FAILED row, exit 1, the hook and the metrics for both; --json typed"

# Only the disks it can back up: no warning, no hook.
rm -f "$T/hook.json" "$T/hook.env"
WANT_RC=0 backup --disks vda,vdb,vde
jq -s -e 'map(select(.event == "summary"))[-1] | .status == "ok" and .skipped == []' "$T/out" >/dev/null ||
    fail "summary with --disks: $(grep summary "$T/out")"
[[ ! -e $T/hook.json ]] || fail "the hook ran after a clean backup"
grep -q "^livebackup_last_run_exit_status{domain=\"$vm\"} 0$" "$T/metrics.prom" ||
    fail "metrics after a clean backup: $(cat "$T/metrics.prom")"
ok "--disks naming the disks it can back up: exit 0, status ok, no hook"

[[ $(skipped_sums) == "$sums" ]] || fail "a skipped disk was written to"
ok "the cdrom, read-only and shareable disks are untouched"

# ---- restores: in place, onto the block device; to files rewrites it ------
virsh -q -c qemu:///system destroy "$vm" >/dev/null
# What the device must hold afterwards: the last backup's vdb.
run_ok livebackup restore-image --repo "$R" --name "$vm" --backup "$id" --disk vdb --to "$T/vdb-last.raw"
ov_vdb=$(active_image "$vm" vdb)
# Scribbles where the backup has data and at the device's end (a hole in
# the backup): the restore must write both, zeros included.
dd if=/dev/urandom of="$blk" bs=64k count=16 seek=16 conv=notrunc,fsync status=none
bsize=$(blockdev --getsize64 "$blk")
[[ $bsize -eq $(stat -c %s "$T/vdb-last.raw") ]] || fail "$blk: $bsize bytes, the disk $(stat -c %s "$T/vdb-last.raw")"
dd if=/dev/urandom of="$blk" bs=64k count=1 seek=$((bsize / 65536 - 1)) conv=notrunc,fsync status=none
cmp -s "$blk" "$T/vdb-last.raw" && fail "the scribbles changed nothing on $blk"
# Open in a process: refused before anything is written.
vde_sum=$(sha256sum <"$vde_dev")
hold_open "$blk"
expect_fail "$blk is open in process $HOLD_PID \((sleep|bash)\)" \
    livebackup restore "$vm" --repo "$R" --in-place --force
release_open
[[ $(active_image "$vm" vdb) == "$ov_vdb" ]] || fail "a refused in-place restore changed vdb"
[[ $(sha256sum <"$vde_dev") == "$vde_sum" ]] || fail "a refused in-place restore wrote vde"
cmp -s "$blk" "$T/vdb-last.raw" && fail "a refused in-place restore wrote $blk"
# Killed once the devices are written, before the files' new images are
# renamed over the old: the domain is still defined on its overlays
# (nothing says it was restored), and the same command finishes it.
rc=0
LIVEBACKUP_FAULT=agent:restore-devices-written livebackup restore "$vm" --repo "$R" \
    --in-place --force >"$T/out" 2>&1 || rc=$?
[[ $rc -eq 137 ]] || fail "in-place restore killed after the devices: exit $rc: $(cat "$T/out")"
cmp -s "$blk" "$T/vdb-last.raw" || fail "the killed in-place restore had not written $blk"
[[ $(active_image "$vm" vdb) == "$ov_vdb" ]] || fail "a killed in-place restore redefined vdb"
run_ok livebackup restore "$vm" --repo "$R" --in-place --force
ls -a "$VMDIR" | grep -E "\.restoring|livebackup-partial" >&2 && fail "temporary images left in $VMDIR"
cmp "$blk" "$T/vdb-last.raw" >&2 || fail "after the in-place restore $blk is not the backup's vdb"
[[ $(active_image "$vm" vdb) == "$blk" ]] || fail "vdb is on $(active_image "$vm" vdb), not $blk"
disk_def vdb >"$T/vdb.xml"
grep -q "<disk type='block' device='disk'>" "$T/vdb.xml" && grep -q "<source dev='$blk'" "$T/vdb.xml" &&
    grep -q "type='raw'" "$T/vdb.xml" || fail "vdb's definition: $(cat "$T/vdb.xml")"
[[ $(active_image "$vm" vda) != *lbtrack* ]] || fail "vda is still on a tracking overlay"
# vde, on its device through the symlink: a block disk again (a file disk
# on a device is refused by QEMU: the start below would fail).
[[ $(active_image "$vm" vde) == "$VMDIR/vde.link" ]] || fail "vde is on $(active_image "$vm" vde)"
disk_def vde >"$T/vde.xml"
grep -q "<disk type='block' device='disk'>" "$T/vde.xml" && grep -q "<source dev='$VMDIR/vde.link'" "$T/vde.xml" ||
    fail "vde's definition: $(cat "$T/vde.xml")"
[[ ! -e $ov_vdb ]] || fail "vdb's tracking overlay $ov_vdb is left"
# The domain runs on it: the guest mounts the device and reads /b2.
virsh -q -c qemu:///system start "$vm" >/dev/null || fail "start $vm after the in-place restore"
vm_wait_agent "$vm" 120 >/dev/null
out=$(vm_guest_exec "$vm" stat -c %s /data2/b2) || fail "the guest cannot read /data2/b2"
[[ $out == 1048576 ]] || fail "/data2/b2 in the guest: $out"
virsh -q -c qemu:///system destroy "$vm" >/dev/null
ok "in place: a device open in a process refused before anything is written; killed midway, run again; the block devices written over, zeros and all, the domain back on them (one through a symlink) and booting"

run_ok livebackup restore "$vm" --repo "$R" --to "$T/r" --name "${VM_PREFIX}r" --define
virsh -q -c qemu:///system dumpxml "${VM_PREFIX}r" >"$T/r.xml"
grep -q "<source file='$T/r/${VM_PREFIX}r-vdb.qcow2'" "$T/r.xml" ||
    fail "the restored vdb is not a file: $(grep -A3 "<disk" "$T/r.xml")"
grep -q "device='cdrom'" "$T/r.xml" || fail "the restored domain lost its cdrom"
qemu-img convert -O raw "$T/r/${VM_PREFIX}r-vdb.qcow2" "$T/rvdb.raw"
debugfs -R "stat /b2" "$T/rvdb.raw" 2>/dev/null | grep "Size: 1048576\b" >/dev/null || fail "restored vdb lacks /b2"
ok "a restore to files defines the block device's disk on a file"

run_ok livebackup verify --repo "$R"
ok "repository verifies"
