#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A live guest backed up into an encrypted repository: a wrong passphrase
# fails before the guest is touched (no freeze, no overlay, nothing in
# the repository); a full and an incremental backup, quiesced; nothing of
# the domain's XML, UUID, disk paths or host name is readable in the
# repository (an unencrypted repository of the same backup holds them
# all: the check can fail); `show` with the key prints them; the guest is
# restored from the incremental and started, and every file its workload
# finished before that backup is there, checked inside it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vmlib.sh"

printf 'the passphrase of the VM repository\n' >"$T/pass"
printf 'not the passphrase\n' >"$T/wrong"
export LIVEBACKUP_PASSPHRASE_FILE=$T/pass
R=$T/repo
run_ok livebackup init --repo "$R" --encryption repokey
run_ok livebackup init --repo "$T/plain" --encryption none

cp "$LB_TESTVM_DISK_QCOW2" "$VMDIR/secret-disk-name.qcow2"
vm=$(new_vm crypt --disk "vda=$VMDIR/secret-disk-name.qcow2:qcow2")
vm_wait_agent "$vm" 120 >/dev/null
vm_wait_workload "$vm" 3 >/dev/null
uuid=$(virsh -q -c qemu:///system domuuid "$vm")
ok "guest $vm (uuid $uuid) runs its workload"

# A wrong passphrase: refused before the guest is frozen or switched.
chain_before=$(active_image "$vm" vda)
ls "$VMDIR" >"$T/vmdir.before"
(cd "$R" && find . -path ./tmp -prune -o -type f ! -name lock -print | sort) >"$T/repo.before"
LIVEBACKUP_PASSPHRASE_FILE=$T/wrong expect_fail \
    "wrong passphrase for the key of repository $R" livebackup backup "$vm" --repo "$R"
[[ $(active_image "$vm" vda) == "$chain_before" ]] || fail "the disk was switched"
ls "$VMDIR" | diff "$T/vmdir.before" - >&2 || fail "an overlay was made"
(cd "$R" && find . -path ./tmp -prune -o -type f ! -name lock -print | sort) |
    diff "$T/repo.before" - >&2 || fail "the repository changed"
assert_thawed "$vm"
ok "a wrong passphrase leaves the guest, its disk and the repository as they were"

# The same guest into the unencrypted repository first (the control), then
# full and incremental into the encrypted one.
run_ok livebackup backup --json "$vm" --repo "$T/plain"
run_ok livebackup backup --json "$vm" --repo "$R"
[[ $(json_field "$T/out" summary kind) == full ]] || fail "first backup not full"
vm_wait_workload "$vm" $(($(wl_done "$vm") + 3)) >/dev/null
vm_guest_exec "$vm" sh -c "dd if=/dev/urandom of=/data/more bs=4k count=64 conv=fsync 2>/dev/null" ||
    fail "guest write"
before=$(wl_done "$vm")
run_ok livebackup backup --json "$vm" --repo "$R"
[[ $(json_field "$T/out" summary kind) == incremental ]] || fail "second backup not incremental"
[[ $(json_field "$T/out" summary consistency) == quiesced ]] || fail "not quiesced"
id=$(json_field "$T/out" summary id)
assert_thawed "$vm"
ok "full and incremental backups into the encrypted repository, quiesced"

# readable DIR STRING: a file of DIR holds STRING, as it is or once its
# chunk body (after a version 1 or 2 header) is decompressed by zstd.
readable() {
    local f n
    grep -rqaF -- "$2" "$1" && return 0
    while IFS= read -r -d '' f; do
        for skip in 17 25; do
            # grep -c reads it all: no SIGPIPE for zstd under pipefail
            n=$( (tail -c +$skip "$f" | zstd -dcq 2>/dev/null || true) | grep -caF -- "$2" || true)
            [[ $n -gt 0 ]] && return 0
        done
    done < <(find "$1/chunks" -type f -print0)
    return 1
}
for what in "<domain" "$uuid" "secret-disk-name" "$VMDIR" "org.qemu.guest_agent"; do
    readable "$T/plain" "$what" || fail "the control does not hold '$what'"
    ! readable "$R" "$what" || fail "'$what' is readable in the encrypted repository"
done
# The listing, which needs no key, shows no host, UUID or source (the
# host name is too short a string to look for in the files themselves).
(
    unset LIVEBACKUP_PASSPHRASE_FILE
    run_ok livebackup list --json --repo "$T/plain" --name "$vm"
    [[ $(json_field "$T/out" backup host) == "$(hostname)" ]] || fail "control: no host"
    run_ok livebackup list --json --repo "$R" --name "$vm"
    for k in host domain_uuid source domain_state; do
        ! json_field "$T/out" backup "$k" 2>/dev/null || fail "the listing shows $k"
    done
    json_field "$T/out" backup consistency >/dev/null
)
# The set name is readable (list and prune work by it), as FORMAT.md says.
grep -rqaF -- "$vm" "$R/backups" || fail "the set name is not in the manifests"
ok "no domain XML, UUID, disk path, agent channel or host name readable in the repository or its listing"

run_ok livebackup show --repo "$R" --backup "$id"
grep -q "^domain uuid: *$uuid" "$T/out" && grep -q "<domain type=.qemu." "$T/out" &&
    grep -q "secret-disk-name" "$T/out" || fail "show: $(cat "$T/out")"
ok "show, with the key, prints the saved XML and UUID"

run_ok livebackup restore --json "$vm" --repo "$R" --backup "$id" --to "$T/r" --define \
    --start --new-mac --keep-host-access
name=$(json_field "$T/out" summary name)
vm_wait_agent "$name" 120 >/dev/null
out=$(VM_EXEC_TIMEOUT=120 vm_guest_exec "$name" sh -c \
    "for n in \$(seq 1 $before); do f=\$(printf /data/wl/f%06d \$n); awk -v n=\$n -f /lbtest/wlgen.awk | cmp -s - \$f || { echo BAD \$n; exit 1; }; done; test -s /data/more && echo GOOD") ||
    fail "in $name: $out"
[[ $out == *GOOD* ]] || fail "in $name: $out"
vm_destroy "$name"
run_ok livebackup verify --repo "$R" --key
ok "restored from the encrypted incremental and started: $before files checked inside the guest"
