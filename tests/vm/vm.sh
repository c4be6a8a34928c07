#!/bin/bash
# Helpers for the livebackup integration tests: define, start, probe and
# destroy test-guest domains (built by build-testvm.sh) through virsh on
# qemu:///system (a libvirtd brought up by libvirt.sh or already running).
# Source it from a bash test; it does not change the caller's shell options
# and every helper works under set -euo pipefail. Executed, it runs one
# helper: tests/vm/vm.sh vm_cleanup_all lbtest-
#
#   vm_new_disk OUT qcow2|raw          copy of the empty ext4 data disk
#   vm_define NAME STATEDIR [--disk vda=PATH:FMT]... [--noagent]
#             [--noworkload] [--mem MIB] [--vcpus N] [--interval SECONDS]
#             [--cmdline 'EXTRA ARGS'] [--device 'XML']... [--top 'XML']...
#             (a --disk PATH that is a block device is a <disk type='block'>;
#             --device adds that XML to <devices> as it is, --top to
#             <domain>)
#   vm_start NAME
#   vm_wait_ready NAME [TIMEOUT]       console shows "lbtest: ready"
#   vm_wait_agent NAME [TIMEOUT]       guest-ping answers
#   vm_wait_workload NAME N [TIMEOUT]  console shows "lbtest: done K", K >= N
#   vm_wait_console NAME REGEX [TIMEOUT]
#   vm_workload_last NAME              highest K of "lbtest: done K" so far
#   vm_agent NAME JSON                 raw qemu-agent-command, prints reply
#   vm_guest_exec NAME CMD [ARG]...    runs CMD in the guest, prints its
#                                      stdout (stderr to stderr), returns its
#                                      exit code (128+signal if killed; 124 on
#                                      timeout VM_EXEC_TIMEOUT, default 60 s;
#                                      125 if the agent refused)
#   vm_console NAME                    path of the serial console file
#   vm_destroy NAME                    destroy + undefine, never fails
#   vm_cleanup_all PREFIX              vm_destroy every domain named PREFIX*
#
# The guest files come from $LB_TESTVM_DIR/env.sh (default dir
# /var/cache/livebackup-testvm) unless LB_TESTVM_KERNEL etc. are set.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	set -euo pipefail
fi

VM_URI=${VM_URI:-qemu:///system}

_vm_log() { echo "vm.sh: $*" >&2; }

vm_virsh() { virsh -q -c "$VM_URI" "$@"; }

# Loads the test guest's env.sh unless its variables are already set.
_vm_load_env() {
	local dir=${LB_TESTVM_DIR:-/var/cache/livebackup-testvm}
	if [[ -z ${LB_TESTVM_KERNEL:-} || -z ${LB_TESTVM_INITRD:-} ]]; then
		if [[ ! -r $dir/env.sh ]]; then
			_vm_log "no $dir/env.sh: run tests/vm/build-testvm.sh $dir first"
			return 1
		fi
		# shellcheck source=/dev/null
		. "$dir/env.sh"
	fi
}

_vm_xml_escape() {
	local s=$1
	# replacements quoted: bash 5.2 (patsub_replacement) puts the match
	# in place of an unquoted '&'
	s=${s//&/'&amp;'}
	s=${s//</'&lt;'}
	s=${s//>/'&gt;'}
	s=${s//\'/'&apos;'}
	s=${s//\"/'&quot;'}
	printf '%s' "$s"
}

_vm_json_str() {
	local s=$1
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//$'\n'/\\n}
	s=${s//$'\r'/\\r}
	s=${s//$'\t'/\\t}
	printf '"%s"' "$s"
}

# vm_new_disk OUT qcow2|raw: a fresh copy of the data disk template.
vm_new_disk() {
	local out=${1:?usage: vm_new_disk OUT qcow2|raw} fmt=${2:-qcow2}
	_vm_load_env || return 1
	case $fmt in
	qcow2) cp "$LB_TESTVM_DISK_QCOW2" "$out" ;;
	raw) cp --sparse=always "$LB_TESTVM_DISK_RAW" "$out" ;;
	*)
		_vm_log "vm_new_disk: format must be qcow2 or raw, not '$fmt'"
		return 1
		;;
	esac
}

vm_define() {
	local name=${1:?usage: vm_define NAME STATEDIR [options]} st=${2:?usage: vm_define NAME STATEDIR [options]}
	shift 2
	local mem=192 vcpus=1 cmdline="console=ttyS0" disks="" top="" spec dev path fmt
	while (($#)); do
		case $1 in
		--disk)
			spec=${2:?--disk needs DEV=PATH:FMT}
			dev=${spec%%=*}
			path=${spec#*=}
			fmt=${path##*:}
			path=${path%:*}
			if [[ $dev == "$spec" || $path == "${spec#*=}" || ! $dev =~ ^vd[a-z]$ ]]; then
				_vm_log "vm_define: bad --disk '$spec' (want vdX=PATH:qcow2|raw)"
				return 1
			fi
			[[ $path == /* ]] || path=$PWD/$path
			[[ -e $path ]] || {
				_vm_log "vm_define: disk image $path does not exist"
				return 1
			}
			if [[ -b $path ]]; then
				disks+="    <disk type='block' device='disk'>
      <driver name='qemu' type='$(_vm_xml_escape "$fmt")'/>
      <source dev='$(_vm_xml_escape "$path")'/>
"
			else
				disks+="    <disk type='file' device='disk'>
      <driver name='qemu' type='$(_vm_xml_escape "$fmt")'/>
      <source file='$(_vm_xml_escape "$path")'/>
"
			fi
			disks+="      <target dev='$dev' bus='virtio'/>
    </disk>
"
			shift 2
			;;
		--device)
			disks+="    ${2:?--device needs XML}
"
			shift 2
			;;
		--top)
			top+="  ${2:?--top needs XML}
"
			shift 2
			;;
		--noagent) cmdline+=" lbtest.noagent" && shift ;;
		--noworkload) cmdline+=" lbtest.noworkload" && shift ;;
		--interval) cmdline+=" lbtest.interval=${2:?}" && shift 2 ;;
		--mem) mem=${2:?} && shift 2 ;;
		--vcpus) vcpus=${2:?} && shift 2 ;;
		--cmdline) cmdline+=" ${2:?}" && shift 2 ;;
		*)
			_vm_log "vm_define: unknown option '$1'"
			return 1
			;;
		esac
	done
	_vm_load_env || return 1
	mkdir -p "$st" || return 1
	st=$(cd "$st" && pwd) || return 1
	if vm_virsh domstate "$name" >/dev/null 2>&1; then
		_vm_log "vm_define: domain $name already exists (vm_destroy it first)"
		return 1
	fi
	rm -f "$st/$name.console"
	cat >"$st/$name.xml" <<EOF || return 1
<domain type='qemu'>
  <name>$(_vm_xml_escape "$name")</name>
  <memory unit='MiB'>$mem</memory>
  <vcpu>$vcpus</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$(_vm_xml_escape "$LB_TESTVM_KERNEL")</kernel>
    <initrd>$(_vm_xml_escape "$LB_TESTVM_INITRD")</initrd>
    <cmdline>$(_vm_xml_escape "$cmdline")</cmdline>
  </os>
  <features><acpi/></features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
$top  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
$disks    <controller type='usb' model='none'/>
    <serial type='file'>
      <source path='$(_vm_xml_escape "$st/$name.console")' append='off'/>
      <target port='0'/>
    </serial>
    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
    <panic model='isa'>
      <address type='isa' iobase='0x505'/>
    </panic>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
	vm_virsh define "$st/$name.xml" >/dev/null
}

vm_start() {
	local name=${1:?usage: vm_start NAME}
	vm_virsh start "$name" >/dev/null
}

# Path of the serial console file, from the domain's XML.
vm_console() {
	local name=${1:?usage: vm_console NAME}
	vm_virsh dumpxml --inactive "$name" 2>/dev/null | awk '
		/<serial type=.file.>/ { s = 1 }
		s && /<source path=/ {
			sub(/.*<source path=./, ""); sub(/[\047"].*/, "")
			gsub(/&apos;/, "\047"); gsub(/&quot;/, "\""); gsub(/&lt;/, "<")
			gsub(/&gt;/, ">"); gsub(/&amp;/, "\\&"); print; exit
		}'
}

# Prints what a failing wait should show: domain state, console and QEMU
# log tails.
_vm_diag() {
	local name=$1 con
	con=$(vm_console "$name")
	_vm_log "domain $name state: $(vm_virsh domstate --reason "$name" 2>&1 || true)"
	if [[ -n $con && -r $con ]]; then
		_vm_log "console $con (last lines):"
		tail -n 15 "$con" | tr -d '\r' | sed 's/^/    /' >&2
	fi
	if [[ -r /var/log/libvirt/qemu/$name.log ]]; then
		_vm_log "/var/log/libvirt/qemu/$name.log (last lines):"
		tail -n 5 "/var/log/libvirt/qemu/$name.log" | sed 's/^/    /' >&2
	fi
}

# running, or paused for a moment (an instant restore pauses its guest
# for each pivot): QEMU is there and the wait goes on
_vm_running() {
	local st
	st=$(vm_virsh domstate "$1" 2>/dev/null)
	[[ $st == running || $st == paused ]]
}

vm_wait_console() {
	local name=${1:?usage: vm_wait_console NAME REGEX [TIMEOUT]} re=${2:?} tmo=${3:-120} con end
	con=$(vm_console "$name")
	[[ -n $con ]] || {
		_vm_log "domain $name has no file console"
		return 1
	}
	end=$((SECONDS + tmo))
	while ((SECONDS < end)); do
		[[ -r $con ]] && grep -Eq -- "$re" "$con" && return 0
		if ! _vm_running "$name"; then
			_vm_log "domain $name stopped while waiting for /$re/ on its console"
			_vm_diag "$name"
			return 1
		fi
		sleep 0.2
	done
	_vm_log "timeout (${tmo}s) waiting for /$re/ on the console of $name"
	_vm_diag "$name"
	return 1
}

vm_wait_ready() {
	vm_wait_console "${1:?usage: vm_wait_ready NAME [TIMEOUT]}" '^lbtest: ready' "${2:-120}"
}

# Highest N of the "lbtest: done N" console lines so far (0 if none).
vm_workload_last() {
	local con
	con=$(vm_console "${1:?usage: vm_workload_last NAME}")
	[[ -r $con ]] || {
		echo 0
		return 0
	}
	tr -d '\r' <"$con" | awk '
		/^lbtest: done [0-9]+$/ { if ($3 + 0 > max) max = $3 + 0 }
		END { print max + 0 }'
}

vm_wait_workload() {
	local name=${1:?usage: vm_wait_workload NAME N [TIMEOUT]} n=${2:?usage: vm_wait_workload NAME N [TIMEOUT]} tmo=${3:-120} end
	end=$((SECONDS + tmo))
	while ((SECONDS < end)); do
		(($(vm_workload_last "$name") >= n)) && return 0
		if ! _vm_running "$name"; then
			_vm_log "domain $name stopped while waiting for workload file $n"
			_vm_diag "$name"
			return 1
		fi
		sleep 0.2
	done
	_vm_log "timeout (${tmo}s) waiting for workload file $n in $name (last: $(vm_workload_last "$name"))"
	_vm_diag "$name"
	return 1
}

vm_agent() {
	local name=${1:?usage: vm_agent NAME JSON} json=${2:?usage: vm_agent NAME JSON}
	vm_virsh qemu-agent-command "$name" --timeout "${VM_AGENT_TIMEOUT:-10}" "$json"
}

vm_wait_agent() {
	local name=${1:?usage: vm_wait_agent NAME [TIMEOUT]} tmo=${2:-120} end
	end=$((SECONDS + tmo))
	while ((SECONDS < end)); do
		VM_AGENT_TIMEOUT=2 vm_agent "$name" '{"execute":"guest-ping"}' >/dev/null 2>&1 &&
			return 0
		if ! _vm_running "$name"; then
			_vm_log "domain $name stopped while waiting for its guest agent"
			_vm_diag "$name"
			return 1
		fi
		sleep 0.2
	done
	_vm_log "timeout (${tmo}s) waiting for the guest agent of $name"
	_vm_diag "$name"
	return 1
}

vm_guest_exec() {
	local name=${1:?usage: vm_guest_exec NAME CMD [ARG]...}
	shift
	[[ $# -ge 1 ]] || {
		_vm_log "usage: vm_guest_exec NAME CMD [ARG]..."
		return 2
	}
	local cmd=$1 args="" a reply pid end code sig data
	shift
	for a in "$@"; do
		args+="${args:+,}$(_vm_json_str "$a")"
	done
	if ! reply=$(vm_agent "$name" "{\"execute\":\"guest-exec\",\"arguments\":{\"path\":$(_vm_json_str "$cmd"),\"arg\":[$args],\"capture-output\":true}}" 2>&1); then
		_vm_log "guest-exec $cmd in $name failed: $reply"
		return 125
	fi
	pid=$(sed -n 's/.*"pid": *\([0-9][0-9]*\).*/\1/p' <<<"$reply")
	[[ -n $pid ]] || {
		_vm_log "guest-exec: unexpected reply: $reply"
		return 125
	}
	end=$((SECONDS + ${VM_EXEC_TIMEOUT:-60}))
	while :; do
		if ! reply=$(vm_agent "$name" "{\"execute\":\"guest-exec-status\",\"arguments\":{\"pid\":$pid}}" 2>&1); then
			_vm_log "guest-exec-status $pid in $name failed: $reply"
			return 125
		fi
		[[ $reply =~ \"exited\":\ *true ]] && break
		if ((SECONDS >= end)); then
			_vm_log "guest-exec: '$cmd' still running after ${VM_EXEC_TIMEOUT:-60}s"
			return 124
		fi
		sleep 0.1
	done
	data=$(sed -n 's/.*"out-data": *"\([^"]*\)".*/\1/p' <<<"$reply")
	[[ -z $data ]] || base64 -d <<<"$data"
	data=$(sed -n 's/.*"err-data": *"\([^"]*\)".*/\1/p' <<<"$reply")
	[[ -z $data ]] || base64 -d <<<"$data" >&2
	code=$(sed -n 's/.*"exitcode": *\(-\{0,1\}[0-9][0-9]*\).*/\1/p' <<<"$reply")
	sig=$(sed -n 's/.*"signal": *\([0-9][0-9]*\).*/\1/p' <<<"$reply")
	if [[ -n $sig ]]; then
		return $((128 + sig))
	fi
	return "${code:-125}"
}

vm_destroy() {
	local name=${1:?usage: vm_destroy NAME}
	vm_virsh domstate "$name" >/dev/null 2>&1 || return 0
	vm_virsh destroy "$name" >/dev/null 2>&1 || true
	vm_virsh undefine "$name" --snapshots-metadata --checkpoints-metadata \
		>/dev/null 2>&1 ||
		vm_virsh undefine "$name" >/dev/null 2>&1 || true
	return 0
}

vm_cleanup_all() {
	local prefix=${1:?usage: vm_cleanup_all PREFIX} d
	while read -r d; do
		[[ -n $d && $d == "$prefix"* ]] && vm_destroy "$d"
	done < <(vm_virsh list --all --name 2>/dev/null || true)
	return 0
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	if [[ ${1:-} == vm_* ]] && declare -F "$1" >/dev/null; then
		"$@"
	else
		echo "usage: $0 vm_FUNCTION ARGS... (see the header of $0)" >&2
		exit 2
	fi
fi
