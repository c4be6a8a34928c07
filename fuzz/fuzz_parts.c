/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target: map_parts_parse (the partition tables mount --fs
 * reads, agent/map/parts.c), map_fs_probe (the superblocks it tells
 * filesystems by) and map_list_disks (a listing's "disks") on the input
 * bytes.
 *
 * Oracle beyond "no crash": every partition found lies inside the disk
 * and is not empty; a filesystem found has its magic where it belongs;
 * every disk listed has a valid name and a size.
 */
#include "agent/map/map.h"
#include "fuzz/fuzz.h"
#include "proto/proto.h"

#include <string.h>

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct map_part parts[MAP_MAX_PARTS];
    static char names[PROTO_MF_MAX_DISKS][65];
    uint64_t sizes[PROTO_MF_MAX_DISKS];
    uint64_t disk = 64ull << 20;
    size_t n;
    char *s;

    if (size >= 8) {
        disk = 0;
        for (int i = 0; i < 8; i++)
            disk = disk << 8 | data[i];
    }
    map_parts_parse(data, size, disk, parts, &n);
    CHECK(n <= MAP_MAX_PARTS);
    for (size_t i = 0; i < n; i++)
        CHECK(parts[i].len > 0 && parts[i].off < disk &&
              parts[i].len <= disk - parts[i].off);

    /* the disk's first bytes after its size, as a filesystem's */
    if (size >= 8) {
        const uint8_t *fs = data + 8;
        size_t len = size - 8;
        switch (map_fs_probe(fs, len)) {
        case MAP_FS_XFS:
            CHECK(len >= 104 && memcmp(fs, "XFSB", 4) == 0);
            break;
        case MAP_FS_EXT:
            CHECK(len >= 1082 && fs[1080] == 0x53 && fs[1081] == 0xEF);
            break;
        case MAP_FS_NONE:
            break;
        }
    }

    s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (map_list_disks(s, names, sizes, PROTO_MF_MAX_DISKS, &n) == 0)
        for (size_t i = 0; i < n; i++)
            CHECK(sizes[i] > 0 &&
                  proto_disk_name_valid(names[i], strlen(names[i])));
    free(s);
    return 0;
}
