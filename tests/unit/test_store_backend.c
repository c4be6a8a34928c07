/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * store/backend.h on the file backend (be_file.c): the contract every
 * backend keeps. Exclusive create (1 and the old bytes kept when it
 * exists), ranged reads, stat and touch, replace, remove (ENOENT after),
 * listing by prefix (not temp files, not other prefixes), remove_if_old
 * (kept if newer than the cutoff or touched, removed otherwise), the
 * counter (from a floor, from threads: no number twice), locks (shared
 * with shared, exclusive against both, who holds it, released on unlock),
 * head_many (a batch of touches and header reads; a large one on many
 * threads, each answer at its index, a failure in its middle reported),
 * read_many (ranged reads of a batch on many threads, each answer at its
 * index, a missing object or a bad name failing only its own), prefetch
 * (a hint), open, a writer's
 * session with creates in two steps (stage, publish) and the commit, and
 * names that would climb out of the directory. Then rados: specs (parsed
 * without a cluster) and --restrict-to-repo's check of them.
 */
#include "store/backend.h"
#include "store/be_file_int.h"
#include "tests/unit/testutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char *tmp;
static struct store_be *be;

static void
setup(void)
{
    CLEANUP_FREE char *c = NULL;

    tmp = tu_mkdtemp();
    lb_log_set_level(LB_LOG_ERROR);
    c = lb_xasprintf("%s/chunks/ab", tmp);
    cr_assert_eq(lb_mkdir_p(c, 0700), 0);
    be = store_be_file_open(tmp);
    cr_assert_not_null(be, "%s", lb_error_msg());
    cr_assert_str_eq(be->ops->kind, "file");
}

static void
teardown(void)
{
    store_be_close(be);
    tu_rm_rf(tmp);
    free(tmp);
}

TestSuite(store_backend, .init = setup, .fini = teardown);

Test(store_backend, create_is_exclusive)
{
    char buf[16] = {0};

    cr_assert_eq(be->ops->create(be, "chunks/ab/x", "hello", 5), 0);
    cr_assert_eq(be->ops->create(be, "chunks/ab/x", "other", 5), 1);
    cr_assert_eq(be->ops->read(be, "chunks/ab/x", buf, sizeof buf, 0), 5);
    cr_assert_str_eq(buf, "hello");
    memset(buf, 0, sizeof buf);
    cr_assert_eq(be->ops->read(be, "chunks/ab/x", buf, 3, 2), 3);
    cr_assert_str_eq(buf, "llo");
}

Test(store_backend, missing_objects)
{
    char buf[4];
    uint64_t size;

    cr_assert_eq(be->ops->read(be, "nope", buf, sizeof buf, 0), -1);
    cr_assert_eq(lb_error_errno(), ENOENT);
    cr_assert_eq(be->ops->stat(be, "nope", &size, NULL), -1);
    cr_assert_eq(lb_error_errno(), ENOENT);
    cr_assert_eq(be->ops->touch(be, "nope"), -1);
    cr_assert_eq(lb_error_errno(), ENOENT);
    cr_assert_eq(be->ops->remove(be, "nope"), -1);
    cr_assert_eq(lb_error_errno(), ENOENT);
}

Test(store_backend, bad_names)
{
    char buf[4];

    cr_assert_eq(be->ops->read(be, "../etc/passwd", buf, sizeof buf, 0), -1);
    cr_assert_eq(lb_error_errno(), EINVAL);
    cr_assert_eq(be->ops->create(be, "/abs", "x", 1), -1);
    cr_assert_eq(lb_error_errno(), EINVAL);
}

Test(store_backend, stat_touch_replace_remove)
{
    CLEANUP_FREE char *path = lb_xasprintf("%s/config", tmp);
    struct timespec old[2] = {{1000, 0}, {1000, 0}};
    uint64_t size;
    int64_t mtime;
    char buf[16] = {0};

    cr_assert_eq(be->ops->replace(be, "config", "one", 3), 0);
    cr_assert_eq(be->ops->replace(be, "config", "second", 6), 0);
    cr_assert_eq(be->ops->read(be, "config", buf, sizeof buf, 0), 6);
    cr_assert_str_eq(buf, "second");
    cr_assert_eq(utimensat(AT_FDCWD, path, old, 0), 0);
    cr_assert_eq(be->ops->stat(be, "config", &size, &mtime), 0);
    cr_assert_eq(size, 6);
    cr_assert_eq(mtime, 1000);
    cr_assert_eq(be->ops->touch(be, "config"), 0);
    cr_assert_eq(be->ops->stat(be, "config", NULL, &mtime), 0);
    cr_assert_geq(mtime, time(NULL) - 5);
    cr_assert_eq(be->ops->remove(be, "config"), 0);
    cr_assert_eq(be->ops->stat(be, "config", NULL, NULL), -1);
    cr_assert_eq(be->ops->replace(be, "keys/repokey", "k", 1), 0,
                 "a replace makes its directory: %s", lb_error_msg());
    cr_assert_eq(be->ops->read(be, "keys/repokey", buf, sizeof buf, 0), 1);
}

struct seen {
    char names[8][64];
    int n;
};

static int
collect(void *opaque, const char *name)
{
    struct seen *s = opaque;

    cr_assert_lt(s->n, 8);
    snprintf(s->names[s->n++], 64, "%s", name);
    return 0;
}

static int
stop_at_first(void *opaque, const char *name)
{
    (void)opaque;
    (void)name;
    return 7;
}

Test(store_backend, list_by_prefix)
{
    CLEANUP_FREE char *stray = lb_xasprintf("%s/chunks/ab/y.tmp-1-1", tmp);
    struct seen s = {0};
    FILE *f;

    cr_assert_eq(be->ops->create(be, "chunks/ab/x", "1", 1), 0);
    cr_assert_eq(be->ops->create(be, "backups/b1", "2", 1), -1,
                 "no backups/ directory yet");
    cr_assert_eq(be->ops->replace(be, "config", "3", 1), 0);
    f = fopen(stray, "w");
    cr_assert_not_null(f);
    fclose(f);
    cr_assert_eq(be->ops->list(be, "chunks/", collect, &s), 0);
    cr_assert_eq(s.n, 1, "a temp file or another prefix was listed");
    cr_assert_str_eq(s.names[0], "chunks/ab/x");
    cr_assert_eq(be->ops->list(be, "chunks/", stop_at_first, NULL), 7);
    s.n = 0;
    cr_assert_eq(be->ops->list(be, "conf", collect, &s), 0);
    cr_assert_eq(s.n, 1);
    cr_assert_str_eq(s.names[0], "config");
}

Test(store_backend, remove_if_old)
{
    CLEANUP_FREE char *path = lb_xasprintf("%s/chunks/ab/x", tmp);
    CLEANUP_FREE char *t = lb_xasprintf("%s/tmp", tmp);
    struct timespec old[2] = {{1000, 0}, {1000, 0}};
    uint64_t size = 0;

    cr_assert_eq(mkdir(t, 0700), 0, "gc's trash goes in tmp/");
    cr_assert_eq(be->ops->create(be, "chunks/ab/x", "12345", 5), 0);
    /* Newer than the cutoff: kept. */
    cr_assert_eq(
        be->ops->remove_if_old(be, "chunks/ab/x", 500, &size, NULL, NULL), 0);
    cr_assert_eq(be->ops->stat(be, "chunks/ab/x", NULL, NULL), 0);
    cr_assert_eq(utimensat(AT_FDCWD, path, old, 0), 0);
    cr_assert_eq(
        be->ops->remove_if_old(be, "chunks/ab/x", 2000, &size, NULL, NULL), 1);
    cr_assert_eq(size, 5);
    cr_assert_eq(be->ops->stat(be, "chunks/ab/x", NULL, NULL), -1);
    /* Gone already: nothing to do. */
    cr_assert_eq(
        be->ops->remove_if_old(be, "chunks/ab/x", 2000, &size, NULL, NULL), 0);
}

static void *
count_many(void *arg)
{
    uint64_t *out = arg;

    for (int i = 0; i < 50; i++) {
        out[i] = 0;
        cr_assert_eq(be->ops->counter_next(be, "seq", NULL, NULL, &out[i]), 0);
    }
    return NULL;
}

static int
floor_of(void *opaque, uint64_t *floor)
{
    unsigned *calls = opaque;

    (*calls)++;
    *floor = 41;
    return 0;
}

Test(store_backend, counter)
{
    CLEANUP_FREE char *path = lb_xasprintf("%s/seq", tmp);
    uint64_t v = 0, got[4][50];
    pthread_t th[4];
    uint8_t seen[256] = {0};
    unsigned calls = 0;
    char rec[32] = {0};
    FILE *f;

    cr_assert_eq(be->ops->counter_next(be, "seq", floor_of, &calls, &v), 0);
    cr_assert_eq(v, 42, "a missing counter starts from its floor");
    cr_assert_eq(calls, 1);
    cr_assert_eq(be->ops->counter_next(be, "seq", floor_of, &calls, &v), 0);
    cr_assert_eq(v, 43, "the stored value");
    cr_assert_eq(calls, 1, "the floor asked for with a counter there");
    f = fopen(path, "r");
    cr_assert_not_null(f);
    cr_assert_eq(fread(rec, 1, sizeof rec, f), 21);
    fclose(f);
    cr_assert_str_eq(rec, "00000000000000000043\n", "FORMAT.md's record");
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, count_many, got[i]), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 50; k++) {
            cr_assert(got[i][k] > 43 && got[i][k] <= 243);
            cr_assert_eq(seen[got[i][k] - 43]++, 0, "%llu twice",
                         (unsigned long long)got[i][k]);
        }
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("garbage\n", f);
    fclose(f);
    cr_assert_eq(be->ops->counter_next(be, "seq", floor_of, &calls, &v), 0);
    cr_assert_eq(v, 42, "an unreadable counter starts from its floor");
    cr_assert_eq(calls, 2);
}

Test(store_backend, locks)
{
    struct store_be *other = store_be_file_open(tmp);
    char holder[128];
    int a, b, c;
    bool held;

    cr_assert_not_null(other);
    cr_assert_eq(be->ops->lock_held(be, "lock", &held), 0);
    cr_assert(!held);
    a = be->ops->lock(be, "lock", false, 0, 0, "", holder, sizeof holder);
    b = other->ops->lock(other, "lock", false, 0, 0, "", holder, sizeof holder);
    cr_assert_geq(a, 0);
    cr_assert_geq(b, 0, "shared with shared");
    c = other->ops->lock(other, "lock", true, 0, 0, "x", holder, sizeof holder);
    cr_assert_eq(c, -1, "exclusive against shared");
    cr_assert_eq(lb_error_errno(), EWOULDBLOCK);
    be->ops->unlock(be, a);
    other->ops->unlock(other, b);
    c = other->ops->lock(other, "lock", true, 0, 0, "gc pid 1 on h", holder,
                         sizeof holder);
    cr_assert_geq(c, 0);
    cr_assert_eq(be->ops->lock_held(be, "lock", &held), 0);
    cr_assert(held);
    a = be->ops->lock(be, "lock", false, 0, 0, "", holder, sizeof holder);
    cr_assert_eq(a, -1, "shared against exclusive");
    cr_assert_str_eq(holder, "gc pid 1 on h");
    other->ops->unlock(other, c);
    a = be->ops->lock(be, "lock", true, 0, 0, "", holder, sizeof holder);
    cr_assert_geq(a, 0, "free again after unlock");
    cr_assert_eq(be->ops->lock_renew(be), 0);
    store_be_close(other);
}

Test(store_backend, head_many)
{
    const char *objs[] = {"chunks/ab/x", "chunks/ab/missing", "config"};
    uint8_t head[3 * 4];
    size_t got[3];
    uint64_t size[3];
    int err[3];

    cr_assert_eq(be->ops->create(be, "chunks/ab/x", "abcdefgh", 8), 0);
    cr_assert_eq(be->ops->replace(be, "config", "xy", 2), 0);
    cr_assert_eq(be->ops->head_many(be, objs, 3, true, head, 4, got, size, err),
                 0);
    cr_assert_eq(err[0], 0);
    cr_assert_eq(got[0], 4);
    cr_assert_eq(size[0], 8);
    cr_assert_eq(memcmp(head, "abcd", 4), 0);
    cr_assert_eq(err[1], ENOENT);
    cr_assert_eq(err[2], 0);
    cr_assert_eq(got[2], 2, "a short object: what it has");
    cr_assert_eq(size[2], 2);
    cr_assert_eq(memcmp(head + 8, "xy", 2), 0);
}

/* A batch large enough for many threads (one per 16): every object's
 * answer at its own index, whichever thread looked it up, and each found
 * one touched. */
Test(store_backend, head_many_threads)
{
    enum { N = 300 };
    const char *objs[N];
    char names[N][32];
    uint8_t head[N * 8];
    size_t got[N];
    uint64_t size[N];
    int err[N];
    struct timespec old[2] = {{1000000, 0}, {1000000, 0}};
    struct stat sb;
    CLEANUP_FREE char *dir = lb_xasprintf("%s/chunks/ab/dir", tmp);
    CLEANUP_FREE char *link = lb_xasprintf("%s/chunks/ab/link", tmp);
    CLEANUP_FREE char *p6 = lb_xasprintf("%s/chunks/ab/o6", tmp);

    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "chunks/ab/o%d", i);
        objs[i] = names[i];
        if (i % 3 != 1) {
            char data[16];
            int n = snprintf(data, sizeof data, "%08d+%d", i, i);
            cr_assert_eq(be->ops->create(be, names[i], data, (size_t)n), 0);
        }
    }
    cr_assert_eq(mkdir(dir, 0700), 0);
    cr_assert_eq(symlink("o0", link), 0);
    objs[100] = "chunks/ab/dir";
    objs[200] = "chunks/ab/link";
    cr_assert_eq(utimensat(AT_FDCWD, p6, old, 0), 0);
    cr_assert_eq(be->ops->head_many(be, objs, N, true, head, 8, got, size, err),
                 0, "%s", lb_error_msg());
    for (int i = 0; i < N; i++) {
        char want[16];
        if (i == 100 || i == 200) {
            cr_assert_eq(err[i], EPROTO, "object %d: not a file", i);
            continue;
        }
        if (i % 3 == 1) {
            cr_assert_eq(err[i], ENOENT, "object %d", i);
            continue;
        }
        snprintf(want, sizeof want, "%08d", i);
        cr_assert_eq(err[i], 0, "object %d", i);
        cr_assert_eq(got[i], 8, "object %d", i);
        cr_assert_eq(size[i], (uint64_t)snprintf(NULL, 0, "%08d+%d", i, i),
                     "object %d: its size", i);
        cr_assert_eq(memcmp(head + (size_t)i * 8, want, 8), 0, "object %d", i);
    }
    cr_assert_eq(stat(p6, &sb), 0);
    cr_assert_gt(sb.st_mtime, 1000000, "found objects are touched");
}

/* In a writer's session, a lookup touches only what gc could take: a
 * chunk whose mtime is before the session's start (its .lock's mtime)
 * gets a new one; one created or touched since keeps its own (gc's cutoff
 * is before the session's start, FORMAT.md "gc"), and no inode is
 * dirtied for the commit's syncfs to write. Without a session every
 * found object is touched (head_many_threads). */
Test(store_backend, head_many_touches_what_predates_the_session)
{
    const char *objs[2] = {"chunks/ab/old", "chunks/ab/new"};
    uint8_t head[2 * 4];
    size_t got[2];
    uint64_t size[2];
    int err[2];
    struct stat sb, lk;
    CLEANUP_FREE char *t = lb_xasprintf("%s/tmp", tmp);
    CLEANUP_FREE char *lock = NULL;
    CLEANUP_FREE char *p_old = lb_xasprintf("%s/%s", tmp, objs[0]);
    CLEANUP_FREE char *p_new = lb_xasprintf("%s/%s", tmp, objs[1]);
    struct timespec before[2], after[2];

    cr_assert_eq(mkdir(t, 0700), 0);
    cr_assert_eq(be->ops->create(be, objs[0], "old-data", 8), 0);
    cr_assert_eq(be->ops->create(be, objs[1], "new-data", 8), 0);
    cr_assert_eq(be->ops->session_begin(be), 0, "%s", lb_error_msg());
    lock = lb_xasprintf("%s/.lock", be->tmp_dir);
    cr_assert_eq(stat(lock, &lk), 0);
    /* old: a day before the session; new: an hour after its start (a
     * time no touch can give it) */
    before[0] = before[1] = (struct timespec){lk.st_mtime - 86400, 0};
    after[0] = after[1] = (struct timespec){lk.st_mtime + 3600, 0};
    cr_assert_eq(utimensat(AT_FDCWD, p_old, before, 0), 0);
    cr_assert_eq(utimensat(AT_FDCWD, p_new, after, 0), 0);

    cr_assert_eq(be->ops->head_many(be, objs, 2, true, head, 4, got, size, err),
                 0, "%s", lb_error_msg());
    cr_assert_eq(err[0], 0);
    cr_assert_eq(err[1], 0);
    cr_assert_eq(memcmp(head, "old-", 4), 0);
    cr_assert_eq(memcmp(head + 4, "new-", 4), 0);
    cr_assert_eq(stat(p_old, &sb), 0);
    cr_assert_geq(sb.st_mtime, lk.st_mtime,
                  "a chunk older than the session was not touched");
    cr_assert_lt(sb.st_mtime, lk.st_mtime + 3600);
    cr_assert_eq(stat(p_new, &sb), 0);
    cr_assert_eq(sb.st_mtime, lk.st_mtime + 3600,
                 "a chunk newer than the session's start was touched");

    /* no touch asked (a reader): neither changes */
    cr_assert_eq(utimensat(AT_FDCWD, p_old, before, 0), 0);
    cr_assert_eq(be->ops->head_many(be, objs, 2, false, head, 4, got, size,
                                    err),
                 0);
    cr_assert_eq(stat(p_old, &sb), 0);
    cr_assert_eq(sb.st_mtime, lk.st_mtime - 86400);
}

/* A failure other than a missing object, in the middle of a batch looked
 * up by many threads: -1, and the error slot says which object. */
Test(store_backend, head_many_error)
{
    enum { N = 100 };
    const char *objs[N];
    uint8_t head[N * 4];
    size_t got[N];
    uint64_t size[N];
    int err[N];

    cr_assert_eq(be->ops->create(be, "chunks/ab/x", "abcdefgh", 8), 0);
    for (int i = 0; i < N; i++)
        objs[i] = "chunks/ab/x";
    objs[57] = "chunks/../../escape";
    lb_error_clear();
    cr_assert_eq(
        be->ops->head_many(be, objs, N, false, head, 4, got, size, err), -1);
    cr_assert(strstr(lb_error_msg(), "chunks/../../escape") != NULL, "%s",
              lb_error_msg());
}

/* read_many: many ranged reads at once (threads on files), each answer at
 * its own index; a missing object, a directory or a bad name fails its
 * own read only (-errno), never the others. */
Test(store_backend, read_many)
{
    enum { N = 300 };
    const char *objs[N];
    char names[N][32];
    uint8_t bufs_mem[N][8];
    uint8_t *bufs[N], big[100];
    size_t lens[N];
    uint64_t offs[N];
    ssize_t got[N];
    CLEANUP_FREE char *dir = lb_xasprintf("%s/chunks/ab/dir", tmp);

    cr_assert_not_null(be->ops->read_many, "the file backend reads batches");
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "chunks/ab/r%d", i);
        objs[i] = names[i];
        bufs[i] = bufs_mem[i];
        offs[i] = (uint64_t)(i % 4);
        lens[i] = 8;
        got[i] = 12345;
        if (i % 5 != 2) {
            char data[32];
            int n = snprintf(data, sizeof data, "abc%08d-%d", i, i);
            cr_assert_eq(be->ops->create(be, names[i], data, (size_t)n), 0);
        }
    }
    cr_assert_eq(mkdir(dir, 0700), 0);
    objs[101] = "chunks/ab/dir";
    objs[203] = "chunks/../../escape";
    bufs[9] = big;
    lens[9] = sizeof big; /* past its end: what there is */
    be->ops->read_many(be, objs, N, bufs, lens, offs, got);
    for (int i = 0; i < N; i++) {
        char data[32];
        int n = snprintf(data, sizeof data, "abc%08d-%d", i, i);
        if (i == 101 || i == 203) {
            cr_assert_lt(got[i], 0, "object %d: an error", i);
            continue;
        }
        if (i % 5 == 2) {
            cr_assert_eq(got[i], -ENOENT, "object %d: missing", i);
            continue;
        }
        if (i == 9) {
            cr_assert_eq(got[i], n - 1, "object 9: to its end");
            cr_assert_eq(memcmp(bufs[i], data + 1, 8), 0);
            continue;
        }
        cr_assert_eq(got[i], 8, "object %d: %zd", i, got[i]);
        cr_assert_eq(memcmp(bufs[i], data + offs[i], 8), 0, "object %d", i);
    }
}

/* prefetch is a hint: a stored object reads the same after it, and a
 * missing one or a bad name report nothing. */
Test(store_backend, prefetch)
{
    char buf[8] = {0};

    cr_assert_not_null(be->ops->prefetch);
    cr_assert_eq(be->ops->create(be, "chunks/ab/x", "abcdefgh", 8), 0);
    lb_error_clear();
    be->ops->prefetch(be, "chunks/ab/x");
    be->ops->prefetch(be, "chunks/ab/missing");
    be->ops->prefetch(be, "../outside");
    cr_assert_eq(lb_error_errno(), 0, "%s", lb_error_msg());
    cr_assert_eq(be->ops->read(be, "chunks/ab/x", buf, 8, 0), 8);
    cr_assert_eq(memcmp(buf, "abcdefgh", 8), 0);
}

/* rados: specs, parsed without a cluster: the parts, the defaults, and
 * what is refused (names, options, numbers that are not whole). */
/* A writer's session, creates in two steps and the commit: a staged
 * object is seen by nobody until published, publish is exclusive, a
 * stored one is told at stage, the commit never replaces, and the
 * session's directory goes with the backend. */
Test(store_backend, session_stage_publish_commit)
{
    CLEANUP_FREE char *t = lb_xasprintf("%s/tmp", tmp);
    CLEANUP_FREE char *b = lb_xasprintf("%s/backups", tmp);
    CLEANUP_FREE char *m = NULL;
    CLEANUP_FREE char *sess = NULL;
    struct store_be_staged *s = NULL;
    char buf[16] = {0};
    int fd;

    cr_assert_eq(mkdir(t, 0700), 0);
    cr_assert_eq(mkdir(b, 0700), 0);
    cr_assert_eq(be->ops->stage(be, "chunks/ab/x", "he", 2, "llo", 3, &s), -1,
                 "no session yet");
    cr_assert_eq(be->ops->session_begin(be), 0, "%s", lb_error_msg());
    cr_assert_not_null(be->tmp_dir);
    sess = lb_xstrdup(be->tmp_dir);
    m = lb_xasprintf("%s/.lock", sess);
    cr_assert_eq(access(m, F_OK), 0, "the session's lock");
    free(m);
    cr_assert_eq(be->ops->stage(be, "chunks/ab/x", "he", 2, "llo", 3, &s), 0);
    cr_assert_eq(be->ops->stat(be, "chunks/ab/x", NULL, NULL), -1,
                 "seen before it was published");
    cr_assert_eq(be->ops->publish(be, s, "chunks/ab/x"), 0);
    cr_assert_eq(be->ops->publish(be, s, "chunks/ab/x"), 1, "not exclusive");
    be->ops->unstage(be, s);
    cr_assert_eq(be->ops->read(be, "chunks/ab/x", buf, sizeof buf, 0), 5);
    cr_assert_str_eq(buf, "hello");
    cr_assert_eq(be->ops->stage(be, "chunks/ab/x", "a", 1, "b", 1, &s), 1,
                 "stored already, and not told at once");
    cr_assert_eq(be->ops->barrier(be), 0);

    m = lb_xasprintf("%s/manifest.1", sess);
    fd = open(m, O_RDWR | O_CREAT | O_EXCL, 0600);
    cr_assert_eq(write(fd, "M1", 2), 2);
    cr_assert_eq(be->ops->commit(be, m, fd, "backups/b1", "s"), 0, "%s",
                 lb_error_msg());
    close(fd);
    fd = open(m, O_RDWR | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(fd, 0, "the temp name stayed after the commit");
    cr_assert_eq(write(fd, "M2", 2), 2);
    cr_assert_eq(be->ops->commit(be, m, fd, "backups/b1", "s"), -1);
    cr_assert_eq(lb_error_errno(), EEXIST);
    close(fd);
    memset(buf, 0, sizeof buf);
    fd = be->ops->open(be, "backups/b1");
    cr_assert_geq(fd, 0);
    cr_assert_eq(read(fd, buf, sizeof buf), 2);
    close(fd);
    cr_assert_str_eq(buf, "M1", "a commit replaced a manifest");
    cr_assert_eq(be->ops->open(be, "backups/b2"), -1);
    cr_assert_eq(lb_error_errno(), ENOENT);

    store_be_close(be);
    be = store_be_file_open(tmp);
    cr_assert_neq(access(sess, F_OK), 0, "the session's directory stayed");
}

/* Every way a session stages a create (be_file_int.h): an unnamed file
 * linked by its descriptor (root here) or through /proc/self/fd, or a
 * temporary name; each is seen by nobody until published, exclusive,
 * and leaves nothing in the session's directory. The probe picks an
 * unnamed file where the filesystem has O_TMPFILE. */
Test(store_backend, stage_modes)
{
    static const enum be_file_stage_mode modes[] = {
        BE_FILE_STAGE_EMPTY_PATH, BE_FILE_STAGE_PROC_FD, BE_FILE_STAGE_NAMED};
    CLEANUP_FREE char *t = lb_xasprintf("%s/tmp", tmp);
    char obj[32], buf[16];

    cr_assert_eq(mkdir(t, 0700), 0);
    cr_assert_eq(be->ops->session_begin(be), 0, "%s", lb_error_msg());
    {
        int fd = open(be->tmp_dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
        if (fd >= 0) {
            close(fd);
            cr_assert_neq(((struct be_file *)be)->stage_mode,
                          BE_FILE_STAGE_NAMED,
                          "the probe found no way to link an unnamed file");
            if (geteuid() == 0)
                cr_assert_eq(((struct be_file *)be)->stage_mode,
                             BE_FILE_STAGE_EMPTY_PATH);
        } else {
            cr_assert_eq(((struct be_file *)be)->stage_mode,
                         BE_FILE_STAGE_NAMED);
        }
    }
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
        struct store_be_staged *s = NULL;

        ((struct be_file *)be)->stage_mode = modes[i];
        snprintf(obj, sizeof obj, "chunks/ab/m%zu", i);
        cr_assert_eq(be->ops->stage(be, obj, "he", 2, "llo", 3, &s), 0,
                     "mode %zu: %s", i, lb_error_msg());
        /* (tu_count_entries skips the session's .lock) */
        if (modes[i] == BE_FILE_STAGE_NAMED)
            cr_assert_eq(tu_count_entries(be->tmp_dir), 1,
                         "a named stage made no name");
        else
            cr_assert_eq(tu_count_entries(be->tmp_dir), 0,
                         "an unnamed stage has a name");
        cr_assert_eq(be->ops->stat(be, obj, NULL, NULL), -1,
                     "mode %zu: seen before it was published", i);
        cr_assert_eq(be->ops->publish(be, s, obj), 0, "mode %zu: %s", i,
                     lb_error_msg());
        cr_assert_eq(be->ops->publish(be, s, obj), 1,
                     "mode %zu: not exclusive", i);
        be->ops->unstage(be, s);
        cr_assert_eq(tu_count_entries(be->tmp_dir), 0, "mode %zu left a name",
                     i);
        memset(buf, 0, sizeof buf);
        cr_assert_eq(be->ops->read(be, obj, buf, sizeof buf, 0), 5);
        cr_assert_str_eq(buf, "hello");
        /* staged, then dropped unpublished: nothing stays either */
        snprintf(obj, sizeof obj, "chunks/ab/d%zu", i);
        cr_assert_eq(be->ops->stage(be, obj, "x", 1, "y", 1, &s), 0);
        be->ops->unstage(be, s);
        cr_assert_eq(be->ops->stat(be, obj, NULL, NULL), -1);
        cr_assert_eq(tu_count_entries(be->tmp_dir), 0, "mode %zu left a name",
                     i);
    }
    cr_assert_eq(be->ops->barrier(be), 0);
}

Test(store_rados_spec, parse)
{
    static const char *const bad[] = {
        "rados:",           "rados:/ns",
        "rados:p/",         "rados:p/a/b",
        "rados:p o",        "rados:p?conf",
        "rados:p?conf=",    "rados:p?id=a/b",
        "rados:p?lease=2",  "rados:p?lease=9x",
        "rados:p?lease=-5", "rados:p?timeout=0",
        "rados:p?other=1",  "rados:p?lease=99999999999999999999",
        "/srv/backups",
    };
    struct store_be_rados_spec o;

    cr_assert_eq(store_be_rados_spec_parse("rados:pool", &o), 0);
    cr_assert_str_eq(o.pool, "pool");
    cr_assert_str_eq(o.ns, "");
    cr_assert_str_eq(o.conf, "/etc/ceph/ceph.conf");
    cr_assert_str_eq(o.id, "admin");
    cr_assert_eq(o.lease, 60);
    cr_assert_eq(o.timeout, 120);
    cr_assert_eq(o.given, 0);
    cr_assert_eq(store_be_rados_spec_parse(
                     "rados:p-1/n.s?conf=/c/x.conf&id=backup&lease=6&"
                     "timeout=30",
                     &o),
                 0);
    cr_assert_str_eq(o.pool, "p-1");
    cr_assert_str_eq(o.ns, "n.s");
    cr_assert_str_eq(o.conf, "/c/x.conf");
    cr_assert_str_eq(o.id, "backup");
    cr_assert_eq(o.lease, 6);
    cr_assert_eq(o.timeout, 30);
    cr_assert_eq(o.given, STORE_BE_RADOS_CONF | STORE_BE_RADOS_ID |
                              STORE_BE_RADOS_LEASE | STORE_BE_RADOS_TIMEOUT);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        lb_error_clear();
        cr_assert_eq(store_be_rados_spec_parse(bad[i], &o), -1, "%s", bad[i]);
        cr_assert_eq(lb_error_errno(), EINVAL, "%s", bad[i]);
    }
}

/* --restrict-to-repo rados:...: the same pool and namespace, with none of
 * the options the server set changed; anything else refused (EPERM),
 * saying what differs. */
Test(store_rados_spec, restrict)
{
    static const char *allowed = "rados:bk/h1?conf=/etc/ceph/c.conf&id=h1";
    static const struct {
        const char *asked, *why;
    } no[] = {
        {"rados:bk/h2?conf=/etc/ceph/c.conf&id=h1", "outside the allowed"},
        {"rados:bk?conf=/etc/ceph/c.conf&id=h1", "outside the allowed"},
        {"rados:other/h1", "outside the allowed"},
        {"rados:bk/h1?conf=/tmp/mine.conf", "its conf= is not"},
        {"rados:bk/h1?id=admin", "its id= is not"},
        {"rados:bk/h1?lease=86400", "its lease= is not"},
        {"rados:bk/h1?timeout=1", "its timeout= is not"},
        {"rados:bk/h1?bogus=1", "bad option"},
        {"/srv/backups/h1", "outside the allowed RADOS repository"},
        {"rados:bk/../h2", "not rados:POOL"},
    };

    cr_assert_eq(store_be_rados_restrict(allowed, allowed), 0);
    cr_assert_eq(store_be_rados_restrict(allowed, "rados:bk/h1"), 0);
    cr_assert_eq(store_be_rados_restrict(allowed, "rados:bk/h1?id=h1"), 0);
    cr_assert_eq(store_be_rados_restrict(allowed,
                                         "rados:bk/h1?id=h1&conf=/etc/ceph/"
                                         "c.conf"),
                 0);
    cr_assert_eq(store_be_rados_restrict("rados:bk", "rados:bk"), 0);
    cr_assert_eq(store_be_rados_restrict("rados:bk", "rados:bk?lease=60"), 0);
    for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
        lb_error_clear();
        cr_assert_eq(store_be_rados_restrict(allowed, no[i].asked), -1, "%s",
                     no[i].asked);
        cr_assert_eq(lb_error_errno(), EPERM, "%s", no[i].asked);
        cr_assert(strstr(lb_error_msg(), no[i].why), "%s: %s", no[i].asked,
                  lb_error_msg());
    }
    lb_error_clear();
    cr_assert_eq(store_be_rados_restrict("rados:bk?lease=1", "rados:bk"), -1);
    cr_assert_eq(lb_error_errno(), EINVAL);
    cr_assert(strstr(lb_error_msg(), "--restrict-to-repo"), "%s",
              lb_error_msg());
}
