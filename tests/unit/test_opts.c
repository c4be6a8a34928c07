/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * agent/cli/opts.c: the options every command takes, parsed into the
 * client's settings (agent_opts) and the log level, through getopt_long
 * and cli_common_opts as the commands parse them.
 */
#include "agent/cli/cli.h"
#include "agent/client/client.h"

#include <criterion/criterion.h>
#include <string.h>

/* Parse argv as a command would (every option must be a common one);
 * returns 0, or 2 for a usage error. */
static int
parse(int argc, char **argv)
{
    static const struct lb_help_cmd cmd = {"test", "", "", "", NULL, true};
    struct option opts[LB_HELP_MAX_OPTS];
    char shortopts[2 * LB_HELP_MAX_OPTS + 1];
    int c;

    lb_help_getopt(&cmd, cli_common_opts, opts, shortopts);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
        int k = agent_common_opt(c, optarg);
        if (k <= 0)
            return 2;
    }
    return optind == argc ? 0 : 2;
}

#define PARSE(...)                                                             \
    ({                                                                         \
        char *av[] = {"livebackup", __VA_ARGS__, NULL};                        \
        parse((int)(sizeof av / sizeof av[0]) - 1, av);                        \
    })

static void
defaults(void)
{
    memset(&agent_opts, 0, sizeof agent_opts);
    agent_opts.zlevel = 1;
    agent_opts.progress = true;
    lb_log_set_level(LB_LOG_INFO);
}

TestSuite(opts, .init = defaults);

Test(opts, values)
{
    cr_assert_eq(PARSE("--rsh", "ssh -i k -p 2", "--remote-backupd",
                       "/opt/backupd", "--bwlimit", "20M", "--compress-level",
                       "-5", "--lock-wait", "30", "--threads", "3"),
                 0);
    cr_assert_str_eq(agent_opts.rsh, "ssh -i k -p 2");
    cr_assert_str_eq(agent_opts.remote_backupd, "/opt/backupd");
    cr_assert_eq(agent_opts.bwlimit, 20u << 20);
    cr_assert_eq(agent_opts.zlevel, -5);
    cr_assert_eq(agent_opts.lock_wait, 30);
    cr_assert_eq(agent_opts.threads, 3);
    cr_assert_eq(PARSE("--bwlimit=1.5G", "--compress-level=19"), 0);
    cr_assert_eq(agent_opts.bwlimit, 3ull << 29);
    cr_assert_eq(agent_opts.zlevel, 19);
}

Test(opts, json_and_progress)
{
    cr_assert_eq(PARSE("--json"), 0);
    cr_assert(agent_opts.json);
    cr_assert_not(agent_opts.progress, "--json: no progress line");
    cr_assert_eq(PARSE("--progress"), 0);
    cr_assert_not(agent_opts.progress, "--progress does not undo --json");
    defaults();
    cr_assert_eq(PARSE("--no-progress"), 0);
    cr_assert_not(agent_opts.progress);
    cr_assert_eq(PARSE("--progress"), 0);
    cr_assert(agent_opts.progress);
}

Test(opts, verbosity)
{
    cr_assert_eq(PARSE("-v"), 0);
    cr_assert_eq(lb_log_get_level(), LB_LOG_DEBUG);
    cr_assert_eq(PARSE("--quiet"), 0);
    cr_assert_eq(lb_log_get_level(), LB_LOG_WARN);
    cr_assert_not(agent_opts.progress, "-q drops the progress line");
}

Test(opts, bad_values_are_usage_errors, .init = defaults)
{
    cr_assert_eq(PARSE("--bwlimit", "fast"), 2);
    cr_assert_eq(PARSE("--bwlimit", "0"), 2);
    cr_assert_eq(PARSE("--compress-level", "20"), 2);
    cr_assert_eq(PARSE("--compress-level", "-6"), 2);
}

Test(opts, others_are_not_consumed)
{
    cr_assert_eq(agent_common_opt('r', "/srv/b"), 0);
    cr_assert_eq(agent_common_opt('?', NULL), 0);
    cr_assert_eq(PARSE("--repo", "/srv/b"), 2, "not a common option");
}
