/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * livebackup.conf: defaults for the options users would otherwise repeat
 * on every command (the repository, ssh, pacing, compression, retention),
 * and `livebackup config`, which shows each effective value and where it
 * came from.
 *
 * The file is lines of "key = value" ('#' starts a comment line); an
 * unknown key or a bad value is an error naming the file and line, so a
 * typo never silently falls back to a default. Precedence, highest
 * first: the command line, the environment (LIVEBACKUP_REPO, ...), the
 * user's file, the system's file.
 */
#include "agent/cli/cli.h"
#include "agent/client/client.h"

#include <errno.h>
#include <string.h>

#define CONF_SYSTEM_FILE "/etc/livebackup/livebackup.conf"
#define CONF_MAX_KEEP 1000000

static const struct {
    const char *key, *env;
} conf_keys[CLI_CONF_N] = {
    [CLI_CONF_REPO] = {"repo", "LIVEBACKUP_REPO"},
    [CLI_CONF_RSH] = {"rsh", "LIVEBACKUP_RSH"},
    [CLI_CONF_REMOTE_BACKUPD] = {"remote-backupd", "LIVEBACKUP_REMOTE_BACKUPD"},
    [CLI_CONF_BWLIMIT] = {"bwlimit", "LIVEBACKUP_BWLIMIT"},
    [CLI_CONF_COMPRESS_LEVEL] = {"compress-level", "LIVEBACKUP_COMPRESS_LEVEL"},
    [CLI_CONF_KEEP_LAST] = {"keep-last", "LIVEBACKUP_KEEP_LAST"},
    [CLI_CONF_KEEP_LAST + 1] = {"keep-hourly", "LIVEBACKUP_KEEP_HOURLY"},
    [CLI_CONF_KEEP_LAST + 2] = {"keep-daily", "LIVEBACKUP_KEEP_DAILY"},
    [CLI_CONF_KEEP_LAST + 3] = {"keep-weekly", "LIVEBACKUP_KEEP_WEEKLY"},
    [CLI_CONF_KEEP_LAST + 4] = {"keep-monthly", "LIVEBACKUP_KEEP_MONTHLY"},
    [CLI_CONF_KEEP_LAST + 5] = {"keep-yearly", "LIVEBACKUP_KEEP_YEARLY"},
};

/* The effective value of each key and where it came from ("FILE:LINE",
 * "environment (VAR)", "command line"); NULL: unset. */
static struct {
    char *value, *source;
} conf[CLI_CONF_N];

static void
conf_set(enum cli_conf_key k, const char *value, char *source)
{
    free(conf[k].value);
    free(conf[k].source);
    conf[k].value = lb_xstrdup(value);
    conf[k].source = source;
}

/* A value's form; -1 with a message naming where it came from. */
static int
conf_check(enum cli_conf_key k, const char *v, const char *where)
{
    uint64_t n;
    char *end;
    long l;

    switch (k) {
    case CLI_CONF_BWLIMIT:
        if (lb_parse_size(v, &n) < 0 || n == 0) {
            fprintf(stderr,
                    "livebackup: %s: bwlimit '%s': expected a rate "
                    "like 20M (bytes per second)\n",
                    where, v);
            return -1;
        }
        return 0;
    case CLI_CONF_COMPRESS_LEVEL:
        errno = 0;
        l = strtol(v, &end, 10);
        if (errno || end == v || *end || l < -5 || l > 19) {
            fprintf(stderr,
                    "livebackup: %s: compress-level '%s': expected -5..19\n",
                    where, v);
            return -1;
        }
        return 0;
    default:
        if (k < CLI_CONF_KEEP_LAST)
            return 0;
        errno = 0;
        l = strtol(v, &end, 10);
        if (errno || end == v || *end || v[0] == '-' || l > CONF_MAX_KEEP) {
            fprintf(stderr,
                    "livebackup: %s: %s '%s': expected a count from 0 to "
                    "%d\n",
                    where, conf_keys[k].key, v, CONF_MAX_KEEP);
            return -1;
        }
        return 0;
    }
}

static char *
trim(char *s)
{
    size_t n;

    s += strspn(s, " \t");
    n = strlen(s);
    while (n > 0 && strchr(" \t\r\n", s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* One line of path; 0 (set or blank), -1 with a message. */
static int
conf_line(const char *path, unsigned lineno, char *line)
{
    char *eq, *key, *val, *where;
    size_t k;

    key = trim(line);
    if (!*key || *key == '#')
        return 0;
    eq = strchr(key, '=');
    if (!eq) {
        fprintf(stderr, "livebackup: %s:%u: expected 'key = value'\n", path,
                lineno);
        return -1;
    }
    *eq = '\0';
    key = trim(key);
    val = trim(eq + 1);
    for (k = 0; k < CLI_CONF_N; k++)
        if (strcmp(key, conf_keys[k].key) == 0)
            break;
    if (k == CLI_CONF_N) {
        fprintf(stderr,
                "livebackup: %s:%u: unknown setting '%s' (livebackup "
                "config lists them)\n",
                path, lineno, key);
        return -1;
    }
    where = lb_xasprintf("%s:%u", path, lineno);
    if (conf_check((enum cli_conf_key)k, val, where) < 0) {
        free(where);
        return -1;
    }
    conf_set((enum cli_conf_key)k, val, where);
    return 0;
}

/* One file: a missing one is no error, an unreadable one is. */
static int
conf_file(const char *path)
{
    CLEANUP_FCLOSE FILE *f = fopen(path, "re");
    CLEANUP_FREE char *line = NULL;
    size_t cap = 0;
    unsigned lineno = 0;

    if (!f) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        fprintf(stderr, "livebackup: %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (getline(&line, &cap, f) >= 0)
        if (conf_line(path, ++lineno, line) < 0)
            return -1;
    return 0;
}

static int
conf_files(void)
{
    const char *list = getenv("LIVEBACKUP_CONFIG");
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    CLEANUP_FREE char *copy = NULL;
    CLEANUP_FREE char *user = NULL;
    char *save = NULL;

    if (list) {
        copy = lb_xstrdup(list);
        for (char *p = strtok_r(copy, ":", &save); p;
             p = strtok_r(NULL, ":", &save))
            if (conf_file(p) < 0)
                return -1;
        return 0;
    }
    if (conf_file(CONF_SYSTEM_FILE) < 0)
        return -1;
    if (xdg && *xdg)
        user = lb_xasprintf("%s/livebackup/livebackup.conf", xdg);
    else if (home && *home)
        user = lb_xasprintf("%s/.config/livebackup/livebackup.conf", home);
    return user ? conf_file(user) : 0;
}

int
cli_config_load(void)
{
    const char *v;

    if (conf_files() < 0)
        return -1;
    for (size_t k = 0; k < CLI_CONF_N; k++) {
        CLEANUP_FREE char *where = NULL;

        v = getenv(conf_keys[k].env);
        if (!v || !*v)
            continue;
        where = lb_xasprintf("environment (%s)", conf_keys[k].env);
        if (conf_check((enum cli_conf_key)k, v, where) < 0)
            return -1;
        conf_set((enum cli_conf_key)k, v, where);
        where = NULL;
    }
    /* The defaults of the common options; the command line's come later
     * (agent_common_opt) and win. */
    if ((v = cli_config_get(CLI_CONF_RSH)))
        agent_opts.rsh = v;
    if ((v = cli_config_get(CLI_CONF_REMOTE_BACKUPD)))
        agent_opts.remote_backupd = v;
    if ((v = cli_config_get(CLI_CONF_BWLIMIT)))
        (void)lb_parse_size(v, &agent_opts.bwlimit);
    if ((v = cli_config_get(CLI_CONF_COMPRESS_LEVEL)))
        agent_opts.zlevel = atoi(v);
    return 0;
}

void
cli_config_note(enum cli_conf_key key, const char *value)
{
    conf_set(key, value, lb_xstrdup("command line"));
}

const char *
cli_config_get(enum cli_conf_key key)
{
    return conf[key].value;
}

const char *
cli_config_repo(const char *repo)
{
    if (repo) {
        cli_config_note(CLI_CONF_REPO, repo);
        return repo;
    }
    return conf[CLI_CONF_REPO].value;
}

int
cmd_config(int argc, char **argv)
{
    struct cli_getopt g;
    int c;

    cli_getopt("config", &g);
    optind = 1;
    while ((c = getopt_long(argc, argv, g.shortopts, g.opts, NULL)) != -1) {
        int k = agent_common_opt(c, optarg);
        if (k < 0)
            return 2;
        if (k)
            continue;
        if (c == 'r')
            (void)cli_config_repo(optarg);
        else if (c == 'h')
            return cli_help("config");
        else
            return cli_usage("config", NULL);
    }
    if (optind < argc)
        return cli_usage("config", "unexpected argument '%s'", argv[optind]);
    if (!agent_opts.json)
        printf("%-15s %-40s %s\n", "SETTING", "VALUE", "FROM");
    for (size_t k = 0; k < CLI_CONF_N; k++) {
        const char *src = conf[k].source ? conf[k].source : "unset";

        if (agent_opts.json) {
            struct proto_kv kv = {0};
            proto_kv_set(&kv, "key", conf_keys[k].key);
            if (conf[k].value)
                proto_kv_set(&kv, "value", conf[k].value);
            proto_kv_set(&kv, "source", src);
            proto_kv_set(&kv, "env", conf_keys[k].env);
            agent_event("setting", &kv);
            proto_kv_free(&kv);
            continue;
        }
        printf("%-15s %-40s %s\n", conf_keys[k].key,
               conf[k].value ? conf[k].value : "-", src);
    }
    return 0;
}
