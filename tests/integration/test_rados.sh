#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Repositories on Ceph RADOS (issue 16), on a throwaway single-node cluster
# (cephlib.sh: one mon, one memstore OSD) that the test starts and stops:
#   1. init, a full and an incremental backup-image, both restored exact;
#      list, verify, prune, and gc (an aged deleted backup's chunks are
#      reclaimed, the rest kept);
#   2. two backupd front ends (two processes, separate state) back up
#      different image sets sharing data into one namespace at once: both
#      restore exact, verify clean, seq numbers distinct; no backup takes
#      an id reserved by another front end (all of one second reserved:
#      refused), gc removes stale reservations;
#   3. a front end killed mid-backup (SIGKILL after a few chunks, and just
#      before its commit) leaves nothing listed; its repository lock
#      holds the admin lock off until its lease ends, then delete works and
#      gc removes its session; one stopped past its lease does not commit;
#   4. gc run from another front end in the middle of a backup that reuses
#      aged chunks of a deleted backup: nothing that backup needs is lost;
#   5. agents through ssh://host/rados:...&socket=PATH to two `backupd
#      listen` daemons serving one RADOS repository at once; a daemon's
#      next sessions reuse its cluster connections (a local agent's by
#      rados:...&socket=PATH), and release the repository lock; kept
#      connections the cluster cut off (blocklisted) are replaced.
#   6. map (nbdcopy of the export of a full and an incremental equals
#      restore-image), mount (the disk files equal their images), copy
#      rados -> file -> rados (both copies verify clean, restore exact).
#   7. a key restricted by `backupd serve --restrict-to-repo rados:...`
#      reaches that pool and namespace only, with the server's options;
#      with --socket too, its sessions go to that repository's daemon.
#   8. the index of manifests: it names each; a commit killed after its
#      entry is listed nowhere; delete drops the entry; list reads the
#      index (a backup without an entry is not listed); gc puts a missing
#      entry back and drops an old one of no manifest; a repository
#      without an index is listed by a walk; a truncated manifest is
#      named by list, the others listed; a listing of one set reads only
#      the manifests of that set (each value names its set).
#   9. a session that ends while its lookups' second connection is still
#      being made (the mon's answers delayed) waits for it and exits; a
#      session of small deltas makes no second connection.
#  10. a missing pool, repository or Ceph config is named to the client.
#  11. a `backupd listen --max-memory 64M` on RADOS stays near its bound
#      (chunks held in memory until created are counted).
#  12. eight backups at once through one daemon at --max-memory 256M: the
#      ones past the bound wait their turn; all restore exact.
# Registered in the plain build only (tests/CMakeLists.txt): the issue's
# CI budget.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cephlib.sh"

ceph_start
ok "cluster started in ${CEPH_START_SECS}s"
# backupd's local temp files (a manifest being written) go under TMPDIR.
export TMPDIR=$T/tmp
mkdir -p "$TMPDIR"
# Locks with a 6 s lease, so a dead holder's expiry fits in the test.
repo() { echo "$(ceph_repo "$1")&lease=6"; }
ns_objects() { rados_cmd -p "$CEPH_POOL" --namespace "$1" ls | sort; }
# map_ready PID SOCKET: the export PID serves on SOCKET (its pid file is
# written once nbdkit listens).
map_ready() {
    lb_alive "$1" || fail "livebackup map exited: $(tail -n 5 "$T/map.log")"
    [[ -S $2 && -s $T/map.pid ]]
}

# ---- 1. the data path ------------------------------------------------------
R=$(repo one)
run_ok livebackup init --repo "$R"
expect_fail "already a livebackup repository" livebackup init --repo "$R"
ok "init, and a second init refused"

mkimage "$T/a.raw" raw 48
write_random "$T/a.raw" raw 5M 6M
write_random "$T/a.raw" raw 30M 1M
cp "$T/a.raw" "$T/a0.raw"
run_ok livebackup backup-image --json --repo "$R" --name a --disk vda="$T/a.raw"
id0=$(json_field "$T/out" summary id)
grep -q '"kind":"full"' "$T/out" || fail "first backup not full"
overlay "$T/a1.qcow2" "$T/a.raw" raw
write_random "$T/a1.qcow2" qcow2 7M 64k
write_random "$T/a1.qcow2" qcow2 40M 2M
snapshot_raw "$T/a1.qcow2" "$T/a1.raw"
run_ok livebackup backup-image --json --repo "$R" --name a \
    --disk vda="$T/a1.qcow2" --since vda="$T/a.raw"
id1=$(json_field "$T/out" summary id)
grep -q '"kind":"incremental"' "$T/out" || fail "second backup not incremental"
ok "full $id0 and incremental $id1"

run_ok livebackup restore-image --repo "$R" --name a --backup "$id0" \
    --disk vda --to "$T/r0.raw"
same_image "$T/r0.raw" raw "$T/a0.raw" raw
run_ok livebackup restore-image --repo "$R" --name a --backup "$id1" \
    --disk vda --to "$T/r1.raw"
same_image "$T/r1.raw" raw "$T/a1.raw" raw
ok "both restored exact"

run_ok livebackup list --repo "$R" --json
[[ $(jq -r 'select(.event == "backup") | .id' "$T/out" | wc -l) -eq 2 ]] ||
    fail "list: $(cat "$T/out")"
run_ok livebackup verify --repo "$R"
grep -q "all sound" "$T/out" || fail "verify: $(cat "$T/out")"
ok "list and verify"

# A third backup, then prune to the last 2: the full goes. A set of its
# own, deleted, leaves garbage: aged, gc reclaims it; the rest stays.
mkimage "$T/junk.raw" raw 16
write_random "$T/junk.raw" raw 0 6M
run_ok livebackup backup-image --json --repo "$R" --name junk \
    --disk vda="$T/junk.raw"
run_ok livebackup delete --repo "$R" --backup "$(json_field "$T/out" summary id)"
# Every session's end left nothing behind (its objects and locks go in one
# batch): no session object, no locker of the repository's lock, and no
# holder line of the delete's exclusive hold.
ns_objects one | grep '^sessions/' && fail "sessions left behind: $(ns_objects one | grep '^sessions/')"
lockers=$(rados_cmd -p "$CEPH_POOL" --namespace one lock info lock livebackup |
    jq '.lockers | length') || fail "no lock info of the repository's lock"
[[ $lockers == 0 ]] || fail "the repository's lock still held: $lockers lockers"
rados_cmd -p "$CEPH_POOL" --namespace one getxattr lock lb.holder 2>/dev/null &&
    fail "the delete's holder line was left on the repository's lock"
ok "sessions ended clean: no session object, no locker, no holder line"
write_random "$T/a.raw" raw 20M 3M
run_ok livebackup backup-image --json --repo "$R" --name a --disk vda="$T/a.raw"
id2=$(json_field "$T/out" summary id)
cp "$T/a.raw" "$T/a2.raw"
run_ok livebackup prune --repo "$R" --name a --keep-last 2
run_ok livebackup list --repo "$R" --json
ids=$(jq -r 'select(.event == "backup") | .id' "$T/out")
grep -qx "$id0" <<<"$ids" && fail "prune kept $id0"
grep -qx "$id1" <<<"$ids" || fail "prune removed $id1"
nchunks=$(ns_objects one | grep -c '^chunks/')
run_ok livebackup gc --repo "$R" --json
[[ $(json_field "$T/out" summary chunks_reclaimed) -eq 0 ]] ||
    fail "gc reclaimed fresh chunks: $(cat "$T/out")"
lbrados "$CEPH_CONF" "$CEPH_POOL" one age 7200 chunks/ >/dev/null
run_ok livebackup gc --repo "$R" --json
reclaimed=$(json_field "$T/out" summary chunks_reclaimed)
[[ $reclaimed -gt 0 ]] || fail "gc reclaimed nothing: $(cat "$T/out")"
[[ $(ns_objects one | grep -c '^chunks/') -eq $((nchunks - reclaimed)) ]] ||
    fail "gc said $reclaimed, the pool lost another number"
run_ok livebackup verify --repo "$R"
grep -q "all sound" "$T/out" || fail "verify after gc: $(cat "$T/out")"
run_ok livebackup restore-image --repo "$R" --name a --backup "$id2" \
    --disk vda --to "$T/r2.raw"
same_image "$T/r2.raw" raw "$T/a2.raw" raw
ok "prune, gc reclaimed $reclaimed aged chunks of $nchunks, the rest intact"

# ---- 2. two front ends at once -------------------------------------------
R=$(repo two)
run_ok livebackup init --repo "$R"
random_file "$T/shared" 8
for s in x y; do
    mkimage "$T/$s.raw" raw 40
    dd if="$T/shared" of="$T/$s.raw" bs=1M seek=4 conv=notrunc status=none
    write_random "$T/$s.raw" raw 20M 6M
done
pids=()
for s in x y; do
    livebackup backup-image --json --repo "$R" --name "$s" \
        --disk vda="$T/$s.raw" >"$T/$s.out" 2>"$T/$s.err" &
    pids+=($!)
    lb_track $!
done
for i in 0 1; do
    wait "${pids[$i]}" || fail "front end $i failed: $(cat "$T/x.err" "$T/y.err")"
done
seqx=$(json_field "$T/x.out" summary seq)
seqy=$(json_field "$T/y.out" summary seq)
[[ $seqx != "$seqy" ]] || fail "both backups got seq $seqx"
for s in x y; do
    run_ok livebackup restore-image --repo "$R" --name "$s" --disk vda \
        --to "$T/$s.back"
    same_image "$T/$s.back" raw "$T/$s.raw" raw
done
run_ok livebackup verify --repo "$R"
grep -q "all sound" "$T/out" || fail "verify: $(cat "$T/out")"
ok "two front ends at once: seq $seqx and $seqy, both restored exact"

# Backup ids: a session reserves its id (ids/ID, an exclusive create) so
# that no front end writing in the same second takes it, and drops the
# reservation once its manifest exists.
left=$(ns_objects two | grep '^ids/' || true)
[[ -z $left ]] || fail "reservations left after the commits: $left"
# Every id of one second reserved, as by 65536 front ends writing then:
# a backup in that second finds none free and says so.
lbrados "$CEPH_CONF" "$CEPH_POOL" two fill ids/20200101-000000- 0
LIVEBACKUP_FAKE_TIME=2020-01-01T00:00:00Z expect_fail "free backup id" \
    livebackup backup-image --repo "$R" --name x --disk vda="$T/x.raw"
# Reservations older than gc's cutoff are of writers that are gone.
lbrados "$CEPH_CONF" "$CEPH_POOL" two unfill ids/20200101-000000- 3
[[ $(ns_objects two | grep -c '^ids/') == 3 ]] || fail "not 3 reservations left"
run_ok livebackup gc --repo "$R"
left=$(ns_objects two | grep -c '^ids/' || true)
[[ $left == 0 ]] || fail "gc left $left old reservations"
LIVEBACKUP_FAKE_TIME=2020-01-01T00:00:00Z run_ok livebackup backup-image \
    --repo "$R" --name x --disk vda="$T/x.raw"
ok "backup ids reserved across front ends: all of one second taken, none chosen; gc removed stale ones"

# ---- 3. a front end killed mid-backup -----------------------------------
R=$(repo three)
run_ok livebackup init --repo "$R"
mkimage "$T/k.raw" raw 64
write_random "$T/k.raw" raw 0 40M
for fault in backupd:chunk-stored@3 backupd:before-commit; do
    LIVEBACKUP_FAULT=$fault expect_fail "." livebackup backup-image \
        --repo "$R" --name k --disk vda="$T/k.raw"
    run_ok livebackup list --repo "$R" --json
    listed=$(jq -r 'select(.event == "backup") | .id' "$T/out")
    [[ -z $listed ]] || fail "killed at $fault, yet listed: $listed"
    ns_objects three | grep '^backups/' >/dev/null && fail "a manifest object after $fault"
    ok "killed at $fault: nothing listed, no manifest object"
done
# The killed front end's repository lock (shared) keeps delete away until
# its lease ends; then it is gone.
t0=$SECONDS
expect_fail "locked by" livebackup delete --repo "$R" \
    --backup 20200101-000000-0000 --lock-wait 0
expect_fail "no backup" livebackup delete --repo "$R" \
    --backup 20200101-000000-0000 --lock-wait 30
ok "the dead front end's lock held the admin lock off, then expired ($((SECONDS - t0)) s)"
ns_objects three | grep '^sessions/' >/dev/null || fail "no dead session left to collect"
run_ok livebackup gc --repo "$R"
ns_objects three | grep '^sessions/' >/dev/null && fail "gc left the dead sessions: $(ns_objects three)"
run_ok livebackup backup-image --json --repo "$R" --name k --disk vda="$T/k.raw"
run_ok livebackup restore-image --repo "$R" --name k --disk vda --to "$T/k.back"
same_image "$T/k.back" raw "$T/k.raw" raw
ok "gc removed the dead sessions; a new backup restores exact"
left=$(find "$TMPDIR" -maxdepth 1 -name 'livebackup-rados-*')
[[ -z $left ]] || fail "temp files of the killed front ends left: $left"
ok "the next writer removed the killed front ends' local temp files"

# A front end stopped longer than its lease (SIGSTOP for 9 s, the lease
# being 6 s) just before its commit: its locks lapsed meanwhile, so a gc
# elsewhere could have taken what it relied on; it must not commit.
run_ok livebackup list --repo "$R" --json
before=$(jq -r 'select(.event == "backup") | .id' "$T/out")
write_random "$T/k.raw" raw 50M 1M
LIVEBACKUP_FAULT_HOOK='backupd:commit-received:kill -STOP $PPID; sleep 9; kill -CONT $PPID' \
    expect_fail "lease" livebackup backup-image --repo "$R" --name k \
    --disk vda="$T/k.raw"
run_ok livebackup list --repo "$R" --json
after=$(jq -r 'select(.event == "backup") | .id' "$T/out")
[[ $after == "$before" ]] || fail "committed after its lease lapsed: $after"
ok "a front end whose lease lapsed refuses to commit"

# ---- 4. gc from another front end racing a backup ------------------------
R=$(repo four)
run_ok livebackup init --repo "$R"
mkimage "$T/g.raw" raw 48
write_random "$T/g.raw" raw 0 24M
run_ok livebackup backup-image --json --repo "$R" --name g --disk vda="$T/g.raw"
gid=$(json_field "$T/out" summary id)
mkimage "$T/junk.raw" raw 16
write_random "$T/junk.raw" raw 0 8M
run_ok livebackup backup-image --json --repo "$R" --name junk \
    --disk vda="$T/junk.raw"
jid=$(json_field "$T/out" summary id)
run_ok livebackup delete --repo "$R" --backup "$gid"
run_ok livebackup delete --repo "$R" --backup "$jid"
lbrados "$CEPH_CONF" "$CEPH_POOL" four age 7200 chunks/ >/dev/null
# The same image with new data at its end: its first 24 MiB are aged
# chunks this backup reuses. When it stores its first new chunk, gc runs
# from another process: it must reclaim the junk but nothing this backup
# needs.
write_random "$T/g.raw" raw 40M 4M
gcjson=$T/gc.json
LIVEBACKUP_FAULT_HOOK="backupd:chunk-stored@1:livebackup gc --json --repo '$R' >'$gcjson' 2>'$T/gc.err'" \
    run_ok livebackup backup-image --json --repo "$R" --name g --disk vda="$T/g.raw"
grep -q 'chunks_reclaimed' "$gcjson" || fail "gc did not run mid-backup: $(cat "$T/gc.err")"
[[ $(json_field "$gcjson" summary chunks_reclaimed) -gt 0 ]] ||
    fail "the racing gc reclaimed no junk: $(cat "$gcjson")"
run_ok livebackup verify --repo "$R"
grep -q "all sound" "$T/out" || fail "verify after the race: $(cat "$T/out")"
run_ok livebackup restore-image --repo "$R" --name g --disk vda --to "$T/g.back"
same_image "$T/g.back" raw "$T/g.raw" raw
ok "gc raced a backup: reclaimed $(json_field "$gcjson" summary chunks_reclaimed) junk chunks, the backup restores exact"

# ---- 5. agents through ssh to two `backupd listen` front ends ----------
sshd_start
R=$(repo five)
ssh_url() { echo "ssh://root@127.0.0.1:$SSH_PORT/$R${1:+&socket=$1}"; }
ssh_lb() { livebackup "$@" --rsh "$LB_RSH" --remote-backupd "$BACKUPD"; }
run_ok ssh_lb init --repo "$(ssh_url)"
ns_objects five | grep -x config >/dev/null || fail "init over ssh made no config object"
for i in 1 2; do
    LIVEBACKUP_RADOS_OPS=$T/fe$i.ops "$BACKUPD" listen --repo "$R" \
        --socket "$T/fe$i.sock" --log-stderr -v >"$T/fe$i.log" 2>&1 &
    lb_track $!
    lb_watch_log "$T/fe$i.log"
    wait_until 60 "front end $i to listen" grep -q "listening on" "$T/fe$i.log"
done
ok "two backupd listen daemons on one RADOS repository"
pids=()
for i in 1 2; do
    s=$([[ $i == 1 ]] && echo x || echo y)
    ssh_lb backup-image --json --repo "$(ssh_url "$T/fe$i.sock")" --name "$s" \
        --disk vda="$T/$s.raw" >"$T/$s.out" 2>"$T/$s.err" &
    pids+=($!)
    lb_track $!
done
for i in 0 1; do
    wait "${pids[$i]}" || fail "agent $i failed: $(cat "$T/x.err" "$T/y.err")"
done
for i in 1 2; do
    grep -q "bridged session" "$T/fe$i.log" || fail "front end $i served nothing: $(cat "$T/fe$i.log")"
done
for s in x y; do
    run_ok ssh_lb restore-image --repo "$(ssh_url)" --name "$s" --disk vda \
        --to "$T/$s.ssh"
    same_image "$T/$s.ssh" raw "$T/$s.raw" raw
done
ok "agents through ssh to two listen front ends at once: both restored exact"

# A daemon keeps the cluster connections of its sessions for the next
# ones (be_rados_conn.c): each session's line in LIVEBACKUP_RADOS_OPS says
# how many it took from those kept. fe1 served one backup, then a local
# agent reaches it by its socket (rados:...&socket=PATH, no ssh) and
# restores; the repository lock went with each session, though its
# connection stayed: a delete (the exclusive lock) goes through at once.
grep -q "reused 0$" "$T/fe1.ops" ||
    fail "fe1's first session reused a connection: $(cat "$T/fe1.ops")"
nops=$(wc -l <"$T/fe1.ops")
run_ok livebackup restore-image --repo "$R&socket=$T/fe1.sock" --name x \
    --disk vda --to "$T/x.local"
same_image "$T/x.local" raw "$T/x.raw" raw
[[ $(grep -c "bridged session from local" "$T/fe1.log") -eq 1 ]] ||
    fail "the local agent did not go through fe1: $(cat "$T/fe1.log")"
# (the daemon writes a session's line when it sees the agent gone)
fe1_ops_grew() { (($(wc -l <"$T/fe1.ops") > nops)); }
wait_until 30 "fe1 to end the local agent's session" fe1_ops_grew
tail -n 1 "$T/fe1.ops" | grep "reused 1$" >/dev/null ||
    fail "fe1's next session connected again: $(cat "$T/fe1.ops")"
xid=$(json_field "$T/x.out" summary id)
run_ok livebackup delete --repo "$R&socket=$T/fe1.sock" --lock-wait 0 \
    --backup "$xid"
run_ok livebackup list --json --repo "$R"
grep -q "$xid" "$T/out" && fail "backup $xid still listed after its delete"
expect_fail "cannot reach backupd listen on $T/none.sock" \
    livebackup list --repo "$R&socket=$T/none.sock"
ok "a front end's next sessions reuse its connections; a local agent reaches it by socket="

# The cluster cuts a front end's connections off (an operator fences a
# host with `ceph osd blocklist add`, by the addresses backupd -v logs):
# every operation on them fails with ESHUTDOWN. fe2 keeps two from its
# backup; its next session finds them cut off, connects again and serves.
addrs=$(sed -n 's/.*: connected as client\.[^ ]* (client\.[0-9]* at \(.*\))$/\1/p' "$T/fe2.log")
[[ $(wc -w <<<"$addrs") -ge 2 ]] || fail "fe2 logged its addresses: $(grep 'connected as' "$T/fe2.log")"
for a in $addrs; do
    ceph_cmd osd blocklist add "$a" >"$T/bl.out" 2>&1 || fail "blocklist add $a: $(cat "$T/bl.out")"
done
nops=$(wc -l <"$T/fe2.ops")
run_ok livebackup restore-image --repo "$R&socket=$T/fe2.sock" --name y \
    --disk vda --to "$T/y.local"
same_image "$T/y.local" raw "$T/y.raw" raw
grep -q "cut off a kept connection (blocklisted): connecting again" "$T/fe2.log" ||
    fail "fe2 did not see its connection cut off: $(tail -n 5 "$T/fe2.log")"
fe2_ops_grew() { (($(wc -l <"$T/fe2.ops") > nops)); }
wait_until 30 "fe2 to end the restore's session" fe2_ops_grew
tail -n 1 "$T/fe2.ops" | grep "reused 0$" >/dev/null ||
    fail "fe2's session used a connection the cluster cut off: $(cat "$T/fe2.ops")"
for a in $addrs; do
    ceph_cmd osd blocklist rm "$a" >"$T/bl.out" 2>&1 || fail "blocklist rm $a: $(cat "$T/bl.out")"
done
ok "a front end whose kept connections the cluster cut off connects again"

# ---- 6. map, mount and copy on a RADOS repository ----------------------
# Each goes through the backupd child the agent starts, which opens the
# RADOS repository (read-only for map, mount and copy's source).
R=$(repo six)
run_ok livebackup init --repo "$R"
# 48 MiB: data, a hole, and (incremental) a zeroed run and a 4 KiB write.
qemu-img create -q -f qcow2 "$T/m.qcow2" 48M
qemu-io -f qcow2 -c "write -P 7 0 3M" -c "write -P 3 20M 4M" "$T/m.qcow2" >/dev/null
write_random "$T/m.qcow2" qcow2 36M 2M
run_ok livebackup backup-image --json --repo "$R" --name m --disk vda="$T/m.qcow2"
mfull=$(json_field "$T/out" summary id)
overlay "$T/m1.qcow2" "$T/m.qcow2" qcow2
qemu-io -f qcow2 -c "write -P 5 1M 4k" -c "write -z 20M 64k" \
    -c "write -P 1 44M 12k" "$T/m1.qcow2" >/dev/null
run_ok livebackup backup-image --json --repo "$R" --name m \
    --disk vda="$T/m1.qcow2" --since vda="$T/m.qcow2"
mincr=$(json_field "$T/out" summary id)
lb_watch_log "$T/map.log"
for id in "$mfull" "$mincr"; do
    rm -f "$T/map.sock" "$T/map.pid" "$T/map.raw" "$T/ref.raw"
    livebackup map --repo "$R" --name m --backup "$id" --disk vda \
        --socket "$T/map.sock" --pid-file "$T/map.pid" 2>>"$T/map.log" &
    mp=$!
    lb_track "$mp"
    wait_until 60 "the export of $id" map_ready "$mp" "$T/map.sock"
    nbdcopy "nbd+unix:///?socket=$T/map.sock" "$T/map.raw" 2>"$T/nbdcopy.err" ||
        fail "nbdcopy of $id: $(cat "$T/nbdcopy.err")"
    kill -TERM "$mp"
    wait "$mp" || true
    run_ok livebackup restore-image --repo "$R" --name m --backup "$id" \
        --disk vda --to "$T/ref.raw"
    cmp "$T/map.raw" "$T/ref.raw" || fail "the export of $id differs from restore-image"
done
qemu-img compare -q -f raw -F qcow2 "$T/map.raw" "$T/m1.qcow2" ||
    fail "the incremental's export differs from the image it was taken from"
ok "map: nbdcopy of the export of the full and the incremental equals restore-image"

M=$T/mnt
mkdir -p "$M"
LB_MOUNTS+=("$M")
run_ok livebackup mount --repo "$R" --name m "$M"
cmp "$M/m/$mincr/vda" "$T/ref.raw" || fail "the mounted disk differs from restore-image"
qemu-img compare -q -f raw -F qcow2 "$M/m/$mfull/vda" "$T/m.qcow2" ||
    fail "the mounted full differs from its image"
run_ok livebackup umount "$M"
grep -q " $M " /proc/self/mountinfo && fail "still mounted after umount"
ok "mount: both backups' disks are files equal to their images; umount"

# Copies both ways: rados -> file, then that file repository -> a new
# RADOS namespace; each copy restores exact and verifies clean.
F=$T/frepo
run_ok livebackup init --repo "$F"
run_ok livebackup copy --json --from "$R" --to "$F"
[[ $(json_field "$T/out" summary copied) -eq 2 ]] ||
    fail "copy rados -> file: $(cat "$T/out")"
R2=$(repo seven)
run_ok livebackup init --repo "$R2"
run_ok livebackup copy --json --from "$F" --to "$R2"
[[ $(json_field "$T/out" summary copied) -eq 2 ]] ||
    fail "copy file -> rados: $(cat "$T/out")"
# an imported backup's index value names its set as a commit's does
val=$(rados_cmd -p "$CEPH_POOL" --namespace seven getomapval index "$mincr" /dev/stdout)
[[ $val =~ ^[0-9]+\ [0-9a-f]{16}\ m$ ]] ||
    fail "the index value of the copied $mincr names not its set: '$val'"
for r in "$F" "$R2"; do
    run_ok livebackup verify --repo "$r"
    grep -q "all sound" "$T/out" || fail "verify of $r: $(cat "$T/out")"
    rm -f "$T/c.raw"
    run_ok livebackup restore-image --repo "$r" --name m --backup "$mincr" \
        --disk vda --to "$T/c.raw"
    same_image "$T/c.raw" raw "$T/m1.qcow2" qcow2
    rm -f "$T/c.raw"
    run_ok livebackup restore-image --repo "$r" --name m --backup "$mfull" \
        --disk vda --to "$T/c.raw"
    same_image "$T/c.raw" raw "$T/m.qcow2" qcow2
done
ok "copy rados -> file -> rados: both copies verify clean and restore exact"

# ---- 7. a key restricted to one RADOS repository -----------------------
# authorized_keys forces `backupd serve --restrict-to-repo rados:...`: the
# client reaches that pool and namespace (with or without the server's
# options in its URL), nothing else.
R=$(repo five)
key=$(cat "$T/ssh/user_key.pub")
echo "command=\"$BACKUPD serve --restrict-to-repo '$R' --append-only\",restrict $key" \
    >"$T/ssh/authorized_keys"
# rurl REPO: the URL of REPO (rados:... or an absolute path) through sshd
rurl() { echo "ssh://root@127.0.0.1:$SSH_PORT/${1#/}"; }
rlb() { livebackup "$@" --rsh "$LB_RSH"; }
write_random "$T/x.raw" raw 30M 1M
run_ok rlb backup-image --json --repo "$(rurl "$R")" --name x --disk vda="$T/x.raw"
xid=$(json_field "$T/out" summary id)
run_ok rlb list --repo "$(rurl "rados:$CEPH_POOL/five")" --json
grep -q "\"$xid\"" "$T/out" || fail "the restricted key's backup not listed: $(cat "$T/out")"
run_ok rlb restore-image --repo "$(rurl "rados:$CEPH_POOL/five?id=admin")" \
    --name x --backup "$xid" --disk vda --to "$T/x.rr"
same_image "$T/x.rr" raw "$T/x.raw" raw
ok "a key restricted to rados:$CEPH_POOL/five backs up, lists and restores there"
expect_fail "append-only.*refused" rlb delete --repo "$(rurl "$R")" --backup "$xid"
expect_fail "rados:$CEPH_POOL/six is outside the allowed RADOS repository rados:$CEPH_POOL/five" \
    rlb list --repo "$(rurl "rados:$CEPH_POOL/six")"
expect_fail "outside the allowed RADOS repository" rlb list --repo "$(rurl "rados:$CEPH_POOL")"
expect_fail "its conf= is not the allowed" \
    rlb list --repo "$(rurl "rados:$CEPH_POOL/five?conf=$T/other.conf")"
expect_fail "its id= is not the allowed" \
    rlb list --repo "$(rurl "rados:$CEPH_POOL/five?id=other")"
expect_fail "outside the allowed RADOS repository" rlb list --repo "$(rurl "$T/frepo")"
ok "other namespaces, other Ceph options and directories are refused"
# The same key's forced command relaying to fe1, the daemon of that
# repository (5.): the session is fe1's, append-only, on a kept
# connection; the restriction still applies.
echo "command=\"$BACKUPD serve --restrict-to-repo '$R' --append-only --socket $T/fe1.sock\",restrict $key" \
    >"$T/ssh/authorized_keys"
n0=$(grep -c "bridged session" "$T/fe1.log")
nops=$(wc -l <"$T/fe1.ops")
run_ok rlb backup-image --json --repo "$(rurl "$R")" --name x --disk vda="$T/x.raw"
wait_until 30 "fe1 to end the relayed session" fe1_ops_grew
[[ $(grep -c "bridged session" "$T/fe1.log") -eq $((n0 + 1)) ]] &&
    grep "bridged session" "$T/fe1.log" | tail -n 1 | grep "(append-only)" >/dev/null ||
    fail "the forced command's --socket did not relay to fe1: $(tail -n 5 "$T/fe1.log")"
tail -n 1 "$T/fe1.ops" | grep "reused 1$" >/dev/null ||
    fail "the relayed session did not reuse fe1's connection: $(tail -n 1 "$T/fe1.ops")"
expect_fail "rados:$CEPH_POOL/six is outside the allowed RADOS repository" \
    rlb list --repo "$(rurl "rados:$CEPH_POOL/six")"
ok "a restricted key's forced command relays to the repository's daemon (--socket)"
echo "command=\"$BACKUPD serve --restrict-to-repo $T --read-only\",restrict $key" \
    >"$T/ssh/authorized_keys"
run_ok rlb list --repo "$(rurl "$T/frepo")"
expect_fail "outside the allowed path" rlb list --repo "$(rurl "$R")"
ok "a key restricted to a directory reaches no RADOS repository"

# ---- 8. the index of manifests ------------------------------------------
R=$(repo idx)
run_ok livebackup init --repo "$R"
rados_cmd -p "$CEPH_POOL" --namespace idx stat index >/dev/null ||
    fail "init made no index object"
for _ in 1 2 3; do
    run_ok livebackup backup-image --repo "$R" --name i --disk vda="$T/a0.raw"
done
ikeys() { rados_cmd -p "$CEPH_POOL" --namespace idx listomapkeys index | sort; }
manifests() { ns_objects idx | sed -n 's|^backups/||p'; }
nlisted() { livebackup list --repo "$R" --json | grep -c '"id"'; }
[[ $(ikeys) == "$(manifests)" && $(manifests | wc -l) -eq 3 ]] ||
    fail "index [$(ikeys)] is not the manifests [$(manifests)]"
ok "the index names each manifest"
LIVEBACKUP_FAULT=backupd:indexed expect_fail "." livebackup backup-image \
    --repo "$R" --name i --disk vda="$T/a0.raw"
[[ $(ikeys | wc -l) -eq 4 && $(manifests | wc -l) -eq 3 ]] ||
    fail "killed after the index entry: index [$(ikeys)], manifests [$(manifests)]"
run_ok livebackup list --repo "$R" --json
[[ $(grep -c '"id"' "$T/out") -eq 3 && ! -s $T/err ]] ||
    fail "list after a commit killed past its index entry: $(cat "$T/out" "$T/err")"
ok "a commit killed after its index entry: listed nowhere, no warning"
victim=$(manifests | sed -n 1p)
# (the killed front end holds its lock until its lease ends)
run_ok livebackup delete --repo "$R" --backup "$victim" --lock-wait 30
ikeys | grep -x "$victim" >/dev/null && fail "deleted backup $victim still in the index"
gone=$(manifests | tail -n 1)
rados_cmd -p "$CEPH_POOL" --namespace idx rmomapkey index "$gone"
run_ok livebackup list --repo "$R" --json
grep -q "$gone" "$T/out" && fail "listed without an index entry: list walked"
rados_cmd -p "$CEPH_POOL" --namespace idx setomapval index \
    20200101-000000-0000 "100 0123456789abcdef"
run_ok livebackup gc --repo "$R"
grep -q "lacked backup $gone: added" "$T/err" || fail "gc: $(cat "$T/err")"
ikeys | grep -x "$gone" >/dev/null || fail "gc did not put $gone back into the index"
ikeys | grep -x 20200101-000000-0000 >/dev/null && fail "gc kept an old entry of no manifest"
# the killed commit's entry is younger than the cutoff: a commit under way
[[ $(ikeys | wc -l) -eq 3 && $(nlisted) -eq 2 ]] ||
    fail "after gc: index [$(ikeys)], listed $(nlisted)"
ok "delete drops its entry; gc puts back a missing one, drops an old stray one"
rados_cmd -p "$CEPH_POOL" --namespace idx rm index
run_ok livebackup backup-image --repo "$R" --name i --disk vda="$T/a0.raw"
[[ $(nlisted) -eq 3 ]] || fail "a repository without an index lists $(nlisted)"
rados_cmd -p "$CEPH_POOL" --namespace idx stat index >/dev/null 2>&1 &&
    fail "a writer made an index in a repository made before it"
run_ok livebackup verify --repo "$R"
ok "a repository made before the index: listed by a walk, left so"
cut=$(manifests | sed -n 1p)
rados_cmd -p "$CEPH_POOL" --namespace idx truncate "backups/$cut" 100
run_ok livebackup list --repo "$R" --json
grep -q "backup $cut: manifest truncated (run livebackup verify)" "$T/err" ||
    fail "list: no warning about $cut: $(cat "$T/err")"
[[ $(grep -c '"id"' "$T/out") -eq 2 ]] || fail "list: $(cat "$T/out")"
ok "list (manifests read together) warns of a truncated one, lists the others"

# A listing of one set (every incremental's parent check) reads only that
# set's manifests: each commit's index value names its set. Three backups
# of set i, two of "j k" (a name may hold a space); the backend's line in
# LIVEBACKUP_RADOS_OPS counts the objects read. A value without a set (as
# written before, or by gc's repair) is listed for every set.
R=$(repo idxs)
run_ok livebackup init --repo "$R"
for s in i i i "j k" "j k"; do
    run_ok livebackup backup-image --repo "$R" --name "$s" --disk vda="$T/a0.raw"
done
# reads NAME...: objects the backend read for a listing (of set NAME)
reads() {
    rm -f "$T/ops"
    LIVEBACKUP_RADOS_OPS=$T/ops run_ok livebackup list --repo "$R" --json \
        ${1:+--name "$1"}
    awk '{print $2}' "$T/ops"
}
jid=$(livebackup list --repo "$R" --name "j k" --json | sed -n 's/.*"id": *"\([^"]*\)".*/\1/p' | sed -n 1p)
[[ -n $jid ]] || fail "no backup of set 'j k' listed"
val=$(rados_cmd -p "$CEPH_POOL" --namespace idxs getomapval index "$jid" /dev/stdout)
[[ $val =~ ^[0-9]+\ [0-9a-f]{16}\ j\ k$ ]] ||
    fail "the index value of $jid does not name its set: '$val'"
all=$(reads)
[[ $(grep -c '"id"' "$T/out") -eq 5 ]] || fail "list: $(cat "$T/out")"
# what a listing of set i and one of "j k" leave unread: the reads of 2
# and of 3 manifests (each manifest costs the same reads)
skip_i=$((all - $(reads i)))
[[ $(grep -c '"id"' "$T/out") -eq 3 ]] || fail "list --name i: $(cat "$T/out")"
skip_j=$((all - $(reads "j k")))
[[ $(grep -c '"id"' "$T/out") -eq 2 ]] || fail "list --name 'j k': $(cat "$T/out")"
((skip_i > 0 && skip_i * 3 == skip_j * 2)) ||
    fail "a listing by set read all but $skip_i (i) and $skip_j ('j k') of $all objects"
rados_cmd -p "$CEPH_POOL" --namespace idxs setomapval index "$jid" \
    "$(date +%s) 0123456789abcdef"
((all - $(reads i) == skip_i / 2)) ||
    fail "a value without a set was not read for set i"
[[ $(grep -c '"id"' "$T/out") -eq 3 ]] || fail "list --name i: $(cat "$T/out")"
reads "j k" >/dev/null
[[ $(grep -c '"id"' "$T/out") -eq 2 ]] ||
    fail "set 'j k' lost the backup whose value names no set: $(cat "$T/out")"
ok "a listing of one set reads only its manifests (and those whose value names none)"

# ---- 9. a session ending while its lookups' connection is made -----------
# A QUERY sent while 4 MiB of creates or more are in flight starts a second
# connection in the background (be_rados_query.c). Here Ceph's messenger
# delays every answer of the mon to this client (up to 0.4 s each, a
# config of its own), so the session commits before that connection is
# made: its close must wait for it and shut it down. It once deadlocked
# there (the join held the lock the connecting thread takes to say it is
# done): the agent then stopped its backupd after 10 s, with the line
# checked below. The backend's line in LIVEBACKUP_RADOS_OPS says how many
# connections the session made.
cp "$CEPH_CONF" "$T/slow.conf"
cat >>"$T/slow.conf" <<'CONF'
[client.admin]
ms inject delay type = mon
ms inject delay probability = 1
ms inject delay max = 0.4
CONF
R=$(repo slow)
run_ok livebackup init --repo "$R"
R=${R/"$CEPH_CONF"/"$T/slow.conf"}
[[ $R == *slow.conf* ]] || fail "no slow config in $R"
mkimage "$T/s.raw" raw 128
write_random "$T/s.raw" raw 0 128M
rm -f "$T/ops"
LIVEBACKUP_RADOS_OPS=$T/ops run_ok livebackup backup-image --json --repo "$R" \
    --name s --disk vda="$T/s.raw"
[[ $(json_field "$T/out" summary chunks_new) -eq 32 ]] ||
    fail "the full backup did not store its 32 chunks: $(cat "$T/out")"
grep -q "connections 2 reused 0$" "$T/ops" ||
    fail "the lookups had no connection of their own: $(cat "$T/ops")"
grep -q "did not exit" "$T/err" && fail "backupd hung at its end: $(cat "$T/err")"
# An incremental of a 4 KiB block in each window sends small deltas: one
# connection, also the second time, when every delta's create finds it
# stored and the lookups of them come one by one.
qemu-img create -q -f qcow2 -b "$T/s.raw" -F raw "$T/s.qcow2"
cmds=()
for i in $(seq 0 31); do cmds+=(-c "write -P $i $((i * 4 + 1))M 4k"); done
qemu-io "${cmds[@]}" "$T/s.qcow2" >/dev/null
for n in 1 2; do
    rm -f "$T/ops"
    LIVEBACKUP_RADOS_OPS=$T/ops run_ok livebackup backup-image --json \
        --repo "$R" --name s --disk vda="$T/s.qcow2" --since vda="$T/s.raw"
    grep -q "connections 1 reused 0$" "$T/ops" ||
        fail "incremental $n of small deltas connected twice: $(cat "$T/ops")"
done
[[ $(json_field "$T/out" summary chunks_new) -eq 0 ]] ||
    fail "the second incremental stored its deltas again: $(cat "$T/out")"
ok "a session ended before its lookups' connection was made: backupd exits"

# ---- 10. what stands in the way of a connection, named to the client -----
R=$(repo none)
R=${R/"rados:$CEPH_POOL/"/"rados:nopool/"}
expect_fail "open pool nopool.*ceph osd pool create nopool" \
    livebackup list --repo "$R"
expect_fail "no repository at rados:$CEPH_POOL/empty.*livebackup init" \
    livebackup list --repo "$(repo empty)"
R=$(repo none)
expect_fail "read Ceph config $T/absent.conf" \
    livebackup list --repo "${R/"$CEPH_CONF"/"$T/absent.conf"}"
ok "a missing pool, repository or Ceph config is named to the client"

# ---- 11. a daemon's --max-memory holds on RADOS --------------------------
# The RADOS backend keeps each chunk in memory until its create is
# answered (librados copies it too). A daemon at --max-memory 64M once
# peaked 216 MiB above its start backing up 512 MiB of random data: up to
# 40 chunks of 4 MiB staged, uncounted. What the daemon holds beyond its
# start (librados and its connection, about 25 MiB, and the sessions)
# must stay near the bound.
cp "$T/ssh/user_key.pub" "$T/ssh/authorized_keys" # unrestricted again (7.)
R=$(repo mem)
run_ok livebackup init --repo "$R"
mkimage "$T/m.raw" raw 256
write_random "$T/m.raw" raw 0 256M
"$BACKUPD" listen --repo "$R" --socket "$T/mem.sock" --max-memory 64M \
    --log-stderr >"$T/mem.log" 2>&1 &
mem_pid=$!
lb_track "$mem_pid"
lb_watch_log "$T/mem.log"
wait_until 60 "the daemon to listen" grep -q "listening on" "$T/mem.log"
rss0=$(awk '/^VmRSS/ {print $2}' "/proc/$mem_pid/status")
run_ok ssh_lb backup-image --json --repo "$(ssh_url "$T/mem.sock")" \
    --name m --disk vda="$T/m.raw"
[[ $(json_field "$T/out" summary chunks_new) -eq 64 ]] ||
    fail "the backup through the daemon stored not its 64 chunks: $(cat "$T/out")"
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$mem_pid/status")
grew=$(((hwm - rss0) / 1024))
((grew <= 64 + 48)) ||
    fail "daemon at --max-memory 64M grew $grew MiB (from $((rss0 / 1024)) MiB)"
kill -TERM "$mem_pid"
wait "$mem_pid" || fail "the daemon did not exit cleanly: $(cat "$T/mem.log")"
ok "--max-memory 64M on RADOS: the daemon grew $grew MiB backing up 256 MiB"

# ---- 12. eight hosts at once through one front end -------------------------
# At --max-memory 256M a RADOS backup's worst case lets one or two run at
# once: the others wait their turn (before, they were answered BUSY and
# failed), and every session's local temp directory is its own (one made
# beside another's sweep was once swept away: "create .../manifest.1: No
# such file or directory").
R=$(repo eight)
run_ok livebackup init --repo "$R"
"$BACKUPD" listen --repo "$R" --socket "$T/eight.sock" --max-memory 256M \
    --log-stderr -v >"$T/eight.log" 2>&1 &
eight_pid=$!
lb_track "$eight_pid"
lb_watch_log "$T/eight.log"
wait_until 60 "the daemon to listen" grep -q "listening on" "$T/eight.log"
pids=()
for i in 1 2 3 4 5 6 7 8; do
    mkimage "$T/h$i.raw" raw 16
    write_random "$T/h$i.raw" raw 0 16M
done
for i in 1 2 3 4 5 6 7 8; do
    livebackup backup-image --repo "$R&socket=$T/eight.sock" --name "h$i" \
        --disk vda="$T/h$i.raw" >"$T/h$i.out" 2>"$T/h$i.err" &
    pids+=($!)
    lb_track $!
done
for i in 1 2 3 4 5 6 7 8; do
    wait "${pids[$((i - 1))]}" || fail "host $i: $(cat "$T/h$i.err")"
done
for i in 1 2 3 4 5 6 7 8; do
    run_ok livebackup restore-image --repo "$R" --name "h$i" --disk vda \
        --to "$T/h$i.back"
    same_image "$T/h$i.back" raw "$T/h$i.raw" raw
    rm -f "$T/h$i.back"
done
waited=$(grep -l "waiting for room" "$T"/h?.err | wc -l)
kill -TERM "$eight_pid"
wait "$eight_pid" || fail "the daemon did not exit cleanly: $(cat "$T/eight.log")"
left=$(find "$TMPDIR" -maxdepth 1 -name 'livebackup-rados-*' | wc -l)
[[ $left -eq 0 ]] || fail "$left local temp directories left: $(ls -a "$TMPDIR")"
ok "eight hosts at once through one front end at --max-memory 256M: all restored exact ($waited waited their turn)"

t0=$(date +%s.%N)
ceph_stop
ok "cluster stopped in $(echo "$(date +%s.%N) - $t0" | bc)s"
