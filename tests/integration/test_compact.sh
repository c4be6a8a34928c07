#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Windows at the stack limit are compacted, not sent whole (store/FORMAT.md,
# "Building a manifest"): with LIVEBACKUP_MAX_STACK=3, a full backup of
# incompressible data and 7 incrementals of scattered 4 KiB rewrites. The
# nights at the limit SET each touched window to [its bottom, one DELTA]
# and store about what changed, not the windows; a window whose changes
# since its bottom reach half of it is sent whole. Every backup restores
# byte-exact, no stack exceeds the limit, verify passes: on a plain local
# repository, an encrypted one, and through an append-only `backupd serve`
# over ssh.
. "$(dirname "$0")/lib.sh"

LIMIT=3
NIGHTS=7

# A bad value is refused like any setting from the environment (status 2).
rc=0
LIVEBACKUP_MAX_STACK=0 livebackup list --repo "$T/none" >"$T/out" 2>"$T/err" || rc=$?
[[ $rc -eq 2 ]] && grep -q "LIVEBACKUP_MAX_STACK.*1 to 31" "$T/err" ||
    fail "LIVEBACKUP_MAX_STACK=0: status $rc, $(cat "$T/err")"
ok "LIVEBACKUP_MAX_STACK=0 is refused"

# depth_max MANIFEST: the deepest stack of disk vda.
depth_max() {
    manifest_chunks "$1" vda | awk '{n[$1]++} END {m = 0; for (w in n) if (n[w] > m) m = n[w]; print m}'
}

# nights LABEL URL REPODIR LB...: the full and the incrementals through the
# command LB (livebackup with its options), each checked.
nights() {
    local label=$1 url=$2 repo=$3 n w off prev id set pushed new c want
    shift 3
    local -a lb=("$@") ids=()
    qemu-img create -q -f qcow2 "$T/$label-0.qcow2" 32M
    write_random "$T/$label-0.qcow2" qcow2 0 $((32 << 20))
    snapshot_raw "$T/$label-0.qcow2" "$T/$label-truth-0.raw"
    run_ok "${lb[@]}" backup-image --json --repo "$url" --name "$label" \
        --disk vda="$T/$label-0.qcow2"
    id=$(json_field "$T/out" summary id)
    ids+=("$id")
    manifest_chunks "$repo/backups/$id" vda >"$T/$label-full.refs"
    [[ $(wc -l <"$T/$label-full.refs") -eq 8 ]] ||
        fail "$label: the full backup does not hold 8 RAW windows"
    prev=$T/$label-0.qcow2
    for n in $(seq 1 $NIGHTS); do
        overlay "$T/$label-$n.qcow2" "$prev" qcow2
        c=()
        for w in 0 1 2 3 4 5; do
            off=$((w * 1024 + (n * 37 + w * 11) % 1000))
            c+=(-c "write -P $(((n * 8 + w) % 250 + 1)) $((off * 4096)) 4k")
            off=$((w * 1024 + (n * 53 + w * 7) % 1000 + 12))
            c+=(-c "write -z $((off * 4096)) 4k")
        done
        qemu-io "${c[@]}" "$T/$label-$n.qcow2" >/dev/null
        # window 7: 1 MiB a night, elsewhere each time: its union since the
        # bottom reaches half the window by the night at the limit.
        write_random "$T/$label-$n.qcow2" qcow2 $(((28 + n % 4) << 20)) $((1 << 20))
        snapshot_raw "$T/$label-$n.qcow2" "$T/$label-truth-$n.raw"
        LIVEBACKUP_MAX_STACK=$LIMIT run_ok "${lb[@]}" backup-image --json \
            --repo "$url" --name "$label" --disk vda="$T/$label-$n.qcow2" \
            --since vda="$prev"
        id=$(json_field "$T/out" summary id)
        set=$(json_field "$T/out" summary windows_set)
        pushed=$(json_field "$T/out" summary windows_pushed)
        new=$(json_field "$T/out" summary bytes_new)
        ids+=("$id")
        [[ $(depth_max "$repo/backups/$id") -le $LIMIT ]] ||
            fail "$label night $n: a stack deeper than $LIMIT"
        manifest_chunks "$repo/backups/$id" vda >"$T/$label-$n.refs"
        # Windows 0-5: 2, 3, then at the limit [bottom, delta] again: 2, 3...
        # Window 7 (half of it changed since its bottom by the night at the
        # limit) is sent whole there: 2, 3, 1, 2, 3, 1...
        for w in 0 1 2 3 4 5 7; do
            want=$((2 + (n + 1) % 2))
            [[ $w -eq 7 ]] && want=$((n % 3 + 1))
            [[ $(grep -c "^$w " "$T/$label-$n.refs") -eq $want ]] ||
                fail "$label night $n: window $w is not $want deep"
        done
        if ((n % 2 == 1 && n > 1)); then
            # At the limit: windows 0-5 compacted on the full's RAW chunks;
            # whole windows would store 6 x 4 MiB of random data.
            [[ $set -eq $((6 + (n == 3))) && $pushed -eq $((n != 3)) ]] ||
                fail "$label night $n: $set SET, $pushed PUSHed"
            [[ $new -lt $(((1 + 3 * (n == 3)) * (1 << 20) + (256 << 10))) ]] ||
                fail "$label night $n: $new bytes stored at the limit"
            for w in 0 1 2 3 4 5; do
                grep -q "^$w 1 $(awk -v w=$w '$1 == w {print $3}' "$T/$label-full.refs")\$" \
                    "$T/$label-$n.refs" || fail "$label night $n: window $w lost its bottom"
            done
            ok "$label night $n at the limit: $new bytes stored, stacks [bottom, delta]"
        else
            [[ $new -lt $(((1 << 20) + (256 << 10))) || $n -eq 6 ]] ||
                fail "$label night $n: $new bytes stored"
        fi
        prev=$T/$label-$n.qcow2
    done
    for n in "${!ids[@]}"; do
        rm -f "$T/r.raw"
        run_ok "${lb[@]}" restore-image --repo "$url" --name "$label" \
            --backup "${ids[$n]}" --disk vda --to "$T/r.raw"
        same_image "$T/r.raw" raw "$T/$label-truth-$n.raw" raw
    done
    ok "$label: the full and $NIGHTS incrementals restore byte-exact"
}

# ---- a plain local repository ----------------------------------------------------
run_ok livebackup init --repo "$T/plain"
nights plain "$T/plain" "$T/plain" livebackup
run_ok livebackup verify --repo "$T/plain"
ok "plain: verify passes"

# ---- an encrypted repository -------------------------------------------------------
printf 'a passphrase for compaction\n' >"$T/pass"
export LIVEBACKUP_PASSPHRASE_FILE=$T/pass
run_ok livebackup init --repo "$T/enc" --encryption repokey
nights enc "$T/enc" "$T/enc" livebackup
run_ok livebackup verify --repo "$T/enc" --key
grep -q "authenticated $((NIGHTS + 1)) backups" "$T/out" ||
    fail "verify --key: $(cat "$T/out")"
ok "encrypted: verify --key authenticates every backup"
unset LIVEBACKUP_PASSPHRASE_FILE

# ---- through an append-only backupd serve over ssh -------------------------------
run_ok livebackup init --repo "$T/remote"
sshd_start
key=$(cat "$T/ssh/user_key.pub")
echo "command=\"$BACKUPD serve --restrict-to-repo $T --append-only\",restrict $key" \
    >"$T/ssh/authorized_keys"
rlb() { livebackup "$@" --rsh "$LB_RSH"; }
nights ssh "ssh://root@127.0.0.1:$SSH_PORT$T/remote" "$T/remote" rlb
run_ok livebackup verify --repo "$T/remote"
ok "append-only over ssh: verify passes"
