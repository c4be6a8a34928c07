#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# backupd listen: one daemon owns the repository and serves many agents.
# Local agents (whose backupd child bridges to the daemon) and remote ones
# (ssh://...?socket=, and a restricted append-only key) back up at once;
# the daemon is the only writer; SIGTERM mid-backup aborts cleanly: the
# agent reports it, the repository verifies, the retry succeeds.
. "$(dirname "$0")/lib.sh"

R=$T/repo
S=$T/backupd.sock
run_ok livebackup init --repo "$R"

lb_listen_start "$R" "$S"
ok "backupd listen runs (pid $DAEMON)"

for n in a b c; do
    qemu-img create -q -f qcow2 "$T/$n.qcow2" 96M
    write_random "$T/$n.qcow2" qcow2 0 $((12 << 20))
done
# Local agents, three at once: their backupd children bridge to the daemon.
for n in a b c; do
    livebackup backup-image --json --bwlimit 12M --repo "$R" --name "$n" \
        --disk vda="$T/$n.qcow2" >"$T/$n.out" 2>"$T/$n.err" &
    eval "pid_$n=$!"
    lb_track $!
    lb_watch_log "$T/$n.err"
done
for n in a b c; do
    p=pid_$n
    wait "${!p}" || fail "backup $n: $(cat "$T/$n.err")"
done
[[ $(grep -c "bridged session from local (trusted)" "$T/daemon.log") -ge 3 ]] ||
    fail "the sessions did not go through the daemon: $(cat "$T/daemon.log")"
ok "three local agents at once, all through the daemon (as trusted local children)"

# A remote agent naming the socket explicitly.
sshd_start
URL="ssh://root@127.0.0.1:$SSH_PORT$R?socket=$S"
run_ok livebackup backup-image --json --repo "$URL" --rsh "$LB_RSH" \
    --remote-backupd "$BACKUPD" --name remote --disk vda="$T/a.qcow2"
grep -q "bridged session from 127.0.0.1" "$T/daemon.log" ||
    fail "the ssh session was not bridged: $(tail -n 5 "$T/daemon.log")"
! grep "bridged session from 127.0.0.1" "$T/daemon.log" | grep trusted >/dev/null ||
    fail "the ssh session was trusted: $(grep "from 127.0.0.1" "$T/daemon.log")"
ok "remote agent over ssh, bridged to the daemon (?socket=), its chunks checked"

# An append-only key: its bridged sessions stay append-only.
key=$(cat "$T/ssh/user_key.pub")
echo "command=\"$BACKUPD serve --restrict-to-repo $T --append-only\",restrict $key" \
    >"$T/ssh/authorized_keys"
RURL="ssh://root@127.0.0.1:$SSH_PORT$R"
run_ok livebackup list --repo "$RURL" --rsh "$LB_RSH"
id=$(livebackup list --repo "$R" --json | sed -n 1p | jq -r .id)
expect_fail "append-only" livebackup delete --repo "$RURL" --rsh "$LB_RSH" --backup "$id"
grep -q "append-only" "$T/daemon.log" || fail "restriction not passed to the daemon"
ok "an append-only key stays append-only through the daemon"

run_ok livebackup verify --repo "$R"
for n in a b c; do
    run_ok livebackup restore-image --repo "$R" --name "$n" --disk vda --to "$T/$n.raw"
    same_image "$T/$n.raw" raw "$T/$n.qcow2" qcow2
done
ok "every backup verifies and restores identical"

nchunks() { find "$R/chunks" -type f | wc -l; }

# The daemon stalls (SIGSTOP) in the middle of a backup: the agent, whose
# socket takes nothing and sends nothing for LIVEBACKUP_IO_TIMEOUT (3 s
# here), shuts it down and gives up, saying so; the daemon, running
# again, serves on and the repository verifies.
head -c $((32 << 20)) /dev/urandom >"$T/stall.raw"
before=$(nchunks)
LIVEBACKUP_IO_TIMEOUT=3 livebackup backup-image --bwlimit 8M --repo "$R" --name stall \
    --disk vda="$T/stall.raw" >"$T/stall.out" 2>"$T/stall.err" &
agent=$!
lb_track "$agent"
stall_flowing() {
    lb_alive "$agent" || fail "the backup of stall ended early: $(cat "$T/stall.err")"
    [[ $(nchunks) -gt $before ]]
}
wait_until 60 "the backup of stall to store its first chunk" stall_flowing
lb_stall "$DAEMON" "$agent" CONT
rc=0
wait "$agent" || rc=$?
[[ $rc -eq 1 ]] && grep -q "the repository server ($R) took and sent nothing for 3 s: gave up on it" "$T/stall.err" ||
    fail "a stopped daemon: exit status $rc: $(cat "$T/stall.err")"
run_ok livebackup list --repo "$R" --name stall --json
[[ ! -s $T/out ]] || fail "the stalled backup was committed"
run_ok livebackup verify --repo "$R"
grep -q "all sound" "$T/out" || fail "verify after the stall"
ok "a stopped daemon mid-backup: the agent gave up after $LB_STALL_MS ms, saying so; the daemon serves on"

# SIGTERM in the middle of a backup.
qemu-img create -q -f qcow2 "$T/big.qcow2" 128M
write_random "$T/big.qcow2" qcow2 0 $((48 << 20))
before=$(nchunks)
livebackup backup-image --bwlimit 8M --repo "$R" --name big \
    --disk vda="$T/big.qcow2" >"$T/big.out" 2>"$T/big.err" &
agent=$!
lb_track "$agent"
lb_watch_log "$T/big.err"
# Its first chunk stored, 44 of its 48 MiB still to send (5 s at 8 MiB/s).
big_flowing() {
    lb_alive "$agent" || fail "the backup of big ended early: $(cat "$T/big.err")"
    grep -q "backup .* of big started" "$T/daemon.log" && [[ $(nchunks) -gt $before ]]
}
wait_until 60 "the backup of big to store its first chunk" big_flowing
kill -TERM "$DAEMON"
rc=0
wait "$agent" || rc=$?
[[ $rc -eq 1 ]] || fail "agent exit status $rc after SIGTERM: $(cat "$T/big.err")"
grep -Eq "shutting down|connection" "$T/big.err" || fail "unclear error: $(cat "$T/big.err")"
rc=0
wait "$DAEMON" || rc=$?
[[ $rc -eq 0 ]] || fail "backupd listen exit status $rc"
[[ ! -e $R/listen && ! -e $S ]] || fail "the daemon left its socket or marker"
ok "SIGTERM mid-backup: $(grep error "$T/big.err" | sed -n 1p)"
run_ok livebackup verify --repo "$R"
grep -q "all sound" "$T/out" || fail "verify after SIGTERM"
run_ok livebackup list --repo "$R" --name big --json
[[ ! -s $T/out ]] || fail "the aborted backup was committed"
# The retry (no daemon now: backupd serve works as before).
run_ok livebackup backup-image --repo "$R" --name big --disk vda="$T/big.qcow2"
run_ok livebackup restore-image --repo "$R" --name big --disk vda --to "$T/big.raw"
same_image "$T/big.raw" raw "$T/big.qcow2" qcow2
ok "the repository verifies, the aborted backup left nothing, the retry succeeds"

# A repository owned by another user (the ssh login of the agents) with the
# daemon running as root: that user's backupd serve cannot reach the
# daemon's socket; it says so instead of writing beside the daemon.
chmod 711 "$T"
mkdir "$T/nb"
chown nobody "$T/nb"
# (copies of the programs: the build tree may not be reachable for nobody)
mkdir "$T/nb/bin"
cp "$LIVEBACKUP" "$BACKUPD" "$T/nb/bin/"
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
as_nobody "$T/nb/bin/livebackup" init --repo "$T/nb/repo" >"$T/out" 2>&1 || fail "init as nobody: $(cat "$T/out")"
R=$T/nb/repo S=$T/nb.sock
lb_listen_start "$R" "$S"
rc=0
as_nobody "$T/nb/bin/livebackup" list --repo "$R" >"$T/out" 2>&1 || rc=$?
[[ $rc -eq 1 ]] || fail "list as nobody beside a root daemon: exit $rc: $(cat "$T/out")"
grep -q "backupd listen serves this repository on $S, but user $(id -u nobody) may not connect" "$T/out" ||
    fail "no clear error: $(cat "$T/out")"
grep -q "User= in backupd.service" "$T/out" || fail "no hint: $(cat "$T/out")"
ok "a user who may not reach the daemon's socket gets a clear error, not a second writer"
# Should that user reach the socket anyway (its mode widened by hand), the
# daemon still refuses its BRIDGE (SO_PEERCRED: neither root nor its user),
# and with it any claim to be a trusted local child.
chmod 666 "$S"
rc=0
as_nobody "$T/nb/bin/livebackup" list --repo "$R" >"$T/out" 2>&1 || rc=$?
[[ $rc -eq 1 ]] && grep -q "BRIDGE refused" "$T/out" ||
    fail "a BRIDGE from nobody: exit $rc: $(cat "$T/out")"
ok "the daemon refuses a BRIDGE from a user other than root or its own"

# One daemon per repository, whatever its socket.
rc=0
"$BACKUPD" listen --repo "$R" --socket "$T/second.sock" --log-stderr >"$T/out" 2>&1 || rc=$?
[[ $rc -eq 1 ]] || fail "a second daemon on one repository: exit $rc: $(cat "$T/out")"
grep -q "another backupd listen serves $R (on $S)" "$T/out" || fail "second daemon: $(cat "$T/out")"
[[ ! -e $T/second.sock ]] || fail "the second daemon left a socket"
ok "a second backupd listen on the same repository refuses to start, naming the first"
