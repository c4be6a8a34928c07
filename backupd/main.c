/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * backupd: owns a livebackup repository and speaks the protocol.
 *
 *   backupd serve --repo PATH [--append-only | --read-only]
 *                 [--restrict-to-repo PATH]
 *       one session on stdin/stdout: what `ssh host backupd serve` runs,
 *       and what the agent starts as a child for a local repository. If a
 *       `backupd listen` daemon serves the repository (or --socket names
 *       one), the session is bridged to it.
 *   backupd listen --repo PATH --socket PATH
 *       the daemon: many agents at once (listen.c).
 *
 * Logs go to stderr, or syslog (--syslog, and by default for listen when
 * stderr is not a terminal); the protocol owns stdout.
 */
#include "backupd/backupd.h"
#include "common/help.h"
#include "store/backend.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>

/* s as a number from lo to hi (lb_parse_long) into *out; -1 if not. */
static int
parse_unsigned(const char *s, long lo, long hi, unsigned *out)
{
    long v;

    if (lb_parse_long(s, lo, hi, &v) < 0)
        return -1;
    *out = (unsigned)v;
    return 0;
}

/* The most seconds an option takes: a day. */
#define MAX_SECONDS 86400

/*
 * Move the protocol's descriptors away from 0 and 1 and put /dev/null in
 * their place: nothing printed by accident (a library, a stray printf) can
 * reach the pipe and corrupt the stream.
 */
static int
take_stdio(int *in, int *out)
{
    int null;

    *in = fcntl(0, F_DUPFD_CLOEXEC, 3);
    *out = fcntl(1, F_DUPFD_CLOEXEC, 3);
    if (*in < 0 || *out < 0)
        return lb_error(errno, "duplicate stdin/stdout");
    null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0)
        return lb_error(errno, "open /dev/null");
    if (dup2(null, 0) < 0 || dup2(null, 1) < 0)
        return lb_error(errno, "redirect stdin/stdout");
    close(null);
    return 0;
}

/*
 * --restrict-to-repo: under a forced ssh command, the repository the
 * client asked for is in SSH_ORIGINAL_COMMAND ("backupd serve --repo X").
 * Allow it only if it resolves at or below the restriction, or, for a
 * rados: restriction, names the same pool and namespace.
 */
static char *
pick_repo(const char *repo, const char *restrict_to)
{
    char want[PATH_MAX], base[PATH_MAX];
    const char *orig = getenv("SSH_ORIGINAL_COMMAND");
    CLEANUP_FREE char *asked = NULL;
    size_t bl;

    if (!restrict_to)
        return repo ? lb_xstrdup(repo) : NULL;
    if (!repo && orig) {
        /* The client's command line, as the agent quotes it. */
        size_t n;
        char **w = lb_split_words(orig, &n);
        for (size_t i = 0; i < n; i++) {
            if (strcmp(w[i], "--repo") == 0 && i + 1 < n)
                asked = lb_xstrdup(w[i + 1]);
            else if (strncmp(w[i], "--repo=", 7) == 0)
                asked = lb_xstrdup(w[i] + 7);
        }
        lb_free_words(w);
        repo = asked;
    }
    if (!repo)
        repo = restrict_to;
    /* A RADOS repository: the pool and namespace the forced command
     * names, served as it names them (its Ceph config and key). */
    if (store_be_is_rados(restrict_to))
        return store_be_rados_restrict(restrict_to, repo) < 0
                   ? NULL
                   : lb_xstrdup(restrict_to);
    if (store_be_is_rados(repo)) {
        lb_fail(EPERM, "repository %s is outside the allowed path %s", repo,
                restrict_to);
        return NULL;
    }
    if (!realpath(restrict_to, base)) {
        lb_error(errno, "--restrict-to-repo %s", restrict_to);
        return NULL;
    }
    /* The repository may not exist yet (init): resolve its parent. */
    if (!realpath(repo, want)) {
        CLEANUP_FREE char *copy = lb_xstrdup(repo);
        char *slash = strrchr(copy, '/');
        char parent[PATH_MAX];
        if (!slash || slash == copy ||
            !realpath((*slash = '\0', copy), parent) ||
            strcmp(slash + 1, "..") == 0 || strcmp(slash + 1, ".") == 0) {
            lb_fail(EPERM, "repository %s is outside the allowed path", repo);
            return NULL;
        }
        if (strlen(parent) > PATH_MAX / 2 ||
            (size_t)snprintf(want, sizeof want, "%.*s/%s", PATH_MAX / 2, parent,
                             slash + 1) >= sizeof want) {
            lb_fail(ENAMETOOLONG, "repository path %s", repo);
            return NULL;
        }
    }
    bl = strlen(base);
    if (strncmp(want, base, bl) != 0 || (want[bl] != '\0' && want[bl] != '/')) {
        lb_fail(EPERM, "repository %s is outside the allowed path %s", repo,
                restrict_to);
        return NULL;
    }
    return lb_xstrdup(want);
}

/* Each session keeps up to ~40 chunk files open while they are made
 * durable: a daemon with many sessions needs more than the usual soft
 * limit of 1024 descriptors. */
static void
raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Before a session could start: tell the client why, in the protocol. */
static int
refuse_client(int out, uint32_t code, const char *hint)
{
    struct lb_buf b = {0};

    lb_log_error_slot();
    proto_enc_error(&b, code, lb_error_msg(), hint);
    lb_write_full(out, b.data, b.len);
    lb_buf_free(&b);
    return 1;
}

/* serve: one session on stdin/stdout, or relayed to the daemon that
 * serves the repository (it stays the one writer). The exit code. */
static int
serve(struct backupd_opts *o, const char *repo, const char *restrict_to,
      const char *sock)
{
    CLEANUP_FREE char *path = NULL;
    CLEANUP_FREE char *daemon = NULL;
    int in, out;

    if (take_stdio(&in, &out) < 0) {
        lb_log_error_slot();
        return 1;
    }
    path = pick_repo(repo, restrict_to);
    if (!path) {
        if (!repo && !restrict_to)
            lb_fail(EINVAL, "--repo PATH is required");
        return refuse_client(out, PROTO_ERR_DENIED, "");
    }
    o->repo = path;
    daemon = sock ? lb_xstrdup(sock) : backupd_find_daemon(path);
    if (daemon) {
        lb_debug("bridging to backupd at %s", daemon);
        if (backupd_bridge(in, out, daemon, o->append_only, o->read_only,
                           o->trusted, o->names, o->nnames) < 0)
            return refuse_client(out, PROTO_ERR_BUSY,
                                 lb_error_hint_msg()[0]
                                     ? lb_error_hint_msg()
                                     : "is backupd listen running?");
        return 0;
    }
    return backupd_session_run(in, out, o) < 0 ? 1 : 0;
}

/* What the command line says. */
struct cmdline {
    struct backupd_opts o;
    uint64_t max_memory;
    char *names[BACKUPD_MAX_NAME_GLOBS];
    size_t nnames;
    const char *repo, *restrict_to, *sock;
    enum lb_log_level level;
    bool log_chosen, help;
};

/* The options of the bounds and restrictions: 0, or the exit code (2). */
static int
bound_opt(int c, struct cmdline *cl)
{
    switch (c) {
    case 'N':
        if (!backupd_name_glob_valid(optarg) ||
            cl->nnames == BACKUPD_MAX_NAME_GLOBS) {
            fprintf(stderr,
                    "backupd: --restrict-names '%s': a glob of 1-256 "
                    "printable characters, at most %d of them\n",
                    optarg, BACKUPD_MAX_NAME_GLOBS);
            return 2;
        }
        cl->names[cl->nnames++] = optarg;
        return 0;
    case 'm':
        if (parse_unsigned(optarg, 1, 100000, &cl->o.max_sessions) < 0) {
            fprintf(stderr, "backupd: --max-sessions %s: 1 to 100000\n",
                    optarg);
            return 2;
        }
        return 0;
    case 'M':
        if (lb_parse_size(optarg, &cl->max_memory) < 0 ||
            cl->max_memory < (64u << 20)) {
            fprintf(stderr, "backupd: --max-memory %s: a size of 64M or more\n",
                    optarg);
            return 2;
        }
        return 0;
    case 'W':
        if (parse_unsigned(optarg, 0, MAX_SECONDS, &cl->o.memory_wait) < 0) {
            fprintf(stderr,
                    "backupd: --memory-wait %s: a number of seconds (0: "
                    "at once)\n",
                    optarg);
            return 2;
        }
        return 0;
    default: /* 'i' */
        if (parse_unsigned(optarg, 0, MAX_SECONDS, &cl->o.idle_timeout) < 0) {
            fprintf(stderr,
                    "backupd: --idle-timeout %s: a number of seconds (0: "
                    "never)\n",
                    optarg);
            return 2;
        }
        return 0;
    }
}

/* One option: 0 to go on, else the exit code (-1: exit 0). */
static int
one_opt(int c, struct cmdline *cl)
{
    switch (c) {
    case 'r':
        cl->repo = optarg;
        return 0;
    case 'R':
        cl->restrict_to = optarg;
        return 0;
    case 'a':
        cl->o.append_only = true;
        return 0;
    case 'O':
        cl->o.read_only = true;
        return 0;
    case 'N':
    case 'm':
    case 'M':
    case 'W':
    case 'i':
        return bound_opt(c, cl);
    case 'T':
        cl->o.trusted = true;
        return 0;
    case 'l':
        if (parse_unsigned(optarg, 0, MAX_SECONDS, &cl->o.lock_wait) < 0) {
            fprintf(stderr,
                    "backupd: --lock-wait %s: a number of seconds from "
                    "0 to 86400\n",
                    optarg);
            return 2;
        }
        return 0;
    case 'w':
        if (parse_unsigned(optarg, 0, 1024, &cl->o.workers) < 0) {
            fprintf(stderr,
                    "backupd: --workers %s: a count from 1 to 1024 (0: "
                    "one per CPU)\n",
                    optarg);
            return 2;
        }
        return 0;
    case 's':
        cl->sock = optarg;
        return 0;
    case 'S':
        lb_log_set_target(LB_LOG_TO_SYSLOG);
        cl->log_chosen = true;
        return 0;
    case 'E':
        lb_log_set_target(LB_LOG_TO_STDERR);
        cl->log_chosen = true;
        return 0;
    case 'v':
        cl->level = LB_LOG_DEBUG;
        return 0;
    case 'V':
        printf("backupd %s (protocol %d)\n", LB_VERSION, PROTO_VERSION);
        return -1;
    case 'h':
        cl->help = true; /* of the command, once it is known */
        return 0;
    default:
        fputs("Try 'backupd help' for the commands, 'backupd COMMAND --help' "
              "for their options.\n",
              stderr);
        return 2;
    }
}

/* listen: the daemon. The exit code. */
static int
listen_cmd(struct cmdline *cl)
{
    int rc;

    if (!cl->repo || !*cl->repo || !cl->sock || !*cl->sock) {
        /* (an empty one failed in the log, where a daemon logs) */
        bool repo = !cl->repo || !*cl->repo;
        fprintf(stderr,
                "backupd listen: %s is %s\nTry 'backupd listen "
                "--help' for its options.\n",
                repo ? "--repo PATH" : "--socket PATH",
                (repo ? cl->repo : cl->sock) ? "empty" : "required");
        return 2;
    }
    if (cl->o.trusted) {
        /* Every client of the socket would skip the checks of its
         * uploads. A local agent's own child says it is trusted in its
         * BRIDGE frame, believed only from the daemon's user or root. */
        fprintf(stderr, "backupd: listen --trusted-client would trust every "
                        "client of the socket: refused (a local agent's "
                        "backupd child is trusted through its BRIDGE frame)\n");
        return 2;
    }
    /* A daemon logs to the journal/syslog unless on a terminal. */
    if (!cl->log_chosen)
        lb_log_target_auto(false);
    if (cl->level == LB_LOG_WARN)
        lb_log_set_level(LB_LOG_INFO);
    cl->o.repo = cl->repo;
    cl->o.limits = backupd_limits_new(cl->max_memory);
    rc = backupd_listen(&cl->o, cl->sock);
    if (rc < 0)
        lb_log_error_slot();
    backupd_limits_free(cl->o.limits);
    return rc < 0 ? 1 : 0;
}

int
main(int argc, char **argv)
{
    struct option opts[LB_HELP_MAX_OPTS];
    char shortopts[2 * LB_HELP_MAX_OPTS + 1];
    /* serve: errors reach the client in ERROR frames and our stderr is the
     * user's terminal: stay quiet unless asked (-v). */
    static struct cmdline cl = {
        .o = {.idle_timeout = BACKUPD_IDLE_TIMEOUT,
              .max_sessions = BACKUPD_MAX_SESSIONS,
              .memory_wait = BACKUPD_MEMORY_WAIT},
        .max_memory = BACKUPD_MAX_MEMORY,
        .level = LB_LOG_WARN,
    };
    const char *cmd;
    int c;

    lb_log_init("backupd", LB_LOG_INFO);
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    if (argc >= 2 && strcmp(argv[1], "help") == 0)
        return backupd_help(argc >= 3 ? argv[2] : NULL);
    if (argc == 2 && strcmp(argv[1], "__man") == 0)
        return backupd_man();
    lb_help_getopt_all(backupd_commands, backupd_common_opts, opts, shortopts);
    while ((c = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
        int r = one_opt(c, &cl);
        if (r != 0)
            return r < 0 ? 0 : r;
    }
    lb_log_set_level(cl.level);
    cl.o.names = cl.names;
    cl.o.nnames = cl.nnames;
    cmd = optind < argc ? argv[optind] : NULL;
    if (cl.help)
        return backupd_help(cmd);
    if (!cmd) {
        backupd_usage(stderr);
        return 2;
    }
    if (strcmp(cmd, "listen") == 0)
        return listen_cmd(&cl);
    if (strcmp(cmd, "serve") != 0) {
        fprintf(stderr,
                "backupd: unknown command '%s'\nTry 'backupd help' for the "
                "commands.\n",
                cmd);
        return 2;
    }
    return serve(&cl.o, cl.repo, cl.restrict_to, cl.sock);
}
