#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bash completion (issue 15): in a bash with bash-completion and
# livebackup's completion loaded, as an interactive shell would have them,
# complete a command, an option of that command (and not another
# command's), an option's values, backup ids and set names from the
# repository named on the line, and domain names from virsh.
. "$(dirname "$0")/lib.sh"

comp=$LB_SRC/contrib/livebackup.bash-completion
# complete WORD... : what the completion offers for the last word, one a
# line (COMP_WORDS and COMP_CWORD as bash sets them).
complete_words() {
    bash --norc --noprofile -c '
        . /usr/share/bash-completion/bash_completion
        . "$0"
        [[ $(complete -p livebackup) == *"-F _livebackup"* ]] || exit 3
        COMP_WORDS=("$@")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        COMP_LINE="${COMP_WORDS[*]}"
        COMP_POINT=${#COMP_LINE}
        _livebackup livebackup "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
        printf "%s\n" "${COMPREPLY[@]}"
    ' "$comp" livebackup "$@" | sort
}
expect_words() { # want (space-separated, sorted) -- words...
    local want=$1 got
    shift
    got=$(complete_words "$@" | tr '\n' ' ')
    [[ $got == "$want " || ($want == "" && $got == " ") || ($want == "" && -z $got) ]] ||
        fail "completing 'livebackup $*': '$got', want '$want'"
}

expect_words "backup backup-image" ba
expect_words "restore restore-image" rest
expect_words "config" conf
ok "commands complete"

expect_words "--full --full-every" backup --ful
expect_words "--keep-daily --keep-hourly --keep-last --keep-monthly --keep-weekly --keep-yearly" prune --keep
expect_words "" list --keep
expect_words "--dry-run" gc --dr
expect_words "--window-size" init --win
ok "options complete per command (list has no --keep-*)"

expect_words "qcow2 raw" restore web1 --format ""
expect_words "crash" backup web1 --consistency c
expect_words "keyfile" init --encryption k
expect_words "" backup --jobs ""
expect_words "export" key ex
ok "option values complete"

# Backup ids and names from the repository on the line.
qemu-img create -q -f qcow2 "$T/d.qcow2" 16M
run_ok livebackup init --repo "$T/repo"
run_ok livebackup backup-image --repo "$T/repo" --name data1 --disk vda="$T/d.qcow2"
run_ok livebackup backup-image --repo "$T/repo" --name data2 --disk vda="$T/d.qcow2"
mapfile -t ids < <(livebackup list --repo "$T/repo" --json | jq -r 'select(.event == "backup") | .id' | sort)
[[ ${#ids[@]} -eq 2 ]] || fail "list: ${ids[*]}"
expect_words "${ids[0]} ${ids[1]} latest" show --repo "$T/repo" --backup ""
expect_words "${ids[0]}" show --repo="$T/repo" --backup "${ids[0]}"
expect_words "data1 data2" restore-image --repo "$T/repo" --name da
# as bash splits --repo=PATH (COMP_WORDBREAKS has '=')
expect_words "${ids[1]}" show --repo = "$T/repo" --backup "${ids[1]}"
expect_words "latest" show --backup ""
ok "backup ids and set names come from the --repo on the line"

# Domain names: from virsh list --all --name of the connection on the line.
mkdir -p "$T/bin"
cat >"$T/bin/virsh" <<EOS
#!/bin/bash
echo "\$*" >>"$T/virsh.args"
printf 'web1\nweb2\ndb1\n'
EOS
chmod +x "$T/bin/virsh"
PATH=$T/bin:$PATH expect_words "web1 web2" backup --repo "$T/repo" -c test:///default we
grep -qx -- "-q -c test:///default list --all --name" "$T/virsh.args" ||
    fail "virsh was run as: $(cat "$T/virsh.args")"
PATH=$T/bin:$PATH expect_words "db1" status d
ok "domain names come from virsh list --all --name"
