/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The chunk pool of a session that writes (pool.c): received chunks are
 * checked and written by worker threads fed through a bounded queue, then
 * made durable (fdatasync) and linked into place by sync threads behind a
 * second bounded queue. The session thread blocks in submit when the
 * queue is full, so a slow disk slows the client down instead of growing
 * memory. On the file backend the chunks written while a sync runs are
 * made durable together by the next (one syncfs: a group commit).
 *
 * The session thread alone calls these (the pool's threads are its own).
 */
#ifndef LB_BACKUPD_POOL_H
#define LB_BACKUPD_POOL_H

#include "store/store.h"

struct backupd_pool;

/* How many checking threads backupd_pool_start makes of nworkers (0: one
 * per CPU; at most 8). */
unsigned backupd_pool_nworkers(unsigned nworkers);
/* What one checking thread may allocate at worst: its two job slots (a
 * frame each) and its scratch (a plaintext window, a zstd context). */
#define BACKUPD_POOL_WORKER_BYTES                                              \
    (2 * (uint64_t)PROTO_MAX_PAYLOAD + PROTO_MAX_CHUNK_RAW + (1u << 20))

/* The sync threads, at most: on a backend whose publish is itself the
 * durable write (RADOS), chunks published at once. */
#define BACKUPD_POOL_SYNC_THREADS 8u
/* On a backend that makes the chunks waiting durable together (the file
 * backend: one syncfs a group), two: one syncs its group while the other
 * gathers the next or links its own. Eight there only handed each other
 * single chunks (an fdatasync each, a wakeup each): a copy of 18,000
 * small chunks into a journaled ext4 took 3.04 s with eight against 2.65
 * s with two (medians of 5), a full backup of 64 KiB windows 21.7 / 20.3 s. */
#define BACKUPD_POOL_SYNC_GROUPS 2u

/* Start the checking threads (backupd_pool_nworkers(nworkers)) and the
 * sync threads, writing into st. On a backend that stages chunks in
 * memory (store_staged_mem), the chunks written and not yet
 * published hold at most staged_cap bytes (one at a time if a single one
 * does not fit). */
struct backupd_pool *backupd_pool_start(struct store *st, unsigned nworkers,
                                        uint64_t staged_cap);

/* Queue a copy of c (the caller's buffer is free again on return); blocks
 * while every slot is busy. After a failure the chunk is dropped: wait
 * reports the failure. */
void backupd_pool_submit(struct backupd_pool *p, const struct proto_chunk *c);

/* Wait until every queued chunk is durable. 0, or -1 with the first
 * failure of any pool thread in this thread's error slot. */
int backupd_pool_wait(struct backupd_pool *p);

/* Has a chunk failed (without waiting)? */
bool backupd_pool_failed(struct backupd_pool *p);

/* The chunks and bytes stored new since the last call (after a wait:
 * exact), and start counting again. */
void backupd_pool_take_stats(struct backupd_pool *p, uint64_t *chunks_new,
                             uint64_t *bytes_new);

/* Stop the threads (what is queued is finished first) and free the pool.
 * NULL is a no-op. */
void backupd_pool_stop(struct backupd_pool *p);

#endif /* LB_BACKUPD_POOL_H */
