/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The QUERY thread of a session that writes (query.c): a backup's QUERY
 * frames are answered (HAVE, in order) by a thread of their own, so that
 * the session thread goes on reading the CHUNK frames that follow them
 * while a lookup waits for the store (a RADOS round trip). The session
 * thread submits a QUERY and returns to the connection; it waits for
 * every QUERY to be answered before anything else that reads or changes
 * the backup (WINDOWS, DISK_BEGIN, DISK_END, COMMIT, ABORT, the end of
 * the session), and notes a CHUNK's digest through
 * backupd_query_note_chunk (the QUERY thread notes what it finds).
 *
 * A lookup that fails sends the client the error from the QUERY thread
 * (the client waits for that HAVE, not for anything of the session
 * thread); the session thread learns of it from wait, submit or failed,
 * and ends the session without telling the client again.
 */
#ifndef LB_BACKUPD_QUERY_H
#define LB_BACKUPD_QUERY_H

#include "backupd/session.h"

/* How many QUERY frames wait for the thread at most (more stay in the
 * connection: the session thread blocks); those waiting are looked up
 * together, up to PROTO_MAX_QUERY digests. */
#define BACKUPD_QUERY_DEPTH 8
/* What the QUERY thread may allocate at worst: its queue of frames
 * (PROTO_MAX_QUERY digests each), the arrays of one lookup of
 * PROTO_MAX_QUERY digests in query.c, the store and the backend (under
 * 512 bytes a digest; librados' own state per operation is not counted),
 * the HAVEs. */
#define BACKUPD_QUERY_BYTES                                                    \
    (BACKUPD_QUERY_DEPTH * (uint64_t)PROTO_MAX_QUERY * PROTO_DIGEST_LEN +      \
     (uint64_t)PROTO_MAX_QUERY * 512 + (64u << 10))

/* Start the QUERY thread of session s (its s->st and s->txn are read
 * while a QUERY is answered). NULL with the error slot set. */
struct backupd_query *backupd_query_start(struct session *s);

/* Queue a copy of the n digests of a QUERY during a backup; blocks while
 * the queue is full. -1 (the error slot set; the client was told) if an
 * earlier QUERY failed. */
int backupd_query_submit(struct backupd_query *q, const uint8_t *dg,
                         uint32_t n);

/* Wait until every queued QUERY is answered: 0, or -1 with the first
 * failure in this thread's error slot (the client was told). NULL: 0. */
int backupd_query_wait(struct backupd_query *q);

/* Has a QUERY failed (without waiting)? NULL: false. */
bool backupd_query_failed(struct backupd_query *q);

/* store_txn_note_chunk under the lock the QUERY thread notes under. */
void backupd_query_note_chunk(struct backupd_query *q, struct store_txn *t,
                              const struct proto_digest *d, uint8_t type,
                              uint32_t raw_len);

/* Stop the thread (queries still queued are dropped: call wait first
 * when they matter) and free it. NULL is a no-op. */
void backupd_query_stop(struct backupd_query *q);

#endif /* LB_BACKUPD_QUERY_H */
