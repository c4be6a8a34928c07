/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * livebackup: the command-line front end on the VM host. One file per
 * group of subcommands (cmd_*.c); this one dispatches (opts.c parses the
 * options every command shares).
 *
 * Exit status: 0 success, 1 failure (the message says what and what to
 * do), 2 usage error.
 */
#include "agent/cli/cli.h"
#include "agent/live/live.h"

#include <signal.h>
#include <string.h>

/* What runs each command; what it does and its options are in its entry
 * of cli_commands (help.c). */
static const struct {
    const char *name;
    int (*fn)(int, char **);
} commands[] = {
    {"backup", cmd_backup},
    {"status", cmd_status},
    {"recover", cmd_recover},
    {"untrack", cmd_untrack},
    {"restore", cmd_restore},
    {"show", cmd_show},
    {"map", cmd_map},
    {"mount", cmd_mount},
    {"umount", cmd_umount},
    {"init", cmd_init},
    {"key", cmd_key},
    {"backup-image", cmd_backup_image},
    {"list", cmd_list},
    {"verify", cmd_verify},
    {"restore-image", cmd_restore_image},
    {"delete", cmd_delete},
    {"prune", cmd_prune},
    {"gc", cmd_gc},
    {"config", cmd_config},
    {"copy", cmd_copy},
};

static void
usage(FILE *f)
{
    fputs("Usage: livebackup COMMAND [options]\n\nCommands:\n", f);
    lb_help_print_list(f, cli_commands);
    fputs("\nRun 'livebackup help COMMAND' or 'livebackup COMMAND --help' for "
          "a command's\noptions, 'man livebackup' for the whole story.\n",
          f);
}

/* livebackup help [COMMAND] */
static int
cmd_help(int argc, char **argv)
{
    if (argc < 2) {
        usage(stdout);
        return 0;
    }
    if (argc > 2)
        return cli_usage("help", "one COMMAND at a time");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return cli_help("help");
    return cli_help(argv[1]);
}

/* livebackup __man: the COMMANDS and common options sections of
 * livebackup(1), in scdoc (docs/man/livebackup.1.scd.in). */
static int
cmd_man(void)
{
    fputs("# COMMANDS\n\n", stdout);
    for (const struct lb_help_cmd *c = cli_commands; c->name; c++)
        lb_help_print_scdoc(stdout, "livebackup", c, "##");
    fputs("# COMMON OPTIONS\n\nEvery command that works on a repository "
          "takes these, and *-h*, *--help*.\n\n",
          stdout);
    lb_help_print_scdoc_opts(stdout, cli_common_opts);
    return 0;
}

/*
 * livebackup __complete commands | options COMMAND: the words the bash
 * completion offers (contrib/livebackup.bash-completion), one a line.
 */
static int
cmd_complete(int argc, char **argv)
{
    const struct lb_help_cmd *c;

    if (argc == 2 && strcmp(argv[1], "commands") == 0) {
        for (c = cli_commands; c->name; c++)
            puts(c->name);
        return 0;
    }
    if (argc != 3 || strcmp(argv[1], "options") != 0)
        return 2;
    c = cli_command(argv[2]);
    if (!c)
        return 1;
    for (const struct lb_help_opt *o = c->opts; o && o->name; o++)
        printf("--%s%s\n", o->name, o->arg ? "=" : "");
    for (const struct lb_help_opt *o = cli_common_opts; c->common && o->name;
         o++)
        printf("--%s%s\n", o->name, o->arg ? "=" : "");
    puts("--help");
    return 0;
}

int
main(int argc, char **argv)
{
    const char *cmd;
    char prog[64];

    lb_log_init("livebackup", LB_LOG_INFO);
    signal(SIGPIPE, SIG_IGN);
    /*
     * For the helpers we start (qemu-nbd above all): qemu-nbd allocates a
     * bounce buffer per request, and glibc hands buffers this large back
     * to the kernel on free, so every 4 MiB read pays for page faults
     * that cost more than the read itself. Keeping them in the heap makes
     * reading an image about 3x cheaper. A user's own settings win.
     */
    setenv("MALLOC_MMAP_THRESHOLD_", "67108864", 0);
    setenv("MALLOC_TRIM_THRESHOLD_", "536870912", 0);
    setenv("MALLOC_TOP_PAD_", "67108864", 0);
    {
        /* relative: from here on absolute, for what we start too */
        const char *sd = getenv("LIVEBACKUP_STATE_DIR");
        if (sd && *sd && sd[0] != '/')
            cli_set_state_dir(sd);
    }
    agent_opts.progress = isatty(2);
    agent_opts.stderr_relay = isatty(2);
    /* From cron: to syslog too (what it prints is mailed as well). */
    lb_log_target_auto(true);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
        strcmp(cmd, "help") == 0)
        return cmd_help(argc - 1, argv + 1);
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("livebackup %s (protocol %d, repository format 1)\n", LB_VERSION,
               PROTO_VERSION);
        return 0;
    }
    if (strcmp(cmd, "__man") == 0)
        return cmd_man();
    if (strcmp(cmd, "__complete") == 0)
        return cmd_complete(argc - 1, argv + 1);
    if (strcmp(cmd, "__thaw-guard") == 0) /* internal, see virt_freeze.c */
        return cmd_thaw_guard(argc - 1, argv + 1);
    if (strcmp(cmd, "__instant-watch") == 0) /* internal, see instant.c */
        return cmd_instant_watch(argc - 1, argv + 1);
    /* The settings of every other command: a bad file stops them all
     * (the guards above must run whatever it says). */
    if (cli_config_load() < 0)
        return 2;
    for (size_t i = 0; i < LB_ARRAY_SIZE(commands); i++) {
        if (strcmp(cmd, commands[i].name) != 0)
            continue;
        /* getopt's own messages then start "livebackup COMMAND: ". */
        snprintf(prog, sizeof prog, "livebackup %s", cmd);
        argv[1] = prog;
        return commands[i].fn(argc - 1, argv + 1);
    }
    return cli_usage(NULL, "unknown command '%s'", cmd);
}
