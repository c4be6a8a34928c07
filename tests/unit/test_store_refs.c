/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What a backup names must be what restore and gc rely on (issue 10, items
 * 2 and 6): a commit refuses a ref of the wrong type, a RAW chunk that does
 * not fill its window, a DELTA too large for its window, a CHUNK claimed
 * with another header than the stored one, and a domain_xml that is not a
 * stored BLOB; verify finds each of these in a manifest that was written
 * without those checks (an older backupd, a hostile repository), and gc
 * and verify name the same backup.
 */
#include "store/store.h"
#include "tests/unit/store_util.h"
#include "tests/unit/testutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#define WS (64u << 10)
#define SIZE (2 * (uint64_t)WS + 5000) /* 3 windows, the last of 5000 B */

static char *tmp, *repo;
static struct store *st;
static struct store_scratch *sc;
/* R a whole window, RS the last (short) one, D a DELTA for a whole
 * window, DS one for the short window, B a BLOB */
static struct tu_chunk R, RS, D, DS, B;

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
    static const char xml[] = "<domain><name>vm1</name></domain>";

    tmp = tu_mkdtemp();
    repo = lb_xasprintf("%s/repo", tmp);
    lb_log_set_level(LB_LOG_ERROR);
    cr_assert_eq(store_init(repo, WS), 0, "%s", lb_error_msg());
    st = store_open(repo, STORE_WRITE, 0);
    cr_assert_not_null(st, "%s", lb_error_msg());
    sc = store_scratch_new();
    tu_chunk_raw(&R, WS, 1);
    tu_chunk_raw(&RS, 5000, 2);
    tu_chunk_delta(&D, WS, 4096, 3);
    tu_chunk_delta(&DS, 5000, 512, 4);
    tu_chunk_make(&B, PROTO_CHUNK_BLOB, (const uint8_t *)xml, sizeof xml - 1,
                  false);
    put(&R);
    put(&RS);
    put(&D);
    put(&DS);
    put(&B);
}

static void
teardown(void)
{
    tu_chunk_free(&R);
    tu_chunk_free(&RS);
    tu_chunk_free(&D);
    tu_chunk_free(&DS);
    tu_chunk_free(&B);
    store_scratch_free(sc);
    store_close(st);
    tu_rm_rf(tmp);
    free(tmp);
    free(repo);
}

TestSuite(refs, .init = setup, .fini = teardown);

#define RAW PROTO_CHUNK_RAW
#define DELTA PROTO_CHUNK_DELTA

/* One window record of one ref. */
static int
one_ref(struct store_txn *t, uint64_t index, uint8_t type,
        const struct tu_chunk *c)
{
    struct proto_window_rec r = {.index = index, .op = PROTO_WIN_SET, .n = 1};

    r.refs[0].type = type;
    r.refs[0].d = c->c.d;
    return store_txn_window(t, &r);
}

static struct store_txn *
begin(void)
{
    struct proto_kv meta = {0};
    struct store_txn *t = store_txn_begin(st, "vm1", "", &meta);
    uint64_t nw;
    uint8_t *depths;

    cr_assert_not_null(t, "%s", lb_error_msg());
    cr_assert_eq(
        tu_disk_begin(t, "vda", SIZE, PROTO_DISK_FULL, &meta, &nw, &depths), 0,
        "%s", lb_error_msg());
    return t;
}

static void
refused(struct store_txn *t, uint64_t index, uint8_t type,
        const struct tu_chunk *c, const char *msg)
{
    cr_assert_eq(one_ref(t, index, type, c), -1, "window %llu accepted",
                 (unsigned long long)index);
    cr_assert_eq(lb_error_errno(), EINVAL, "%s", lb_error_msg());
    cr_assert(strstr(lb_error_msg(), msg), "'%s' does not say '%s'",
              lb_error_msg(), msg);
    store_txn_abort(t);
}

Test(refs, commit_checks_types_and_raw_sizes)
{
    struct store_txn *t = begin();
    struct proto_kv meta = {0};

    /* What a restore reads: all accepted. */
    cr_assert_eq(one_ref(t, 0, RAW, &R), 0, "%s", lb_error_msg());
    cr_assert_eq(one_ref(t, 1, DELTA, &D), 0, "%s", lb_error_msg());
    cr_assert_eq(one_ref(t, 2, RAW, &RS), 0, "%s", lb_error_msg());
    cr_assert_eq(store_txn_disk_end(t, &meta), 0);
    cr_assert_eq(store_txn_commit(t, &meta, NULL), 0, "%s", lb_error_msg());

    refused(begin(), 0, RAW, &D, "as RAW, but it is a DELTA chunk");
    refused(begin(), 0, DELTA, &R, "as DELTA, but it is a RAW chunk");
    refused(begin(), 0, RAW, &B, "as RAW, but it is a BLOB chunk");
    refused(begin(), 0, RAW, &RS, "RAW chunk");
    refused(begin(), 2, RAW, &R, "of 65536 bytes for a window of 5000");
    /* A DELTA's own window length is in its plaintext: verify checks it
     * (below), a commit only its size against the window's. */
}

/* The header a CHUNK frame declares is noted before the chunk is written;
 * a chunk already stored under that digest with another header is refused
 * by the write, so what was noted is what is stored. */
Test(refs, a_chunk_claimed_with_another_header_is_refused)
{
    struct store_written w;
    struct proto_chunk lie = D.c;

    lie.type = RAW;
    lie.raw_len = WS;
    cr_assert_eq(store_chunk_write(st, sc, &lie, &w), -1);
    cr_assert_eq(lb_error_errno(), EPROTO);
    cr_assert(strstr(lb_error_msg(), "is stored as type 2"), "%s",
              lb_error_msg());
    cr_assert_eq(store_chunk_write(st, sc, &D.c, &w), 1, "the truth: stored");
}

Test(refs, noted_chunks_are_checked_with_their_declared_header)
{
    struct store_txn *t = begin();
    struct tu_chunk n;

    tu_chunk_raw(&n, WS, 9); /* being written by a worker, not stored */
    store_txn_note_chunk(t, &n.c.d, RAW, WS);
    cr_assert_eq(one_ref(t, 0, RAW, &n), 0, "%s", lb_error_msg());
    refused(t, 1, DELTA, &n, "as DELTA, but it is a RAW chunk");
    t = begin();
    store_txn_note_chunk(t, &n.c.d, RAW, WS);
    refused(t, 2, RAW, &n, "for a window of 5000");
    tu_chunk_free(&n);
}

static int
commit_with_xml(const char *xml)
{
    struct store_txn *t = begin();
    struct proto_kv meta = {0};
    int r;

    cr_assert_eq(store_txn_disk_end(t, &meta), 0);
    proto_kv_set(&meta, "domain_xml", xml);
    r = store_txn_commit(t, &meta, NULL);
    proto_kv_free(&meta);
    return r;
}

Test(refs, commit_checks_the_saved_domain_xml)
{
    char hex[65];

    proto_digest_hex(&B.c.d, hex);
    cr_assert_eq(commit_with_xml(hex), 0, "%s", lb_error_msg());
    cr_assert_eq(commit_with_xml(""), 0, "none: fine");

    cr_assert_eq(commit_with_xml("not a digest"), -1);
    cr_assert_eq(lb_error_errno(), EINVAL);
    cr_assert(strstr(lb_error_msg(), "its domain_xml is not a digest"), "%s",
              lb_error_msg());
    proto_digest_hex(&R.c.d, hex);
    cr_assert_eq(commit_with_xml(hex), -1);
    cr_assert(strstr(lb_error_msg(), "but it is a RAW chunk"), "%s",
              lb_error_msg());
    memset(hex, 'a', 64);
    cr_assert_eq(commit_with_xml(hex), -1);
    cr_assert(strstr(lb_error_msg(), "neither sent nor stored"), "%s",
              lb_error_msg());
}

/* ---- manifests written without the commit's checks ---------------------- */

/* Write backups/ID by hand: one disk vda of SIZE with one ref per window
 * (NULL: empty), and meta (name, id, seq 1 added). */
static void
write_manifest(const char *id, const uint8_t types[3],
               const struct tu_chunk *refs[3], const char *xml)
{
    CLEANUP_FREE char *path = lb_xasprintf("%s/backups/%s", repo, id);
    struct proto_kv meta = {0};
    struct proto_mf_writer *w;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);

    cr_assert_geq(fd, 0);
    w = proto_mf_writer_new(fd);
    cr_assert_eq(proto_mf_write_disk(w, "vda", SIZE, WS), 0);
    for (int i = 0; i < 3; i++) {
        struct proto_mf_window win = {0};
        if (refs[i]) {
            win.depth = 1;
            win.refs[0].type = types[i];
            win.refs[0].d = refs[i]->c.d;
        }
        cr_assert_eq(proto_mf_write_window(w, &win), 0);
    }
    cr_assert_eq(proto_mf_write_disk_end(w, &meta), 0);
    proto_kv_set(&meta, "id", id);
    proto_kv_set(&meta, "name", "vm1");
    proto_kv_set(&meta, "seq", "1");
    proto_kv_set(&meta, "time", "1");
    if (xml)
        proto_kv_set(&meta, "domain_xml", xml);
    cr_assert_eq(proto_mf_write_finish(w, &meta), 0);
    proto_mf_writer_free(w);
    proto_kv_free(&meta);
    close(fd);
}

static void
rm_backup(const char *id)
{
    CLEANUP_FREE char *path = lb_xasprintf("%s/backups/%s", repo, id);

    cr_assert_eq(unlink(path), 0);
}

struct found {
    char what[8][512];
    char id[8][32];
    size_t n;
};

static void
on_damage(void *opaque, const char *id, const char *name, const char *disk,
          const char *what)
{
    struct found *f = opaque;

    (void)name;
    (void)disk;
    cr_assert_lt(f->n, 8, "more damage than expected: %s", what);
    snprintf(f->id[f->n], sizeof f->id[0], "%s", id);
    snprintf(f->what[f->n++], sizeof f->what[0], "%s", what);
}

/* verify must report exactly one damage, on backup id, saying msg. */
static void
verify_finds(const char *id, const char *msg)
{
    struct found f = {0};
    struct store_verify_cb cb = {&f, on_damage, NULL};
    struct proto_kv stats = {0};

    cr_assert_eq(store_verify(st, &cb, &stats), 1, "verify says sound");
    cr_assert_eq(f.n, 1, "%zu reports, the first: %s", f.n, f.what[0]);
    cr_assert_str_eq(f.id[0], id);
    cr_assert(strstr(f.what[0], msg), "'%s' does not say '%s'", f.what[0], msg);
    proto_kv_free(&stats);
}

static const uint8_t T_RDR[3] = {RAW, DELTA, RAW};

Test(refs, verify_checks_what_restore_needs)
{
    const struct tu_chunk *good[3] = {&R, &D, &RS};
    const struct tu_chunk *short_raw[3] = {&RS, NULL, NULL};
    const struct tu_chunk *wrong_type[3] = {&D, NULL, NULL};
    const struct tu_chunk *long_raw[3] = {NULL, NULL, &R};
    const uint8_t t_ddd[3] = {DELTA, DELTA, DELTA};
    const struct tu_chunk *short_delta[3] = {&DS, NULL, NULL};
    const struct tu_chunk *long_delta[3] = {NULL, NULL, &D};
    const struct tu_chunk *ok_short_delta[3] = {NULL, NULL, &DS};
    struct found f = {0};
    struct store_verify_cb cb = {&f, on_damage, NULL};
    struct proto_kv stats = {0};

    write_manifest("20260101-000000-0001", T_RDR, good, NULL);
    write_manifest("20260101-000000-0002", t_ddd, ok_short_delta, NULL);
    cr_assert_eq(store_verify(st, &cb, &stats), 0, "%s", f.what[0]);
    proto_kv_free(&stats);

    write_manifest("20260101-000000-0003", T_RDR, short_raw, NULL);
    verify_finds("20260101-000000-0003",
                 "holds 5000 bytes for a window of 65536");
    rm_backup("20260101-000000-0003");
    write_manifest("20260101-000000-0004", T_RDR, wrong_type, NULL);
    verify_finds("20260101-000000-0004", "is a DELTA chunk, named as RAW");
    rm_backup("20260101-000000-0004");
    write_manifest("20260101-000000-0005", T_RDR, long_raw, NULL);
    verify_finds("20260101-000000-0005",
                 "holds 65536 bytes for a window of 5000");
    rm_backup("20260101-000000-0005");
    write_manifest("20260101-000000-0006", t_ddd, short_delta, NULL);
    verify_finds("20260101-000000-0006",
                 "made for a window of 5000 bytes, named in one of 65536");
    rm_backup("20260101-000000-0006");
    write_manifest("20260101-000000-0007", t_ddd, long_delta, NULL);
    verify_finds("20260101-000000-0007",
                 "made for a window of 65536 bytes, named in one of 5000");
}

/* One bad domain_xml: gc stops (it cannot tell what that backup keeps)
 * and names the backup; verify names the same backup, in the same words. */
Test(refs, gc_and_verify_name_the_same_culprit)
{
    const struct tu_chunk *good[3] = {&R, &D, &RS};
    const char *id = "20260101-000000-00aa";
    struct store_gc_opts o = {0};
    struct store_gc_stats gs;
    char hex[65];

    write_manifest(id, T_RDR, good, "junk");
    cr_assert_eq(store_gc(st, &o, &gs), -1);
    cr_assert(strstr(lb_error_msg(), id), "%s", lb_error_msg());
    cr_assert(strstr(lb_error_msg(), "its domain_xml is not a digest"), "%s",
              lb_error_msg());
    verify_finds(id, "its domain_xml is not a digest");
    rm_backup(id);

    /* A digest naming no BLOB: gc keeps going (it keeps the digest),
     * verify says what restore will find. */
    proto_digest_hex(&R.c.d, hex);
    write_manifest(id, T_RDR, good, hex);
    cr_assert_eq(store_gc(st, &o, &gs), 0, "%s", lb_error_msg());
    verify_finds(id, "saved domain XML: chunk");
    verify_finds(id, "is a RAW chunk, named as BLOB");
    rm_backup(id);
    memset(hex, 'b', 64);
    write_manifest(id, T_RDR, good, hex);
    verify_finds(id, "missing");
}
