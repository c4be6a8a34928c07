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
libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:PATH=//p' "$LB_BUILD/CMakeCache.txt")
[[ $libdir == /* ]] || libdir=$prefix/$libdir
[[ -f $root$libdir/livebackup/nbdkit-livebackup-plugin.so ]] ||
    fail "the nbdkit plugin is not installed in $libdir/livebackup"
strings "$bin/livebackup" >"$T/strings"
grep -qx "$libdir/livebackup/nbdkit-livebackup-plugin.so" "$T/strings" ||
    fail "the installed livebackup does not look for the plugin in $libdir/livebackup"
for u in backupd.service livebackup@.service livebackup@.timer \
    livebackup-all.service livebackup-all.timer livebackup-failure@.service \
    livebackup-prune.service livebackup-prune.timer livebackup-pull.service \
    livebackup-pull.timer; do
    [[ -f $units/$u ]] || fail "unit not installed: $u"
done
for d in README.md PROTOCOL.md FORMAT.md reliability.md examples/livebackup.default \
    examples/livebackup.conf; do
    [[ -f $root$prefix/share/doc/livebackup/$d ]] || fail "doc not installed: $d"
done
mandir=$(sed -n 's/^CMAKE_INSTALL_MANDIR:PATH=//p' "$LB_BUILD/CMakeCache.txt")
[[ -n $mandir ]] || mandir=share/man # GNUInstallDirs: DATAROOTDIR/man
[[ $mandir == /* ]] || mandir=$prefix/$mandir
for m in man1/livebackup.1 man8/backupd.8; do
    [[ -s $root$mandir/$m ]] || fail "man page not installed: $mandir/$m"
    LANG=C man --warnings=all -l "$root$mandir/$m" >/dev/null 2>"$T/out" && [[ ! -s $T/out ]] ||
        fail "installed $m does not render cleanly: $(cat "$T/out")"
done
[[ -s $root$prefix/share/bash-completion/completions/livebackup ]] ||
    fail "bash completion not installed in $prefix/share/bash-completion/completions"
ok "cmake --install: binaries, the nbdkit plugin, 10 units, docs, man pages, completion and the example settings"

# verify resolves dependencies like sysinit.target inside --root: give it
# the system's own units there. It runs man for the units' man:
# Documentation, which must find the installed pages.
mkdir -p "$root/lib/systemd" "$root/bin"
cp -a /lib/systemd/system "$root/lib/systemd/"
cp -L /bin/sh "$root/bin/sh" # the failure unit's ExecStart
MANPATH=$root$mandir systemd-analyze verify --root="$root" "$units"/*.service "$units"/*.timer >"$T/out" 2>&1 ||
    fail "systemd-analyze verify: $(cat "$T/out")"
grep -q "ExecStart=$prefix/bin/livebackup backup --all" "$units/livebackup-all.service" ||
    fail "livebackup-all.service: $(grep ExecStart "$units/livebackup-all.service")"
! grep -q -- "--repo" "$units/livebackup@.service" "$units/livebackup-all.service" ||
    fail "the livebackup units pass --repo: livebackup reads livebackup.conf itself"
# The example configuration is one livebackup accepts.
LIVEBACKUP_CONFIG=$root$prefix/share/doc/livebackup/examples/livebackup.conf \
    "$bin/livebackup" config >"$T/out" 2>&1 || fail "the example livebackup.conf: $(cat "$T/out")"
grep -q "^keep-daily *7" "$T/out" || fail "the example livebackup.conf: $(cat "$T/out")"
grep -q "ExecStart=$prefix/bin/backupd listen" "$units/backupd.service" ||
    fail "backupd.service: $(grep ExecStart "$units/backupd.service")"
grep -q "ExecStart=$prefix/bin/livebackup copy --from" "$units/livebackup-pull.service" ||
    fail "livebackup-pull.service: $(grep ExecStart "$units/livebackup-pull.service")"
for t in "$units"/*.timer; do
    cal=$(sed -n 's/^OnCalendar=//p' "$t")
    systemd-analyze calendar "$cal" >/dev/null || fail "$t: OnCalendar=$cal does not parse"
done
ok "units verify against the installed binaries; timers' schedules parse"

# Failures report: every backup unit and the prune unit name the failure
# unit; its command (the unit's ExecStart, $$ unescaped, run by sh as
# systemd would) hands the failed unit's log to LIVEBACKUP_NOTIFY.
for u in livebackup@.service livebackup-all.service livebackup-prune.service; do
    grep -qx 'OnFailure=livebackup-failure@%n.service' "$units/$u" || fail "$u: no OnFailure="
done
grep -q "ExecStart=$prefix/bin/livebackup prune --repo \${BACKUPD_REPO} \$LIVEBACKUP_KEEP" \
    "$units/livebackup-prune.service" &&
    grep -q "ExecStart=$prefix/bin/livebackup gc --repo \${BACKUPD_REPO}" "$units/livebackup-prune.service" ||
    fail "livebackup-prune.service: $(grep ExecStart "$units/livebackup-prune.service")"
cmd=$(sed -n "s/^ExecStart=\/bin\/sh -c '\(.*\)'$/\1/p" "$units/livebackup-failure@.service" | sed 's/\$\$/$/g')
[[ -n $cmd ]] || fail "livebackup-failure@.service: $(grep ExecStart "$units/livebackup-failure@.service")"
LIVEBACKUP_FAILED_UNIT=livebackup@web1.service LIVEBACKUP_NOTIFY="cat >$T/notified; echo done >$T/notify.ran" \
    sh -c "$cmd" >"$T/out" 2>&1 || fail "the failure unit's command: $(cat "$T/out")"
[[ $(cat "$T/notify.ran") == done ]] || fail "LIVEBACKUP_NOTIFY did not run: $(cat "$T/out")"
ok "OnFailure= on the backup and prune units; the failure unit runs LIVEBACKUP_NOTIFY; prune + gc unit"

# The installed programs alone (PATH without the build tree).
qemu-img create -q -f qcow2 "$T/d.qcow2" 16M
write_random "$T/d.qcow2" qcow2 $((1 << 20)) $((2 << 20))
inst() { env PATH=/usr/sbin:/usr/bin:/sbin:/bin "$bin/livebackup" "$@"; }
run_ok inst init --repo "$T/repo"
run_ok inst backup-image --repo "$T/repo" --name d --disk vda="$T/d.qcow2"
run_ok inst restore-image --repo "$T/repo" --name d --disk vda --to "$T/r.raw"
same_image "$T/r.raw" raw "$T/d.qcow2" qcow2
ok "the installed livebackup finds the installed backupd: backup and restore"
