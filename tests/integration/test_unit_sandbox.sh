#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The sandboxes of the units that read what other hosts send:
# backupd.service (the daemon every agent talks to),
# livebackup-pull.service (an off-site server's copy from a primary that
# may have been broken into) and livebackup-prune.service (prune and gc
# read the manifests agents wrote). Each unit must keep its options (checked,
# and scored by `systemd-analyze security --offline`), and the program
# must do its whole job under them. Without systemd as PID 1 (CI has none)
# the parts that could break them are built by hand, as the units build
# them: no capability at all although root (an empty bounding set), no
# new privileges (setpriv), /usr, /boot and /etc read-only, /proc/sys and
# /sys read-only (a mount namespace), umask 077. Through that daemon: a
# full and an incremental backup, restores exact, verify, prune and gc;
# the daemon still up, its files private. Under that copy: a pull over ssh
# of both backups, restored exact; then a prune and gc of that copy. Not
# built here: PrivateTmp (the test's
# repositories are under /tmp), PrivateDevices, and the seccomp-based
# options (RestrictAddressFamilies, RestrictNamespaces, LockPersonality,
# SystemCallArchitectures, RestrictRealtime, RestrictSUIDSGID), which
# take nothing either program calls.
. "$(dirname "$0")/lib.sh"

opts=(NoNewPrivileges=yes CapabilityBoundingSet= ProtectSystem=full
    PrivateTmp=yes PrivateDevices=yes ProtectKernelTunables=yes
    ProtectKernelModules=yes ProtectKernelLogs=yes ProtectControlGroups=yes
    ProtectClock=yes ProtectHostname=yes RestrictNamespaces=yes
    RestrictRealtime=yes RestrictSUIDSGID=yes LockPersonality=yes
    SystemCallArchitectures=native UMask=0077)
for u in backupd.service livebackup-pull.service livebackup-prune.service; do
    for o in "${opts[@]}"; do
        grep -qx "$o" "$LB_SRC/contrib/$u.in" || fail "$u lacks $o"
    done
    sed "s|@CMAKE_INSTALL_FULL_BINDIR@|/usr/bin|; s|@CMAKE_INSTALL_FULL_DOCDIR@|/usr/share/doc/livebackup|" \
        "$LB_SRC/contrib/$u.in" >"$T/$u"
    # threshold: exposure 4.0 of 10 (systemd counts in tenths)
    systemd-analyze security --offline=yes --threshold=40 "$T/$u" >"$T/sec" 2>&1 ||
        fail "$u: $(grep -E "Overall|rror" "$T/sec")"
    ok "$u keeps its ${#opts[@]} sandbox options; $(grep Overall "$T/sec" | sed 's/^→ //; s/ [^ ]*$//')"
done

# $T/sandboxed CMD...: CMD in place of the script (the pid is CMD's), as
# the units run it: read-only system directories in a mount namespace of
# its own, umask 077, no capabilities, no new privileges.
ro_mounts=""
for d in /usr /boot /etc /proc/sys /sys; do
    [[ -d $d ]] && ro_mounts+="mount --bind $d $d && mount -o remount,bind,ro $d && "
done
cat >"$T/sandboxed" <<EOF
#!/bin/sh
exec unshare --mount --propagation private sh -c '${ro_mounts}umask 077 && exec setpriv \\
    --no-new-privs --bounding-set -all --inh-caps -all --ambient-caps -all "\$@"' sh "\$@"
EOF
chmod +x "$T/sandboxed"

R=$T/repo
S=$T/backupd.sock
run_ok livebackup init --repo "$R"
LB_LISTEN_WRAP=$T/sandboxed lb_listen_start "$R" "$S"
# What the daemon runs with (the test of the test: these fail if setpriv
# or the namespace did not take).
grep -q "^CapEff:[[:space:]]*0000000000000000$" "/proc/$DAEMON/status" ||
    fail "the daemon has capabilities: $(grep ^Cap "/proc/$DAEMON/status")"
grep -q "^CapBnd:[[:space:]]*0000000000000000$" "/proc/$DAEMON/status" ||
    fail "the daemon's bounding set: $(grep ^CapBnd "/proc/$DAEMON/status")"
grep -q "^NoNewPrivs:[[:space:]]*1$" "/proc/$DAEMON/status" ||
    fail "the daemon may gain privileges: $(grep NoNewPrivs "/proc/$DAEMON/status")"
if nsenter -t "$DAEMON" -m touch /etc/livebackup-sandbox-probe 2>/dev/null; then
    rm -f /etc/livebackup-sandbox-probe
    fail "/etc is writable in the daemon's namespace"
fi
ok "backupd listen runs without capabilities or new privileges, /usr /etc /sys read-only (pid $DAEMON)"

qemu-img create -q -f qcow2 "$T/d.qcow2" 64M
write_random "$T/d.qcow2" qcow2 0 $((12 << 20))
snapshot_raw "$T/d.qcow2" "$T/truth0.raw"
run_ok livebackup backup-image --json --repo "$R" --name d --disk vda="$T/d.qcow2"
grep -q "bridged session from local" "$T/daemon.log" ||
    fail "the backup did not go through the daemon: $(cat "$T/daemon.log")"
overlay "$T/o1.qcow2" "$T/d.qcow2" qcow2
write_random "$T/o1.qcow2" qcow2 $((20 << 20)) $((2 << 20))
snapshot_raw "$T/o1.qcow2" "$T/truth1.raw"
run_ok livebackup backup-image --json --repo "$R" --name d --disk vda="$T/o1.qcow2" \
    --since "$T/d.qcow2"
[[ $(json_field "$T/out" summary kind) == incremental ]] ||
    fail "not an incremental: $(cat "$T/out")"
run_ok livebackup list --repo "$R" --name d --json
first=$(grep '"event":"backup"' "$T/out" | sed -n 1p | sed 's/.*"id":"\([^"]*\)".*/\1/')
run_ok livebackup restore-image --repo "$R" --name d --backup "$first" --disk vda --to "$T/r0.raw"
same_image "$T/r0.raw" raw "$T/truth0.raw" raw
run_ok livebackup restore-image --repo "$R" --name d --disk vda --to "$T/r1.raw"
same_image "$T/r1.raw" raw "$T/truth1.raw" raw
ok "a full and an incremental backup through the sandboxed daemon restore exact"

run_ok livebackup verify --repo "$R"
grep -q "all sound" "$T/out" || fail "verify: $(cat "$T/out")"
run_ok livebackup prune --repo "$R" --name d --keep-last 1
run_ok livebackup gc --repo "$R"
run_ok livebackup restore-image --repo "$R" --name d --disk vda --to "$T/r2.raw"
same_image "$T/r2.raw" raw "$T/truth1.raw" raw
lb_alive "$DAEMON" || fail "the daemon exited: $(cat "$T/daemon.log")"
bad=$(find "$R" -newer "$T/truth0.raw" -type f -perm /077 -print | sed -n 1p)
[[ -z $bad ]] || fail "the daemon made a file others may read: $bad ($(stat -c %a "$bad"))"
ok "verify, prune and gc through it; the last backup restores exact; its files private"

# livebackup-pull.service: the off-site copy, sandboxed, pulls both
# backups of a primary over ssh (the primary as a plain backupd serve).
P=$T/primary
run_ok livebackup init --repo "$P"
run_ok livebackup backup-image --repo "$P" --name d --disk vda="$T/d.qcow2"
run_ok livebackup backup-image --repo "$P" --name d --disk vda="$T/o1.qcow2" --since "$T/d.qcow2"
sshd_start
run_ok livebackup init --repo "$T/offsite"
run_ok "$T/sandboxed" "$LB_BUILD/agent/livebackup" copy --json \
    --from "ssh://root@127.0.0.1:$SSH_PORT$P" --rsh "$LB_RSH" --remote-backupd "$BACKUPD" \
    --to "$T/offsite"
[[ $(json_field "$T/out" summary copied) -eq 2 ]] || fail "the pull copied: $(cat "$T/out")"
run_ok livebackup restore-image --repo "$T/offsite" --name d --disk vda --to "$T/p1.raw"
same_image "$T/p1.raw" raw "$T/truth1.raw" raw
bad=$(find "$T/offsite" -type f -perm /077 -print | sed -n 1p)
[[ -z $bad ]] || fail "the pull made a file others may read: $bad ($(stat -c %a "$bad"))"
ok "a sandboxed pull over ssh copies both backups; the latest restores exact there"

# livebackup-prune.service: prune and gc, sandboxed, on the off-site copy.
run_ok "$T/sandboxed" "$LB_BUILD/agent/livebackup" prune --json --repo "$T/offsite" --keep-last 1
[[ $(json_field "$T/out" summary removed) -eq 1 ]] || fail "the sandboxed prune: $(cat "$T/out")"
run_ok "$T/sandboxed" "$LB_BUILD/agent/livebackup" gc --repo "$T/offsite"
run_ok livebackup verify --repo "$T/offsite"
grep -q "all sound" "$T/out" || fail "verify after the sandboxed prune and gc: $(cat "$T/out")"
run_ok livebackup restore-image --repo "$T/offsite" --name d --disk vda --to "$T/p2.raw"
same_image "$T/p2.raw" raw "$T/truth1.raw" raw
ok "a sandboxed prune and gc: one backup removed, the repository sound, the latest exact"

kill -TERM "$DAEMON"
rc=0
wait "$DAEMON" || rc=$?
[[ $rc -eq 0 ]] || fail "backupd listen exit status $rc: $(tail -n 5 "$T/daemon.log")"
[[ ! -e $R/listen && ! -e $S ]] || fail "the daemon left its socket or marker"
ok "SIGTERM: the sandboxed daemon ends cleanly"
