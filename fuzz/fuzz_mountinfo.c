/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target: map_mountinfo_line and map_path_within
 * (agent/map/mountinfo.c), what `livebackup umount` reads of
 * /proc/self/mountinfo, one line at a time (a mount point's name is
 * whatever a user called a directory).
 *
 * Oracle beyond "no crash": of a line read, the mount point and source
 * fit their buffers and decode no longer than they were; a mount point
 * written back with mountinfo's escapes reads back the same; a path is
 * within itself, a path below it is within it, a sibling whose name only
 * starts with it is not.
 */
#include "agent/map/map.h"
#include "fuzz/fuzz.h"

#include <stdlib.h>
#include <string.h>

/* mp as mountinfo writes it, then read back as one line of it. */
static void
round_trip(const char *mp)
{
    char line[4096 * 4 + 64], mp2[4096], type[64], src[4096];
    size_t n = (size_t)snprintf(line, sizeof line, "1 2 0:1 / ");

    for (const char *c = mp; *c && n + 8 < sizeof line; c++)
        if (strchr(" \t\n\\", *c))
            n += (size_t)snprintf(line + n, sizeof line - n, "\\%03o",
                                  (unsigned char)*c);
        else
            line[n++] = *c;
    snprintf(line + n, sizeof line - n, " rw - fuse x");
    if (strlen(line) > 4095 + 16)
        return; /* the mount point no longer fits the reader's buffer */
    CHECK(map_mountinfo_line(line, mp2, type, src) == 0);
    CHECK(strcmp(mp, mp2) == 0 && strcmp(type, "fuse") == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = lb_xmalloc(size + 1), *save = NULL;

    memcpy(text, data, size);
    text[size] = '\0';
    for (char *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char mp[4096], type[64], src[4096], below[4200];
        if (map_mountinfo_line(line, mp, type, src) < 0)
            continue;
        CHECK(strlen(mp) < sizeof mp && strlen(src) < sizeof src &&
              strlen(type) < sizeof type && strlen(mp) <= strlen(line));
        if (mp[0] == '/') /* (the kernel's are absolute) */
            round_trip(mp);
        CHECK(map_path_within(mp, mp));
        if (mp[0] != '/' || strlen(mp) > 4000)
            continue;
        snprintf(below, sizeof below, "%s/x", mp);
        CHECK(map_path_within(below, mp));
        if (strcmp(mp, "/") != 0 && mp[strlen(mp) - 1] != '/') {
            snprintf(below, sizeof below, "%sx", mp);
            CHECK(!map_path_within(below, mp));
        }
    }
    free(text);
    return 0;
}
