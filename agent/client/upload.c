/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The upload engine (see upload.h for the picture). One lock and one
 * condition variable guard the ring; the work per slot (hashing or
 * compressing a 4 MiB window) is large enough that contention does not
 * matter, and a single lock keeps the state machine easy to check.
 */
#include "agent/client/upload.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#define MAX_WORKERS 16
#define QUERY_BATCH 256
#define RECORDS_PER_FRAME 256
/* Asking about a chunk saves compressing and sending it when the
 * repository has it, and costs a lookup when it has not (on RADOS an
 * operation of the OSD's beside the chunk's create: a first full of new
 * data with 64 KiB windows took about 13% less time without them). After
 * ASK_MISSES "missing" answers in a row only one RAW chunk in PROBE_EVERY
 * is asked about, until one is found stored: a first backup of new data
 * asks about few; a run of stored chunks that follows a run of new ones
 * costs about PROBE_EVERY chunks compressed and sent for nothing (and
 * those hashed while the answer was on its way) before every one is
 * asked about again. */
#define ASK_MISSES 32
#define PROBE_EVERY 16
/* A DELTA up to this size is hashed and compressed by the producer as it
 * submits it: for an incremental's small deltas (a few 4 KiB blocks) two
 * hand-offs to a worker and back cost more than the work (each a round of
 * wake-ups of every thread of the engine). */
#define INLINE_MAX (64u << 10)

enum slot_state {
    S_FREE,
    S_FILLING, /* the producer owns it */
    S_FILLED,  /* needs hashing */
    S_HASHING,
    S_HASHED,   /* needs a QUERY */
    S_QUERIED,  /* waiting for HAVE */
    S_COMPRESS, /* the repository lacks it */
    S_COMPRESSING,
    S_READY, /* can be emitted */
};

struct slot {
    struct agent_upload_slot pub;
    enum slot_state st;
    uint64_t seq, index;
    uint8_t op, type; /* type 0: SET to empty */
    bool has_base;    /* SET [base, this chunk] */
    struct proto_ref base;
    size_t len;
    uint64_t work;
    uint8_t *comp;
    size_t comp_len;
    uint8_t comp_kind;
    bool send; /* compressed and to be sent */
    /* asked about by QUERY (a RAW chunk, unless the policy above says
     * not); a DELTA is almost never stored already: it is sent without
     * asking (its create tells if it was); an empty window (type 0) has
     * nothing to ask about */
    bool ask;
    struct proto_digest d;
};

struct batch {
    uint32_t n;
    uint64_t seq[QUERY_BATCH];
};

struct agent_upload {
    struct agent_repo *repo;
    uint32_t window_size;
    size_t plain_cap, comp_cap;
    pthread_mutex_t lock;
    pthread_cond_t cv;
    struct proto_zctx *pz; /* the producer's, for INLINE_MAX deltas */
    struct slot *slots;
    unsigned nslots;
    /* fill_seq: slots handed to the producer; next_seq: of those, the
     * ones submitted (in the same order) */
    uint64_t fill_seq, next_seq, query_seq, emit_seq;
    struct batch *batches; /* FIFO of outstanding QUERY batches */
    unsigned bhead, blen, bcap;
    bool finishing, quit, failed, server_error;
    /* the asking policy above: "missing" answers in a row (a "stored"
     * one resets it), and RAW chunks hashed while it is past ASK_MISSES */
    uint64_t miss_run, probe_turn;
    struct lb_error_saved err; /* the first failure (the server's wins) */
    pthread_t workers[MAX_WORKERS], sender, receiver;
    unsigned nworkers;
    struct agent_upload_stats stats;
    struct agent_progress *prog;
    agent_record_fn rec_fn;
    void *rec_opaque;
    /* the sender's frame buffers */
    struct lb_buf out, rec;
    size_t rec_frame, rec_count_at;
    uint32_t nrec;
};

static struct slot *
slot_of(struct agent_upload *u, uint64_t seq)
{
    return &u->slots[seq % u->nslots];
}

/* Record the first failure (called with the lock held). A message from
 * the server beats a local one ("connection closed"). */
static void
set_failed(struct agent_upload *u, bool from_server)
{
    if (!u->failed || (from_server && !u->server_error)) {
        lb_error_save(&u->err);
        u->server_error = from_server;
    }
    u->failed = true;
    pthread_cond_broadcast(&u->cv);
}

/* ---- workers: hash, compress --------------------------------------------- */

/* With u->lock held, as a RAW chunk is hashed: ask about it? */
static bool
want_ask(struct agent_upload *u)
{
    return u->miss_run < ASK_MISSES || u->probe_turn++ % PROBE_EVERY == 0;
}

static struct slot *
next_work(struct agent_upload *u)
{
    struct slot *best = NULL;

    for (uint64_t seq = u->emit_seq; seq < u->next_seq; seq++) {
        struct slot *s = slot_of(u, seq);
        if (s->st == S_FILLED || s->st == S_COMPRESS) {
            best = s;
            break;
        }
    }
    return best;
}

/* Compress (and, in an encrypted repository, seal) a hashed slot's
 * plain into its comp: a worker's second step, or the producer's for a
 * small DELTA. */
static int
seal_slot(struct agent_upload *u, struct proto_zctx *z, struct slot *s)
{
    struct proto_chunk c = {
        .d = s->d, .type = s->type, .raw_len = (uint32_t)s->len};
    ssize_t n =
        agent_chunk_seal(u->repo, z, &c, s->pub.plain, s->comp, u->comp_cap);

    s->comp_kind = c.comp;
    s->comp_len = n < 0 ? 0 : (size_t)n;
    return n < 0 ? -1 : 0;
}

static void *
worker(void *arg)
{
    struct agent_upload *u = arg;
    struct proto_zctx *z = proto_zctx_new(agent_opts.zlevel);

    pthread_mutex_lock(&u->lock);
    for (;;) {
        struct slot *s = NULL;
        enum slot_state was;
        int r = 0;

        while (!u->quit && !u->failed && !(s = next_work(u)))
            pthread_cond_wait(&u->cv, &u->lock);
        if (u->quit || u->failed)
            break;
        was = s->st;
        s->st = was == S_FILLED ? S_HASHING : S_COMPRESSING;
        pthread_mutex_unlock(&u->lock);

        if (was == S_FILLED)
            r = agent_chunk_id(u->repo, s->type, s->pub.plain, s->len, &s->d);
        else
            r = seal_slot(u, z, s);

        pthread_mutex_lock(&u->lock);
        if (r < 0) {
            set_failed(u, false);
            break;
        }
        if (was == S_FILLED) {
            s->ask = s->ask && want_ask(u);
            s->st = s->ask ? S_HASHED : S_COMPRESS;
        } else {
            s->st = S_READY;
            s->send = true;
        }
        pthread_cond_broadcast(&u->cv);
    }
    pthread_mutex_unlock(&u->lock);
    proto_zctx_free(z);
    return NULL;
}

/* ---- receiver: HAVE ------------------------------------------------------ */

static void *
receiver(void *arg)
{
    struct agent_upload *u = arg;

    pthread_mutex_lock(&u->lock);
    for (;;) {
        const uint8_t *p, *bits;
        uint32_t len, n;
        struct batch *b;

        while (u->blen == 0 && !u->quit && !u->failed)
            pthread_cond_wait(&u->cv, &u->lock);
        if (u->blen == 0 || u->failed)
            break;
        pthread_mutex_unlock(&u->lock);

        if (proto_conn_expect(u->repo->conn, PROTO_T_HAVE, &p, &len, NULL) <
            0) {
            pthread_mutex_lock(&u->lock);
            set_failed(u, !proto_conn_eof(u->repo->conn));
            break;
        }
        pthread_mutex_lock(&u->lock);
        b = &u->batches[u->bhead];
        if (proto_dec_have(p, len, &bits, &n) != PROTO_OK || n != b->n) {
            lb_error(0, "protocol error: HAVE does not answer the QUERY");
            set_failed(u, false);
            break;
        }
        for (uint32_t i = 0; i < n; i++) {
            struct slot *s = slot_of(u, b->seq[i]);
            if (proto_bit(bits, i)) {
                s->st = S_READY;
                s->send = false;
                u->stats.chunks_reused++;
                u->miss_run = 0;
            } else {
                s->st = S_COMPRESS;
                u->miss_run++;
            }
        }
        u->bhead = (u->bhead + 1) % u->bcap;
        u->blen--;
        pthread_cond_broadcast(&u->cv);
    }
    pthread_mutex_unlock(&u->lock);
    return NULL;
}

/* ---- sender: QUERY ahead, CHUNK + WINDOWS in order ----------------------- */

static int
flush_records(struct agent_upload *u)
{
    if (u->nrec == 0)
        return 0;
    proto_enc_windows_finish(&u->rec, u->rec_count_at, u->nrec);
    proto_frame_end(&u->rec, u->rec_frame);
    u->nrec = 0;
    return proto_conn_send_buf(u->repo->conn, &u->rec);
}

static int
add_record(struct agent_upload *u, const struct slot *s)
{
    struct proto_window_rec r = {.index = s->index, .op = s->op};

    if (u->nrec == 0) {
        u->rec_frame = proto_frame_begin(&u->rec, PROTO_T_WINDOWS);
        u->rec_count_at = proto_enc_windows_start(&u->rec);
    }
    if (s->has_base)
        r.refs[r.n++] = s->base;
    if (s->type) {
        r.refs[r.n].type = s->type;
        r.refs[r.n++].d = s->d;
    }
    if (u->rec_fn && u->rec_fn(u->rec_opaque, &r) < 0)
        return -1;
    proto_enc_window_rec(&u->rec, &r);
    if (++u->nrec >= RECORDS_PER_FRAME)
        return flush_records(u);
    return 0;
}

static int
send_chunk(struct agent_upload *u, const struct slot *s)
{
    struct proto_chunk c = {.d = s->d,
                            .type = s->type,
                            .comp = s->comp_kind,
                            .raw_len = (uint32_t)s->len,
                            .data = s->comp,
                            .data_len = (uint32_t)s->comp_len};

    proto_enc_chunk_head(&u->out, PROTO_T_CHUNK, &c);
    if (proto_conn_send_frame(u->repo->conn, &u->out, s->comp, s->comp_len) < 0)
        return -1;
    u->stats.chunks_sent++;
    u->stats.bytes_sent += s->comp_len;
    return 0;
}

static void *
sender(void *arg)
{
    struct agent_upload *u = arg;

    pthread_mutex_lock(&u->lock);
    while (!u->failed) {
        bool progress = false;
        struct slot *s;

        /* Queries: every hashed slot, in order, in batches. */
        if (u->blen < u->bcap) {
            struct batch *b = &u->batches[(u->bhead + u->blen) % u->bcap];
            struct proto_digest d[QUERY_BATCH];
            b->n = 0;
            /* Slots sent without asking may be emitted (and their slot
             * reused) before this loop passed them; every slot before
             * emit_seq is done. */
            if (u->query_seq < u->emit_seq)
                u->query_seq = u->emit_seq;
            while (u->query_seq < u->next_seq && b->n < QUERY_BATCH) {
                s = slot_of(u, u->query_seq);
                if (!s->ask) {
                    /* nothing to ask for an empty window or a DELTA */
                    u->query_seq++;
                    continue;
                }
                if (s->st != S_HASHED)
                    break;
                s->st = S_QUERIED;
                u->stats.chunks_asked++;
                d[b->n] = s->d;
                b->seq[b->n++] = u->query_seq++;
            }
            if (b->n) {
                u->blen++;
                pthread_cond_broadcast(&u->cv);
                pthread_mutex_unlock(&u->lock);
                proto_enc_query(&u->out, PROTO_T_QUERY, d, b->n);
                int r = proto_conn_send_buf(u->repo->conn, &u->out);
                pthread_mutex_lock(&u->lock);
                if (r < 0) {
                    set_failed(u, false);
                    break;
                }
                progress = true;
            }
        }
        /* Emit the oldest slot when it is ready. */
        s = u->emit_seq < u->next_seq ? slot_of(u, u->emit_seq) : NULL;
        if (s && s->st == S_READY) {
            int r = 0;
            pthread_mutex_unlock(&u->lock);
            if (s->send)
                r = send_chunk(u, s);
            if (r == 0)
                r = add_record(u, s);
            pthread_mutex_lock(&u->lock);
            if (r < 0) {
                set_failed(u, false);
                break;
            }
            u->stats.windows++;
            if (u->prog)
                agent_progress_add(u->prog, s->work);
            s->st = S_FREE;
            u->emit_seq++;
            pthread_cond_broadcast(&u->cv);
            progress = true;
        }
        if (progress)
            continue;
        if (u->finishing && u->emit_seq == u->next_seq) {
            int r;
            pthread_mutex_unlock(&u->lock);
            r = flush_records(u);
            pthread_mutex_lock(&u->lock);
            if (r < 0)
                set_failed(u, false);
            break;
        }
        pthread_cond_wait(&u->cv, &u->lock);
    }
    pthread_mutex_unlock(&u->lock);
    return NULL;
}

/* ---- the producer's API -------------------------------------------------- */

struct agent_upload *
agent_upload_start(struct agent_repo *r, uint32_t window_size,
                   struct agent_progress *prog, agent_record_fn rec,
                   void *opaque)
{
    struct agent_upload *u = lb_xcalloc(1, sizeof *u);
    unsigned n = agent_opts.threads ? agent_opts.threads : lb_ncpus();

    u->repo = r;
    u->prog = prog;
    u->rec_fn = rec;
    u->rec_opaque = opaque;
    u->window_size = window_size;
    u->plain_cap = PROTO_DELTA_HDR +
                   (size_t)(window_size / 512) * PROTO_DELTA_RUN + window_size;
    u->comp_cap = agent_chunk_seal_bound(u->repo, u->plain_cap);
    u->nworkers = LB_MIN(n, MAX_WORKERS);
    /* Enough slots to keep every worker busy while a QUERY round trip and
     * a send are in flight. */
    u->nslots = 2 * u->nworkers + 4;
    u->slots = lb_xcalloc(u->nslots, sizeof *u->slots);
    for (unsigned i = 0; i < u->nslots; i++) {
        u->slots[i].pub.plain = lb_xmalloc(u->plain_cap);
        u->slots[i].comp = lb_xmalloc(u->comp_cap);
    }
    u->bcap = u->nslots;
    u->batches = lb_xcalloc(u->bcap, sizeof *u->batches);
    pthread_mutex_init(&u->lock, NULL);
    pthread_cond_init(&u->cv, NULL);
    for (unsigned i = 0; i < u->nworkers; i++)
        if (pthread_create(&u->workers[i], NULL, worker, u) != 0)
            abort();
    if (pthread_create(&u->sender, NULL, sender, u) != 0 ||
        pthread_create(&u->receiver, NULL, receiver, u) != 0)
        abort();
    return u;
}

size_t
agent_upload_plain_cap(const struct agent_upload *u)
{
    return u->plain_cap;
}

unsigned
agent_upload_nslots(const struct agent_upload *u)
{
    return u->nslots;
}

static struct agent_upload_slot *
take_slot(struct agent_upload *u, bool wait, bool *failed)
{
    struct slot *s;

    pthread_mutex_lock(&u->lock);
    s = slot_of(u, u->fill_seq);
    while (wait && !u->failed && s->st != S_FREE)
        pthread_cond_wait(&u->cv, &u->lock);
    *failed = u->failed;
    if (u->failed || s->st != S_FREE) {
        pthread_mutex_unlock(&u->lock);
        return NULL;
    }
    s->st = S_FILLING;
    u->fill_seq++;
    pthread_mutex_unlock(&u->lock);
    return &s->pub;
}

struct agent_upload_slot *
agent_upload_slot(struct agent_upload *u)
{
    bool failed;

    return take_slot(u, true, &failed);
}

struct agent_upload_slot *
agent_upload_slot_nowait(struct agent_upload *u, bool *failed)
{
    return take_slot(u, false, failed);
}

void
agent_upload_submit(struct agent_upload *u, struct agent_upload_slot *ps,
                    uint64_t index, uint8_t op, uint8_t type, size_t len,
                    uint64_t work)
{
    agent_upload_submit_on(u, ps, index, NULL, op, type, len, work);
}

void
agent_upload_submit_on(struct agent_upload *u, struct agent_upload_slot *ps,
                       uint64_t index, const struct proto_ref *base, uint8_t op,
                       uint8_t type, size_t len, uint64_t work)
{
    struct slot *s = (struct slot *)ps;
    bool inline_done = false;
    int r = 0;

    if (type == PROTO_CHUNK_DELTA && len <= INLINE_MAX) {
        /* what a worker would do, here (the slot is still the producer's):
         * a DELTA is never asked about */
        if (!u->pz)
            u->pz = proto_zctx_new(agent_opts.zlevel);
        s->type = type;
        s->len = len;
        r = agent_chunk_id(u->repo, type, s->pub.plain, len, &s->d);
        if (r == 0)
            r = seal_slot(u, u->pz, s);
        inline_done = true;
    }
    pthread_mutex_lock(&u->lock);
    if (r < 0)
        set_failed(u, false);
    s->has_base = base != NULL;
    if (base)
        s->base = *base;
    s->seq = u->next_seq++;
    s->index = index;
    s->op = op;
    s->type = type;
    s->len = len;
    s->work = work;
    s->send = inline_done;
    s->ask = type == PROTO_CHUNK_RAW;
    s->st = type && !inline_done ? S_FILLED : S_READY;
    pthread_cond_broadcast(&u->cv);
    pthread_mutex_unlock(&u->lock);
}

int
agent_upload_finish(struct agent_upload *u, struct agent_upload_stats *stats)
{
    int r;

    pthread_mutex_lock(&u->lock);
    u->finishing = true;
    pthread_cond_broadcast(&u->cv);
    pthread_mutex_unlock(&u->lock);
    pthread_join(u->sender, NULL);

    pthread_mutex_lock(&u->lock);
    u->quit = true;
    pthread_cond_broadcast(&u->cv);
    pthread_mutex_unlock(&u->lock);
    for (unsigned i = 0; i < u->nworkers; i++)
        pthread_join(u->workers[i], NULL);
    pthread_join(u->receiver, NULL);

    r = u->failed ? lb_error_restore(&u->err) : 0;
    if (stats)
        *stats = u->stats;
    for (unsigned i = 0; i < u->nslots; i++) {
        free(u->slots[i].pub.plain);
        free(u->slots[i].comp);
    }
    free(u->slots);
    free(u->batches);
    proto_zctx_free(u->pz);
    lb_buf_free(&u->out);
    lb_buf_free(&u->rec);
    pthread_mutex_destroy(&u->lock);
    pthread_cond_destroy(&u->cv);
    free(u);
    return r;
}
