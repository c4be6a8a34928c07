/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * livebackup.conf: defaults for the options users would otherwise repeat
 * on every command (the repository, ssh, pacing, compression, retention),
 * and `livebackup config`, which shows each effective value and where it
 * came from.
 *
 * The file's format and its parser: conffile.c. An unknown key or a bad
 * value is an error naming the file and line, so a typo never silently
 * falls back to a default. Precedence, highest
 * first: the command line, the environment (LIVEBACKUP_REPO, ...), the
 * user's file, the system's file.
 */
#include "agent/cli/cli.h"
#include "agent/client/client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CONF_SYSTEM_FILE "/etc/livebackup/livebackup.conf"
#define CONF_MAX_SIZE (64 << 10)

/* The variable that overrides each setting. */
static const char *const conf_env[CLI_CONF_N] = {
    [CLI_CONF_REPO] = "LIVEBACKUP_REPO",
    [CLI_CONF_RSH] = "LIVEBACKUP_RSH",
    [CLI_CONF_REMOTE_BACKUPD] = "LIVEBACKUP_REMOTE_BACKUPD",
    [CLI_CONF_BWLIMIT] = "LIVEBACKUP_BWLIMIT",
    [CLI_CONF_COMPRESS_LEVEL] = "LIVEBACKUP_COMPRESS_LEVEL",
    [CLI_CONF_ON_FAILURE] = "LIVEBACKUP_ON_FAILURE",
    [CLI_CONF_METRICS_FILE] = "LIVEBACKUP_METRICS_FILE",
    [CLI_CONF_OVERLAY_DIR] = "LIVEBACKUP_OVERLAY_DIR",
    [CLI_CONF_KEEP_LAST] = "LIVEBACKUP_KEEP_LAST",
    [CLI_CONF_KEEP_LAST + 1] = "LIVEBACKUP_KEEP_HOURLY",
    [CLI_CONF_KEEP_LAST + 2] = "LIVEBACKUP_KEEP_DAILY",
    [CLI_CONF_KEEP_LAST + 3] = "LIVEBACKUP_KEEP_WEEKLY",
    [CLI_CONF_KEEP_LAST + 4] = "LIVEBACKUP_KEEP_MONTHLY",
    [CLI_CONF_KEEP_LAST + 5] = "LIVEBACKUP_KEEP_YEARLY",
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

/* One file: a missing one is no error, an unreadable or bad one is (a
 * message printed). */
static int
conf_file(const char *path)
{
    size_t len;
    CLEANUP_FREE char *text = lb_read_file(path, CONF_MAX_SIZE, &len);
    struct cli_conf c;
    unsigned line;
    char err[256];

    if (!text) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        fprintf(stderr, "livebackup: %s\n", lb_error_msg());
        return -1;
    }
    if (cli_conf_parse(text, len, &c, &line, err, sizeof err) < 0) {
        fprintf(stderr, "livebackup: %s:%u: %s\n", path, line, err);
        return -1;
    }
    for (size_t k = 0; k < CLI_CONF_N; k++)
        if (c.value[k])
            conf_set((enum cli_conf_key)k, c.value[k],
                     lb_xasprintf("%s:%u", path, c.line[k]));
    cli_conf_free(&c);
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
        char err[256];

        v = getenv(conf_env[k]);
        if (!v || !*v)
            continue;
        if (cli_conf_check((enum cli_conf_key)k, v, err, sizeof err) < 0) {
            fprintf(stderr, "livebackup: environment (%s): %s\n", conf_env[k],
                    err);
            return -1;
        }
        conf_set((enum cli_conf_key)k, v,
                 lb_xasprintf("environment (%s)", conf_env[k]));
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
    /* Deltas per window before it is compacted or sent whole (a knob for
     * tests and measurements, not a setting). */
    if ((v = getenv("LIVEBACKUP_MAX_STACK")) && *v) {
        long n;
        if (lb_parse_long(v, 1, PROTO_MAX_STACK - 1, &n) < 0) {
            fprintf(stderr,
                    "livebackup: environment (LIVEBACKUP_MAX_STACK): not a "
                    "number from 1 to %u\n",
                    (unsigned)PROTO_MAX_STACK - 1);
            return -1;
        }
        agent_opts.max_stack = (unsigned)n;
    }
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
    while ((c = cli_getopt_next(&g, argc, argv)) != -1) {
        if (c == CLI_OPT_ERROR)
            return 2;
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
            proto_kv_set(&kv, "key", cli_conf_name((enum cli_conf_key)k));
            if (conf[k].value)
                proto_kv_set(&kv, "value", conf[k].value);
            proto_kv_set(&kv, "source", src);
            proto_kv_set(&kv, "env", conf_env[k]);
            agent_event("setting", &kv);
            proto_kv_free(&kv);
            continue;
        }
        printf("%-15s %-40s %s\n", cli_conf_name((enum cli_conf_key)k),
               conf[k].value ? conf[k].value : "-", src);
    }
    return 0;
}
