/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The agent's end of a repository connection. A local repository is
 * served by a `backupd serve` child; ssh://[user@]host[:port]/path runs
 * `ssh [opts] host backupd serve --repo /path` (the ssh command can be
 * replaced with --rsh, like rsync's -e). Either way the agent speaks only
 * the protocol, over the child's stdin/stdout; the child's stderr goes to
 * ours so ssh and backupd messages reach the user.
 */
#include "agent/client/client_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct agent_opts agent_opts = {
    .zlevel = 1,
    .max_stack = 8,
};

/* 'quoted' for the remote shell. */
static char *
shell_quote(const char *s)
{
    struct lb_buf b = {0};

    lb_buf_put_u8(&b, '\'');
    for (; *s; s++) {
        if (*s == '\'')
            lb_buf_append(&b, "'\\''", 4);
        else
            lb_buf_put_u8(&b, (uint8_t)*s);
    }
    lb_buf_append(&b, "'", 2); /* quote and NUL */
    return (char *)b.data;
}

char *
agent_backupd_path(void)
{
    const char *env = getenv("LIVEBACKUP_BACKUPD");
    CLEANUP_FREE char *dir = NULL;

    if (env && *env)
        return lb_xstrdup(env);
    dir = lb_exe_dir();
    if (dir) {
        /* Installed side by side, or in the build tree. */
        static const char *const rel[] = {"backupd", "../backupd/backupd"};
        for (size_t i = 0; i < LB_ARRAY_SIZE(rel); i++) {
            char *p = lb_xasprintf("%s/%s", dir, rel[i]);
            if (access(p, X_OK) == 0)
                return p;
            free(p);
        }
    }
    return lb_xstrdup("backupd");
}

/* ssh's stderr to ours, read by a thread: what it says, as text. A UTF-8
 * sequence cut by the read's end waits for the next read. */
static void *
err_relay(void *arg)
{
    struct agent_repo *r = arg;
    char buf[4096];
    size_t held = 0;

    for (;;) {
        ssize_t n = read(r->err_fd, buf + held, sizeof buf - held);
        size_t len, keep;
        char *safe;
        if (n < 0 && errno == EINTR)
            continue;
        /* at the end, what was held goes out too (escaped, cut short) */
        len = held + (n > 0 ? (size_t)n : 0);
        keep = n > 0 ? lb_utf8_partial_tail(buf, len) : 0;
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
        safe = lb_term_safe_n(buf, len - keep);
        (void)lb_write_full(STDERR_FILENO, safe, strlen(safe));
        free(safe);
        pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
        if (n <= 0)
            break;
        memmove(buf, buf + len - keep, keep);
        held = keep;
    }
    return NULL;
}

/* The relay's end: what the child wrote before it ended is out (500 ms
 * at most: a process it left behind may hold the pipe open). */
static void
err_relay_end(struct agent_repo *r)
{
    struct timespec t;

    if (!r->err_relay)
        return;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_nsec += 500 * 1000000L;
    t.tv_sec += t.tv_nsec / 1000000000L;
    t.tv_nsec %= 1000000000L;
    if (pthread_timedjoin_np(r->err_thread, NULL, &t) != 0) {
        pthread_cancel(r->err_thread);
        pthread_join(r->err_thread, NULL);
    }
    close(r->err_fd);
    r->err_relay = false;
}

static int
spawn(struct agent_repo *r, char **argv, bool relay)
{
    int to[2], from[2], err[2] = {-1, -1};
    pid_t pid;

    if (pipe2(to, O_CLOEXEC) < 0 || pipe2(from, O_CLOEXEC) < 0)
        return lb_error(errno, "pipe");
    if (relay && pipe2(err, O_CLOEXEC) < 0)
        err[0] = err[1] = -1; /* then stderr as it is */
    /* 1 MiB pipes rather than 64 KiB: a 4 MiB window's chunk crosses in a
     * few reads, not dozens of wake-ups (best effort: the size is capped
     * by /proc/sys/fs/pipe-max-size for an unprivileged user). */
    (void)fcntl(to[1], F_SETPIPE_SZ, 1 << 20);
    (void)fcntl(from[1], F_SETPIPE_SZ, 1 << 20);
    pid = fork();
    if (pid < 0)
        return lb_error(errno, "fork");
    if (pid == 0) {
        dup2(to[0], 0);
        dup2(from[1], 1);
        if (err[1] >= 0)
            dup2(err[1], 2);
        /* Our own process group: a Ctrl-C reaches the agent, which then
         * ends the session cleanly instead of killing backupd mid-write. */
        setpgid(0, 0);
        signal(SIGPIPE, SIG_DFL);
        /* Passphrases are ours, not backupd's or ssh's. */
        unsetenv("LIVEBACKUP_PASSPHRASE");
        unsetenv("LIVEBACKUP_NEW_PASSPHRASE");
        execvp(argv[0], argv);
        dprintf(2, "livebackup: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    if (err[1] >= 0) {
        close(err[1]);
        r->err_fd = err[0];
        r->err_relay = pthread_create(&r->err_thread, NULL, err_relay, r) == 0;
        if (!r->err_relay)
            close(err[0]); /* (ssh then gets EPIPE on what it says) */
    }
    r->child = pid;
    r->conn = proto_conn_new(from[0], to[1]);
    return 0;
}

/*
 * Wait up to ms for the child; returns its status or -1 if still alive.
 * The child usually exits within a millisecond of the connection's end:
 * its pidfd wakes us at once (a fixed 50 ms poll cost every command 50 ms).
 * Without pidfds, sleeps grow from 1 ms.
 */
static int
reap(struct agent_repo *r, int ms)
{
    int status, pfd;
    int nap = 1;

    if (r->child <= 0)
        return -1;
    pfd = (int)syscall(SYS_pidfd_open, r->child, 0);
    for (int waited = 0;;) {
        pid_t p = waitpid(r->child, &status, WNOHANG);
        if (p == r->child) {
            r->child = 0;
            break;
        }
        if (p < 0 && errno != EINTR) {
            r->child = 0;
            status = -1;
            break;
        }
        if (waited >= ms) {
            status = -1;
            break;
        }
        if (pfd >= 0) {
            struct pollfd w = {.fd = pfd, .events = POLLIN};
            uint64_t t0 = lb_now_ns();
            (void)poll(&w, 1, ms - waited);
            waited += (int)((lb_now_ns() - t0) / 1000000u) + 1;
        } else {
            usleep((useconds_t)nap * 1000);
            waited += nap;
            nap = LB_MIN(nap * 2, 50);
        }
    }
    if (pfd >= 0)
        close(pfd);
    if (r->child == 0)
        err_relay_end(r);
    return status;
}

/* ---- the stall limit ---------------------------------------------------- */

/* A server that stops taking and sending (a hung disk or filesystem under
 * its repository, a stopped backupd, a broken-into one that holds the
 * session) would hold a backup, and the VM's domain lock, for ever: once
 * nothing has moved either way for watch_s seconds while a read or write
 * waits on it, the connection gives up (proto_conn_set_timeout), the wait
 * fails, and agent_repo_explain says why and ends the server (its child
 * killed: a stopped backupd or a hung ssh would not end by itself). */
static void
watch_set(struct agent_repo *r, unsigned long s)
{
    unsigned lim = (unsigned)LB_MIN(s, 86400ul);

    if (proto_conn_set_timeout(r->conn, lim * 1000u) < 0) {
        lb_warn("%s: no limit on a stalled server", lb_error_msg());
        return;
    }
    r->watch_s = lim;
}

static void
watch_start(struct agent_repo *r)
{
    const char *e = getenv("LIVEBACKUP_IO_TIMEOUT");
    unsigned long s = e && *e ? strtoul(e, NULL, 10) : 600;

    if (!(agent_opts.io_watch || (r->features & PROTO_FEATURE_WORKING)) ||
        s == 0 || !r->conn || r->watch_s)
        return;
    /* a lock the server waits for is no stall */
    if (agent_opts.lock_wait && s < agent_opts.lock_wait + 60ul)
        s = agent_opts.lock_wait + 60ul;
    watch_set(r, s);
}

/* If the session gave up on a stalled server, end it (ssh, or backupd)
 * and say so. */
static bool
end_if_stalled(struct agent_repo *r)
{
    if (!r->conn || !proto_conn_timed_out(r->conn))
        return false;
    if (r->child > 0)
        kill(r->child, SIGKILL);
    return true;
}

bool
agent_repo_cut(const struct agent_repo *r)
{
    return !r->conn || !proto_conn_got_error(r->conn);
}

void
agent_repo_explain(struct agent_repo *r)
{
    struct lb_error_saved e;
    const char *msg = e.msg;
    bool stall = end_if_stalled(r);
    int status;

    lb_error_save(&e);
    /* The server may have said why before it closed: read what it sent
     * (an ERROR frame), waiting a little for it. */
    while (!stall && r->conn && !proto_conn_got_error(r->conn) &&
           !proto_conn_eof(r->conn) &&
           proto_conn_wait_readable(r->conn, 2000) == 1) {
        struct proto_hdr h;
        const uint8_t *p;
        if (proto_conn_recv(r->conn, &h, &p) < 0)
            break;
        if (h.type == PROTO_T_ERROR) {
            proto_conn_take_error(r->conn, p, h.len, NULL);
            return;
        }
    }
    /* The server's message (got earlier) says it all. */
    lb_error_restore(&e);
    if (r->conn && proto_conn_got_error(r->conn) && !stall)
        return;
    proto_conn_free(r->conn, true);
    r->conn = NULL;
    status = reap(r, 5000);
    if (stall) {
        lb_fail(ETIMEDOUT,
                "the repository server (%s) took and sent nothing for %u s: "
                "gave up on it",
                r->host ? r->host : r->url, r->watch_s);
        if (r->writing)
            lb_error_hint("nothing half-done was committed (run again: a "
                          "backup or copy sends only what did not arrive); "
                          "check the server (a hung disk or filesystem, a "
                          "stopped backupd). LIVEBACKUP_IO_TIMEOUT sets the "
                          "limit");
        else
            lb_error_hint("check the server (a hung disk or filesystem, a "
                          "stopped backupd), then run the command again. "
                          "LIVEBACKUP_IO_TIMEOUT sets the limit");
        return;
    }
    if (status < 0)
        return;
    if (WIFSIGNALED(status)) {
        lb_error(0, "%s (%s was killed by signal %d)", msg,
                 r->host ? "ssh" : "backupd", WTERMSIG(status));
        lb_error_hint("nothing half-done was committed; run the command "
                      "again (a backup reuses the data already stored)");
    } else if (WIFEXITED(status) && r->host && WEXITSTATUS(status) == 255 &&
               r->established) {
        lb_error(0,
                 "the connection to %s was cut: %s (ssh ended with status "
                 "255: the remote backupd or sshd went away)",
                 r->host, msg);
        lb_error_hint("nothing half-done was committed; run the command "
                      "again (a backup reuses the data already stored)");
    } else if (WIFEXITED(status) && r->host && WEXITSTATUS(status) == 255) {
        lb_error(0, "ssh to %s failed (see ssh's message above)", r->host);
        lb_error_hint("check the host name, port, key and that sshd runs "
                      "there (ssh options go in --rsh \"ssh -i KEY ...\")");
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        if (r->host) {
            lb_error(0,
                     "backupd is not installed on %s (the remote shell "
                     "could not find it)",
                     r->host);
            lb_error_hint("install livebackup on %s, or give its path with "
                          "--remote-backupd PATH",
                          r->host);
        } else {
            lb_error(0, "cannot start backupd for the local repository");
            lb_error_hint("install livebackup, or set LIVEBACKUP_BACKUPD");
        }
    } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        lb_error(0, "%s (%s exited with status %d)", msg,
                 r->host ? "the remote side" : "backupd", WEXITSTATUS(status));
        if (e.hint[0])
            lb_error_hint("%s", e.hint);
    }
}

/*
 * The `backupd listen` daemon on sock: talk to it directly, as a backupd
 * child would after its BRIDGE frame, which we send ourselves
 * (PROTOCOL.md, "Bridging"): one process and one copy of every byte
 * fewer. NULL (errno set) if no daemon answers.
 */
static struct proto_conn *
bridge_conn(const char *sock, bool trusted)
{
    struct proto_conn *c;
    struct proto_kv kv = {0};
    struct lb_buf f = {0};
    int fd = lb_unix_connect(sock);

    if (fd < 0)
        return NULL;
    lb_debug("talking to backupd listen at %s", sock);
    c = proto_conn_new(fd, fd);
    proto_kv_set(&kv, "append_only", "0");
    if (trusted)
        proto_kv_set(&kv, "trusted", "1"); /* as our own child would be */
    proto_kv_set(&kv, "peer", "local");
    proto_enc_kv(&f, PROTO_T_BRIDGE, &kv);
    proto_kv_free(&kv);
    if (proto_conn_send_buf(c, &f) < 0) {
        int e = lb_error_errno();
        lb_buf_free(&f);
        proto_conn_free(c, true);
        lb_error_clear();
        errno = e;
        return NULL;
    }
    lb_buf_free(&f);
    return c;
}

/* A local directory served by a daemon (REPO/listen names its socket):
 * its connection. NULL if no daemon answers, or it may not be reached
 * (then the child reports why). */
static struct proto_conn *
daemon_conn(const char *repo, bool trusted)
{
    CLEANUP_FREE char *sock = NULL;

    /* A RADOS repository has no REPO/listen: its child opens it, or the
     * daemon its socket= names (rados_conn). */
    if (strncmp(repo, "rados:", 6) == 0)
        return NULL;
    sock = lb_repo_daemon_socket(repo);
    return sock ? bridge_conn(sock, trusted) : NULL;
}

/*
 * rados:POOL/NS?...&socket=PATH on this host: the `backupd listen` daemon
 * on PATH serves that repository (it keeps its cluster connections from
 * one session to the next: README, "Scale out on Ceph"). 0 and *c NULL if
 * url names no socket; -1 with the error set if the daemon does not
 * answer there.
 */
static int
rados_conn(const char *url, bool trusted, struct proto_conn **c)
{
    struct agent_url u = {0};
    int r = 0;

    *c = NULL;
    if (strncmp(url, "rados:", 6) != 0)
        return 0;
    if (agent_url_rados(url, url, &u) < 0)
        return -1;
    if (u.socket && !(*c = bridge_conn(u.socket, trusted))) {
        lb_error(errno ? errno : ECONNREFUSED,
                 "cannot reach backupd listen on %s", u.socket);
        lb_error_hint("is `backupd listen --repo %s --socket %s` running?",
                      u.path, u.socket);
        r = -1;
    }
    agent_url_free(&u);
    return r;
}

/* agent_repo_close, the error slot left as it was. */
static void
close_keep_error(struct agent_repo *r)
{
    struct lb_error_saved e;

    lb_error_save(&e);
    agent_repo_close(r);
    lb_error_restore(&e);
}

/* Our HELLO, encoded into r->out. */
static void
hello_enc(struct agent_repo *r)
{
    struct proto_hello h = {
        PROTO_VERSION,
        PROTO_VERSION,
        PROTO_FEATURES_KNOWN,
        {"livebackup " LB_VERSION, sizeof("livebackup " LB_VERSION) - 1}};

    proto_enc_hello(&r->out, PROTO_T_HELLO, &h);
}

/* Send what r->out holds (HELLO, perhaps more behind it) and read the
 * HELLO_REPLY. */
static int
hello_call(struct agent_repo *r)
{
    const uint8_t *p;
    uint32_t len;
    struct proto_hello reply;

    if (agent_repo_call(r, PROTO_T_HELLO_REPLY, &p, &len, NULL) < 0)
        return -1;
    if (proto_dec_hello(p, len, &reply) != PROTO_OK ||
        proto_hello_check_reply(&reply, PROTO_VERSION, PROTO_VERSION,
                                PROTO_FEATURES_KNOWN) != PROTO_OK)
        return lb_error(0,
                        "backupd answered HELLO with an unsupported version");
    r->features = reply.features;
    r->established = true;
    if (r->features & PROTO_FEATURE_WORKING) {
        /* the server says when it works long: a session of any command
         * may give up on it when it stalls */
        proto_conn_skip_working(r->conn);
        watch_start(r);
    }
    return 0;
}

/* The backupd of url started (spawned, or its daemon's socket), nothing
 * sent but a daemon's BRIDGE. */
static struct agent_repo *
repo_start(const char *url, bool trusted)
{
    struct agent_repo *r = lb_xcalloc(1, sizeof *r);
    char wait_s[16];

    r->url = lb_xstrdup(url);
    snprintf(wait_s, sizeof wait_s, "%u", agent_opts.lock_wait);
    if (strncmp(url, "ssh://", 6) == 0) {
        struct agent_url u;
        CLEANUP_FREE char *qpath = NULL;
        CLEANUP_FREE char *qsock = NULL;
        CLEANUP_FREE char *remote = NULL;
        const char *rsh = agent_opts.rsh ? agent_opts.rsh : "ssh";
        const char *rb =
            agent_opts.remote_backupd ? agent_opts.remote_backupd : "backupd";
        size_t n;
        char **argv;

        if (agent_url_parse(url, &u) < 0)
            goto fail;
        r->host = u.host;
        r->path = u.path;
        u.host = u.path = NULL;
        qpath = shell_quote(r->path);
        qsock = u.socket ? shell_quote(u.socket) : NULL;
        remote = lb_xasprintf("%s serve --repo %s --lock-wait %s%s%s", rb,
                              qpath, wait_s, u.socket ? " --socket " : "",
                              u.socket ? qsock : "");
        argv = lb_split_words(rsh, &n);
        argv = lb_xrealloc(argv, (n + 7) * sizeof *argv);
        if (u.port) {
            argv[n++] = lb_xstrdup("-p");
            argv[n++] = lb_xstrdup(u.port);
        }
        agent_url_free(&u);
        /* Whatever the host is, ssh takes it as the host: no option. */
        argv[n++] = lb_xstrdup("--");
        argv[n++] = lb_xstrdup(r->host);
        argv[n++] = lb_xstrdup(remote);
        argv[n] = NULL;
        lb_debug("running: %s ... %s %s", argv[0], r->host, remote);
        int sr = spawn(r, argv, agent_opts.stderr_relay);
        for (size_t i = 0; i < n; i++)
            free(argv[i]);
        free(argv);
        if (sr < 0)
            goto fail;
    } else if (rados_conn(url, trusted, &r->conn) < 0) {
        goto fail;
    } else if (r->conn || (r->conn = daemon_conn(url, trusted)) != NULL) {
        r->path = lb_xstrdup(url);
    } else {
        CLEANUP_FREE char *bd = agent_backupd_path();
        /* Our own child, on files we could write ourselves: re-hashing
         * every upload would protect nothing (verify still checks). */
        char *argv[] = {bd,
                        "serve",
                        "--repo",
                        (char *)url,
                        "--lock-wait",
                        wait_s,
                        trusted ? "--trusted-client" : NULL,
                        NULL};
        r->path = lb_xstrdup(url);
        if (spawn(r, argv, false) < 0)
            goto fail;
    }
    if (agent_opts.bwlimit) {
        lb_debug("pacing the connection at %llu bytes/s",
                 (unsigned long long)agent_opts.bwlimit);
        proto_conn_set_bwlimit(r->conn, agent_opts.bwlimit);
    }
    watch_start(r);
    return r;
fail:
    close_keep_error(r);
    return NULL;
}

/* Encode and send HELLO (hello_call reads the answer). */
static int
hello_send(struct agent_repo *r)
{
    hello_enc(r);
    if (proto_conn_send_buf(r->conn, &r->out) < 0) {
        agent_repo_explain(r);
        return -1;
    }
    return 0;
}

static struct agent_repo *
repo_connect(const char *url, bool trusted)
{
    struct agent_repo *r = repo_start(url, trusted);

    if (!r)
        return NULL;
    hello_enc(r);
    if (hello_call(r) < 0) {
        close_keep_error(r);
        return NULL;
    }
    return r;
}

struct agent_repo *
agent_repo_connect(const char *url)
{
    return repo_connect(url, true);
}

struct agent_repo *
agent_repo_connect_checked(const char *url)
{
    return repo_connect(url, false);
}

int
agent_repo_connect_two(const char *a, bool a_trusted, const char *b,
                       bool b_trusted, struct agent_repo **ra,
                       struct agent_repo **rb)
{
    *ra = *rb = NULL;
    if (strncmp(a, "ssh://", 6) == 0 && strncmp(b, "ssh://", 6) == 0) {
        /* one ssh at a time: a password or host key prompt each */
        if (!(*ra = repo_connect(a, a_trusted)) ||
            !(*rb = repo_connect(b, b_trusted)))
            return -1;
        return 0;
    }
    if (!(*ra = repo_start(a, a_trusted)) || !(*rb = repo_start(b, b_trusted)))
        return -1;
    /* r->out empty after hello_send: hello_call only reads */
    if (hello_send(*ra) < 0 || hello_send(*rb) < 0)
        return -1;
    return hello_call(*ra) < 0 || hello_call(*rb) < 0 ? -1 : 0;
}

void
agent_repo_end(struct agent_repo *r)
{
    (void)end_if_stalled(r);
    proto_conn_free(r->conn, true);
    r->conn = NULL;
    /* reap clears child when it is not ours to wait for (a process that
     * forked since, like nbdkit going into the background): never kill
     * pid 0, our own process group. */
    if (r->child > 0 && reap(r, 10000) < 0 && r->child > 0) {
        /* a server that hangs at its end is a bug worth a line */
        lb_warn("backupd (pid %ld) did not exit within 10 s of its session's "
                "end: stopping it",
                (long)r->child);
        kill(r->child, SIGTERM);
        reap(r, 2000);
    }
    err_relay_end(r);
}

void
agent_repo_close(struct agent_repo *r)
{
    if (!r)
        return;
    agent_repo_unlock_drop(r);
    agent_repo_end(r);
    lb_buf_free(&r->out);
    agent_keys_free(r->keys);
    free(r->url);
    free(r->path);
    free(r->host);
    free(r);
}

int
agent_repo_init(struct agent_repo *r, uint32_t window_size)
{
    const uint8_t *p;
    uint32_t len;

    proto_enc_init(&r->out, window_size);
    return agent_repo_call(r, PROTO_T_OK, &p, &len, NULL);
}

/* agent_repo_call, handing the frames of type notice that come before
 * the answer to fn (proto_conn_expect_noting; notice 0: none). */
static int
repo_call_noting(struct agent_repo *r, uint16_t type, uint16_t notice,
                 int (*fn)(void *opaque, const uint8_t *p, uint32_t len),
                 const uint8_t **p, uint32_t *len, uint32_t *code)
{
    if (proto_conn_send_buf(r->conn, &r->out) < 0 ||
        proto_conn_expect_noting(r->conn, type, notice, fn, r, p, len, code) <
            0) {
        agent_repo_explain(r);
        return -1;
    }
    return 0;
}

int
agent_repo_call(struct agent_repo *r, uint16_t type, const uint8_t **p,
                uint32_t *len, uint32_t *code)
{
    return repo_call_noting(r, type, 0, NULL, p, len, code);
}

/* WAITING before REPO_INFO: backupd holds the OPEN until its other
 * sessions give back the memory this one needs. Said once. */
static int
open_waiting(void *opaque, const uint8_t *p, uint32_t len)
{
    struct agent_repo *r = opaque;
    struct proto_waiting w;

    if (!(r->features & PROTO_FEATURE_WAIT))
        return lb_error(0, "protocol error: backupd sent WAITING unasked");
    if (proto_dec_waiting(p, len, &w) != PROTO_OK)
        return lb_error(0, "backupd sent a malformed WAITING");
    /* the server waits that long, silently: no stall */
    if (r->watch_s && r->watch_s < w.wait + 60ul)
        watch_set(r, w.wait + 60ul);
    lb_info("backupd is serving as many sessions as its memory allows "
            "(--max-memory): waiting for room, %" PRIu32
            " session%s before this one (at most %" PRIu32 " s)",
            w.ahead, w.ahead == 1 ? "" : "s", w.wait);
    return 0;
}

/* Send what r->out holds (OPEN, perhaps behind HELLO) and read the
 * REPO_INFO. */
static int
open_call(struct agent_repo *r)
{
    const uint8_t *p;
    uint32_t len;
    struct proto_repo_info ri;
    uint32_t code = 0;

    if (repo_call_noting(r, PROTO_T_REPO_INFO, PROTO_T_WAITING, open_waiting,
                         &p, &len, &code) < 0) {
        /* backupd knows only its path: name the URL the user gave. */
        if (code == PROTO_ERR_NO_REPO && r->host &&
            strstr(lb_error_msg(), "no repository"))
            lb_error_hint("create one with: livebackup init --repo %s", r->url);
        return -1;
    }
    if (proto_dec_repo_info(p, len, &ri) != PROTO_OK)
        return lb_error(0, "backupd sent a malformed REPO_INFO");
    r->window_size = ri.window_size;
    r->append_only = ri.flags & PROTO_REPO_F_APPEND_ONLY;
    r->encrypted = ri.flags & PROTO_REPO_F_ENCRYPTED;
    proto_str_copy(r->repo_id, sizeof r->repo_id, ri.repo_id);
    return 0;
}

int
agent_repo_open(struct agent_repo *r, uint8_t mode)
{
    proto_enc_open(&r->out, mode);
    return open_call(r);
}

struct agent_repo *
agent_repo_open_start(const char *url, uint8_t mode)
{
    struct agent_repo *r = repo_start(url, true);

    if (!r)
        return NULL;
    /* Both at once (PROTOCOL.md, "Session"): the server reads OPEN only
     * after it answered HELLO, and never if it refused it. */
    hello_enc(r);
    proto_enc_open(&r->out, mode);
    if (proto_conn_send_buf(r->conn, &r->out) < 0) {
        agent_repo_explain(r);
        close_keep_error(r);
        return NULL;
    }
    return r;
}

int
agent_repo_open_finish(struct agent_repo *r)
{
    /* r->out is empty: the calls only read the answers. */
    return hello_call(r) < 0 ? -1 : open_call(r);
}

uint32_t
agent_repo_window_size(const struct agent_repo *r)
{
    return r->window_size;
}

const char *
agent_repo_id(const struct agent_repo *r)
{
    return r->repo_id;
}

uint64_t
agent_repo_bytes_in(const struct agent_repo *r)
{
    return r->conn ? proto_conn_bytes_in(r->conn) : 0;
}
