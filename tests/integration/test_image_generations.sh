#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The data path end to end on real images: a qcow2 disk with a backing
# chain and a raw disk, changed through qemu-io (write -P, write -z,
# discard at scattered 4 KiB offsets) over several generations; a full
# backup, then incrementals with --since; every generation restored (raw
# and qcow2) and compared with the guest-visible image at that time; a
# middle backup deleted and the others restored again; verify clean.
. "$(dirname "$0")/lib.sh"

R=$T/repo
run_ok livebackup init --repo "$R"
ok "init"

# vda: qcow2 over a raw base (a user chain that already has a backing file)
mkimage "$T/vda-base.raw" raw 96
qemu-img create -q -f qcow2 -b "$T/vda-base.raw" -F raw "$T/vda.qcow2"
qemu-io -c "write -P 0x5a 40M 3M" -c "write -P 0x61 1028k 4k" "$T/vda.qcow2" >/dev/null
write_random "$T/vda.qcow2" qcow2 60M 2M
# vdb: raw, odd size (last window shorter than the others)
mkimage "$T/vdb.raw" raw 70
qemu-img resize -q -f raw "$T/vdb.raw" $((70 * 1024 * 1024 + 12288))

snapshot_raw "$T/vda.qcow2" "$T/truth-vda-0.raw"
snapshot_raw "$T/vdb.raw" "$T/truth-vdb-0.raw"
run_ok livebackup backup-image --json --repo "$R" --name img \
    --disk vda="$T/vda.qcow2" --disk vdb="$T/vdb.raw"
id0=$(json_field "$T/out" summary id)
[[ -n $id0 ]] || fail "no backup id in the summary"
grep -q '"kind":"full"' "$T/out" || fail "first backup is not full"
ok "full backup $id0"

# Generations: overlays above the images, changed at scattered offsets.
vda_top=$T/vda.qcow2 vda_fmt=qcow2
vdb_top=$T/vdb.raw vdb_fmt=raw
ids=("$id0")
for g in 1 2 3; do
    overlay "$T/vda-t$g.qcow2" "$vda_top" "$vda_fmt"
    overlay "$T/vdb-t$g.qcow2" "$vdb_top" "$vdb_fmt"
    cmds=()
    for k in 0 1 2 3 4 5 6 7; do
        off=$(((g * 7919 + k * 104729) % 90000 * 1024 / 4096 * 4096))
        cmds+=(-c "write -P $((g * 16 + k)) $off 4k")
    done
    cmds+=(-c "write -z $((g * 4 + 40))M 8k" -c "discard $((g * 4 + 1))M 128k")
    cmds+=(-c "write -z 40M 4k")
    qemu-io "${cmds[@]}" "$T/vda-t$g.qcow2" >/dev/null
    write_random "$T/vda-t$g.qcow2" qcow2 $((g * 3))M 12k
    qemu-io -c "write -P $((g + 100)) $((g * 5))M 4k" \
        -c "discard 0 64k" -c "write -z 69M 4k" "$T/vdb-t$g.qcow2" >/dev/null
    snapshot_raw "$T/vda-t$g.qcow2" "$T/truth-vda-$g.raw"
    snapshot_raw "$T/vdb-t$g.qcow2" "$T/truth-vdb-$g.raw"
    run_ok livebackup backup-image --json --repo "$R" --name img \
        --disk vda="$T/vda-t$g.qcow2" --disk vdb="$T/vdb-t$g.qcow2" \
        --since vda="$vda_top" --since vdb="$vdb_top"
    id=$(json_field "$T/out" summary id)
    grep -q '"kind":"incremental"' "$T/out" || fail "generation $g not incremental"
    [[ $(json_field "$T/out" summary parent) == "${ids[-1]}" ]] ||
        fail "generation $g parent is not the previous backup"
    # An incremental costs about the changed clusters, not the disk.
    sent=$(json_field "$T/out" summary bytes_received)
    [[ $sent -lt $((4 << 20)) ]] || fail "incremental $g sent $sent bytes"
    ok "incremental $g: $id ($sent bytes sent)"
    ids+=("$id")
    vda_top=$T/vda-t$g.qcow2 vda_fmt=qcow2
    vdb_top=$T/vdb-t$g.qcow2 vdb_fmt=qcow2
done

# The union of several layers (what the live backup sends when an earlier
# transfer failed) is also a correct incremental.
# vdb gets an empty overlay: an incremental with no change at all.
overlay "$T/vda-t4.qcow2" "$vda_top" qcow2
overlay "$T/vdb-t4.qcow2" "$vdb_top" qcow2
qemu-io -c "write -P 0x77 7M 4k" "$T/vda-t4.qcow2" >/dev/null
snapshot_raw "$T/vda-t4.qcow2" "$T/truth-vda-4.raw"
cp "$T/truth-vdb-3.raw" "$T/truth-vdb-4.raw"
run_ok livebackup backup-image --json --repo "$R" --name img \
    --disk vda="$T/vda-t4.qcow2" --disk vdb="$T/vdb-t4.qcow2" \
    --since vda="$T/vda-t2.qcow2" --since vdb="$vdb_top"
ids+=("$(json_field "$T/out" summary id)")
ok "incremental over two layers: ${ids[-1]}"

run_ok livebackup list --repo "$R" --name img
[[ $(grep -c incremental "$T/out") -eq 4 ]] || fail "list shows $(cat "$T/out")"
ok "list shows 5 backups"

restore_all() {
    local i fmt
    for i in "${!ids[@]}"; do
        [[ -n ${ids[$i]} ]] || continue
        for disk in vda vdb; do
            fmt=raw
            [[ $(((i + ${#disk}) % 2)) -eq 0 ]] || fmt=qcow2
            rm -f "$T/r.$fmt"
            run_ok livebackup restore-image --repo "$R" --name img \
                --backup "${ids[$i]}" --disk $disk --to "$T/r.$fmt" --format $fmt
            same_image "$T/r.$fmt" $fmt "$T/truth-$disk-$i.raw" raw
            if [[ $fmt == raw ]]; then
                # Sparse: no more allocated than the source's data allows.
                [[ $(alloc_bytes "$T/r.raw") -le $(($(alloc_bytes "$T/truth-$disk-$i.raw") + (1 << 20))) ]] ||
                    fail "restore of $disk/$i is not sparse"
            fi
        done
        ok "backup $i (${ids[$i]}) restores identical (vda, vdb)"
    done
}
restore_all

run_ok livebackup verify --repo "$R"
grep -q "all sound" "$T/out" || fail "verify: $(cat "$T/out")"
ok "verify clean"

# Delete a middle backup: every other one still restores.
run_ok livebackup delete --repo "$R" --backup "${ids[2]}"
ids[2]=""
restore_all
run_ok livebackup verify --repo "$R"
ok "after deleting a middle backup, verify is clean and the others restore"

# restore-image by time picks the latest at or before it.
run_ok livebackup restore-image --repo "$R" --name img \
    --backup "$(date -u +%Y-%m-%dT%H:%M:%S -d '+1 min')" --disk vda --to "$T/bytime.raw"
same_image "$T/bytime.raw" raw "$T/truth-vda-4.raw" raw
ok "restore by time"

# A restore leaves little of its image in the page cache (sink.c: what
# lies more than 64 MiB behind the end written is waited for on disk and
# dropped), in both formats: 320 MiB of new data restored, at most 160
# MiB of the file cached right after (all of it, before). Measured before
# anything reads the image back.
[[ $(stat -f -c %T "$T") != tmpfs ]] ||
    fail "$T is on tmpfs, where a file's pages are its storage: run with TMPDIR on a disk"
mkimage "$T/big.raw" raw 384
write_random "$T/big.raw" raw 32M 320M
# A full reads its source with O_DIRECT (source.c): it leaves the host's
# page cache as it was. The image's pages dropped first (written back,
# then POSIX_FADV_DONTNEED through dd's nocache); before this, the
# backup left all 320 MiB of it cached.
sync "$T/big.raw"
dd if="$T/big.raw" iflag=nocache count=0 status=none
cached=$(fincore --bytes --noheadings --output RES "$T/big.raw")
((cached <= 4 << 20)) || fail "could not drop big.raw from the page cache ($cached bytes left)"
run_ok livebackup backup-image --repo "$R" --name big --disk vda="$T/big.raw"
cached=$(fincore --bytes --noheadings --output RES "$T/big.raw")
[[ $cached =~ ^[0-9]+$ ]] || fail "fincore $T/big.raw: '$cached'"
((cached <= 4 << 20)) ||
    fail "a full backup left $((cached >> 20)) MiB of its source in the page cache"
ok "a full backup read its source past the page cache ($((cached >> 10)) KiB of it cached)"
for fmt in raw qcow2; do
    run_ok livebackup restore-image --repo "$R" --name big --disk vda \
        --to "$T/rbig.$fmt" --format $fmt
    cached=$(fincore --bytes --noheadings --output RES "$T/rbig.$fmt")
    [[ $cached =~ ^[0-9]+$ ]] || fail "fincore $T/rbig.$fmt: '$cached'"
    ((cached <= 160 << 20)) ||
        fail "restore to $fmt left $((cached >> 20)) MiB of its image in the page cache"
    same_image "$T/rbig.$fmt" $fmt "$T/big.raw" raw
    rm -f "$T/rbig.$fmt"
    ok "restore to $fmt: identical, $((cached >> 20)) MiB of it left in the page cache"
done

# A source on a filesystem without O_DIRECT (ramfs; tmpfs before Linux
# 6.6) is read through the page cache: the full works there as anywhere.
mkdir "$T/ramfs"
mount -t ramfs ramfs "$T/ramfs" || fail "cannot mount a ramfs on $T/ramfs"
LB_MOUNTS+=("$T/ramfs")
cp "$T/truth-vda-0.raw" "$T/ramfs/vdc.raw"
! dd if="$T/ramfs/vdc.raw" of=/dev/null bs=4k count=1 iflag=direct status=none 2>/dev/null ||
    fail "the ramfs takes O_DIRECT: this check tests nothing"
run_ok livebackup backup-image --repo "$R" --name ram --disk vdc="$T/ramfs/vdc.raw"
run_ok livebackup restore-image --repo "$R" --name ram --disk vdc --to "$T/rram.raw"
same_image "$T/rram.raw" raw "$T/truth-vda-0.raw" raw
ok "a full of an image on a filesystem without O_DIRECT restores identical"

# An incremental's qemu-nbd reads through io_uring where this host allows
# it (source.c), and an incremental still works where qemu-nbd cannot (a
# build without io_uring): a qemu-nbd first in PATH that refuses it, and
# logs every start.
real_nbd=$(command -v qemu-nbd)
mkdir "$T/wrap"
cat >"$T/wrap/qemu-nbd" <<WRAP
#!/bin/bash
echo "\$*" >>"$T/wrap/log"
for a; do [[ \$a != *io_uring* ]] || { echo "qemu-nbd (test): no io_uring" >&2; exit 1; }; done
exec "$real_nbd" "\$@"
WRAP
chmod +x "$T/wrap/qemu-nbd"
overlay "$T/ring.qcow2" "$T/truth-vda-0.raw" raw
qemu-io -c "write -P 0x3c 5M 4k" -c "write -P 0x3d 77M 4k" "$T/ring.qcow2" >/dev/null
snapshot_raw "$T/ring.qcow2" "$T/truth-ring.raw"
PATH=$T/wrap:$PATH run_ok livebackup backup-image --repo "$R" --name ring \
    --disk vda="$T/truth-vda-0.raw"
PATH=$T/wrap:$PATH run_ok livebackup backup-image --json --repo "$R" --name ring \
    --disk vda="$T/ring.qcow2" --since vda="$T/truth-vda-0.raw"
grep -q '"kind":"incremental"' "$T/out" || fail "the ring backup is not incremental"
# The host allows io_uring (io_uring_setup answers a file descriptor):
# the incremental asked for it first, then went on without.
if perl -e 'my $p = "\0" x 120; exit(syscall(425, 1, $p) >= 0 ? 0 : 1)'; then
    grep -q -- "io_uring" "$T/wrap/log" ||
        fail "the incremental did not ask qemu-nbd for io_uring: $(cat "$T/wrap/log")"
    [[ $(grep -c -v -- "io_uring" "$T/wrap/log") -ge 2 ]] ||
        fail "no qemu-nbd without io_uring after the refusal: $(cat "$T/wrap/log")"
fi
run_ok livebackup restore-image --repo "$R" --name ring --disk vda --to "$T/rring.raw"
same_image "$T/rring.raw" raw "$T/truth-ring.raw" raw
ok "an incremental asks for io_uring and works where qemu-nbd refuses it"

# Relative paths with a colon: QEMU takes "c:1.qcow2" for the protocol c,
# the agent hands it "./c:1.qcow2". A full and an incremental (--since a
# relative layer) from the images' directory, restored to qcow2 and raw
# under names with a colon.
mkdir "$T/colon"
cd "$T/colon"
qemu-img create -q -f qcow2 ./c:0.qcow2 16M
qemu-io -c "write -P 7 0 1M" ./c:0.qcow2 >/dev/null
run_ok livebackup backup-image --repo "$R" --name colon --disk vda=c:0.qcow2
qemu-img create -q -f qcow2 -b ./c:0.qcow2 -F qcow2 ./c:1.qcow2
qemu-io -c "write -P 9 2M 64k" ./c:1.qcow2 >/dev/null
run_ok livebackup backup-image --repo "$R" --name colon --disk vda=c:1.qcow2 --since c:0.qcow2
run_ok livebackup restore-image --repo "$R" --name colon --disk vda --to r:1.qcow2 --format qcow2
run_ok livebackup restore-image --repo "$R" --name colon --disk vda --to r:1.raw
same_image ./r:1.qcow2 qcow2 ./c:1.qcow2 qcow2
same_image ./r:1.raw raw ./c:1.qcow2 qcow2
cd - >/dev/null
ok "relative image paths with a colon: backed up (full, --since) and restored"
