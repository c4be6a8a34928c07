/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Message payloads (PROTOCOL.md, "Messages"): one encoder and one pure
 * decoder per layout. Decoders check every length before use, reject
 * reserved fields that are not zero and trailing bytes.
 */
#include "proto/crypt.h"

#include <string.h>

static const char *const err_names[PROTO_ERR_MAX + 1] = {
    [PROTO_ERR_PROTOCOL] = "protocol error",
    [PROTO_ERR_VERSION] = "version mismatch",
    [PROTO_ERR_NO_REPO] = "no repository",
    [PROTO_ERR_LOCKED] = "repository locked",
    [PROTO_ERR_NOT_FOUND] = "not found",
    [PROTO_ERR_NO_SPACE] = "no space left",
    [PROTO_ERR_IO] = "I/O error",
    [PROTO_ERR_CORRUPT] = "repository damaged",
    [PROTO_ERR_INVALID] = "invalid request",
    [PROTO_ERR_EXISTS] = "already exists",
    [PROTO_ERR_DENIED] = "not permitted",
    [PROTO_ERR_INTERNAL] = "internal error",
    [PROTO_ERR_REPO_VERSION] = "repository format too new",
    [PROTO_ERR_NOT_EMPTY] = "directory not empty",
    [PROTO_ERR_BUSY] = "repository busy",
};

const char *
proto_err_name(uint32_t code)
{
    if (code == 0 || code > PROTO_ERR_MAX)
        return "unknown error";
    return err_names[code];
}

static void
put_str(struct lb_buf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n > UINT16_MAX)
        n = UINT16_MAX;
    lb_buf_put_str16(b, s ? s : "", n);
}

/* ---- HELLO --------------------------------------------------------------- */

void
proto_enc_hello(struct lb_buf *b, uint16_t type, const struct proto_hello *h)
{
    size_t f = proto_frame_begin(b, type);

    lb_buf_put_be16(b, h->version_min);
    lb_buf_put_be16(b, h->version_max);
    lb_buf_put_be64(b, h->features);
    lb_buf_put_str16(b, h->software.p, h->software.len);
    proto_frame_end(b, f);
}

int
proto_dec_hello(const uint8_t *p, size_t len, struct proto_hello *out)
{
    struct proto_rd pr;

    proto_rd_init(&pr, p, len);
    out->version_min = proto_rd_be16(&pr);
    out->version_max = proto_rd_be16(&pr);
    out->features = proto_rd_be64(&pr);
    out->software = proto_rd_str16(&pr);
    if (!pr.err &&
        (out->version_min == 0 || out->version_min > out->version_max))
        return PROTO_E_RANGE;
    return proto_rd_done(&pr);
}

uint16_t
proto_hello_negotiate(const struct proto_hello *offer, uint16_t my_min,
                      uint16_t my_max, uint64_t my_features,
                      struct proto_hello *reply)
{
    uint16_t hi = LB_MIN(offer->version_max, my_max);
    uint16_t lo = LB_MAX(offer->version_min, my_min);

    if (lo > hi || hi == 0)
        return 0;
    memset(reply, 0, sizeof *reply);
    reply->version_min = reply->version_max = hi;
    reply->features = offer->features & my_features;
    return hi;
}

int
proto_hello_check_reply(const struct proto_hello *reply, uint16_t my_min,
                        uint16_t my_max, uint64_t offered)
{
    if (reply->version_min != reply->version_max ||
        reply->version_min < my_min || reply->version_min > my_max)
        return PROTO_E_RANGE;
    if (reply->features & ~offered)
        return PROTO_E_RESERVED;
    return PROTO_OK;
}

/* ---- ERROR, OK ----------------------------------------------------------- */

void
proto_enc_error(struct lb_buf *b, uint32_t code, const char *msg,
                const char *hint)
{
    size_t f = proto_frame_begin(b, PROTO_T_ERROR);

    lb_buf_put_be32(b, code);
    put_str(b, msg);
    put_str(b, hint);
    proto_frame_end(b, f);
}

int
proto_dec_error(const uint8_t *p, size_t len, struct proto_error *out)
{
    struct proto_rd pr;

    proto_rd_init(&pr, p, len);
    out->code = proto_rd_be32(&pr);
    out->msg = proto_rd_str16(&pr);
    out->hint = proto_rd_str16(&pr);
    if (!pr.err && (out->code == 0 || out->code > PROTO_ERR_MAX))
        return PROTO_E_RANGE;
    return proto_rd_done(&pr);
}

void
proto_enc_u64(struct lb_buf *b, uint16_t type, uint64_t value)
{
    size_t f = proto_frame_begin(b, type);

    lb_buf_put_be64(b, value);
    proto_frame_end(b, f);
}

int
proto_dec_u64(const uint8_t *p, size_t len, uint64_t *value)
{
    struct proto_rd pr;

    proto_rd_init(&pr, p, len);
    *value = proto_rd_be64(&pr);
    return proto_rd_done(&pr);
}

void
proto_enc_empty(struct lb_buf *b, uint16_t type)
{
    proto_frame_end(b, proto_frame_begin(b, type));
}

/* ---- INIT, OPEN, REPO_INFO ----------------------------------------------- */

void
proto_enc_init(struct lb_buf *b, uint32_t window_size)
{
    size_t f = proto_frame_begin(b, PROTO_T_INIT);

    lb_buf_put_be32(b, window_size);
    proto_frame_end(b, f);
}

int
proto_dec_init(const uint8_t *p, size_t len, uint32_t *window_size)
{
    struct proto_rd pr;

    proto_rd_init(&pr, p, len);
    *window_size = proto_rd_be32(&pr);
    if (!pr.err && !proto_window_size_valid(*window_size))
        return PROTO_E_RANGE;
    return proto_rd_done(&pr);
}

/* The key fields of INIT and KEY_DATA, after what precedes them. */
static void
enc_key_info(struct lb_buf *b, const struct proto_key_info *k)
{
    lb_buf_put_u8(b, k->encryption);
    lb_buf_append(b, k->key_id, sizeof k->key_id);
    lb_buf_put_be32(b, k->key_len);
    if (k->key_len)
        lb_buf_append(b, k->key, k->key_len);
}

static int
dec_key_info(struct proto_rd *pr, struct proto_key_info *k)
{
    const uint8_t *id;

    k->encryption = proto_rd_u8(pr);
    id = proto_rd_bytes(pr, sizeof k->key_id);
    k->key_len = proto_rd_be32(pr);
    if (pr->err)
        return pr->err;
    memcpy(k->key_id, id, sizeof k->key_id);
    /* A repokey repository hands out its key file (none: it lost it); a
     * keyfile one none. */
    if ((k->encryption == PROTO_ENC_REPOKEY && k->key_len != 0 &&
         k->key_len != PROTO_KEYFILE_LEN) ||
        (k->encryption == PROTO_ENC_KEYFILE && k->key_len != 0) ||
        (k->encryption != PROTO_ENC_REPOKEY &&
         k->encryption != PROTO_ENC_KEYFILE))
        return PROTO_E_RANGE;
    k->key = k->key_len ? proto_rd_bytes(pr, k->key_len) : NULL;
    return proto_rd_done(pr);
}

void
proto_enc_init_keyed(struct lb_buf *b, uint32_t window_size,
                     const struct proto_key_info *k)
{
    size_t f = proto_frame_begin(b, PROTO_T_INIT);

    lb_buf_put_be32(b, window_size);
    enc_key_info(b, k);
    proto_frame_end(b, f);
}

int
proto_dec_init_keyed(const uint8_t *p, size_t len, uint32_t *window_size,
                     struct proto_key_info *k)
{
    struct proto_rd pr;
    int r;

    memset(k, 0, sizeof *k);
    proto_rd_init(&pr, p, len);
    *window_size = proto_rd_be32(&pr);
    if (!pr.err && !proto_window_size_valid(*window_size))
        return PROTO_E_RANGE;
    if (pr.err || proto_rd_left(&pr) == 0)
        return proto_rd_done(&pr);
    r = dec_key_info(&pr, k);
    /* KEY_DATA's repokey may have lost its key file; INIT's brings it. */
    if (r == PROTO_OK && k->encryption == PROTO_ENC_REPOKEY &&
        k->key_len != PROTO_KEYFILE_LEN)
        return PROTO_E_RANGE;
    return r;
}

void
proto_enc_key_data(struct lb_buf *b, const struct proto_key_info *k)
{
    size_t f = proto_frame_begin(b, PROTO_T_KEY_DATA);

    enc_key_info(b, k);
    proto_frame_end(b, f);
}

int
proto_dec_key_data(const uint8_t *p, size_t len, struct proto_key_info *k)
{
    struct proto_rd pr;

    memset(k, 0, sizeof *k);
    proto_rd_init(&pr, p, len);
    return dec_key_info(&pr, k);
}

void
proto_enc_seal(struct lb_buf *b, const uint8_t *mac)
{
    size_t f = proto_frame_begin(b, PROTO_T_SEAL);

    lb_buf_append(b, mac, PROTO_SEAL_MAC_LEN);
    proto_frame_end(b, f);
}

int
proto_dec_seal(const uint8_t *p, size_t len, const uint8_t **mac)
{
    struct proto_rd pr;

    proto_rd_init(&pr, p, len);
    *mac = proto_rd_bytes(&pr, PROTO_SEAL_MAC_LEN);
    return proto_rd_done(&pr);
}

void
proto_enc_open(struct lb_buf *b, uint8_t mode)
{
    size_t f = proto_frame_begin(b, PROTO_T_OPEN);

    lb_buf_put_u8(b, mode);
    proto_frame_end(b, f);
}

int
proto_dec_open(const uint8_t *p, size_t len, uint8_t *mode)
{
    struct proto_rd pr;

    proto_rd_init(&pr, p, len);
    *mode = proto_rd_u8(&pr);
    if (!pr.err && *mode > PROTO_OPEN_ADMIN)
        return PROTO_E_RANGE;
    return proto_rd_done(&pr);
}

void
proto_enc_repo_info(struct lb_buf *b, const struct proto_repo_info *ri)
{
    size_t f = proto_frame_begin(b, PROTO_T_REPO_INFO);

    lb_buf_put_be32(b, ri->format_version);
    lb_buf_put_be32(b, ri->window_size);
    lb_buf_put_be64(b, ri->flags);
    lb_buf_put_str16(b, ri->repo_id.p, ri->repo_id.len);
    proto_frame_end(b, f);
}

int
proto_dec_repo_info(const uint8_t *p, size_t len, struct proto_repo_info *out)
{
    struct proto_rd pr;

    proto_rd_init(&pr, p, len);
    out->format_version = proto_rd_be32(&pr);
    out->window_size = proto_rd_be32(&pr);
    out->flags = proto_rd_be64(&pr);
    out->repo_id = proto_rd_str16(&pr);
    if (pr.err)
        return pr.err;
    if (!proto_window_size_valid(out->window_size))
        return PROTO_E_RANGE;
    if (out->flags & ~(PROTO_REPO_F_APPEND_ONLY | PROTO_REPO_F_ENCRYPTED))
        return PROTO_E_RESERVED;
    return proto_rd_done(&pr);
}

void
proto_enc_waiting(struct lb_buf *b, const struct proto_waiting *w)
{
    size_t f = proto_frame_begin(b, PROTO_T_WAITING);

    lb_buf_put_be32(b, w->ahead);
    lb_buf_put_be32(b, w->wait);
    proto_frame_end(b, f);
}

int
proto_dec_waiting(const uint8_t *p, size_t len, struct proto_waiting *out)
{
    struct proto_rd pr;

    proto_rd_init(&pr, p, len);
    out->ahead = proto_rd_be32(&pr);
    out->wait = proto_rd_be32(&pr);
    if (pr.err)
        return pr.err;
    return proto_rd_done(&pr);
}

/* ---- one string, one KV list --------------------------------------------- */

void
proto_enc_str(struct lb_buf *b, uint16_t type, const char *s)
{
    size_t f = proto_frame_begin(b, type);

    put_str(b, s);
    proto_frame_end(b, f);
}

int
proto_dec_str(const uint8_t *p, size_t len, struct proto_str *out)
{
    struct proto_rd pr;

    proto_rd_init(&pr, p, len);
    *out = proto_rd_str16(&pr);
    return proto_rd_done(&pr);
}

void
proto_enc_kv(struct lb_buf *b, uint16_t type, const struct proto_kv *kv)
{
    size_t f = proto_frame_begin(b, type);

    proto_kv_encode(b, kv);
    proto_frame_end(b, f);
}

int
proto_dec_kv(const uint8_t *p, size_t len, struct proto_kv *out)
{
    struct proto_rd pr;
    int r;

    proto_rd_init(&pr, p, len);
    r = proto_kv_decode(&pr, out);
    if (r != PROTO_OK)
        return r;
    r = proto_rd_done(&pr);
    if (r != PROTO_OK)
        proto_kv_free(out);
    return r;
}

/* ---- backups ------------------------------------------------------------- */

void
proto_enc_backup_begin(struct lb_buf *b, const char *name, const char *parent,
                       const struct proto_kv *meta)
{
    size_t f = proto_frame_begin(b, PROTO_T_BACKUP_BEGIN);

    put_str(b, name);
    put_str(b, parent);
    proto_kv_encode(b, meta);
    proto_frame_end(b, f);
}

int
proto_dec_backup_begin(const uint8_t *p, size_t len,
                       struct proto_backup_begin *out)
{
    struct proto_rd pr;
    int r;

    memset(out, 0, sizeof *out);
    proto_rd_init(&pr, p, len);
    out->name = proto_rd_str16(&pr);
    out->parent = proto_rd_str16(&pr);
    if (pr.err)
        return pr.err;
    if (!proto_name_valid(out->name.p, out->name.len))
        return PROTO_E_STRING;
    if (out->parent.len &&
        !proto_backup_id_valid(out->parent.p, out->parent.len))
        return PROTO_E_STRING;
    r = proto_kv_decode(&pr, &out->meta);
    if (r != PROTO_OK)
        return r;
    r = proto_rd_done(&pr);
    if (r != PROTO_OK)
        proto_kv_free(&out->meta);
    return r;
}

void
proto_enc_import(struct lb_buf *b, const char *id, const char *name,
                 const char *parent, const struct proto_kv *meta)
{
    size_t f = proto_frame_begin(b, PROTO_T_IMPORT);

    put_str(b, id);
    put_str(b, name);
    put_str(b, parent);
    proto_kv_encode(b, meta);
    proto_frame_end(b, f);
}

int
proto_dec_import(const uint8_t *p, size_t len, struct proto_import *out)
{
    struct proto_rd pr;
    size_t off;

    memset(out, 0, sizeof *out);
    proto_rd_init(&pr, p, len);
    out->id = proto_rd_str16(&pr);
    if (pr.err)
        return pr.err;
    if (!proto_backup_id_valid(out->id.p, out->id.len))
        return PROTO_E_STRING;
    off = 2 + (size_t)out->id.len;
    return proto_dec_backup_begin(p + off, len - off, &out->b);
}

void
proto_enc_backup_started(struct lb_buf *b, const char *id, const char *parent)
{
    size_t f = proto_frame_begin(b, PROTO_T_BACKUP_STARTED);

    put_str(b, id);
    put_str(b, parent);
    proto_frame_end(b, f);
}

int
proto_dec_backup_started(const uint8_t *p, size_t len, struct proto_str *id,
                         struct proto_str *parent)
{
    struct proto_rd pr;

    proto_rd_init(&pr, p, len);
    *id = proto_rd_str16(&pr);
    *parent = proto_rd_str16(&pr);
    if (pr.err)
        return pr.err;
    if (!proto_backup_id_valid(id->p, id->len) ||
        (parent->len && !proto_backup_id_valid(parent->p, parent->len)))
        return PROTO_E_STRING;
    return proto_rd_done(&pr);
}

void
proto_enc_disk_begin(struct lb_buf *b, const char *disk, uint64_t size,
                     uint8_t mode, const struct proto_kv *meta)
{
    size_t f = proto_frame_begin(b, PROTO_T_DISK_BEGIN);

    put_str(b, disk);
    lb_buf_put_be64(b, size);
    lb_buf_put_u8(b, mode);
    proto_kv_encode(b, meta);
    proto_frame_end(b, f);
}

int
proto_dec_disk_begin(const uint8_t *p, size_t len, struct proto_disk_begin *out)
{
    struct proto_rd pr;
    int r;

    memset(out, 0, sizeof *out);
    proto_rd_init(&pr, p, len);
    out->disk = proto_rd_str16(&pr);
    out->size = proto_rd_be64(&pr);
    out->mode = proto_rd_u8(&pr);
    if (pr.err)
        return pr.err;
    if (!proto_disk_name_valid(out->disk.p, out->disk.len))
        return PROTO_E_STRING;
    if (out->size == 0 || out->size > PROTO_MF_MAX_SIZE ||
        out->mode > PROTO_DISK_INCR)
        return PROTO_E_RANGE;
    r = proto_kv_decode(&pr, &out->meta);
    if (r != PROTO_OK)
        return r;
    r = proto_rd_done(&pr);
    if (r != PROTO_OK)
        proto_kv_free(&out->meta);
    return r;
}

void
proto_enc_disk_ready(struct lb_buf *b, uint64_t nwindows, uint32_t window_size)
{
    size_t f = proto_frame_begin(b, PROTO_T_DISK_READY);

    lb_buf_put_be64(b, nwindows);
    lb_buf_put_be32(b, window_size);
    proto_frame_end(b, f);
}

int
proto_dec_disk_ready(const uint8_t *p, size_t len, uint64_t *nwindows,
                     uint32_t *window_size)
{
    struct proto_rd pr;

    proto_rd_init(&pr, p, len);
    *nwindows = proto_rd_be64(&pr);
    *window_size = proto_rd_be32(&pr);
    if (pr.err)
        return pr.err;
    if (!proto_window_size_valid(*window_size) ||
        *nwindows > PROTO_MF_MAX_WINDOWS)
        return PROTO_E_RANGE;
    return proto_rd_done(&pr);
}

void
proto_enc_depths(struct lb_buf *b, uint64_t first, const uint8_t *d, size_t n)
{
    size_t f = proto_frame_begin(b, PROTO_T_DEPTHS);

    lb_buf_put_be64(b, first);
    lb_buf_append(b, d, n);
    proto_frame_end(b, f);
}

int
proto_dec_depths(const uint8_t *p, size_t len, uint64_t *first,
                 const uint8_t **d, size_t *n)
{
    struct proto_rd pr;

    proto_rd_init(&pr, p, len);
    *first = proto_rd_be64(&pr);
    if (pr.err)
        return pr.err;
    *n = proto_rd_left(&pr);
    if (*n == 0 || *n > PROTO_MAX_DEPTHS_PER_FRAME)
        return PROTO_E_RANGE;
    *d = proto_rd_bytes(&pr, *n);
    for (size_t i = 0; i < *n; i++)
        if ((*d)[i] > PROTO_MAX_STACK)
            return PROTO_E_RANGE;
    return proto_rd_done(&pr);
}

/* ---- QUERY, HAVE, GET_CHUNKS --------------------------------------------- */

void
proto_enc_query(struct lb_buf *b, uint16_t type, const struct proto_digest *d,
                uint32_t n)
{
    size_t f = proto_frame_begin(b, type);

    lb_buf_put_be32(b, n);
    for (uint32_t i = 0; i < n; i++)
        lb_buf_append(b, d[i].b, PROTO_DIGEST_LEN);
    proto_frame_end(b, f);
}

int
proto_dec_query(const uint8_t *p, size_t len, const uint8_t **digests,
                uint32_t *n)
{
    struct proto_rd pr;

    proto_rd_init(&pr, p, len);
    *n = proto_rd_be32(&pr);
    if (pr.err)
        return pr.err;
    if (*n == 0 || *n > PROTO_MAX_QUERY)
        return PROTO_E_RANGE;
    *digests = proto_rd_bytes(&pr, (size_t)*n * PROTO_DIGEST_LEN);
    return proto_rd_done(&pr);
}

void
proto_enc_have(struct lb_buf *b, const uint8_t *bits, uint32_t n)
{
    size_t f = proto_frame_begin(b, PROTO_T_HAVE);

    lb_buf_put_be32(b, n);
    lb_buf_append(b, bits, (n + 7) / 8);
    proto_frame_end(b, f);
}

int
proto_dec_have(const uint8_t *p, size_t len, const uint8_t **bits, uint32_t *n)
{
    struct proto_rd pr;

    proto_rd_init(&pr, p, len);
    *n = proto_rd_be32(&pr);
    if (pr.err)
        return pr.err;
    if (*n == 0 || *n > PROTO_MAX_QUERY)
        return PROTO_E_RANGE;
    *bits = proto_rd_bytes(&pr, (*n + 7) / 8);
    if (pr.err)
        return pr.err;
    /* Bits past n in the last byte are reserved. */
    if (*n % 8 && ((*bits)[*n / 8] >> (*n % 8)) != 0)
        return PROTO_E_RESERVED;
    return proto_rd_done(&pr);
}

void
proto_enc_chunk_bad(struct lb_buf *b, const struct proto_digest *d,
                    uint8_t reason, const char *msg)
{
    size_t f = proto_frame_begin(b, PROTO_T_CHUNK_BAD);

    lb_buf_append(b, d->b, PROTO_DIGEST_LEN);
    lb_buf_put_u8(b, reason);
    put_str(b, msg);
    proto_frame_end(b, f);
}

int
proto_dec_chunk_bad(const uint8_t *p, size_t len, struct proto_digest *d,
                    uint8_t *reason, struct proto_str *msg)
{
    struct proto_rd pr;
    const uint8_t *dg;

    proto_rd_init(&pr, p, len);
    dg = proto_rd_bytes(&pr, PROTO_DIGEST_LEN);
    *reason = proto_rd_u8(&pr);
    *msg = proto_rd_str16(&pr);
    if (pr.err)
        return pr.err;
    if (*reason != PROTO_CHUNK_MISSING && *reason != PROTO_CHUNK_DAMAGED)
        return PROTO_E_RANGE;
    memcpy(d->b, dg, PROTO_DIGEST_LEN);
    return proto_rd_done(&pr);
}

/* ---- CHUNK, CHUNK_DATA --------------------------------------------------- */

void
proto_enc_chunk(struct lb_buf *b, uint16_t type, const struct proto_chunk *c)
{
    size_t f = proto_frame_begin(b, type);

    lb_buf_append(b, c->d.b, PROTO_DIGEST_LEN);
    lb_buf_put_u8(b, c->type);
    lb_buf_put_u8(b, c->comp);
    lb_buf_put_be16(b, 0);
    lb_buf_put_be32(b, c->raw_len);
    lb_buf_append(b, c->data, c->data_len);
    proto_frame_end(b, f);
}

void
proto_enc_chunk_head(struct lb_buf *b, uint16_t type,
                     const struct proto_chunk *c)
{
    size_t f = proto_frame_begin(b, type);

    lb_buf_append(b, c->d.b, PROTO_DIGEST_LEN);
    lb_buf_put_u8(b, c->type);
    lb_buf_put_u8(b, c->comp);
    lb_buf_put_be16(b, 0);
    lb_buf_put_be32(b, c->raw_len);
    if (PROTO_CHUNK_HDR + (size_t)c->data_len > PROTO_MAX_PAYLOAD)
        abort();
    lb_store_be32(b->data + f + 8, PROTO_CHUNK_HDR + c->data_len);
}

/* The chunk header and the data's size: what proto_dec_chunk and
 * proto_dec_chunk_head both check. */
static int
dec_chunk_hdr(struct proto_rd *pr, size_t data_len, struct proto_chunk *out)
{
    const uint8_t *d = proto_rd_bytes(pr, PROTO_DIGEST_LEN);

    out->type = proto_rd_u8(pr);
    out->comp = proto_rd_u8(pr);
    uint16_t reserved = proto_rd_be16(pr);
    out->raw_len = proto_rd_be32(pr);
    if (pr->err)
        return pr->err;
    memcpy(out->d.b, d, PROTO_DIGEST_LEN);
    if (reserved != 0)
        return PROTO_E_RESERVED;
    if (!proto_chunk_type_valid(out->type) || out->comp > PROTO_COMP_SEALED)
        return PROTO_E_RANGE;
    if (out->raw_len == 0 || out->raw_len > PROTO_MAX_CHUNK_RAW ||
        (out->type == PROTO_CHUNK_BLOB && out->raw_len > PROTO_MAX_BLOB))
        return PROTO_E_RANGE;
    if (data_len == 0 || data_len > PROTO_MAX_PAYLOAD ||
        (out->comp == PROTO_COMP_NONE && data_len != out->raw_len))
        return PROTO_E_RANGE;
    out->data = NULL;
    out->data_len = (uint32_t)data_len;
    if (out->comp == PROTO_COMP_SEALED && proto_chunk_sealed_check(out) != 0)
        return PROTO_E_RANGE;
    return PROTO_OK;
}

int
proto_dec_chunk(const uint8_t *p, size_t len, struct proto_chunk *out)
{
    struct proto_rd pr;
    int st;

    proto_rd_init(&pr, p, len);
    st = dec_chunk_hdr(&pr, len > PROTO_CHUNK_HDR ? len - PROTO_CHUNK_HDR : 0,
                       out);
    if (st != PROTO_OK)
        return st;
    out->data = proto_rd_bytes(&pr, out->data_len);
    return proto_rd_done(&pr);
}

int
proto_dec_chunk_head(const uint8_t *p, size_t len, uint32_t payload_len,
                     struct proto_chunk *out)
{
    struct proto_rd pr;

    if (len < PROTO_CHUNK_HDR)
        return PROTO_E_TRUNCATED;
    proto_rd_init(&pr, p, PROTO_CHUNK_HDR);
    return dec_chunk_hdr(
        &pr, payload_len > PROTO_CHUNK_HDR ? payload_len - PROTO_CHUNK_HDR : 0,
        out);
}

/* ---- WINDOWS ------------------------------------------------------------- */

size_t
proto_enc_windows_start(struct lb_buf *b)
{
    size_t at = b->len;

    lb_buf_put_be32(b, 0);
    return at;
}

void
proto_enc_window_rec(struct lb_buf *b, const struct proto_window_rec *r)
{
    lb_buf_put_be64(b, r->index);
    lb_buf_put_u8(b, r->op);
    lb_buf_put_u8(b, r->n);
    for (uint8_t i = 0; i < r->n; i++) {
        lb_buf_put_u8(b, r->refs[i].type);
        lb_buf_append(b, r->refs[i].d.b, PROTO_DIGEST_LEN);
    }
}

void
proto_enc_windows_finish(struct lb_buf *b, size_t start, uint32_t count)
{
    lb_store_be32(b->data + start, count);
}

int
proto_dec_windows_init(struct proto_rd *pr, const uint8_t *p, size_t len,
                       uint32_t *count)
{
    proto_rd_init(pr, p, len);
    *count = proto_rd_be32(pr);
    if (pr->err)
        return pr->err;
    if (*count == 0 || *count > PROTO_MAX_WINDOW_RECORDS)
        return pr->err = PROTO_E_RANGE;
    return PROTO_OK;
}

int
proto_dec_window_next(struct proto_rd *pr, struct proto_window_rec *r)
{
    if (pr->err)
        return pr->err;
    if (proto_rd_left(pr) == 0)
        return 0;
    r->index = proto_rd_be64(pr);
    r->op = proto_rd_u8(pr);
    r->n = proto_rd_u8(pr);
    if (pr->err)
        return pr->err;
    if (r->op != PROTO_WIN_SET && r->op != PROTO_WIN_PUSH)
        return pr->err = PROTO_E_RANGE;
    if (r->n > PROTO_MAX_STACK || (r->op == PROTO_WIN_PUSH && r->n == 0))
        return pr->err = PROTO_E_RANGE;
    for (uint8_t i = 0; i < r->n; i++) {
        const uint8_t *d;
        r->refs[i].type = proto_rd_u8(pr);
        d = proto_rd_bytes(pr, PROTO_DIGEST_LEN);
        if (pr->err)
            return pr->err;
        if (r->refs[i].type != PROTO_CHUNK_RAW &&
            r->refs[i].type != PROTO_CHUNK_DELTA)
            return pr->err = PROTO_E_RANGE;
        memcpy(r->refs[i].d.b, d, PROTO_DIGEST_LEN);
    }
    return 1;
}
