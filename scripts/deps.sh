#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Install everything livebackup needs to build, run, test and demo itself,
# from Debian 12's archive only. Idempotent: installs only what is missing
# (apt-get update first when something is). Run as root.
#
#   scripts/deps.sh          build + run + test + demo
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
pkgs=(
    # build
    build-essential cmake pkg-config
    libzstd-dev libssl-dev libargon2-dev libuv1-dev libnbd-dev libvirt-dev
    libxml2-dev
    libcriterion-dev nbdkit-plugin-dev libfuse3-dev
    libjson-c-dev
    # run: images through QEMU's block layer, ssh transport; map (nbdkit),
    # mount (FUSE, fuse2fs for ext2/3/4 inside disks; guestmount for XFS,
    # whose libguestfs appliance is built from the host's kernel: no
    # kernel package, no appliance)
    qemu-utils openssh-client zstd nbdkit fuse3 fuse2fs
    libguestfs-tools libguestfs-xfs linux-image-amd64
    # tests: XFS images made without a loop device (mkfs.xfs -p)
    xfsprogs
    # tests: a real sshd, JSON checks, locks and ttys (util-linux), clang
    # for the sanitizer runtime and the fuzzers
    openssh-server jq util-linux fdisk clang libclang-rt-14-dev time libnbd-bin
    clang-tidy cppcheck
    # tests: systemd-analyze checks the installed units (not run as init)
    systemd
    # man pages (scdoc, built from the help tables), rendering checks
    # (man-db, groff-base), bash completion, the .deb (cpack -G DEB needs
    # dpkg-shlibdeps from dpkg-dev; fakeroot for building as a user)
    scdoc man-db groff-base bash-completion dpkg-dev fakeroot
    # bench/copy.sh compares livebackup copy with rsync
    rsync
    # RADOS backend (librados, no pkg-config: -lrados) and a throwaway
    # single-node cluster for its tests (one mon, one memstore OSD)
    ceph-mon ceph-osd ceph-common librados-dev
)
# the test VM (libvirt without systemd, see tests/vm/README.md)
mapfile -t vm < <(grep -v '^#' "$here/tests/vm/packages.txt")
pkgs+=("${vm[@]}")

if [[ $(id -u) -ne 0 ]]; then
    echo "deps.sh: run as root (it installs Debian packages)" >&2
    exit 1
fi
missing=()
for p in "${pkgs[@]}"; do
    [[ -z $p ]] && continue
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "install ok installed" >/dev/null; then
        missing+=("$p")
    fi
done
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "deps.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # --no-install-recommends: libvirt-daemon-system would replace init.
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
