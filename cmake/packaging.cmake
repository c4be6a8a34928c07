# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Debian packages: `cpack -G DEB` in a build tree configured with
# -DCMAKE_INSTALL_PREFIX=/usr makes two, from the install components:
#   backupd     the repository server (backupd, backupd.service, backupd(8),
#               the format and protocol documents)
#   livebackup  the agent (livebackup, its nbdkit plugin, the units and
#               timers, livebackup(1), the bash completion, examples);
#               depends on backupd, which it runs for local repositories
# Shared-library dependencies come from dpkg-shlibdeps; the programs the
# agent runs are declared below.
set(CPACK_PACKAGE_NAME livebackup)
set(CPACK_PACKAGE_VENDOR "livebackup")
set(CPACK_PACKAGE_CONTACT "livebackup maintainers <livebackup@localhost>")
# (No CPACK_PACKAGE_DESCRIPTION_SUMMARY: CPackDeb would put it above each
# package's own summary line.)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_COMPONENTS_ALL livebackup backupd)
# Absolute destinations (the units' LB_UNIT_DIR) go into the package, never
# onto the machine that builds it.
set(CPACK_SET_DESTDIR ON)
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_LICENSE "LGPL-2.1-or-later")

set(CPACK_DEBIAN_BACKUPD_PACKAGE_NAME backupd)
set(CPACK_DEBIAN_BACKUPD_DESCRIPTION
    "livebackup repository server\nbackupd owns a livebackup repository and serves agents over ssh\n(backupd serve) or a unix socket (backupd listen).")
# librados is loaded for a RADOS repository only (store/rados_dl.c): a
# server of file repositories does without Ceph's libraries.
set(CPACK_DEBIAN_BACKUPD_PACKAGE_SUGGESTS "openssh-server, librados2 (>= 15)")

set(CPACK_DEBIAN_LIVEBACKUP_PACKAGE_NAME livebackup)
set(CPACK_DEBIAN_LIVEBACKUP_DESCRIPTION
    "incremental live backup of libvirt/QEMU virtual machines\nlivebackup backs up running domains through qcow2 tracking overlays,\nsending only the 4 KiB clusters the guest changed, to a local or remote\n(ssh) repository; restore, instant restore, map and mount.")
# qemu-nbd and qemu-img (qemu-utils), ssh for remote repositories; nbdkit,
# FUSE and fuse2fs for map, mount and instant restore. libvirt, libxml2
# and libnbd are loaded when first used (common/dl.h: agent/live/virt_dl.c,
# xml_dl.c, agent/client/nbd_dl.c), so shlibdeps does not see them: named
# here (libvirt 5.10: virDomainAgentSetResponseTimeout; libnbd 1.12, as
# the build asks).
set(CPACK_DEBIAN_LIVEBACKUP_PACKAGE_DEPENDS
    "backupd (= ${PROJECT_VERSION}), qemu-utils, openssh-client, libvirt0 (>= 5.10), libnbd0 (>= 1.12), libxml2 (>= 2.9)")
set(CPACK_DEBIAN_LIVEBACKUP_PACKAGE_RECOMMENDS "nbdkit, fuse3, fuse2fs, libvirt-daemon-system")
set(CPACK_DEBIAN_LIVEBACKUP_PACKAGE_SUGGESTS "qemu-guest-agent")

include(CPack)
