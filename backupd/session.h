/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Internals of a backupd session, shared by its files: session.c (the
 * connection: BRIDGE, HELLO, OPEN/INIT, the request loop and its errors),
 * session_backup.c (the requests of a backup: BACKUP_BEGIN to COMMIT)
 * and session_repo.c (the others: LIST, GET_MANIFEST, GET_CHUNKS, VERIFY,
 * DELETE, PRUNE, GC). Nothing outside backupd/ includes this.
 */
#ifndef LB_BACKUPD_SESSION_H
#define LB_BACKUPD_SESSION_H

#include "backupd/backupd.h"
#include "backupd/pool.h"
#include "store/store.h"

/* GET_STORED checks this many chunks at once, at most. */
#define SESSION_STORED_THREADS 4

struct backupd_query;
struct backupd_stored;

struct session {
    const struct backupd_opts *o;
    struct proto_conn *conn;
    int fd_in;         /* the client's end we read (to see it leave) */
    struct lb_buf out; /* the reply being built */
    struct store *st;  /* after OPEN */
    uint8_t mode;      /* PROTO_OPEN_* */
    uint64_t features; /* negotiated in HELLO (PROTO_FEATURE_*) */
    struct store_txn *txn;
    bool in_disk;
    bool importing;              /* s->txn is an IMPORT */
    struct backupd_pool *pool;   /* opened for writing: the chunk pool */
    struct backupd_query *query; /* and a backup's QUERY thread */
    uint64_t bytes_received_at_begin;
    uint64_t verify_last_ns;
    _Atomic uint64_t working_ns; /* the last WORKING sent (session_tick) */
    uint64_t reserved;           /* of o->limits, given back at the end */
    /* the sets the bridge restricts this session to (BRIDGE
     * restrict_names), besides o->names */
    char **bridge_names;
    size_t nbridge_names;
    bool chunk_reads_reserved; /* GET_CHUNKS's buffer */
    /* GET_STORED's checking slots (their threads and scratch) */
    struct backupd_stored *stored;
};

/* End GET_STORED's checking threads and free their scratch (NULL: none). */
void backupd_stored_free(struct backupd_stored *w);

/* What a session may allocate at worst besides its pool (backupd listen
 * reserves it in o->limits first): a received frame and the replies it
 * builds; a chunk file read for GET_CHUNKS; a verify thread's scratch. */
#define SESSION_BASE_BYTES                                                     \
    ((uint64_t)PROTO_HDR_SIZE + PROTO_MAX_PAYLOAD + (2u << 20))
#define SESSION_CHUNK_READ_BYTES ((uint64_t)PROTO_MAX_CHUNK_RAW + (1u << 20))
#define SESSION_VERIFY_THREAD_BYTES                                            \
    (2 * (uint64_t)PROTO_MAX_CHUNK_RAW + (1u << 20))

/* Reserve bytes of the daemon's memory bound for what (true if they fit;
 * always without a bound); else the error slot says BUSY and why. */
bool backupd_session_reserve(struct session *s, uint64_t bytes,
                             const char *what);
/* The same for what a session needs to go on: waits its turn for up to
 * o->memory_wait seconds while other sessions hold memory. */
bool backupd_session_reserve_wait(struct session *s, uint64_t bytes,
                                  const char *what);
void backupd_session_unreserve(struct session *s, uint64_t bytes);

/* Send the error slot to the client (code 0: from its errno class) and
 * log it. Always -1: every error ends the session (PROTOCOL.md,
 * "Errors"). */
int backupd_session_fail(struct session *s, uint32_t code);
/* A frame that did not decode (status: PROTO_E_*): PROTO_ERR_PROTOCOL. */
int backupd_session_proto_fail(struct session *s, const char *what, int status);
/* Send what s->out holds. */
int backupd_session_send(struct session *s);
/* Send what buf holds (another thread's reply: query.c). */
int backupd_session_send_buf(struct session *s, struct lb_buf *buf);
/* Send the error slot, built in buf, to the client (code 0: from its
 * errno class) and log it, as backupd_session_fail does (which builds it
 * in s->out). */
void backupd_session_send_error(struct session *s, struct lb_buf *buf,
                                uint32_t code);
/* The request `what` needs the repository opened in mode or above; -1
 * (the client told) if not. */
int backupd_session_need_store(struct session *s, uint8_t mode,
                               const char *what);
/* delete, prune and gc are refused alike on an append-only connection. */
int backupd_session_refuse(struct session *s);
/* May this session use set name (--restrict-names, here and at the
 * bridge)? */
bool backupd_session_name_allowed(const struct session *s, const char *name);
/* Whether this session is confined to some sets. */
bool backupd_session_restricted(const struct session *s);
/* Refuse a request on a set this session may not use: DENIED, -1. */
int backupd_session_deny_name(struct session *s, const char *name);
/* The name of backup id, which the session must be allowed to use:
 * 0, or -1 (the client was told: NOT_FOUND for a backup of another set,
 * as for none). */
int backupd_session_check_backup(struct session *s, const char *id);

/* The request handlers: each decodes its frame's payload, does the work
 * and replies; -1 ends the session (the client was told why). */
int backupd_req_backup_begin(struct session *s, const uint8_t *p, uint32_t len);
int backupd_req_import(struct session *s, const uint8_t *p, uint32_t len);
int backupd_req_disk_begin(struct session *s, const uint8_t *p, uint32_t len);
int backupd_req_query(struct session *s, const uint8_t *p, uint32_t len);
int backupd_req_chunk(struct session *s, const uint8_t *p, uint32_t len);
int backupd_req_windows(struct session *s, const uint8_t *p, uint32_t len);
int backupd_req_disk_end(struct session *s, const uint8_t *p, uint32_t len);
int backupd_req_commit(struct session *s, const uint8_t *p, uint32_t len);
int backupd_req_abort(struct session *s, uint32_t len);
int backupd_req_key_get(struct session *s, uint32_t len);
int backupd_req_key_set(struct session *s, const uint8_t *p, uint32_t len);

int backupd_req_list(struct session *s, const uint8_t *p, uint32_t len);
int backupd_req_get_manifest(struct session *s, const uint8_t *p, uint32_t len);
int backupd_req_get_chunks(struct session *s, const uint8_t *p, uint32_t len);
int backupd_req_get_stored(struct session *s, const uint8_t *p, uint32_t len);
int backupd_req_verify(struct session *s, const uint8_t *p, uint32_t len);
int backupd_req_delete(struct session *s, const uint8_t *p, uint32_t len);
int backupd_req_prune(struct session *s, const uint8_t *p, uint32_t len);
int backupd_req_gc(struct session *s, const uint8_t *p, uint32_t len);

#endif /* LB_BACKUPD_SESSION_H */
