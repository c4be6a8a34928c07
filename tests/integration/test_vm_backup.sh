#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Live backup of a real libvirt/QEMU guest running a workload: two disks
# (a qcow2 whose user chain already has a backing file, and a raw disk),
# a full backup then incrementals while the guest writes, quiesced through
# qemu-guest-agent; every backup restores to a filesystem that passes
# e2fsck -fn and holds every file the workload finished before the freeze.
# Then: a backup with the domain paused restores block-exact; status; the
# saved XML; untrack; and a shut-off domain backed up at rest.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vmlib.sh"

R=$T/repo
run_ok livebackup init --repo "$R"

# A domain a killed test left (its process gone) is removed by the next VM
# test; one whose test still runs (here the VM lock's holder stands for
# it) is left alone.
sh -c 'exit 0' &
dead=$!
wait "$dead"
! lb_alive "$dead" || fail "process $dead still alive"
for d in "lbt$dead-stale" "lbt$VM_LOCK_PID-live"; do
    printf '%s\n' "<domain type='qemu'><name>$d</name><memory unit='MiB'>64</memory>" \
        "<os><type arch='x86_64'>hvm</type></os></domain>" >"$T/$d.xml"
    virsh -q -c qemu:///system define "$T/$d.xml" >/dev/null ||
        fail "could not define $d"
done
vm_sweep_stale 2>"$T/sweep.err"
virsh -q -c qemu:///system domstate "lbt$dead-stale" >/dev/null 2>&1 &&
    fail "the stale domain lbt$dead-stale is still defined"
grep -F "removing domain lbt$dead-stale, left by test process $dead" "$T/sweep.err" >/dev/null ||
    fail "the sweep did not say what it removed: $(cat "$T/sweep.err")"
virsh -q -c qemu:///system domstate "lbt$VM_LOCK_PID-live" >/dev/null 2>&1 ||
    fail "the sweep removed lbt$VM_LOCK_PID-live, whose process is alive"
vm_destroy "lbt$VM_LOCK_PID-live"
ok "a domain left by a killed test is removed, a live test's is not"

# vda: the workload disk, qcow2 over a qcow2 base (the user's own chain).
cp "$LB_TESTVM_DISK_QCOW2" "$VMDIR/vda-base.qcow2"
qemu-img create -q -f qcow2 -b "$VMDIR/vda-base.qcow2" -F qcow2 "$VMDIR/vda.qcow2"
# vdb: raw (the guest mounts it on /data2; we write to it through the agent)
cp --sparse=always "$LB_TESTVM_DISK_RAW" "$VMDIR/vdb.raw"
base_sum=$(sha256sum <"$VMDIR/vda-base.qcow2")
vm=$(new_vm main --disk "vda=$VMDIR/vda.qcow2:qcow2" --disk "vdb=$VMDIR/vdb.raw:raw")
vm_wait_agent "$vm" 120 >/dev/null
vm_wait_workload "$vm" 3 >/dev/null
ok "guest $vm runs its workload"

backup() {
    run_ok livebackup backup --json "$vm" --repo "$R" "$@"
    id=$(json_field "$T/out" summary id)
    [[ -n $id ]] || fail "no backup id: $(cat "$T/out")"
}

# Full backup, quiesced.
before=$(wl_done "$vm")
backup
[[ $(json_field "$T/out" summary consistency) == quiesced ]] || fail "not quiesced"
[[ $(json_field "$T/out" summary kind) == full ]] || fail "first backup not full"
fms=$(json_field "$T/out" summary freeze_ms)
[[ $fms -gt 0 && $fms -lt 5000 ]] || fail "freeze_ms $fms"
assert_thawed "$vm"
ids=("$id")
mins=("$before")
ok "full backup $id, guest frozen $fms ms"
[[ $(active_image "$vm" vda) == *.lbtrack-*.qcow2 ]] || fail "vda not on a tracking overlay"

# Incrementals while the guest writes (also to vdb).
for g in 1 2 3; do
    vm_wait_workload "$vm" $(($(wl_done "$vm") + 3)) >/dev/null
    vm_guest_exec "$vm" sh -c "dd if=/dev/urandom of=/data2/g$g bs=4k count=$((g * 8)) conv=fsync 2>/dev/null" ||
        fail "guest write to vdb"
    before=$(wl_done "$vm")
    backup
    [[ $(json_field "$T/out" summary kind) == incremental ]] || fail "generation $g is not incremental"
    [[ $(json_field "$T/out" summary parent) == "${ids[-1]}" ]] || fail "parent of generation $g"
    ids+=("$id")
    mins+=("$before")
    assert_thawed "$vm"
    # Exactly one tracking overlay under the guest between backups.
    n=$(virsh -q -c qemu:///system dumpxml "$vm" | grep -c "lbtrack-" || true)
    [[ $n -eq 2 ]] || fail "expected one overlay per disk in the live XML, found $n"
    ok "incremental $g: $id (frozen $(json_field "$T/out" summary freeze_ms) ms)"
done
[[ $(sha256sum <"$VMDIR/vda-base.qcow2") == "$base_sum" ]] ||
    fail "the user's own backing file was modified"
ok "the user's own chain below the top was never modified"

for i in "${!ids[@]}"; do
    m=$(restore_verify "$R" "$vm" vda "${mins[$i]}" "${ids[$i]}")
    ok "backup $i restores: e2fsck clean, $m workload files (>= ${mins[$i]} done before the freeze)"
done
run_ok livebackup restore-image --repo "$R" --name "$vm" --disk vdb --to "$T/vdb.raw"
debugfs -R "ls -l /" "$T/vdb.raw" 2>/dev/null | grep " g3" >/dev/null || fail "vdb restore lacks g3"
e2fsck -fn "$T/vdb.raw" >/dev/null 2>&1 || fail "restored vdb fails e2fsck"
ok "vdb (raw base) restores with the files written to it"

# Paused during the backup: the restore equals the guest-visible disk.
virsh -q -c qemu:///system suspend "$vm" >/dev/null
backup --consistency crash
[[ $(json_field "$T/out" summary consistency) == crash ]] || fail "paused backup consistency"
qemu-img convert -U -O raw "$(active_image "$vm" vda)" "$T/visible.raw"
run_ok livebackup restore-image --repo "$R" --name "$vm" --disk vda --to "$T/paused.raw"
same_image "$T/paused.raw" raw "$T/visible.raw" raw
virsh -q -c qemu:///system resume "$vm" >/dev/null
ok "paused: the restore is block-identical to the guest-visible disk"

# Status and the saved domain XML.
run_ok livebackup status "$vm"
grep -Eq "^$vm +$id +[0-9]+s +[0-9.]+ MiB +[0-9]+ ms +ok, " "$T/out" &&
    grep -Eq "^  vda +enrolled +pending" "$T/out" || fail "status: $(cat "$T/out")"
run_ok livebackup status --json "$vm"
jq -s -e --arg id "$id" 'map(select(.event == "status"))[0] | .last_backup == $id and .last_run == "ok" and .freeze_ms >= 0 and .age_seconds >= 0' \
    "$T/out" >/dev/null || fail "status --json: $(cat "$T/out")"
run_ok livebackup list --json --repo "$R" --name "$vm"
tail -n 1 "$T/out" | jq -e '.domain_xml | test("^[0-9a-f]{64}$")' >/dev/null ||
    fail "no saved domain XML"
tail -n 1 "$T/out" | jq -e --arg u "$(virsh -q -c qemu:///system domuuid "$vm")" '.domain_uuid == $u' >/dev/null ||
    fail "no domain UUID in the manifest"
ok "status and saved XML"

# A disk resized: tracking lost for that disk only, full backup of it.
virsh -q -c qemu:///system blockresize "$vm" vdb 300M >/dev/null
backup
grep -q "disk vdb: tracking lost (it was resized" "$T/err" ||
    fail "no tracking-lost message: $(cat "$T/err")"
grep -q "disk vda: tracking lost" "$T/err" && fail "vda lost tracking too"
nfull=$(json_field "$T/out" summary disks_full)
[[ $nfull -eq 1 ]] || fail "$nfull full disks, not exactly one"
ok "resized disk falls back to a full backup of that disk"

# untrack: back on the user's images, state gone; the next backup is full.
run_ok livebackup untrack "$vm"
[[ $(active_image "$vm" vda) == "$VMDIR/vda.qcow2" ]] || fail "vda not back on its image"
[[ $(active_image "$vm" vdb) == "$VMDIR/vdb.raw" ]] || fail "vdb not back on its image"
ls "$VMDIR" | grep lbtrack >/dev/null && fail "overlays left: $(ls "$VMDIR")"
before=$(wl_done "$vm")
backup
[[ $(json_field "$T/out" summary kind) == full ]] || fail "after untrack not full"
m=$(restore_verify "$R" "$vm" vda "$before")
ok "untrack returns the domain to its images; the next backup is full ($m files)"
vm_destroy "$vm"

# A shut-off domain: backed up at rest, rotation offline, tracking goes on
# when it starts again.
cp "$LB_TESTVM_DISK_QCOW2" "$VMDIR/off.qcow2"
off=${VM_PREFIX}off
vm_define "$off" "$VMDIR" --disk "vda=$VMDIR/off.qcow2:qcow2" >/dev/null
backup_off() {
    run_ok livebackup backup --json "$off" --repo "$R"
    id=$(json_field "$T/out" summary id)
}
backup_off
[[ $(json_field "$T/out" summary kind) == full ]] || fail "shut-off first backup"
virsh -q -c qemu:///system dumpxml --inactive "$off" | grep lbtrack >/dev/null ||
    fail "the persistent XML does not point at the tracking overlay"
vm_start "$off" >/dev/null
vm_wait_workload "$off" 4 >/dev/null
virsh -q -c qemu:///system destroy "$off" >/dev/null
before=$(wl_done "$off")
backup_off
[[ $(json_field "$T/out" summary kind) == incremental ]] || fail "shut-off incremental"
[[ $(json_field "$T/out" summary consistency) == crash ]] || fail "shut-off consistency"
m=$(restore_verify "$R" "$off" vda "$before")
ok "shut-off domain: incremental at rest restores ($m files)"
vm_start "$off" >/dev/null
vm_wait_workload "$off" $((before + 2)) >/dev/null
before=$(wl_done "$off")
backup_off
[[ $(json_field "$T/out" summary kind) == incremental ]] || fail "after restart"
m=$(restore_verify "$R" "$off" vda "$before")
ok "started again, it tracks on: incremental restores ($m files)"

# --full-every 3: two incrementals since the first full, so this one reads
# the disk whole (and says why), the next is incremental again.
virsh -q -c qemu:///system destroy "$off" >/dev/null
kinds=()
for _ in 1 2; do
    run_ok livebackup backup --json --full-every 3 "$off" --repo "$R"
    id=$(json_field "$T/out" summary id)
    kinds+=("$(json_field "$T/out" summary kind)")
done
[[ ${kinds[*]} == "full incremental" ]] || fail "--full-every 3 gave: ${kinds[*]}"
run_ok livebackup show --repo "$R" --backup "$id"
grep -Eq "^  vda .*, incremental$" "$T/out" || fail "show: $(cat "$T/out")"
prev=$(livebackup list --json --repo "$R" --name "$off" | grep '"event":"backup"' | tail -n 2 | sed -n 1p |
    sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
run_ok livebackup show --repo "$R" --backup "$prev"
grep -Eq "^  vda .*, full: --full-every 3$" "$T/out" || fail "show of the full: $(cat "$T/out")"
ok "--full-every 3: the third backup since a full is full (recorded in the manifest), then incremental"

run_ok livebackup verify --repo "$R"
ok "repository verifies"
