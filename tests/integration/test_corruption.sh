#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A damaged repository: bytes flipped in a chunk, a truncated manifest, a
# deleted chunk, each in a different backup. verify names every damaged
# backup and disk; restores refuse to write damaged data and say which
# backup is affected; the untouched backups restore normally.
. "$(dirname "$0")/lib.sh"

R=$T/repo
run_ok livebackup init --repo "$R"
ids=()
for n in flip trunc gone good; do
    qemu-img create -q -f qcow2 "$T/$n.qcow2" 64M
    write_random "$T/$n.qcow2" qcow2 $((8 << 20)) $((6 << 20))
    run_ok livebackup backup-image --json --repo "$R" --name "$n" --disk vda="$T/$n.qcow2"
    ids+=("$(json_field "$T/out" summary id)")
done
# own_chunk I: the file of a chunk that backup I's manifest names and no
# other backup's does.
own_chunk() {
    local i c
    for i in "${!ids[@]}"; do
        [[ $i -eq $1 ]] || manifest_chunks "$R/backups/${ids[$i]}" vda
    done | awk '{ print $3 }' >"$T/others"
    c=$(manifest_chunks "$R/backups/${ids[$1]}" vda | awk '{ print $3 }' |
        grep -vxF -f "$T/others" | sed -n 1p || true)
    [[ -n $c ]] || fail "backup ${ids[$1]} has no chunk of its own"
    chunk_file "$R" "$c"
}
flip_chunk=$(own_chunk 0)
gone_chunk=$(own_chunk 2)

# flip: bytes flipped in the middle of one of its chunks
size=$(stat -c %s "$flip_chunk")
flip_bytes "$flip_chunk" $((size / 2)) 4
# trunc: its manifest cut short
truncate -s -100 "$R/backups/${ids[1]}"
# gone: one of its chunks deleted
rm "$gone_chunk"

rc=0
livebackup verify --repo "$R" >"$T/v.out" 2>&1 || rc=$?
[[ $rc -eq 1 ]] || fail "verify exit status $rc"
grep -q "DAMAGED backup ${ids[0]} (flip) disk vda: .*damaged" "$T/v.out" || fail "verify: flip: $(cat "$T/v.out")"
# (its name is in the meta block the truncation removed: the id names it)
grep -q "DAMAGED backup ${ids[1]} (name unreadable): manifest" "$T/v.out" ||
    fail "verify: trunc: $(cat "$T/v.out")"
grep -q "DAMAGED backup ${ids[2]} (gone) disk vda: .*missing" "$T/v.out" || fail "verify: gone: $(cat "$T/v.out")"
grep -q "${ids[3]}" "$T/v.out" && fail "verify blames the good backup"
grep -q "3 damaged backup(s)" "$T/v.out" || fail "verify summary: $(cat "$T/v.out")"
ok "verify names each damaged backup and disk, and only those"

# A listing reads the manifests' meta blocks together: the damaged one is
# named with a warning, the others listed.
run_ok livebackup list --repo "$R" --json
grep -q "backup ${ids[1]}: manifest truncated (run livebackup verify)" "$T/err" ||
    fail "list: no warning about ${ids[1]}: $(cat "$T/err")"
for i in 0 2 3; do
    grep -q "\"${ids[$i]}\"" "$T/out" || fail "list lacks ${ids[$i]}: $(cat "$T/out")"
done
grep -q "\"${ids[1]}\"" "$T/out" && fail "list shows the damaged ${ids[1]}"
ok "list warns of the truncated manifest and lists the others"

expect_fail "backup ${ids[0]}, disk vda: chunk [0-9a-f]+ .* is damaged" \
    livebackup restore-image --repo "$R" --name flip --disk vda --to "$T/flip.raw"
[[ ! -e $T/flip.raw ]] || fail "a damaged restore produced a file"
expect_fail "manifest|damaged|truncated" \
    livebackup restore-image --repo "$R" --name trunc --disk vda --to "$T/trunc.raw"
[[ ! -e $T/trunc.raw ]] || fail "a damaged restore produced a file"
expect_fail "backup ${ids[2]}, disk vda: 1 chunk\(s\) missing" \
    livebackup restore-image --repo "$R" --name gone --disk vda --to "$T/gone.raw"
ok "restores of damaged backups refuse and say which backup"

run_ok livebackup restore-image --repo "$R" --name good --disk vda --to "$T/good.raw"
same_image "$T/good.raw" raw "$T/good.qcow2" qcow2
ok "the untouched backup restores identical"

# A new backup of a damaged set re-sends the data it cannot reuse.
run_ok livebackup backup-image --repo "$R" --name gone --disk vda="$T/gone.qcow2"
run_ok livebackup restore-image --repo "$R" --name gone --disk vda --to "$T/gone2.raw"
same_image "$T/gone2.raw" raw "$T/gone.qcow2" qcow2
ok "a new full backup of the damaged set restores"
