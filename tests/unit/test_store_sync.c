/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The file backend's group commit (backend.h, sync_staged; FORMAT.md,
 * "Chunk files"): chunks staged together are made durable by one syncfs
 * before any of them is named, a chunk alone by its own fdatasync, and
 * after a failed syncfs each one still syncs its own before its link. The
 * order is what a crash would show, so the test watches the calls: this
 * executable interposes syncfs, fdatasync and linkat (the store library
 * is linked into it) and logs them, passing them on to libc.
 */
#include "store/backend.h"
#include "store/be_file_int.h"
#include "store/store.h"
#include "tests/unit/testutil.h"

#include <criterion/criterion.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the calls, logged -------------------------------------------------- */

enum ev { EV_SYNCFS = 1, EV_FDATASYNC, EV_LINK };
static enum ev evlog[256];
static size_t nev;
static bool syncfs_fails;

static void
note(enum ev e)
{
    if (nev < sizeof evlog / sizeof *evlog)
        evlog[nev] = e;
    nev++;
}

int
syncfs(int fd)
{
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "syncfs");

    note(EV_SYNCFS);
    if (syncfs_fails) {
        errno = EIO;
        return -1;
    }
    return real(fd);
}

int
fdatasync(int fd)
{
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");

    note(EV_FDATASYNC);
    return real(fd);
}

int
linkat(int ofd, const char *op, int nfd, const char *np, int flags)
{
    int (*real)(int, const char *, int, const char *, int) =
        (int (*)(int, const char *, int, const char *, int))dlsym(RTLD_NEXT,
                                                                  "linkat");

    note(EV_LINK);
    return real(ofd, op, nfd, np, flags);
}

/* The log as a string: S syncfs, F fdatasync, L link. */
static const char *
evs(void)
{
    static char s[sizeof evlog / sizeof *evlog + 1];
    size_t n = nev < sizeof evlog / sizeof *evlog ? nev : sizeof evlog;

    for (size_t i = 0; i < n; i++)
        s[i] = "?SFL"[evlog[i]];
    s[n] = '\0';
    return s;
}

/* ---- a session of the file backend -------------------------------------- */

static char *tmp;
static struct store_be *be;

static void
setup(void)
{
    CLEANUP_FREE char *c = NULL;
    CLEANUP_FREE char *t = NULL;

    tmp = tu_mkdtemp();
    lb_log_set_level(LB_LOG_ERROR);
    c = lb_xasprintf("%s/chunks/ab", tmp);
    t = lb_xasprintf("%s/tmp", tmp);
    cr_assert_eq(lb_mkdir_p(c, 0700), 0);
    cr_assert_eq(mkdir(t, 0700), 0);
    be = store_be_file_open(tmp);
    cr_assert_not_null(be, "%s", lb_error_msg());
    cr_assert_eq(be->ops->session_begin(be), 0, "%s", lb_error_msg());
    cr_assert_not_null(be->ops->sync_staged);
    syncfs_fails = false;
}

static void
teardown(void)
{
    store_be_close(be);
    tu_rm_rf(tmp);
    free(tmp);
}

TestSuite(store_sync, .init = setup, .fini = teardown);

static const enum be_file_stage_mode modes[] = {
    BE_FILE_STAGE_EMPTY_PATH, BE_FILE_STAGE_PROC_FD, BE_FILE_STAGE_NAMED};
#define NMODES (sizeof modes / sizeof *modes)
#define N 5

/* Stage N objects chunks/ab/<mode><k>, each holding "<mode><k>". */
static void
stage_n(size_t m, struct store_be_staged **s)
{
    for (int k = 0; k < N; k++) {
        char obj[32], body[8];
        snprintf(obj, sizeof obj, "chunks/ab/%zu%d", m, k);
        snprintf(body, sizeof body, "%zu%d", m, k);
        cr_assert_eq(be->ops->stage(be, obj, "", 0, body, strlen(body), &s[k]),
                     0, "mode %zu: %s", m, lb_error_msg());
    }
}

/* Mode m's turn: the backend stages in mode m, N objects are staged, and
 * the log starts empty. */
static void
begin_mode(size_t m, struct store_be_staged **s)
{
    ((struct be_file *)be)->stage_mode = modes[m];
    stage_n(m, s);
    nev = 0;
}

/* Publish what stage_n staged, and read each back. */
static void
publish_n(size_t m, struct store_be_staged **s)
{
    for (int k = 0; k < N; k++) {
        char obj[32], body[8], buf[8] = {0};
        snprintf(obj, sizeof obj, "chunks/ab/%zu%d", m, k);
        snprintf(body, sizeof body, "%zu%d", m, k);
        cr_assert_eq(be->ops->publish(be, s[k], obj), 0, "mode %zu: %s", m,
                     lb_error_msg());
        be->ops->unstage(be, s[k]);
        cr_assert_eq(be->ops->read(be, obj, buf, sizeof buf - 1, 0),
                     (ssize_t)strlen(body));
        cr_assert_str_eq(buf, body);
    }
}

Test(store_sync, several_staged_are_made_durable_by_one_syncfs_before_any_name)
{
    for (size_t m = 0; m < NMODES; m++) {
        struct store_be_staged *s[N];

        begin_mode(m, s);
        cr_assert_eq(be->ops->sync_staged(be, s, N), 0, "%s", lb_error_msg());
        publish_n(m, s);
        /* one sync for all, then only the names: no fdatasync each */
        cr_assert_str_eq(evs(), "SLLLLL", "mode %zu: %s", m, evs());
    }
}

Test(store_sync, a_chunk_alone_is_synced_by_its_publish)
{
    for (size_t m = 0; m < NMODES; m++) {
        struct store_be_staged *s;
        char obj[32];

        ((struct be_file *)be)->stage_mode = modes[m];
        snprintf(obj, sizeof obj, "chunks/ab/one%zu", m);
        cr_assert_eq(be->ops->stage(be, obj, "", 0, "x", 1, &s), 0);
        nev = 0;
        cr_assert_eq(be->ops->sync_staged(be, &s, 1), 0);
        cr_assert_eq(be->ops->publish(be, s, obj), 0, "%s", lb_error_msg());
        be->ops->unstage(be, s);
        /* a syncfs would write what others left dirty: one fdatasync */
        cr_assert_str_eq(evs(), "FL", "mode %zu: %s", m, evs());
    }
}

Test(store_sync, after_a_failed_syncfs_each_syncs_its_own_before_its_name)
{
    for (size_t m = 0; m < NMODES; m++) {
        struct store_be_staged *s[N];

        begin_mode(m, s);
        syncfs_fails = true;
        cr_assert_eq(be->ops->sync_staged(be, s, N), -1);
        cr_assert_eq(lb_error_errno(), EIO);
        cr_assert(strstr(lb_error_msg(), "sync repository"), "%s",
                  lb_error_msg());
        syncfs_fails = false;
        publish_n(m, s);
        cr_assert_str_eq(evs(), "SFLFLFLFLFL", "mode %zu: %s", m, evs());
    }
}

/* The store's side: store_chunks_sync groups what the pool's sync thread
 * hands it, and says whether the backend syncs together at all. */
Test(store_sync, store_chunks_sync_syncs_written_chunks_together)
{
    CLEANUP_FREE char *repo = lb_xasprintf("%s/repo", tmp);
    struct store_scratch *sc = store_scratch_new();
    struct store_written w[N];
    struct tu_chunk c[N];
    struct store *st;

    cr_assert_eq(store_init(repo, 64u << 10), 0, "%s", lb_error_msg());
    st = store_open(repo, STORE_WRITE, 0);
    cr_assert_not_null(st, "%s", lb_error_msg());
    cr_assert(store_chunks_sync_together(st));
    for (int k = 0; k < N; k++) {
        tu_chunk_raw(&c[k], 64u << 10, 100 + (uint32_t)k);
        cr_assert_eq(store_chunk_write(st, sc, &c[k].c, &w[k]), 0, "%s",
                     lb_error_msg());
    }
    nev = 0;
    cr_assert_eq(store_chunks_sync(st, w, N), 0, "%s", lb_error_msg());
    for (int k = 0; k < N; k++) {
        uint64_t stored = 0;
        struct lb_buf out = {0};
        struct proto_chunk got;
        cr_assert_eq(store_chunk_publish(st, &w[k], &stored), 0, "%s",
                     lb_error_msg());
        cr_assert_gt(stored, 0);
        cr_assert_eq(store_chunk_read(st, &c[k].c.d, &out, &got), 0, "%s",
                     lb_error_msg());
        cr_assert_eq(got.data_len, c[k].c.data_len);
        cr_assert_eq(memcmp(got.data, c[k].c.data, got.data_len), 0);
        lb_buf_free(&out);
        tu_chunk_free(&c[k]);
    }
    cr_assert_str_eq(evs(), "SLLLLL", "%s", evs());
    store_scratch_free(sc);
    store_close(st);
}
