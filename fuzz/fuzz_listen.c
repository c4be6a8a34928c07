/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target: backupd listen, the daemon every host's sessions go
 * to, driven by several clients at once. The daemon runs in this process
 * (a thread of its own, on a socket and a repository in /dev/shm, both
 * made afresh every 256 inputs); an input is what up to 4 clients send,
 * separated by "\nLBSPLIT\n", each on its own connection, all at once.
 * A crash of the daemon is a crash of this process: a finding.
 *
 * Oracle: ASan/UBSan/LeakSanitizer; no client is left without an answer
 * (every connection ends); and, every 64 inputs, no chunk stored under a
 * digest its data does not match (unless a trusted BRIDGE wrote, see
 * fuzz_backupd.h).
 *
 * Leaks: the daemon's state outlives an input (its loop, its sessions
 * until the reaper joins them, up to a second later), so libFuzzer's
 * per-input leak check (which runs when an input's mallocs and frees do
 * not balance) reports that state when it runs just after a restart, as
 * LeakSanitizer then misses the new daemon thread's frames: run it with
 * -detect_leaks=0. The daemon is stopped, and everything freed, when
 * the process exits, so LeakSanitizer's check at exit (every replay of
 * the corpus in the ASan build, fuzz.replay.listen) still finds what a
 * session leaks.
 */
#include "backupd/backupd.h"
#include "fuzz/fuzz.h"
#include "fuzz/fuzz_backupd.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define SPLIT "\nLBSPLIT\n"
#define MAX_CONN 4

static char repo[64], sock[80];
static unsigned runs;
static bool tainted, running;
static pthread_t daemon_th;
static struct backupd_opts opts;

static void *
daemon_main(void *arg)
{
    (void)arg;
    if (backupd_listen(&opts, sock) < 0)
        __builtin_trap(); /* the daemon could not start: the harness */
    return NULL;
}

static void
daemon_stop(void)
{
    char cmd[128];

    if (!running)
        return;
    /* What an administrator does: SIGTERM, caught by the daemon's loop. */
    kill(getpid(), SIGTERM);
    pthread_join(daemon_th, NULL);
    running = false;
    backupd_limits_free(opts.limits);
    snprintf(cmd, sizeof cmd, "rm -rf %s", repo);
    if (system(cmd) != 0)
        abort();
}

static void __attribute__((destructor)) at_exit_stop(void)
{
    daemon_stop();
}

static bool
daemon_up(void)
{
    int fd = lb_unix_connect(sock);

    if (fd < 0)
        return false;
    close(fd);
    return true;
}

static void
daemon_start(void)
{
    snprintf(repo, sizeof repo, "/dev/shm/lbfuzz-listen-%ld", (long)getpid());
    snprintf(sock, sizeof sock, "%s.sock", repo);
    if (store_init(repo, PROTO_MIN_WINDOW) < 0)
        abort();
    memset(&opts, 0, sizeof opts);
    opts.repo = repo;
    opts.workers = 1;
    opts.max_sessions = MAX_CONN - 1; /* one of 4 is told BUSY */
    opts.limits = backupd_limits_new(256u << 20);
    tainted = false;
    if (pthread_create(&daemon_th, NULL, daemon_main, NULL) != 0)
        abort();
    running = true;
    /* It listens once its socket answers (no sleep: a poll of it). */
    for (int i = 0; !daemon_up(); i++) {
        if (i > 100000)
            abort();
        sched_yield();
    }
}

struct conn {
    int fd;
    const uint8_t *p;
    size_t n;
    pthread_t w, r;
};

static void *
writer(void *arg)
{
    struct conn *c = arg;

    (void)lb_write_full(c->fd, c->p, c->n);
    shutdown(c->fd, SHUT_WR);
    return NULL;
}

/* Reads the daemon's answers until it ends the session. */
static void *
reader(void *arg)
{
    struct conn *c = arg;
    char buf[65536];

    while (read(c->fd, buf, sizeof buf) > 0)
        ;
    return NULL;
}

/* Split data at SPLIT into at most MAX_CONN streams. */
static size_t
split(const uint8_t *data, size_t size, struct conn *c)
{
    size_t n = 0, start = 0, sl = strlen(SPLIT);

    for (size_t i = 0; n + 1 < MAX_CONN && i + sl <= size; i++) {
        if (memcmp(data + i, SPLIT, sl) != 0)
            continue;
        c[n].p = data + start;
        c[n++].n = i - start;
        start = i + sl;
        i = start - 1;
    }
    c[n].p = data + start;
    c[n++].n = size - start;
    return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct conn c[MAX_CONN];
    size_t n;

    if (runs++ % 256 == 0) {
        signal(SIGPIPE, SIG_IGN);
        lb_log_set_level(LB_LOG_ERROR);
        daemon_stop();
        daemon_start();
    }
    memset(c, 0, sizeof c);
    n = split(data, size, c);
    for (size_t i = 0; i < n; i++) {
        tainted |= fz_trusted_bridge(c[i].p, c[i].n);
        c[i].fd = lb_unix_connect(sock);
        CHECK(c[i].fd >= 0); /* the daemon is gone: it crashed or hung up */
        pthread_create(&c[i].w, NULL, writer, &c[i]);
        pthread_create(&c[i].r, NULL, reader, &c[i]);
    }
    for (size_t i = 0; i < n; i++) {
        pthread_join(c[i].w, NULL);
        pthread_join(c[i].r, NULL);
        close(c[i].fd);
    }
    if (runs % 64 == 0 && !tainted)
        fz_verify(repo);
    return 0;
}
