#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The owner trap: a repository belongs to a user (here nobody); root runs
# livebackup on it. backupd refuses to write it (root's 0600 files would
# be unreadable to the owner), naming the owner and what to run instead,
# and leaves nothing behind; reading still works. Files another user did
# leave there (as an older livebackup did) are a permission problem for
# verify and restore, never damage.
. "$(dirname "$0")/lib.sh"

R=$T/nb/repo
chmod 711 "$T"
mkdir "$T/nb" "$T/nb/state"
# (copies of the programs: the build tree may not be reachable for nobody)
mkdir "$T/nb/bin"
cp "$LIVEBACKUP" "$BACKUPD" "$T/nb/bin/"
chown -R nobody "$T/nb"
as_nobody() {
    setpriv --reuid=nobody --regid=nogroup --clear-groups \
        env LIVEBACKUP_STATE_DIR="$T/nb/state" "$@"
}
mkimage "$T/nb/d.qcow2" qcow2 32
write_random "$T/nb/d.qcow2" qcow2 0 $((4 << 20))
chmod 644 "$T/nb/d.qcow2"

as_nobody "$T/nb/bin/livebackup" init --repo "$R" --encryption none >"$T/out" 2>&1 ||
    fail "init as nobody: $(cat "$T/out")"
as_nobody "$T/nb/bin/livebackup" backup-image --json --repo "$R" --name d \
    --disk vda="$T/nb/d.qcow2" >"$T/out" 2>"$T/err" || fail "backup as nobody: $(cat "$T/err")"
id0=$(json_field "$T/out" summary id)
ok "nobody's repository, backup $id0 by its owner"

# Root writes: refused, with the command to run instead; nothing left.
before=$(find "$R" | sort)
expect_fail "repository $R belongs to user nobody, and this backupd runs as root" \
    livebackup backup-image --repo "$R" --name d --disk vda="$T/nb/d.qcow2"
grep -q "hint: run it as nobody: runuser -u nobody -- livebackup" "$T/err" ||
    fail "no hint naming the owner: $(cat "$T/err")"
expect_fail "belongs to user nobody" livebackup prune --repo "$R" --keep-last 1
expect_fail "belongs to user nobody" livebackup gc --repo "$R"
[[ -z $(find "$R" ! -user nobody) ]] || fail "root left files: $(find "$R" ! -user nobody -ls)"
[[ $(find "$R" | sort) == "$before" ]] || fail "the repository changed"
ok "root may not write nobody's repository: the owner and runuser are named, nothing is left"

# An empty directory of another user is not initialized by root either.
mkdir "$T/nb/empty"
chown nobody "$T/nb/empty"
expect_fail "belongs to user nobody" livebackup init --repo "$T/nb/empty" --encryption none
[[ -z $(ls -A "$T/nb/empty") ]] || fail "init as root wrote into nobody's directory"
ok "root does not init a repository in another user's directory"

# Reading as root still works (root reads every file).
run_ok livebackup list --repo "$R"
grep -q "$id0" "$T/out" || fail "list as root: $(cat "$T/out")"
run_ok livebackup verify --repo "$R"
ok "root may still read it (list, verify)"

# What an older livebackup run as root left: a chunk (and its fan-out
# directory) that only root may read. For the owner that is a permission
# problem: verify and restore say so, and never call it damage.
chunk=$(find "$R/chunks" -type f -name '[0-9a-f]*' | sed -n 1p)
chown root "$chunk"
chmod 600 "$chunk"
rc=0
as_nobody "$T/nb/bin/livebackup" verify --json --repo "$R" >"$T/out" 2>"$T/err" || rc=$?
[[ $rc -eq 1 ]] || fail "verify as nobody: exit $rc: $(cat "$T/out" "$T/err")"
grep -q "a permission problem, not damage" "$T/err" || fail "verify: $(cat "$T/err")"
grep -q "chown -R" "$T/err" || fail "verify: no hint: $(cat "$T/err")"
grep -qi "damaged" "$T/out" "$T/err" && grep -v "not damage" "$T/out" "$T/err" | grep -i damage >/dev/null &&
    fail "verify calls it damage: $(cat "$T/out" "$T/err")"
jq -s -e 'any(.[]; .event == "damage")' "$T/out" >/dev/null && fail "damage events: $(cat "$T/out")"
rc=0
as_nobody "$T/nb/bin/livebackup" restore-image --repo "$R" --name d --disk vda \
    --to "$T/nb/r.raw" >"$T/out" 2>&1 || rc=$?
[[ $rc -eq 1 ]] || fail "restore as nobody: exit $rc: $(cat "$T/out")"
grep -q "Permission denied" "$T/out" && grep -q "chown -R OWNER" "$T/out" ||
    fail "restore: $(cat "$T/out")"
grep -qi "damage\|corrupt" "$T/out" && fail "restore calls it damage: $(cat "$T/out")"
ok "an unreadable chunk is a permission problem for verify and restore, not damage"
chown nobody "$chunk"
