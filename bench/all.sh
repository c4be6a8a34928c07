#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bench/all.sh: every benchmark, one after the other, on one build of this
# tree, for the README's figures. Run by hand on a quiet machine; each
# writes its bench/results*.md (the commit, and whether the tree was
# clean, in its first line). Stops at the first that fails.
#
#   bench/all.sh [--repeat N] [--quiet-wait S] [--workdir DIR] [--bin-dir BUILD]
#                [--only NAME,...]
#
#   run          the image path, full / incremental / restore vs zstd (bench/run.sh)
#   concurrency  1, 2, 4 agents into one backupd listen (bench/concurrency.sh)
#   live         the live VM path, phases of the incremental (bench/live.sh)
#   peer         against virtnbdbackup on the same VM (bench/peer.sh)
#   ssh          ssh + append-only against the trusted local path (bench/ssh.sh)
#   steady       30 nightly incrementals, restore of the last vs the first (bench/steady.sh)
#   freeze       frozen time over 20 backups, the snapshot call's parts (bench/freeze.sh)
#   scale        the same changes on a 4x larger disk, live path (bench/scale.sh)
#   commit       QEMU's block commit of an incremental's layer, no guest (bench/commit.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
WORKDIR=/var/tmp/livebackup-bench
BIN_DIR=
REPEAT=3
QUIET=300
ONLY=run,concurrency,live,peer,ssh,steady,freeze,scale,commit
while (($#)); do
    case $1 in
    --repeat) REPEAT=${2:?}; shift 2 ;;
    --quiet-wait) QUIET=${2:?}; shift 2 ;;
    --workdir) WORKDIR=${2:?}; shift 2 ;;
    --bin-dir) BIN_DIR=${2:?}; shift 2 ;;
    --only) ONLY=${2:?}; shift 2 ;;
    -h | --help) sed -n '3,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "all: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done
mkdir -p "$WORKDIR"
if [[ -z $BIN_DIR ]]; then
    BIN_DIR=$WORKDIR/build
    echo "all: building in $BIN_DIR" >&2
    { cmake -S "$here/.." -B "$BIN_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLB_TESTS=OFF &&
        cmake --build "$BIN_DIR" -j "$(nproc)" --target livebackup backupd; } >"$WORKDIR/all-build.log" 2>&1 ||
        { tail -n 30 "$WORKDIR/all-build.log" >&2; exit 1; }
fi
common=(--bin-dir "$BIN_DIR" --workdir "$WORKDIR" --repeat "$REPEAT")
# concurrency.sh has no --quiet-wait (it does not wait)
start=$SECONDS
IFS=, read -ra names <<<"$ONLY"
for n in "${names[@]}"; do
    [[ -x $here/$n.sh ]] || { echo "all: no bench/$n.sh" >&2; exit 2; }
    t=$SECONDS
    echo "all: === $n ===" >&2
    if [[ $n == concurrency ]]; then
        "$here/$n.sh" "${common[@]}"
    else
        "$here/$n.sh" "${common[@]}" --quiet-wait "$QUIET"
    fi
    echo "all: $n took $((SECONDS - t)) s" >&2
done
echo "all: everything took $((SECONDS - start)) s" >&2
