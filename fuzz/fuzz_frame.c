/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target: a frame header (proto_hdr_decode) followed by its
 * payload (the rest of the input), decoded by the decoder a receiver would
 * pick for the frame's type.
 *
 * Oracle beyond "no crash, no leak": decoding is strict, so every payload
 * that decodes must re-encode to exactly the same bytes, and a header that
 * decodes must re-encode to itself.
 */
#include "fuzz/fuzz.h"
#include "proto/crypt.h"

#include <string.h>

/* A NUL-terminated copy of a decoded string view (no NUL inside). */
static char *
cstr(struct proto_str s)
{
    char *c = lb_xmalloc((size_t)s.len + 1);

    CHECK(proto_str_copy(c, (size_t)s.len + 1, s));
    CHECK(strlen(c) == s.len);
    return c;
}

/* The re-encoded frame's payload must equal the input payload. */
static void
same(struct lb_buf *b, const uint8_t *p, size_t len)
{
    struct proto_hdr h;

    CHECK(proto_hdr_decode(b->data, b->len, &h) == PROTO_OK);
    CHECK(h.len == len && b->len == PROTO_HDR_SIZE + len);
    CHECK(len == 0 || memcmp(b->data + PROTO_HDR_SIZE, p, len) == 0);
}

static void
windows(struct lb_buf *b, const uint8_t *p, size_t len)
{
    struct proto_rd pr;
    struct proto_window_rec r;
    uint32_t count, seen = 0;
    size_t f, at;
    int st;

    if (proto_dec_windows_init(&pr, p, len, &count) != PROTO_OK)
        return;
    f = proto_frame_begin(b, PROTO_T_WINDOWS);
    at = proto_enc_windows_start(b);
    while ((st = proto_dec_window_next(&pr, &r)) == 1) {
        CHECK(r.op == PROTO_WIN_SET || r.op == PROTO_WIN_PUSH);
        CHECK(r.n <= PROTO_MAX_STACK);
        proto_enc_window_rec(b, &r);
        seen++;
    }
    if (st == 0 && seen == count) {
        proto_enc_windows_finish(b, at, count);
        proto_frame_end(b, f);
        same(b, p, len);
    }
}

static void
kv_frame(struct lb_buf *b, uint16_t type, const uint8_t *p, size_t len)
{
    struct proto_kv kv;

    if (proto_dec_kv(p, len, &kv) != PROTO_OK)
        return;
    CHECK(kv.n <= PROTO_MAX_KV);
    for (size_t i = 0; i < kv.n; i++) {
        CHECK(proto_kv_key_valid(kv.e[i].key, strlen(kv.e[i].key)));
        CHECK(proto_kv_get(&kv, kv.e[i].key) == kv.e[i].val);
    }
    proto_enc_kv(b, type, &kv);
    same(b, p, len);
    proto_kv_free(&kv);
}

static void
decode(struct lb_buf *b, uint16_t type, const uint8_t *p, size_t len)
{
    switch (type) {
    case PROTO_T_HELLO:
    case PROTO_T_HELLO_REPLY: {
        struct proto_hello h;
        if (proto_dec_hello(p, len, &h) != PROTO_OK)
            return;
        CHECK(h.version_min >= 1 && h.version_min <= h.version_max);
        proto_enc_hello(b, type, &h);
        same(b, p, len);
        return;
    }
    case PROTO_T_ERROR: {
        struct proto_error e;
        char *msg, *hint;
        if (proto_dec_error(p, len, &e) != PROTO_OK)
            return;
        CHECK(e.code >= 1 && e.code <= PROTO_ERR_MAX);
        msg = cstr(e.msg);
        hint = cstr(e.hint);
        (void)proto_err_name(e.code);
        proto_enc_error(b, e.code, msg, hint);
        same(b, p, len);
        free(msg);
        free(hint);
        return;
    }
    case PROTO_T_OK:
    case PROTO_T_LIST_END:
    case PROTO_T_MANIFEST_END: {
        uint64_t v;
        if (proto_dec_u64(p, len, &v) != PROTO_OK)
            return;
        proto_enc_u64(b, type, v);
        same(b, p, len);
        return;
    }
    case PROTO_T_INIT: {
        uint32_t ws;
        struct proto_key_info k;
        if (proto_dec_init_keyed(p, len, &ws, &k) != PROTO_OK) {
            CHECK(proto_dec_init(p, len, &ws) != PROTO_OK);
            return;
        }
        CHECK(proto_window_size_valid(ws));
        if (k.encryption == PROTO_ENC_NONE) {
            CHECK(proto_dec_init(p, len, &ws) == PROTO_OK);
            proto_enc_init(b, ws);
        } else {
            CHECK(k.key_len ==
                  (k.encryption == PROTO_ENC_REPOKEY ? PROTO_KEYFILE_LEN : 0));
            proto_enc_init_keyed(b, ws, &k);
        }
        same(b, p, len);
        return;
    }
    case PROTO_T_KEY_DATA: {
        struct proto_key_info k;
        if (proto_dec_key_data(p, len, &k) != PROTO_OK)
            return;
        proto_enc_key_data(b, &k);
        same(b, p, len);
        return;
    }
    case PROTO_T_KEY_SET: {
        /* What a server does with it: a key file's layout. */
        struct proto_keyfile kf;
        uint8_t out[PROTO_KEYFILE_LEN];
        size_t f;
        if (proto_keyfile_decode(p, len, &kf) != PROTO_OK)
            return;
        CHECK(len == PROTO_KEYFILE_LEN);
        proto_keyfile_encode(out, &kf);
        f = proto_frame_begin(b, type);
        lb_buf_append(b, out, sizeof out);
        proto_frame_end(b, f);
        same(b, p, len);
        return;
    }
    case PROTO_T_SEAL: {
        const uint8_t *mac;
        if (proto_dec_seal(p, len, &mac) != PROTO_OK)
            return;
        proto_enc_seal(b, mac);
        same(b, p, len);
        return;
    }
    case PROTO_T_OPEN: {
        uint8_t mode;
        if (proto_dec_open(p, len, &mode) != PROTO_OK)
            return;
        proto_enc_open(b, mode);
        same(b, p, len);
        return;
    }
    case PROTO_T_REPO_INFO: {
        struct proto_repo_info ri;
        if (proto_dec_repo_info(p, len, &ri) != PROTO_OK)
            return;
        proto_enc_repo_info(b, &ri);
        same(b, p, len);
        return;
    }
    case PROTO_T_WAITING: {
        struct proto_waiting w;
        if (proto_dec_waiting(p, len, &w) != PROTO_OK)
            return;
        proto_enc_waiting(b, &w);
        same(b, p, len);
        return;
    }
    case PROTO_T_LIST:
    case PROTO_T_GET_MANIFEST:
    case PROTO_T_DELETE: {
        struct proto_str s;
        char *c;
        if (proto_dec_str(p, len, &s) != PROTO_OK)
            return;
        c = cstr(s);
        /* What a server does with it next. */
        (void)proto_name_valid(s.p, s.len);
        (void)proto_backup_id_valid(s.p, s.len);
        proto_enc_str(b, type, c);
        same(b, p, len);
        free(c);
        return;
    }
    case PROTO_T_BACKUP_BEGIN: {
        struct proto_backup_begin bb;
        char *name, *parent;
        if (proto_dec_backup_begin(p, len, &bb) != PROTO_OK)
            return;
        CHECK(proto_name_valid(bb.name.p, bb.name.len));
        name = cstr(bb.name);
        parent = cstr(bb.parent);
        proto_enc_backup_begin(b, name, parent, &bb.meta);
        same(b, p, len);
        proto_kv_free(&bb.meta);
        free(name);
        free(parent);
        return;
    }
    case PROTO_T_IMPORT: {
        struct proto_import im;
        char *id, *name, *parent;
        if (proto_dec_import(p, len, &im) != PROTO_OK)
            return;
        CHECK(proto_backup_id_valid(im.id.p, im.id.len));
        CHECK(proto_name_valid(im.b.name.p, im.b.name.len));
        id = cstr(im.id);
        name = cstr(im.b.name);
        parent = cstr(im.b.parent);
        proto_enc_import(b, id, name, parent, &im.b.meta);
        same(b, p, len);
        proto_kv_free(&im.b.meta);
        free(id);
        free(name);
        free(parent);
        return;
    }
    case PROTO_T_CHUNK_BAD: {
        struct proto_digest d;
        struct proto_str msg;
        uint8_t reason;
        char *m;
        if (proto_dec_chunk_bad(p, len, &d, &reason, &msg) != PROTO_OK)
            return;
        CHECK(reason == PROTO_CHUNK_MISSING || reason == PROTO_CHUNK_DAMAGED);
        m = cstr(msg);
        proto_enc_chunk_bad(b, &d, reason, m);
        same(b, p, len);
        free(m);
        return;
    }
    case PROTO_T_BACKUP_STARTED: {
        struct proto_str id, parent;
        char *i, *pa;
        if (proto_dec_backup_started(p, len, &id, &parent) != PROTO_OK)
            return;
        CHECK(proto_backup_id_valid(id.p, id.len));
        i = cstr(id);
        pa = cstr(parent);
        proto_enc_backup_started(b, i, pa);
        same(b, p, len);
        free(i);
        free(pa);
        return;
    }
    case PROTO_T_DISK_BEGIN: {
        struct proto_disk_begin db;
        char *disk;
        if (proto_dec_disk_begin(p, len, &db) != PROTO_OK)
            return;
        CHECK(proto_disk_name_valid(db.disk.p, db.disk.len));
        CHECK(db.size >= 1 && db.size <= PROTO_MF_MAX_SIZE);
        disk = cstr(db.disk);
        proto_enc_disk_begin(b, disk, db.size, db.mode, &db.meta);
        same(b, p, len);
        proto_kv_free(&db.meta);
        free(disk);
        return;
    }
    case PROTO_T_DISK_READY: {
        uint64_t nw;
        uint32_t ws;
        if (proto_dec_disk_ready(p, len, &nw, &ws) != PROTO_OK)
            return;
        proto_enc_disk_ready(b, nw, ws);
        same(b, p, len);
        return;
    }
    case PROTO_T_DEPTHS: {
        uint64_t first;
        const uint8_t *d;
        size_t n;
        if (proto_dec_depths(p, len, &first, &d, &n) != PROTO_OK)
            return;
        for (size_t i = 0; i < n; i++)
            CHECK(d[i] <= PROTO_MAX_STACK);
        proto_enc_depths(b, first, d, n);
        same(b, p, len);
        return;
    }
    case PROTO_T_QUERY:
    case PROTO_T_GET_CHUNKS:
    case PROTO_T_GET_STORED: {
        const uint8_t *d;
        struct proto_digest *dg;
        uint32_t n;
        if (proto_dec_query(p, len, &d, &n) != PROTO_OK)
            return;
        CHECK(n >= 1 && n <= PROTO_MAX_QUERY);
        dg = lb_xmalloc((size_t)n * sizeof *dg);
        memcpy(dg, d, (size_t)n * PROTO_DIGEST_LEN);
        proto_enc_query(b, type, dg, n);
        same(b, p, len);
        free(dg);
        return;
    }
    case PROTO_T_HAVE: {
        const uint8_t *bits;
        uint32_t n;
        if (proto_dec_have(p, len, &bits, &n) != PROTO_OK)
            return;
        proto_enc_have(b, bits, n);
        same(b, p, len);
        return;
    }
    case PROTO_T_CHUNK:
    case PROTO_T_CHUNK_DATA: {
        struct proto_chunk c, head;
        /* A relay's head-only decode agrees with the whole decode. */
        int hs = len >= PROTO_CHUNK_HDR
                     ? proto_dec_chunk_head(p, len, (uint32_t)len, &head)
                     : PROTO_E_TRUNCATED;
        if (proto_dec_chunk(p, len, &c) != PROTO_OK)
            return;
        CHECK(hs == PROTO_OK && !head.data && head.data_len == c.data_len &&
              head.raw_len == c.raw_len && head.type == c.type &&
              head.comp == c.comp &&
              memcmp(head.d.b, c.d.b, PROTO_DIGEST_LEN) == 0);
        CHECK(c.raw_len >= 1 && c.raw_len <= PROTO_MAX_CHUNK_RAW);
        CHECK(c.data_len >= 1 && c.data == p + PROTO_CHUNK_HDR);
        CHECK(c.comp != PROTO_COMP_SEALED ||
              (c.data_len >= PROTO_SEALED_MIN &&
               c.data_len <= PROTO_SEALED_MAX(c.raw_len)));
        proto_enc_chunk(b, type, &c);
        same(b, p, len);
        return;
    }
    case PROTO_T_WINDOWS:
        windows(b, p, len);
        return;
    case PROTO_T_ABORT:
    case PROTO_T_KEY_GET:
    case PROTO_T_WORKING:
        if (len == 0) {
            proto_enc_empty(b, type);
            same(b, p, len);
        }
        return;
    case PROTO_T_MANIFEST_DATA:
        return; /* raw bytes: fuzz_manifest reads manifests */
    default:
        kv_frame(b, type, p, len);
        return;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lb_buf b = {0};
    struct proto_hdr h;
    uint8_t hdr[PROTO_HDR_SIZE];
    int st = proto_hdr_decode(data, size, &h);

    (void)proto_status_str(st);
    if (st > 0) {
        CHECK(size < PROTO_HDR_SIZE && (size_t)st == PROTO_HDR_SIZE - size);
        return 0;
    }
    if (st != PROTO_OK)
        return 0;
    CHECK(proto_type_known(h.type) && proto_type_name(h.type) != NULL);
    CHECK(h.flags == 0 && h.len <= PROTO_MAX_PAYLOAD);
    proto_hdr_encode(hdr, h.type, h.len);
    CHECK(memcmp(hdr, data, PROTO_HDR_SIZE) == 0);
    /* The payload is the rest of the input, whatever the length field says:
     * decoders must be safe on any length. Re-encoding needs it to fit a
     * frame. */
    if (size - PROTO_HDR_SIZE <= PROTO_MAX_PAYLOAD)
        decode(&b, h.type, data + PROTO_HDR_SIZE, size - PROTO_HDR_SIZE);
    lb_buf_free(&b);
    return 0;
}
