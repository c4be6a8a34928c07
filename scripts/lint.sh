#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Static checks of the project's sources: the project's shape (file and
# function sizes, the agent's layers: scripts/size-check.sh), cppcheck and
# clang-tidy (its configuration is .clang-tidy). Fails on any finding, and
# when a checker is missing, crashes, or cannot check a file (a compile
# error, no compilation database): a check that did not run never passes.
#
#   scripts/lint.sh [BUILD_DIR]    (a configured build: compile_commands.json)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
cd "$here"
dirs=(common proto store backupd agent)
rc=0

for tool in cppcheck clang-tidy; do
    command -v "$tool" >/dev/null ||
        { echo "lint: $tool is not installed (scripts/deps.sh installs it)" >&2; exit 1; }
done
[[ -f $build/compile_commands.json ]] ||
    { echo "lint: no $build/compile_commands.json: configure the build first" >&2; exit 1; }
# every C file of the modules, also in subfolders
mapfile -t files < <(find "${dirs[@]}" -name '*.c' | sort)
[[ ${#files[@]} -gt 0 ]] || { echo "lint: no C files found under ${dirs[*]}" >&2; exit 1; }

echo "== size-check"
if ! bash scripts/size-check.sh; then
    rc=1
fi

# Under pipefail (every script of the project) a reader that stops early
# fails the pipeline when its producer still writes (SIGPIPE): a check that
# fails by chance. tests/integration/lib.sh says what to write instead.
echo "== shell pipes"
if git grep -nE '\|[[:space:]]*(grep[[:space:]]+-[A-Za-z]*q|head[[:space:]]+-(n[[:space:]]*)?1\b)' \
    -- '*.sh' .ci | grep -vE '^[^:]+:[0-9]+:[[:space:]]*#'; then
    echo "the lines above stop reading a pipe early: a producer still writing dies of SIGPIPE and, under pipefail, fails the check"
    rc=1
fi

echo "== cppcheck"
st=0
cppcheck --enable=style,warning,performance,portability --inline-suppr \
    --quiet --std=c11 -I . -D_GNU_SOURCE --error-exitcode=1 "${dirs[@]}" fuzz || st=$?
case $st in
0) ;;
1) rc=1 ;;
*)
    echo "lint: cppcheck ended with status $st" >&2
    rc=1
    ;;
esac

echo "== clang-tidy (${#files[@]} files)"
out=$(mktemp)
err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
for f in "${files[@]}"; do
    st=0
    clang-tidy -p "$build" --quiet "$f" >>"$out" 2>"$err" || st=$?
    if [[ $st -ne 0 ]]; then
        # a compile error, a crash, a bad configuration: the file was not
        # checked
        echo "lint: clang-tidy $f ended with status $st:" >&2
        cat "$err" >&2
        rc=1
    fi
done
if grep -E "(warning|error):" "$out"; then
    rc=1
fi
[[ $rc -eq 0 ]] && echo "lint: clean"
exit $rc
