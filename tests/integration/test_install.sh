#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# `cmake --install` (into a DESTDIR): the two programs, the systemd units
# and the docs land where they should; the units pass systemd-analyze
# verify against the installed tree (their ExecStart names the installed
# binaries); the timers' schedules parse; and the installed livebackup,
# with nothing of the build tree on its PATH, finds the installed backupd
# for a backup and a restore.
. "$(dirname "$0")/lib.sh"

root=$T/root
DESTDIR=$root cmake --install "$LB_BUILD" >"$T/out" 2>&1 || fail "cmake --install: $(cat "$T/out")"
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$LB_BUILD/CMakeCache.txt")
bin=$root$prefix/bin
units=$root$prefix/lib/systemd/system
for f in "$bin/livebackup" "$bin/backupd"; do
    [[ -x $f ]] || fail "not installed: $f"
done
for u in backupd.service livebackup@.service livebackup@.timer \
    livebackup-all.service livebackup-all.timer livebackup-pull.service \
    livebackup-pull.timer; do
    [[ -f $units/$u ]] || fail "unit not installed: $u"
done
for d in README.md PROTOCOL.md FORMAT.md reliability.md examples/livebackup.default; do
    [[ -f $root$prefix/share/doc/livebackup/$d ]] || fail "doc not installed: $d"
done
ok "cmake --install: binaries, 7 units, docs and the example settings"

# verify resolves dependencies like sysinit.target inside --root: give it
# the system's own units there.
mkdir -p "$root/lib/systemd"
cp -a /lib/systemd/system "$root/lib/systemd/"
systemd-analyze verify --root="$root" "$units"/*.service "$units"/*.timer >"$T/out" 2>&1 ||
    fail "systemd-analyze verify: $(cat "$T/out")"
grep -q "ExecStart=$prefix/bin/livebackup backup --all" "$units/livebackup-all.service" ||
    fail "livebackup-all.service: $(grep ExecStart "$units/livebackup-all.service")"
grep -q "ExecStart=$prefix/bin/backupd listen" "$units/backupd.service" ||
    fail "backupd.service: $(grep ExecStart "$units/backupd.service")"
grep -q "ExecStart=$prefix/bin/livebackup copy --from" "$units/livebackup-pull.service" ||
    fail "livebackup-pull.service: $(grep ExecStart "$units/livebackup-pull.service")"
for t in "$units"/*.timer; do
    cal=$(sed -n 's/^OnCalendar=//p' "$t")
    systemd-analyze calendar "$cal" >/dev/null || fail "$t: OnCalendar=$cal does not parse"
done
ok "units verify against the installed binaries; timers' schedules parse"

# The installed programs alone (PATH without the build tree).
qemu-img create -q -f qcow2 "$T/d.qcow2" 16M
write_random "$T/d.qcow2" qcow2 $((1 << 20)) $((2 << 20))
inst() { env PATH=/usr/sbin:/usr/bin:/sbin:/bin "$bin/livebackup" "$@"; }
run_ok inst init --repo "$T/repo"
run_ok inst backup-image --repo "$T/repo" --name d --disk vda="$T/d.qcow2"
run_ok inst restore-image --repo "$T/repo" --name d --disk vda --to "$T/r.raw"
same_image "$T/r.raw" raw "$T/d.qcow2" qcow2
ok "the installed livebackup finds the installed backupd: backup and restore"
