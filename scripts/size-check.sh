#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The shape the project keeps (STYLE.md; run by lint.sh). Fails, naming
# the offender, if
#   - a product file (common/ proto/ store/ backupd/ agent/) is over 900
#     lines, or a function in one is over 150 lines (a definition starts
#     with its name in column 0, per .clang-format, and ends at the next
#     "}" in column 0);
#   - a file of the agent's command line or live layer encodes a frame or
#     touches the connection (proto_enc_*, proto_frame_*, proto_conn_*):
#     the wire is the client layer's (agent/client);
#   - a file outside agent/live includes libvirt or libxml2;
#   - a module's contract header does not compile on its own.
#
#   scripts/size-check.sh
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
max_file=900
max_fn=150
rc=0

mapfile -t product < <(git ls-files 'common/*.[ch]' 'proto/*.[ch]' \
    'store/*.[ch]' 'backupd/*.[ch]' 'agent/*.[ch]')

for f in "${product[@]}"; do
    n=$(wc -l <"$f")
    if ((n > max_file)); then
        echo "$f: $n lines (at most $max_file)"
        rc=1
    fi
done

if ! awk -v max="$max_fn" '
    FNR == 1 { infn = 0 }
    /^[A-Za-z_][A-Za-z0-9_]*\(/ { name = $0; sub(/\(.*/, "", name); start = FNR; infn = 1; next }
    infn && /^}/ {
        if (FNR - start + 1 > max) { printf "%s:%d: %s is %d lines (at most %d)\n", FILENAME, start, name, FNR - start + 1, max; bad = 1 }
        infn = 0
    }
    END { exit bad }' "${product[@]}"; then
    rc=1
fi

if grep -nE '\bproto_(enc|frame|conn)_[a-z_]*\(' agent/cli/*.[ch] agent/live/*.[ch] \
    agent/map/*.[ch]; then
    echo "the lines above speak the wire outside agent/client"
    rc=1
fi

if git grep -nE '#include <(libvirt|libxml)/' -- common proto store backupd \
    agent/client agent/cli agent/map; then
    echo "the lines above include libvirt or libxml2 outside agent/live"
    rc=1
fi

cc=${CC:-cc}
for h in common/common.h proto/proto.h store/store.h backupd/backupd.h \
    agent/client/client.h agent/live/live.h agent/cli/cli.h agent/map/map.h \
    agent/live/instant.h; do
    if ! echo "#include \"$h\"" | "$cc" -std=gnu11 -D_GNU_SOURCE -I. \
        -Wall -Werror -fsyntax-only -x c -; then
        echo "$h does not compile on its own"
        rc=1
    fi
done

[[ $rc -eq 0 ]] && echo "size-check: clean"
exit $rc
