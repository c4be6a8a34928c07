#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A night on a host: three guests backed up at once (backup --all -j 3)
# into one `backupd listen` daemon, over several rounds with guest writes
# in between. Every backup restores to a clean filesystem holding every
# round's writes, block-identical to the guest's disk at its freeze except
# for the ext4 superblock (the guests write only when told to, but ext4
# rewrites its superblock when thawed: it sets the needs-recovery flag its
# freeze cleared); the repository verifies; the per-domain summary and
# table, status and list --latest say what ran, in columns that line up
# with a domain name of quotes, spaces and "é". One round runs while the
# program's file is replaced under it, as a package upgrade does.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vmlib.sh"

R=$T/repo
S=$T/backupd.sock
run_ok livebackup init --repo "$R"
lb_listen_start "$R" "$S"

# The second domain's name has what libvirt allows and a shell or an XML
# file must quote: a space, an apostrophe, an ampersand, a two-byte "é";
# and it is longer than the tables' name columns.
vms=()
names=(n1 "n2 wéb'&prod, the long one" n3)
for n in 1 2 3; do
    cp "$LB_TESTVM_DISK_QCOW2" "$VMDIR/n$n.qcow2"
    vms+=("$(new_vm "${names[n - 1]}" --noworkload --disk "vda=$VMDIR/n$n.qcow2:qcow2")")
done
for v in "${vms[@]}"; do vm_wait_agent "$v" 180 >/dev/null; done
ok "three guests up: ${vms[*]}"

# --all backs up every domain of the host: use it when these are the only
# ones (a fresh CI machine), else name them.
if [[ $(virsh -q -c qemu:///system list --all --name | grep -c .) -eq 3 ]]; then
    which=(--all)
else
    which=("${vms[@]}")
fi

for round in 1 2 3; do
    for v in "${vms[@]}"; do
        vm_guest_exec "$v" sh -c "dd if=/dev/urandom of=/data/r$round bs=64k count=$((round * 16)) 2>/dev/null; echo round $round >>/data/log; sync" ||
            fail "write in $v"
    done
    # (no wait for ext4's 5 s journal commit: the freeze flushes the
    # journal, so the frozen disk is the reference and the guest writes
    # nothing after the thaw but its superblock)
    rc=0
    if [[ $round -eq 2 ]]; then
        # A package upgrade during the night: the program's file is
        # replaced (a new file renamed over it, as dpkg does) before the
        # run starts its children. They and their thaw guards must still
        # start (the running program, not the path it was started from).
        mkdir -p "$T/upg"
        cp "$(command -v livebackup)" "$T/upg/livebackup"
        old_ino=$(stat -c %i "$T/upg/livebackup")
        LIVEBACKUP_FAULT_HOOK="agent:jobs-start:cp '$T/upg/livebackup' '$T/upg/new' && mv '$T/upg/new' '$T/upg/livebackup'" \
            "$T/upg/livebackup" backup "${which[@]}" -j 3 --repo "$R" >"$T/out" 2>"$T/err" || rc=$?
        [[ $(stat -c %i "$T/upg/livebackup") != "$old_ino" ]] ||
            fail "round 2: the hook did not replace the program's file"
    else
        livebackup backup "${which[@]}" -j 3 --repo "$R" >"$T/out" 2>"$T/err" || rc=$?
    fi
    [[ $rc -eq 0 ]] || fail "round $round: exit status $rc: $(cat "$T/out" "$T/err")"
    no_sanitizer_report "$T/err"
    [[ $(grep -c " ok " "$T/out") -eq 3 ]] || fail "round $round: $(cat "$T/out")"
    grep -q "3 domain(s) backed up, 0 failed" "$T/out" || fail "summary: $(cat "$T/out")"
    c=$(grep -v "backed up, " "$T/out" | lb_columns ' (RESULT|ok) ' /dev/stdin | sort -u)
    [[ $(wc -l <<<"$c") -eq 1 ]] || fail "round $round: the table's RESULT column moves: $(cat "$T/out")"
    for v in "${vms[@]}"; do
        qemu-img convert -U -O raw "$(active_image "$v" vda)" "$T/visible.raw"
        rm -f "$T/r.raw"
        run_ok livebackup restore-image --repo "$R" --name "$v" --disk vda --to "$T/r.raw"
        cmp -s -i 4096 "$T/r.raw" "$T/visible.raw" ||
            fail "round $round, $v: the restore differs beyond the superblock: $(cmp -i 4096 "$T/r.raw" "$T/visible.raw" 2>&1 | sed -n 1p)"
        e2fsck -fn "$T/r.raw" >/dev/null 2>&1 || fail "round $round, $v: the restore fails e2fsck -fn"
        got=$(debugfs -R "cat /log" "$T/r.raw" 2>/dev/null | grep -c '^round ')
        [[ $got -eq $round ]] || fail "round $round, $v: /log has $got rounds"
        debugfs -R "stat /r$round" "$T/r.raw" 2>/dev/null | grep "Size: $((round * 16 * 65536))" >/dev/null ||
            fail "round $round, $v: /r$round is not whole"
    done
    [[ $round -ne 2 ]] || ok "round 2: the program's file replaced under a running --all -j 3; every child and thaw guard started"
    ok "round $round: 3 domains at once, each restores e2fsck-clean with this round's writes, identical to its frozen disk"
done
[[ $(grep -c "bridged session" "$T/daemon.log") -ge 9 ]] ||
    fail "the agents did not go through the daemon: $(tail "$T/daemon.log")"
ok "every session went through the one daemon"

run_ok livebackup verify --repo "$R"
grep -q "all sound" "$T/out" || fail "verify"
run_ok livebackup list --latest --repo "$R"
for v in "${vms[@]}"; do
    grep -Eq "^$v +3 +[0-9a-f-]+ " "$T/out" || fail "list --latest: $(cat "$T/out")"
done
run_ok livebackup status "${vms[@]}"
[[ $(grep -Ec " ok, " "$T/out") -eq 3 ]] || fail "status: $(cat "$T/out")"
c=$(grep -E "^(DOMAIN|lbt)" "$T/out" | lb_columns ' (LAST BACKUP|[0-9]{8}-)' /dev/stdin | sort -u)
[[ $(wc -l <<<"$c") -eq 1 ]] || fail "status: the LAST BACKUP column moves: $(cat "$T/out")"
ok "repository verifies; list --latest and status show each domain's last backup"

# One domain failing does not stop the others, and the exit status says so.
# --bwlimit is the host's: each of the 3 at once gets a third (their debug
# lines say at what rate they pace).
virsh -q -c qemu:///system suspend "${vms[1]}" >/dev/null
rc=0
livebackup backup "${vms[@]}" -j 3 --bwlimit 30M -v --repo "$R" >"$T/out" 2>"$T/err" || rc=$?
# (the paused one may fail before it connects)
[[ $(grep -c "pacing the connection at 10485760 bytes/s" "$T/err") -ge 2 &&
    $(grep "pacing the connection" "$T/err" | grep -vc "at 10485760 bytes/s") -eq 0 ]] ||
    fail "--bwlimit 30M under -j 3: $(grep pacing "$T/err")"
virsh -q -c qemu:///system resume "${vms[1]}" >/dev/null
[[ $rc -eq 1 ]] || fail "exit status $rc with a failed domain"
grep -Eq "^${vms[1]} +FAILED +.*paused" "$T/out" || fail "no failure line: $(cat "$T/out")"
[[ $(grep -c " ok " "$T/out") -eq 2 ]] || fail "the others did not run: $(cat "$T/out")"
ok "a failing domain does not stop the others; exit status 1; --bwlimit shared between the 3"
kill -TERM "$DAEMON"
wait "$DAEMON" || fail "backupd listen did not stop cleanly"
