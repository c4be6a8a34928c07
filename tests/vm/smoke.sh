#!/bin/bash
# End-to-end self test of the VM test kit: builds the test guest (cached in
# $LB_TESTVM_DIR, default /var/cache/livebackup-testvm), brings libvirt up,
# boots a guest on a qcow2 copy of the data disk, waits for its agent and a
# few workload files, freezes and thaws its filesystems, lists /data/wl with
# guest-exec, destroys it, converts the disk to raw and checks it with
# wl-verify.sh, then brings libvirt down. Everything it started is stopped
# on exit (trap); exits non-zero on any failure (a failed wait prints the
# console tail). LB_KEEP_STATE=1 keeps the state directory (console, domain
# XML, disks, libvirtd.log) for inspection.
# Usage: smoke.sh
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/libvirt.sh
. "$here/libvirt.sh"
# shellcheck source=SCRIPTDIR/vm.sh
. "$here/vm.sh"

export LB_TESTVM_DIR=${LB_TESTVM_DIR:-/var/cache/livebackup-testvm}
prefix="lbsmoke-$$-"
name="${prefix}vm"
st=""
ok=0
t_all=$(date +%s%3N)

say() { echo "smoke: $*"; }
now_ms() { date +%s%3N; }
secs() { # START_MS [END_MS]
	local end=${2:-$(now_ms)}
	printf '%d.%03d' $(((end - $1) / 1000)) $(((end - $1) % 1000))
}

cleanup() {
	local rc=$?
	trap - EXIT
	set +e
	if [[ -n $st ]]; then
		vm_cleanup_all "$prefix"
		lv_down "$st"
		if [[ ${LB_KEEP_STATE:-0} == 1 ]]; then
			say "state kept in $st"
		else
			rm -rf "$st"
		fi
	fi
	say "total wall time: $(secs "$t_all") s"
	if [[ $ok == 1 && $rc == 0 ]]; then
		say "1 passed, 0 failed"
	else
		say "FAILED (exit $rc)"
		say "0 passed, 1 failed"
		[[ $rc != 0 ]] || rc=1
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

t=$(now_ms)
"$here/build-testvm.sh" "$LB_TESTVM_DIR"
say "build: $(secs "$t") s"
unset LB_TESTVM_KERNEL LB_TESTVM_INITRD
# shellcheck source=/dev/null
. "$LB_TESTVM_DIR/env.sh"

st=$(mktemp -d /tmp/lbsmoke.XXXXXX)
chmod 0755 "$st" # readable by QEMU even under a libvirtd that is not root
t=$(now_ms)
lv_up "$st"
say "libvirt up: $(secs "$t") s"

vm_new_disk "$st/data.qcow2" qcow2
vm_define "$name" "$st" --disk "vda=$st/data.qcow2:qcow2"
t=$(now_ms)
vm_start "$name"
vm_wait_agent "$name" 120
boot_to_agent=$(secs "$t")
say "boot to agent: $boot_to_agent s ($LB_TESTVM_KERNEL_KIND kernel)"

vm_wait_workload "$name" 3 120
say "workload: $(vm_workload_last "$name") files after $(secs "$t") s"

t=$(now_ms)
virsh -q -c "$VM_URI" domfsfreeze "$name" >/dev/null
t_frozen=$(now_ms)
if vm_guest_exec "$name" true 2>/dev/null; then
	say "guest-exec worked while frozen (unexpected for qemu-ga 7.2)"
	exit 1
fi
virsh -q -c "$VM_URI" domfsthaw "$name" >/dev/null
say "domfsfreeze $(secs "$t" "$t_frozen") s, thaw $(secs "$t_frozen") s incl. a refused guest-exec"

ls_out=$(vm_guest_exec "$name" ls /data/wl)
grep -qx "done" <<<"$ls_out" || {
	say "ls /data/wl in the guest shows no done file: $ls_out"
	exit 1
}
grep -qx f000001 <<<"$ls_out" || {
	say "ls /data/wl in the guest shows no f000001: $ls_out"
	exit 1
}
say "guest-exec ls /data/wl: $(wc -l <<<"$ls_out") entries"

# the workload must go on after the thaw
n=$(vm_workload_last "$name")
vm_wait_workload "$name" $((n + 2)) 60
last=$(vm_workload_last "$name")
vm_destroy "$name"
say "destroyed after workload file $last"

qemu-img convert -f qcow2 -O raw "$st/data.qcow2" "$st/data.raw"
# every file the console reported done was fsync'd: the disk must hold it
m=$("$here/wl-verify.sh" "$st/data.raw" "$last")
say "wl-verify: $m files OK (console reported $last)"

ok=1
