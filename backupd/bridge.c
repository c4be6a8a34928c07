/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * `backupd serve` in front of a `backupd listen` daemon: find the daemon
 * of a repository (REPO/listen names its socket), then relay the client
 * (ssh's stdin/stdout, or the agent's pipes) to it byte for byte, after a
 * BRIDGE frame carrying this connection's restrictions. The daemon stays
 * the one writer of the repository however many hosts back up into it.
 */
#include "backupd/backupd.h"
#include "store/backend.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

char *
backupd_find_daemon(const char *repo)
{
    char *text;
    int fd;

    /* A RADOS repository has many front ends, none of them the one
     * writer: every serve session opens it itself. */
    if (store_be_is_rados(repo))
        return NULL;
    text = lb_repo_daemon_socket(repo);
    if (!text)
        return NULL;
    fd = lb_unix_connect(text);
    if (fd < 0 && (errno == EACCES || errno == EPERM)) {
        /* A daemon runs but this user may not talk to it: serving beside
         * it would make a second writer, under another user. The bridge
         * fails with the reason. */
        return text;
    }
    if (fd < 0) {
        lb_debug("%s/listen names %s, which does not answer: serving "
                 "directly",
                 repo, text);
        free(text);
        return NULL;
    }
    close(fd);
    return text;
}

/* Copy what is readable from `from` to `to`; 0 at EOF, -1 on error. */
static ssize_t
relay(int from, int to, char *buf, size_t len)
{
    ssize_t n = read(from, buf, len);

    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 1 : -1;
    if (n > 0 && lb_write_full(to, buf, (size_t)n) < 0)
        return -1;
    return n;
}

int
backupd_bridge(int in, int out, const char *socket_path, bool append_only,
               bool read_only, bool trusted, char *const *names, size_t nnames)
{
    static char buf[256 << 10];
    int s = lb_unix_connect(socket_path);
    struct lb_buf f = {0};
    struct proto_kv kv = {0};
    bool in_open = true;
    const char *peer = getenv("SSH_CLIENT");

    if (s < 0 && (errno == EACCES || errno == EPERM)) {
        lb_error(errno,
                 "backupd listen serves this repository on %s, but user %u "
                 "may not connect to it",
                 socket_path, (unsigned)getuid());
        lb_error_hint("run backupd listen as the user the agents log in as "
                      "(User= in backupd.service), or stop it");
        return -1;
    }
    if (s < 0)
        return lb_error(errno, "connect to backupd at %s", socket_path);
    proto_kv_set(&kv, "append_only", append_only ? "1" : "0");
    if (read_only)
        proto_kv_set(&kv, "read_only", "1");
    if (trusted && !append_only && !read_only)
        proto_kv_set(&kv, "trusted", "1");
    proto_kv_set(&kv, "peer", peer && *peer ? peer : "local");
    if (nnames) {
        struct lb_buf g = {0};
        for (size_t i = 0; i < nnames; i++) {
            lb_buf_append(&g, names[i], strlen(names[i]));
            lb_buf_put_u8(&g, i + 1 < nnames ? '\n' : '\0');
        }
        proto_kv_set(&kv, "restrict_names", (const char *)g.data);
        lb_buf_free(&g);
    }
    proto_enc_kv(&f, PROTO_T_BRIDGE, &kv);
    proto_kv_free(&kv);
    if (lb_write_full(s, f.data, f.len) < 0) {
        lb_buf_free(&f);
        close(s);
        return lb_error(errno, "send to backupd at %s", socket_path);
    }
    lb_buf_free(&f);
    for (;;) {
        struct pollfd p[2] = {{in_open ? in : -1, POLLIN, 0}, {s, POLLIN, 0}};
        ssize_t n;

        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            n = relay(in, s, buf, sizeof buf);
            if (n <= 0) {
                /* The client is done: the daemon sees end-of-stream. */
                shutdown(s, SHUT_WR);
                in_open = false;
            }
        }
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            n = relay(s, out, buf, sizeof buf);
            if (n <= 0)
                break; /* the daemon ended the session */
        }
    }
    close(s);
    return 0;
}
