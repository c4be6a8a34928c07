/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Running helper programs (no shell). */
#ifndef LB_AGENT_RUN_H
#define LB_AGENT_RUN_H

#include "common/common.h"

/*
 * Run argv (argv[0] looked up in PATH), stdin from /dev/null. If out/err
 * are not NULL they receive the NUL-terminated output (caller frees).
 * Returns the exit status (128+N for signal N), or -1 (error set) if it
 * could not run at all.
 */
int agent_run(char *const argv[], char **out, char **err);

/* Like agent_run, but any non-zero exit is an error whose message is the
 * program's stderr. Returns 0 or -1. */
int agent_run_ok(char *const argv[], char **out);

/*
 * For a child's environment: environ without the variables whose
 * "NAME=" starts with prefix, then room for extra more entries (their
 * index from *n) and the NULL. The caller fills the room and frees the
 * array (not the strings it shares with environ).
 */
char **agent_env_without(const char *prefix, size_t extra, size_t *n);

/* Append v in decimal to the string in buf (size bytes, truncated to
 * fit): async-signal-safe, for a child between fork and exec. */
void agent_put_decimal(char *buf, size_t size, unsigned long v);

/* A Unix socket listening at path (its name must fit sun_path),
 * close-on-exec. Returns the fd, or -1 (error set). */
int agent_listen_unix(const char *path);

/*
 * Fork argv (argv[0] looked up in PATH) as a server started by systemd
 * socket activation: lfd (a listening socket) its fd 3, LISTEN_PID its
 * pid, LISTEN_FDS=1 (any LISTEN_* of ours dropped), no signal blocked;
 * stderr to log if log >= 0, else ours. Returns its pid, or -1 (error
 * set).
 */
pid_t agent_spawn_activated(char *const argv[], int lfd, int log);

/* SIGTERM to our child pid, then reap it. */
void agent_kill_reap(pid_t pid);

#endif
