/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What an object backend (RADOS) builds from its basic operations
 * (backend.h; FORMAT.md, "RADOS backend"):
 *
 * - a writer's session: the object sessions/NAME, created once (its mtime
 *   is the session's start for gc), and the exclusive lock
 *   sessions/NAME.lock, taken first, both with the backend's lease; and a
 *   private directory on local disk for its temp files (the manifest
 *   being written), $TMPDIR/livebackup-rados-*, locked while it lives
 *   (from before anyone can see it): the next writer removes those of
 *   writers that are gone;
 * - a create in two steps keeps the bytes in memory until publish creates
 *   the object exclusively in one operation (completion is durability);
 * - the commit creates the manifest exclusively from its whole temp file.
 */
#include "store/backend.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Manifests are created in one RADOS operation (osd_max_write_size is
 * 90 MiB by default). */
#define OBJ_MAX_MANIFEST (64u << 20)
#define LOCAL_PREFIX "livebackup-rados-"

static void
local_gone(const char *dir, const char *name, void *opaque)
{
    (void)name;
    (void)opaque;
    lb_debug("removing the temp files of a writer that is gone: %s", dir);
    store_rm_tree(dir);
}

/* The writer's local temp directory, with a .lock held while it lives. */
static int
local_dir(struct store_be *be, const char *tmpdir, const char *hex)
{
    /* The local temp directories of writers that are gone: their .lock
     * is no longer locked (a SIGKILLed front end leaves its manifest
     * being written behind), or they have none a minute after they were
     * made (their writer died before it locked one). */
    store_tmp_sweep(tmpdir, LOCAL_PREFIX, 60, local_gone, NULL);
    be->tmp_dir = lb_xasprintf("%s/" LOCAL_PREFIX "%s-XXXXXX", tmpdir, hex);
    if (!mkdtemp(be->tmp_dir)) {
        int e = errno;
        lb_error(e, "create a temp directory %s", be->tmp_dir);
        free(be->tmp_dir);
        be->tmp_dir = NULL;
        return -1;
    }
    /* (a .lock made and then locked could be found unlocked and swept
     * away, directory and all, by another writer meanwhile) */
    if (store_tmp_dir_lock(be->tmp_dir, &be->tmp_lock_fd) < 0) {
        rmdir(be->tmp_dir);
        free(be->tmp_dir);
        be->tmp_dir = NULL;
        return -1;
    }
    return 0;
}

int
store_be_obj_session_begin(struct store_be *be)
{
    uint8_t rnd[8];
    char hex[17], host[64] = "?", when[32], desc[256], holder[256];
    CLEANUP_FREE char *lk = NULL;
    const char *tmpdir = getenv("TMPDIR");
    int r;

    if (be->session)
        return lb_fail(EINVAL, "%s: a session is open already", be->where);
    if (lb_random(rnd, sizeof rnd) < 0)
        return -1;
    lb_hex_encode(hex, rnd, sizeof rnd);
    gethostname(host, sizeof host - 1);
    for (char *p = host; *p; p++)
        if (*p == '/')
            *p = '_';
    be->session = lb_xasprintf("sessions/%s-%ld-%s", host, (long)getpid(), hex);
    lk = lb_xasprintf("%s.lock", be->session);
    lb_format_time(when, sizeof when, lb_wall_time());
    snprintf(desc, sizeof desc, "a backup session (pid %ld on %s since %s)",
             (long)getpid(), host, when);
    /* Locked before the session object exists: gc never sees a session
     * without its holder. No one else takes it: the object says who. */
    be->session_lock = be->ops->lock(be, lk, true, store_be_lease(be), 0, NULL,
                                     holder, sizeof holder);
    if (be->session_lock < 0)
        return -1;
    r = be->ops->create(be, be->session, desc, strlen(desc));
    if (r != 0)
        return r < 0 ? -1 : lb_fail(EEXIST, "session %s exists", be->session);
    return local_dir(be, tmpdir && *tmpdir ? tmpdir : "/tmp", hex);
}

void
store_be_tmp_drop(struct store_be *be)
{
    if (be->tmp_dir) {
        store_rm_tree(be->tmp_dir);
        free(be->tmp_dir);
        be->tmp_dir = NULL;
    }
    if (be->tmp_lock_fd >= 0)
        close(be->tmp_lock_fd);
    be->tmp_lock_fd = -1;
}

int
store_be_stage_copy(struct store_be *be, const char *obj, const void *hdr,
                    size_t hdr_len, const void *p, size_t len,
                    struct store_be_staged **out)
{
    struct store_be_staged *s = lb_xcalloc(1, sizeof *s);

    (void)be;
    (void)obj;
    s->fd = -1;
    s->len = hdr_len + len;
    s->data = lb_xmalloc(s->len ? s->len : 1);
    memcpy(s->data, hdr, hdr_len);
    memcpy(s->data + hdr_len, p, len);
    *out = s;
    return 0;
}

int
store_be_publish_create(struct store_be *be, struct store_be_staged *s,
                        const char *obj)
{
    return be->ops->create(be, obj, s->data, s->len);
}

void
store_be_unstage_copy(struct store_be *be, struct store_be_staged *s)
{
    (void)be;
    if (!s)
        return;
    free(s->data);
    free(s);
}

int
store_be_commit_copy(struct store_be *be, const char *tmp, int fd,
                     const char *obj)
{
    CLEANUP_FREE uint8_t *buf = NULL;
    struct stat sb;
    ssize_t n;
    int r;

    (void)tmp;
    if (fstat(fd, &sb) < 0)
        return lb_error(errno, "stat %s", tmp);
    if ((uint64_t)sb.st_size > OBJ_MAX_MANIFEST)
        return lb_fail(EFBIG,
                       "%s of %lld bytes: a RADOS repository takes at most "
                       "%u MiB (a larger window size makes it smaller)",
                       obj, (long long)sb.st_size, OBJ_MAX_MANIFEST >> 20);
    buf = lb_xmalloc((size_t)sb.st_size + 1);
    n = lb_pread_full(fd, buf, (size_t)sb.st_size, 0);
    if (n != sb.st_size)
        return lb_error(n < 0 ? errno : EIO, "read %s", tmp);
    r = be->ops->create(be, obj, buf, (size_t)n);
    if (r == 1)
        return lb_fail(EEXIST, "%s exists already", obj);
    return r;
}

/* ---- gc's cutoff -------------------------------------------------------- */

struct oldest {
    struct store_be *be;
    int64_t oldest;
    uint64_t live;
};

static int
session_seen(void *opaque, const char *name)
{
    struct oldest *o = opaque;
    struct store_be *be = o->be;
    CLEANUP_FREE char *lk = NULL;
    int64_t mtime;
    bool held;
    size_t n = strlen(name);

    if ((n > 5 && strcmp(name + n - 5, ".lock") == 0) ||
        (be->session && strcmp(name, be->session) == 0))
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
store_be_obj_sessions_oldest(struct store_be *be, int64_t t0, int64_t *oldest,
                             uint64_t *live)
{
    struct oldest o = {be, t0, 0};

    if (be->ops->list(be, "sessions/", session_seen, &o) < 0)
        return -1;
    *oldest = o.oldest;
    *live = o.live;
    return 0;
}
