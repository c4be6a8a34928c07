/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The reader's insides (reader.c), shared with reader_extents.c (block
 * status); nothing else includes this.
 */
#ifndef LB_AGENT_READER_INT_H
#define LB_AGENT_READER_INT_H

#include "agent/client/client_int.h"

#include <pthread.h>

#define RD_BLOCK 4096u
#define RD_GROUP 64u        /* windows per entry of the group offset table */
#define RD_REF 33u          /* type byte + digest, in the stack file */
#define RD_RAW_BOTTOM 0x80u /* depth byte: a RAW chunk is at the bottom */
#define RD_DEPTH_MASK 0x3fu
#define RD_MIN_SLOTS 4u
#define RD_MAX_BATCH 16u  /* windows fetched in one batch (pipelined) */
#define RD_MAX_WORKERS 8u /* threads decoding a batch's windows */

_Static_assert(PROTO_MAX_STACK <= RD_DEPTH_MASK, "depth fits its byte");
_Static_assert(PROTO_MAX_STACK <= PROTO_MAX_GET_CHUNKS,
               "one window's stack is one GET_CHUNKS");

struct rd_slot {
    uint64_t index; /* the window held */
    uint64_t used;  /* LRU stamp; 0: holds nothing */
    bool filling;   /* being fetched: neither read nor evicted */
    uint8_t *win;
    uint8_t *map; /* a bit per 4 KiB block: 1 data, 0 zero */
};

struct agent_reader {
    char *url;
    struct agent_backup b; /* b.r: the session, NULL once it failed */
    /* an encrypted repository's keys, kept from the session lost for the
     * next one, and what that one must match (fetch) */
    struct agent_keys *keys;
    char repo_id[128];
    char disk[65];
    bool encrypted;
    uint64_t size, nwindows;
    uint32_t ws;
    /* the stack index */
    uint8_t *depth;
    uint64_t *group; /* per RD_GROUP windows: its first ref in the file */
    int stacks;      /* unlinked temp file: every window's refs in order */
    /* the cache (lock) */
    pthread_mutex_t lock;
    struct rd_slot *slots;
    unsigned nslots;
    uint64_t clock;
    /* the session (fetch, held across a fetch; taken before lock) */
    pthread_mutex_t fetch;
    uint64_t last_miss; /* the last window fetched on demand, + 1 */
    unsigned readahead;
    /* reading ahead in the background (lock): a thread started by the
     * first sequential read (not at open: nbdkit forks after that) */
    pthread_t pf_thread;
    bool pf_started, pf_stop;
    pthread_cond_t pf_cond;
    uint64_t pf_want;   /* the first window to fetch; UINT64_MAX: none */
    uint64_t last_read; /* the last window a read hit, + 1 */
    /* decoding a batch: a thread per window, at most nworkers, each with
     * its zstd context and DELTA plaintext buffer */
    unsigned nworkers, nworkers_busy;
    struct proto_zctx *wz[RD_MAX_WORKERS];
    uint8_t *wplain[RD_MAX_WORKERS];
    struct lb_buf raw[RD_MAX_BATCH]; /* a batch's chunks as received */
    struct agent_reader_stats st;
};

/* The cached slot of window w, or NULL. rd->lock held. */
struct rd_slot *rd_cache_find(struct agent_reader *rd, uint64_t w);
/* Fetch window w into the cache (with the windows after it if the reads
 * look sequential): 0 once cached, -1 (EIO, error set). rd->fetch held,
 * rd->lock not. */
int rd_fetch(struct agent_reader *rd, uint64_t w);

#endif
