#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Configure and build into BUILD_DIR (default: build/). Extra arguments go
# to cmake (e.g. -DLB_SANITIZE=ON).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$here/build}
cmake -S "$here" -B "$build" -DLB_WERROR=ON "$@" >/dev/null
cmake --build "$build" -j "$(nproc)"
