#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# An encrypted repository on "another machine" and in nightly operation:
# backups and restores over ssh through an append-only key (which may not
# replace the repository's key), through a `backupd listen` daemon (a
# local trusted agent and a remote one), then prune and gc on the backup
# server, which has no key; every backup left restores identical and
# authenticates.
. "$(dirname "$0")/lib.sh"

printf 'a passphrase for the remote repository\n' >"$T/pass"
printf 'another one\n' >"$T/pass2"
export LIVEBACKUP_PASSPHRASE_FILE=$T/pass
R=$T/repo
run_ok livebackup init --repo "$R" --encryption repokey

sshd_start
key=$(cat "$T/ssh/user_key.pub")
echo "command=\"$BACKUPD serve --restrict-to-repo $T --append-only\",restrict $key" \
    >"$T/ssh/authorized_keys"
URL="ssh://root@127.0.0.1:$SSH_PORT$R"
rlb() { livebackup "$@" --rsh "$LB_RSH"; }

# ---- over ssh, append-only -----------------------------------------------------
mkimage "$T/d.qcow2" qcow2 64
write_random "$T/d.qcow2" qcow2 $((16 << 20)) $((6 << 20))
snapshot_raw "$T/d.qcow2" "$T/truth0.raw"
run_ok rlb backup-image --json --repo "$URL" --name host1 --disk vda="$T/d.qcow2"
id0=$(json_field "$T/out" summary id)
overlay "$T/o.qcow2" "$T/d.qcow2" qcow2
qemu-io -c "write -P 7 30M 8k" -c "write -z 16M 4k" "$T/o.qcow2" >/dev/null
snapshot_raw "$T/o.qcow2" "$T/truth1.raw"
run_ok rlb backup-image --json --repo "$URL" --name host1 --disk vda="$T/o.qcow2" \
    --since "$T/d.qcow2"
id1=$(json_field "$T/out" summary id)
for i in 0 1; do
    id=id$i
    run_ok rlb restore-image --repo "$URL" --name host1 --backup "${!id}" --disk vda \
        --to "$T/r$i.raw"
    same_image "$T/r$i.raw" raw "$T/truth$i.raw" raw
done
run_ok rlb verify --repo "$URL" --key
grep -q "authenticated 2 backups" "$T/out" || fail "verify --key over ssh: $(cat "$T/out")"
ok "full and incremental over ssh through an append-only key: restored identical, authenticated"

cp "$R/keys/repokey" "$T/repokey.before"
expect_fail "append-only: the repository's key cannot be replaced" \
    rlb key change-passphrase --repo "$URL" --new-passphrase-file "$T/pass2"
cmp -s "$R/keys/repokey" "$T/repokey.before" || fail "the key was replaced"
expect_fail "append-only" rlb init --repo "ssh://root@127.0.0.1:$SSH_PORT$T/new" \
    --encryption repokey
[[ ! -e $T/new ]] || fail "a repository was made through the append-only key"
ok "an append-only key cannot replace the repository's key or make a repository"

# ---- through backupd listen ------------------------------------------------------
S=$T/backupd.sock
lb_listen_start "$R" "$S"
qemu-img create -q -f qcow2 "$T/e.qcow2" 32M
write_random "$T/e.qcow2" qcow2 0 $((9 << 20))
run_ok livebackup backup-image --repo "$R" --name host2 --disk vda="$T/e.qcow2"
grep -q "bridged session from local (trusted)" "$T/daemon.log" ||
    fail "the local backup did not go through the daemon: $(cat "$T/daemon.log")"
run_ok rlb backup-image --json --repo "$URL?socket=$S" --remote-backupd "$BACKUPD" \
    --name host3 --disk vda="$T/e.qcow2"
grep -q "bridged session from 127.0.0.1.*append-only" "$T/daemon.log" ||
    fail "the ssh backup did not go through the daemon: $(cat "$T/daemon.log")"
for n in host2 host3; do
    run_ok livebackup restore-image --repo "$R" --name "$n" --disk vda --to "$T/$n.raw"
    same_image "$T/$n.raw" raw "$T/e.qcow2" qcow2
done
kill -TERM "$DAEMON"
wait "$DAEMON" || fail "backupd listen exited with $?"
ok "through backupd listen: a local (trusted) and a remote agent, both restore identical"

# ---- prune and gc, on the server, without the key ------------------------------
(
    unset LIVEBACKUP_PASSPHRASE_FILE
    run_ok livebackup prune --json --repo "$R" --name host1 --keep-last 1
    [[ $(json_field "$T/out" summary removed) -eq 1 ]] || fail "prune: $(cat "$T/out")"
    run_ok livebackup gc --json --repo "$R"
    [[ $(json_field "$T/out" summary chunks_reclaimed) -ge 0 ]] || fail "gc: $(cat "$T/out")"
    run_ok livebackup verify --repo "$R"
)
run_ok livebackup list --repo "$R" --json
! jq -r 'select(.event == "backup") | .id' "$T/out" | grep -x "$id0" >/dev/null || fail "prune kept $id0"
run_ok livebackup restore-image --repo "$R" --name host1 --disk vda --to "$T/after.raw"
same_image "$T/after.raw" raw "$T/truth1.raw" raw
run_ok livebackup verify --repo "$R" --key
grep -q "authenticated 3 backups and .* chunks with the key: all sound" "$T/out" ||
    fail "verify --key: $(cat "$T/out")"
ok "prune and gc without the key; the incremental kept restores identical and authenticates"
