/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The memory bound of backupd listen (backupd.h): a counter of the bytes
 * its sessions have reserved, under a lock. Sessions reserve the worst
 * case of what they are about to allocate (a frame of 9 MiB, the slot
 * buffers and scratch of each pool worker, verify's threads) and give it
 * back when they end, so many hosts at once cannot run the daemon out of
 * memory: past the bound, a session is told BUSY and the client retries.
 */
#include "backupd/backupd.h"

#include <pthread.h>

struct backupd_limits {
    pthread_mutex_t lock;
    uint64_t max, used;
};

struct backupd_limits *
backupd_limits_new(uint64_t max_bytes)
{
    struct backupd_limits *l = lb_xcalloc(1, sizeof *l);

    pthread_mutex_init(&l->lock, NULL);
    l->max = max_bytes;
    return l;
}

void
backupd_limits_free(struct backupd_limits *l)
{
    if (!l)
        return;
    pthread_mutex_destroy(&l->lock);
    free(l);
}

bool
backupd_limits_take(struct backupd_limits *l, uint64_t bytes)
{
    bool ok;

    if (!l)
        return true;
    pthread_mutex_lock(&l->lock);
    ok = bytes <= l->max - l->used;
    if (ok)
        l->used += bytes;
    pthread_mutex_unlock(&l->lock);
    return ok;
}

void
backupd_limits_give(struct backupd_limits *l, uint64_t bytes)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->lock);
    l->used -= LB_MIN(bytes, l->used);
    pthread_mutex_unlock(&l->lock);
}

uint64_t
backupd_limits_max(const struct backupd_limits *l)
{
    return l ? l->max : 0;
}
