/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * /proc/self/mountinfo's lines, as umount.c reads them: a pure parser,
 * and the fuzz target fuzz_mountinfo's.
 */
#include "agent/map/map.h"

#include <stdio.h>
#include <string.h>

/* mountinfo writes a space, tab, newline and backslash in a path as \ooo
 * (never \000: that one stays as it is) */
static void
unescape_octal(char *s)
{
    char *w = s;

    for (const char *r = s; *r; w++)
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' &&
            r[2] <= '7' && r[3] >= '0' && r[3] <= '7' &&
            (r[1] != '0' || r[2] != '0' || r[3] != '0')) {
            *w = (char)((r[1] - '0') << 6 | (r[2] - '0') << 3 | (r[3] - '0'));
            r += 4;
        } else {
            *w = *r++;
        }
    *w = '\0';
}

/* Is path a or below b (whole components)? */
bool
map_path_within(const char *a, const char *b)
{
    size_t bl = strlen(b);

    if (bl == 1 && b[0] == '/')
        return a[0] == '/';
    return strncmp(a, b, bl) == 0 && (a[bl] == '\0' || a[bl] == '/');
}

/* The field of line at *p up to the next space, into out (of size n),
 * and *p past it and that space; -1 if there is none or it is too long. */
static int
field(const char **p, char *out, size_t n)
{
    const char *end = strchr(*p, ' ');
    size_t len = end ? (size_t)(end - *p) : strlen(*p);

    if (len == 0 || len >= n)
        return -1;
    memcpy(out, *p, len);
    out[len] = '\0';
    *p += len + (end != NULL);
    return 0;
}

/*
 * ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE
 * SUPER: fields separated by one space. Not sscanf's %s: the kernel
 * escapes only a space, tab, newline and backslash, and %s would end a
 * mount point at a vertical tab, form feed or carriage return in it.
 */
int
map_mountinfo_line(const char *line, char mp[4096], char type[64],
                   char src[4096])
{
    const char *p = line, *sep;
    char skip[4096];

    for (int i = 0; i < 4; i++)
        if (field(&p, skip, sizeof skip) < 0)
            return -1;
    if (field(&p, mp, 4096) < 0)
        return -1;
    sep = strstr(p, " - ");
    if (!sep)
        return -1;
    p = sep + 3;
    if (field(&p, type, 64) < 0 || field(&p, src, 4096) < 0)
        return -1;
    unescape_octal(mp);
    unescape_octal(src);
    return 0;
}
