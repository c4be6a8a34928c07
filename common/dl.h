/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A library loaded when first needed (dl.c): libvirt by the agent's live
 * layer (agent/live/virt_dl.h), librados by the RADOS backend
 * (store/rados_dl.h), so that what never uses them never loads them and
 * the libraries behind them. A module lists the functions it calls once,
 * in an X-macro; LB_DL_* make from it the index of each function in the
 * table that lb_dl_load fills, and a call goes through the table with the
 * type of the library's own declaration.
 */
#ifndef LB_COMMON_DL_H
#define LB_COMMON_DL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct lb_dl {
    const char *soname;  /* "librados.so.2" */
    const char *package; /* Debian's package that provides it */
    const char *const *names;
    size_t n;
    void **fn; /* n slots, filled in the order of names */
    /* the state of the one load (guarded inside dl.c) */
    bool tried, loaded;
    char error[256];
};

/* Load d's library and every function it names, once for the process
 * (later calls return the first one's result): 0, or -1 with an error,
 * "cannot load SONAME for WHAT: REASON", and a hint naming the package. */
int lb_dl_load(struct lb_dl *d, const char *what);

/* Expand to the index enum (PREFIX_f for each f) and its count PREFIX_N. */
#define LB_DL_INDEX(f) LB_DL_IDX_##f,
/* Expand to the names array's entries. */
#define LB_DL_NAME(f) #f,

/*
 * A module's header: LB_DL_DECLARE(lb_nbd, LB_NBD_FUNCS, LB_NBD_N)
 * declares the index of each function FUNCS lists, their count N, the
 * table lb_nbd_fn (set by a successful load) and its loader lb_nbd_load
 * (0, or -1 with an error that says which package provides the library).
 * Its .c file: LB_DL_DEFINE(lb_nbd, LB_NBD_FUNCS, LB_NBD_N, SONAME,
 * PACKAGE, WHAT) defines both, WHAT naming what needed it in the error.
 */
/* NOLINTBEGIN(bugprone-macro-parentheses): N is an enumerator's name */
#define LB_DL_DECLARE(prefix, FUNCS, N)                                        \
    enum { FUNCS(LB_DL_INDEX) N };                                             \
    extern void *prefix##_fn[N];                                               \
    int prefix##_load(void)
/* NOLINTEND(bugprone-macro-parentheses) */
#define LB_DL_DEFINE(prefix, FUNCS, N, soname_, package_, what)                \
    void *prefix##_fn[N];                                                      \
    static const char *const prefix##_names[] = {FUNCS(LB_DL_NAME)};           \
    static struct lb_dl prefix##_dl = {.soname = (soname_),                    \
                                       .package = (package_),                  \
                                       .names = prefix##_names,                \
                                       .n = (N),                               \
                                       .fn = prefix##_fn};                     \
    int prefix##_load(void)                                                    \
    {                                                                          \
        return lb_dl_load(&prefix##_dl, (what));                               \
    }

/* A call of function f of a module's table, with its arguments, with the
 * type of the library's own declaration of f. */
/* NOLINTNEXTLINE(bugprone-macro-parentheses): a function's name */
#define LB_DL_CALL(table, f, ...)                                              \
    ((__typeof__(f) *)(table)[LB_DL_IDX_##f])(__VA_ARGS__)

#endif
