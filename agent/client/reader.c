/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Random access to one disk of one backup: what `livebackup map` (the
 * nbdkit plugin), `mount` and the instant restore read a backup through.
 *
 * A read of (offset, length) touches windows; each window is its stack of
 * chunks from the manifest (a RAW at the bottom or zeros, DELTAs above),
 * fetched through the repository session (GET_CHUNKS, the window asked
 * for and the windows read ahead of it in one pipelined batch), opened in
 * place by agent_chunk_open_own (checked against its id) and applied in
 * order, then kept in a small LRU cache of decoded windows. Reads that go
 * forward (QEMU's block-stream) have a thread fetch the next windows
 * while some are still ahead, evicting none the reader has not reached.
 * Extents (NBD block status) come from the manifest and the DELTAs'
 * runs, never from the data: a window with an empty stack is a hole, a
 * DELTA's zero run is zero.
 *
 * Memory: the stack index is built once by streaming the manifest: one
 * byte per window in memory (its depth, and whether a RAW chunk is at the
 * bottom) and 8 bytes per RD_GROUP windows (where its group's stacks start);
 * the stacks themselves (33 bytes per chunk reference) go to an unlinked
 * temporary file read with pread. A 1 TiB disk in 4 MiB windows costs
 * 288 KiB of memory for its index. The cache holds cache_bytes of windows
 * (each with a bitmap of its 4 KiB blocks: data or zero).
 *
 * A session the server ended on an error (a chunk it does not have)
 * fails the reads that needed it with EIO, and the next read connects
 * again. One cut without a word (the server gone, or given up on as
 * stalled, agent_opts.io_watch) is replaced at once and the read
 * asked again, once, before it fails; the new session must be the same
 * repository, and takes the key unlocked at open. A damaged chunk fails
 * the reads of the windows it is in, and nothing else. Block status:
 * reader_extents.c.
 */
#include "agent/client/reader_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>

/* ---- the stack index ------------------------------------------------------ */

static int
temp_file(void)
{
    const char *dir = getenv("TMPDIR");
    CLEANUP_FREE char *path =
        dir && *dir ? lb_xasprintf("%s/livebackup-stacks-XXXXXX", dir)
                    : lb_xstrdup("/tmp/livebackup-stacks-XXXXXX");
    int fd = mkostemp(path, O_CLOEXEC);

    if (fd < 0)
        return lb_error(errno, "create a temporary file like %s", path);
    unlink(path);
    return fd;
}

/* Stream the disk's windows from the manifest into the index. */
static int
index_build(struct agent_reader *rd)
{
    struct proto_mf_reader *mr;
    struct proto_mf_disk d;
    CLEANUP_BUF struct lb_buf out = {0};
    uint64_t refs = 0;
    int mfd = rd->b.mfd, ret = -1;

    mr = agent_manifest_seek_disk(&mfd, rd->disk, &d);
    if (!mr)
        return -1;
    if (d.window_size != agent_repo_window_size(rd->b.r)) {
        lb_fail(EPROTO,
                "backup %s, disk %s: its window size differs from "
                "the repository's",
                rd->b.id, rd->disk);
        goto out;
    }
    rd->size = d.size;
    rd->ws = d.window_size;
    rd->nwindows = d.nwindows;
    rd->depth = lb_xcalloc(d.nwindows ? d.nwindows : 1, 1);
    rd->group = lb_xcalloc(d.nwindows / RD_GROUP + 1, sizeof *rd->group);
    if ((rd->stacks = temp_file()) < 0)
        goto out;
    for (uint64_t i = 0; i < d.nwindows; i++) {
        struct proto_mf_window w;
        if (proto_mf_next_window(mr, &w) < 0)
            goto out;
        if (i % RD_GROUP == 0)
            rd->group[i / RD_GROUP] = refs;
        rd->depth[i] = w.depth;
        if (w.depth && w.refs[0].type == PROTO_CHUNK_RAW)
            rd->depth[i] |= RD_RAW_BOTTOM;
        for (uint8_t k = 0; k < w.depth; k++) {
            lb_buf_put_u8(&out, w.refs[k].type);
            lb_buf_append(&out, w.refs[k].d.b, PROTO_DIGEST_LEN);
        }
        refs += w.depth;
        if (out.len >= (1u << 20) || i + 1 == d.nwindows) {
            if (lb_write_full(rd->stacks, out.data, out.len) < 0) {
                lb_error(errno, "write a temporary file");
                goto out;
            }
            lb_buf_reset(&out);
        }
    }
    ret = 0;
out:
    if (ret < 0)
        lb_error_prefix("manifest of backup %s", rd->b.id);
    proto_mf_reader_free(mr);
    return ret;
}

static unsigned
depth_of(const struct agent_reader *rd, uint64_t w)
{
    return rd->depth[w] & RD_DEPTH_MASK;
}

/* The stack of window w into *win. */
static int
index_stack(struct agent_reader *rd, uint64_t w, struct proto_mf_window *win)
{
    uint8_t buf[PROTO_MAX_STACK * RD_REF];
    uint64_t at = rd->group[w / RD_GROUP];
    unsigned n = depth_of(rd, w);

    for (uint64_t k = w - w % RD_GROUP; k < w; k++)
        at += depth_of(rd, k);
    if (lb_pread_full(rd->stacks, buf, (size_t)n * RD_REF,
                      (off_t)(at * RD_REF)) != (ssize_t)n * RD_REF)
        return lb_fail(EIO, "read the stack index: %s", strerror(errno));
    win->depth = (uint8_t)n;
    for (unsigned k = 0; k < n; k++) {
        win->refs[k].type = buf[(size_t)k * RD_REF];
        memcpy(win->refs[k].d.b, buf + (size_t)k * RD_REF + 1,
               PROTO_DIGEST_LEN);
    }
    return 0;
}

/* ---- open and close --------------------------------------------------------- */

struct agent_reader *
agent_reader_open(const char *url, const char *name, const char *spec,
                  const char *disk, const struct agent_reader_opts *o)
{
    struct agent_reader *rd = lb_xcalloc(1, sizeof *rd);
    uint64_t cache = o && o->cache_bytes ? o->cache_bytes : AGENT_READER_CACHE;

    rd->stacks = -1;
    rd->url = lb_xstrdup(url);
    snprintf(rd->disk, sizeof rd->disk, "%s", disk);
    pthread_mutex_init(&rd->lock, NULL);
    pthread_mutex_init(&rd->fetch, NULL);
    pthread_cond_init(&rd->pf_cond, NULL);
    rd->pf_want = UINT64_MAX;
    if (agent_backup_open(url, name, spec, &rd->b) < 0 ||
        !agent_backup_disk(&rd->b, disk) || index_build(rd) < 0) {
        agent_reader_close(rd);
        return NULL;
    }
    snprintf(rd->repo_id, sizeof rd->repo_id, "%s", rd->b.r->repo_id);
    rd->encrypted = rd->b.r->encrypted;
    rd->nslots = (unsigned)LB_MAX(cache / rd->ws, (uint64_t)RD_MIN_SLOTS);
    rd->slots = lb_xcalloc(rd->nslots, sizeof *rd->slots);
    for (unsigned i = 0; i < rd->nslots; i++) {
        rd->slots[i].win = lb_xmalloc(rd->ws);
        rd->slots[i].map = lb_xmalloc(rd->ws / RD_BLOCK / 8 + 1);
    }
    rd->readahead = o && o->readahead ? o->readahead : 4;
    rd->readahead = LB_MIN(rd->readahead, RD_MAX_BATCH - 1);
    rd->readahead = LB_MIN(rd->readahead, rd->nslots / 2);
    rd->nworkers = LB_MIN(LB_MAX(lb_ncpus(), 1u), RD_MAX_WORKERS);
    rd->nworkers = LB_MIN(rd->nworkers, rd->readahead + 1);
    for (unsigned i = 0; i < rd->nworkers; i++) {
        rd->wz[i] = proto_zctx_new(1);
        rd->wplain[i] = lb_xmalloc(PROTO_MAX_CHUNK_RAW);
    }
    return rd;
}

void
agent_reader_close(struct agent_reader *rd)
{
    if (!rd)
        return;
    pthread_mutex_lock(&rd->lock);
    rd->pf_stop = true;
    pthread_cond_signal(&rd->pf_cond);
    pthread_mutex_unlock(&rd->lock);
    if (rd->pf_started)
        pthread_join(rd->pf_thread, NULL);
    for (unsigned i = 0; i < rd->nslots; i++) {
        free(rd->slots[i].win);
        free(rd->slots[i].map);
    }
    free(rd->slots);
    if (rd->stacks >= 0)
        close(rd->stacks);
    free(rd->depth);
    free(rd->group);
    agent_backup_close(&rd->b);
    for (unsigned i = 0; i < rd->nworkers; i++) {
        proto_zctx_free(rd->wz[i]);
        free(rd->wplain[i]);
    }
    for (unsigned i = 0; i < RD_MAX_BATCH; i++)
        lb_buf_free(&rd->raw[i]);
    agent_keys_free(rd->keys);
    free(rd->url);
    pthread_mutex_destroy(&rd->lock);
    pthread_mutex_destroy(&rd->fetch);
    pthread_cond_destroy(&rd->pf_cond);
    free(rd);
}

uint64_t
agent_reader_size(const struct agent_reader *rd)
{
    return rd->size;
}

uint32_t
agent_reader_window_size(const struct agent_reader *rd)
{
    return rd->ws;
}

const char *
agent_reader_backup_id(const struct agent_reader *rd)
{
    return rd->b.id;
}

void
agent_reader_get_stats(struct agent_reader *rd, struct agent_reader_stats *s)
{
    pthread_mutex_lock(&rd->lock);
    *s = rd->st;
    pthread_mutex_unlock(&rd->lock);
}

/* ---- the cache (rd->lock held) ------------------------------------------- */

struct rd_slot *
rd_cache_find(struct agent_reader *rd, uint64_t w)
{
    for (unsigned i = 0; i < rd->nslots; i++) {
        struct rd_slot *s = &rd->slots[i];
        if (s->used && !s->filling && s->index == w)
            return s;
    }
    return NULL;
}

/* The least recently used slot that is not being filled; with behind,
 * only an empty one or one holding a window before window behind - 1 (a
 * read ahead must not evict what the reader has not reached). */
static struct rd_slot *
cache_victim(struct agent_reader *rd, uint64_t behind)
{
    struct rd_slot *v = NULL;

    for (unsigned i = 0; i < rd->nslots; i++) {
        struct rd_slot *s = &rd->slots[i];
        if (s->filling || (behind && s->used && s->index + 1 >= behind))
            continue;
        if (!v || s->used < v->used)
            v = s;
    }
    return v;
}

/* ---- fetching (rd->fetch held) --------------------------------------------- */

/* A session that failed is replaced by a new one before the next fetch. */
static int
session_ensure(struct agent_reader *rd)
{
    struct agent_repo *r;

    if (rd->b.r)
        return 0;
    r = agent_repo_connect(rd->url);
    if (!r || agent_repo_open(r, PROTO_OPEN_READ) < 0) {
        agent_repo_close(r);
        return -1;
    }
    /* The same repository, or nothing: a path or host that names another
     * one now would serve its chunks under our ids. */
    if (strcmp(r->repo_id, rd->repo_id) != 0 || r->encrypted != rd->encrypted) {
        lb_fail(EIO,
                "%s is no longer the repository this backup was opened from "
                "(its id was %s, now %s)",
                rd->url, rd->repo_id, r->repo_id);
        agent_repo_close(r);
        return -1;
    }
    r->keys = rd->keys; /* the same key: unlocked once */
    rd->keys = NULL;
    lb_debug("reader of %s/%s: connected again", rd->b.id, rd->disk);
    rd->b.r = r;
    pthread_mutex_lock(&rd->lock);
    rd->st.reconnects++;
    pthread_mutex_unlock(&rd->lock);
    return 0;
}

static void
session_lost(struct agent_reader *rd)
{
    struct lb_error_saved e;

    lb_error_save(&e);
    if (rd->b.r && rd->b.r->keys && !rd->keys) {
        rd->keys = rd->b.r->keys;
        rd->b.r->keys = NULL;
    }
    agent_repo_close(rd->b.r);
    rd->b.r = NULL;
    lb_error_restore(&e);
}

static void
map_set(uint8_t *map, uint32_t first, uint32_t end, bool data)
{
    for (uint32_t b = first; b < end; b++) {
        if (data)
            map[b / 8] |= (uint8_t)(1u << (b % 8));
        else
            map[b / 8] &= (uint8_t) ~(1u << (b % 8));
    }
}

/* A DELTA's runs over the block map: a data run makes the blocks it
 * touches data; a zero run makes the blocks it covers whole zero. */
static void
map_apply_delta(uint8_t *map, const uint8_t *plain)
{
    uint32_t n = proto_delta_nruns(plain);

    for (uint32_t i = 0; i < n; i++) {
        struct proto_run r = proto_delta_run(plain, i);
        if (r.kind == PROTO_RUN_DATA)
            map_set(
                map, r.off / RD_BLOCK,
                (uint32_t)(((uint64_t)r.off + r.len + RD_BLOCK - 1) / RD_BLOCK),
                true);
        else
            map_set(map, (r.off + RD_BLOCK - 1) / RD_BLOCK,
                    (r.off + r.len) / RD_BLOCK, false);
    }
}

/* Chunk k of window w's stack, as received (its stored bytes, ours to
 * consume: opened in place), into the slot. */
static int
apply_chunk(struct agent_reader *rd, struct rd_slot *s, uint64_t w, unsigned k,
            const struct proto_chunk *c, uint8_t *stored, struct proto_zctx *z,
            uint8_t *plain)
{
    uint32_t wl = (uint32_t)LB_MIN((uint64_t)rd->ws, rd->size - w * rd->ws);
    uint32_t nblocks = (wl + RD_BLOCK - 1) / RD_BLOCK;
    uint64_t at = w * rd->ws;
    char hex[65];
    int bad;

    proto_digest_hex(&c->d, hex);
    if (c->type == PROTO_CHUNK_RAW) {
        if (k != 0 || c->raw_len != wl)
            return lb_fail(EIO,
                           "backup %s, disk %s: RAW chunk %s of the wrong "
                           "size or place at offset %llu",
                           rd->b.id, rd->disk, hex, (unsigned long long)at);
        if (agent_chunk_open_own(rd->b.r, z, c, stored, s->win) < 0)
            goto damaged;
        map_set(s->map, 0, nblocks, true);
        return 0;
    }
    if (k == 0) {
        memset(s->win, 0, wl);
        map_set(s->map, 0, nblocks, false);
    }
    if (c->raw_len > PROTO_MAX_CHUNK_RAW)
        return lb_fail(EIO, "backup %s, disk %s: chunk %s is too large",
                       rd->b.id, rd->disk, hex);
    if (agent_chunk_open_own(rd->b.r, z, c, stored, plain) < 0)
        goto damaged;
    bad = proto_delta_apply(s->win, wl, plain, c->raw_len);
    if (bad != PROTO_OK)
        return lb_fail(EIO,
                       "backup %s, disk %s: bad DELTA chunk %s at "
                       "offset %llu: %s",
                       rd->b.id, rd->disk, hex, (unsigned long long)at,
                       proto_status_str(bad));
    map_apply_delta(s->map, plain);
    return 0;
damaged:
    return lb_fail(EIO,
                   "backup %s, disk %s: chunk %s (offset %llu) is damaged: "
                   "its data does not match its id",
                   rd->b.id, rd->disk, hex, (unsigned long long)at);
}

struct rd_batch {
    unsigned n;
    uint64_t w[RD_MAX_BATCH];
    struct rd_slot *s[RD_MAX_BATCH];
    struct proto_mf_window st[RD_MAX_BATCH];
    struct proto_chunk c[RD_MAX_BATCH][PROTO_MAX_STACK];
    size_t at[RD_MAX_BATCH][PROTO_MAX_STACK]; /* in rd->raw[i] */
    int rc[RD_MAX_BATCH];
    uint64_t bytes_in;
    uint64_t behind;           /* cache_victim's: 0 for a fetch on demand */
    struct lb_error_saved err; /* the first window's error */
    bool lost;     /* the session failed: dropped once the batch is decoded */
    bool cut;      /* ... without the server saying why */
    unsigned next; /* the next window to decode (atomic) */
    struct agent_reader *rd;
};

/* The batch's session failed: why (the error slot), and whether it was
 * cut (no ERROR from the server), in which case another may do better. */
static void
batch_lost(struct agent_reader *rd, struct rd_batch *bt)
{
    agent_repo_explain(rd->b.r);
    bt->cut = agent_repo_cut(rd->b.r);
    if (bt->cut)
        lb_error_hint("the export connects to the repository again (at once "
                      "for the read it cut, once, and for every later "
                      "read); check the repository server");
    lb_error_prefix("backup %s, disk %s", rd->b.id, rd->disk);
    lb_error_set_errno(EIO);
    bt->lost = true;
}

/* Receive the chunks of the batch's windows, in request order, as stored
 * (copied out of the frames). A broken session fails this and every later
 * window; the ones before are decoded with it (its keys) all the same. */
static void
batch_receive(struct agent_reader *rd, struct rd_batch *bt)
{
    for (unsigned i = 0; i < bt->n; i++) {
        const struct proto_mf_window *st = &bt->st[i];
        lb_buf_reset(&rd->raw[i]);
        for (unsigned k = 0; k < st->depth; k++) {
            const uint8_t *p;
            uint32_t len;
            struct proto_chunk *c = &bt->c[i][k];
            if (bt->lost || proto_conn_expect(rd->b.r->conn, PROTO_T_CHUNK_DATA,
                                              &p, &len, NULL) < 0) {
                if (!bt->lost) {
                    batch_lost(rd, bt);
                    /* the window read for is there: only said here */
                    if (i > 0)
                        lb_warn("%s; the next read connects again",
                                lb_error_msg());
                }
                bt->rc[i] = -1;
                break;
            }
            bt->bytes_in += len;
            if (proto_dec_chunk(p, len, c) != PROTO_OK ||
                memcmp(c->d.b, st->refs[k].d.b, PROTO_DIGEST_LEN) != 0 ||
                c->type != st->refs[k].type) {
                lb_fail(EIO, "protocol error: CHUNK_DATA does not answer "
                             "GET_CHUNKS");
                bt->lost = true;
                bt->rc[i] = -1;
                break;
            }
            bt->at[i][k] = rd->raw[i].len;
            lb_buf_append(&rd->raw[i], c->data, c->data_len);
        }
        if (i == 0 && bt->rc[0] < 0)
            lb_error_save(&bt->err);
    }
}

/* Decode the received windows of the batch, worker by worker (worker k
 * has its own zstd context and DELTA buffer): each takes the next window
 * not yet taken. */
static void *
batch_decode(void *arg)
{
    struct rd_batch *bt = arg;
    struct agent_reader *rd = bt->rd;
    unsigned me = __atomic_fetch_add(&rd->nworkers_busy, 1, __ATOMIC_RELAXED);
    unsigned i;

    while ((i = __atomic_fetch_add(&bt->next, 1, __ATOMIC_RELAXED)) < bt->n) {
        if (bt->rc[i] < 0)
            continue;
        for (unsigned k = 0; k < bt->st[i].depth && bt->rc[i] == 0; k++) {
            struct proto_chunk c = bt->c[i][k];
            c.data = rd->raw[i].data + bt->at[i][k];
            bt->rc[i] = apply_chunk(rd, bt->s[i], bt->w[i], k, &c,
                                    rd->raw[i].data + bt->at[i][k], rd->wz[me],
                                    rd->wplain[me]);
        }
        if (i == 0 && bt->rc[0] < 0)
            lb_error_save(&bt->err);
    }
    return NULL;
}

/* The windows of a batch decoded by up to rd->nworkers threads. */
static void
batch_build(struct agent_reader *rd, struct rd_batch *bt)
{
    pthread_t th[RD_MAX_WORKERS];
    unsigned n = LB_MIN(rd->nworkers, bt->n), started = 0;

    bt->rd = rd;
    bt->next = 0;
    rd->nworkers_busy = 0;
    for (unsigned k = 1; k < n; k++)
        if (pthread_create(&th[started], NULL, batch_decode, bt) == 0)
            started++;
    batch_decode(bt);
    for (unsigned k = 0; k < started; k++)
        pthread_join(th[k], NULL);
}

/* Add window w to the batch (a slot reserved for it) unless it is cached,
 * empty or already there. rd->lock held. */
static void
batch_add(struct agent_reader *rd, struct rd_batch *bt, uint64_t w)
{
    struct rd_slot *s;

    if (bt->n == RD_MAX_BATCH || w >= rd->nwindows || depth_of(rd, w) == 0 ||
        rd_cache_find(rd, w))
        return;
    for (unsigned i = 0; i < bt->n; i++)
        if (bt->w[i] == w)
            return;
    s = cache_victim(rd, bt->behind);
    if (!s)
        return;
    s->filling = true;
    s->used = 0;
    s->index = w; /* what it is being filled with (prefetch_maybe) */
    bt->w[bt->n] = w;
    bt->s[bt->n] = s;
    bt->rc[bt->n] = 0;
    bt->n++;
}

/* Ask for the batch's windows (their stacks known) and receive them, on
 * the session, or a new one if there is none. */
static void
batch_ask(struct agent_reader *rd, struct rd_batch *bt)
{
    if (session_ensure(rd) < 0) {
        lb_error_prefix("backup %s, disk %s: cannot reach the repository",
                        rd->b.id, rd->disk);
        lb_error_set_errno(EIO);
        goto failed;
    }
    for (unsigned i = 0; i < bt->n; i++) {
        struct proto_digest d[PROTO_MAX_STACK];
        for (unsigned k = 0; k < bt->st[i].depth; k++)
            d[k] = bt->st[i].refs[k].d;
        proto_enc_query(&rd->b.r->out, PROTO_T_GET_CHUNKS, d, bt->st[i].depth);
    }
    if (proto_conn_send_buf(rd->b.r->conn, &rd->b.r->out) < 0) {
        batch_lost(rd, bt);
        goto failed;
    }
    batch_receive(rd, bt);
    return;
failed:
    lb_error_save(&bt->err);
    for (unsigned i = 0; i < bt->n; i++)
        bt->rc[i] = -1;
}

/*
 * Fetch window w (and, when the reads look sequential, the windows after
 * it) into the cache. rd->fetch held, rd->lock not. 0 once w is cached
 * (or was cached meanwhile), -1 (EIO, error set) if w could not be.
 */
static int
fetch_batch(struct agent_reader *rd, uint64_t w, bool seq, bool ahead)
{
    struct rd_batch bt = {0};
    int rc;

    pthread_mutex_lock(&rd->lock);
    bt.behind = ahead ? LB_MAX(rd->last_read, (uint64_t)1) : 0;
    batch_add(rd, &bt, w);
    if (bt.n == 0) {
        pthread_mutex_unlock(&rd->lock);
        return 0;
    }
    for (uint64_t k = 1; seq && k <= rd->readahead; k++)
        batch_add(rd, &bt, w + k);
    pthread_mutex_unlock(&rd->lock);
    rd->last_miss = w + 1;

    for (unsigned i = 0; i < bt.n; i++)
        if (index_stack(rd, bt.w[i], &bt.st[i]) < 0) {
            bt.n = i; /* nothing of it is asked for */
            break;
        }
    if (bt.n == 0) {
        lb_error_save(&bt.err);
        bt.rc[0] = -1;
        bt.n = 1; /* w's slot is released below */
    } else {
        batch_ask(rd, &bt);
        /* A session cut under the read (its server gone, or stalled and
         * given up on: LIVEBACKUP_IO_TIMEOUT): once more on a new one,
         * so that a restarted server, or ssh to a host that came back,
         * costs the reader a wait and not an I/O error. */
        if (bt.rc[0] < 0 && bt.cut) {
            lb_warn("%s; reading again on a new session", lb_error_msg());
            session_lost(rd);
            memset(bt.rc, 0, sizeof bt.rc);
            bt.lost = bt.cut = false;
            batch_ask(rd, &bt);
        }
        batch_build(rd, &bt);
        if (bt.lost)
            session_lost(rd);
    }
    pthread_mutex_lock(&rd->lock);
    for (unsigned i = 0; i < bt.n; i++) {
        bt.s[i]->filling = false;
        bt.s[i]->used = bt.rc[i] == 0 ? ++rd->clock : 0;
        rd->st.windows_fetched += bt.rc[i] == 0;
    }
    /* A batch cut short by a failed stack read: release the rest. */
    for (unsigned i = 0; i < rd->nslots; i++)
        if (rd->slots[i].filling) {
            rd->slots[i].filling = false;
            rd->slots[i].used = 0;
        }
    rd->st.bytes_in += bt.bytes_in;
    rc = bt.rc[0];
    pthread_mutex_unlock(&rd->lock);
    if (rc < 0)
        return lb_error_restore(&bt.err);
    return 0;
}

int
rd_fetch(struct agent_reader *rd, uint64_t w)
{
    return fetch_batch(rd, w, w == rd->last_miss, false);
}

/* ---- reading ahead ----------------------------------------------------------- */

static void *
prefetch_main(void *arg)
{
    struct agent_reader *rd = arg;

    pthread_mutex_lock(&rd->lock);
    while (!rd->pf_stop) {
        uint64_t w = rd->pf_want;

        if (w == UINT64_MAX) {
            pthread_cond_wait(&rd->pf_cond, &rd->lock);
            continue;
        }
        rd->pf_want = UINT64_MAX;
        pthread_mutex_unlock(&rd->lock);
        /* A failure is the next read's to see (it fetches again). */
        pthread_mutex_lock(&rd->fetch);
        (void)fetch_batch(rd, w, true, true);
        rd->last_miss = w + 1 + rd->readahead;
        pthread_mutex_unlock(&rd->fetch);
        pthread_mutex_lock(&rd->lock);
        rd->st.prefetches++;
    }
    pthread_mutex_unlock(&rd->lock);
    return NULL;
}

/*
 * A read hit window w (rd->lock held): when the reads go forward, ask the
 * thread to fetch the first window of the next readahead that is neither
 * cached nor being fetched, while half of them are still ahead of w.
 */
static void
prefetch_maybe(struct agent_reader *rd, uint64_t w)
{
    bool seq = w == rd->last_read || w + 1 == rd->last_read;

    rd->last_read = w + 1;
    if (!seq || rd->readahead < 2 || rd->pf_stop)
        return;
    for (uint64_t k = 1; k <= rd->readahead / 2 + 1; k++) {
        uint64_t n = w + k;

        if (n >= rd->nwindows)
            return;
        if (depth_of(rd, n) == 0 || rd_cache_find(rd, n))
            continue;
        for (unsigned i = 0; i < rd->nslots; i++)
            if (rd->slots[i].filling && rd->slots[i].index == n)
                return; /* being fetched */
        if (!rd->pf_started) {
            if (pthread_create(&rd->pf_thread, NULL, prefetch_main, rd) != 0)
                return;
            rd->pf_started = true;
        }
        rd->pf_want = n;
        pthread_cond_signal(&rd->pf_cond);
        return;
    }
}

/* ---- reads ------------------------------------------------------------------ */

/* Copy [from, from+len) of window w into buf if cached: true if it was.
 * rd->lock held. */
static bool
copy_cached(struct agent_reader *rd, uint64_t w, uint32_t from, size_t len,
            uint8_t *buf)
{
    struct rd_slot *s = rd_cache_find(rd, w);

    if (!s)
        return false;
    memcpy(buf, s->win + from, len);
    s->used = ++rd->clock;
    return true;
}

/* Read part of one window. */
static int
read_window(struct agent_reader *rd, uint64_t w, uint32_t from, size_t len,
            uint8_t *buf)
{
    int rc = 0;

    if (depth_of(rd, w) == 0) {
        memset(buf, 0, len);
        return 0;
    }
    pthread_mutex_lock(&rd->lock);
    if (copy_cached(rd, w, from, len, buf)) {
        rd->st.hits++;
        prefetch_maybe(rd, w);
        pthread_mutex_unlock(&rd->lock);
        return 0;
    }
    rd->st.misses++;
    pthread_mutex_unlock(&rd->lock);
    /* One fetch at a time (one session); the cache stays readable. Only
     * a fetch evicts, so what it cached is there until we let go. */
    pthread_mutex_lock(&rd->fetch);
    rc = rd_fetch(rd, w);
    if (rc == 0) {
        pthread_mutex_lock(&rd->lock);
        if (!copy_cached(rd, w, from, len, buf))
            rc = lb_fail(EIO, "window %llu of disk %s was not cached",
                         (unsigned long long)w, rd->disk);
        pthread_mutex_unlock(&rd->lock);
    }
    pthread_mutex_unlock(&rd->fetch);
    return rc;
}

int
agent_reader_pread(struct agent_reader *rd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;

    if (off > rd->size || len > rd->size - off)
        return lb_fail(EINVAL,
                       "read of %zu bytes at %llu past the end of "
                       "disk %s (%llu bytes)",
                       len, (unsigned long long)off, rd->disk,
                       (unsigned long long)rd->size);
    while (len > 0) {
        uint64_t w = off / rd->ws;
        uint32_t from = (uint32_t)(off % rd->ws);
        size_t n = LB_MIN(len, (size_t)(rd->ws - from));
        if (read_window(rd, w, from, n, p) < 0)
            return -1;
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}
