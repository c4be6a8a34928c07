#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Hostile clients (issue 10): lbhostile (tests/hostile/) speaks the
# protocol directly, with no agent, and tries what a broken-into VM host
# could send, through the key the README recommends, a forced command
#   backupd serve --restrict-to-repo DIR --append-only --restrict-names GLOB
# over the real sshd, served by that backupd and bridged to a backupd
# listen daemon, and on the daemon's socket. Each case gets the secure
# answer (an ERROR to the client: lbhostile checks which); then the daemon
# still runs, a backup that ran meanwhile through it is unharmed, the
# repository verifies and gc works. The daemon's bounds (sessions,
# memory, idle sessions) answer BUSY; a session waiting on a lock or a
# restore that keeps reading is not idle.
. "$(dirname "$0")/lib.sh"

HOSTILE=$LB_BUILD/tests/lbhostile
R=$T/repo
S=$T/backupd.sock
run_ok livebackup init --repo "$R" --window-size 64K
mkimage "$T/db.qcow2" qcow2 16
run_ok livebackup backup-image --json --repo "$R" --name db1 --disk vda="$T/db.qcow2"
DBID=$(json_field "$T/out" summary id)

sshd_start
key=$(cat "$T/ssh/user_key.pub")
echo "command=\"$BACKUPD serve --restrict-to-repo $T --append-only --restrict-names 'host1*' --idle-timeout 3\",restrict $key" \
    >"$T/ssh/authorized_keys"
# shellcheck disable=SC2206
SSH=(ssh -i "$T/ssh/user_key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
    -o BatchMode=yes -o LogLevel=ERROR -p "$SSH_PORT" root@127.0.0.1 backupd serve --repo "$R")

# hostile HOW CASE ARGS...: run a case over ssh (HOW ssh) or on the
# daemon's socket (HOW sock); it must get the answer it expects.
hostile() {
    local how=$1 rc=0
    shift
    local -a to=(-- "${SSH[@]}")
    [[ $how == ssh ]] || to=(--socket "$S")
    "$HOSTILE" "$@" "${to[@]}" >"$T/h.out" 2>"$T/h.err" || rc=$?
    no_sanitizer_report "$T/h.err"
    [[ $rc -eq 0 ]] || fail "$how $*: exit $rc: $(cat "$T/h.out" "$T/h.err")"
    ok "$how $1: $(head -c 150 "$T/h.out" | tr '\n' ' ')"
}

# The cases every connection must survive: items 1, 2, 5 and 6.
common_cases() {
    local how=$1 c
    for c in meta-begin meta-commit xml-junk xml-raw ref-type raw-short claim; do
        hostile "$how" "$c"
    done
    hostile "$how" amplify
    local id
    id=$(awk '/COMMITTED/ { print $3 }' "$T/h.out")
    [[ -n $id ]] || fail "$how amplify: no id"
    local size
    size=$(stat -c %s "$R/backups/$id")
    [[ $size -lt 4096 ]] || fail "$how amplify: a manifest of $size bytes for 4 empty disks of 2^24 windows"
    ok "$how amplify: 4 disks of 2^24 windows, nothing sent, a $size-byte manifest"
}

# repo_sound: verify says all sound, and gc works (on the server, as the
# administrator would).
repo_sound() {
    run_ok livebackup verify --repo "$R"
    grep -q "all sound" "$T/out" || fail "verify: $(cat "$T/out")"
    run_ok livebackup gc --repo "$R"
    ok "the repository verifies, gc works"
}

# ---- 1. over ssh, served by the forced command's backupd -------------------

common_cases ssh
hostile ssh junk db1 denied
hostile ssh junk host1-junk ok
hostile ssh read-other "$DBID"
hostile ssh list-only 'host1*'
hostile ssh prune-all
hostile ssh idle 20
grep -q "closed the session: nothing received from the peer for 3 s" "$T/h.out" ||
    fail "idle: $(cat "$T/h.out")"
run_ok livebackup list --repo "$R" --name db1 --json
[[ $(grep -c '"event":"backup"' "$T/out") -eq 1 ]] || fail "db1 changed: $(cat "$T/out")"
repo_sound

# ---- 2. backupd listen: on its socket, and bridged from ssh ---------------

start_daemon() { lb_listen_start "$R" "$S" "$@"; }
stop_daemon() {
    kill -TERM "$DAEMON"
    local rc=0
    wait "$DAEMON" || rc=$?
    [[ $rc -eq 0 ]] || fail "backupd listen exit status $rc: $(tail -n 20 "$T/daemon.log")"
}
rc=0
"$BACKUPD" listen --repo "$R" --socket "$S" --trusted-client --log-stderr >"$T/out" 2>&1 || rc=$?
[[ $rc -eq 2 ]] && grep -q "would trust every client of the socket: refused" "$T/out" ||
    fail "listen --trusted-client: exit $rc: $(cat "$T/out")"
[[ ! -e $S ]] || fail "listen --trusted-client made its socket"
ok "backupd listen --trusted-client is refused"
start_daemon --idle-timeout 3

# An honest backup through the daemon meanwhile (12 s at 2 MiB/s).
qemu-img create -q -f qcow2 "$T/honest.qcow2" 64M
write_random "$T/honest.qcow2" qcow2 0 $((24 << 20))
livebackup backup-image --json --bwlimit 2M --repo "$R" --name honest \
    --disk vda="$T/honest.qcow2" >"$T/honest.out" 2>"$T/honest.err" &
honest=$!
lb_track "$honest"
lb_watch_log "$T/honest.err"
wait_until 60 "the honest backup to start" grep -q "backup .* of honest started" "$T/daemon.log"

common_cases sock
lb_alive "$honest" || fail "the honest backup ended before the hostile cases did"
hostile sock idle 20
common_cases ssh
hostile ssh junk db1 denied
hostile ssh read-other "$DBID"
hostile ssh list-only 'host1*'
grep -q "bridged session from 127.0.0.1.*(append-only).*(restricted names)" "$T/daemon.log" ||
    fail "the ssh sessions were not bridged with their restrictions"
rc=0
wait "$honest" || rc=$?
[[ $rc -eq 0 ]] || fail "the honest backup: exit $rc: $(cat "$T/honest.err")"
lb_listen_up || fail "the daemon does not serve"
! grep -Eq "$LB_SANITIZER_RE" "$T/daemon.log" || fail "sanitizer report in the daemon's log"
run_ok livebackup restore-image --repo "$R" --name honest --disk vda --to "$T/honest.raw"
same_image "$T/honest.raw" raw "$T/honest.qcow2" qcow2
ok "the daemon is alive; the honest backup made meanwhile restores identical"
repo_sound
stop_daemon

# ---- 3. the daemon's bounds ------------------------------------------------

# hold MODE EXPECT: a session opened in the background, held until
# release; waits for its answer.
declare -a HELD_FD=() HELD_PID=()
HELD_N=-1
hold_start() {
    local n=$((HELD_N + 1)) fd
    # (the sessions held before keep their own ends only: each ends when
    # its end is closed)
    exec {fd}> >(
        for f in "${HELD_FD[@]}"; do exec {f}>&-; done
        exec "$HOSTILE" open "$1" "$2" --socket "$S" >"$T/hold$n.out" 2>&1
    )
    HELD_FD+=("$fd")
    HELD_PID+=("$!")
    lb_track "$!"
    HELD_N=$n
}
hold_answered() { # N
    wait_until 60 "session $1 to be answered" grep -Eq "open$|ERROR" "$T/hold$1.out"
}
hold() {
    hold_start "$@"
    hold_answered "$HELD_N"
}
# no_session: every session the daemon started has ended (its -v log
# says when each starts and ends; nothing else runs meanwhile).
no_session() {
    [[ $(grep -c "session on fd [0-9]* started" "$T/daemon.log") -eq \
        $(grep -c "session on fd [0-9]* ended" "$T/daemon.log") ]]
}
release_all() {
    local i rc
    for i in "${!HELD_FD[@]}"; do
        exec {HELD_FD[$i]}>&-
        rc=0
        wait "${HELD_PID[$i]}" || rc=$?
        [[ $rc -eq 0 ]] || fail "held session $i: exit $rc"
    done
    wait_until 60 "the daemon to end the held sessions" no_session
    HELD_FD=()
    HELD_PID=()
}

start_daemon --max-sessions 2 --max-memory 64M --memory-wait 0
hold read ok
hold read ok
hold read busy
grep -q "ERROR 15 .*as many sessions as it may at once (--max-sessions 2)" "$T/hold2.out" ||
    fail "past --max-sessions: $(cat "$T/hold2.out")"
ok "past --max-sessions: BUSY, $(cat "$T/hold2.out")"
release_all
# 64 MiB: a session (11 MiB) and one pool worker (26.5 MiB) for one writer
hold write ok
hold write busy
grep -q "ERROR 15 .*reserved as much memory for its sessions as it may (--max-memory 64.0 MiB)" "$T/hold4.out" ||
    fail "past --max-memory: $(cat "$T/hold4.out")"
ok "past --max-memory: BUSY, $(cat "$T/hold4.out")"
release_all
stop_daemon

# By default a session that needs memory others hold waits its turn
# (--memory-wait) instead: first come, first served, until its client
# leaves or the wait ends.
release_one() { # index into HELD_FD
    local rc=0
    exec {HELD_FD[$1]}>&-
    wait "${HELD_PID[$1]}" || rc=$?
    [[ $rc -eq 0 ]] || fail "held session $1: exit $rc: $(cat "$T/hold$(($1 + 1 + HELD_BASE)).out")"
    unset 'HELD_FD[$1]' 'HELD_PID[$1]'
}
mark() { wc -l <"$T/daemon.log"; }
waits_since() { # MARK: a session said it waits since the mark
    tail -n +$(($1 + 1)) "$T/daemon.log" | grep "session waits for memory" >/dev/null
}
answered() { grep -Eq "open$|ERROR" "$T/hold$1.out"; }
start_daemon --max-memory 64M
HELD_BASE=$HELD_N
hold write ok
first=$HELD_N
m=$(mark)
hold_start write ok
wait_until 60 "the second writer to wait" waits_since "$m"
m=$(mark)
hold_start write ok
wait_until 60 "the third writer to wait" waits_since "$m"
grep -q "session waits for memory (--max-memory): 1 session waiting before it" "$T/daemon.log" ||
    fail "the third writer's wait: $(grep 'waits for memory' "$T/daemon.log")"
! answered $((first + 1)) && ! answered $((first + 2)) ||
    fail "writers past --max-memory answered: $(cat "$T/hold$((first + 1)).out" "$T/hold$((first + 2)).out")"
release_one 0
wait_until 60 "the second writer to be answered" answered $((first + 1))
grep -qx "open: open" "$T/hold$((first + 1)).out" || fail "second writer: $(cat "$T/hold$((first + 1)).out")"
! answered $((first + 2)) || fail "the third writer went before its turn: $(cat "$T/hold$((first + 2)).out")"
release_one 1
wait_until 60 "the third writer to be answered" answered $((first + 2))
grep -qx "open: open" "$T/hold$((first + 2)).out" || fail "third writer: $(cat "$T/hold$((first + 2)).out")"
ok "past --max-memory: writers wait their turn and are served in order"
# A waiting client that leaves ends its session; the daemon serves on.
m=$(mark)
hold_start write ok
wait_until 60 "the fourth writer to wait" waits_since "$m"
kill -TERM "${HELD_PID[3]}"
wait "${HELD_PID[3]}" || true
exec {HELD_FD[3]}>&-
wait_until 60 "the daemon to see the waiting client leave" \
    grep -q "the client left while .* waited for memory" "$T/daemon.log"
unset 'HELD_FD[3]' 'HELD_PID[3]'
release_all
ok "a waiting client that leaves is let go"
stop_daemon
# A wait that ends: BUSY, saying so.
start_daemon --max-memory 64M --memory-wait 2
hold write ok
hold write busy
grep -q "ERROR 15 .*held its memory (--max-memory 64.0 MiB) for the 2 s a backup waited (--memory-wait): refused" "$T/hold$HELD_N.out" ||
    fail "past --memory-wait: $(cat "$T/hold$HELD_N.out")"
ok "past --memory-wait: BUSY, $(cat "$T/hold$HELD_N.out")"
release_all
stop_daemon
start_daemon --max-memory 64M
# An agent that waits says so, and goes on when the room is there.
hold write ok
# (without the held session's stdin, which it would keep open)
(
    for f in "${HELD_FD[@]}"; do exec {f}>&-; done
    exec livebackup backup-image --repo "$R" --name honest \
        --disk vda="$T/honest.qcow2" >"$T/waited.out" 2>"$T/waited.err"
) &
waited=$!
lb_track "$waited"
wait_until 60 "the agent to say it waits" grep -q "waiting for room" "$T/waited.err"
grep -q "livebackup: backupd is serving as many sessions as its memory allows (--max-memory): waiting for room, 0 sessions before this one (at most 3600 s)" "$T/waited.err" ||
    fail "the waiting agent said: $(cat "$T/waited.err")"
kill -0 "$waited" 2>/dev/null || fail "the agent did not wait: $(cat "$T/waited.err")"
release_all
rc=0
wait "$waited" || rc=$?
[[ $rc -eq 0 ]] || fail "the agent that waited: exit $rc: $(cat "$T/waited.err")"
ok "an agent past --max-memory waits, says so, and backs up: $(head -n 1 "$T/waited.err")"
run_ok livebackup backup-image --repo "$R" --name honest --disk vda="$T/honest.qcow2"
ok "the sessions done, backups are served again"
stop_daemon

# Idle is time the client does nothing: a session waiting on the
# repository's lock, or a restore that keeps reading, is not idle.
start_daemon --idle-timeout 2 --lock-wait 30
hold_lock -x "$R/lock"
hold_start write ok
# The session waits on the lock for longer than the idle timeout.
wait_until 60 "the session to start" grep -q "session on fd" "$T/daemon.log"
sleep 4 # the time that must pass: more than --idle-timeout 2
[[ ! -s $T/hold$HELD_N.out ]] || fail "answered while the lock is held: $(cat "$T/hold$HELD_N.out")"
release_lock
hold_answered "$HELD_N"
release_all
ok "a session that waited 4 s on the lock (--idle-timeout 2) was served"
run_ok livebackup restore-image --bwlimit 3M --repo "$R" --name honest --disk vda \
    --to "$T/slow.raw"
same_image "$T/slow.raw" raw "$T/honest.qcow2" qcow2
ok "a restore reading 24 MiB at 3 MiB/s (--idle-timeout 2) completes"
stop_daemon
repo_sound
