/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Instant access to backups (agent/map/, library lb_agent_map, on the
 * client layer): `livebackup mount`, a FUSE filesystem of backups and
 * their disks (mount.c), with the filesystems inside the disks mounted
 * (--fs) by fuse2fs (ext2/3/4) or libguestfs's guestmount (XFS,
 * guestmount.c); the partition tables and superblocks those are found
 * through (parts.c, pure parsers). The nbdkit plugin of `map` is built
 * from nbdkit.c in this folder as a module of its own.
 */
#ifndef LB_AGENT_MAP_H
#define LB_AGENT_MAP_H

#include "common/common.h"

/* ---- partition tables (parts.c) ----------------------------------------- */

#define MAP_MAX_PARTS 128
/* What map_parts_parse reads: the disk's first MAP_PARTS_HEAD bytes
 * (MBR, GPT header and 128 entries at 512- or 4096-byte sectors). */
#define MAP_PARTS_HEAD (1u << 20)

struct map_part {
    unsigned index;    /* 1-based, as Linux numbers them (sda1) */
    uint64_t off, len; /* bytes */
};

enum map_table { MAP_TABLE_NONE, MAP_TABLE_MBR, MAP_TABLE_GPT };

/*
 * The partitions of a disk of disk_size bytes whose first len bytes are
 * head (len <= MAP_PARTS_HEAD; a GPT whose entries lie beyond them counts
 * as none). Primary MBR partitions (an extended one's logical partitions
 * are not listed) or GPT entries, each inside the disk; empty and
 * malformed entries are left out. Returns the table found and fills
 * out[0..*n). Pure: never allocates, never logs (fuzzed:
 * fuzz/fuzz_parts.c).
 */
enum map_table map_parts_parse(const uint8_t *head, size_t len,
                               uint64_t disk_size, struct map_part *out,
                               size_t *n);

/* What a listing's "disks" field says ("vda=SIZE vdb=SIZE"): up to max
 * names (65 bytes each) and sizes. -1 if malformed. Pure. */
int map_list_disks(const char *s, char (*names)[65], uint64_t *sizes,
                   size_t max, size_t *n);

/* ---- filesystems (parts.c) ---------------------------------------------- */

/* What map_fs_probe reads: a filesystem's first bytes (the ext2/3/4
 * superblock ends at 2048). */
#define MAP_FS_HEAD 2048

enum map_fs { MAP_FS_NONE, MAP_FS_EXT, MAP_FS_XFS };

/*
 * The filesystem whose first len bytes are head, from its superblock:
 * ext2/3/4 (magic 0xEF53 at 1080) or XFS (magic "XFSB" at 0 with a
 * plausible block and sector size and version 4 or 5); MAP_FS_NONE for
 * anything else or too few bytes. Pure (fuzzed: fuzz/fuzz_parts.c).
 */
enum map_fs map_fs_probe(const uint8_t *head, size_t len);

/* ---- guestmount (guestmount.c) ------------------------------------------- */

/* How long the libguestfs appliance may take to start (under TCG on a
 * loaded 2-core machine it took 20-60 s). */
#define MAP_GUESTMOUNT_TIMEOUT 300

/*
 * Mount the filesystem of partition part (1-based; 0: the whole disk) of
 * the raw disk image img read-only at mp with guestmount (libguestfs,
 * direct backend), which stays a child of the calling process, serving,
 * until mp is unmounted. Its mount's source is
 * "livebackup-guestmount:PID". Returns once mounted: 0 with *pid set; or
 * -1 (error set: guestmount not installed, it or its appliance failed, or
 * the appliance did not start within timeout_s, and then it was ended),
 * with no process left.
 */
int map_guestmount_start(const char *img, unsigned part, const char *mp,
                         unsigned timeout_s, pid_t *pid);
/* End the guestmount child pid serving mp, if it still runs (unmount mp;
 * SIGTERM, then SIGKILL, if it does not end) and reap it. pid <= 0: no-op. */
void map_guestmount_stop(pid_t pid, const char *mp);
/* The pid in a mount source of map_guestmount_start's; 0 if it is not. */
pid_t map_guestmount_pid(const char *src);
/* Wait up to ms (-1: no limit) for process pid (any, not only a child) to
 * end; true if it has (or never existed). */
bool map_pid_wait_end(pid_t pid, int ms);

/* ---- mount (mount.c) ------------------------------------------------------ */

struct map_mount_opts {
    const char *url;      /* the repository */
    const char *name;     /* only this set (NULL: every one) */
    const char *spec;     /* only this backup of it (NULL: every one) */
    const char *dir;      /* the mountpoint */
    bool fs;              /* mount the filesystems inside the disks */
    bool appliance;       /* every one by guestmount, ext2/3/4 too */
    bool foreground;      /* do not go into the background */
    uint64_t cache_bytes; /* per open disk (0: 32 MiB) */
};

/*
 * Mount the backups at dir (read-only): DIR/NAME/BACKUP/DISK, and with fs
 * DIR/NAME/BACKUP/DISK.fs (a whole-disk filesystem) or DISK.pN (partition
 * N) with the ext2/3/4 filesystems found mounted by fuse2fs and the XFS
 * ones by guestmount (map_guestmount_start); with appliance, every one by
 * guestmount (a guest's filesystem is then never parsed on this host, but
 * in libguestfs's appliance, a VM). Returns once
 * unmounted (in the background unless foreground: the caller's process
 * returns 0 when the mount is ready). 0 or -1 (error set).
 */
int map_mount(const struct map_mount_opts *o);
/* Unmount dir and every mount below it (deepest first). */
int map_umount(const char *dir);

/* One line of /proc/self/mountinfo (mountinfo.c), parsed in place: its
 * mount point, type and source point into line, cut and their \ooo
 * escapes decoded; -1 if it is not such a line (line then changed). */
struct map_mountinfo {
    char *mp, *type, *src;
};
int map_mountinfo_line(char *line, struct map_mountinfo *m);
/* Is path a at or below b (whole components)? */
bool map_path_within(const char *a, const char *b);

#endif
