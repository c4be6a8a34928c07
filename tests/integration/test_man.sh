#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The man pages (issue 15): livebackup(1) and backupd(8), built from the
# programs' help tables by scdoc, render with `man -l` without a warning,
# and document every command and option --help does (the page's section of
# each command against the command's own --help); they point at the
# repository format and the protocol.
. "$(dirname "$0")/lib.sh"

man_dir=$LB_BUILD/docs/man
render() { # page -> plain text, no hyphenation, one paragraph a line
    LANG=C MANWIDTH=1000 MANROFFOPT="-rHY=0" man --warnings=all -l "$1" 2>"$T/man.err" | col -b
    if [[ -s $T/man.err ]]; then
        fail "man -l $1 warns: $(cat "$T/man.err")"
    fi
}
for p in livebackup.1 backupd.8; do
    [[ -s $man_dir/$p ]] || fail "not built: $man_dir/$p"
    render "$man_dir/$p" >"$T/$p.txt"
    for s in NAME SYNOPSIS DESCRIPTION COMMANDS "EXIT STATUS" "SEE ALSO"; do
        grep -qx "$s" "$T/$p.txt" || fail "$p has no $s section"
    done
    grep -q "FORMAT.md" "$T/$p.txt" && grep -q "PROTOCOL.md" "$T/$p.txt" ||
        fail "$p does not reference FORMAT.md and PROTOCOL.md"
done
ok "livebackup(1) and backupd(8) render with man -l without warnings"

# The lines of a command's section: from its heading to the next one.
section() {
    awk -v c="$2" '$0 == "   " c { on = 1; next } on && /^(   [a-z]|[A-Z])/ { exit } on' "$1"
}
page=$T/livebackup.1.txt
n=0
for c in $(livebackup __complete commands); do
    section "$page" "$c" >"$T/sec"
    [[ -s $T/sec ]] || fail "livebackup(1) has no section for $c"
    grep -q "livebackup $c" "$T/sec" || fail "livebackup(1), $c: no synopsis"
    # The options of its --help (its own; the common ones below).
    livebackup "$c" --help | sed -n '/^Options:$/,/^$/p' |
        sed -En 's/^(  -., |      )(--[a-z-]+).*/\2/p' >"$T/opts"
    while read -r o; do
        grep -Eq -- "(^ *|, )$o( |$)" "$T/sec" || fail "livebackup(1), $c: no $o"
        n=$((n + 1))
    done <"$T/opts"
done
awk '/^COMMON OPTIONS$/ { on = 1; next } on && /^[A-Z]/ { exit } on' "$page" >"$T/common"
livebackup backup --help | sed -n '/^Options every command takes:$/,$p' |
    sed -En 's/^(  -., |      )(--[a-z-]+).*/\2/p' | grep -v -- --help >"$T/opts"
[[ $(wc -l <"$T/opts") -ge 10 ]] || fail "backup --help: only $(wc -l <"$T/opts") common options"
while read -r o; do
    grep -Eq -- "(^ *|, )$o( |$)" "$T/common" || fail "livebackup(1): common option $o missing"
    n=$((n + 1))
done <"$T/opts"
for k in repo rsh remote-backupd bwlimit compress-level keep-daily LIVEBACKUP_REPO \
    /etc/livebackup/livebackup.conf; do
    grep -q -- "$k" "$page" || fail "livebackup(1) does not document $k"
done
ok "livebackup(1) documents every command and each of the $n options their --help shows"

page=$T/backupd.8.txt
for c in serve listen; do
    section "$page" "$c" >"$T/sec"
    [[ -s $T/sec ]] || fail "backupd(8) has no section for $c"
    backupd "$c" --help | sed -En 's/^(  -., |      )(--[a-z-]+).*/\2/p' |
        grep -v -- --help >"$T/opts"
    while read -r o; do
        grep -Eq -- "(^ *|, )$o( |$)" "$page" || fail "backupd(8): no $o ($c)"
    done <"$T/opts"
done
ok "backupd(8) documents serve, listen and their options"
