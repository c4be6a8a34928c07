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

#include "common/common.h"
#include "common/help.h"

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
int cmd_copy(int argc, char **argv);

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

/* ---- options and help (help.c, opts.c) -------------------------------- */

/*
 * Every command and its options (help.c): the one source of getopt's
 * tables, --help, `help`, the man page and the completion.
 */
extern const struct lb_help_cmd cli_commands[];
extern const struct lb_help_opt cli_common_opts[];
const struct lb_help_cmd *cli_command(const char *name);

/* getopt_long's tables for the command name (its entry in cli_commands). */
struct cli_getopt {
    const struct lb_help_cmd *cmd;
    struct option opts[LB_HELP_MAX_OPTS];
    char shortopts[2 * LB_HELP_MAX_OPTS + 1];
};
void cli_getopt(const char *name, struct cli_getopt *g);

/*
 * The command's next option of its own (getopt_long over g's tables,
 * from optind on): the options every command takes are applied on the way
 * (agent_common_opt). -1: no more; CLI_OPT_ERROR: a bad value of a common
 * option, said on stderr (exit 2).
 */
#define CLI_OPT_ERROR (-2)
int cli_getopt_next(struct cli_getopt *g, int argc, char **argv);

/* Print name's --help on stdout; 0 (2 if there is no such command). */
int cli_help(const char *name);

/*
 * A usage error of cmd (NULL: of livebackup itself): print "livebackup
 * CMD: MESSAGE" (if fmt) and where to find the options; returns the exit
 * code 2.
 */
int cli_usage(const char *cmd, const char *fmt, ...) LB_PRINTF(2, 3);

/* arg, all of it, as a number from lo to hi (lb_parse_long) into *out;
 * else "livebackup: OPT ARG: WHAT" on stderr and false. */
bool cli_number(const char *opt, const char *arg, long lo, long hi,
                const char *what, long *out);

/* name is a valid set or domain name (agent_name_check); else a usage
 * error of cmd that quotes it, after "--OPT: " if opt (NULL: an
 * operand), and false. */
bool cli_name_ok(const char *cmd, const char *opt, const char *name);

/* A usage error: "livebackup CMD: WHAT is required"; returns 2. */
int cli_missing(const char *cmd, const char *what);

/* The repository: repo (from --repo) if set, else the configuration's
 * (cli_config_repo); NULL after a usage error naming what is missing. */
const char *cli_need_repo(const char *cmd, const char *repo);

/*
 * Parse one of the common options (cli_common_opts: --json, --rsh, ...)
 * into agent_opts (agent/client/client.h) or the log level. Returns 1 if
 * opt was one of them (consumed), 0 if not, -1 on a bad value (a message
 * was printed: exit 2).
 */
int agent_common_opt(int opt, const char *arg);

/* PATH made absolute (the current directory's, if relative; symbolic
 * links left as they are), for a path a command hands to libvirt or QEMU,
 * whose working directory is not ours, or keeps in its state. Lives until
 * the program exits. */
const char *cli_abs_path(const char *path);

/* --state-dir DIR: LIVEBACKUP_STATE_DIR, absolute (the processes the
 * agent starts, and QEMU for an instant restore's sockets, use it). */
void cli_set_state_dir(const char *dir);

/* ---- configuration (config.c) ------------------------------------------ */

/*
 * The settings of livebackup.conf (config.c): read from the system file
 * (/etc/livebackup/livebackup.conf), then the user's
 * ($XDG_CONFIG_HOME or ~/.config/livebackup/livebackup.conf), or the
 * ':'-separated files of LIVEBACKUP_CONFIG instead, later files winning;
 * the environment (LIVEBACKUP_REPO, ...) wins over the files and the
 * command line over both.
 */
enum cli_conf_key {
    CLI_CONF_REPO,
    CLI_CONF_RSH,
    CLI_CONF_REMOTE_BACKUPD,
    CLI_CONF_BWLIMIT,
    CLI_CONF_COMPRESS_LEVEL,
    CLI_CONF_ON_FAILURE,
    CLI_CONF_METRICS_FILE,
    CLI_CONF_OVERLAY_DIR,
    CLI_CONF_KEEP_LAST, /* then hourly, daily, weekly, monthly, yearly */
    CLI_CONF_N = CLI_CONF_KEEP_LAST + 6,
};

/* ---- the file's parser (conffile.c; pure: fuzz/fuzz_conffile.c) ---- */

/* The settings one file sets: value[k] NULL if it does not, else the
 * value (owned) and the line it is on. */
struct cli_conf {
    char *value[CLI_CONF_N];
    unsigned line[CLI_CONF_N];
};

/*
 * Parse a file's text (len bytes, NUL-terminated or not) into c. 0, or -1
 * with the line (*err_line, 0 if it is not one line's fault) and a message
 * in err (errlen bytes), c then empty. Never logs. Free c with
 * cli_conf_free.
 */
int cli_conf_parse(const char *text, size_t len, struct cli_conf *c,
                   unsigned *err_line, char *err, size_t errlen);
void cli_conf_free(struct cli_conf *c);

/* The name of setting k in the file ("keep-daily"). */
const char *cli_conf_name(enum cli_conf_key k);

/* Whether v is a valid value of k: 0, or -1 with a message in err. */
int cli_conf_check(enum cli_conf_key k, const char *v, char *err,
                   size_t errlen);

/* ---- the settings in effect (config.c) ---------------------------------- */

/* Read the files and the environment, and apply the defaults they set to
 * agent_opts. -1 (a message printed: exit 2) on a bad file or value. */
int cli_config_load(void);

/* The option of key was given on the command line (for `config`). */
void cli_config_note(enum cli_conf_key key, const char *value);

/* The repository: repo from the command line if set (noted), else the
 * configured one, or NULL. */
const char *cli_config_repo(const char *repo);

/* The configured value of key, or NULL. */
const char *cli_config_get(enum cli_conf_key key);

int cmd_config(int argc, char **argv);

/* Print the error slot (and hint) for the user, and with --json an error
 * event; returns the exit code 1. */
int agent_fail(void);

/* Every value of kv (a repository's or a peer's words) as one line for a
 * terminal (lb_term_line), for the human output; --json prints them as
 * they are. */
struct proto_kv;
void cli_kv_for_terminal(struct proto_kv *kv);
/* *out (empty) made a copy of in, for the terminal. Two values may look
 * the same there (a byte 0x9B and the text "\x9b"): compare the raw
 * ones. */
void cli_kv_terminal_copy(const struct proto_kv *in, struct proto_kv *out);

#endif /* LB_AGENT_CLI_H */
