#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# backup --background-commit: the command returns once the repository
# acknowledged the backup and QEMU's block commit of the backed-up layer
# is started; the commit runs on in QEMU; status says so; `recover`, or
# the next backup, waits for it and deletes the committed overlay; every
# backup restores to a filesystem holding the workload's files.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vmlib.sh"

R=$T/repo
run_ok livebackup init --repo "$R"
cp "$LB_TESTVM_DISK_QCOW2" "$VMDIR/vda.qcow2"
vm=$(new_vm bg --disk "vda=$VMDIR/vda.qcow2:qcow2")
vm_wait_agent "$vm" 180 >/dev/null
vm_wait_workload "$vm" 3 >/dev/null

overlays() { find "$VMDIR" -name '*.lbtrack-*' | wc -l; }
in_chain() { virsh -q -c qemu:///system dumpxml "$vm" | grep -c "lbtrack-" || true; }
# the block job on vda, as virsh says it ("" if none); read whole (grep -q
# on the pipe could end virsh with SIGPIPE)
job() { virsh -q -c qemu:///system blockjob "$vm" vda 2>&1 || true; }
ids=() mins=()
backup() {
    mins+=("$(wl_done "$vm")")
    run_ok livebackup backup --json "$vm" --repo "$R" "$@"
    ids+=("$(json_field "$T/out" summary id)")
    [[ -n ${ids[-1]} ]] || fail "no backup id: $(cat "$T/out")"
    [[ $(json_field "$T/out" summary commit_failures) == 0 ]] ||
        fail "commit failures: $(cat "$T/out" "$T/err")"
}

backup --background-commit
[[ $(json_field "$T/out" summary kind) == full ]] || fail "the first backup is not full"
ok "full backup ${ids[0]} with --background-commit"

# A slow commit (4 MiB/s) of at least 16 MiB of changes is still running
# when the command has returned.
vm_guest_exec "$vm" sh -c "dd if=/dev/urandom of=/data/big bs=1M count=16 conv=fsync 2>/dev/null" ||
    fail "guest write"
LIVEBACKUP_COMMIT_BANDWIDTH=$((4 << 20)) backup --background-commit
[[ $(json_field "$T/out" summary kind) == incremental ]] || fail "not incremental"
j=$(job)
[[ $j == *"Block Commit"* ]] || fail "no block commit runs after the backup returned: $j"
[[ $(overlays) -eq 2 ]] || fail "expected the committing and the active overlay, found $(overlays): $(ls "$VMDIR")"
run_ok livebackup status "$vm"
grep -q "block commit runs in QEMU" "$T/out" || fail "status: $(cat "$T/out")"
ok "incremental ${ids[1]} returned with its block commit still running in QEMU"

run_ok livebackup recover "$vm"
[[ $(overlays) -eq 1 && $(in_chain) -eq 1 ]] ||
    fail "after recover: $(overlays) overlay files, $(in_chain) in the chain"
j=$(job)
[[ $j != *"Block Commit"* ]] || fail "a block job is left: $j"
run_ok livebackup status "$vm"
grep -q "block commit runs in QEMU" "$T/out" && fail "status still says committing: $(cat "$T/out")"
ok "recover waited for the commit and deleted the committed overlay"

# The next backup finishes a background commit itself.
vm_wait_workload "$vm" $(($(wl_done "$vm") + 2)) >/dev/null
backup --background-commit
vm_wait_workload "$vm" $(($(wl_done "$vm") + 2)) >/dev/null
backup
[[ $(overlays) -eq 1 && $(in_chain) -eq 1 ]] ||
    fail "after a plain backup: $(overlays) overlay files, $(in_chain) in the chain"
grep -q "recovering from an interrupted run" "$T/err" && fail "a background commit reported as an interrupted run: $(cat "$T/err")"
ok "the next backup waited for the background commit and deleted its overlay"

for i in "${!ids[@]}"; do
    m=$(restore_verify "$R" "$vm" vda "${mins[$i]}" "${ids[$i]}")
    ok "backup ${ids[$i]} restores: e2fsck clean, $m workload files (>= ${mins[$i]})"
done
