/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The options every command takes (cli_common_opts), parsed into the
 * client's settings (agent_opts), and the one way a command reports its
 * failure.
 */
#include "agent/cli/cli.h"
#include "agent/client/client.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What cli_abs_path made, reachable until exit. */
static char **abs_paths;
static size_t n_abs_paths;

const char *
cli_abs_path(const char *path)
{
    char cwd[PATH_MAX];
    char *abs;

    if (path[0] == '/' || !getcwd(cwd, sizeof cwd))
        return path;
    abs = lb_xasprintf("%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd, path);
    abs_paths = lb_xrealloc(abs_paths, (n_abs_paths + 1) * sizeof *abs_paths);
    abs_paths[n_abs_paths++] = abs;
    return abs;
}

void
cli_set_state_dir(const char *dir)
{
    setenv("LIVEBACKUP_STATE_DIR", cli_abs_path(dir), 1);
}

bool
cli_number(const char *opt, const char *arg, long lo, long hi, const char *what,
           long *out)
{
    if (lb_parse_long(arg, lo, hi, out) == 0)
        return true;
    fprintf(stderr, "livebackup: %s %s: %s\n", opt, arg, what);
    return false;
}

/* An empty --rsh ran "--" as the remote shell; an empty --remote-backupd
 * said backupd was not installed. */
static bool
empty_arg(const char *opt, const char *arg, const char *what)
{
    if (*arg)
        return false;
    fprintf(stderr, "livebackup: --%s is empty: give %s\n", opt, what);
    return true;
}

int
agent_common_opt(int opt, const char *arg)
{
    long v;

    switch (opt) {
    case 1000:
        agent_opts.json = true;
        agent_opts.progress = false;
        return 1;
    case 1001:
        if (empty_arg("rsh", arg, "the remote shell's command (default ssh)"))
            return -1;
        agent_opts.rsh = arg;
        cli_config_note(CLI_CONF_RSH, arg);
        return 1;
    case 1002:
        if (empty_arg("remote-backupd", arg, "backupd's path on the server"))
            return -1;
        agent_opts.remote_backupd = arg;
        cli_config_note(CLI_CONF_REMOTE_BACKUPD, arg);
        return 1;
    case 1003:
        if (lb_parse_size(arg, &agent_opts.bwlimit) < 0 ||
            agent_opts.bwlimit == 0) {
            fprintf(stderr,
                    "livebackup: --bwlimit %s: expected a rate like "
                    "20M (bytes per second)\n",
                    arg);
            return -1;
        }
        cli_config_note(CLI_CONF_BWLIMIT, arg);
        return 1;
    case 1004:
        if (!cli_number("--compress-level", arg, -5, 19,
                        "a level from -5 to 19", &v))
            return -1;
        agent_opts.zlevel = (int)v;
        cli_config_note(CLI_CONF_COMPRESS_LEVEL, arg);
        return 1;
    case 1005:
        if (!cli_number("--lock-wait", arg, 0, 86400,
                        "a number of seconds from 0 to 86400", &v))
            return -1;
        agent_opts.lock_wait = (unsigned)v;
        return 1;
    case 1006:
        agent_opts.progress = !agent_opts.json;
        return 1;
    case 1007:
        agent_opts.progress = false;
        return 1;
    case 1008:
        if (!cli_number("--threads", arg, 0, 1024,
                        "a count from 1 to 1024 (0: one per CPU)", &v))
            return -1;
        agent_opts.threads = (unsigned)v;
        return 1;
    case 1009:
        agent_opts.passphrase_file = arg;
        return 1;
    case 1010:
        agent_opts.key_file = arg;
        return 1;
    case 1011:
        agent_opts.new_passphrase_file = arg;
        return 1;
    case 'v':
        lb_log_set_level(LB_LOG_DEBUG);
        return 1;
    case 'q':
        lb_log_set_level(LB_LOG_WARN);
        agent_opts.progress = false;
        return 1;
    default:
        return 0;
    }
}

int
agent_fail(void)
{
    lb_log_error_slot();
    if (agent_opts.json) {
        struct proto_kv kv = {0};
        proto_kv_set(&kv, "message", lb_error_msg());
        if (lb_error_hint_msg()[0])
            proto_kv_set(&kv, "hint", lb_error_hint_msg());
        agent_event("error", &kv);
        proto_kv_free(&kv);
    }
    return 1;
}

void
cli_kv_for_terminal(struct proto_kv *kv)
{
    for (size_t i = 0; i < kv->n; i++) {
        char *safe = lb_term_line(kv->e[i].val);
        free(kv->e[i].val);
        kv->e[i].val = safe;
    }
}

void
cli_kv_terminal_copy(const struct proto_kv *in, struct proto_kv *out)
{
    for (size_t i = 0; i < in->n; i++)
        proto_kv_set(out, in->e[i].key, in->e[i].val);
    cli_kv_for_terminal(out);
}

/* The value of an option, by its argument's name in the command's
 * table, checked here for every command: a set's name (NAME: --name of
 * list, show, restore-image, ...; NEWNAME, restore's new domain, names
 * files too; an empty one is no filter on the wire), a disk's (DISK), a
 * backup (not empty: it made "required with --backup  (latest ..."). */
static bool
arg_ok(const struct cli_getopt *g, int c, const char *arg)
{
    const struct lb_help_opt *o = g->cmd->opts;

    while (o && o->name && (o->val ? o->val : o->letter) != c)
        o++;
    if (!o || !o->name || !o->arg)
        return true;
    if (strcmp(o->arg, "NAME") == 0 || strcmp(o->arg, "NEWNAME") == 0)
        return cli_name_ok(g->cmd->name, o->name, arg);
    if (strcmp(o->arg, "DISK") == 0 &&
        !proto_disk_name_valid(arg, strlen(arg))) {
        char *safe = lb_term_line(arg);
        cli_usage(g->cmd->name,
                  "--%s: invalid disk name '%s': a disk is named by its "
                  "target (vda, sdb, ...), 1 to 64 of A-Z a-z 0-9 _ . -",
                  o->name, safe);
        free(safe);
        return false;
    }
    if (strcmp(o->arg, "ID|latest|TIME") == 0 && !*arg) {
        cli_usage(g->cmd->name, "--%s is empty: give an id, latest or a time",
                  o->name);
        return false;
    }
    if (strcmp(o->arg, "GLOB") == 0 && !*arg) {
        cli_usage(g->cmd->name,
                  "--%s is empty: give a name, or a pattern such as 'web*'",
                  o->name);
        return false;
    }
    return true;
}

bool
cli_name_ok(const char *cmd, const char *opt, const char *name)
{
    if (agent_name_check(name) == 0)
        return true;
    if (opt)
        cli_usage(cmd, "--%s: %s", opt, lb_error_msg());
    else
        cli_usage(cmd, "%s", lb_error_msg());
    return false;
}

int
cli_getopt_next(struct cli_getopt *g, int argc, char **argv)
{
    int c;

    while ((c = getopt_long(argc, argv, g->shortopts, g->opts, NULL)) != -1) {
        int k = agent_common_opt(c, optarg);
        if (k < 0)
            return CLI_OPT_ERROR;
        if (k == 0)
            return arg_ok(g, c, optarg) ? c : CLI_OPT_ERROR;
    }
    return -1;
}
