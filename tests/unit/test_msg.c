/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * proto/msg.c, session and control messages: every message type in
 * proto.h is encoded, framed and decoded strictly (every truncation fails,
 * trailing bytes fail); HELLO, ERROR, OK, INIT, OPEN, REPO_INFO, the
 * string and KV frames and BACKUP_* are compared field by field with their
 * bad-input classes. test_msg_data.c covers the backup data messages.
 */
#include "proto/crypt.h"
#include "tests/unit/testutil.h"

#include <criterion/criterion.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------- */

/* The decoder for a frame type, as a receiver dispatches it. Frees what
 * the decoder allocated. */
static int
dec_any(uint16_t type, const uint8_t *p, size_t len)
{
    int r;

    switch (type) {
    case PROTO_T_HELLO:
    case PROTO_T_HELLO_REPLY: {
        struct proto_hello h;
        return proto_dec_hello(p, len, &h);
    }
    case PROTO_T_ERROR: {
        struct proto_error e;
        return proto_dec_error(p, len, &e);
    }
    case PROTO_T_OK:
    case PROTO_T_LIST_END:
    case PROTO_T_MANIFEST_END: {
        uint64_t v;
        return proto_dec_u64(p, len, &v);
    }
    case PROTO_T_INIT: {
        uint32_t ws;
        return proto_dec_init(p, len, &ws);
    }
    case PROTO_T_KEY_GET:
        return len == 0 ? PROTO_OK : PROTO_E_TRAILING;
    case PROTO_T_KEY_DATA: {
        struct proto_key_info k;
        return proto_dec_key_data(p, len, &k);
    }
    case PROTO_T_KEY_SET: {
        struct proto_keyfile kf;
        return proto_keyfile_decode(p, len, &kf);
    }
    case PROTO_T_SEAL: {
        const uint8_t *mac;
        return proto_dec_seal(p, len, &mac);
    }
    case PROTO_T_OPEN: {
        uint8_t m;
        return proto_dec_open(p, len, &m);
    }
    case PROTO_T_REPO_INFO: {
        struct proto_repo_info ri;
        return proto_dec_repo_info(p, len, &ri);
    }
    case PROTO_T_WAITING: {
        struct proto_waiting w;
        return proto_dec_waiting(p, len, &w);
    }
    case PROTO_T_LIST:
    case PROTO_T_GET_MANIFEST:
    case PROTO_T_DELETE: {
        struct proto_str s;
        return proto_dec_str(p, len, &s);
    }
    case PROTO_T_LIST_ENTRY:
    case PROTO_T_DISK_END:
    case PROTO_T_COMMIT:
    case PROTO_T_COMMITTED:
    case PROTO_T_VERIFY:
    case PROTO_T_VERIFY_EVENT:
    case PROTO_T_VERIFY_END:
    case PROTO_T_PRUNE:
    case PROTO_T_PRUNE_ENTRY:
    case PROTO_T_GC:
    case PROTO_T_GC_END:
    case PROTO_T_COMMIT_META:
    case PROTO_T_BRIDGE: {
        struct proto_kv kv;
        r = proto_dec_kv(p, len, &kv);
        if (r == PROTO_OK)
            proto_kv_free(&kv);
        return r;
    }
    case PROTO_T_BACKUP_BEGIN: {
        struct proto_backup_begin bb;
        r = proto_dec_backup_begin(p, len, &bb);
        if (r == PROTO_OK)
            proto_kv_free(&bb.meta);
        return r;
    }
    case PROTO_T_IMPORT: {
        struct proto_import im;
        r = proto_dec_import(p, len, &im);
        if (r == PROTO_OK)
            proto_kv_free(&im.b.meta);
        return r;
    }
    case PROTO_T_CHUNK_BAD: {
        struct proto_digest d;
        uint8_t reason;
        struct proto_str msg;
        return proto_dec_chunk_bad(p, len, &d, &reason, &msg);
    }
    case PROTO_T_BACKUP_STARTED: {
        struct proto_str id, parent;
        return proto_dec_backup_started(p, len, &id, &parent);
    }
    case PROTO_T_DISK_BEGIN: {
        struct proto_disk_begin db;
        r = proto_dec_disk_begin(p, len, &db);
        if (r == PROTO_OK)
            proto_kv_free(&db.meta);
        return r;
    }
    case PROTO_T_DISK_READY: {
        uint64_t nw;
        uint32_t ws;
        return proto_dec_disk_ready(p, len, &nw, &ws);
    }
    case PROTO_T_DEPTHS: {
        uint64_t first;
        const uint8_t *d;
        size_t n;
        return proto_dec_depths(p, len, &first, &d, &n);
    }
    case PROTO_T_QUERY:
    case PROTO_T_GET_CHUNKS:
    case PROTO_T_GET_STORED: {
        const uint8_t *d;
        uint32_t n;
        return proto_dec_query(p, len, &d, &n);
    }
    case PROTO_T_HAVE: {
        const uint8_t *bits;
        uint32_t n;
        return proto_dec_have(p, len, &bits, &n);
    }
    case PROTO_T_CHUNK:
    case PROTO_T_CHUNK_DATA: {
        struct proto_chunk c;
        return proto_dec_chunk(p, len, &c);
    }
    case PROTO_T_WINDOWS:
        return tu_dec_windows(p, len, NULL, 0);
    case PROTO_T_ABORT:
    case PROTO_T_WORKING:
        return len == 0 ? PROTO_OK : PROTO_E_TRAILING;
    case PROTO_T_MANIFEST_DATA:
        return PROTO_OK; /* raw bytes, checked by the manifest reader */
    }
    return PROTO_E_TYPE;
}

/* A valid payload of type: every proper prefix must fail, and so must the
 * payload with one byte appended (PROTO_E_TRAILING). */
static void
check_strict(uint16_t type, const uint8_t *p, size_t len)
{
    uint8_t *q = lb_xmalloc(len + 1);

    cr_assert_eq(dec_any(type, p, len), PROTO_OK, "%s", proto_type_name(type));
    for (size_t n = 0; n < len; n++) {
        uint8_t *pre = lb_xmalloc(n ? n : 1);
        memcpy(pre, p, n);
        cr_assert_lt(dec_any(type, pre, n), 0, "%s: prefix of %zu/%zu bytes",
                     proto_type_name(type), n, len);
        free(pre);
    }
    memcpy(q, p, len);
    q[len] = 0;
    /* An uncompressed CHUNK's extra byte makes its data length wrong, and
     * a WINDOWS record cut short reads as truncated: errors all the same. */
    if (type == PROTO_T_CHUNK || type == PROTO_T_CHUNK_DATA ||
        type == PROTO_T_WINDOWS)
        cr_assert_lt(dec_any(type, q, len + 1), 0, "%s + 1 byte",
                     proto_type_name(type));
    else
        cr_assert_eq(dec_any(type, q, len + 1), PROTO_E_TRAILING, "%s + 1 byte",
                     proto_type_name(type));
    free(q);
}

static void
sample_kv(struct proto_kv *kv)
{
    proto_kv_set(kv, "kind", "full");
    proto_kv_set(kv, "consistency", "fs-frozen");
    proto_kv_set_u64(kv, "bytes", 1234567);
}

/* A key file as a repokey repository sends it (not a key that opens). */
static void
sample_keyfile(uint8_t out[PROTO_KEYFILE_LEN])
{
    struct proto_keyfile kf = {
        PROTO_KDF_ARGON2ID, 16, 1, 2, {0}, {0}, {0}, {0}, {0}};

    memset(kf.key_id, 0x11, sizeof kf.key_id);
    memset(kf.wrapped, 0x22, sizeof kf.wrapped);
    proto_keyfile_encode(out, &kf);
}

/* ---- one sample of every message type ------------------------------------ */

static void
enc_sample(struct lb_buf *b, uint16_t type)
{
    struct proto_kv kv = {0};

    sample_kv(&kv);
    switch (type) {
    case PROTO_T_HELLO:
    case PROTO_T_HELLO_REPLY: {
        struct proto_hello h = {1, 1, 0, {"livebackup 0.1.0", 16}};
        proto_enc_hello(b, type, &h);
        break;
    }
    case PROTO_T_ERROR:
        proto_enc_error(b, PROTO_ERR_LOCKED, "repository is locked", "wait");
        break;
    case PROTO_T_OK:
    case PROTO_T_LIST_END:
    case PROTO_T_MANIFEST_END:
        proto_enc_u64(b, type, 0x0102030405060708ull);
        break;
    case PROTO_T_INIT:
        proto_enc_init(b, PROTO_DEFAULT_WINDOW);
        break;
    case PROTO_T_KEY_GET:
        proto_enc_empty(b, type);
        break;
    case PROTO_T_KEY_DATA: {
        uint8_t kb[PROTO_KEYFILE_LEN];
        struct proto_key_info k = {PROTO_ENC_REPOKEY, {1, 2, 3}, kb, sizeof kb};
        sample_keyfile(kb);
        proto_enc_key_data(b, &k);
        break;
    }
    case PROTO_T_KEY_SET: {
        uint8_t kb[PROTO_KEYFILE_LEN];
        size_t f = proto_frame_begin(b, type);
        sample_keyfile(kb);
        lb_buf_append(b, kb, sizeof kb);
        proto_frame_end(b, f);
        break;
    }
    case PROTO_T_SEAL: {
        uint8_t mac[PROTO_SEAL_MAC_LEN];
        memset(mac, 0xAB, sizeof mac);
        proto_enc_seal(b, mac);
        break;
    }
    case PROTO_T_OPEN:
        proto_enc_open(b, PROTO_OPEN_WRITE);
        break;
    case PROTO_T_REPO_INFO: {
        struct proto_repo_info ri = {
            1, 1u << 20, PROTO_REPO_F_APPEND_ONLY, {"0123456789abcdef", 16}};
        proto_enc_repo_info(b, &ri);
        break;
    }
    case PROTO_T_WAITING: {
        struct proto_waiting w = {3, 3600};
        proto_enc_waiting(b, &w);
        break;
    }
    case PROTO_T_LIST:
    case PROTO_T_GET_MANIFEST:
    case PROTO_T_DELETE:
        proto_enc_str(b, type, "20261123-114600-abcd");
        break;
    case PROTO_T_BACKUP_BEGIN:
        proto_enc_backup_begin(b, "web1", "20261123-114600-abcd", &kv);
        break;
    case PROTO_T_IMPORT:
        proto_enc_import(b, "20261123-120000-beef", "web1",
                         "20261123-114600-abcd", &kv);
        break;
    case PROTO_T_CHUNK_BAD: {
        struct proto_digest d = tu_digest(5);
        proto_enc_chunk_bad(b, &d, PROTO_CHUNK_DAMAGED, "chunk ab/cd: damaged");
        break;
    }
    case PROTO_T_BACKUP_STARTED:
        proto_enc_backup_started(b, "20261124-000000-0001",
                                 "20261123-114600-abcd");
        break;
    case PROTO_T_DISK_BEGIN:
        proto_enc_disk_begin(b, "vda", 10737418240ull, PROTO_DISK_INCR, &kv);
        break;
    case PROTO_T_DISK_READY:
        proto_enc_disk_ready(b, 2560, PROTO_DEFAULT_WINDOW);
        break;
    case PROTO_T_DEPTHS: {
        static const uint8_t d[] = {0, 1, 2, 32};
        proto_enc_depths(b, 4096, d, sizeof d);
        break;
    }
    case PROTO_T_QUERY:
    case PROTO_T_GET_CHUNKS:
    case PROTO_T_GET_STORED: {
        struct proto_digest d[3] = {tu_digest(1), tu_digest(2), tu_digest(3)};
        proto_enc_query(b, type, d, 3);
        break;
    }
    case PROTO_T_HAVE: {
        static const uint8_t bits[] = {0xA5, 0x03};
        proto_enc_have(b, bits, 10);
        break;
    }
    case PROTO_T_CHUNK:
    case PROTO_T_CHUNK_DATA: {
        struct proto_chunk c = {tu_digest(9),
                                PROTO_CHUNK_RAW,
                                PROTO_COMP_NONE,
                                5,
                                (const uint8_t *)"hello",
                                5};
        proto_enc_chunk(b, type, &c);
        break;
    }
    case PROTO_T_WINDOWS: {
        struct proto_window_rec r = {0};
        size_t f = proto_frame_begin(b, type);
        size_t at = proto_enc_windows_start(b);
        r.index = 3;
        r.op = PROTO_WIN_SET;
        r.n = 1;
        r.refs[0].type = PROTO_CHUNK_RAW;
        r.refs[0].d = tu_digest(4);
        proto_enc_window_rec(b, &r);
        r.index = 9;
        r.op = PROTO_WIN_PUSH;
        r.refs[0].type = PROTO_CHUNK_DELTA;
        proto_enc_window_rec(b, &r);
        proto_enc_windows_finish(b, at, 2);
        proto_frame_end(b, f);
        break;
    }
    case PROTO_T_ABORT:
    case PROTO_T_WORKING:
        proto_enc_empty(b, type);
        break;
    case PROTO_T_MANIFEST_DATA: {
        size_t f = proto_frame_begin(b, type);
        lb_buf_append(b, "LBMANIF1", 8);
        proto_frame_end(b, f);
        break;
    }
    default: /* every KV-payload type */
        proto_enc_kv(b, type, &kv);
        break;
    }
    proto_kv_free(&kv);
}

Test(msg, every_known_type_round_trips_strictly)
{
    size_t n = 0;

    for (uint32_t t = 0; t <= 0xFFFF; t++) {
        struct lb_buf b = {0};
        uint8_t *p;
        size_t len;

        if (!proto_type_known((uint16_t)t))
            continue;
        n++;
        enc_sample(&b, (uint16_t)t);
        p = tu_payload(&b, (uint16_t)t, &len);
        cr_assert_eq(dec_any((uint16_t)t, p, len), PROTO_OK, "%s",
                     proto_type_name((uint16_t)t));
        /* Payloads that run to the end of the frame cannot have trailing
         * bytes or fail on every prefix; their own tests cover them. */
        if (t != PROTO_T_DEPTHS && t != PROTO_T_MANIFEST_DATA)
            check_strict((uint16_t)t, p, len);
        free(p);
        lb_buf_free(&b);
    }
    cr_assert_eq(n, 47, "proto.h lists 47 frame types");
}

/* ---- HELLO --------------------------------------------------------------- */

Test(msg, hello_fields)
{
    struct lb_buf b = {0};
    struct proto_hello h = {1, 3, 0x8000000000000001ull, {"sw 1.0", 6}}, o;
    uint8_t *p;
    size_t len;

    proto_enc_hello(&b, PROTO_T_HELLO_REPLY, &h);
    p = tu_payload(&b, PROTO_T_HELLO_REPLY, &len);
    cr_assert_eq(len, 2 + 2 + 8 + 2 + 6);
    cr_assert_eq(proto_dec_hello(p, len, &o), PROTO_OK);
    cr_assert_eq(o.version_min, 1);
    cr_assert_eq(o.version_max, 3);
    cr_assert_eq(o.features, 0x8000000000000001ull);
    cr_assert(proto_str_eq(o.software, "sw 1.0"));
    cr_assert(o.software.p >= (const char *)p &&
                  o.software.p < (const char *)p + len,
              "views point into the payload");

    lb_store_be16(p, 0);
    cr_assert_eq(proto_dec_hello(p, len, &o), PROTO_E_RANGE, "min 0");
    lb_store_be16(p, 4);
    cr_assert_eq(proto_dec_hello(p, len, &o), PROTO_E_RANGE, "min > max");
    lb_store_be16(p, 3);
    cr_assert_eq(proto_dec_hello(p, len, &o), PROTO_OK, "min == max");
    p[14] = '\0';
    cr_assert_eq(proto_dec_hello(p, len, &o), PROTO_E_STRING, "NUL");
    p[14] = '\x1b';
    cr_assert_eq(proto_dec_hello(p, len, &o), PROTO_E_STRING, "ESC");
    free(p);
    lb_buf_free(&b);
}

/* ---- ERROR, OK ----------------------------------------------------------- */

Test(msg, error_fields_and_codes)
{
    for (uint32_t code = 0; code <= PROTO_ERR_MAX + 1; code++) {
        struct lb_buf b = {0};
        struct proto_error e;
        uint8_t *p;
        size_t len;

        proto_enc_error(&b, code, "no backup x\nsecond line", NULL);
        p = tu_payload(&b, PROTO_T_ERROR, &len);
        if (code == 0 || code > PROTO_ERR_MAX) {
            cr_assert_eq(proto_dec_error(p, len, &e), PROTO_E_RANGE);
            cr_assert_str_eq(proto_err_name(code), "unknown error");
        } else {
            cr_assert_eq(proto_dec_error(p, len, &e), PROTO_OK);
            cr_assert_eq(e.code, code);
            cr_assert(proto_str_eq(e.msg, "no backup x\nsecond line"));
            cr_assert(proto_str_eq(e.hint, ""), "NULL hint sends \"\"");
            cr_assert_str_neq(proto_err_name(code), "unknown error");
        }
        free(p);
        lb_buf_free(&b);
    }
}

Test(msg, error_message_is_capped_at_str16)
{
    struct lb_buf b = {0};
    struct proto_error e;
    char *big = malloc(70000);
    uint8_t *p;
    size_t len;

    memset(big, 'e', 69999);
    big[69999] = '\0';
    proto_enc_error(&b, PROTO_ERR_IO, big, "h");
    p = tu_payload(&b, PROTO_T_ERROR, &len);
    cr_assert_eq(proto_dec_error(p, len, &e), PROTO_OK);
    cr_assert_eq(e.msg.len, 65535);
    cr_assert(proto_str_eq(e.hint, "h"));
    free(p);
    free(big);
    lb_buf_free(&b);
}

Test(msg, u64_frames)
{
    static const uint16_t types[] = {PROTO_T_OK, PROTO_T_LIST_END,
                                     PROTO_T_MANIFEST_END};

    for (size_t i = 0; i < LB_ARRAY_SIZE(types); i++) {
        struct lb_buf b = {0};
        uint64_t v = 0;
        uint8_t *p;
        size_t len;

        proto_enc_u64(&b, types[i], UINT64_MAX - i);
        p = tu_payload(&b, types[i], &len);
        cr_assert_eq(len, 8);
        cr_assert_eq(proto_dec_u64(p, len, &v), PROTO_OK);
        cr_assert_eq(v, UINT64_MAX - i);
        free(p);
        lb_buf_free(&b);
    }
    {
        struct lb_buf b = {0};
        proto_enc_ok(&b, 0);
        cr_assert_eq(lb_load_be16(b.data + 4), PROTO_T_OK);
        lb_buf_free(&b);
    }
}

Test(msg, abort_is_empty)
{
    struct lb_buf b = {0};
    size_t len;
    uint8_t *p;

    proto_enc_empty(&b, PROTO_T_ABORT);
    p = tu_payload(&b, PROTO_T_ABORT, &len);
    cr_assert_eq(len, 0);
    cr_assert_eq(b.len, PROTO_HDR_SIZE);
    free(p);
    lb_buf_free(&b);
}

/* ---- INIT, OPEN, REPO_INFO ----------------------------------------------- */

/* INIT of an encrypted repository, and KEY_DATA: the key fields, with a
 * key file exactly for repokey and none for keyfile. */
Test(msg, keyed_init_and_key_data)
{
    uint8_t kb[PROTO_KEYFILE_LEN];
    struct proto_key_info k = {PROTO_ENC_REPOKEY, {0}, kb, sizeof kb}, o;
    struct lb_buf b = {0};
    uint32_t ws = 0;
    size_t len;
    uint8_t *p;

    sample_keyfile(kb);
    memset(k.key_id, 0x5A, sizeof k.key_id);
    proto_enc_init_keyed(&b, PROTO_DEFAULT_WINDOW, &k);
    p = tu_payload(&b, PROTO_T_INIT, &len);
    cr_assert_eq(len, 4 + 1 + 16 + 4 + PROTO_KEYFILE_LEN);
    cr_assert_eq(proto_dec_init_keyed(p, len, &ws, &o), PROTO_OK);
    cr_assert_eq(ws, PROTO_DEFAULT_WINDOW);
    cr_assert_eq(o.encryption, PROTO_ENC_REPOKEY);
    cr_assert_arr_eq(o.key_id, k.key_id, sizeof k.key_id);
    cr_assert_eq(o.key_len, PROTO_KEYFILE_LEN);
    cr_assert(o.key == p + 25, "the key file is a view into the payload");
    /* the plain INIT is the same decoder's other form */
    cr_assert_eq(proto_dec_init_keyed(p, 4, &ws, &o), PROTO_OK);
    cr_assert_eq(o.encryption, PROTO_ENC_NONE);
    cr_assert_eq(proto_dec_init(p, len, &ws), PROTO_E_TRAILING,
                 "the old decoder takes only the plain form");
    /* every cut between the window size and the end fails */
    for (size_t n = 5; n < len; n++)
        cr_assert_lt(proto_dec_init_keyed(p, n, &ws, &o), 0, "%zu bytes", n);
    p[4] = PROTO_ENC_KEYFILE; /* with a key file: wrong */
    cr_assert_eq(proto_dec_init_keyed(p, len, &ws, &o), PROTO_E_RANGE);
    p[4] = 3;
    cr_assert_eq(proto_dec_init_keyed(p, len, &ws, &o), PROTO_E_RANGE);
    p[4] = PROTO_ENC_NONE;
    cr_assert_eq(proto_dec_init_keyed(p, len, &ws, &o), PROTO_E_RANGE);
    free(p);
    lb_buf_reset(&b);

    /* keyfile: no key file */
    k.encryption = PROTO_ENC_KEYFILE;
    k.key = NULL;
    k.key_len = 0;
    proto_enc_key_data(&b, &k);
    p = tu_payload(&b, PROTO_T_KEY_DATA, &len);
    cr_assert_eq(len, 1 + 16 + 4);
    cr_assert_eq(proto_dec_key_data(p, len, &o), PROTO_OK);
    cr_assert_eq(o.encryption, PROTO_ENC_KEYFILE);
    cr_assert_null(o.key);
    p[0] = PROTO_ENC_REPOKEY; /* repokey that lost its key file */
    cr_assert_eq(proto_dec_key_data(p, len, &o), PROTO_OK);
    cr_assert_null(o.key);
    lb_store_be32(p + 17, 5); /* neither none nor a key file */
    cr_assert_eq(proto_dec_key_data(p, len, &o), PROTO_E_RANGE);
    free(p);
    lb_buf_free(&b);
}

Test(msg, init_window_sizes)
{
    static const uint32_t good[] = {PROTO_MIN_WINDOW, 1u << 17, 1u << 20,
                                    PROTO_DEFAULT_WINDOW, PROTO_MAX_WINDOW};
    static const uint32_t bad[] = {0,
                                   1,
                                   PROTO_MIN_WINDOW / 2,
                                   PROTO_MAX_WINDOW * 2,
                                   3u << 20,
                                   PROTO_MIN_WINDOW + 1,
                                   0xFFFFFFFFu};

    for (size_t i = 0; i < LB_ARRAY_SIZE(good); i++) {
        struct lb_buf b = {0};
        uint32_t ws = 0;
        size_t len;
        uint8_t *p;
        proto_enc_init(&b, good[i]);
        p = tu_payload(&b, PROTO_T_INIT, &len);
        cr_assert_eq(proto_dec_init(p, len, &ws), PROTO_OK);
        cr_assert_eq(ws, good[i]);
        free(p);
        lb_buf_free(&b);
    }
    for (size_t i = 0; i < LB_ARRAY_SIZE(bad); i++) {
        uint8_t p[4];
        uint32_t ws;
        lb_store_be32(p, bad[i]);
        cr_assert_eq(proto_dec_init(p, 4, &ws), PROTO_E_RANGE, "%u", bad[i]);
        cr_assert_not(proto_window_size_valid(bad[i]));
    }
}

Test(msg, open_modes)
{
    for (unsigned m = 0; m < 256; m++) {
        uint8_t p[1] = {(uint8_t)m}, mode = 99;
        int r = proto_dec_open(p, 1, &mode);
        if (m <= PROTO_OPEN_ADMIN) {
            cr_assert_eq(r, PROTO_OK);
            cr_assert_eq(mode, m);
        } else {
            cr_assert_eq(r, PROTO_E_RANGE, "mode %u", m);
        }
    }
    {
        struct lb_buf b = {0};
        uint8_t mode;
        size_t len;
        uint8_t *p;
        proto_enc_open(&b, PROTO_OPEN_ADMIN);
        p = tu_payload(&b, PROTO_T_OPEN, &len);
        cr_assert_eq(proto_dec_open(p, len, &mode), PROTO_OK);
        cr_assert_eq(mode, PROTO_OPEN_ADMIN);
        free(p);
        lb_buf_free(&b);
    }
}

Test(msg, repo_info_fields_and_reserved_flags)
{
    struct lb_buf b = {0};
    struct proto_repo_info ri = {1,
                                 PROTO_MAX_WINDOW,
                                 PROTO_REPO_F_APPEND_ONLY,
                                 {"abcd", 4}},
                           o;
    size_t len;
    uint8_t *p;

    proto_enc_repo_info(&b, &ri);
    p = tu_payload(&b, PROTO_T_REPO_INFO, &len);
    cr_assert_eq(proto_dec_repo_info(p, len, &o), PROTO_OK);
    cr_assert_eq(o.format_version, 1);
    cr_assert_eq(o.window_size, PROTO_MAX_WINDOW);
    cr_assert_eq(o.flags, PROTO_REPO_F_APPEND_ONLY);
    cr_assert(proto_str_eq(o.repo_id, "abcd"));
    lb_store_be64(p + 8, PROTO_REPO_F_ENCRYPTED);
    cr_assert_eq(proto_dec_repo_info(p, len, &o), PROTO_OK);
    cr_assert_eq(o.flags, PROTO_REPO_F_ENCRYPTED);
    for (int bit = 2; bit < 64; bit++) {
        lb_store_be64(p + 8, 1ull << bit);
        cr_assert_eq(proto_dec_repo_info(p, len, &o), PROTO_E_RESERVED,
                     "flag bit %d", bit);
    }
    lb_store_be64(p + 8, 0);
    cr_assert_eq(proto_dec_repo_info(p, len, &o), PROTO_OK);
    lb_store_be32(p + 4, 12345);
    cr_assert_eq(proto_dec_repo_info(p, len, &o), PROTO_E_RANGE);
    free(p);
    lb_buf_free(&b);
}

/* ---- single strings ------------------------------------------------------ */

Test(msg, str_frames)
{
    static const uint16_t types[] = {PROTO_T_LIST, PROTO_T_GET_MANIFEST,
                                     PROTO_T_DELETE};

    for (size_t i = 0; i < LB_ARRAY_SIZE(types); i++) {
        struct lb_buf b = {0};
        struct proto_str s;
        size_t len;
        uint8_t *p;

        proto_enc_str(&b, types[i], "web 1");
        p = tu_payload(&b, types[i], &len);
        cr_assert_eq(proto_dec_str(p, len, &s), PROTO_OK);
        cr_assert(proto_str_eq(s, "web 1"));
        p[3] = '\0';
        cr_assert_eq(proto_dec_str(p, len, &s), PROTO_E_STRING);
        p[3] = '\r';
        cr_assert_eq(proto_dec_str(p, len, &s), PROTO_E_STRING);
        free(p);
        lb_buf_free(&b);
    }
    {
        struct lb_buf b = {0};
        struct proto_str s;
        size_t len;
        uint8_t *p;
        proto_enc_str(&b, PROTO_T_LIST, NULL);
        p = tu_payload(&b, PROTO_T_LIST, &len);
        cr_assert_eq(len, 2);
        cr_assert_eq(proto_dec_str(p, len, &s), PROTO_OK);
        cr_assert_eq(s.len, 0, "NULL encodes as \"\"");
        free(p);
        lb_buf_free(&b);
    }
}

/* ---- KV frames ----------------------------------------------------------- */

Test(msg, kv_frames_round_trip)
{
    static const uint16_t types[] = {
        PROTO_T_LIST_ENTRY, PROTO_T_DISK_END, PROTO_T_COMMIT,
        PROTO_T_COMMITTED,  PROTO_T_VERIFY,   PROTO_T_VERIFY_EVENT,
        PROTO_T_VERIFY_END, PROTO_T_PRUNE,    PROTO_T_PRUNE_ENTRY,
        PROTO_T_GC,         PROTO_T_GC_END,   PROTO_T_BRIDGE,
    };

    for (size_t i = 0; i < LB_ARRAY_SIZE(types); i++) {
        struct lb_buf b = {0};
        struct proto_kv kv = {0}, o;
        size_t len;
        uint8_t *p;

        sample_kv(&kv);
        proto_kv_set(&kv, "type", proto_type_name(types[i]));
        proto_enc_kv(&b, types[i], &kv);
        p = tu_payload(&b, types[i], &len);
        cr_assert_eq(proto_dec_kv(p, len, &o), PROTO_OK);
        cr_assert_eq(o.n, 4);
        cr_assert_str_eq(proto_kv_get(&o, "type"), proto_type_name(types[i]));
        cr_assert_str_eq(proto_kv_get(&o, "consistency"), "fs-frozen");
        proto_kv_free(&o);
        proto_kv_free(&kv);
        free(p);
        lb_buf_free(&b);
    }
}

/* ---- BACKUP_BEGIN, BACKUP_STARTED ---------------------------------------- */

Test(msg, backup_begin_fields)
{
    struct lb_buf b = {0};
    struct proto_kv kv = {0};
    struct proto_backup_begin o;
    size_t len;
    uint8_t *p;

    sample_kv(&kv);
    proto_enc_backup_begin(&b, "web 1", "", &kv);
    p = tu_payload(&b, PROTO_T_BACKUP_BEGIN, &len);
    cr_assert_eq(proto_dec_backup_begin(p, len, &o), PROTO_OK);
    cr_assert(proto_str_eq(o.name, "web 1"));
    cr_assert_eq(o.parent.len, 0);
    cr_assert_eq(o.meta.n, 3);
    cr_assert_str_eq(proto_kv_get(&o.meta, "kind"), "full");
    proto_kv_free(&o.meta);
    free(p);
    lb_buf_free(&b);
    proto_kv_free(&kv);
}

Test(msg, backup_begin_rejects_bad_names)
{
    static const struct {
        const char *name, *parent;
        int want;
    } cases[] = {
        {"", "", PROTO_E_STRING},
        {".", "", PROTO_E_STRING},
        {"..", "", PROTO_E_STRING},
        {"a/b", "", PROTO_E_STRING},
        {"/abs", "", PROTO_E_STRING},
        {"ok", "../x", PROTO_E_STRING},
        {"ok", "/abs", PROTO_E_STRING},
        {"ok", "20261123-114600-ABCD", PROTO_E_STRING},
        {"ok", "20261123-114600-abcd0", PROTO_E_STRING},
        {"ok", "20261123-114600-abcd", PROTO_OK},
    };
    struct proto_kv kv = {0};

    for (size_t i = 0; i < LB_ARRAY_SIZE(cases); i++) {
        struct lb_buf b = {0};
        struct proto_backup_begin o;
        size_t len;
        uint8_t *p;
        int r;

        proto_enc_backup_begin(&b, cases[i].name, cases[i].parent, &kv);
        p = tu_payload(&b, PROTO_T_BACKUP_BEGIN, &len);
        r = proto_dec_backup_begin(p, len, &o);
        cr_assert_eq(r, cases[i].want, "'%s' '%s'", cases[i].name,
                     cases[i].parent);
        if (r == PROTO_OK)
            proto_kv_free(&o.meta);
        else
            cr_assert_null(o.meta.e, "nothing allocated on error");
        free(p);
        lb_buf_free(&b);
    }
    {
        /* A 201-byte name. */
        char n[202];
        struct lb_buf b = {0};
        struct proto_backup_begin o;
        size_t len;
        uint8_t *p;
        memset(n, 'n', 201);
        n[201] = '\0';
        proto_enc_backup_begin(&b, n, "", &kv);
        p = tu_payload(&b, PROTO_T_BACKUP_BEGIN, &len);
        cr_assert_eq(proto_dec_backup_begin(p, len, &o), PROTO_E_STRING);
        free(p);
        lb_buf_free(&b);
    }
}

Test(msg, backup_started_fields)
{
    struct lb_buf b = {0};
    struct proto_str id, parent;
    size_t len;
    uint8_t *p;

    proto_enc_backup_started(&b, "20261124-000000-0001", "");
    p = tu_payload(&b, PROTO_T_BACKUP_STARTED, &len);
    cr_assert_eq(proto_dec_backup_started(p, len, &id, &parent), PROTO_OK);
    cr_assert(proto_str_eq(id, "20261124-000000-0001"));
    cr_assert_eq(parent.len, 0);
    free(p);
    lb_buf_reset(&b);

    proto_enc_backup_started(&b, "", "");
    p = tu_payload(&b, PROTO_T_BACKUP_STARTED, &len);
    cr_assert_eq(proto_dec_backup_started(p, len, &id, &parent), PROTO_E_STRING,
                 "an id is required");
    free(p);
    lb_buf_reset(&b);

    proto_enc_backup_started(&b, "20261124-000000-0001", "../x");
    p = tu_payload(&b, PROTO_T_BACKUP_STARTED, &len);
    cr_assert_eq(proto_dec_backup_started(p, len, &id, &parent),
                 PROTO_E_STRING);
    free(p);
    lb_buf_free(&b);
}

Test(msg, import_refuses_a_bad_id_and_chunk_bad_an_unknown_reason)
{
    struct lb_buf b = {0};
    struct proto_kv kv = {0};
    struct proto_import im;
    struct proto_digest d = tu_digest(5), got;
    struct proto_str msg;
    uint8_t reason, *p;
    size_t len;

    proto_enc_import(&b, "not-an-id", "web1", "", &kv);
    p = tu_payload(&b, PROTO_T_IMPORT, &len);
    cr_assert_eq(proto_dec_import(p, len, &im), PROTO_E_STRING);
    free(p);
    lb_buf_reset(&b);
    proto_enc_import(&b, "20261123-120000-beef", "", "", &kv);
    p = tu_payload(&b, PROTO_T_IMPORT, &len);
    cr_assert_eq(proto_dec_import(p, len, &im), PROTO_E_STRING);
    free(p);
    lb_buf_reset(&b);
    proto_enc_chunk_bad(&b, &d, 3, "?");
    p = tu_payload(&b, PROTO_T_CHUNK_BAD, &len);
    cr_assert_eq(proto_dec_chunk_bad(p, len, &got, &reason, &msg),
                 PROTO_E_RANGE);
    free(p);
    lb_buf_reset(&b);
    proto_enc_chunk_bad(&b, &d, PROTO_CHUNK_MISSING, "gone");
    p = tu_payload(&b, PROTO_T_CHUNK_BAD, &len);
    cr_assert_eq(proto_dec_chunk_bad(p, len, &got, &reason, &msg), PROTO_OK);
    cr_assert_eq(reason, PROTO_CHUNK_MISSING);
    cr_assert_eq(memcmp(got.b, d.b, sizeof d.b), 0);
    cr_assert_eq(msg.len, 4);
    free(p);
    lb_buf_free(&b);
}

Test(msg, a_repokey_init_brings_its_key_file)
{
    struct lb_buf b = {0};
    struct proto_key_info k = {PROTO_ENC_REPOKEY, {7}, NULL, 0}, got;
    uint32_t ws;
    uint8_t *p;
    size_t len;

    /* KEY_DATA may say a repokey repository lost its key file... */
    proto_enc_key_data(&b, &k);
    p = tu_payload(&b, PROTO_T_KEY_DATA, &len);
    cr_assert_eq(proto_dec_key_data(p, len, &got), PROTO_OK);
    free(p);
    lb_buf_reset(&b);
    /* ...an INIT of a repokey repository must bring it (found by
     * fuzz_frame: the decoder took one without). */
    proto_enc_init_keyed(&b, PROTO_DEFAULT_WINDOW, &k);
    p = tu_payload(&b, PROTO_T_INIT, &len);
    cr_assert_eq(proto_dec_init_keyed(p, len, &ws, &got), PROTO_E_RANGE);
    free(p);
    lb_buf_free(&b);
}
