# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# For the tests that need a real libvirt and the test guest (tests/vm):
# builds the guest (cached), brings libvirtd up for the test (or uses a
# running one) and down again, and destroys every domain the test defined.
# Source after lib.sh.

# One VM test at a time on this machine, whichever build tree it runs
# from: they share libvirtd on qemu:///system (ctest's RESOURCE_LOCK covers
# one ctest only) and the test VM cache. A recorded holder process keeps
# the lock until lb_cleanup stops it, after libvirtd went down; it says
# "locked" once it holds it.
coproc VM_LOCK {
    exec 9>>/run/lock/livebackup-vm-tests.lock
    flock 9 && echo locked && exec sleep 100000
}
lb_track "$VM_LOCK_PID"
read -r -t "${LB_VM_LOCK_WAIT:-3000}" _vm_locked <&"${VM_LOCK[0]}" || true
[[ ${_vm_locked:-} == locked ]] ||
    fail "another VM test held /run/lock/livebackup-vm-tests.lock too long"

export LB_TESTVM_DIR=${LB_TESTVM_DIR:-/var/cache/livebackup-testvm}
export LIVEBACKUP_STATE_DIR=$T/state
VM_PREFIX="lbt$$-"
VMDIR=$T/vm
mkdir -p "$VMDIR"
chmod 755 "$T" "$VMDIR"

bash "$LB_SRC/tests/vm/build-testvm.sh" "$LB_TESTVM_DIR" >"$T/build-testvm.log" 2>&1 ||
    fail "building the test VM failed: $(tail -n 20 "$T/build-testvm.log")"
# shellcheck source=/dev/null
. "$LB_TESTVM_DIR/env.sh"
# shellcheck source=../vm/vm.sh
. "$LB_SRC/tests/vm/vm.sh"
# shellcheck source=../vm/libvirt.sh
. "$LB_SRC/tests/vm/libvirt.sh"
lv_up "$T/libvirt" >"$T/libvirt.log" 2>&1 ||
    fail "libvirtd did not come up: $(tail -n 20 "$T/libvirt.log")"

# A VM test killed outright (SIGKILL, a host that went down under it) ran
# no cleanup: its domains stay defined in libvirt, running, or after a
# reboot defined on disks that are gone, and pile up run after run. Each
# is named after its test's process (lbtPID-): one whose process is no
# longer alive was left behind, and this test holds the VM lock, so no
# other test is using it. Removed before this test defines its own.
vm_sweep_stale() {
    local d pid
    while read -r d; do
        [[ $d =~ ^lbt([0-9]+)- ]] || continue
        pid=${BASH_REMATCH[1]}
        [[ $pid != "$$" ]] && ! lb_alive "$pid" || continue
        echo "vmlib.sh: removing domain $d, left by test process $pid" >&2
        vm_destroy "$d"
    done < <(virsh -q -c qemu:///system list --all --name 2>/dev/null || true)
}
vm_sweep_stale

vm_test_cleanup() {
    vm_cleanup_all "$VM_PREFIX" >/dev/null 2>&1 || true
    lv_down "$T/libvirt" >/dev/null 2>&1 || true
}
# Run before lib.sh's cleanup (which removes $T). Not `(exit $rc)` to pass
# the status on: under set -e that ends the trap before lb_cleanup stops
# the processes the test recorded.
trap 'rc=$?; vm_test_cleanup; lb_cleanup "$rc"' EXIT

# new_vm NAME [vm_define options]: define and start, wait for the agent
# (unless --noagent) and the workload's first files.
new_vm() {
    local name=$VM_PREFIX$1
    shift
    vm_define "$name" "$VMDIR" "$@" >/dev/null
    vm_start "$name" >/dev/null
    echo "$name"
}

# The workload count a guest reported so far.
wl_done() { vm_workload_last "$1"; }

# restore_verify REPO NAME DISK MIN_N [ID]: restore a disk to raw and check
# the workload on it (e2fsck -fn, every file listed done is complete).
restore_verify() {
    local repo=$1 name=$2 disk=$3 min=$4 id=${5:-latest} m
    rm -f "$T/rv.raw"
    run_ok livebackup restore-image --repo "$repo" --name "$name" \
        --backup "$id" --disk "$disk" --to "$T/rv.raw"
    m=$(bash "$LB_SRC/tests/vm/wl-verify.sh" "$T/rv.raw" "$min" 2>"$T/wlv.err") ||
        fail "restored $name/$disk ($id) does not verify: $(cat "$T/wlv.err")"
    echo "$m"
}

# The guest is not frozen.
assert_thawed() {
    local st
    st=$(vm_agent "$1" '{"execute":"guest-fsfreeze-status"}') ||
        fail "guest agent of $1 does not answer"
    [[ $st == *thawed* ]] || fail "$1 is left $st"
}

# The active image of a disk (domblklist).
active_image() { virsh -q -c qemu:///system domblklist "$1" | awk -v d="$2" '$1 == d {print $2}'; }

# instant_cleanup: what an instant restore leaves running when a test
# fails midway: its exports (nbdkit daemons) and its watcher, by the pids
# in the state directory, each checked to be that program still.
instant_cleanup() {
    local f p
    for f in "$LIVEBACKUP_STATE_DIR"/*.export.pid "$LIVEBACKUP_STATE_DIR"/*.instant.lock; do
        [[ -e $f ]] || continue
        p=$(sed -n 's/^pid //; s/^\([0-9][0-9]*\)$/\1/p' "$f")
        [[ $p =~ ^[0-9]+$ ]] && lb_alive "$p" || continue
        case $(cat "/proc/$p/comm" 2>/dev/null) in
        nbdkit | livebackup) kill -TERM "$p" 2>/dev/null || true ;;
        esac
    done
}
