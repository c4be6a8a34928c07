/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * backupd's commands and options, with what they do: the one source of
 * its getopt table, `backupd COMMAND --help`, `backupd help` and the
 * COMMANDS section of backupd(8) (`backupd __man`).
 */
#include "common/help.h"
#include "backupd/backupd.h"

/* Both commands take these (vals are main.c's). */
const struct lb_help_opt backupd_common_opts[] = {
    {"repo", 0, 'r', "PATH", "The repository this backupd owns."},
    {"append-only", 0, 'a', NULL,
     "Refuse delete, prune and gc (and their dry runs): a VM host can add "
     "backups but not remove them."},
    {"read-only", 0, 'O', NULL,
     "List and read only: refuse backups, copies into the repository, "
     "delete, prune, gc and init, and touch nothing (the key an off-site "
     "server pulls with)."},
    {"restrict-names", 0, 'N', "GLOB",
     "Only the sets whose names match GLOB can be created, read and listed "
     "through this connection; repeatable."},
    {"lock-wait", 0, 'l', "SECONDS",
     "Wait for a conflicting lock of the repository (default 0: fail at "
     "once)."},
    {"workers", 0, 'w', "N", "Chunk-checking threads (default: one per CPU)."},
    {"idle-timeout", 0, 'i', "SECONDS",
     "Close a session that waits on its client (for a request, or for it "
     "to read) while nothing moves either way for this long (default 600; "
     "0: never)."},
    {"syslog", 0, 'S', NULL, "Log to syslog instead of stderr."},
    {"log-stderr", 0, 'E', NULL,
     "Log to stderr (listen: the default on a terminal or under systemd)."},
    {"verbose", 'v', 'v', NULL, "More log output."},
    {"version", 0, 'V', NULL, "Print the version and exit."},
    {0},
};

static const struct lb_help_opt serve_opts[] = {
    {"restrict-to-repo", 0, 'R', "PATH",
     "Only serve repositories at or below PATH: for a forced command in ssh's "
     "authorized_keys, where the client names the repository. A "
     "rados:POOL[/NAMESPACE]?... PATH allows that pool and namespace only, "
     "with its own conf=, id=, lease= and timeout=."},
    {"socket", 0, 's', "PATH",
     "Bridge the session to the backupd listen daemon on this socket (by "
     "default, to the daemon serving the repository, if one runs)."},
    {"trusted-client", 0, 'T', NULL,
     "Do not re-hash uploaded chunks: for the agent's own local child only, "
     "never behind ssh or a socket."},
    {0},
};

static const struct lb_help_opt listen_opts[] = {
    {"socket", 0, 's', "PATH", "The unix socket to listen on."},
    {"max-sessions", 0, 'm', "N",
     "Sessions served at once; more are answered BUSY (default 64)."},
    {"max-memory", 0, 'M', "SIZE",
     "What its sessions may allocate at worst, in all (default 1G); a "
     "session that needs more waits its turn (--memory-wait)."},
    {"memory-wait", 0, 'W', "SECONDS",
     "How long a session waits, first come first served, for memory other "
     "sessions hold before it is answered BUSY (default 3600; 0: at once)."},
    {0},
};

const struct lb_help_cmd backupd_commands[] = {
    {"serve", "one session on stdin/stdout (ssh, local child)",
     "[--repo PATH] [--restrict-to-repo PATH] [--append-only | --read-only] "
     "[options]",
     "Serve one protocol session on stdin and stdout: what `ssh host backupd "
     "serve` runs (like borg serve or rsync's server) and what livebackup "
     "starts as a child for a local repository. If a backupd listen daemon "
     "serves the repository, the session is bridged to it.",
     serve_opts, true},
    {"listen", "the daemon: many agents at once on a unix socket",
     "--repo PATH --socket PATH [options]",
     "Own the repository and serve every agent that connects to the socket "
     "(local ones, and remote ones through backupd serve, which bridges to "
     "it). On a RADOS repository it keeps the cluster connections of "
     "sessions that ended for the next ones (a session then does not "
     "connect; restart the daemon after changing the Ceph config). SIGTERM "
     "ends running sessions at their next frame.",
     listen_opts, true},
    {"help", "list the commands, or explain one", "[COMMAND]",
     "Without COMMAND, list the commands; with one, print its --help.", NULL,
     false},
    {0},
};

void
backupd_usage(FILE *f)
{
    fputs("Usage: backupd COMMAND [options]\n\nCommands:\n", f);
    lb_help_print_list(f, backupd_commands);
    fputs("\nRun 'backupd COMMAND --help' for its options, 'man backupd' "
          "for the whole story.\n",
          f);
}

int
backupd_help(const char *cmd)
{
    const struct lb_help_cmd *c =
        cmd ? lb_help_find(backupd_commands, cmd) : NULL;

    if (!c) {
        backupd_usage(cmd ? stderr : stdout);
        return cmd ? 2 : 0;
    }
    lb_help_print(stdout, "backupd", c, backupd_common_opts,
                  "Options of both commands");
    return 0;
}

int
backupd_man(void)
{
    fputs("# COMMANDS\n\n", stdout);
    for (const struct lb_help_cmd *c = backupd_commands; c->name; c++)
        lb_help_print_scdoc(stdout, "backupd", c, "##");
    fputs("# OPTIONS OF BOTH COMMANDS\n\n", stdout);
    lb_help_print_scdoc_opts(stdout, backupd_common_opts);
    return 0;
}
