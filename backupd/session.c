/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One backupd session: HELLO, then requests until the client closes the
 * connection (PROTOCOL.md, "Session"). Every client is untrusted: frames are
 * decoded by proto's pure decoders, names are checked before they reach a
 * path, and chunks are re-hashed before they are stored.
 *
 * Chunk uploads are checked and written by a small pool of worker threads
 * fed through a bounded queue: the session thread blocks when the queue is
 * full, so a slow disk slows the client down instead of growing memory.
 * Written chunks then go through a second bounded queue to sync threads,
 * which make each durable (fdatasync) and link it into place: many
 * fdatasyncs at once share the filesystem's journal commits, where one
 * after the other each paid for its own (and they hold no chunk data, so
 * there can be more of them than workers).
 */
#include "backupd/backupd.h"
#include "store/store.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_WORKERS 8
#define SYNC_THREADS 8
#define SYNC_QUEUE 32 /* written chunks waiting for their fdatasync */

/* ---- the chunk worker pool ------------------------------------------------
 */

struct job {
    struct proto_chunk c;
    uint8_t *buf; /* owns c.data */
    size_t cap;
};

struct pool {
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
    /* first failure, copied out of the worker's error slot */
    bool failed;
    int err_errno;
    char err_msg[1024];
    char err_hint[512];
    uint64_t chunks_new, bytes_new;
    pthread_t th[MAX_WORKERS];
    unsigned nth;
    /* written, not yet durable: a ring of SYNC_QUEUE, for the sync threads */
    struct store_written sq[SYNC_QUEUE];
    unsigned sq_head, sq_len, syncing;
    bool sync_quit; /* set once the workers are gone */
    pthread_cond_t sq_work, sq_room;
    pthread_t sth[SYNC_THREADS];
    unsigned nsth;
};

/* Record the first failure (the caller holds p->lock). */
static void
pool_fail_locked(struct pool *p)
{
    if (p->failed)
        return;
    p->failed = true;
    p->err_errno = lb_error_errno();
    snprintf(p->err_msg, sizeof p->err_msg, "%s", lb_error_msg());
    snprintf(p->err_hint, sizeof p->err_hint, "%s", lb_error_hint_msg());
}

static void *
sync_worker(void *arg)
{
    struct pool *p = arg;

    pthread_mutex_lock(&p->lock);
    for (;;) {
        struct store_written w;
        uint64_t stored = 0;
        int r = 0;

        while (!p->sync_quit && p->sq_len == 0)
            pthread_cond_wait(&p->sq_work, &p->lock);
        if (p->sq_len == 0)
            break;
        w = p->sq[p->sq_head];
        p->sq_head = (p->sq_head + 1) % SYNC_QUEUE;
        p->sq_len--;
        p->syncing++;
        pthread_cond_signal(&p->sq_room);
        if (p->failed) {
            store_chunk_written_drop(&w);
        } else {
            pthread_mutex_unlock(&p->lock);
            r = store_chunk_publish(p->st, &w, &stored);
            pthread_mutex_lock(&p->lock);
        }
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
        pthread_cond_broadcast(&p->room);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static void *
pool_worker(void *arg)
{
    struct pool *p = arg;
    struct store_scratch *s = store_scratch_new();

    pthread_mutex_lock(&p->lock);
    for (;;) {
        unsigned slot;
        struct store_written w;
        int r;

        while (!p->quit && p->qlen == 0)
            pthread_cond_wait(&p->work, &p->lock);
        if (p->qlen == 0)
            break;
        slot = p->queue[p->qhead];
        p->qhead = (p->qhead + 1) % p->nslots;
        p->qlen--;
        p->busy++;
        pthread_mutex_unlock(&p->lock);

        r = p->failed ? 1
                      : store_chunk_write(p->st, s, &p->jobs[slot].c, &w);

        pthread_mutex_lock(&p->lock);
        if (r < 0) {
            pool_fail_locked(p);
        } else if (r == 0) {
            /* To the sync threads; wait for room (backpressure). */
            while (p->sq_len == SYNC_QUEUE)
                pthread_cond_wait(&p->sq_room, &p->lock);
            p->sq[(p->sq_head + p->sq_len) % SYNC_QUEUE] = w;
            p->sq_len++;
            pthread_cond_signal(&p->sq_work);
        }
        p->busy--;
        p->free_slots[p->nfree++] = slot;
        pthread_cond_broadcast(&p->room);
    }
    pthread_mutex_unlock(&p->lock);
    store_scratch_free(s);
    return NULL;
}

static void
pool_start(struct pool *p, struct store *st, unsigned nworkers)
{
    memset(p, 0, sizeof *p);
    p->st = st;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->room, NULL);
    if (nworkers == 0)
        nworkers = lb_ncpus();
    if (nworkers > MAX_WORKERS)
        nworkers = MAX_WORKERS;
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
    for (unsigned i = 0; i < SYNC_THREADS; i++)
        if (pthread_create(&p->sth[p->nsth], NULL, sync_worker, p) == 0)
            p->nsth++;
}

/* Queue a copy of a received chunk; blocks while all slots are busy. */
static void
pool_submit(struct pool *p, const struct proto_chunk *c)
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

/* Wait until every queued chunk is stored. 0, or -1 with the first
 * worker's error in this thread's error slot. */
static int
pool_drain(struct pool *p)
{
    int r = 0;

    pthread_mutex_lock(&p->lock);
    while (p->qlen || p->busy || p->sq_len || p->syncing)
        pthread_cond_wait(&p->room, &p->lock);
    if (p->failed) {
        lb_error(0, "%s", p->err_msg);
        lb_error_set_errno(p->err_errno);
        if (p->err_hint[0])
            lb_error_hint("%s", p->err_hint);
        r = -1;
    }
    pthread_mutex_unlock(&p->lock);
    return r;
}

static bool
pool_failed(struct pool *p)
{
    bool f;

    pthread_mutex_lock(&p->lock);
    f = p->failed;
    pthread_mutex_unlock(&p->lock);
    return f;
}

static void
pool_stop(struct pool *p)
{
    if (!p->jobs)
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
    p->jobs = NULL;
}

/* ---- the session ------------------------------------------------------------
 */

struct session {
    const struct backupd_opts *o;
    struct proto_conn *conn;
    struct lb_buf out;
    struct store *st;
    uint8_t mode;
    struct store_txn *txn;
    bool in_disk;
    struct pool pool;
    uint64_t bytes_received_at_begin;
    uint64_t verify_last_ns;
};

uint32_t
backupd_err_code(int errnum)
{
    switch (errnum) {
    case ENOENT:
        return PROTO_ERR_NOT_FOUND;
    case ENOSPC:
    case EDQUOT:
        return PROTO_ERR_NO_SPACE;
    case EWOULDBLOCK:
        return PROTO_ERR_LOCKED;
    case EPROTO:
    case EBADMSG:
        return PROTO_ERR_CORRUPT;
    case EINVAL:
        return PROTO_ERR_INVALID;
    case EEXIST:
        return PROTO_ERR_EXISTS;
    case EPERM:
    case EACCES:
    case EROFS:
        return PROTO_ERR_DENIED;
    case ERANGE:
        return PROTO_ERR_REPO_VERSION;
    case ENOTEMPTY:
        return PROTO_ERR_NOT_EMPTY;
    case ENOTDIR:
        return PROTO_ERR_NO_REPO;
    case EBUSY:
        return PROTO_ERR_BUSY;
    default:
        return PROTO_ERR_IO;
    }
}

/* Send the error slot to the client and log it. Always returns -1: every
 * error ends the session (PROTOCOL.md, "Errors"). */
static int
fail(struct session *s, uint32_t code)
{
    const char *hint = lb_error_hint_msg();

    if (code == 0)
        code = backupd_err_code(lb_error_errno());
    if (code == PROTO_ERR_NO_SPACE && !hint[0])
        hint = "free space on the repository's filesystem and run the backup "
               "again: the data already stored will be reused";
    lb_info("session error: %s", lb_error_msg());
    lb_buf_reset(&s->out);
    proto_enc_error(&s->out, code, lb_error_msg(), hint);
    proto_conn_send_buf(s->conn, &s->out);
    return -1;
}

static int
proto_fail(struct session *s, const char *what, int status)
{
    lb_error(0, "protocol error in %s: %s", what, proto_status_str(status));
    return fail(s, PROTO_ERR_PROTOCOL);
}

static int
send_out(struct session *s)
{
    return proto_conn_send_buf(s->conn, &s->out);
}

static int
need_store(struct session *s, uint8_t mode, const char *what)
{
    if (!s->st) {
        lb_error(0, "%s before OPEN", what);
        return fail(s, PROTO_ERR_PROTOCOL);
    }
    if (s->mode < mode) {
        lb_fail(EPERM, "%s needs the repository opened for %s", what,
                mode == PROTO_OPEN_WRITE ? "writing" : "administration");
        return fail(s, PROTO_ERR_PROTOCOL);
    }
    return 0;
}

static int
do_hello(struct session *s, const uint8_t *p, uint32_t len)
{
    struct proto_hello h, mine;
    int st = proto_dec_hello(p, len, &h);
    static const char sw[] = "backupd " LB_VERSION;

    if (st != PROTO_OK)
        return proto_fail(s, "HELLO", st);
    if (proto_hello_negotiate(&h, PROTO_VERSION, PROTO_VERSION,
                              PROTO_FEATURES_KNOWN, &mine) == 0) {
        lb_error(0,
                 "protocol versions %u..%u offered, this backupd speaks "
                 "version %u",
                 h.version_min, h.version_max, PROTO_VERSION);
        lb_error_hint("install the same livebackup version on both hosts");
        return fail(s, PROTO_ERR_VERSION);
    }
    mine.software.p = sw;
    mine.software.len = (uint16_t)strlen(sw);
    proto_enc_hello(&s->out, PROTO_T_HELLO_REPLY, &mine);
    return send_out(s);
}

/* delete, prune and gc are refused alike on an append-only connection. */
static int
refuse_append_only(struct session *s)
{
    lb_fail(EPERM, "this repository connection is append-only: delete, "
                   "prune and gc are refused");
    lb_error_hint("run them on the backup server, or through a key "
                  "without --append-only");
    return fail(s, PROTO_ERR_DENIED);
}

static int
do_open(struct session *s, const uint8_t *p, uint32_t len)
{
    struct proto_repo_info ri = {0};
    uint8_t mode;
    int st = proto_dec_open(p, len, &mode);

    if (st != PROTO_OK)
        return proto_fail(s, "OPEN", st);
    if (s->st) {
        lb_error(0, "repository opened twice");
        return fail(s, PROTO_ERR_PROTOCOL);
    }
    if (mode == PROTO_OPEN_ADMIN && s->o->append_only)
        return refuse_append_only(s);
    s->st = store_open(s->o->repo,
                       mode == PROTO_OPEN_ADMIN   ? STORE_ADMIN
                       : mode == PROTO_OPEN_WRITE ? STORE_WRITE
                                                  : STORE_READ,
                       s->o->lock_wait);
    if (!s->st) {
        int e = lb_error_errno();
        return fail(s, e == ENOENT ? PROTO_ERR_NO_REPO : backupd_err_code(e));
    }
    store_set_append_only(s->st, s->o->append_only);
    store_set_trusted(s->st, s->o->trusted && !s->o->append_only);
    s->mode = mode;
    if (mode != PROTO_OPEN_READ)
        pool_start(&s->pool, s->st, s->o->workers);
    ri.format_version = STORE_FORMAT_VERSION;
    ri.window_size = store_window_size(s->st);
    ri.flags = s->o->append_only ? PROTO_REPO_F_APPEND_ONLY : 0;
    ri.repo_id.p = store_repo_id(s->st);
    ri.repo_id.len = (uint16_t)strlen(ri.repo_id.p);
    proto_enc_repo_info(&s->out, &ri);
    return send_out(s);
}

static int
do_init(struct session *s, const uint8_t *p, uint32_t len)
{
    uint32_t ws;
    int st = proto_dec_init(p, len, &ws);

    if (st != PROTO_OK)
        return proto_fail(s, "INIT", st);
    if (s->o->append_only) {
        lb_fail(EPERM, "this connection is append-only: it cannot create "
                       "repositories");
        return fail(s, PROTO_ERR_DENIED);
    }
    if (store_init(s->o->repo, ws) < 0)
        return fail(s, 0);
    lb_info("created repository %s (window %u KiB)", s->o->repo, ws >> 10);
    proto_enc_ok(&s->out, 0);
    return send_out(s);
}

static int
do_list(struct session *s, const uint8_t *p, uint32_t len)
{
    struct proto_str name;
    struct store_list l;
    char filter[256];
    int st = proto_dec_str(p, len, &name);

    if (st != PROTO_OK)
        return proto_fail(s, "LIST", st);
    if (need_store(s, PROTO_OPEN_READ, "LIST") < 0)
        return -1;
    if (name.len && (!proto_name_valid(name.p, name.len) ||
                     !proto_str_copy(filter, sizeof filter, name))) {
        lb_fail(EINVAL, "invalid name in LIST");
        return fail(s, PROTO_ERR_INVALID);
    }
    if (store_list(s->st, name.len ? filter : NULL, &l) < 0)
        return fail(s, 0);
    for (size_t i = 0; i < l.n; i++) {
        proto_enc_kv(&s->out, PROTO_T_LIST_ENTRY, &l.b[i].meta);
        if (s->out.len > (256u << 10) && send_out(s) < 0)
            break;
    }
    store_list_free(&l);
    proto_enc_u64(&s->out, PROTO_T_LIST_END, l.n);
    return send_out(s);
}

static int
do_backup_begin(struct session *s, const uint8_t *p, uint32_t len)
{
    struct proto_backup_begin bb;
    char name[256], parent[PROTO_ID_LEN + 1] = "";
    int st = proto_dec_backup_begin(p, len, &bb);

    if (st != PROTO_OK)
        return proto_fail(s, "BACKUP_BEGIN", st);
    if (need_store(s, PROTO_OPEN_WRITE, "BACKUP_BEGIN") < 0 || s->txn) {
        proto_kv_free(&bb.meta);
        if (s->txn) {
            lb_error(0, "a backup is already in progress in this session");
            return fail(s, PROTO_ERR_PROTOCOL);
        }
        return -1;
    }
    proto_str_copy(name, sizeof name, bb.name);
    proto_str_copy(parent, sizeof parent, bb.parent);
    s->txn = store_txn_begin(s->st, name, parent, &bb.meta);
    proto_kv_free(&bb.meta);
    if (!s->txn)
        return fail(s, 0);
    s->bytes_received_at_begin = proto_conn_bytes_in(s->conn);
    lb_info("backup %s of %s started%s%s", store_txn_id(s->txn), name,
            parent[0] ? ", parent " : "", parent);
    proto_enc_backup_started(&s->out, store_txn_id(s->txn), parent);
    return send_out(s);
}

/* DISK_READY goes out before the first DEPTHS frame. */
struct depths_out {
    struct session *s;
    uint64_t nwin;
    bool ready_sent;
};

static int
send_depths(void *opaque, uint64_t first, const uint8_t *d, size_t n)
{
    struct depths_out *o = opaque;

    if (!o->ready_sent) {
        proto_enc_disk_ready(&o->s->out, o->nwin, store_window_size(o->s->st));
        o->ready_sent = true;
    }
    proto_enc_depths(&o->s->out, first, d, n);
    return send_out(o->s);
}

static int
do_disk_begin(struct session *s, const uint8_t *p, uint32_t len)
{
    struct proto_disk_begin db;
    char disk[65];
    struct depths_out o = {s, 0, false};
    int st = proto_dec_disk_begin(p, len, &db);

    if (st != PROTO_OK)
        return proto_fail(s, "DISK_BEGIN", st);
    if (!s->txn) {
        proto_kv_free(&db.meta);
        lb_error(0, "DISK_BEGIN outside a backup");
        return fail(s, PROTO_ERR_PROTOCOL);
    }
    proto_str_copy(disk, sizeof disk, db.disk);
    /* The window count is known before the parent is read. */
    o.nwin = proto_mf_windows_for(db.size, store_window_size(s->st));
    st = store_txn_disk_begin(s->txn, disk, db.size, db.mode, &db.meta, &o.nwin,
                              send_depths, &o);
    proto_kv_free(&db.meta);
    if (st < 0) {
        if (o.ready_sent)
            /* The client is reading DEPTHS: it gets the error next. */
            lb_buf_reset(&s->out);
        return fail(s, 0);
    }
    s->in_disk = true;
    if (!o.ready_sent)
        proto_enc_disk_ready(&s->out, o.nwin, store_window_size(s->st));
    return send_out(s);
}

static int
do_query(struct session *s, const uint8_t *p, uint32_t len)
{
    const uint8_t *dg;
    uint32_t n;
    uint8_t bits[PROTO_MAX_QUERY / 8] = {0};
    int st = proto_dec_query(p, len, &dg, &n);

    if (st != PROTO_OK)
        return proto_fail(s, "QUERY", st);
    if (need_store(s, PROTO_OPEN_READ, "QUERY") < 0)
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        struct proto_digest d;
        int have;
        memcpy(d.b, dg + (size_t)i * PROTO_DIGEST_LEN, PROTO_DIGEST_LEN);
        have = s->txn && store_txn_noted(s->txn, &d);
        if (!have) {
            /* Touched (for gc) when the repository is open for writing. */
            have = store_chunk_touch(s->st, &d);
            if (have < 0)
                return fail(s, 0);
            /* A gc running now may move this chunk aside for an instant
             * before it sees the touch and puts it back: the window
             * records that name it must not find it missing then. */
            if (have && s->txn)
                store_txn_note_chunk(s->txn, &d);
        }
        if (have)
            bits[i / 8] |= (uint8_t)(1u << (i % 8));
    }
    proto_enc_have(&s->out, bits, n);
    return send_out(s);
}

static int
do_chunk(struct session *s, const uint8_t *p, uint32_t len)
{
    struct proto_chunk c;
    int st = proto_dec_chunk(p, len, &c);

    if (st != PROTO_OK)
        return proto_fail(s, "CHUNK", st);
    if (need_store(s, PROTO_OPEN_WRITE, "CHUNK") < 0)
        return -1;
    if (c.type == PROTO_CHUNK_RAW && c.raw_len > store_window_size(s->st)) {
        lb_fail(EINVAL, "RAW chunk larger than the repository's window");
        return fail(s, PROTO_ERR_INVALID);
    }
    if (s->txn)
        store_txn_note_chunk(s->txn, &c.d);
    pool_submit(&s->pool, &c);
    return 0;
}

static int
do_windows(struct session *s, const uint8_t *p, uint32_t len)
{
    struct proto_rd pr;
    struct proto_window_rec rec;
    uint32_t count, seen = 0;
    int st = proto_dec_windows_init(&pr, p, len, &count);

    if (st != PROTO_OK)
        return proto_fail(s, "WINDOWS", st);
    if (!s->txn || !s->in_disk) {
        lb_error(0, "WINDOWS outside a disk");
        return fail(s, PROTO_ERR_PROTOCOL);
    }
    while ((st = proto_dec_window_next(&pr, &rec)) == 1) {
        if (++seen > count)
            break;
        if (store_txn_window(s->txn, &rec) < 0)
            return fail(s, 0);
    }
    if (st < 0)
        return proto_fail(s, "WINDOWS", st);
    if (seen != count)
        return proto_fail(s, "WINDOWS", PROTO_E_RANGE);
    return 0;
}

static int
do_disk_end(struct session *s, const uint8_t *p, uint32_t len)
{
    struct proto_kv meta;
    int st = proto_dec_kv(p, len, &meta);

    if (st != PROTO_OK)
        return proto_fail(s, "DISK_END", st);
    if (!s->txn || !s->in_disk) {
        proto_kv_free(&meta);
        lb_error(0, "DISK_END outside a disk");
        return fail(s, PROTO_ERR_PROTOCOL);
    }
    st = store_txn_disk_end(s->txn, &meta);
    proto_kv_free(&meta);
    s->in_disk = false;
    return st < 0 ? fail(s, 0) : 0;
}

static int
do_commit(struct session *s, const uint8_t *p, uint32_t len)
{
    struct proto_kv meta, out;
    char id[PROTO_ID_LEN + 1];
    int st = proto_dec_kv(p, len, &meta);

    if (st != PROTO_OK)
        return proto_fail(s, "COMMIT", st);
    if (!s->txn || s->in_disk) {
        proto_kv_free(&meta);
        lb_error(0, "COMMIT without a finished backup");
        return fail(s, PROTO_ERR_PROTOCOL);
    }
    lb_fault_point("backupd:commit-received");
    /* Every chunk this backup sent must be stored before the manifest. */
    if (pool_drain(&s->pool) < 0) {
        proto_kv_free(&meta);
        store_txn_abort(s->txn);
        s->txn = NULL;
        return fail(s, 0);
    }
    store_txn_add_stats(s->txn, s->pool.chunks_new, s->pool.bytes_new,
                        proto_conn_bytes_in(s->conn) -
                            s->bytes_received_at_begin);
    s->pool.chunks_new = s->pool.bytes_new = 0;
    snprintf(id, sizeof id, "%s", store_txn_id(s->txn));
    st = store_txn_commit(s->txn, &meta, &out);
    s->txn = NULL;
    proto_kv_free(&meta);
    if (st < 0)
        return fail(s, 0);
    lb_info("backup %s committed", id);
    proto_enc_kv(&s->out, PROTO_T_COMMITTED, &out);
    proto_kv_free(&out);
    return send_out(s);
}

static int
do_abort(struct session *s, uint32_t len)
{
    if (len != 0)
        return proto_fail(s, "ABORT", PROTO_E_TRAILING);
    if (s->txn) {
        pool_drain(&s->pool);
        lb_info("backup %s abandoned by the client", store_txn_id(s->txn));
        store_txn_abort(s->txn);
        s->txn = NULL;
        s->in_disk = false;
    }
    proto_enc_ok(&s->out, 0);
    return send_out(s);
}

static int
do_get_manifest(struct session *s, const uint8_t *p, uint32_t len)
{
    struct proto_str sid;
    char id[PROTO_ID_LEN + 1];
    CLEANUP_CLOSE int fd = -1;
    uint64_t total = 0;
    int st = proto_dec_str(p, len, &sid);

    if (st != PROTO_OK)
        return proto_fail(s, "GET_MANIFEST", st);
    if (need_store(s, PROTO_OPEN_READ, "GET_MANIFEST") < 0)
        return -1;
    if (!proto_backup_id_valid(sid.p, sid.len)) {
        lb_fail(EINVAL, "invalid backup id");
        return fail(s, PROTO_ERR_INVALID);
    }
    proto_str_copy(id, sizeof id, sid);
    fd = store_manifest_open(s->st, id);
    if (fd < 0)
        return fail(s, 0);
    for (;;) {
        size_t f = proto_frame_begin(&s->out, PROTO_T_MANIFEST_DATA);
        ssize_t n;
        lb_buf_reserve(&s->out, 1u << 20);
        n = lb_read_full(fd, s->out.data + s->out.len, 1u << 20);
        if (n < 0) {
            lb_buf_reset(&s->out);
            lb_error(errno, "read manifest of %s", id);
            return fail(s, 0);
        }
        if (n == 0) {
            s->out.len = f;
            break;
        }
        s->out.len += (size_t)n;
        proto_frame_end(&s->out, f);
        total += (uint64_t)n;
        if (send_out(s) < 0)
            return -1;
    }
    proto_enc_u64(&s->out, PROTO_T_MANIFEST_END, total);
    return send_out(s);
}

static int
do_get_chunks(struct session *s, const uint8_t *p, uint32_t len)
{
    const uint8_t *dg;
    uint32_t n;
    CLEANUP_BUF struct lb_buf file = {0};
    int st = proto_dec_query(p, len, &dg, &n);

    if (st != PROTO_OK)
        return proto_fail(s, "GET_CHUNKS", st);
    if (n > PROTO_MAX_GET_CHUNKS)
        return proto_fail(s, "GET_CHUNKS", PROTO_E_RANGE);
    if (need_store(s, PROTO_OPEN_READ, "GET_CHUNKS") < 0)
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        struct proto_digest d;
        struct proto_chunk c;
        memcpy(d.b, dg + (size_t)i * PROTO_DIGEST_LEN, PROTO_DIGEST_LEN);
        if (store_chunk_read(s->st, &d, &file, &c) < 0) {
            lb_buf_reset(&s->out);
            return fail(s, 0);
        }
        /* Header, then the file's bytes as they are: no copy. */
        proto_enc_chunk_head(&s->out, PROTO_T_CHUNK_DATA, &c);
        if (send_out(s) < 0 || proto_conn_send(s->conn, c.data, c.data_len) < 0)
            return -1;
    }
    return 0;
}

static void
verify_damage(void *opaque, const char *id, const char *name, const char *disk,
              const char *what)
{
    struct session *s = opaque;
    struct proto_kv ev = {0};

    proto_kv_set(&ev, "event", "damage");
    proto_kv_set(&ev, "id", id);
    proto_kv_set(&ev, "name", name);
    proto_kv_set(&ev, "disk", disk);
    proto_kv_set(&ev, "what", what);
    proto_enc_kv(&s->out, PROTO_T_VERIFY_EVENT, &ev);
    proto_kv_free(&ev);
    send_out(s);
}

static void
verify_progress(void *opaque, uint64_t done, uint64_t total)
{
    struct session *s = opaque;
    struct proto_kv ev = {0};
    uint64_t now = lb_now_ns();

    if (now - s->verify_last_ns < 250000000u && done != total)
        return;
    s->verify_last_ns = now;
    proto_kv_set(&ev, "event", "progress");
    proto_kv_set_u64(&ev, "done", done);
    proto_kv_set_u64(&ev, "total", total);
    proto_enc_kv(&s->out, PROTO_T_VERIFY_EVENT, &ev);
    proto_kv_free(&ev);
    send_out(s);
}

static int
do_verify(struct session *s, const uint8_t *p, uint32_t len)
{
    struct proto_kv req, stats = {0};
    struct store_verify_cb cb = {s, verify_damage, verify_progress};
    int st = proto_dec_kv(p, len, &req);
    int r;

    if (st != PROTO_OK)
        return proto_fail(s, "VERIFY", st);
    proto_kv_free(&req);
    if (need_store(s, PROTO_OPEN_READ, "VERIFY") < 0)
        return -1;
    r = store_verify(s->st, &cb, &stats);
    if (r < 0) {
        proto_kv_free(&stats);
        return fail(s, 0);
    }
    proto_kv_set(&stats, "result", r ? "damaged" : "ok");
    proto_enc_kv(&s->out, PROTO_T_VERIFY_END, &stats);
    proto_kv_free(&stats);
    return send_out(s);
}

static int
do_delete(struct session *s, const uint8_t *p, uint32_t len)
{
    struct proto_str sid;
    char id[PROTO_ID_LEN + 1];
    int st = proto_dec_str(p, len, &sid);

    if (st != PROTO_OK)
        return proto_fail(s, "DELETE", st);
    if (need_store(s, PROTO_OPEN_ADMIN, "DELETE") < 0)
        return -1;
    if (!proto_backup_id_valid(sid.p, sid.len)) {
        lb_fail(EINVAL, "invalid backup id");
        return fail(s, PROTO_ERR_INVALID);
    }
    proto_str_copy(id, sizeof id, sid);
    if (store_delete(s->st, id) < 0)
        return fail(s, 0);
    lb_info("backup %s deleted", id);
    proto_enc_ok(&s->out, 0);
    return send_out(s);
}

/* A strictly decimal value of a request key, at most max; def if absent.
 * -1 (error slot set) when malformed. */
static int
req_uint(const struct proto_kv *kv, const char *key, uint64_t max, uint64_t def,
         uint64_t *out)
{
    const char *v = proto_kv_get(kv, key);
    uint64_t x = 0;

    *out = def;
    if (!v)
        return 0;
    if (!*v || strlen(v) > 20)
        return lb_fail(EINVAL, "%s: not a number: '%.40s'", key, v);
    for (const char *c = v; *c; c++) {
        if (*c < '0' || *c > '9' || lb_mul_overflow(x, 10, &x) ||
            lb_add_overflow(x, (uint64_t)(*c - '0'), &x))
            return lb_fail(EINVAL, "%s: not a number: '%.40s'", key, v);
    }
    if (x > max)
        return lb_fail(EINVAL, "%s: %llu is more than %llu", key,
                       (unsigned long long)x, (unsigned long long)max);
    *out = x;
    return 0;
}

struct prune_out {
    struct session *s;
    bool dry_run;
};

static int
send_prune_entry(void *opaque, const struct store_backup *b,
                 const struct store_prune_item *it)
{
    struct prune_out *o = opaque;
    struct proto_kv ev = {0};
    char reasons[256];

    store_prune_reasons(it, reasons, sizeof reasons);
    proto_kv_set(&ev, "id", b->id);
    proto_kv_set(&ev, "name", proto_kv_get(&b->meta, "name"));
    proto_kv_set_u64(&ev, "time", (uint64_t)b->time);
    proto_kv_set(&ev, "action", it->keep ? "keep" : "remove");
    proto_kv_set(&ev, "reasons", reasons);
    proto_enc_kv(&o->s->out, PROTO_T_PRUNE_ENTRY, &ev);
    proto_kv_free(&ev);
    if (!it->keep && !o->dry_run)
        lb_info("backup %s pruned", b->id);
    /* Batched: one write per 64 KiB of entries. */
    if (o->s->out.len > (64u << 10))
        return send_out(o->s);
    return 0;
}

static int
do_prune(struct session *s, const uint8_t *p, uint32_t len)
{
    struct proto_kv req;
    struct store_prune_policy pol = {{0}};
    struct prune_out o = {s, false};
    char name[256] = "";
    const char *nm;
    uint64_t v, removed;
    uint8_t need;
    int st = proto_dec_kv(p, len, &req);

    if (st != PROTO_OK)
        return proto_fail(s, "PRUNE", st);
    for (unsigned r = 0; r < STORE_KEEP_NRULES; r++) {
        char key[32];
        snprintf(key, sizeof key, "keep_%s",
                 store_keep_rule_name((enum store_keep_rule)r));
        if (req_uint(&req, key, 1000000, 0, &v) < 0)
            goto invalid;
        pol.keep[r] = (unsigned)v;
    }
    if (req_uint(&req, "dry_run", 1, 0, &v) < 0)
        goto invalid;
    o.dry_run = v == 1;
    nm = proto_kv_get(&req, "name");
    if (nm && *nm) {
        if (!proto_name_valid(nm, strlen(nm)) || strlen(nm) >= sizeof name) {
            lb_fail(EINVAL, "invalid name in PRUNE");
            goto invalid;
        }
        snprintf(name, sizeof name, "%s", nm);
    }
    proto_kv_free(&req);
    if (!store_prune_policy_any(&pol)) {
        lb_fail(EINVAL, "prune needs at least one keep rule above 0");
        return fail(s, PROTO_ERR_INVALID);
    }
    if (s->o->append_only)
        return refuse_append_only(s);
    /* A dry run changes nothing: any opener may ask for it. */
    need = o.dry_run ? PROTO_OPEN_READ : PROTO_OPEN_ADMIN;
    if (need_store(s, need, "PRUNE") < 0)
        return -1;
    if (s->txn) {
        lb_error(0, "PRUNE during a backup in the same session");
        return fail(s, PROTO_ERR_PROTOCOL);
    }
    if (store_prune(s->st, name[0] ? name : NULL, &pol, o.dry_run,
                    send_prune_entry, &o, &removed) < 0) {
        /* The entries of what was done go out before the error. */
        if (proto_conn_broken(s->conn) || (s->out.len && send_out(s) < 0))
            return -1;
        return fail(s, 0);
    }
    proto_enc_ok(&s->out, removed);
    return send_out(s);
invalid:
    proto_kv_free(&req);
    return fail(s, PROTO_ERR_INVALID);
}

static int
do_gc(struct session *s, const uint8_t *p, uint32_t len)
{
    struct proto_kv req, out = {0};
    struct store_gc_opts go = {0};
    struct store_gc_stats gs;
    uint64_t v;
    int st = proto_dec_kv(p, len, &req);

    if (st != PROTO_OK)
        return proto_fail(s, "GC", st);
    st = req_uint(&req, "dry_run", 1, 0, &v);
    proto_kv_free(&req);
    if (st < 0)
        return fail(s, PROTO_ERR_INVALID);
    go.dry_run = v == 1;
    if (s->o->append_only)
        return refuse_append_only(s);
    if (need_store(s, PROTO_OPEN_WRITE, "GC") < 0)
        return -1;
    if (s->txn) {
        lb_error(0, "GC during a backup in the same session");
        return fail(s, PROTO_ERR_PROTOCOL);
    }
    if (store_gc(s->st, &go, &gs) < 0)
        return fail(s, 0);
    lb_info("gc%s: %llu chunks (%llu bytes) reclaimed, %llu referenced, "
            "%llu too recent, %llu put back",
            go.dry_run ? " (dry run)" : "", (unsigned long long)gs.reclaimed,
            (unsigned long long)gs.bytes_reclaimed,
            (unsigned long long)gs.referenced, (unsigned long long)gs.recent,
            (unsigned long long)gs.restored);
    proto_kv_set_u64(&out, "dry_run", go.dry_run);
    proto_kv_set_u64(&out, "backups", gs.backups);
    proto_kv_set_u64(&out, "chunks", gs.chunks);
    proto_kv_set_u64(&out, "chunks_referenced", gs.referenced);
    proto_kv_set_u64(&out, "chunks_recent", gs.recent);
    proto_kv_set_u64(&out, "chunks_restored", gs.restored);
    proto_kv_set_u64(&out, "chunks_reclaimed", gs.reclaimed);
    proto_kv_set_u64(&out, "bytes_reclaimed", gs.bytes_reclaimed);
    proto_kv_set_u64(&out, "sessions", gs.sessions);
    proto_kv_set_u64(&out, "cutoff", (uint64_t)gs.cutoff);
    proto_enc_kv(&s->out, PROTO_T_GC_END, &out);
    proto_kv_free(&out);
    return send_out(s);
}

static int
dispatch(struct session *s, const struct proto_hdr *h, const uint8_t *p)
{
    switch (h->type) {
    case PROTO_T_INIT:
        return do_init(s, p, h->len);
    case PROTO_T_OPEN:
        return do_open(s, p, h->len);
    case PROTO_T_LIST:
        return do_list(s, p, h->len);
    case PROTO_T_BACKUP_BEGIN:
        return do_backup_begin(s, p, h->len);
    case PROTO_T_DISK_BEGIN:
        return do_disk_begin(s, p, h->len);
    case PROTO_T_QUERY:
        return do_query(s, p, h->len);
    case PROTO_T_CHUNK:
        return do_chunk(s, p, h->len);
    case PROTO_T_WINDOWS:
        return do_windows(s, p, h->len);
    case PROTO_T_DISK_END:
        return do_disk_end(s, p, h->len);
    case PROTO_T_COMMIT:
        return do_commit(s, p, h->len);
    case PROTO_T_ABORT:
        return do_abort(s, h->len);
    case PROTO_T_GET_MANIFEST:
        return do_get_manifest(s, p, h->len);
    case PROTO_T_GET_CHUNKS:
        return do_get_chunks(s, p, h->len);
    case PROTO_T_VERIFY:
        return do_verify(s, p, h->len);
    case PROTO_T_DELETE:
        return do_delete(s, p, h->len);
    case PROTO_T_PRUNE:
        return do_prune(s, p, h->len);
    case PROTO_T_GC:
        return do_gc(s, p, h->len);
    default:
        lb_error(0, "unexpected %s frame from the client",
                 proto_type_name(h->type));
        return fail(s, PROTO_ERR_PROTOCOL);
    }
}

/*
 * BRIDGE (PROTOCOL.md, "Bridging"): `backupd serve` relaying an ssh client
 * to this daemon passes that connection's restrictions first. Accepted
 * only in listen mode, only as the first frame, only from a peer of our
 * own uid (or root): a remote client cannot send one, its bytes come
 * after the bridge's.
 */
static int
do_bridge(struct session *s, struct backupd_opts *so, int fd,
          const uint8_t *p, uint32_t len)
{
    struct ucred cr;
    socklen_t crlen = sizeof cr;
    struct proto_kv kv;
    int st;

    if (!so->accept_bridge ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0 ||
        (cr.uid != 0 && cr.uid != geteuid())) {
        lb_error(0, "BRIDGE refused");
        return fail(s, PROTO_ERR_DENIED);
    }
    st = proto_dec_kv(p, len, &kv);
    if (st != PROTO_OK)
        return proto_fail(s, "BRIDGE", st);
    if (proto_kv_get_u64(&kv, "append_only", 0))
        so->append_only = true;
    /* The peer is root or our own user: it could write the repository's
     * files itself, so its word that it is a local agent's child (which
     * hashed every chunk it sends) is good enough. */
    if (proto_kv_get_u64(&kv, "trusted", 0) && !so->append_only)
        so->trusted = true;
    if (proto_kv_get(&kv, "peer"))
        lb_info("bridged session from %s%s%s", proto_kv_get(&kv, "peer"),
                so->append_only ? " (append-only)" : "",
                so->trusted ? " (trusted)" : "");
    proto_kv_free(&kv);
    return 0;
}

int
backupd_session_run(int fd_in, int fd_out, const struct backupd_opts *o)
{
    struct backupd_opts so = *o; /* BRIDGE may restrict this session */
    struct session s = {.o = &so};
    struct proto_hdr h;
    const uint8_t *p;
    int r = -1;

    s.conn = proto_conn_new(fd_in, fd_out);
    if (proto_conn_recv(s.conn, &h, &p) < 0) {
        if (!proto_conn_eof(s.conn))
            fail(&s, PROTO_ERR_PROTOCOL);
        goto out;
    }
    if (h.type == PROTO_T_BRIDGE) {
        if (do_bridge(&s, &so, fd_in, p, h.len) < 0)
            goto out;
        if (proto_conn_recv(s.conn, &h, &p) < 0) {
            if (!proto_conn_eof(s.conn))
                fail(&s, PROTO_ERR_PROTOCOL);
            goto out;
        }
    }
    if (h.type != PROTO_T_HELLO) {
        lb_error(0, "the client did not start with HELLO");
        fail(&s, PROTO_ERR_PROTOCOL);
        goto out;
    }
    if (do_hello(&s, p, h.len) < 0)
        goto out;
    for (;;) {
        if (o->stop && *o->stop) {
            lb_error(0, "backupd is shutting down");
            lb_error_hint("run the backup again when backupd is back");
            fail(&s, PROTO_ERR_BUSY);
            break;
        }
        if (s.txn && pool_failed(&s.pool)) {
            pool_drain(&s.pool);
            fail(&s, 0);
            break;
        }
        if (proto_conn_recv(s.conn, &h, &p) < 0) {
            if (proto_conn_eof(s.conn) && !s.txn &&
                strcmp(lb_error_msg(), "connection closed by the peer") == 0) {
                r = 0;
            } else {
                /* The client's doing, not ours: a warning. */
                lb_warn("session ended: %s", lb_error_msg());
                if (!proto_conn_eof(s.conn))
                    fail(&s, PROTO_ERR_PROTOCOL);
            }
            break;
        }
        if (dispatch(&s, &h, p) < 0)
            break;
    }
out:
    if (s.txn) {
        pool_drain(&s.pool);
        lb_info("backup %s abandoned: only its chunks remain, for reuse",
                store_txn_id(s.txn));
        store_txn_abort(s.txn);
    }
    pool_stop(&s.pool);
    store_close(s.st);
    lb_buf_free(&s.out);
    proto_conn_free(s.conn, false);
    return r;
}
