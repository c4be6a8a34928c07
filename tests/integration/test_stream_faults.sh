#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Nothing lost when the stream is cut or the repository fills up: backupd
# killed mid-backup (at a fault point and from outside by its PID), the
# agent killed mid-transfer, the repository filesystem full. Each time the
# user gets a clear error, the repository verifies, earlier backups still
# restore, and the retry succeeds reusing the data already stored.
. "$(dirname "$0")/lib.sh"

R=$T/repo
run_ok livebackup init --repo "$R"
qemu-img create -q -f qcow2 "$T/disk.qcow2" 128M
write_random "$T/disk.qcow2" qcow2 0 $((40 << 20))
write_random "$T/disk.qcow2" qcow2 $((90 << 20)) $((8 << 20))
snapshot_raw "$T/disk.qcow2" "$T/truth0.raw"

verify_clean() {
    run_ok livebackup verify --repo "$R"
    grep -q "all sound" "$T/out" || fail "verify: $(cat "$T/out")"
}

# After a writer ran, no crashed session's files remain.
no_stale_sessions() {
    [[ -z $(ls -A "$1/tmp") ]] || fail "session files left in $1/tmp: $(ls -A "$1/tmp")"
}

# 1. backupd dies (SIGKILL) after storing 5 chunks.
LIVEBACKUP_FAULT=backupd:chunk-stored@5 expect_fail \
    "backupd was killed by signal 9|connection closed" \
    livebackup backup-image --repo "$R" --name d --disk vda="$T/disk.qcow2"
verify_clean
run_ok livebackup list --repo "$R" --json
[[ ! -s $T/out ]] || fail "a killed backup was committed"
ok "killed backupd: nothing committed, repository sound"
run_ok livebackup backup-image --json --repo "$R" --name d --disk vda="$T/disk.qcow2"
new=$(json_field "$T/out" summary chunks_new)
[[ $new -le 8 ]] || fail "retry stored $new new chunks: the 5 stored before were not reused"
id0=$(json_field "$T/out" summary id)
no_stale_sessions "$R"
ok "retry reuses the chunks stored before the crash ($new new of 13)"

# 2. backupd dies after receiving COMMIT, before the manifest.
overlay "$T/o1.qcow2" "$T/disk.qcow2" qcow2
write_random "$T/o1.qcow2" qcow2 $((5 << 20)) $((3 << 20))
snapshot_raw "$T/o1.qcow2" "$T/truth1.raw"
LIVEBACKUP_FAULT=backupd:before-commit expect_fail "killed|connection closed" \
    livebackup backup-image --repo "$R" --name d --disk vda="$T/o1.qcow2" \
    --since "$T/disk.qcow2"
verify_clean
run_ok livebackup backup-image --json --repo "$R" --name d \
    --disk vda="$T/o1.qcow2" --since "$T/disk.qcow2"
id1=$(json_field "$T/out" summary id)
ok "crash before commit: retried incremental $id1"

# A DELTA is sent without a QUERY: the same incremental again on the same
# parent sends its deltas again, and none is stored twice.
run_ok livebackup backup-image --json --repo "$R" --name e --disk vda="$T/disk.qcow2"
eid=$(json_field "$T/out" summary id)
overlay "$T/od.qcow2" "$T/disk.qcow2" qcow2
write_random "$T/od.qcow2" qcow2 $((1 << 20)) 4096
write_random "$T/od.qcow2" qcow2 $((9 << 20)) 8192
snapshot_raw "$T/od.qcow2" "$T/truthd.raw"
for k in 1 2; do
    run_ok livebackup backup-image --json --repo "$R" --name e --parent "$eid" \
        --disk vda="$T/od.qcow2" --since "$T/disk.qcow2"
    new=$(json_field "$T/out" summary chunks_new)
    sent=$(json_field "$T/out" summary agent_bytes_sent)
    (( k == 1 ? new == 2 : new == 0 )) || fail "incremental $k stored $new new chunks"
    ((sent > 8192)) || fail "incremental $k sent $sent bytes: its deltas did not travel"
done
run_ok livebackup restore-image --repo "$R" --name e --disk vda --to "$T/e.raw"
same_image "$T/e.raw" raw "$T/truthd.raw" raw
ok "deltas sent unasked: sent again, stored once, restored exact"

# 3. The agent itself dies mid-transfer.
overlay "$T/o2.qcow2" "$T/o1.qcow2" qcow2
write_random "$T/o2.qcow2" qcow2 $((60 << 20)) $((6 << 20))
snapshot_raw "$T/o2.qcow2" "$T/truth2.raw"
rc=0
mkdir "$T/tmp3"
TMPDIR=$T/tmp3 LIVEBACKUP_FAULT=agent:mid-transfer@2 livebackup backup-image --repo "$R" \
    --name d --disk vda="$T/o2.qcow2" --since "$T/o1.qcow2" >/dev/null 2>&1 || rc=$?
[[ $rc -eq 137 ]] || fail "agent fault point: exit status $rc"
[[ -z $(ls -A "$T/tmp3") ]] || fail "the killed agent left files in its TMPDIR: $(ls -A "$T/tmp3")"
# its backupd sees the pipe close, drops the backup and ends its session
wait_sessions_ended "$R"
verify_clean
ok "agent killed mid-transfer: repository sound"

# 4. backupd killed from outside, by its PID, while data flows: 16 MiB
# more that no earlier attempt stored (4 windows, 4 s at 4 MiB/s); killed
# once the first of them is stored.
write_random "$T/o2.qcow2" qcow2 $((100 << 20)) $((16 << 20))
snapshot_raw "$T/o2.qcow2" "$T/truth2.raw"
nchunks() { find "$R/chunks" -type f | wc -l; }
before=$(nchunks)
mkdir "$T/tmp4"
TMPDIR=$T/tmp4 livebackup backup-image --bwlimit 4M --repo "$R" --name d \
    --disk vda="$T/o2.qcow2" --since "$T/o1.qcow2" >"$T/bg.out" 2>"$T/bg.err" &
agent=$!
lb_track "$agent"
lb_watch_log "$T/bg.err"
bd=""
backupd_child() {
    lb_alive "$agent" || fail "the backup ended early: $(cat "$T/bg.err")"
    bd=$(cat "/proc/$agent/task/$agent/children" 2>/dev/null | awk '{print $1}')
    [[ -n $bd && $(cat "/proc/$bd/comm" 2>/dev/null) == backupd ]]
}
wait_until 60 "the backupd child of the agent" backupd_child
# The agent's qemu-nbd listens on a socket whose name is gone from the
# filesystem once the agent is connected: a killed agent leaves no socket
# or directory behind (libnbd's socket activation kept
# /tmp/libnbdXXXXXX/sock until its handle closed).
qnbd=""
qemu_nbd_child() {
    lb_alive "$agent" || fail "the backup ended early: $(cat "$T/bg.err")"
    local p
    for p in $(cat /proc/"$agent"/task/*/children 2>/dev/null); do
        [[ $(cat "/proc/$p/comm" 2>/dev/null) == qemu-nbd ]] && qnbd=$p
    done
    [[ -n $qnbd ]]
}
wait_until 60 "the qemu-nbd child of the agent" qemu_nbd_child
inodes=$(find "/proc/$qnbd/fd" -lname 'socket:*' -printf '%l\n' | tr -dc '0-9\n')
[[ -n $inodes ]] || fail "qemu-nbd $qnbd has no socket open"
names=$(awk -v want=" $(echo $inodes) " 'index(want, " " $7 " ") && $8 != "" {print $8}' /proc/net/unix | sort -u)
[[ -n $names ]] || fail "no name for qemu-nbd's sockets ($inodes) in /proc/net/unix"
for n in $names; do
    [[ $n == "$T/tmp4/"* ]] || fail "qemu-nbd's socket $n is not under the agent's TMPDIR"
    [[ ! -e $n ]] || fail "qemu-nbd's socket $n is still on the filesystem"
done
[[ -z $(ls -A "$T/tmp4") ]] || fail "the agent's TMPDIR holds $(ls -A "$T/tmp4")"
ok "qemu-nbd's socket ($names) is already gone from the filesystem"
data_flows() {
    lb_alive "$agent" || fail "the backup ended early: $(cat "$T/bg.err")"
    [[ $(nchunks) -gt $before ]]
}
wait_until 60 "the backup's first new chunk" data_flows
kill -9 "$bd"
rc=0
wait "$agent" || rc=$?
[[ $rc -eq 1 ]] || fail "agent exit status $rc after backupd was killed"
grep -Eq "backupd was killed by signal 9|connection closed" "$T/bg.err" ||
    fail "unclear error: $(cat "$T/bg.err")"
ok "backupd killed by PID: $(head -n 1 "$T/bg.err")"
verify_clean
run_ok livebackup backup-image --json --repo "$R" --name d \
    --disk vda="$T/o2.qcow2" --since "$T/o1.qcow2"
id2=$(json_field "$T/out" summary id)
no_stale_sessions "$R"
ok "retry after the kill: $id2"

for i in 0 1 2; do
    id=id$i
    run_ok livebackup restore-image --repo "$R" --name d --backup "${!id}" \
        --disk vda --to "$T/r$i.raw"
    same_image "$T/r$i.raw" raw "$T/truth$i.raw" raw
done
ok "every backup restores identical after the faults"

# 4b. backupd dies after the manifest is committed, before the agent hears
# of it: the agent reports the failure, the repository holds a complete
# backup that verifies and restores.
LIVEBACKUP_FAULT=backupd:after-commit expect_fail "backupd was killed by signal 9|connection closed" \
    livebackup backup-image --repo "$R" --name ack --disk vda="$T/disk.qcow2"
verify_clean
run_ok livebackup list --repo "$R" --name ack --json
[[ $(grep -c '"event":"backup"' "$T/out") -eq 1 ]] || fail "the committed backup is not listed: $(cat "$T/out")"
run_ok livebackup restore-image --repo "$R" --name ack --disk vda --to "$T/rack.raw"
same_image "$T/rack.raw" raw "$T/truth0.raw" raw
ok "killed after its commit, before the ack: the backup is there, verifies and restores identical"

# 4c. backupd stops (SIGSTOP, by a hook at its third stored chunk) as a
# hung disk under the repository would stop it: the agent gives up after
# LIVEBACKUP_IO_TIMEOUT (3 s here), saying so, and ends its child; the
# repository verifies. Bounded: an agent without the stall limit waits
# for ever (timeout ends it at 60 s, and the check fails).
# given_up POINT LIMIT PATTERN CMD...: CMD, its backupd stopped at POINT
# (lb_stop_hook) and LIVEBACKUP_IO_TIMEOUT=LIMIT, fails saying PATTERN
# within 15 s (timeout ends it at 60 s) and ends that backupd; $took ms.
given_up() {
    local hook t0 stopped limit=$2 pattern=$3
    hook=$(lb_stop_hook "$1")
    shift 3
    t0=$(date +%s%N)
    LIVEBACKUP_IO_TIMEOUT=$limit LIVEBACKUP_FAULT_HOOK=$hook \
        expect_fail "$pattern" timeout 60 "$@"
    took=$((($(date +%s%N) - t0) / 1000000))
    stopped=$(cat "$T/stopped.pid")
    if lb_alive "$stopped"; then
        kill -KILL "$stopped"
        fail "$*: the stopped backupd ($stopped) was left behind"
    fi
    ((took < 15000)) || fail "$* with a stopped backupd: the agent took $took ms"
}
head -c $((32 << 20)) /dev/urandom >"$T/stall.raw"
given_up backupd:chunk-stored@3 3 \
    "the repository server \($R\) took and sent nothing for 3 s: gave up on it.*hint: nothing half-done was committed \(run again.*LIVEBACKUP_IO_TIMEOUT sets the limit" \
    livebackup backup-image --repo "$R" --name stall --disk vda="$T/stall.raw"
verify_clean
ok "a stopped backupd: the agent gave up after $took ms, saying so, and ended it; repository sound"

# 4d. The commands that wait on the server's own work (gc, verify, list)
# are armed too: the server says WORKING while it makes progress. A gc
# that works longer than the limit (0.2 s at each chunk it examines, as a
# slow disk would) is waited for; a server stopped in the middle of gc,
# verify or list is given up on, saying so, its backupd ended. Bounded:
# an agent that waits for ever is ended by timeout at 60 s, and fails.
t0=$(date +%s%N)
LIVEBACKUP_IO_TIMEOUT=2 LIVEBACKUP_FAULT_HOOK='store:tick@*:sleep 0.2' \
    run_ok timeout 120 livebackup gc --repo "$R"
took=$((($(date +%s%N) - t0) / 1000000))
((took > 4000)) || fail "the slowed gc took $took ms: not longer than twice the 2 s limit, so it shows nothing"
ok "a gc slower than the stall limit (${took} ms, limit 2 s) that says it works is waited for"
for cmd in gc verify list; do
    given_up store:tick@1 2 \
        "the repository server \($R\) took and sent nothing for 2 s: gave up on it.*hint: check the server \(a hung disk or filesystem, a stopped backupd\), then run the command again" \
        livebackup "$cmd" --repo "$R"
    ok "$cmd: a backupd stopped in the middle of it is given up on after $took ms, saying so, and ended"
done
verify_clean
ok "gc, verify and list given up on: repository sound"

# 5. The repository's filesystem fills up.
mkdir "$T/small"
mount -t tmpfs -o size=64m tmpfs "$T/small"
LB_MOUNTS+=("$T/small")
run_ok livebackup init --repo "$T/small/repo"
head -c $((40 << 20)) /dev/zero >"$T/small/filler"
expect_fail "No space left on device.*free space on the repository" \
    livebackup backup-image --repo "$T/small/repo" --name d --disk vda="$T/disk.qcow2"
R=$T/small/repo verify_clean
stored=$(du -sk "$T/small/repo/chunks" | cut -f1)
rm "$T/small/filler"
run_ok livebackup backup-image --json --repo "$T/small/repo" --name d \
    --disk vda="$T/disk.qcow2"
new=$(json_field "$T/out" summary bytes_new)
[[ $new -lt $((40 << 20)) ]] || fail "after ENOSPC the retry re-stored everything ($new bytes)"
R=$T/small/repo verify_clean
run_ok livebackup restore-image --repo "$T/small/repo" --name d --disk vda --to "$T/rs.raw"
same_image "$T/rs.raw" raw "$T/truth0.raw" raw
ok "disk full: clear error, repository sound, retry reuses ${stored} KiB and succeeds"
