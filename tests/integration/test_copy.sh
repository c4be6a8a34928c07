#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# livebackup copy (README, "Off-site copies"; PROTOCOL.md, "Copy"): a set
# of full and incremental backups copied to an empty repository is the
# same there (listing, window stacks, restores), the destination verifies,
# a second copy moves nothing and the next one only a new backup's data;
# a copy killed, or whose ssh is cut, mid-way leaves no partial backup and
# its rerun sends only what is missing; a copy that fills the destination's
# filesystem fails clearly, leaves nothing partial, and its rerun with
# room sends only what is missing; a chunk damaged in the source
# fails the backups that use it, by name, and no other; a pull through a
# --read-only key (direct and bridged to backupd listen) works and the key
# can change nothing; a push through an append-only key works; prune and
# gc on the source leave the copies intact; a night copied onto its
# parent's copy names only the windows it changed, and with that copy
# damaged goes whole.
. "$(dirname "$0")/lib.sh"

S=$T/src
run_ok livebackup init --repo "$S"

# ---- a set with a full and two incrementals, and another set ------------------
mkimage "$T/d.qcow2" qcow2 64
write_random "$T/d.qcow2" qcow2 $((8 << 20)) $((6 << 20))
snapshot_raw "$T/d.qcow2" "$T/truth0.raw"
run_ok livebackup backup-image --json --repo "$S" --name img --disk vda="$T/d.qcow2"
id0=$(json_field "$T/out" summary id)
overlay "$T/o1.qcow2" "$T/d.qcow2" qcow2
qemu-io -c "write -P 7 30M 8k" -c "write -z 8M 4k" "$T/o1.qcow2" >/dev/null
write_random "$T/o1.qcow2" qcow2 $((40 << 20)) $((1 << 20))
snapshot_raw "$T/o1.qcow2" "$T/truth1.raw"
run_ok livebackup backup-image --json --repo "$S" --name img --disk vda="$T/o1.qcow2" \
    --since "$T/d.qcow2"
id1=$(json_field "$T/out" summary id)
mkimage "$T/b.qcow2" qcow2 32
write_random "$T/b.qcow2" qcow2 $((4 << 20)) $((3 << 20))
snapshot_raw "$T/b.qcow2" "$T/truthb.raw"
run_ok livebackup backup-image --json --repo "$S" --name other --disk vda="$T/b.qcow2"
idb=$(json_field "$T/out" summary id)
# a backup with a saved domain XML (a BLOB outside the window stacks), as
# a VM's backup has: made by lbhostile's recommit, the windows of idb
printf '<domain type="kvm"><name>vmx</name><uuid>%s</uuid></domain>\n' \
    "$(cat /proc/sys/kernel/random/uuid)" >"$T/vmx.xml"
"$LB_BUILD/tests/lbhostile" recommit "$idb" vmx "$T/vmx.xml" -- "$BACKUPD" serve --repo "$S" \
    >"$T/out" 2>&1 || fail "recommit: $(cat "$T/out")"
idx=$(livebackup list --repo "$S" --name vmx --json | jq -r 'select(.event == "backup") | .id')
[[ -n $idx ]] || fail "no backup of vmx"

# listing SRC DST: what both list of DST's backups is the same, but for
# the repository's own bookkeeping (seq, and what each commit added).
same_listing() {
    livebackup list --repo "$2" --json >"$T/l2" || fail "list $2"
    livebackup list --repo "$1" --json >"$T/l1" || fail "list $1"
    local f='select(.event == "backup") | del(.seq, .chunks_new, .bytes_new, .bytes_received)'
    jq -cS "$f" "$T/l2" | sort >"$T/l2.n"
    jq -cS "$f" "$T/l1" | sort | grep -Ff <(jq -r 'select(.event == "backup") | .id' "$T/l2") \
        >"$T/l1.n" || true
    [[ -s $T/l2.n ]] || fail "$2 lists no backup"
    diff "$T/l1.n" "$T/l2.n" >&2 || fail "$1 and $2 list their backups differently"
}
# same_stacks SRC DST ID: the manifests' window stacks are the same.
same_stacks() {
    cmp -s <(manifest_chunks "$1/backups/$3" vda) <(manifest_chunks "$2/backups/$3" vda) ||
        fail "backup $3: its window stacks differ in $2"
}
# night N PREV [OFFSET LENGTH]: the overlay T/oN.qcow2 on PREV, LENGTH
# random bytes written at OFFSET (none without), its content T/truthN.raw,
# backed up into S as an incremental of set img; its id into ID.
night() {
    overlay "$T/o$1.qcow2" "$2" qcow2
    [[ -z ${3:-} ]] || write_random "$T/o$1.qcow2" qcow2 "$3" "$4"
    snapshot_raw "$T/o$1.qcow2" "$T/truth$1.raw"
    run_ok livebackup backup-image --json --repo "$S" --name img --disk vda="$T/o$1.qcow2" \
        --since "$2"
    ID=$(json_field "$T/out" summary id)
}
nbackups() { livebackup list --repo "$1" --json | jq -s '[.[] | select(.event == "backup")] | length'; }
nchunks() { find "$1/chunks" -type f | wc -l; }

# ---- to an empty repository ------------------------------------------------------
D=$T/dst
run_ok livebackup init --repo "$D"
run_ok livebackup copy --from "$S" --to "$D" --json
[[ $(json_field "$T/out" summary copied) == 4 ]] || fail "copied: $(cat "$T/out")"
[[ $(json_field "$T/out" summary failed) == 0 ]] || fail "failed: $(cat "$T/out")"
same_listing "$S" "$D"
for id in "$id0" "$id1" "$idb"; do same_stacks "$S" "$D" "$id"; done
run_ok livebackup restore-image --repo "$D" --name img --backup "$id0" --disk vda --to "$T/r0.raw"
same_image "$T/r0.raw" raw "$T/truth0.raw" raw
run_ok livebackup restore-image --repo "$D" --name img --backup "$id1" --disk vda --to "$T/r1.raw"
same_image "$T/r1.raw" raw "$T/truth1.raw" raw
run_ok livebackup restore-image --repo "$D" --name other --backup latest --disk vda --to "$T/rb.raw"
same_image "$T/rb.raw" raw "$T/truthb.raw" raw
run_ok livebackup show --repo "$D" --name vmx --backup latest --json
[[ $(json_field "$T/out" backup domain_xml_text) == "$(cat "$T/vmx.xml")" ]] ||
    fail "the saved domain XML was not copied: $(cat "$T/out")"
run_ok livebackup verify --repo "$D"
grep -q "verified 4 backups.*all sound" "$T/out" || fail "verify: $(cat "$T/out")"
[[ $(nchunks "$D") == $(nchunks "$S") ]] || fail "the copy has $(nchunks "$D") chunks, the source $(nchunks "$S")"
ok "full and incremental backups, and one with a saved domain XML, copied to an empty repository: same listing and stacks, restored identical, XML shown, verified"

run_ok livebackup copy --from "$S" --to "$D" --json
for k in copied:0 present:4 chunks_sent:0 bytes_sent:0; do
    [[ $(json_field "$T/out" summary "${k%%:*}") == "${k#*:}" ]] ||
        fail "second copy: ${k%%:*} is not ${k#*:}: $(cat "$T/out")"
done
ok "a second copy moves no chunk"

night 2 "$T/o1.qcow2" $((20 << 20)) $((3 << 20))
id2=$ID
run_ok livebackup copy --from "$S" --to "$D" --json --name img
[[ $(json_field "$T/out" summary copied) == 1 ]] || fail "third copy: $(cat "$T/out")"
sent=$(json_field "$T/out" summary bytes_sent)
((sent >= 3 << 20 && sent < 4 << 20)) ||
    fail "the copy of a backup with 3 MiB of new data sent $sent bytes"
# its parent is in D: the disk goes as an incremental on the parent's
# copy, and only the changed window's chunks are asked about (none of
# them stored there), not every window's
[[ $(json_field "$T/out" summary chunks_reused) == 0 ]] ||
    fail "the copy asked about the chunks of unchanged windows: $(cat "$T/out")"
same_stacks "$S" "$D" "$id2"
run_ok livebackup restore-image --repo "$D" --name img --backup latest --disk vda --to "$T/r2.raw"
same_image "$T/r2.raw" raw "$T/truth2.raw" raw
ok "the next copy moves the new backup's data only ($sent bytes for 3 MiB), as an incremental on its parent's copy"

run_ok livebackup copy --from "$S" --to "$D" --dry-run --json
[[ $(json_field "$T/out" summary present) == 5 ]] || fail "dry run: $(cat "$T/out")"
D2=$T/dst2
run_ok livebackup init --repo "$D2"
run_ok livebackup copy --from "$S" --to "$D2" --name img --last 1 --json
[[ $(json_field "$T/out" copy id) == "$id2" && $(nbackups "$D2") == 1 ]] ||
    fail "--last 1: $(cat "$T/out")"
run_ok livebackup copy --from "$S" --to "$D2" --json
grep -q "\"id\":\"$id0\".*\"action\":\"skipped\",\"reason\":\"older than" "$T/out" ||
    fail "an older backup was not skipped: $(cat "$T/out")"
[[ $(nbackups "$D2") == 3 ]] || fail "$D2: $(nbackups "$D2") backups"
run_ok livebackup copy --from "$S" --to "$D2" --backup "$idb" --json
[[ $(json_field "$T/out" summary selected) == 1 ]] || fail "--backup: $(cat "$T/out")"
ok "--dry-run, --last, --backup; a backup older than the destination's latest of its set is skipped"

# One repository under two spellings (./dst, a link to it) is refused as
# the same one, a usage error (exit 2), like one spelling twice.
# refused_as_same FROM TO...: copy from FROM to each TO is refused so.
refused_as_same() {
    local from=$1 to rc
    shift
    for to; do
        rc=0
        livebackup copy --from "$from" --to "$to" --rsh "${LB_RSH:-ssh}" >"$T/out" 2>"$T/err" || rc=$?
        [[ $rc -eq 2 ]] && grep -q "the same repository" "$T/err" ||
            fail "copy --from $from --to $to: exit status $rc: $(cat "$T/err")"
    done
}
ln -s "$D" "$T/dst-link"
refused_as_same "$D" "$D" "$(dirname "$D")/./$(basename "$D")" "$T/dst-link" "$D/"
ok "a copy onto its own repository, under any spelling, is refused"

# ---- killed mid-way, ssh cut mid-way -------------------------------------------
K=$T/big
run_ok livebackup init --repo "$K"
qemu-img create -q -f raw "$T/k.raw" 48M
head -c $((40 << 20)) /dev/urandom | dd of="$T/k.raw" conv=notrunc status=none
run_ok livebackup backup-image --repo "$K" --name big --disk vda="$T/k.raw"
head -c $((8 << 20)) /dev/urandom | dd of="$T/k.raw" bs=1M seek=40 conv=notrunc status=none
run_ok livebackup backup-image --repo "$K" --name big --disk vda="$T/k.raw"
cp "$T/k.raw" "$T/truthk.raw"
total=$(nchunks "$K")

# interrupted DST HOW: a copy of $K to DST slowed down, stopped by HOW
# (kill: SIGKILL to livebackup; cut: SIGTERM to its ssh) once DST holds
# two chunks; then DST verifies and lists nothing partial, and the rerun
# sends exactly the chunks DST lacks.
interrupted() {
    local dst=$1 how=$2 from=$K pid kids k n before
    [[ $how == kill ]] || from="ssh://root@127.0.0.1:$SSH_PORT$K"
    run_ok livebackup init --repo "$dst"
    livebackup copy --from "$from" --to "$dst" --bwlimit 4M --rsh "${LB_RSH:-ssh}" \
        >"$T/int.out" 2>"$T/int.err" &
    pid=$!
    lb_track "$pid"
    wait_until 120 "two chunks in $dst" bash -c "(( \$(find '$dst/chunks' -type f | wc -l) >= 2 ))"
    kids=$(pgrep -P "$pid" || true)
    if [[ $how == kill ]]; then
        kill -KILL "$pid"
    else
        for k in $kids; do
            [[ $(cat "/proc/$k/comm" 2>/dev/null) == ssh ]] && kill -TERM "$k"
        done
    fi
    n=0
    wait "$pid" || n=$?
    [[ $n != 0 ]] || fail "the interrupted copy ended well"
    if [[ $how == cut ]]; then
        grep -Eq "cut|closed|broken|ssh" "$T/int.err" || fail "no reason given: $(cat "$T/int.err")"
    fi
    for k in $kids; do wait_until 60 "process $k ended" bash -c "! kill -0 $k 2>/dev/null"; done
    [[ $(nbackups "$dst") == 0 ]] || fail "$how: a partial backup is listed"
    run_ok livebackup verify --repo "$dst"
    before=$(nchunks "$dst")
    ((before >= 2 && before < total)) || fail "$how: $before of $total chunks before the rerun"
    run_ok livebackup copy --from "$from" --to "$dst" --rsh "${LB_RSH:-ssh}" --json
    [[ $(json_field "$T/out" summary copied) == 2 ]] || fail "$how: rerun: $(cat "$T/out")"
    n=$(json_field "$T/out" summary chunks_sent)
    [[ $n == $((total - before)) ]] ||
        fail "$how: the rerun sent $n chunks, $dst lacked $((total - before))"
    run_ok livebackup restore-image --repo "$dst" --name big --backup latest --disk vda \
        --to "$T/rk-$how.raw"
    same_image "$T/rk-$how.raw" raw "$T/truthk.raw" raw
    run_ok livebackup verify --repo "$dst"
    ok "copy $how mid-way: nothing partial listed, verified; the rerun sent the $n missing chunks of $total"
}
interrupted "$T/dk" kill

# ---- the destination's filesystem full mid-way -------------------------------------
# DST on a 24 MiB tmpfs, $K's 48 MiB of incompressible data: the copy
# fails naming DST and the cause, leaves no partial backup and no temp
# file, and once the filesystem has room the rerun sends only what DST
# lacks.
mkdir "$T/small"
mount -t tmpfs -o size=24m tmpfs "$T/small"
LB_MOUNTS+=("$T/small")
F=$T/small/dst
run_ok livebackup init --repo "$F"
expect_fail "$F[^ ]*: No space left on device.*free space on the repository's filesystem and run the copy again" \
    livebackup copy --from "$K" --to "$F"
grep -q "0 backup(s) copied" "$T/out" || fail "summary: $(cat "$T/out")"
[[ $(nbackups "$F") == 0 ]] || fail "disk full: a partial backup is listed"
[[ -z $(find "$F/tmp" -type f) ]] || fail "disk full: temp files left: $(find "$F/tmp" -type f)"
run_ok livebackup verify --repo "$F"
before=$(nchunks "$F")
((before >= 1 && before < total)) || fail "disk full: $before of $total chunks stored"
mount -o remount,size=128m "$T/small"
run_ok livebackup copy --from "$K" --to "$F" --json
[[ $(json_field "$T/out" summary copied) == 2 ]] || fail "disk full: rerun: $(cat "$T/out")"
n=$(json_field "$T/out" summary chunks_sent)
[[ $n == $((total - before)) ]] || fail "disk full: the rerun sent $n chunks, $F lacked $((total - before))"
run_ok livebackup verify --repo "$F"
first=$(livebackup list --repo "$K" --json | jq -r 'select(.event == "backup") | .id' | sed -n 1p)
run_ok livebackup restore-image --repo "$K" --name big --backup "$first" --disk vda --to "$T/rf-src.raw"
run_ok livebackup restore-image --repo "$F" --name big --backup "$first" --disk vda --to "$T/rf-0.raw"
same_image "$T/rf-0.raw" raw "$T/rf-src.raw" raw
run_ok livebackup restore-image --repo "$F" --name big --backup latest --disk vda --to "$T/rf-1.raw"
same_image "$T/rf-1.raw" raw "$T/truthk.raw" raw
umount "$T/small"
LB_MOUNTS=()
ok "copy onto a full filesystem: fails naming it, nothing partial listed, verified; with room, the rerun sent the $n missing chunks of $total and both backups restore exact"

sshd_start
key=$(cat "$T/ssh/user_key.pub")
echo "command=\"$BACKUPD serve --restrict-to-repo $T --read-only\",restrict $key" \
    >"$T/ssh/authorized_keys"
interrupted "$T/dc" cut

# ---- a damaged chunk in the source ------------------------------------------------
C=$T/damaged
cp -a "$S" "$C"
# a chunk only the backup of set "other" uses
bad=$(comm -23 <(manifest_chunks "$C/backups/$idb" vda | awk '{print $3}' | sort -u) \
    <(for id in "$id0" "$id1" "$id2"; do manifest_chunks "$C/backups/$id" vda; done |
        awk '{print $3}' | sort -u) | sed -n 1p)
[[ -n $bad ]] || fail "no chunk of its own in backup $idb"
f=$(chunk_file "$C" "$bad")
flip_bytes "$f" $(($(stat -c %s "$f") / 2)) 2
D3=$T/dst3
run_ok livebackup init --repo "$D3"
expect_fail "backup $idb of other not copied: chunk $bad is damaged in the source" \
    livebackup copy --from "$C" --to "$D3"
grep -q "3 backup(s) copied.*2 failed" "$T/out" || fail "summary: $(cat "$T/out")"
grep -q "backup $idx of vmx not copied: chunk $bad is damaged" "$T/err" ||
    fail "the other backup that uses it is not named: $(cat "$T/err")"
[[ $(nbackups "$D3") == 3 ]] || fail "$D3 has $(nbackups "$D3") backups"
run_ok livebackup verify --repo "$D3"
rm -f "$f"
expect_fail "backup $idb of other not copied: chunk $bad is missing in the source" \
    livebackup copy --from "$C" --to "$D3"
ok "a damaged (then missing) chunk fails only the backups that use it, by name; the destination is sound"

# a damaged chunk in the middle of a long copy: 256 chunks (64 KiB windows)
# go in four GET_STORED requests, each sent before the answers to the last
# are read; the damaged one (window 100, in the second request) fails its
# backup, the answers already asked for are read to their end, and the
# session goes on to the next backup. Repaired, the rerun sends the rest.
M=$T/many
run_ok livebackup init --repo "$M" --window-size 64K
qemu-img create -q -f raw "$T/m.raw" 16M
head -c $((16 << 20)) /dev/urandom | dd of="$T/m.raw" conv=notrunc status=none
run_ok livebackup backup-image --json --repo "$M" --name many --disk vda="$T/m.raw"
idm=$(json_field "$T/out" summary id)
run_ok livebackup backup-image --json --repo "$M" --name few --disk vda="$T/b.qcow2"
mtotal=$(nchunks "$M")
((mtotal > 3 * 64 + 1)) || fail "$M has $mtotal chunks"
bad=$(manifest_chunks "$M/backups/$idm" vda | awk '$1 == 100 { print $3 }')
f=$(chunk_file "$M" "$bad")
cp "$f" "$T/good.chunk"
flip_bytes "$f" $(($(stat -c %s "$f") / 2)) 2
D4=$T/dst4
run_ok livebackup init --repo "$D4" --window-size 64K
expect_fail "backup $idm of many not copied: chunk $bad is damaged in the source" \
    livebackup copy --from "$M" --to "$D4"
grep -q "1 backup(s) copied.*1 failed" "$T/out" || fail "summary: $(cat "$T/out")"
[[ $(nbackups "$D4") == 1 ]] || fail "$D4 has $(nbackups "$D4") backups"
run_ok livebackup verify --repo "$D4"
before=$(nchunks "$D4")
cp "$T/good.chunk" "$f"
run_ok livebackup copy --from "$M" --to "$D4" --json
[[ $(json_field "$T/out" summary copied) == 1 ]] || fail "repaired: $(cat "$T/out")"
n=$(json_field "$T/out" summary chunks_sent)
[[ $n == $((mtotal - before)) ]] || fail "repaired: sent $n chunks, $D4 lacked $((mtotal - before))"
run_ok livebackup restore-image --repo "$D4" --name many --backup latest --disk vda --to "$T/rm.raw"
same_image "$T/rm.raw" raw "$T/m.raw" raw
ok "a damaged chunk amid four pipelined requests fails its backup only; repaired, the rerun sent the $n missing chunks and restores exact"

# ---- pull through a --read-only key -------------------------------------------
P=$T/pulled
run_ok livebackup init --repo "$P"
find "$S" -type f -printf '%P %s %T@\n' | sort >"$T/src.before"
URL="ssh://root@127.0.0.1:$SSH_PORT$S"
rlb() { livebackup "$@" --rsh "$LB_RSH"; }
run_ok rlb copy --from "$URL" --to "$P" --json
[[ $(json_field "$T/out" summary copied) == 5 ]] || fail "pull: $(cat "$T/out")"
same_listing "$S" "$P"
run_ok livebackup verify --repo "$P"
expect_fail "read-only" rlb delete --repo "$URL" --backup "$id0"
expect_fail "read-only" rlb prune --repo "$URL" --keep-last 1
expect_fail "read-only" rlb gc --repo "$URL"
expect_fail "read-only" rlb backup-image --repo "$URL" --name img --disk vda="$T/d.qcow2"
expect_fail "read-only" rlb init --repo "ssh://root@127.0.0.1:$SSH_PORT$T/new"
[[ ! -e $T/new ]] || fail "a repository was made through the read-only key"
# One remote repository written two ways, or reached through a daemon:
# refused as the same one before anything connects.
refused_as_same "$URL" "$URL/" "ssh://root@127.0.0.1:$SSH_PORT/$S" \
    "ssh://root@127.0.0.1:$SSH_PORT$(dirname "$S")/./$(basename "$S")" "$URL?socket=$T/none.sock"
ok "a copy onto its own remote repository, written another way, is refused"
# ---- a source that lies ---------------------------------------------------------
# Its backupd (or its memory, after its own check) hands over a chunk with a
# byte flipped (lbhostile liar, on the ssh connection): the destination,
# whose client is not on the source's host, checks every chunk again. The
# backup that needs the chunk is not copied, by name; nothing partial is
# listed; the destination verifies; the rerun through an honest
# connection copies it exact.
L=$T/lied
run_ok livebackup init --repo "$L"
lb_liar "$T/liar-rsh" -- $LB_RSH
rc=0
livebackup copy --from "$URL" --to "$L" --rsh "$T/liar-rsh" >"$T/out" 2>"$T/err" || rc=$?
no_sanitizer_report "$T/err"
flipped=$(sed -n 's/^liar: flipped a byte of chunk //p' "$T/liar.log")
[[ -n $flipped ]] || fail "the liar flipped nothing: $(cat "$T/liar.log" "$T/err")"
[[ $rc -eq 1 ]] || fail "a lying source: exit status $rc: $(cat "$T/out" "$T/err")"
grep -Eq "error: backup [0-9a-f-]+ of (img|other): chunk $flipped: data does not match its digest" "$T/err" &&
    grep -q "hint: the destination checked a chunk as it came and refused it" "$T/err" &&
    grep -q " 1 failed;" "$T/out" ||
    fail "a lying source: not said so: $(cat "$T/out" "$T/err")"
run_ok livebackup verify --repo "$L"
[[ -z $(find "$L" -name "$flipped*" -type f) ]] || fail "the flipped chunk $flipped was stored"
for b in $(livebackup list --repo "$L" --json | jq -r 'select(.event == "backup") | .id'); do
    livebackup restore-image --repo "$L" --name img --backup "$b" --disk vda --to "$T/lied-$b.raw" >/dev/null 2>&1 ||
        livebackup restore-image --repo "$L" --name other --backup "$b" --disk vda --to "$T/lied-$b.raw" >/dev/null ||
        fail "a backup listed in $L after the lying copy does not restore"
done
run_ok rlb copy --from "$URL" --to "$L" --json
run_ok livebackup verify --repo "$L"
same_listing "$S" "$L"
ok "a lying source (a byte flipped after its check): the copy of that backup fails, by name; the destination stored nothing of it and verifies; an honest rerun completes"
run_ok livebackup init --repo "$T/pushsrc"
run_ok livebackup backup-image --repo "$T/pushsrc" --name pushed --disk vda="$T/b.qcow2"
expect_fail "read-only" rlb copy --from "$T/pushsrc" --to "$URL"
run_ok rlb prune --repo "$URL" --keep-last 1 --dry-run
find "$S" -type f -printf '%P %s %T@\n' | sort >"$T/src.after"
diff "$T/src.before" "$T/src.after" >&2 || fail "the source changed through the read-only key"
ok "a pull through a --read-only key copies; the key cannot delete, prune, gc, back up, copy in or init, and touched nothing"

# the same key bridged to a backupd listen daemon serving the source
lb_listen_start "$S" "$T/backupd.sock"
P2=$T/pulled2
run_ok livebackup init --repo "$P2"
run_ok rlb copy --from "$URL" --to "$P2" --name other --json
[[ $(json_field "$T/out" summary copied) == 1 ]] || fail "bridged pull: $(cat "$T/out")"
grep -q "bridged session from .*(read-only)" "$T/daemon.log" || fail "not bridged: $(cat "$T/daemon.log")"
expect_fail "read-only" rlb delete --repo "$URL" --backup "$id0"
expect_fail "read-only" rlb gc --repo "$URL"
kill -TERM "$DAEMON"
wait "$DAEMON" || true
ok "the --read-only key bridged to backupd listen: the pull works, writes are refused"

# ---- push through an append-only key, into a repository served by listen --------
echo "command=\"$BACKUPD serve --restrict-to-repo $T --append-only\",restrict $key" \
    >"$T/ssh/authorized_keys"
A=$T/offsite
run_ok livebackup init --repo "$A"
run_ok rlb copy --from "$S" --to "ssh://root@127.0.0.1:$SSH_PORT$A" --name img --json
[[ $(json_field "$T/out" summary copied) == 3 ]] || fail "push: $(cat "$T/out")"
same_listing "$S" "$A"
L=$T/listened
run_ok livebackup init --repo "$L"
lb_listen_start "$L" "$T/l.sock"
run_ok livebackup copy --from "$S" --to "$L" --json
[[ $(json_field "$T/out" summary copied) == 5 ]] || fail "to listen: $(cat "$T/out")"
grep -q "import of backup $id0 of img started" "$T/daemon.log" || fail "not through the daemon"
kill -TERM "$DAEMON"
wait "$DAEMON" || true
run_ok livebackup verify --repo "$L"
ok "a push through an append-only key, and a copy into a repository served by backupd listen"

# ---- prune and gc on the source --------------------------------------------------
run_ok livebackup prune --repo "$S" --keep-last 1
run_ok livebackup gc --repo "$S"
[[ $(nbackups "$S") == 3 ]] || fail "the source kept $(nbackups "$S") backups"
[[ $(nbackups "$D") == 5 ]] || fail "the copy has $(nbackups "$D") backups after the source's prune"
run_ok livebackup verify --repo "$D"
run_ok livebackup restore-image --repo "$D" --name img --backup "$id0" --disk vda --to "$T/r0b.raw"
same_image "$T/r0b.raw" raw "$T/truth0.raw" raw
run_ok livebackup copy --from "$S" --to "$D" --json
[[ $(json_field "$T/out" summary chunks_sent) == 0 ]] || fail "after prune: $(cat "$T/out")"
ok "prune and gc on the source leave the copies intact"

# ---- incrementals on the parent's copy -------------------------------------------
# A night that changed nothing: its copy onto its parent's copy sends no
# window record, asks about no chunk and moves none; the stacks are the
# parent's, the restore exact.
night 3 "$T/o2.qcow2"
id3=$ID
run_ok livebackup copy --from "$S" --to "$D" --name img --json
for k in copied:1 chunks_sent:0 chunks_reused:0 bytes_sent:0; do
    [[ $(json_field "$T/out" summary "${k%%:*}") == "${k#*:}" ]] ||
        fail "an unchanged night's copy: ${k%%:*} is not ${k#*:}: $(cat "$T/out")"
done
same_stacks "$S" "$D" "$id3"
run_ok livebackup restore-image --repo "$D" --name img --backup "$id3" --disk vda --to "$T/r3.raw"
same_image "$T/r3.raw" raw "$T/truth3.raw" raw
ok "an unchanged night copied onto its parent's copy: no record, no query, no chunk; restored exact"

# The parent's copy damaged in the destination: the next night's disks go
# whole (as to a repository without the parent), with a warning naming
# it, and the copy is exact.
night 4 "$T/o3.qcow2" $((50 << 20)) $((1 << 20))
id4=$ID
# a byte of the first window's first digest (store/FORMAT.md: the disk
# section at 64, its windows 33 bytes in, a stack's depth and type first)
printf '\xff' | dd of="$D/backups/$id3" bs=1 seek=109 conv=notrunc status=none
run_ok livebackup copy --from "$S" --to "$D" --name img --json
grep -q "warning: backup $id3 of img in $D: .*its disks are copied whole" "$T/err" ||
    fail "no warning about the damaged parent: $(cat "$T/err")"
[[ $(json_field "$T/out" summary copied) == 1 ]] || fail "copy onto a damaged parent: $(cat "$T/out")"
(($(json_field "$T/out" summary chunks_reused) > 0)) ||
    fail "the disk was not sent whole: $(cat "$T/out")"
same_stacks "$S" "$D" "$id4"
run_ok livebackup restore-image --repo "$D" --name img --backup "$id4" --disk vda --to "$T/r4.raw"
same_image "$T/r4.raw" raw "$T/truth4.raw" raw
ok "a night whose parent's copy is damaged in the destination is copied whole, with a warning, and exact"
