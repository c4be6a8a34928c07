/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * store/repo.c: init (and what it refuses), open (and the error class of
 * each failure), locking between writers and exclusive operations, and
 * session directories.
 */
#include "store/store.h"
#include "tests/unit/testutil.h"

#include <sys/time.h>
#include <time.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

static char *tmp, *repo;

static void
setup(void)
{
    tmp = tu_mkdtemp();
    repo = lb_xasprintf("%s/repo", tmp);
    lb_log_set_level(LB_LOG_ERROR);
    lb_error_clear();
}

static void
teardown(void)
{
    tu_rm_rf(tmp);
    free(tmp);
    free(repo);
}

TestSuite(repo, .init = setup, .fini = teardown);

static char *
at(const char *rel)
{
    return lb_xasprintf("%s/%s", repo, rel);
}

/* ---- init ---------------------------------------------------------------- */

Test(repo, init_creates_the_layout)
{
    CLEANUP_FREE char *cfg = at("config");
    CLEANUP_FREE char *text = NULL;
    size_t len;

    cr_assert_eq(store_init(repo, 1u << 20), 0, "%s", lb_error_msg());
    text = (char *)tu_read_file(cfg, &len);
    cr_assert_not_null(text);
    text[len] = '\0';
    cr_assert_eq(strncmp(text, "livebackup-repository 1\n", 24), 0, "%s", text);
    cr_assert_neq(strstr(text, "\nwindow_size 1048576\n"), NULL);
    cr_assert_neq(strstr(text, "\nid "), NULL);
    cr_assert_neq(strstr(text, "\ncreated "), NULL);
    for (unsigned i = 0; i < 256; i++) {
        char rel[16];
        CLEANUP_FREE char *d = NULL;
        snprintf(rel, sizeof rel, "chunks/%02x", i);
        d = at(rel);
        cr_assert(tu_exists(d), "%s", d);
    }
    {
        CLEANUP_FREE char *b = at("backups");
        CLEANUP_FREE char *t = at("tmp");
        CLEANUP_FREE char *l = at("lock");
        cr_assert(tu_exists(b) && tu_exists(t) && tu_exists(l));
    }
    cr_assert_eq(tu_count_entries(repo), 5, "config chunks backups tmp lock");
}

Test(repo, init_in_an_empty_directory)
{
    cr_assert_eq(mkdir(repo, 0700), 0);
    cr_assert_eq(store_init(repo, PROTO_DEFAULT_WINDOW), 0, "%s",
                 lb_error_msg());
}

Test(repo, init_refuses_an_existing_repository)
{
    CLEANUP_FREE char *cfg = at("config");
    uint8_t *before, *after;
    size_t l1, l2;

    cr_assert_eq(store_init(repo, PROTO_DEFAULT_WINDOW), 0);
    before = tu_read_file(cfg, &l1);
    errno = 0;
    cr_assert_eq(store_init(repo, PROTO_MIN_WINDOW), -1);
    cr_assert_eq(lb_error_errno(), EEXIST);
    cr_assert_eq(errno, EEXIST);
    after = tu_read_file(cfg, &l2);
    cr_assert_eq(l1, l2);
    cr_assert_arr_eq(before, after, l1, "config untouched");
    free(before);
    free(after);
}

Test(repo, init_refuses_a_foreign_directory)
{
    CLEANUP_FREE char *f = at("photos.jpg");
    CLEANUP_FREE char *chunks = at("chunks");

    cr_assert_eq(mkdir(repo, 0700), 0);
    tu_write_file(f, "x", 1);
    errno = 0;
    cr_assert_eq(store_init(repo, PROTO_DEFAULT_WINDOW), -1);
    cr_assert_eq(lb_error_errno(), ENOTEMPTY, "slot errno %d",
                 lb_error_errno());
    cr_assert_eq(errno, ENOTEMPTY);
    cr_assert_neq(lb_error_hint_msg()[0], '\0', "a hint says what to do");
    cr_assert_not(tu_exists(chunks), "nothing created");
    cr_assert_eq(tu_count_entries(repo), 1);
}

Test(repo, init_resumes_an_interrupted_init)
{
    CLEANUP_FREE char *chunks = at("chunks/00");
    CLEANUP_FREE char *t = at("tmp");

    cr_assert_eq(lb_mkdir_p(chunks, 0700), 0);
    cr_assert_eq(mkdir(t, 0700), 0);
    cr_assert_eq(store_init(repo, PROTO_DEFAULT_WINDOW), 0, "%s",
                 lb_error_msg());
    {
        struct store *st = store_open(repo, STORE_READ, 0);
        cr_assert_not_null(st, "%s", lb_error_msg());
        store_close(st);
    }
}

Test(repo, init_refuses_bad_window_sizes_and_files)
{
    CLEANUP_FREE char *f = lb_xasprintf("%s/file", tmp);

    cr_assert_eq(store_init(repo, 3u << 20), -1);
    cr_assert_eq(lb_error_errno(), EINVAL);
    cr_assert_eq(store_init(repo, PROTO_MAX_WINDOW * 2), -1);
    cr_assert_not(tu_exists(repo), "nothing created");
    tu_write_file(f, "x", 1);
    cr_assert_eq(store_init(f, PROTO_DEFAULT_WINDOW), -1);
    cr_assert_eq(lb_error_errno(), ENOTDIR);
}

/* ---- open ---------------------------------------------------------------- */

Test(repo, open_reads_the_config)
{
    struct store *st;

    cr_assert_eq(store_init(repo, 1u << 17), 0);
    st = store_open(repo, STORE_READ, 0);
    cr_assert_not_null(st, "%s", lb_error_msg());
    cr_assert_eq(store_window_size(st), 1u << 17);
    cr_assert_eq(strlen(store_repo_id(st)), 32);
    cr_assert_str_eq(store_path(st), repo);
    cr_assert_not(store_append_only(st));
    store_set_append_only(st, true);
    cr_assert(store_append_only(st));
    store_close(st);
    store_close(NULL);
}

Test(repo, open_a_missing_directory_is_enoent)
{
    cr_assert_null(store_open(repo, STORE_READ, 0));
    cr_assert_eq(lb_error_errno(), ENOENT);
    cr_assert_eq(errno, ENOENT);
    cr_assert_neq(strstr(lb_error_hint_msg(), "init"), NULL,
                  "the hint says how to create one");
}

Test(repo, open_a_directory_without_config_is_enotdir)
{
    cr_assert_eq(mkdir(repo, 0700), 0);
    cr_assert_null(store_open(repo, STORE_WRITE, 0));
    cr_assert_eq(lb_error_errno(), ENOTDIR);
}

Test(repo, open_a_foreign_config_is_enotdir)
{
    CLEANUP_FREE char *cfg = at("config");

    cr_assert_eq(mkdir(repo, 0700), 0);
    tu_write_file(cfg, "[core]\nbare = true\n", 19);
    cr_assert_null(store_open(repo, STORE_READ, 0));
    cr_assert_eq(lb_error_errno(), ENOTDIR);
}

Test(repo, open_a_newer_format_is_erange)
{
    CLEANUP_FREE char *cfg = at("config");
    static const char text[] = "livebackup-repository 3\nwindow_size 65536\n"
                               "id 0123\ncreated 2030-01-01T00:00:00Z\n";

    cr_assert_eq(store_init(repo, PROTO_MIN_WINDOW), 0);
    tu_write_file(cfg, text, sizeof text - 1);
    cr_assert_null(store_open(repo, STORE_READ, 0));
    cr_assert_eq(lb_error_errno(), ERANGE);
    cr_assert_neq(strstr(lb_error_msg(), "version 3"), NULL, "%s",
                  lb_error_msg());
    cr_assert_neq(lb_error_hint_msg()[0], '\0');
}

Test(repo, open_a_config_with_a_bad_window_is_eproto)
{
    CLEANUP_FREE char *cfg = at("config");
    static const char text[] = "livebackup-repository 1\nwindow_size 1000\n";

    cr_assert_eq(store_init(repo, PROTO_MIN_WINDOW), 0);
    tu_write_file(cfg, text, sizeof text - 1);
    cr_assert_null(store_open(repo, STORE_READ, 0));
    cr_assert_eq(lb_error_errno(), EPROTO);
}

/* ---- locking ------------------------------------------------------------- */

Test(repo, admin_fails_at_once_while_a_writer_is_open)
{
    struct store *w, *a;
    uint64_t t0;

    cr_assert_eq(store_init(repo, PROTO_MIN_WINDOW), 0);
    w = store_open(repo, STORE_WRITE, 0);
    cr_assert_not_null(w, "%s", lb_error_msg());
    t0 = lb_now_ns();
    a = store_open(repo, STORE_ADMIN, 0);
    cr_assert_null(a);
    cr_assert_eq(lb_error_errno(), EWOULDBLOCK);
    cr_assert_lt(lb_now_ns() - t0, 500000000ull, "no waiting");
    cr_assert_neq(lb_error_hint_msg()[0], '\0');
    store_close(w);
    a = store_open(repo, STORE_ADMIN, 0);
    cr_assert_not_null(a, "free once the writer is gone: %s", lb_error_msg());
    store_close(a);
}

Test(repo, writers_and_readers_fail_while_admin_is_open)
{
    struct store *a, *x;

    cr_assert_eq(store_init(repo, PROTO_MIN_WINDOW), 0);
    a = store_open(repo, STORE_ADMIN, 0);
    cr_assert_not_null(a, "%s", lb_error_msg());
    x = store_open(repo, STORE_WRITE, 0);
    cr_assert_null(x);
    cr_assert_eq(lb_error_errno(), EWOULDBLOCK);
    cr_assert_neq(strstr(lb_error_msg(), "exclusive operation (pid"), NULL,
                  "names the holder: %s", lb_error_msg());
    x = store_open(repo, STORE_READ, 0);
    cr_assert_null(x);
    cr_assert_eq(lb_error_errno(), EWOULDBLOCK);
    x = store_open(repo, STORE_ADMIN, 0);
    cr_assert_null(x);
    cr_assert_eq(lb_error_errno(), EWOULDBLOCK);
    store_close(a);
    x = store_open(repo, STORE_WRITE, 0);
    cr_assert_not_null(x, "%s", lb_error_msg());
    store_close(x);
}

Test(repo, shared_openers_coexist)
{
    struct store *w1, *w2, *r;

    cr_assert_eq(store_init(repo, PROTO_MIN_WINDOW), 0);
    w1 = store_open(repo, STORE_WRITE, 0);
    w2 = store_open(repo, STORE_WRITE, 0);
    r = store_open(repo, STORE_READ, 0);
    cr_assert_not_null(w1);
    cr_assert_not_null(w2, "%s", lb_error_msg());
    cr_assert_not_null(r, "%s", lb_error_msg());
    {
        CLEANUP_FREE char *t = at("tmp");
        cr_assert_eq(tu_count_entries(t), 2, "one session per writer");
    }
    store_close(w1);
    store_close(w2);
    store_close(r);
}

Test(repo, lock_wait_gives_up_after_the_timeout)
{
    struct store *w, *a;
    uint64_t t0;

    cr_assert_eq(store_init(repo, PROTO_MIN_WINDOW), 0);
    w = store_open(repo, STORE_WRITE, 0);
    t0 = lb_now_ns();
    a = store_open(repo, STORE_ADMIN, 1);
    cr_assert_null(a);
    cr_assert_eq(lb_error_errno(), EWOULDBLOCK);
    cr_assert_geq(lb_now_ns() - t0, 900000000ull, "waited about 1 s");
    store_close(w);
}

/* ---- sessions ------------------------------------------------------------ */

Test(repo, sessions_are_removed_on_close_and_after_crashes)
{
    CLEANUP_FREE char *t = at("tmp");
    CLEANUP_FREE char *dead = at("tmp/4242-deadbeef");
    CLEANUP_FREE char *dead_lock = at("tmp/4242-deadbeef/.lock");
    CLEANUP_FREE char *dead_file = at("tmp/4242-deadbeef/chunk.1");
    CLEANUP_FREE char *nolock = at("tmp/4243-0000");
    CLEANUP_FREE char *young = at("tmp/4244-1111");
    struct store *w;

    cr_assert_eq(store_init(repo, PROTO_MIN_WINDOW), 0);
    w = store_open(repo, STORE_WRITE, 0);
    cr_assert_eq(tu_count_entries(t), 1);
    store_close(w);
    cr_assert_eq(tu_count_entries(t), 0, "close removes the session");

    /* A crashed session: its lock file is there but nobody holds it. */
    cr_assert_eq(mkdir(dead, 0700), 0);
    tu_write_file(dead_lock, "", 0);
    tu_write_file(dead_file, "partial", 7);
    cr_assert_eq(mkdir(nolock, 0700), 0);
    cr_assert_eq(mkdir(young, 0700), 0);
    {
        /* A lockless directory is a dead session only when it is old: a
         * young one may be a session being created right now. */
        struct timeval tv[2] = {{time(NULL) - 3600, 0}, {time(NULL) - 3600, 0}};
        cr_assert_eq(utimes(nolock, tv), 0);
    }
    w = store_open(repo, STORE_WRITE, 0);
    cr_assert_not_null(w);
    cr_assert_not(tu_exists(dead), "stale session removed");
    cr_assert_not(tu_exists(nolock), "old session without a lock removed");
    cr_assert(tu_exists(young), "a session being created is left alone");
    cr_assert_eq(tu_count_entries(t), 2);
    store_close(w);
}

Test(repo, a_live_session_is_not_removed)
{
    CLEANUP_FREE char *t = at("tmp");
    struct store *w1, *w2;

    cr_assert_eq(store_init(repo, PROTO_MIN_WINDOW), 0);
    w1 = store_open(repo, STORE_WRITE, 0);
    w2 = store_open(repo, STORE_WRITE, 0);
    cr_assert_eq(tu_count_entries(t), 2, "w2 left w1's session alone");
    store_close(w2);
    cr_assert_eq(tu_count_entries(t), 1);
    store_close(w1);
}

Test(repo, a_symlink_in_tmp_is_never_followed)
{
    CLEANUP_FREE char *t = at("tmp");
    CLEANUP_FREE char *elsewhere = lb_xasprintf("%s/elsewhere", tmp);
    CLEANUP_FREE char *lock = lb_xasprintf("%s/elsewhere/.lock", tmp);
    CLEANUP_FREE char *keep = lb_xasprintf("%s/elsewhere/keep", tmp);
    CLEANUP_FREE char *link = at("tmp/4245-2222");
    struct store *w;

    /* What looks like a dead session (a free .lock) behind a symlink: a
     * sweep must not remove what the link points to. */
    cr_assert_eq(store_init(repo, PROTO_MIN_WINDOW), 0);
    cr_assert_eq(mkdir(elsewhere, 0700), 0);
    tu_write_file(lock, "", 0);
    tu_write_file(keep, "data", 4);
    cr_assert_eq(symlink(elsewhere, link), 0);
    w = store_open(repo, STORE_WRITE, 0);
    cr_assert_not_null(w);
    cr_assert(tu_exists(keep), "the symlink's target was swept");
    store_close(w);
    cr_assert(tu_exists(keep));
    cr_assert_eq(unlink(link), 0);
}
