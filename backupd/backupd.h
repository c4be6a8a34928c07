/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * backupd: the repository side of the protocol. One session serves one
 * client over a pair of descriptors: stdin/stdout behind ssh or as the
 * agent's local child (`backupd serve`), or an accepted socket
 * (`backupd listen`).
 */
#ifndef LB_BACKUPD_H
#define LB_BACKUPD_H

#include "common/common.h"
#include "common/help.h"
#include "proto/proto.h"

/* The default of --idle-timeout, seconds. */
#define BACKUPD_IDLE_TIMEOUT 600
/* backupd listen's defaults for --max-sessions and --max-memory. */
#define BACKUPD_MAX_SESSIONS 64
#define BACKUPD_MAX_MEMORY (1ull << 30)
/* and of --memory-wait, seconds */
#define BACKUPD_MEMORY_WAIT 3600

/*
 * backupd listen's bound on the memory its sessions may hold (limits.c):
 * each session reserves what it may allocate at worst (its frames, its
 * chunk pool's buffers, verify's threads) before it allocates it. What
 * it needs to start it waits for (first come, first served); a
 * reservation that cannot be had gets BUSY ("retry later"). Thread-safe.
 */
struct backupd_limits;
struct backupd_limits *backupd_limits_new(uint64_t max_bytes);
void backupd_limits_free(struct backupd_limits *l);
/* Reserve bytes: true if they fit (l NULL: always). */
bool backupd_limits_take(struct backupd_limits *l, uint64_t bytes);
/* The same, but only from room no session waits for (what a session
 * would like, not what it needs). */
bool backupd_limits_take_spare(struct backupd_limits *l, uint64_t bytes);
/* Reserve bytes, waiting in turn behind the sessions that wait already
 * for up to wait_secs while other sessions hold memory they will give
 * back. held: what the caller holds (it does not come back while the
 * caller waits). ops->waiting(opaque, ahead) is called once, when the
 * wait begins (ahead: the sessions waiting before it), without the lock;
 * ops->gone(opaque), asked at least every second, ends the wait (the
 * client left, the daemon stops). 0 when reserved, else EBUSY (it cannot
 * fit: larger than the bound, wait_secs 0, or nothing but waiting
 * sessions holds memory), ETIMEDOUT or ECONNABORTED (gone). */
struct backupd_wait_ops {
    void (*waiting)(void *opaque, unsigned ahead);
    bool (*gone)(void *opaque);
};
int backupd_limits_take_wait(struct backupd_limits *l, uint64_t bytes,
                             uint64_t held, unsigned wait_secs,
                             const struct backupd_wait_ops *ops, void *opaque);
void backupd_limits_give(struct backupd_limits *l, uint64_t bytes);
uint64_t backupd_limits_max(const struct backupd_limits *l);

struct backupd_opts {
    const char *repo;   /* repository path */
    bool append_only;   /* refuse delete, prune and gc */
    bool read_only;     /* refuse every write: OPEN for reading only */
    bool trusted;       /* do not re-hash uploads (a local child) */
    bool accept_bridge; /* listen: a session may start with BRIDGE */
    unsigned lock_wait; /* seconds to wait for a conflicting lock */
    unsigned workers;   /* chunk-checking threads (0: one per CPU) */
    /* a session that makes no progress (no byte received while it waits
     * for a request, none taken while it sends) for this many seconds is
     * closed; 0: never (BACKUPD_IDLE_TIMEOUT by default) */
    unsigned idle_timeout;
    /* listen: the memory bound shared by every session (NULL: none) and
     * the most sessions served at once (0: no bound) */
    struct backupd_limits *limits;
    unsigned max_sessions;
    /* listen: seconds a session waits for the memory it needs to start
     * while other sessions hold it (BACKUPD_MEMORY_WAIT by default) */
    unsigned memory_wait;
    /* listen, past max_sessions: answer BUSY and end */
    bool refuse;
    /* --restrict-names: the sets this connection may create, read and
     * list (globs, fnmatch(3)); none: every set */
    char *const *names;
    size_t nnames;
    /* set by listen mode: a flag polled between frames that asks running
     * sessions to end (SIGTERM) */
    volatile int *stop;
};

/*
 * Serve one client until it closes the connection or an error ends the
 * session. Never writes anything but frames to fd_out. Returns 0 when the
 * client ended the session cleanly, -1 otherwise (logged).
 */
int backupd_session_run(int fd_in, int fd_out, const struct backupd_opts *o);

/*
 * Listen on a unix socket and serve every client that connects (listen.c).
 * Returns 0 after a clean shutdown (SIGTERM/SIGINT), -1 on error.
 */
int backupd_listen(const struct backupd_opts *o, const char *socket_path);

/*
 * Bridge this process's stdin/stdout to the daemon listening on
 * socket_path: the first frame sent is BRIDGE, carrying the restrictions
 * of this connection (append-only, the sets it may use) or its trust (a
 * local agent's own child, --trusted-client; never with a restriction).
 * Returns 0 when both sides
 * closed.
 */
int backupd_bridge(int in, int out, const char *socket_path, bool append_only,
                   bool read_only, bool trusted, char *const *names,
                   size_t nnames);

/* A --restrict-names glob: 1..256 bytes of text, no newline (BRIDGE
 * carries them one per line). */
bool backupd_name_glob_valid(const char *glob);
#define BACKUPD_MAX_NAME_GLOBS 64

/* The socket of the daemon serving repo (REPO/listen), if one answers.
 * Caller frees; NULL if none. */
char *backupd_find_daemon(const char *repo);

/* Map the error slot's errno to a PROTO_ERR_* code. */
uint32_t backupd_err_code(int errnum);

/* ---- command line (help.c) ------------------------------------------- */

/* The commands and options of backupd: getopt's table, --help, the man
 * page's COMMANDS section. */
extern const struct lb_help_cmd backupd_commands[];
extern const struct lb_help_opt backupd_common_opts[];
/* `backupd help`: the commands, on f. */
void backupd_usage(FILE *f);
/* `backupd CMD --help` on stdout (cmd NULL: the command list); the exit
 * code (2 for an unknown command). */
int backupd_help(const char *cmd);
/* `backupd __man`: the man page's COMMANDS section, in scdoc. */
int backupd_man(void);

#endif /* LB_BACKUPD_H */
