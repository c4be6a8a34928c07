#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# livebackup copy between encrypted repositories (README, "Off-site
# copies"): a repository made with the source's key (init --key-from a
# `key export`, repokey or keyfile) takes the source's backups as they are
# stored, without the key (no passphrase anywhere near the copy); there
# they restore identical and authenticate (their MACs survive the
# destination's own bookkeeping); a second copy moves nothing; a copy
# killed mid-way resumes; a sealed chunk damaged in the source (its
# CRC-32C) fails the backup that uses it, by name; a pull through a
# --read-only key works; copies to a repository of another key, or
# between an encrypted and an unencrypted one, are refused with the
# reason.
. "$(dirname "$0")/lib.sh"

printf 'a passphrase for the primary\n' >"$T/pass"
printf 'another key altogether\n' >"$T/pass2"
export LIVEBACKUP_KEYS_DIR=$T/keys
S=$T/src
LIVEBACKUP_PASSPHRASE_FILE=$T/pass run_ok livebackup init --repo "$S" --encryption repokey
# with the passphrase: backups, restores, key export
withkey() { LIVEBACKUP_PASSPHRASE_FILE=$T/pass "$@"; }

mkimage "$T/d.qcow2" qcow2 64
write_random "$T/d.qcow2" qcow2 $((8 << 20)) $((6 << 20))
snapshot_raw "$T/d.qcow2" "$T/truth0.raw"
run_ok withkey livebackup backup-image --json --repo "$S" --name img --disk vda="$T/d.qcow2"
id0=$(json_field "$T/out" summary id)
overlay "$T/o1.qcow2" "$T/d.qcow2" qcow2
qemu-io -c "write -P 7 30M 8k" -c "write -z 8M 4k" "$T/o1.qcow2" >/dev/null
snapshot_raw "$T/o1.qcow2" "$T/truth1.raw"
run_ok withkey livebackup backup-image --json --repo "$S" --name img --disk vda="$T/o1.qcow2" \
    --since "$T/d.qcow2"
id1=$(json_field "$T/out" summary id)
mkimage "$T/b.qcow2" qcow2 32
write_random "$T/b.qcow2" qcow2 $((4 << 20)) $((3 << 20))
snapshot_raw "$T/b.qcow2" "$T/truthb.raw"
run_ok withkey livebackup backup-image --json --repo "$S" --name other --disk vda="$T/b.qcow2"
idb=$(json_field "$T/out" summary id)
run_ok withkey livebackup key export --repo "$S" --to "$T/src.key"
nbackups() { livebackup list --repo "$1" --json | jq -s '[.[] | select(.event == "backup")] | length'; }
nchunks() { find "$1/chunks" -type f | wc -l; }

# restored DST: every backup of DST restores identical, and authenticates.
restored() {
    local i
    for i in 0 1 b; do
        local id=id$i set=img
        [[ $i == b ]] && set=other
        run_ok withkey livebackup restore-image --repo "$1" --name $set --backup "${!id}" \
            --disk vda --to "$T/r$i.raw"
        same_image "$T/r$i.raw" raw "$T/truth$i.raw" raw
        rm -f "$T/r$i.raw"
    done
    run_ok withkey livebackup verify --repo "$1" --key
    grep -q "authenticated 3 backups" "$T/out" || fail "verify --key $1: $(cat "$T/out")"
}

# ---- the same key: repokey and keyfile destinations --------------------------------
D=$T/dst
LIVEBACKUP_PASSPHRASE_FILE=$T/pass2 run_ok livebackup init --repo "$D" --encryption repokey \
    --key-from "$T/src.key"
cmp -s "$D/keys/repokey" "$S/keys/repokey" || fail "the destination does not keep the source's key file"
run_ok livebackup copy --from "$S" --to "$D" --json
[[ $(json_field "$T/out" summary copied) == 3 ]] || fail "copy: $(cat "$T/out")"
[[ $(nchunks "$D") == $(nchunks "$S") ]] || fail "$(nchunks "$D") chunks copied of $(nchunks "$S")"
for f in $(cd "$S/chunks" && find . -type f); do
    cmp -s "$S/chunks/$f" "$D/chunks/$f" || fail "chunk $f is not stored as in the source"
done
run_ok livebackup verify --repo "$D"
restored "$D"
run_ok livebackup copy --from "$S" --to "$D" --json
[[ $(json_field "$T/out" summary chunks_sent) == 0 ]] || fail "second copy: $(cat "$T/out")"
ok "same key (repokey): copied as stored without a passphrase, restored identical, authenticated; a second copy moves nothing"

KF=$T/dstkf
run_ok livebackup init --repo "$KF" --encryption keyfile --key-from "$T/src.key" --json
kpath=$(json_field "$T/out" initialized key_file)
cmp -s "$kpath" "$T/src.key" || fail "the keyfile destination's key is not the source's"
[[ ! -e $KF/keys/repokey ]] || fail "a keyfile repository keeps its key"
run_ok livebackup copy --from "$S" --to "$KF"
restored "$KF"
ok "same key (keyfile destination): copied, restored identical, authenticated"

# ---- killed mid-way --------------------------------------------------------------
DK=$T/dk
run_ok livebackup init --repo "$DK" --encryption repokey --key-from "$T/src.key"
livebackup copy --from "$S" --to "$DK" --bwlimit 2M >"$T/k.out" 2>"$T/k.err" &
pid=$!
lb_track "$pid"
wait_until 120 "two chunks in $DK" bash -c "(( \$(find '$DK/chunks' -type f | wc -l) >= 2 ))"
kids=$(pgrep -P "$pid" || true)
kill -KILL "$pid"
wait "$pid" || true
for k in $kids; do wait_until 60 "process $k ended" bash -c "! kill -0 $k 2>/dev/null"; done
before=$(nchunks "$DK")
run_ok livebackup verify --repo "$DK"
run_ok livebackup copy --from "$S" --to "$DK" --json
n=$(json_field "$T/out" summary chunks_sent)
[[ $n == $(($(nchunks "$S") - before)) ]] || fail "the rerun sent $n chunks, $DK lacked $(($(nchunks "$S") - before))"
restored "$DK"
ok "killed mid-way: the rerun sent the $n missing chunks; restored, authenticated"

# ---- a sealed chunk damaged in the source -----------------------------------------
C=$T/damaged
cp -a "$S" "$C"
bad=$(comm -23 <(manifest_chunks "$C/backups/$idb" vda | awk '{print $3}' | sort -u) \
    <(for id in "$id0" "$id1"; do manifest_chunks "$C/backups/$id" vda; done |
        awk '{print $3}' | sort -u) | sed -n 1p)
[[ -n $bad ]] || fail "no chunk of its own in backup $idb"
f=$(chunk_file "$C" "$bad")
flip_bytes "$f" $(($(stat -c %s "$f") - 40))
D3=$T/dst3
run_ok livebackup init --repo "$D3" --encryption repokey --key-from "$T/src.key"
expect_fail "backup $idb of other not copied: chunk $bad is damaged in the source .*checksum" \
    livebackup copy --from "$C" --to "$D3"
[[ $(nbackups "$D3") == 2 ]] || fail "$D3 has $(nbackups "$D3") backups"
run_ok livebackup verify --repo "$D3"
ok "a sealed chunk damaged in the source (its CRC-32C) fails only the backup that uses it"

# ---- pull through a --read-only key -------------------------------------------------
sshd_start
key=$(cat "$T/ssh/user_key.pub")
echo "command=\"$BACKUPD serve --restrict-to-repo $T --read-only\",restrict $key" \
    >"$T/ssh/authorized_keys"
P=$T/pulled
run_ok livebackup init --repo "$P" --encryption repokey --key-from "$T/src.key"
run_ok livebackup copy --from "ssh://root@127.0.0.1:$SSH_PORT$S" --to "$P" --rsh "$LB_RSH" --json
[[ $(json_field "$T/out" summary copied) == 3 ]] || fail "pull: $(cat "$T/out")"
restored "$P"
expect_fail "read-only" withkey livebackup key change-passphrase \
    --repo "ssh://root@127.0.0.1:$SSH_PORT$S" --rsh "$LB_RSH" --new-passphrase-file "$T/pass2"
ok "an encrypted pull through a --read-only key"

# A source that lies (lbhostile liar flips a byte of the first sealed chunk
# it sends): without the key the destination checks a sealed chunk's form
# and sizes only, and takes it; its key finds it: verify --key names the
# chunk, a restore of the backup that uses it refuses and writes nothing.
PL=$T/pulled-lied
run_ok livebackup init --repo "$PL" --encryption repokey --key-from "$T/src.key"
lb_liar "$T/liar-rsh" -- $LB_RSH
run_ok livebackup copy --from "ssh://root@127.0.0.1:$SSH_PORT$S" --to "$PL" --rsh "$T/liar-rsh" --json
flipped=$(sed -n 's/^liar: flipped a byte of chunk //p' "$T/liar.log")
[[ -n $flipped ]] || fail "the liar flipped nothing: $(cat "$T/liar.log")"
run_ok livebackup verify --repo "$PL"
expect_fail "$flipped" withkey livebackup verify --repo "$PL" --key
expect_fail "$flipped" withkey livebackup restore-image --repo "$PL" --name img --backup "$id0" --disk vda --to "$T/lied.raw"
[[ ! -e $T/lied.raw ]] || fail "a restore of a lied-about chunk wrote $T/lied.raw"
ok "a lying encrypted source: the destination cannot tell without the key; verify --key names the chunk, the restore refuses"

# ---- another key, or encrypted and not -------------------------------------------
O=$T/otherkey
LIVEBACKUP_PASSPHRASE_FILE=$T/pass2 run_ok livebackup init --repo "$O" --encryption repokey
expect_fail "encrypted with different keys: chunks copy only between repositories of one key" \
    livebackup copy --from "$S" --to "$O"
grep -q "init --key-from" "$T/err" || fail "no hint: $(cat "$T/err")"
U=$T/plain
run_ok livebackup init --repo "$U" --encryption none
expect_fail "is encrypted and .* is not encrypted" livebackup copy --from "$S" --to "$U"
expect_fail "is not encrypted and .* is encrypted" livebackup copy --from "$U" --to "$D"
[[ $(nbackups "$O") == 0 && $(nbackups "$U") == 0 && $(nbackups "$D") == 3 ]] ||
    fail "a refused copy changed a repository"
ok "copies to another key, and between encrypted and unencrypted repositories, are refused"
