#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bench/steady.sh: the steady state of nightly backups. Run by hand (it
# takes the machine-wide VM lock); prints the figures and writes
# bench/results-steady.md. Not a test.
#
#   bench/steady.sh [--nights N] [--change PCT] [--hot SHARE/PCT]
#                   [common options, see --help]
#
# The test VM on bench/live.sh's disk runs its workload; after a full
# backup, N "nights" (default 30), none deleted: the guest rewrites PCT%
# (default 2) of the disk's 4 KiB clusters inside its files
# (bench/scatter.c: half random bytes, half edited; SHARE% of them, default
# 80, in the same hot PCT% of the files, default 10, every night; the rest
# anywhere), then an incremental backup. At each backup, right after the
# snapshot (LIVEBACKUP_FAULT_HOOK at agent:after-snapshot, outside the
# measured phases), the layer the guest just left is measured on its own:
# its allocated 4 KiB clusters (what changed that night: the rewrites, the
# workload, ext4's journal and metadata) and zstd -1 of their data: the
# "compressed changed bytes" each night is compared with. Then restores of
# the first and of the last incremental (--repeat times each).
BENCH_NAME=steady
NIGHTS=30
CHANGE_PCT=2
HOT=80/10
bench_opt() {
    case $1 in
    --nights) NIGHTS=${2:?}; BENCH_USED=2 ;;
    --change) CHANGE_PCT=${2:?}; BENCH_USED=2 ;;
    --hot) HOT=${2:?}; BENCH_USED=2 ;;
    esac
}
. "$(dirname "$0")/lib.sh"
bench_parse "$@"
[[ $NIGHTS =~ ^[1-9][0-9]*$ && $CHANGE_PCT =~ ^[0-9]+$ && $HOT =~ ^[0-9]+/[0-9]+$ ]] ||
    { echo "steady: --nights N, --change PCT, --hot SHARE/PCT" >&2; exit 2; }
bench_setup
build_scatter

PRE=$IMG/ext4-${SIZE_GIB}g
make_image "$SIZE_GIB" "$PRE" 1
image_data "$PRE"
K=$(((SIZE_GIB << 30) * CHANGE_PCT / 100 / 4096))
log "disk: $SIZE_GIB GiB, $(mb "$ALLOC") MB allocated; $NIGHTS nights of $K x 4 KiB rewritten ($CHANGE_PCT%, $HOT hot)"

# The hook: the layer the guest left (the active image's backing file),
# read on its own (backing null): its allocated clusters, zstd -1 of their
# data. One line per backup: "changed_bytes zero_bytes zstd_bytes seconds"
# (the hook's own time, taken off the backup's).
cat >"$T/hook.sh" <<EOF
#!/bin/bash
set -euo pipefail
. "$BENCH_DIR/lib.sh"
t0=\$EPOCHREALTIME
T=$T
dom=\$(cat "$T/hook.dom")
act=\$(virsh -q -c qemu:///system domblklist "\$dom" | awk '\$1 == "vda" { print \$2 }')
layer=\$(qemu-img info -U --output=json "\$act" | jq -r '."full-backing-filename" // ."backing-filename"')
js="json:{\"driver\":\"qcow2\",\"backing\":null,\"file\":{\"driver\":\"file\",\"filename\":\"\$layer\"}}"
qemu-img map -U --output=json "\$js" >"$T/hook.map"
data_ranges -U "\$js" >"$T/hook.ranges"
zero=\$(awk '/"zero": true/ && /"data": false/ { match(\$0, /"length": [0-9]+/); s += substr(\$0, RSTART + 10, RLENGTH - 10) } END { printf "%.0f", s }' "$T/hook.map")
rm -f "$T/hook.raw"
qemu-img convert -U -O raw "\$js" "$T/hook.raw"
z=\$(while read -r s l; do dd if="$T/hook.raw" bs=1M iflag=skip_bytes,count_bytes skip="\$s" count="\$l" status=none; done <"$T/hook.ranges" | zstd -1 -T0 -q -c | wc -c)
echo "\$(sum_ranges "$T/hook.ranges") \$zero \$z \$(calc "\$EPOCHREALTIME - \$t0" 3)" >>"$T/hook.out"
rm -f "$T/hook.raw"
EOF
chmod +x "$T/hook.sh"

bench_vm_up
cp "$PRE.qcow2" "$T/vm/vda.qcow2"
DOM=$(bench_vm_start steady --disk "vda=$T/vm/vda.qcow2:qcow2" --mem 256)
echo "$DOM" >"$T/hook.dom"
vm_wait_workload "$DOM" 2 >/dev/null || die "the workload of $DOM did not start"
guest_put "$DOM" "$SCATTER" /run/scatter
GUEST_BUSY=$(cpu_busy_pct 3)
QUIET_PCT=$((GUEST_BUSY + 10))
OTHER_FLOOR=$(calc "$GUEST_BUSY * $CPUS / 100")

REPO=$T/repo
lb init --repo "$REPO" >/dev/null
settle "$T/vm/vda.qcow2"
lb_run full backup --json "$DOM" --repo "$REPO"
rec full
: >"$T/hook.out"
IDS=()
for ((n = 1; n <= NIGHTS; n++)); do
    scatter "$DOM" "$K" "$n" 50 "${HOT%/*}" "${HOT#*/}"
    settle
    LIVEBACKUP_FAULT_HOOK="agent:after-snapshot:$T/hook.sh" lb_run "night.$n" backup --json "$DOM" --repo "$REPO"
    rec "night.$n"
    [[ $(sum_of "night.$n" kind) == incremental ]] || die "night $n: ${SUM[night.$n]}"
    (($(wc -l <"$T/hook.out") == n)) || die "night $n: the hook did not run: $(cat "$R_OUT.err")"
    IDS+=("$(sum_of "night.$n" id)")
done

for which in first last; do
    id=${IDS[0]}
    [[ $which == first ]] || id=${IDS[-1]}
    for ((r = 1; r <= REPEAT; r++)); do
        rm -f "$T/restore.raw"
        settle
        find "$REPO" -type f -exec cat {} + >/dev/null
        lb_run "restore_$which.$r" restore-image --repo "$REPO" --name "$DOM" --backup "$id" \
            --disk vda --to "$T/restore.raw" --format raw --json
        rec "restore_$which.$r"
    done
done
e2fsck -fn "$T/restore.raw" >"$T/e2fsck.log" 2>&1 || die "the last night's restore fails e2fsck"
rm -f "$T/restore.raw"

# ---- report ---------------------------------------------------------------------
rows=("night|changed MB (allocated in the layer)|zstd -1 of the changed data, MB|stored MB (bytes_new)|stored / zstd|windows full / delta|seconds|frozen ms")
TOT_Z=0 TOT_S=0 TOT_C=0
for ((n = 1; n <= NIGHTS; n++)); do
    read -r chg zero z hook_s < <(sed -n "${n}p" "$T/hook.out")
    st=$(sum_of "night.$n" bytes_new)
    TOT_Z=$((TOT_Z + z)) TOT_S=$((TOT_S + st)) TOT_C=$((TOT_C + chg))
    rows+=("$n|$(mb "$chg")|$(mb "$z")|$(mb "$st")|$(calc "$st / $z")|$(sum_of "night.$n" windows_set) / $(sum_of "night.$n" windows_pushed)|$(calc "${W[night.$n]} - $hook_s")|$(sum_of "night.$n" freeze_ms)")
done
rows+=("all $NIGHTS|$(mb "$TOT_C")|$(mb "$TOT_Z")|$(mb "$TOT_S")|$(calc "$TOT_S / $TOT_Z")|-|-|-")
table "## Nights (none deleted; the full backup before them stored $(mb "$(sum_of full bytes_new)") MB)" "${rows[@]}"
mapfile -t RF < <(for ((r = 1; r <= REPEAT; r++)); do echo "restore_first.$r"; done)
mapfile -t RL < <(for ((r = 1; r <= REPEAT; r++)); do echo "restore_last.$r"; done)
F=$(pick "${RF[@]}") L=$(pick "${RL[@]}")
table "## Restores (median of $REPEAT, every run in brackets)" \
    "backup|seconds|peak RSS MiB livebackup / backupd" \
    "night 1 (${IDS[0]})|${W[$F]} ($(walls "${RF[@]}"))|$(mib "$(peak RSS_LB "${RF[@]}")") / $(mib "$(peak RSS_BD "${RF[@]}")")" \
    "night $NIGHTS (${IDS[-1]})|${W[$L]} ($(walls "${RL[@]}"))|$(mib "$(peak RSS_LB "${RL[@]}")") / $(mib "$(peak RSS_BD "${RL[@]}")")"
mapfile -t NL < <(for ((n = 1; n <= NIGHTS; n++)); do echo "night.$n"; done)
PK=$(printf '%s\n' "$(peak RSS_LB "${NL[@]}" "${RF[@]}" "${RL[@]}" full)" "$(peak RSS_BD "${NL[@]}" "${RF[@]}" "${RL[@]}" full)" "$(peak RSS_NBD "${NL[@]}" full)" | sort -n | tail -n1)
R_BYTES=$(calc "$TOT_S / $TOT_Z")
R_REST=$(calc "${W[$L]} / ${W[$F]}")
table "## Targets" \
    "figure|value|target|result" \
    "bytes stored over $NIGHTS nights / zstd -1 of the changed clusters ($(mb "$TOT_S") / $(mb "$TOT_Z") MB)|$R_BYTES|<= 1.2|$(verdict "$R_BYTES" '<=' 1.2)" \
    "restore time of night $NIGHTS / of night 1 (${W[$L]} / ${W[$F]} s)|$R_REST|<= 1.1|$(verdict "$R_REST" '<=' 1.1)" \
    "peak RSS, any process, MiB|$(mib "$PK")|< 256|$(verdict "$PK" '<' $((256 * 1024)))"
note "Each night: \`scatter /data $K NIGHT 50 ${HOT%/*} ${HOT#*/}\` in the guest ($CHANGE_PCT% of the disk's 4 KiB clusters, inside files; ${HOT%/*}% of them in a fixed ${HOT#*/}% of the files; half random bytes, half their own data with 64 bytes changed), then \`livebackup backup\` (quiesced, local repository, default stack limit); the workload writes a file every 0.5 s throughout."
note "changed MB: the data clusters allocated in the layer the guest left (4 KiB subclusters, qemu-img map of that layer alone), i.e. exactly what the incremental reads; zeroed clusters cost nothing and are left out. zstd -1: of those clusters' data, concatenated."
note "seconds: the backup's wall time minus the measuring hook's."
note "stored: bytes_new of the backup (new chunks, compressed); windows full / delta: windows sent whole (a stack at its limit, or mostly dirty) / as a delta."
note "Restores: \`restore-image --format raw\` of night 1's and of night $NIGHTS's backup, the repository read once before (warm)."
bench_report "livebackup steady state, $NIGHTS nights" \
    "Disk: ext4 of $SIZE_GIB GiB filled with files from /usr ($(mb "$ALLOC") MB allocated), the guest's vda (qcow2)."
