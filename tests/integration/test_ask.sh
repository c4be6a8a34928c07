#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# When the agent asks the repository about a RAW chunk (QUERY) before it
# compresses and sends it (agent/client/upload.c): about every one while
# the answers find some stored; after 32 "missing" answers in a row about
# one in 16, the others sent unasked, until an answer finds one stored.
# With 64 KiB windows (1024 chunks in 64 MiB of random data), unencrypted
# and encrypted (repokey), locally (the agent's backupd child) and through
# ssh to `backupd serve --append-only`, which checks every chunk it is
# sent (unencrypted: decompressed and hashed; encrypted: what it can
# check without the key):
#   - a first full backup of new data asks about few and stores all;
#   - a second full of the same data asks about every chunk, sends none;
#   - a disk whose first half is new and whose second half is stored
#     already sends the new half and little more (asking resumes);
# every backup restores exact, the repository verifies.
. "$(dirname "$0")/lib.sh"

sshd_start
key=$(cat "$T/ssh/user_key.pub")
echo "command=\"$BACKUPD serve --restrict-to-repo $T --append-only\",restrict $key" \
    >"$T/ssh/authorized_keys"

head -c 64M /dev/urandom >"$T/a.raw"
head -c 32M /dev/urandom >"$T/mix.raw"
dd if="$T/a.raw" bs=1M skip=32 count=32 status=none >>"$T/mix.raw"

# counts NAME IMAGE: back up IMAGE as set NAME into $REPO; sets ASKED,
# REUSED, SENT, NEW and the backup's ID from the --json summary
counts() {
    run_ok livebackup backup-image --json --repo "$REPO" --name "$1" --disk vda="$2" "${RSH[@]}"
    ID=$(json_field "$T/out" summary id)
    ASKED=$(json_field "$T/out" summary chunks_asked)
    REUSED=$(json_field "$T/out" summary chunks_reused)
    SENT=$(json_field "$T/out" summary chunks_sent)
    NEW=$(json_field "$T/out" summary chunks_new)
    echo "# $1: asked $ASKED, reused $REUSED, sent $SENT, new $NEW"
}

export LIVEBACKUP_PASSPHRASE=ask-test
for how in local-none ssh-none local-repokey ssh-repokey; do
    run_ok livebackup init --repo "$T/repo-$how" --window-size 64K \
        --encryption "${how#*-}"
    if [[ $how == local-* ]]; then
        REPO=$T/repo-$how RSH=()
    else
        REPO=ssh://root@127.0.0.1:$SSH_PORT$T/repo-$how
        RSH=(--rsh "$LB_RSH")
    fi

    counts first "$T/a.raw"
    [[ $NEW -eq 1024 && $SENT -eq 1024 && $REUSED -eq 0 ]] ||
        fail "$how: the first full did not send and store its 1024 chunks: $(cat "$T/out")"
    # 32 asked before the run of misses stops asking, then 1 in 16 of
    # the 992 others (62), and those hashed while answers were on the way
    ((ASKED >= 32 && ASKED <= 160)) ||
        fail "$how: the first full asked about $ASKED of 1024 new chunks (expected 94 or a few more)"
    first=$ID
    ok "$how: a first full of new data asked about $ASKED of its 1024 chunks, stored all"

    counts second "$T/a.raw"
    [[ $ASKED -eq 1024 && $REUSED -eq 1024 && $SENT -eq 0 && $NEW -eq 0 ]] ||
        fail "$how: a second full of the same data did not find every chunk stored: $(cat "$T/out")"
    second=$ID
    ok "$how: a second full of the same data asked about every chunk and sent none"

    counts mix "$T/mix.raw"
    [[ $NEW -eq 512 ]] || fail "$how: the half-new disk stored $NEW chunks, not 512: $(cat "$T/out")"
    # the new half, and the stored ones sent before a probe found one
    ((SENT >= 512 && SENT <= 512 + 64 && REUSED >= 512 - 64)) ||
        fail "$how: the half-new disk sent $SENT chunks ($REUSED found stored): asking did not resume"
    mix=$ID
    ok "$how: a half-new disk sent $SENT chunks for 512 new ones (asking resumed)"

    for b in "first $first a.raw" "second $second a.raw" "mix $mix mix.raw"; do
        read -r name id img <<<"$b"
        run_ok livebackup restore-image --repo "$REPO" --name "$name" \
            --backup "$id" --disk vda --to "$T/r.raw" "${RSH[@]}"
        cmp "$T/r.raw" "$T/$img" || fail "$how: backup $id does not restore $img"
        rm -f "$T/r.raw"
    done
    run_ok livebackup verify --repo "$T/repo-$how"
    ok "$how: every backup restores exact, the repository verifies"
done

