/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A repository on an object backend (backend.h; today RADOS: FORMAT.md,
 * "RADOS backend"). The repository's own code (chunks.c, txn.c, list.c,
 * gc.c, verify.c) calls these where the file backend uses its directory:
 *
 * - open: the config object, the repository lock "lock" (shared, or
 *   exclusive for STORE_ADMIN) and, for writers, a session: the object
 *   sessions/NAME (created once: its mtime is the session's start) and
 *   the exclusive lock sessions/NAME.lock, both with the backend's lease;
 * - manifests: read into a memory file (the readers take a descriptor),
 *   committed by creating backups/ID exclusively in one operation after
 *   every chunk it names was created (a completed RADOS write is durable);
 * - seq: the backend's atomic counter;
 * - the temp files of a writer (its manifest being written) stay on the
 *   local disk, in a private directory $TMPDIR/livebackup-rados-*, locked
 *   while it lives; the next writer removes those of writers gone.
 */
#include "store/backend.h"
#include "store/store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Manifests are created in one RADOS operation (osd_max_write_size is
 * 90 MiB by default). */
#define OBJ_MAX_MANIFEST (64u << 20)

static void
describe(char *buf, size_t len, const char *what)
{
    char host[128] = "?", when[32];

    gethostname(host, sizeof host - 1);
    lb_format_time(when, sizeof when, lb_wall_time());
    snprintf(buf, len, "%s (pid %ld on %s since %s)", what, (long)getpid(),
             host, when);
}

int
store_obj_init(const char *spec, const char *cfg, const uint8_t *keyfile,
               size_t keyfile_len)
{
    struct store_be *be = store_be_rados_open(spec);
    uint64_t size;
    int r = -1;

    if (!be)
        return -1;
    if (be->ops->stat(be, "config", &size, NULL) == 0) {
        lb_fail(EEXIST, "%s is already a livebackup repository", spec);
        goto out;
    }
    if (lb_error_errno() != ENOENT)
        goto out;
    lb_error_clear();
    if (keyfile &&
        be->ops->replace(be, "keys/repokey", keyfile, keyfile_len) < 0)
        goto out;
    /* The config last, exclusively: two inits of one namespace make one
     * repository, and the loser is told it exists. */
    r = be->ops->create(be, "config", cfg, strlen(cfg));
    if (r == 1) {
        lb_fail(EEXIST, "%s is already a livebackup repository", spec);
        r = -1;
    }
out:
    store_be_close(be);
    if (r < 0 && lb_error_errno() == EEXIST)
        errno = EEXIST;
    return r < 0 ? -1 : 0;
}

#define LOCAL_PREFIX "livebackup-rados-"

/* Remove the local temp directories of writers that are gone: their
 * .lock is no longer locked (a SIGKILLed front end leaves its manifest
 * being written behind). */
static void
local_clean(const char *tmpdir)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;

    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        CLEANUP_FREE char *dir = NULL;
        CLEANUP_FREE char *lock = NULL;
        CLEANUP_CLOSE int fd = -1;

        if (strncmp(e->d_name, LOCAL_PREFIX, strlen(LOCAL_PREFIX)) != 0)
            continue;
        dir = lb_xasprintf("%s/%s", tmpdir, e->d_name);
        lock = lb_xasprintf("%s/.lock", dir);
        fd = open(lock, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0) {
            lb_debug("removing the temp files of a writer that is gone: %s",
                     dir);
            store_rm_tree(dir);
        }
    }
    closedir(d);
}

/* The writer's local temp directory (its manifest being written), with a
 * .lock held while it lives. */
static int
local_dir(struct store *st, const char *tmpdir, const char *hex)
{
    CLEANUP_FREE char *lock = NULL;

    local_clean(tmpdir);
    st->session_dir = lb_xasprintf("%s/" LOCAL_PREFIX "%s-XXXXXX", tmpdir, hex);
    if (!mkdtemp(st->session_dir)) {
        int e = errno;
        lb_error(e, "create a temp directory %s", st->session_dir);
        free(st->session_dir);
        st->session_dir = NULL;
        return -1;
    }
    lock = lb_xasprintf("%s/.lock", st->session_dir);
    st->session_lock_fd =
        open(lock, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (st->session_lock_fd < 0 ||
        flock(st->session_lock_fd, LOCK_EX | LOCK_NB) < 0)
        return lb_error(errno, "lock %s", lock);
    return 0;
}

/* The writer's session: sessions/NAME, created once (its mtime is the
 * session's start for gc), and the lock sessions/NAME.lock. */
static int
obj_session(struct store *st)
{
    struct store_be *be = st->be;
    uint8_t rnd[8];
    char hex[17], host[64] = "?", desc[256], holder[256];
    CLEANUP_FREE char *lk = NULL;
    const char *tmpdir = getenv("TMPDIR");
    int r;

    if (lb_random(rnd, sizeof rnd) < 0)
        return -1;
    lb_hex_encode(hex, rnd, sizeof rnd);
    gethostname(host, sizeof host - 1);
    for (char *p = host; *p; p++)
        if (*p == '/')
            *p = '_';
    st->be_session =
        lb_xasprintf("sessions/%s-%ld-%s", host, (long)getpid(), hex);
    lk = lb_xasprintf("%s.lock", st->be_session);
    describe(desc, sizeof desc, "a backup session");
    /* Locked before the session object exists: gc never sees a session
     * without its holder. */
    st->be_session_lock = be->ops->lock(be, lk, true, store_be_lease(be), 0,
                                        desc, holder, sizeof holder);
    if (st->be_session_lock < 0)
        return -1;
    r = be->ops->create(be, st->be_session, desc, strlen(desc));
    if (r != 0)
        return r < 0 ? -1
                     : lb_fail(EEXIST, "session %s exists", st->be_session);
    return local_dir(st, tmpdir && *tmpdir ? tmpdir : "/tmp", hex);
}

int
store_obj_open(struct store *st, unsigned lock_wait_secs)
{
    const size_t max = 64 << 10;
    CLEANUP_FREE char *cfg = lb_xmalloc(max + 2);
    char desc[256], holder[256];
    ssize_t n;

    st->be = store_be_rados_open(st->path);
    if (!st->be)
        return -1;
    /* One read (no stat first): one round trip less for every session. */
    n = st->be->ops->read(st->be, "config", cfg, max + 1, 0);
    if (n < 0) {
        if (lb_error_errno() == ENOENT) {
            lb_fail(ENOENT, "no repository at %s", st->path);
            lb_error_hint("create one with: livebackup init --repo '%s'",
                          st->path);
            errno = ENOENT;
        }
        return -1;
    }
    if ((size_t)n > max)
        return lb_fail(EPROTO, "%s: config larger than 64 KiB", st->path);
    cfg[n] = '\0';
    if (store_config_parse(st, cfg) < 0)
        return -1;
    describe(desc, sizeof desc,
             st->mode == STORE_ADMIN ? "an exclusive operation"
                                     : "a backup, restore or gc");
    st->be_lock = st->be->ops->lock(st->be, "lock", st->mode == STORE_ADMIN,
                                    store_be_lease(st->be), lock_wait_secs,
                                    desc, holder, sizeof holder);
    if (st->be_lock < 0) {
        if (lb_error_errno() == EWOULDBLOCK) {
            lb_fail(EWOULDBLOCK, "repository %s is locked by %s", st->path,
                    holder);
            lb_error_hint("try again when that is done (or wait with "
                          "--lock-wait SECONDS); a holder that died loses "
                          "its lock after %u s",
                          store_be_lease(st->be));
            errno = EWOULDBLOCK;
        }
        return -1;
    }
    if (st->mode != STORE_READ && obj_session(st) < 0)
        return -1;
    return 0;
}

void
store_obj_close(struct store *st)
{
    struct store_be *be = st->be;

    if (!be)
        return;
    if (st->be_session) {
        CLEANUP_FREE char *lk = lb_xasprintf("%s.lock", st->be_session);
        if (be->ops->remove(be, st->be_session) < 0)
            lb_debug("%s", lb_error_msg());
        be->ops->unlock(be, st->be_session_lock);
        if (be->ops->remove(be, lk) < 0)
            lb_debug("%s", lb_error_msg());
        free(st->be_session);
    }
    /* store_be_close drops the locks. */
    store_be_close(be);
    st->be = NULL;
}

ssize_t
store_obj_get(struct store *st, const char *obj, uint8_t *out, size_t cap)
{
    uint64_t size;

    if (st->be->ops->stat(st->be, obj, &size, NULL) < 0)
        return -1;
    if (size > cap)
        return lb_fail(EPROTO, "%s in %s: %llu bytes, more than %zu", obj,
                       st->path, (unsigned long long)size, cap);
    return st->be->ops->read(st->be, obj, out, (size_t)size, 0);
}

/* ---- manifests ---------------------------------------------------------- */

static char *
manifest_obj(const char *id)
{
    return lb_xasprintf("backups/%s", id);
}

int
store_obj_manifest_open(struct store *st, const char *id)
{
    CLEANUP_FREE char *obj = manifest_obj(id);
    CLEANUP_FREE uint8_t *buf = NULL;
    uint64_t size, off = 0;
    int fd;

    if (st->be->ops->stat(st->be, obj, &size, NULL) < 0) {
        if (lb_error_errno() == ENOENT) {
            lb_fail(ENOENT, "no backup %s in %s", id, st->path);
            lb_error_hint("livebackup list shows the backups");
            errno = ENOENT;
        }
        return -1;
    }
    fd = memfd_create("manifest", MFD_CLOEXEC);
    if (fd < 0)
        return lb_error(errno, "memfd_create");
    buf = lb_xmalloc(4u << 20);
    while (off < size) {
        size_t n = (size_t)LB_MIN(size - off, (uint64_t)(4u << 20));
        ssize_t got = st->be->ops->read(st->be, obj, buf, n, off);
        if (got <= 0 || lb_write_full(fd, buf, (size_t)got) < 0) {
            int e = got < 0 ? lb_error_errno() : got == 0 ? EPROTO : errno;
            close(fd);
            if (got >= 0)
                lb_error(e, "copy manifest %s", id);
            errno = e;
            return -1;
        }
        off += (uint64_t)got;
    }
    if (lseek(fd, 0, SEEK_SET) < 0) {
        int e = errno;
        close(fd);
        return lb_error(e, "seek");
    }
    return fd;
}

int
store_obj_manifest_exists(struct store *st, const char *id)
{
    CLEANUP_FREE char *obj = manifest_obj(id);

    if (st->be->ops->stat(st->be, obj, NULL, NULL) == 0)
        return 1;
    if (lb_error_errno() != ENOENT)
        return -1;
    lb_error_clear();
    return 0;
}

int
store_obj_manifest_commit(struct store *st, const char *id, int fd)
{
    CLEANUP_FREE char *obj = manifest_obj(id);
    CLEANUP_FREE uint8_t *buf = NULL;
    struct stat sb;
    ssize_t n;
    int r;

    if (fstat(fd, &sb) < 0)
        return lb_error(errno, "stat manifest %s", id);
    if ((uint64_t)sb.st_size > OBJ_MAX_MANIFEST)
        return lb_fail(EFBIG,
                       "manifest %s of %lld bytes: a RADOS repository takes "
                       "at most %u MiB (a larger window size makes it "
                       "smaller)",
                       id, (long long)sb.st_size, OBJ_MAX_MANIFEST >> 20);
    buf = lb_xmalloc((size_t)sb.st_size + 1);
    n = lb_pread_full(fd, buf, (size_t)sb.st_size, 0);
    if (n != sb.st_size)
        return lb_error(n < 0 ? errno : EIO, "read manifest %s", id);
    /* The commit point: one exclusive create, after every chunk the
     * manifest names was created (the caller of store_txn_commit waited
     * for every write it noted). A lapsed lease of the session could have
     * let a gc elsewhere take chunks this backup touched: refuse to commit
     * then. */
    if (st->be->ops->lock_renew(st->be) < 0) {
        lb_error_prefix("backup %s not committed", id);
        return -1;
    }
    r = st->be->ops->create(st->be, obj, buf, (size_t)n);
    if (r == 1)
        return lb_fail(EEXIST, "backup %s exists already", id);
    return r;
}

int
store_obj_manifest_remove(struct store *st, const char *id)
{
    CLEANUP_FREE char *obj = manifest_obj(id);

    if (st->be->ops->remove(st->be, obj) < 0) {
        if (lb_error_errno() == ENOENT)
            lb_fail(ENOENT, "no backup %s in %s", id, st->path);
        return -1;
    }
    return 0;
}

struct id_list {
    char **ids;
    size_t n, cap;
};

static int
add_id(void *opaque, const char *name)
{
    struct id_list *l = opaque;
    const char *id = name + strlen("backups/");

    if (!proto_backup_id_valid(id, strlen(id)))
        return 0;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->ids = lb_xrealloc(l->ids, l->cap * sizeof *l->ids);
    }
    l->ids[l->n++] = lb_xstrdup(id);
    return 0;
}

int
store_obj_backup_ids(struct store *st, char ***ids, size_t *n)
{
    struct id_list l = {0};
    int r = st->be->ops->list(st->be, "backups/", add_id, &l);

    if (r < 0) {
        for (size_t i = 0; i < l.n; i++)
            free(l.ids[i]);
        free(l.ids);
        return -1;
    }
    *ids = l.ids;
    *n = l.n;
    return 0;
}

int
store_obj_seq_next(struct store *st, uint64_t *seq)
{
    *seq = 0;
    return st->be->ops->counter_next(st->be, "seq", seq);
}

/* ---- gc's cutoff -------------------------------------------------------- */

struct oldest {
    struct store *st;
    int64_t oldest;
    uint64_t live;
};

static int
session_seen(void *opaque, const char *name)
{
    struct oldest *o = opaque;
    struct store_be *be = o->st->be;
    CLEANUP_FREE char *lk = NULL;
    int64_t mtime;
    bool held;
    size_t n = strlen(name);

    if ((n > 5 && strcmp(name + n - 5, ".lock") == 0) ||
        (o->st->be_session && strcmp(name, o->st->be_session) == 0))
        return 0;
    lk = lb_xasprintf("%s.lock", name);
    if (be->ops->lock_held(be, lk, &held) < 0)
        return -1;
    if (!held) {
        /* Its writer is gone (its lease ended): nothing of it to keep. */
        lb_debug("removing the session %s of a writer that is gone", name);
        if (be->ops->remove(be, name) < 0 || be->ops->remove(be, lk) < 0)
            lb_error_clear();
        return 0;
    }
    if (be->ops->stat(be, name, NULL, &mtime) < 0) {
        if (lb_error_errno() == ENOENT) {
            lb_error_clear();
            return 0;
        }
        return -1;
    }
    o->oldest = LB_MIN(o->oldest, mtime);
    o->live++;
    return 0;
}

int
store_obj_oldest_session(struct store *st, int64_t t0, int64_t *oldest,
                         uint64_t *live)
{
    struct oldest o = {st, t0, 0};

    if (st->be->ops->list(st->be, "sessions/", session_seen, &o) < 0)
        return -1;
    *oldest = o.oldest;
    *live = o.live;
    return 0;
}
