#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Restoring whole VMs: every backup of a guest running its workload is
# restored as a new domain (--define --start --new-mac: its MAC is a new
# one) and checked from inside the restored guest, through its agent:
# every file the workload finished before that backup is there with the
# right content. Then an in-place restore of a shut-off domain to an older
# backup (and a backup of it afterwards, which re-enrols it), a restore
# from an ssh:// repository, and bad input: a chunk of the disk or of the
# saved domain XML missing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vmlib.sh"

R=$T/repo
run_ok livebackup init --repo "$R"
cp "$LB_TESTVM_DISK_QCOW2" "$VMDIR/src.qcow2"
MAC=52:54:00:1b:00:01
# QEMU hands this host file to the guest (fw_cfg): kept only on request.
echo "host secret" >"$T/fwkey"
vm=$(new_vm src --disk "vda=$VMDIR/src.qcow2:qcow2" \
    --device "<interface type='user'><mac address='$MAC'/><model type='virtio'/></interface>" \
    --top "<sysinfo type='fwcfg'><entry name='opt/lbtest/key' file='$T/fwkey'/></sysinfo>")
vm_wait_agent "$vm" 120 >/dev/null

ids=()
mins=()
for g in 0 1 2; do
    vm_wait_workload "$vm" $(($(wl_done "$vm") + 3)) >/dev/null
    mins+=("$(wl_done "$vm")")
    run_ok livebackup backup --json "$vm" --repo "$R"
    ids+=("$(json_field "$T/out" summary id)")
done
ok "three backups of $vm while it writes: ${ids[*]}"

# A check that runs inside a guest: files 1..N are intact.
in_guest_check() {
    local dom=$1 n=$2 out
    out=$(VM_EXEC_TIMEOUT=120 vm_guest_exec "$dom" sh -c \
        "for n in \$(seq 1 $n); do f=\$(printf /data/wl/f%06d \$n); awk -v n=\$n -f /lbtest/wlgen.awk | cmp -s - \$f || { echo BAD \$n; exit 1; }; done; echo GOOD") ||
        fail "in $dom: $out"
    [[ $out == *GOOD* ]] || fail "in $dom: $out"
}

for i in 0 1 2; do
    # The test guest boots its kernel from a host file: kept on request.
    run_ok livebackup restore --json "$vm" --repo "$R" --backup "${ids[$i]}" \
        --to "$T/r$i" --define --start --new-mac --keep-host-access
    grep -q "keeps what runs host programs or opens host files (--keep-host-access): .*<kernel>" "$T/err" ||
        fail "no warning on the kept host access: $(cat "$T/err")"
    grep -q "<entry> $T/fwkey: a host file (given to the guest by fw_cfg)" "$T/err" ||
        fail "the fw_cfg entry kept, not named: $(cat "$T/err")"
    name=$(json_field "$T/out" summary name)
    [[ $name == "$vm-restore-"* ]] || fail "restored name $name"
    [[ $(virsh -q -c qemu:///system domuuid "$name") != $(virsh -q -c qemu:///system domuuid "$vm") ]] ||
        fail "the restored domain kept the UUID"
    [[ -f $T/r$i/$name-vda.qcow2 && -f $T/r$i/$name.xml ]] || fail "restored files"
    grep -q "lbtrack" "$T/r$i/$name.xml" && fail "the restored XML points at a tracking overlay"
    mac=$(virsh -q -c qemu:///system domiflist "$name" | awk '{ print $NF }')
    [[ $mac =~ ^52:54:00(:[0-9a-f]{2}){3}$ && $mac != "$MAC" ]] ||
        fail "--new-mac: the restored domain's MAC is '$mac' (the original's: $MAC)"
    grep -Eq "<mac address=['\"]$mac['\"]" "$T/r$i/$name.xml" || fail "the restored XML lacks the new MAC $mac"
    vm_wait_agent "$name" 120 >/dev/null
    in_guest_check "$name" "${mins[$i]}"
    vm_destroy "$name"
    ok "backup $i restored as $name (MAC $mac), started, ${mins[$i]} files checked inside the guest"
done

# show: what a backup holds.
run_ok livebackup show --repo "$R" --backup "${ids[1]}"
grep -q "^parent: *${ids[0]}" "$T/out" && grep -q "^consistency: *quiesced" "$T/out" &&
    grep -q "^  vda " "$T/out" && grep -q "<domain type=.qemu." "$T/out" || fail "show: $(cat "$T/out")"
ok "show lists the backup, its disks and its saved XML"

# From an ssh:// repository (same repository, served through sshd).
sshd_start
URL="ssh://root@127.0.0.1:$SSH_PORT$R"
run_ok livebackup restore "$vm" --repo "$URL" --rsh "$LB_RSH" --remote-backupd "$BACKUPD" \
    --backup "${ids[2]}" --to "$T/ssh" --name "${VM_PREFIX}viassh" --format raw --define
virsh -q -c qemu:///system dominfo "${VM_PREFIX}viassh" >/dev/null || fail "not defined"
m=$(bash "$LB_SRC/tests/vm/wl-verify.sh" "$T/ssh/${VM_PREFIX}viassh-vda.raw" "${mins[2]}") ||
    fail "ssh restore does not verify"
vm_destroy "${VM_PREFIX}viassh"
ok "restore from ssh:// (raw, defined): $m files verified"

# Bad input.
expect_fail "no backups of ${VM_PREFIX}nosuch" livebackup restore "${VM_PREFIX}nosuch" \
    --repo "$R" --to "$T/x"
expect_fail "no backup 20200101-000000-abcd of $vm" livebackup restore "$vm" \
    --repo "$R" --backup 20200101-000000-abcd --to "$T/x"
expect_fail "no backup of $vm at or before 2001-01-01" livebackup restore "$vm" \
    --repo "$R" --backup 2001-01-01 --to "$T/x"
mkdir -p "$T/busy"
touch "$T/busy/${VM_PREFIX}again-vda.qcow2"
expect_fail "already exist.*--force" livebackup restore "$vm" --repo "$R" \
    --to "$T/busy" --name "${VM_PREFIX}again"
run_ok livebackup restore "$vm" --repo "$R" --to "$T/busy" --name "${VM_PREFIX}again" --force
ok "--force replaces existing files"
# Without --new-mac the MAC is kept, with a warning while the original is
# defined.
grep -Eq "<mac address=['\"]$MAC['\"]" "$T/busy/${VM_PREFIX}again.xml" ||
    fail "without --new-mac the MAC changed: $(grep "<mac" "$T/busy/${VM_PREFIX}again.xml")"
grep -q "$vm is still defined: the restored domain has the same MAC address(es); use --new-mac" "$T/err" ||
    fail "no warning about the shared MAC: $(cat "$T/err")"
ok "without --new-mac: the MAC is kept, and a warning says the original is still defined"
# Killed after its disk is in place, before its XML: the rerun, without
# --force, finishes it (the files it finds are its own).
rc=0
LIVEBACKUP_FAULT=agent:restore-renamed livebackup restore "$vm" --repo "$R" \
    --to "$T/int" --name "${VM_PREFIX}int" >"$T/out" 2>&1 || rc=$?
[[ $rc -eq 137 ]] || fail "restore-renamed: exit $rc: $(cat "$T/out")"
[[ -e $T/int/${VM_PREFIX}int-vda.qcow2 && ! -e $T/int/${VM_PREFIX}int.xml ]] ||
    fail "not interrupted between the disk and the XML: $(ls -A "$T/int")"
run_ok livebackup restore "$vm" --repo "$R" --to "$T/int" --name "${VM_PREFIX}int"
grep -q "finishing an interrupted restore" "$T/err" || fail "no note: $(cat "$T/err")"
[[ $(ls -A "$T/int" | sort | tr '\n' ' ') == "${VM_PREFIX}int-vda.qcow2 ${VM_PREFIX}int.xml " ]] ||
    fail "left: $(ls -A "$T/int")"
qemu-img convert -O raw "$T/int/${VM_PREFIX}int-vda.qcow2" "$T/int.raw"
m=$(bash "$LB_SRC/tests/vm/wl-verify.sh" "$T/int.raw" 0) ||
    fail "the finished restore does not verify"
ok "a restore killed before its XML is finished by a plain rerun ($m files)"
mkdir "$T/tiny"
mount -t tmpfs -o size=2m tmpfs "$T/tiny"
LB_MOUNTS+=("$T/tiny")
expect_fail "not enough space in $T/tiny" livebackup restore "$vm" --repo "$R" --to "$T/tiny"
[[ -z $(ls -A "$T/tiny") ]] || fail "a refused restore wrote files: $(ls -A "$T/tiny")"
# A damaged repository: a chunk of the disk gone (one the manifest of the
# backup restored names for vda), or the chunk of its saved domain XML
# gone (the BLOB its domain_xml names). Each restore fails before writing
# or defining anything, naming the backup.
damaged_restore() { # REPO REGEX
    expect_fail "$2" livebackup restore "$vm" --repo "$1" --backup "${ids[2]}" \
        --to "$T/d" --name "${VM_PREFIX}dmg" --define
    virsh -q -c qemu:///system dominfo "${VM_PREFIX}dmg" >/dev/null 2>&1 &&
        fail "a failed restore defined a domain"
    ls -A "$T/d" 2>/dev/null | grep . >/dev/null && fail "a failed restore left files: $(ls -A "$T/d")"
    return 0
}
cp -a "$R" "$T/damaged"
chunk=$(manifest_chunks "$R/backups/${ids[2]}" vda | awk 'NR == 1 { print $3 }')
[[ -n $chunk ]] || fail "backup ${ids[2]} names no chunk for vda"
rm "$(chunk_file "$T/damaged" "$chunk")"
damaged_restore "$T/damaged" "backup ${ids[2]}, disk vda: [0-9]+ chunk\(s\) missing"
ok "a missing chunk of the disk: clear error, nothing written or defined"
cp -a "$R" "$T/noxml"
xmlchunk=$(livebackup list --json --repo "$R" --name "$vm" |
    jq -r --arg id "${ids[2]}" 'select(.event == "backup" and .id == $id) | .domain_xml')
[[ $xmlchunk =~ ^[0-9a-f]{64}$ ]] || fail "no domain_xml in the listing of ${ids[2]}: '$xmlchunk'"
rm "$(chunk_file "$T/noxml" "$xmlchunk")"
damaged_restore "$T/noxml" "backup ${ids[2]}: saved domain XML: .*(No such file|missing)"
ok "the saved domain XML's chunk missing: clear error naming the backup, nothing written or defined"

# Without --keep-host-access the saved XML's host programs and files
# (the emulator, the kernel and initrd it boots, the file QEMU gives the
# guest by fw_cfg) are left out, and named.
run_ok livebackup restore "$vm" --repo "$R" --to "$T/safe" --name "${VM_PREFIX}safe" --define
grep -q "leaves out what would run host programs or open host files: .*<emulator> /usr/bin/qemu-system-x86_64: a host program.*<kernel>" "$T/err" ||
    fail "no warning on the host access left out: $(cat "$T/err")"
grep -q "<entry> $T/fwkey: a host file (given to the guest by fw_cfg)" "$T/err" ||
    fail "the fw_cfg entry not named: $(cat "$T/err")"
virsh -q -c qemu:///system dumpxml --inactive "${VM_PREFIX}safe" >"$T/safe.xml"
! grep -Eq "<kernel>|<initrd>" "$T/safe.xml" || fail "the kernel was kept: $(cat "$T/safe.xml")"
! grep -q "fwkey" "$T/safe.xml" || fail "the fw_cfg entry was kept: $(cat "$T/safe.xml")"
grep -q "org.qemu.guest_agent.0" "$T/safe.xml" || fail "the guest agent's channel was lost"
virsh -q -c qemu:///system undefine "${VM_PREFIX}safe" >/dev/null
ok "a restored domain leaves out the host programs and files of its saved XML, saying which"

# --to a relative directory: the defined domain names its disk by the
# absolute path (libvirt would look for a relative one from its own
# working directory).
cd "$T"
run_ok livebackup restore "$vm" --repo "$R" --to rel --name "${VM_PREFIX}rel" --define
cd - >/dev/null
src=$(virsh -q -c qemu:///system domblklist "${VM_PREFIX}rel" | awk '$1 == "vda" {print $2}')
[[ $src == "$T/rel/${VM_PREFIX}rel-vda.qcow2" && -f $src ]] ||
    fail "--to rel: the domain's vda is '$src'"
grep -q "$T/rel/${VM_PREFIX}rel.xml" "$T/out" || fail "--to rel: the XML's path: $(cat "$T/out")"
virsh -q -c qemu:///system undefine "${VM_PREFIX}rel" >/dev/null
ok "restore --to a relative directory defines the domain on absolute paths"

# In place, to an older backup, on the shut-off domain.
expect_fail "is running: an in-place restore needs it shut off" \
    livebackup restore "$vm" --repo "$R" --backup "${ids[0]}" --in-place --force
virsh -q -c qemu:///system destroy "$vm" >/dev/null
run_ok livebackup restore "$vm" --repo "$R" --backup "${ids[0]}" --in-place --force
[[ $(virsh -q -c qemu:///system domblklist "$vm" | awk '$1 == "vda" {print $2}') == "$VMDIR/src.qcow2" ]] ||
    fail "in-place: the domain is not back on its image"
ls "$VMDIR" | grep "^$vm-vda.lbtrack" >/dev/null && fail "in-place: tracking overlays left"
m=$(qemu-img convert -O raw "$VMDIR/src.qcow2" "$T/inplace.raw" &&
    bash "$LB_SRC/tests/vm/wl-verify.sh" "$T/inplace.raw" "${mins[0]}")
[[ $m -lt ${mins[2]} ]] || fail "in-place restore did not go back in time ($m files)"
ok "in-place restore to backup 0 ($m files, the disk went back in time)"
# A forged backup (issue 10, item 7), as a broken-into host or a hostile
# repository can make one: backup 2's disks, with a saved XML that names
# another file as vda's image and runs a host command. In place, the
# restore writes over the domain's own image as it is defined now; a
# restored domain leaves the command out.
echo precious >"$T/victim"
run_ok livebackup show --json --repo "$R" --backup "${ids[2]}"
jq -r 'select(.event == "backup") | .domain_xml_text' "$T/out" >"$T/saved.xml"
grep -q "$VMDIR/src.qcow2" "$T/saved.xml" || fail "backup 2's XML does not name src.qcow2"
perl -pe 's{\Q'"$VMDIR/src.qcow2"'\E}{'"$T/victim"'}g;
    s{<domain }{<domain xmlns:qemu="http://libvirt.org/schemas/domain/qemu/1.0" };
    s{</domain>}{<qemu:commandline><qemu:arg value="-name"/><qemu:arg value="pwned"/></qemu:commandline></domain>}' \
    "$T/saved.xml" >"$T/forged.xml"
"$LB_BUILD/tests/lbhostile" recommit "${ids[2]}" "$vm" "$T/forged.xml" \
    -- "$BACKUPD" serve --repo "$R" >"$T/out" 2>&1 || fail "recommit: $(cat "$T/out")"
fid=$(awk '/COMMITTED/ { print $3 }' "$T/out")
[[ -n $fid ]] || fail "no forged backup: $(cat "$T/out")"
run_ok livebackup restore "$vm" --repo "$R" --backup "$fid" --in-place --force
[[ $(cat "$T/victim") == precious ]] || fail "the forged XML's file was written"
[[ $(virsh -q -c qemu:///system domblklist "$vm" | awk '$1 == "vda" {print $2}') == "$VMDIR/src.qcow2" ]] ||
    fail "in-place (forged): the domain is not on its own image"
m=$(qemu-img convert -O raw "$VMDIR/src.qcow2" "$T/forged.raw" &&
    bash "$LB_SRC/tests/vm/wl-verify.sh" "$T/forged.raw" "${mins[2]}") ||
    fail "in-place (forged): the image is not backup 2's"
ok "a forged saved XML naming another file: in place writes only the domain's own image ($m files), the file is untouched"
run_ok livebackup restore "$vm" --repo "$R" --backup "$fid" --to "$T/forged" \
    --name "${VM_PREFIX}forged" --define
grep -q "leaves out .*<qemu:commandline>: QEMU arguments" "$T/err" || fail "no warning: $(cat "$T/err")"
virsh -q -c qemu:///system dumpxml --inactive "${VM_PREFIX}forged" >"$T/forged-def.xml"
! grep -q "pwned\|$T/victim" "$T/forged-def.xml" || fail "the forged XML was defined: $(cat "$T/forged-def.xml")"
virsh -q -c qemu:///system undefine "${VM_PREFIX}forged" >/dev/null
ok "a forged saved XML's host command is left out of the restored domain, with a warning"
# A DTD's entities would carry markup past those checks unexpanded: a
# saved XML with a <!DOCTYPE> (libvirt never writes one) is refused
# before anything is written or defined.
dtd="<!DOCTYPE domain [<!ENTITY e \"<emulator>$T/victim</emulator>\">]>"
# (after the XML declaration the saved XML starts with)
sed -e '1{/^<?xml/!s|^|'"$dtd"'\n|;/^<?xml/s|$|\n'"$dtd"'|}' -e 's|</devices>|\&e;</devices>|' \
    "$T/saved.xml" >"$T/dtd.xml"
grep -q '&e;</devices>' "$T/dtd.xml" || fail "no entity: $(cat "$T/dtd.xml")"
"$LB_BUILD/tests/lbhostile" recommit "${ids[2]}" "$vm" "$T/dtd.xml" \
    -- "$BACKUPD" serve --repo "$R" >"$T/out" 2>&1 || fail "recommit: $(cat "$T/out")"
did=$(awk '/COMMITTED/ { print $3 }' "$T/out")
[[ -n $did ]] || fail "no forged backup: $(cat "$T/out")"
expect_fail "saved domain XML has a <!DOCTYPE>" livebackup restore "$vm" --repo "$R" \
    --backup "$did" --to "$T/dtd" --name "${VM_PREFIX}dtd" --define
[[ -z $(ls -A "$T/dtd" 2>/dev/null) ]] || fail "files written: $(ls "$T/dtd")"
! virsh -q -c qemu:///system dominfo "${VM_PREFIX}dtd" >/dev/null 2>&1 ||
    fail "the domain of a saved XML with a DTD was defined"
ok "a forged saved XML with a DTD's entity is refused: nothing written or defined"
# show prints a saved XML that the repository wrote: an escape sequence
# in it (here OSC 52, which writes the terminal's clipboard) is shown as
# text, never sent to the terminal.
sed "s|</name>|</name><description>$(printf '\033]52;c;cm0gLXJmIH4K\007')</description>|" \
    "$T/saved.xml" >"$T/esc.xml"
grep -q $'\033' "$T/esc.xml" || fail "no escape in the forged XML"
"$LB_BUILD/tests/lbhostile" recommit "${ids[2]}" "$vm" "$T/esc.xml" \
    -- "$BACKUPD" serve --repo "$R" >"$T/out" 2>&1 || fail "recommit: $(cat "$T/out")"
eid=$(awk '/COMMITTED/ { print $3 }' "$T/out")
[[ -n $eid ]] || fail "no forged backup: $(cat "$T/out")"
run_ok livebackup show --repo "$R" --name "$vm" --backup "$eid"
! grep -q $'[\033\007]' "$T/out" || fail "show sent the repository's escape sequence to the terminal"
grep -qF '<description>\x1b]52;c;cm0gLXJmIH4K\x07</description>' "$T/out" ||
    fail "show: $(grep description "$T/out")"
ok "show writes a saved XML's escape sequence out as text"
vm_start "$vm" >/dev/null
vm_wait_agent "$vm" 120 >/dev/null
vm_wait_workload "$vm" $((m + 2)) >/dev/null
before=$(wl_done "$vm")
run_ok livebackup backup --json "$vm" --repo "$R"
[[ $(json_field "$T/out" summary kind) == full ]] || fail "after in-place restore: not a full backup"
m=$(restore_verify "$R" "$vm" vda "$before")
ok "the next backup re-enrols it (full), restores with $m files"
