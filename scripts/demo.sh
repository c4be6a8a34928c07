#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Install, build, and show livebackup's main job on a built-in default: a
# tiny demo VM (built from Debian packages, running under libvirt/QEMU and
# writing files with known content) is backed up live and quiesced, keeps
# writing, is backed up incrementally (only the changed 4 KiB clusters
# travel), and both backups are restored and checked: a clean filesystem
# holding every file the guest had finished. Run as root on Debian 12.
#
#   bash scripts/demo.sh [WORKDIR]     (default /var/tmp/livebackup-demo)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/var/tmp/livebackup-demo}
cd "$here"
bash scripts/deps.sh
BUILD_DIR=$here/build bash scripts/build.sh
export PATH="$here/build/agent:$here/build/backupd:$PATH"
export LIVEBACKUP_STATE_DIR=$work/state
export LB_TESTVM_DIR=${LB_TESTVM_DIR:-/var/cache/livebackup-testvm}
vm=livebackup-demo

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

rm -rf "$work"
mkdir -p "$work/vm"
chmod 755 "$work" "$work/vm"

step "Build the demo VM from Debian packages (cached in $LB_TESTVM_DIR)"
bash tests/vm/build-testvm.sh "$LB_TESTVM_DIR" | tail -n 2
# shellcheck source=/dev/null
. "$LB_TESTVM_DIR/env.sh"
. tests/vm/vm.sh
. tests/vm/libvirt.sh
lv_up "$work/libvirt"
cleanup() {
    vm_destroy "$vm" >/dev/null 2>&1 || true
    lv_down "$work/libvirt" >/dev/null 2>&1 || true
}
trap cleanup EXIT

step "Start $vm: a 256 MiB qcow2 data disk, qemu-guest-agent, a workload writing files"
cp "$LB_TESTVM_DISK_QCOW2" "$work/vm/$vm.qcow2"
vm_destroy "$vm" >/dev/null 2>&1 || true
vm_define "$vm" "$work/vm" --disk "vda=$work/vm/$vm.qcow2:qcow2" >/dev/null
vm_start "$vm" >/dev/null
vm_wait_agent "$vm" 120 >/dev/null
vm_wait_workload "$vm" 3 >/dev/null
echo "running; the workload has written $(vm_workload_last "$vm") files"

step "livebackup init --repo $work/repo (encrypted: the passphrase from a file)"
head -c 24 /dev/urandom | base64 >"$work/passphrase"
chmod 600 "$work/passphrase"
export LIVEBACKUP_PASSPHRASE_FILE=$work/passphrase
livebackup init --repo "$work/repo"

step "Full backup, live, guest quiesced through its agent"
n0=$(vm_workload_last "$vm")
livebackup backup "$vm" --repo "$work/repo"
livebackup status "$vm"

step "The guest keeps writing (and we add 16 MiB of random data)"
vm_guest_exec "$vm" sh -c 'dd if=/dev/urandom of=/data/demo.bin bs=1M count=16 conv=fsync 2>/dev/null'
vm_wait_workload "$vm" $((n0 + 8)) >/dev/null
echo "the workload has written $(vm_workload_last "$vm") files"

step "Incremental backup: only the clusters the guest changed"
n1=$(vm_workload_last "$vm")
livebackup backup "$vm" --repo "$work/repo"
livebackup list --repo "$work/repo"

step "Restore both backups and check them"
mapfile -t ids < <(livebackup list --repo "$work/repo" --json | jq -r .id)
mins=("$n0" "$n1")
for i in 0 1; do
    livebackup restore-image --repo "$work/repo" --name "$vm" --backup "${ids[$i]}" \
        --disk vda --to "$work/restored-$i.raw"
    m=$(bash tests/vm/wl-verify.sh "$work/restored-$i.raw" "${mins[$i]}")
    echo "backup ${ids[$i]}: e2fsck clean, all $m files intact (${mins[$i]} were done before its freeze)"
done
debugfs -R "stat /demo.bin" "$work/restored-1.raw" 2>/dev/null | grep "Size: 16777216" >/dev/null
echo "the 16 MiB written between the backups is in the incremental"

step "Verify the repository"
livebackup verify --repo "$work/repo"

step "Stop tracking: the domain goes back to its own image"
livebackup untrack "$vm"
virsh -q -c qemu:///system domblklist "$vm"

printf '\n\033[1mdemo OK\033[0m: live full + incremental backups of %s restore to clean, complete filesystems\n' "$vm"
