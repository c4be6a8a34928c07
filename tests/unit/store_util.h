/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * For the store tests: store_txn_disk_begin with the parent's streamed
 * stack depths collected into one array, as the tests compare them whole;
 * the read callback of a manifest reader over a file.
 */
#ifndef LB_TESTS_STORE_UTIL_H
#define LB_TESTS_STORE_UTIL_H

#include "store/store.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* A proto_mf_reader's read over the fd *opaque, at most 777 bytes a
 * call: the reader's refills are exercised, not one read of the whole. */
static inline ssize_t
tu_fd_read(void *opaque, void *buf, size_t len)
{
    ssize_t r = read(*(int *)opaque, buf, LB_MIN(len, 777));
    return r < 0 ? lb_error(errno, "read") : r;
}

struct tu_depths {
    uint8_t *d;
    uint64_t n;
};

static int
tu_depths_cb(void *opaque, uint64_t first, const uint8_t *d, size_t n)
{
    struct tu_depths *t = opaque;

    if (first != t->n) /* streamed in order, without gaps */
        return -1;
    t->d = lb_xrealloc(t->d, (size_t)(first + n));
    memcpy(t->d + first, d, n);
    t->n = first + n;
    return 0;
}

/* *depths: malloc'd (caller frees), or NULL when none were streamed. */
static inline int
tu_disk_begin(struct store_txn *t, const char *disk, uint64_t size,
              uint8_t mode, const struct proto_kv *meta, uint64_t *nw,
              uint8_t **depths)
{
    struct tu_depths c = {NULL, 0};
    int r =
        store_txn_disk_begin(t, disk, size, mode, meta, nw, tu_depths_cb, &c);

    if (r == 0 && c.d && c.n != *nw) {
        free(c.d);
        return -2; /* not every window's depth was streamed */
    }
    *depths = c.d;
    return r;
}

#endif
