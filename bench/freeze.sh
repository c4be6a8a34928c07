#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bench/freeze.sh: how long the guest stays frozen, over many backups, and
# what the frozen time is made of. Run by hand (it takes the machine-wide
# VM lock); prints the figures and writes bench/results-freeze.md. Not a
# test.
#
#   bench/freeze.sh [--runs N] [common options, see --help]
#
# The test VM on bench/live.sh's disk runs its workload; after a full
# backup, N incrementals (default 20), each once the workload wrote two
# more files. Per backup, from the --json summary: the frozen time
# (freeze_ms: from the freeze request to the thaw's return) and its parts
# (us_freeze, us_snapshot, us_thaw: the three libvirt calls; us_guard:
# the snapshot's XML and the thaw guard's start, before the freeze). For
# the last 5 backups, libvirtd's monitor and agent traffic is logged
# (virt-admin daemon-log-filters, restored after) and the frozen window
# is cut into the agent's freeze and thaw, the QMP commands libvirt sends,
# and the time between them (libvirt's and livebackup's own work).
BENCH_NAME=freeze
RUNS=20
bench_opt() {
    case $1 in
    --runs) RUNS=${2:?}; BENCH_USED=2 ;;
    esac
}
. "$(dirname "$0")/lib.sh"
bench_parse "$@"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "freeze: --runs N" >&2; exit 2; }
bench_setup

PRE=$IMG/ext4-${SIZE_GIB}g
make_image "$SIZE_GIB" "$PRE" 1
bench_vm_up
cp "$PRE.qcow2" "$T/vm/vda.qcow2"
DOM=$(bench_vm_start freeze --disk "vda=$T/vm/vda.qcow2:qcow2" --mem 256)
vm_wait_workload "$DOM" 2 >/dev/null || die "the workload of $DOM did not start"
GUEST_BUSY=$(cpu_busy_pct 3)
QUIET_PCT=$((GUEST_BUSY + 10))
OTHER_FLOOR=$(calc "$GUEST_BUSY * $CPUS / 100")

REPO=$T/repo
lb init --repo "$REPO" >/dev/null
lb_run full backup --json "$DOM" --repo "$REPO"
rec full

# libvirtd's debug log of the monitor (QMP) and the guest agent, for the
# last backups; the daemon's settings are put back on exit.
LOGGED=0
OLD_FILTERS='' OLD_OUTPUTS=''
VADM=(virt-admin -q -c libvirtd:///system)
if OLD_FILTERS=$("${VADM[@]}" daemon-log-filters 2>/dev/null) &&
    OLD_OUTPUTS=$("${VADM[@]}" daemon-log-outputs 2>/dev/null); then
    OLD_FILTERS=$(sed -n 's/^ *Logging filters: *//p' <<<"$OLD_FILTERS")
    OLD_OUTPUTS=$(sed -n 's/^ *Logging outputs: *//p' <<<"$OLD_OUTPUTS")
    LOGGED=1
else
    log "virt-admin does not reach libvirtd: no QMP breakdown"
fi
restore_logging() {
    ((LOGGED)) || return 0
    "${VADM[@]}" daemon-log-filters "${OLD_FILTERS:-}" >/dev/null 2>&1
    "${VADM[@]}" daemon-log-outputs "${OLD_OUTPUTS:-}" >/dev/null 2>&1
}
bench_on_exit restore_logging

LBL=()
for ((n = 1; n <= RUNS; n++)); do
    vm_wait_workload "$DOM" $(($(vm_workload_last "$DOM") + 2)) >/dev/null || die "the workload stopped"
    if ((LOGGED && n == RUNS - 4)); then
        : >"$T/libvirtd-debug.log"
        "${VADM[@]}" daemon-log-filters "1:qemu.qemu_monitor 1:qemu.qemu_agent 1:qemu.qemu_snapshot 4:*" >/dev/null
        "${VADM[@]}" daemon-log-outputs "1:file:$T/libvirtd-debug.log" >/dev/null
    fi
    settle
    lb_run "incr.$n" backup --json "$DOM" --repo "$REPO"
    rec "incr.$n"
    LBL+=("incr.$n")
    [[ $(sum_of "incr.$n" kind) == incremental ]] || die "incr.$n: ${SUM[incr.$n]}"
done
restore_logging

# ---- report ---------------------------------------------------------------------
stat_row() { # stat_row NAME KEY SCALE: p50, p95, max over the runs
    local v=() l x
    for l in "${LBL[@]}"; do
        x=$(sum_of "$l" "$2")
        v+=("$(calc "${x:-0} / $3" 1)")
    done
    echo "$1|$(pctl 50 "${v[@]}")|$(pctl 95 "${v[@]}")|$(printf '%s\n' "${v[@]}" | sort -g | tail -n1)"
}
table "## Frozen time over $RUNS incremental backups (ms)" \
    "figure|p50|p95|max" \
    "$(stat_row "frozen (freeze request to thaw's return)" freeze_ms 1)" \
    "$(stat_row "  freeze call (guest agent: sync and freeze)" us_freeze 1000)" \
    "$(stat_row "  snapshot call (libvirt + QEMU)" us_snapshot 1000)" \
    "$(stat_row "  thaw call" us_thaw 1000)" \
    "$(stat_row "(before the freeze: snapshot XML, thaw guard, agent timeout)" us_guard 1000)"
FZ=()
for l in "${LBL[@]}"; do FZ+=("$(sum_of "$l" freeze_ms)"); done
P95=$(pctl 95 "${FZ[@]}")

if ((LOGGED)) && [[ -s $T/libvirtd-debug.log ]]; then
    # Each frozen window: the agent's guest-fsfreeze-freeze (request to
    # reply), then every QMP command libvirt sends (request to reply) and
    # the time between them (libvirt's own work), until it sends
    # guest-fsfreeze-thaw (request to reply).
    awk '
        function t(s,   a) { split(substr(s, 12, 12), a, ":"); return (a[1] * 3600 + a[2] * 60 + a[3]) * 1000 }
        /Send command .\{"execute":"guest-fsfreeze-freeze"/ { st = 1; t0 = t($0); win++; next }
        st == 1 && /Receive command reply/ { fr += t($0) - t0; last = t($0); st = 2; next }
        st == 2 && /QEMU_MONITOR_IO_WRITE/ && match($0, /"execute":"[^"]*"/) {
            c = substr($0, RSTART + 11, RLENGTH - 12); now = t($0); own += now - last; sent = now; cur = c; next }
        st == 2 && /QEMU_MONITOR_RECV_REPLY/ && cur != "" { now = t($0); d[cur] += now - sent; n[cur]++; last = now; cur = ""; next }
        st == 2 && /Send command .\{"execute":"guest-fsfreeze-thaw"/ { now = t($0); own += now - last; t0 = now; st = 3; next }
        st == 3 && /Receive command reply/ { th += t($0) - t0; st = 0; next }
        END {
            if (!win) exit
            printf "1 agent guest-fsfreeze-freeze, request to reply|%.1f\n", fr / win
            for (c in d) printf "2 QMP %s (%d per backup)|%.1f\n", c, n[c] / win, d[c] / win
            printf "3 between them: libvirt and livebackup (the snapshot call around its QMP commands)|%.1f\n", own / win
            printf "4 agent guest-fsfreeze-thaw, request to reply|%.1f\n", th / win
        }' "$T/libvirtd-debug.log" | sort | cut -c3- >"$T/qmp.rows"
    if [[ -s $T/qmp.rows ]]; then
        mapfile -t QROWS <"$T/qmp.rows"
        table "## Inside the frozen window, mean of the last 5 backups (ms; libvirtd's debug log)" \
            "part|ms" "${QROWS[@]}"
    else
        note "The libvirtd debug log held no frozen window to cut up ($T/libvirtd-debug.log)."
    fi
fi
table "## Targets" \
    "figure|value|target|result" \
    "frozen time p95 over $RUNS backups, ms|$P95|<= 100|$(verdict "$P95" '<=' 100)"
note "Guest: tests/vm (TCG, 256 MiB, 1 vCPU) running its workload (one file every 0.5 s, each fsync'd); one backup after every two new files; quiesced incrementals into a local repository."
note "freeze_ms is measured by the agent from just before virDomainFSFreeze to the return of virDomainFSThaw; the guest cannot write from the moment its agent starts freezing (the freeze syncs first) until the thaw."
bench_report "livebackup freeze time" \
    "Disk: ext4 of $SIZE_GIB GiB filled with files from /usr, the guest's vda (qcow2)."
