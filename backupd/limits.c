/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The memory bound of backupd listen (backupd.h): a counter of the bytes
 * its sessions have reserved, under a lock. Sessions reserve the worst
 * case of what they are about to allocate (a frame of 9 MiB, the slot
 * buffers and scratch of each pool worker, verify's threads) and give it
 * back when they end, so many hosts at once cannot run the daemon out of
 * memory. What a session needs to start (its frame, a backup's first
 * checking thread) it waits for, in turn, while other sessions hold
 * memory they will give back (--memory-wait); what it would merely like
 * (more threads) it takes only from room nobody waits for.
 */
#include "backupd/backupd.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

/* One session waiting for room, in arrival order. */
struct waiter {
    struct waiter *next;
    uint64_t held; /* what it holds while it waits: not coming back */
};

struct backupd_limits {
    pthread_mutex_t lock;
    pthread_cond_t room; /* signalled when memory comes back or a waiter leaves */
    uint64_t max, used;
    struct waiter *head, **tail;
    uint64_t waiting_held; /* the sum of the waiters' held */
};

struct backupd_limits *
backupd_limits_new(uint64_t max_bytes)
{
    struct backupd_limits *l = lb_xcalloc(1, sizeof *l);
    pthread_condattr_t ca;

    pthread_mutex_init(&l->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->room, &ca);
    pthread_condattr_destroy(&ca);
    l->max = max_bytes;
    l->tail = &l->head;
    return l;
}

void
backupd_limits_free(struct backupd_limits *l)
{
    if (!l)
        return;
    pthread_cond_destroy(&l->room);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

/* Take bytes if they fit (and, for spare room, nobody waits). */
static bool
take_now(struct backupd_limits *l, uint64_t bytes, bool spare)
{
    bool ok;

    if (!l)
        return true;
    pthread_mutex_lock(&l->lock);
    ok = (!spare || !l->head) && bytes <= l->max - l->used;
    if (ok)
        l->used += bytes;
    pthread_mutex_unlock(&l->lock);
    return ok;
}

bool
backupd_limits_take(struct backupd_limits *l, uint64_t bytes)
{
    return take_now(l, bytes, false);
}

bool
backupd_limits_take_spare(struct backupd_limits *l, uint64_t bytes)
{
    return take_now(l, bytes, true);
}

static void
unqueue(struct backupd_limits *l, struct waiter *w)
{
    struct waiter **pp = &l->head;

    while (*pp != w)
        pp = &(*pp)->next;
    *pp = w->next;
    if (l->tail == &w->next)
        l->tail = pp;
    l->waiting_held -= w->held;
    /* the next in line may go now, or see that it never will */
    pthread_cond_broadcast(&l->room);
}

int
backupd_limits_take_wait(struct backupd_limits *l, uint64_t bytes,
                         uint64_t held, unsigned wait_secs,
                         const struct backupd_wait_ops *ops, void *opaque)
{
    struct waiter *w;
    struct timespec until;
    uint64_t deadline = lb_now_ns() + wait_secs * 1000000000ull;
    int e = 0;
    bool told = false;

    if (take_now(l, bytes, true))
        return 0;
    pthread_mutex_lock(&l->lock);
    if (bytes > l->max || wait_secs == 0) {
        pthread_mutex_unlock(&l->lock);
        return EBUSY;
    }
    w = lb_xcalloc(1, sizeof *w);
    w->held = held;
    *l->tail = w;
    l->tail = &w->next;
    l->waiting_held += held;
    /* the head may see now that only waiters hold memory */
    pthread_cond_broadcast(&l->room);
    for (;;) {
        if (l->head == w) {
            if (bytes <= l->max - l->used) {
                l->used += bytes;
                break;
            }
            /* Nobody but the waiters holds memory: none will come back. */
            if (l->used <= l->waiting_held) {
                e = EBUSY;
                break;
            }
        }
        if (!told) {
            unsigned ahead = 0;
            for (struct waiter *p = l->head; p != w; p = p->next)
                ahead++;
            /* (unlocked: it may write to the client; w stays queued) */
            pthread_mutex_unlock(&l->lock);
            ops->waiting(opaque, ahead);
            pthread_mutex_lock(&l->lock);
            told = true;
            continue;
        }
        uint64_t now = lb_now_ns();
        if (now >= deadline) {
            e = ETIMEDOUT;
            break;
        }
        /* wake at least every second to see whether the client left
         * (lb_now_ns is the condition's clock, CLOCK_MONOTONIC) */
        uint64_t t = LB_MIN(deadline, now + 1000000000ull);
        until.tv_sec = (time_t)(t / 1000000000ull);
        until.tv_nsec = (long)(t % 1000000000ull);
        pthread_cond_timedwait(&l->room, &l->lock, &until);
        if (ops->gone(opaque)) {
            e = ECONNABORTED;
            break;
        }
    }
    unqueue(l, w);
    pthread_mutex_unlock(&l->lock);
    free(w);
    return e;
}

void
backupd_limits_give(struct backupd_limits *l, uint64_t bytes)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->lock);
    l->used -= LB_MIN(bytes, l->used);
    if (l->head)
        pthread_cond_broadcast(&l->room);
    pthread_mutex_unlock(&l->lock);
}

uint64_t
backupd_limits_max(const struct backupd_limits *l)
{
    return l ? l->max : 0;
}
