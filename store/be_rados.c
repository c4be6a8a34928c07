/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The RADOS backend (FORMAT.md, "RADOS backend"): a repository's objects in
 * a Ceph pool and namespace, through librados. Every write is one RADOS
 * operation, applied whole or not at all and durable on every replica when
 * it completes; an exclusive create that meets an existing object fails
 * with EEXIST (a dedup hit, never an overwrite). Locks are cls_lock
 * advisory locks with a lease that a thread of this process renews while
 * the backend is open; a holder that dies loses them when the lease ends.
 */
#include "store/be_rados_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* librados returns -errno. */
int
be_rados_fail(int r, const char *what, const char *obj,
              struct be_rados *b)
{
    int e = -r;

    if (e == ESHUTDOWN) {
        b->cut_off = true;
        lb_error_hint("the Ceph cluster refuses this client "
                      "(blocklisted?): see `ceph osd blocklist ls`");
    }
    if (e == ENOENT)
        return lb_fail(ENOENT, "%s: no object %s in %s", what, obj,
                       b->be.where);
    if (e == ETIMEDOUT)
        lb_error_hint("the Ceph cluster did not answer in time: check "
                      "`ceph -s` (a full OSD blocks writes)");
    return lb_error(e, "%s %s in %s", what, obj, b->be.where);
}

static ssize_t
rados_be_read(struct store_be *be, const char *obj, void *buf, size_t len,
              uint64_t off)
{
    struct be_rados *b = to_rados(be);
    size_t done = 0;

    /* One RADOS read returns at most what was asked; large reads go in
     * pieces librados accepts (< 2 GiB). */
    while (done < len) {
        size_t n = LB_MIN(len - done, (size_t)64 << 20);
        int r = LR(rados_read, b->io, obj, (char *)buf + done, n, off + done);
        b->n_read++;
        if (r < 0)
            return be_rados_fail(r, "read", obj, b);
        done += (size_t)r;
        if ((size_t)r < n)
            break;
    }
    return (ssize_t)done;
}

static int
rados_be_stat(struct store_be *be, const char *obj, uint64_t *size,
              int64_t *mtime)
{
    struct be_rados *b = to_rados(be);
    uint64_t sz = 0;
    time_t mt = 0;
    int r = LR(rados_stat, b->io, obj, &sz, &mt);

    b->n_stat++;
    if (r < 0)
        return be_rados_fail(r, "stat", obj, b);
    if (size)
        *size = sz;
    if (mtime)
        *mtime = (int64_t)mt;
    return 0;
}

/* A write to the object sets its mtime (the OSD's clock) and version. */
static int
rados_be_touch(struct store_be *be, const char *obj)
{
    struct be_rados *b = to_rados(be);
    rados_write_op_t op = LR(rados_create_write_op);
    char v[32];
    int r;

    snprintf(v, sizeof v, "%lld", (long long)time(NULL));
    LR(rados_write_op_assert_exists, op);
    LR(rados_write_op_setxattr, op, RADOS_TOUCH_XATTR, v, strlen(v));
    r = LR(rados_write_op_operate, op, b->io, obj, NULL, 0);
    LR(rados_release_write_op, op);
    b->n_touch++;
    if (r < 0)
        return be_rados_fail(r, "touch", obj, b);
    return 0;
}

static int
rados_be_create(struct store_be *be, const char *obj, const void *p, size_t len)
{
    struct be_rados *b = to_rados(be);
    rados_write_op_t op = LR(rados_create_write_op);
    int r;

    /* One operation: the object appears whole or not at all. */
    LR(rados_write_op_create, op, LIBRADOS_CREATE_EXCLUSIVE, NULL);
    if (len)
        LR(rados_write_op_write_full, op, p, len);
    b->create_inflight += len;
    r = LR(rados_write_op_operate, op, b->io, obj, NULL, 0);
    b->create_inflight -= len;
    LR(rados_release_write_op, op);
    b->n_create++;
    if (r == -EEXIST)
        return 1;
    if (r == -E2BIG || r == -EFBIG)
        return lb_fail(EFBIG,
                       "object %s of %zu bytes is larger than the cluster "
                       "accepts in one write (osd_max_write_size)",
                       obj, len);
    if (r < 0)
        return be_rados_fail(r, "create", obj, b);
    return 0;
}

/* An empty object: one exclusive create. */
static int
rados_be_reserve(struct store_be *be, const char *obj)
{
    return rados_be_create(be, obj, NULL, 0);
}

static void
rados_be_unreserve(struct store_be *be, const char *obj)
{
    struct be_rados *b = to_rados(be);

    b->n_other++;
    LR(rados_remove, b->io, obj);
}

static int
rados_be_replace(struct store_be *be, const char *obj, const void *p,
                 size_t len)
{
    struct be_rados *b = to_rados(be);
    rados_write_op_t op = LR(rados_create_write_op);
    int r;

    b->n_other++;
    LR(rados_write_op_write_full, op, p, len);
    r = LR(rados_write_op_operate, op, b->io, obj, NULL, 0);
    LR(rados_release_write_op, op);
    if (r < 0)
        return be_rados_fail(r, "write", obj, b);
    return 0;
}

static int
rados_be_remove(struct store_be *be, const char *obj)
{
    struct be_rados *b = to_rados(be);
    int r = LR(rados_remove, b->io, obj);
    const char *id;

    b->n_other++;
    if (r < 0)
        return be_rados_fail(r, "remove", obj, b);
    if ((id = store_be_mf_id(obj)) != NULL)
        be_rados_index_del(b, id);
    return 0;
}

/* Read the object's mtime and version, then remove it only if its version
 * is still that one: a touch in between (a backup reusing the chunk)
 * changes the version, and the remove fails. */
static int
rados_be_remove_if_old(struct store_be *be, const char *obj, int64_t cutoff,
                       uint64_t *size, store_be_hook_fn between, void *opaque)
{
    struct be_rados *b = to_rados(be);
    rados_read_op_t rop;
    rados_write_op_t wop;
    uint64_t sz = 0, ver;
    time_t mt = 0;
    int r, rval = 0;

    b->n_other++;
    pthread_mutex_lock(&b->gc_lock);
    rop = LR(rados_create_read_op);
    LR(rados_read_op_stat, rop, &sz, &mt, &rval);
    r = LR(rados_read_op_operate, rop, b->gc_io, obj, 0);
    LR(rados_release_read_op, rop);
    ver = LR(rados_get_last_version, b->gc_io);
    if (r == -ENOENT) {
        pthread_mutex_unlock(&b->gc_lock);
        return 0;
    }
    if (r < 0 || rval < 0) {
        pthread_mutex_unlock(&b->gc_lock);
        return be_rados_fail(r < 0 ? r : rval, "stat", obj, b);
    }
    if ((int64_t)mt >= cutoff) {
        pthread_mutex_unlock(&b->gc_lock);
        return 0;
    }
    if (between)
        between(opaque, obj);
    wop = LR(rados_create_write_op);
    LR(rados_write_op_assert_version, wop, ver);
    LR(rados_write_op_remove, wop);
    r = LR(rados_write_op_operate, wop, b->gc_io, obj, NULL, 0);
    LR(rados_release_write_op, wop);
    pthread_mutex_unlock(&b->gc_lock);
    /* -ERANGE / -EOVERFLOW: the version moved (touched meanwhile). */
    if (r == -ENOENT)
        return 0;
    if (r == -ERANGE || r == -EOVERFLOW)
        return 2;
    if (r < 0)
        return be_rados_fail(r, "remove", obj, b);
    *size = sz;
    return 1;
}

static int
rados_be_list(struct store_be *be, const char *prefix, store_be_list_fn fn,
              void *opaque)
{
    struct be_rados *b = to_rados(be);
    rados_list_ctx_t ctx;
    size_t plen = strlen(prefix);
    const char *name;
    int r = LR(rados_nobjects_list_open, b->io, &ctx);

    b->n_other++;
    if (r < 0)
        return be_rados_fail(r, "list", prefix, b);
    while ((r = LR(rados_nobjects_list_next, ctx, &name, NULL, NULL)) == 0) {
        if (strncmp(name, prefix, plen) != 0)
            continue;
        r = fn(opaque, name);
        if (r != 0) {
            LR(rados_nobjects_list_close, ctx);
            return r;
        }
    }
    LR(rados_nobjects_list_close, ctx);
    if (r != -ENOENT)
        return be_rados_fail(r, "list", prefix, b);
    return 0;
}

static bool
counter_parse(const char *s, int n, uint64_t *v)
{
    uint64_t x = 0;

    if (n != COUNTER_DIGITS)
        return false;
    for (int i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9' || lb_mul_overflow(x, 10, &x) ||
            lb_add_overflow(x, (uint64_t)(s[i] - '0'), &x))
            return false;
    *v = x;
    return true;
}

/* Compare-and-swap on an xattr: the new value is written only if the old
 * one is still what was read (or, for a counter not there yet, only by
 * the one writer whose exclusive create succeeds). */
static int
rados_be_counter_next(struct store_be *be, const char *obj,
                      store_be_floor_fn floor_fn, void *opaque, uint64_t *v)
{
    struct be_rados *b = to_rados(be);
    uint64_t floor = 0;
    bool have_floor = false;

    b->n_other++;
    for (int tries = 0; tries < 1000; tries++) {
        char old[COUNTER_DIGITS + 1], nv[COUNTER_DIGITS + 1];
        uint64_t cur = 0;
        bool have;
        rados_write_op_t op;
        int r = LR(rados_getxattr, b->io, obj, RADOS_COUNTER_XATTR, old,
                   sizeof old - 1);

        if (r < 0 && r != -ENOENT && r != -ENODATA)
            return be_rados_fail(r, "read counter", obj, b);
        have = r >= 0 && counter_parse(old, r, &cur);
        if (!have && !have_floor) {
            /* Missing or unreadable: from its floor (asked once). */
            if (floor_fn && floor_fn(opaque, &floor) < 0)
                return -1;
            have_floor = true;
            if (r >= 0)
                lb_warn("counter %s in %s does not read back: starting "
                        "from %llu",
                        obj, be->where, (unsigned long long)floor);
        }
        if (!have)
            cur = floor;
        if (cur == UINT64_MAX)
            return lb_fail(ERANGE, "counter %s: no number left", obj);
        snprintf(nv, sizeof nv, "%020llu", (unsigned long long)cur + 1);
        op = LR(rados_create_write_op);
        if (r >= 0)
            LR(rados_write_op_cmpxattr, op, RADOS_COUNTER_XATTR,
               LIBRADOS_CMPXATTR_OP_EQ, old, (size_t)r);
        else if (r == -ENOENT)
            LR(rados_write_op_create, op, LIBRADOS_CREATE_EXCLUSIVE, NULL);
        else
            LR(rados_write_op_assert_exists, op);
        LR(rados_write_op_setxattr, op, RADOS_COUNTER_XATTR, nv,
           COUNTER_DIGITS);
        r = LR(rados_write_op_operate, op, b->io, obj, NULL, 0);
        LR(rados_release_write_op, op);
        if (r == 0) {
            *v = cur + 1;
            return 0;
        }
        /* Another writer got there first: read again. */
        if (r != -ECANCELED && r != -EEXIST && r != -ENODATA)
            return be_rados_fail(r, "advance counter", obj, b);
    }
    return lb_fail(EAGAIN, "counter %s: too much contention", obj);
}

/* ---- locks -------------------------------------------------------------- */

static void
holder_read(struct be_rados *b, const char *obj, char *out, size_t len)
{
    int r = LR(rados_getxattr, b->io, obj, RADOS_HOLDER_XATTR, out, len - 1);

    if (r <= 0)
        snprintf(out, len, "another process");
    else
        out[r] = '\0';
}

static int
lock_once(struct be_rados *b, const struct rados_lock *l, const char *desc,
          uint8_t flags)
{
    struct timeval tv = {(time_t)b->lease, 0};
    struct timeval *dur = b->lease ? &tv : NULL;

    if (!desc)
        desc = "";
    if (l->excl)
        return LR(rados_lock_exclusive, b->io, l->obj, RADOS_LOCK_NAME,
                  l->cookie, desc, dur, flags);
    return LR(rados_lock_shared, b->io, l->obj, RADOS_LOCK_NAME, l->cookie,
              RADOS_LOCK_TAG, desc, dur, flags);
}

static void *
renewer_main(void *arg)
{
    struct be_rados *b = arg;

    pthread_mutex_lock(&b->lock);
    while (!b->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += LB_MAX(1u, b->lease / 3);
        pthread_cond_timedwait(&b->wake, &b->lock, &ts);
        if (b->stopping)
            break;
        for (int i = 0; i < RADOS_MAX_LOCKS; i++) {
            struct rados_lock *l = &b->locks[i];
            int r;
            if (!l->used)
                continue;
            /* MUST_RENEW: a lock whose lease ended is not taken again
             * behind the back of whoever relied on it. */
            r = lock_once(b, l, "", LIBRADOS_LOCK_FLAG_MUST_RENEW);
            if (r < 0 && !b->lapsed) {
                b->lapsed = true;
                lb_warn("the lease of lock %s in %s was lost (%s): this "
                        "process stalled longer than its lease, or lost the "
                        "cluster",
                        l->obj, b->be.where, strerror(-r));
            }
        }
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

static int
rados_be_lock(struct store_be *be, const char *obj, bool excl,
              unsigned lease_secs, unsigned wait_secs, const char *desc,
              char *holder, size_t holder_len)
{
    struct be_rados *b = to_rados(be);
    uint64_t deadline = lb_now_ns() + (uint64_t)wait_secs * 1000000000u;
    struct rados_lock l = {.excl = excl, .used = true};
    uint8_t rnd[16];
    int r, slot = -1;

    b->n_other++;
    (void)lease_secs; /* the backend's lease (lease= in the spec) */
    if (lb_random(rnd, sizeof rnd) < 0)
        return -1;
    lb_hex_encode(l.cookie, rnd, sizeof rnd);
    l.obj = lb_xstrdup(obj);
    while ((r = lock_once(b, &l, desc, 0)) == -EBUSY || r == -EEXIST) {
        if (lb_now_ns() < deadline) {
            struct timespec ts = {0, 200L * 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        holder_read(b, obj, holder, holder_len);
        free(l.obj);
        errno = EWOULDBLOCK;
        return lb_fail(EWOULDBLOCK, "%s in %s is locked by %s", obj, be->where,
                       holder);
    }
    if (r < 0) {
        free(l.obj);
        return be_rados_fail(r, "lock", obj, b);
    }
    if (excl && desc) {
        /* Who holds it, for the message of whoever waits. */
        int e = LR(rados_setxattr, b->io, obj, RADOS_HOLDER_XATTR, desc,
                   strlen(desc));
        if (e < 0)
            lb_debug("lock %s: holder not recorded: %s", obj, strerror(-e));
        l.holder = e >= 0;
    }
    pthread_mutex_lock(&b->lock);
    for (int i = 0; i < RADOS_MAX_LOCKS; i++)
        if (!b->locks[i].used) {
            slot = i;
            b->locks[i] = l;
            break;
        }
    if (slot >= 0 && b->lease && !b->renewer_on &&
        pthread_create(&b->renewer, NULL, renewer_main, b) == 0)
        b->renewer_on = true;
    pthread_mutex_unlock(&b->lock);
    if (slot < 0) {
        LR(rados_unlock, b->io, obj, RADOS_LOCK_NAME, l.cookie);
        free(l.obj);
        return lb_fail(EAGAIN, "too many locks held in %s", be->where);
    }
    return slot;
}

static int
rados_be_lock_renew(struct store_be *be)
{
    struct be_rados *b = to_rados(be);
    int rc = 0;

    pthread_mutex_lock(&b->lock);
    for (int i = 0; i < RADOS_MAX_LOCKS && !b->lapsed; i++) {
        struct rados_lock *l = &b->locks[i];
        int r;
        if (!l->used)
            continue;
        r = lock_once(b, l, "", LIBRADOS_LOCK_FLAG_MUST_RENEW);
        if (r < 0) {
            b->lapsed = true;
            /* gone (its lease ended and the OSD dropped it) or taken by
             * another: the lease's message below, whichever of this call
             * and the renewer saw it first; anything else (the cluster
             * out of reach) as itself */
            if (r != -ENOENT && r != -EBUSY)
                rc = be_rados_fail(r, "renew lock", l->obj, b);
        }
    }
    if (b->lapsed && rc == 0)
        rc = lb_fail(ENOLCK,
                     "a lock's lease in %s ended before it was renewed: "
                     "a gc elsewhere may have taken chunks this session "
                     "relies on",
                     b->be.where);
    pthread_mutex_unlock(&b->lock);
    return rc;
}

/* A release in flight (release_all, rados_be_unlock): what it was, for
 * its message. */
struct release_op {
    rados_completion_t c;
    rados_write_op_t wop; /* the holder line's removal */
    const char *what, *obj;
};

enum release_kind { RELEASE_REMOVE, RELEASE_HOLDER, RELEASE_UNLOCK };

static void
release_send(struct be_rados *b, struct release_op *op, size_t *n,
             enum release_kind kind, const char *what, const char *obj,
             const struct rados_lock *l)
{
    struct release_op *o = &op[*n];
    int r;

    memset(o, 0, sizeof *o);
    if (LR(rados_aio_create_completion2, NULL, NULL, &o->c) < 0) {
        lb_debug("%s %s: no completion", what, obj);
        return;
    }
    switch (kind) {
    case RELEASE_REMOVE:
        r = LR(rados_aio_remove, b->io, obj, o->c);
        break;
    case RELEASE_HOLDER:
        o->wop = LR(rados_create_write_op);
        LR(rados_write_op_rmxattr, o->wop, RADOS_HOLDER_XATTR);
        r = LR(rados_aio_write_op_operate, o->wop, b->io, o->c, obj, NULL, 0);
        break;
    default:
        r = LR(rados_aio_unlock, b->io, obj, RADOS_LOCK_NAME, l->cookie, o->c);
        break;
    }
    if (r < 0) {
        LR(rados_aio_release, o->c);
        if (o->wop)
            LR(rados_release_write_op, o->wop);
        lb_debug("%s %s: %s", what, obj, strerror(-r));
        return;
    }
    b->n_other++;
    o->what = what;
    o->obj = obj;
    (*n)++;
}

/* A lock's release: its holder line, then its unlock (one object's
 * operations apply in the order sent). */
static void
release_lock_send(struct be_rados *b, struct release_op *op, size_t *n,
                  const struct rados_lock *l)
{
    if (l->holder)
        release_send(b, op, n, RELEASE_HOLDER, "remove the holder of", l->obj,
                     l);
    release_send(b, op, n, RELEASE_UNLOCK, "unlock", l->obj, l);
}

/* Wait for the n releases sent; failures are debug only: a lease ends a
 * lock that was not released, gc a session object left. */
static void
release_wait(struct be_rados *b, struct release_op *op, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int r;
        LR(rados_aio_wait_for_complete, op[i].c);
        r = LR(rados_aio_get_return_value, op[i].c);
        LR(rados_aio_release, op[i].c);
        if (op[i].wop)
            LR(rados_release_write_op, op[i].wop);
        if (r < 0 && r != -ENOENT)
            lb_debug("%s %s in %s: %s", op[i].what, op[i].obj, b->be.where,
                     strerror(-r));
    }
}

static void
rados_be_unlock(struct store_be *be, int handle)
{
    struct be_rados *b = to_rados(be);
    struct rados_lock *l;

    if (handle < 0 || handle >= RADOS_MAX_LOCKS)
        return;
    pthread_mutex_lock(&b->lock);
    l = &b->locks[handle];
    if (l->used) {
        struct release_op op[2];
        size_t n = 0;

        release_lock_send(b, op, &n, l);
        release_wait(b, op, n);
        free(l->obj);
        memset(l, 0, sizeof *l);
    }
    pthread_mutex_unlock(&b->lock);
}

static int
rados_be_lock_held(struct store_be *be, const char *obj, bool *held)
{
    struct be_rados *b = to_rados(be);
    char tag[256], clients[4096], cookies[4096], addrs[4096];
    size_t tl = sizeof tag, cl = sizeof clients, kl = sizeof cookies,
           al = sizeof addrs;
    int excl = 0;
    ssize_t n = LR(rados_list_lockers, b->io, obj, RADOS_LOCK_NAME, &excl, tag,
                   &tl, clients, &cl, cookies, &kl, addrs, &al);

    b->n_other++;
    if (n == -ENOENT) {
        *held = false;
        return 0;
    }
    if (n < 0)
        return be_rados_fail((int)n, "list lockers of", obj, b);
    *held = n > 0;
    return 0;
}

static void
ops_report(struct be_rados *b)
{
    const char *path = getenv("LIVEBACKUP_RADOS_OPS");
    FILE *f;

    if (!path || !*path || !(f = fopen(path, "a")))
        return;
    /* and whether the lookups had a connection of their own */
    fprintf(f,
            "read %llu stat %llu touch %llu create %llu other %llu "
            "connections %d reused %u\n",
            (unsigned long long)b->n_read, (unsigned long long)b->n_stat,
            (unsigned long long)b->n_touch, (unsigned long long)b->n_create,
            (unsigned long long)b->n_other, b->q_tried ? 2 : 1,
            (unsigned)b->n_reused);
    fclose(f);
}

/*
 * The end of the session and of every lock, sent at once and waited for
 * together: one round trip where one after the other took five or more.
 * The session's lock goes with its object (removing an object removes
 * its locks); the session object and its lock may go in either order
 * now that the session is over: gc takes a session without a holder for
 * one that is gone, which it is. A holder line is removed before its
 * unlock (one object's operations apply in the order sent). The renewer
 * is stopped before: it never renews a lock being dropped.
 */
static void
release_all(struct be_rados *b)
{
    struct store_be *be = &b->be;
    struct release_op op[2 + 2 * RADOS_MAX_LOCKS];
    CLEANUP_FREE char *lk = NULL;
    size_t n = 0;

    if (be->session) {
        lk = lb_xasprintf("%s.lock", be->session);
        release_send(b, op, &n, RELEASE_REMOVE, "remove session", be->session,
                     NULL);
        release_send(b, op, &n, RELEASE_REMOVE, "remove session lock", lk,
                     NULL);
    }
    for (int i = 0; i < RADOS_MAX_LOCKS; i++) {
        struct rados_lock *l = &b->locks[i];
        if (l->used && i != be->session_lock)
            release_lock_send(b, op, &n, l);
    }
    release_wait(b, op, n);
    for (int i = 0; i < RADOS_MAX_LOCKS; i++) {
        free(b->locks[i].obj);
        memset(&b->locks[i], 0, sizeof b->locks[i]);
    }
    be->session_lock = -1;
    free(be->session);
    be->session = NULL;
    store_be_tmp_drop(be);
}

static void
rados_be_close(struct store_be *be)
{
    struct be_rados *b = to_rados(be);

    pthread_mutex_lock(&b->lock);
    b->stopping = true;
    pthread_cond_signal(&b->wake);
    pthread_mutex_unlock(&b->lock);
    if (b->renewer_on)
        pthread_join(b->renewer, NULL);
    if (b->io)
        release_all(b);
    else
        store_be_tmp_drop(be);
    ops_report(b);
    if (b->gc_io)
        LR(rados_ioctx_destroy, b->gc_io);
    if (b->io)
        LR(rados_ioctx_destroy, b->io);
    be_rados_query_close(b);
    be_rados_disconnect(b, &b->spec, false, b->cluster);
    pthread_mutex_destroy(&b->gc_lock);
    pthread_mutex_destroy(&b->q_lock);
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->wake);
    free(b->be.where);
    free(b);
}

static void
rados_be_sweep_end(struct store_be *be)
{
    (void)be; /* each removal was one operation: nothing kept aside */
}

/* A manifest is named in the index before it exists (be_rados_index.c):
 * a listing by the index never misses a committed backup. */
static int
rados_be_commit(struct store_be *be, const char *tmp, int fd, const char *obj,
                const char *set)
{
    const char *id = store_be_mf_id(obj);

    if (id) {
        if (be_rados_index_add(to_rados(be), id, set) < 0)
            return -1;
        lb_fault_point("backupd:indexed");
    }
    return store_be_commit_copy(be, tmp, fd, obj);
}

static const struct store_be_ops rados_ops = {
    .kind = "rados",
    .close = rados_be_close,
    .stages_in_memory = true,
    .read = rados_be_read,
    .read_many = be_rados_read_many,
    .stat = rados_be_stat,
    .touch = rados_be_touch,
    .create = rados_be_create,
    .replace = rados_be_replace,
    .remove = rados_be_remove,
    .reserve = rados_be_reserve,
    .unreserve = rados_be_unreserve,
    .remove_if_old = rados_be_remove_if_old,
    .sweep_end = rados_be_sweep_end,
    .list = rados_be_list,
    .list_backups = be_rados_list_backups,
    .index_sync = be_rados_index_sync,
    .counter_next = rados_be_counter_next,
    .lock = rados_be_lock,
    .lock_renew = rados_be_lock_renew,
    .unlock = rados_be_unlock,
    .lock_held = rados_be_lock_held,
    .head_many = be_rados_head_many,
    .open = store_be_open_copy,
    .session_begin = store_be_obj_session_begin,
    .sessions_oldest = store_be_obj_sessions_oldest,
    .stage = store_be_stage_copy,
    .publish = store_be_publish_create,
    .unstage = store_be_unstage_copy,
    .barrier = rados_be_lock_renew,
    .commit = rados_be_commit,
};

unsigned
store_be_lease(const struct store_be *be)
{
    if (strcmp(be->ops->kind, "rados") != 0)
        return 0;
    return ((const struct be_rados *)be)->lease;
}

static int
connect_cluster(struct be_rados *b, const struct store_be_rados_spec *o)
{
    int r;

    if (be_rados_connect(b, o, false, &b->cluster) < 0)
        return -1;
    r = LR(rados_ioctx_create, b->cluster, o->pool, &b->io);
    if (r == 0)
        r = LR(rados_ioctx_create, b->cluster, o->pool, &b->gc_io);
    if (r < 0) {
        lb_error(-r, "%s: open pool %s", b->be.where, o->pool);
        if (r == -ENOENT)
            lb_error_hint("create it: ceph osd pool create %s", o->pool);
        return -1;
    }
    LR(rados_ioctx_set_namespace, b->io, o->ns);
    LR(rados_ioctx_set_namespace, b->gc_io, o->ns);
    return 0;
}

struct store_be *
store_be_rados_open(const char *spec)
{
    struct store_be_rados_spec o;
    struct be_rados *b;

    if (store_be_rados_spec_parse(spec, &o) < 0 || lb_rados_load() < 0)
        return NULL;
    b = lb_xcalloc(1, sizeof *b);
    b->be.ops = &rados_ops;
    b->be.where = o.ns[0] ? lb_xasprintf("rados:%s/%s", o.pool, o.ns)
                          : lb_xasprintf("rados:%s", o.pool);
    b->lease = o.lease;
    b->be.tmp_lock_fd = -1;
    b->be.session_lock = -1;
    pthread_mutex_init(&b->lock, NULL);
    pthread_mutex_init(&b->gc_lock, NULL);
    pthread_mutex_init(&b->q_lock, NULL);
    pthread_cond_init(&b->wake, NULL);
    b->spec = o;
    if (connect_cluster(b, &o) < 0) {
        int e = errno;
        rados_be_close(&b->be);
        errno = e;
        return NULL;
    }
    return &b->be;
}
