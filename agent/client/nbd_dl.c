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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

LB_DL_DEFINE(lb_nbd, LB_NBD_FUNCS, LB_NBD_N, "libnbd.so.0", "libnbd0",
             "reading or writing an image through qemu-nbd");

/* What srv's child printed since the last call: its lines without the
 * "qemu-nbd: " each starts with, each line once, joined by "; " (at most
 * NBD_SAID_MAX bytes of it). NULL if nothing. */
#define NBD_SAID_MAX 4096
static char *
server_said(struct lb_nbd_server *srv)
{
    char buf[NBD_SAID_MAX + 1];
    struct lb_buf out = {0};
    struct stat st;
    ssize_t got;
    char *line, *next;

    if (srv->pid <= 0 || fstat(srv->log, &st) < 0 ||
        (uint64_t)st.st_size <= srv->seen)
        return NULL;
    got = pread(srv->log, buf, NBD_SAID_MAX, (off_t)srv->seen);
    srv->seen = (uint64_t)st.st_size;
    if (got <= 0)
        return NULL;
    buf[got] = '\0';
    for (line = buf; line; line = next) {
        size_t len;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (strncmp(line, "qemu-nbd: ", 10) == 0)
            line += 10;
        len = strlen(line);
        while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\r' ||
                           line[len - 1] == '\t'))
            line[--len] = '\0';
        /* once: the same line for each request in flight */
        if (len == 0 || (out.len > 0 && memmem(out.data, out.len, line, len)))
            continue;
        if (out.len > 0)
            lb_buf_append(&out, "; ", 2);
        lb_buf_append(&out, line, len);
    }
    if (out.len == 0)
        return NULL;
    lb_buf_put_u8(&out, 0);
    return (char *)out.data;
}

char *
lb_nbd_error(struct lb_nbd_server *srv)
{
    CLEANUP_FREE char *said = server_said(srv);
    const char *e = LN(nbd_get_error);

    if (!e || !*e)
        e = "unknown libnbd error";
    return said ? lb_xasprintf("%s (qemu-nbd: %s)", e, said) : lb_xstrdup(e);
}

int
lb_nbd_fail(struct lb_nbd_server *srv, const char *fmt, ...)
{
    CLEANUP_FREE char *why = lb_nbd_error(srv);
    char what[PATH_MAX + 128];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return lb_error(0, "%s: %s", what, why);
}

int
lb_nbd_start(struct nbd_handle *h, char *const argv[],
             struct lb_nbd_server *srv)
{
    const char *tmp = getenv("TMPDIR");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char dir[sizeof sa.sun_path - sizeof "/s" + 1];
    int lfd = -1, cfd = -1, e, len = -1, r = -1;
    pid_t pid;

    memset(srv, 0, sizeof *srv);
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
    srv->log = memfd_create("qemu-nbd-stderr", MFD_CLOEXEC);
    if (srv->log < 0) {
        lb_error(errno, "memfd_create");
        goto out;
    }
    lfd = agent_listen_unix(sa.sun_path);
    if (lfd < 0 || (cfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        connect(cfd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        if (lfd >= 0)
            lb_error(errno, "connect to %s", sa.sun_path);
        goto out;
    }
    pid = agent_spawn_activated(argv, lfd, srv->log);
    if (pid < 0)
        goto out;
    srv->pid = pid;
    close(lfd);
    lfd = -1;
    /* h owns cfd from here, whatever the outcome */
    e = LN(nbd_connect_socket, h, cfd);
    cfd = -1;
    if (e < 0) {
        /* it has printed why and exited, which is why the connection
         * failed; or it is stopped here */
        CLEANUP_FREE char *libnbd = lb_xstrdup(LN(nbd_get_error));
        CLEANUP_FREE char *said = NULL;
        agent_kill_reap(pid);
        said = server_said(srv);
        lb_fail(EIO, "%s", said ? said : libnbd);
        goto out;
    }
    r = 0;
out:
    if (cfd >= 0)
        close(cfd);
    if (lfd >= 0)
        close(lfd);
    unlink(sa.sun_path);
    rmdir(dir);
    if (r < 0) {
        if (srv->log >= 0)
            close(srv->log);
        memset(srv, 0, sizeof *srv);
    }
    return r;
}

int
lb_nbd_stop(struct nbd_handle *h, struct lb_nbd_server *srv)
{
    int status = 0;
    pid_t r;
    bool quoted;
    CLEANUP_FREE char *said = NULL;

    if (h)
        LN(nbd_close, h);
    if (srv->pid <= 0)
        return 0;
    /* It leaves as soon as its client is gone; one that does not within
     * 9 s is told to (it still writes back what it holds). */
    for (int i = 0; (r = waitpid(srv->pid, &status, WNOHANG)) == 0 && i < 1000;
         i++)
        usleep(i < 100 ? 1000 : 10000);
    if (r == 0) {
        lb_warn("qemu-nbd (pid %d) still running 9 s after its client "
                "left: sending it SIGTERM",
                (int)srv->pid);
        kill(srv->pid, SIGTERM);
    }
    while (r <= 0 && (r = waitpid(srv->pid, &status, 0)) < 0)
        if (errno != EINTR) {
            status = -1;
            break;
        }
    /* What no error quoted: shown (a warning of its own, say); after an
     * error that quoted it, more of the same */
    quoted = srv->seen > 0;
    said = server_said(srv);
    if (said)
        lb_log(quoted ? LB_LOG_DEBUG : LB_LOG_WARN, "qemu-nbd: %s", said);
    close(srv->log);
    memset(srv, 0, sizeof *srv);
    return status;
}
