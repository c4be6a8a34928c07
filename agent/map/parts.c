/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Partition tables, read from a disk's first bytes (map.h): the MBR's four
 * primary entries and a GPT's entries (UEFI 2.x, chapter 5); and the
 * superblocks that say which filesystem a disk or partition holds.
 * Untrusted input: every field is checked against the bytes at hand and
 * the disk's size before use, fields read byte by byte.
 */
#include "agent/map/map.h"

#include <string.h>

#define MBR_SIG_OFF 510
#define MBR_TABLE_OFF 446
#define MBR_ENTRY 16
#define MBR_PROTECTIVE 0xEE
#define GPT_MIN_ENTRY 128
#define GPT_MAX_ENTRIES 1024

static uint32_t
le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint32_t
be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

static uint64_t
le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* Add [first, first+count) sectors of sz bytes if it lies in the disk. */
static void
add(struct map_part *out, size_t *n, unsigned index, uint64_t first,
    uint64_t count, uint64_t sz, uint64_t disk_size)
{
    uint64_t off, len;

    if (count == 0 || *n == MAP_MAX_PARTS || lb_mul_overflow(first, sz, &off) ||
        lb_mul_overflow(count, sz, &len) || off >= disk_size ||
        len > disk_size - off)
        return;
    out[*n].index = index;
    out[*n].off = off;
    out[*n].len = len;
    (*n)++;
}

/* A GPT at sector size sz: its header in sector 1. */
static bool
gpt_parse(const uint8_t *head, size_t len, uint32_t sz, uint64_t disk_size,
          struct map_part *out, size_t *n)
{
    const uint8_t *h = head + sz;
    uint64_t at, end;
    uint32_t count, esize;

    if (len < 2 * (size_t)sz || memcmp(h, "EFI PART", 8) != 0)
        return false;
    count = le32(h + 80);
    esize = le32(h + 84);
    if (esize < GPT_MIN_ENTRY || esize % 8 || esize > sz ||
        count > GPT_MAX_ENTRIES || lb_mul_overflow(le64(h + 72), sz, &at) ||
        lb_mul_overflow((uint64_t)count, esize, &end) ||
        lb_add_overflow(end, at, &end) || end > len)
        return true; /* a GPT, whose entries we cannot read */
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *e = head + at + (uint64_t)i * esize;
        static const uint8_t unused[16];
        uint64_t first = le64(e + 32), last = le64(e + 40);
        if (memcmp(e, unused, 16) == 0 || last < first)
            continue;
        add(out, n, i + 1, first, last - first + 1, sz, disk_size);
    }
    return true;
}

enum map_table
map_parts_parse(const uint8_t *head, size_t len, uint64_t disk_size,
                struct map_part *out, size_t *n)
{
    bool protective = false;

    *n = 0;
    if (len > MAP_PARTS_HEAD)
        len = MAP_PARTS_HEAD;
    if (len < 512 || head[MBR_SIG_OFF] != 0x55 || head[MBR_SIG_OFF + 1] != 0xAA)
        return MAP_TABLE_NONE;
    for (unsigned i = 0; i < 4; i++)
        protective |=
            head[MBR_TABLE_OFF + (size_t)i * MBR_ENTRY + 4] == MBR_PROTECTIVE;
    if (protective) {
        if (gpt_parse(head, len, 512, disk_size, out, n))
            return MAP_TABLE_GPT;
        if (gpt_parse(head, len, 4096, disk_size, out, n))
            return MAP_TABLE_GPT;
    }
    /* An ext2/3/4 or XFS filesystem on the whole disk has no 0x55AA here
     * by design; a FAT boot sector has one but no valid entries. */
    for (unsigned i = 0; i < 4; i++) {
        const uint8_t *e = head + MBR_TABLE_OFF + (size_t)i * MBR_ENTRY;
        uint8_t type = e[4];
        if (type == 0 || type == 0x05 || type == 0x0F || type == 0x85 ||
            (e[0] != 0 && e[0] != 0x80))
            continue; /* empty, extended, or not an entry */
        add(out, n, i + 1, le32(e + 8), le32(e + 12), 512, disk_size);
    }
    return *n ? MAP_TABLE_MBR : MAP_TABLE_NONE;
}

/* ext2/3/4: the superblock at 1024, s_magic (le16) at 56 in it */
#define EXT_MAGIC_OFF 1080
/* XFS (xfs_format.h, struct xfs_dsb, big-endian): sb_magicnum at 0,
 * sb_blocksize at 4, sb_versionnum (its low 4 bits the version) at 100,
 * sb_sectsize at 102 */
#define XFS_BLOCKSIZE_OFF 4
#define XFS_VERSION_OFF 100
#define XFS_SECTSIZE_OFF 102

static bool
pow2_in(uint32_t v, uint32_t lo, uint32_t hi)
{
    return v >= lo && v <= hi && (v & (v - 1)) == 0;
}

enum map_fs
map_fs_probe(const uint8_t *head, size_t len)
{
    if (len >= XFS_SECTSIZE_OFF + 2 && memcmp(head, "XFSB", 4) == 0) {
        uint32_t bsize = be32(head + XFS_BLOCKSIZE_OFF);
        unsigned version = head[XFS_VERSION_OFF + 1] & 0x0f;
        uint32_t ssize =
            (uint32_t)head[XFS_SECTSIZE_OFF] << 8 | head[XFS_SECTSIZE_OFF + 1];
        if (pow2_in(bsize, 512, 65536) && pow2_in(ssize, 512, 32768) &&
            (version == 4 || version == 5))
            return MAP_FS_XFS;
    }
    if (len >= EXT_MAGIC_OFF + 2 && head[EXT_MAGIC_OFF] == 0x53 &&
        head[EXT_MAGIC_OFF + 1] == 0xEF)
        return MAP_FS_EXT;
    return MAP_FS_NONE;
}

int
map_list_disks(const char *s, char (*names)[65], uint64_t *sizes, size_t max,
               size_t *n)
{
    *n = 0;
    while (*s) {
        const char *eq = strchr(s, '='), *end;
        uint64_t v = 0;

        if (!eq || *n == max || eq == s || eq - s > 64)
            return -1;
        for (end = eq + 1; *end >= '0' && *end <= '9'; end++) {
            if (v > (UINT64_MAX - 9) / 10)
                return -1;
            v = v * 10 + (uint64_t)(*end - '0');
        }
        if (end == eq + 1 || (*end && *end != ' ') || v == 0)
            return -1;
        memcpy(names[*n], s, (size_t)(eq - s));
        names[*n][eq - s] = '\0';
        for (const char *c = names[*n]; *c; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '_' || *c == '.' ||
                  *c == '-'))
                return -1;
        if (names[*n][0] == '.')
            return -1;
        sizes[(*n)++] = v;
        s = *end ? end + 1 : end;
    }
    return 0;
}
