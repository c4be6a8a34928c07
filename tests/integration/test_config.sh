#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Configuration (issue 15): LIVEBACKUP_REPO and livebackup.conf. Every
# setting, through every layer: the system file < the user file < the
# environment < the command line, as `livebackup config` reports them
# (value and source); the default files' places (~/.config,
# XDG_CONFIG_HOME); the repository and prune's keep rules taken from them
# by real commands; a bad file is an error naming file and line.
. "$(dirname "$0")/lib.sh"

sys=$T/sys.conf user=$T/user.conf
export LIVEBACKUP_CONFIG=$sys:$user
# setting -> values for the system file, the user file, the environment,
# the command line
declare -A v=(
    [repo]="$T/r-sys $T/r-user $T/r-env $T/r-cmd"
    [rsh]="ssh-sys ssh-user ssh-env ssh-cmd"
    [remote-backupd]="/sys/backupd /user/backupd /env/backupd /cmd/backupd"
    [bwlimit]="10M 20M 30M 40M"
    [compress-level]="2 3 4 5"
    # backup's options, which config does not take: three layers
    [on-failure]="hook-sys hook-user hook-env"
    [overlay-dir]="/sys/ov /user/ov /env/ov"
    [metrics-file]="/sys/m.prom /user/m.prom /env/m.prom"
)
for k in keep-last keep-hourly keep-daily keep-weekly keep-monthly keep-yearly; do
    v[$k]="1 2 3"
done
env_of() { local e=${1^^}; echo "LIVEBACKUP_${e//-/_}"; }
# The effective value and source of setting $1 (config --json).
get() {
    jq -r --arg k "$1" 'select(.event == "setting" and .key == $k) |
        "\(.value // "-")|\(.source)"' "$T/cfg"
}
layers=(system user environment "command line")
for k in "${!v[@]}"; do
    read -r -a vals <<<"${v[$k]}"
    for ((n = 0; n < ${#vals[@]} && n < 4; n++)); do
        : >"$sys"
        : >"$user"
        envs=()
        cmd=()
        for ((i = 0; i <= n; i++)); do
            case $i in
            0) printf '# the system\n%s = %s\n' "$k" "${vals[0]}" >"$sys" ;;
            1) printf '\n  %s=%s  \n' "$k" "${vals[1]}" >"$user" ;;
            2) envs=("$(env_of "$k")=${vals[2]}") ;;
            3) cmd=("--$k" "${vals[3]}") ;;
            esac
        done
        env "${envs[@]}" livebackup config --json "${cmd[@]}" >"$T/cfg" 2>"$T/err" ||
            fail "config ($k, ${layers[n]}): $(cat "$T/err")"
        case $n in
        0) want="${vals[0]}|$sys:2" ;;
        1) want="${vals[1]}|$user:2" ;;
        2) want="${vals[2]}|environment ($(env_of "$k"))" ;;
        3) want="${vals[3]}|command line" ;;
        esac
        got=$(get "$k")
        [[ $got == "$want" ]] || fail "$k up to the ${layers[n]} layer: '$got', want '$want'"
    done
done
: >"$sys"
: >"$user"
livebackup config >"$T/text"
grep -Eq "^repo +- +unset" "$T/text" || fail "config without settings: $(cat "$T/text")"
ok "every setting: system file < user file < environment < command line (livebackup config --json)"

# The default places: /etc, then ~/.config or XDG_CONFIG_HOME.
mkdir -p "$T/home/.config/livebackup" "$T/xdg/livebackup"
echo "repo = $T/r-home" >"$T/home/.config/livebackup/livebackup.conf"
echo "repo = $T/r-xdg" >"$T/xdg/livebackup/livebackup.conf"
(
    unset LIVEBACKUP_CONFIG XDG_CONFIG_HOME
    HOME=$T/home livebackup config --json >"$T/cfg"
    [[ $(get repo) == "$T/r-home|$T/home/.config/livebackup/livebackup.conf:1" ]] ||
        fail "~/.config/livebackup/livebackup.conf: $(get repo)"
    HOME=$T/home XDG_CONFIG_HOME=$T/xdg livebackup config --json >"$T/cfg"
    [[ $(get repo) == "$T/r-xdg|$T/xdg/livebackup/livebackup.conf:1" ]] ||
        fail "XDG_CONFIG_HOME: $(get repo)"
    [[ -e /etc/livebackup/livebackup.conf ]] && exit 0
    HOME=/nonexistent livebackup config --json >"$T/cfg"
    [[ $(get repo) == "-|unset" ]] || fail "no file, yet repo is $(get repo)"
)
ok "the user's file is ~/.config/livebackup/livebackup.conf, or under XDG_CONFIG_HOME"

# Real commands take the repository from the environment or a file.
qemu-img create -q -f qcow2 "$T/d.qcow2" 16M
write_random "$T/d.qcow2" qcow2 0 $((1 << 20))
LIVEBACKUP_REPO=$T/repo run_ok livebackup init
[[ -d $T/repo ]] || fail "init with LIVEBACKUP_REPO made no repository"
echo "repo = $T/repo" >"$user"
for i in 1 2 3; do
    run_ok livebackup backup-image --name d --disk vda="$T/d.qcow2"
done
[[ $(livebackup list --json | jq -s '[.[] | select(.event == "backup")] | length') -eq 3 ]] ||
    fail "list with the repository from the user file"
run_ok livebackup restore-image --name d --disk vda --to "$T/r.raw"
same_image "$T/r.raw" raw "$T/d.qcow2" qcow2
# The command line still wins: another repository, which does not exist.
expect_fail "" livebackup list --repo "$T/nothing"
ok "init from LIVEBACKUP_REPO, backup-image, list and restore-image from the user file"

# prune: the configured rules, replaced as a whole by any --keep-*.
printf 'repo = %s\nkeep-last = 2\n' "$T/repo" >"$user"
livebackup prune --dry-run --json >"$T/p"
[[ $(jq -s '[.[] | select(.action == "remove")] | length' "$T/p") -eq 1 ]] ||
    fail "prune with keep-last = 2 from the file: $(cat "$T/p")"
LIVEBACKUP_KEEP_LAST=1 livebackup prune --dry-run --json >"$T/p"
[[ $(jq -s '[.[] | select(.action == "remove")] | length' "$T/p") -eq 2 ]] ||
    fail "prune with LIVEBACKUP_KEEP_LAST=1: $(cat "$T/p")"
printf 'repo = %s\nkeep-last = 2\nkeep-daily = 5\n' "$T/repo" >"$user"
livebackup prune --dry-run --json --keep-last 1 >"$T/p"
[[ $(jq -s '[.[] | select(.action == "remove")] | length' "$T/p") -eq 2 ]] ||
    fail "prune --keep-last 1 mixed with the file's keep-daily: $(cat "$T/p")"
printf 'repo = %s\nkeep-last = 5\n' "$T/repo" >"$user"
run_ok livebackup prune
[[ $(livebackup list --json | jq -s '[.[] | select(.event == "backup")] | length') -eq 3 ]] ||
    fail "prune with keep-last = 5 removed backups"
printf 'repo = %s\nkeep-last = 1\n' "$T/repo" >"$user"
run_ok livebackup prune
[[ $(livebackup list --json | jq -s '[.[] | select(.event == "backup")] | length') -eq 1 ]] ||
    fail "prune with keep-last = 1 did not remove two backups"
ok "prune takes keep-* from the file or the environment; --keep-* replaces them all"

# backup's failure hook and metrics file from the file, run once by the
# parent of a -j run, and turned off by an empty option. Two domains of
# libvirt's test driver whose disks do not exist: every backup fails.
cat >"$T/node.xml" <<EOF
<node>
  <domain type='test'><name>web1</name><memory>8192</memory><os><type>hvm</type></os>
    <devices><disk type='file' device='disk'><source file='$T/none/web1.qcow2'/><target dev='vda'/></disk></devices></domain>
  <domain type='test'><name>web2</name><memory>8192</memory><os><type>hvm</type></os>
    <devices><disk type='file' device='disk'><source file='$T/none/web2.qcow2'/><target dev='vda'/></disk></devices></domain>
</node>
EOF
printf 'repo = %s\non-failure = cat >>%s/hook.json\nmetrics-file = %s/m.prom\n' \
    "$T/repo" "$T" "$T" >"$user"
hooked() { if [[ -e $T/hook.json ]]; then jq -s length "$T/hook.json"; else echo 0; fi; }
for jobs in 1 2; do
    rm -f "$T/hook.json" "$T/m.prom"
    expect_fail "cannot read image" livebackup backup --all -j $jobs -c "test://$T/node.xml"
    [[ $(hooked) -eq 1 ]] || fail "-j $jobs: the configured hook ran $(hooked) times, want 1"
    jq -e '.event == "run" and .status == "failed" and (.results | length) == 2' \
        "$T/hook.json" >/dev/null || fail "-j $jobs: hook input $(cat "$T/hook.json")"
    for d in web1 web2; do
        grep -qx "livebackup_last_run_exit_status{domain=\"$d\"} 1" "$T/m.prom" ||
            fail "-j $jobs: metrics-file from the file lacks $d: $(cat "$T/m.prom")"
    done
done
rm -f "$T/hook.json" "$T/m.prom"
expect_fail "cannot read image" livebackup backup --all -j 2 -c "test://$T/node.xml" \
    --on-failure '' --metrics-file ''
[[ $(hooked) -eq 0 && ! -e $T/m.prom ]] ||
    fail "--on-failure '' --metrics-file '': hook ran $(hooked) times, metrics $(ls "$T")"
LIVEBACKUP_METRICS_FILE=$T/env.prom expect_fail "cannot read image" \
    livebackup backup web1 -c "test://$T/node.xml"
[[ -e $T/env.prom && ! -e $T/m.prom ]] || fail "LIVEBACKUP_METRICS_FILE did not win over the file"
ok "on-failure and metrics-file from livebackup.conf: run once for a -j run, off with ''"

# Bad settings: exit 2, naming where.
bad() {
    local want=$1 rc=0
    shift
    printf '%s\n' "$@" >"$user"
    livebackup list >"$T/out" 2>"$T/err" || rc=$?
    [[ $rc -eq 2 ]] || fail "'$*': exit $rc"
    grep -qF -- "$want" "$T/err" || fail "'$*': said $(cat "$T/err"), not '$want'"
}
bad "$user:2: unknown setting 'repository'" "# x" "repository = /x"
bad "$user:1: bwlimit 'fast'" "bwlimit = fast"
bad "$user:1: compress-level '40'" "compress-level = 40"
bad "$user:1: keep-daily '-1'" "keep-daily = -1"
bad "$user:1: on-failure: an empty value" "on-failure ="
bad "$user:1: expected 'key = value'" "repo /x"
: >"$user"
rc=0
LIVEBACKUP_BWLIMIT=x livebackup list --repo "$T/repo" >/dev/null 2>"$T/err" || rc=$?
[[ $rc -eq 2 ]] && grep -q "environment (LIVEBACKUP_BWLIMIT)" "$T/err" ||
    fail "LIVEBACKUP_BWLIMIT=x: exit $rc, $(cat "$T/err")"
ok "a bad setting is a usage error naming its file and line, or its variable"
