/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * store_txn_import (PROTOCOL.md, "Copy"): a backup committed under the
 * source's id with the source's metadata, kept but for the repository's
 * own bookkeeping; its disks whole with their own "mode"; and what an
 * import must refuse: an id already here or not naming its time,
 * metadata naming another backup, an incremental disk without its parent
 * of the set here, a disk without
 * its mode, a commit of an encrypted repository without a MAC, and on an
 * append-only repository a backup older than its set's latest or from
 * the future.
 */
#include "store/store.h"
#include "tests/unit/store_util.h"
#include "tests/unit/testutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#define WS (64u << 10)

static char *tmp, *repo;
static struct store *st;
static struct store_scratch *sc;
static struct tu_chunk R1;

static void
setup(void)
{
    uint64_t stored;

    tmp = tu_mkdtemp();
    repo = lb_xasprintf("%s/repo", tmp);
    lb_log_set_level(LB_LOG_ERROR);
    cr_assert_eq(store_init(repo, WS), 0, "%s", lb_error_msg());
    st = store_open(repo, STORE_WRITE, 0);
    cr_assert_not_null(st, "%s", lb_error_msg());
    sc = store_scratch_new();
    tu_chunk_raw(&R1, WS, 1);
    cr_assert_geq(store_chunk_put(st, sc, &R1.c, &stored), 0, "%s",
                  lb_error_msg());
}

static void
teardown(void)
{
    tu_chunk_free(&R1);
    store_scratch_free(sc);
    store_close(st);
    tu_rm_rf(tmp);
    free(tmp);
    free(repo);
}

TestSuite(import, .init = setup, .fini = teardown);

/* 2026-11-23 11:46:00 UTC and 12:00:00 UTC */
#define T1 1795434360
#define ID1 "20261123-114600-abcd"
#define T2 1795435200
#define ID2 "20261123-120000-0042"

/* What a source's meta block holds. */
static void
source_meta(struct proto_kv *m, const char *id, int64_t t)
{
    memset(m, 0, sizeof *m);
    proto_kv_set(m, "id", id);
    proto_kv_set(m, "name", "vm1");
    proto_kv_set(m, "parent", "20261122-013000-1ad2");
    proto_kv_set_u64(m, "time", (uint64_t)t);
    proto_kv_set_u64(m, "end_time", (uint64_t)t + 9);
    proto_kv_set(m, "kind", "incremental");
    proto_kv_set(m, "seq", "77");
    proto_kv_set(m, "chunks_new", "5");
    proto_kv_set(m, "bytes_new", "12345");
    proto_kv_set(m, "bytes_received", "23456");
    proto_kv_set(m, "windows_set", "3");
    proto_kv_set(m, "windows_pushed", "4");
    proto_kv_set(m, "disks", "vda=65536");
    proto_kv_set(m, "size", "65536");
    proto_kv_set(m, "consistency", "fs-frozen");
}

static struct store_txn *
import(const char *id, int64_t t, const char *mode)
{
    struct proto_kv m, dm = {0}, none = {0};
    struct store_txn *x;
    struct proto_window_rec r = {.index = 0, .op = PROTO_WIN_SET, .n = 1};
    uint64_t nw;
    uint8_t *depths = NULL;

    source_meta(&m, id, t);
    x = store_txn_import(st, id, "vm1", "20261122-013000-1ad2", &m);
    proto_kv_free(&m);
    if (!x)
        return NULL;
    if (mode)
        proto_kv_set(&dm, "mode", mode);
    proto_kv_set(&dm, "source_format", "qcow2");
    cr_assert_eq(
        tu_disk_begin(x, "vda", WS, PROTO_DISK_FULL, &dm, &nw, &depths), 0,
        "%s", lb_error_msg());
    proto_kv_free(&dm);
    r.refs[0].type = PROTO_CHUNK_RAW;
    r.refs[0].d = R1.c.d;
    cr_assert_eq(store_txn_window(x, &r), 0, "%s", lb_error_msg());
    if (store_txn_disk_end(x, &none) < 0) {
        store_txn_abort(x);
        return NULL;
    }
    return x;
}

Test(import, keeps_the_source_metadata_but_the_bookkeeping)
{
    struct proto_kv none = {0}, out, meta;
    struct store_txn *x = import(ID1, T1, "incremental");

    cr_assert_not_null(x, "%s", lb_error_msg());
    cr_assert_str_eq(store_txn_id(x), ID1);
    cr_assert_eq(store_txn_commit(x, &none, &out), 0, "%s", lb_error_msg());
    cr_assert_str_eq(proto_kv_get(&out, "id"), ID1);
    cr_assert_str_eq(proto_kv_get(&out, "parent"), "20261122-013000-1ad2");
    cr_assert_eq(proto_kv_get_u64(&out, "time", 0), T1);
    cr_assert_eq(proto_kv_get_u64(&out, "end_time", 0), T1 + 9);
    cr_assert_str_eq(proto_kv_get(&out, "kind"), "incremental");
    cr_assert_str_eq(proto_kv_get(&out, "consistency"), "fs-frozen");
    cr_assert_str_eq(proto_kv_get(&out, "windows_set"), "3");
    cr_assert_str_eq(proto_kv_get(&out, "windows_pushed"), "4");
    /* this repository's own */
    cr_assert_str_eq(proto_kv_get(&out, "seq"), "1");
    cr_assert_str_eq(proto_kv_get(&out, "chunks_new"), "0");
    cr_assert_str_eq(proto_kv_get(&out, "bytes_new"), "0");
    cr_assert_str_eq(proto_kv_get(&out, "bytes_received"), "0");
    proto_kv_free(&out);
    cr_assert_eq(store_backup_meta(st, ID1, &meta), 0, "%s", lb_error_msg());
    cr_assert_eq(proto_kv_get_u64(&meta, "time", 0), T1);
    proto_kv_free(&meta);
    /* the same id again: never replaced */
    cr_assert_null(import(ID1, T1, "incremental"));
    cr_assert_eq(lb_error_errno(), EEXIST);
}

Test(import, refuses_what_is_not_the_backup_it_names)
{
    struct proto_kv m;

    /* an id whose time is not the meta's */
    source_meta(&m, ID1, T1 + 1);
    cr_assert_null(store_txn_import(st, ID1, "vm1", "", &m));
    cr_assert_eq(lb_error_errno(), EINVAL);
    proto_kv_free(&m);
    /* a time past the last an id can name (year 10000) */
    source_meta(&m, "99991231-235959-0000", 253402300800);
    cr_assert_null(store_txn_import(st, "99991231-235959-0000", "vm1",
                                    "20261122-013000-1ad2", &m));
    cr_assert_eq(lb_error_errno(), EINVAL);
    proto_kv_free(&m);
    /* meta naming another set, another id, another parent */
    source_meta(&m, ID1, T1);
    cr_assert_null(
        store_txn_import(st, ID1, "vm2", "20261122-013000-1ad2", &m));
    cr_assert_null(
        store_txn_import(st, ID2, "vm1", "20261122-013000-1ad2", &m));
    cr_assert_null(store_txn_import(st, ID1, "vm1", "", &m));
    {
        struct proto_kv no_time = {0};
        for (size_t i = 0; i < m.n; i++)
            if (strcmp(m.e[i].key, "time") != 0)
                proto_kv_set(&no_time, m.e[i].key, m.e[i].val);
        cr_assert_null(
            store_txn_import(st, ID1, "vm1", "20261122-013000-1ad2", &no_time));
        proto_kv_free(&no_time);
    }
    proto_kv_free(&m);
    /* a disk without its mode */
    cr_assert_null(import(ID1, T1, NULL));
    cr_assert_eq(lb_error_errno(), EINVAL);
    cr_assert_null(import(ID1, T1, "delta"));
}

/* 2026-11-22 01:30:00 UTC: the parent source_meta names; 02:00:00 */
#define TP 1795311000
#define IDP "20261122-013000-1ad2"
#define TQ (TP + 1800)
#define IDQ "20261122-020000-0bad"

/* Import backup id of time t as a backup of set name: a disk "vda" of two
 * windows, [R1] and [r2]. */
static void
import_parent(const char *id, int64_t t, const char *name,
              const struct tu_chunk *r2)
{
    struct proto_kv m, dm = {0}, none = {0}, out;
    struct proto_window_rec r = {.op = PROTO_WIN_SET, .n = 1};
    struct store_txn *x;
    uint64_t nw;
    uint8_t *depths = NULL;

    source_meta(&m, id, t);
    proto_kv_set(&m, "name", name);
    proto_kv_set(&m, "parent", "");
    x = store_txn_import(st, id, name, "", &m);
    proto_kv_free(&m);
    cr_assert_not_null(x, "%s", lb_error_msg());
    proto_kv_set(&dm, "mode", "full");
    cr_assert_eq(
        tu_disk_begin(x, "vda", 2 * WS, PROTO_DISK_FULL, &dm, &nw, &depths),
        0, "%s", lb_error_msg());
    proto_kv_free(&dm);
    r.refs[0].type = PROTO_CHUNK_RAW;
    r.refs[0].d = R1.c.d;
    cr_assert_eq(store_txn_window(x, &r), 0, "%s", lb_error_msg());
    r.index = 1;
    r.refs[0].d = r2->c.d;
    cr_assert_eq(store_txn_window(x, &r), 0, "%s", lb_error_msg());
    cr_assert_eq(store_txn_disk_end(x, &none), 0, "%s", lb_error_msg());
    cr_assert_eq(store_txn_commit(x, &none, &out), 0, "%s", lb_error_msg());
    proto_kv_free(&out);
}

/* An import's disk may be incremental on its parent when the parent is a
 * backup of its set here (the copy of a night onto the last night's
 * copy): its windows keep the parent's stacks but those the records set
 * or push on. Without the parent here, or with a parent of another set,
 * it is refused. */
Test(import, incremental_disks_on_a_parent_of_the_set_here_only)
{
    struct proto_kv m, dm = {0}, none = {0}, out;
    struct proto_window_rec r = {.index = 1, .op = PROTO_WIN_PUSH, .n = 1};
    struct tu_chunk R2, D1;
    struct store_txn *x;
    uint64_t nw, stored;
    uint8_t *depths = NULL;

    tu_chunk_raw(&R2, WS, 2);
    tu_chunk_delta(&D1, WS, 0, 3);
    cr_assert_geq(store_chunk_put(st, sc, &R2.c, &stored), 0);
    cr_assert_geq(store_chunk_put(st, sc, &D1.c, &stored), 0);
    proto_kv_set(&dm, "mode", "incremental");

    /* no parent here */
    source_meta(&m, ID1, T1);
    x = store_txn_import(st, ID1, "vm1", IDP, &m);
    cr_assert_not_null(x, "%s", lb_error_msg());
    cr_assert_lt(
        tu_disk_begin(x, "vda", 2 * WS, PROTO_DISK_INCR, &dm, &nw, &depths),
        0);
    cr_assert_eq(lb_error_errno(), ENOENT, "%s", lb_error_msg());
    cr_assert(strstr(lb_error_msg(), IDP), "%s", lb_error_msg());
    store_txn_abort(x);

    /* a parent of another set: refused as a backup's would be */
    import_parent(IDQ, TQ, "vm2", &R2);
    proto_kv_set(&m, "parent", IDQ);
    x = store_txn_import(st, ID1, "vm1", IDQ, &m);
    cr_assert_not_null(x, "%s", lb_error_msg());
    cr_assert_lt(
        tu_disk_begin(x, "vda", 2 * WS, PROTO_DISK_INCR, &dm, &nw, &depths),
        0);
    cr_assert(strstr(lb_error_msg(), "not a backup of vm1"), "%s",
              lb_error_msg());
    store_txn_abort(x);

    /* the parent of the set: window 0 kept, a delta pushed on window 1 */
    import_parent(IDP, TP, "vm1", &R2);
    proto_kv_set(&m, "parent", IDP);
    x = store_txn_import(st, ID1, "vm1", IDP, &m);
    proto_kv_free(&m);
    cr_assert_not_null(x, "%s", lb_error_msg());
    cr_assert_eq(
        tu_disk_begin(x, "vda", 2 * WS, PROTO_DISK_INCR, &dm, &nw, &depths),
        0, "%s", lb_error_msg());
    cr_assert_eq(nw, 2);
    cr_assert_eq(depths[0], 1);
    cr_assert_eq(depths[1], 1);
    r.refs[0].type = PROTO_CHUNK_DELTA;
    r.refs[0].d = D1.c.d;
    cr_assert_eq(store_txn_window(x, &r), 0, "%s", lb_error_msg());
    cr_assert_eq(store_txn_disk_end(x, &none), 0, "%s", lb_error_msg());
    cr_assert_eq(store_txn_commit(x, &none, &out), 0, "%s", lb_error_msg());
    proto_kv_free(&out);
    {
        int fd = store_manifest_open(st, ID1);
        struct proto_mf_reader *rd;
        struct proto_mf_hdr h;
        struct proto_mf_disk d;
        struct proto_mf_window w;
        struct proto_kv dmeta;

        cr_assert_geq(fd, 0, "%s", lb_error_msg());
        rd = proto_mf_reader_new(tu_fd_read, &fd);
        cr_assert_eq(proto_mf_read_header(rd, &h), 0);
        cr_assert_eq(proto_mf_next_disk(rd, &d), 1);
        cr_assert_eq(proto_mf_next_window(rd, &w), 0);
        cr_assert_eq(w.depth, 1);
        cr_assert_arr_eq(w.refs[0].d.b, R1.c.d.b, PROTO_DIGEST_LEN);
        cr_assert_eq(proto_mf_next_window(rd, &w), 0);
        cr_assert_eq(w.depth, 2);
        cr_assert_arr_eq(w.refs[0].d.b, R2.c.d.b, PROTO_DIGEST_LEN);
        cr_assert_arr_eq(w.refs[1].d.b, D1.c.d.b, PROTO_DIGEST_LEN);
        /* the source's disk metadata, its mode included, as it was */
        cr_assert_eq(proto_mf_read_disk_end(rd, &dmeta), 0);
        cr_assert_str_eq(proto_kv_get(&dmeta, "mode"), "incremental");
        proto_kv_free(&dmeta);
        proto_mf_reader_free(rd);
        close(fd);
    }
    proto_kv_free(&dm);
    free(depths);
    tu_chunk_free(&R2);
    tu_chunk_free(&D1);
}

Test(import, append_only_takes_no_older_backup_and_none_from_the_future)
{
    struct proto_kv none = {0};
    struct store_txn *x;
    char future[PROTO_ID_LEN + 1];
    int64_t later = lb_wall_time() + 3600;

    store_set_append_only(st, true);
    x = import(ID2, T2, "full");
    cr_assert_not_null(x, "%s", lb_error_msg());
    cr_assert_eq(store_txn_commit(x, &none, NULL), 0, "%s", lb_error_msg());
    /* older than the set's latest: refused */
    cr_assert_null(import(ID1, T1, "full"));
    cr_assert_eq(lb_error_errno(), EPERM);
    cr_assert(strstr(lb_error_msg(), "not older than the latest"), "%s",
              lb_error_msg());
    /* an hour ahead of the clock: refused */
    proto_backup_id_make(future, later, 7);
    cr_assert_null(import(future, later, "full"));
    cr_assert_eq(lb_error_errno(), EPERM);
    /* the same, not append-only: both go in */
    store_set_append_only(st, false);
    x = import(ID1, T1, "full");
    cr_assert_not_null(x, "%s", lb_error_msg());
    cr_assert_eq(store_txn_commit(x, &none, NULL), 0, "%s", lb_error_msg());
}

Test(import, of_an_encrypted_repository_needs_its_mac)
{
    struct store_key k = {.encryption = PROTO_ENC_KEYFILE};
    char *erepo = lb_xasprintf("%s/enc", tmp);
    struct store *saved = st;
    struct proto_kv none = {0};
    struct store_txn *x;

    memset(k.key_id, 0x42, sizeof k.key_id);
    cr_assert_eq(store_init_keyed(erepo, WS, &k), 0, "%s", lb_error_msg());
    st = store_open(erepo, STORE_WRITE, 0);
    cr_assert_not_null(st, "%s", lb_error_msg());
    /* no chunk needed to see the MAC refused: a disk of one empty window */
    {
        struct proto_kv m, dm = {0};
        uint64_t nw;
        uint8_t *depths = NULL;
        source_meta(&m, ID1, T1);
        x = store_txn_import(st, ID1, "vm1", "20261122-013000-1ad2", &m);
        proto_kv_free(&m);
        cr_assert_not_null(x, "%s", lb_error_msg());
        proto_kv_set(&dm, "mode", "full");
        cr_assert_eq(
            tu_disk_begin(x, "vda", WS, PROTO_DISK_FULL, &dm, &nw, &depths), 0,
            "%s", lb_error_msg());
        cr_assert_eq(store_txn_disk_end(x, &none), 0, "%s", lb_error_msg());
        proto_kv_free(&dm);
    }
    cr_assert_lt(store_txn_commit(x, &none, NULL), 0);
    cr_assert(strstr(lb_error_msg(), "MAC"), "%s", lb_error_msg());
    store_close(st);
    st = saved;
    free(erepo);
}
