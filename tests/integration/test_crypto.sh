#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Encrypted repositories (issue 12): no plaintext and no disk path in any
# file of the repository; full and incremental round trips; a wrong
# passphrase refused before anything is written; list, prune and gc
# without the key; key export, import and change-passphrase; a keyfile
# repository and its key file; the errors for a repository of another
# mode; a flipped byte in a chunk or a manifest, a manifest changed
# consistently and a chunk moved under another id, each found by verify
# (with or without the key, as FORMAT.md says) and refused by restore;
# and what a client without encryption gets.
. "$(dirname "$0")/lib.sh"

printf 'correct horse battery staple\n' >"$T/pass"
printf 'Tr0ub4dor&3\n' >"$T/pass2"
printf 'not it\n' >"$T/wrong"
export LIVEBACKUP_PASSPHRASE_FILE=$T/pass
R=$T/repo

# ---- init -------------------------------------------------------------------
run_ok livebackup init --repo "$R" --encryption repokey
grep -qx "livebackup-repository 2" "$R/config" && grep -qx "encryption repokey" "$R/config" &&
    grep -Eqx "key_id [0-9a-f]{32}" "$R/config" || fail "config: $(cat "$R/config")"
[[ $(stat -c %s "$R/keys/repokey") -eq 128 ]] || fail "no key file in the repository"
# KDF byte 2 (Argon2id), log2 m 16 (64 MiB), t 1, p 2 (FORMAT.md)
kdf=$(od -An -tu1 -j10 -N4 "$R/keys/repokey" | xargs)
[[ $kdf == "2 16 1 2" ]] || fail "the key file's KDF bytes are '$kdf', not '2 16 1 2'"
ok "init --encryption repokey: format 2, the key in keys/repokey wrapped under Argon2id"
(
    unset LIVEBACKUP_PASSPHRASE_FILE
    expect_fail "needs a passphrase.*no passphrase given" \
        livebackup init --repo "$T/nopass" --encryption repokey
)
[[ ! -e $T/nopass/config ]] || fail "a repository without a passphrase was made"
(
    unset LIVEBACKUP_ENCRYPTION
    unset LIVEBACKUP_PASSPHRASE_FILE
    expect_fail "needs a passphrase" livebackup init --repo "$T/default"
    LIVEBACKUP_PASSPHRASE="from the environment" run_ok livebackup init --repo "$T/default"
    grep -qx "encryption repokey" "$T/default/config" || fail "the default is not repokey"
)
ok "init encrypts by default, and refuses to without a passphrase"

# ---- no plaintext, no paths ---------------------------------------------------
D=$T/disk-with-a-known-pattern.qcow2
qemu-img create -q -f qcow2 "$D" 64M
head -c $((2 << 20)) /dev/urandom >"$T/pattern"
qemu-io -f qcow2 -c "write -s $T/pattern 8M 2M" "$D" >/dev/null
printf 'A readable line the guest wrote, which must not be readable in the repository.\n%.0s' \
    $(seq 1 200) >"$T/text"
qemu-io -f qcow2 -c "write -s $T/text 20M $(stat -c %s "$T/text")" "$D" >/dev/null
run_ok livebackup backup-image --json --repo "$R" --name host1 --disk vda="$D"
id0=$(json_field "$T/out" summary id)
[[ $(pieces_found "$T/pattern" "$R") -eq 0 ]] || fail "a piece of the pattern is in the repository"
! grep -rlF "disk-with-a-known-pattern" "$R" || fail "the disk's path is readable"
! grep -rlF "must not be readable" "$R" || fail "the guest's text is readable"
# The same backup into an unencrypted repository: the checks can fail.
run_ok livebackup init --repo "$T/plain" --encryption none
run_ok livebackup backup-image --repo "$T/plain" --name host1 --disk vda="$D"
[[ $(pieces_found "$T/pattern" "$T/plain" 2>/dev/null) -gt 0 ]] ||
    fail "the pattern is not found even in the unencrypted repository"
grep -rqF "disk-with-a-known-pattern" "$T/plain" || fail "the path check cannot fail"
ok "no file of the repository holds a 64-byte piece of the disk, its path, or its text (the unencrypted one does)"

# ---- round trips -------------------------------------------------------------
snapshot_raw "$D" "$T/truth0.raw"
overlay "$T/o.qcow2" "$D" qcow2
qemu-io -c "write -P 9 20M 4k" -c "write -z 8M 64k" -c "discard 9M 64k" "$T/o.qcow2" >/dev/null
write_random "$T/o.qcow2" qcow2 $((40 << 20)) $((1 << 20))
snapshot_raw "$T/o.qcow2" "$T/truth1.raw"
run_ok livebackup backup-image --json --repo "$R" --name host1 --disk vda="$T/o.qcow2" --since "$D"
id1=$(json_field "$T/out" summary id)
[[ $(json_field "$T/out" summary parent) == "$id0" ]] || fail "not an incremental on $id0"
for i in 0 1; do
    id=id$i
    run_ok livebackup restore-image --repo "$R" --name host1 --backup "${!id}" --disk vda \
        --to "$T/r$i.qcow2" --format qcow2
    same_image "$T/r$i.qcow2" qcow2 "$T/truth$i.raw" raw
done
run_ok livebackup show --repo "$R" --backup "$id1"
grep -q "^kind: *incremental" "$T/out" || fail "show: $(cat "$T/out")"
run_ok livebackup verify --repo "$R" --key
grep -q "authenticated 2 backups and .* chunks with the key: all sound" "$T/out" ||
    fail "verify --key: $(cat "$T/out")"
ok "full and incremental round trips exact; show and verify --key with the key"

# ---- without the key ---------------------------------------------------------
(
    unset LIVEBACKUP_PASSPHRASE_FILE
    run_ok livebackup list --repo "$R" --name host1
    grep -q "$id1" "$T/out" || fail "list without the key: $(cat "$T/out")"
    run_ok livebackup verify --repo "$R"
    run_ok livebackup prune --repo "$R" --keep-last 5 --dry-run
    run_ok livebackup gc --repo "$R" --dry-run
    expect_fail "repository $R is encrypted: its passphrase is needed: no passphrase given" \
        livebackup restore-image --repo "$R" --name host1 --disk vda --to "$T/x.raw"
)
[[ ! -e $T/x.raw ]] || fail "a restore without the key wrote a file"
ok "list, verify, prune and gc need no key; a restore does, and says so"

# ---- a wrong passphrase: nothing written ------------------------------------
tree_sum() { # the repository's files, but for the sessions' scratch space
    (cd "$R" && find . -path ./tmp -prune -o -type f ! -name lock -print0 | sort -z |
        xargs -0 sha256sum)
}
tree_sum >"$T/before"
for cmd in "backup-image --name host1 --disk vda=$T/o.qcow2" \
    "restore-image --name host1 --disk vda --to $T/wrong.raw" "verify --key"; do
    # shellcheck disable=SC2086 # the words of cmd
    LIVEBACKUP_PASSPHRASE_FILE=$T/wrong expect_fail \
        "wrong passphrase for the key of repository $R.*nothing was written" \
        livebackup $cmd --repo "$R"
done
tree_sum >"$T/after"
diff "$T/before" "$T/after" >&2 || fail "a refused command changed the repository"
[[ ! -e $T/wrong.raw ]] || fail "a refused restore wrote a file"
ok "a wrong passphrase is refused before anything is written"

# ---- the KDF on its own thread ----------------------------------------------
# The key's KDF runs on a thread while the command does what needs no key
# (the listing, picking the parent, the first source's qemu-nbd): a wrong
# passphrase is still refused before anything is written, and the source
# opened meanwhile is closed; a failure of the command's own while the KDF
# runs is the error reported, and the thread is waited for (the
# sanitizers' builds: nothing leaks).
run_ok livebackup backup-image -v --repo "$R" --name host1 --disk vda="$T/o.qcow2" --since "$D"
grep -Eq "unlocked \(repokey\): the KDF \(Argon2id, [^)]*\) took [0-9]+ ms, [0-9]+ of them waited for" "$T/err" ||
    fail "backup-image did not unlock on the KDF's thread: $(cat "$T/err")"
tree_sum >"$T/before"
LIVEBACKUP_PASSPHRASE_FILE=$T/wrong expect_fail \
    "wrong passphrase for the key of repository $R.*nothing was written" \
    livebackup backup-image --repo "$R" --name host1 --disk vda="$T/o.qcow2" --since "$D"
! pgrep -f "qemu-nbd .*$T/o.qcow2" >/dev/null || fail "the refused backup left its qemu-nbd running"
expect_fail "cannot read image $T/no-such-disk.qcow2" \
    livebackup backup-image --repo "$R" --name host1 --disk vda="$T/no-such-disk.qcow2"
expect_fail "no backups of no-such-name" \
    livebackup restore-image --repo "$R" --name no-such-name --disk vda --to "$T/none.raw"
expect_fail "this host has made no backup of no-such-name" \
    livebackup backup-image --repo "$R" --name no-such-name --disk vda="$T/o.qcow2" --since "$D"
tree_sum >"$T/after"
diff "$T/before" "$T/after" >&2 || fail "a refused command changed the repository"
[[ ! -e $T/none.raw ]] || fail "a refused restore wrote a file"
ok "the KDF on its thread: a wrong passphrase still refused first, the command's own errors while it runs reported, nothing written"

# ---- the key: export, change-passphrase, import -------------------------------
run_ok livebackup key export --repo "$R" --to "$T/exported.key"
cmp -s "$T/exported.key" "$R/keys/repokey" || fail "export is not the repository's key file"
expect_fail "exists" livebackup key export --repo "$R" --to "$T/exported.key"
run_ok livebackup key change-passphrase --repo "$R" --new-passphrase-file "$T/pass2"
expect_fail "wrong passphrase" livebackup restore-image --repo "$R" --name host1 \
    --disk vda --to "$T/old.raw"
LIVEBACKUP_PASSPHRASE_FILE=$T/pass2 run_ok livebackup restore-image --repo "$R" \
    --name host1 --disk vda --to "$T/new.raw"
same_image "$T/new.raw" raw "$T/truth1.raw" raw
ok "change-passphrase: the old passphrase no longer opens the key, the new one restores"
# The repository's key file lost: the exported copy (old passphrase) back.
rm "$R/keys/repokey"
LIVEBACKUP_PASSPHRASE_FILE=$T/pass2 expect_fail "has lost its key file \(keys/repokey is missing.*livebackup key import" \
    livebackup restore-image --repo "$R" --name host1 --disk vda --to "$T/lost.raw"
run_ok livebackup key import --repo "$R" --from "$T/exported.key"
cmp -s "$T/exported.key" "$R/keys/repokey" || fail "import did not put the key back"
run_ok livebackup restore-image --repo "$R" --name host1 --backup "$id0" --disk vda \
    --to "$T/imported.raw"
same_image "$T/imported.raw" raw "$T/truth0.raw" raw
ok "key export and import: the exported key restores after the repository lost its own"

# ---- keyfile repositories, and repositories of another mode -------------------
export LIVEBACKUP_KEYS_DIR=$T/keys
run_ok livebackup init --json --repo "$T/kf" --encryption keyfile
kpath=$(json_field "$T/out" initialized key_file)
[[ $kpath == "$T/keys/"*.key && -f $kpath && ! -e $T/kf/keys/repokey ]] ||
    fail "keyfile: the key is not on the client: $kpath"
[[ $(stat -c %a "$kpath") == 600 ]] || fail "the key file is readable by others"
run_ok livebackup backup-image --json --repo "$T/kf" --name host1 --disk vda="$D"
run_ok livebackup key export --repo "$T/kf" --to "$T/kf.key"
mv "$kpath" "$T/kf-moved.key"
expect_fail "encrypted with a key kept on the client \(keyfile\), and there is no key file $kpath" \
    livebackup restore-image --repo "$T/kf" --name host1 --disk vda --to "$T/kf.raw"
run_ok livebackup restore-image --repo "$T/kf" --key-file "$T/kf-moved.key" --name host1 \
    --disk vda --to "$T/kf.raw"
same_image "$T/kf.raw" raw "$T/truth0.raw" raw
run_ok livebackup key import --repo "$T/kf" --from "$T/kf.key"
[[ -f $kpath ]] || fail "import did not write the client's key file"
expect_fail "wrong key: $T/exported.key holds key [0-9a-f]+, repository $T/kf uses key [0-9a-f]+" \
    livebackup restore-image --repo "$T/kf" --key-file "$T/exported.key" --name host1 \
    --disk vda --to "$T/kf2.raw"
expect_fail "wrong key" livebackup key import --repo "$R" --from "$T/kf.key"
expect_fail "keeps its key in the repository \(repokey\)" \
    livebackup restore-image --repo "$R" --key-file "$kpath" --name host1 --disk vda --to "$T/y.raw"
expect_fail "repository $T/plain is not encrypted: --key-file is for encrypted" \
    livebackup restore-image --repo "$T/plain" --key-file "$kpath" --name host1 --disk vda \
    --to "$T/y.raw"
[[ ! -e $T/kf2.raw && ! -e $T/y.raw ]] || fail "a refused restore wrote a file"
ok "keyfile: the key on the client, export/import, a wrong key and the other modes named"
unset LIVEBACKUP_KEYS_DIR

# ---- damage ------------------------------------------------------------------
# Backups of three sets, each damaged differently in its own copy.
for n in flip flipm swap moved; do
    qemu-img create -q -f qcow2 "$T/$n.qcow2" 32M
    write_random "$T/$n.qcow2" qcow2 0 $((12 << 20))
done
damaged() { # NAME: a copy of the repository with one backup of NAME
    rm -rf "$T/d-$1"
    cp -a "$T/kf" "$T/d-$1" # a keyfile repository: no key in it
    run_ok livebackup backup-image --json --repo "$T/d-$1" --name "$1" --disk vda="$T/$1.qcow2"
    did=$(json_field "$T/out" summary id)
    mapfile -t refs < <(manifest_chunks "$T/d-$1/backups/$did" vda | awk '{ print $3 }')
    [[ ${#refs[@]} -ge 2 ]] || fail "backup $did names ${#refs[@]} chunks"
}
export LIVEBACKUP_KEYS_DIR=$T/keys
# A flipped byte in a chunk: verify names it without the key (its
# checksum) and with it; the restore refuses and writes nothing.
damaged flip
f=$(chunk_file "$T/d-flip" "${refs[1]}")
flip_bytes "$f" $(($(stat -c %s "$f") / 2))
expect_fail "DAMAGED backup $did \(flip\) disk vda: .*chunk ${refs[1]} damaged" \
    livebackup verify --repo "$T/d-flip"
grep -q "its bytes do not match their checksum" "$T/out" || fail "verify: $(cat "$T/out")"
expect_fail "DAMAGED backup $did \(flip\) disk vda: .*chunk ${refs[1]} damaged \(it does not authenticate\)" \
    livebackup verify --repo "$T/d-flip" --key
expect_fail "backup $did, disk vda: chunk ${refs[1]} \(offset 4194304\) is damaged: it does not authenticate" \
    livebackup restore-image --repo "$T/d-flip" --name flip --disk vda --to "$T/flip.raw"
[[ ! -e $T/flip.raw ]] || fail "a damaged restore wrote a file"
ok "a flipped byte in a chunk: named by verify (without and with the key), refused by restore"
# A flipped byte in a manifest: its trailer.
damaged flipm
flip_bytes "$T/d-flipm/backups/$did" 100
expect_fail "DAMAGED backup $did .*manifest" livebackup verify --repo "$T/d-flipm"
expect_fail "manifest.*(damaged|mismatch)" livebackup restore-image --repo "$T/d-flipm" \
    --name flipm --disk vda --to "$T/flipm.raw"
[[ ! -e $T/flipm.raw ]] || fail "a damaged restore wrote a file"
# A manifest changed consistently (another window's stack, digests made
# again): only the MAC tells.
damaged swap
manifest_swap_ref "$T/d-swap/backups/$did" vda
run_ok livebackup verify --repo "$T/d-swap"
expect_fail "DAMAGED backup $did \(swap\): backup $did: its manifest does not authenticate" \
    livebackup verify --repo "$T/d-swap" --key
expect_fail "backup $did: its manifest does not authenticate with the repository's key" \
    livebackup restore-image --repo "$T/d-swap" --name swap --disk vda --to "$T/swap.raw"
[[ ! -e $T/swap.raw ]] || fail "a changed manifest was restored"
ok "a flipped byte in a manifest, or a consistent change of one: named by verify, refused by restore"
# A chunk moved under another id: its stored bytes are sound (verify
# without the key cannot tell), it does not open under that id.
damaged moved
cp "$(chunk_file "$T/d-moved" "${refs[0]}")" "$(chunk_file "$T/d-moved" "${refs[1]}")"
run_ok livebackup verify --repo "$T/d-moved"
expect_fail "DAMAGED backup $did \(moved\) disk vda: .*chunk ${refs[1]} damaged" \
    livebackup verify --repo "$T/d-moved" --key
expect_fail "chunk ${refs[1]} .*is damaged: it does not authenticate" \
    livebackup restore-image --repo "$T/d-moved" --name moved --disk vda --to "$T/moved.raw"
[[ ! -e $T/moved.raw ]] || fail "a moved chunk was restored"
ok "a chunk moved under another id: sound to the server, found by verify --key and restore"
unset LIVEBACKUP_KEYS_DIR

# ---- a client that does not know encryption ------------------------------------
# HELLO without the ENCRYPTION feature, then OPEN: a clear ERROR, not a
# repository read as unencrypted (what an older livebackup gets).
perl -e '
    use strict;
    use warnings;
    use IPC::Open2;
    my ($bd, $repo) = @ARGV;
    my $pid = open2(my $out, my $in, $bd, "serve", "--repo", $repo);
    binmode($in);
    binmode($out);
    sub frame { my ($t, $p) = @_; print $in pack("N n n N", 0x4C424B50, $t, 0, length($p)) . $p; }
    sub recv_frame {
        read($out, my $h, 12) == 12 or die "short header\n";
        my ($m, $t, $f, $l) = unpack("N n n N", $h);
        my $p = "";
        read($out, $p, $l) == $l or die "short payload\n" if $l;
        return ($t, $p);
    }
    frame(1, pack("n n Q> n", 1, 1, 0, 3) . "old");
    my ($t, $p) = recv_frame();
    die "no HELLO_REPLY ($t)\n" unless $t == 2;
    my (undef, undef, $features) = unpack("n n Q>", $p);
    die "features $features acknowledged that were not offered\n" if $features;
    frame(0x11, pack("C", 0));
    ($t, $p) = recv_frame();
    die "OPEN answered with type $t, not ERROR\n" unless $t == 3;
    my ($code, $ml) = unpack("N n", $p);
    print substr($p, 6, $ml), "\n";
    close($in);
    waitpid($pid, 0);' "$BACKUPD" "$R" >"$T/old.out" 2>&1 || fail "old client: $(cat "$T/old.out")"
grep -q "repository $R is encrypted, and this livebackup is too old to use encrypted repositories" \
    "$T/old.out" || fail "old client: $(cat "$T/old.out")"
ok "a client without encryption is refused with a reason: $(cat "$T/old.out")"
