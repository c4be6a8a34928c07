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

#include <libnbd.h>
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

/*
 * Start argv, a server that takes systemd socket activation (qemu-nbd),
 * as a child and connect h to it: what nbd_connect_systemd_socket_activation
 * does, except that the socket's name (in $TMPDIR or /tmp) is gone as
 * soon as our connection is queued on it, so a killed process leaves
 * nothing behind (libnbd 1.14 keeps /tmp/libnbdXXXXXX until nbd_close).
 * The child leaves when its one client does. Returns its pid, or -1
 * (error set; no child left).
 */
pid_t lb_nbd_child(struct nbd_handle *h, char *const argv[]);

/* nbd_close(h) (if not NULL), then wait for its server child (if > 0) to
 * exit. Returns the child's wait status, or -1. */
int lb_nbd_close(struct nbd_handle *h, pid_t child);

#endif
