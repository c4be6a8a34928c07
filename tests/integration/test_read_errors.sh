#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A disk that cannot be read mid-backup: the backup fails with a message
# naming a read, exits (no hang, no crash, while the reads of the windows
# after it are in flight: backup.c issues several windows' reads ahead),
# leaves no backup listed and a sound repository, and the same backup
# without the fault completes and restores exact. The fault is QEMU's own
# (blkdebug injecting EIO at one sector of the image file): a qemu-nbd
# first in PATH opens the image it is given through blkdebug. What
# qemu-nbd says comes in the agent's message (its reason: "Input/output
# error"), never as lines of its own on the agent's stderr.
. "$(dirname "$0")/lib.sh"

R=$T/repo
run_ok livebackup init --repo "$R"

real_nbd=$(command -v qemu-nbd)
mkdir "$T/wrap"
# wrap SECTOR: the next qemu-nbd fails every read of that sector of the
# image file it serves (the top of the chain; its backing opens as usual)
wrap() {
    cat >"$T/wrap/qemu-nbd" <<WRAP
#!/bin/bash
args=() fmt= path=
while ((\$#)); do
    case \$1 in
    -f) fmt=\$2; shift 2 ;;
    --) path=\$2; shift 2 ;;
    --aio=* | --cache=*) shift ;;
    *) args+=("\$1"); shift ;;
    esac
done
echo "\${args[*]} \$fmt \$path" >>"$T/wrap/log"
exec "$real_nbd" "\${args[@]}" --image-opts \\
    "driver=\$fmt,file.driver=blkdebug,file.image.driver=file,file.image.filename=\$path,file.inject-error.0.event=read_aio,file.inject-error.0.errno=5,file.inject-error.0.sector=$1"
WRAP
    chmod +x "$T/wrap/qemu-nbd"
}

# qemu-nbd's words are in the error, its lines not on stderr
said_in_error() {
    grep -Eq "livebackup: error: .*$1" "$T/err" ||
        fail "the error does not quote qemu-nbd's /$1/: $(cat "$T/err")"
    ! grep -q "^qemu-nbd:" "$T/err" ||
        fail "qemu-nbd's own lines on the agent's stderr: $(cat "$T/err")"
}

# 0. A qemu-nbd that cannot start (as when another process holds the
# image's lock): its reason is the error's.
cat >"$T/wrap/qemu-nbd" <<'WRAP'
#!/bin/sh
echo 'qemu-nbd: Failed to get shared "write" lock' >&2
echo 'Is another process using the image [x]?' >&2
exit 1
WRAP
chmod +x "$T/wrap/qemu-nbd"
qemu-img create -q -f qcow2 "$T/locked.qcow2" 1M
PATH=$T/wrap:$PATH expect_fail \
    "cannot open .*locked.qcow2 with qemu-nbd: Failed to get shared \"write\" lock; Is another process using the image \[x\]\?" \
    livebackup backup-image --repo "$R" --name locked --disk vda="$T/locked.qcow2"
said_in_error 'lock; Is another'
grep -q "hint: .*--force-share" "$T/err" || fail "no hint about --force-share: $(cat "$T/err")"
ok "a qemu-nbd that cannot start: its reason in the error, a hint for a lock"

# 1. A full of a raw disk of random data (every window read whole), the
# fault in its 13th window of 24.
random_file "$T/vda.raw" 96
wrap $(((50 << 20) / 512))
PATH=$T/wrap:$PATH expect_fail "read at offset [0-9]+" \
    timeout 300 livebackup backup-image --repo "$R" --name full --disk vda="$T/vda.raw"
grep -q "vda.raw" "$T/wrap/log" || fail "the backup did not use the faulty qemu-nbd"
said_in_error "read at offset [0-9]+: .*qemu-nbd: .*Input/output error"
run_ok livebackup list --repo "$R" --json
! grep -q '"name":"full"' "$T/out" || fail "a failed backup is listed: $(cat "$T/out")"
run_ok livebackup verify --repo "$R"
run_ok livebackup backup-image --repo "$R" --name full --disk vda="$T/vda.raw"
run_ok livebackup restore-image --repo "$R" --name full --disk vda --to "$T/r-full.raw"
cmp "$T/vda.raw" "$T/r-full.raw" || fail "the full restores different"
ok "a full that cannot read its disk fails cleanly; without the fault it restores exact"

# 2. An incremental: 48 scattered 4 KiB writes over the disk (a delta in
# most windows), the fault on the data of a late one in the overlay file.
overlay "$T/top.qcow2" "$T/vda.raw" raw
cmds=()
for k in $(seq 0 47); do
    cmds+=(-c "write -P $((k + 1)) $(((k * 2003 + 7) % 24576 * 4096)) 4k")
done
qemu-io "${cmds[@]}" "$T/top.qcow2" >/dev/null
host=$(qemu-img map --output=json "$T/top.qcow2" |
    jq '[.[] | select(.depth == 0 and .data and .offset != null)] | sort_by(.start) | .[-3].offset')
[[ $host =~ ^[0-9]+$ ]] || fail "no data cluster found in the overlay: $host"
wrap $((host / 512))
: >"$T/wrap/log"
PATH=$T/wrap:$PATH expect_fail "read at offset [0-9]+" \
    timeout 300 livebackup backup-image --repo "$R" --name full \
    --disk vda="$T/top.qcow2" --since vda="$T/vda.raw"
grep -q -- "-A" "$T/wrap/log" || fail "no incremental's qemu-nbd ran: $(cat "$T/wrap/log")"
said_in_error "read at offset [0-9]+: .*qemu-nbd: .*Input/output error"
run_ok livebackup list --repo "$R" --json
[[ $(grep -c '"name":"full"' "$T/out") -eq 1 ]] ||
    fail "the failed incremental is listed: $(cat "$T/out")"
run_ok livebackup verify --repo "$R"
run_ok livebackup backup-image --json --repo "$R" --name full \
    --disk vda="$T/top.qcow2" --since vda="$T/vda.raw"
grep -q '"kind":"incremental"' "$T/out" || fail "the rerun is not an incremental"
snapshot_raw "$T/top.qcow2" "$T/truth-top.raw"
run_ok livebackup restore-image --repo "$R" --name full --disk vda --to "$T/r-top.raw"
cmp "$T/truth-top.raw" "$T/r-top.raw" || fail "the incremental restores different"
ok "an incremental that cannot read a change fails cleanly; without the fault it restores exact"
