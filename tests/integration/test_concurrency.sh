#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Two backups into one repository at once, from different sets that share
# data: both commit, shared chunks are stored once, the repository
# verifies and both restore identical. An exclusive operation meanwhile is
# refused with a clear message, never interleaved.
. "$(dirname "$0")/lib.sh"

R=$T/repo
run_ok livebackup init --repo "$R"
random_file "$T/shared.bin" 24
for n in a b; do
    qemu-img create -q -f qcow2 "$T/$n.qcow2" 128M
    qemu-io -c "write -s $T/shared.bin 0 24M" "$T/$n.qcow2" >/dev/null
    write_random "$T/$n.qcow2" qcow2 $((64 << 20)) $((16 << 20))
done

for n in a b; do
    livebackup backup-image --json --bwlimit 16M --repo "$R" --name "$n" \
        --disk vda="$T/$n.qcow2" >"$T/$n.out" 2>"$T/$n.err" &
    lb_track $!
    lb_watch_log "$T/$n.err"
    eval "pid_$n=$!"
done
# Both hold the repository (their writer sessions exist) and send for
# 2.5 s at least (40 MiB each at 16 MiB/s): a delete now meets both.
both_running() {
    # shellcheck disable=SC2154
    lb_alive "$pid_a" && lb_alive "$pid_b" ||
        fail "a backup ended before both ran: $(cat "$T/a.err" "$T/b.err")"
    [[ $(writer_sessions "$R") -eq 2 ]]
}
wait_until 60 "both backups to open the repository" both_running
expect_fail "in use by running backups" livebackup delete --repo "$R" \
    --backup 20200101-000000-abcd
# shellcheck disable=SC2154
wait "$pid_a" || fail "backup a: $(cat "$T/a.err")"
wait "$pid_b" || fail "backup b: $(cat "$T/b.err")"
no_sanitizer_report "$T/a.err" "$T/b.err"
ok "two backups into one repository at once both committed"

new_a=$(json_field "$T/a.out" summary bytes_new)
new_b=$(json_field "$T/b.out" summary bytes_new)
stored=$((new_a + new_b))
# 24 MiB shared + 2 x 16 MiB own, incompressible: about 56 MiB, not 80.
[[ $stored -lt $((64 << 20)) ]] || fail "shared data stored twice ($stored bytes)"
ok "shared chunks stored once ($((stored >> 20)) MiB for 80 MiB of data)"

run_ok livebackup verify --repo "$R"
for n in a b; do
    run_ok livebackup restore-image --repo "$R" --name "$n" --disk vda --to "$T/$n.raw"
    same_image "$T/$n.raw" raw "$T/$n.qcow2" qcow2
done
ok "repository verifies; both restore identical"
