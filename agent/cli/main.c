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

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"backup", cmd_backup, "back up libvirt domains (live, incremental)"},
    {"status", cmd_status, "change tracking state of domains"},
    {"recover", cmd_recover, "finish or undo an interrupted run"},
    {"untrack", cmd_untrack, "stop tracking: return a domain to its images"},
    {"restore", cmd_restore,
     "restore a VM (disks and definition) from a backup"},
    {"show", cmd_show, "what a backup holds, and its saved domain XML"},
    {"init", cmd_init,
     "create a repository (encrypted unless --encryption "
     "none)"},
    {"key", cmd_key, "a repository's key: export, import, change-passphrase"},
    {"backup-image", cmd_backup_image, "back up disk images (full or --since)"},
    {"list", cmd_list, "list backups"},
    {"verify", cmd_verify, "re-read and check every chunk and manifest"},
    {"restore-image", cmd_restore_image, "restore one disk of a backup"},
    {"delete", cmd_delete, "delete a backup"},
    {"prune", cmd_prune,
     "remove backups by keep rules (last, hourly, daily, ...)"},
    {"gc", cmd_gc, "reclaim the space of chunks no backup uses"},
    {"copy", cmd_copy,
     "copy backups to another repository (off-site, or pulled)"},
};

static void
usage(FILE *f)
{
    fputs("Usage: livebackup COMMAND [options]\n\nCommands:\n", f);
    for (size_t i = 0; i < LB_ARRAY_SIZE(commands); i++)
        fprintf(f, "  %-15s %s\n", commands[i].name, commands[i].help);
    fputs("\nOptions every command takes:\n"
          "  --repo PATH|ssh://[user@]host[:port]/path   the repository\n"
          "  --rsh \"ssh -i KEY -o ...\"   ssh command line (like rsync -e)\n"
          "  --remote-backupd PATH       backupd on the remote host\n"
          "  --json                      machine-readable output on stdout\n"
          "  --bwlimit RATE              limit the bytes per second to or from "
          "the\n"
          "                              repository (e.g. 20M)\n"
          "  --lock-wait SECONDS         wait for a locked repository\n"
          "  --compress-level N          zstd level (default 1)\n"
          "  --threads N                 worker threads (default: CPUs)\n"
          "  --passphrase-file FILE      an encrypted repository's passphrase\n"
          "                              (or LIVEBACKUP_PASSPHRASE_FILE, ...)\n"
          "  --key-file FILE             the key of a keyfile repository\n"
          "  --progress / --no-progress  progress line on stderr (default: "
          "on a terminal)\n"
          "  -v, --verbose / -q, --quiet\n"
          "\nRun 'livebackup COMMAND --help' for a command's options.\n",
          f);
}

int
main(int argc, char **argv)
{
    const char *cmd;

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
    agent_opts.progress = isatty(2);
    /* From cron: to syslog too (what it prints is mailed as well). */
    lb_log_target_auto(true);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
        strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("livebackup %s (protocol %d, repository format 1)\n", LB_VERSION,
               PROTO_VERSION);
        return 0;
    }
    if (strcmp(cmd, "__thaw-guard") == 0) /* internal, see virt_freeze.c */
        return cmd_thaw_guard(argc - 1, argv + 1);
    for (size_t i = 0; i < LB_ARRAY_SIZE(commands); i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "livebackup: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
