/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * store/txn.c and store/list.c: a full backup, then an incremental one on
 * top of it (PUSH, SET, inherited windows), read back window by window;
 * every request a transaction must refuse; abort; list; delete.
 */
#include "store/store.h"
#include "tests/unit/store_util.h"
#include "tests/unit/testutil.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define WS (64u << 10)
#define VDA_SIZE (4 * (uint64_t)WS + 10) /* 5 windows, the last short */
#define VDB_SIZE ((uint64_t)WS)          /* 1 window */

static char *tmp, *repo;
static struct store *st;
static struct store_scratch *sc;
static struct tu_chunk R1, R2, D1, D2, D3;

static void
put(struct tu_chunk *c)
{
    uint64_t stored;

    cr_assert_geq(store_chunk_put(st, sc, &c->c, &stored), 0, "%s",
                  lb_error_msg());
}

static void
setup(void)
{
    tmp = tu_mkdtemp();
    repo = lb_xasprintf("%s/repo", tmp);
    lb_log_set_level(LB_LOG_ERROR);
    cr_assert_eq(store_init(repo, WS), 0, "%s", lb_error_msg());
    st = store_open(repo, STORE_WRITE, 0);
    cr_assert_not_null(st, "%s", lb_error_msg());
    sc = store_scratch_new();
    tu_chunk_raw(&R1, WS, 1);
    tu_chunk_raw(&R2, WS, 2);
    tu_chunk_delta(&D1, WS, 0, 3);
    tu_chunk_delta(&D2, WS, 4096, 4);
    tu_chunk_delta(&D3, WS, 8192, 5);
    put(&R1);
    put(&R2);
    put(&D1);
    put(&D2);
    put(&D3);
}

static void
teardown(void)
{
    tu_chunk_free(&R1);
    tu_chunk_free(&R2);
    tu_chunk_free(&D1);
    tu_chunk_free(&D2);
    tu_chunk_free(&D3);
    store_scratch_free(sc);
    store_close(st);
    tu_rm_rf(tmp);
    free(tmp);
    free(repo);
}

TestSuite(txn, .init = setup, .fini = teardown);

#define RAW PROTO_CHUNK_RAW
#define DELTA PROTO_CHUNK_DELTA
#define SET PROTO_WIN_SET
#define PUSH PROTO_WIN_PUSH

static void
window(struct store_txn *t, uint64_t index, uint8_t op, unsigned n, ...)
{
    struct proto_window_rec r = {0};
    va_list ap;

    r.index = index;
    r.op = op;
    r.n = (uint8_t)n;
    va_start(ap, n);
    for (unsigned i = 0; i < n; i++) {
        r.refs[i].type = (uint8_t)va_arg(ap, int);
        r.refs[i].d = va_arg(ap, struct tu_chunk *)->c.d;
    }
    va_end(ap);
    cr_assert_eq(store_txn_window(t, &r), 0, "window %llu: %s",
                 (unsigned long long)index, lb_error_msg());
}

/* The full backup: vda = [R1] [] [R1 D1] [] [], vdb = [R2]. */
static void
full_backup(char id[PROTO_ID_LEN + 1])
{
    struct proto_kv meta = {0}, dmeta = {0}, out;
    struct store_txn *t;
    uint64_t nw = 0;
    uint8_t *depths = (uint8_t *)1;

    proto_kv_set(&meta, "kind", "full");
    t = store_txn_begin(st, "vm1", "", &meta);
    cr_assert_not_null(t, "%s", lb_error_msg());
    cr_assert(proto_backup_id_valid(store_txn_id(t), PROTO_ID_LEN));
    cr_assert_str_eq(store_txn_parent(t), "");
    cr_assert_eq(tu_disk_begin(t, "vda", VDA_SIZE, PROTO_DISK_FULL, &dmeta, &nw,
                               &depths),
                 0, "%s", lb_error_msg());
    cr_assert_eq(nw, 5);
    cr_assert_null(depths, "no depths for a full disk");
    window(t, 0, SET, 1, RAW, &R1);
    window(t, 2, SET, 2, RAW, &R1, DELTA, &D1);
    window(t, 3, SET, 0);
    proto_kv_set(&dmeta, "bytes_read", "262154");
    cr_assert_eq(store_txn_disk_end(t, &dmeta), 0, "%s", lb_error_msg());
    proto_kv_free(&dmeta);
    cr_assert_eq(tu_disk_begin(t, "vdb", VDB_SIZE, PROTO_DISK_FULL, &dmeta, &nw,
                               &depths),
                 0);
    cr_assert_eq(nw, 1);
    window(t, 0, SET, 1, RAW, &R2);
    cr_assert_eq(store_txn_disk_end(t, &dmeta), 0);
    proto_kv_set(&meta, "consistency", "crash");
    snprintf(id, PROTO_ID_LEN + 1, "%s", store_txn_id(t));
    cr_assert_eq(store_txn_commit(t, &meta, &out), 0, "%s", lb_error_msg());
    cr_assert_str_eq(proto_kv_get(&out, "id"), id);
    cr_assert_str_eq(proto_kv_get(&out, "name"), "vm1");
    cr_assert_str_eq(proto_kv_get(&out, "parent"), "");
    cr_assert_str_eq(proto_kv_get(&out, "kind"), "full");
    cr_assert_str_eq(proto_kv_get(&out, "consistency"), "crash");
    cr_assert_str_eq(proto_kv_get(&out, "disks"), "vda=262154 vdb=65536");
    cr_assert_eq(proto_kv_get_u64(&out, "size", 0), VDA_SIZE + VDB_SIZE);
    cr_assert_eq(proto_kv_get_u64(&out, "windows_set", 0), 4);
    cr_assert_eq(proto_kv_get_u64(&out, "windows_pushed", 9), 0);
    proto_kv_free(&out);
    proto_kv_free(&meta);
}

/* ---- reading a manifest back --------------------------------------------- */

struct want_disk {
    const char *name;
    uint64_t size;
    const char *mode;
    uint8_t nwin;
    struct {
        uint8_t n;
        struct {
            uint8_t type;
            struct tu_chunk *c;
        } r[4];
    } w[8];
};

static void
check_manifest(const char *id, const struct want_disk *want, size_t ndisks,
               struct proto_kv *meta_out)
{
    int fd = store_manifest_open(st, id);
    struct proto_mf_reader *r;
    struct proto_mf_hdr h;
    struct proto_mf_disk d;
    struct proto_kv meta;

    cr_assert_geq(fd, 0, "%s", lb_error_msg());
    r = proto_mf_reader_new(tu_fd_read, &fd);
    cr_assert_eq(proto_mf_read_header(r, &h), 0);
    cr_assert_eq(h.ndisks, ndisks);
    for (size_t i = 0; i < ndisks; i++) {
        cr_assert_eq(proto_mf_next_disk(r, &d), 1, "%s", lb_error_msg());
        cr_assert_str_eq(d.name, want[i].name);
        cr_assert_eq(d.size, want[i].size);
        cr_assert_eq(d.window_size, WS);
        cr_assert_eq(d.nwindows, want[i].nwin);
        for (uint64_t k = 0; k < d.nwindows; k++) {
            struct proto_mf_window w;
            cr_assert_eq(proto_mf_next_window(r, &w), 0);
            cr_assert_eq(w.depth, want[i].w[k].n, "%s window %llu",
                         want[i].name, (unsigned long long)k);
            for (int j = 0; j < w.depth; j++) {
                cr_assert_eq(w.refs[j].type, want[i].w[k].r[j].type);
                cr_assert_arr_eq(w.refs[j].d.b, want[i].w[k].r[j].c->c.d.b,
                                 PROTO_DIGEST_LEN, "%s window %llu ref %d",
                                 want[i].name, (unsigned long long)k, j);
            }
        }
        cr_assert_eq(proto_mf_read_disk_end(r, &meta), 0);
        cr_assert_str_eq(proto_kv_get(&meta, "mode"), want[i].mode);
        proto_kv_free(&meta);
    }
    cr_assert_eq(proto_mf_next_disk(r, &d), 0);
    cr_assert_eq(proto_mf_read_meta(r, &meta), 0);
    cr_assert_eq(proto_mf_finish(r), 0, "%s", lb_error_msg());
    cr_assert_str_eq(proto_kv_get(&meta, "id"), id);
    if (meta_out)
        *meta_out = meta;
    else
        proto_kv_free(&meta);
    proto_mf_reader_free(r);
    close(fd);
}

static const struct want_disk full_want[] = {
    {"vda",
     VDA_SIZE,
     "full",
     5,
     {{1, {{RAW, &R1}}},
      {0, {{0}}},
      {2, {{RAW, &R1}, {DELTA, &D1}}},
      {0, {{0}}},
      {0, {{0}}}}},
    {"vdb", VDB_SIZE, "full", 1, {{1, {{RAW, &R2}}}}},
};

Test(txn, full_backup_is_listed_and_reads_back)
{
    char id[PROTO_ID_LEN + 1];
    struct store_list l;
    struct proto_kv meta;

    full_backup(id);
    check_manifest(id, full_want, 2, &meta);
    cr_assert_str_eq(proto_kv_get(&meta, "kind"), "full");
    proto_kv_free(&meta);
    {
        /* The disk metadata carries what the client sent. */
        int fd = store_manifest_open(st, id);
        struct proto_mf_reader *r = proto_mf_reader_new(tu_fd_read, &fd);
        struct proto_mf_hdr h;
        struct proto_mf_disk d;
        struct proto_kv dm;
        cr_assert_eq(proto_mf_read_header(r, &h), 0);
        cr_assert_eq(proto_mf_next_disk(r, &d), 1);
        cr_assert_eq(proto_mf_skip_disk(r), 0);
        cr_assert_eq(proto_mf_read_disk_end(r, &dm), 0);
        cr_assert_str_eq(proto_kv_get(&dm, "bytes_read"), "262154");
        proto_kv_free(&dm);
        proto_mf_reader_free(r);
        close(fd);
    }

    cr_assert_eq(store_list(st, NULL, &l), 0);
    cr_assert_eq(l.n, 1);
    cr_assert_str_eq(l.b[0].id, id);
    cr_assert_str_eq(proto_kv_get(&l.b[0].meta, "name"), "vm1");
    cr_assert_str_eq(proto_kv_get(&l.b[0].meta, "consistency"), "crash");
    cr_assert_gt(l.b[0].time, 0);
    store_list_free(&l);
    cr_assert_eq(store_list(st, "vm1", &l), 0);
    cr_assert_eq(l.n, 1);
    store_list_free(&l);
    cr_assert_eq(store_list(st, "vm2", &l), 0);
    cr_assert_eq(l.n, 0, "filtered by name");
    store_list_free(&l);
}

Test(txn, incremental_merges_with_the_parent)
{
    char id1[PROTO_ID_LEN + 1], id2[PROTO_ID_LEN + 1];
    struct proto_kv meta = {0}, dmeta = {0}, out;
    struct store_txn *t;
    uint64_t nw = 0;
    uint8_t *depths = NULL;
    static const uint8_t want_depths[] = {1, 0, 2, 0, 0};
    static const struct want_disk incr_want[] = {
        {"vda",
         VDA_SIZE,
         "incremental",
         5,
         {{2, {{RAW, &R1}, {DELTA, &D2}}},   /* PUSH onto [R1] */
          {1, {{RAW, &R2}}},                 /* SET */
          {2, {{RAW, &R1}, {DELTA, &D1}}},   /* inherited */
          {2, {{DELTA, &D3}, {DELTA, &D1}}}, /* PUSH onto [] */
          {0, {{0}}}}},                      /* inherited empty */
        {"vdb", VDB_SIZE, "incremental", 1, {{1, {{RAW, &R2}}}}},
    };
    struct store_list l;

    full_backup(id1);
    t = store_txn_begin(st, "vm1", id1, &meta);
    cr_assert_not_null(t, "%s", lb_error_msg());
    cr_assert_str_eq(store_txn_parent(t), id1);
    cr_assert_str_neq(store_txn_id(t), id1);
    cr_assert_eq(tu_disk_begin(t, "vda", VDA_SIZE, PROTO_DISK_INCR, &dmeta, &nw,
                               &depths),
                 0, "%s", lb_error_msg());
    cr_assert_eq(nw, 5);
    cr_assert_not_null(depths);
    cr_assert_arr_eq(depths, want_depths, 5, "the parent's stack depths");
    free(depths);
    window(t, 0, PUSH, 1, DELTA, &D2);
    window(t, 1, SET, 1, RAW, &R2);
    window(t, 3, PUSH, 2, DELTA, &D3, DELTA, &D1);
    cr_assert_eq(store_txn_disk_end(t, &dmeta), 0, "%s", lb_error_msg());
    cr_assert_eq(tu_disk_begin(t, "vdb", VDB_SIZE, PROTO_DISK_INCR, &dmeta, &nw,
                               &depths),
                 0, "%s", lb_error_msg());
    cr_assert_eq(depths[0], 1);
    free(depths);
    cr_assert_eq(store_txn_disk_end(t, &dmeta), 0); /* nothing changed */
    snprintf(id2, sizeof id2, "%s", store_txn_id(t));
    cr_assert_eq(store_txn_commit(t, &meta, &out), 0, "%s", lb_error_msg());
    cr_assert_str_eq(proto_kv_get(&out, "parent"), id1);
    cr_assert_eq(proto_kv_get_u64(&out, "windows_set", 0), 1);
    cr_assert_eq(proto_kv_get_u64(&out, "windows_pushed", 0), 2);
    proto_kv_free(&out);

    check_manifest(id2, incr_want, 2, NULL);
    check_manifest(id1, full_want, 2, NULL); /* the parent is untouched */
    cr_assert_eq(store_list(st, "vm1", &l), 0);
    cr_assert_eq(l.n, 2);
    cr_assert_str_eq(l.b[0].id, id1, "oldest first");
    cr_assert_str_eq(l.b[1].id, id2);
    cr_assert_str_eq(proto_kv_get(&l.b[1].meta, "parent"), id1);
    store_list_free(&l);
}

Test(txn, incremental_of_a_subset_of_disks)
{
    char id1[PROTO_ID_LEN + 1], id2[PROTO_ID_LEN + 1];
    struct proto_kv meta = {0};
    struct store_txn *t;
    uint64_t nw;
    uint8_t *depths;
    static const struct want_disk want[] = {
        {"vdb", VDB_SIZE, "incremental", 1, {{2, {{RAW, &R2}, {DELTA, &D1}}}}},
    };

    full_backup(id1);
    t = store_txn_begin(st, "vm1", id1, &meta);
    cr_assert_eq(
        tu_disk_begin(t, "vdb", VDB_SIZE, PROTO_DISK_INCR, &meta, &nw, &depths),
        0, "%s", lb_error_msg());
    free(depths);
    window(t, 0, PUSH, 1, DELTA, &D1);
    cr_assert_eq(store_txn_disk_end(t, &meta), 0);
    snprintf(id2, sizeof id2, "%s", store_txn_id(t));
    cr_assert_eq(store_txn_commit(t, &meta, NULL), 0, "%s", lb_error_msg());
    check_manifest(id2, want, 1, NULL);
}

/* ---- refusals ------------------------------------------------------------ */

static struct store_txn *
begin_full_vda(void)
{
    struct proto_kv meta = {0};
    struct store_txn *t = store_txn_begin(st, "vm1", "", &meta);
    uint64_t nw;
    uint8_t *depths;

    cr_assert_not_null(t);
    cr_assert_eq(
        tu_disk_begin(t, "vda", VDA_SIZE, PROTO_DISK_FULL, &meta, &nw, &depths),
        0);
    return t;
}

static int
try_window(struct store_txn *t, uint64_t index, uint8_t op, uint8_t type,
           const struct proto_digest *d)
{
    struct proto_window_rec r = {0};

    r.index = index;
    r.op = op;
    r.n = 1;
    r.refs[0].type = type;
    r.refs[0].d = *d;
    return store_txn_window(t, &r);
}

Test(txn, window_indexes_must_increase_and_fit)
{
    struct store_txn *t = begin_full_vda();

    cr_assert_eq(try_window(t, 2, SET, RAW, &R1.c.d), 0);
    cr_assert_eq(try_window(t, 2, SET, RAW, &R1.c.d), -1, "repeated index");
    cr_assert_eq(lb_error_errno(), EINVAL);
    /* A refusal ends the transaction: nothing is accepted after it. */
    cr_assert_eq(try_window(t, 4, SET, RAW, &R1.c.d), -1, "failed for good");
    store_txn_abort(t);

    t = begin_full_vda();
    cr_assert_eq(try_window(t, 2, SET, RAW, &R1.c.d), 0);
    cr_assert_eq(try_window(t, 1, SET, RAW, &R1.c.d), -1, "going back");
    cr_assert_eq(lb_error_errno(), EINVAL);
    store_txn_abort(t);

    t = begin_full_vda();
    cr_assert_eq(try_window(t, 5, SET, RAW, &R1.c.d), -1, "past the disk");
    cr_assert_eq(lb_error_errno(), EINVAL);
    store_txn_abort(t);

    t = begin_full_vda();
    cr_assert_eq(try_window(t, UINT64_MAX, SET, RAW, &R1.c.d), -1);
    store_txn_abort(t);
}

Test(txn, refs_must_name_stored_or_noted_chunks)
{
    struct store_txn *t = begin_full_vda();
    struct tu_chunk unknown;

    tu_chunk_raw(&unknown, WS, 77);
    cr_assert_not(store_txn_noted(t, &unknown.c.d));
    cr_assert_eq(try_window(t, 0, SET, RAW, &unknown.c.d), -1);
    cr_assert_eq(lb_error_errno(), EINVAL);
    cr_assert_neq(strstr(lb_error_msg(), "neither sent nor stored"), NULL);
    store_txn_abort(t);

    /* Noted (a worker is storing it): accepted before it is on disk. */
    t = begin_full_vda();
    store_txn_note_chunk(t, &unknown.c.d, RAW, WS);
    cr_assert(store_txn_noted(t, &unknown.c.d));
    cr_assert_eq(try_window(t, 0, SET, RAW, &unknown.c.d), 0, "%s",
                 lb_error_msg());
    store_txn_abort(t);
    tu_chunk_free(&unknown);
}

Test(txn, stack_rules)
{
    struct store_txn *t = begin_full_vda();
    struct proto_window_rec r = {0};

    /* A RAW chunk above another chunk. */
    r.index = 0;
    r.op = SET;
    r.n = 2;
    r.refs[0].type = DELTA;
    r.refs[0].d = D1.c.d;
    r.refs[1].type = RAW;
    r.refs[1].d = R1.c.d;
    cr_assert_eq(store_txn_window(t, &r), -1);
    cr_assert_eq(lb_error_errno(), EINVAL);
    store_txn_abort(t);

    /* A full stack: RAW and 31 DELTAs (PROTO_MAX_STACK). */
    t = begin_full_vda();
    r.n = PROTO_MAX_STACK;
    for (int i = 0; i < PROTO_MAX_STACK; i++) {
        r.refs[i].type = i ? DELTA : RAW;
        r.refs[i].d = i ? D1.c.d : R1.c.d;
    }
    cr_assert_eq(store_txn_window(t, &r), 0, "%s", lb_error_msg());
    store_txn_abort(t);
}

Test(txn, push_over_the_depth_limit_and_raw_on_a_stack)
{
    char id1[PROTO_ID_LEN + 1];
    struct proto_kv meta = {0};
    struct proto_window_rec r = {0};
    struct store_txn *t;
    uint64_t nw;
    uint8_t *depths;

    full_backup(id1);
    t = store_txn_begin(st, "vm1", id1, &meta);
    cr_assert_eq(
        tu_disk_begin(t, "vda", VDA_SIZE, PROTO_DISK_INCR, &meta, &nw, &depths),
        0);
    free(depths);
    /* Window 2 holds 2 refs: 31 more is too many. */
    r.index = 2;
    r.op = PUSH;
    r.n = PROTO_MAX_STACK - 1;
    for (int i = 0; i < r.n; i++) {
        r.refs[i].type = DELTA;
        r.refs[i].d = D2.c.d;
    }
    cr_assert_eq(store_txn_window(t, &r), -1);
    cr_assert_eq(lb_error_errno(), EINVAL);
    store_txn_abort(t);

    t = store_txn_begin(st, "vm1", id1, &meta);
    cr_assert_eq(
        tu_disk_begin(t, "vda", VDA_SIZE, PROTO_DISK_INCR, &meta, &nw, &depths),
        0);
    free(depths);
    cr_assert_eq(try_window(t, 0, PUSH, RAW, &R2.c.d), -1,
                 "a RAW pushed onto [R1]");
    cr_assert_eq(lb_error_errno(), EINVAL);
    store_txn_abort(t);
}

Test(txn, incremental_needs_a_matching_parent_disk)
{
    char id1[PROTO_ID_LEN + 1];
    struct proto_kv meta = {0};
    struct store_txn *t;
    uint64_t nw;
    uint8_t *depths = (uint8_t *)1;

    full_backup(id1);
    t = store_txn_begin(st, "vm1", id1, &meta);
    cr_assert_eq(
        tu_disk_begin(t, "sda", VDA_SIZE, PROTO_DISK_INCR, &meta, &nw, &depths),
        -1, "the parent has no disk sda");
    cr_assert_eq(lb_error_errno(), ENOENT);
    cr_assert_null(depths);
    store_txn_abort(t);

    t = store_txn_begin(st, "vm1", id1, &meta);
    cr_assert_eq(tu_disk_begin(t, "vda", VDA_SIZE + 1, PROTO_DISK_INCR, &meta,
                               &nw, &depths),
                 -1, "size differs");
    cr_assert_eq(lb_error_errno(), EINVAL);
    store_txn_abort(t);

    t = store_txn_begin(st, "vm1", "", &meta);
    cr_assert_eq(
        tu_disk_begin(t, "vda", VDA_SIZE, PROTO_DISK_INCR, &meta, &nw, &depths),
        -1, "no parent at all");
    cr_assert_eq(lb_error_errno(), EINVAL);
    cr_assert_eq(tu_disk_begin(t, "vda", VDA_SIZE, 2, &meta, &nw, &depths), -1,
                 "unknown mode");
    cr_assert_eq(lb_error_errno(), EINVAL);
    store_txn_abort(t);
}

Test(txn, parent_must_exist_and_be_of_the_same_set)
{
    char id1[PROTO_ID_LEN + 1];
    struct proto_kv meta = {0};

    full_backup(id1);
    cr_assert_null(store_txn_begin(st, "vm2", id1, &meta));
    cr_assert_eq(lb_error_errno(), EINVAL);
    cr_assert_null(store_txn_begin(st, "vm1", "20200101-000000-0000", &meta));
    cr_assert_eq(lb_error_errno(), ENOENT);
    cr_assert_null(store_txn_begin(st, "vm1", "../x", &meta));
    cr_assert_eq(lb_error_errno(), EINVAL);
    cr_assert_null(store_txn_begin(st, "a/b", "", &meta), "invalid name");
    cr_assert_eq(lb_error_errno(), EINVAL);
    cr_assert_null(store_txn_begin(st, "..", "", &meta));
    cr_assert_eq(lb_error_errno(), EINVAL);
}

Test(txn, disks_must_be_valid_and_unique)
{
    struct proto_kv meta = {0};
    struct store_txn *t = store_txn_begin(st, "vm1", "", &meta);
    uint64_t nw;
    uint8_t *depths;

    cr_assert_eq(tu_disk_begin(t, ".vda", 1, 0, &meta, &nw, &depths), -1);
    cr_assert_eq(tu_disk_begin(t, "../x", 1, 0, &meta, &nw, &depths), -1);
    cr_assert_eq(tu_disk_begin(t, "vda", 0, 0, &meta, &nw, &depths), -1,
                 "size 0");
    cr_assert_eq(
        tu_disk_begin(t, "vda", PROTO_MF_MAX_SIZE + 1, 0, &meta, &nw, &depths),
        -1);
    cr_assert_eq(tu_disk_begin(t, "vda", 100, 0, &meta, &nw, &depths), 0);
    cr_assert_eq(tu_disk_begin(t, "vdb", 100, 0, &meta, &nw, &depths), -1,
                 "vda still open");
    cr_assert_eq(store_txn_disk_end(t, &meta), 0);
    cr_assert_eq(tu_disk_begin(t, "vda", 100, 0, &meta, &nw, &depths), -1,
                 "vda twice");
    cr_assert_eq(lb_error_errno(), EINVAL);
    store_txn_abort(t);
}

Test(txn, commit_refuses_unfinished_backups)
{
    struct proto_kv meta = {0};
    struct store_txn *t = store_txn_begin(st, "vm1", "", &meta);
    CLEANUP_FREE char *b = lb_xasprintf("%s/backups", repo);

    cr_assert_eq(store_txn_commit(t, &meta, NULL), -1, "no disk");
    cr_assert_eq(lb_error_errno(), EINVAL);
    t = begin_full_vda();
    cr_assert_eq(store_txn_commit(t, &meta, NULL), -1, "disk still open");
    cr_assert_eq(lb_error_errno(), EINVAL);
    cr_assert_eq(tu_count_entries(b), 0, "nothing committed");
}

Test(txn, read_only_stores_refuse_backups)
{
    struct store *ro = store_open(repo, STORE_READ, 0);
    struct proto_kv meta = {0};

    cr_assert_null(store_txn_begin(ro, "vm1", "", &meta));
    cr_assert_eq(lb_error_errno(), EPERM);
    store_close(ro);
}

Test(txn, abort_leaves_no_manifest)
{
    struct store_txn *t = begin_full_vda();
    CLEANUP_FREE char *b = lb_xasprintf("%s/backups", repo);
    CLEANUP_FREE char *tdir = lb_xasprintf("%s/tmp", repo);
    struct store_list l;

    cr_assert_eq(try_window(t, 0, SET, RAW, &R1.c.d), 0);
    store_txn_abort(t);
    store_txn_abort(NULL);
    cr_assert_eq(tu_count_entries(b), 0);
    cr_assert_eq(store_list(st, NULL, &l), 0);
    cr_assert_eq(l.n, 0);
    store_list_free(&l);
    {
        /* Only the session's lock remains in its directory. */
        DIR *d = opendir(tdir);
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            CLEANUP_FREE char *s = NULL;
            if (e->d_name[0] == '.')
                continue;
            s = lb_xasprintf("%s/%s", tdir, e->d_name);
            cr_assert_eq(tu_count_entries(s), 0, "temp manifest removed");
        }
        closedir(d);
    }
    cr_assert_eq(store_chunk_exists(st, &R1.c.d), 1, "chunks stay");
}

/* ---- backup ids ---------------------------------------------------------- */

/* Two writers (two handles: two sessions, or two front ends of a RADOS
 * pool) beginning many backups in one second never get one id twice:
 * 1000 ids of 16 random bits in one second would repeat some 7 times
 * without the reservation (ids/ID). */
#define NIDS 1000
Test(txn, two_writers_in_one_second_never_share_an_id)
{
    struct store *st2 = store_open(repo, STORE_WRITE, 0);
    struct store_txn **t = lb_xcalloc(NIDS, sizeof *t);
    struct proto_kv meta = {0}, out;
    struct rlimit rl;
    CLEANUP_FREE char *ids = lb_xasprintf("%s/ids", repo);
    CLEANUP_FREE char *bk = lb_xasprintf("%s/backups", repo);

    cr_assert_not_null(st2, "%s", lb_error_msg());
    /* a temp manifest open for each */
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < NIDS + 256) {
        rl.rlim_cur = LB_MIN(rl.rlim_max, (rlim_t)NIDS + 256);
        cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    cr_assert_geq(rl.rlim_cur, NIDS + 256, "needs %d open files", NIDS + 256);
    setenv("LIVEBACKUP_FAKE_TIME", "2026-12-02T10:00:00Z", 1);
    for (int i = 0; i < NIDS; i++) {
        t[i] = store_txn_begin(i % 2 ? st2 : st, "vm1", "", &meta);
        cr_assert_not_null(t[i], "%d: %s", i, lb_error_msg());
        cr_assert(strncmp(store_txn_id(t[i]), "20261202-100000-", 16) == 0);
    }
    unsetenv("LIVEBACKUP_FAKE_TIME");
    for (int i = 0; i < NIDS; i++)
        for (int j = 0; j < i; j++)
            cr_assert_str_neq(store_txn_id(t[i]), store_txn_id(t[j]),
                              "backups %d and %d share an id", j, i);
    cr_assert_eq(tu_count_entries(ids), NIDS, "one reservation each");
    /* committed or aborted, a backup's reservation goes (the manifest
     * keeps its id from then on) */
    {
        struct proto_kv dm = {0};
        uint64_t nw;
        uint8_t *depths;
        cr_assert_eq(tu_disk_begin(t[0], "vdb", VDB_SIZE, PROTO_DISK_FULL, &dm,
                                   &nw, &depths),
                     0, "%s", lb_error_msg());
        window(t[0], 0, SET, 1, RAW, &R2);
        cr_assert_eq(store_txn_disk_end(t[0], &dm), 0, "%s", lb_error_msg());
        proto_kv_free(&dm);
    }
    cr_assert_eq(store_txn_commit(t[0], &meta, &out), 0, "%s", lb_error_msg());
    proto_kv_free(&out);
    for (int i = 1; i < NIDS; i++)
        store_txn_abort(t[i]);
    cr_assert_eq(tu_count_entries(ids), 0);
    cr_assert_eq(tu_count_entries(bk), 1);
    free(t);
    store_close(st2);
}

/* A reservation left by a writer that died takes no id from anyone: a
 * begin that draws it draws again. Seven ids in eight of the second are
 * reserved: the one chosen is among the free ones (the chance that a
 * begin's 100 draws all miss them: 1.4e-6). */
Test(txn, reserved_ids_are_never_chosen)
{
    struct proto_kv meta = {0};
    CLEANUP_FREE char *dir = lb_xasprintf("%s/ids", repo);
    struct store_txn *t;
    char id[PROTO_ID_LEN + 1];
    unsigned long rnd;

    cr_assert_eq(mkdir(dir, 0700), 0);
    for (unsigned r = 0; r < 65536; r++) {
        CLEANUP_FREE char *f = NULL;
        if (r % 8 == 0)
            continue;
        proto_backup_id_make(id, 1796205600, (uint16_t)r); /* 10:00:00 */
        f = lb_xasprintf("%s/%s", dir, id);
        tu_write_file(f, "", 0);
    }
    setenv("LIVEBACKUP_FAKE_TIME", "2026-12-02T10:00:00Z", 1);
    for (int i = 0; i < 8; i++) {
        t = store_txn_begin(st, "vm1", "", &meta);
        cr_assert_not_null(t, "%s", lb_error_msg());
        cr_assert(strncmp(store_txn_id(t), "20261202-100000-", 16) == 0);
        rnd = strtoul(store_txn_id(t) + 16, NULL, 16);
        cr_assert_eq(rnd % 8, 0, "%s was reserved", store_txn_id(t));
        store_txn_abort(t);
    }
    unsetenv("LIVEBACKUP_FAKE_TIME");
    cr_assert_eq(tu_count_entries(dir), 65536 - 8192,
                 "the others' reservations stay");
}

/* ---- manifests and delete ------------------------------------------------ */

Test(txn, manifest_open_errors)
{
    cr_assert_eq(store_manifest_open(st, "../config"), -1);
    cr_assert_eq(lb_error_errno(), EINVAL);
    cr_assert_eq(store_manifest_open(st, "20200101-000000-0000"), -1);
    cr_assert_eq(lb_error_errno(), ENOENT);
}

Test(txn, delete_needs_admin_and_removes_only_the_manifest)
{
    char id1[PROTO_ID_LEN + 1], id2[PROTO_ID_LEN + 1];
    struct store *adm;
    struct store_list l;

    full_backup(id1);
    full_backup(id2);
    cr_assert_eq(store_delete(st, id1), -1, "a writer may not delete");
    cr_assert_eq(lb_error_errno(), EPERM);
    store_close(st);
    st = NULL;
    adm = store_open(repo, STORE_ADMIN, 0);
    cr_assert_not_null(adm, "%s", lb_error_msg());
    st = adm; /* teardown closes it */

    store_set_append_only(adm, true);
    cr_assert_eq(store_delete(adm, id1), -1);
    cr_assert_eq(lb_error_errno(), EPERM, "append-only");
    store_set_append_only(adm, false);

    cr_assert_eq(store_delete(adm, "../../x"), -1);
    cr_assert_eq(lb_error_errno(), EINVAL);
    cr_assert_eq(store_delete(adm, id1), 0, "%s", lb_error_msg());
    cr_assert_eq(store_delete(adm, id1), -1, "already gone");
    cr_assert_eq(lb_error_errno(), ENOENT);
    cr_assert_eq(store_list(adm, NULL, &l), 0);
    cr_assert_eq(l.n, 1);
    cr_assert_str_eq(l.b[0].id, id2);
    store_list_free(&l);
    cr_assert_eq(store_chunk_exists(adm, &R1.c.d), 1, "gc reclaims chunks");
    check_manifest(id2, full_want, 2, NULL);
}

Test(txn, list_skips_damaged_manifests)
{
    char id1[PROTO_ID_LEN + 1], id2[PROTO_ID_LEN + 1];
    CLEANUP_FREE char *p = NULL;
    struct store_list l;

    full_backup(id1);
    full_backup(id2);
    p = lb_xasprintf("%s/backups/%s", repo, id1);
    cr_assert_eq(truncate(p, 40), 0);
    cr_assert_eq(store_list(st, NULL, &l), 0);
    cr_assert_eq(l.n, 1);
    cr_assert_str_eq(l.b[0].id, id2);
    store_list_free(&l);
}

/* A client's declared sizes cannot make the server write and hash more
 * than PROTO_MF_MAX_WINDOWS records per disk and PROTO_MF_MAX_BACKUP_WINDOWS
 * per backup (with 64 KiB windows: 1 TiB per disk, 4 TiB per backup). */
Test(txn, windows_per_disk_and_per_backup_are_bounded)
{
    struct proto_kv meta = {0}, dmeta = {0};
    struct store_txn *t = store_txn_begin(st, "vm1", "", &meta);
    const uint64_t disk_max = PROTO_MF_MAX_WINDOWS * (uint64_t)WS;
    char name[8];
    uint64_t nw;
    uint8_t *depths;

    cr_assert_not_null(t);
    cr_assert_eq(tu_disk_begin(t, "vda", disk_max + 1, PROTO_DISK_FULL, &dmeta,
                               &nw, &depths),
                 -1);
    cr_assert_eq(lb_error_errno(), EFBIG);
    cr_assert(strstr(lb_error_msg(), "more than this repository takes"), "%s",
              lb_error_msg());
    store_txn_abort(t);

    t = store_txn_begin(st, "vm1", "", &meta);
    cr_assert_not_null(t);
    for (unsigned i = 0; i < PROTO_MF_MAX_BACKUP_WINDOWS / PROTO_MF_MAX_WINDOWS;
         i++) {
        snprintf(name, sizeof name, "vd%c", 'a' + i);
        cr_assert_eq(tu_disk_begin(t, name, disk_max, PROTO_DISK_FULL, &dmeta,
                                   &nw, &depths),
                     0, "%s", lb_error_msg());
        cr_assert_eq(nw, PROTO_MF_MAX_WINDOWS);
        cr_assert_eq(store_txn_disk_end(t, &dmeta), 0, "%s", lb_error_msg());
    }
    cr_assert_eq(
        tu_disk_begin(t, "vdz", WS, PROTO_DISK_FULL, &dmeta, &nw, &depths), -1,
        "one window past the backup's bound");
    cr_assert_eq(lb_error_errno(), EFBIG);
    store_txn_abort(t);
}

/* A client's metadata is merged with the server's keys and the COMMIT's:
 * too many keys or bytes are refused with EINVAL (INVALID to the client),
 * never an abort (issue 10, item 1). */
static void
many_keys(struct proto_kv *kv, const char *prefix, unsigned n, size_t vlen)
{
    char *v = lb_xmalloc(vlen + 1);

    memset(v, 'v', vlen);
    v[vlen] = '\0';
    for (unsigned i = 0; i < n; i++) {
        char k[32];
        snprintf(k, sizeof k, "%s%u", prefix, i);
        proto_kv_set(kv, k, v);
    }
    free(v);
}

Test(txn, client_metadata_is_bounded)
{
    struct proto_kv meta = {0}, more = {0}, dmeta = {0};
    struct store_txn *t;
    uint64_t nw;
    uint8_t *depths;

    /* PROTO_MAX_KV keys at BACKUP_BEGIN: the decoder takes them, the
     * server's own keys would not fit. */
    many_keys(&meta, "k", PROTO_MAX_KV, 1);
    cr_assert_null(store_txn_begin(st, "vm1", "", &meta));
    cr_assert_eq(lb_error_errno(), EINVAL);
    cr_assert(strstr(lb_error_msg(), "too much metadata"), "%s",
              lb_error_msg());
    proto_kv_free(&meta);

    /* Half at BACKUP_BEGIN, the rest at COMMIT. */
    many_keys(&meta, "a", STORE_MAX_META_KEYS / 2, 1);
    many_keys(&more, "b", STORE_MAX_META_KEYS / 2 + 1, 1);
    t = store_txn_begin(st, "vm1", "", &meta);
    cr_assert_not_null(t, "%s", lb_error_msg());
    cr_assert_eq(tu_disk_begin(t, "vdb", VDB_SIZE, PROTO_DISK_FULL, &dmeta, &nw,
                               &depths),
                 0);
    cr_assert_eq(store_txn_disk_end(t, &dmeta), 0);
    cr_assert_eq(store_txn_commit(t, &more, NULL), -1);
    cr_assert_eq(lb_error_errno(), EINVAL);
    proto_kv_free(&meta);
    proto_kv_free(&more);

    /* Bytes: a value of 64 KiB is more than a backup's metadata may hold
     * (every listing holds all of them); one of 32 KiB is not. */
    many_keys(&meta, "big", 1, STORE_MAX_META_BYTES);
    cr_assert_null(store_txn_begin(st, "vm1", "", &meta));
    cr_assert_eq(lb_error_errno(), EINVAL);
    cr_assert(strstr(lb_error_msg(), "bytes, at most 65536"), "%s",
              lb_error_msg());
    proto_kv_free(&meta);
    many_keys(&meta, "big", 1, STORE_MAX_META_BYTES / 2);
    t = store_txn_begin(st, "vm1", "", &meta);
    cr_assert_not_null(t, "%s", lb_error_msg());
    store_txn_abort(t);
    proto_kv_free(&meta);

    /* A disk's: DISK_BEGIN and DISK_END together. */
    t = store_txn_begin(st, "vm1", "", &meta);
    cr_assert_not_null(t);
    many_keys(&dmeta, "d", PROTO_MAX_KV, 1);
    cr_assert_eq(tu_disk_begin(t, "vdb", VDB_SIZE, PROTO_DISK_FULL, &dmeta, &nw,
                               &depths),
                 -1);
    cr_assert_eq(lb_error_errno(), EINVAL);
    store_txn_abort(t);
    proto_kv_free(&dmeta);
    t = store_txn_begin(st, "vm1", "", &meta);
    many_keys(&dmeta, "d", 1, STORE_MAX_DISK_META_BYTES / 2);
    cr_assert_eq(tu_disk_begin(t, "vdb", VDB_SIZE, PROTO_DISK_FULL, &dmeta, &nw,
                               &depths),
                 0, "%s", lb_error_msg());
    proto_kv_free(&dmeta);
    many_keys(&dmeta, "e", 1, STORE_MAX_DISK_META_BYTES / 2);
    cr_assert_eq(store_txn_disk_end(t, &dmeta), -1);
    cr_assert_eq(lb_error_errno(), EINVAL);
    store_txn_abort(t);
    proto_kv_free(&dmeta);

    /* At the bounds exactly: committed. */
    many_keys(&meta, "m", STORE_MAX_META_KEYS, 1);
    t = store_txn_begin(st, "vm1", "", &meta);
    cr_assert_not_null(t, "%s", lb_error_msg());
    cr_assert_eq(tu_disk_begin(t, "vdb", VDB_SIZE, PROTO_DISK_FULL, &dmeta, &nw,
                               &depths),
                 0);
    cr_assert_eq(store_txn_disk_end(t, &dmeta), 0);
    cr_assert_eq(store_txn_commit(t, &more, NULL), 0, "%s", lb_error_msg());
    proto_kv_free(&meta);
}

/* A listing reads the manifests' meta blocks in batches bounded in bytes
 * (manifests.c): 80 backups of about 60 KiB of metadata each (4.7 MiB,
 * more than one batch holds) are all listed, each with its own. */
Test(txn, list_of_large_metas)
{
    enum { N = 80 };
    char *pad = lb_xmalloc(60000 + 1);
    struct store_list l;

    for (int i = 0; i < N; i++) {
        struct proto_kv meta = {0}, dmeta = {0}, out;
        struct store_txn *t;
        uint64_t nw = 0;
        uint8_t *depths = NULL;
        char name[16];

        memset(pad, 'a' + i % 26, 60000);
        pad[60000] = '\0';
        snprintf(name, sizeof name, "set%d", i % 3);
        proto_kv_set(&meta, "kind", "full");
        proto_kv_set(&meta, "pad", pad);
        t = store_txn_begin(st, name, "", &meta);
        cr_assert_not_null(t, "%s", lb_error_msg());
        cr_assert_eq(tu_disk_begin(t, "vdb", VDB_SIZE, PROTO_DISK_FULL, &dmeta,
                                   &nw, &depths),
                     0, "%s", lb_error_msg());
        window(t, 0, SET, 1, RAW, &R2);
        cr_assert_eq(store_txn_disk_end(t, &dmeta), 0, "%s", lb_error_msg());
        cr_assert_eq(store_txn_commit(t, &meta, &out), 0, "%s", lb_error_msg());
        proto_kv_free(&out);
        proto_kv_free(&dmeta);
        proto_kv_free(&meta);
    }
    cr_assert_eq(store_list(st, NULL, &l), 0, "%s", lb_error_msg());
    cr_assert_eq(l.n, N);
    for (size_t i = 0; i < l.n; i++) {
        const char *p = proto_kv_get(&l.b[i].meta, "pad");
        cr_assert_not_null(p, "backup %zu: its meta", i);
        cr_assert_eq(strlen(p), 60000);
        /* listed in commit order: backup i padded with its own letter */
        cr_assert_eq(p[0], 'a' + (int)(i % 26), "backup %zu", i);
        cr_assert_eq(p[59999], p[0]);
    }
    store_list_free(&l);
    cr_assert_eq(store_list(st, "set1", &l), 0);
    cr_assert_eq(l.n, (N + 1) / 3, "set1: backups 1, 4, ... 79");
    store_list_free(&l);
    free(pad);
}
