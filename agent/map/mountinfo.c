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

/* The field at *p up to the next space, cut there in place; *p past it
 * and that space. NULL if it is empty. */
static char *
field(char **p)
{
    char *f = *p, *end = strchr(f, ' ');

    if (end == f || *f == '\0')
        return NULL;
    if (end) {
        *end = '\0';
        *p = end + 1;
    } else {
        *p = f + strlen(f);
    }
    return f;
}

/*
 * ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE
 * SUPER: fields separated by one space. Not sscanf's %s: the kernel
 * escapes only a space, tab, newline and backslash, and %s would end a
 * mount point at a vertical tab, form feed or carriage return in it. In
 * place, so that no length is too long: a mount point of PATH_MAX spaces
 * takes four times that in the line.
 */
int
map_mountinfo_line(char *line, struct map_mountinfo *m)
{
    char *p = line, *sep;

    for (int i = 0; i < 4; i++)
        if (!field(&p))
            return -1;
    /* the separator first: cutting the mount point ends the line there */
    sep = strstr(p, " - ");
    if (!sep)
        return -1;
    *sep = '\0';
    if (!(m->mp = field(&p)))
        return -1;
    p = sep + 3;
    if (!(m->type = field(&p)) || !(m->src = field(&p)))
        return -1;
    unescape_octal(m->mp);
    unescape_octal(m->src);
    return 0;
}
