#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# restore --instant of a backup in a RADOS repository (issue 16), on the
# throwaway single-node cluster of test_rados (cephlib.sh): the backup and
# every read of the exports go through backupd, the repository's only
# writer. The test guest has its ext4 data disk (vda) and a raw disk the
# guest never mounts (vdb: random data and holes). Checked: the restored
# guest's agent answers and it holds the files written before the backup;
# the pull completes by itself (the watcher): no NBD layer left, the
# exports stopped, the journal gone; the restored vdb equals the backup's
# disk exactly, and the guest's files on vda are intact.
# Registered in the plain build only (tests/CMakeLists.txt), like
# test_rados.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vmlib.sh"
. "$(dirname "$0")/cephlib.sh"

trap 'rc=$?; instant_cleanup; vm_test_cleanup; ceph_stop; lb_cleanup "$rc"' EXIT

t_start=$(date +%s.%N)
ceph_start
export TMPDIR=$T/tmp
mkdir -p "$TMPDIR"
R=$(ceph_repo inst)
run_ok livebackup init --repo "$R"

cp "$LB_TESTVM_DISK_QCOW2" "$VMDIR/src.qcow2"
mkimage "$VMDIR/b.raw" raw 24
write_random "$VMDIR/b.raw" raw 1M 3M
write_random "$VMDIR/b.raw" raw 13M 2M
vm=$(new_vm src --disk "vda=$VMDIR/src.qcow2:qcow2" --disk "vdb=$VMDIR/b.raw:raw")
vm_wait_agent "$vm" 120 >/dev/null
vm_wait_workload "$vm" 3 >/dev/null
min=$(wl_done "$vm")
run_ok livebackup backup --json "$vm" --repo "$R"
id=$(json_field "$T/out" summary id)
virsh -q -c qemu:///system destroy "$vm" >/dev/null
ok "backup $id of $vm ($min workload files) in RADOS"

new=${VM_PREFIX}inst
run_ok livebackup restore --json "$vm" --repo "$R" --backup "$id" --instant \
    --to "$T/inst" --name "$new" --new-mac --keep-host-access
vm_wait_agent "$new" 120 >/dev/null
out=$(VM_EXEC_TIMEOUT=120 vm_guest_exec "$new" sh -c \
    "for n in \$(seq 1 $min); do f=\$(printf /data/wl/f%06d \$n); awk -v n=\$n -f /lbtest/wlgen.awk | cmp -s - \$f || { echo BAD \$n; exit 1; }; done; echo GOOD") ||
    fail "in $new: $out"
[[ $out == *GOOD* ]] || fail "in $new: $out"
ok "restore --instant from RADOS: the guest runs, files 1..$min intact"

wait_until 600 "the pull to complete" test ! -e "$LIVEBACKUP_STATE_DIR/$new.instant"
virsh -q -c qemu:///system dumpxml "$new" | grep "protocol='nbd'" >/dev/null &&
    fail "the domain still has an NBD layer"
for p in "$LIVEBACKUP_STATE_DIR"/*.export.pid; do
    [[ -e $p ]] && fail "an export's pid file is left: $p"
done
[[ $(virsh -q -c qemu:///system domstate "$new") == running ]] ||
    fail "$new is $(virsh -q -c qemu:///system domstate "$new")"
img=$(active_image "$new" vdb)
[[ $img == "$T/inst/$new-vdb.qcow2" ]] || fail "vdb runs on $img"
b=$(qemu-img info -U --output=json "$img" | jq -r '."backing-filename" // empty')
[[ $b == "$T/inst/$new-vdb.raw" ]] || fail "vdb's image $img is backed by '$b'"
virsh -q -c qemu:///system destroy "$new" >/dev/null
same_image "$img" qcow2 "$VMDIR/b.raw" raw
ok "the pull completed: vdb on its qcow2 over its local raw base, no NBD layer, the exports stopped; vdb equals the backup's disk"
ok "took $(echo "$(date +%s.%N) - $t_start" | bc) s with the cluster"
