/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Backing up disks: plan each window from the image's block status and
 * feed the upload engine.
 *
 * Full disk: every window holding data is sent whole (a RAW chunk; holes
 * and zero ranges read as zeros, windows of nothing but zeros are not
 * sent at all: they are empty in the manifest).
 *
 * --since LAYER: only windows with clusters allocated above LAYER are
 * touched. Such a window gets a DELTA chunk (PUSHed onto the parent's
 * stack) of its changed runs, data or zero, so an incremental costs about
 * the changed 4 KiB clusters. It is sent whole instead (SET to a RAW
 * chunk) when most of it changed. A stack already max_stack deep is
 * compacted (send_compact: SET to its bottom and one DELTA of everything
 * changed since), which keeps restores bounded, or sent whole if half of
 * the window changed since its bottom.
 */
#include "agent/client/client_int.h"
#include "agent/client/compact.h"
#include "agent/client/seal.h"
#include "agent/client/upload.h"

#include <errno.h>
#include <string.h>

/* A window whose reads are in flight, submitted to the upload engine once
 * they are done (in the order the slots were taken): the reads of the
 * next windows go out meanwhile, so that an incremental's scattered 4 KiB
 * reads do not wait one window's round trip to qemu-nbd each. */
struct pend {
    struct agent_upload_slot *s;
    uint64_t ticket, index, work;
    struct proto_ref base;
    size_t len;
    uint32_t wl;
    uint8_t op, type;
    bool has_base;
    bool raw; /* a whole window: SET to empty if it reads as all zeros */
};
#define PEND_MAX 8

struct disk_job {
    struct agent_repo *r;
    struct agent_disk_spec *spec;
    struct agent_source *src;
    uint32_t ws;
    uint64_t size, nwin;
    uint8_t *depths; /* parent's stack depths (incremental only) */
    struct agent_extent *ext;
    size_t next, capext;
    struct proto_run *runs;
    struct agent_read *reads; /* one window's reads, issued together */
    struct agent_progress prog;
    struct agent_seal *seal; /* an encrypted repository's backup, or NULL */
    const char *parent;      /* the parent backup's id (incremental) */
    struct agent_upload *u;  /* the upload engine */
    struct agent_upload_stats st; /* of the engines drained so far */
    struct agent_compact *cmp;    /* the parent's stacks (compaction) */
    uint8_t *ubits, *dbits;       /* a window's compacted and data blocks */
    bool engine_failed; /* the upload engine stopped (its error wins) */
    struct pend pend[PEND_MAX];
    unsigned phead, pn, pmax;
    uint64_t bytes_read, changed_bytes, windows_full, windows_delta;
    uint64_t windows_compacted;
};

/* Wait for the oldest pending window's reads and submit it. */
static int
complete_oldest(struct disk_job *j)
{
    struct pend *p = &j->pend[j->phead];

    j->phead = (j->phead + 1) % PEND_MAX;
    j->pn--;
    if (agent_source_wait(j->src, p->ticket) < 0)
        return -1;
    if (p->raw && lb_is_zero(p->s->plain, p->wl)) {
        /* Nothing to store: the window becomes empty (for an incremental,
         * over whatever the parent had). */
        agent_upload_submit(j->u, p->s, p->index, PROTO_WIN_SET, 0, 0, p->work);
        return 0;
    }
    if (p->raw)
        j->windows_full++;
    agent_upload_submit_on(j->u, p->s, p->index, p->has_base ? &p->base : NULL,
                           p->op, p->type, p->len, p->work);
    return 0;
}

static int
drain_pending(struct disk_job *j)
{
    while (j->pn)
        if (complete_oldest(j) < 0)
            return -1;
    return 0;
}

static int
add_pending(struct disk_job *j, const struct pend *p)
{
    j->pend[(j->phead + j->pn) % PEND_MAX] = *p;
    j->pn++;
    return j->pn >= j->pmax ? complete_oldest(j) : 0;
}

/* A free slot of the engine (the oldest pending windows submitted first
 * while there is none), or NULL: a read failed, or the engine stopped
 * (engine_failed). */
static struct agent_upload_slot *
get_slot(struct disk_job *j)
{
    for (;;) {
        bool failed;
        struct agent_upload_slot *s = agent_upload_slot_nowait(j->u, &failed);

        if (s)
            return s;
        if (!failed && j->pn) {
            if (complete_oldest(j) < 0)
                return NULL;
            continue;
        }
        s = failed ? NULL : agent_upload_slot(j->u);
        if (!s)
            j->engine_failed = true;
        return s;
    }
}

/* Issue the reads of the whole window [off, off+wl) into buf (zeros
 * where the image reads as zero); *got: the bytes read, *ticket: what to
 * wait for. */
static int
read_window(struct disk_job *j, uint8_t *buf, uint64_t off, uint32_t wl,
            uint64_t *got, uint64_t *ticket)
{
    size_t nr = 0;
    uint64_t pos = off;

    /* Zeros only where nothing is read (a window of data is read whole:
     * clearing it first cost a memset of every window). The extents come
     * in order and do not overlap. */
    *got = 0;
    for (size_t i = 0; i < j->next; i++) {
        const struct agent_extent *e = &j->ext[i];
        if (e->zero)
            continue;
        if (e->off > pos)
            memset(buf + (pos - off), 0, e->off - pos);
        j->reads[nr++] =
            (struct agent_read){buf + (e->off - off), e->len, e->off};
        *got += e->len;
        pos = e->off + e->len;
    }
    if (off + wl > pos)
        memset(buf + (pos - off), 0, off + wl - pos);
    if (agent_source_issue(j->src, j->reads, nr, ticket) < 0)
        return -1;
    j->bytes_read += *got;
    return 0;
}

/* Send window i whole. work: what it counts for progress (0: the bytes
 * read). */
static int
send_raw(struct disk_job *j, uint64_t i, uint64_t off, uint32_t wl,
         uint64_t work)
{
    struct agent_upload_slot *s = get_slot(j);
    struct pend p = {.s = s,
                     .index = i,
                     .wl = wl,
                     .len = wl,
                     .op = PROTO_WIN_SET,
                     .type = PROTO_CHUNK_RAW,
                     .raw = true};
    uint64_t got;

    if (!s)
        return -1;
    if (read_window(j, s->plain, off, wl, &got, &p.ticket) < 0)
        return -1;
    p.work = work ? work : got;
    return add_pending(j, &p);
}

/* Send a DELTA of the nruns runs in j->runs of window i, their data read
 * from the image: PUSHed, or with base SET on top of it. */
static int
send_runs(struct disk_job *j, uint64_t i, uint64_t off, uint32_t wl,
          uint32_t nruns, const struct proto_ref *base, uint64_t work)
{
    struct agent_upload_slot *s;
    struct pend p = {.index = i,
                     .wl = wl,
                     .type = PROTO_CHUNK_DELTA,
                     .work = work,
                     .has_base = base != NULL};
    size_t data_len = 0, at;

    for (uint32_t k = 0; k < nruns; k++)
        if (j->runs[k].kind == PROTO_RUN_DATA)
            data_len += j->runs[k].len;
    s = get_slot(j);
    if (!s)
        return -1;
    /* Data goes straight to its place after the run table, every run of
     * the window read at once. */
    at = proto_delta_size(nruns, 0);
    {
        size_t nr = 0;
        for (uint32_t k = 0; k < nruns; k++) {
            if (j->runs[k].kind != PROTO_RUN_DATA)
                continue;
            j->reads[nr++] = (struct agent_read){s->plain + at, j->runs[k].len,
                                                 off + j->runs[k].off};
            at += j->runs[k].len;
            j->bytes_read += j->runs[k].len;
        }
        if (agent_source_issue(j->src, j->reads, nr, &p.ticket) < 0)
            return -1;
    }
    /* Encode the header and table in front of the data already read. */
    lb_store_be32(s->plain, PROTO_DELTA_MAGIC);
    lb_store_be32(s->plain + 4, wl);
    lb_store_be32(s->plain + 8, nruns);
    for (uint32_t k = 0; k < nruns; k++) {
        uint8_t *r = s->plain + PROTO_DELTA_HDR + (size_t)k * PROTO_DELTA_RUN;
        lb_store_be32(r, j->runs[k].off);
        lb_store_be32(r + 4, j->runs[k].len);
        r[8] = j->runs[k].kind;
    }
    p.s = s;
    if (base)
        p.base = *base;
    p.op = base ? PROTO_WIN_SET : PROTO_WIN_PUSH;
    p.len = proto_delta_size(nruns, data_len);
    return add_pending(j, &p);
}

/* Build and send a DELTA of the changed runs of window i. */
static int
send_delta(struct disk_job *j, uint64_t i, uint64_t off, uint32_t wl,
           uint64_t changed)
{
    uint32_t nruns = 0;

    for (size_t k = 0; k < j->next; k++) {
        const struct agent_extent *e = &j->ext[k];
        uint8_t kind = e->zero ? PROTO_RUN_ZERO : PROTO_RUN_DATA;
        uint32_t roff = (uint32_t)(e->off - off);
        if (!e->changed)
            continue;
        if (nruns && j->runs[nruns - 1].kind == kind &&
            j->runs[nruns - 1].off + j->runs[nruns - 1].len == roff) {
            j->runs[nruns - 1].len += (uint32_t)e->len;
        } else {
            if (nruns == wl / 512)
                return send_raw(j, i, off, wl, changed);
            j->runs[nruns++] = (struct proto_run){roff, (uint32_t)e->len, kind};
        }
    }
    j->windows_delta++;
    return send_runs(j, i, off, wl, nruns, NULL, changed);
}

/* Window i's changed and data bytes, from j->ext (agent_source_map). */
static void
window_counts(const struct disk_job *j, uint64_t *changed, uint64_t *data)
{
    *changed = *data = 0;
    for (size_t k = 0; k < j->next; k++) {
        if (j->ext[k].changed)
            *changed += j->ext[k].len;
        if (!j->ext[k].zero)
            *data += j->ext[k].len;
    }
}

/* Whether window i (changed bytes of wl) goes on top of its stack but the
 * stack is at the limit. */
static bool
at_limit(const struct disk_job *j, uint64_t i, uint32_t wl, uint64_t changed)
{
    return changed && changed * 2 <= wl &&
           j->depths[i] + 1u > agent_opts.max_stack;
}

static void
stats_add(struct agent_upload_stats *to, const struct agent_upload_stats *st)
{
    to->chunks_sent += st->chunks_sent;
    to->chunks_asked += st->chunks_asked;
    to->chunks_reused += st->chunks_reused;
    to->bytes_sent += st->bytes_sent;
    to->windows += st->windows;
}

/*
 * The parent's stacks for the windows at the limit from window i on (a
 * batch of them, within a bounded look-ahead): the upload engine is
 * drained first (GET_CHUNKS needs the session to itself), then started
 * again. j->ext is left mapping window i.
 */
static int
compact_batch(struct disk_job *j, uint64_t i)
{
    struct agent_upload_stats st;
    uint64_t end = LB_MIN(j->nwin, i + 16ull * AGENT_COMPACT_BATCH);
    struct agent_upload *u = j->u;
    int r;

    if (drain_pending(j) < 0)
        return -1;
    j->u = NULL;
    r = agent_upload_finish(u, &st);
    stats_add(&j->st, &st);
    if (r < 0) {
        j->engine_failed = true;
        return -1;
    }
    if (!j->cmp)
        j->cmp =
            agent_compact_new(j->r, j->parent, j->spec->name, j->size, j->ws);
    agent_compact_reset(j->cmp);
    for (uint64_t k = i; k < end; k++) {
        uint64_t off = k * j->ws, changed, data;
        uint32_t wl = (uint32_t)LB_MIN((uint64_t)j->ws, j->size - off);
        if (agent_source_map(j->src, off, wl, &j->ext, &j->next, &j->capext) <
            0)
            return -1;
        window_counts(j, &changed, &data);
        if (at_limit(j, k, wl, changed) && !agent_compact_want(j->cmp, k))
            break;
    }
    if (agent_compact_fetch(j->cmp) < 0)
        return -1;
    j->u = agent_upload_start(j->r, j->ws, &j->prog,
                              j->seal ? agent_seal_record : NULL, j->seal);
    return agent_source_map(
        j->src, i * j->ws,
        (uint32_t)LB_MIN((uint64_t)j->ws, j->size - i * j->ws), &j->ext,
        &j->next, &j->capext);
}

/*
 * Window i is at the stack limit: send one DELTA of every block changed
 * since its stack's bottom (the deltas above it, and tonight's extents)
 * SET on that bottom, or the window whole when that is half of it or more.
 */
static int
send_compact(struct disk_job *j, uint64_t i, uint64_t off, uint32_t wl,
             uint64_t changed)
{
    size_t mb = agent_compact_map_bytes(wl);
    struct proto_ref bottom;
    const uint8_t *above;
    uint32_t nruns;

    if (agent_opts.max_stack < 2 || !j->parent || !j->parent[0])
        return send_raw(j, i, off, wl, changed);
    if ((!j->cmp || !agent_compact_has(j->cmp, i)) && compact_batch(j, i) < 0)
        return -1;
    above = agent_compact_get(j->cmp, i, &bottom);
    if (!above)
        return send_raw(j, i, off, wl, changed);
    memcpy(j->ubits, above, mb);
    memset(j->dbits, 0, mb);
    for (size_t k = 0; k < j->next; k++) {
        const struct agent_extent *e = &j->ext[k];
        if (e->changed)
            agent_compact_mark(j->ubits, wl, e->off - off, e->len);
        if (!e->zero)
            agent_compact_mark(j->dbits, wl, e->off - off, e->len);
    }
    if (agent_compact_bytes(j->ubits, wl) * 2 >= wl)
        return send_raw(j, i, off, wl, changed);
    nruns = agent_compact_runs(j->ubits, j->dbits, wl, j->runs);
    if (nruns > wl / 512) /* a short last window, every block a run */
        return send_raw(j, i, off, wl, changed);
    j->windows_compacted++;
    return send_runs(j, i, off, wl, nruns, &bottom, changed);
}

/* Bytes the backup will read: data (full) or changed extents (since). */
static int
count_work(struct disk_job *j, bool incremental, uint64_t *total)
{
    uint64_t step = 64ull * j->ws;

    *total = 0;
    for (uint64_t off = 0; off < j->size; off += step) {
        if (agent_source_map(j->src, off, LB_MIN(step, j->size - off), &j->ext,
                             &j->next, &j->capext) < 0)
            return -1;
        for (size_t k = 0; k < j->next; k++)
            if (incremental ? j->ext[k].changed : !j->ext[k].zero)
                *total += j->ext[k].len;
    }
    return 0;
}

/* Drain the upload engine (if it runs) after the disk's windows (r: how
 * producing them went). */
static int
finish_disk(struct disk_job *j, int r)
{
    struct agent_upload_stats st = {0};
    struct agent_upload *u = j->u;

    if (r == 0)
        r = drain_pending(j);
    j->u = NULL;
    if (r < 0) {
        /* A local failure (reading the image) keeps its own message; if
         * the engine stopped, finish reports why. Reads still in flight
         * land in the engine's slots: done with before it frees them. */
        struct lb_error_saved e;
        lb_error_save(&e);
        (void)agent_source_wait(j->src, UINT64_MAX);
        j->pn = 0;
        if (!u || agent_upload_finish(u, NULL) == 0 || !j->engine_failed)
            lb_error_restore(&e);
        agent_progress_end(&j->prog);
        return -1;
    }
    r = agent_upload_finish(u, &st);
    agent_progress_end(&j->prog);
    if (r < 0)
        return -1;
    stats_add(&j->st, &st);
    lb_debug("disk %s: %llu windows sent (%llu full, %llu delta, %llu "
             "compacted), %llu chunks sent, %llu asked about, %llu reused",
             j->spec->name, (unsigned long long)j->st.windows,
             (unsigned long long)j->windows_full,
             (unsigned long long)j->windows_delta,
             (unsigned long long)j->windows_compacted,
             (unsigned long long)j->st.chunks_sent,
             (unsigned long long)j->st.chunks_asked,
             (unsigned long long)j->st.chunks_reused);
    return 0;
}

static int
backup_one_disk(struct disk_job *j, uint8_t mode)
{
    bool incr = mode == PROTO_DISK_INCR;
    uint64_t total;
    char what[96];
    int r = 0;

    if (count_work(j, incr, &total) < 0)
        return -1;
    snprintf(what, sizeof what, "%s %s", incr ? "incremental" : "full",
             j->spec->name);
    agent_progress_begin(&j->prog, what, total);
    j->u = agent_upload_start(j->r, j->ws, &j->prog,
                              j->seal ? agent_seal_record : NULL, j->seal);
    /* half the engine's slots may wait for their reads, the other half
     * are hashed, compressed and sent meanwhile */
    j->pmax =
        LB_MAX(1u, LB_MIN((unsigned)PEND_MAX, agent_upload_nslots(j->u) / 2));
    j->runs = lb_xmalloc((j->ws / 512 + 1) * sizeof *j->runs);
    j->reads = lb_xmalloc((j->ws / 512 + 1) * sizeof *j->reads);
    j->ubits = lb_xmalloc(agent_compact_map_bytes(j->ws));
    j->dbits = lb_xmalloc(agent_compact_map_bytes(j->ws));
    for (uint64_t i = 0; i < j->nwin && r == 0; i++) {
        uint64_t off = i * j->ws;
        uint32_t wl = (uint32_t)LB_MIN((uint64_t)j->ws, j->size - off);
        uint64_t changed, data;

        if (agent_source_map(j->src, off, wl, &j->ext, &j->next, &j->capext) <
            0) {
            r = -1;
            break;
        }
        window_counts(j, &changed, &data);
        if (!incr) {
            if (data) {
                lb_fault_point("agent:mid-transfer");
                r = send_raw(j, i, off, wl, 0);
            }
            continue;
        }
        if (changed == 0)
            continue;
        lb_fault_point("agent:mid-transfer");
        j->changed_bytes += changed;
        if (changed * 2 > wl)
            r = send_raw(j, i, off, wl, changed);
        else if (at_limit(j, i, wl, changed))
            r = send_compact(j, i, off, wl, changed);
        else
            r = send_delta(j, i, off, wl, changed);
    }
    free(j->runs);
    free(j->reads);
    free(j->ubits);
    free(j->dbits);
    j->runs = NULL;
    j->reads = NULL;
    j->ubits = j->dbits = NULL;
    return finish_disk(j, r);
}

/* Ask the server for DISK_READY (and the parent's depths). */
static int
disk_begin(struct disk_job *j, uint8_t mode, const struct proto_kv *meta)
{
    struct agent_repo *r = j->r;
    const uint8_t *p;
    uint32_t len, ws;
    uint64_t nwin;

    proto_enc_disk_begin(&r->out, j->spec->name, j->size, mode, meta);
    if (proto_conn_send_buf(r->conn, &r->out) < 0 ||
        proto_conn_expect(r->conn, PROTO_T_DISK_READY, &p, &len, NULL) < 0)
        return -1;
    if (proto_dec_disk_ready(p, len, &nwin, &ws) != PROTO_OK || ws != j->ws ||
        nwin != proto_mf_windows_for(j->size, ws))
        return lb_error(0, "protocol error: bad DISK_READY");
    j->nwin = nwin;
    if (mode != PROTO_DISK_INCR)
        return 0;
    j->depths = lb_xmalloc(nwin ? nwin : 1);
    return agent_repo_read_depths(r, nwin, j->depths);
}

static int
kv_expect_committed(struct agent_repo *r, struct proto_kv *out)
{
    const uint8_t *p;
    uint32_t len;

    if (proto_conn_expect(r->conn, PROTO_T_COMMITTED, &p, &len, NULL) < 0)
        return -1;
    if (proto_dec_kv(p, len, out) != PROTO_OK)
        return lb_error(0, "protocol error: malformed COMMITTED");
    return 0;
}

int
agent_put_blob(struct agent_repo *r, const void *data, size_t len,
               struct proto_digest *d)
{
    struct proto_zctx *z;
    CLEANUP_FREE uint8_t *comp = NULL;
    struct proto_chunk c = {.type = PROTO_CHUNK_BLOB};
    uint8_t have = 0;
    ssize_t clen;

    if (len == 0 || len > PROTO_MAX_BLOB)
        return lb_fail(EINVAL, "blob of %zu bytes (at most %u)", len,
                       PROTO_MAX_BLOB);
    if (agent_chunk_id(r, PROTO_CHUNK_BLOB, data, len, d) < 0)
        return -1;
    if (agent_repo_have(r, d, 1, &have) < 0)
        return -1;
    if (proto_bit(&have, 0))
        return 0;
    comp = lb_xmalloc(agent_chunk_seal_bound(r, len));
    c.d = *d;
    c.raw_len = (uint32_t)len;
    z = proto_zctx_new(agent_opts.zlevel);
    clen =
        agent_chunk_seal(r, z, &c, data, comp, agent_chunk_seal_bound(r, len));
    proto_zctx_free(z);
    if (clen < 0)
        return -1;
    proto_enc_chunk(&r->out, PROTO_T_CHUNK, &c);
    return proto_conn_send_buf(r->conn, &r->out);
}

struct blob {
    const struct agent_repo *r;
    char *data;
    size_t len;
};

/* The one chunk of agent_get_blob, decompressed and checked. */
static int
blob_chunk(void *opaque, const struct proto_chunk *c)
{
    struct blob *b = opaque;
    char **buf = &b->data;
    struct proto_zctx *z;
    int rc;

    if (c->type != PROTO_CHUNK_BLOB)
        return lb_fail(EPROTO, "protocol error: bad CHUNK_DATA for a blob");
    *buf = lb_xmalloc((size_t)c->raw_len + 1);
    z = proto_zctx_new(1);
    rc = agent_chunk_open(b->r, z, c, (uint8_t *)*buf);
    proto_zctx_free(z);
    if (rc < 0) {
        free(*buf);
        *buf = NULL;
        return lb_fail(EPROTO, "the saved domain XML is damaged in the "
                               "repository");
    }
    (*buf)[c->raw_len] = '\0';
    b->len = c->raw_len;
    return 0;
}

int
agent_get_blob(struct agent_repo *r, const struct proto_digest *d, char **data,
               size_t *len)
{
    struct blob b = {r, NULL, 0};

    if (agent_repo_get_chunks(r, d, 1, blob_chunk, &b) < 0)
        return -1;
    *data = b.data;
    *len = b.len;
    return 0;
}

/*
 * A failed backup: when the session is broken or backupd reported an
 * error, explain it; after a local failure (an image unreadable, a parent
 * that does not authenticate), tell backupd to drop the backup and keep
 * our error. Always -1.
 */
static int
backup_fail(struct agent_repo *r)
{
    struct lb_error_saved e;
    const uint8_t *q;
    uint32_t ql;

    if (!r->conn || proto_conn_broken(r->conn) ||
        proto_conn_got_error(r->conn)) {
        agent_repo_explain(r);
        return -1;
    }
    lb_error_save(&e);
    if (!proto_conn_eof(r->conn)) {
        proto_enc_empty(&r->out, PROTO_T_ABORT);
        if (proto_conn_send_buf(r->conn, &r->out) == 0)
            proto_conn_expect(r->conn, PROTO_T_OK, &q, &ql, NULL);
    }
    return lb_error_restore(&e);
}

/* One disk: DISK_BEGIN, its windows, DISK_END. In an encrypted
 * repository the keys that tell about the guest go sealed, with DISK_END.
 * *opened: the disk's source if it is open already (taken), or NULL. */
static int
send_disk(struct agent_repo *r, struct agent_seal *seal,
          struct agent_disk_spec *spec, struct agent_source **opened,
          struct agent_backup_result *res, uint64_t *t)
{
    struct disk_job j = {.r = r,
                         .spec = spec,
                         .ws = r->window_size,
                         .seal = seal,
                         .parent = res->parent};
    uint8_t mode = spec->since ? PROTO_DISK_INCR : PROTO_DISK_FULL;
    struct proto_kv dm = {0}, clear = {0}, held = {0}, end = {0};
    int rc = -1;

    j.src = *opened
                ? *opened
                : agent_source_open(spec->path, spec->since, spec->force_share);
    *opened = NULL;
    *t = agent_phase_add(&res->ph, AGENT_PH_OPEN, *t);
    if (!j.src)
        return -1;
    j.size = agent_source_size(j.src);
    for (size_t k = 0; k < spec->meta.n; k++)
        proto_kv_set(&dm, spec->meta.e[k].key, spec->meta.e[k].val);
    proto_kv_set(&dm, "source_format", agent_source_format(j.src));
    proto_kv_set(&dm, "source_chain", agent_source_chain(j.src));
    if (seal)
        agent_seal_split(&dm, &clear, &held);
    if (disk_begin(&j, mode, seal ? &clear : &dm) < 0)
        goto out;
    if (seal) {
        if (agent_seal_disk_begin(seal, spec->name, j.size, j.ws, j.nwin,
                                  mode == PROTO_DISK_INCR) < 0)
            goto out;
        agent_seal_sent(seal, spec->name, &clear);
    }
    rc = backup_one_disk(&j, mode);
    *t = agent_phase_add(&res->ph, AGENT_PH_DATA, *t);
    if (rc < 0)
        goto out;
    rc = -1;
    res->bytes_read += j.bytes_read;
    res->chunks_sent += j.st.chunks_sent;
    res->chunks_asked += j.st.chunks_asked;
    res->chunks_reused += j.st.chunks_reused;
    res->changed_bytes +=
        mode == PROTO_DISK_INCR ? j.changed_bytes : j.bytes_read;
    proto_kv_set_u64(&held, "bytes_read", j.bytes_read);
    proto_kv_set_u64(&held, "bytes_changed", j.changed_bytes);
    proto_kv_set_u64(&held, "windows_full", j.windows_full);
    proto_kv_set_u64(&held, "windows_delta", j.windows_delta);
    proto_kv_set_u64(&held, "windows_compacted", j.windows_compacted);
    if (!seal)
        rc = 0;
    else if (agent_seal_disk_end(seal) == 0)
        rc = agent_seal_meta(seal, spec->name, &held, &end);
    if (rc == 0) {
        proto_enc_kv(&r->out, PROTO_T_DISK_END, seal ? &end : &held);
        rc = proto_conn_send_buf(r->conn, &r->out);
    }
out:
    *t = agent_phase_add(&res->ph, AGENT_PH_DATA, *t);
    agent_source_close(j.src);
    *t = agent_phase_add(&res->ph, AGENT_PH_CLOSE, *t);
    free(j.depths);
    free(j.ext);
    agent_compact_free(j.cmp);
    if (rc < 0 && !proto_conn_broken(r->conn) && !proto_conn_got_error(r->conn))
        lb_error_prefix("disk %s", spec->name);
    proto_kv_free(&dm);
    proto_kv_free(&clear);
    proto_kv_free(&held);
    proto_kv_free(&end);
    return rc;
}

/* BACKUP_BEGIN: the backup's id and parent into res. */
static int
begin(struct agent_repo *r, const char *name, const char *parent,
      const struct proto_kv *meta, struct agent_backup_result *res)
{
    const uint8_t *p;
    uint32_t len;
    struct proto_str id, par;

    proto_enc_backup_begin(&r->out, name, parent, meta);
    r->writing = true;
    if (proto_conn_send_buf(r->conn, &r->out) < 0 ||
        proto_conn_expect(r->conn, PROTO_T_BACKUP_STARTED, &p, &len, NULL) < 0)
        return -1;
    if (proto_dec_backup_started(p, len, &id, &par) != PROTO_OK)
        return lb_error(0, "protocol error: bad BACKUP_STARTED");
    proto_str_copy(res->id, sizeof res->id, id);
    proto_str_copy(res->parent, sizeof res->parent, par);
    return 0;
}

/* COMMIT (in an encrypted repository with the sealed keys of the backup,
 * then the seal exchange), and COMMITTED into res->meta. */
static int
commit(struct agent_repo *r, struct agent_seal *seal, struct proto_kv *fin,
       struct agent_backup_result *res)
{
    struct proto_kv out = {0};
    int rc = 0;

    if (seal)
        rc = agent_seal_meta(seal, "", fin, &out);
    if (rc == 0) {
        proto_enc_kv(&r->out, PROTO_T_COMMIT, seal ? &out : fin);
        rc = proto_conn_send_buf(r->conn, &r->out);
    }
    proto_kv_free(&out);
    if (rc < 0 || (seal && agent_seal_commit(seal) < 0) ||
        kv_expect_committed(r, &res->meta) < 0)
        return -1;
    /* The caller sees its own keys, not the sealed value. */
    if (seal && proto_meta_unseal(r->keys->k.meta, res->id, "", &res->meta) < 0)
        return -1;
    return 0;
}

int
agent_backup_disks(struct agent_repo *r, const char *name, const char *parent,
                   struct agent_disk_spec *disks, size_t ndisks,
                   const struct proto_kv *meta, const char *xml,
                   struct agent_backup_result *res)
{
    uint64_t t0 = lb_now_ns(), sent0 = proto_conn_bytes_out(r->conn);
    uint64_t t = t0;
    struct proto_kv clear = {0}, fin = {0};
    struct agent_seal *seal = NULL;
    struct agent_source *first = NULL, *none = NULL;
    int rc = -1;

    memset(res, 0, sizeof *res);
    /* The key first: a wrong passphrase fails before anything is sent.
     * The KDF runs on its thread while the first disk's source opens
     * (qemu-img info, qemu-nbd, its handshake: none of it needs the key
     * or writes anything). */
    if (ndisks) {
        first = disks[0].src; /* ours now */
        disks[0].src = NULL;
    }
    if (agent_repo_unlock_start(r) < 0) {
        agent_source_close(first);
        return -1;
    }
    if (r->unlock && ndisks && !first) {
        first = agent_source_open(disks[0].path, disks[0].since,
                                  disks[0].force_share);
        t = agent_phase_add(&res->ph, AGENT_PH_OPEN, t);
        if (!first) {
            agent_repo_unlock_drop(r);
            return -1;
        }
    }
    if (agent_repo_unlock(r) < 0) {
        agent_source_close(first);
        return -1;
    }
    if (r->keys)
        agent_seal_split(meta, &clear, &fin);
    if (begin(r, name, parent, r->keys ? &clear : meta, res) < 0) {
        agent_repo_explain(r);
        goto out;
    }
    lb_fault_point("agent:backup-started");
    if (r->keys) {
        seal = agent_seal_start(r, res->id, name, res->parent);
        if (!seal)
            goto fail;
        agent_seal_sent(seal, "", &clear);
    }
    if (xml) {
        struct proto_digest xd;
        char hex[65];
        if (agent_put_blob(r, xml, strlen(xml), &xd) < 0)
            goto fail;
        proto_digest_hex(&xd, hex);
        proto_kv_set(&fin, "domain_xml", hex);
    }
    t = agent_phase_add(&res->ph, AGENT_PH_BEGIN, t);
    for (size_t i = 0; i < ndisks; i++)
        if (send_disk(r, seal, &disks[i], i == 0 ? &first : &none, res, &t) < 0)
            goto fail;
    lb_fault_point("agent:before-commit");
    proto_kv_set_u64(&fin, "agent_bytes_read", res->bytes_read);
    proto_kv_set_u64(&fin, "agent_seconds_x1000",
                     (lb_now_ns() - t0) / 1000000u);
    if (commit(r, seal, &fin, res) < 0)
        goto fail;
    agent_phase_add(&res->ph, AGENT_PH_COMMIT, t);
    lb_fault_point("agent:after-commit");
    res->bytes_sent = proto_conn_bytes_out(r->conn) - sent0;
    res->seconds = (double)(lb_now_ns() - t0) / 1e9;
    rc = 0;
    goto out;
fail:
    backup_fail(r);
out:
    agent_source_close(first);
    agent_seal_free(seal);
    proto_kv_free(&clear);
    proto_kv_free(&fin);
    return rc;
}

void
agent_chunk_counts_kv(const struct agent_backup_result *res,
                      struct proto_kv *kv)
{
    proto_kv_set_u64(kv, "chunks_asked", res->chunks_asked);
    proto_kv_set_u64(kv, "chunks_reused", res->chunks_reused);
    proto_kv_set_u64(kv, "chunks_sent", res->chunks_sent);
}

void
agent_backup_result_free(struct agent_backup_result *res)
{
    proto_kv_free(&res->meta);
}
