/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Copy: backups of one repository made backups of another (PROTOCOL.md,
 * "Copy"). A copy is a backup whose source is a repository: the source's
 * manifest is read (its trailer checked), IMPORT starts the backup in the
 * destination under the same id with the whole metadata, each disk goes
 * as a full disk whose window records are the manifest's stacks (or, when
 * the destination has the backup's parent, as an incremental disk on it:
 * records only for the windows whose stacks differ from the parent's, so
 * that only their chunks are asked about), the
 * chunks the destination lacks (QUERY) are fetched from the source as
 * stored (GET_STORED) and sent on unchanged and unread (the destination
 * checks them as uploads; proto_conn_forward), and
 * COMMIT, last, makes the backup exist. No key is needed: an encrypted
 * repository's chunks and sealed metadata move as they are, between
 * repositories of one key.
 */
#include "agent/client/client_int.h"

#include <errno.h>
#include <fnmatch.h>
#include <string.h>

/* A batch of window records and the distinct digests they name. */
#define BATCH_WINDOWS 1024
#define BATCH_DIGESTS (PROTO_MAX_QUERY - PROTO_MAX_STACK)
#define DSET_SLOTS 8192 /* > 2 × BATCH_DIGESTS, a power of two */

struct batch {
    struct proto_window_rec *recs;
    size_t nrecs;
    struct proto_digest *dg;
    uint32_t ndg;
    uint32_t *slot; /* DSET_SLOTS: index + 1 into dg, 0 free */
    uint64_t work;  /* bytes of disk the batch covers, for progress */
};

/* What the first pass over a manifest keeps: its disks and the metadata
 * IMPORT and DISK_BEGIN carry. */
struct mf_info {
    size_t ndisks;
    struct proto_mf_disk disks[PROTO_MF_MAX_DISKS];
    struct proto_kv dmeta[PROTO_MF_MAX_DISKS];
    struct proto_kv meta;
};

/* One backup being copied. */
struct copy_one {
    struct agent_repo *src, *dst;
    const char *id;
    struct batch b;
    struct agent_progress *prog;
    struct agent_copy_stats *st;
    /* The destination's manifest of the backup's parent (checked whole),
     * when the disks it holds go as incrementals on it; -1: none. */
    int pfd;
    struct mf_info *pm;
    /* set when the source lacks, or holds damaged, a chunk it needs */
    bool bad;
    char why[512];
};

static int
batch_add_digest(struct batch *b, const struct proto_digest *d)
{
    uint32_t h = lb_load_be32(d->b) & (DSET_SLOTS - 1);

    for (;; h = (h + 1) & (DSET_SLOTS - 1)) {
        uint32_t k = b->slot[h];
        if (k == 0)
            break;
        if (memcmp(b->dg[k - 1].b, d->b, PROTO_DIGEST_LEN) == 0)
            return 0;
    }
    b->dg[b->ndg] = *d;
    b->slot[h] = ++b->ndg;
    return 0;
}

static void
batch_reset(struct batch *b)
{
    b->nrecs = 0;
    b->ndg = 0;
    b->work = 0;
    memset(b->slot, 0, DSET_SLOTS * sizeof *b->slot);
}

/* A source that cannot give chunk *want: the backup fails, named (the
 * first such chunk). -1: not an answer for *want. */
static int
chunk_bad(struct copy_one *c, const struct proto_digest *want, const uint8_t *p,
          uint32_t len)
{
    struct proto_digest d;
    struct proto_str msg;
    uint8_t reason;
    char hex[65], text[400];

    if (proto_dec_chunk_bad(p, len, &d, &reason, &msg) != PROTO_OK ||
        memcmp(d.b, want->b, PROTO_DIGEST_LEN) != 0)
        return lb_fail(EPROTO, "protocol error: the source did not answer "
                               "GET_STORED");
    if (c->bad)
        return 0;
    c->bad = true;
    proto_digest_hex(&d, hex);
    proto_str_copy(text, sizeof text, msg);
    snprintf(c->why, sizeof c->why, "chunk %s is %s in the source (%s)", hex,
             reason == PROTO_CHUNK_MISSING ? "missing" : "damaged", text);
    return 0;
}

static int
src_failed(struct agent_repo *src)
{
    agent_repo_explain(src);
    lb_error_prefix("source %s", src->url);
    return -1;
}

/* Ask the source for n chunks (GET_STORED); the answers are read by
 * forward_chunks. */
static int
request_chunks(struct agent_repo *src, const struct proto_digest *d, uint32_t n)
{
    proto_enc_query(&src->out, PROTO_T_GET_STORED, d, n);
    if (proto_conn_send_buf(src->conn, &src->out) < 0)
        return src_failed(src);
    return 0;
}

/* Send the rest of a CHUNK_DATA on to the destination (NULL: drop it). */
static int
forward_data(struct copy_one *c, struct agent_repo *to)
{
    if (proto_conn_forward(c->src->conn, to ? to->conn : NULL) == 0)
        return 0;
    if (to && proto_conn_broken(to->conn) && !proto_conn_broken(c->src->conn)) {
        agent_repo_explain(to);
        return -1;
    }
    return src_failed(c->src);
}

/* Read the source's n answers to a GET_STORED of d and send each chunk on
 * to the destination as a CHUNK (no answer): the chunk's header is read
 * here, its data moves from one connection to the other unread (in the
 * kernel when they are pipes: the destination checks it). After a
 * CHUNK_BAD the rest is read and sent nowhere. */
static int
forward_chunks(struct copy_one *c, const struct proto_digest *d, uint32_t n)
{
    struct agent_repo *src = c->src, *dst = c->dst;

    for (uint32_t i = 0; i < n; i++) {
        struct proto_hdr h;
        const uint8_t *p;
        struct proto_chunk ch;

        if (proto_conn_recv_head(src->conn, PROTO_T_CHUNK_DATA, PROTO_CHUNK_HDR,
                                 &h, &p) < 0)
            return src_failed(src);
        if (h.type == PROTO_T_CHUNK_BAD) {
            if (chunk_bad(c, &d[i], p, h.len) < 0)
                return -1;
            continue;
        }
        if (h.type == PROTO_T_ERROR) {
            proto_conn_take_error(src->conn, p, h.len, NULL);
            lb_error_prefix("source %s", src->url);
            return -1;
        }
        if (h.type != PROTO_T_CHUNK_DATA ||
            proto_dec_chunk_head(p, LB_MIN(h.len, PROTO_CHUNK_HDR), h.len,
                                 &ch) != PROTO_OK ||
            memcmp(ch.d.b, d[i].b, PROTO_DIGEST_LEN) != 0)
            return lb_fail(EPROTO, "protocol error: the source did not "
                                   "answer GET_STORED");
        if (c->bad) {
            /* read to the end of the answer, sent nowhere */
            if (forward_data(c, NULL) < 0)
                return -1;
            continue;
        }
        proto_enc_chunk_head(&dst->out, PROTO_T_CHUNK, &ch);
        if (proto_conn_send_buf(dst->conn, &dst->out) < 0) {
            agent_repo_explain(dst);
            return -1;
        }
        if (forward_data(c, dst) < 0)
            return -1;
        c->st->chunks_sent++;
        c->st->bytes_sent += ch.data_len;
    }
    return 0;
}

/* Move n chunks from the source to the destination, up to
 * PROTO_MAX_GET_CHUNKS a request, the next request sent before the
 * answers to the current one are read: the source checks the next chunks
 * while these travel on. Stops asking after a CHUNK_BAD. */
static int
move_chunks(struct copy_one *c, const struct proto_digest *d, uint32_t n)
{
    const uint32_t step = PROTO_MAX_GET_CHUNKS;

    if (n == 0)
        return 0;
    if (request_chunks(c->src, d, LB_MIN(n, step)) < 0)
        return -1;
    for (uint32_t i = 0; i < n; i += step) {
        bool more = i + step < n && !c->bad;
        if (more && request_chunks(c->src, d + i + step,
                                   LB_MIN(n - i - step, step)) < 0)
            return -1;
        if (forward_chunks(c, d + i, LB_MIN(n - i, step)) < 0)
            return -1;
        if (!more)
            break;
    }
    return 0;
}

/* Send the batch: which chunks the destination lacks, those chunks,
 * then the window records that name them. */
static int
batch_flush(struct copy_one *c)
{
    struct batch *b = &c->b;
    uint8_t have[PROTO_MAX_QUERY / 8];
    struct proto_digest *miss;
    uint32_t nmiss = 0;

    if (b->nrecs == 0 || c->bad)
        goto done;
    if (b->ndg) {
        if (agent_repo_have(c->dst, b->dg, b->ndg, have) < 0)
            return -1;
        miss = lb_xmalloc((size_t)b->ndg * sizeof *miss);
        for (uint32_t i = 0; i < b->ndg; i++) {
            if (proto_bit(have, i))
                c->st->chunks_reused++;
            else
                miss[nmiss++] = b->dg[i];
        }
        if (move_chunks(c, miss, nmiss) < 0) {
            free(miss);
            return -1;
        }
        free(miss);
    }
    if (c->bad)
        goto done;
    {
        struct lb_buf *out = &c->dst->out;
        size_t f = proto_frame_begin(out, PROTO_T_WINDOWS);
        size_t at = proto_enc_windows_start(out);
        for (size_t i = 0; i < b->nrecs; i++)
            proto_enc_window_rec(out, &b->recs[i]);
        proto_enc_windows_finish(out, at, (uint32_t)b->nrecs);
        proto_frame_end(out, f);
        if (proto_conn_send_buf(c->dst->conn, out) < 0) {
            agent_repo_explain(c->dst);
            return -1;
        }
    }
done:
    if (c->prog)
        agent_progress_add(c->prog, b->work);
    batch_reset(b);
    return 0;
}

static bool
refs_equal(const struct proto_ref *a, const struct proto_ref *b, uint8_t n)
{
    for (uint8_t k = 0; k < n; k++)
        if (a[k].type != b[k].type ||
            memcmp(a[k].d.b, b[k].d.b, PROTO_DIGEST_LEN) != 0)
            return false;
    return true;
}

/* The record that makes window w out of pw, the parent's window (NULL: an
 * empty one, as a full disk's are): none (false) when they are the same,
 * a PUSH of w's refs above pw's when pw's stack is the bottom of w's (a
 * night's delta on the last), else a SET of w's whole stack. */
static bool
window_record(const struct proto_mf_window *w, const struct proto_mf_window *pw,
              struct proto_window_rec *rec)
{
    uint8_t base = pw ? pw->depth : 0;

    if (base > w->depth || (base && !refs_equal(w->refs, pw->refs, base)))
        base = 0; /* SET, of an empty stack too */
    else if (base == w->depth)
        return false;
    rec->op = base ? PROTO_WIN_PUSH : PROTO_WIN_SET;
    rec->n = (uint8_t)(w->depth - base);
    memcpy(rec->refs, w->refs + base, rec->n * sizeof *w->refs);
    return true;
}

/* Stream one disk's windows from the manifest to the destination: the
 * stacks that differ from the parent's (incr: in c->pfd, the disk's
 * windows there in step) or, for a full disk, from an empty window. */
static int
copy_disk_windows(struct copy_one *c, int *mfd, const char *disk, bool incr)
{
    struct proto_mf_disk d, pd;
    struct proto_mf_reader *rd = agent_manifest_seek_disk(mfd, disk, &d);
    struct proto_mf_reader *prd = NULL;
    int r = -1;

    if (!rd)
        return -1;
    if (incr && !(prd = agent_manifest_seek_disk(&c->pfd, disk, &pd)))
        goto out;
    for (uint64_t i = 0; i < d.nwindows && !c->bad; i++) {
        struct proto_mf_window w, pw;
        struct proto_window_rec *rec = &c->b.recs[c->b.nrecs];
        uint64_t left = d.size - i * d.window_size;
        if (proto_mf_next_window(rd, &w) < 0 ||
            (prd && proto_mf_next_window(prd, &pw) < 0))
            goto out;
        c->b.work += LB_MIN(left, d.window_size);
        if (!window_record(&w, prd ? &pw : NULL, rec))
            continue;
        rec->index = i;
        c->b.nrecs++;
        for (uint8_t k = 0; k < rec->n; k++)
            batch_add_digest(&c->b, &rec->refs[k].d);
        if ((c->b.nrecs == BATCH_WINDOWS || c->b.ndg >= BATCH_DIGESTS) &&
            batch_flush(c) < 0)
            goto out;
    }
    if (batch_flush(c) < 0)
        goto out;
    r = 0;
out:
    proto_mf_reader_free(prd);
    proto_mf_reader_free(rd);
    return r;
}

static void
mf_info_free(struct mf_info *m)
{
    for (size_t i = 0; i < m->ndisks; i++)
        proto_kv_free(&m->dmeta[i]);
    proto_kv_free(&m->meta);
}

/* Pass 1: the whole manifest, checked (its trailer), as stored: sealed
 * metadata and the MAC stay as they are (no key here). */
static int
mf_info_read(int mfd, const char *id, const char *name, uint32_t ws,
             struct mf_info *m)
{
    struct proto_mf_reader *rd;
    struct proto_mf_hdr h;
    const char *v;
    int got, r = -1;

    memset(m, 0, sizeof *m);
    if (lseek(mfd, 0, SEEK_SET) < 0)
        return lb_error(errno, "seek manifest");
    rd = proto_mf_reader_new(agent_manifest_fd_read, &mfd);
    if (!rd || proto_mf_read_header(rd, &h) < 0)
        goto out;
    while ((got = proto_mf_next_disk(rd, &m->disks[m->ndisks])) == 1) {
        if (m->disks[m->ndisks].window_size != ws) {
            lb_fail(EINVAL,
                    "disk %s has windows of %u bytes, the "
                    "destination %u",
                    m->disks[m->ndisks].name, m->disks[m->ndisks].window_size,
                    ws);
            goto out;
        }
        if (proto_mf_skip_disk(rd) < 0 ||
            proto_mf_read_disk_end(rd, &m->dmeta[m->ndisks]) < 0) {
            m->ndisks++;
            goto out;
        }
        m->ndisks++;
    }
    if (got < 0 || proto_mf_read_meta(rd, &m->meta) < 0 ||
        proto_mf_finish(rd) < 0)
        goto out;
    if (!(v = proto_kv_get(&m->meta, "id")) || strcmp(v, id) != 0 ||
        !(v = proto_kv_get(&m->meta, "name")) || strcmp(v, name) != 0) {
        lb_fail(EPROTO, "its manifest is not backup %s of %s", id, name);
        goto out;
    }
    r = 0;
out:
    proto_mf_reader_free(rd);
    if (r < 0)
        lb_error_prefix("manifest");
    return r;
}

/* The chunk a backup names outside its window stacks: the saved domain
 * XML (a BLOB), which the destination checks at the commit. */
static int
copy_meta_chunks(struct copy_one *c, const struct proto_kv *meta)
{
    const char *hex = proto_kv_get(meta, "domain_xml");
    struct proto_digest d;
    uint8_t have[1];

    if (!hex || !*hex || proto_digest_parse(hex, &d) < 0)
        return 0; /* none, or one the destination refuses, naming it */
    if (agent_repo_have(c->dst, &d, 1, have) < 0)
        return -1;
    if (proto_bit(have, 0)) {
        c->st->chunks_reused++;
        return 0;
    }
    return move_chunks(c, &d, 1);
}

/* Whether backup id is in l (and of set name, unless name is NULL). */
static bool
listed(const struct agent_list *l, const char *id, const char *name)
{
    for (size_t i = 0; i < l->n; i++) {
        const char *n = proto_kv_get(&l->b[i], "name");
        if (strcmp(proto_kv_get(&l->b[i], "id"), id) == 0)
            return !name || (n && strcmp(n, name) == 0);
    }
    return false;
}

/* Whether disk d goes as an incremental on the destination's parent: the
 * parent there has a disk of its name and size. */
static bool
parent_has(const struct copy_one *c, const struct proto_mf_disk *d)
{
    if (c->pfd < 0)
        return false;
    for (size_t i = 0; i < c->pm->ndisks; i++)
        if (strcmp(c->pm->disks[i].name, d->name) == 0)
            return c->pm->disks[i].size == d->size;
    return false;
}

/* When the destination has the backup's parent (in dst_list: committed
 * there, of the set) and takes incremental imports: its manifest into
 * c->pfd, checked whole. The destination's, not the source's: the records
 * are made against what the destination will merge them on. A parent
 * whose manifest cannot be read there (damaged): the disks go whole, as
 * without one. -1 only when the session with the destination broke. */
static int
parent_open(struct copy_one *c, const struct mf_info *m,
            const struct agent_list *dst_list)
{
    const char *parent = proto_kv_get(&m->meta, "parent");
    const char *name = proto_kv_get(&m->meta, "name");

    if (!parent || !*parent || !(c->dst->features & PROTO_FEATURE_COPY_INCR) ||
        !listed(dst_list, parent, name))
        return 0;
    c->pm = lb_xcalloc(1, sizeof *c->pm);
    c->pfd = agent_repo_get_manifest(c->dst, parent);
    if (c->pfd >= 0 &&
        mf_info_read(c->pfd, parent, name, c->dst->window_size, c->pm) == 0)
        return 0;
    if (proto_conn_broken(c->dst->conn)) {
        agent_repo_explain(c->dst);
        return -1;
    }
    lb_warn("backup %s of %s in %s: %s; its disks are copied whole", parent,
            name, c->dst->url, lb_error_msg());
    lb_error_clear();
    if (c->pfd >= 0)
        close(c->pfd);
    c->pfd = -1;
    return 0;
}

/* IMPORT, then each disk, then COMMIT; or ABORT when the source could
 * not give a chunk (c->bad: the session goes on). */
static int
copy_import(struct copy_one *c, int *mfd, struct mf_info *m)
{
    struct agent_repo *dst = c->dst;
    const uint8_t *p;
    uint32_t len;
    const char *parent = proto_kv_get(&m->meta, "parent");
    struct proto_kv empty = {0}, done;

    proto_enc_import(&dst->out, c->id, proto_kv_get(&m->meta, "name"),
                     parent ? parent : "", &m->meta);
    dst->writing = true;
    if (agent_repo_call(dst, PROTO_T_BACKUP_STARTED, &p, &len, NULL) < 0)
        return -1;
    for (size_t i = 0; i < m->ndisks && !c->bad; i++) {
        uint64_t nw;
        uint32_t ws;
        bool incr = parent_has(c, &m->disks[i]);
        proto_enc_disk_begin(&dst->out, m->disks[i].name, m->disks[i].size,
                             incr ? PROTO_DISK_INCR : PROTO_DISK_FULL,
                             &m->dmeta[i]);
        if (agent_repo_call(dst, PROTO_T_DISK_READY, &p, &len, NULL) < 0)
            return -1;
        if (proto_dec_disk_ready(p, len, &nw, &ws) != PROTO_OK ||
            nw != m->disks[i].nwindows)
            return lb_fail(EPROTO, "protocol error: bad DISK_READY");
        /* the parent's depths: the client takes its stacks from the
         * parent's manifest itself */
        if (incr && agent_repo_read_depths(dst, nw, NULL) < 0)
            return -1;
        if (copy_disk_windows(c, mfd, m->disks[i].name, incr) < 0)
            return -1;
        if (c->bad)
            break;
        proto_enc_kv(&dst->out, PROTO_T_DISK_END, &empty);
        if (proto_conn_send_buf(dst->conn, &dst->out) < 0) {
            agent_repo_explain(dst);
            return -1;
        }
    }
    if (!c->bad && copy_meta_chunks(c, &m->meta) < 0)
        return -1;
    if (c->bad) {
        proto_enc_empty(&dst->out, PROTO_T_ABORT);
        return agent_repo_call(dst, PROTO_T_OK, &p, &len, NULL);
    }
    proto_enc_kv(&dst->out, PROTO_T_COMMIT, &empty);
    if (agent_repo_call(dst, PROTO_T_COMMITTED, &p, &len, NULL) < 0)
        return -1;
    if (proto_dec_kv(p, len, &done) != PROTO_OK)
        return lb_fail(EPROTO, "protocol error: malformed COMMITTED");
    proto_kv_free(&done);
    return 0;
}

/*
 * Copy backup id of set name. 0 when copied, 1 when the source could not
 * give a chunk it needs (*why says which; nothing was committed, both
 * sessions go on), -1 on any other failure (the sessions are not used
 * again).
 */
static int
copy_backup(struct agent_repo *src, struct agent_repo *dst,
            const struct agent_list *dst_list, const char *id, const char *name,
            struct agent_progress *prog, struct agent_copy_stats *st, char *why,
            size_t why_len)
{
    struct copy_one c = {src, dst, id, {0}, prog, st, -1, NULL, false, ""};
    struct mf_info *m = lb_xcalloc(1, sizeof *m);
    int mfd, r = -1;

    c.b.recs = lb_xmalloc(BATCH_WINDOWS * sizeof *c.b.recs);
    c.b.dg = lb_xmalloc(PROTO_MAX_QUERY * sizeof *c.b.dg);
    c.b.slot = lb_xcalloc(DSET_SLOTS, sizeof *c.b.slot);
    mfd = agent_repo_get_manifest(src, id);
    if (mfd >= 0 && mf_info_read(mfd, id, name, dst->window_size, m) == 0 &&
        parent_open(&c, m, dst_list) == 0 && copy_import(&c, &mfd, m) == 0)
        r = c.bad ? 1 : 0;
    if (c.bad)
        snprintf(why, why_len, "%s", c.why);
    else if (r < 0)
        lb_error_prefix("backup %s of %s", id, name);
    if (mfd >= 0)
        close(mfd);
    if (c.pfd >= 0)
        close(c.pfd);
    if (c.pm) {
        mf_info_free(c.pm);
        free(c.pm);
    }
    mf_info_free(m);
    free(m);
    free(c.b.recs);
    free(c.b.dg);
    free(c.b.slot);
    return r;
}

/* ---- the two repositories ----------------------------------------------- */

/* KEY_GET's key id (encrypted repositories only). */
static int
key_id(struct agent_repo *r, uint8_t id[PROTO_KEY_ID_BYTES])
{
    struct proto_key_info k;
    const uint8_t *p;
    uint32_t len;

    proto_enc_empty(&r->out, PROTO_T_KEY_GET);
    if (agent_repo_call(r, PROTO_T_KEY_DATA, &p, &len, NULL) < 0)
        return -1;
    if (proto_dec_key_data(p, len, &k) != PROTO_OK)
        return lb_fail(EPROTO, "protocol error: malformed KEY_DATA");
    memcpy(id, k.key_id, PROTO_KEY_ID_BYTES);
    return 0;
}

int
agent_copy_check(struct agent_repo *src, struct agent_repo *dst)
{
    uint8_t a[PROTO_KEY_ID_BYTES], b[PROTO_KEY_ID_BYTES];

    if (!(src->features & PROTO_FEATURE_COPY) ||
        !(dst->features & PROTO_FEATURE_COPY)) {
        lb_fail(ENOTSUP, "the backupd serving %s is too old to copy backups",
                !(src->features & PROTO_FEATURE_COPY) ? src->url : dst->url);
        lb_error_hint("install the same livebackup version on both hosts");
        return -1;
    }
    if (src->window_size != dst->window_size) {
        lb_fail(EINVAL,
                "%s has windows of %u KiB and %s of %u KiB: backups copy only "
                "between repositories of one window size",
                src->url, src->window_size >> 10, dst->url,
                dst->window_size >> 10);
        lb_error_hint("create the destination with livebackup init "
                      "--window-size %uK",
                      src->window_size >> 10);
        return -1;
    }
    if (src->encrypted != dst->encrypted) {
        lb_fail(EINVAL,
                "%s is %s and %s is %s: backups copy only between "
                "repositories of one key, or between unencrypted ones",
                src->url, src->encrypted ? "encrypted" : "not encrypted",
                dst->url, dst->encrypted ? "encrypted" : "not encrypted");
        lb_error_hint("create the destination with the source's key: "
                      "livebackup key export on the source, then livebackup "
                      "init --key-from FILE");
        return -1;
    }
    if (!src->encrypted)
        return 0;
    if (key_id(src, a) < 0 || key_id(dst, b) < 0)
        return -1;
    if (memcmp(a, b, sizeof a) != 0) {
        char ha[33], hb[33];
        lb_hex_encode(ha, a, sizeof a);
        lb_hex_encode(hb, b, sizeof b);
        lb_fail(EINVAL,
                "%s (key %s) and %s (key %s) are encrypted with different "
                "keys: chunks copy only between repositories of one key",
                src->url, ha, dst->url, hb);
        lb_error_hint("create the destination with the source's key: "
                      "livebackup key export on the source, then livebackup "
                      "init --key-from FILE");
        return -1;
    }
    return 0;
}

/* ---- which backups ------------------------------------------------------ */

static bool
selected(const struct agent_copy_req *q, const struct proto_kv *b)
{
    const char *id = proto_kv_get(b, "id"), *name = proto_kv_get(b, "name");
    bool ok = q->nnames == 0;

    if (!name)
        return false;
    for (size_t i = 0; i < q->nnames && !ok; i++)
        ok = fnmatch(q->names[i], name, 0) == 0;
    if (ok && q->nids) {
        ok = false;
        for (size_t i = 0; i < q->nids && !ok; i++)
            ok = strcmp(q->ids[i], id) == 0;
    }
    return ok && (int64_t)proto_kv_get_u64(b, "time", 0) >= q->since;
}

/* The latest time of set name in l (INT64_MIN: none). */
static int64_t
newest_of(const struct agent_list *l, const char *name)
{
    int64_t t = INT64_MIN;

    for (size_t i = 0; i < l->n; i++) {
        const char *n = proto_kv_get(&l->b[i], "name");
        if (n && strcmp(n, name) == 0)
            t = LB_MAX(t, (int64_t)proto_kv_get_u64(&l->b[i], "time", 0));
    }
    return t;
}

/* Whether backup i of src comes before the destination's latest of its
 * set: a later backup of the set (in src's commit order) is in dst, or
 * dst's latest of the set started after it. */
static bool
behind(const struct agent_list *src, size_t i, const struct agent_list *dst)
{
    const char *name = proto_kv_get(&src->b[i], "name");

    for (size_t k = i + 1; k < src->n; k++)
        if (strcmp(proto_kv_get(&src->b[k], "name"), name) == 0 &&
            listed(dst, proto_kv_get(&src->b[k], "id"), NULL))
            return true;
    return (int64_t)proto_kv_get_u64(&src->b[i], "time", 0) <
           newest_of(dst, name);
}

/* --last K: only the K latest selected backups of each set. */
static bool
within_last(const struct agent_copy_req *q, const struct agent_list *l,
            const bool *sel, size_t i)
{
    const char *name = proto_kv_get(&l->b[i], "name");
    unsigned later = 0;

    if (!q->last)
        return true;
    for (size_t k = i + 1; k < l->n; k++)
        if (sel[k] && strcmp(proto_kv_get(&l->b[k], "name"), name) == 0)
            later++;
    return later < q->last;
}

/* Report one backup's outcome. */
static int
report(agent_entry_fn fn, void *opaque, const struct proto_kv *b,
       const char *action, const char *reason, const struct agent_copy_stats *d)
{
    struct proto_kv e = {0};
    int r;

    proto_kv_set(&e, "id", proto_kv_get(b, "id"));
    proto_kv_set(&e, "name", proto_kv_get(b, "name"));
    proto_kv_set_u64(&e, "time", proto_kv_get_u64(b, "time", 0));
    proto_kv_set(&e, "action", action);
    proto_kv_set(&e, "reason", reason);
    if (d) {
        proto_kv_set_u64(&e, "chunks_sent", d->chunks_sent);
        proto_kv_set_u64(&e, "chunks_reused", d->chunks_reused);
        proto_kv_set_u64(&e, "bytes_sent", d->bytes_sent);
    }
    r = fn(opaque, &e);
    proto_kv_free(&e);
    return r;
}

/* Copy one selected backup that dst lacks: 0 copied, 1 failed by the
 * source's damage (reported), -1 (failed too, and the copy cannot go on). */
static int
copy_listed(struct agent_repo *src, struct agent_repo *dst,
            const struct agent_list *dst_list, const struct proto_kv *b,
            agent_entry_fn fn, void *opaque, struct agent_copy_stats *st)
{
    struct agent_copy_stats one = {0};
    struct agent_progress prog;
    char why[512] = "", what[128];
    int r;

    snprintf(what, sizeof what, "copy %s", proto_kv_get(b, "id"));
    agent_progress_begin(&prog, what, proto_kv_get_u64(b, "size", 0));
    r = copy_backup(src, dst, dst_list, proto_kv_get(b, "id"),
                    proto_kv_get(b, "name"), &prog, &one, why, sizeof why);
    agent_progress_end(&prog);
    st->chunks_sent += one.chunks_sent;
    st->chunks_reused += one.chunks_reused;
    st->bytes_sent += one.bytes_sent;
    if (r < 0) {
        /* The copy stops at this backup (its session is not used again). */
        st->failed++;
        if (proto_conn_error_code(dst->conn) == PROTO_ERR_CORRUPT &&
            !*lb_error_hint_msg())
            lb_error_hint("the destination checked a chunk as it came and "
                          "refused it: the source sent other data than it "
                          "had checked (a broken-into or faulty source "
                          "host); nothing of it was stored. Check the "
                          "source (livebackup verify), then copy again");
        return -1;
    }
    if (r == 1) {
        st->failed++;
        return report(fn, opaque, b, "failed", why, &one) < 0 ? -1 : 1;
    }
    st->copied++;
    return report(fn, opaque, b, "copied", "", &one);
}

int
agent_copy(struct agent_repo *src, struct agent_repo *dst,
           const struct agent_copy_req *q, agent_entry_fn fn, void *opaque,
           struct agent_copy_stats *st)
{
    struct agent_list ls = {0}, ld = {0};
    bool *sel = NULL;
    uint64_t t0 = lb_now_ns();
    int r = -1;

    memset(st, 0, sizeof *st);
    if (agent_copy_check(src, dst) < 0 ||
        agent_repo_list_two(src, dst, &ls, &ld) < 0)
        goto out;
    sel = lb_xcalloc(ls.n + 1, sizeof *sel);
    for (size_t i = 0; i < ls.n; i++)
        sel[i] = selected(q, &ls.b[i]);
    for (size_t i = 0; i < ls.n; i++)
        sel[i] = sel[i] && within_last(q, &ls, sel, i);
    for (size_t i = 0; i < ls.n; i++) {
        const struct proto_kv *b = &ls.b[i];
        const char *name = proto_kv_get(b, "name");
        int rc;
        if (!sel[i])
            continue;
        st->selected++;
        if (listed(&ld, proto_kv_get(b, "id"), NULL)) {
            st->present++;
            if (report(fn, opaque, b, "present", "", NULL) < 0)
                goto out;
            continue;
        }
        /* A set's backups stay in commit order: a backup older than the
         * destination's latest of its set is not put behind it. */
        if (behind(&ls, i, &ld)) {
            st->skipped++;
            if (report(fn, opaque, b, "skipped",
                       "older than the destination's latest backup of its "
                       "set",
                       NULL) < 0)
                goto out;
            continue;
        }
        if (q->dry_run) {
            if (report(fn, opaque, b, "would-copy", "", NULL) < 0)
                goto out;
            continue;
        }
        rc = copy_listed(src, dst, &ld, b, fn, opaque, st);
        if (rc < 0)
            goto out;
        if (rc == 1)
            continue;
        /* Now the destination's latest of its set. */
        ld.b = lb_xrealloc(ld.b, (ld.n + 1) * sizeof *ld.b);
        memset(&ld.b[ld.n], 0, sizeof ld.b[ld.n]);
        proto_kv_set(&ld.b[ld.n], "id", proto_kv_get(b, "id"));
        proto_kv_set(&ld.b[ld.n], "name", name);
        proto_kv_set_u64(&ld.b[ld.n], "time", proto_kv_get_u64(b, "time", 0));
        ld.n++;
    }
    r = 0;
out:
    st->seconds = (double)(lb_now_ns() - t0) / 1e9;
    free(sel);
    agent_list_free(&ls);
    agent_list_free(&ld);
    return r;
}
