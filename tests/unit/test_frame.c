/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * proto/frame.c: frame headers, the bounds-checked cursor, str16, key/value
 * lists and the names (set names, disk names, backup ids).
 */
#include "proto/proto.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

/* ---- frame headers ------------------------------------------------------- */

static const uint16_t known_types[] = {
    PROTO_T_HELLO,        PROTO_T_HELLO_REPLY,  PROTO_T_ERROR,
    PROTO_T_OK,           PROTO_T_INIT,         PROTO_T_OPEN,
    PROTO_T_REPO_INFO,    PROTO_T_KEY_GET,      PROTO_T_KEY_DATA,
    PROTO_T_KEY_SET,      PROTO_T_LIST,         PROTO_T_LIST_ENTRY,
    PROTO_T_LIST_END,     PROTO_T_BACKUP_BEGIN, PROTO_T_BACKUP_STARTED,
    PROTO_T_DISK_BEGIN,   PROTO_T_DISK_READY,   PROTO_T_DEPTHS,
    PROTO_T_QUERY,        PROTO_T_HAVE,         PROTO_T_CHUNK,
    PROTO_T_WINDOWS,      PROTO_T_DISK_END,     PROTO_T_COMMIT,
    PROTO_T_COMMITTED,    PROTO_T_ABORT,        PROTO_T_COMMIT_META,
    PROTO_T_SEAL,         PROTO_T_GET_MANIFEST, PROTO_T_MANIFEST_DATA,
    PROTO_T_MANIFEST_END, PROTO_T_GET_CHUNKS,   PROTO_T_CHUNK_DATA,
    PROTO_T_VERIFY,       PROTO_T_VERIFY_EVENT, PROTO_T_VERIFY_END,
    PROTO_T_DELETE,       PROTO_T_PRUNE,        PROTO_T_PRUNE_ENTRY,
    PROTO_T_GC,           PROTO_T_GC_END,       PROTO_T_BRIDGE,
    PROTO_T_IMPORT,       PROTO_T_GET_STORED,   PROTO_T_CHUNK_BAD,
    PROTO_T_WAITING,      PROTO_T_WORKING,
};

Test(hdr, round_trip_every_known_type)
{
    for (size_t i = 0; i < LB_ARRAY_SIZE(known_types); i++) {
        uint8_t b[PROTO_HDR_SIZE];
        struct proto_hdr h;
        uint32_t len = (uint32_t)(i * 977) % PROTO_MAX_PAYLOAD;

        proto_hdr_encode(b, known_types[i], len);
        cr_assert_eq(lb_load_be32(b), PROTO_MAGIC);
        cr_assert_eq(proto_hdr_decode(b, sizeof b, &h), PROTO_OK);
        cr_assert_eq(h.type, known_types[i]);
        cr_assert_eq(h.flags, 0);
        cr_assert_eq(h.len, len);
        cr_assert(proto_type_known(known_types[i]));
        cr_assert_not_null(proto_type_name(known_types[i]));
    }
    cr_assert_str_eq(proto_type_name(PROTO_T_WINDOWS), "WINDOWS");
}

Test(hdr, every_other_type_is_unknown)
{
    size_t known = 0;

    for (uint32_t t = 0; t <= 0xFFFF; t++) {
        uint8_t b[PROTO_HDR_SIZE];
        struct proto_hdr h;
        bool listed = false;

        for (size_t i = 0; i < LB_ARRAY_SIZE(known_types); i++)
            listed |= known_types[i] == t;
        proto_hdr_encode(b, (uint16_t)t, 0);
        if (listed) {
            known++;
            continue;
        }
        cr_assert_not(proto_type_known((uint16_t)t), "type 0x%04x", t);
        cr_assert_null(proto_type_name((uint16_t)t));
        cr_assert_eq(proto_hdr_decode(b, sizeof b, &h), PROTO_E_TYPE,
                     "type 0x%04x", t);
    }
    cr_assert_eq(known, LB_ARRAY_SIZE(known_types));
}

Test(hdr, truncated_header_asks_for_more)
{
    uint8_t b[PROTO_HDR_SIZE];
    struct proto_hdr h;

    proto_hdr_encode(b, PROTO_T_OK, 8);
    for (size_t len = 0; len < PROTO_HDR_SIZE; len++)
        cr_assert_eq(proto_hdr_decode(b, len, &h), (int)(PROTO_HDR_SIZE - len));
}

Test(hdr, bad_magic)
{
    for (int byte = 0; byte < 4; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            uint8_t b[PROTO_HDR_SIZE];
            struct proto_hdr h;
            proto_hdr_encode(b, PROTO_T_OK, 8);
            b[byte] ^= (uint8_t)(1u << bit);
            cr_assert_eq(proto_hdr_decode(b, sizeof b, &h), PROTO_E_MAGIC);
        }
    }
}

Test(hdr, reserved_flags)
{
    for (int bit = 0; bit < 16; bit++) {
        uint8_t b[PROTO_HDR_SIZE];
        struct proto_hdr h;
        proto_hdr_encode(b, PROTO_T_OK, 8);
        lb_store_be16(b + 6, (uint16_t)(1u << bit));
        cr_assert_eq(proto_hdr_decode(b, sizeof b, &h), PROTO_E_RESERVED);
    }
}

Test(hdr, oversized_frame)
{
    static const uint32_t lens[] = {PROTO_MAX_PAYLOAD + 1, 0x80000000u,
                                    0xFFFFFFFFu};
    uint8_t b[PROTO_HDR_SIZE];
    struct proto_hdr h;

    proto_hdr_encode(b, PROTO_T_CHUNK, PROTO_MAX_PAYLOAD);
    cr_assert_eq(proto_hdr_decode(b, sizeof b, &h), PROTO_OK);
    for (size_t i = 0; i < LB_ARRAY_SIZE(lens); i++) {
        proto_hdr_encode(b, PROTO_T_CHUNK, lens[i]);
        cr_assert_eq(proto_hdr_decode(b, sizeof b, &h), PROTO_E_TOO_BIG);
    }
}

Test(hdr, frames_back_to_back)
{
    struct lb_buf b = {0};
    struct proto_hdr h;
    size_t f1 = proto_frame_begin(&b, PROTO_T_LIST);
    size_t f2;

    lb_buf_append(&b, "abc", 3);
    proto_frame_end(&b, f1);
    f2 = proto_frame_begin(&b, PROTO_T_ABORT);
    proto_frame_end(&b, f2);
    cr_assert_eq(f1, 0);
    cr_assert_eq(f2, PROTO_HDR_SIZE + 3);
    cr_assert_eq(proto_hdr_decode(b.data, b.len, &h), PROTO_OK);
    cr_assert_eq(h.type, PROTO_T_LIST);
    cr_assert_eq(h.len, 3);
    cr_assert_eq(proto_hdr_decode(b.data + f2, b.len - f2, &h), PROTO_OK);
    cr_assert_eq(h.type, PROTO_T_ABORT);
    cr_assert_eq(h.len, 0);
    cr_assert_eq(b.len, 2 * PROTO_HDR_SIZE + 3);
    lb_buf_free(&b);
}

Test(hdr, status_strings_are_distinct)
{
    const char *seen[12];
    int n = 0;

    for (int s = PROTO_E_ORDER; s <= PROTO_OK; s++) {
        const char *str = proto_status_str(s);
        cr_assert_not_null(str);
        for (int i = 0; i < n; i++)
            cr_assert_str_neq(seen[i], str);
        seen[n++] = str;
    }
    cr_assert_str_eq(proto_status_str(5), "incomplete");
    cr_assert_str_eq(proto_status_str(-100), "unknown decoder error");
}

/* ---- cursor and str16 ---------------------------------------------------- */

Test(cursor, reads_and_fails_sticky)
{
    static const uint8_t p[] = {1, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 4, 9};
    struct proto_rd pr;

    proto_rd_init(&pr, p, sizeof p);
    cr_assert_eq(proto_rd_u8(&pr), 1);
    cr_assert_eq(proto_rd_be16(&pr), 2);
    cr_assert_eq(proto_rd_be32(&pr), 3);
    cr_assert_eq(proto_rd_be64(&pr), 4);
    cr_assert_eq(proto_rd_left(&pr), 1);
    cr_assert_eq(proto_rd_done(&pr), PROTO_E_TRAILING);
    cr_assert_eq(proto_rd_be16(&pr), 0, "short read returns zero");
    cr_assert_eq(pr.err, PROTO_E_TRUNCATED);
    cr_assert_eq(proto_rd_u8(&pr), 0, "sticky: even a fitting read fails");
    cr_assert_null(proto_rd_bytes(&pr, 0));
    cr_assert_eq(proto_rd_left(&pr), 0);
    cr_assert_eq(proto_rd_done(&pr), PROTO_E_TRUNCATED);

    proto_rd_init(&pr, p, sizeof p);
    cr_assert_null(proto_rd_bytes(&pr, SIZE_MAX), "huge length, no overflow");
    cr_assert_eq(pr.err, PROTO_E_TRUNCATED);
    proto_rd_init(&pr, p, sizeof p);
    cr_assert_not_null(proto_rd_bytes(&pr, sizeof p));
    cr_assert_eq(proto_rd_done(&pr), PROTO_OK);
}

static int
str16(const uint8_t *p, size_t len, struct proto_str *s)
{
    struct proto_rd pr;

    proto_rd_init(&pr, p, len);
    *s = proto_rd_str16(&pr);
    return proto_rd_done(&pr);
}

Test(cursor, str16)
{
    struct proto_str s;
    char out[8];

    cr_assert_eq(str16((const uint8_t *)"\0\3a\tb", 5, &s), PROTO_OK);
    cr_assert_eq(s.len, 3);
    cr_assert(proto_str_eq(s, "a\tb"));
    cr_assert_not(proto_str_eq(s, "a\tbc"));
    cr_assert_not(proto_str_eq(s, "a\tc"));
    cr_assert(proto_str_copy(out, 4, s));
    cr_assert_str_eq(out, "a\tb");
    cr_assert_not(proto_str_copy(out, 3, s), "no room for the NUL");

    cr_assert_eq(str16((const uint8_t *)"\0\0", 2, &s), PROTO_OK);
    cr_assert_eq(s.len, 0);
    cr_assert_not_null(s.p);
    cr_assert(proto_str_eq(s, ""));
    cr_assert_eq(str16((const uint8_t *)"\0\2a\n", 4, &s), PROTO_OK,
                 "newline is allowed");
}

Test(cursor, str16_rejects_bad_bytes_and_lengths)
{
    struct proto_str s;
    uint8_t p[8] = {0, 3, 'a', 0, 'b'};

    cr_assert_eq(str16(p, 5, &s), PROTO_E_STRING, "NUL");
    cr_assert_eq(s.len, 0);
    for (int c = 1; c < 0x20; c++) {
        if (c == '\t' || c == '\n')
            continue;
        p[3] = (uint8_t)c;
        cr_assert_eq(str16(p, 5, &s), PROTO_E_STRING, "control 0x%02x", c);
    }
    p[3] = 0x7f;
    cr_assert_eq(str16(p, 5, &s), PROTO_E_STRING, "DEL");
    p[3] = 'x';
    cr_assert_eq(str16(p, 5, &s), PROTO_OK);
    cr_assert_eq(str16(p, 4, &s), PROTO_E_TRUNCATED, "length beyond buffer");
    cr_assert_eq(str16(p, 1, &s), PROTO_E_TRUNCATED, "half a length");
    p[0] = 0xFF;
    p[1] = 0xFF;
    cr_assert_eq(str16(p, 5, &s), PROTO_E_TRUNCATED, "65535 > buffer");
}

/* ---- key/value lists ----------------------------------------------------- */

static int
kv_dec(const struct lb_buf *b, struct proto_kv *kv)
{
    struct proto_rd pr;
    int r;

    proto_rd_init(&pr, b->data, b->len);
    r = proto_kv_decode(&pr, kv);
    if (r == PROTO_OK && (r = proto_rd_done(&pr)) != PROTO_OK)
        proto_kv_free(kv);
    return r;
}

/* Append one raw entry: key bytes, value length field, value bytes. */
static void
kv_raw(struct lb_buf *b, const char *k, size_t klen, uint32_t vlen_field,
       const char *v, size_t vlen)
{
    lb_buf_put_str16(b, k, klen);
    lb_buf_put_be32(b, vlen_field);
    lb_buf_append(b, v, vlen);
}

Test(kv, round_trip_and_accessors)
{
    struct proto_kv kv = {0}, back = {0};
    struct lb_buf b = {0};
    char *big = malloc(PROTO_MAX_VALUE + 1);

    memset(big, 'v', PROTO_MAX_VALUE);
    big[PROTO_MAX_VALUE] = '\0';
    proto_kv_set(&kv, "name", "web1");
    proto_kv_set(&kv, "empty", "");
    proto_kv_set(&kv, "a.b_c-9", "multi\nline\tvalue \xc3\xa9");
    proto_kv_set(&kv, "big", big);
    proto_kv_set_u64(&kv, "size", UINT64_MAX);
    proto_kv_setf(&kv, "fmt", "%d-%s", 42, "x");
    proto_kv_set(&kv, "name", "web2"); /* replaces */
    cr_assert_eq(kv.n, 6);

    proto_kv_encode(&b, &kv);
    cr_assert_eq(kv_dec(&b, &back), PROTO_OK);
    cr_assert_eq(back.n, kv.n);
    for (size_t i = 0; i < kv.n; i++) {
        cr_assert_str_eq(back.e[i].key, kv.e[i].key, "order is kept");
        cr_assert_str_eq(back.e[i].val, kv.e[i].val);
    }
    cr_assert_str_eq(proto_kv_get(&back, "name"), "web2");
    cr_assert_str_eq(proto_kv_get(&back, "empty"), "");
    cr_assert_null(proto_kv_get(&back, "nope"));
    cr_assert_eq(proto_kv_get_u64(&back, "size", 1), UINT64_MAX);
    cr_assert_str_eq(proto_kv_get(&back, "fmt"), "42-x");
    cr_assert_eq(strlen(proto_kv_get(&back, "big")), PROTO_MAX_VALUE);
    proto_kv_free(&back);
    proto_kv_free(&back); /* idempotent */
    proto_kv_free(&kv);
    lb_buf_free(&b);
    free(big);
}

Test(kv, get_u64_defaults_on_malformed_values)
{
    struct proto_kv kv = {0};

    proto_kv_set(&kv, "ok", "123");
    proto_kv_set(&kv, "neg", "-1");
    proto_kv_set(&kv, "junk", "12x");
    proto_kv_set(&kv, "empty", "");
    cr_assert_eq(proto_kv_get_u64(&kv, "ok", 9), 123);
    cr_assert_eq(proto_kv_get_u64(&kv, "neg", 9), 9);
    cr_assert_eq(proto_kv_get_u64(&kv, "junk", 9), 9);
    cr_assert_eq(proto_kv_get_u64(&kv, "empty", 9), 9);
    cr_assert_eq(proto_kv_get_u64(&kv, "absent", 9), 9);
    proto_kv_free(&kv);
}

/* Merging lists from a peer never aborts: past either bound it fails and
 * leaves the destination as it was (issue 10: 256 keys from a client made
 * backupd's merge abort). */
Test(kv, merge_is_bounded_and_never_aborts)
{
    struct proto_kv dst = {0}, src = {0};
    size_t before;

    proto_kv_set(&dst, "a", "1");
    proto_kv_set(&dst, "b", "22");
    proto_kv_set(&src, "b", "333");
    proto_kv_set(&src, "c", "4");
    cr_assert_eq(proto_kv_encoded_len(&dst), 2 + (2 + 1 + 4 + 1) * 2 + 1);
    cr_assert_eq(proto_kv_merge(&dst, &src, 3, 1000), 0, "%s", lb_error_msg());
    cr_assert_eq(dst.n, 3);
    cr_assert_str_eq(proto_kv_get(&dst, "b"), "333", "src wins");
    before = proto_kv_encoded_len(&dst);
    proto_kv_free(&src);

    /* One key too many: refused, dst unchanged. */
    proto_kv_set(&src, "d", "5");
    cr_assert_eq(proto_kv_merge(&dst, &src, 3, 1000), -1);
    cr_assert_eq(lb_error_errno(), EINVAL);
    cr_assert(strstr(lb_error_msg(), "4 keys, at most 3"), "%s",
              lb_error_msg());
    cr_assert_eq(dst.n, 3);
    cr_assert_null(proto_kv_get(&dst, "d"));
    /* Replacing a value counts its new length, not a new key. */
    proto_kv_free(&src);
    proto_kv_set(&src, "a", "123456");
    cr_assert_eq(proto_kv_merge(&dst, &src, 3, before + 4), -1);
    cr_assert_str_eq(proto_kv_get(&dst, "a"), "1");
    cr_assert_eq(proto_kv_merge(&dst, &src, 3, before + 5), 0);
    cr_assert_str_eq(proto_kv_get(&dst, "a"), "123456");
    proto_kv_free(&src);

    /* PROTO_MAX_KV + PROTO_MAX_KV keys, as two full lists from a client. */
    proto_kv_free(&dst);
    for (unsigned i = 0; i < PROTO_MAX_KV; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%u", i);
        proto_kv_set(&dst, k, "x");
        snprintf(k, sizeof k, "j%u", i);
        proto_kv_set(&src, k, "y");
    }
    cr_assert_eq(proto_kv_merge(&dst, &src, PROTO_MAX_KV, SIZE_MAX), -1);
    cr_assert_eq(dst.n, PROTO_MAX_KV);
    proto_kv_free(&dst);
    proto_kv_free(&src);
}

Test(kv, set_lossy_makes_any_text_valid)
{
    struct proto_kv kv = {0};
    char *big = lb_xmalloc(PROTO_MAX_VALUE + 11);
    struct lb_buf b = {0};
    struct proto_kv back;

    memset(big, 'x', PROTO_MAX_VALUE + 10);
    big[PROTO_MAX_VALUE + 10] = '\0';
    proto_kv_set_lossy(&kv, "what",
                       "a\x01"
                       "b\x7f\tc\r");
    proto_kv_set_lossy(&kv, "big", big);
    cr_assert_str_eq(proto_kv_get(&kv, "what"), "a?b?\tc?");
    cr_assert_eq(strlen(proto_kv_get(&kv, "big")), PROTO_MAX_VALUE);
    proto_kv_encode(&b, &kv);
    cr_assert_eq(kv_dec(&b, &back), PROTO_OK);
    proto_kv_free(&back);
    proto_kv_free(&kv);
    lb_buf_free(&b);
    free(big);
}

Test(kv, empty_list)
{
    struct lb_buf b = {0};
    struct proto_kv kv = {0}, back;

    proto_kv_encode(&b, &kv);
    cr_assert_eq(b.len, 2);
    cr_assert_eq(kv_dec(&b, &back), PROTO_OK);
    cr_assert_eq(back.n, 0);
    proto_kv_free(&back);
    lb_buf_free(&b);
}

Test(kv, every_truncation_fails)
{
    struct proto_kv kv = {0}, back;
    struct lb_buf b = {0};

    proto_kv_set(&kv, "k1", "value one");
    proto_kv_set(&kv, "k2", "");
    proto_kv_set(&kv, "k3", "3");
    proto_kv_encode(&b, &kv);
    for (size_t len = 0; len < b.len; len++) {
        struct lb_buf t = {b.data, len, len};
        back.e = (void *)1;
        cr_assert_lt(kv_dec(&t, &back), 0, "prefix of %zu bytes", len);
        cr_assert_null(back.e, "nothing allocated on error");
        cr_assert_eq(back.n, 0);
    }
    lb_buf_put_u8(&b, 0);
    cr_assert_eq(kv_dec(&b, &back), PROTO_E_TRAILING);
    proto_kv_free(&kv);
    lb_buf_free(&b);
}

Test(kv, value_lengths_out_of_range)
{
    static const uint32_t lens[] = {PROTO_MAX_VALUE + 1, 0x80000000u,
                                    0xFFFFFFFFu};
    struct proto_kv back;

    for (size_t i = 0; i < LB_ARRAY_SIZE(lens); i++) {
        struct lb_buf b = {0};
        lb_buf_put_be16(&b, 1);
        kv_raw(&b, "k", 1, lens[i], "abc", 3);
        cr_assert_eq(kv_dec(&b, &back), PROTO_E_RANGE, "len 0x%x", lens[i]);
        lb_buf_free(&b);
    }
    {
        /* In range but beyond the buffer. */
        struct lb_buf b = {0};
        lb_buf_put_be16(&b, 1);
        kv_raw(&b, "k", 1, 4, "abc", 3);
        cr_assert_eq(kv_dec(&b, &back), PROTO_E_TRUNCATED);
        lb_buf_free(&b);
    }
}

Test(kv, counts_out_of_range)
{
    struct lb_buf b = {0};
    struct proto_kv back;

    lb_buf_put_be16(&b, PROTO_MAX_KV + 1);
    for (int i = 0; i < PROTO_MAX_KV + 1; i++) {
        char k[16];
        int n = snprintf(k, sizeof k, "k%d", i);
        kv_raw(&b, k, (size_t)n, 1, "v", 1);
    }
    cr_assert_eq(kv_dec(&b, &back), PROTO_E_RANGE);
    /* The same entries with count 256 are fine but then one is trailing. */
    lb_store_be16(b.data, PROTO_MAX_KV);
    cr_assert_eq(kv_dec(&b, &back), PROTO_E_TRAILING);
    lb_store_be16(b.data, 0xFFFF);
    cr_assert_eq(kv_dec(&b, &back), PROTO_E_RANGE);
    lb_buf_free(&b);
}

Test(kv, bad_keys_values_and_duplicates)
{
    static const struct {
        const char *k;
        size_t klen;
        const char *v;
        size_t vlen;
    } bad[] = {
        {"", 0, "v", 1},     {"Key", 3, "v", 1},   {"a b", 3, "v", 1},
        {"a/b", 3, "v", 1},  {"k\0", 2, "v", 1},   {"k\n", 2, "v", 1},
        {"k", 1, "a\0b", 3}, {"k", 1, "a\x01", 2}, {"k", 1, "\x7f", 1},
        {"k", 1, "a\rb", 3},
    };
    struct proto_kv back;
    char longkey[PROTO_MAX_KEY + 2];

    for (size_t i = 0; i < LB_ARRAY_SIZE(bad); i++) {
        struct lb_buf b = {0};
        lb_buf_put_be16(&b, 1);
        kv_raw(&b, bad[i].k, bad[i].klen, (uint32_t)bad[i].vlen, bad[i].v,
               bad[i].vlen);
        cr_assert_eq(kv_dec(&b, &back), PROTO_E_STRING, "entry %zu", i);
        lb_buf_free(&b);
    }
    memset(longkey, 'k', sizeof longkey);
    for (size_t klen = PROTO_MAX_KEY; klen <= PROTO_MAX_KEY + 1; klen++) {
        struct lb_buf b = {0};
        lb_buf_put_be16(&b, 1);
        kv_raw(&b, longkey, klen, 1, "v", 1);
        if (klen == PROTO_MAX_KEY) {
            cr_assert_eq(kv_dec(&b, &back), PROTO_OK);
            proto_kv_free(&back);
        } else {
            cr_assert_eq(kv_dec(&b, &back), PROTO_E_STRING);
        }
        lb_buf_free(&b);
    }
    {
        struct lb_buf b = {0};
        lb_buf_put_be16(&b, 3);
        kv_raw(&b, "a", 1, 1, "1", 1);
        kv_raw(&b, "b", 1, 1, "2", 1);
        kv_raw(&b, "a", 1, 1, "3", 1);
        cr_assert_eq(kv_dec(&b, &back), PROTO_E_STRING, "duplicate key");
        lb_buf_free(&b);
    }
    cr_assert(proto_kv_key_valid("a.b-c_9", 7));
    cr_assert_not(proto_kv_key_valid("", 0));
}

/* ---- names --------------------------------------------------------------- */

static bool
name_ok(const char *s)
{
    return proto_name_valid(s, strlen(s));
}

Test(names, set_names)
{
    char n200[201], n201[202];

    memset(n200, 'n', 200);
    n200[200] = '\0';
    memset(n201, 'n', 201);
    n201[201] = '\0';
    cr_assert(name_ok("web1"));
    cr_assert(name_ok("my vm (prod)"));
    cr_assert(name_ok(".hidden"));
    cr_assert(name_ok("..."));
    cr_assert(name_ok("caf\xc3\xa9"));
    cr_assert(name_ok(n200));
    cr_assert_not(name_ok(n201), "overlong");
    cr_assert_not(name_ok(""));
    cr_assert_not(name_ok("."));
    cr_assert_not(name_ok(".."));
    cr_assert_not(name_ok("../x"));
    cr_assert_not(name_ok("/abs"));
    cr_assert_not(name_ok("a/b"));
    cr_assert_not(name_ok("a\nb"));
    cr_assert_not(name_ok("a\tb"));
    cr_assert_not(name_ok("a\x7f"));
    cr_assert_not(proto_name_valid("a\0b", 3), "NUL");
}

static bool
disk_ok(const char *s)
{
    return proto_disk_name_valid(s, strlen(s));
}

Test(names, disk_names)
{
    char n64[65], n65[66];

    memset(n64, 'd', 64);
    n64[64] = '\0';
    memset(n65, 'd', 65);
    n65[65] = '\0';
    cr_assert(disk_ok("vda"));
    cr_assert(disk_ok("sda-1.2_X"));
    cr_assert(disk_ok("a."));
    cr_assert(disk_ok(n64));
    cr_assert_not(disk_ok(n65), "overlong");
    cr_assert_not(disk_ok(""));
    cr_assert_not(disk_ok(".vda"));
    cr_assert_not(disk_ok(".."));
    cr_assert_not(disk_ok("../x"));
    cr_assert_not(disk_ok("/abs"));
    cr_assert_not(disk_ok("a/b"));
    cr_assert_not(disk_ok("vd a"));
    cr_assert_not(disk_ok("vd\xc3\xa9"));
    cr_assert_not(proto_disk_name_valid("vd\0a", 4), "NUL");
}

static bool
id_ok(const char *s)
{
    return proto_backup_id_valid(s, strlen(s));
}

Test(names, backup_ids)
{
    char id[PROTO_ID_LEN + 1];

    proto_backup_id_make(id, 0, 0xbeef);
    cr_assert_str_eq(id, "19700101-000000-beef");
    cr_assert(id_ok(id));
    proto_backup_id_make(id, 1795434360, 0x00a1);
    cr_assert_str_eq(id, "20261123-114600-00a1");
    cr_assert(id_ok(id));
    proto_backup_id_make(id, 253402300799, 0xffff);
    cr_assert_str_eq(id, "99991231-235959-ffff");

    cr_assert_not(id_ok(""));
    cr_assert_not(id_ok("../x"));
    cr_assert_not(id_ok("/abs"));
    cr_assert_not(id_ok("../../../../etc/pass"), "20 bytes, wrong shape");
    cr_assert_not(id_ok("20261123-114600-ABCD"), "upper-case hex");
    cr_assert_not(id_ok("20261123-114600-abcg"));
    cr_assert_not(id_ok("20261123_114600-abcd"));
    cr_assert_not(id_ok("20261123-114600_abcd"));
    cr_assert_not(id_ok("2026112a-114600-abcd"));
    cr_assert_not(id_ok("20261123-11460a-abcd"));
    cr_assert_not(id_ok("20261123-114600-abcde"), "overlong");
    cr_assert_not(id_ok("20261123-114600-abc"), "short");
    cr_assert_not(proto_backup_id_valid("20261123-114600-ab\0d", 20));
}
