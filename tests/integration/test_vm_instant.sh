#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# mount --fs of a backup of the guest: a file it wrote reads right.
# restore --instant: the restored guest runs on local overlays backed by
# NBD exports of the backup while its disks are pulled in the background
# (each copied into a local raw base, then the domain moved by a shallow
# block copy and a pivot onto a qcow2 over that base).
# Checked: its guest agent answers and it holds the files written before
# the backup while the pull runs; status shows the pull; the watcher and
# the export killed mid-pull (the guest having written meanwhile), then
# recover: the export comes back, the pull completes, the guest keeps its
# writes; the host killed mid-pull (the domain destroyed too): recover
# finishes offline; afterwards the domain (live and persistent) runs on
# DIR/NAME-vda.qcow2 over DIR/NAME-vda.raw, no NBD layer, nothing of the
# restore is left running or lying about, and restore-image of a later backup of the
# restored domain equals its disk exactly.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vmlib.sh"

trap 'rc=$?; instant_cleanup; vm_test_cleanup; lb_cleanup "$rc"' EXIT

R=$T/repo
run_ok livebackup init --repo "$R"
cp "$LB_TESTVM_DISK_QCOW2" "$VMDIR/src.qcow2"
vm=$(new_vm src --disk "vda=$VMDIR/src.qcow2:qcow2")
vm_wait_agent "$vm" 120 >/dev/null
vm_wait_workload "$vm" 3 >/dev/null
min=$(wl_done "$vm")
run_ok livebackup backup --json "$vm" --repo "$R"
id=$(json_field "$T/out" summary id)
ok "backup $id of $vm ($min workload files)"

# mount --fs: a file the guest wrote before the backup, read back from
# the ext4 filesystem inside the backup's disk; umount leaves nothing.
mkdir -p "$T/mnt"
run_ok livebackup mount --repo "$R" --name "$vm" --backup "$id" --fs "$T/mnt"
awk -v n=1 -f "$LB_TESTVM_WLGEN" | cmp - "$T/mnt/$vm/$id/vda.fs/wl/f000001" ||
    fail "wl/f000001 read through mount --fs differs from what the guest wrote"
run_ok livebackup umount "$T/mnt"
! grep -q " $T/mnt" /proc/self/mountinfo || fail "left mounted: $(grep " $T/mnt" /proc/self/mountinfo)"
[[ -z $(pgrep -f "fuse2fs $T/mnt|livebackup mount --repo $R") ]] || fail "mount processes left"
ok "mount --fs: a file the guest wrote before the backup reads right; umount leaves nothing"

# A check that runs inside a guest: files 1..N are intact.
in_guest_check() {
    local dom=$1 n=$2 out
    out=$(VM_EXEC_TIMEOUT=120 vm_guest_exec "$dom" sh -c \
        "for n in \$(seq 1 $n); do f=\$(printf /data/wl/f%06d \$n); awk -v n=\$n -f /lbtest/wlgen.awk | cmp -s - \$f || { echo BAD \$n; exit 1; }; done; echo GOOD") ||
        fail "in $dom: $out"
    [[ $out == *GOOD* ]] || fail "in $dom: $out"
}

# Where a finished disk must be: the domain's live and persistent
# definitions name DIR/NAME-vda.qcow2, a qcow2 over DIR/NAME-vda.raw, and
# nothing else of the restore is left in DIR.
disk_finished() {
    local dom=$1 dir=$2 top=$2/$1-vda.qcow2 b flags
    b=$(qemu-img info -U --output=json "$top" | jq -r '."backing-filename" // empty')
    [[ $b == "$dir/$dom-vda.raw" ]] || fail "$top's backing is '$b', not $dir/$dom-vda.raw"
    for flags in "" --inactive; do
        virsh -q -c qemu:///system dumpxml $flags "$dom" | grep "<source file='$top'" >/dev/null ||
            fail "$dom's ${flags:-live} definition is not on $top: $(virsh -q -c qemu:///system dumpxml $flags "$dom" | grep '<source')"
    done
    [[ $(ls "$dir" | grep "^$dom-vda\." | tr '\n' ' ') == "$dom-vda.qcow2 $dom-vda.raw " ]] ||
        fail "left in $dir: $(ls "$dir")"
}

# Who QEMU runs as here: root, or libvirt-qemu as on a stock Debian host
# (tests/vm/libvirt.sh: LB_QEMU_USER; the plain build's VM tests run so).
qemu_user=$(stat -c %U "/proc/$(cat "/run/libvirt/qemu/$vm.pid")")
# QEMU connects to the exports' sockets in the state directory itself:
# one it cannot pass through is named before anything starts, and
# nothing is left.
if [[ $qemu_user != root ]]; then
    mkdir -m 700 "$T/closed"
    expect_fail "QEMU's user $qemu_user \(uid [0-9]+\) cannot pass through $T/closed to reach the export's socket" \
        livebackup restore "$vm" --repo "$R" --backup "$id" --instant --to "$T/inst-closed" \
        --state-dir "$T/closed/state" --name "${VM_PREFIX}closed"
    ! virsh -q -c qemu:///system dominfo "${VM_PREFIX}closed" >/dev/null 2>&1 ||
        fail "the domain was defined"
    left=$(find "$T/inst-closed" "$T/closed/state" -mindepth 1 ! -name '*.lock' 2>/dev/null)
    [[ -z $left ]] || fail "left behind: $left"
    # A plain restore there: QEMU is refused its image, and the error
    # says where to look.
    expect_fail "Permission denied.*QEMU runs as a user of its own .* see \"QEMU's user and AppArmor\" in the README" \
        livebackup restore "$vm" --repo "$R" --backup "$id" --to "$T/closed/plain" \
        --name "${VM_PREFIX}closed" --start
    vm_destroy "${VM_PREFIX}closed"
fi

# The pull is slowed down (512 KiB/s) so that the test acts during it.
# --to and --state-dir relative, from $T: QEMU gets the disks' and the
# exports' sockets' absolute paths. Its output goes to a pipe, which must
# end with the command (the watcher and the exports it leaves running do
# not hold it; the reader gives up after 60 s).
new=${VM_PREFIX}inst
t0=$(date +%s.%N)
{
    cd "$T" && LIVEBACKUP_PULL_BANDWIDTH=524288 livebackup restore --json "$vm" --repo "$R" \
        --backup "$id" --instant --to inst --state-dir state --name "$new" --new-mac \
        --keep-host-access
    echo "exit $?"
} 2>&1 | { timeout 60 cat >"$T/out" || echo "the output stayed open" >>"$T/out"; }
no_sanitizer_report "$T/out"
[[ $(tail -n 1 "$T/out") == "exit 0" ]] ||
    fail "restore --instant, its output to a pipe: $(cat "$T/out")"
[[ $(json_field "$T/out" summary name) == "$new" ]] || fail "summary: $(cat "$T/out")"
vm_wait_agent "$new" 120 >/dev/null
t1=$(date +%s.%N)
ok "restore --instant: the guest agent of $new answers $(echo "$t1 - $t0" | bc) s after the command started"
# The export's socket is QEMU's alone: another local user cannot read
# the backup through it.
sock=$(echo "$T"/state/*-vda.sock)
[[ -S $sock ]] || fail "no export socket in $T/state: $(ls "$T/state")"
if [[ $qemu_user != root ]]; then
    [[ $(stat -c '%U %a' "$sock") == "$qemu_user 600" ]] ||
        fail "the socket is $(stat -c '%U %a' "$sock"), not $qemu_user's 0600"
fi
! setpriv --reuid=nobody --regid=nogroup --clear-groups \
    nbdinfo --size "nbd+unix:///?socket=$sock" >"$T/nobody" 2>&1 ||
    fail "user nobody read the export: $(cat "$T/nobody")"
grep -E "Permission denied" "$T/nobody" >/dev/null || fail "nobody's failure: $(cat "$T/nobody")"
ok "the export's socket is $qemu_user's ($(stat -c %a "$sock")); user nobody cannot connect"
ov=$T/inst/$new-vda.instant.qcow2
backing=$(qemu-img info -U --output=json "$ov" | jq -r '."backing-filename" // empty')
[[ $backing == *'"driver":"nbd"'* ]] || fail "the overlay's backing is not the export: '$backing'"
virsh -q -c qemu:///system dumpxml "$new" | grep "protocol='nbd'" >/dev/null ||
    fail "the running domain has no NBD layer"

run_ok livebackup status --json "$new"
st=$(jq -r 'select(.event == "instant" and .disk == "vda") | .state' "$T/out")
fin=$(jq -r 'select(.event == "instant" and .disk == "vda") | .finishing' "$T/out")
[[ $st == pulling && $fin == true ]] || fail "status while pulling: $(cat "$T/out")"
in_guest_check "$new" "$min"
ok "while the pull runs: status says pulling, files 1..$min intact inside the guest"

# The guest writes; then the watcher and the export are killed mid-pull.
VM_EXEC_TIMEOUT=60 vm_guest_exec "$new" sh -c \
    'echo written-during-the-pull >/data/instant-marker && sync' >/dev/null ||
    fail "the guest could not write"
pulled=$(jq -r 'select(.event == "instant" and .disk == "vda") | .pulled' "$T/out")
run_ok livebackup status --json "$new"
[[ $(jq -r 'select(.event == "instant") | .state' "$T/out") == pulling ]] ||
    fail "the pull ended before the test could interrupt it: $(cat "$T/out")"
watcher=$(sed -n 's/^pid //p' "$LIVEBACKUP_STATE_DIR/$new.instant.lock")
export_pid=$(cat "$LIVEBACKUP_STATE_DIR/$new-vda.export.pid")
[[ $watcher =~ ^[0-9]+$ && $export_pid =~ ^[0-9]+$ ]] ||
    fail "watcher '$watcher', export '$export_pid'"
# The fill's nbdcopy reads the socket of the watcher's own rate-limiting
# nbdkit, beside the export's, not a "[ nbdkit ... ]" it starts itself
# (its libnbd then keeps /tmp/libnbdXXXXXX, which the kill below would
# leave behind).
copier=""
for p in $(cat /proc/"$watcher"/task/*/children 2>/dev/null); do
    [[ $(cat "/proc/$p/comm" 2>/dev/null) == nbdcopy ]] && copier=$p
done
[[ -n $copier ]] || fail "no nbdcopy under the watcher $watcher"
args=$(tr '\0' ' ' <"/proc/$copier/cmdline")
[[ $args == *"socket=$LIVEBACKUP_STATE_DIR/"*".rate "* && $args != *" [ "* ]] ||
    fail "the fill's nbdcopy: $args"
kill -KILL "$watcher" "$export_pid"
wait_until 30 "the watcher and the export to die" eval "! lb_alive $watcher && ! lb_alive $export_pid"
run_ok livebackup status "$new"
grep -q "nothing is finishing it" "$T/out" || fail "status after the kills: $(cat "$T/out")"
ok "watcher and export killed mid-pull (pulled $pulled bytes by then): status says so"

# QEMU 7.2's NBD client may crash when its server vanishes mid-request (a
# segfault, seen in 2 of 4 runs): the domain is then shut off, and
# recover finishes the pull offline. Either way the pull completes and the
# guest's write, synced before the kill, is kept.
state=$(virsh -q -c qemu:///system domstate "$new")
if [[ $state == running ]]; then
    # recover killed while it holds the guest paused for its pivot: the
    # guest stays paused (the journal says whose pause it is), and the
    # next recover resumes it and finishes.
    rc=0
    LIVEBACKUP_FAULT=agent:instant-paused livebackup recover "$new" >"$T/f.out" 2>&1 || rc=$?
    [[ $rc -eq 137 ]] || fail "recover with a fault at its pivot: exit status $rc: $(cat "$T/f.out")"
    no_sanitizer_report "$T/f.out"
    [[ $(virsh -q -c qemu:///system domstate --reason "$new") == "paused (user)" ]] ||
        fail "$new is $(virsh -q -c qemu:///system domstate --reason "$new") after recover was killed at its pivot"
    run_ok livebackup recover "$new"
    grep -q "resuming the guest (paused for a pivot" "$T/err" ||
        fail "the second recover did not resume the guest: $(cat "$T/out" "$T/err")"
    ok "recover killed while the guest was paused for its pivot: the next recover resumes it"
else
    run_ok livebackup recover "$new"
fi
grep -q "the instant restore is finished" "$T/out" || fail "recover: $(cat "$T/out" "$T/err")"
for p in $export_pid $(cat "$LIVEBACKUP_STATE_DIR/$new-vda.export.pid" 2>/dev/null); do
    lb_alive "$p" && fail "an export ($p) still runs"
done
ls "$LIVEBACKUP_STATE_DIR" | grep "^$new\.\|\.sock$\|\.rate$" >/dev/null &&
    fail "left in the state directory: $(ls "$LIVEBACKUP_STATE_DIR")"
if [[ $state == "shut off" ]]; then
    grep -q "is shut off: pulling vda from backup $id offline" "$T/err" ||
        fail "recover of a shut-off domain: $(cat "$T/err")"
    [[ $(virsh -q -c qemu:///system domstate "$new") == "shut off" ]] ||
        fail "recover started $new"
    vm_start "$new"
    vm_wait_agent "$new" 120 >/dev/null
    how="QEMU had crashed: the pull finished offline"
else
    [[ $(virsh -q -c qemu:///system domstate "$new") == running ]] ||
        fail "$new is $(virsh -q -c qemu:///system domstate --reason "$new") after recover (it was $state): $(cat "$T/out" "$T/err")"
    how="the guest ran on: the pull finished live"
fi
virsh -q -c qemu:///system dumpxml "$new" | grep "protocol='nbd'" >/dev/null &&
    fail "the domain still has an NBD layer"
disk_finished "$new" "$T/inst"
out=$(VM_EXEC_TIMEOUT=60 vm_guest_exec "$new" cat /data/instant-marker) ||
    fail "the guest's write is gone: $out"
[[ $out == written-during-the-pull ]] || fail "the guest's write reads '$out'"
in_guest_check "$new" "$min"
ok "recover ($how): export restarted, pull completed, no NBD layer, the guest's write kept"

# The host "killed" mid-pull: the domain destroyed, the watcher and the
# export killed. recover finishes the pull offline through a restarted
# export; the domain then starts on its own image.
host=${VM_PREFIX}host
LIVEBACKUP_PULL_BANDWIDTH=524288 run_ok livebackup restore "$vm" --repo "$R" \
    --backup "$id" --instant --to "$T/host" --name "$host" --new-mac \
    --keep-host-access
vm_wait_agent "$host" 120 >/dev/null
watcher=$(sed -n 's/^pid //p' "$LIVEBACKUP_STATE_DIR/$host.instant.lock")
export_pid=$(cat "$LIVEBACKUP_STATE_DIR/$host-vda.export.pid")
virsh -q -c qemu:///system destroy "$host" >/dev/null
kill -KILL "$watcher" "$export_pid" 2>/dev/null || true
wait_until 30 "the watcher and the export to die" eval "! lb_alive $watcher && ! lb_alive $export_pid"
run_ok livebackup recover "$host"
grep -q "is shut off: pulling vda from backup $id offline" "$T/err" ||
    fail "recover of a shut-off domain: $(cat "$T/out" "$T/err")"
disk_finished "$host" "$T/host"
[[ ! -e $LIVEBACKUP_STATE_DIR/$host.instant ]] || fail "the journal is left"
lb_alive "$(cat "$LIVEBACKUP_STATE_DIR/$host-vda.export.pid" 2>/dev/null || echo 0)" &&
    fail "the restarted export still runs"
vm_start "$host"
vm_wait_agent "$host" 120 >/dev/null
in_guest_check "$host" "$min"
vm_destroy "$host"
ok "host killed mid-pull: recover finishes the pull offline, the domain starts on its own image"

# A later backup of the restored domain restores exactly.
virsh -q -c qemu:///system destroy "$new" >/dev/null
run_ok livebackup backup --json "$new" --repo "$R"
id2=$(json_field "$T/out" summary id)
rm -f "$T/later.raw"
run_ok livebackup restore-image --repo "$R" --name "$new" --backup "$id2" --disk vda --to "$T/later.raw"
same_image "$T/later.raw" raw "$(active_image "$new" vda)" qcow2
ok "a later backup ($id2) of the restored domain restores exactly"
