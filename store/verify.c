/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * verify: re-read and re-hash every chunk (in parallel, once each, however
 * many backups share it), then read every manifest whole (its trailing
 * digest) and check that each chunk it names is present, sound and what
 * restore needs there (its type; a RAW chunk filling its window, a DELTA
 * made for a window of that length), and what its metadata names (the
 * saved domain XML, a BLOB: what gc keeps). Damage
 * is reported per backup and disk, so the user knows which backups are
 * affected and which are still good. Without a key, an encrypted
 * repository's chunks are checked against the checksum of their stored
 * bytes and their manifests for a MAC; the client's `verify --key`
 * authenticates both (FORMAT.md, "verify").
 */
#include "store/backend.h"
#include "store/store_int.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

/* The chunk names of pass 1's listing waiting for a worker: a bounded
 * queue, so memory does not grow with the repository. */
#define VERIFY_QUEUE 256

struct vctx {
    struct store *st;
    const struct store_verify_cb *cb;
    pthread_mutex_t lock;
    pthread_cond_t q_work, q_room;
    char *q[VERIFY_QUEUE];
    size_t qhead, qlen;
    bool listed;                /* the listing is over */
    struct store_scratch *solo; /* no worker thread: the lister checks */
    uint64_t total, done, chunks;
    struct digest_set bad;
    /* DELTA chunks for a window shorter than the repository's (a disk's
     * last window), with that length: what a ref to a DELTA is checked
     * against besides its header */
    struct digest_set short_deltas;
    struct store_scratch *scratch; /* pass 2 */
    /* The first file this user may not read (EACCES): a permission
     * problem, which verify reports as such, never as damage. */
    char denied[600];
};

/* Is the error slot's failure a permission one? Then keep its message
 * (the first one; the caller holds v->lock or runs alone) and clear it. */
static bool
denied(struct vctx *v)
{
    int e = lb_error_errno();

    if (e != EACCES && e != EPERM)
        return false;
    if (!v->denied[0])
        snprintf(v->denied, sizeof v->denied, "%s", lb_error_msg());
    lb_error_clear();
    return true;
}

static void
report(struct vctx *v, const char *id, const char *name, const char *disk,
       const char *what)
{
    if (v->cb && v->cb->damage)
        v->cb->damage(v->cb->opaque, id, name, disk, what);
}

static int
chunk_sized(void *opaque, const char *name)
{
    struct vctx *v = opaque;
    uint64_t size = 0;

    if (v->st->be->ops->stat(v->st->be, name, &size, NULL) < 0)
        lb_error_clear(); /* gone, or unreadable: the check says so */
    store_tick(v->st);
    v->total += size;
    return 0;
}

/* Pass 0: the size of all chunks, for progress. */
static void
count_chunks(struct vctx *v)
{
    if (v->st->be->ops->list(v->st->be, "chunks/", chunk_sized, v) < 0)
        lb_error_clear(); /* pass 1 lists again, and reports it */
}

static void
report_locked(struct vctx *v, const char *what)
{
    pthread_mutex_lock(&v->lock);
    report(v, "", "", "", what);
    pthread_mutex_unlock(&v->lock);
}

/* Check one chunk: name is its hex digest, dir2 the fan-out it was found
 * in (NULL on an object backend: the name holds it), size its size. */
static void
verify_chunk(struct vctx *v, struct store_scratch *s, const char *obj)
{
    const char *name = obj + 10;
    struct proto_digest dg;
    struct store_chunk_hdr h = {0};
    uint64_t size = 0;
    int r;

    if (strlen(obj) != 10 + 64 || strncmp(obj + 7, name, 2) != 0 ||
        proto_digest_parse(name, &dg) < 0) {
        char what[512];
        snprintf(what, sizeof what, "stray file %.200s", obj);
        report_locked(v, what);
        return;
    }
    if (v->st->be->ops->stat(v->st->be, obj, &size, NULL) < 0)
        lb_error_clear(); /* the check says what is wrong */
    r = store_chunk_check(v->st, s, &dg, &h);
    if (r < 0 && lb_error_errno() == ENOENT) {
        /* Listed, then collected by a concurrent gc: not damage (pass 2
         * still reports it if a manifest needs it). */
        lb_error_clear();
        return;
    }
    pthread_mutex_lock(&v->lock);
    if (r < 0 && denied(v)) {
        pthread_mutex_unlock(&v->lock);
        return;
    }
    /* A plain DELTA's plaintext is in the scratch space. */
    if (r == 0 && h.type == PROTO_CHUNK_DELTA &&
        h.version == STORE_CHUNK_VERSION &&
        lb_load_be32(s->plain + 4) != v->st->window_size)
        store_dset_put(&v->short_deltas, &dg, PROTO_CHUNK_DELTA,
                       lb_load_be32(s->plain + 4));
    v->chunks++;
    v->done += size;
    if (r < 0) {
        char what[1200];
        snprintf(what, sizeof what, "chunk %s: %s", name, lb_error_msg());
        store_dset_add(&v->bad, &dg);
        report(v, "", "", "", what);
    }
    if (v->cb && v->cb->progress)
        v->cb->progress(v->cb->opaque, v->done, v->total);
    pthread_mutex_unlock(&v->lock);
}

/* Pass 1's listing: each chunk's name to the queue (or checked at once
 * without worker threads). */
static int
chunk_listed(void *opaque, const char *name)
{
    struct vctx *v = opaque;

    if (v->solo) {
        verify_chunk(v, v->solo, name);
        return 0;
    }
    pthread_mutex_lock(&v->lock);
    while (v->qlen == VERIFY_QUEUE)
        pthread_cond_wait(&v->q_room, &v->lock);
    v->q[(v->qhead + v->qlen++) % VERIFY_QUEUE] = lb_xstrdup(name);
    pthread_cond_signal(&v->q_work);
    pthread_mutex_unlock(&v->lock);
    return 0;
}

static void *
chunk_worker(void *arg)
{
    struct vctx *v = arg;
    struct store_scratch *s = store_scratch_new();

    for (;;) {
        char *name;
        pthread_mutex_lock(&v->lock);
        while (!v->listed && v->qlen == 0)
            pthread_cond_wait(&v->q_work, &v->lock);
        if (v->qlen == 0) {
            pthread_mutex_unlock(&v->lock);
            break;
        }
        name = v->q[v->qhead];
        v->qhead = (v->qhead + 1) % VERIFY_QUEUE;
        v->qlen--;
        pthread_cond_signal(&v->q_room);
        pthread_mutex_unlock(&v->lock);
        verify_chunk(v, s, name);
        free(name);
    }
    store_scratch_free(s);
    return NULL;
}

/* Pass 1: every chunk listed once and checked, by nth workers. */
static void
check_chunks(struct vctx *v, unsigned nth)
{
    pthread_t th[8];
    unsigned n = 0;

    while (n < LB_MIN(nth, LB_ARRAY_SIZE(th)) &&
           pthread_create(&th[n], NULL, chunk_worker, v) == 0)
        n++;
    if (n == 0)
        v->solo = store_scratch_new();
    if (v->st->be->ops->list(v->st->be, "chunks/", chunk_listed, v) < 0) {
        pthread_mutex_lock(&v->lock);
        if (!denied(v)) {
            char what[600];
            snprintf(what, sizeof what, "cannot list the chunks: %s",
                     lb_error_msg());
            lb_error_clear();
            report(v, "", "", "", what);
        }
        pthread_mutex_unlock(&v->lock);
    }
    pthread_mutex_lock(&v->lock);
    v->listed = true;
    pthread_cond_broadcast(&v->q_work);
    pthread_mutex_unlock(&v->lock);
    for (unsigned i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    store_scratch_free(v->solo);
    v->solo = NULL;
}

/* The window length a DELTA chunk was made for, from its plaintext. */
static int
delta_window_len(struct vctx *v, const struct proto_digest *d, uint32_t *wl)
{
    const uint8_t *plain;
    size_t len;
    uint8_t type;

    if (store_dset_get(&v->short_deltas, d, NULL, wl))
        return 0;
    /* Not a short one when pass 1 read it, or stored since. */
    if (store_chunk_load(v->st, v->scratch, d, &plain, &len, &type) < 0)
        return -1;
    *wl = lb_load_be32(plain + 4);
    return 0;
}

/*
 * Is the chunk d what a ref of type want in a window of wl bytes needs,
 * as restore (and gc) rely on? NULL if so, else what is wrong (in buf):
 * missing, damaged, of another type, a RAW chunk that does not fill its
 * window, a DELTA made for a window of another length.
 */
static const char *
ref_problem(struct vctx *v, uint8_t want, uint32_t wl,
            const struct proto_digest *d, bool *missing, char *buf, size_t len)
{
    static const char *const names[] = {"?", "RAW", "DELTA", "BLOB"};
    struct store_chunk_hdr h;
    char hex[65];
    uint32_t dwl;

    *missing = false;
    proto_digest_hex(d, hex);
    if (store_dset_has(&v->bad, d)) {
        snprintf(buf, len, "chunk %s damaged", hex);
        return buf;
    }
    if (store_chunk_head(v->st, d, false, &h) < 0) {
        if (denied(v))
            return NULL;
        *missing = lb_error_errno() == ENOENT;
        snprintf(buf, len, "chunk %s %s", hex,
                 *missing ? "missing" : "damaged");
        lb_error_clear();
        return buf;
    }
    if (h.type != want) {
        snprintf(buf, len, "chunk %s is a %s chunk, named as %s", hex,
                 names[h.type], names[want]);
        return buf;
    }
    if (want == PROTO_CHUNK_RAW && h.raw_len != wl) {
        snprintf(buf, len, "RAW chunk %s holds %u bytes for a window of %u",
                 hex, h.raw_len, wl);
        return buf;
    }
    /* A sealed DELTA's window length is in its plaintext: verify --key
     * checks it on the client. */
    if (want == PROTO_CHUNK_DELTA && h.comp != PROTO_COMP_SEALED) {
        dwl = v->st->window_size;
        if ((store_dset_has(&v->short_deltas, d) || wl != v->st->window_size) &&
            delta_window_len(v, d, &dwl) < 0) {
            snprintf(buf, len, "chunk %s damaged", hex);
            lb_error_clear();
            return buf;
        }
        if (dwl != wl) {
            snprintf(buf, len,
                     "DELTA chunk %s was made for a window of %u bytes, "
                     "named in one of %u",
                     hex, dwl, wl);
            return buf;
        }
    }
    return NULL;
}

/* What the meta block names outside the window stacks (FORMAT.md, "Meta
 * block"), as gc and restore read it: the saved domain XML, a BLOB; and in
 * an encrypted repository the manifest's MAC (whether it is right needs
 * the key: verify --key; that there is one does not). NULL if sound, else
 * what is wrong (in buf). */
static const char *
meta_problem(struct vctx *v, const struct proto_kv *meta, uint64_t *missing,
             char *buf, size_t len)
{
    const char *xml = proto_kv_get(meta, "domain_xml");
    struct proto_digest d;
    const char *why;
    char sub[256];
    bool miss;

    if (!store_meta_has_mac(v->st, meta))
        return "manifest: no MAC (every manifest of an encrypted "
               "repository has one)";
    if (!xml || !*xml)
        return NULL;
    /* The words gc uses when it stops on this backup. */
    if (strlen(xml) != (size_t)2 * PROTO_DIGEST_LEN ||
        proto_digest_parse(xml, &d) < 0)
        return "its domain_xml is not a digest";
    why = ref_problem(v, PROTO_CHUNK_BLOB, 0, &d, &miss, sub, sizeof sub);
    if (!why)
        return NULL;
    *missing += miss;
    snprintf(buf, len, "saved domain XML: %s", why);
    return buf;
}

/* Check one backup's manifest and the chunks it names. 1 if damaged. */
static int
verify_backup(struct vctx *v, const char *id, uint64_t *missing)
{
    CLEANUP_CLOSE int fd = -1;
    struct proto_mf_reader *r = NULL;
    struct proto_mf_disk d;
    struct proto_kv meta = {0};
    char name[256] = "", mwhy[400];
    const char *bad_meta;
    int damaged = 0, got;

    fd = store_manifest_open(v->st, id);
    if (fd < 0 && denied(v))
        return 0;
    if (fd < 0) {
        report(v, id, "", "", lb_error_msg());
        return 1;
    }
    /* The name, for the report, from the meta block (if it is sound). */
    if (store_manifest_read_meta(fd, &meta) == 0 && proto_kv_get(&meta, "name"))
        snprintf(name, sizeof name, "%s", proto_kv_get(&meta, "name"));
    proto_kv_free(&meta);
    r = store_manifest_reader(&fd);
    if (!r)
        goto bad_manifest;
    while ((got = proto_mf_next_disk(r, &d)) == 1) {
        uint64_t bad_windows = 0, first_bad = 0;
        char first_what[300] = "";

        for (uint64_t i = 0; i < d.nwindows; i++) {
            struct proto_mf_window w;
            uint64_t left = d.size - i * d.window_size;
            uint32_t wl = (uint32_t)LB_MIN(left, (uint64_t)d.window_size);
            if ((i & 4095) == 4095)
                store_tick(v->st);
            if (proto_mf_next_window(r, &w) < 0)
                goto bad_manifest;
            for (uint8_t k = 0; k < w.depth; k++) {
                char buf[300];
                bool miss;
                const char *why =
                    ref_problem(v, w.refs[k].type, wl, &w.refs[k].d, &miss, buf,
                                sizeof buf);
                if (!why)
                    continue;
                *missing += miss;
                if (bad_windows++ == 0) {
                    first_bad = i;
                    snprintf(first_what, sizeof first_what, "%s", why);
                }
                break;
            }
        }
        if (bad_windows) {
            char what[400];
            snprintf(what, sizeof what,
                     "%llu damaged window(s), first at byte offset %llu: %s",
                     (unsigned long long)bad_windows,
                     (unsigned long long)first_bad * d.window_size, first_what);
            report(v, id, name, d.name, what);
            damaged = 1;
        }
        if (proto_mf_read_disk_end(r, NULL) < 0)
            goto bad_manifest;
    }
    if (got < 0 || proto_mf_read_meta(r, &meta) < 0 || proto_mf_finish(r) < 0)
        goto bad_manifest;
    bad_meta = meta_problem(v, &meta, missing, mwhy, sizeof mwhy);
    if (bad_meta) {
        report(v, id, name, "", bad_meta);
        damaged = 1;
    }
    proto_kv_free(&meta);
    proto_mf_reader_free(r);
    return damaged;
bad_manifest:
    report(v, id, name, "", lb_error_msg());
    proto_kv_free(&meta);
    proto_mf_reader_free(r);
    return 1;
}

/* verify could not read everything: say what and why, not "damaged". */
static int
denied_fail(struct store *st, const char *first)
{
    lb_fail(EACCES,
            "verify cannot read all of repository %s as this user (first: "
            "%s): a permission problem, not damage",
            store_path(st), first);
    lb_error_hint("files another user (root) wrote into the repository are "
                  "private to it: give them back to the repository's owner "
                  "(chown -R OWNER %s) and verify again",
                  store_path(st));
    return -1;
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int
store_verify(struct store *st, const struct store_verify_cb *cb,
             struct proto_kv *stats)
{
    struct vctx v = {.st = st, .cb = cb};
    char **ids = NULL;
    size_t nids = 0;
    uint64_t damaged = 0, missing = 0;
    int rc;

    pthread_mutex_init(&v.lock, NULL);
    pthread_cond_init(&v.q_work, NULL);
    pthread_cond_init(&v.q_room, NULL);
    count_chunks(&v);
    check_chunks(&v, lb_ncpus());
    /* Every manifest there is (it walks every chunk anyway): one an index
     * would miss is verified too. */
    if (store_backup_ids_walk(st, &ids, &nids) < 0) {
        rc = -1;
        goto out;
    }
    if (nids)
        qsort(ids, nids, sizeof *ids, cmp_str);
    v.scratch = store_scratch_new();
    for (size_t i = 0; i < nids; i++) {
        damaged += (uint64_t)verify_backup(&v, ids[i], &missing);
        free(ids[i]);
    }
    free(ids);
    store_scratch_free(v.scratch);

    proto_kv_set_u64(stats, "backups", nids);
    proto_kv_set_u64(stats, "backups_damaged", damaged);
    proto_kv_set_u64(stats, "chunks", v.chunks);
    proto_kv_set_u64(stats, "chunks_damaged", v.bad.n);
    proto_kv_set_u64(stats, "chunk_refs_missing", missing);
    proto_kv_set_u64(stats, "bytes", v.done);
    rc = damaged || v.bad.n ? 1 : 0;
    if (v.denied[0])
        rc = denied_fail(st, v.denied);
out:
    store_dset_free(&v.bad);
    store_dset_free(&v.short_deltas);
    pthread_cond_destroy(&v.q_work);
    pthread_cond_destroy(&v.q_room);
    pthread_mutex_destroy(&v.lock);
    return rc;
}
