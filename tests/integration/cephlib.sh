# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# A throwaway single-node Ceph cluster for the RADOS backend's tests (source
# after lib.sh): one mon and one OSD on memstore, cephx on, every file in
# $T/ceph, private ports picked per run, msgr1 off so it never meets a real
# cluster. ceph_start starts it and returns once a real write has gone
# through; lb_cleanup (lib.sh's EXIT trap, via ceph_stop) stops its daemons
# by the PIDs in their pid files. /work/shared/CEPH-NOTES.md has the facts
# behind the settings.
#
# After ceph_start: CEPH_CONF (the client's config file, with the admin
# keyring), CEPH_POOL (a pool of size 1), and ceph_repo NS prints a --repo
# argument for namespace NS of that pool.

CEPH_DIR=$T/ceph
CEPH_CONF=$CEPH_DIR/ceph.conf
CEPH_POOL=lbtest
# Every ceph/rados call runs under timeout: without a mgr some commands
# never return, and a full memstore blocks writes.
CEPH_TIMEOUT=${CEPH_TIMEOUT:-60}
declare -a CEPH_PIDFILES=()

# A free TCP port on 127.0.0.1 in 20000-29999 (the OSD binds a range
# above it).
_ceph_port() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 9000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    fail "no free port for the test cluster's mon"
}

ceph_cmd() { timeout "$CEPH_TIMEOUT" ceph -c "$CEPH_CONF" "$@"; }
rados_cmd() { timeout "$CEPH_TIMEOUT" rados -c "$CEPH_CONF" "$@"; }

ceph_repo() {
    local ns=$1
    # timeout: a client of a cluster stopped under it fails in 30 s
    echo "rados:$CEPH_POOL/$ns?conf=$CEPH_CONF&id=admin&timeout=30"
}

ceph_stop() {
    local f p cmd
    local -a pids=()
    for f in "${CEPH_PIDFILES[@]}"; do
        [[ -s $f ]] || continue
        p=$(cat "$f")
        # Only a daemon started with our config: a number read from a pid
        # file may belong to anyone once that daemon is gone.
        cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline") || continue
        [[ $cmd == *"$CEPH_CONF"* ]] || continue
        kill -TERM "$p" 2>/dev/null && pids+=("$p")
    done
    # Not wait_until: this runs in the EXIT trap, where a failure must
    # not exit again. The daemons are not our children: poll /proc.
    for p in "${pids[@]}"; do
        for _ in $(seq 600); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$p" 2>/dev/null; then
            echo "cephlib: daemon $p did not stop on TERM: KILL" >&2
            kill -KILL "$p" 2>/dev/null || true
        fi
    done
    CEPH_PIDFILES=()
}
trap '_ceph_rc=$?; ceph_stop; lb_cleanup "$_ceph_rc"' EXIT

# The pool, ready when a real write goes through.
_ceph_pool_create() {
    ceph_cmd osd pool create "$CEPH_POOL" 8 >/dev/null 2>&1
    ceph_cmd osd pool set "$CEPH_POOL" size 1 --yes-i-really-mean-it \
        >/dev/null 2>&1
    echo probe >"$CEPH_DIR/probe"
    wait_until 60 "the test cluster to accept a write" \
        timeout 10 rados -c "$CEPH_CONF" -p "$CEPH_POOL" put probe \
        "$CEPH_DIR/probe"
    rados_cmd -p "$CEPH_POOL" rm probe
}

# ceph_pool_reset: the pool deleted and created again, empty (memstore
# gives its memory back).
ceph_pool_reset() {
    ceph_cmd osd pool delete "$CEPH_POOL" "$CEPH_POOL" \
        --yes-i-really-really-mean-it >/dev/null 2>&1
    _ceph_pool_create
}

ceph_start() {
    local port t0 fsid uuid
    t0=$(date +%s.%N)
    port=$(_ceph_port)
    fsid=$(cat /proc/sys/kernel/random/uuid)
    mkdir -p "$CEPH_DIR"/{mon,osd,run}
    cat >"$CEPH_CONF" <<CONF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$port
mon initial members = a
public addr = 127.0.0.1
ms bind msgr1 = false
ms bind port min = $((port + 1))
ms bind port max = $((port + 60))
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
run dir = $CEPH_DIR/run
admin socket = $CEPH_DIR/run/\$name.asok
pid file = $CEPH_DIR/run/\$name.pid
log file = $CEPH_DIR/\$name.log
mon cluster log file = $CEPH_DIR/cluster.log
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon warn on pool no redundancy = false
mon allow pool delete = true
paxos propose interval = 0.1
# The mon's store is a few MB here: never shut it down (ENOSPC to every
# client) because the shared disk runs low (default: at 5 % free).
mon data avail crit = 0
osd objectstore = memstore
memstore device bytes = 4294967296
osd fast shutdown notify mon = false
osd data = $CEPH_DIR/osd
mon data = $CEPH_DIR/mon
rados osd op timeout = 60
rados mon op timeout = 60
osd crush chooseleaf type = 0
[mon]
keyring = $CEPH_DIR/mon.keyring
[osd]
keyring = $CEPH_DIR/osd/keyring
[client]
keyring = $CEPH_DIR/admin.keyring
CONF
    ceph-authtool --create-keyring "$CEPH_DIR/mon.keyring" --gen-key -n mon. \
        --cap mon 'allow *' >/dev/null
    ceph-authtool --create-keyring "$CEPH_DIR/admin.keyring" --gen-key \
        -n client.admin --cap mon 'allow *' --cap osd 'allow *' \
        --cap mgr 'allow *' >/dev/null
    ceph-authtool "$CEPH_DIR/mon.keyring" --import-keyring \
        "$CEPH_DIR/admin.keyring" >/dev/null
    monmaptool --create --addv a "[v2:127.0.0.1:$port]" --fsid "$fsid" \
        "$CEPH_DIR/monmap" >/dev/null
    ceph-mon -c "$CEPH_CONF" --mkfs -i a --monmap "$CEPH_DIR/monmap" \
        --keyring "$CEPH_DIR/mon.keyring" </dev/null >>"$CEPH_DIR/start.log" 2>&1
    CEPH_PIDFILES+=("$CEPH_DIR/run/mon.a.pid")
    ceph-mon -c "$CEPH_CONF" -i a </dev/null >>"$CEPH_DIR/start.log" 2>&1
    uuid=$(cat /proc/sys/kernel/random/uuid)
    ceph_cmd osd new "$uuid" 0 >/dev/null
    ceph-osd -c "$CEPH_CONF" -i 0 --mkfs --mkkey --no-mon-config \
        --osd-uuid "$uuid" </dev/null \
        >>"$CEPH_DIR/start.log" 2>&1
    ceph_cmd auth add osd.0 osd 'allow *' mon 'allow profile osd' \
        -i "$CEPH_DIR/osd/keyring" >/dev/null 2>&1
    CEPH_PIDFILES+=("$CEPH_DIR/run/osd.0.pid")
    ceph-osd -c "$CEPH_CONF" -i 0 </dev/null >>"$CEPH_DIR/start.log" 2>&1
    _ceph_pool_create
    CEPH_START_SECS=$(echo "$(date +%s.%N) - $t0" | bc)
    echo "# ceph: cluster up in ${CEPH_START_SECS}s (mon port $port)"
}
