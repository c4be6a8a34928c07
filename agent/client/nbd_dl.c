/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libnbd, loaded when a command first opens an image (see nbd_dl.h and
 * common/dl.h), and the qemu-nbd children the client reads and writes
 * images through.
 */
#include "agent/client/nbd_dl.h"
#include "agent/client/run.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

LB_DL_DEFINE(lb_nbd, LB_NBD_FUNCS, LB_NBD_N, "libnbd.so.0", "libnbd0",
             "reading or writing an image through qemu-nbd");

#define LISTEN_PID "LISTEN_PID="

/* In the child, between fork and exec: only async-signal-safe calls. */
static void
activation_child(int lfd, char *pidvar, size_t pidvar_size, char **env,
                 char *const argv[])
{
    sigset_t none;

    agent_put_decimal(pidvar, pidvar_size, (unsigned long)getpid());
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* fd 3, without close-on-exec: the first socket of the protocol;
     * lfd is above 3 (F_DUPFD_CLOEXEC, 4) */
    if (dup2(lfd, 3) < 0)
        _exit(127);
    execvpe(argv[0], argv, env);
    {
        static const char msg[] = "livebackup: error: cannot run ";
        const char *e = strerror(errno); /* glibc's table: no allocation */
        if (write(2, msg, sizeof msg - 1) < 0 ||
            write(2, argv[0], strlen(argv[0])) < 0 || write(2, ": ", 2) < 0 ||
            write(2, e, strlen(e)) < 0 || write(2, "\n", 1) < 0)
            _exit(127);
    }
    _exit(127);
}

pid_t
lb_nbd_child(struct nbd_handle *h, char *const argv[])
{
    const char *tmp = getenv("TMPDIR");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char dir[sizeof sa.sun_path - sizeof "/s" + 1];
    char pidvar[sizeof LISTEN_PID + 24];
    int lfd = -1, cfd = -1, fd, e, len = -1;
    size_t n;
    char **env = NULL;
    pid_t pid = -1;

    /* The socket's name lives only until our connection is queued on
     * it: nothing is left behind if we are killed later (libnbd's own
     * socket activation keeps /tmp/libnbdXXXXXX until nbd_close). */
    if (tmp && tmp[0] == '/')
        len = snprintf(dir, sizeof dir, "%s/livebackup-nbd.XXXXXX", tmp);
    if (len < 0 || (size_t)len >= sizeof dir)
        snprintf(dir, sizeof dir, "/tmp/livebackup-nbd.XXXXXX");
    if (!mkdtemp(dir))
        return lb_error(errno, "create %s (for %s's socket)", dir, argv[0]);
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s/s", dir);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        lfd = fcntl(fd, F_DUPFD_CLOEXEC, 4);
        close(fd);
    }
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        listen(lfd, SOMAXCONN) < 0 ||
        (cfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        connect(cfd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        lb_error(errno, "socket for %s (%s)", argv[0], sa.sun_path);
        goto out;
    }
    /* without any LISTEN_* of our own parent's; LISTEN_PID's value is
     * the child's pid, written after fork */
    env = agent_env_without("LISTEN_", 2, &n);
    snprintf(pidvar, sizeof pidvar, "%s", LISTEN_PID);
    env[n] = pidvar;
    env[n + 1] = "LISTEN_FDS=1";
    pid = fork();
    if (pid == 0)
        activation_child(lfd, pidvar, sizeof pidvar, env, argv);
    if (pid < 0) {
        lb_error(errno, "fork");
        goto out;
    }
    close(lfd);
    lfd = -1;
    /* h owns cfd from here, whatever the outcome */
    e = LN(nbd_connect_socket, h, cfd);
    cfd = -1;
    if (e < 0) {
        lb_fail(EIO, "%s", LN(nbd_get_error));
        kill(pid, SIGTERM);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        pid = -1;
    }
out:
    if (cfd >= 0)
        close(cfd);
    if (lfd >= 0)
        close(lfd);
    unlink(sa.sun_path);
    rmdir(dir);
    free(env);
    return pid;
}

int
lb_nbd_close(struct nbd_handle *h, pid_t child)
{
    int status = 0;
    pid_t r;

    if (h)
        LN(nbd_close, h);
    if (child <= 0)
        return 0;
    /* It leaves as soon as its client is gone; one that does not within
     * 9 s is told to (it still writes back what it holds). */
    for (int i = 0; (r = waitpid(child, &status, WNOHANG)) == 0 && i < 1000;
         i++)
        usleep(i < 100 ? 1000 : 10000);
    if (r == 0) {
        lb_warn("qemu-nbd (pid %d) still running 9 s after its client "
                "left: sending it SIGTERM",
                (int)child);
        kill(child, SIGTERM);
    }
    while (r <= 0 && (r = waitpid(child, &status, 0)) < 0)
        if (errno != EINTR)
            return -1;
    return status;
}
