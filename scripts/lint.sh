#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Static checks of the project's sources: the project's shape (file and
# function sizes, the agent's layers: scripts/size-check.sh), cppcheck and
# clang-tidy (its configuration is .clang-tidy). Fails on any finding.
#
#   scripts/lint.sh [BUILD_DIR]    (a configured build: compile_commands.json)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
cd "$here"
dirs=(common proto store backupd agent)
rc=0

echo "== size-check"
if ! bash scripts/size-check.sh; then
    rc=1
fi

echo "== cppcheck"
if ! cppcheck --enable=style,warning,performance,portability --inline-suppr \
    --quiet --std=c11 -I . -D_GNU_SOURCE --error-exitcode=1 "${dirs[@]}" fuzz; then
    rc=1
fi

echo "== clang-tidy"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for f in $(ls common/*.c proto/*.c store/*.c backupd/*.c agent/*/*.c); do
    clang-tidy -p "$build" --quiet "$f" 2>/dev/null || true
done >"$out"
if grep -E "(warning|error):" "$out"; then
    rc=1
fi
[[ $rc -eq 0 ]] && echo "lint: clean"
exit $rc
