#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# gen.sh TEMPLATE PROGRAM OUT: a man page from its scdoc TEMPLATE, whose
# line %COMMANDS% is replaced by what `PROGRAM __man` writes (the commands
# and options, from the program's help table), rendered by scdoc into OUT.
set -euo pipefail

tmpl=$1 prog=$2 out=$3
grep -qx '%COMMANDS%' "$tmpl" || { echo "gen.sh: no %COMMANDS% in $tmpl" >&2; exit 1; }
{
    sed '/^%COMMANDS%$/,$d' "$tmpl"
    "$prog" __man
    sed '1,/^%COMMANDS%$/d' "$tmpl"
} >"$out.scd"
scdoc <"$out.scd" >"$out.tmp"
mv "$out.tmp" "$out"
