/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The QUERY thread of a writing session (see query.h): a bounded FIFO of
 * a backup's QUERY frames, answered in order by one thread while the
 * session thread goes on reading CHUNK frames; the frames that wait for
 * it are looked up together. One lock guards the FIFO
 * and the backup's noted chunks (store_txn_note_chunk, store_txn_noted),
 * which the session thread also notes for every CHUNK.
 */
#include "backupd/query.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

struct job {
    uint8_t *dg; /* n digests, PROTO_MAX_QUERY of room */
    uint32_t n;
};

struct backupd_query {
    struct session *s;
    pthread_mutex_t lock;
    pthread_cond_t work, room;
    struct job jobs[BACKUPD_QUERY_DEPTH];
    unsigned head, len;
    bool busy, quit;
    bool failed; /* the client was sent the error, err holds it */
    struct lb_error_saved err;
    pthread_t th;
    bool running;
    struct lb_buf out; /* the HAVE, or the ERROR, being built */
};

/* Look up the digests of the k jobs from first on that are not noted
 * yet, in one batch (store_chunk_head_many: one round trip on RADOS, for
 * every QUERY that waited meanwhile), touch them (for gc), and note their
 * headers: a gc running now may move a chunk aside for an instant before
 * it sees the touch and puts it back, and the window records that name it
 * must not find it missing then. A damaged header is noted as unknown:
 * the records that name it fail on it. Their HAVEs into q->out, in order;
 * -1 on error. */
static int
query_answer(struct backupd_query *q, unsigned first, unsigned k,
             uint32_t total)
{
    struct session *s = q->s;
    uint8_t(*bits)[PROTO_MAX_QUERY / 8] = lb_xcalloc(k, sizeof *bits);
    struct proto_digest *d = lb_xcalloc(total ? total : 1, sizeof *d);
    struct store_chunk_hdr *hd = lb_xcalloc(total ? total : 1, sizeof *hd);
    int *err = lb_xcalloc(total ? total : 1, sizeof *err);
    uint32_t *idx = lb_xcalloc(total ? total : 1, sizeof *idx);
    uint32_t m = 0;
    int rc;

    pthread_mutex_lock(&q->lock);
    for (unsigned b = 0; b < k; b++) {
        const struct job *j = &q->jobs[(first + b) % BACKUPD_QUERY_DEPTH];
        for (uint32_t i = 0; i < j->n; i++) {
            memcpy(d[m].b, j->dg + (size_t)i * PROTO_DIGEST_LEN,
                   PROTO_DIGEST_LEN);
            if (store_txn_noted(s->txn, &d[m]))
                bits[b][i / 8] |= (uint8_t)(1u << (i % 8));
            else
                idx[m++] = b * PROTO_MAX_QUERY + i;
        }
    }
    pthread_mutex_unlock(&q->lock);
    rc = store_chunk_head_many(s->st, d, m, true, hd, err);
    pthread_mutex_lock(&q->lock);
    for (uint32_t x = 0; rc == 0 && x < m; x++) {
        uint32_t b = idx[x] / PROTO_MAX_QUERY, i = idx[x] % PROTO_MAX_QUERY;
        if (err[x] == ENOENT)
            continue;
        store_txn_note_chunk(s->txn, &d[x],
                             err[x] ? STORE_TYPE_UNKNOWN : hd[x].type,
                             err[x] ? 0 : hd[x].raw_len);
        bits[b][i / 8] |= (uint8_t)(1u << (i % 8));
    }
    pthread_mutex_unlock(&q->lock);
    for (unsigned b = 0; rc == 0 && b < k; b++)
        proto_enc_have(&q->out, bits[b],
                       q->jobs[(first + b) % BACKUPD_QUERY_DEPTH].n);
    free(bits);
    free(d);
    free(hd);
    free(err);
    free(idx);
    return rc;
}

/* Answer k jobs from first on (their HAVEs), or send the client the
 * error: 0, or -1 with the failure in *e. */
static int
query_some(struct backupd_query *q, unsigned first, unsigned k, uint32_t total,
           struct lb_error_saved *e)
{
    if (query_answer(q, first, k, total) < 0) {
        lb_error_save(e);
        /* The client waits for these HAVEs: it gets the error instead,
         * from here (the session thread may be waiting for the client's
         * next frame). */
        backupd_session_send_error(q->s, &q->out, 0);
        return -1;
    }
    if (backupd_session_send_buf(q->s, &q->out) < 0) {
        lb_error_save(e);
        return -1;
    }
    return 0;
}

static void *
query_main(void *arg)
{
    struct backupd_query *q = arg;

    pthread_mutex_lock(&q->lock);
    for (;;) {
        unsigned k = 1;
        uint32_t total;

        while (!q->quit && q->len == 0)
            pthread_cond_wait(&q->work, &q->lock);
        if (q->len == 0)
            break;
        /* Every QUERY waiting, up to one frame's worth of digests. */
        total = q->jobs[q->head].n;
        while (k < q->len &&
               total + q->jobs[(q->head + k) % BACKUPD_QUERY_DEPTH].n <=
                   PROTO_MAX_QUERY)
            total += q->jobs[(q->head + k++) % BACKUPD_QUERY_DEPTH].n;
        q->busy = true;
        /* Stopped with queries left: the session is ending anyway. */
        if (!q->failed && !q->quit) {
            unsigned first = q->head;
            struct lb_error_saved e = {0};
            int r;
            pthread_mutex_unlock(&q->lock);
            r = query_some(q, first, k, total, &e);
            pthread_mutex_lock(&q->lock);
            if (r < 0) {
                q->failed = true;
                q->err = e;
            }
        }
        q->head = (q->head + k) % BACKUPD_QUERY_DEPTH;
        q->len -= k;
        q->busy = false;
        pthread_cond_broadcast(&q->room);
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

struct backupd_query *
backupd_query_start(struct session *s)
{
    struct backupd_query *q = lb_xcalloc(1, sizeof *q);

    q->s = s;
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->work, NULL);
    pthread_cond_init(&q->room, NULL);
    for (unsigned i = 0; i < BACKUPD_QUERY_DEPTH; i++)
        q->jobs[i].dg = lb_xmalloc((size_t)PROTO_MAX_QUERY * PROTO_DIGEST_LEN);
    if (pthread_create(&q->th, NULL, query_main, q) != 0) {
        lb_error(errno, "start the QUERY thread");
        backupd_query_stop(q);
        return NULL;
    }
    q->running = true;
    return q;
}

int
backupd_query_submit(struct backupd_query *q, const uint8_t *dg, uint32_t n)
{
    struct job *j;

    pthread_mutex_lock(&q->lock);
    while (!q->failed && q->len == BACKUPD_QUERY_DEPTH)
        pthread_cond_wait(&q->room, &q->lock);
    if (q->failed) {
        lb_error_restore(&q->err);
        pthread_mutex_unlock(&q->lock);
        return -1;
    }
    j = &q->jobs[(q->head + q->len) % BACKUPD_QUERY_DEPTH];
    pthread_mutex_unlock(&q->lock);
    /* The slot is ours until len counts it. */
    memcpy(j->dg, dg, (size_t)n * PROTO_DIGEST_LEN);
    j->n = n;
    pthread_mutex_lock(&q->lock);
    q->len++;
    pthread_cond_signal(&q->work);
    pthread_mutex_unlock(&q->lock);
    return 0;
}

int
backupd_query_wait(struct backupd_query *q)
{
    int r = 0;

    if (!q)
        return 0;
    pthread_mutex_lock(&q->lock);
    while (q->len || q->busy)
        pthread_cond_wait(&q->room, &q->lock);
    if (q->failed)
        r = lb_error_restore(&q->err);
    pthread_mutex_unlock(&q->lock);
    return r;
}

bool
backupd_query_failed(struct backupd_query *q)
{
    bool f;

    if (!q)
        return false;
    pthread_mutex_lock(&q->lock);
    f = q->failed;
    pthread_mutex_unlock(&q->lock);
    return f;
}

void
backupd_query_note_chunk(struct backupd_query *q, struct store_txn *t,
                         const struct proto_digest *d, uint8_t type,
                         uint32_t raw_len)
{
    pthread_mutex_lock(&q->lock);
    store_txn_note_chunk(t, d, type, raw_len);
    pthread_mutex_unlock(&q->lock);
}

void
backupd_query_stop(struct backupd_query *q)
{
    if (!q)
        return;
    if (q->running) {
        pthread_mutex_lock(&q->lock);
        q->quit = true;
        pthread_cond_broadcast(&q->work);
        pthread_mutex_unlock(&q->lock);
        pthread_join(q->th, NULL);
    }
    for (unsigned i = 0; i < BACKUPD_QUERY_DEPTH; i++)
        free(q->jobs[i].dg);
    lb_buf_free(&q->out);
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->work);
    pthread_cond_destroy(&q->room);
    free(q);
}
