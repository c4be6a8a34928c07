/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * agent/map/parts.c: the partition tables mount --fs finds filesystems
 * through, the superblocks it tells them by, and a listing's "disks"
 * field. MBR and GPT (512- and 4096-byte
 * sectors) as sfdisk writes them, and what must be left out: entries past
 * the disk's end, extended partitions, GPT entries beyond the bytes read,
 * no table at all. Also fuzzed (fuzz/fuzz_parts.c). And the lines of
 * mountinfo umount reads (agent/map/mountinfo.c, fuzz/fuzz_mountinfo.c).
 */
#include "agent/map/map.h"
#include "proto/proto.h"

#include <criterion/criterion.h>
#include <string.h>

#define MiB (1ull << 20)

static uint8_t head[MAP_PARTS_HEAD];
static struct map_part p[MAP_MAX_PARTS];

static void
le32(uint8_t *b, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}

static void
le64(uint8_t *b, uint64_t v)
{
    le32(b, (uint32_t)v);
    le32(b + 4, (uint32_t)(v >> 32));
}

static void
mbr_entry(unsigned i, uint8_t type, uint32_t lba, uint32_t count)
{
    uint8_t *e = head + 446 + 16 * i;

    e[4] = type;
    le32(e + 8, lba);
    le32(e + 12, count);
    head[510] = 0x55;
    head[511] = 0xAA;
}

/* A protective MBR and a GPT header at sector sz, entries at LBA 2. */
static void
gpt(uint32_t sz, uint32_t count)
{
    uint8_t *h = head + sz;

    mbr_entry(0, 0xEE, 1, 0xffffffff);
    memcpy(h, "EFI PART", 8);
    le64(h + 72, 2);
    le32(h + 80, count);
    le32(h + 84, 128);
}

static void
gpt_entry(uint32_t sz, unsigned i, uint64_t first, uint64_t last)
{
    uint8_t *e = head + 2 * sz + 128 * i;

    memset(e, 0xab, 16);
    le64(e + 32, first);
    le64(e + 40, last);
}

static void
clear(void)
{
    memset(head, 0, sizeof head);
}

TestSuite(parts, .init = clear);

Test(parts, none)
{
    size_t n = 1;

    cr_assert_eq(map_parts_parse(head, sizeof head, 64 * MiB, p, &n),
                 MAP_TABLE_NONE);
    cr_assert_eq(n, 0);
    /* an ext4 superblock on the whole disk: no table either */
    head[1080] = 0x53;
    head[1081] = 0xEF;
    cr_assert_eq(map_parts_parse(head, sizeof head, 64 * MiB, p, &n),
                 MAP_TABLE_NONE);
}

Test(parts, mbr)
{
    size_t n;

    mbr_entry(0, 0x83, 2048, 20480);
    mbr_entry(1, 0x05, 22528, 2048); /* extended: not listed */
    mbr_entry(2, 0x83, 24576, 81920);
    mbr_entry(3, 0x83, 200000, 0x7fffffff); /* past the end */
    cr_assert_eq(map_parts_parse(head, sizeof head, 96 * MiB, p, &n),
                 MAP_TABLE_MBR);
    cr_assert_eq(n, 2);
    cr_assert_eq(p[0].index, 1);
    cr_assert_eq(p[0].off, 2048 * 512);
    cr_assert_eq(p[0].len, 20480 * 512);
    cr_assert_eq(p[1].index, 3);
    cr_assert_eq(p[1].off, 24576ull * 512);
}

Test(parts, gpt_512_and_4096)
{
    size_t n;

    gpt(512, 128);
    gpt_entry(512, 0, 2048, 83967);
    gpt_entry(512, 3, 86016, 126975);
    cr_assert_eq(map_parts_parse(head, sizeof head, 96 * MiB, p, &n),
                 MAP_TABLE_GPT);
    cr_assert_eq(n, 2);
    cr_assert_eq(p[0].index, 1);
    cr_assert_eq(p[0].len, 81920 * 512);
    cr_assert_eq(p[1].index, 4);
    cr_assert_eq(p[1].off, 86016ull * 512);

    clear();
    gpt(4096, 4);
    gpt_entry(4096, 0, 256, 10495);
    cr_assert_eq(map_parts_parse(head, sizeof head, 96 * MiB, p, &n),
                 MAP_TABLE_GPT);
    cr_assert_eq(n, 1);
    cr_assert_eq(p[0].off, 256ull * 4096);
    cr_assert_eq(p[0].len, 10240ull * 4096);
}

Test(parts, gpt_bad)
{
    size_t n;

    gpt(512, 128);
    gpt_entry(512, 0, 2048, 4095);
    gpt_entry(512, 1, 9000, 8000);       /* last before first */
    gpt_entry(512, 2, 2048, 1ull << 40); /* past the end */
    cr_assert_eq(map_parts_parse(head, sizeof head, 96 * MiB, p, &n),
                 MAP_TABLE_GPT);
    cr_assert_eq(n, 1);
    /* entries beyond the bytes at hand: a GPT, nothing listed */
    cr_assert_eq(map_parts_parse(head, 1024 + 100, 96 * MiB, p, &n),
                 MAP_TABLE_GPT);
    cr_assert_eq(n, 0);
    le64(head + 512 + 72, 1ull << 62); /* an LBA that overflows */
    cr_assert_eq(map_parts_parse(head, sizeof head, 96 * MiB, p, &n),
                 MAP_TABLE_GPT);
    cr_assert_eq(n, 0);
}

Test(parts, list_disks)
{
    char names[4][65];
    uint64_t sizes[4];
    size_t n;

    cr_assert_eq(map_list_disks("vda=67108864 vdb=5", names, sizes, 4, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(names[1], "vdb");
    cr_assert_eq(sizes[0], 67108864);
    cr_assert_eq(map_list_disks("", names, sizes, 4, &n), 0);
    cr_assert_eq(n, 0);
    static const char *const bad[] = {
        "vda",
        "vda=",
        "=5",
        "vda=5x",
        "vda=0",
        ".x=5",
        "a/b=5",
        "vda=99999999999999999999",
        "a=1 b=1 c=1 d=1 e=1",
        "vda=5  vdb=6",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(map_list_disks(bad[i], names, sizes, 4, &n), -1, "%s",
                     bad[i]);
}

/* An XFS superblock as mkfs.xfs 6.1 writes it (the fields probed). */
static void
xfs_sb(uint32_t bsize, uint16_t version, uint16_t ssize)
{
    memcpy(head, "XFSB", 4);
    for (int i = 0; i < 4; i++)
        head[4 + i] = (uint8_t)(bsize >> (24 - 8 * i));
    head[100] = (uint8_t)(version >> 8);
    head[101] = (uint8_t)version;
    head[102] = (uint8_t)(ssize >> 8);
    head[103] = (uint8_t)ssize;
}

Test(parts, fs_probe)
{
    cr_assert_eq(map_fs_probe(head, MAP_FS_HEAD), MAP_FS_NONE);
    xfs_sb(4096, 0xb4a5, 512); /* version 5 with feature bits */
    cr_assert_eq(map_fs_probe(head, MAP_FS_HEAD), MAP_FS_XFS);
    cr_assert_eq(map_fs_probe(head, 104), MAP_FS_XFS);
    cr_assert_eq(map_fs_probe(head, 103), MAP_FS_NONE); /* too short */
    xfs_sb(65536, 0x0004, 4096);                        /* version 4 */
    cr_assert_eq(map_fs_probe(head, MAP_FS_HEAD), MAP_FS_XFS);
    static const uint32_t bad[][3] = {
        {4097, 0xb4a5, 512},   /* block size not a power of two */
        {256, 0xb4a5, 512},    /* block size too small */
        {131072, 0xb4a5, 512}, /* too large */
        {4096, 0xb4a5, 256},   /* sector size */
        {4096, 0xb4a5, 65535}, {4096, 0xb4a3, 512}, /* version 3 */
        {4096, 0xb4a6, 512},                        /* version 6 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        xfs_sb(bad[i][0], (uint16_t)bad[i][1], (uint16_t)bad[i][2]);
        cr_assert_eq(map_fs_probe(head, MAP_FS_HEAD), MAP_FS_NONE, "%zu", i);
    }

    clear();
    head[1080] = 0x53;
    head[1081] = 0xEF;
    cr_assert_eq(map_fs_probe(head, MAP_FS_HEAD), MAP_FS_EXT);
    cr_assert_eq(map_fs_probe(head, 1082), MAP_FS_EXT);
    cr_assert_eq(map_fs_probe(head, 1081), MAP_FS_NONE);
    head[1081] = 0xEE;
    cr_assert_eq(map_fs_probe(head, MAP_FS_HEAD), MAP_FS_NONE);
}

/* ---- mountinfo ------------------------------------------------------------ */

/* A line in a buffer of its own: the parser cuts it in place. */
static int
mi(const char *text, struct map_mountinfo *m)
{
    static char line[65536];

    snprintf(line, sizeof line, "%s", text);
    return map_mountinfo_line(line, m);
}

Test(mountinfo, fields_by_single_spaces_and_escapes)
{
    struct map_mountinfo m;

    cr_assert_eq(mi("36 35 0:50 / /mnt/top\\040dir rw,nosuid "
                    "shared:1 - fuse livebackup:1234 rw",
                    &m),
                 0);
    cr_assert_str_eq(m.mp, "/mnt/top dir");
    cr_assert_str_eq(m.type, "fuse");
    cr_assert_str_eq(m.src, "livebackup:1234");
    /* the kernel leaves a vertical tab, form feed or CR as it is */
    cr_assert_eq(mi("37 36 0:51 / /mnt/a\vb\fc\rd\\011e rw - "
                    "fuse.fuse2fs /x/y\\134z.img rw",
                    &m),
                 0);
    cr_assert_str_eq(m.mp, "/mnt/a\vb\fc\rd\te");
    cr_assert_str_eq(m.type, "fuse.fuse2fs");
    cr_assert_str_eq(m.src, "/x/y\\z.img");
    /* \000 is no escape the kernel writes: it stays */
    cr_assert_eq(mi("1 2 0:1 / /a\\000 rw - fuse s", &m), 0);
    cr_assert_str_eq(m.mp, "/a\\000");
    /* no super options: the fields it has are enough */
    cr_assert_eq(mi("1 2 0:1 / /a rw - fuse s", &m), 0);
    cr_assert_str_eq(m.src, "s");
    /* not a mountinfo line */
    cr_assert_eq(mi("1 2 0:1 / /a rw", &m), -1);
    cr_assert_eq(mi("", &m), -1);
    cr_assert_eq(mi("1  2 0:1 / /a rw - fuse s", &m), -1);
    cr_assert_eq(mi("1 2 0:1 /  rw - fuse s", &m), -1);
    cr_assert_eq(mi("1 2 0:1 / /a rw - fuse", &m), -1);
    cr_assert(map_path_within("/mnt/a/b", "/mnt/a"));
    cr_assert(map_path_within("/mnt/a", "/mnt/a"));
    cr_assert(!map_path_within("/mnt/ab", "/mnt/a"));
    cr_assert(map_path_within("/x", "/"));
}

/* A mount point of 4000 spaces is 16000 bytes in mountinfo: read whole. */
Test(mountinfo, a_mount_point_longer_than_page_escaped)
{
    static char line[32768];
    struct map_mountinfo m;
    size_t n = (size_t)snprintf(line, sizeof line, "1 2 0:1 / /");

    for (int i = 0; i < 4000; i++)
        n += (size_t)snprintf(line + n, sizeof line - n, "\\040");
    snprintf(line + n, sizeof line - n, " rw - fuse livebackup:7 rw");
    cr_assert_eq(map_mountinfo_line(line, &m), 0);
    cr_assert_eq(strlen(m.mp), 4001);
    cr_assert_eq(strspn(m.mp + 1, " "), 4000);
    cr_assert_str_eq(m.src, "livebackup:7");
}
