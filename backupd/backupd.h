/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * backupd: the repository side of the protocol. One session serves one
 * client over a pair of descriptors: stdin/stdout behind ssh or as the
 * agent's local child (`backupd serve`), or an accepted socket
 * (`backupd listen`).
 */
#ifndef LB_BACKUPD_H
#define LB_BACKUPD_H

#include "common/common.h"
#include "proto/proto.h"

struct backupd_opts {
    const char *repo;   /* repository path */
    bool append_only;   /* refuse delete, prune and gc */
    bool trusted;       /* do not re-hash uploads (a local child) */
    unsigned lock_wait; /* seconds to wait for a conflicting lock */
    unsigned workers;   /* chunk-checking threads (0: one per CPU) */
    /* set by listen mode: a flag polled between frames that asks running
     * sessions to end (SIGTERM) */
    volatile int *stop;
};

/*
 * Serve one client until it closes the connection or an error ends the
 * session. Never writes anything but frames to fd_out. Returns 0 when the
 * client ended the session cleanly, -1 otherwise (logged).
 */
int backupd_session_run(int fd_in, int fd_out, const struct backupd_opts *o);

/* Map the error slot's errno to a PROTO_ERR_* code. */
uint32_t backupd_err_code(int errnum);

#endif /* LB_BACKUPD_H */
