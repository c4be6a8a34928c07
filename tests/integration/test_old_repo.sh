#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Repositories written before the storage backend interface carried file
# repositories (tests/fixtures/old-repos.tar.gz: made by livebackup at
# a41ce64, a plain and a repokey one, window 64 KiB, two backups each of
# a 1 MiB disk, whose contents' sha256 are in disks.sha256) open, list,
# restore and verify unchanged, take new backups that continue their
# commit order, and survive gc. The plain one also holds what crashed
# writers of that version left: a dead gc's trash tmp/gc-1-deadbeef with
# a chunk the second backup needs (trash-chunk), and a stale session
# tmp/1-0123456789abcdef; the first writer must put the chunk back and
# remove both.
. "$(dirname "$0")/lib.sh"

tar -xzf "$LB_SRC/tests/fixtures/old-repos.tar.gz" -C "$T"
export LIVEBACKUP_PASSPHRASE_FILE=$T/passphrase
c=$(cat "$T/trash-chunk")
sum1=$(awk '$2 == "disk1.raw" { print $1 }' "$T/disks.sha256")
sum2=$(awk '$2 == "disk2.raw" { print $1 }' "$T/disks.sha256")

for r in plain enc; do
    R=$T/$r
    run_ok livebackup list --json --repo "$R"
    mapfile -t ids < <(jq -r 'select(.event == "backup") | .id' "$T/out")
    [[ ${#ids[@]} -eq 2 ]] || fail "$r: ${#ids[@]} backups listed, not 2"
    seqs=$(jq -r 'select(.event == "backup") | .seq' "$T/out" | sort -n | tr '\n' ' ')
    [[ $seqs == "1 2 " ]] || fail "$r: seqs $seqs"
    if [[ $r == plain ]]; then
        # Readers leave the crashed writers' files alone: the chunk in the
        # trash is missing to them. The first writer (gc) cleans up.
        expect_fail "chunk\(s\) missing" livebackup restore-image --repo "$R" \
            --name old --backup "${ids[0]}" --disk vda --to "$T/x.raw"
        run_ok livebackup gc --dry-run --repo "$R"
        [[ -f $R/chunks/${c:0:2}/$c ]] || fail "the dead gc's chunk was not put back"
        [[ ! -e $R/tmp/gc-1-deadbeef ]] || fail "the dead gc's trash stayed"
        [[ ! -e $R/tmp/1-0123456789abcdef ]] || fail "the stale session stayed"
        [[ $(find "$R/tmp" -mindepth 1 | wc -l) -eq 0 ]] || fail "tmp/ not empty: $(ls -a "$R/tmp")"
        ok "plain: the first writer put a dead gc's chunk back and removed stale sessions"
    fi
    run_ok livebackup restore-image --repo "$R" --name old --backup "${ids[0]}" \
        --disk vda --to "$T/$r-1.raw"
    [[ $(sha256sum <"$T/$r-1.raw" | cut -d' ' -f1) == "$sum1" ]] || fail "$r: first backup restored wrong"
    ok "$r: the old repository lists and restores its first backup"

    # A writer: a new backup, its seq after the old ones'.
    run_ok livebackup backup-image --json --repo "$R" --name old --disk vda="$T/$r-1.raw"
    id3=$(json_field "$T/out" summary id)
    run_ok livebackup list --json --repo "$R"
    s3=$(jq -r --arg id "$id3" 'select(.event == "backup" and .id == $id) | .seq' "$T/out")
    [[ $s3 == 3 ]] || fail "$r: the new backup's seq is $s3, not 3"
    run_ok livebackup verify --repo "$R"
    run_ok livebackup gc --repo "$R"
    run_ok livebackup verify --repo "$R"
    run_ok livebackup restore-image --repo "$R" --name old --backup "${ids[1]}" \
        --disk vda --to "$T/$r-2.raw"
    [[ $(sha256sum <"$T/$r-2.raw" | cut -d' ' -f1) == "$sum2" ]] || fail "$r: second backup restored wrong"
    run_ok livebackup restore-image --repo "$R" --name old --backup "$id3" \
        --disk vda --to "$T/$r-3.raw"
    [[ $(sha256sum <"$T/$r-3.raw" | cut -d' ' -f1) == "$sum1" ]] || fail "$r: new backup restored wrong"
    ok "$r: verify, gc, verify; every backup restores exact"
done

# The old repokey was wrapped with scrypt (KDF byte 1: N 2^15, r 8, p 3);
# it opened above. change-passphrase, given the same passphrase, rewraps
# the same key with Argon2id (KDF 2, m 2^16 KiB, t 1, p 2), and every
# backup stays readable.
R=$T/enc
kdf=$(od -An -tu1 -j10 -N4 "$R/keys/repokey" | xargs)
[[ $kdf == "1 15 8 3" ]] || fail "the old key file's KDF bytes are '$kdf', not scrypt's '1 15 8 3'"
id_before=$(od -An -tx1 -j16 -N16 "$R/keys/repokey" | tr -d ' \n')
run_ok livebackup key change-passphrase --repo "$R" --new-passphrase-file "$T/passphrase"
kdf=$(od -An -tu1 -j10 -N4 "$R/keys/repokey" | xargs)
[[ $kdf == "2 16 1 2" ]] || fail "the rewrapped key file's KDF bytes are '$kdf', not Argon2id's '2 16 1 2'"
id_after=$(od -An -tx1 -j16 -N16 "$R/keys/repokey" | tr -d ' \n')
[[ $id_before == "$id_after" ]] || fail "the key id changed: $id_before -> $id_after"
run_ok livebackup restore-image -v --repo "$R" --name old --backup "${ids[1]}" \
    --disk vda --to "$T/enc-argon.raw"
grep -q "the KDF (Argon2id, m 65536 KiB, t 1, p 2) took" "$T/err" ||
    fail "the restore did not unlock with Argon2id: $(grep -i kdf "$T/err")"
[[ $(sha256sum <"$T/enc-argon.raw" | cut -d' ' -f1) == "$sum2" ]] || fail "enc: restored wrong after the rewrap"
run_ok livebackup verify --key --repo "$R"
ok "enc: the scrypt key file opens; change-passphrase rewraps it with Argon2id, backups stay readable"
