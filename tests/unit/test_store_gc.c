/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * store/gc.c on a temporary repository: exactly the unreferenced chunks
 * older than the cutoff are reclaimed; chunks named by window stacks or by
 * a manifest's domain_xml stay; a chunk newer than the cutoff stays; a
 * chunk touched between its move to the trash and the re-check is put
 * back; a live writer session pins the cutoff; a second gc, an append-only
 * or read-only opener and an unreadable manifest are refused; the trash of
 * a gc that died is put back by the next writer. Also store_chunk_touch
 * and the session lock files gc relies on.
 */
#include "store/store.h"
#include "tests/unit/store_util.h"
#include "tests/unit/testutil.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#define WS (64u << 10)

static char *tmp, *repo;
static struct store *st;
static struct store_scratch *sc;
/* R1 R2 D1 in window stacks, B1 a domain XML blob; B2 U1 U2 garbage. */
static struct tu_chunk R1, R2, D1, B1, B2, U1, U2;
static char id1[PROTO_ID_LEN + 1], id2[PROTO_ID_LEN + 1];

static void
put(struct tu_chunk *c)
{
    uint64_t stored;

    cr_assert_geq(store_chunk_put(st, sc, &c->c, &stored), 0, "%s",
                  lb_error_msg());
}

static char *
chunk_path(const struct tu_chunk *c)
{
    char hex[65];

    proto_digest_hex(&c->c.d, hex);
    return lb_xasprintf("%s/chunks/%.2s/%s", repo, hex, hex);
}

static bool
present(const struct tu_chunk *c)
{
    CLEANUP_FREE char *p = chunk_path(c);

    return tu_exists(p);
}

static int64_t
mtime_of(const char *path)
{
    struct stat sb;

    cr_assert_eq(stat(path, &sb), 0, "stat %s", path);
    return sb.st_mtime;
}

static void
set_mtime(const char *path, int64_t t)
{
    struct timespec ts[2] = {{t, 0}, {t, 0}};

    cr_assert_eq(utimensat(AT_FDCWD, path, ts, 0), 0, "utimensat %s", path);
}

/* Set a chunk's mtime to now + delta seconds. */
static void
age(const struct tu_chunk *c, int64_t delta)
{
    CLEANUP_FREE char *p = chunk_path(c);

    set_mtime(p, (int64_t)time(NULL) + delta);
}

static uint64_t
file_size(const struct tu_chunk *c)
{
    CLEANUP_FREE char *p = chunk_path(c);
    struct stat sb;

    cr_assert_eq(stat(p, &sb), 0);
    return (uint64_t)sb.st_size;
}

/* A full backup of one disk whose windows hold the given stacks. */
static void
backup(const char *name, struct tu_chunk *const (*w)[2], size_t nwin,
       const char *domain_xml, char id[PROTO_ID_LEN + 1])
{
    struct proto_kv meta = {0}, fin = {0};
    struct store_txn *t = store_txn_begin(st, name, "", &meta);
    uint64_t nw;
    uint8_t *depths;

    cr_assert_not_null(t, "%s", lb_error_msg());
    cr_assert_eq(tu_disk_begin(t, "vda", nwin * WS, PROTO_DISK_FULL, &meta, &nw,
                               &depths),
                 0, "%s", lb_error_msg());
    for (size_t k = 0; k < nwin; k++) {
        struct proto_window_rec r = {.index = k, .op = PROTO_WIN_SET};
        for (int j = 0; j < 2 && w[k][j]; j++) {
            r.refs[j].type = w[k][j]->c.type;
            r.refs[j].d = w[k][j]->c.d;
            r.n++;
        }
        cr_assert_eq(store_txn_window(t, &r), 0, "%s", lb_error_msg());
    }
    cr_assert_eq(store_txn_disk_end(t, &meta), 0);
    if (domain_xml)
        proto_kv_set(&fin, "domain_xml", domain_xml);
    snprintf(id, PROTO_ID_LEN + 1, "%s", store_txn_id(t));
    cr_assert_eq(store_txn_commit(t, &fin, NULL), 0, "%s", lb_error_msg());
    proto_kv_free(&fin);
}

static void
setup(void)
{
    char hex[65];
    static const char xml1[] = "<domain><name>vm1</name></domain>";
    static const char xml2[] = "<domain><name>gone</name></domain>";
    struct tu_chunk *const w1[2][2] = {{&R1, NULL}, {&R1, &D1}};
    struct tu_chunk *const w2[1][2] = {{&R2, NULL}};

    tmp = tu_mkdtemp();
    repo = lb_xasprintf("%s/repo", tmp);
    lb_log_set_level(LB_LOG_ERROR);
    lb_error_clear();
    cr_assert_eq(store_init(repo, WS), 0, "%s", lb_error_msg());
    st = store_open(repo, STORE_WRITE, 0);
    cr_assert_not_null(st, "%s", lb_error_msg());
    sc = store_scratch_new();
    tu_chunk_raw(&R1, WS, 1);
    tu_chunk_raw(&R2, WS, 2);
    tu_chunk_delta(&D1, WS, 4096, 3);
    tu_chunk_make(&B1, PROTO_CHUNK_BLOB, (const uint8_t *)xml1, sizeof xml1 - 1,
                  false);
    tu_chunk_make(&B2, PROTO_CHUNK_BLOB, (const uint8_t *)xml2, sizeof xml2 - 1,
                  false);
    tu_chunk_raw(&U1, WS, 4);
    tu_chunk_raw(&U2, 5000, 5);
    put(&R1);
    put(&R2);
    put(&D1);
    put(&B1);
    put(&B2);
    put(&U1);
    put(&U2);
    proto_digest_hex(&B1.c.d, hex);
    backup("vm1", w1, 2, hex, id1);
    backup("vm2", w2, 1, NULL, id2);
    /* Everything is an hour old: only references keep chunks now. */
    age(&R1, -3600);
    age(&R2, -3600);
    age(&D1, -3600);
    age(&B1, -3600);
    age(&B2, -3600);
    age(&U1, -3600);
    age(&U2, -3600);
}

static void
teardown(void)
{
    tu_chunk_free(&R1);
    tu_chunk_free(&R2);
    tu_chunk_free(&D1);
    tu_chunk_free(&B1);
    tu_chunk_free(&B2);
    tu_chunk_free(&U1);
    tu_chunk_free(&U2);
    store_scratch_free(sc);
    store_close(st);
    tu_rm_rf(tmp);
    free(tmp);
    free(repo);
}

TestSuite(gc, .init = setup, .fini = teardown);

static void
run_gc(const struct store_gc_opts *o, struct store_gc_stats *s)
{
    cr_assert_eq(store_gc(st, o, s), 0, "%s", lb_error_msg());
}

static void
assert_sound(void)
{
    struct proto_kv stats = {0};
    int r = store_verify(st, NULL, &stats);

    cr_assert_eq(r, 0, "verify finds damage after gc");
    proto_kv_free(&stats);
}

Test(gc, reclaims_exactly_the_unreferenced_chunks)
{
    struct store_gc_opts o = {0};
    struct store_gc_stats s;
    uint64_t bytes = file_size(&B2) + file_size(&U1) + file_size(&U2);
    CLEANUP_FREE char *t = lb_xasprintf("%s/tmp", repo);
    int64_t now = (int64_t)time(NULL);

    run_gc(&o, &s);
    cr_assert_eq(s.backups, 2);
    cr_assert_eq(s.chunks, 7);
    cr_assert_eq(s.referenced, 4, "R1 R2 D1 and the domain XML B1");
    cr_assert_eq(s.recent, 0);
    cr_assert_eq(s.restored, 0);
    cr_assert_eq(s.reclaimed, 3);
    cr_assert_eq(s.bytes_reclaimed, bytes);
    cr_assert_eq(s.sessions, 0, "the gc's own session does not count");
    cr_assert(s.cutoff <= now - 120 && s.cutoff >= now - 130, "cutoff %lld",
              (long long)s.cutoff);
    cr_assert(present(&R1) && present(&R2) && present(&D1) && present(&B1));
    cr_assert(!present(&B2) && !present(&U1) && !present(&U2));
    cr_assert_eq(tu_count_entries(t), 1, "the trash is gone");
    assert_sound();

    /* Nothing left to do. */
    run_gc(&o, &s);
    cr_assert_eq(s.reclaimed, 0);
    cr_assert_eq(s.referenced, 4);
}

Test(gc, dry_run_deletes_nothing)
{
    struct store_gc_opts o = {.dry_run = true};
    struct store_gc_stats s;
    uint64_t bytes = file_size(&B2) + file_size(&U1) + file_size(&U2);

    run_gc(&o, &s);
    cr_assert_eq(s.reclaimed, 3);
    cr_assert_eq(s.bytes_reclaimed, bytes);
    cr_assert(present(&B2) && present(&U1) && present(&U2));
}

Test(gc, a_chunk_newer_than_the_cutoff_stays)
{
    struct store_gc_opts o = {0};
    struct store_gc_stats s;

    age(&U1, 0);    /* just written by a running backup */
    age(&U2, -100); /* inside the margin */
    run_gc(&o, &s);
    cr_assert_eq(s.recent, 2);
    cr_assert_eq(s.reclaimed, 1);
    cr_assert(present(&U1) && present(&U2) && !present(&B2));
}

struct hook {
    char name[65];
    unsigned calls, touched;
};

/* A backup touches U1 (answers "have") right after gc moved it aside. */
static void
touch_u1(void *opaque, const char *trash_path)
{
    struct hook *h = opaque;
    const char *base = strrchr(trash_path, '/');

    cr_assert_not_null(base);
    cr_assert(strstr(trash_path, "/tmp/gc-"), "trash %s", trash_path);
    h->calls++;
    if (strcmp(base + 1, h->name) == 0) {
        cr_assert_eq(utimensat(AT_FDCWD, trash_path, NULL, 0), 0);
        h->touched++;
    }
}

Test(gc, a_chunk_touched_in_the_trash_is_put_back)
{
    struct hook h = {0};
    struct store_gc_opts o = {.after_trash = touch_u1, .opaque = &h};
    struct store_gc_stats s;
    CLEANUP_FREE char *u1 = chunk_path(&U1);
    const uint8_t *plain;
    size_t len;
    uint8_t type;

    proto_digest_hex(&U1.c.d, h.name);
    run_gc(&o, &s);
    cr_assert_eq(h.calls, 3, "B2 U1 U2 were moved aside");
    cr_assert_eq(h.touched, 1);
    cr_assert_eq(s.restored, 1);
    cr_assert_eq(s.reclaimed, 2);
    cr_assert(present(&U1) && !present(&U2) && !present(&B2));
    cr_assert_geq(mtime_of(u1), (int64_t)time(NULL) - 5, "the touch stays");
    cr_assert_eq(store_chunk_load(st, sc, &U1.c.d, &plain, &len, &type), 0,
                 "%s", lb_error_msg());
    cr_assert_eq(len, U1.plain_len);
    cr_assert_eq(memcmp(plain, U1.plain, len), 0);
}

/* The session directory under tmp/ that is not in before[] (n of them). */
static char *
new_session(char before[][64], size_t n)
{
    CLEANUP_FREE char *t = lb_xasprintf("%s/tmp", repo);
    DIR *d = opendir(t);
    struct dirent *e;
    char *found = NULL;

    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL) {
        bool old = e->d_name[0] == '.';
        for (size_t i = 0; i < n && !old; i++)
            old = strcmp(before[i], e->d_name) == 0;
        if (!old)
            found = lb_xasprintf("%s/%s", t, e->d_name);
    }
    closedir(d);
    cr_assert_not_null(found);
    return found;
}

static size_t
list_sessions(char out[][64], size_t cap)
{
    CLEANUP_FREE char *t = lb_xasprintf("%s/tmp", repo);
    DIR *d = opendir(t);
    struct dirent *e;
    size_t n = 0;

    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' && n < cap)
            snprintf(out[n++], 64, "%.63s", e->d_name);
    closedir(d);
    return n;
}

Test(gc, a_live_session_pins_the_cutoff)
{
    struct store_gc_opts o = {0};
    struct store_gc_stats s;
    char before[8][64];
    size_t n = list_sessions(before, 8);
    struct store *w = store_open(repo, STORE_WRITE, 0);
    CLEANUP_FREE char *sess = new_session(before, n);
    CLEANUP_FREE char *lock = lb_xasprintf("%s/.lock", sess);
    int64_t now = (int64_t)time(NULL);

    cr_assert_not_null(w);
    /* A backup that started 1000 s ago and reuses U1 (touched 500 s
     * ago): U1 is younger than its start. */
    set_mtime(lock, now - 1000);
    age(&U1, -500);
    run_gc(&o, &s);
    cr_assert_eq(s.sessions, 1);
    cr_assert(s.cutoff <= now - 1120, "cutoff %lld", (long long)s.cutoff);
    cr_assert(present(&U1));
    cr_assert(!present(&U2) && !present(&B2));
    store_close(w);
    /* The backup is over: U1 is garbage now. */
    run_gc(&o, &s);
    cr_assert_eq(s.sessions, 0);
    cr_assert(!present(&U1));
}

Test(gc, a_dead_session_does_not_pin_the_cutoff)
{
    struct store_gc_opts o = {0};
    struct store_gc_stats s;
    CLEANUP_FREE char *dead = lb_xasprintf("%s/tmp/4242-dead", repo);
    CLEANUP_FREE char *lock = lb_xasprintf("%s/.lock", dead);

    cr_assert_eq(mkdir(dead, 0700), 0);
    tu_write_file(lock, "", 0);
    set_mtime(lock, (int64_t)time(NULL) - 100000);
    run_gc(&o, &s);
    cr_assert_eq(s.sessions, 0);
    cr_assert_eq(s.reclaimed, 3);
}

/* Backup ids' reservations (ids/ID) left by writers that died: those
 * older than the cutoff go, a newer one (a backup being written) stays;
 * a dry run removes none. */
Test(gc, removes_reservations_older_than_the_cutoff)
{
    struct store_gc_opts o = {0}, dry = {.dry_run = true};
    struct store_gc_stats s;
    CLEANUP_FREE char *dir = lb_xasprintf("%s/ids", repo);
    char old1[PROTO_ID_LEN + 1], old2[PROTO_ID_LEN + 1], cur[PROTO_ID_LEN + 1];
    CLEANUP_FREE char *p1 = NULL, *p2 = NULL, *pc = NULL, *junk = NULL;
    int64_t now = (int64_t)time(NULL);

    proto_backup_id_make(old1, now - 100000, 1);
    proto_backup_id_make(old2, now - 1000, 2);
    proto_backup_id_make(cur, now, 3);
    p1 = lb_xasprintf("%s/%s", dir, old1);
    p2 = lb_xasprintf("%s/%s", dir, old2);
    pc = lb_xasprintf("%s/%s", dir, cur);
    junk = lb_xasprintf("%s/not-an-id", dir);
    /* the setup's backups made the directory and left nothing in it */
    cr_assert_eq(tu_count_entries(dir), 0);
    tu_write_file(p1, "", 0);
    tu_write_file(p2, "", 0);
    tu_write_file(pc, "", 0);
    tu_write_file(junk, "", 0);
    run_gc(&dry, &s);
    cr_assert(tu_exists(p1) && tu_exists(p2) && tu_exists(pc));
    run_gc(&o, &s);
    cr_assert(!tu_exists(p1) && !tu_exists(p2), "stale reservations stay");
    cr_assert(tu_exists(pc), "a current reservation was removed");
    cr_assert(tu_exists(junk), "gc removes only what it knows");
}

Test(gc, one_gc_at_a_time)
{
    struct store_gc_opts o = {0};
    struct store_gc_stats s;
    CLEANUP_FREE char *path = lb_xasprintf("%s/gc.lock", repo);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    static const char who[] = "gc pid 4242 on otherhost since then\n";

    cr_assert_geq(fd, 0);
    cr_assert_eq(flock(fd, LOCK_EX | LOCK_NB), 0);
    cr_assert_eq(write(fd, who, sizeof who - 1), (ssize_t)sizeof who - 1);
    cr_assert_eq(store_gc(st, &o, &s), -1);
    cr_assert_eq(lb_error_errno(), EWOULDBLOCK);
    cr_assert(strstr(lb_error_msg(), "another gc is running") &&
                  strstr(lb_error_msg(), "pid 4242 on otherhost"),
              "%s", lb_error_msg());
    cr_assert(present(&U1), "nothing deleted");
    close(fd);
    run_gc(&o, &s);
    cr_assert_eq(s.reclaimed, 3);
    {
        size_t len;
        CLEANUP_FREE uint8_t *text = tu_read_file(path, &len);
        cr_assert_eq(len, 0, "the holder line is cleared at the end");
    }
}

Test(gc, append_only_and_read_only_are_refused)
{
    struct store_gc_opts o = {0};
    struct store_gc_stats s;
    struct store *r;

    store_set_append_only(st, true);
    cr_assert_eq(store_gc(st, &o, &s), -1);
    cr_assert_eq(lb_error_errno(), EPERM);
    cr_assert(strstr(lb_error_msg(), "append-only"), "%s", lb_error_msg());
    o.dry_run = true;
    cr_assert_eq(store_gc(st, &o, &s), -1, "not even a dry run");
    store_set_append_only(st, false);
    r = store_open(repo, STORE_READ, 0);
    cr_assert_eq(store_gc(r, &o, &s), -1);
    cr_assert_eq(lb_error_errno(), EPERM);
    store_close(r);
    cr_assert(present(&U1) && present(&U2));
}

Test(gc, an_unreadable_manifest_stops_gc)
{
    struct store_gc_opts o = {0};
    struct store_gc_stats s;
    CLEANUP_FREE char *mf = lb_xasprintf("%s/backups/%s", repo, id1);
    size_t len;
    CLEANUP_FREE uint8_t *b = tu_read_file(mf, &len);

    /* A window's digest changed: the trailer no longer matches. */
    cr_assert_gt(len, 200);
    b[100] ^= 0xff;
    tu_write_file(mf, b, len);
    cr_assert_eq(store_gc(st, &o, &s), -1);
    cr_assert(strstr(lb_error_msg(), id1) &&
                  strstr(lb_error_msg(), "cannot be read whole"),
              "%s", lb_error_msg());
    cr_assert(strstr(lb_error_hint_msg(), "nothing was deleted"), "%s",
              lb_error_hint_msg());
    cr_assert(present(&U1) && present(&U2) && present(&B2));
}

Test(gc, stray_files_are_left_alone)
{
    struct store_gc_opts o = {0};
    struct store_gc_stats s;
    char hex[65];
    CLEANUP_FREE char *stray = lb_xasprintf("%s/chunks/00/notes.txt", repo);
    CLEANUP_FREE char *misplaced = NULL;

    proto_digest_hex(&U1.c.d, hex);
    misplaced = lb_xasprintf("%s/chunks/%s/%s", repo,
                             strncmp(hex, "00", 2) ? "00" : "01", hex);
    tu_write_file(stray, "x", 1);
    tu_write_file(misplaced, "x", 1);
    set_mtime(stray, 1000);
    set_mtime(misplaced, 1000);
    run_gc(&o, &s);
    cr_assert_eq(s.chunks, 7);
    cr_assert(tu_exists(stray) && tu_exists(misplaced));
}

Test(gc, many_references)
{
    /* Enough distinct digests to grow the prefix set several times. */
    enum { N = 20000 };
    struct proto_kv meta = {0};
    struct store_txn *t = store_txn_begin(st, "big", "", &meta);
    struct store_gc_opts o = {0};
    struct store_gc_stats s;
    uint64_t nw;
    uint8_t *depths;
    char id[PROTO_ID_LEN + 1];

    cr_assert_not_null(t);
    cr_assert_eq(tu_disk_begin(t, "vda", (uint64_t)N * WS, PROTO_DISK_FULL,
                               &meta, &nw, &depths),
                 0);
    for (uint32_t k = 0; k < N; k++) {
        struct proto_window_rec r = {.index = k, .op = PROTO_WIN_SET, .n = 1};
        r.refs[0].type = PROTO_CHUNK_RAW;
        tu_fill_random(r.refs[0].d.b, PROTO_DIGEST_LEN, k + 1);
        if (k == 7)
            r.refs[0].d = U1.c.d; /* one real chunk among them */
        store_txn_note_chunk(t, &r.refs[0].d, PROTO_CHUNK_RAW, WS);
        cr_assert_eq(store_txn_window(t, &r), 0, "%s", lb_error_msg());
    }
    cr_assert_eq(store_txn_disk_end(t, &meta), 0);
    snprintf(id, sizeof id, "%s", store_txn_id(t));
    cr_assert_eq(store_txn_commit(t, &meta, NULL), 0, "%s", lb_error_msg());
    run_gc(&o, &s);
    cr_assert_eq(s.backups, 3);
    cr_assert_eq(s.referenced, 5);
    cr_assert_eq(s.reclaimed, 2);
    cr_assert(present(&U1) && !present(&U2));
}

/* ---- what gc relies on -------------------------------------------------- */

Test(gc, the_trash_of_a_dead_gc_is_put_back)
{
    CLEANUP_FREE char *trash = lb_xasprintf("%s/tmp/gc-4242-dead", repo);
    CLEANUP_FREE char *lock = lb_xasprintf("%s/.lock", trash);
    CLEANUP_FREE char *r1 = chunk_path(&R1);
    CLEANUP_FREE char *in_trash = NULL;
    CLEANUP_FREE char *old = lb_xasprintf("%s/tmp/gc-4243-old", repo);
    CLEANUP_FREE char *r2 = chunk_path(&R2);
    CLEANUP_FREE char *in_old = NULL;
    struct store *w;
    char hex[65];

    /* A gc died with R1 (referenced, or touched) moved aside ... */
    proto_digest_hex(&R1.c.d, hex);
    in_trash = lb_xasprintf("%s/%s", trash, hex);
    cr_assert_eq(mkdir(trash, 0700), 0);
    tu_write_file(lock, "", 0);
    cr_assert_eq(rename(r1, in_trash), 0);
    /* ... and another before it even had its lock file. */
    proto_digest_hex(&R2.c.d, hex);
    in_old = lb_xasprintf("%s/%s", old, hex);
    cr_assert_eq(mkdir(old, 0700), 0);
    cr_assert_eq(rename(r2, in_old), 0);
    set_mtime(old, (int64_t)time(NULL) - 3600);

    w = store_open(repo, STORE_WRITE, 0);
    cr_assert_not_null(w);
    cr_assert(tu_exists(r1) && tu_exists(r2), "put back by the next writer");
    cr_assert_not(tu_exists(trash));
    cr_assert_not(tu_exists(old));
    store_close(w);
    assert_sound();
}

Test(gc, touch_sets_the_mtime_for_writers_only)
{
    CLEANUP_FREE char *u1 = chunk_path(&U1);
    struct proto_digest none = tu_digest(99);
    struct store *r;
    int64_t before = mtime_of(u1);

    r = store_open(repo, STORE_READ, 0);
    cr_assert_eq(store_chunk_touch(r, &U1.c.d), 1);
    cr_assert_eq(store_chunk_touch(r, &none), 0);
    cr_assert_eq(mtime_of(u1), before, "a restore does not touch");
    store_close(r);
    cr_assert_eq(store_chunk_touch(st, &none), 0);
    cr_assert_eq(store_chunk_touch(st, &U1.c.d), 1);
    cr_assert_geq(mtime_of(u1), (int64_t)time(NULL) - 5);
}

Test(gc, storing_an_existing_chunk_touches_it)
{
    CLEANUP_FREE char *u2 = chunk_path(&U2);
    uint64_t stored = 1;

    cr_assert_eq(store_chunk_put(st, sc, &U2.c, &stored), 1);
    cr_assert_eq(stored, 0);
    cr_assert_geq(mtime_of(u2), (int64_t)time(NULL) - 5);
}

Test(gc, a_session_lock_is_locked_as_soon_as_it_exists)
{
    char before[8][64];
    size_t n = list_sessions(before, 8);
    struct store *w = store_open(repo, STORE_WRITE, 0);
    CLEANUP_FREE char *sess = new_session(before, n);
    CLEANUP_FREE char *lock = lb_xasprintf("%s/.lock", sess);
    CLEANUP_FREE char *fresh = lb_xasprintf("%s/.lock.new", sess);
    int fd;

    cr_assert_not_null(w);
    cr_assert_not(tu_exists(fresh));
    cr_assert_geq(mtime_of(lock), (int64_t)time(NULL) - 5, "the start");
    fd = open(lock, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    cr_assert_eq(flock(fd, LOCK_SH | LOCK_NB), -1);
    cr_assert_eq(errno, EWOULDBLOCK);
    close(fd);
    store_close(w);
    cr_assert_not(tu_exists(sess));
}
