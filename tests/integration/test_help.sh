#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Help (issue 15): `livebackup help` lists every command with a line; each
# command's --help explains every option it has, and every option it
# explains is one the command accepts (getopt's table and the help are
# one table: agent/cli/help.c); a usage error names what is missing
# instead of reprinting the usage. The same for backupd.
. "$(dirname "$0")/lib.sh"

livebackup help >"$T/help" || fail "livebackup help failed"
mapfile -t cmds < <(livebackup __complete commands)
[[ ${#cmds[@]} -ge 18 ]] || fail "only ${#cmds[@]} commands: ${cmds[*]}"
for c in "${cmds[@]}"; do
    grep -Eq "^  $c +[a-z]" "$T/help" || fail "livebackup help: no line for $c"
done
ok "livebackup help lists ${#cmds[@]} commands, one line each"

# A plausible argument for an option, from its name in the help.
arg_for() {
    case ${1%%|*} in
    SIZE) echo 64K ;;
    N | K | SECONDS) echo 1 ;;
    ID) echo 20260101-000000-abcd ;;
    TIME) echo 2026-01-01 ;;
    RATE) echo 1M ;;
    *) echo "${1%%|*}" ;;
    esac
}
nopts=0
for c in "${cmds[@]}"; do
    [[ $c == help ]] && continue
    livebackup "$c" --help >"$T/h.$c" 2>"$T/e.$c" || fail "$c --help: exit $?: $(cat "$T/e.$c")"
    head -1 "$T/h.$c" | grep "^Usage: livebackup $c" >/dev/null || fail "$c --help: $(head -1 "$T/h.$c")"
    # Every option the command completes to is explained in its --help.
    while read -r o; do
        o=${o%=}
        grep -Eq -- "^(  -., |      )$o( |$)" "$T/h.$c" ||
            fail "$c --help does not explain $o"
    done < <(livebackup __complete options "$c")
    # Every option line has text (on its line or the next one).
    awk '/^(  -., |      )--/ { if (NF < 3 && (getline nxt) > 0 && nxt !~ /^ {20,}[^ ]/) { print; exit 1 } }' \
        "$T/h.$c" || fail "$c --help: an option without an explanation"
    # Every option --help names is one getopt accepts.
    [[ $c == key || $c == umount ]] && continue
    while read -r o a; do
        nopts=$((nopts + 1))
        if [[ -n $a && $a != -* ]]; then
            set -- "$o" "$(arg_for "$a")"
        else
            set -- "$o"
        fi
        rc=0
        livebackup "$c" "$@" --help >/dev/null 2>"$T/err" || rc=$?
        [[ $rc -eq 0 ]] || fail "$c $*: exit $rc: $(cat "$T/err")"
    done < <(sed -En 's/^(  -., |      )(--[a-z-]+)( ([^ ]+))?.*/\2 \4/p' "$T/h.$c" | grep -v '^--help')
done
livebackup help backup | cmp -s - "$T/h.backup" || fail "help backup is not backup --help"
ok "every command's --help explains each option it takes, and takes each it explains ($nopts)"

# Usage errors: what is missing, not the whole usage again; exit 2.
usage_err() {
    local want=$1 rc=0
    shift
    livebackup "$@" >"$T/out" 2>"$T/err" || rc=$?
    no_sanitizer_report "$T/err"
    [[ $rc -eq 2 ]] || fail "livebackup $*: exit $rc, not 2"
    grep -qF -- "$want" "$T/err" || fail "livebackup $*: said '$(cat "$T/err")', not '$want'"
    ! grep -q "^Usage:" "$T/err" || fail "livebackup $*: reprinted the usage"
}
usage_err "livebackup list: --repo is required (or set LIVEBACKUP_REPO" list
usage_err "--repo is required (or set LIVEBACKUP_REPO" backup web1
usage_err "name a DOMAIN (or --all)" backup --repo "$T/r"
usage_err "--name NAME is required" restore-image --repo "$T/r" --disk vda --to x
usage_err "--to FILE is required" restore-image --repo "$T/r" --name n --disk vda
usage_err "--backup ID is required" delete --repo "$T/r"
usage_err "--to DIR is required" restore web1 --repo "$T/r"
usage_err "give one of --socket PATH and --port N" map --repo "$T/r" --name n --disk vda
usage_err "livebackup key: export: --to FILE is required" key export --repo "$T/r"
usage_err "unrecognized option '--nope'" list --repo "$T/r" --nope
usage_err "Try 'livebackup list --help'" list --repo "$T/r" --nope
usage_err "unknown command 'nope'" nope
usage_err "unrecognized option '--window-size'" list --repo "$T/r" --window-size 4M
ok "usage errors name what is missing or wrong and exit 2"

# A name that is no set's or domain's (empty, with '/' or a control
# character, '.' or '..', longer than 200 bytes) is a usage error of
# every command that takes one, before the repository is asked: on the
# wire an empty name lists every set, and a script's --name "$VM" with VM
# unset picked the latest backup of any set. The name is quoted made safe
# for a terminal.
run_ok livebackup init --repo "$T/n" --encryption none
mkimage "$T/n.qcow2" qcow2 8
run_ok livebackup backup-image --repo "$T/n" --name n1 --disk vda="$T/n.qcow2"
bad="invalid name '': a name is 1 to 200 bytes, with no '/' and no control character"
usage_err "livebackup list: --name: $bad" list --repo "$T/n" --name ""
usage_err "livebackup show: --name: $bad" show --repo "$T/n" --name "" --backup latest
usage_err "--name: $bad" restore-image --repo "$T/n" --name "" --disk vda --to "$T/n.raw"
[[ ! -e $T/n.raw ]] || fail "restore-image --name '' wrote $T/n.raw"
usage_err "--name: $bad" map --repo "$T/n" --name "" --disk vda --socket "$T/n.sock"
usage_err "--name: $bad" mount --repo "$T/n" --name "" "$T/nm"
usage_err "--name: $bad" prune --repo "$T/n" --name "" --keep-last 1
usage_err "--name: $bad" backup-image --repo "$T/n" --name "" --disk vda="$T/n.qcow2"
usage_err "livebackup restore: $bad" restore "" --repo "$T/n" --to "$T/nr"
usage_err "livebackup restore: --name: $bad" restore n1 --repo "$T/n" --name "" --to "$T/nr"
[[ ! -e $T/nr ]] || fail "a restore with an invalid name wrote $T/nr"
usage_err "livebackup backup: $bad" backup "" --repo "$T/n"
usage_err "livebackup status: $bad" status ""
usage_err "invalid name 'a/b'" list --repo "$T/n" --name a/b
usage_err "invalid name '..'" list --repo "$T/n" --name ..
usage_err "invalid name 'ab\x1b[31mred'" list --repo "$T/n" --name $'ab\e[31mred'
! grep -q $'\e' "$T/err" || fail "the name's escape reached the terminal raw"
long=$(printf 'a%.0s' {1..200})
usage_err "invalid name '${long}b'" list --repo "$T/n" --name "${long}b"
run_ok livebackup list --repo "$T/n" --name "$long"
run_ok livebackup list --repo "$T/n" --name n1 --json
[[ $(grep -c '"event":"backup"' "$T/out") -eq 1 ]] || fail "list --name n1: $(cat "$T/out")"
usage_err "livebackup restore-image: --disk: invalid disk name '': a disk is named by its target" \
    restore-image --repo "$T/n" --name n1 --disk "" --to "$T/n.raw"
usage_err "livebackup map: --disk: invalid disk name 'v\x1b'" map --repo "$T/n" --name n1 --disk $'v\e' --port 1000
usage_err "livebackup show: --backup is empty: give an id, latest or a time" show --repo "$T/n" --name n1 --backup ""
usage_err "livebackup restore-image: --backup is empty" \
    restore-image --repo "$T/n" --name n1 --disk vda --backup "" --to "$T/n.raw"
[[ ! -e $T/n.raw ]] || fail "a refused restore-image wrote $T/n.raw"
# copy's --name is a pattern: an empty one would match nothing, exit 0
run_ok livebackup init --repo "$T/n2"
usage_err "livebackup copy: --name is empty: give a name, or a pattern such as 'web*'" \
    copy --from "$T/n" --to "$T/n2" --name ""
run_ok livebackup list --repo "$T/n2" --json
[[ $(grep -c '"event":"backup"' "$T/out") -eq 0 ]] || fail "a refused copy copied: $(cat "$T/out")"
ok "an invalid name is a usage error of every command that takes one, quoted safely"

# An empty repository (--repo "$REPO" with REPO unset) is no repository.
usage_err "livebackup list: --repo is empty: give the repository's path or URL" list --repo ""
usage_err "livebackup init: --repo is empty" init --repo ""
usage_err "livebackup copy: --from is empty" copy --from "" --to "$T/n"
usage_err "livebackup copy: --to is empty" copy --from "$T/n" --to ""
LIVEBACKUP_REPO='' usage_err "livebackup list: --repo is required" list
usage_err "livebackup: --rsh is empty: give the remote shell's command" list --repo "$T/n" --rsh ""
usage_err "livebackup: --remote-backupd is empty: give backupd's path" list --repo "$T/n" --remote-backupd ""
ok "an empty --repo, --from, --to, --rsh or --remote-backupd is a usage error"

# A number is all digits and in its range: "5s", "-1", " 1", "2x" were
# read as 5, a huge number (--freeze-timeout -1: the agent's call never
# timed out), 1 and 2.
usage_err "--lock-wait 5s: a number of seconds from 0 to 86400" list --repo "$T/n" --lock-wait 5s
usage_err "--lock-wait -1: a number of seconds from 0 to 86400" list --repo "$T/n" --lock-wait -1
usage_err "--threads abc: a count from 1 to 1024" list --repo "$T/n" --threads abc
usage_err "--compress-level 3x: a level from -5 to 19" list --repo "$T/n" --compress-level 3x
usage_err "--freeze-timeout -1: a number of seconds from 1 to 3600" backup d1 --repo "$T/n" --freeze-timeout -1
usage_err "--full-every 2x: a count from 1 to 100000" backup d1 --repo "$T/n" --full-every 2x
usage_err "-j 65: 1 to 64 domains at once" backup --all --repo "$T/n" -j 65
usage_err "--keep-last  1: expected a count from 0" prune --repo "$T/n" --keep-last " 1"
usage_err "--last 1.5: a count from 1" copy --from "$T/n" --to "$T/n2" --last 1.5
usage_err "livebackup map: --port '0': a TCP port from 1 to 65535" map --repo "$T/n" --name n1 --disk vda --port 0
usage_err "livebackup map: --port '70000': a TCP port from 1 to 65535" map --repo "$T/n" --name n1 --disk vda --port 70000
usage_err "livebackup map: --socket: 108 bytes, at most 107" map --repo "$T/n" --name n1 --disk vda \
    --socket "/$(printf 's%.0s' {1..107})"
run_ok livebackup list --repo "$T/n" --lock-wait 0 --threads 2 --compress-level -5
for o in "--workers -1" "--lock-wait 1e3" "--idle-timeout +5"; do
    rc=0
    # shellcheck disable=SC2086 # the option and its value
    backupd serve --repo "$T/n" $o </dev/null >"$T/out" 2>"$T/err" || rc=$?
    [[ $rc -eq 2 ]] && grep -qF -- "backupd: $o:" "$T/err" ||
        fail "backupd serve $o: exit $rc: $(cat "$T/err")"
done
ok "a number that is not all digits, or out of its range, is a usage error"

# backupd
backupd help >"$T/bh" || fail "backupd help"
for c in serve listen; do
    grep -Eq "^  $c +[a-z]" "$T/bh" || fail "backupd help: no line for $c"
    backupd "$c" --help >"$T/bh.$c" || fail "backupd $c --help"
    head -1 "$T/bh.$c" | grep "^Usage: backupd $c" >/dev/null || fail "backupd $c --help: $(head -1 "$T/bh.$c")"
    for o in --repo --append-only --restrict-names --lock-wait --idle-timeout --verbose; do
        grep -Eq -- "^(  -., |      )$o( |$)" "$T/bh.$c" || fail "backupd $c --help: no $o"
    done
done
grep -q -- "--max-memory SIZE" "$T/bh.listen" || fail "backupd listen --help: no --max-memory"
grep -q -- "--restrict-to-repo PATH" "$T/bh.serve" || fail "backupd serve --help: no --restrict-to-repo"
cmp -s "$T/bh.serve" <(backupd --help serve) || fail "backupd --help serve differs"
rc=0
backupd listen --repo "$T/r" >"$T/out" 2>"$T/err" || rc=$?
[[ $rc -eq 2 ]] && grep -q -- "--socket PATH is required" "$T/err" ||
    fail "backupd listen without --socket: exit $rc, $(cat "$T/err")"
for o in "--socket" "--repo"; do
    rc=0
    if [[ $o == --socket ]]; then
        timeout 30 backupd listen --repo "$T/r" --socket "" >"$T/out" 2>"$T/err" || rc=$?
    else
        timeout 30 backupd listen --repo "" --socket "$T/s" >"$T/out" 2>"$T/err" || rc=$?
    fi
    [[ $rc -eq 2 ]] && grep -q -- "$o PATH is empty" "$T/err" ||
        fail "backupd listen $o '': exit $rc, $(cat "$T/err")"
done
ok "backupd help, serve --help, listen --help; a usage error names what is missing"
