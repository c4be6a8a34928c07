/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * proto/chunk.c: the chunk digest, the DELTA run encoding (round trip and
 * every rule a DELTA must satisfy, with the window left untouched on
 * error), and zstd compression.
 */
#include "proto/proto.h"
#include "tests/unit/testutil.h"

#include <criterion/criterion.h>
#include <string.h>
#include <zstd.h>

/* ---- digest -------------------------------------------------------------- */

static void
expect_digest(uint8_t type, const char *data, size_t len, const char *hex)
{
    struct proto_digest d, parsed;
    char out[65];

    cr_assert_eq(proto_chunk_digest(type, data, len, &d), 0);
    proto_digest_hex(&d, out);
    cr_assert_str_eq(out, hex, "type %u", type);
    cr_assert_eq(proto_digest_parse(hex, &parsed), 0);
    cr_assert_arr_eq(parsed.b, d.b, PROTO_DIGEST_LEN);
}

/* Vectors from `printf '\x01abc' | sha256sum` and so on. */
Test(digest, is_sha256_of_type_then_data)
{
    expect_digest(1, "abc", 3,
                  "1e18834c426d00e57788444cb3ccd62c771b420c095bb0c4e040a8c1"
                  "22c4570d");
    expect_digest(2, "", 0,
                  "dbc1b4c900ffe48d575b5da5c638040125f65db0fe3e24494b76ea98"
                  "6457d986");
    expect_digest(3, "hello", 5,
                  "0b4d354d56ea9a985571a56b1829f33d072e7902c1afaf981381089b"
                  "9eb00ffe");
}

Test(digest, type_is_part_of_the_name)
{
    struct proto_digest a, b;

    cr_assert_eq(proto_chunk_digest(PROTO_CHUNK_RAW, "x", 1, &a), 0);
    cr_assert_eq(proto_chunk_digest(PROTO_CHUNK_BLOB, "x", 1, &b), 0);
    cr_assert(memcmp(a.b, b.b, PROTO_DIGEST_LEN) != 0);
}

Test(digest, parse_errors)
{
    struct proto_digest d;
    char hex[66];

    memset(hex, 'a', 64);
    hex[64] = '\0';
    cr_assert_eq(proto_digest_parse(hex, &d), 0);
    hex[63] = 'g';
    cr_assert_eq(proto_digest_parse(hex, &d), -1);
    hex[63] = '\0';
    cr_assert_eq(proto_digest_parse(hex, &d), -1, "63 digits");
    hex[63] = 'a';
    hex[64] = 'a';
    hex[65] = '\0';
    cr_assert_eq(proto_digest_parse(hex, &d), -1, "65 digits");
}

/* ---- DELTA --------------------------------------------------------------- */

#define WL (64u << 10)

static uint8_t *
window(uint8_t fill)
{
    uint8_t *w = lb_xmalloc(WL);

    memset(w, fill, WL);
    return w;
}

/* Encode runs (data for DATA runs is generated) into a fresh buffer. */
static uint8_t *
delta(const struct proto_run *runs, uint32_t n, uint32_t wl, size_t *len,
      uint8_t **data_out)
{
    size_t dlen = 0, cap;
    uint8_t *data, *out;

    for (uint32_t i = 0; i < n; i++)
        if (runs[i].kind == PROTO_RUN_DATA)
            dlen += runs[i].len;
    data = lb_xmalloc(dlen ? dlen : 1);
    tu_fill_random(data, dlen, 99);
    cap = proto_delta_size(n, dlen);
    out = lb_xmalloc(cap);
    *len = proto_delta_encode(out, cap, wl, runs, n, data);
    cr_assert_eq(*len, cap);
    if (data_out)
        *data_out = data;
    else
        free(data);
    return out;
}

/* The delta must be rejected with want, and the window left untouched. */
static void
reject(const uint8_t *p, size_t len, uint32_t wl, int want, const char *why)
{
    uint8_t *w = window(0xAA), *ref = window(0xAA);

    cr_assert_eq(proto_delta_apply(NULL, wl, p, len), want, "%s (validate)",
                 why);
    cr_assert_eq(proto_delta_apply(w, wl, p, len), want, "%s", why);
    cr_assert_arr_eq(w, ref, WL, "%s: window changed on error", why);
    free(w);
    free(ref);
}

Test(delta, round_trip)
{
    static const struct proto_run runs[] = {
        {0, 512, PROTO_RUN_DATA},
        {1024, 3072, PROTO_RUN_ZERO},
        {4096, 1, PROTO_RUN_DATA}, /* adjacent to the previous run */
        {WL - 512, 512, PROTO_RUN_DATA},
    };
    uint8_t *data, *w = window(0xAA);
    size_t len;
    uint8_t *p = delta(runs, 4, WL, &len, &data);

    cr_assert_eq(len, PROTO_DELTA_HDR + 4 * PROTO_DELTA_RUN + 512 + 1 + 512);
    cr_assert_eq(lb_load_be32(p), PROTO_DELTA_MAGIC);
    cr_assert_eq(lb_load_be32(p + 4), WL);
    cr_assert_eq(lb_load_be32(p + 8), 4);
    cr_assert_eq(proto_delta_apply(NULL, WL, p, len), PROTO_OK);
    cr_assert_eq(proto_delta_apply(w, WL, p, len), PROTO_OK);
    cr_assert_arr_eq(w, data, 512);
    for (size_t i = 512; i < 1024; i++)
        cr_assert_eq(w[i], 0xAA, "untouched at %zu", i);
    for (size_t i = 1024; i < 4096; i++)
        cr_assert_eq(w[i], 0, "zero run at %zu", i);
    cr_assert_eq(w[4096], data[512]);
    for (size_t i = 4097; i < WL - 512; i++)
        cr_assert_eq(w[i], 0xAA, "untouched at %zu", i);
    cr_assert_arr_eq(w + WL - 512, data + 513, 512);
    free(w);
    free(p);
    free(data);
}

Test(delta, short_window_and_whole_window_run)
{
    struct proto_run r = {0, 1000, PROTO_RUN_ZERO};
    size_t len;
    uint8_t *p = delta(&r, 1, 1000, &len, NULL);
    uint8_t *w = window(0xAA);

    /* The last window of a disk may be short: 1000 bytes, one run. */
    cr_assert_eq(proto_delta_apply(w, 1000, p, len), PROTO_OK);
    cr_assert(lb_is_zero(w, 1000));
    cr_assert_eq(w[1000], 0xAA);
    reject(p, len, WL, PROTO_E_RANGE, "window length mismatch");
    free(p);
    free(w);
}

Test(delta, encode_needs_room)
{
    struct proto_run r = {0, 512, PROTO_RUN_DATA};
    uint8_t data[512] = {0}, out[PROTO_DELTA_HDR + PROTO_DELTA_RUN + 512];

    cr_assert_eq(proto_delta_size(1, 512), sizeof out);
    cr_assert_eq(proto_delta_encode(out, sizeof out - 1, WL, &r, 1, data), 0);
    cr_assert_eq(proto_delta_encode(out, sizeof out, WL, &r, 1, data),
                 sizeof out);
}

Test(delta, rejects_unsorted_and_overlapping_runs)
{
    static const struct proto_run unsorted[] = {
        {4096, 512, PROTO_RUN_ZERO},
        {0, 512, PROTO_RUN_ZERO},
    };
    static const struct proto_run overlap[] = {
        {0, 1024, PROTO_RUN_ZERO},
        {1023, 512, PROTO_RUN_DATA},
    };
    static const struct proto_run same[] = {
        {512, 512, PROTO_RUN_ZERO},
        {512, 512, PROTO_RUN_ZERO},
    };
    size_t len;
    uint8_t *p;

    p = delta(unsorted, 2, WL, &len, NULL);
    reject(p, len, WL, PROTO_E_ORDER, "unsorted");
    free(p);
    p = delta(overlap, 2, WL, &len, NULL);
    reject(p, len, WL, PROTO_E_ORDER, "overlapping");
    free(p);
    p = delta(same, 2, WL, &len, NULL);
    reject(p, len, WL, PROTO_E_ORDER, "duplicate");
    free(p);
}

Test(delta, rejects_runs_past_the_window_and_empty_runs)
{
    static const struct proto_run past[] = {{WL - 511, 512, PROTO_RUN_ZERO}};
    static const struct proto_run start[] = {{WL, 1, PROTO_RUN_ZERO}};
    /* off + len wraps 32 bits: must not pass as a small end. */
    static const struct proto_run wrap[] = {
        {0xFFFFFF00u, 0x200, PROTO_RUN_ZERO}};
    static const struct proto_run empty[] = {{0, 512, PROTO_RUN_ZERO},
                                             {1024, 0, PROTO_RUN_ZERO}};
    static const struct proto_run kind[] = {{0, 512, 2}};
    size_t len;
    uint8_t *p;

    p = delta(past, 1, WL, &len, NULL);
    reject(p, len, WL, PROTO_E_RANGE, "run past the end");
    free(p);
    p = delta(start, 1, WL, &len, NULL);
    reject(p, len, WL, PROTO_E_RANGE, "run starting at the end");
    free(p);
    p = delta(wrap, 1, WL, &len, NULL);
    reject(p, len, WL, PROTO_E_RANGE, "32-bit wrap");
    free(p);
    p = delta(empty, 2, WL, &len, NULL);
    reject(p, len, WL, PROTO_E_RANGE, "zero-length run");
    free(p);
    p = delta(kind, 1, WL, &len, NULL);
    reject(p, len, WL, PROTO_E_RANGE, "unknown run kind");
    free(p);
}

Test(delta, rejects_bad_header_and_data_length)
{
    static const struct proto_run runs[] = {{0, 512, PROTO_RUN_DATA},
                                            {8192, 512, PROTO_RUN_ZERO}};
    size_t len;
    uint8_t *p = delta(runs, 2, WL, &len, NULL);
    uint8_t *q = lb_xmalloc(len + 1);

    for (int byte = 0; byte < 4; byte++) {
        memcpy(q, p, len);
        q[byte] ^= 0x20;
        reject(q, len, WL, PROTO_E_MAGIC, "magic");
    }
    /* Data one byte short, one byte long. */
    reject(p, len - 1, WL, PROTO_E_TRUNCATED, "data short");
    memcpy(q, p, len);
    q[len] = 0;
    reject(q, len + 1, WL, PROTO_E_TRAILING, "data long");
    /* Every cut of the header or the run table. */
    for (size_t n = 0; n < PROTO_DELTA_HDR + 2 * PROTO_DELTA_RUN; n++)
        reject(p, n, WL, PROTO_E_TRUNCATED, "cut header/table");
    free(p);
    free(q);
}

Test(delta, rejects_a_run_count_beyond_the_table)
{
    static const struct proto_run runs[] = {{0, 512, PROTO_RUN_ZERO},
                                            {8192, 512, PROTO_RUN_ZERO}};
    size_t len;
    uint8_t *p = delta(runs, 2, WL, &len, NULL);

    cr_assert_eq(len, PROTO_DELTA_HDR + 2 * PROTO_DELTA_RUN);
    lb_store_be32(p + 8, 3);
    reject(p, len, WL, PROTO_E_TRUNCATED, "nruns beyond the table");
    lb_store_be32(p + 8, 1);
    reject(p, len, WL, PROTO_E_TRAILING, "a run table entry left over");
    free(p);
}

Test(delta, run_count_limits)
{
    /* One run per 512 bytes is the most a window allows. */
    uint32_t max = WL / 512;
    struct proto_run *runs = lb_xcalloc(max + 1, sizeof *runs);
    uint8_t *p, *w = window(0xAA);
    size_t len;

    for (uint32_t i = 0; i < max + 1; i++) {
        runs[i].off = i * 500;
        runs[i].len = 1;
        runs[i].kind = i % 2 ? PROTO_RUN_DATA : PROTO_RUN_ZERO;
    }
    p = delta(runs, max, WL, &len, NULL);
    cr_assert_eq(proto_delta_apply(w, WL, p, len), PROTO_OK, "nruns == max");
    free(p);
    p = delta(runs, max + 1, WL, &len, NULL);
    reject(p, len, WL, PROTO_E_RANGE, "nruns > window_len / 512");
    free(p);
    p = delta(runs, 0, WL, &len, NULL);
    reject(p, len, WL, PROTO_E_RANGE, "nruns 0");
    /* A huge count is a range error, not an overflow. */
    lb_store_be32(p + 8, 0xFFFFFFFFu);
    reject(p, len, WL, PROTO_E_RANGE, "nruns 2^32-1");
    free(p);
    {
        /* A window under 512 bytes allows no run at all. */
        struct proto_run r = {0, 100, PROTO_RUN_ZERO};
        p = delta(&r, 1, 511, &len, NULL);
        cr_assert_eq(proto_delta_apply(NULL, 511, p, len), PROTO_E_RANGE);
        free(p);
    }
    free(runs);
    free(w);
}

/* ---- zstd ---------------------------------------------------------------- */

Test(zstd, round_trip_compressible)
{
    struct proto_zctx *z = proto_zctx_new(3);
    size_t len = 1u << 20, cap = proto_chunk_compress_bound(len);
    uint8_t *src = calloc(1, len), *dst = lb_xmalloc(cap),
            *back = lb_xmalloc(len);
    uint8_t comp = 99;
    ssize_t n;

    cr_assert_geq(cap, len);
    tu_fill_random(src, 4096, 1); /* random head, zero tail */
    n = proto_chunk_compress(z, dst, cap, src, len, &comp);
    cr_assert_gt(n, 0);
    cr_assert_lt((size_t)n, len / 10);
    cr_assert_eq(comp, PROTO_COMP_ZSTD);
    cr_assert_eq(ZSTD_getFrameContentSize(dst, (size_t)n), len,
                 "the frame declares its size");
    cr_assert_eq(proto_chunk_decompress(z, back, len, dst, (size_t)n, comp), 0,
                 "%s", lb_error_msg());
    cr_assert_arr_eq(back, src, len);
    /* The context is reusable. */
    n = proto_chunk_compress(z, dst, cap, src, len, &comp);
    cr_assert_eq(proto_chunk_decompress(z, back, len, dst, (size_t)n, comp), 0);
    proto_zctx_free(z);
    proto_zctx_free(NULL);
    free(src);
    free(dst);
    free(back);
}

Test(zstd, incompressible_is_stored_as_is)
{
    struct proto_zctx *z = proto_zctx_new(3);
    size_t len = 65536, cap = proto_chunk_compress_bound(len);
    uint8_t *src = lb_xmalloc(len), *dst = lb_xmalloc(cap),
            *back = lb_xmalloc(len);
    uint8_t comp = 99;
    ssize_t n;

    tu_fill_random(src, len, 12345);
    n = proto_chunk_compress(z, dst, cap, src, len, &comp);
    cr_assert_eq(n, (ssize_t)len);
    cr_assert_eq(comp, PROTO_COMP_NONE);
    cr_assert_arr_eq(dst, src, len);
    cr_assert_eq(proto_chunk_decompress(z, back, len, dst, len, comp), 0);
    cr_assert_arr_eq(back, src, len);
    cr_assert_eq(proto_chunk_decompress(z, back, len, dst, len - 1, comp), -1,
                 "stored length must equal raw_len");
    proto_zctx_free(z);
    free(src);
    free(dst);
    free(back);
}

Test(zstd, decompress_rejects_wrong_size_and_garbage)
{
    struct proto_zctx *z = proto_zctx_new(1);
    size_t len = 100000, cap = proto_chunk_compress_bound(len);
    uint8_t *src = calloc(1, len), *dst = lb_xmalloc(cap),
            *back = lb_xmalloc(len + 1);
    uint8_t comp;
    ssize_t n;

    n = proto_chunk_compress(z, dst, cap, src, len, &comp);
    cr_assert_eq(comp, PROTO_COMP_ZSTD);
    cr_assert_eq(proto_chunk_decompress(z, back, len - 1, dst, (size_t)n, comp),
                 -1, "content size larger than raw_len");
    cr_assert_eq(proto_chunk_decompress(z, back, len + 1, dst, (size_t)n, comp),
                 -1, "content size smaller than raw_len");
    cr_assert_eq(proto_chunk_decompress(z, back, len, dst, (size_t)n - 1, comp),
                 -1, "truncated frame");
    cr_assert_eq(proto_chunk_decompress(z, back, len, dst, (size_t)n, 2), -1,
                 "unknown compression");
    {
        uint8_t garbage[64];
        tu_fill_random(garbage, sizeof garbage, 5);
        cr_assert_eq(proto_chunk_decompress(z, back, 10, garbage,
                                            sizeof garbage, PROTO_COMP_ZSTD),
                     -1);
        cr_assert_eq(
            proto_chunk_decompress(z, back, 10, garbage, 0, PROTO_COMP_ZSTD),
            -1, "empty input");
    }
    {
        /* A valid frame that does not declare its content size. */
        ZSTD_CCtx *c = ZSTD_createCCtx();
        ZSTD_outBuffer out = {dst, cap, 0};
        ZSTD_inBuffer in = {src, 1000, 0};
        ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0);
        cr_assert_eq(ZSTD_compressStream2(c, &out, &in, ZSTD_e_end), 0);
        ZSTD_freeCCtx(c);
        cr_assert_eq(ZSTD_getFrameContentSize(dst, out.pos),
                     ZSTD_CONTENTSIZE_UNKNOWN);
        cr_assert_eq(proto_chunk_decompress(z, back, 1000, dst, out.pos,
                                            PROTO_COMP_ZSTD),
                     -1, "frame without a content size");
    }
    proto_zctx_free(z);
    free(src);
    free(dst);
    free(back);
}

Test(zstd, compress_into_too_small_a_buffer_fails)
{
    struct proto_zctx *z = proto_zctx_new(3);
    uint8_t src[4096], dst[100];
    uint8_t comp;

    tu_fill_random(src, sizeof src, 3);
    cr_assert_eq(
        proto_chunk_compress(z, dst, sizeof dst, src, sizeof src, &comp), -1);
    proto_zctx_free(z);
}
