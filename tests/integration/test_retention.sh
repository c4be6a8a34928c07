#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Retention end to end with the real livebackup and backupd: backups made
# "in the past" (LIVEBACKUP_FAKE_TIME, the clock backupd records); prune
# --dry-run lists exactly the expected removals and changes nothing; prune
# removes them, per set, and every kept backup still restores identical;
# gc reclaims exactly the chunks only the removed backups used, and none
# that a kept incremental inherits; gc runs beside a backup (which dedups
# against garbage gc is collecting) without blocking it or breaking it;
# one gc at a time; prune and gc refused through an append-only backupd.
. "$(dirname "$0")/lib.sh"

R=$T/repo
W=65536 # window size: one chunk per 64 KiB window
run_ok livebackup init --repo "$R" --window-size 64K

# chunk_files FILE: the repository's chunk files, sorted.
chunk_files() { (cd "$R/chunks" && find . -type f | sort) >"$1"; }
nchunks() { find "$R/chunks" -type f | wc -l; }
# Time passes: gc keeps chunks newer than the oldest running backup (or
# now) minus 120 s; an hour ago is well before that.
age_chunks() { find "$R/chunks" -type f -exec touch -m -d '-1 hour' {} +; }

# backup_at TIME SET IMAGE: a full backup with backupd's clock at TIME; sets
# ID (and NEW, the chunk files it added, in $T/new.ID).
backup_at() {
    chunk_files "$T/before"
    export LIVEBACKUP_FAKE_TIME=$1
    run_ok livebackup backup-image --json --repo "$R" --name "$2" \
        --disk vda="$3"
    unset LIVEBACKUP_FAKE_TIME
    ID=$(json_field "$T/out" summary id)
    [[ $ID == "$(date -u -d "$1" +%Y%m%d-%H%M%S)"-* ]] ||
        fail "backup at $1 got id '$ID'"
    chunk_files "$T/after"
    comm -13 "$T/before" "$T/after" >"$T/new.$ID"
}

# restores_identical SET ID TRUTH: restore-image equals the raw TRUTH.
restores_identical() {
    rm -f "$T/restored.raw"
    run_ok livebackup restore-image --repo "$R" --name "$1" --backup "$2" \
        --disk vda --to "$T/restored.raw"
    same_image "$T/restored.raw" raw "$3" raw
}

# ---- set vm: six full backups over three days ------------------------------
# Windows 2..15 never change; windows 0 and 1 get new data before every
# backup, so each backup adds exactly two chunks only it uses.
qemu-img create -q -f raw "$T/vm.raw" 1M
write_random "$T/vm.raw" raw $((2 * W)) $((14 * W))
times=(2025-01-01T10:00:00Z 2025-01-01T15:00:00Z 2025-01-02T09:00:00Z
    2025-01-02T18:00:00Z 2025-01-03T08:00:00Z 2025-01-03T20:00:00Z)
vm=()
for i in "${!times[@]}"; do
    write_random "$T/vm.raw" raw 0 $((2 * W))
    backup_at "${times[$i]}" vm "$T/vm.raw"
    cp "$T/vm.raw" "$T/truth.$ID"
    vm+=("$ID")
    if [[ $i -gt 0 ]]; then
        [[ $(wc -l <"$T/new.$ID") -eq 2 ]] || fail "backup $i added $(wc -l <"$T/new.$ID") chunks"
    fi
done
ok "six backups of vm at chosen times: ${vm[*]}"

# ---- set db: two backups; prune works per set -------------------------------
qemu-img create -q -f raw "$T/db.raw" 256k
write_random "$T/db.raw" raw 0 $W
backup_at 2025-01-01T09:00:00Z db "$T/db.raw"
db1=$ID
cp "$T/db.raw" "$T/truth.$db1"
write_random "$T/db.raw" raw 0 $W
backup_at 2025-01-03T07:00:00Z db "$T/db.raw"
db2=$ID
cp "$T/db.raw" "$T/truth.$db2"

# keep-last 2 and keep-daily 2 keep, for vm: Jan 3 20:00 (last 1, daily 1),
# Jan 3 08:00 (last 2), Jan 2 18:00 (daily 2); for db: both.
keep=(--keep-last 2 --keep-daily 2)
expect_removed="${vm[0]} ${vm[1]} ${vm[2]}"
nbefore=$(nchunks)
run_ok livebackup prune --repo "$R" "${keep[@]}" --dry-run
got=$(awk '$1 == "remove" { print $2 }' "$T/out" | tr '\n' ' ')
[[ $got == "$expect_removed " ]] || { cat "$T/out"; fail "dry run removes '$got'"; }
grep -q "^keep   ${vm[5]} .* vm  (reasons: last 1, daily 1)$" "$T/out" ||
    { cat "$T/out"; fail "reasons of the latest"; }
grep -q "^keep   ${vm[4]} .*(reasons: last 2)$" "$T/out" || fail "last 2"
grep -q "^keep   ${vm[3]} .*(reasons: daily 2)$" "$T/out" || fail "daily 2"
grep -q "^keep   $db1 .*(reasons: last 2, daily 2)$" "$T/out" || fail "db1"
grep -q "would keep 5 and remove 3 backup(s); nothing was changed" "$T/out" ||
    fail "dry-run summary"
run_ok livebackup list --repo "$R" --json
[[ $(grep -c '"event":"backup"' "$T/out") -eq 8 ]] || fail "a dry run removed backups"
[[ $(nchunks) -eq $nbefore ]] || fail "a dry run changed chunks"
ok "prune --dry-run lists exactly $expect_removed and changes nothing"

run_ok livebackup prune --repo "$R" "${keep[@]}" --dry-run --json
[[ $(grep -c '"event":"prune"' "$T/out") -eq 8 ]] || fail "one event per backup"
got=$(grep '"action":"remove"' "$T/out" | sed 's/.*"id":"\([^"]*\)".*/\1/' | tr '\n' ' ')
[[ $got == "$expect_removed " ]] || fail "json dry run removes '$got'"
removed=$(json_field "$T/out" summary removed)
kept=$(json_field "$T/out" summary kept)
[[ $removed -eq 3 && $kept -eq 5 ]] || fail "json summary: removed $removed, kept $kept"
ok "prune --json: one event per decision and a summary"

# A dry run needs no exclusive lock: it works beside a running backup; the
# real prune does not.
hold_lock -s "$R/lock"
run_ok livebackup prune --repo "$R" "${keep[@]}" --dry-run
expect_fail "in use by running backups" livebackup prune --repo "$R" "${keep[@]}"
release_lock

run_ok livebackup prune --repo "$R" "${keep[@]}"
grep -q "kept 5 and removed 3 backup(s); livebackup gc reclaims their space" "$T/out" ||
    fail "prune summary"
run_ok livebackup list --repo "$R" --json
[[ $(grep -c '"event":"backup"' "$T/out") -eq 5 ]] || fail "prune left the wrong count"
for id in ${vm[0]} ${vm[1]} ${vm[2]}; do
    ! grep -q "\"id\":\"$id\"" "$T/out" || fail "$id survived prune"
done
[[ $(nchunks) -eq $nbefore ]] || fail "prune deleted chunks (gc's job)"
for id in ${vm[3]} ${vm[4]} ${vm[5]}; do
    restores_identical vm "$id" "$T/truth.$id"
done
restores_identical db "$db1" "$T/truth.$db1"
restores_identical db "$db2" "$T/truth.$db2"
ok "prune removed exactly those; every kept backup restores identical"

# Running it again changes nothing: the kept ones are still kept.
run_ok livebackup prune --repo "$R" "${keep[@]}"
! grep -q "^remove" "$T/out" || fail "a second prune removed more"
# The latest of every set stays, whatever the rules say.
run_ok livebackup prune --repo "$R" --name db --keep-yearly 1 --dry-run
grep -q "^keep   $db2 .*(reasons: yearly 1)" "$T/out" || fail "db yearly"
ok "prune is idempotent"

# ---- gc ----------------------------------------------------------------------
# Right after the backups every chunk is too recent for gc to judge.
run_ok livebackup gc --repo "$R" --json
reclaimed=$(json_field "$T/out" summary chunks_reclaimed)
recent=$(json_field "$T/out" summary chunks_recent)
[[ $reclaimed -eq 0 ]] || fail "gc took $reclaimed recent chunks"
[[ $recent -eq 6 ]] || fail "recent: $(cat "$T/out")"
ok "gc keeps unreferenced chunks newer than its cutoff"

age_chunks
chunk_files "$T/before"
run_ok livebackup gc --repo "$R" --dry-run
grep -q "dry run: would reclaim 6 chunk(s)" "$T/out" || { cat "$T/out"; fail "gc dry run"; }
[[ $(nchunks) -eq $nbefore ]] || fail "gc --dry-run deleted chunks"
run_ok livebackup gc --repo "$R" --json
reclaimed=$(json_field "$T/out" summary chunks_reclaimed)
bytes=$(json_field "$T/out" summary bytes_reclaimed)
[[ $reclaimed -eq 6 ]] || fail "gc: $(cat "$T/out")"
[[ $bytes -gt $((6 * W)) ]] || fail "bytes reclaimed: $bytes"
chunk_files "$T/after"
comm -23 "$T/before" "$T/after" >"$T/gone"
[[ $(wc -l <"$T/gone") -eq 6 && $(nchunks) -eq $((nbefore - 6)) ]] ||
    fail "gc removed $(wc -l <"$T/gone") chunk files"
# Gone: what vm[1] and vm[2] added, and vm[0]'s two changing windows.
sort -u "$T/new.${vm[1]}" "$T/new.${vm[2]}" >"$T/only-removed"
[[ -z $(comm -23 "$T/only-removed" "$T/gone") ]] || fail "a chunk of a removed backup survived"
[[ $(comm -12 "$T/new.${vm[0]}" "$T/gone" | wc -l) -eq 2 ]] || fail "vm[0]'s own chunks"
for id in ${vm[3]} ${vm[4]} ${vm[5]} $db1 $db2; do
    [[ -z $(comm -12 "$T/new.$id" "$T/gone") ]] || fail "gc took a chunk of $id"
done
run_ok livebackup verify --repo "$R"
for id in ${vm[3]} ${vm[4]} ${vm[5]}; do
    restores_identical vm "$id" "$T/truth.$id"
done
ok "gc reclaimed exactly the 6 chunks only removed backups used; verify clean"

# ---- incrementals: the kept one inherits its removed parents' chunks --------
mkimage "$T/inc0.qcow2" qcow2 2
backup_at 2025-02-01T00:00:00Z inc "$T/inc0.qcow2"
top=$T/inc0.qcow2
for g in 1 2 3; do
    overlay "$T/inc$g.qcow2" "$top" qcow2
    qemu-io -c "write -P $((g + 60)) $((g * 300))k 4k" \
        -c "write -P $((g + 70)) 1500k 4k" "$T/inc$g.qcow2" >/dev/null
    export LIVEBACKUP_FAKE_TIME=2025-02-0$((g + 1))T00:00:00Z
    run_ok livebackup backup-image --json --repo "$R" --name inc \
        --disk vda="$T/inc$g.qcow2" --since "$top"
    unset LIVEBACKUP_FAKE_TIME
    grep -q '"kind":"incremental"' "$T/out" || fail "generation $g not incremental"
    top=$T/inc$g.qcow2
done
inc_last=$(json_field "$T/out" summary id)
snapshot_raw "$top" "$T/truth-inc.raw"
run_ok livebackup prune --repo "$R" --name inc --keep-last 1
[[ $(grep -c "^remove" "$T/out") -eq 3 ]] || fail "inc prune"
age_chunks
run_ok livebackup gc --repo "$R" --json
reclaimed=$(json_field "$T/out" summary chunks_reclaimed)
[[ $reclaimed -eq 0 ]] || fail "gc took chunks the kept incremental inherits: $(cat "$T/out")"
restores_identical inc "$inc_last" "$T/truth-inc.raw"
run_ok livebackup verify --repo "$R"
ok "pruning an incremental's parents keeps what it inherits"

# ---- gc racing a running backup ---------------------------------------------
# Garbage a backup will deduplicate against: the chunks of a deleted
# backup, an hour old. The new backup reuses half of them (even windows)
# and uploads the other half new, slowly (--bwlimit), while gc runs.
random_file "$T/race.raw" 8
backup_at 2025-03-01T00:00:00Z race "$T/race.raw"
run_ok livebackup delete --repo "$R" --backup "$ID"
for k in $(seq 1 2 127); do
    dd if=/dev/urandom of="$T/race.raw" bs=$W count=1 seek="$k" conv=notrunc status=none
done
age_chunks
touch -d '-30 min' "$T/aged"
# (4 MiB of new data at 512 KiB/s: gc has 8 s to run beside it)
livebackup backup-image --json --repo "$R" --name race --disk vda="$T/race.raw" \
    --bwlimit 512K --no-progress >"$T/race.out" 2>"$T/race.err" &
race_pid=$!
lb_track "$race_pid"
lb_watch_log "$T/race.err"
# Until the backup has reused (touched) or stored a few chunks.
race_going() {
    lb_alive "$race_pid" || fail "the backup ended early: $(cat "$T/race.err")"
    [[ $(find "$R/chunks" -type f -newer "$T/aged" | wc -l) -ge 8 ]]
}
wait_until 60 "the racing backup to use 8 chunks" race_going
find "$R/chunks" -type f -newer "$T/aged" | sort >"$T/in-use"
start=$(date +%s%N)
run_ok timeout 60 livebackup gc --repo "$R" --json
gc_ms=$((($(date +%s%N) - start) / 1000000))
lb_alive "$race_pid" || fail "the backup ended before gc did ($gc_ms ms): no race was tested"
cp "$T/out" "$T/gc-race.out"
sessions=$(json_field "$T/gc-race.out" summary sessions)
reclaimed=$(json_field "$T/gc-race.out" summary chunks_reclaimed)
[[ $sessions -ge 1 ]] || fail "gc did not see the backup"
[[ $reclaimed -gt 0 ]] || fail "gc reclaimed no garbage: $(cat "$T/gc-race.out")"
while read -r f; do
    [[ -e $f ]] || fail "gc deleted $f, which the running backup uses"
done <"$T/in-use"
ok "gc ran beside a running backup in ${gc_ms} ms, kept the $(wc -l <"$T/in-use") chunks it had reused or stored: $(tail -n 1 "$T/gc-race.out")"
wait "$race_pid" || { cat "$T/race.out" "$T/race.err"; fail "the backup failed"; }
no_sanitizer_report "$T/race.err"
race_id=$(json_field "$T/race.out" summary id)
run_ok livebackup verify --repo "$R"
restores_identical race "$race_id" "$T/race.raw"
ok "the backup committed, verifies and restores identical"

# ---- one gc at a time --------------------------------------------------------
echo "gc pid 4242 on otherhost since 2026-01-01T00:00:00Z" >"$R/gc.lock"
hold_lock -x "$R/gc.lock"
expect_fail "another gc is running on $R \(gc pid 4242 on otherhost" \
    livebackup gc --repo "$R"
release_lock
run_ok livebackup gc --repo "$R"

# ---- append-only ---------------------------------------------------------------
cat >"$T/backupd-append-only" <<EOF
#!/bin/sh
exec "$BACKUPD" "\$@" --append-only
EOF
chmod +x "$T/backupd-append-only"
export LIVEBACKUP_BACKUPD=$T/backupd-append-only
nbefore=$(nchunks)
run_ok livebackup list --repo "$R" --json
nbackups=$(grep -c '"event":"backup"' "$T/out")
age_chunks
refused="append-only: delete, prune and gc are refused.*without --append-only"
expect_fail "$refused" livebackup prune --repo "$R" --keep-last 1
expect_fail "$refused" livebackup prune --repo "$R" --keep-last 1 --dry-run
expect_fail "$refused" livebackup gc --repo "$R"
expect_fail "$refused" livebackup gc --repo "$R" --dry-run
expect_fail "$refused" livebackup delete --repo "$R" --backup "$race_id"
run_ok livebackup backup-image --repo "$R" --name ao --disk vda="$T/db.raw"
unset LIVEBACKUP_BACKUPD
run_ok livebackup list --repo "$R" --json
[[ $(grep -c '"event":"backup"' "$T/out") -eq $((nbackups + 1)) ]] ||
    fail "something was removed through an append-only connection"
[[ $(nchunks) -ge $nbefore ]] || fail "chunks were removed through an append-only connection"
ok "backups still work through it"

# ---- usage ---------------------------------------------------------------------
for args in "prune --repo $R" "prune --repo $R --keep-last 0" \
    "prune --repo $R --keep-daily -1" "prune --repo $R --keep-weekly x" \
    "gc --repo $R --keep-last 1" "gc --repo $R --name x" "gc"; do
    rc=0
    # shellcheck disable=SC2086
    livebackup $args >"$T/out" 2>"$T/err" || rc=$?
    no_sanitizer_report "$T/err"
    [[ $rc -eq 2 ]] || fail "'$args': exit status $rc, not a usage error"
done
grep -q "at least one --keep-\* rule" <(livebackup prune --repo "$R" 2>&1) ||
    fail "prune without a rule does not say what is missing"
ok "usage errors exit 2"
