/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libnbd, loaded when a command first opens an image through qemu-nbd
 * (nbd_dl.c): the commands that never do (list, show, copy, prune,
 * verify, a restore to a raw file, ...) do not load it
 * and the libraries behind it (GnuTLS and its nine, libxml2 and ICU),
 * about 20 ms of every start on a cold cache. Each function the client
 * calls is named here once; LN(f, args...) calls f through the table, with
 * the type of libnbd's own declaration: LN(nbd_get_error) is
 * nbd_get_error().
 */
#ifndef LB_AGENT_NBD_DL_H
#define LB_AGENT_NBD_DL_H

#include "common/common.h"

#include <libnbd.h>
#include <stdint.h>
#include <sys/types.h>

#define LB_NBD_FUNCS(X)                                                        \
    X(nbd_add_meta_context)                                                    \
    X(nbd_aio_command_completed)                                               \
    X(nbd_aio_in_flight)                                                       \
    X(nbd_aio_pread)                                                           \
    X(nbd_aio_pwrite)                                                          \
    X(nbd_block_status)                                                        \
    X(nbd_can_meta_context)                                                    \
    X(nbd_close)                                                               \
    X(nbd_connect_socket)                                                      \
    X(nbd_create)                                                              \
    X(nbd_flush)                                                               \
    X(nbd_get_error)                                                           \
    X(nbd_get_size)                                                            \
    X(nbd_poll)                                                                \
    X(nbd_pread)                                                               \
    X(nbd_set_pread_initialize)                                                \
    X(nbd_shutdown)

#include "common/dl.h"

/* lb_nbd_fn, set by a successful lb_nbd_load (once, for the process). */
LB_DL_DECLARE(lb_nbd, LB_NBD_FUNCS, LB_NBD_N);

/* A call of libnbd's function f through the table, with its arguments:
 * LN(nbd_create). */
#define LN(f, ...) LB_DL_CALL(lb_nbd_fn, f, __VA_ARGS__)

/* A server child (qemu-nbd) a libnbd handle is connected to; all zero:
 * none. */
struct lb_nbd_server {
    pid_t pid;     /* 0: none */
    int log;       /* its stderr, a memfd (valid while pid > 0) */
    uint64_t seen; /* of log, the bytes lb_nbd_error already quoted */
};

/*
 * Start argv, a server that takes systemd socket activation (qemu-nbd),
 * as a child and connect h to it: what nbd_connect_systemd_socket_activation
 * does, except that the socket's name (in $TMPDIR or /tmp) is gone as
 * soon as our connection is queued on it, so a killed process leaves
 * nothing behind (libnbd 1.14 keeps /tmp/libnbdXXXXXX until nbd_close),
 * and that what the server prints goes into our messages, not through to
 * our stderr. The child leaves when its one client does. Returns 0, or -1
 * (error set: what the server said, if it did; no child left).
 */
int lb_nbd_start(struct nbd_handle *h, char *const argv[],
                 struct lb_nbd_server *srv);

/* Why a call on h failed: libnbd's error, then what the server printed
 * since last asked, if anything ("..., qemu-nbd: LINE; LINE"). The
 * caller frees it. */
char *lb_nbd_error(struct lb_nbd_server *srv);

/* lb_error(0, "FMT...: WHY"), WHY what lb_nbd_error says. Returns -1. */
int lb_nbd_fail(struct lb_nbd_server *srv, const char *fmt, ...)
    LB_PRINTF(2, 3);

/* nbd_close(h) (if not NULL), then wait for srv's child to exit; what it
 * printed and no message quoted is shown as a warning. Returns the
 * child's wait status (0 if none), or -1. srv is left all zero. */
int lb_nbd_stop(struct nbd_handle *h, struct lb_nbd_server *srv);

#endif
