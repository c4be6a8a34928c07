# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# Helpers for the integration tests: a scratch directory, processes tracked
# by PID and stopped on exit, assertions that print what they compared, and
# a private sshd on 127.0.0.1. Every test sources this file first.
#
# Waiting: never a fixed sleep. A test waits for the event itself (a line
# a process writes, a lock it can take, a file that appears) with
# wait_until, which fails the test, saying what it waited for, after a
# deadline meant for a loaded 2-core machine; it returns as soon as the
# event happened.

set -euo pipefail
# Under pipefail a reader that stops early fails the pipeline when its
# producer is still writing (SIGPIPE): `ldd X | grep -q asan` was false
# now and then. So `| grep PATTERN >/dev/null`, never `| grep -q`, and
# `| sed -n 1p`, never `| head -n 1` (scripts/lint.sh checks).

LB_SRC=${LB_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
LB_BUILD=${LB_BUILD:-$LB_SRC/build}
export PATH="$LB_BUILD/agent:$LB_BUILD/backupd:$PATH"
LIVEBACKUP=$LB_BUILD/agent/livebackup
BACKUPD=$LB_BUILD/backupd/backupd
# `init` encrypts unless told otherwise (README, "Encryption"); the tests
# of everything else make unencrypted repositories, the encryption tests
# say --encryption themselves. No passphrase leaks in from outside.
export LIVEBACKUP_ENCRYPTION=none
unset LIVEBACKUP_PASSPHRASE LIVEBACKUP_PASSPHRASE_FILE LIVEBACKUP_NEW_PASSPHRASE \
    LIVEBACKUP_NEW_PASSPHRASE_FILE LIVEBACKUP_KEY_FILE LIVEBACKUP_KEYS_DIR \
    CREDENTIALS_DIRECTORY
# Nor settings: no livebackup.conf of the host or the user (an empty
# LIVEBACKUP_CONFIG names no file), none from the environment.
export LIVEBACKUP_CONFIG=
unset LIVEBACKUP_REPO LIVEBACKUP_RSH LIVEBACKUP_REMOTE_BACKUPD \
    LIVEBACKUP_BWLIMIT LIVEBACKUP_COMPRESS_LEVEL LIVEBACKUP_KEEP_LAST \
    LIVEBACKUP_KEEP_HOURLY LIVEBACKUP_KEEP_DAILY LIVEBACKUP_KEEP_WEEKLY \
    LIVEBACKUP_KEEP_MONTHLY LIVEBACKUP_KEEP_YEARLY LIVEBACKUP_ON_FAILURE \
    LIVEBACKUP_METRICS_FILE LIVEBACKUP_OVERLAY_DIR

T=$(mktemp -d "${TMPDIR:-/tmp}/lbtest.XXXXXX")
# The agent's own state (the VM journal, the parents of image
# incrementals): the test's, never the host's.
export LIVEBACKUP_STATE_DIR=$T/state
declare -a LB_PIDS=()
declare -a LB_DAEMONS=()
declare -a LB_MOUNTS=()
declare -a LB_LOGS=()
declare -a LB_LOOPS=()
LB_TEST_NAME=$(basename "$0" .sh)
LB_CHECKS=0

# The sanitizer reports a test looks for in what its programs print.
LB_SANITIZER_RE="ERROR: (Address|Leak)Sanitizer|runtime error:"

# lb_alive PID: PID is a live process. A process that ended stays a
# zombie until its parent reaps it (here PID 1 may be slow to): a zombie
# is not alive.
lb_alive() {
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    st=${st##*) }
    [[ ${st:0:1} != Z ]]
}

# _lb_our_child PID: PID is still an unreaped child of the test's shell. A
# recorded process that ended and was reaped may have its number reused by
# anyone's process (pid_max is 32768 on these machines): never signal it.
_lb_our_child() {
    local st ppid
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    st=${st##*) }
    read -r _ ppid _ <<<"$st"
    [[ $ppid == "$$" ]]
}

# lb_cleanup [RC]: RC defaults to the status the script is exiting with
# (a trap that runs other commands first passes it on). Stops the recorded
# processes, then looks for sanitizer reports in the recorded logs (a
# daemon writes its LeakSanitizer report when it exits): one fails the
# test.
lb_cleanup() {
    local rc=${1:-$?}
    local p m f
    # a process an lb_stop_hook stopped, if it is still this test's: first,
    # so that what waits on it can end
    if [[ -s $T/stopped.pid ]]; then
        p=$(cat "$T/stopped.pid")
        if tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -F "$T/" >/dev/null; then
            kill -KILL "$p" 2>/dev/null || true
        fi
    fi
    for p in "${LB_PIDS[@]}"; do
        if _lb_our_child "$p"; then
            kill -TERM "$p" 2>/dev/null || true
        fi
    done
    for p in "${LB_PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    for p in "${LB_DAEMONS[@]}"; do
        if tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -F "$T/" >/dev/null; then
            kill -TERM "$p" 2>/dev/null || true
        fi
    done
    for f in "${LB_LOGS[@]}"; do
        if grep -Eq "$LB_SANITIZER_RE" "$f" 2>/dev/null; then
            echo "FAIL: sanitizer report in $f:" >&2
            grep -E -A 30 "$LB_SANITIZER_RE" "$f" | head -n 120 >&2
            [[ $rc -ne 0 ]] || rc=1
        fi
    done
    for m in "${LB_MOUNTS[@]}"; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
    for m in "${LB_LOOPS[@]}"; do
        losetup -d "$m" 2>/dev/null || true
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
    exit "$rc"
}
trap lb_cleanup EXIT

# lb_watch_log FILE: FILE (the log of a daemon or of a program run in the
# background) is searched for sanitizer reports when the test ends.
lb_watch_log() { LB_LOGS+=("$1"); }

# lb_listen_start REPO SOCKET [OPTION...]: `backupd listen` on REPO and
# SOCKET with OPTIONs (-v), its stderr appended to $T/daemon.log (watched);
# through $LB_LISTEN_WRAP if set (a program that execs its arguments, so
# the pid is still backupd's). Returns once it serves, as DAEMON (tracked);
# lb_listen_up says it still does.
lb_listen_start() {
    LB_LISTEN_REPO=$1 LB_LISTEN_SOCK=$2
    shift 2
    [[ " ${LB_LOGS[*]} " == *" $T/daemon.log "* ]] || lb_watch_log "$T/daemon.log"
    ${LB_LISTEN_WRAP:+"$LB_LISTEN_WRAP"} "$BACKUPD" listen --repo "$LB_LISTEN_REPO" \
        --socket "$LB_LISTEN_SOCK" --log-stderr -v "$@" 2>>"$T/daemon.log" &
    DAEMON=$!
    lb_track "$DAEMON"
    wait_until 60 "backupd listen to serve $LB_LISTEN_REPO on $LB_LISTEN_SOCK" lb_listen_up
}

# The daemon of lb_listen_start runs (else fail, with its log) and serves
# (its socket and REPO/listen are there).
lb_listen_up() {
    lb_alive "$DAEMON" || fail "backupd listen exited: $(cat "$T/daemon.log")"
    [[ -S $LB_LISTEN_SOCK && -f $LB_LISTEN_REPO/listen ]]
}

# wait_until SECONDS WHAT CMD...: run CMD every 0.1 s until it succeeds;
# after SECONDS, fail saying what was awaited.
wait_until() {
    local tmo=$1 what=$2 end
    shift 2
    end=$((SECONDS + tmo))
    until "$@"; do
        ((SECONDS < end)) || fail "timeout (${tmo} s) waiting for $what"
        sleep 0.1
    done
}

# lb_stall PID AGENT UNDO: stop the server process PID (SIGSTOP) under a
# running AGENT and wait (30 s at most) for the agent to give up on it;
# then send PID the signal UNDO (CONT to let it run on, KILL to end it),
# which the EXIT trap sends too if the test fails first. LB_STALL_MS: how
# long the agent took.
lb_stall() {
    local pid=$1 agent=$2 undo=$3 t0
    trap 'rc=$?; kill -'"$undo $pid"' 2>/dev/null || true; lb_cleanup "$rc"' EXIT
    kill -STOP "$pid"
    t0=$(date +%s%N)
    wait_until 30 "the agent to give up on a stopped server (pid $pid)" eval "! lb_alive $agent"
    LB_STALL_MS=$((($(date +%s%N) - t0) / 1000000))
    kill -"$undo" "$pid" 2>/dev/null || true
}

# lb_stop_hook POINT[@N]: a LIVEBACKUP_FAULT_HOOK that stops (SIGSTOP) the
# process that reaches POINT (the N-th time), once in the test: its pid
# goes to $T/stopped.pid (an earlier one's is removed now), and
# lb_cleanup ends it if it is still there.
lb_stop_hook() {
    rm -f "$T/stopped.pid"
    echo "$1:[ -e $T/stopped.pid ] || { echo \$PPID >$T/stopped.pid; kill -STOP \$PPID; }"
}

# lb_liar FILE [LIAR-OPTION...] -- CMD...: FILE becomes a script that runs
# CMD, with the script's arguments, behind `lbhostile liar`
# (tests/hostile/liar.c), the liar's words appended to $T/liar.log: the
# --rsh or --remote-backupd of a server that lies.
lb_liar() {
    local f=$1
    shift
    printf '#!/bin/sh\nexec %q liar %s "$@" 2>>%q\n' "$LB_BUILD/tests/lbhostile" "$*" \
        "$T/liar.log" >"$f"
    chmod +x "$f"
}

# A pipe a background process signals readiness on: _lb_ready_open sets
# LB_READY (its path; the background process writes one line to it) and
# opens it; _lb_ready_read SECONDS WHAT reads that line into LB_READY_LINE
# or fails (a process that died before writing it never does).
_lb_ready_open() {
    LB_READY=$(mktemp -u "$T/.ready.XXXXXX")
    mkfifo "$LB_READY"
    # read-write: opening never blocks, whether or not the writer lives
    exec {_lb_ready_fd}<>"$LB_READY"
}
_lb_ready_read() {
    LB_READY_LINE=""
    read -r -t "$1" -u "$_lb_ready_fd" LB_READY_LINE || true
    exec {_lb_ready_fd}>&-
    rm -f "$LB_READY"
    [[ -n $LB_READY_LINE ]] || fail "timeout ($1 s) waiting for $2"
}

# hold_lock MODE FILE: hold an flock (-x or -s) on FILE in a background
# process (recorded, stopped on exit); LOCK_PID is that process, which is
# itself the holder (exec), so killing it releases the lock. Returns once
# the lock is held (the holder says so).
hold_lock() {
    _lb_ready_open
    (
        exec 9>>"$2"
        flock "$1" 9
        echo locked >"$LB_READY"
        exec sleep 300
    ) &
    LOCK_PID=$!
    lb_track "$LOCK_PID"
    _lb_ready_read 60 "the $1 lock on $2"
}

# release_lock: stop the process hold_lock started.
release_lock() {
    if _lb_our_child "$LOCK_PID"; then
        kill "$LOCK_PID" 2>/dev/null || true
    fi
    wait "$LOCK_PID" 2>/dev/null || true
}

# Track a background process so it is stopped on exit.
lb_track() { LB_PIDS+=("$1"); }

# hold_open PATH: a background process (recorded, stopped on exit) that
# holds PATH open for reading, from its fork on (no readiness to wait
# for); HOLD_PID is it, its name "sleep" (or "bash" before its exec).
# This shell keeps no copy: the programs a test runs would inherit it,
# and livebackup's own children (backupd) would be found holding it too.
# release_open ends it.
hold_open() {
    local fd
    exec {fd}<"$1"
    sleep 3600 <&"$fd" &
    HOLD_PID=$!
    exec {fd}<&-
    lb_track "$HOLD_PID"
}
release_open() {
    kill "$HOLD_PID" 2>/dev/null || true
    wait "$HOLD_PID" 2>/dev/null || true
}
# lb_track_daemon PID: a process that is not our child (a daemon that
# forked away, its pid from its pid file), stopped at the end like the
# others if it is still running and its command line still names $T (so
# never a process that got its pid since).
lb_track_daemon() { LB_DAEMONS+=("$1"); }

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
    if grep -Eq "$LB_SANITIZER_RE" "$@" 2>/dev/null; then
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
    if ! cat "$T/out" "$T/err" | tr '\n' ' ' | grep -E -- "$re" >/dev/null; then
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

# lb_columns RE FILE: for each line of FILE, the terminal column where
# its first match of the extended regex RE begins (wc -L in a UTF-8
# locale: "é" is one column, "服" two), one line each; a line without a
# match fails.
lb_columns() {
    local line pre
    while IFS= read -r line; do
        [[ $line =~ $1 ]] || fail "no $1 in: $line"
        pre=${line%%"${BASH_REMATCH[0]}"*}
        printf '%s\n' "$pre" | LC_ALL=C.UTF-8 wc -L
    done <"$2"
}

# json_field FILE EVENT KEY: the field KEY of the last JSON event of type
# EVENT in FILE (lines that are not JSON are skipped). A missing event or
# field is an error (exit status 1, a FAIL line on stderr), never an empty
# value: assign it (x=$(json_field ...), which set -e stops on) before
# comparing it, so that a missing field fails the test.
json_field() {
    local file=$1 event=$2 key=$3 v
    if ! v=$(jq -R -n -r --arg e "$event" --arg k "$key" '
        [inputs | (fromjson? // empty) | select(type == "object" and .event == $e)]
        | last
        | if . == null then error("no \"\($e)\" event")
          elif has($k) | not then error("its last \"\($e)\" event has no field \($k)")
          else .[$k] | tostring end' "$file" 2>&1); then
        echo "FAIL: $file: ${v#jq: error (at *): }" >&2
        return 1
    fi
    printf '%s\n' "$v"
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

# flip_bytes FILE OFFSET [COUNT]: invert COUNT bytes (default 1) of FILE
# at OFFSET, in place: always a change, whatever was there (a fixed byte
# written over random or compressed data is, once in 256, the same byte).
flip_bytes() {
    local f=$1 off=$2 n=${3:-1} b out=""
    for b in $(od -An -v -tu1 -j "$off" -N "$n" "$f"); do
        out+=$(printf '\\%03o' $((b ^ 255)))
    done
    [[ -n $out ]] || fail "flip_bytes: no byte at $off in $f"
    # shellcheck disable=SC2059 # the octal escapes are the format
    printf "$out" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
}

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

# ---- repository internals (store/FORMAT.md) -----------------------------------

# manifest_chunks MANIFEST DISK: the chunks a manifest (REPO/backups/ID)
# names for DISK, one line per ref: "WINDOW TYPE DIGEST" (TYPE 1 RAW, 2
# DELTA), windows in order, each window's stack bottom first. Read with
# perl (always there: perl-base is essential), by the layout FORMAT.md
# gives; a manifest that does not follow it is an error.
manifest_chunks() {
    perl -e '
        use strict;
        use warnings;
        my ($path, $want) = @ARGV;
        open(my $f, "<:raw", $path) or die "$path: $!\n";
        my $m = do { local $/; <$f> };
        my $at = 0;
        my $take = sub {
            my ($n) = @_;
            die "$path: truncated at $at\n" if $at + $n > length($m);
            my $b = substr($m, $at, $n);
            $at += $n;
            return $b;
        };
        my ($magic, $ver, $flags, $nd) = unpack("a8 n n N", $take->(16));
        die "$path: not a version 1 or 2 manifest\n"
            unless $magic eq "LBMANIF1" && ($ver == 1 || $ver == 2);
        $at = 64;
        for (1 .. $nd) {
            my ($dm, $nl) = unpack("N n", $take->(6));
            die "$path: bad disk magic at $at\n" unless $dm == 0x4C42444B;
            my $name = $take->($nl);
            my ($size, $ws, $fl, $nw) = unpack("Q> N N Q>", $take->(24));
            my $w = 0;
            while ($w < $nw) {
                my $depth = unpack("C", $take->(1));
                if ($depth == 0 && $ver == 2) {
                    # a run of empty windows
                    my $n = unpack("N", $take->(4));
                    die "$path: bad run at $at\n" if $n == 0 || $w + $n > $nw;
                    $w += $n;
                    next;
                }
                for (1 .. $depth) {
                    my ($type, $dg) = unpack("C a32", $take->(33));
                    print "$w $type ", unpack("H*", $dg), "\n"
                        if $name eq $want;
                }
                $w++;
            }
            my $ml = unpack("N", $take->(4));
            $take->($ml);
        }' "$1" "$2"
}

# pieces_found PATTERN DIR: how many files under DIR hold a piece of the
# file PATTERN: any of its 32-byte blocks (at offsets that are multiples
# of 32), at any offset of the file. A 64-byte piece of PATTERN anywhere
# holds one of them, so 0 means no file holds any 64-byte piece.
pieces_found() {
    find "$2" -type f -print0 | perl -0 -e '
        use strict;
        use warnings;
        my $pat = shift @ARGV;
        open(my $f, "<:raw", $pat) or die "$pat: $!\n";
        my $p = do { local $/; <$f> };
        my %blocks;
        for (my $i = 0; $i + 32 <= length($p); $i += 32) {
            $blocks{substr($p, $i, 32)} = 1;
        }
        my $found = 0;
        while (my $name = <STDIN>) {
            chomp $name;
            open(my $g, "<:raw", $name) or die "$name: $!\n";
            my $d = do { local $/; <$g> };
            next unless defined $d;
            for (my $j = 0; $j + 32 <= length($d); $j++) {
                if (exists $blocks{substr($d, $j, 32)}) {
                    print STDERR "piece of $pat in $name at $j\n";
                    $found++;
                    last;
                }
            }
        }
        print "$found\n";' "$1"
}

# manifest_swap_ref MANIFEST DISK: the first window of DISK that has a
# chunk gets the stack of the next such window instead, and the header's
# meta digest and the trailer are computed again (store/FORMAT.md): the
# file is a well-formed manifest naming chunks that exist, so only its
# MAC can tell it was changed.
manifest_swap_ref() {
    perl -e '
        use strict;
        use warnings;
        use Digest::SHA qw(sha256);
        my ($path, $want) = @ARGV;
        open(my $f, "<:raw", $path) or die "$path: $!\n";
        my $m = do { local $/; <$f> };
        close($f);
        my ($nd, $moff, $mlen) = unpack("x12 N Q> N", $m);
        my $at = 64;
        my @stacks; # [offset, length] of the first two non-empty stacks
        for (1 .. $nd) {
            my $nl = unpack("n", substr($m, $at + 4, 2));
            my $name = substr($m, $at + 6, $nl);
            $at += 6 + $nl;
            my $nw = unpack("x16 Q>", substr($m, $at, 24));
            $at += 24;
            for (1 .. $nw) {
                my $depth = unpack("C", substr($m, $at, 1));
                push @stacks, [$at, 1 + 33 * $depth]
                    if $depth && $name eq $want && @stacks < 2;
                $at += 1 + 33 * $depth;
            }
            $at += 4 + unpack("N", substr($m, $at, 4));
        }
        die "$path: fewer than two windows with chunks in $want\n" if @stacks < 2;
        my ($a, $b) = @stacks;
        die "$path: the two stacks differ in depth\n" if $a->[1] != $b->[1];
        substr($m, $a->[0], $a->[1]) = substr($m, $b->[0], $b->[1]);
        my $hdr = substr($m, 0, 32) . sha256(substr($m, $moff, $mlen));
        my $body = sha256(substr($m, 64, $moff + $mlen - 64));
        $m = $hdr . substr($m, 64, $moff + $mlen - 64) . sha256($hdr . $body);
        open($f, ">:raw", $path) or die "$path: $!\n";
        print $f $m;
        close($f) or die "$path: $!\n";' "$1" "$2"
}

# chunk_file REPO DIGEST: the path of a chunk file.# chunk_file REPO DIGEST: the path of a chunk file.
chunk_file() { echo "$1/chunks/${2:0:2}/$2"; }

# wait_sessions_ended REPO: every writer session of REPO ended (their
# processes may outlive the command that started them: a backupd whose
# agent was killed notices only when it reads its pipe). Each holds the
# flock on REPO/tmp/SESSION/.lock while it lives.
wait_sessions_ended() {
    local f fd=
    for f in "$1"/tmp/*/.lock; do
        [[ -e $f ]] || continue
        # read-only: flock(1) with a path would create a file the session
        # is removing (gone meanwhile: that session ended)
        { exec {fd}<"$f"; } 2>/dev/null || continue
        flock -x -w 120 "$fd" ||
            fail "a writer session of $1 still holds $f after 120 s"
        exec {fd}<&-
    done
}

# writer_sessions REPO: how many writer sessions REPO has (each holds the
# repository's shared lock from before its REPO/tmp/SESSION/.lock exists
# until after it is removed).
writer_sessions() {
    local f n=0
    for f in "$1"/tmp/*/.lock; do
        [[ -e $f ]] && n=$((n + 1))
    done
    echo "$n"
}

# loop_attach FILE: a loop device over FILE, detached when the test ends;
# sets LOOP_DEV.
loop_attach() {
    LOOP_DEV=$(losetup -f --show "$1") || fail "losetup -f --show $1 failed"
    LB_LOOPS+=("$LOOP_DEV")
}

# ---- a private sshd on 127.0.0.1 -------------------------------------------

# _lb_free_port_pick: a port at random below the kernel's ephemeral range
# (no client socket is ever bound there), above 10000.
_lb_free_port_pick() {
    local lo hi
    read -r lo hi </proc/sys/net/ipv4/ip_local_port_range
    if ((lo > 11000)); then
        echo $((10000 + RANDOM % (lo - 10000)))
    else
        echo $((hi + 1 + RANDOM % (65535 - hi)))
    fi
}

# sshd_start: host key, user key, authorized_keys for root in $T/ssh; sets
# SSH_PORT, SSHD_PID and LB_RSH (the --rsh value). Returns once the sshd
# says it listens. The port is picked at random; another process (a test
# run in another tree) may hold it: sshd then says so and exits, and
# another port is picked. Where the machine has an IPv6 loopback (::1 on
# lo), the sshd listens there too and SSH_V6=1.
sshd_start() {
    local d=$T/ssh try end
    SSH_V6=0
    if ip -6 addr show dev lo 2>/dev/null | grep 'inet6 ::1/128' >/dev/null; then
        SSH_V6=1
    fi
    mkdir -p "$d" /run/sshd
    chmod 700 "$d"
    ssh-keygen -q -t ed25519 -N '' -f "$d/host_key"
    ssh-keygen -q -t ed25519 -N '' -f "$d/user_key"
    cp "$d/user_key.pub" "$d/authorized_keys"
    chmod 600 "$d/authorized_keys"
    for try in $(seq 1 20); do
        SSH_PORT=$(_lb_free_port_pick)
        cat >"$d/sshd_config" <<EOF
Port $SSH_PORT
ListenAddress 127.0.0.1
$( ((SSH_V6)) && echo "ListenAddress [::1]:$SSH_PORT")
HostKey $d/host_key
PidFile $d/sshd.pid
AuthorizedKeysFile $d/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
LogLevel INFO
EOF
        /usr/sbin/sshd -D -e -f "$d/sshd_config" 2>"$d/sshd.log" &
        SSHD_PID=$!
        lb_track "$SSHD_PID"
        end=$((SECONDS + 60))
        while ! grep -q "Server listening on 127.0.0.1 port $SSH_PORT\." "$d/sshd.log" ||
            { ((SSH_V6)) && ! grep -q "Server listening on ::1 port $SSH_PORT\." "$d/sshd.log"; }; do
            if ! lb_alive "$SSHD_PID"; then
                wait "$SSHD_PID" 2>/dev/null || true
                grep -q "Address already in use" "$d/sshd.log" && continue 2
                fail "sshd did not start: $(cat "$d/sshd.log")"
            fi
            ((SECONDS < end)) || fail "sshd did not listen within 60 s: $(cat "$d/sshd.log")"
            sleep 0.05
        done
        LB_RSH="ssh -i $d/user_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR"
        export SSH_PORT LB_RSH SSH_V6
        return 0
    done
    fail "sshd found no free port in 20 tries: $(cat "$d/sshd.log")"
}

# closed_port: a port on 127.0.0.1 that refuses every connection while the
# test runs (a process of ours holds it bound and never listens); sets
# CLOSED_PORT.
closed_port() {
    _lb_ready_open
    perl -MSocket -e '
        socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!\n";
        bind($s, pack_sockaddr_in(0, INADDR_LOOPBACK)) or die "bind: $!\n";
        my ($port) = unpack_sockaddr_in(getsockname($s));
        open(my $r, ">", $ARGV[0]) or die "$ARGV[0]: $!\n";
        print $r "$port\n";
        close($r);
        sleep 3600;' "$LB_READY" &
    lb_track $!
    _lb_ready_read 60 "a bound port"
    CLOSED_PORT=$LB_READY_LINE
}

# json_schema_check FILE: every JSON event in FILE (lines that are not JSON
# are skipped) has the types docs/json.md gives its fields: the table's
# rows "| `field` | type |", us_* integers, every other field a string.
# Fails naming each field that does not.
json_schema_check() {
    local doc bad
    doc=$(dirname "${BASH_SOURCE[0]}")/../../docs/json.md
    [[ -f $doc ]] || fail "json_schema_check: no $doc"
    bad=$(sed -n 's/^| `\([a-z_0-9]*\)` | \([a-z]*\) |$/\1 \2/p' "$doc" |
        jq -R -n -r --slurpfile ev <(jq -R 'fromjson? // empty' "$1" | jq -s .) '
        ([inputs | split(" ") | {(.[0]): .[1]}] | add) as $t
        | def ok($ty):
            if $ty == "string" then type == "string"
            elif $ty == "integer" then . == null or (type == "number" and . == floor)
            elif $ty == "number" then . == null or type == "number"
            elif $ty == "boolean" then . == null or type == "boolean"
            elif $ty == "strings" then type == "array" and all(.[]; type == "string")
            elif $ty == "disks" then type == "array" and all(.[]; type == "object"
                and (.name | type) == "string" and (.size == null or (.size | type) == "number"))
            else false end;
          $ev[0][] | select(type == "object") | . as $o | to_entries[]
          | (if $t[.key] then $t[.key] elif (.key | startswith("us_")) then "integer"
             else "string" end) as $ty
          | select(.value | ok($ty) | not)
          | "\($o.event // "?"): \(.key) is \(.value | tojson), not \($ty)"') ||
        fail "json_schema_check: jq failed on $1"
    [[ -z $bad ]] || fail "$1: fields against docs/json.md: $bad"
    [[ $(jq -R 'fromjson? // empty | select(type == "object") | .event' "$1" | wc -l) -gt 0 ]] ||
        fail "$1: no JSON event to check"
}
