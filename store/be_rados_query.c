/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The RADOS backend's lookups (head_many): a QUERY's chunk reads and
 * touches, sent together on a connection of their own; and reads sent
 * together (read_many: a listing's manifests).
 */
#include "store/be_rados_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Connect the lookups' handle (b->q_cluster, b->q_io): 0, or -1 with
 * the error left as it is (debug only: the main connection serves). */
static int
query_connect(struct be_rados *b)
{
    int r = -1;

    if (be_rados_connect(b, &b->spec, true, &b->q_cluster) == 0) {
        r = LR(rados_ioctx_create, b->q_cluster, b->spec.pool, &b->q_io);
        if (r < 0)
            lb_error(-r, "%s: open pool %s", b->be.where, b->spec.pool);
    }
    if (r == 0) {
        LR(rados_ioctx_set_namespace, b->q_io, b->spec.ns);
        return 0;
    }
    lb_debug("lookups share the connection of the creates: %s", lb_error_msg());
    b->q_io = NULL;
    return -1;
}

static void *
query_connect_main(void *arg)
{
    struct be_rados *b = arg;

    query_connect(b);
    pthread_mutex_lock(&b->q_lock);
    b->q_ready = true;
    pthread_mutex_unlock(&b->q_lock);
    return NULL;
}

/* Reclaim the connecting thread, once. Never with q_lock held: the
 * thread takes it to say it is done, and a close that came before that
 * would wait for it for ever. */
static void
query_join(struct be_rados *b)
{
    bool on;

    pthread_mutex_lock(&b->q_lock);
    on = b->q_thread_on;
    b->q_thread_on = false;
    pthread_mutex_unlock(&b->q_lock);
    if (on)
        pthread_join(b->q_thread, NULL);
}

/* The ioctx of a head_many: the lookups' own once it is connected, the
 * main one until then (and for good if it cannot be had). The first
 * head_many sent behind RADOS_QUERY_BEHIND bytes of creates or more
 * starts the connecting thread and does not wait for it: a session that
 * sends only small chunks (an incremental's deltas) or none never
 * connects twice, nor waits at its end for a connection it started late,
 * and one that sends many large ones does not wait for the connection to
 * be made. */
static rados_ioctx_t
query_ioctx(struct be_rados *b)
{
    rados_ioctx_t io = b->io;
    bool behind = b->create_inflight >= RADOS_QUERY_BEHIND;
    bool ready = false;

    pthread_mutex_lock(&b->q_lock);
    if (!b->q_tried && behind) {
        b->q_tried = true;
        if (pthread_create(&b->q_thread, NULL, query_connect_main, b) == 0)
            b->q_thread_on = true;
    } else if (b->q_ready) {
        ready = true;
        if (b->q_io)
            io = b->q_io;
    }
    pthread_mutex_unlock(&b->q_lock);
    if (ready)
        query_join(b); /* done connecting: returns at once */
    return io;
}

/* A session that ends while its lookups' connection is still being made
 * waits for it (at most the connection's timeout) to shut it down. */
void
be_rados_query_close(struct be_rados *b)
{
    query_join(b);
    if (b->q_io)
        LR(rados_ioctx_destroy, b->q_io);
    be_rados_disconnect(b, &b->spec, true, b->q_cluster);
    b->q_io = NULL;
    b->q_cluster = NULL;
}

/* One object's part of a batch: its touch and its read, in flight. */
struct head_op {
    rados_completion_t touch_c, read_c;
    rados_write_op_t wop;
    rados_read_op_t rop;
    time_t mtime;
    int stat_rval, read_rval;
};

static void
head_op_free(struct head_op *h)
{
    if (h->touch_c)
        LR(rados_aio_release, h->touch_c);
    if (h->read_c)
        LR(rados_aio_release, h->read_c);
    if (h->wop)
        LR(rados_release_write_op, h->wop);
    if (h->rop)
        LR(rados_release_read_op, h->rop);
}

/* Send every read (stat + the header) at once. */
static int
head_reads_send(struct be_rados *b, rados_ioctx_t io, const char *const *objs,
                size_t n, struct head_op *h, uint8_t *head, size_t head_len,
                size_t *got, uint64_t *size)
{
    for (size_t i = 0; i < n; i++) {
        h[i].rop = LR(rados_create_read_op);
        LR(rados_read_op_stat, h[i].rop, &size[i], &h[i].mtime,
           &h[i].stat_rval);
        LR(rados_read_op_read, h[i].rop, 0, head_len,
           (char *)head + i * head_len, &got[i], &h[i].read_rval);
        if (LR(rados_aio_create_completion2, NULL, NULL, &h[i].read_c) < 0 ||
            LR(rados_aio_read_op_operate, h[i].rop, io, h[i].read_c, objs[i],
               0) < 0) {
            /* Not sent: nothing to wait for. */
            if (h[i].read_c)
                LR(rados_aio_release, h[i].read_c);
            h[i].read_c = NULL;
            return lb_fail(EIO, "%s: cannot send a read", b->be.where);
        }
        b->n_read++;
    }
    return 0;
}

/* Send a touch of every object the reads found, at once. */
static int
head_touches_send(struct be_rados *b, rados_ioctx_t io, const char *const *objs,
                  size_t n, struct head_op *h, const int *err)
{
    char v[32];

    snprintf(v, sizeof v, "%lld", (long long)time(NULL));
    for (size_t i = 0; i < n; i++) {
        if (err[i])
            continue;
        h[i].wop = LR(rados_create_write_op);
        LR(rados_write_op_assert_exists, h[i].wop);
        LR(rados_write_op_setxattr, h[i].wop, RADOS_TOUCH_XATTR, v, strlen(v));
        if (LR(rados_aio_create_completion2, NULL, NULL, &h[i].touch_c) < 0 ||
            LR(rados_aio_write_op_operate, h[i].wop, io, h[i].touch_c, objs[i],
               NULL, 0) < 0) {
            if (h[i].touch_c)
                LR(rados_aio_release, h[i].touch_c);
            h[i].touch_c = NULL;
            return lb_fail(EIO, "%s: cannot send a touch", b->be.where);
        }
        b->n_touch++;
    }
    return 0;
}

/* Wait for what was sent of one kind (touch or read) and free it; the
 * first error other than ENOENT in rc (unless it holds one already). An
 * object not found says ENOENT in err. */
static void
head_wait(struct be_rados *b, const char *const *objs, size_t n,
          struct head_op *h, bool touch, int *err, size_t *got, int *rc)
{
    for (size_t i = 0; i < n; i++) {
        rados_completion_t c = touch ? h[i].touch_c : h[i].read_c;
        int r;
        if (!c)
            continue;
        LR(rados_aio_wait_for_complete, c);
        r = LR(rados_aio_get_return_value, c);
        if (r == 0 && !touch)
            r = h[i].stat_rval < 0 ? h[i].stat_rval : h[i].read_rval;
        LR(rados_aio_release, c);
        if (touch) {
            h[i].touch_c = NULL;
            LR(rados_release_write_op, h[i].wop);
            h[i].wop = NULL;
        } else {
            h[i].read_c = NULL;
            LR(rados_release_read_op, h[i].rop);
            h[i].rop = NULL;
        }
        if (r == -ENOENT) {
            err[i] = ENOENT;
            got[i] = 0;
        } else if (r < 0 && *rc == 0) {
            *rc = be_rados_fail(r, touch ? "touch" : "read", objs[i], b);
        }
    }
}

/* Every header read sent at once, then (if asked) every touch of what
 * they found at once: two round trips for the batch, and no touch for a
 * chunk that is not stored (most of what a backup asks about is new). A
 * chunk the read or the touch does not find (removed between them) says
 * ENOENT: the client sends it again. A touch that did find it changed
 * its version, so a gc judging it old before cannot remove it. */
int
be_rados_head_many(struct store_be *be, const char *const *objs, size_t n,
                   bool touch, uint8_t *head, size_t head_len, size_t *got,
                   uint64_t *size, int *err)
{
    struct be_rados *b = to_rados(be);
    struct head_op *h = lb_xcalloc(n ? n : 1, sizeof *h);
    rados_ioctx_t io = query_ioctx(b);
    int rc;

    for (size_t i = 0; i < n; i++) {
        err[i] = 0;
        got[i] = 0;
    }
    rc = head_reads_send(b, io, objs, n, h, head, head_len, got, size);
    head_wait(b, objs, n, h, false, err, got, &rc);
    if (rc == 0 && touch) {
        rc = head_touches_send(b, io, objs, n, h, err);
        head_wait(b, objs, n, h, true, err, got, &rc);
    }
    for (size_t i = 0; i < n; i++)
        head_op_free(&h[i]);
    free(h);
    return rc;
}

void
be_rados_read_many(struct store_be *be, const char *const *objs, size_t n,
                   uint8_t *const *bufs, const size_t *lens,
                   const uint64_t *offs, ssize_t *got)
{
    struct be_rados *b = to_rados(be);
    rados_completion_t *c = lb_xcalloc(n ? n : 1, sizeof *c);

    for (size_t i = 0; i < n; i++) {
        got[i] = -EIO;
        if (LR(rados_aio_create_completion2, NULL, NULL, &c[i]) < 0) {
            c[i] = NULL;
            continue;
        }
        if (LR(rados_aio_read, b->io, objs[i], c[i], (char *)bufs[i], lens[i],
               offs[i]) < 0) {
            LR(rados_aio_release, c[i]);
            c[i] = NULL;
            continue;
        }
        b->n_read++;
    }
    for (size_t i = 0; i < n; i++) {
        if (!c[i])
            continue;
        LR(rados_aio_wait_for_complete, c[i]);
        got[i] = LR(rados_aio_get_return_value, c[i]);
        LR(rados_aio_release, c[i]);
    }
    free(c);
}
