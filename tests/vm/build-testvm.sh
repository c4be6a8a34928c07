#!/bin/bash
# Builds the tiny livebackup test guest into OUTDIR, from Debian packages:
#   OUTDIR/vmlinux (ELF, booted via PVH) or OUTDIR/bzImage (fallback),
#   OUTDIR/initrd.cpio.gz (busybox, modules, qemu-ga + libs, /init, workload),
#   OUTDIR/data.raw and OUTDIR/data.qcow2 (256 MiB ext4 data disk templates),
#   OUTDIR/env.sh (LB_TESTVM_* variables pointing at all of the above).
# Idempotent: OUTDIR/stamp records what a complete build was made from
# (package versions and a hash of the guest sources); when it matches and
# every output exists nothing is rebuilt. Installs missing host tools with
# apt-get. Environment: LB_TESTVM_KERNEL_PKG forces a kernel package name.
# Usage: build-testvm.sh OUTDIR
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly here
readonly FORMAT=1
# Module file names, in dependency order (checked against each module's
# .modinfo "depends"). crc32c_generic is a soft dependency of ext4/jbd2 that
# modinfo omits. pvpanic-mmio drives the ISA pvpanic device of the domain, so
# a guest kernel panic ends the domain (<on_crash>destroy</on_crash>).
readonly MODULES=(crc32c_generic crc16 mbcache jbd2 ext4 virtio_ring virtio
	virtio_blk virtio_console virtio_pci_legacy_dev virtio_pci_modern_dev
	virtio_pci pvpanic pvpanic-mmio)
readonly DISK_SIZE=256M
# A fixed filesystem UUID, so every copy of the template looks the same.
readonly DISK_UUID=6c627465-7374-4c42-8000-000000000001

log() { echo "build-testvm: $*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}

[[ $# -eq 1 && -n $1 ]] || {
	echo "usage: $0 OUTDIR" >&2
	exit 2
}
mkdir -p "$1"
OUTDIR=$(cd "$1" && pwd)
readonly OUTDIR

# --- host tools -------------------------------------------------------------
apt_updated=0
apt_update_once() {
	if ((apt_updated == 0)); then
		log "apt-get update"
		apt-get update -qq >&2
		apt_updated=1
	fi
}
apt_install() {
	apt_update_once
	log "apt-get install $*"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends "$@" >&2
}
ensure_tools() {
	local -A pkg_of=([busybox]=busybox-static [cpio]=cpio [xz]=xz-utils
		[mkfs.ext4]=e2fsprogs [qemu-img]=qemu-utils [readelf]=binutils
		[gzip]=gzip [flock]=util-linux [sha256sum]=coreutils)
	local t missing=()
	for t in "${!pkg_of[@]}"; do
		command -v "$t" >/dev/null 2>&1 || missing+=("${pkg_of[$t]}")
	done
	if ((${#missing[@]})); then
		mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
		apt_install "${missing[@]}"
	fi
	# the guest needs the static busybox (a dynamic one would lack its libs)
	if ldd "$(command -v busybox)" >/dev/null 2>&1; then
		apt_install busybox-static
	fi
}

# --- package selection ------------------------------------------------------
# One apt-cache call (each costs ~0.6 s here): prints "PKG CANDIDATE" lines
# for the kernel packages (or LB_TESTVM_KERNEL_PKG) and qemu-guest-agent.
# apt-cache fails for a moment while an apt or dpkg run elsewhere changes
# the package cache ("E: Cache is out of sync, can't x-ref a package
# file"; test_deb installs packages beside the VM tests): it is retried,
# and a lasting failure says why.
apt_candidates() {
	local kq=${LB_TESTVM_KERNEL_PKG:-'^linux-image-6\.1\.0-[0-9]+-amd64$'}
	local out i
	for i in $(seq 30); do
		if out=$(apt-cache policy "$kq" qemu-guest-agent 2>/dev/null); then
			awk '
				/^[^ ]/ { p = $1; sub(/:$/, "", p) }
				/^ +Candidate:/ && $2 != "(none)" { print p, $2 }' <<<"$out"
			return 0
		fi
		((i > 1)) || log "apt-cache policy failed: retrying"
		sleep 1
	done
	apt-cache policy "$kq" qemu-guest-agent >/dev/null ||
		die "apt-cache policy failed 30 times (its error above)"
}
pick_packages() {
	local cands
	cands=$(apt_candidates)
	if ! grep -q '^linux-image-' <<<"$cands" ||
		! grep -q '^qemu-guest-agent ' <<<"$cands"; then
		apt_update_once
		cands=$(apt_candidates)
	fi
	kpkg=$(grep '^linux-image-' <<<"$cands" | cut -d' ' -f1 | sort -V |
		tail -n 1) || true
	[[ -n $kpkg ]] ||
		die "no ${LB_TESTVM_KERNEL_PKG:-linux-image-6.1.0-*-amd64} package known to apt"
	kver=${kpkg#linux-image-}
	kpkg_ver=$(awk -v p="$kpkg" '$1 == p {print $2}' <<<"$cands")
	qga_ver=$(awk '$1 == "qemu-guest-agent" {print $2}' <<<"$cands")
	[[ -n $qga_ver ]] || die "apt knows no version of qemu-guest-agent"
	busybox_ver=$(dpkg-query -W -f '${Version}' busybox-static 2>/dev/null ||
		echo unknown)
}

stamp_text() {
	local src_hash
	src_hash=$(cd "$here" && cat build-testvm.sh guest/init guest/workload.sh \
		guest/wlgen.awk | sha256sum | awk '{print $1}')
	printf 'format=%s\nkernel=%s=%s\nqemu-guest-agent=%s\nbusybox-static=%s\nsources=%s\nmodules=%s\n' \
		"$FORMAT" "$kpkg" "$kpkg_ver" "$qga_ver" "$busybox_ver" "$src_hash" \
		"${MODULES[*]}"
}

build_complete() { # EXPECTED_STAMP_TEXT
	[[ -f $OUTDIR/stamp && -f $OUTDIR/env.sh ]] || return 1
	[[ "$(cat "$OUTDIR/stamp")" == "$1" ]] || return 1
	(
		# shellcheck source=/dev/null
		. "$OUTDIR/env.sh"
		[[ -s $LB_TESTVM_KERNEL && -s $LB_TESTVM_INITRD &&
			-s $LB_TESTVM_DISK_RAW && -s $LB_TESTVM_DISK_QCOW2 ]]
	)
}

# --- build steps -------------------------------------------------------------
download() { # PKG VERSION -> prints the .deb path (kept in OUTDIR/debs)
	local pkg=$1 ver=$2 deb
	mkdir -p "$OUTDIR/debs"
	# apt-get names the file with the epoch colon encoded as %3a
	deb="$OUTDIR/debs/${pkg}_${ver//:/%3a}_amd64.deb"
	if [[ ! -s $deb ]]; then
		rm -f "$OUTDIR/debs/${pkg}_"*.deb
		log "apt-get download $pkg=$ver"
		# apt warns when its _apt user cannot write the directory: harmless
		(cd "$OUTDIR/debs" && apt-get download -q "$pkg=$ver" 2>&1 |
			grep -v 'unsandboxed as root' >&2) || true
		[[ -s $deb ]] || die "download of $pkg=$ver failed"
	fi
	echo "$deb"
}

# Unpacks the ELF vmlinux from an XZ-compressed bzImage; returns non-zero if
# that does not give an ELF with the PVH entry note (Xen note type 0x12).
extract_vmlinux() { # BZIMAGE OUT
	local off
	while read -r off; do
		tail -c +$((off + 1)) "$1" | xz -dc --single-stream >"$2" 2>/dev/null ||
			true
		if [[ "$(head -c 4 "$2" | od -An -c | tr -d ' ')" == '177ELF' ]] &&
			readelf -n "$2" 2>/dev/null |
			grep -Eq '^[[:space:]]+Xen[[:space:]]+0x[0-9a-f]+[[:space:]].*\(0x0*12\)'; then
			return 0
		fi
	done < <(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$1" | cut -d: -f1)
	rm -f "$2"
	return 1
}

copy_with_libs() { # BINARY DESTROOT : copies every library ldd lists
	local line path
	while read -r line; do
		case $line in
		*'=> not found'*) return 1 ;;
		*'=> /'*) path=${line#*=> } ;;
		/*) path=$line ;;
		*) continue ;; # linux-vdso.so.1
		esac
		path=${path%% (*}
		mkdir -p "$2$(dirname "$path")"
		cp -L "$path" "$2$path"
	done < <(ldd "$1")
}

install_qga_deps() { # QGA_DEB : installs the libraries qemu-ga depends on
	local deps
	mapfile -t deps < <(dpkg-deb -f "$1" Depends | tr ',' '\n' |
		sed -e 's/|.*//' -e 's/(.*)//' -e 's/[[:space:]]//g' | grep -v '^$')
	apt_install "${deps[@]}"
}

build() {
	local b="$OUTDIR/.build" kdeb qdeb root m dep kernel kernel_kind i
	rm -rf "$b" "$OUTDIR/stamp"
	mkdir -p "$b/k" "$b/qga"
	root="$b/root"

	kdeb=$(download "$kpkg" "$kpkg_ver")
	qdeb=$(download qemu-guest-agent "$qga_ver")

	# kernel image and just the modules we need (no 400 MB dpkg -x)
	log "unpacking $kpkg"
	local pats=("./boot/vmlinuz-$kver")
	for m in "${MODULES[@]}"; do
		pats+=("./lib/modules/$kver/kernel/*/$m.ko")
	done
	dpkg-deb --fsys-tarfile "$kdeb" |
		tar -x -C "$b/k" --wildcards --wildcards-match-slash "${pats[@]}"

	if extract_vmlinux "$b/k/boot/vmlinuz-$kver" "$b/vmlinux"; then
		kernel_kind=elf
		kernel=$OUTDIR/vmlinux
		mv "$b/vmlinux" "$kernel.tmp"
	else
		log "could not unpack a PVH-capable ELF vmlinux: using the bzImage"
		kernel_kind=bzimage
		kernel=$OUTDIR/bzImage
		cp "$b/k/boot/vmlinuz-$kver" "$kernel.tmp"
	fi

	log "assembling the initramfs"
	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,etc,root,proc,sys}
	mkdir -p "$root"/{dev,run,tmp,data,data2,lbtest,"lib/modules/$kver"}
	cp "$(command -v busybox)" "$root/bin/busybox"
	while read -r m; do
		[[ -e $root/$m || -L $root/$m ]] || ln -s /bin/busybox "$root/$m"
	done < <("$root/bin/busybox" --list-full)

	# modules, flat, plus a dependency order check against modinfo
	local -A seen=()
	: >"$root/lbtest/modules"
	for m in "${MODULES[@]}"; do
		local ko
		ko=$(find "$b/k/lib/modules/$kver" -name "$m.ko" | sed -n 1p)
		[[ -n $ko ]] || die "module $m.ko not found in $kpkg"
		# the .modinfo section holds NUL-separated key=value strings
		for dep in $(LC_ALL=C tr '\0' '\n' <"$ko" |
			sed -n 's/^depends=//p' | sed -n 1p | tr ',' ' '); do
			[[ -n ${seen[$dep]:-} ]] ||
				die "module order: $m needs $dep before it (MODULES list)"
		done
		seen[${m//-/_}]=1
		cp "$ko" "$root/lib/modules/$kver/$m.ko"
		echo "$m" >>"$root/lbtest/modules"
	done

	# qemu-ga from the deb (not installed on the host) and its libraries
	dpkg -x "$qdeb" "$b/qga"
	local qga="$b/qga/usr/sbin/qemu-ga"
	[[ -x $qga ]] || die "no usr/sbin/qemu-ga in $qdeb"
	cp "$qga" "$root/usr/sbin/qemu-ga"
	if ! copy_with_libs "$qga" "$root"; then
		log "qemu-ga needs libraries missing on this host: installing them"
		install_qga_deps "$qdeb"
		copy_with_libs "$qga" "$root" ||
			die "qemu-ga still has missing libraries: $(ldd "$qga" | grep 'not found')"
	fi

	cp "$here/guest/init" "$root/init"
	cp "$here/guest/workload.sh" "$root/lbtest/workload.sh"
	cp "$here/guest/wlgen.awk" "$root/lbtest/wlgen.awk"
	cp "$here/guest/wlgen.awk" "$OUTDIR/wlgen.awk"
	chmod 0755 "$root/init" "$root/lbtest/workload.sh"
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
	printf 'root:x:0:\n' >"$root/etc/group"
	# the kernel opens /dev/console before /init runs; without the node the
	# early output is lost until /init mounts devtmpfs (handled there too)
	mknod -m 0600 "$root/dev/console" c 5 1 2>/dev/null || true
	(cd "$root" && find . -print0 | LC_ALL=C sort -z |
		cpio --null -o -H newc -R 0:0 --quiet) | gzip -9n >"$OUTDIR/initrd.cpio.gz.tmp"

	log "making the data disk templates"
	rm -f "$b/data.raw"
	truncate -s "$DISK_SIZE" "$b/data.raw"
	mkfs.ext4 -q -F -b 4096 -L lbdata -U "$DISK_UUID" \
		-E lazy_itable_init=0,lazy_journal_init=0,root_owner=0:0 "$b/data.raw"
	qemu-img convert -f raw -O qcow2 "$b/data.raw" "$OUTDIR/data.qcow2.tmp"

	mv "$kernel.tmp" "$kernel"
	if [[ $kernel_kind == elf ]]; then
		rm -f "$OUTDIR/bzImage"
	else
		rm -f "$OUTDIR/vmlinux"
	fi
	mv "$OUTDIR/initrd.cpio.gz.tmp" "$OUTDIR/initrd.cpio.gz"
	mv "$b/data.raw" "$OUTDIR/data.raw"
	mv "$OUTDIR/data.qcow2.tmp" "$OUTDIR/data.qcow2"
	cat >"$OUTDIR/env.sh" <<EOF
# Written by tests/vm/build-testvm.sh: the livebackup test guest.
LB_TESTVM_DIR='$OUTDIR'
LB_TESTVM_KVER='$kver'
LB_TESTVM_KERNEL_KIND='$kernel_kind'
LB_TESTVM_KERNEL='$kernel'
LB_TESTVM_INITRD='$OUTDIR/initrd.cpio.gz'
LB_TESTVM_DISK_RAW='$OUTDIR/data.raw'
LB_TESTVM_DISK_QCOW2='$OUTDIR/data.qcow2'
LB_TESTVM_WLGEN='$OUTDIR/wlgen.awk'
export LB_TESTVM_DIR LB_TESTVM_KVER LB_TESTVM_KERNEL_KIND LB_TESTVM_KERNEL
export LB_TESTVM_INITRD LB_TESTVM_DISK_RAW LB_TESTVM_DISK_QCOW2 LB_TESTVM_WLGEN
EOF
	rm -rf "$b"
	for i in "$OUTDIR"/initrd.cpio.gz "$kernel"; do
		log "$(basename "$i"): $(du -h --apparent-size "$i" | cut -f1)"
	done
}

main() {
	ensure_tools
	exec 9>"$OUTDIR/.lock"
	flock 9
	pick_packages
	local want
	want=$(stamp_text)
	if build_complete "$want"; then
		log "up to date: $OUTDIR ($kpkg $kpkg_ver)"
	else
		log "building into $OUTDIR ($kpkg $kpkg_ver, qemu-guest-agent $qga_ver)"
		build
		printf '%s\n' "$want" >"$OUTDIR/stamp.tmp"
		mv "$OUTDIR/stamp.tmp" "$OUTDIR/stamp"
		log "done"
	fi
}

main
