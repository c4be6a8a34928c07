/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * backupd listen: one long-running daemon owns the repository and serves
 * many agents at once on a unix socket. A libuv loop accepts connections
 * and handles signals; each session runs the same blocking session code as
 * `backupd serve`, in its own thread. Blocking I/O per session and the
 * bounded chunk pool give backpressure: a slow disk or a slow client slows
 * its own session, memory does not grow.
 *
 * SIGTERM/SIGINT: stop accepting; running sessions end at their next frame
 * boundary (a backup in progress is abandoned: only reusable chunks
 * remain; a commit already under way completes); sessions idle in a read
 * are woken by shutting their socket down. Then the daemon exits.
 *
 * REPO/listen names the socket while the daemon runs, so `backupd serve`
 * (what ssh runs) can bridge to it: one writer however many hosts back up.
 */
#include "backupd/backupd.h"
#include "store/backend.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <uv.h>

#define GRACE_MS 3000
/* Connections past --max-sessions that are told BUSY at once (each in a
 * thread for at most a few seconds); past these, they are closed. */
#define REFUSERS 16
/* Cluster connections of a RADOS repository kept between sessions (each
 * session uses one, and one more for its lookups when it sends large
 * chunks): a session's connect costs it 20-30 ms, more than a small
 * incremental's data, and each kept one about 12 threads and 1-2 MiB
 * (measured). Enough for 4 sessions at once; more connect as before. */
#define RADOS_KEPT 8

struct sess {
    struct sess *next;
    int fd;
    pthread_t th;
    _Atomic bool done;
    bool refuse; /* past --max-sessions: told BUSY */
    struct listener *l;
};

struct listener {
    uv_loop_t loop;
    uv_pipe_t server;
    uv_signal_t sigterm, sigint;
    uv_timer_t reaper;
    struct backupd_opts o;
    volatile int stop;
    pthread_mutex_t lock;
    struct sess *sessions;
    unsigned nsessions, nrefusing, served;
    char *marker;
};

static void *
sess_thread(void *arg)
{
    struct sess *s = arg;
    struct backupd_opts o = s->l->o;

    o.refuse = s->refuse;
    lb_debug("session on fd %d started", s->fd);
    backupd_session_run(s->fd, s->fd, &o);
    shutdown(s->fd, SHUT_RDWR);
    /* Counted out now, not when reaped: its place is free at once. */
    pthread_mutex_lock(&s->l->lock);
    if (s->refuse)
        s->l->nrefusing--;
    else
        s->l->nsessions--;
    s->done = true;
    pthread_mutex_unlock(&s->l->lock);
    lb_debug("session on fd %d ended", s->fd);
    return NULL;
}

/* Join sessions that ended (all of them when all is true). */
static void
reap(struct listener *l, bool all)
{
    struct sess **pp = &l->sessions;

    pthread_mutex_lock(&l->lock);
    while (*pp) {
        struct sess *s = *pp;
        if (!s->done && !all) {
            pp = &s->next;
            continue;
        }
        *pp = s->next;
        pthread_mutex_unlock(&l->lock);
        pthread_join(s->th, NULL);
        close(s->fd);
        free(s);
        pthread_mutex_lock(&l->lock);
    }
    pthread_mutex_unlock(&l->lock);
}

static void
on_reap(uv_timer_t *t)
{
    reap(t->data, false);
}

static void
on_connection(uv_stream_t *server, int status)
{
    struct listener *l = server->data;
    uv_pipe_t *client;
    uv_os_fd_t fd;
    struct sess *s;

    if (status < 0) {
        lb_warn("accept: %s", uv_strerror(status));
        return;
    }
    client = lb_xcalloc(1, sizeof *client);
    uv_pipe_init(&l->loop, client, 0);
    if (uv_accept(server, (uv_stream_t *)client) != 0 ||
        uv_fileno((uv_handle_t *)client, &fd) != 0) {
        uv_close((uv_handle_t *)client, (uv_close_cb)free);
        return;
    }
    s = lb_xcalloc(1, sizeof *s);
    s->l = l;
    /* The session owns its own descriptor, in blocking mode; libuv's
     * handle is closed. */
    s->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    uv_close((uv_handle_t *)client, (uv_close_cb)free);
    if (s->fd < 0) {
        lb_warn("accept: %s", strerror(errno));
        free(s);
        return;
    }
    fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) & ~O_NONBLOCK);
    /* Past --max-sessions: told BUSY by a session of its own, or, past
     * as many of these, closed at once. Counted before it starts (it
     * counts itself out when it ends). */
    pthread_mutex_lock(&l->lock);
    s->refuse = l->o.max_sessions && l->nsessions >= l->o.max_sessions;
    if (s->refuse && l->nrefusing >= REFUSERS) {
        lb_warn("%u sessions and %u refused ones: connection closed",
                l->nsessions, l->nrefusing);
        pthread_mutex_unlock(&l->lock);
        close(s->fd);
        free(s);
        return;
    }
    if (s->refuse)
        l->nrefusing++;
    else
        l->nsessions++;
    if (pthread_create(&s->th, NULL, sess_thread, s) != 0) {
        if (s->refuse)
            l->nrefusing--;
        else
            l->nsessions--;
        pthread_mutex_unlock(&l->lock);
        lb_warn("cannot start a session thread");
        close(s->fd);
        free(s);
        return;
    }
    s->next = l->sessions;
    l->sessions = s;
    l->served++;
    pthread_mutex_unlock(&l->lock);
}

static void
on_signal(uv_signal_t *h, int signum)
{
    struct listener *l = h->data;

    lb_info("signal %d: no new sessions; ending the running ones", signum);
    l->stop = 1;
    uv_close((uv_handle_t *)&l->server, NULL);
    uv_close((uv_handle_t *)&l->sigterm, NULL);
    uv_close((uv_handle_t *)&l->sigint, NULL);
    uv_close((uv_handle_t *)&l->reaper, NULL);
}

/* Is a daemon answering on this socket? */
static bool
socket_alive(const char *path)
{
    int fd = lb_unix_connect(path);

    if (fd < 0)
        return false;
    close(fd);
    return true;
}

int
backupd_listen(const struct backupd_opts *o, const char *socket_path)
{
    struct listener l;
    char abs[4096];
    CLEANUP_FREE char *marker_text = NULL;
    CLEANUP_CLOSE int lock_fd = -1;
    int r, ret = -1;

    memset(&l, 0, sizeof l);
    l.o = *o;
    l.o.stop = &l.stop;
    l.o.accept_bridge = true;

    pthread_mutex_init(&l.lock, NULL);

    /* The repository must exist: every session opens it itself. */
    if (store_be_is_rados(o->repo)) {
        struct store *st = store_open(o->repo, STORE_READ, 0);
        if (!st)
            return -1;
        store_close(st);
    } else {
        CLEANUP_FREE char *cfg = lb_xasprintf("%s/config", o->repo);
        struct stat sb;
        if (stat(cfg, &sb) < 0) {
            lb_fail(ENOENT, "no repository at %s", o->repo);
            lb_error_hint("create one with: livebackup init --repo %s",
                          o->repo);
            return -1;
        }
    }
    if (socket_path[0] != '/') {
        char cwd[4096];
        if (!getcwd(cwd, sizeof cwd))
            return lb_error(errno, "getcwd");
        if ((size_t)snprintf(abs, sizeof abs, "%s/%s", cwd, socket_path) >=
            sizeof abs)
            return lb_fail(ENAMETOOLONG, "socket path too long: %s",
                           socket_path);
    } else {
        snprintf(abs, sizeof abs, "%s", socket_path);
    }
    if (socket_alive(abs))
        return lb_fail(EADDRINUSE, "another backupd already listens on %s",
                       abs);
    /* One daemon per repository: REPO/listen.lock, held while we run.
     * A RADOS repository takes any number of front ends (README,
     * "Scale out on Ceph"): no lock, no marker. */
    if (!store_be_is_rados(o->repo)) {
        CLEANUP_FREE char *lk = lb_xasprintf("%s/listen.lock", o->repo);
        lock_fd = open(lk, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (lock_fd < 0)
            return lb_error(errno, "create %s", lk);
        if (flock(lock_fd, LOCK_EX | LOCK_NB) < 0) {
            int e = errno;
            CLEANUP_FREE char *other = lb_repo_daemon_socket(o->repo);
            if (e != EWOULDBLOCK)
                return lb_error(e, "lock %s", lk);
            return lb_fail(EADDRINUSE,
                           "another backupd listen serves %s (on %s)", o->repo,
                           other ? other : "an unknown socket");
        }
    }
    unlink(abs); /* a stale socket of a daemon that died */

    if (uv_loop_init(&l.loop) != 0)
        return lb_fail(EIO, "libuv: cannot start the event loop");
    uv_pipe_init(&l.loop, &l.server, 0);
    l.server.data = &l;
    r = uv_pipe_bind(&l.server, abs);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&l.server, 64, on_connection);
    if (r != 0) {
        lb_fail(EIO, "listen on %s: %s", abs, uv_strerror(r));
        uv_close((uv_handle_t *)&l.server, NULL);
        uv_run(&l.loop, UV_RUN_DEFAULT);
        uv_loop_close(&l.loop);
        return -1;
    }
    chmod(abs, 0660);
    uv_signal_init(&l.loop, &l.sigterm);
    uv_signal_init(&l.loop, &l.sigint);
    l.sigterm.data = l.sigint.data = &l;
    uv_signal_start(&l.sigterm, on_signal, SIGTERM);
    uv_signal_start(&l.sigint, on_signal, SIGINT);
    uv_timer_init(&l.loop, &l.reaper);
    l.reaper.data = &l;
    uv_timer_start(&l.reaper, on_reap, 1000, 1000);

    /* Tell `backupd serve` where we are. */
    marker_text = lb_xasprintf("%s\n%ld\n", abs, (long)getpid());
    if (!store_be_is_rados(o->repo) &&
        lb_write_file_atomic(o->repo, "listen", marker_text,
                             strlen(marker_text), 0644) < 0) {
        on_signal(&l.sigterm, 0); /* closes every handle */
        uv_run(&l.loop, UV_RUN_DEFAULT);
        goto out;
    }
    lb_info("listening on %s for repository %s", abs, o->repo);
    store_rados_keep_connections(RADOS_KEPT);

    uv_run(&l.loop, UV_RUN_DEFAULT);

    /* Stopping: sessions end at their next frame; wake idle ones. */
    for (int waited = 0; waited < GRACE_MS; waited += 50) {
        unsigned live;
        reap(&l, false);
        pthread_mutex_lock(&l.lock);
        live = l.nsessions + l.nrefusing;
        pthread_mutex_unlock(&l.lock);
        if (live == 0)
            break;
        usleep(50 * 1000);
    }
    pthread_mutex_lock(&l.lock);
    for (struct sess *s = l.sessions; s; s = s->next)
        shutdown(s->fd, SHUT_RDWR);
    pthread_mutex_unlock(&l.lock);
    reap(&l, true);
    lb_info("stopped after %u session(s)", l.served);
    ret = 0;
out:
    store_rados_connections_close();
    if (!store_be_is_rados(o->repo)) {
        CLEANUP_FREE char *m = lb_xasprintf("%s/listen", o->repo);
        unlink(m);
    }
    unlink(abs);
    uv_loop_close(&l.loop);
    pthread_mutex_destroy(&l.lock);
    return ret;
}
