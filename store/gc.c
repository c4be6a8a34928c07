/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Garbage collection (FORMAT.md, "Garbage collection"): delete the chunk
 * files no backup references, while backups keep running.
 *
 * gc holds REPO/gc.lock (one gc at a time) and the repository lock shared,
 * like a writer, so delete and prune (exclusive) cannot run meanwhile. It
 * then
 *   1. takes the cutoff: the start of the oldest live writer session (or
 *      now), minus a margin -- before it reads any manifest, so a backup
 *      that commits later was live when the cutoff was taken;
 *   2. marks: reads every manifest whole and notes the 64-bit prefix of
 *      every digest it names (a collision only keeps garbage);
 *   3. sweeps: an unreferenced chunk older than the cutoff is removed by
 *      the backend's remove_if_old unless a backup touched it meanwhile
 *      (backupd touches every chunk it answers "have" for): the file
 *      backend moves it to gc's own trash session directory, reads its
 *      mtime again and puts it back if touched, else unlinks it; RADOS
 *      removes it only if its version did not move.
 * A backup that asks for a chunk gc has just moved aside is told it is
 * missing and uploads it again. The same walk removes the backup ids'
 * reservations left by writers that died (older than the cutoff). The
 * lock, the sessions, the listing and the removal are the backend's
 * (backend.h): this file has one path.
 */
#include "store/backend.h"
#include "store/store_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Margin below the cutoff for clock granularity and skew between this
 * host and the repository's file server. */
#define GC_MARGIN_SECS 120

/* ---- a set of 64-bit digest prefixes ----------------------------------- */

/* Open addressing; 0 marks an empty slot, so the value 0 is a flag. */
struct u64set {
    uint64_t *slot;
    size_t cap, n;
    bool has_zero;
};

static bool
u64set_has(const struct u64set *s, uint64_t v)
{
    if (v == 0)
        return s->has_zero;
    if (!s->cap)
        return false;
    /* Digest bits are uniform: the low bits index directly. */
    for (size_t i = (size_t)v & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (s->slot[i] == v)
            return true;
        if (s->slot[i] == 0)
            return false;
    }
}

static void u64set_add(struct u64set *s, uint64_t v);

static void
u64set_grow(struct u64set *s)
{
    struct u64set n = {NULL, s->cap ? s->cap * 2 : 4096, 0, s->has_zero};

    n.slot = lb_xcalloc(n.cap, sizeof *n.slot);
    for (size_t i = 0; i < s->cap; i++)
        if (s->slot[i])
            u64set_add(&n, s->slot[i]);
    free(s->slot);
    *s = n;
}

static void
u64set_add(struct u64set *s, uint64_t v)
{
    if (v == 0) {
        s->has_zero = true;
        return;
    }
    if ((s->n + 1) * 4 > s->cap * 3)
        u64set_grow(s);
    for (size_t i = (size_t)v & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (s->slot[i] == v)
            return;
        if (s->slot[i] == 0) {
            s->slot[i] = v;
            s->n++;
            return;
        }
    }
}

static void
u64set_add_digest(struct u64set *s, const struct proto_digest *d)
{
    u64set_add(s, lb_load_be64(d->b));
}

/* ---- gc.lock ------------------------------------------------------------ */

/* One gc at a time: the exclusive lock gc.lock (with the backend's
 * lease), whose holder says who it is. The handle, or -1. */
static int
gc_lock(const struct store *st)
{
    char host[128] = "?", when[32], line[384], holder[384];
    unsigned lease = store_be_lease(st->be);
    int h;

    gethostname(host, sizeof host - 1);
    lb_format_time(when, sizeof when, (int64_t)time(NULL));
    snprintf(line, sizeof line, "gc pid %ld on %s since %s", (long)getpid(),
             host, when);
    h = st->be->ops->lock(st->be, "gc.lock", true, lease, 0, line, holder,
                          sizeof holder);
    if (h < 0 && lb_error_errno() == EWOULDBLOCK) {
        lb_fail(EWOULDBLOCK, "another gc is running on %s (%s)", st->path,
                holder);
        if (lease)
            lb_error_hint("wait until it is done: one gc at a time (a gc "
                          "that died loses its lock after %u s)",
                          lease);
        else
            lb_error_hint("wait until it is done: one gc at a time");
        errno = EWOULDBLOCK;
    }
    return h;
}

/* ---- 2. mark ------------------------------------------------------------ */

static int
mark_manifest(struct store *st, const char *id, struct u64set *refs)
{
    CLEANUP_CLOSE int fd = store_manifest_open(st, id);
    struct proto_mf_reader *r = NULL;
    struct proto_mf_disk disk;
    struct proto_mf_window w;
    struct proto_kv meta = {0};
    const char *xml;
    int got, rc = -1;

    if (fd < 0)
        return lb_error_errno() == ENOENT ? 0 : -1;
    r = store_manifest_reader(&fd);
    if (!r)
        goto out;
    while ((got = proto_mf_next_disk(r, &disk)) == 1) {
        for (uint64_t i = 0; i < disk.nwindows; i++) {
            if ((i & 4095) == 4095)
                store_tick(st);
            if (proto_mf_next_window(r, &w) < 0)
                goto out;
            for (uint8_t k = 0; k < w.depth; k++)
                u64set_add_digest(refs, &w.refs[k].d);
        }
        if (proto_mf_read_disk_end(r, NULL) < 0)
            goto out;
    }
    if (got < 0 || proto_mf_read_meta(r, &meta) < 0 || proto_mf_finish(r) < 0)
        goto out;
    xml = proto_kv_get(&meta, "domain_xml");
    if (xml && *xml) {
        struct proto_digest dg;
        if (proto_digest_parse(xml, &dg) < 0) {
            lb_fail(EPROTO, "its domain_xml is not a digest");
            goto out;
        }
        u64set_add_digest(refs, &dg);
    }
    rc = 0;
out:
    proto_kv_free(&meta);
    proto_mf_reader_free(r);
    return rc;
}

static int
gc_mark(struct store *st, int64_t cutoff, struct u64set *refs,
        uint64_t *nbackups)
{
    char **ids = NULL;
    size_t nids = 0;
    int rc = 0;

    *nbackups = 0;
    /* Every manifest there is, whatever an index says. */
    if (store_backup_ids_walk(st, &ids, &nids) < 0)
        return -1;
    for (size_t i = 0; rc == 0 && i < nids; i++) {
        if (mark_manifest(st, ids[i], refs) < 0) {
            int err = lb_error_errno();
            lb_error_prefix("gc: backup %s cannot be read whole, so the "
                            "chunks it uses are unknown",
                            ids[i]);
            lb_error_hint("nothing was deleted; run livebackup verify, and "
                          "delete or repair that backup before gc");
            lb_error_set_errno(err ? err : EPROTO);
            errno = err ? err : EPROTO;
            rc = -1;
            break;
        }
        (*nbackups)++;
    }
    /* The listing's index (RADOS) made to agree with what is there. */
    if (rc == 0 && st->be->ops->index_sync &&
        st->be->ops->index_sync(st->be, ids, nids, cutoff) < 0) {
        lb_warn("gc: %s (listings may miss a backup or name a gone one)",
                lb_error_msg());
        lb_error_clear();
    }
    store_ids_free(ids, nids);
    return rc;
}

/* ---- 3. sweep ----------------------------------------------------------- */

struct sweep {
    struct store *st;
    const struct store_gc_opts *o;
    const struct u64set *refs;
    struct store_gc_stats *s;
    char cut_id[PROTO_ID_LEN + 1]; /* an id of the cutoff's second */
};

/* Decide on one chunk: referenced, recent, or removed unless a backup
 * touches it meanwhile (the backend's remove_if_old). */
static int
sweep_one(void *opaque, const char *obj)
{
    struct sweep *w = opaque;
    struct store_be *be = w->st->be;
    struct proto_digest dg;
    uint64_t size = 0;
    int64_t mtime;
    int r;

    if (strlen(obj) != 10 + 64 || strncmp(obj + 7, obj + 10, 2) != 0 ||
        proto_digest_parse(obj + 10, &dg) < 0)
        return 0; /* not a chunk: verify reports strays */
    store_tick(w->st);
    w->s->chunks++;
    if (u64set_has(w->refs, lb_load_be64(dg.b))) {
        w->s->referenced++;
        return 0;
    }
    if (w->o->dry_run) {
        if (be->ops->stat(be, obj, &size, &mtime) < 0) {
            if (lb_error_errno() != ENOENT && lb_error_errno() != EPROTO)
                return -1;
            lb_error_clear();
            return 0;
        }
        if (mtime >= w->s->cutoff) {
            w->s->recent++;
            return 0;
        }
        w->s->reclaimed++;
        w->s->bytes_reclaimed += size;
        return 0;
    }
    r = be->ops->remove_if_old(be, obj, w->s->cutoff, &size, w->o->after_trash,
                               w->o->opaque);
    if (r < 0)
        return -1;
    if (r == 1) {
        w->s->reclaimed++;
        w->s->bytes_reclaimed += size;
    } else if (r == 2) {
        w->s->restored++;
    } else {
        w->s->recent++;
    }
    return 0;
}

/* A backup id's reservation (ids/ID) older than the cutoff: its writer is
 * gone (a live session's backups started after the session did), and its
 * second has passed for good: removed. */
static int
sweep_id(void *opaque, const char *obj)
{
    struct sweep *w = opaque;
    const char *id = obj + STORE_BE_ID_PREFIX_LEN;

    if (!proto_backup_id_valid(id, strlen(id)))
        return 0;
    store_tick(w->st);
    /* YYYYMMDD-HHMMSS: in the order of time */
    if (strncmp(id, w->cut_id, 15) >= 0 || w->o->dry_run)
        return 0;
    if (w->st->be->ops->remove(w->st->be, obj) < 0) {
        if (lb_error_errno() != ENOENT)
            return -1;
        lb_error_clear();
    }
    return 0;
}

/* The sweep's one walk of the repository (a RADOS listing walks every
 * object, whatever its prefix): chunks, and reservations. */
static int
sweep_obj(void *opaque, const char *obj)
{
    if (strncmp(obj, "chunks/", 7) == 0)
        return sweep_one(opaque, obj);
    if (strncmp(obj, STORE_BE_ID_PREFIX, STORE_BE_ID_PREFIX_LEN) == 0)
        return sweep_id(opaque, obj);
    return 0;
}

/* ---- the whole ---------------------------------------------------------- */

int
store_gc(struct store *st, const struct store_gc_opts *o,
         struct store_gc_stats *stats)
{
    struct u64set refs = {0};
    struct sweep w = {.st = st, .o = o, .refs = &refs, .s = stats};
    int lock = -1, rc = -1;
    int64_t t0, oldest;

    memset(stats, 0, sizeof *stats);
    if (st->append_only) {
        lb_fail(EPERM, "this repository connection is append-only: gc is "
                       "refused through it");
        errno = EPERM;
        return -1;
    }
    if (st->mode == STORE_READ)
        return lb_fail(EPERM, "gc needs the repository opened for writing");
    lock = gc_lock(st);
    if (lock < 0)
        return -1;
    /* The real clock, as the file system's (never LIVEBACKUP_FAKE_TIME).
     * The cutoff is taken before the manifests are listed: a backup that
     * commits after the listing was live now, or starts after now. */
    t0 = (int64_t)time(NULL);
    if (st->be->ops->sessions_oldest(st->be, t0, &oldest, &stats->sessions) < 0)
        goto out;
    stats->cutoff = oldest - GC_MARGIN_SECS;
    if (gc_mark(st, stats->cutoff, &refs, &stats->backups) < 0)
        goto out;
    proto_backup_id_make(w.cut_id, stats->cutoff, 0);
    rc = st->be->ops->list(st->be, "", sweep_obj, &w);
    st->be->ops->sweep_end(st->be);
out:
    free(refs.slot);
    st->be->ops->unlock(st->be, lock);
    return rc;
}
