/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target: map_mountinfo_line and map_path_within
 * (agent/map/mountinfo.c), what `livebackup umount` reads of
 * /proc/self/mountinfo, one line at a time (a mount point's name is
 * whatever a user called a directory).
 *
 * Oracle beyond "no crash": of a line read, the mount point and source
 * decode no longer than they were; a mount point
 * written back with mountinfo's escapes reads back the same; a path is
 * within itself, a path below it is within it, a sibling whose name only
 * starts with it is not.
 */
#include "agent/map/map.h"
#include "fuzz/fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* mp as mountinfo writes it, then read back as one line of it. */
static void
round_trip(const char *mp)
{
    char *line = lb_xmalloc(strlen(mp) * 4 + 64);
    size_t n = (size_t)sprintf(line, "1 2 0:1 / ");
    struct map_mountinfo m;

    for (const char *c = mp; *c; c++)
        if (strchr(" \t\n\\", *c))
            n += (size_t)sprintf(line + n, "\\%03o", (unsigned char)*c);
        else
            line[n++] = *c;
    strcpy(line + n, " rw - fuse x");
    CHECK(map_mountinfo_line(line, &m) == 0);
    CHECK(strcmp(mp, m.mp) == 0 && strcmp(m.type, "fuse") == 0 &&
          strcmp(m.src, "x") == 0);
    free(line);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = lb_xmalloc(size + 1), *save = NULL;

    memcpy(text, data, size);
    text[size] = '\0';
    for (char *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        size_t len = strlen(line);
        struct map_mountinfo m;
        char *below;
        if (map_mountinfo_line(line, &m) < 0)
            continue;
        CHECK(strlen(m.mp) <= len && strlen(m.src) <= len && m.mp >= line &&
              m.src < line + len && m.type < line + len);
        if (m.mp[0] == '/') /* (the kernel's are absolute) */
            round_trip(m.mp);
        CHECK(map_path_within(m.mp, m.mp));
        if (m.mp[0] != '/')
            continue;
        below = lb_xasprintf("%s/x", m.mp);
        CHECK(map_path_within(below, m.mp));
        free(below);
        if (strcmp(m.mp, "/") != 0 && m.mp[strlen(m.mp) - 1] != '/') {
            below = lb_xasprintf("%sx", m.mp);
            CHECK(!map_path_within(below, m.mp));
            free(below);
        }
    }
    free(text);
    return 0;
}
