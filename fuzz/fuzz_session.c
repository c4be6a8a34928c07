/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target: a whole backupd session. The input is everything a
 * client sends, written into one end of a socketpair while
 * backupd_session_run serves the other end against a real repository (in
 * /dev/shm, recreated every 256 inputs so it does not grow without end).
 * The server's answers are read and dropped.
 *
 * Oracle: ASan/UBSan/LeakSanitizer, and the repository afterwards: no
 * file outside it, and a store_verify that never reports a damaged chunk
 * (a hostile client cannot plant data under a wrong digest), unless a
 * session was made trusted by its BRIDGE (the peer of a socketpair is our
 * own user, whose word backupd takes: fuzz_backupd.h).
 */
#include "backupd/backupd.h"
#include "fuzz/fuzz.h"
#include "fuzz/fuzz_backupd.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>

static char repo[64];
static unsigned runs;
static bool tainted; /* a trusted session wrote since the last fresh_repo */

struct feed {
    int fd;
    const uint8_t *p;
    size_t n;
};

static void *
writer(void *arg)
{
    struct feed *f = arg;

    (void)lb_write_full(f->fd, f->p, f->n);
    shutdown(f->fd, SHUT_WR);
    return NULL;
}

static void *
drain(void *arg)
{
    int fd = *(int *)arg;
    char buf[65536];

    while (read(fd, buf, sizeof buf) > 0)
        ;
    return NULL;
}

static void
fresh_repo(void)
{
    if (repo[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", repo);
        if (system(cmd) != 0)
            abort();
    }
    snprintf(repo, sizeof repo, "/dev/shm/lbfuzz-session-%ld", (long)getpid());
    if (store_init(repo, PROTO_MIN_WINDOW) < 0)
        abort();
    tainted = false;
}

static void __attribute__((destructor)) remove_repo(void)
{
    char cmd[128];

    if (!repo[0])
        return;
    snprintf(cmd, sizeof cmd, "rm -rf %s", repo);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_session: cannot remove %s\n", repo);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct backupd_opts o = {0};
    int sv[2];
    pthread_t w, r;
    struct feed f;

    if (runs++ % 256 == 0) {
        signal(SIGPIPE, SIG_IGN);
        lb_log_set_level(LB_LOG_ERROR);
        fresh_repo();
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    o.repo = repo;
    o.workers = 1;
    o.accept_bridge = true;
    tainted |= fz_trusted_bridge(data, size);
    f = (struct feed){sv[0], data, size};
    pthread_create(&w, NULL, writer, &f);
    pthread_create(&r, NULL, drain, &sv[0]);
    backupd_session_run(sv[1], sv[1], &o);
    shutdown(sv[1], SHUT_RDWR);
    pthread_join(w, NULL);
    pthread_join(r, NULL);
    close(sv[0]);
    close(sv[1]);
    if (runs % 64 == 0 && !tainted)
        fz_verify(repo);
    return 0;
}
