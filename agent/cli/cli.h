/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The agent's command line (agent/cli/, library lb_agent_cli and the
 * livebackup executable): one file per group of subcommands. It parses
 * options and prints; the repository work is the client layer's
 * (agent/client/client.h), the libvirt work the live layer's
 * (agent/live/live.h). No file here encodes a frame.
 *
 * Exit status of every command: 0 success, 1 failure (the message says
 * what and what to do), 2 usage error.
 */
#ifndef LB_AGENT_CLI_H
#define LB_AGENT_CLI_H

#include <getopt.h>

/* ---- commands ---------------------------------------------------------- */

int cmd_init(int argc, char **argv);
int cmd_backup_image(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_restore_image(int argc, char **argv);
int cmd_delete(int argc, char **argv);
int cmd_backup(int argc, char **argv);
int cmd_recover(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_untrack(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_prune(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_key(int argc, char **argv);
int cmd_copy(int argc, char **argv);

/* ---- options every command takes (opts.c) ------------------------------ */

/*
 * Parse one of the global options (--json, --rsh, ...) into agent_opts
 * (agent/client/client.h) or the log level. Returns 1 if opt was one of
 * them (consumed), 0 if not, -1 on a bad value (a message was printed:
 * exit 2).
 */
int agent_common_opt(int opt, const char *arg);
#define AGENT_COMMON_LONGOPTS                                                  \
    {"json", no_argument, NULL, 1000}, {"rsh", required_argument, NULL, 1001}, \
        {"remote-backupd", required_argument, NULL, 1002},                     \
        {"bwlimit", required_argument, NULL, 1003},                            \
        {"compress-level", required_argument, NULL, 1004},                     \
        {"lock-wait", required_argument, NULL, 1005},                          \
        {"progress", no_argument, NULL, 1006},                                 \
        {"no-progress", no_argument, NULL, 1007},                              \
        {"verbose", no_argument, NULL, 'v'},                                   \
        {"quiet", no_argument, NULL, 'q'},                                     \
        {"threads", required_argument, NULL, 1008},                            \
        {"passphrase-file", required_argument, NULL, 1009},                    \
        {"key-file", required_argument, NULL, 1010},                           \
    {                                                                          \
        "new-passphrase-file", required_argument, NULL, 1011                   \
    }

/* Print the error slot (and hint) for the user, and with --json an error
 * event; returns the exit code 1. */
int agent_fail(void);

#endif /* LB_AGENT_CLI_H */
