/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The livebackup.conf parser: text in, one value per setting out. Pure:
 * no I/O, no logging; the error is a message for the caller to print with
 * the file's name (config.c). Its fuzz target is fuzz/fuzz_conffile.c.
 *
 * Format: lines of "key = value" (blanks around both ignored, the value
 * runs to the end of the line, '=' allowed in it); blank lines and lines
 * whose first non-blank character is '#' are ignored; a key given twice
 * takes its last value. An unknown key, a line without '=', a value that
 * fails its key's check or a NUL byte is an error.
 */
#include "agent/cli/cli.h"

#include <string.h>

#define CONF_MAX_KEEP 1000000

static const char *const conf_names[CLI_CONF_N] = {
    [CLI_CONF_REPO] = "repo",
    [CLI_CONF_RSH] = "rsh",
    [CLI_CONF_REMOTE_BACKUPD] = "remote-backupd",
    [CLI_CONF_BWLIMIT] = "bwlimit",
    [CLI_CONF_COMPRESS_LEVEL] = "compress-level",
    [CLI_CONF_ON_FAILURE] = "on-failure",
    [CLI_CONF_METRICS_FILE] = "metrics-file",
    [CLI_CONF_OVERLAY_DIR] = "overlay-dir",
    [CLI_CONF_KEEP_LAST] = "keep-last",
    [CLI_CONF_KEEP_LAST + 1] = "keep-hourly",
    [CLI_CONF_KEEP_LAST + 2] = "keep-daily",
    [CLI_CONF_KEEP_LAST + 3] = "keep-weekly",
    [CLI_CONF_KEEP_LAST + 4] = "keep-monthly",
    [CLI_CONF_KEEP_LAST + 5] = "keep-yearly",
};

const char *
cli_conf_name(enum cli_conf_key k)
{
    return conf_names[k];
}

/* A decimal integer, all of s, in [lo, hi]. */
static bool
conf_int(const char *s, long lo, long hi)
{
    long v;

    return lb_parse_long(s, lo, hi, &v) == 0;
}

int
cli_conf_check(enum cli_conf_key k, const char *v, char *err, size_t errlen)
{
    uint64_t n;

    switch (k) {
    case CLI_CONF_REPO:
    case CLI_CONF_RSH:
    case CLI_CONF_REMOTE_BACKUPD:
    case CLI_CONF_ON_FAILURE:
    case CLI_CONF_METRICS_FILE:
        if (*v)
            return 0;
        snprintf(err, errlen, "%s: an empty value", conf_names[k]);
        return -1;
    case CLI_CONF_OVERLAY_DIR:
        /* relative to what? not to where a command happens to run */
        if (*v == '/')
            return 0;
        snprintf(err, errlen, "overlay-dir '%s': expected an absolute path", v);
        return -1;
    case CLI_CONF_BWLIMIT:
        if (lb_parse_size(v, &n) == 0 && n > 0)
            return 0;
        snprintf(err, errlen,
                 "bwlimit '%s': expected a rate like 20M (bytes per second)",
                 v);
        return -1;
    case CLI_CONF_COMPRESS_LEVEL:
        if (conf_int(v, -5, 19))
            return 0;
        snprintf(err, errlen, "compress-level '%s': expected -5..19", v);
        return -1;
    default:
        if (*v != '-' && conf_int(v, 0, CONF_MAX_KEEP))
            return 0;
        snprintf(err, errlen, "%s '%s': expected a count from 0 to %d",
                 conf_names[k], v, CONF_MAX_KEEP);
        return -1;
    }
}

/* s[0..n) without blanks at either end. */
static void
trim(const char **s, size_t *n)
{
    while (*n && strchr(" \t\r", (*s)[0]))
        (*s)++, (*n)--;
    while (*n && strchr(" \t\r", (*s)[*n - 1]))
        (*n)--;
}

/* One line (no '\n'): 0, or -1 with err set. */
static int
conf_parse_line(const char *p, size_t n, struct cli_conf *c, unsigned lineno,
                char *err, size_t errlen)
{
    const char *eq, *val;
    size_t klen, vlen;
    CLEANUP_FREE char *v = NULL;

    trim(&p, &n);
    if (n == 0 || *p == '#')
        return 0;
    eq = memchr(p, '=', n);
    if (!eq) {
        snprintf(err, errlen, "expected 'key = value'");
        return -1;
    }
    klen = (size_t)(eq - p);
    val = eq + 1;
    vlen = n - klen - 1;
    trim(&p, &klen);
    trim(&val, &vlen);
    for (size_t k = 0; k < CLI_CONF_N; k++) {
        if (strlen(conf_names[k]) != klen ||
            memcmp(conf_names[k], p, klen) != 0)
            continue;
        v = lb_xasprintf("%.*s", (int)vlen, val);
        if (cli_conf_check((enum cli_conf_key)k, v, err, errlen) < 0)
            return -1;
        free(c->value[k]);
        c->value[k] = v;
        c->line[k] = lineno;
        v = NULL;
        return 0;
    }
    snprintf(err, errlen,
             "unknown setting '%.*s' (livebackup config lists them)",
             (int)LB_MIN(klen, 64), p);
    return -1;
}

int
cli_conf_parse(const char *text, size_t len, struct cli_conf *c,
               unsigned *err_line, char *err, size_t errlen)
{
    unsigned lineno = 0;

    memset(c, 0, sizeof *c);
    *err_line = 0;
    if (memchr(text, '\0', len)) {
        snprintf(err, errlen, "a NUL byte: not a text file");
        return -1;
    }
    while (len > 0) {
        const char *nl = memchr(text, '\n', len);
        size_t n = nl ? (size_t)(nl - text) : len;

        lineno++;
        if (conf_parse_line(text, n, c, lineno, err, errlen) < 0) {
            *err_line = lineno;
            cli_conf_free(c);
            return -1;
        }
        text += n;
        len -= n;
        if (nl) {
            text++;
            len--;
        }
    }
    return 0;
}

void
cli_conf_free(struct cli_conf *c)
{
    for (size_t k = 0; k < CLI_CONF_N; k++) {
        free(c->value[k]);
        c->value[k] = NULL;
    }
}
