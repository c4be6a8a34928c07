/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Compacting windows at the stack limit: the blocks the deltas of a
 * parent's stack wrote above its bottom (see compact.h).
 */
#include "agent/client/compact.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

size_t
agent_compact_map_bytes(uint32_t wl)
{
    return ((size_t)wl + 4095) / 4096;
}

void
agent_compact_mark(uint8_t *bits, uint32_t wl, uint64_t off, uint64_t len)
{
    uint64_t end = off + len;

    if (end > wl)
        end = wl;
    for (uint64_t b = off / 512; b * 512 < end; b++)
        bits[b / 8] |= (uint8_t)(1u << (b % 8));
}

static bool
bit(const uint8_t *bits, uint64_t b)
{
    return (bits[b / 8] >> (b % 8)) & 1u;
}

uint64_t
agent_compact_bytes(const uint8_t *bits, uint32_t wl)
{
    uint64_t n = 0;

    for (uint64_t b = 0; b * 512 < wl; b++)
        if (bit(bits, b))
            n += LB_MIN(512u, wl - b * 512);
    return n;
}

uint32_t
agent_compact_runs(const uint8_t *bits, const uint8_t *data, uint32_t wl,
                   struct proto_run *runs)
{
    uint32_t n = 0;

    for (uint64_t b = 0; b * 512 < wl; b++) {
        uint32_t off = (uint32_t)(b * 512);
        uint32_t len = (uint32_t)LB_MIN(512u, wl - off);
        uint8_t kind = bit(data, b) ? PROTO_RUN_DATA : PROTO_RUN_ZERO;
        if (!bit(bits, b))
            continue;
        if (n && runs[n - 1].kind == kind &&
            runs[n - 1].off + runs[n - 1].len == off)
            runs[n - 1].len += len;
        else
            runs[n++] = (struct proto_run){off, len, kind};
    }
    return n;
}

struct entry {
    uint64_t index;
    uint32_t wl;
    bool usable;
    struct proto_mf_window w; /* the parent's stack */
};

struct agent_compact {
    struct agent_repo *r;
    char *parent, *disk;
    uint64_t size, nwin;
    uint32_t ws;
    size_t mbytes; /* of one window's bitmap */
    int mfd;       /* the parent's manifest, -1 until the first fetch */
    struct proto_mf_reader *rd;
    uint64_t next; /* the reader's next window */
    struct entry *e;
    uint8_t *bits; /* AGENT_COMPACT_BATCH bitmaps */
    unsigned n;
    bool fetched;
    /* fetching */
    uint8_t *plain;
    struct proto_zctx *z;
};

struct agent_compact *
agent_compact_new(struct agent_repo *r, const char *parent, const char *disk,
                  uint64_t size, uint32_t ws)
{
    struct agent_compact *c = lb_xcalloc(1, sizeof *c);

    c->r = r;
    c->parent = lb_xstrdup(parent);
    c->disk = lb_xstrdup(disk);
    c->size = size;
    c->ws = ws;
    c->nwin = proto_mf_windows_for(size, ws);
    c->mbytes = agent_compact_map_bytes(ws);
    c->mfd = -1;
    c->e = lb_xcalloc(AGENT_COMPACT_BATCH, sizeof *c->e);
    c->bits = lb_xcalloc(AGENT_COMPACT_BATCH, c->mbytes);
    return c;
}

void
agent_compact_free(struct agent_compact *c)
{
    if (!c)
        return;
    proto_mf_reader_free(c->rd);
    if (c->mfd >= 0)
        close(c->mfd);
    proto_zctx_free(c->z);
    free(c->plain);
    free(c->e);
    free(c->bits);
    free(c->parent);
    free(c->disk);
    free(c);
}

void
agent_compact_reset(struct agent_compact *c)
{
    c->n = 0;
    c->fetched = false;
    memset(c->bits, 0, AGENT_COMPACT_BATCH * c->mbytes);
}

bool
agent_compact_want(struct agent_compact *c, uint64_t i)
{
    if (c->n == AGENT_COMPACT_BATCH)
        return false;
    c->e[c->n].index = i;
    c->e[c->n].wl = (uint32_t)LB_MIN((uint64_t)c->ws, c->size - i * c->ws);
    c->n++;
    return true;
}

/* The parent's manifest, checked whole (its trailer; its MAC in an
 * encrypted repository), and a reader at this disk's windows. */
static int
open_parent(struct agent_compact *c)
{
    struct agent_restore_disk *d = NULL;
    struct proto_mf_disk pd;
    size_t n = 0;

    c->mfd = agent_repo_get_manifest(c->r, c->parent);
    if (c->mfd < 0 ||
        agent_manifest_read(c->r, c->mfd, c->parent, &d, &n, NULL) < 0)
        goto fail;
    free(d);
    c->rd = agent_manifest_seek_disk(&c->mfd, c->disk, &pd);
    if (!c->rd)
        goto fail;
    if (pd.size != c->size || pd.window_size != c->ws) {
        lb_fail(EINVAL, "disk %s differs from the parent's", c->disk);
        goto fail;
    }
    c->next = 0;
    c->plain = lb_xmalloc(PROTO_MAX_CHUNK_RAW);
    c->z = proto_zctx_new(1);
    return 0;
fail:
    lb_error_prefix("parent backup %s", c->parent);
    return -1;
}

/* The stacks of the batch's windows, from the manifest. A stack is
 * usable if it has a bottom and only deltas above it. */
static int
read_stacks(struct agent_compact *c)
{
    for (unsigned k = 0; k < c->n; k++) {
        struct entry *e = &c->e[k];
        if (e->index < c->next)
            return lb_error(0, "internal error: compaction out of order");
        while (c->next <= e->index) {
            if (proto_mf_next_window(c->rd, &e->w) < 0) {
                lb_error_prefix("parent backup %s", c->parent);
                return -1;
            }
            c->next++;
        }
        e->usable = e->w.depth >= 2;
        for (unsigned d = 1; d < e->w.depth; d++)
            if (e->w.refs[d].type != PROTO_CHUNK_DELTA)
                e->usable = false;
    }
    return 0;
}

/* A chunk asked for: which batch entry and which ref of its stack. */
struct want {
    unsigned entry, ref;
};

struct fetch {
    struct agent_compact *c;
    const struct want *w;
    uint32_t n, got;
};

/* One DELTA of a stack: opened, checked, its runs marked. */
static int
got_chunk(void *opaque, const struct proto_chunk *ch)
{
    struct fetch *f = opaque;
    struct agent_compact *c = f->c;
    const struct want *w;
    struct entry *e;
    uint8_t *bits;
    char hex[65];

    if (f->got == f->n)
        return lb_fail(EPROTO, "protocol error: more CHUNK_DATA than asked");
    w = &f->w[f->got++];
    e = &c->e[w->entry];
    bits = c->bits + (size_t)w->entry * c->mbytes;
    proto_digest_hex(&e->w.refs[w->ref].d, hex);
    if (ch->type != PROTO_CHUNK_DELTA ||
        memcmp(ch->d.b, e->w.refs[w->ref].d.b, PROTO_DIGEST_LEN) != 0 ||
        ch->raw_len > PROTO_MAX_CHUNK_RAW)
        return lb_fail(EPROTO, "protocol error: bad CHUNK_DATA for %s", hex);
    if (agent_chunk_open(c->r, c->z, ch, c->plain) < 0 ||
        proto_delta_apply(NULL, e->wl, c->plain, ch->raw_len) != PROTO_OK)
        return lb_fail(EIO,
                       "parent backup %s, disk %s: DELTA chunk %s is "
                       "damaged",
                       c->parent, c->disk, hex);
    for (uint32_t k = 0, nr = proto_delta_nruns(c->plain); k < nr; k++) {
        struct proto_run run = proto_delta_run(c->plain, k);
        agent_compact_mark(bits, e->wl, run.off, run.len);
    }
    return 0;
}

/* GET_CHUNKS for the n wanted chunks, in order. */
static int
fetch_some(struct agent_compact *c, const struct want *w,
           const struct proto_digest *d, uint32_t n)
{
    struct fetch f = {c, w, n, 0};

    if (agent_repo_get_chunks(c->r, d, n, got_chunk, &f) < 0)
        return -1;
    if (f.got != n)
        return lb_fail(EPROTO,
                       "protocol error: GET_CHUNKS answered %u of %u "
                       "chunks",
                       f.got, n);
    return 0;
}

int
agent_compact_fetch(struct agent_compact *c)
{
    struct want w[PROTO_MAX_GET_CHUNKS];
    struct proto_digest d[PROTO_MAX_GET_CHUNKS];
    uint32_t nw = 0;

    if (c->mfd < 0 && open_parent(c) < 0)
        return -1;
    if (read_stacks(c) < 0)
        return -1;
    for (unsigned k = 0; k < c->n; k++) {
        const struct entry *e = &c->e[k];
        for (unsigned r = 1; e->usable && r < e->w.depth; r++) {
            w[nw] = (struct want){k, r};
            d[nw++] = e->w.refs[r].d;
            if (nw == PROTO_MAX_GET_CHUNKS) {
                if (fetch_some(c, w, d, nw) < 0)
                    return -1;
                nw = 0;
            }
        }
    }
    if (nw && fetch_some(c, w, d, nw) < 0)
        return -1;
    c->fetched = true;
    return 0;
}

/* The batch entry of window i, or NULL. */
static const struct entry *
find(const struct agent_compact *c, uint64_t i, unsigned *k)
{
    unsigned lo = 0, hi = c->fetched ? c->n : 0;

    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        if (c->e[mid].index < i)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == (c->fetched ? c->n : 0) || c->e[lo].index != i)
        return NULL;
    *k = lo;
    return &c->e[lo];
}

bool
agent_compact_has(const struct agent_compact *c, uint64_t i)
{
    unsigned k;

    return find(c, i, &k) != NULL;
}

const uint8_t *
agent_compact_get(const struct agent_compact *c, uint64_t i,
                  struct proto_ref *bottom)
{
    unsigned k;
    const struct entry *e = find(c, i, &k);

    if (!e || !e->usable)
        return NULL;
    *bottom = e->w.refs[0];
    return c->bits + (size_t)k * c->mbytes;
}
