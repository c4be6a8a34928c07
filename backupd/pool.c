/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The chunk pool of a writing session (see pool.h): checking workers fed
 * by a bounded queue of job slots, sync threads behind a bounded ring of
 * written chunks. One lock guards both queues; the first failure of any
 * thread is kept (lb_error_save) and returned by backupd_pool_wait.
 */
#include "backupd/pool.h"

#include <pthread.h>
#include <string.h>

#define MAX_WORKERS 8
#define SYNC_QUEUE 32 /* written chunks waiting to be made durable */
#define SYNC_GROUP 32 /* made durable together, at most */
/* Held by the sync threads at once, at most (two groups: one syncing, one
 * being linked or synced beside it): with the ring, what a session keeps
 * staged (on the file backend an open file each) */
#define SYNC_HELD 64

struct job {
    struct proto_chunk c;
    uint8_t *buf; /* owns c.data */
    size_t cap;
};

struct backupd_pool {
    struct store *st;
    pthread_mutex_t lock;
    pthread_cond_t work, room;
    struct job *jobs; /* nslots */
    unsigned nslots;
    unsigned *free_slots; /* stack of free slot indexes */
    unsigned nfree;
    unsigned *queue; /* FIFO of slots to process */
    unsigned qhead, qlen;
    unsigned busy; /* jobs being processed */
    bool quit;
    /* first failure, copied out of the failing thread's error slot */
    bool failed;
    struct lb_error_saved err;
    uint64_t chunks_new, bytes_new;
    pthread_t th[MAX_WORKERS];
    unsigned nth;
    /* written, not yet durable: a ring of SYNC_QUEUE, for the sync threads */
    struct store_written sq[SYNC_QUEUE];
    uint64_t sq_mem[SYNC_QUEUE]; /* what each holds in memory */
    /* On a backend that stages chunks in memory: what the written chunks
     * hold (from the start of their write until they are published), at
     * most staged_cap unless a single chunk is all there is. */
    uint64_t staged_mem, staged_cap;
    unsigned sq_head, sq_len, syncing;
    bool sync_quit; /* set once the workers are gone */
    pthread_cond_t sq_work, sq_room;
    pthread_t sth[BACKUPD_POOL_SYNC_THREADS];
    unsigned nsth;
};

/* Record the first failure (the caller holds p->lock). */
static void
pool_fail_locked(struct backupd_pool *p)
{
    if (p->failed)
        return;
    p->failed = true;
    lb_error_save(&p->err);
}

/* Give back what a staged chunk held (the caller holds p->lock). */
static void
staged_give(struct backupd_pool *p, uint64_t mem)
{
    if (!mem)
        return;
    p->staged_mem -= mem;
    pthread_cond_broadcast(&p->sq_room);
}

/*
 * A sync thread takes every written chunk waiting (up to SYNC_GROUP) and
 * makes them durable together (store_chunks_sync: on the file backend one
 * syncfs, one journal commit and cache flush, instead of an fdatasync
 * each; a chunk alone: its publish's fdatasync, the backend decides),
 * then publishes them one by one. The other sync thread meanwhile takes
 * the chunks written since (SYNC_HELD in all: two groups), so the writers
 * rarely wait on one sync (BACKUPD_POOL_SYNC_GROUPS threads). On a
 * backend whose publish is the durable write (RADOS) each of
 * BACKUPD_POOL_SYNC_THREADS threads takes one chunk.
 */
static void *
sync_worker(void *arg)
{
    struct backupd_pool *p = arg;
    struct store_written w[SYNC_GROUP];
    uint64_t mem[SYNC_GROUP];
    /* RADOS: a publish is its own durable write, several threads' at once */
    unsigned most = store_chunks_sync_together(p->st) ? SYNC_GROUP : 1;

    pthread_mutex_lock(&p->lock);
    for (;;) {
        unsigned n = 0;
        bool failed;

        /* wait for chunks, and for room to take them all (up to most) */
        while (p->sq_len == 0
                   ? !p->sync_quit
                   : p->syncing + LB_MIN(p->sq_len, most) > SYNC_HELD)
            pthread_cond_wait(&p->sq_work, &p->lock);
        if (p->sq_len == 0)
            break;
        while (p->sq_len > 0 && n < most) {
            w[n] = p->sq[p->sq_head];
            mem[n++] = p->sq_mem[p->sq_head];
            p->sq_head = (p->sq_head + 1) % SYNC_QUEUE;
            p->sq_len--;
        }
        p->syncing += n;
        pthread_cond_broadcast(&p->sq_room);
        failed = p->failed;
        pthread_mutex_unlock(&p->lock);
        if (!failed && store_chunks_sync(p->st, w, n) < 0) {
            pthread_mutex_lock(&p->lock);
            pool_fail_locked(p);
            pthread_mutex_unlock(&p->lock);
            failed = true;
        }
        for (unsigned i = 0; i < n; i++) {
            uint64_t stored = 0;
            int r = 0;

            if (failed)
                store_chunk_written_drop(&w[i]);
            else
                r = store_chunk_publish(p->st, &w[i], &stored);
            pthread_mutex_lock(&p->lock);
            if (r < 0) {
                pool_fail_locked(p);
            } else if (r == 0 && stored) {
                p->chunks_new++;
                p->bytes_new += stored;
                pthread_mutex_unlock(&p->lock);
                lb_fault_point("backupd:chunk-stored");
                pthread_mutex_lock(&p->lock);
            }
            p->syncing--;
            staged_give(p, mem[i]);
            pthread_cond_broadcast(&p->room);
            if (p->sq_len > 0) /* room to take more */
                pthread_cond_signal(&p->sq_work);
            failed = p->failed; /* after a failure the rest is dropped */
            pthread_mutex_unlock(&p->lock);
        }
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static void *
pool_worker(void *arg)
{
    struct backupd_pool *p = arg;
    struct store_scratch *s = store_scratch_new();

    pthread_mutex_lock(&p->lock);
    for (;;) {
        unsigned slot;
        struct store_written w;
        uint64_t mem;
        int r;

        while (!p->quit && p->qlen == 0)
            pthread_cond_wait(&p->work, &p->lock);
        if (p->qlen == 0)
            break;
        slot = p->queue[p->qhead];
        p->qhead = (p->qhead + 1) % p->nslots;
        p->qlen--;
        p->busy++;
        /* Memory for its staged copy first (backpressure): a chunk that
         * does not fit waits for those staged before it to be published,
         * unless there are none. */
        mem = p->failed ? 0 : store_staged_mem(p->st, p->jobs[slot].c.data_len);
        while (mem && p->staged_mem && p->staged_mem + mem > p->staged_cap)
            pthread_cond_wait(&p->sq_room, &p->lock);
        p->staged_mem += mem;
        pthread_mutex_unlock(&p->lock);

        r = p->failed ? 1 : store_chunk_write(p->st, s, &p->jobs[slot].c, &w);

        pthread_mutex_lock(&p->lock);
        if (r < 0) {
            pool_fail_locked(p);
        } else if (r == 0) {
            /* To the sync threads; wait for room (backpressure). */
            while (p->sq_len == SYNC_QUEUE)
                pthread_cond_wait(&p->sq_room, &p->lock);
            p->sq[(p->sq_head + p->sq_len) % SYNC_QUEUE] = w;
            p->sq_mem[(p->sq_head + p->sq_len) % SYNC_QUEUE] = mem;
            p->sq_len++;
            mem = 0; /* the sync thread gives it back */
            pthread_cond_signal(&p->sq_work);
        }
        staged_give(p, mem); /* nothing staged: stored, or failed */
        p->busy--;
        p->free_slots[p->nfree++] = slot;
        pthread_cond_broadcast(&p->room);
    }
    pthread_mutex_unlock(&p->lock);
    store_scratch_free(s);
    return NULL;
}

unsigned
backupd_pool_nworkers(unsigned nworkers)
{
    if (nworkers == 0)
        nworkers = lb_ncpus();
    return LB_MAX(1u, LB_MIN(nworkers, (unsigned)MAX_WORKERS));
}

struct backupd_pool *
backupd_pool_start(struct store *st, unsigned nworkers, uint64_t staged_cap)
{
    struct backupd_pool *p = lb_xcalloc(1, sizeof *p);
    unsigned nsync;

    p->st = st;
    p->staged_cap = staged_cap;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->room, NULL);
    nworkers = backupd_pool_nworkers(nworkers);
    /* Two jobs per worker: one being processed, one waiting. */
    p->nslots = 2 * nworkers;
    p->jobs = lb_xcalloc(p->nslots, sizeof *p->jobs);
    p->free_slots = lb_xcalloc(p->nslots, sizeof *p->free_slots);
    p->queue = lb_xcalloc(p->nslots, sizeof *p->queue);
    for (unsigned i = 0; i < p->nslots; i++)
        p->free_slots[p->nfree++] = i;
    pthread_cond_init(&p->sq_work, NULL);
    pthread_cond_init(&p->sq_room, NULL);
    for (unsigned i = 0; i < nworkers; i++)
        if (pthread_create(&p->th[p->nth], NULL, pool_worker, p) == 0)
            p->nth++;
    nsync = store_chunks_sync_together(st) ? BACKUPD_POOL_SYNC_GROUPS
                                           : BACKUPD_POOL_SYNC_THREADS;
    for (unsigned i = 0; i < nsync; i++)
        if (pthread_create(&p->sth[p->nsth], NULL, sync_worker, p) == 0)
            p->nsth++;
    return p;
}

void
backupd_pool_submit(struct backupd_pool *p, const struct proto_chunk *c)
{
    struct job *j;
    unsigned slot;

    pthread_mutex_lock(&p->lock);
    while (p->nfree == 0)
        pthread_cond_wait(&p->room, &p->lock);
    slot = p->free_slots[--p->nfree];
    pthread_mutex_unlock(&p->lock);

    j = &p->jobs[slot];
    if (j->cap < c->data_len) {
        free(j->buf);
        j->cap = c->data_len;
        j->buf = lb_xmalloc(j->cap);
    }
    memcpy(j->buf, c->data, c->data_len);
    j->c = *c;
    j->c.data = j->buf;

    pthread_mutex_lock(&p->lock);
    p->queue[(p->qhead + p->qlen) % p->nslots] = slot;
    p->qlen++;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->lock);
}

int
backupd_pool_wait(struct backupd_pool *p)
{
    int r = 0;

    pthread_mutex_lock(&p->lock);
    while (p->qlen || p->busy || p->sq_len || p->syncing)
        pthread_cond_wait(&p->room, &p->lock);
    if (p->failed)
        r = lb_error_restore(&p->err);
    pthread_mutex_unlock(&p->lock);
    return r;
}

bool
backupd_pool_failed(struct backupd_pool *p)
{
    bool f;

    pthread_mutex_lock(&p->lock);
    f = p->failed;
    pthread_mutex_unlock(&p->lock);
    return f;
}

void
backupd_pool_take_stats(struct backupd_pool *p, uint64_t *chunks_new,
                        uint64_t *bytes_new)
{
    pthread_mutex_lock(&p->lock);
    *chunks_new = p->chunks_new;
    *bytes_new = p->bytes_new;
    p->chunks_new = p->bytes_new = 0;
    pthread_mutex_unlock(&p->lock);
}

void
backupd_pool_stop(struct backupd_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->quit = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < p->nth; i++)
        pthread_join(p->th[i], NULL);
    /* The workers are gone: the sync threads empty the queue, then end. */
    pthread_mutex_lock(&p->lock);
    p->sync_quit = true;
    pthread_cond_broadcast(&p->sq_work);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < p->nsth; i++)
        pthread_join(p->sth[i], NULL);
    for (unsigned i = 0; i < p->nslots; i++)
        free(p->jobs[i].buf);
    free(p->jobs);
    free(p->free_slots);
    free(p->queue);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->room);
    pthread_cond_destroy(&p->sq_work);
    pthread_cond_destroy(&p->sq_room);
    free(p);
}
