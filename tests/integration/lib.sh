# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# Helpers for the integration tests: a scratch directory, processes tracked
# by PID and stopped on exit, assertions that print what they compared, and
# a private sshd on 127.0.0.1. Every test sources this file first.

set -euo pipefail

LB_SRC=${LB_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
LB_BUILD=${LB_BUILD:-$LB_SRC/build}
export PATH="$LB_BUILD/agent:$LB_BUILD/backupd:$PATH"
LIVEBACKUP=$LB_BUILD/agent/livebackup
BACKUPD=$LB_BUILD/backupd/backupd

T=$(mktemp -d "${TMPDIR:-/tmp}/lbtest.XXXXXX")
declare -a LB_PIDS=()
declare -a LB_MOUNTS=()
LB_TEST_NAME=$(basename "$0" .sh)
LB_CHECKS=0

# lb_cleanup [RC]: RC defaults to the status the script is exiting with
# (a trap that runs other commands first passes it on).
lb_cleanup() {
    local rc=${1:-$?}
    local p m
    for p in "${LB_PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${LB_PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    for m in "${LB_MOUNTS[@]}"; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
    if [[ $rc -ne 0 && -n ${LB_KEEP:-} ]]; then
        echo "$LB_TEST_NAME: keeping $T" >&2
    else
        rm -rf "$T"
    fi
    if [[ $rc -eq 0 ]]; then
        echo "$LB_TEST_NAME: PASS ($LB_CHECKS checks)"
    else
        echo "$LB_TEST_NAME: FAIL" >&2
    fi
}
trap lb_cleanup EXIT

# hold_lock MODE FILE: hold an flock (-x or -s) on FILE in a background
# process (recorded, stopped on exit); LOCK_PID is that process, which is
# itself the holder (exec), so killing it releases the lock.
hold_lock() {
    (
        exec 9>>"$2"
        flock "$1" 9
        exec sleep 300
    ) &
    LOCK_PID=$!
    lb_track "$LOCK_PID"
    sleep 0.3
}

# release_lock: stop the process hold_lock started.
release_lock() {
    kill "$LOCK_PID" 2>/dev/null || true
    wait "$LOCK_PID" 2>/dev/null || true
}

# Track a background process so it is stopped on exit.
lb_track() { LB_PIDS+=("$1"); }

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

ok() {
    LB_CHECKS=$((LB_CHECKS + 1))
    echo "ok $LB_CHECKS - $*"
}

# A sanitizer report (ASan, LeakSanitizer, UBSan) fails the test even
# when the command was expected to fail.
no_sanitizer_report() {
    if grep -Eq "ERROR: (Address|Leak)Sanitizer|runtime error:" "$@" 2>/dev/null; then
        cat "$@" >&2
        fail "sanitizer report"
    fi
}

# run_ok CMD...: must succeed.
run_ok() {
    if ! "$@" >"$T/out" 2>"$T/err"; then
        cat "$T/out" "$T/err" >&2
        fail "command failed: $*"
    fi
    no_sanitizer_report "$T/err"
}

# expect_fail REGEX CMD...: must fail with a message matching REGEX (on
# stdout or stderr), and not with a usage error (2) or a crash (>= 128).
expect_fail() {
    local re=$1 rc=0
    shift
    "$@" >"$T/out" 2>"$T/err" || rc=$?
    no_sanitizer_report "$T/err"
    if [[ $rc -eq 0 ]]; then
        cat "$T/out" "$T/err" >&2
        fail "expected failure: $*"
    fi
    if [[ $rc -ge 128 || $rc -eq 2 ]]; then
        cat "$T/out" "$T/err" >&2
        fail "exit status $rc (crash or usage error): $*"
    fi
    if ! cat "$T/out" "$T/err" | tr '\n' ' ' | grep -Eq -- "$re"; then
        cat "$T/out" "$T/err" >&2
        fail "message does not match /$re/: $*"
    fi
    ok "fails clearly: $(head -c 160 "$T/err" | tr '\n' ' ')"
}

# same_image A FMT_A B FMT_B: guest-visible contents identical.
same_image() {
    qemu-img compare -q -f "$2" -F "$4" "$1" "$3" ||
        fail "images differ: $1 ($2) vs $3 ($4)"
}

# The guest-visible content of an image chain, as a raw file (the truth a
# restore is compared with).
snapshot_raw() {
    qemu-img convert -O raw "$1" "$2"
}

# Allocated bytes of a file.
alloc_bytes() { echo $(($(stat -c %b "$1") * $(stat -c %B "$1"))); }

# A field of the last JSON event line of a given type in FILE.
json_field() {
    local file=$1 event=$2 key=$3
    grep "\"event\":\"$event\"" "$file" | tail -n 1 |
        sed -n "s/.*\"$key\":\(\"[^\"]*\"\|[0-9]*\).*/\1/p" | tr -d '"'
}

# mkimage FILE FMT MIB: an image of MIB MiB with patterns at scattered
# offsets (4 KiB aligned, spread over the whole image).
mkimage() {
    local file=$1 fmt=$2 mib=$3 i off
    qemu-img create -q -f "$fmt" "$file" "${mib}M"
    local -a cmds=()
    for i in 0 3 17 64 129 300 511 1023 2047 4001; do
        off=$(((i * 7877 % (mib * 256 - 4)) * 4096))
        cmds+=(-c "write -P $((i % 250 + 1)) $off 12k")
    done
    qemu-io -f "$fmt" "${cmds[@]}" "$file" >/dev/null
}

# random_file FILE MIB: incompressible data.
random_file() { head -c "$(($2 << 20))" /dev/urandom >"$1"; }

# write_random IMG FMT OFFSET LEN: incompressible data into an image.
write_random() {
    local img=$1 fmt=$2 off=$3 len=$4
    head -c "$len" /dev/urandom >"$T/rnd.bin"
    qemu-io -f "$fmt" -c "write -s $T/rnd.bin $off $len" "$img" >/dev/null
}

# overlay NEW BACKING BACKING_FMT: a tracking-style overlay.
overlay() {
    qemu-img create -q -f qcow2 -o cluster_size=128k,extended_l2=on \
        -b "$2" -F "$3" "$1"
}

# ---- a private sshd on 127.0.0.1 -------------------------------------------

# sshd_start: host key, user key, authorized_keys for root in $T/ssh; sets
# SSH_PORT and LB_RSH (the --rsh value).
sshd_start() {
    local d=$T/ssh i
    mkdir -p "$d" /run/sshd
    chmod 700 "$d"
    ssh-keygen -q -t ed25519 -N '' -f "$d/host_key"
    ssh-keygen -q -t ed25519 -N '' -f "$d/user_key"
    cp "$d/user_key.pub" "$d/authorized_keys"
    chmod 600 "$d/authorized_keys"
    for i in $(seq 1 50); do
        SSH_PORT=$((20000 + RANDOM % 20000))
        (exec 3<>"/dev/tcp/127.0.0.1/$SSH_PORT") 2>/dev/null || break
    done
    cat >"$d/sshd_config" <<EOF
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $d/host_key
PidFile $d/sshd.pid
AuthorizedKeysFile $d/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
LogLevel ERROR
EOF
    /usr/sbin/sshd -D -e -f "$d/sshd_config" 2>"$d/sshd.log" &
    SSHD_PID=$!
    lb_track "$SSHD_PID"
    for i in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$SSH_PORT") 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    LB_RSH="ssh -i $d/user_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR"
    export SSH_PORT LB_RSH
}
