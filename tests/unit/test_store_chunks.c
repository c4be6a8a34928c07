/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * store/chunks.c: chunks are checked before they are stored (digest, RAW
 * size, DELTA runs), written once with the documented header, read back
 * and re-checked; damaged chunk files are refused.
 */
#include "store/store.h"
#include "tests/unit/testutil.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

#define WS (64u << 10)

static char *tmp, *repo;
static struct store *st;
static struct store_scratch *sc;

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
}

static void
teardown(void)
{
    store_scratch_free(sc);
    store_close(st);
    tu_rm_rf(tmp);
    free(tmp);
    free(repo);
}

TestSuite(chunks, .init = setup, .fini = teardown);

static char *
chunk_path(const struct proto_digest *d)
{
    char hex[65];

    proto_digest_hex(d, hex);
    return lb_xasprintf("%s/chunks/%.2s/%s", repo, hex, hex);
}

/* Files in this writer's session directory, its lock aside. */
static size_t
session_files(void)
{
    CLEANUP_FREE char *t = lb_xasprintf("%s/tmp", repo);
    DIR *d = opendir(t);
    struct dirent *e;
    size_t n = 0;

    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL) {
        CLEANUP_FREE char *s = NULL;
        if (e->d_name[0] == '.')
            continue;
        s = lb_xasprintf("%s/%s", t, e->d_name);
        n += tu_count_entries(s);
    }
    closedir(d);
    return n;
}

Test(chunks, put_stores_once_with_the_documented_header)
{
    struct tu_chunk c;
    uint64_t stored = 99;
    CLEANUP_FREE char *path = NULL;
    uint8_t *f;
    size_t len;

    tu_chunk_raw(&c, WS, 1);
    cr_assert_eq(c.c.comp, PROTO_COMP_ZSTD);
    cr_assert_eq(store_chunk_exists(st, &c.c.d), 0);
    cr_assert_eq(store_chunk_put(st, sc, &c.c, &stored), 0, "%s",
                 lb_error_msg());
    cr_assert_eq(stored, 16 + (uint64_t)c.c.data_len);
    cr_assert_eq(store_chunk_exists(st, &c.c.d), 1);

    path = chunk_path(&c.c.d);
    f = tu_read_file(path, &len);
    cr_assert_not_null(f, "stored at chunks/ab/<hex>");
    cr_assert_eq(len, 16 + (size_t)c.c.data_len);
    cr_assert_eq(lb_load_be32(f), 0x4C42434Bu, "LBCK");
    cr_assert_eq(f[4], 1, "chunk file version");
    cr_assert_eq(f[5], PROTO_CHUNK_RAW);
    cr_assert_eq(f[6], PROTO_COMP_ZSTD);
    cr_assert_eq(f[7], 0);
    cr_assert_eq(lb_load_be32(f + 8), WS);
    cr_assert_eq(lb_load_be32(f + 12), c.c.data_len);
    cr_assert_arr_eq(f + 16, c.stored, c.c.data_len);
    free(f);

    cr_assert_eq(store_chunk_put(st, sc, &c.c, &stored), 1, "already there");
    cr_assert_eq(stored, 0);
    cr_assert_eq(session_files(), 0, "no temp file left");
    tu_chunk_free(&c);
}

Test(chunks, put_refuses_data_that_does_not_match_its_digest)
{
    struct tu_chunk c;
    uint64_t stored = 99;
    CLEANUP_FREE char *path = NULL;

    tu_chunk_raw(&c, 4096, 2);
    c.c.d.b[31] ^= 1;
    path = chunk_path(&c.c.d);
    cr_assert_eq(store_chunk_put(st, sc, &c.c, &stored), -1);
    cr_assert_eq(lb_error_errno(), EPROTO);
    cr_assert_neq(strstr(lb_error_msg(), "does not match"), NULL, "%s",
                  lb_error_msg());
    cr_assert_eq(stored, 0);
    cr_assert_not(tu_exists(path), "nothing stored under the digest");
    cr_assert_eq(store_chunk_exists(st, &c.c.d), 0);
    cr_assert_eq(session_files(), 0, "no temp file left");

    /* Same digest, right data, wrong type byte: the type is hashed too. */
    c.c.d.b[31] ^= 1;
    c.c.type = PROTO_CHUNK_BLOB;
    cr_assert_eq(store_chunk_put(st, sc, &c.c, &stored), -1);
    cr_assert_eq(lb_error_errno(), EPROTO);
    tu_chunk_free(&c);
}

Test(chunks, put_refuses_corrupt_compressed_data)
{
    struct tu_chunk c;
    uint64_t stored;

    tu_chunk_raw(&c, WS, 3);
    cr_assert_eq(c.c.comp, PROTO_COMP_ZSTD);
    c.c.raw_len = WS - 1; /* the frame declares WS */
    cr_assert_eq(store_chunk_put(st, sc, &c.c, &stored), -1);
    cr_assert_eq(lb_error_errno(), EPROTO);
    c.c.raw_len = WS;
    c.stored[c.c.data_len / 2] ^= 0x55;
    cr_assert_eq(store_chunk_put(st, sc, &c.c, &stored), -1);
    cr_assert_eq(lb_error_errno(), EPROTO);
    c.c.data_len = 3; /* truncated frame */
    cr_assert_eq(store_chunk_put(st, sc, &c.c, &stored), -1);
    cr_assert_eq(lb_error_errno(), EPROTO);
    cr_assert_eq(session_files(), 0);
    tu_chunk_free(&c);
}

Test(chunks, raw_chunks_are_at_most_one_window)
{
    struct tu_chunk ok, big;
    uint64_t stored;

    tu_chunk_raw(&ok, WS, 4);
    tu_chunk_raw(&big, WS + 1, 4);
    cr_assert_eq(store_chunk_put(st, sc, &ok.c, &stored), 0);
    cr_assert_eq(store_chunk_put(st, sc, &big.c, &stored), -1);
    cr_assert_eq(lb_error_errno(), EPROTO);
    cr_assert_eq(store_chunk_exists(st, &big.c.d), 0);
    tu_chunk_free(&ok);
    tu_chunk_free(&big);
}

Test(chunks, delta_runs_are_checked_against_the_window)
{
    struct tu_chunk ok, wide, bad;
    uint64_t stored;
    uint8_t buf[PROTO_DELTA_HDR + 2 * PROTO_DELTA_RUN];
    struct proto_run runs[2] = {{1024, 512, PROTO_RUN_ZERO},
                                {0, 512, PROTO_RUN_ZERO}};

    tu_chunk_delta(&ok, WS, 512, 5);
    cr_assert_eq(store_chunk_put(st, sc, &ok.c, &stored), 0, "%s",
                 lb_error_msg());
    /* A DELTA for a window larger than the repository's. */
    tu_chunk_delta(&wide, 2 * WS, 512, 5);
    cr_assert_eq(store_chunk_put(st, sc, &wide.c, &stored), -1);
    cr_assert_eq(lb_error_errno(), EPROTO);
    /* Runs out of order: the digest matches, the content is invalid. */
    proto_delta_encode(buf, sizeof buf, WS, runs, 2, NULL);
    tu_chunk_make(&bad, PROTO_CHUNK_DELTA, buf, sizeof buf, false);
    cr_assert_eq(store_chunk_put(st, sc, &bad.c, &stored), -1);
    cr_assert_eq(lb_error_errno(), EPROTO);
    cr_assert_eq(store_chunk_exists(st, &bad.c.d), 0);
    tu_chunk_free(&ok);
    tu_chunk_free(&wide);
    tu_chunk_free(&bad);
}

Test(chunks, read_only_stores_refuse_writes)
{
    struct store *ro = store_open(repo, STORE_READ, 0);
    struct tu_chunk c;
    uint64_t stored;

    tu_chunk_raw(&c, 100, 6);
    cr_assert_eq(store_chunk_put(ro, sc, &c.c, &stored), -1);
    cr_assert_eq(lb_error_errno(), EPERM);
    tu_chunk_free(&c);
    store_close(ro);
}

Test(chunks, load_round_trip_every_type)
{
    static const uint8_t types[] = {PROTO_CHUNK_RAW, PROTO_CHUNK_DELTA,
                                    PROTO_CHUNK_BLOB};

    for (size_t i = 0; i < LB_ARRAY_SIZE(types); i++) {
        for (int compress = 0; compress < 2; compress++) {
            struct tu_chunk c;
            const uint8_t *plain;
            size_t plain_len;
            uint8_t type;
            uint64_t stored;

            if (types[i] == PROTO_CHUNK_DELTA) {
                tu_chunk_delta(&c, WS, (uint32_t)(1024 * (compress + 1)),
                               (uint32_t)i);
            } else {
                uint8_t data[3000];
                memset(data, 0, sizeof data);
                tu_fill_random(data, 1000, (uint32_t)(i * 10 + compress));
                tu_chunk_make(&c, types[i], data, sizeof data, compress);
            }
            cr_assert_eq(store_chunk_put(st, sc, &c.c, &stored), 0, "%s",
                         lb_error_msg());
            cr_assert_eq(
                store_chunk_load(st, sc, &c.c.d, &plain, &plain_len, &type), 0,
                "%s", lb_error_msg());
            cr_assert_eq(type, types[i]);
            cr_assert_eq(plain_len, c.plain_len);
            cr_assert_arr_eq(plain, c.plain, plain_len);
            {
                struct lb_buf out = {0};
                struct proto_chunk rc;
                cr_assert_eq(store_chunk_read(st, &c.c.d, &out, &rc), 0);
                cr_assert_eq(rc.type, c.c.type);
                cr_assert_eq(rc.comp, c.c.comp);
                cr_assert_eq(rc.raw_len, c.c.raw_len);
                cr_assert_eq(rc.data_len, c.c.data_len);
                cr_assert_arr_eq(rc.data, c.stored, rc.data_len);
                cr_assert_arr_eq(rc.d.b, c.c.d.b, PROTO_DIGEST_LEN);
                lb_buf_free(&out);
            }
            tu_chunk_free(&c);
        }
    }
}

Test(chunks, load_refuses_missing_and_damaged_files)
{
    struct tu_chunk c;
    const uint8_t *plain;
    size_t plain_len, len;
    uint8_t type, *f;
    uint64_t stored;
    CLEANUP_FREE char *path = NULL;

    tu_chunk_raw(&c, 8192, 7);
    cr_assert_eq(store_chunk_load(st, sc, &c.c.d, &plain, &plain_len, &type),
                 -1);
    cr_assert_eq(lb_error_errno(), ENOENT);
    cr_assert_eq(store_chunk_put(st, sc, &c.c, &stored), 0);
    path = chunk_path(&c.c.d);
    f = tu_read_file(path, &len);

    /* Each header field, then the data, then the length. */
    {
        static const size_t offs[] = {0, 3, 4, 5, 6, 7, 8, 11, 12, 15};
        for (size_t i = 0; i < LB_ARRAY_SIZE(offs); i++) {
            f[offs[i]] ^= 0x04;
            tu_write_file(path, f, len);
            cr_assert_eq(
                store_chunk_load(st, sc, &c.c.d, &plain, &plain_len, &type), -1,
                "header byte %zu", offs[i]);
            cr_assert_eq(lb_error_errno(), EPROTO, "header byte %zu", offs[i]);
            f[offs[i]] ^= 0x04;
        }
    }
    f[len - 1] ^= 0x01;
    tu_write_file(path, f, len);
    cr_assert_eq(store_chunk_load(st, sc, &c.c.d, &plain, &plain_len, &type),
                 -1, "flipped data byte");
    cr_assert_eq(lb_error_errno(), EPROTO);
    f[len - 1] ^= 0x01;
    tu_write_file(path, f, len - 1);
    cr_assert_eq(store_chunk_load(st, sc, &c.c.d, &plain, &plain_len, &type),
                 -1, "truncated");
    cr_assert_eq(lb_error_errno(), EPROTO);
    tu_write_file(path, f, 10);
    cr_assert_eq(store_chunk_load(st, sc, &c.c.d, &plain, &plain_len, &type),
                 -1, "shorter than the header");
    cr_assert_eq(lb_error_errno(), EPROTO);
    tu_write_file(path, f, len);
    cr_assert_eq(store_chunk_load(st, sc, &c.c.d, &plain, &plain_len, &type), 0,
                 "restored");
    free(f);
    tu_chunk_free(&c);
}

struct put_arg {
    struct store *st;
    const struct proto_chunk *c;
    int r;
};

static void *
put_thread(void *arg)
{
    struct put_arg *a = arg;
    struct store_scratch *s = store_scratch_new();
    uint64_t stored;

    a->r = store_chunk_put(a->st, s, a->c, &stored);
    store_scratch_free(s);
    return NULL;
}

Test(chunks, concurrent_puts_of_one_chunk)
{
    struct tu_chunk c;
    pthread_t th[4];
    struct put_arg a[4];
    const uint8_t *plain;
    size_t plain_len;
    uint8_t type;

    tu_chunk_raw(&c, WS, 8);
    for (int i = 0; i < 4; i++) {
        a[i] = (struct put_arg){st, &c.c, -2};
        cr_assert_eq(pthread_create(&th[i], NULL, put_thread, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_assert(a[i].r == 0 || a[i].r == 1, "thread %d: %d", i, a[i].r);
    }
    cr_assert_eq(store_chunk_load(st, sc, &c.c.d, &plain, &plain_len, &type),
                 0);
    cr_assert_arr_eq(plain, c.plain, plain_len);
    cr_assert_eq(session_files(), 0);
    tu_chunk_free(&c);
}
