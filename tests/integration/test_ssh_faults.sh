#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The ssh pipe cut at random moments: the agent's ssh client killed, the
# sshd process serving the session killed, backupd killed behind ssh, and
# backupd stopped (a stalled server). Each time: a clear error, a
# repository that verifies, and a retry that succeeds reusing the data
# already uploaded.
. "$(dirname "$0")/lib.sh"

sshd_start
R=$T/repo
run_ok livebackup init --repo "$R"
URL="ssh://root@127.0.0.1:$SSH_PORT$R"
# 16 windows of new data: each cut below stores 2 to 4 of them before its
# kill, and leaves at least 3 s of transfer (at 8 MiB/s) for the next.
qemu-img create -q -f qcow2 "$T/d.qcow2" 256M
write_random "$T/d.qcow2" qcow2 0 $((64 << 20))
snapshot_raw "$T/d.qcow2" "$T/truth.raw"

# Descendants of a PID (recorded), breadth first.
descendants() {
    local p c
    for p in "$@"; do
        for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do
            echo "$c"
            descendants "$c"
        done
    done
}

# The PID of who (ssh, sshd or backupd) for the running agent: the ssh
# client is its child; the sshd serving it and the backupd under that are
# found from the listener's PID (its only session: each cut waits for the
# sessions of the one before to end).
find_victim() {
    local who=$1 agent=$2 p sess
    case $who in
    ssh)
        p=$(cat /proc/"$agent"/task/"$agent"/children 2>/dev/null | awk '{print $1}')
        [[ -n $p && $(cat /proc/"$p"/comm 2>/dev/null) == ssh ]] && echo "$p" ;;
    sshd | backupd)
        for sess in $(cat /proc/"$SSHD_PID"/task/*/children 2>/dev/null); do
            # only once backupd runs under it: the stream is then flowing
            for p in $(descendants "$sess"); do
                if [[ $(cat /proc/"$p"/comm 2>/dev/null) == backupd ]] && lb_alive "$p"; then
                    if [[ $who == sshd ]]; then echo "$sess"; else echo "$p"; fi
                    return 0
                fi
            done
        done ;;
    esac
    return 0
}

# sshd_idle: the listener serves no session.
sshd_idle() { [[ -z $(cat /proc/"$SSHD_PID"/task/*/children 2>/dev/null) ]]; }

# cut WHO: start a paced backup, wait a random moment, kill WHO's process,
# expect a clear failure, then verify and retry.
cut() {
    local who=$1 agent victim="" rc=0 new chunks_before
    chunks_before=$(find "$R/chunks" -type f | wc -l)
    livebackup backup-image --bwlimit 8M --repo "$URL" --rsh "$LB_RSH" \
        --remote-backupd "$BACKUPD" --name d --disk vda="$T/d.qcow2" \
        >"$T/bg.out" 2>"$T/bg.err" &
    agent=$!
    lb_track "$agent"
    lb_watch_log "$T/bg.err"
    running() { lb_alive "$agent" || fail "killing $who: the backup ended first: $(cat "$T/bg.err")"; }
    # Wait for the process, then a random moment of the transfer.
    found() {
        running
        victim=$(find_victim "$who" "$agent")
        [[ -n $victim ]]
    }
    wait_until 60 "the $who process of the backup" found
    # Some data stored first (the retry must reuse it), then a random
    # moment within the next window's transfer.
    stored() {
        running
        [[ $(find "$R/chunks" -type f | wc -l) -ge $((chunks_before + 2)) ]]
    }
    wait_until 60 "two chunks of the backup stored" stored
    sleep "0.$((RANDOM % 5))"
    running
    kill -9 "$victim"
    wait "$agent" || rc=$?
    [[ $rc -eq 1 ]] || fail "killing $who: agent exit status $rc: $(cat "$T/bg.err")"
    grep -Eq "connection to root@127.0.0.1 was cut|ssh was killed by signal 9" "$T/bg.err" ||
        fail "killing $who: unclear error: $(cat "$T/bg.err")"
    ok "$who killed mid-backup: $(grep error "$T/bg.err" | sed -n 1p)"
    # what outlives the cut ends on its own: the repository's writer
    # session, the sshd session
    wait_sessions_ended "$R"
    wait_until 60 "the sshd session of the cut backup to end" sshd_idle
    run_ok livebackup verify --repo "$R"
    grep -q "all sound" "$T/out" || fail "verify after killing $who"
}

# stall: the remote backupd stopped (SIGSTOP) mid-backup, as a hung disk
# under the repository or a broken-into server holds a session: the agent
# takes nothing and gets nothing for LIVEBACKUP_IO_TIMEOUT (3 s here) and
# gives up, saying so, instead of holding the backup (and a VM's lock)
# for ever. The stopped backupd is the server's to end (here by its PID).
stall() {
    local agent victim="" rc=0 chunks_before took
    chunks_before=$(find "$R/chunks" -type f | wc -l)
    LIVEBACKUP_IO_TIMEOUT=3 livebackup backup-image --bwlimit 8M --repo "$URL" --rsh "$LB_RSH" \
        --remote-backupd "$BACKUPD" --name d --disk vda="$T/d.qcow2" \
        >"$T/bg.out" 2>"$T/bg.err" &
    agent=$!
    lb_track "$agent"
    lb_watch_log "$T/bg.err"
    found() {
        lb_alive "$agent" || fail "stall: the backup ended first: $(cat "$T/bg.err")"
        victim=$(find_victim backupd "$agent")
        [[ -n $victim && $(find "$R/chunks" -type f | wc -l) -ge $((chunks_before + 2)) ]]
    }
    wait_until 60 "the backupd of the backup, two chunks stored" found
    # bounded: an agent without the stall limit waits for ever
    lb_stall "$victim" "$agent" KILL
    took=$LB_STALL_MS
    wait "$agent" || rc=$?
    [[ $rc -eq 1 ]] || fail "stall: agent exit status $rc: $(cat "$T/bg.err")"
    grep -q "the repository server (root@127.0.0.1) took and sent nothing for 3 s: gave up on it" "$T/bg.err" ||
        fail "stall: unclear error: $(cat "$T/bg.err")"
    ((took < 10000)) || fail "stall: the agent took $took ms"
    ok "a stopped backupd mid-backup: the agent gave up after $took ms, saying so"
    wait_sessions_ended "$R"
    wait_until 60 "the sshd session of the stalled backup to end" sshd_idle
    run_ok livebackup verify --repo "$R"
    grep -q "all sound" "$T/out" || fail "verify after the stall"
}

cut ssh
cut sshd
cut backupd
stall
# The retry reuses what the interrupted uploads stored.
run_ok livebackup backup-image --json --repo "$URL" --rsh "$LB_RSH" \
    --remote-backupd "$BACKUPD" --name d --disk vda="$T/d.qcow2"
new=$(json_field "$T/out" summary bytes_received)
[[ $new -lt $((64 << 20)) ]] || fail "the retry sent everything again ($new bytes)"
run_ok livebackup restore-image --repo "$R" --name d --disk vda --to "$T/r.raw"
same_image "$T/r.raw" raw "$T/truth.raw" raw
ok "retry over ssh reuses the stored chunks ($new of $((64 << 20)) bytes sent) and restores identical"
