#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# --json that machines can trust: the events of init, backup-image, list,
# show, verify, restore-image, prune, gc, copy and an error, from real runs,
# checked field by field against the types docs/json.md gives (jq). A set
# named 2024 stays a string, disks are an array of objects, seconds a
# number. (backup, status and backup -j are checked in test_vm_disks.)
. "$(dirname "$0")/lib.sh"

R=$T/repo
J=$T/all.json
: >"$J"
keep() { cat "$T/out" >>"$J"; }

run_ok livebackup init --json --repo "$R" --encryption none
keep
mkimage "$T/d.qcow2" qcow2 64
write_random "$T/d.qcow2" qcow2 0 $((8 << 20))
mkimage "$T/e.raw" raw 16
run_ok livebackup backup-image --json --repo "$R" --name 2024 \
    --disk vda="$T/d.qcow2" --disk vdb="$T/e.raw"
keep
id0=$(json_field "$T/out" summary id)
overlay "$T/o.qcow2" "$T/d.qcow2" qcow2
write_random "$T/o.qcow2" qcow2 $((20 << 20)) $((1 << 20))
# --bwlimit: long enough for progress events (one a second).
run_ok livebackup backup-image --json --bwlimit 2M --repo "$R" --name 2024 \
    --disk vda="$T/o.qcow2" --since vda="$T/d.qcow2" --disk vdb="$T/e.raw"
keep
id1=$(json_field "$T/out" summary id)
for cmd in "list" "list --latest" "show --backup $id1" "verify" \
    "restore-image --name 2024 --backup $id0 --disk vda --to $T/r.raw" \
    "prune --keep-last 1 --dry-run" "prune --keep-last 1" "gc --dry-run" "gc"; do
    # shellcheck disable=SC2086
    run_ok livebackup $cmd --json --repo "$R"
    keep
done
# copy: its per-backup events and summary (counts are integers).
run_ok livebackup init --repo "$T/dst" --encryption none
run_ok livebackup copy --json --from "$R" --to "$T/dst"
keep
livebackup list --json --repo "$T/nope" >>"$J" 2>/dev/null && fail "list of no repository"
# damage events: a byte flipped in a chunk.
chunk=$(find "$R/chunks" -type f -name '[0-9a-f]*' -size +1k | sed -n 1p)
flip_bytes "$chunk" 100
livebackup verify --json --repo "$R" >>"$J" 2>/dev/null && fail "verify of a damaged chunk"

json_schema_check "$J"
events=$(jq -R -r 'fromjson? // empty | .event' "$J" | sort -u | tr '\n' ' ')
for e in initialized progress summary backup set disk prune copy damage error; do
    [[ " $events" == *" $e "* ]] || fail "no $e event among: $events"
done
ok "every event's fields have docs/json.md's types ($events)"

jq -R -e -s '[split("\n")[] | fromjson? // empty | select(.event == "backup")]
    | length >= 2 and all(.[]; (.name | type) == "string" and .name == "2024"
        and (.id | type) == "string" and (.time | type) == "number"
        and (.disks | type) == "array"
        and (.disks | map(.name)) == ["vda", "vdb"]
        and (.disks[1].size == 16777216))' "$J" >/dev/null ||
    fail "list: $(grep '"backup"' "$J")"
jq -R -e -s '[split("\n")[] | fromjson? // empty | select(.event == "summary" and .kind)]
    | length >= 2 and all(.[]; (.seconds | type) == "number" and (.size | type) == "number"
        and (.name | type) == "string")' "$J" >/dev/null ||
    fail "backup-image summaries: $(grep '"summary"' "$J")"
jq -R -e -s '[split("\n")[] | fromjson? // empty | select(.event == "prune")]
    | length >= 2 and all(.[]; (.dry_run | type) == "boolean" and (.reasons | type) == "array")' \
    "$J" >/dev/null || fail "prune: $(grep '"prune"' "$J")"
ok "a set named 2024 is a string, disks an array of {name, size}, seconds a number, prune reasons an array"

# An encrypted repository's listing: the sealed metadata (ciphertext, of
# use to nobody reading the event; show opens it) is no event's field.
export LIVEBACKUP_PASSPHRASE=json-test
run_ok livebackup init --repo "$T/enc" --encryption repokey
run_ok livebackup backup-image --repo "$T/enc" --name enc --disk vda="$T/e.raw"
: >"$T/enc.json"
for cmd in "list" "list --latest" "show --name enc --backup latest"; do
    # shellcheck disable=SC2086
    run_ok livebackup $cmd --json --repo "$T/enc"
    cat "$T/out" >>"$T/enc.json"
done
jq -R -e -s '[split("\n")[] | fromjson? // empty | select(.event == "backup" or .event == "set")]
    | length == 3 and all(.[]; has("sealed") | not) and all(.[]; .name == "enc")' \
    "$T/enc.json" >/dev/null || fail "an encrypted listing: $(cat "$T/enc.json")"
json_schema_check "$T/enc.json"
ok "an encrypted repository's list, list --latest and show events carry no sealed metadata"
