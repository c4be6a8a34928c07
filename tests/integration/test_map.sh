#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# livebackup map: a disk of a backup as a read-only NBD export (nbdkit with
# our plugin). nbdcopy of the export equals restore-image of the same disk,
# for a full and an incremental backup, from a local repository, over ssh
# and through backupd listen; block status reports the holes and the zero
# runs (nbdcopy and qemu-img convert stay sparse); a damaged chunk gives an
# I/O error on the reads that touch its window and nothing else, a missing
# one too (the export connects to the repository again for the next read);
# a server that stalls under a read is given up on and the read asked
# again on a new session;
# --daemon runs until SIGTERM; bad input fails clearly.
. "$(dirname "$0")/lib.sh"

R=$T/repo
run_ok livebackup init --repo "$R"
# 96 MiB, 4 MiB windows: data at 0 (3 MiB), 20M (8 KiB), 40M (4 MiB),
# incompressible data at 64M; the rest holes.
qemu-img create -q -f qcow2 "$T/a.qcow2" 96M
qemu-io -f qcow2 -c "write -P 7 0 3M" -c "write -P 9 20M 8k" \
    -c "write -P 3 40M 4M" "$T/a.qcow2" >/dev/null
write_random "$T/a.qcow2" qcow2 $((64 << 20)) $((4 << 20))
run_ok livebackup backup-image --json --repo "$R" --name img --disk vda="$T/a.qcow2"
full=$(json_field "$T/out" summary id)
# The incremental: a 4 KiB write, a zeroed 64 KiB run inside the RAW
# window at 40M, data in an empty window (88M).
overlay "$T/t.qcow2" "$T/a.qcow2" qcow2
qemu-io -f qcow2 -c "write -P 5 1M 4k" -c "write -z 40M 64k" \
    -c "write -P 1 88M 12k" "$T/t.qcow2" >/dev/null
run_ok livebackup backup-image --json --repo "$R" --name img \
    --disk vda="$T/t.qcow2" --since "$T/a.qcow2"
incr=$(json_field "$T/out" summary id)
ok "a full ($full) and an incremental ($incr) backup of a 96 MiB image"

# map_start ID SOCKET [livebackup options...]: an export in the
# foreground (recorded), ready once its pid file is written.
map_start() {
    local id=$1 sock=$2
    shift 2
    rm -f "$sock.pid"
    livebackup map --repo "$R" --name img --backup "$id" --disk vda \
        --socket "$sock" --pid-file "$sock.pid" "$@" 2>>"$T/map.log" &
    MAP_PID=$!
    lb_track "$MAP_PID"
    wait_until 60 "the export of $id on $sock" map_ready "$sock"
}
map_ready() {
    lb_alive "$MAP_PID" || fail "livebackup map exited: $(tail -n 5 "$T/map.log")"
    [[ -S $1 && -s $1.pid ]]
}
map_stop() {
    kill -TERM "$MAP_PID"
    wait "$MAP_PID" || true
}
lb_watch_log "$T/map.log"
nbd() { echo "nbd+unix:///?socket=$1"; }

# copy_equals ID SOCKET WHAT: nbdcopy of the export equals restore-image.
copy_equals() {
    rm -f "$T/copy.raw" "$T/ref.raw"
    nbdcopy "$(nbd "$2")" "$T/copy.raw" 2>"$T/nbdcopy.err" ||
        fail "nbdcopy of $3: $(cat "$T/nbdcopy.err")"
    run_ok livebackup restore-image --repo "$R" --name img --backup "$1" \
        --disk vda --to "$T/ref.raw"
    cmp "$T/copy.raw" "$T/ref.raw" || fail "$3: the export differs from restore-image"
    (($(alloc_bytes "$T/copy.raw") <= $(alloc_bytes "$T/ref.raw") + (1 << 20))) ||
        fail "$3: nbdcopy's copy is not sparse ($(alloc_bytes "$T/copy.raw") bytes allocated)"
}

S=$T/m.sock
for id in "$full" "$incr"; do
    map_start "$id" "$S"
    copy_equals "$id" "$S" "backup $id"
    map_stop
done
qemu-img compare -q -f raw -F qcow2 "$T/copy.raw" "$T/t.qcow2" ||
    fail "the incremental's export differs from the image it was taken from"
ok "nbdcopy of the export equals restore-image, full and incremental (local)"

# Reading ahead: reads one at a time, 512 KiB each, front to back (what
# QEMU's block-stream does during an instant restore's pull) find the
# windows ahead fetched in the background while they copy; the copy is
# exact. 48 MiB of random data: 12 windows of 4 MiB.
qemu-img create -q -f qcow2 "$T/seq.qcow2" 48M
write_random "$T/seq.qcow2" qcow2 0 $((48 << 20))
run_ok livebackup backup-image --json --repo "$R" --name seq --disk vda="$T/seq.qcow2"
seq_id=$(json_field "$T/out" summary id)
rm -f "$S.pid"
livebackup map -v --repo "$R" --name seq --disk vda --socket "$S" \
    --pid-file "$S.pid" 2>"$T/seq.log" &
MAP_PID=$!
lb_track "$MAP_PID"
wait_until 60 "the export of $seq_id" map_ready "$S"
nbdcopy --requests=1 --request-size=524288 "$(nbd "$S")" "$T/seq.raw" ||
    fail "nbdcopy of the export of $seq_id"
map_stop
qemu-img compare -q -f raw -F qcow2 "$T/seq.raw" "$T/seq.qcow2" ||
    fail "the sequential copy differs from the image"
line=$(grep -a "reader: " "$T/seq.log") || fail "no reader statistics: $(tail -n 5 "$T/seq.log")"
ahead=$(sed -n 's/.* \([0-9]*\) batches read ahead in the background.*/\1/p' <<<"$line")
[[ $ahead =~ ^[0-9]+$ ]] && ((ahead >= 1)) || fail "nothing read ahead in the background: $line"
ok "sequential reads one at a time: $ahead batches read ahead in the background, the copy exact (${line#*reader: })"

# Block status: the holes, the data, and the zero run of a DELTA (88M: 12
# KiB of data on zeros).
map_start "$incr" "$S"
nbdinfo --map "$(nbd "$S")" >"$T/map.txt"
status_at() { # OFFSET: the type description of the extent holding it
    awk -v o="$1" '$1 <= o && o < $1 + $2 { $1 = $2 = $3 = ""; gsub(/^ +/, ""); print }' "$T/map.txt"
}
[[ $(status_at 0) == data && $(status_at $((8 << 20))) == hole,zero &&
    $(status_at $((20 << 20))) == data && $(status_at $((88 << 20))) == data &&
    $(status_at $(((88 << 20) + (64 << 10)))) == zero ]] ||
    fail "block status: $(cat "$T/map.txt")"
holes=$(awk '$NF == "hole,zero" { n += $2 } END { print n + 0 }' "$T/map.txt")
((holes >= (60 << 20))) || fail "only $holes bytes reported as holes: $(cat "$T/map.txt")"
qemu-img convert -f raw -O qcow2 "$(nbd "$S")" "$T/conv.qcow2"
qemu-img compare -q -f qcow2 -F raw "$T/conv.qcow2" "$T/ref.raw" ||
    fail "qemu-img convert of the export differs"
(($(alloc_bytes "$T/conv.qcow2") < (20 << 20))) ||
    fail "qemu-img convert did not stay sparse: $(alloc_bytes "$T/conv.qcow2") bytes"
map_stop
ok "block status: $((holes >> 20)) MiB of holes, data and a DELTA's zero run; qemu-img convert stays sparse"

# A repository server that stalls under a read (its backupd stopped by a
# hook once it sent its first chunk, once: as a hung disk under the
# repository would stop it, or an ssh path whose far end went away): the
# next read (another window) waits LIVEBACKUP_IO_TIMEOUT (3 s here), then
# the export gives up on the session, says so, and asks again on a new
# one; the read is served exact, so is a whole copy after it. Bounded: an
# export without the stall limit holds the read for ever (timeout ends it at
# 60 s, and the check fails); the stopped backupd is ended by lb_cleanup
# if the test fails first.
export LIVEBACKUP_IO_TIMEOUT=3
LIVEBACKUP_FAULT_HOOK=$(lb_stop_hook backupd:chunk-sent@1)
export LIVEBACKUP_FAULT_HOOK
map_start "$full" "$S"
unset LIVEBACKUP_IO_TIMEOUT LIVEBACKUP_FAULT_HOOK
qemu-io -r -f raw -c "read -P 3 40M 4M" "$(nbd "$S")" >"$T/qio.out" 2>&1 ||
    fail "the read before the stall: $(cat "$T/qio.out")"
[[ -s $T/stopped.pid ]] || fail "the hook did not stop the export's backupd"
t0=$(date +%s%N)
timeout 60 qemu-io -r -f raw -c "read -P 7 0 3M" "$(nbd "$S")" >"$T/qio.out" 2>&1 ||
    fail "a read through a stalled server: $(cat "$T/qio.out")"
took=$((($(date +%s%N) - t0) / 1000000))
! grep -qi "error\|mismatch" "$T/qio.out" || fail "a read through a stalled server: $(cat "$T/qio.out")"
stopped=$(cat "$T/stopped.pid")
! lb_alive "$stopped" || fail "the stopped backupd ($stopped) was left behind"
((took >= 3000 && took < 30000)) || fail "a stalled server: the read took $took ms"
grep -q "took and sent nothing for 3 s: gave up on it; reading again on a new session" "$T/map.log" ||
    fail "the export did not say it gave up: $(tail -n 5 "$T/map.log")"
nbdcopy "$(nbd "$S")" "$T/copy.raw" 2>"$T/nbdcopy.err" ||
    fail "nbdcopy after the stall: $(cat "$T/nbdcopy.err")"
run_ok livebackup restore-image --repo "$R" --name img --backup "$full" \
    --disk vda --to "$T/stall-ref.raw"
cmp "$T/copy.raw" "$T/stall-ref.raw" || fail "the copy after the stall differs"
map_stop
ok "a stalled server under a read: given up on after $took ms, the read asked again on a new session and exact; so is a copy after it"

# Over ssh: the export reads through the same protocol session.
sshd_start
URL="ssh://root@127.0.0.1:$SSH_PORT$R"
rm -f "$S.pid"
livebackup map --repo "$URL" --rsh "$LB_RSH" --remote-backupd "$BACKUPD" \
    --name img --backup "$incr" --disk vda --socket "$S" --pid-file "$S.pid" 2>>"$T/map.log" &
MAP_PID=$!
lb_track "$MAP_PID"
wait_until 60 "the export over ssh" map_ready "$S"
copy_equals "$incr" "$S" "the incremental over ssh"
map_stop
ok "over ssh: nbdcopy of the export equals restore-image"

# Through backupd listen: the plugin's session is bridged to the daemon.
lb_listen_start "$R" "$T/bd.sock"
map_start "$full" "$S"
copy_equals "$full" "$S" "the full through backupd listen"
map_stop
grep -q "bridged session from local" "$T/daemon.log" ||
    fail "the export's session did not go through the daemon: $(tail -n 5 "$T/daemon.log")"
kill -TERM "$DAEMON"
wait "$DAEMON" || true
ok "through backupd listen: the export's session is bridged, the copy equals"

# A damaged chunk: the reads of its window fail (EIO), never wrong data;
# the others are served. Window 16 (64M) holds the incompressible RAW chunk.
cp -a "$R" "$T/bad"
chunk=$(manifest_chunks "$R/backups/$full" vda | awk '$1 == 16 { print $3 }')
[[ -n $chunk ]] || fail "no chunk for window 16"
f=$(chunk_file "$T/bad" "$chunk")
size=$(stat -c %s "$f")
flip_bytes "$f" $((size / 2)) 4
R_SAVE=$R
R=$T/bad
map_start "$full" "$S"
if qemu-io -r -f raw -c "read 64M 4k" "$(nbd "$S")" >"$T/qio.out" 2>&1; then
    fail "a read of the damaged window succeeded: $(cat "$T/qio.out")"
fi
grep -q "Input/output error" "$T/qio.out" || fail "not an I/O error: $(cat "$T/qio.out")"
qemu-io -r -f raw -c "read -P 7 0 3M" -c "read -P 9 20M 8k" -c "read -P 3 40M 4M" \
    "$(nbd "$S")" >"$T/qio.out" 2>&1 || fail "reads elsewhere failed: $(cat "$T/qio.out")"
! grep -qi "error\|mismatch" "$T/qio.out" || fail "reads elsewhere: $(cat "$T/qio.out")"
grep -q "chunk $chunk (offset 67108864) is damaged" "$T/map.log" ||
    fail "the export did not say which chunk: $(tail -n 5 "$T/map.log")"
if nbdcopy "$(nbd "$S")" "$T/copy.raw" 2>"$T/nbdcopy.err"; then
    fail "nbdcopy of a damaged backup succeeded"
fi
map_stop
ok "a damaged chunk: EIO on the reads of its window, the others read right"
# A missing chunk: the repository ends the session; that read fails, the
# next one connects again.
rm "$f"
map_start "$full" "$S"
if qemu-io -r -f raw -c "read 66M 4k" "$(nbd "$S")" >"$T/qio.out" 2>&1; then
    fail "a read of a missing chunk succeeded"
fi
grep -q "Input/output error" "$T/qio.out" || fail "not an I/O error: $(cat "$T/qio.out")"
qemu-io -r -f raw -c "read -P 3 40M 4M" "$(nbd "$S")" >"$T/qio.out" 2>&1 ||
    fail "the read after a missing chunk failed: $(cat "$T/qio.out")"
! grep -qi "error\|mismatch" "$T/qio.out" || fail "after a missing chunk: $(cat "$T/qio.out")"
map_stop
ok "a missing chunk: EIO on its window, the export reconnects for the next read"
# The same with --daemon, --repo relative, its output to a pipe: the
# pipe ends when the command does (nothing of the daemon's holds it), and
# the export (which works from /) reconnects to the same repository.
# (the reader of the pipe gives up after 60 s: a daemon that kept it
# would hang the test, as it hangs `$(...)` or an ssh session)
{
    cd "$T" && livebackup map --repo bad --name img --backup "$full" \
        --disk vda --socket "$S" --daemon --pid-file "$T/b.pid"
    echo "exit $?"
} 2>&1 | { timeout 60 cat >"$T/daemon.out" || echo "the output stayed open" >>"$T/daemon.out"; }
pid=$(cat "$T/b.pid" 2>/dev/null || true)
[[ -z $pid ]] || lb_track_daemon "$pid"
[[ $(cat "$T/daemon.out") == "exit 0" ]] ||
    fail "map --daemon, its output to a pipe: $(cat "$T/daemon.out")"
if qemu-io -r -f raw -c "read 66M 4k" "$(nbd "$S")" >"$T/qio.out" 2>&1; then
    fail "--daemon: a read of a missing chunk succeeded"
fi
qemu-io -r -f raw -c "read -P 3 40M 4M" "$(nbd "$S")" >"$T/qio.out" 2>&1 ||
    fail "--daemon, --repo relative: the read after a missing chunk failed: $(cat "$T/qio.out")"
kill -TERM "$pid"
wait_until 30 "the daemon to stop" eval "! lb_alive $pid"
R=$R_SAVE
ok "map --daemon returns with its output captured; with --repo relative it reconnects"

# --daemon: the command returns once the export serves; SIGTERM stops it.
run_ok livebackup map --repo "$R" --name img --disk vda --socket "$S" \
    --daemon --pid-file "$T/d.pid"
pid=$(cat "$T/d.pid")
lb_track_daemon "$pid"
lb_alive "$pid" || fail "the daemon $pid is not running"
nbdinfo --size "$(nbd "$S")" >"$T/size" || fail "the daemon does not serve"
[[ $(cat "$T/size") == $((96 << 20)) ]] || fail "size $(cat "$T/size")"
# A second export may not take over the pid file of one that runs.
rc=0
livebackup map --repo "$R" --name img --disk vda --socket "$T/second.sock" \
    --daemon --pid-file "$T/d.pid" >"$T/out" 2>"$T/err" || rc=$?
lb_track_daemon "$(cat "$T/d.pid")" # a second export, if it took over
[[ $rc -eq 1 && $(cat "$T/d.pid") == "$pid" && ! -e $T/second.sock ]] ||
    fail "the pid file was taken over (exit $rc, pid file $(cat "$T/d.pid")): $(cat "$T/err")"
grep -q "$T/d.pid names an export that is still running (pid $pid)" "$T/err" ||
    fail "no clear error: $(cat "$T/err")"
kill -TERM "$pid"
wait_until 30 "the daemon to stop" eval "! lb_alive $pid"
# nbdkit leaves its socket and pid file; the plugin removes them: a pid
# file left behind would name, some day, another process
[[ ! -e $T/d.pid && ! -e $S ]] ||
    fail "the stopped export left $(ls -d "$T/d.pid" "$S" 2>/dev/null)"
# ... but only its own: a pid file another export rewrote stays
run_ok livebackup map --repo "$R" --name img --disk vda --socket "$S" \
    --daemon --pid-file "$T/d.pid"
pid=$(cat "$T/d.pid")
lb_track_daemon "$pid"
echo 1 >"$T/d.pid"
kill -TERM "$pid"
wait_until 30 "the daemon to stop" eval "! lb_alive $pid"
[[ $(cat "$T/d.pid" 2>/dev/null) == 1 && ! -e $S ]] ||
    fail "a pid file not the export's own was removed, or its socket left"
rm -f "$T/d.pid"
ok "--daemon serves until SIGTERM; its pid file is not taken over by another export; stopped, it leaves no socket or pid file (and removes no other's)"

# An encrypted repository: the plugin (in nbdkit, a process of its own)
# unlocks the key from the passphrase file the command was given, by a
# relative path; without a passphrase the export fails to start, clearly.
E=$T/enc
printf 'map passphrase\n' >"$T/pass"
(cd "$T" && run_ok livebackup init --repo "$E" --encryption repokey --passphrase-file pass)
(cd "$T" && run_ok livebackup backup-image --repo "$E" --name img --disk vda="$T/a.qcow2" \
    --passphrase-file pass)
(cd "$T" && run_ok livebackup map --repo "$E" --name img --disk vda --socket "$S" \
    --daemon --pid-file "$T/e.pid" --passphrase-file pass)
pid=$(cat "$T/e.pid")
lb_track_daemon "$pid"
nbdcopy "$(nbd "$S")" "$T/enc.raw" 2>"$T/nbdcopy.err" || fail "nbdcopy (encrypted): $(cat "$T/nbdcopy.err")"
kill -TERM "$pid"
wait_until 30 "the encrypted export to stop" eval "! lb_alive $pid"
qemu-img compare -q -f raw -F qcow2 "$T/enc.raw" "$T/a.qcow2" ||
    fail "the export of an encrypted repository differs from its image"
expect_fail "its passphrase is needed" livebackup map --repo "$E" --name img \
    --disk vda --socket "$T/x.sock" --daemon --pid-file "$T/x.pid"
ok "an encrypted repository: the export opens the key from --passphrase-file; none given, it fails"

# The export's session cut (its backupd killed by a hook, once, after its
# first chunk sent): the next read is asked again on a new session, which
# uses the key unlocked at the start (a new session once read every chunk
# of an encrypted repository as damaged); so is a copy after it.
rm -f "$T/killed"
(cd "$T" && LIVEBACKUP_FAULT_HOOK="backupd:chunk-sent@1:[ -e $T/killed ] || { touch $T/killed; kill -KILL \$PPID; }" \
    run_ok livebackup map --repo "$E" --name img --disk vda --socket "$S" \
    --daemon --pid-file "$T/e.pid" --passphrase-file pass)
pid=$(cat "$T/e.pid")
lb_track_daemon "$pid"
qemu-io -r -f raw -c "read -P 3 40M 4M" "$(nbd "$S")" >"$T/qio.out" 2>&1 ||
    fail "the read before the cut (encrypted): $(cat "$T/qio.out")"
[[ -e $T/killed ]] || fail "the hook did not kill the export's backupd"
qemu-io -r -f raw -c "read -P 7 0 3M" "$(nbd "$S")" >"$T/qio.out" 2>&1 ||
    fail "the read after the cut (encrypted): $(cat "$T/qio.out")"
! grep -qi "error\|mismatch" "$T/qio.out" || fail "the read after the cut (encrypted): $(cat "$T/qio.out")"
nbdcopy "$(nbd "$S")" "$T/enc.raw" 2>"$T/nbdcopy.err" ||
    fail "nbdcopy (encrypted) with its session cut: $(cat "$T/nbdcopy.err")"
kill -TERM "$pid"
wait_until 30 "the encrypted export to stop" eval "! lb_alive $pid"
qemu-img compare -q -f raw -F qcow2 "$T/enc.raw" "$T/a.qcow2" ||
    fail "the export of an encrypted repository, its session cut, differs from its image"
ok "an encrypted repository: a session cut under a read, the read asked again on a new one, exact"

# Bad input.
expect_fail "has no disk vdz \(it has: vda\)" livebackup map --repo "$R" --name img \
    --disk vdz --socket "$T/x.sock"
expect_fail "no backups of nosuch" livebackup map --repo "$R" --name nosuch \
    --disk vda --socket "$T/x.sock"
# nbdkit writes the plugin's errors to the terminal of a map in the
# foreground: a name the terminal would act on is escaped there too
expect_fail 'no backups of no\\u009bsuch' livebackup map --repo "$R" \
    --name $'no\xc2\x9bsuch' --disk vda --socket "$T/x.sock"
! LC_ALL=C grep -q $'\xc2\x9b' "$T/err" || fail "map's error wrote U+009B as it is"
[[ ! -e $T/x.sock ]] || fail "a failed map left its socket"
# A bad --cache-size is a usage error (exit 2) naming the value, for map
# and for mount alike.
for c in map mount; do
    rc=0
    if [[ $c == map ]]; then
        args=(--name img --disk vda --socket "$T/x.sock")
    else
        args=("$T/mnt")
    fi
    livebackup $c --repo "$R" --cache-size 12Q "${args[@]}" >"$T/out" 2>"$T/err" || rc=$?
    [[ $rc -eq 2 ]] && grep -qF "livebackup $c: --cache-size '12Q': a size like 64M" "$T/err" ||
        fail "$c --cache-size 12Q: exit $rc, $(cat "$T/err")"
done
ok "bad input fails clearly"
