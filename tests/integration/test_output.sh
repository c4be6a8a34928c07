#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# What the user sees: a progress line (done/total, rate, ETA) on a
# terminal, nothing but the summary when output is not a terminal, and
# machine-readable JSON events (one object per line) with --json.
. "$(dirname "$0")/lib.sh"

R=$T/repo
run_ok livebackup init --repo "$R"
for latest in "" --latest; do
    run_ok livebackup list $latest --repo "$R"
    [[ $(cat "$T/out") == "no backups" ]] || fail "list $latest of an empty repository: $(cat "$T/out")"
done
ok "list and list --latest of an empty repository say so"
qemu-img create -q -f qcow2 "$T/d.qcow2" 256M
write_random "$T/d.qcow2" qcow2 0 $((48 << 20))

# On a terminal (script(1) gives the command a pty): progress with a rate
# and an ETA while it runs. --bwlimit makes it last long enough to draw.
script -qec "livebackup backup-image --bwlimit 24M --repo $R --name p --disk vda=$T/d.qcow2" \
    /dev/null >"$T/tty.out" 2>&1 || fail "backup on a tty failed: $(cat "$T/tty.out")"
grep -Eq "full vda: [0-9.]+ [KMG]iB / 48.0 MiB +[0-9]+% +[0-9.]+ [KMG]?i?B/s +ETA [0-9]+:[0-9]{2}" "$T/tty.out" ||
    fail "no progress line on a tty: $(tr '\r' '\n' <"$T/tty.out" | head -n 5)"
grep -q "backup [0-9a-f-]* of p: full" "$T/tty.out" || fail "no summary on a tty"
ok "progress on a terminal: $(tr '\r' '\n' <"$T/tty.out" | grep -m1 ETA | tr -d '\033[K')"

# Not a terminal: the summary only.
overlay "$T/o.qcow2" "$T/d.qcow2" qcow2
write_random "$T/o.qcow2" qcow2 0 $((40 << 20))
livebackup backup-image --bwlimit 24M --repo "$R" --name p --disk vda="$T/o.qcow2" \
    --since "$T/d.qcow2" >"$T/plain.out" 2>"$T/plain.err"
[[ ! -s $T/plain.err ]] || fail "stderr is not quiet: $(cat "$T/plain.err")"
grep -q "backup [0-9a-f-]* of p: incremental on" "$T/plain.out" || fail "summary"
grep -q "ETA" "$T/plain.out" && fail "progress written when not on a terminal"
ok "quiet when not on a terminal"

# --json: every line is one JSON object; events and a final summary.
run_ok livebackup restore-image --json --repo "$R" --name p --disk vda --to "$T/r.raw"
n=0
while IFS= read -r line; do
    jq -e 'type == "object" and has("event")' >/dev/null <<<"$line" ||
        fail "not a JSON event: $line"
    n=$((n + 1))
done <"$T/out"
jq -e 'select(.event == "summary") | .id and .disk == "vda" and (.seconds | tonumber) >= 0' \
    "$T/out" >/dev/null || fail "no summary event: $(cat "$T/out")"
run_ok livebackup list --json --repo "$R"
[[ $(jq -s 'map(select(.event == "backup")) | length' "$T/out") -eq 2 ]] ||
    fail "list --json: $(cat "$T/out")"
jq -s -e '.[1].kind == "incremental" and .[0].kind == "full" and (.[0].size == 268435456)' \
    "$T/out" >/dev/null || fail "list --json fields: $(cat "$T/out")"
ok "--json: $n restore events, list entries with their fields"

# Errors are JSON too with --json.
livebackup list --json --repo "$T/nope" >"$T/err.json" 2>/dev/null || true
jq -e 'select(.event == "error") | .message and .hint' "$T/err.json" >/dev/null ||
    fail "error event: $(cat "$T/err.json")"
ok "--json errors"

# Tables line up whatever the names: a set named with a space and a
# two-byte "é", one of wide East Asian characters (two columns each), and
# one longer than the name column, against "p". Each row's KIND (or LAST
# BACKUP) starts in the header's column, counted in terminal columns.
qemu-img create -q -f qcow2 "$T/small.qcow2" 1M
names=("wéb 1" "服务器 备份" "a-name-longer-than-the-twenty-columns")
for nm in "${names[@]}"; do
    run_ok livebackup backup-image --repo "$R" --name "$nm" --disk vda="$T/small.qcow2"
done
run_ok livebackup list --repo "$R"
[[ $(wc -l <"$T/out") -eq 6 ]] || fail "list: $(cat "$T/out")"
c=$(lb_columns ' (KIND|full|incremental) ' "$T/out" | sort -u)
[[ $(wc -l <<<"$c") -eq 1 ]] || fail "list's KIND column moves ($c): $(cat "$T/out")"
run_ok livebackup list --latest --repo "$R"
[[ $(wc -l <"$T/out") -eq 5 ]] || fail "list --latest: $(cat "$T/out")"
c=$(lb_columns '[0-9]{8}-[0-9]{6}-|LAST BACKUP' "$T/out" | sort -u)
[[ $(wc -l <<<"$c") -eq 1 ]] || fail "list --latest's columns move ($c): $(cat "$T/out")"
grep -q "^a-name-longer-than-the-twenty-columns " "$T/out" ||
    fail "a long name cut or run into the next column: $(cat "$T/out")"
ok "list and list --latest line up with a name of spaces, é, 服务器, and 37 characters"

# A name a terminal would act on (a client may choose any set name but
# "/" and C0 controls): U+009B, a CSI in UTF-8, and a lone 0x9B byte, a
# CSI for an 8-bit terminal, then "2J" (clear the screen). Every listing
# prints them escaped, never the bytes, and its columns still line up.
evil=$'ev\xc2\x9b2Jil'
evil8=$'caf\x9b2J\xe9'
for nm in "$evil" "$evil8"; do
    run_ok livebackup backup-image --repo "$R" --name "$nm" --disk vda="$T/small.qcow2"
done
# raw: no C1 control or stray byte 0x80-0x9F, in UTF-8 or not
no_csi() {
    ! LC_ALL=C grep -q $'\xc2[\x80-\x9f]\\|\x9b' "$1" ||
        fail "$2 printed a CSI: $(od -c "$1" | grep -m1 -E '302 233|233')"
}
run_ok livebackup list --repo "$R"
no_csi "$T/out" list
grep -qF 'ev\u009b2Jil' "$T/out" || fail "list: no escaped U+009B: $(cat "$T/out")"
grep -qF 'caf\x9b2J\xe9' "$T/out" || fail "list: no escaped bytes: $(cat "$T/out")"
c=$(lb_columns ' (KIND|full|incremental) ' "$T/out" | sort -u)
[[ $(wc -l <<<"$c") -eq 1 ]] || fail "list's KIND column moves with escapes ($c): $(cat "$T/out")"
run_ok livebackup list --latest --repo "$R"
no_csi "$T/out" "list --latest"
c=$(lb_columns '[0-9]{8}-[0-9]{6}-|LAST BACKUP' "$T/out" | sort -u)
[[ $(wc -l <<<"$c") -eq 1 ]] || fail "list --latest's columns move with escapes ($c): $(cat "$T/out")"
run_ok livebackup show --repo "$R" --name "$evil" --backup latest
no_csi "$T/out" show
grep -qF 'name:        ev\u009b2Jil' "$T/out" || fail "show: $(cat "$T/out")"
run_ok livebackup prune --dry-run --repo "$R" --name "$evil8" --keep-last 1
no_csi "$T/out" prune
grep -qF 'caf\x9b2J\xe9' "$T/out" || fail "prune: $(cat "$T/out")"
run_ok livebackup init --repo "$T/copy"
run_ok livebackup copy --from "$R" --to "$T/copy" --name "$evil"
no_csi "$T/out" copy
grep -qF 'ev\u009b2Jil' "$T/out" || fail "copy: $(cat "$T/out")"
# --json keeps the name as it is (JSON escapes what it must)
run_ok livebackup list --json --repo "$R" --name "$evil"
[[ $(jq -r 'select(.event == "backup") | .name' "$T/out") == "$evil" ]] ||
    fail "list --json changed the name: $(cat "$T/out")"
# an error naming it: stderr escaped too
livebackup restore-image --repo "$R" --name "$evil" --backup 20000101-000000-0000 \
    --disk vda --to "$T/none.raw" >/dev/null 2>"$T/err" && fail "a restore of no backup worked"
no_csi "$T/err" "an error"
ok "names a terminal would act on are printed escaped: list, list --latest, show, prune, copy, errors; --json keeps them"

# Two sets that look alike once escaped, one named with the byte 0x9B and
# one with the text "\x9b", are still two sets: list --latest groups them
# by their names, not by what the terminal is shown.
lookalike='caf\x9b2J\xe9' # the text, backslashes and all
for i in 1 2; do
    run_ok livebackup backup-image --repo "$R" --name "$lookalike" --disk vda="$T/small.qcow2"
done
run_ok livebackup list --latest --repo "$R"
counts=$(grep -F 'caf\x9b2J\xe9 ' "$T/out" | awk '{print $2}' | sort | tr '\n' ' ')
[[ $counts == "1 2 " ]] ||
    fail "list --latest merged or lost the look-alike sets (counts: $counts): $(cat "$T/out")"
ok "list --latest keeps apart two sets that look alike once escaped"
