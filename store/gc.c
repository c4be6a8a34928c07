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
 *   3. sweeps: an unreferenced chunk file older than the cutoff is moved to
 *      gc's own trash session directory, its mtime is read again, and it is
 *      put back if a backup touched it meanwhile (backupd touches every
 *      chunk it answers "have" for), else unlinked.
 * A backup that asks for a chunk gc has just moved aside is told it is
 * missing and uploads it again.
 */
#include "store/be_file_int.h" /* transitional */
#include "store/store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
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

/* ---- 1. the cutoff ------------------------------------------------------ */

static const char *
base_name(const char *path)
{
    const char *s = path ? strrchr(path, '/') : NULL;

    return s ? s + 1 : path ? path : "";
}

/*
 * The start of the oldest live writer session, or t0: a session is live
 * while its .lock is locked (store_session_create renames the lock file
 * into place already locked), and its start is the lock file's mtime.
 * A directory without .lock is a session that died before locking (it has
 * nothing to protect) or one being created now (its every write and touch
 * comes after t0).
 */
static int
oldest_session(const struct store *st, const char *own_trash, int64_t t0,
               int64_t *oldest, uint64_t *nlive)
{
    CLEANUP_FREE char *tmp = lb_xasprintf("%s/tmp", st->path);
    DIR *d = opendir(tmp);
    struct dirent *e;

    *oldest = t0;
    *nlive = 0;
    if (!d)
        return lb_error(errno, "open %s", tmp);
    while ((e = readdir(d)) != NULL) {
        CLEANUP_FREE char *lock = NULL;
        CLEANUP_CLOSE int fd = -1;
        struct stat sb;

        if (e->d_name[0] == '.' ||
            strcmp(e->d_name, base_name(st->be->tmp_dir)) == 0 ||
            strcmp(e->d_name, own_trash) == 0)
            continue;
        lock = lb_xasprintf("%s/%s/.lock", tmp, e->d_name);
        fd = open(lock, O_RDONLY | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT)
            continue;
        if (fd < 0) {
            /* Whether it is live is unknown: gc cannot be safe. */
            int err = errno;
            closedir(d);
            return lb_error(err, "open %s", lock);
        }
        if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
            flock(fd, LOCK_UN); /* its owner is gone */
            continue;
        }
        /* Held (or unknown: count it, which only keeps more). */
        if (fstat(fd, &sb) < 0) {
            int err = errno;
            closedir(d);
            return lb_error(err, "stat %s", lock);
        }
        if (sb.st_mtime < *oldest)
            *oldest = sb.st_mtime;
        (*nlive)++;
    }
    closedir(d);
    return 0;
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
gc_mark(struct store *st, struct u64set *refs, uint64_t *nbackups)
{
    char **ids = NULL;
    size_t nids = 0;
    int rc = 0;

    *nbackups = 0;
    if (store_backup_ids(st, &ids, &nids) < 0)
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
    store_ids_free(ids, nids);
    return rc;
}

/* ---- 3. sweep ----------------------------------------------------------- */

struct sweep {
    struct store *st;
    const struct store_gc_opts *o;
    const struct u64set *refs;
    struct store_gc_stats *s;
    int trash_fd;
    const char *trash;
};

/* Decide on one chunk file of a fan-out directory. */
static int
sweep_one(struct sweep *w, int dir_fd, const char *dir, const char *name)
{
    struct proto_digest dg;
    struct stat sb;

    if (proto_digest_parse(name, &dg) < 0 || strncmp(name, dir, 2) != 0)
        return 0; /* not a chunk: verify reports strays */
    w->s->chunks++;
    if (u64set_has(w->refs, lb_load_be64(dg.b))) {
        w->s->referenced++;
        return 0;
    }
    if (fstatat(dir_fd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT)
            return 0;
        return lb_error(errno, "stat chunks/%s/%s", dir, name);
    }
    if (!S_ISREG(sb.st_mode))
        return 0;
    if (sb.st_mtime >= w->s->cutoff) {
        w->s->recent++;
        return 0;
    }
    if (w->o->dry_run) {
        w->s->reclaimed++;
        w->s->bytes_reclaimed += (uint64_t)sb.st_size;
        return 0;
    }
    if (renameat(dir_fd, name, w->trash_fd, name) < 0) {
        if (errno == ENOENT)
            return 0;
        return lb_error(errno, "move chunks/%s/%s to %s", dir, name, w->trash);
    }
    if (w->o->after_trash) {
        CLEANUP_FREE char *p = lb_xasprintf("%s/%s", w->trash, name);
        w->o->after_trash(w->o->opaque, p);
    }
    /* A touch before the rename shows now: the file is the same inode. */
    if (fstatat(w->trash_fd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
        sb.st_mtime >= w->s->cutoff) {
        if (be_file_put_back(w->trash_fd, dir_fd, name) < 0)
            return lb_error(errno, "put chunks/%s/%s back from %s", dir, name,
                            w->trash);
        w->s->restored++;
        return 0;
    }
    if (unlinkat(w->trash_fd, name, 0) < 0)
        return lb_error(errno, "delete %s/%s", w->trash, name);
    w->s->reclaimed++;
    w->s->bytes_reclaimed += (uint64_t)sb.st_size;
    return 0;
}

static int
sweep_obj_one(void *opaque, const char *obj)
{
    struct sweep *w = opaque;
    struct store_be *be = w->st->be;
    struct proto_digest dg;
    uint64_t size = 0;
    int64_t mtime;
    int r;

    if (strlen(obj) != 10 + 64 || proto_digest_parse(obj + 10, &dg) < 0)
        return 0; /* not a chunk: verify reports strays */
    w->s->chunks++;
    if (u64set_has(w->refs, lb_load_be64(dg.b))) {
        w->s->referenced++;
        return 0;
    }
    if (w->o->dry_run) {
        if (be->ops->stat(be, obj, &size, &mtime) < 0) {
            if (lb_error_errno() != ENOENT)
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
    /* Removed only if nobody touched it since its mtime was read: a
     * backup on another host that reuses it now keeps it. */
    r = be->ops->remove_if_old(be, obj, w->s->cutoff, &size);
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
    if (w->o->after_trash && r != 1)
        w->o->after_trash(w->o->opaque, obj);
    return 0;
}

static int
gc_sweep(struct sweep *w)
{
    if (!store_on_files(w->st))
        return w->st->be->ops->list(w->st->be, "chunks/", sweep_obj_one, w);
    for (unsigned i = 0; i < 256; i++) {
        char sub[16];
        int dfd, rc = 0;
        DIR *d;
        struct dirent *e;

        snprintf(sub, sizeof sub, "chunks/%02x", i);
        dfd = openat(w->st->dir_fd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) {
            if (errno == ENOENT)
                continue;
            return lb_error(errno, "open %s/%s", w->st->path, sub);
        }
        d = fdopendir(dfd);
        if (!d) {
            int e0 = errno;
            close(dfd);
            return lb_error(e0, "open %s/%s", w->st->path, sub);
        }
        while (rc == 0 && (e = readdir(d)) != NULL)
            if (e->d_name[0] != '.')
                rc = sweep_one(w, dirfd(d), sub + 7, e->d_name);
        closedir(d);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* ---- the whole ---------------------------------------------------------- */

/* gc's trash: a session directory of its own, tmp/gc-PID-RANDOM. */
static int
make_trash(const struct store *st, char *name, size_t len, char **dir,
           int *lock_fd)
{
    uint8_t rnd[4];
    char hex[9];

    if (lb_random(rnd, sizeof rnd) < 0)
        return -1;
    lb_hex_encode(hex, rnd, sizeof rnd);
    snprintf(name, len, "gc-%ld-%s", (long)getpid(), hex);
    return be_file_session_create(st->be, name, dir, lock_fd);
}

int
store_gc(struct store *st, const struct store_gc_opts *o,
         struct store_gc_stats *stats)
{
    struct u64set refs = {0};
    struct sweep w = {
        .st = st, .o = o, .refs = &refs, .s = stats, .trash_fd = -1};
    char trash_name[64] = "";
    char *trash = NULL;
    int lock_fd = -1, trash_lock = -1, rc = -1;
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
    lock_fd = gc_lock(st);
    if (lock_fd < 0)
        return -1;
    if (!o->dry_run && store_on_files(st) &&
        make_trash(st, trash_name, sizeof trash_name, &trash, &trash_lock) < 0)
        goto out;
    /* The real clock, as the file system's (never LIVEBACKUP_FAKE_TIME).
     * The cutoff is taken before the manifests are listed: a backup that
     * commits after the listing was live now, or starts after now. */
    t0 = (int64_t)time(NULL);
    if ((!store_on_files(st)
             ? store_obj_oldest_session(st, t0, &oldest, &stats->sessions)
             : oldest_session(st, trash_name, t0, &oldest, &stats->sessions)) <
        0)
        goto out;
    stats->cutoff = oldest - GC_MARGIN_SECS;
    if (gc_mark(st, &refs, &stats->backups) < 0)
        goto out;
    if (trash) {
        w.trash = trash;
        w.trash_fd = open(trash, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (w.trash_fd < 0) {
            lb_error(errno, "open %s", trash);
            goto out;
        }
    }
    rc = gc_sweep(&w);
out:
    if (w.trash_fd >= 0)
        close(w.trash_fd);
    if (trash) {
        /* Normally empty; after an error, whatever is left goes back (and
         * what cannot stays for the next writer to put back). */
        if (be_file_restore_trash(st->be, trash) == 0)
            store_rm_tree(trash);
        free(trash);
    }
    if (trash_lock >= 0)
        close(trash_lock);
    free(refs.slot);
    if (lock_fd >= 0)
        st->be->ops->unlock(st->be, lock_fd);
    return rc;
}
