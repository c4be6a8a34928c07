/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The agent's command line (agent/cli/, library lb_agent_cli and the
 * livebackup executable): one file per group of subcommands. It parses
 * options and prints; the repository work is the client layer's
 * (agent/client/client.h), the libvirt work the live layer's
 * (agent/live/live.h). No file here encodes a frame.
 *
 * Exit status of every command: 0 success, 1 failure (the message says
 * what and what to do), 2 usage error; backup also 3, a warning (a
 * backup was made, but it left disks out).
 */
#ifndef LB_AGENT_CLI_H
#define LB_AGENT_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>

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
int cmd_map(int argc, char **argv);
int cmd_mount(int argc, char **argv);
int cmd_umount(int argc, char **argv);

/* status of a domain's instant restore, if it has one (cmd_restore.c). */
struct agent_dom;
void cli_status_instant(struct agent_dom *d);

enum {
    LB_EXIT_OK = 0,
    LB_EXIT_FAILURE = 1,
    LB_EXIT_USAGE = 2,
    LB_EXIT_WARNING = 3,
};

/* ---- the end of a backup run (notify.c) -------------------------------- */

struct json_object;

/* What a run tells when it ends: --on-failure / LIVEBACKUP_ON_FAILURE and
 * --metrics-file / LIVEBACKUP_METRICS_FILE (NULL: none). */
struct cli_notify {
    const char *on_failure;
    const char *metrics_file;
};

/* The results of one run, a domain at a time. */
struct cli_run {
    struct json_object *domains;
    int64_t start;     /* wall time */
    uint64_t start_ns; /* lb_now_ns */
};

void cli_run_init(struct cli_run *r);
/* A domain's result: status "ok", "warning" or "failed", its exit status,
 * and its summary or error event (taken: the run puts it). */
void cli_run_add(struct cli_run *r, const char *domain, const char *status,
                 int exit_status, struct json_object *result);
/* When the domain's last committed backup ended (the metrics' last
 * success time; a failed run keeps the one before). */
void cli_run_last_success(struct cli_run *r, const char *domain, int64_t t);
/* Write the metrics file and, unless exit_status is 0, run the hook (their
 * failures are warnings: the backups' result stands); frees r. */
void cli_run_finish(struct cli_run *r, const struct cli_notify *n,
                    int exit_status);

/*
 * Back up names[0..n) with up to jobs children at a time (backup_jobs.c),
 * each `livebackup backup NAME --json OPTIONS` with the options of
 * opt_argv but -j, --all, --on-failure and --metrics-file (the parent's);
 * --bwlimit is the host's: each child gets an equal share. Each result
 * goes to run; returns the number that failed.
 */
size_t cli_backup_jobs(int opt_argc, char **opt_argv, unsigned jobs,
                       char **names, size_t n, struct cli_run *run);

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
