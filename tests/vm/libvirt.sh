#!/bin/bash
# Brings a libvirtd for the livebackup VM tests up and down, without systemd.
#   libvirt.sh up STATEDIR    use the libvirtd answering on qemu:///system if
#                             there is one (recorded as not ours), else set up
#                             users, dirs, qemu.conf (the existing one is
#                             backed up) and start virtlogd + libvirtd with
#                             pid files in STATEDIR; waits until virsh answers
#   libvirt.sh down STATEDIR  stops only what `up` started, by recorded PID,
#                             and restores /etc/libvirt/qemu.conf
#   libvirt.sh status STATEDIR
# Sourcing it defines lv_up, lv_down, lv_status, lv_answers, lv_uri and does
# not change the caller's shell options; executed, it runs with
# set -euo pipefail. Environment: LB_LIBVIRT_TIMEOUT (s, default 60);
# LB_QEMU_USER (default root): who QEMU runs as (user and group), with
# libvirt's dynamic ownership and remembered owners when not root, as on
# a stock Debian host (libvirt-qemu).
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	set -euo pipefail
fi

LV_QEMU_CONF=${LV_QEMU_CONF:-/etc/libvirt/qemu.conf}
LV_MARK='# written by livebackup tests/vm/libvirt.sh'
LV_PACKAGES=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
	qemu-system-x86 qemu-utils)

lv_log() { echo "libvirt.sh: $*" >&2; }

lv_uri() { echo "qemu:///system"; }

# True when a libvirtd answers on qemu:///system.
lv_answers() {
	virsh -c "$(lv_uri)" version >/dev/null 2>&1
}

# PIDs of running processes whose command name is $1 (read-only /proc scan,
# used to detect a daemon that is not ours; never used to kill anything).
_lv_pids_named() {
	local c
	for c in /proc/[0-9]*/comm; do
		c=${c#/proc/}
		c=${c%/comm}
		_lv_pid_is "$c" "$1" && echo "$c"
	done
	return 0
}

# True if PID $1 is alive (not a zombie: PID 1 may be slow to reap) and its
# command name is $2.
_lv_pid_is() {
	local stat
	[[ $1 =~ ^[0-9]+$ && "$(cat "/proc/$1/comm" 2>/dev/null)" == "$2" ]] || return 1
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat:0:1} != Z ]]
}

_lv_install_missing() {
	local missing=() t
	local -A pkg_of=([virsh]=libvirt-clients [libvirtd]=libvirt-daemon
		[virtlogd]=libvirt-daemon [qemu-system-x86_64]=qemu-system-x86
		[qemu-img]=qemu-utils)
	for t in "${!pkg_of[@]}"; do
		command -v "$t" >/dev/null 2>&1 || missing+=("${pkg_of[$t]}")
	done
	[[ -e /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so ]] ||
		missing+=(libvirt-daemon-driver-qemu)
	((${#missing[@]} == 0)) && return 0
	lv_log "installing ${missing[*]} (not libvirt-daemon-system: it pulls in systemd)"
	apt-get update -qq >&2 &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends "${LV_PACKAGES[@]}" >&2
}

_lv_write_qemu_conf() { # STATEDIR
	if [[ ! -e $1/qemu.conf.orig && ! -e $1/qemu.conf.none ]]; then
		if [[ -e $LV_QEMU_CONF ]] && ! grep -qF "$LV_MARK" "$LV_QEMU_CONF"; then
			cp -p "$LV_QEMU_CONF" "$1/qemu.conf.orig" || return 1
		else
			# none, or a stale one of ours from a run that was never brought down
			: >"$1/qemu.conf.none"
		fi
	fi
	mkdir -p "$(dirname "$LV_QEMU_CONF")"
	cat >"$LV_QEMU_CONF.lbtmp" <<EOF || return 1
$LV_MARK (state: $1)
# it restores the previous file (or removes this one) in 'down'.
user = "${LB_QEMU_USER:-root}"
group = "${LB_QEMU_USER:-root}"
dynamic_ownership = $([[ ${LB_QEMU_USER:-root} == root ]] && echo 0 || echo 1)
remember_owner = $([[ ${LB_QEMU_USER:-root} == root ]] && echo 0 || echo 1)
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "logd"
EOF
	mv "$LV_QEMU_CONF.lbtmp" "$LV_QEMU_CONF"
}

_lv_restore_qemu_conf() { # STATEDIR
	if [[ -e $1/qemu.conf.orig ]]; then
		cp -p "$1/qemu.conf.orig" "$LV_QEMU_CONF" && rm -f "$1/qemu.conf.orig"
	elif [[ -e $1/qemu.conf.none ]]; then
		if [[ -e $LV_QEMU_CONF ]] && grep -qF "$LV_MARK" "$LV_QEMU_CONF"; then
			rm -f "$LV_QEMU_CONF"
		fi
		rm -f "$1/qemu.conf.none"
	fi
}

# Stops PID $1 if it still is a $2 process: SIGTERM, then SIGKILL after $3 s.
_lv_stop_pid() {
	local pid=$1 name=$2 tmo=${3:-15} i
	_lv_pid_is "$pid" "$name" || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < tmo * 10; i++)); do
		_lv_pid_is "$pid" "$name" || return 0
		sleep 0.1
	done
	lv_log "$name ($pid) ignored SIGTERM for ${tmo}s: SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
}

# lv_up STATEDIR: see the header.
lv_up() {
	local st=${1:?usage: lv_up STATEDIR} tmo=${LB_LIBVIRT_TIMEOUT:-60} i
	mkdir -p "$st" || return 1
	st=$(cd "$st" && pwd) || return 1
	if [[ "$(cat "$st/libvirt.owner" 2>/dev/null)" == ours ]] &&
		_lv_pid_is "$(cat "$st/libvirtd.pid" 2>/dev/null)" libvirtd && lv_answers; then
		lv_log "already up (ours, state $st)"
		return 0
	fi
	if lv_answers; then
		echo foreign >"$st/libvirt.owner"
		lv_log "using the libvirtd already running on $(lv_uri) (not ours)"
		return 0
	fi
	if [[ -n "$(_lv_pids_named libvirtd)" ]]; then
		# a libvirtd that does not answer (yet, or any more: one that is
		# exiting): give it a moment, never kill it
		for ((i = 0; i < 100; i++)); do
			lv_answers && break
			[[ -z "$(_lv_pids_named libvirtd)" ]] && break
			sleep 0.1
		done
		if lv_answers; then
			echo foreign >"$st/libvirt.owner"
			lv_log "using the libvirtd already running on $(lv_uri) (not ours)"
			return 0
		fi
		if [[ -n "$(_lv_pids_named libvirtd)" ]]; then
			lv_log "ERROR: a libvirtd process ($(_lv_pids_named libvirtd | tr '\n' ' ')) runs but does not answer on $(lv_uri)"
			return 1
		fi
	fi

	_lv_install_missing || return 1
	echo ours >"$st/libvirt.owner"
	# on failure, undo what was done (qemu.conf, a started virtlogd)
	_lv_start_ours "$st" "$tmo" || {
		lv_down "$st"
		return 1
	}
}

_lv_start_ours() { # STATEDIR TIMEOUT
	local st=$1 tmo=$2 i pid
	getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu || return 1
	getent passwd libvirt-qemu >/dev/null ||
		useradd --system -g libvirt-qemu -d /var/lib/libvirt -s /usr/sbin/nologin \
			libvirt-qemu || return 1
	mkdir -p /var/log/libvirt/qemu /var/lib/libvirt/qemu /var/cache/libvirt/qemu \
		/run/libvirt || return 1
	_lv_write_qemu_conf "$st" || return 1
	cat >"$st/libvirtd.conf" <<EOF || return 1
# livebackup tests/vm/libvirt.sh: root-only socket, no authentication
auth_unix_rw = "none"
auth_unix_ro = "none"
unix_sock_rw_perms = "0700"
log_outputs = "3:file:$st/libvirtd.log"
EOF

	if [[ -n "$(_lv_pids_named virtlogd)" ]]; then
		lv_log "using the virtlogd already running (not ours)"
	else
		rm -f "$st/virtlogd.pid"
		virtlogd --daemon --pid-file "$st/virtlogd.pid" || {
			lv_log "ERROR: virtlogd did not start (see /var/log/libvirt/virtlogd.log)"
			return 1
		}
	fi
	rm -f "$st/libvirtd.pid"
	: >"$st/libvirtd.log"
	libvirtd --daemon --config "$st/libvirtd.conf" --pid-file "$st/libvirtd.pid" \
		>>"$st/libvirtd.log" 2>&1 || {
		lv_log "ERROR: libvirtd --daemon failed; log tail:"
		tail -n 30 "$st/libvirtd.log" >&2
		return 1
	}
	for ((i = 0; i < tmo * 10; i++)); do
		lv_answers && break
		pid=$(cat "$st/libvirtd.pid" 2>/dev/null || true)
		if ((i > 20)) && ! _lv_pid_is "$pid" libvirtd; then
			break
		fi
		sleep 0.1
	done
	if ! lv_answers; then
		lv_log "ERROR: libvirtd does not answer on $(lv_uri) after ${tmo}s; log tail:"
		tail -n 30 "$st/libvirtd.log" >&2
		return 1
	fi
	lv_log "libvirtd up (pid $(cat "$st/libvirtd.pid"), state $st)"
}

# lv_down STATEDIR: see the header. Domains still running under a libvirtd
# that `up` started are destroyed first (QEMU outlives libvirtd).
lv_down() {
	local st=${1:?usage: lv_down STATEDIR} owner dom pid
	[[ -d $st ]] || return 0
	owner=$(cat "$st/libvirt.owner" 2>/dev/null || true)
	if [[ $owner == ours ]]; then
		pid=$(cat "$st/libvirtd.pid" 2>/dev/null || true)
		if _lv_pid_is "$pid" libvirtd && lv_answers; then
			while read -r dom; do
				[[ -n $dom ]] || continue
				lv_log "destroying domain $dom, still running under our libvirtd"
				virsh -c "$(lv_uri)" destroy "$dom" >/dev/null 2>&1 || true
			done < <(virsh -c "$(lv_uri)" list --name --state-running 2>/dev/null)
		fi
		_lv_stop_pid "$pid" libvirtd 15
		if [[ -e $st/virtlogd.pid ]]; then
			_lv_stop_pid "$(cat "$st/virtlogd.pid" 2>/dev/null || true)" virtlogd 10
		fi
		rm -f "$st/libvirtd.pid" "$st/virtlogd.pid"
		lv_log "stopped what up started (libvirtd, virtlogd)"
	fi
	_lv_restore_qemu_conf "$st"
	rm -f "$st/libvirt.owner"
}

lv_status() {
	local st=${1:?usage: lv_status STATEDIR}
	echo "owner: $(cat "$st/libvirt.owner" 2>/dev/null || echo none)"
	echo "libvirtd pid: $(cat "$st/libvirtd.pid" 2>/dev/null || echo -)"
	echo "virtlogd pid: $(cat "$st/virtlogd.pid" 2>/dev/null || echo -)"
	if lv_answers; then echo "answers: yes"; else echo "answers: no"; fi
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	case ${1:-} in
	up) lv_up "${2:?usage: $0 up STATEDIR}" ;;
	down) lv_down "${2:?usage: $0 down STATEDIR}" ;;
	status) lv_status "${2:?usage: $0 status STATEDIR}" ;;
	*)
		echo "usage: $0 up|down|status STATEDIR" >&2
		exit 2
		;;
	esac
fi
