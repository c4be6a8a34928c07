/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * proto/msg.c, backup data messages: DISK_BEGIN, DISK_READY, DEPTHS, QUERY,
 * GET_CHUNKS, HAVE, CHUNK, CHUNK_DATA and WINDOWS, field by field, with
 * every bad-input class: counts of 0 and over the maximum, counts whose
 * byte size overflows, padding bits, reserved fields, lengths past the
 * payload.
 */
#include "proto/proto.h"
#include "tests/unit/testutil.h"

#include <criterion/criterion.h>
#include <string.h>

/* ---- DISK_BEGIN, DISK_READY, DEPTHS -------------------------------------- */

Test(msg, disk_begin_fields_and_ranges)
{
    static const struct {
        const char *disk;
        uint64_t size;
        uint8_t mode;
        int want;
    } cases[] = {
        {"vda", 1, PROTO_DISK_FULL, PROTO_OK},
        {"vda", PROTO_MF_MAX_SIZE, PROTO_DISK_INCR, PROTO_OK},
        {"vda", 0, PROTO_DISK_FULL, PROTO_E_RANGE},
        {"vda", PROTO_MF_MAX_SIZE + 1, PROTO_DISK_FULL, PROTO_E_RANGE},
        {"vda", UINT64_MAX, PROTO_DISK_FULL, PROTO_E_RANGE},
        {"vda", 4096, 2, PROTO_E_RANGE},
        {"vda", 4096, 255, PROTO_E_RANGE},
        {"", 4096, 0, PROTO_E_STRING},
        {".vda", 4096, 0, PROTO_E_STRING},
        {"../x", 4096, 0, PROTO_E_STRING},
        {"/abs", 4096, 0, PROTO_E_STRING},
        {"v da", 4096, 0, PROTO_E_STRING},
    };
    struct proto_kv kv = {0};

    proto_kv_set(&kv, "source", "/var/lib/libvirt/images/web1.qcow2");
    for (size_t i = 0; i < LB_ARRAY_SIZE(cases); i++) {
        struct lb_buf b = {0};
        struct proto_disk_begin o;
        size_t len;
        uint8_t *p;
        int r;

        proto_enc_disk_begin(&b, cases[i].disk, cases[i].size, cases[i].mode,
                             &kv);
        p = tu_payload(&b, PROTO_T_DISK_BEGIN, &len);
        r = proto_dec_disk_begin(p, len, &o);
        cr_assert_eq(r, cases[i].want, "case %zu", i);
        if (r == PROTO_OK) {
            cr_assert(proto_str_eq(o.disk, cases[i].disk));
            cr_assert_eq(o.size, cases[i].size);
            cr_assert_eq(o.mode, cases[i].mode);
            cr_assert_str_eq(proto_kv_get(&o.meta, "source"),
                             "/var/lib/libvirt/images/web1.qcow2");
            proto_kv_free(&o.meta);
        }
        free(p);
        lb_buf_free(&b);
    }
    proto_kv_free(&kv);
}

Test(msg, disk_ready_fields_and_ranges)
{
    struct lb_buf b = {0};
    uint64_t nw;
    uint32_t ws;
    size_t len;
    uint8_t *p;

    proto_enc_disk_ready(&b, PROTO_MF_MAX_WINDOWS, PROTO_MIN_WINDOW);
    p = tu_payload(&b, PROTO_T_DISK_READY, &len);
    cr_assert_eq(proto_dec_disk_ready(p, len, &nw, &ws), PROTO_OK);
    cr_assert_eq(nw, PROTO_MF_MAX_WINDOWS);
    cr_assert_eq(ws, PROTO_MIN_WINDOW);
    lb_store_be64(p, PROTO_MF_MAX_WINDOWS + 1);
    cr_assert_eq(proto_dec_disk_ready(p, len, &nw, &ws), PROTO_E_RANGE);
    lb_store_be64(p, 0);
    cr_assert_eq(proto_dec_disk_ready(p, len, &nw, &ws), PROTO_OK);
    lb_store_be32(p + 8, 1000);
    cr_assert_eq(proto_dec_disk_ready(p, len, &nw, &ws), PROTO_E_RANGE);
    free(p);
    lb_buf_free(&b);
}

Test(msg, depths_fields_and_ranges)
{
    struct lb_buf b = {0};
    uint8_t d[40];
    const uint8_t *got;
    uint64_t first;
    size_t n, len;
    uint8_t *p;

    for (int i = 0; i < 33; i++)
        d[i] = (uint8_t)i;
    proto_enc_depths(&b, 1ull << 40, d, 33);
    p = tu_payload(&b, PROTO_T_DEPTHS, &len);
    cr_assert_eq(proto_dec_depths(p, len, &first, &got, &n), PROTO_OK);
    cr_assert_eq(first, 1ull << 40);
    cr_assert_eq(n, 33);
    cr_assert_arr_eq(got, d, 33);
    /* Every prefix shorter than first + one depth fails; longer ones are
     * shorter DEPTHS frames. */
    for (size_t l = 0; l <= 8; l++)
        cr_assert_lt(proto_dec_depths(p, l, &first, &got, &n), 0, "%zu", l);
    cr_assert_eq(proto_dec_depths(p, 9, &first, &got, &n), PROTO_OK);
    cr_assert_eq(n, 1);
    p[8 + 20] = PROTO_MAX_STACK + 1;
    cr_assert_eq(proto_dec_depths(p, len, &first, &got, &n), PROTO_E_RANGE);
    free(p);
    lb_buf_free(&b);

    {
        /* More than PROTO_MAX_DEPTHS_PER_FRAME depths. */
        size_t big = 8 + PROTO_MAX_DEPTHS_PER_FRAME + 1;
        uint8_t *q = calloc(1, big);
        cr_assert_eq(proto_dec_depths(q, big, &first, &got, &n), PROTO_E_RANGE);
        cr_assert_eq(proto_dec_depths(q, big - 1, &first, &got, &n), PROTO_OK);
        cr_assert_eq(n, PROTO_MAX_DEPTHS_PER_FRAME);
        free(q);
    }
}

/* ---- QUERY, GET_CHUNKS, HAVE --------------------------------------------- */

Test(msg, query_fields)
{
    static const uint16_t types[] = {PROTO_T_QUERY, PROTO_T_GET_CHUNKS};

    for (size_t t = 0; t < LB_ARRAY_SIZE(types); t++) {
        struct proto_digest d[PROTO_MAX_QUERY];
        struct lb_buf b = {0};
        const uint8_t *got;
        uint32_t n;
        size_t len;
        uint8_t *p;

        for (int i = 0; i < PROTO_MAX_QUERY; i++)
            d[i] = tu_digest((uint8_t)i);
        proto_enc_query(&b, types[t], d, PROTO_MAX_QUERY);
        p = tu_payload(&b, types[t], &len);
        cr_assert_eq(len, 4 + PROTO_MAX_QUERY * PROTO_DIGEST_LEN);
        cr_assert_eq(proto_dec_query(p, len, &got, &n), PROTO_OK);
        cr_assert_eq(n, PROTO_MAX_QUERY);
        cr_assert_arr_eq(got, d, sizeof d);
        free(p);
        lb_buf_free(&b);
    }
}

Test(msg, query_counts_and_overflow)
{
    /* Counts whose byte length would overflow 32 bits, and the edges. */
    static const uint32_t bad[] = {0,           PROTO_MAX_QUERY + 1,
                                   0x08000000u, 0x08000001u,
                                   0x80000000u, 0xFFFFFFFFu};
    uint8_t p[4 + 2 * PROTO_DIGEST_LEN] = {0};
    const uint8_t *got;
    uint32_t n;

    for (size_t i = 0; i < LB_ARRAY_SIZE(bad); i++) {
        lb_store_be32(p, bad[i]);
        cr_assert_eq(proto_dec_query(p, sizeof p, &got, &n), PROTO_E_RANGE,
                     "count 0x%x", bad[i]);
    }
    lb_store_be32(p, 3);
    cr_assert_eq(proto_dec_query(p, sizeof p, &got, &n), PROTO_E_TRUNCATED);
    lb_store_be32(p, 1);
    cr_assert_eq(proto_dec_query(p, sizeof p, &got, &n), PROTO_E_TRAILING);
    lb_store_be32(p, 2);
    cr_assert_eq(proto_dec_query(p, sizeof p, &got, &n), PROTO_OK);
}

Test(msg, have_fields_padding_and_counts)
{
    for (uint32_t count = 1; count <= 17; count++) {
        struct lb_buf b = {0};
        uint8_t bits[3] = {0xFF, 0xFF, 0xFF};
        const uint8_t *got;
        uint32_t n;
        size_t len;
        uint8_t *p;

        /* Only the first count bits may be set. */
        if (count % 8)
            bits[count / 8] &= (uint8_t)((1u << (count % 8)) - 1);
        for (uint32_t i = count / 8 + 1; i < 3; i++)
            bits[i] = 0;
        proto_enc_have(&b, bits, count);
        p = tu_payload(&b, PROTO_T_HAVE, &len);
        cr_assert_eq(len, 4 + (count + 7) / 8);
        cr_assert_eq(proto_dec_have(p, len, &got, &n), PROTO_OK);
        cr_assert_eq(n, count);
        for (uint32_t i = 0; i < count; i++)
            cr_assert(proto_bit(got, i));
        /* Each padding bit, alone, is rejected. */
        for (uint32_t bit = count; bit < (count + 7) / 8 * 8; bit++) {
            p[4 + bit / 8] |= (uint8_t)(1u << (bit % 8));
            cr_assert_eq(proto_dec_have(p, len, &got, &n), PROTO_E_RESERVED,
                         "count %u, padding bit %u", count, bit);
            p[4 + bit / 8] &= (uint8_t) ~(1u << (bit % 8));
        }
        free(p);
        lb_buf_free(&b);
    }
    {
        uint8_t p[4 + 600] = {0};
        const uint8_t *got;
        uint32_t n;
        lb_store_be32(p, 0);
        cr_assert_eq(proto_dec_have(p, 4, &got, &n), PROTO_E_RANGE);
        lb_store_be32(p, PROTO_MAX_QUERY + 1);
        cr_assert_eq(proto_dec_have(p, sizeof p, &got, &n), PROTO_E_RANGE);
        lb_store_be32(p, 0xFFFFFFFFu);
        cr_assert_eq(proto_dec_have(p, sizeof p, &got, &n), PROTO_E_RANGE);
        lb_store_be32(p, PROTO_MAX_QUERY);
        cr_assert_eq(proto_dec_have(p, 4 + 512, &got, &n), PROTO_OK);
        cr_assert_eq(proto_dec_have(p, 4 + 511, &got, &n), PROTO_E_TRUNCATED);
        cr_assert_eq(proto_dec_have(p, 4 + 513, &got, &n), PROTO_E_TRAILING);
    }
}

/* ---- CHUNK, CHUNK_DATA --------------------------------------------------- */

static uint8_t *
chunk_payload(uint16_t type, const struct proto_chunk *c, size_t *len)
{
    struct lb_buf b = {0};
    uint8_t *p;

    proto_enc_chunk(&b, type, c);
    p = tu_payload(&b, type, len);
    lb_buf_free(&b);
    return p;
}

Test(msg, chunk_fields)
{
    static const uint16_t types[] = {PROTO_T_CHUNK, PROTO_T_CHUNK_DATA};

    for (size_t t = 0; t < LB_ARRAY_SIZE(types); t++) {
        struct proto_chunk c = {tu_digest(7),
                                PROTO_CHUNK_DELTA,
                                PROTO_COMP_ZSTD,
                                100000,
                                (const uint8_t *)"zstd-ish",
                                8},
                           o;
        size_t len;
        uint8_t *p = chunk_payload(types[t], &c, &len);

        cr_assert_eq(len, PROTO_CHUNK_HDR + 8);
        cr_assert_eq(proto_dec_chunk(p, len, &o), PROTO_OK);
        cr_assert_arr_eq(o.d.b, c.d.b, PROTO_DIGEST_LEN);
        cr_assert_eq(o.type, PROTO_CHUNK_DELTA);
        cr_assert_eq(o.comp, PROTO_COMP_ZSTD);
        cr_assert_eq(o.raw_len, 100000);
        cr_assert_eq(o.data_len, 8);
        cr_assert_arr_eq(o.data, "zstd-ish", 8);
        cr_assert_eq(o.data, p + PROTO_CHUNK_HDR, "points into the payload");
        /* zstd data runs to the end: a shorter payload is shorter data,
         * caught by decompression; no data at all is an error here. */
        for (size_t l = 0; l <= PROTO_CHUNK_HDR; l++)
            cr_assert_lt(proto_dec_chunk(p, l, &o), 0, "%zu", l);
        free(p);
    }
}

Test(msg, chunk_head_matches_full_encoding)
{
    uint8_t data[300];
    struct proto_chunk c = {
        tu_digest(1), PROTO_CHUNK_RAW, PROTO_COMP_NONE, sizeof data,
        data,         sizeof data};
    struct lb_buf full = {0}, head = {0};

    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 13);
    proto_enc_chunk(&full, PROTO_T_CHUNK_DATA, &c);
    proto_enc_chunk_head(&head, PROTO_T_CHUNK_DATA, &c);
    cr_assert_eq(head.len, PROTO_HDR_SIZE + PROTO_CHUNK_HDR);
    lb_buf_append(&head, data, sizeof data);
    cr_assert_eq(head.len, full.len);
    cr_assert_arr_eq(head.data, full.data, full.len);
    lb_buf_free(&full);
    lb_buf_free(&head);
}

Test(msg, chunk_rejects_reserved_types_and_lengths)
{
    struct proto_chunk c = {tu_digest(3),
                            PROTO_CHUNK_RAW,
                            PROTO_COMP_NONE,
                            5,
                            (const uint8_t *)"hello",
                            5},
                       o;
    size_t len;
    uint8_t *p = chunk_payload(PROTO_T_CHUNK, &c, &len);

    /* digest 0..31, type 32, comp 33, reserved 34..35, raw_len 36..39 */
    cr_assert_eq(proto_dec_chunk(p, len, &o), PROTO_OK);
    for (int byte = 34; byte <= 35; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            p[byte] = (uint8_t)(1u << bit);
            cr_assert_eq(proto_dec_chunk(p, len, &o), PROTO_E_RESERVED);
            p[byte] = 0;
        }
    }
    for (unsigned t = 0; t < 256; t++) {
        p[32] = (uint8_t)t;
        cr_assert_eq(proto_dec_chunk(p, len, &o),
                     proto_chunk_type_valid((uint8_t)t) ? PROTO_OK
                                                        : PROTO_E_RANGE,
                     "type %u", t);
    }
    cr_assert(proto_chunk_type_valid(1) && proto_chunk_type_valid(2) &&
              proto_chunk_type_valid(3));
    p[32] = PROTO_CHUNK_RAW;
    p[33] = 2;
    cr_assert_eq(proto_dec_chunk(p, len, &o), PROTO_E_RANGE, "compression 2");
    p[33] = PROTO_COMP_NONE;
    lb_store_be32(p + 36, 0);
    cr_assert_eq(proto_dec_chunk(p, len, &o), PROTO_E_RANGE, "raw_len 0");
    lb_store_be32(p + 36, 4);
    cr_assert_eq(proto_dec_chunk(p, len, &o), PROTO_E_RANGE,
                 "uncompressed: data length must equal raw_len");
    lb_store_be32(p + 36, 6);
    cr_assert_eq(proto_dec_chunk(p, len, &o), PROTO_E_RANGE);
    p[33] = PROTO_COMP_ZSTD;
    lb_store_be32(p + 36, PROTO_MAX_CHUNK_RAW);
    cr_assert_eq(proto_dec_chunk(p, len, &o), PROTO_OK, "largest raw_len");
    lb_store_be32(p + 36, PROTO_MAX_CHUNK_RAW + 1);
    cr_assert_eq(proto_dec_chunk(p, len, &o), PROTO_E_RANGE);
    lb_store_be32(p + 36, 0xFFFFFFFFu);
    cr_assert_eq(proto_dec_chunk(p, len, &o), PROTO_E_RANGE);
    p[32] = PROTO_CHUNK_BLOB;
    lb_store_be32(p + 36, PROTO_MAX_BLOB);
    cr_assert_eq(proto_dec_chunk(p, len, &o), PROTO_OK);
    lb_store_be32(p + 36, PROTO_MAX_BLOB + 1);
    cr_assert_eq(proto_dec_chunk(p, len, &o), PROTO_E_RANGE, "BLOB over 4 MiB");
    free(p);
}

/* ---- WINDOWS ------------------------------------------------------------- */

static uint8_t *
windows_payload(const struct proto_window_rec *recs, uint32_t n, uint32_t count,
                size_t *len)
{
    struct lb_buf b = {0};
    size_t f = proto_frame_begin(&b, PROTO_T_WINDOWS);
    size_t at = proto_enc_windows_start(&b);
    uint8_t *p;

    for (uint32_t i = 0; i < n; i++)
        proto_enc_window_rec(&b, &recs[i]);
    proto_enc_windows_finish(&b, at, count);
    proto_frame_end(&b, f);
    p = tu_payload(&b, PROTO_T_WINDOWS, len);
    lb_buf_free(&b);
    return p;
}

Test(msg, windows_fields)
{
    struct proto_window_rec in[4] = {0}, out[4];
    size_t len;
    uint8_t *p;

    in[0].index = 0;
    in[0].op = PROTO_WIN_SET; /* n = 0: an empty window */
    in[1].index = 1;
    in[1].op = PROTO_WIN_SET;
    in[1].n = 2;
    in[1].refs[0].type = PROTO_CHUNK_RAW;
    in[1].refs[0].d = tu_digest(1);
    in[1].refs[1].type = PROTO_CHUNK_DELTA;
    in[1].refs[1].d = tu_digest(2);
    in[2].index = 7;
    in[2].op = PROTO_WIN_PUSH;
    in[2].n = 1;
    in[2].refs[0].type = PROTO_CHUNK_DELTA;
    in[2].refs[0].d = tu_digest(3);
    in[3].index = UINT64_MAX;
    in[3].op = PROTO_WIN_PUSH;
    in[3].n = PROTO_MAX_STACK;
    for (int i = 0; i < PROTO_MAX_STACK; i++) {
        in[3].refs[i].type = PROTO_CHUNK_DELTA;
        in[3].refs[i].d = tu_digest((uint8_t)(10 + i));
    }
    p = windows_payload(in, 4, 4, &len);
    cr_assert_eq(tu_dec_windows(p, len, out, 4), PROTO_OK);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(out[i].index, in[i].index);
        cr_assert_eq(out[i].op, in[i].op);
        cr_assert_eq(out[i].n, in[i].n);
        for (int k = 0; k < in[i].n; k++) {
            cr_assert_eq(out[i].refs[k].type, in[i].refs[k].type);
            cr_assert_arr_eq(out[i].refs[k].d.b, in[i].refs[k].d.b,
                             PROTO_DIGEST_LEN);
        }
    }
    /* A record count that does not match the records. */
    lb_store_be32(p, 3);
    cr_assert_neq(tu_dec_windows(p, len, NULL, 0), PROTO_OK);
    lb_store_be32(p, 5);
    cr_assert_neq(tu_dec_windows(p, len, NULL, 0), PROTO_OK);
    free(p);
}

Test(msg, windows_rejects_bad_records)
{
    struct proto_window_rec r = {0};
    struct proto_rd pr;
    uint32_t count;
    size_t len;
    uint8_t *p;

    r.op = PROTO_WIN_SET;
    r.n = 1;
    r.refs[0].type = PROTO_CHUNK_RAW;
    r.refs[0].d = tu_digest(1);
    p = windows_payload(&r, 1, 1, &len);
    /* count 4, index 4..11, op 12, n 13, type 14, digest 15..46 */
    cr_assert_eq(tu_dec_windows(p, len, NULL, 0), PROTO_OK);
    for (unsigned op = 0; op < 256; op++) {
        p[12] = (uint8_t)op;
        cr_assert_eq(tu_dec_windows(p, len, NULL, 0),
                     op == PROTO_WIN_SET || op == PROTO_WIN_PUSH
                         ? PROTO_OK
                         : PROTO_E_RANGE,
                     "op %u", op);
    }
    p[12] = PROTO_WIN_SET;
    for (unsigned t = 0; t < 256; t++) {
        p[14] = (uint8_t)t;
        cr_assert_eq(tu_dec_windows(p, len, NULL, 0),
                     t == PROTO_CHUNK_RAW || t == PROTO_CHUNK_DELTA
                         ? PROTO_OK
                         : PROTO_E_RANGE,
                     "ref type %u (a BLOB is never in a stack)", t);
    }
    p[14] = PROTO_CHUNK_RAW;
    p[13] = PROTO_MAX_STACK + 1;
    cr_assert_eq(tu_dec_windows(p, len, NULL, 0), PROTO_E_RANGE, "n 33");
    p[13] = 255;
    cr_assert_eq(tu_dec_windows(p, len, NULL, 0), PROTO_E_RANGE, "n 255");
    p[13] = 2;
    cr_assert_eq(tu_dec_windows(p, len, NULL, 0), PROTO_E_TRUNCATED,
                 "n beyond the payload");
    free(p);

    /* PUSH needs at least one ref; SET may have none. */
    r.op = PROTO_WIN_PUSH;
    r.n = 0;
    p = windows_payload(&r, 1, 1, &len);
    cr_assert_eq(tu_dec_windows(p, len, NULL, 0), PROTO_E_RANGE);
    p[12] = PROTO_WIN_SET;
    cr_assert_eq(tu_dec_windows(p, len, NULL, 0), PROTO_OK);
    free(p);

    /* Counts of 0 and over the maximum fail at init. */
    {
        uint8_t q[4];
        lb_store_be32(q, 0);
        cr_assert_eq(proto_dec_windows_init(&pr, q, 4, &count), PROTO_E_RANGE);
        lb_store_be32(q, PROTO_MAX_WINDOW_RECORDS + 1);
        cr_assert_eq(proto_dec_windows_init(&pr, q, 4, &count), PROTO_E_RANGE);
        cr_assert_eq(proto_dec_window_next(&pr, &r), PROTO_E_RANGE,
                     "the error is sticky");
        lb_store_be32(q, 0xFFFFFFFFu);
        cr_assert_eq(proto_dec_windows_init(&pr, q, 4, &count), PROTO_E_RANGE);
        cr_assert_eq(proto_dec_windows_init(&pr, q, 3, &count),
                     PROTO_E_TRUNCATED);
    }
}
