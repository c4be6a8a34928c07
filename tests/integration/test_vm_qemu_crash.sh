#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# QEMU or libvirtd killed (SIGKILL) at every phase of a live backup, on a
# real guest (issue 18): before the freeze, while the guest is frozen,
# after the snapshot, during the transfer, after the repository's
# acknowledgement, during the block commit, and during `livebackup
# recover`. The agent stops there (LIVEBACKUP_FAULT_HOOK) and runs a hook
# that kills QEMU (by the PID in libvirt's pid file for the domain) or
# libvirtd (by the PID tests/vm/libvirt.sh recorded) and waits until it is
# gone. After each: the agent ended within 30 s with the expected exit
# status and a message saying what happened; the domain runs again (QEMU
# started again, or libvirtd brought back: QEMU outlives it); the guest is
# thawed; the next backup succeeds and its restore equals the disk at its
# freeze point (the user's image, into which that backup's overlay was
# committed) and passes the workload check; one tracking overlay remains;
# the repository verifies; the first backup still restores. After the
# acknowledgement and during the block commit the hook also deletes a
# backup: the repository must not be held by the agent any more.
#
# The plain build runs the whole matrix (14 cases); a sanitizer build runs
# a representative subset (LB_CRASH_CASES overrides either: "victim:point
# ...", point as in the table below).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vmlib.sh"

[[ $(cat "$T/libvirt/libvirt.owner" 2>/dev/null) == ours ]] ||
    fail "this test kills libvirtd: it needs the one tests/vm/libvirt.sh starts, not one it found running"

# libvirtd is down when a case fails before bringing it back: start it
# again, so that the domain is destroyed before libvirtd goes down.
trap 'rc=$?; lv_answers || lv_up "$T/libvirt" >/dev/null 2>&1; vm_test_cleanup; lb_cleanup "$rc"' EXIT

R=$T/repo
VIRSH=(virsh -q -c qemu:///system)
LIMIT=30 # seconds the agent may take to end after the kill
# A commit slow enough to be interrupted: the guest writes 2 MiB first, and
# QEMU sleeps between 512 KiB steps at this rate.
BW=$((256 * 1024))

run_ok livebackup init --repo "$R"
# Backups the hooks delete while the agent still works on the domain.
head -c 65536 /dev/urandom >"$T/scratch.raw"
scratch=()
for i in 1 2 3 4 5 6; do
    run_ok livebackup backup-image --json --repo "$R" --name "scratch$i" --disk vda="$T/scratch.raw"
    scratch+=("$(json_field "$T/out" summary id)")
done

cp "$LB_TESTVM_DISK_QCOW2" "$VMDIR/c.qcow2"
vm=$(new_vm crash --disk "vda=$VMDIR/c.qcow2:qcow2")
vm_wait_agent "$vm" 120 >/dev/null
vm_wait_workload "$vm" 2 >/dev/null
uuid=$("${VIRSH[@]}" domuuid "$vm")
run_ok livebackup backup --json "$vm" --repo "$R"
first=$(json_field "$T/out" summary id)
ok "first backup $first"

# The hook the agent runs at the fault point (environment: HOOK_*).
cat >"$T/hook.sh" <<'EOF'
#!/bin/bash
set -u
echo "at $LIVEBACKUP_FAULT_POINT" >>"$HOOK_LOG"
if [[ -n $HOOK_DELETE ]]; then
    livebackup delete --repo "$HOOK_REPO" --backup "$HOOK_DELETE" >>"$HOOK_LOG" 2>&1 ||
        echo "delete refused" >>"$HOOK_LOG"
fi
if [[ $HOOK_VICTIM == qemu ]]; then
    pid=$(cat "/run/libvirt/qemu/$HOOK_DOM.pid")
else
    pid=$(cat "$HOOK_LVPID")
fi
kill -KILL "$pid" || exit 1
# Gone (a zombie counts: its parent may be slow to reap it).
for ((i = 0; i < 300; i++)); do
    st=$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null) || break
    [[ $st == Z ]] && break
    sleep 0.1
done
# QEMU: until libvirtd has seen it end.
for ((i = 0; i < 300; i++)); do
    [[ $HOOK_VICTIM != qemu ]] && break
    [[ $(virsh -q -c qemu:///system domstate "$HOOK_DOM" 2>/dev/null) == "shut off" ]] && break
    sleep 0.1
done
echo "killed $HOOK_VICTIM $pid" >>"$HOOK_LOG"
EOF
chmod +x "$T/hook.sh"

# Guest writes that make the next block commit take several seconds.
guest_write() {
    vm_guest_exec "$vm" sh -c "dd if=/dev/urandom of=/data/blob bs=64k count=32 conv=fsync 2>/dev/null" ||
        fail "guest write"
}

# Bring the victim back: start the domain again, or libvirtd (QEMU went on
# without it); then wait for the thaw guard a frozen guest may have (it
# holds the domain's lock until it thawed the guest).
bring_back() {
    if [[ $1 == qemu ]]; then
        [[ $("${VIRSH[@]}" domstate "$vm") == "shut off" ]] || fail "$vm is not shut off after QEMU was killed"
        "${VIRSH[@]}" start "$vm" >/dev/null
        vm_wait_agent "$vm" 120 >/dev/null
    else
        lv_up "$T/libvirt" >>"$T/libvirt.log" 2>&1 || fail "libvirtd did not come back"
        [[ $("${VIRSH[@]}" domstate "$vm") == running ]] || fail "$vm does not run after libvirtd came back"
    fi
    flock -w 60 "$LIVEBACKUP_STATE_DIR/$uuid.lock" true || fail "the domain's lock is still held"
    assert_thawed "$vm"
}

si=0
# crash VICTIM POINT RC REGEX: one case (POINT "recover": the block commit
# of `livebackup recover`, after an agent killed past the acknowledgement).
crash() {
    local victim=$1 point=$2 want=$3 re=$4 rc=0 t0 took del="" before id n
    local label=$2
    local -a cmd=(livebackup backup "$vm" --repo "$R") env=()
    vm_wait_workload "$vm" $(($(wl_done "$vm") + 2)) >/dev/null
    case $point in
    agent:after-ack | agent:during-block-commit)
        del=${scratch[$si]}
        si=$((si + 1))
        ;;&
    agent:during-block-commit)
        guest_write
        env=("LIVEBACKUP_COMMIT_BANDWIDTH=$BW")
        ;;
    recover)
        guest_write
        rc=0
        LIVEBACKUP_FAULT=agent:after-ack livebackup backup "$vm" --repo "$R" >"$T/c.out" 2>&1 || rc=$?
        [[ $rc -eq 137 ]] || fail "recover setup: exit status $rc: $(cat "$T/c.out")"
        rc=0
        point=agent:during-block-commit
        label="the block commit of livebackup recover"
        cmd=(livebackup recover "$vm")
        env=("LIVEBACKUP_COMMIT_BANDWIDTH=$BW")
        ;;
    esac
    : >"$T/hook.log"
    t0=$(date +%s%N)
    # Through a pipe, as `out=$(livebackup backup vm 2>&1)`, ssh or `| tee`
    # take it: its reader must see its end when the agent ends, whatever
    # the agent left running (the thaw guard waiting for libvirtd).
    pst=0
    {
        rc=0
        env "${env[@]}" HOOK_LOG="$T/hook.log" HOOK_VICTIM="$victim" HOOK_DOM="$vm" \
            HOOK_LVPID="$T/libvirt/libvirtd.pid" HOOK_REPO="$R" HOOK_DELETE="$del" \
            LIVEBACKUP_FAULT_HOOK="$point:$T/hook.sh" timeout 120 "${cmd[@]}" 2>&1 || rc=$?
        echo "$rc" >"$T/c.rc"
    } | timeout $((LIMIT + 10)) cat >"$T/c.out" || pst=$?
    took=$((($(date +%s%N) - t0) / 1000000))
    rc=$(cat "$T/c.rc")
    no_sanitizer_report "$T/c.out"
    [[ $pst -ne 124 ]] || fail "$victim at $label: the output's pipe stayed open after the agent ended (exit $rc): $(cat "$T/c.out")"
    grep -q "^killed $victim" "$T/hook.log" || fail "$victim at $label: the hook did not kill: $(cat "$T/hook.log" "$T/c.out")"
    [[ $rc -eq $want ]] || fail "$victim at $label: exit status $rc, not $want: $(cat "$T/c.out")"
    ((took <= LIMIT * 1000)) || fail "$victim at $label: the agent took $took ms"
    tr '\n' ' ' <"$T/c.out" | grep -E -- "$re" >/dev/null || fail "$victim at $label: no /$re/ in: $(cat "$T/c.out")"
    if [[ $victim == libvirtd && $point == agent:*-freeze ]]; then
        grep -Eq "the thaw guard \(pid [0-9]+\) goes on trying in the background for up to 600 s; its outcome goes to syslog" "$T/c.out" ||
            fail "$victim at $label: the thaw guard did not say it lets the pipe go: $(cat "$T/c.out")"
    fi
    if [[ -n $del ]]; then
        grep -q "delete refused" "$T/hook.log" && fail "$victim at $label: the repository was still held: $(cat "$T/hook.log")"
        livebackup list --json --repo "$R" | grep "$del" >/dev/null && fail "$victim at $label: $del was not deleted"
    fi
    bring_back "$victim"
    vm_wait_workload "$vm" $(($(wl_done "$vm") + 2)) >/dev/null
    before=$(wl_done "$vm")
    run_ok livebackup backup --json "$vm" --repo "$R"
    id=$(json_field "$T/out" summary id)
    [[ $(json_field "$T/out" summary commit_failures) == 0 ]] || fail "$victim at $label: the next backup left its overlay: $(cat "$T/err")"
    n=$("${VIRSH[@]}" dumpxml "$vm" | grep -c "lbtrack-" || true)
    [[ $n -eq 1 ]] || fail "$victim at $label: $n tracking overlays in the chain"
    n=$(find "$VMDIR" -name "*.lbtrack-*" | wc -l)
    [[ $n -eq 1 ]] || fail "$victim at $label: $n overlay files: $(ls "$VMDIR")"
    # The user's image now holds the disk as it was at that backup's freeze.
    m=$(restore_verify "$R" "$vm" vda "$before" "$id")
    qemu-img compare -q -U -f raw -F qcow2 "$T/rv.raw" "$VMDIR/c.qcow2" ||
        fail "$victim at $label: the restore of $id differs from the disk at its freeze point"
    run_ok livebackup verify --repo "$R"
    restore_verify "$R" "$vm" vda 0 "$first" >/dev/null
    ok "$victim killed at $label: agent ended in $took ms (exit $rc), saying so; next backup $id restores to the disk at its freeze ($m files); repository sound"
}

# victim point: exit status, what the agent says.
declare -A RC RE
RC[qemu:agent:before-freeze]=1
RE[qemu:agent:before-freeze]="QEMU of $vm ended during the freeze \(shut off: crashed\)"
RC[libvirtd:agent:before-freeze]=1
RE[libvirtd:agent:before-freeze]="thaw guard \(pid [0-9]+\) thaws it.*libvirtd closed the connection \(qemu:///system\) during the freeze.*nothing was switched"
# libvirt takes the snapshot of the shut-off domain offline: the guest's
# disks were quiesced when QEMU died.
RC[qemu:agent:after-freeze]=0
RE[qemu:agent:after-freeze]="QEMU of $vm ended during this run \(shut off: crashed\): committing the backed-up overlays offline"
RC[libvirtd:agent:after-freeze]=1
RE[libvirtd:agent:after-freeze]="thaw guard \(pid [0-9]+\) thaws it.*libvirtd closed the connection \(qemu:///system\) during the disk-only snapshot onto the tracking overlays.*nothing is lost: once libvirtd answers again, the next backup or .livebackup recover $vm. sees whether the guest runs on the new overlays"
RC[qemu:agent:after-snapshot]=0
RE[qemu:agent:after-snapshot]="QEMU of $vm ended during this run \(shut off: crashed\): committing the backed-up overlays offline"
RC[libvirtd:agent:after-snapshot]=1
RE[libvirtd:agent:after-snapshot]="libvirtd closed the connection .*nothing is lost: the next backup of this domain includes these changes"
RC[qemu:agent:mid-transfer]=0
RE[qemu:agent:mid-transfer]="QEMU of $vm ended during this run \(shut off: crashed\): committing the backed-up overlays offline"
RC[libvirtd:agent:mid-transfer]=0
RE[libvirtd:agent:mid-transfer]="libvirtd closed the connection .*the backup is stored: the next backup or .livebackup recover $vm. commits the overlay once libvirtd answers again"
RC[qemu:agent:after-ack]=0
RE[qemu:agent:after-ack]=${RE[qemu:agent:mid-transfer]}
RC[libvirtd:agent:after-ack]=0
RE[libvirtd:agent:after-ack]=${RE[libvirtd:agent:mid-transfer]}
RC[qemu:agent:during-block-commit]=0
RE[qemu:agent:during-block-commit]="disk vda: QEMU of $vm ended during the block commit of vda \(shut off: crashed\); the backup is stored: the next backup or .livebackup recover $vm. commits the overlay"
RC[libvirtd:agent:during-block-commit]=0
RE[libvirtd:agent:during-block-commit]="disk vda: libvirtd closed the connection \(qemu:///system\) during the block commit of vda; the backup is stored: the next backup or .livebackup recover $vm. commits the overlay once libvirtd answers again"
RC[qemu:recover]=1
RE[qemu:recover]="QEMU of $vm ended during the block commit of vda.*could not be committed"
RC[libvirtd:recover]=1
RE[libvirtd:recover]="libvirtd closed the connection \(qemu:///system\) during the block commit of vda.*could not be committed"

if [[ -n ${LB_CRASH_CASES:-} ]]; then
    read -ra cases <<<"$LB_CRASH_CASES"
elif ldd "$LIVEBACKUP" | grep libasan >/dev/null; then
    cases=(libvirtd:agent:after-freeze qemu:agent:during-block-commit
        libvirtd:agent:during-block-commit qemu:recover)
else
    cases=()
    for p in agent:before-freeze agent:after-freeze agent:after-snapshot \
        agent:mid-transfer agent:after-ack agent:during-block-commit recover; do
        cases+=("qemu:$p" "libvirtd:$p")
    done
fi
for c in "${cases[@]}"; do
    [[ -n ${RC[$c]:-} ]] || fail "unknown case $c"
    crash "${c%%:*}" "${c#*:}" "${RC[$c]}" "${RE[$c]}"
done
ok "${#cases[@]} cases"
