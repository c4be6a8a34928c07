/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A repository on an object backend (backend.h; today RADOS: FORMAT.md,
 * "RADOS backend"): init (the config object, created exclusively), open
 * (the config object, the repository lock "lock", shared or exclusive for
 * STORE_ADMIN, with the backend's lease, and for writers the backend's
 * session), small objects read whole, the commit order from the backend's
 * atomic counter, and gc's cutoff from the sessions/ objects.
 */
#include "store/backend.h"
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

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
    /* The index of manifests (FORMAT.md, "RADOS backend"), empty; a
     * second init at once makes the same. */
    if (be->ops->create(be, "index", NULL, 0) < 0)
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

int
store_obj_open(struct store *st, unsigned lock_wait_secs)
{
    const size_t max = 64 << 10;
    CLEANUP_FREE char *cfg = lb_xmalloc(max + 2);
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
    if (store_repo_lock(st, lock_wait_secs) < 0)
        return -1;
    if (st->mode != STORE_READ && st->be->ops->session_begin(st->be) < 0)
        return -1;
    return 0;
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
