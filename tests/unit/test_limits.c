/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * backupd/limits.c: backupd listen's memory bound. Reservations that fit,
 * spare room only when nobody waits, and the queue of sessions that wait
 * for room: first come, first served (a later, smaller one that would fit
 * does not go first), its end (timeout), a client gone, and a wait that
 * could never end (only waiters hold memory) refused at once.
 */
#include "backupd/backupd.h"
#include "tests/unit/testutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>

struct waiter_arg {
    struct backupd_limits *l;
    uint64_t bytes, held;
    unsigned wait_secs;
    sem_t queued;    /* posted when the waiter said it waits */
    bool gone;       /* what ops.gone answers */
    int rc;
    int order;       /* when it got its bytes (shared counter) */
};

static int served;
static pthread_mutex_t served_lock = PTHREAD_MUTEX_INITIALIZER;

static void
w_waiting(void *opaque, unsigned ahead)
{
    struct waiter_arg *a = opaque;

    (void)ahead;
    sem_post(&a->queued);
}

static bool
w_gone(void *opaque)
{
    const struct waiter_arg *a = opaque;

    return __atomic_load_n(&a->gone, __ATOMIC_SEQ_CST);
}

static const struct backupd_wait_ops ops = {w_waiting, w_gone};

static void *
waiter(void *opaque)
{
    struct waiter_arg *a = opaque;

    a->rc = backupd_limits_take_wait(a->l, a->bytes, a->held, a->wait_secs,
                                     &ops, a);
    pthread_mutex_lock(&served_lock);
    a->order = ++served;
    pthread_mutex_unlock(&served_lock);
    return NULL;
}

static void
start(pthread_t *th, struct waiter_arg *a, struct backupd_limits *l,
      uint64_t bytes, uint64_t held, unsigned wait_secs)
{
    a->l = l;
    a->bytes = bytes;
    a->held = held;
    a->wait_secs = wait_secs;
    a->rc = -1;
    sem_init(&a->queued, 0, 0);
    cr_assert_eq(pthread_create(th, NULL, waiter, a), 0);
}

Test(limits, take_and_spare)
{
    struct backupd_limits *l = backupd_limits_new(100);

    cr_assert(backupd_limits_take(l, 60));
    cr_assert_not(backupd_limits_take(l, 41));
    cr_assert(backupd_limits_take_spare(l, 40));
    cr_assert_not(backupd_limits_take(l, 1));
    backupd_limits_give(l, 100);
    /* no wait needed: taken at once, without a word */
    cr_assert_eq(backupd_limits_take_wait(l, 100, 0, 10, &ops, NULL), 0);
    backupd_limits_give(l, 100);
    /* larger than the bound, or no wait allowed: EBUSY at once */
    cr_assert_eq(backupd_limits_take_wait(l, 101, 0, 10, &ops, NULL), EBUSY);
    cr_assert(backupd_limits_take(l, 50));
    cr_assert_eq(backupd_limits_take_wait(l, 60, 0, 0, &ops, NULL), EBUSY);
    backupd_limits_give(l, 50);
    backupd_limits_free(l);
    /* no bound: everything fits */
    cr_assert(backupd_limits_take(NULL, UINT64_MAX));
    cr_assert_eq(backupd_limits_take_wait(NULL, UINT64_MAX, 0, 0, &ops, NULL),
                 0);
}

Test(limits, first_come_first_served)
{
    struct backupd_limits *l = backupd_limits_new(100);
    struct waiter_arg b = {0}, c = {0};
    pthread_t tb, tc;
    int c_order;

    served = 0;
    cr_assert(backupd_limits_take(l, 60)); /* a running session */
    /* b waits at most 5 s: were c served first, b would time out */
    start(&tb, &b, l, 50, 0, 5);
    sem_wait(&b.queued);
    /* c's 30 would fit (60 + 30), but b came first */
    start(&tc, &c, l, 30, 0, 60);
    sem_wait(&c.queued);
    /* and nobody takes spare room while they wait */
    cr_assert_not(backupd_limits_take_spare(l, 1));
    /* room for one of them: b's 50 (50 + 50) or c's 30 (50 + 30), not
     * both; first come, first served gives it to b, and c waits on */
    backupd_limits_give(l, 10);
    pthread_join(tb, NULL);
    cr_assert_eq(b.rc, 0, "b was not served: %d", b.rc);
    cr_assert_eq(b.order, 1, "b served %d", b.order);
    pthread_mutex_lock(&served_lock);
    c_order = c.order;
    pthread_mutex_unlock(&served_lock);
    cr_assert_eq(c_order, 0, "c was served beside b (%d)", c_order);
    /* the running session ends: c's turn */
    backupd_limits_give(l, 50);
    pthread_join(tc, NULL);
    cr_assert_eq(c.rc, 0);
    cr_assert_eq(c.order, 2, "c served %d", c.order);
    /* both hold theirs: 80 of 100 */
    cr_assert(backupd_limits_take(l, 20));
    cr_assert_not(backupd_limits_take(l, 1));
    backupd_limits_free(l);
}

Test(limits, timeout)
{
    struct backupd_limits *l = backupd_limits_new(100);
    struct waiter_arg a = {0};
    uint64_t t0 = lb_now_ns();

    sem_init(&a.queued, 0, 0);
    cr_assert(backupd_limits_take(l, 90));
    cr_assert_eq(backupd_limits_take_wait(l, 20, 0, 1, &ops, &a), ETIMEDOUT);
    cr_assert_geq(lb_now_ns() - t0, 1000000000ull);
    /* the queue is empty again: spare room can be taken */
    cr_assert(backupd_limits_take_spare(l, 10));
    backupd_limits_free(l);
}

Test(limits, gone)
{
    struct backupd_limits *l = backupd_limits_new(100);
    struct waiter_arg b = {0};
    pthread_t tb;

    cr_assert(backupd_limits_take(l, 90));
    start(&tb, &b, l, 20, 0, 3600);
    sem_wait(&b.queued);
    __atomic_store_n(&b.gone, true, __ATOMIC_SEQ_CST);
    pthread_join(tb, NULL);
    cr_assert_eq(b.rc, ECONNABORTED);
    cr_assert(backupd_limits_take(l, 10));
    backupd_limits_free(l);
}

Test(limits, only_waiters_hold_memory)
{
    struct backupd_limits *l = backupd_limits_new(100);
    struct waiter_arg b = {0}, c = {0};
    pthread_t tb, tc;

    /* b holds 60 (its session's frame) and waits for 50: only a session
     * that is not waiting could give memory back, and c, which holds 20
     * and waits too, is none */
    cr_assert(backupd_limits_take(l, 80));
    served = 0;
    start(&tc, &c, l, 90, 20, 3600); /* first in line, cannot fit */
    sem_wait(&c.queued);
    start(&tb, &b, l, 50, 60, 3600);
    /* c's wait ends (EBUSY) as soon as b, the only other holder, waits
     * too; then b, alone and holding 80 with 60 of them its own and 20
     * c's (c's caller gives them back, not the bound) waits on */
    pthread_join(tc, NULL);
    cr_assert_eq(c.rc, EBUSY, "c: %d", c.rc);
    backupd_limits_give(l, 20); /* c's session ends */
    pthread_join(tb, NULL);
    cr_assert_eq(b.rc, EBUSY, "b: %d", b.rc);
    backupd_limits_free(l);
}
