#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bench/ssh.sh: the path a backup server is meant to be used by, through
# ssh with an append-only forced command (backupd re-hashes every chunk it
# receives), against the trusted local path, on the same test VM, disk
# and changes, in the same run. Run by hand (it takes the machine-wide VM
# lock); prints the figures and writes bench/results-ssh.md. Not a test.
#
#   bench/ssh.sh [common options, see --help]
#
# Four ways to the repository, each --repeat times (a new repository, a
# full backup, the guest rewrites 1% of the disk's 4 KiB clusters in its
# files, an incremental; `untrack` in between):
#   local           the agent's own `backupd serve` child, trusted (it does
#                   not re-hash what it receives)
#   local, untrusted  the same child without --trusted-client: the cost of
#                   re-hashing alone
#   ssh, append-only  ssh://livebackup-bench@127.0.0.1 to a private sshd
#                   (throwaway keys; a user of the bench's own owns the
#                   repository, bench/lib.sh, bench_ssh_user), whose key
#                   runs the forced command `backupd serve
#                   --restrict-to-repo DIR --append-only` (README, Security)
#   ssh, aes128-gcm   the same with `ssh -c aes128-gcm@openssh.com` instead
#                   of OpenSSH's default chacha20-poly1305 (cheaper where
#                   the CPU has AES-NI: the cipher runs at both ends)
# The ssh client's CPU is measured (time -v around it) and no longer
# counted as the agent's; sshd's, which decrypts what the client
# encrypts, is not measured.
# Baseline: zstd -1 -T0 over the disk's allocated data. Fulls and the
# baseline start from a cold file (written back and dropped from the page
# cache: a disk nobody read lately, what a nightly full meets).
BENCH_NAME=ssh
. "$(dirname "$0")/lib.sh"
bench_parse "$@"
bench_setup
build_scatter

PRE=$IMG/ext4-${SIZE_GIB}g
make_image "$SIZE_GIB" "$PRE" 1
image_data "$PRE"
K=$(((SIZE_GIB << 30) / 4096 / 100))
log "baseline: zstd -1 -T0 over the allocated data, cold ($REPEAT runs)"
zstd_baseline "$PRE.data.bin" cold

# ---- a private sshd on 127.0.0.1 (bench/lib.sh) ------------------------------
S=$T/ssh
mkdir -p "$T/sshrss" "$T/sshcli"
bench_sshd "$S"
cat >"$T/wrap/backupd-ssh" <<EOS
#!/bin/sh
exec /usr/bin/time -v -o "$T/sshrss/backupd.\$\$.time" "$BACKUPD" serve --restrict-to-repo "$T" --append-only
EOS
cat >"$T/wrap/backupd-untrusted" <<EOS
#!/bin/bash
args=()
for a in "\$@"; do [[ \$a == --trusted-client ]] || args+=("\$a"); done
exec "$T/wrap/backupd" "\${args[@]}"
EOS
chmod +x "$T/wrap/backupd-ssh" "$T/wrap/backupd-untrusted"
echo "command=\"$T/wrap/backupd-ssh\",restrict $(cat "$S/user_key.pub")" >"$S/authorized_keys"
bench_ssh_user "$S"
chown "$SSH_USER" "$T/sshrss"
RSH="/usr/bin/time -a -v -o $T/sshcli/ssh.time $SSH_CMD"

bench_vm_up
cp "$PRE.qcow2" "$T/vm/vda.qcow2"
DOM=$(bench_vm_start ssh --disk "vda=$T/vm/vda.qcow2:qcow2" --mem 256)
vm_wait_workload "$DOM" 2 >/dev/null || die "the workload of $DOM did not start"
guest_put "$DOM" "$SCATTER" /run/scatter
GUEST_BUSY=$(cpu_busy_pct 3)
QUIET_PCT=$((GUEST_BUSY + 10))
OTHER_FLOOR=$(calc "$GUEST_BUSY * $CPUS / 100")
log "guest $DOM runs ($GUEST_BUSY% busy)"

# one CONFIG R: a full and an incremental through CONFIG
FIRST=1
declare -A CPU_SSH
one() {
    local cfg=$1 r=$2 repo url extra=() bk=
    repo=$T/repo-$cfg.$r
    lb init --repo "$repo" >/dev/null
    [[ $cfg != ssh* ]] || chown -R "$SSH_USER:" "$repo"
    case $cfg in
    local) url=$repo ;;
    untrusted) url=$repo bk=$T/wrap/backupd-untrusted ;;
    ssh) url="ssh://$SSH_USER@127.0.0.1:$SSH_PORT$repo" extra=(--rsh "$RSH") ;;
    sshgcm) url="ssh://$SSH_USER@127.0.0.1:$SSH_PORT$repo" extra=(--rsh "$RSH -c aes128-gcm@openssh.com") ;;
    esac
    ((FIRST)) || lb untrack "$DOM" >/dev/null
    FIRST=0
    for kind in full incr; do
        if [[ $kind == incr ]]; then scatter "$DOM" "$K" "$r" 50; fi
        settle
        [[ $kind != full ]] || cold "$T/vm/vda.qcow2"
        rm -f "$T"/sshrss/* "$T"/sshcli/*
        LB_RUN_BACKUPD=$bk lb_run "$cfg-$kind.$r" backup --json "$DOM" --repo "$url" "${extra[@]}"
        if [[ $cfg == ssh* ]]; then
            R_RSS_BD=$(tv_max 'Maximum resident' "$T"/sshrss/*.time)
            R_CPU_BD=$(tv_cpu "$T"/sshrss/*.time)
        fi
        rec "$cfg-$kind.$r"
        CPU_SSH[$cfg-$kind.$r]=-
        if [[ $cfg == ssh* ]]; then
            # ssh is the agent's child: its CPU was counted as the agent's
            CPU_SSH[$cfg-$kind.$r]=$(tv_cpu "$T"/sshcli/ssh.time)
            CPU_LB[$cfg-$kind.$r]=$(calc "${CPU_LB[$cfg-$kind.$r]} - ${CPU_SSH[$cfg-$kind.$r]}")
        fi
        [[ $(sum_of "$cfg-$kind.$r" kind) == "$([[ $kind == full ]] && echo full || echo incremental)" ]] ||
            die "$cfg-$kind.$r: ${SUM[$cfg-$kind.$r]}"
    done
}
CONFIGS=(local untrusted ssh sshgcm)
for ((r = 1; r <= REPEAT; r++)); do
    for c in "${CONFIGS[@]}"; do one "$c" "$r"; done
done

# ---- report ---------------------------------------------------------------------
labels() { local r; for ((r = 1; r <= REPEAT; r++)); do echo "$1.$r"; done; }
Z_MBS=$(calc "$ALLOC / $Z_S / 1e6" 0)
declare -A MED MEDL
for c in "${CONFIGS[@]}"; do
    for kind in full incr; do
        mapfile -t ls < <(labels "$c-$kind")
        MEDL[$c-$kind]=$(pick "${ls[@]}")
        MED[$c-$kind]=${W[${MEDL[$c-$kind]}]}
    done
done
name_of() { case $1 in local) echo "local, trusted" ;; untrusted) echo "local, untrusted (re-hash)" ;; ssh) echo "ssh, append-only (re-hash)" ;; sshgcm) echo "ssh aes128-gcm, append-only (re-hash)" ;; esac; }
row() { # row CONFIG KIND
    local -a ls
    mapfile -t ls < <(labels "$1-$2")
    local m=${MEDL[$1-$2]}
    echo "$2, $(name_of "$1")|${MED[$1-$2]} ($(walls "${ls[@]}"))|$(calc "$(sum_of "$m" agent_bytes_read) / ${W[$m]} / 1e6" 0)|$(sum_of "$m" bytes_received)|$(calc "${CPU_LB[$m]}" 1) / $(calc "${CPU_BD[$m]}" 1) / $(calc "${CPU_NBD[$m]}" 1)|${CPU_SSH[$m]}|$(mib "$(peak RSS_LB "${ls[@]}")") / $(mib "$(peak RSS_BD "${ls[@]}")") / $(mib "$(peak RSS_NBD "${ls[@]}")")"
}
table "## Full and incremental by way of the repository (median of $REPEAT runs, every run in brackets)" \
    "run|seconds|MB/s read|bytes received by backupd|CPU s livebackup / backupd / qemu-nbd|CPU s ssh client|peak RSS MiB livebackup / backupd / qemu-nbd" \
    "zstd -1 -T0 of the allocated data ($(mb "$ALLOC") MB)|$Z_S ($Z_ALL)|$Z_MBS|-|-|-|-" \
    "$(for c in "${CONFIGS[@]}"; do row "$c" full; done)" \
    "$(for c in "${CONFIGS[@]}"; do row "$c" incr; done)"
rate_of() { calc "$(sum_of "${MEDL[$1]}" agent_bytes_read) / ${MED[$1]} / 1e6" 0; }
R_SSH=$(calc "$(rate_of ssh-full) / $Z_MBS")
R_LOCAL=$(calc "$(rate_of local-full) / $Z_MBS")
table "## Targets" \
    "figure|value|target|result" \
    "full through ssh + append-only, MB/s / zstd -1 -T0 MB/s ($(rate_of ssh-full) / $Z_MBS)|$R_SSH|>= 0.8|$(verdict "$R_SSH" '>=' 0.8)" \
    "(info) full, local trusted, MB/s / zstd -1 -T0 MB/s ($(rate_of local-full) / $Z_MBS)|$R_LOCAL|(>= 0.9: live.sh)|-" \
    "(info) full time, ssh aes128-gcm / ssh default cipher (${MED[sshgcm-full]} / ${MED[ssh-full]})|$(calc "${MED[sshgcm-full]} / ${MED[ssh-full]}")|-|-" \
    "(info) incremental time, ssh + append-only / local trusted (${MED[ssh-incr]} / ${MED[local-incr]})|$(calc "${MED[ssh-incr]} / ${MED[local-incr]}")|-|-" \
    "(info) full time, local untrusted / local trusted: the re-hash (${MED[untrusted-full]} / ${MED[local-full]})|$(calc "${MED[untrusted-full]} / ${MED[local-full]}")|-|-"
note "Guest: tests/vm (TCG, 256 MiB, 1 vCPU) running its workload; it kept the machine ${GUEST_BUSY}% busy before the runs."
note "ssh: OpenSSH's defaults ($SSH_CIPHER first; the aes128-gcm rows: \`ssh -c aes128-gcm@openssh.com\`), to a private sshd on 127.0.0.1, as a user of the run's own who owns the repository (not root, whose ~/.bashrc on this machine runs \`pyenv init\` for every ssh command); backupd's CPU and peak RSS over ssh are its own (time -v in the forced command), not sshd's or ssh's; \"CPU s ssh client\" is the ssh command's (time -v around it); sshd, which decrypts what it encrypts, costs about as much again and is not measured."
note "Cold: before each full and each baseline run, its file (the guest's vda.qcow2, the baseline's data file) written back and dropped from the page cache (\`dd iflag=nocache count=0\`), the rest of the machine's cache left. A full reads past the page cache (O_DIRECT); zstd reads through it."
note "Incrementals after \`scatter /data $K SEED 50\` in the guest (1% of the disk's 4 KiB clusters inside files); each way gets the same amount of change on its own repetition."
bench_report "livebackup through ssh + append-only vs local" \
    "Disk: ext4 of $SIZE_GIB GiB filled with files from /usr ($(mb "$ALLOC") MB allocated), the guest's vda (qcow2)."
