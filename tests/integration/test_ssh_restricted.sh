#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A VM host's key restricted in authorized_keys to
#   command="backupd serve --restrict-to-repo DIR --append-only",restrict
# (what the README recommends), with the real sshd: backups, listings and
# restores of repositories under DIR work; deleting, creating repositories,
# reaching outside DIR (../, absolute paths, symlinks) and running any
# other command are refused. A compromised VM host cannot destroy its own
# backups.
. "$(dirname "$0")/lib.sh"

sshd_start
A=$T/allowed
mkdir -p "$A" "$T/other"
run_ok livebackup init --repo "$A/repo"
run_ok livebackup init --repo "$T/other/repo"
ln -s "$T/other" "$A/escape"
key=$(cat "$T/ssh/user_key.pub")
echo "command=\"$BACKUPD serve --restrict-to-repo $A --append-only\",restrict $key" \
    >"$T/ssh/authorized_keys"
url() { echo "ssh://root@127.0.0.1:$SSH_PORT$1"; }
rlb() { livebackup "$@" --rsh "$LB_RSH"; }

mkimage "$T/d.qcow2" qcow2 32
run_ok rlb backup-image --json --repo "$(url "$A/repo")" --name host1 --disk vda="$T/d.qcow2"
id=$(json_field "$T/out" summary id)
ok "backup through the restricted key: $id"
run_ok rlb list --repo "$(url "$A/repo")"
grep -q "$id" "$T/out" || fail "list"
run_ok rlb restore-image --repo "$(url "$A/repo")" --name host1 --disk vda --to "$T/r.raw"
same_image "$T/r.raw" raw "$T/d.qcow2" qcow2
run_ok rlb verify --repo "$(url "$A/repo")"
ok "list, restore and verify work"

expect_fail "append-only.*refused" rlb delete --repo "$(url "$A/repo")" --backup "$id"
run_ok livebackup list --repo "$A/repo" --json
grep -q "$id" "$T/out" || fail "the backup was deleted"
ok "delete is refused, the backup is still there"
expect_fail "append-only: it cannot create repositories" \
    rlb init --repo "$(url "$A/new")"
[[ ! -e $A/new ]] || fail "a repository was created"

expect_fail "outside the allowed path" rlb list --repo "$(url "$T/other/repo")"
expect_fail "outside the allowed path" rlb list --repo "$(url "$A/../other/repo")"
expect_fail "outside the allowed path" rlb list --repo "$(url "$A/escape/repo")"
ok "no way out of the allowed directory"

# Whatever the client asks to run, it gets backupd (and nothing else).
out=$(ssh -i "$T/ssh/user_key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o BatchMode=yes -o LogLevel=ERROR -p "$SSH_PORT" root@127.0.0.1 "touch $T/pwned; id" \
    </dev/null 2>&1 || true)
[[ ! -e $T/pwned ]] || fail "the forced command was bypassed"
[[ $out != *uid=* ]] || fail "a shell ran: $out"
ok "any other command runs backupd, not a shell"

# --restrict-names (issue 10, item 3): a key confined to its own sets can
# neither create, read nor list others, served directly or bridged to a
# backupd listen daemon.
mkimage "$T/db.qcow2" qcow2 32
run_ok livebackup backup-image --json --repo "$A/repo" --name db1 --disk vda="$T/db.qcow2"
dbid=$(json_field "$T/out" summary id)
echo "command=\"$BACKUPD serve --restrict-to-repo $A --append-only --restrict-names 'host1*' --restrict-names web?\",restrict $key" \
    >"$T/ssh/authorized_keys"
restricted_checks() {
    local how=$1
    run_ok rlb backup-image --json --repo "$(url "$A/repo")" --name host1-data \
        --disk vda="$T/d.qcow2"
    run_ok rlb backup-image --repo "$(url "$A/repo")" --name web1 --disk vda="$T/d.qcow2"
    expect_fail "may not use the set 'db1'.*restrict-names" rlb backup-image \
        --repo "$(url "$A/repo")" --name db1 --disk vda="$T/d.qcow2"
    expect_fail "may not use the set 'web10'" rlb backup-image \
        --repo "$(url "$A/repo")" --name web10 --disk vda="$T/d.qcow2"
    run_ok rlb list --repo "$(url "$A/repo")" --json
    ! grep -q '"name":"db1"' "$T/out" || fail "$how: db1 listed: $(cat "$T/out")"
    grep -q '"name":"host1-data"' "$T/out" || fail "$how: host1-data not listed"
    grep -q '"name":"web1"' "$T/out" || fail "$how: web1 not listed"
    expect_fail "may not use the set 'db1'" rlb restore-image \
        --repo "$(url "$A/repo")" --name db1 --disk vda --to "$T/db.raw"
    expect_fail "no backup $dbid" \
        rlb show --repo "$(url "$A/repo")" --backup "$dbid"
    [[ ! -e $T/db.raw ]] || fail "$how: db1 restored"
    run_ok rlb restore-image --repo "$(url "$A/repo")" --name host1-data \
        --disk vda --to "$T/h-$how.raw"
    same_image "$T/h-$how.raw" raw "$T/d.qcow2" qcow2
    run_ok rlb verify --repo "$(url "$A/repo")"
    ok "$how: host1* and web? back up, list and restore; db1 can be neither created, read nor listed"
}
restricted_checks direct
run_ok livebackup list --repo "$A/repo" --name db1 --json
[[ $(grep -c '"event":"backup"' "$T/out") -eq 1 ]] || fail "db1 changed: $(cat "$T/out")"

S=$T/backupd.sock
lb_listen_start "$A/repo" "$S"
restricted_checks bridged
grep -q "bridged session from 127.0.0.1.*(append-only).*(restricted names)" "$T/daemon.log" ||
    fail "the restriction did not reach the daemon: $(tail -n 5 "$T/daemon.log")"
run_ok livebackup list --repo "$A/repo" --name db1 --json
[[ $(grep -c '"event":"backup"' "$T/out") -eq 1 ]] || fail "db1 changed: $(cat "$T/out")"
ok "the restriction goes with the session bridged to backupd listen"
