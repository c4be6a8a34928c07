#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The Debian packages (issue 15): a build tree of this source configured
# for /usr makes livebackup and backupd .debs with `cpack -G DEB`; their
# dependencies are declared (dpkg-shlibdeps' libraries, backupd, qemu-utils,
# ssh) and they hold the units, man pages and completion. They are
# installed on this machine (the test machine) with apt from the files,
# the installed programs back up and restore an image, man finds the pages
# and the units verify; then both are purged, and nothing of them stays.
#
# One run at a time on the machine (other build trees run this test too):
# a lock, like the VM tests'.
. "$(dirname "$0")/lib.sh"

[[ $(id -u) -eq 0 ]] || fail "installs packages: run as root (scripts/test.sh does)"
exec {lock}>/run/lock/livebackup-deb-test.lock
flock -w 1800 "$lock" || fail "another test_deb held /run/lock/livebackup-deb-test.lock for 30 min"
if dpkg-query -W -f='${Status}' livebackup backupd 2>/dev/null | grep "ok installed" >/dev/null; then
    fail "livebackup or backupd is installed already: this test would replace it"
fi
purge() {
    apt-get purge -y -q -o DPkg::Lock::Timeout=600 livebackup backupd >"$T/purge.out" 2>&1
}
trap 'rc=$?; purge || true; lb_cleanup "$rc"' EXIT

b=$T/build
cmake -S "$LB_SRC" -B "$b" -DCMAKE_INSTALL_PREFIX=/usr -DLB_TESTS=OFF -DLB_WERROR=ON \
    >"$T/out" 2>&1 || fail "cmake: $(tail -20 "$T/out")"
cmake --build "$b" -j "$(nproc)" >"$T/out" 2>&1 || fail "build: $(tail -20 "$T/out")"
(cd "$b" && cpack -G DEB) >"$T/out" 2>&1 || fail "cpack -G DEB: $(tail -20 "$T/out")"
ver=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$b/CMakeCache.txt")
arch=$(dpkg --print-architecture)
deb_a=$b/livebackup_${ver}_$arch.deb deb_b=$b/backupd_${ver}_$arch.deb
[[ -f $deb_a && -f $deb_b ]] || fail "cpack made: $(ls "$b"/*.deb 2>&1)"
ok "cpack -G DEB made livebackup and backupd $ver"

dep_a=$(dpkg-deb -f "$deb_a" Depends) dep_b=$(dpkg-deb -f "$deb_b" Depends)
for d in "backupd (= $ver)" qemu-utils openssh-client libvirt0 libzstd1 libnbd0 libxml2 libssl3 libc6; do
    [[ $dep_a == *"$d"* ]] || fail "livebackup does not depend on $d: $dep_a"
done
for d in libuv1 libzstd1 libssl3; do
    [[ $dep_b == *"$d"* ]] || fail "backupd does not depend on $d: $dep_b"
done
[[ $dep_b != *libvirt* ]] || fail "backupd depends on libvirt: $dep_b"
# librados is loaded for a RADOS repository only: suggested, not required.
[[ $dep_b != *librados* ]] || fail "backupd depends on librados: $dep_b"
[[ $(dpkg-deb -f "$deb_b" Suggests) == *librados2* ]] ||
    fail "backupd does not suggest librados2: $(dpkg-deb -f "$deb_b" Suggests)"
dpkg-deb -c "$deb_a" | awk '{print $6}' >"$T/files_a"
dpkg-deb -c "$deb_b" | awk '{print $6}' >"$T/files_b"
for f in ./usr/bin/livebackup ./usr/lib/systemd/system/livebackup@.service \
    ./usr/lib/systemd/system/livebackup-all.timer ./usr/share/man/man1/livebackup.1 \
    ./usr/share/bash-completion/completions/livebackup \
    "./usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/livebackup/nbdkit-livebackup-plugin.so"; do
    grep -qx -- "$f" "$T/files_a" || fail "livebackup.deb lacks $f"
done
for f in ./usr/bin/backupd ./usr/lib/systemd/system/backupd.service \
    ./usr/share/man/man8/backupd.8 ./usr/share/doc/livebackup/FORMAT.md; do
    grep -qx -- "$f" "$T/files_b" || fail "backupd.deb lacks $f"
done
ok "dependencies declared (shlibdeps and the tools); binaries, units, man pages, completion packaged"

# Install from the files: apt checks the dependencies (all installed on the
# test machine: nothing is downloaded) and waits for dpkg's lock.
apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 \
    "$deb_a" "$deb_b" >"$T/out" 2>&1 || fail "apt-get install: $(tail -20 "$T/out")"
dpkg-query -W -f='${Status} ${Version}\n' livebackup backupd >"$T/st"
[[ $(grep -c "install ok installed $ver" "$T/st") -eq 2 ]] || fail "installed: $(cat "$T/st")"
inst() { env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$T" LIVEBACKUP_CONFIG= \
    LIVEBACKUP_STATE_DIR="$T/state" LIVEBACKUP_ENCRYPTION=none "$@"; }
w=$(inst which livebackup)
[[ $w == /usr/bin/livebackup ]] || fail "livebackup is '$w'"
# libvirt and librados are loaded when first used, never linked: a command
# or a server that does not use them does not load them.
ldd /usr/bin/livebackup | grep -E 'libvirt|librados' &&
    fail "the installed livebackup links libvirt or librados"
ldd /usr/bin/backupd | grep -E 'libvirt|librados' &&
    fail "the installed backupd links libvirt or librados"
qemu-img create -q -f qcow2 "$T/d.qcow2" 16M
write_random "$T/d.qcow2" qcow2 $((1 << 20)) $((2 << 20))
run_ok inst livebackup init --repo "$T/repo"
run_ok inst livebackup backup-image --repo "$T/repo" --name d --disk vda="$T/d.qcow2"
run_ok inst livebackup restore-image --repo "$T/repo" --name d --disk vda --to "$T/r.raw"
same_image "$T/r.raw" raw "$T/d.qcow2" qcow2
ok "the installed livebackup and backupd back up and restore an image"

[[ $(man -w livebackup) == /usr/share/man/man1/livebackup.1* ]] || fail "man -w livebackup: $(man -w livebackup 2>&1)"
[[ $(man -w 8 backupd) == /usr/share/man/man8/backupd.8* ]] || fail "man -w backupd: $(man -w 8 backupd 2>&1)"
systemd-analyze verify /usr/lib/systemd/system/livebackup@.service \
    /usr/lib/systemd/system/livebackup-all.service /usr/lib/systemd/system/backupd.service \
    >"$T/out" 2>&1 || fail "systemd-analyze verify: $(cat "$T/out")"
bash --norc --noprofile -c '. /usr/share/bash-completion/bash_completion
    __load_completion livebackup && complete -p livebackup' >"$T/out" 2>&1 ||
    fail "bash-completion does not load the installed completion: $(cat "$T/out")"
ok "man finds the pages, the units verify, bash-completion loads the completion"

purge || fail "apt-get purge: $(tail -20 "$T/purge.out")"
for f in /usr/bin/livebackup /usr/bin/backupd /usr/share/man/man1/livebackup.1 \
    /usr/lib/systemd/system/backupd.service; do
    [[ ! -e $f ]] || fail "$f is left after the purge"
done
! dpkg-query -W -f='${Status}\n' livebackup backupd 2>/dev/null | grep "ok installed" >/dev/null ||
    fail "still installed: $(dpkg-query -W livebackup backupd)"
ok "purged: nothing of the packages is left"
