#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Install, build, and show livebackup's main job on a built-in default:
# a disk image with an ext4 filesystem is backed up in full, changed,
# backed up incrementally (only the changed 4 KiB clusters travel), and
# both backups are restored and checked block for block against the disk
# as it was at each backup. Run as root on Debian 12.
#
#   bash scripts/demo.sh [WORKDIR]     (default /var/tmp/livebackup-demo)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/var/tmp/livebackup-demo}
cd "$here"
bash scripts/deps.sh
BUILD_DIR=$here/build bash scripts/build.sh
lb=$here/build/agent/livebackup

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

rm -rf "$work"
mkdir -p "$work/files"
cd "$work"

step "A 512 MiB disk image holding an ext4 filesystem with some files"
cp -r /usr/share/doc "$work/files/doc"
cp -r /usr/include "$work/files/include" 2>/dev/null || true
truncate -s 512M disk.raw
mkfs.ext4 -q -b 4096 -E lazy_itable_init=0,lazy_journal_init=0 -d files disk.raw
qemu-img convert -O qcow2 disk.raw disk.qcow2
rm disk.raw
qemu-img info disk.qcow2 | grep -E 'virtual size|disk size'

step "livebackup init --repo $work/repo"
"$lb" init --repo "$work/repo"

step "Full backup"
"$lb" backup-image --repo "$work/repo" --name demo --disk vda="$work/disk.qcow2"
qemu-img convert -O raw disk.qcow2 truth-0.raw

step "The disk changes (writes land in a qcow2 overlay, like a tracking overlay)"
qemu-img create -q -f qcow2 -o cluster_size=128k,extended_l2=on \
    -b disk.qcow2 -F qcow2 overlay.qcow2
head -c 3M /dev/urandom >new-data
qemu-io -c "write -s new-data 300M 3M" -c "write -P 0x5a 12k 8k" \
    -c "write -z 100M 64k" -c "discard 200M 1M" overlay.qcow2 >/dev/null
qemu-img convert -O raw overlay.qcow2 truth-1.raw
echo "changed: 3 MiB of new data, 8 KiB rewritten, 64 KiB zeroed, 1 MiB discarded"

step "Incremental backup: only the clusters allocated in the overlay"
"$lb" backup-image --repo "$work/repo" --name demo \
    --disk vda="$work/overlay.qcow2" --since "$work/disk.qcow2"

step "The backups"
"$lb" list --repo "$work/repo"

step "Restore both and check them against the disk at each point"
mapfile -t ids < <("$lb" list --repo "$work/repo" --json | jq -r .id)
for i in 0 1; do
    "$lb" restore-image --repo "$work/repo" --name demo --backup "${ids[$i]}" \
        --disk vda --to "$work/restored-$i.qcow2" --format qcow2
    qemu-img compare -f qcow2 -F raw "restored-$i.qcow2" "truth-$i.raw"
done

step "Verify the repository"
"$lb" verify --repo "$work/repo"

printf '\n\033[1mdemo OK\033[0m: both backups restore identical to the disk as it was; files in %s\n' "$work"
