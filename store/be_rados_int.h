/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The RADOS backend's parts (be_rados.c: objects, counters, locks, open
 * and close; be_rados_query.c: the batched lookups of a QUERY and their
 * connection).
 */
#ifndef LB_STORE_BE_RADOS_INT_H
#define LB_STORE_BE_RADOS_INT_H

#include "store/backend.h"

#include "store/rados_dl.h"
#include <pthread.h>

#define RADOS_LOCK_NAME "livebackup"
#define RADOS_LOCK_TAG "livebackup"
#define RADOS_HOLDER_XATTR "lb.holder"
#define RADOS_TOUCH_XATTR "lb.t"
#define RADOS_COUNTER_XATTR "lb.counter"
#define RADOS_MAX_LOCKS 8
#define COUNTER_DIGITS 20

struct rados_lock {
    char *obj;
    char cookie[33];
    bool excl, used;
    bool holder; /* RADOS_HOLDER_XATTR was set by us */
};

/* Bytes of creates in flight from which a lookup sent behind them would
 * wait long enough to be worth a connection of its own: one 4 MiB
 * window (about 10 ms of this machine's OSD). */
#define RADOS_QUERY_BEHIND (4u << 20)

struct be_rados {
    struct store_be be;
    rados_t cluster;
    rados_ioctx_t io;
    /* gc's conditional removes read an object's version, which librados
     * keeps per ioctx: one ioctx for them, one at a time. */
    rados_ioctx_t gc_io;
    pthread_mutex_t gc_lock;
    /* A QUERY's reads and touches (head_many) on a connection of their
     * own: on the one that carries the chunks' creates, a read of 24
     * bytes waits behind megabytes of chunk data queued in the socket,
     * and the session that asked waits with it. Connected from spec by
     * a thread (q_thread) that the first head_many sent while
     * RADOS_QUERY_BEHIND bytes of creates or more are in flight
     * (create_inflight) starts (query_ioctx): a session of small chunks
     * (an incremental's deltas) never pays for a second connection. The
     * lookups go on the main connection until it is ready (q_ready), and
     * for good if it fails. q_lock guards the flags; the thread takes it
     * only to set q_ready, so nothing joins the thread holding it. */
    struct store_be_rados_spec spec;
    pthread_mutex_t q_lock;
    bool q_tried, q_thread_on, q_ready;
    _Atomic uint64_t create_inflight;
    pthread_t q_thread;
    rados_t q_cluster;
    rados_ioctx_t q_io;
    unsigned lease;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t renewer;
    bool renewer_on, stopping;
    /* A renewal found a lock gone (its lease ended before it was renewed):
     * whatever it protected may have been acted on by others. */
    bool lapsed;
    struct rados_lock locks[RADOS_MAX_LOCKS];
    /* Operations sent, by kind (bench/rados.sh reads them: the
     * LIVEBACKUP_RADOS_OPS file gets a line when the backend closes). */
    _Atomic uint64_t n_read, n_stat, n_touch, n_create, n_other;
    /* Connections taken from those the process keeps (be_rados_conn.c). */
    _Atomic unsigned n_reused;
    /* The cluster cut this client off (ESHUTDOWN: blocklisted): its
     * connections are not kept for another session. */
    _Atomic bool cut_off;
};
static inline struct be_rados *
to_rados(struct store_be *be)
{
    return (struct be_rados *)be;
}

/* lb_error for librados's -errno r about obj; returns -1. */
int be_rados_fail(int r, const char *what, const char *obj,
                  struct be_rados *b);
/* A cluster handle of client.ID with the op timeouts, connected, for the
 * main connection or the lookups' (query): one the process kept, or a
 * new one (be_rados_conn.c). 0, or -1 with the error slot set and *cl
 * NULL. */
int be_rados_connect(struct be_rados *b, const struct store_be_rados_spec *o,
                     bool query, rados_t *cl);
/* The session is done with cl (its ioctxs destroyed): kept for the next
 * session if the process keeps connections, else shut down. */
void be_rados_disconnect(struct be_rados *b,
                         const struct store_be_rados_spec *o, bool query,
                         rados_t cl);

/* The lookups' connection (made at the first lookup): its thread
 * joined, its handle shut down. */
void be_rados_query_close(struct be_rados *b);
/* The index of manifests (be_rados_index.c). */
/* id's key (set: its set name, or NULL) */
int be_rados_index_add(struct be_rados *b, const char *id, const char *set);
void be_rados_index_del(struct be_rados *b, const char *id);
int be_rados_list_backups(struct store_be *be, const char *set,
                          store_be_list_fn fn, void *opaque);
int be_rados_index_sync(struct store_be *be, char *const *ids, size_t n,
                        int64_t cutoff);

void be_rados_read_many(struct store_be *be, const char *const *objs, size_t n,
                        uint8_t *const *bufs, const size_t *lens,
                        const uint64_t *offs, ssize_t *got);
int be_rados_head_many(struct store_be *be, const char *const *objs, size_t n,
                       bool touch, uint8_t *head, size_t head_len, size_t *got,
                       uint64_t *size, int *err);

#endif
