#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Install what is needed, build, and run the whole test suite twice: a
# normal build (warnings are errors), then an ASan+UBSan build (leaks and
# undefined behaviour fail the tests). Ends with ctest's summary; exits
# non-zero on any failure. Run as root on Debian 12: this is what CI runs
# (.ci/run).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bash scripts/deps.sh

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=86
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
jobs=${LB_TEST_JOBS:-2}

echo "== build (gcc, -Werror)"
BUILD_DIR=$here/build bash scripts/build.sh
echo "== build (ASan + UBSan)"
BUILD_DIR=$here/build-asan bash scripts/build.sh -DLB_SANITIZE=ON

echo "== tests (normal build)"
(cd build && ctest --output-on-failure -j "$jobs")
echo "== tests (ASan + UBSan build)"
cd build-asan
exec ctest --output-on-failure -j "$jobs"
