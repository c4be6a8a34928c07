/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Frame headers, the bounds-checked cursor, key/value lists and the names
 * the protocol carries. Decoders here are pure: they never log and never
 * allocate before the input validated (PROTOCOL.md, "Decoding rules").
 */
#include "proto/proto.h"

#include <errno.h>

#include <string.h>
#include <time.h>

_Static_assert(PROTO_HDR_SIZE == 4 + 2 + 2 + 4, "frame header layout");
_Static_assert(PROTO_MAX_PAYLOAD >= PROTO_CHUNK_HDR + PROTO_MAX_CHUNK_RAW +
                                        PROTO_MAX_CHUNK_RAW / 128 + 4096,
               "a compressed window must fit in one frame");

static const struct {
    uint16_t type;
    const char *name;
} type_names[] = {
    {PROTO_T_HELLO, "HELLO"},
    {PROTO_T_HELLO_REPLY, "HELLO_REPLY"},
    {PROTO_T_ERROR, "ERROR"},
    {PROTO_T_OK, "OK"},
    {PROTO_T_INIT, "INIT"},
    {PROTO_T_OPEN, "OPEN"},
    {PROTO_T_REPO_INFO, "REPO_INFO"},
    {PROTO_T_KEY_GET, "KEY_GET"},
    {PROTO_T_KEY_DATA, "KEY_DATA"},
    {PROTO_T_KEY_SET, "KEY_SET"},
    {PROTO_T_WAITING, "WAITING"},
    {PROTO_T_WORKING, "WORKING"},
    {PROTO_T_LIST, "LIST"},
    {PROTO_T_LIST_ENTRY, "LIST_ENTRY"},
    {PROTO_T_LIST_END, "LIST_END"},
    {PROTO_T_BACKUP_BEGIN, "BACKUP_BEGIN"},
    {PROTO_T_BACKUP_STARTED, "BACKUP_STARTED"},
    {PROTO_T_DISK_BEGIN, "DISK_BEGIN"},
    {PROTO_T_DISK_READY, "DISK_READY"},
    {PROTO_T_DEPTHS, "DEPTHS"},
    {PROTO_T_QUERY, "QUERY"},
    {PROTO_T_HAVE, "HAVE"},
    {PROTO_T_CHUNK, "CHUNK"},
    {PROTO_T_WINDOWS, "WINDOWS"},
    {PROTO_T_DISK_END, "DISK_END"},
    {PROTO_T_COMMIT, "COMMIT"},
    {PROTO_T_COMMITTED, "COMMITTED"},
    {PROTO_T_ABORT, "ABORT"},
    {PROTO_T_COMMIT_META, "COMMIT_META"},
    {PROTO_T_SEAL, "SEAL"},
    {PROTO_T_IMPORT, "IMPORT"},
    {PROTO_T_GET_MANIFEST, "GET_MANIFEST"},
    {PROTO_T_MANIFEST_DATA, "MANIFEST_DATA"},
    {PROTO_T_MANIFEST_END, "MANIFEST_END"},
    {PROTO_T_GET_CHUNKS, "GET_CHUNKS"},
    {PROTO_T_CHUNK_DATA, "CHUNK_DATA"},
    {PROTO_T_GET_STORED, "GET_STORED"},
    {PROTO_T_CHUNK_BAD, "CHUNK_BAD"},
    {PROTO_T_VERIFY, "VERIFY"},
    {PROTO_T_VERIFY_EVENT, "VERIFY_EVENT"},
    {PROTO_T_VERIFY_END, "VERIFY_END"},
    {PROTO_T_DELETE, "DELETE"},
    {PROTO_T_PRUNE, "PRUNE"},
    {PROTO_T_PRUNE_ENTRY, "PRUNE_ENTRY"},
    {PROTO_T_GC, "GC"},
    {PROTO_T_GC_END, "GC_END"},
    {PROTO_T_BRIDGE, "BRIDGE"},
};

bool
proto_type_known(uint16_t type)
{
    return proto_type_name(type) != NULL;
}

const char *
proto_type_name(uint16_t type)
{
    for (size_t i = 0; i < LB_ARRAY_SIZE(type_names); i++)
        if (type_names[i].type == type)
            return type_names[i].name;
    return NULL;
}

const char *
proto_status_str(int status)
{
    switch (status) {
    case PROTO_OK:
        return "ok";
    case PROTO_E_MAGIC:
        return "bad frame magic";
    case PROTO_E_TOO_BIG:
        return "frame larger than the maximum";
    case PROTO_E_RESERVED:
        return "reserved bits set";
    case PROTO_E_TYPE:
        return "unknown frame type";
    case PROTO_E_TRUNCATED:
        return "truncated payload";
    case PROTO_E_TRAILING:
        return "trailing bytes after the payload";
    case PROTO_E_RANGE:
        return "value out of range";
    case PROTO_E_STRING:
        return "invalid string";
    case PROTO_E_ORDER:
        return "records out of order";
    default:
        return status > 0 ? "incomplete" : "unknown decoder error";
    }
}

int
proto_hdr_decode(const uint8_t *buf, size_t len, struct proto_hdr *out)
{
    if (len < PROTO_HDR_SIZE)
        return (int)(PROTO_HDR_SIZE - len);
    if (lb_load_be32(buf) != PROTO_MAGIC)
        return PROTO_E_MAGIC;
    out->type = lb_load_be16(buf + 4);
    out->flags = lb_load_be16(buf + 6);
    out->len = lb_load_be32(buf + 8);
    if (out->flags != 0)
        return PROTO_E_RESERVED;
    if (out->len > PROTO_MAX_PAYLOAD)
        return PROTO_E_TOO_BIG;
    if (!proto_type_known(out->type))
        return PROTO_E_TYPE;
    return PROTO_OK;
}

void
proto_hdr_encode(uint8_t out[PROTO_HDR_SIZE], uint16_t type, uint32_t len)
{
    lb_store_be32(out, PROTO_MAGIC);
    lb_store_be16(out + 4, type);
    lb_store_be16(out + 6, 0);
    lb_store_be32(out + 8, len);
}

size_t
proto_frame_begin(struct lb_buf *b, uint16_t type)
{
    size_t start = b->len;

    lb_buf_reserve(b, PROTO_HDR_SIZE);
    proto_hdr_encode(b->data + b->len, type, 0);
    b->len += PROTO_HDR_SIZE;
    return start;
}

void
proto_frame_end(struct lb_buf *b, size_t start)
{
    size_t len = b->len - start - PROTO_HDR_SIZE;

    /* Encoders are only fed bounded data; a frame over the limit is a
     * programming error, never a peer's doing. */
    if (len > PROTO_MAX_PAYLOAD)
        abort();
    lb_store_be32(b->data + start + 8, (uint32_t)len);
}

/* ---- cursor -------------------------------------------------------------- */

void
proto_rd_init(struct proto_rd *pr, const uint8_t *p, size_t len)
{
    pr->p = p;
    pr->len = len;
    pr->off = 0;
    pr->err = PROTO_OK;
}

const uint8_t *
proto_rd_bytes(struct proto_rd *pr, size_t n)
{
    const uint8_t *r;

    if (pr->err)
        return NULL;
    if (n > pr->len - pr->off) {
        pr->err = PROTO_E_TRUNCATED;
        return NULL;
    }
    r = pr->p + pr->off;
    pr->off += n;
    return r;
}

uint8_t
proto_rd_u8(struct proto_rd *pr)
{
    const uint8_t *p = proto_rd_bytes(pr, 1);
    return p ? p[0] : 0;
}

uint16_t
proto_rd_be16(struct proto_rd *pr)
{
    const uint8_t *p = proto_rd_bytes(pr, 2);
    return p ? lb_load_be16(p) : 0;
}

uint32_t
proto_rd_be32(struct proto_rd *pr)
{
    const uint8_t *p = proto_rd_bytes(pr, 4);
    return p ? lb_load_be32(p) : 0;
}

uint64_t
proto_rd_be64(struct proto_rd *pr)
{
    const uint8_t *p = proto_rd_bytes(pr, 8);
    return p ? lb_load_be64(p) : 0;
}

size_t
proto_rd_left(const struct proto_rd *pr)
{
    return pr->err ? 0 : pr->len - pr->off;
}

int
proto_rd_done(const struct proto_rd *pr)
{
    if (pr->err)
        return pr->err;
    return pr->off == pr->len ? PROTO_OK : PROTO_E_TRAILING;
}

static bool
text_valid(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == 0 || (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

struct proto_str
proto_rd_str16(struct proto_rd *pr)
{
    struct proto_str s = {"", 0};
    uint16_t n = proto_rd_be16(pr);
    const uint8_t *p = proto_rd_bytes(pr, n);

    if (!p)
        return s;
    if (!text_valid((const char *)p, n)) {
        pr->err = PROTO_E_STRING;
        return s;
    }
    s.p = (const char *)p;
    s.len = n;
    return s;
}

bool
proto_str_copy(char *dst, size_t cap, struct proto_str s)
{
    if ((size_t)s.len + 1 > cap)
        return false;
    memcpy(dst, s.p, s.len);
    dst[s.len] = '\0';
    return true;
}

bool
proto_str_eq(struct proto_str s, const char *c)
{
    return strlen(c) == s.len && memcmp(s.p, c, s.len) == 0;
}

/* ---- key/value lists ----------------------------------------------------- */

bool
proto_kv_key_valid(const char *k, size_t len)
{
    if (len == 0 || len > PROTO_MAX_KEY)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = k[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '.' || c == '-'))
            return false;
    }
    return true;
}

int
proto_kv_decode(struct proto_rd *pr, struct proto_kv *out)
{
    struct proto_rd save = *pr;
    uint16_t n = proto_rd_be16(pr);

    out->n = 0;
    out->e = NULL;
    if (n > PROTO_MAX_KV) {
        pr->err = PROTO_E_RANGE;
        return pr->err;
    }
    /* Pass 1: validate everything, allocate nothing. */
    for (uint16_t i = 0; i < n && !pr->err; i++) {
        struct proto_str k = proto_rd_str16(pr);
        uint32_t vlen = proto_rd_be32(pr);
        const uint8_t *v;

        if (pr->err)
            break;
        if (!proto_kv_key_valid(k.p, k.len)) {
            pr->err = PROTO_E_STRING;
            break;
        }
        if (vlen > PROTO_MAX_VALUE) {
            pr->err = PROTO_E_RANGE;
            break;
        }
        v = proto_rd_bytes(pr, vlen);
        if (v && !text_valid((const char *)v, vlen))
            pr->err = PROTO_E_STRING;
    }
    if (pr->err)
        return pr->err;
    /* Duplicate keys are rejected: quadratic, but n <= 256. */
    {
        struct proto_rd a = save;
        proto_rd_be16(&a);
        for (uint16_t i = 0; i < n; i++) {
            struct proto_str ki = proto_rd_str16(&a);
            struct proto_rd b = a;
            proto_rd_bytes(&a, proto_rd_be32(&a));
            proto_rd_bytes(&b, proto_rd_be32(&b));
            for (uint16_t j = i + 1; j < n; j++) {
                struct proto_str kj = proto_rd_str16(&b);
                proto_rd_bytes(&b, proto_rd_be32(&b));
                if (ki.len == kj.len && memcmp(ki.p, kj.p, ki.len) == 0) {
                    pr->err = PROTO_E_STRING;
                    return pr->err;
                }
            }
        }
    }
    /* Pass 2: copy. */
    *pr = save;
    proto_rd_be16(pr);
    out->e = lb_xcalloc(n, sizeof *out->e);
    for (uint16_t i = 0; i < n; i++) {
        struct proto_str k = proto_rd_str16(pr);
        uint32_t vlen = proto_rd_be32(pr);
        const uint8_t *v = proto_rd_bytes(pr, vlen);
        out->e[i].key = lb_xmalloc((size_t)k.len + 1);
        proto_str_copy(out->e[i].key, (size_t)k.len + 1, k);
        out->e[i].val = lb_xmalloc((size_t)vlen + 1);
        memcpy(out->e[i].val, v, vlen);
        out->e[i].val[vlen] = '\0';
    }
    out->n = n;
    return PROTO_OK;
}

void
proto_kv_encode(struct lb_buf *b, const struct proto_kv *kv)
{
    lb_buf_put_be16(b, (uint16_t)kv->n);
    for (size_t i = 0; i < kv->n; i++) {
        size_t vlen = strlen(kv->e[i].val);
        lb_buf_put_str16(b, kv->e[i].key, strlen(kv->e[i].key));
        lb_buf_put_be32(b, (uint32_t)vlen);
        lb_buf_append(b, kv->e[i].val, vlen);
    }
}

void
proto_kv_set(struct proto_kv *kv, const char *key, const char *val)
{
    if (!proto_kv_key_valid(key, strlen(key)) ||
        strlen(val) > PROTO_MAX_VALUE || !text_valid(val, strlen(val)))
        abort();
    for (size_t i = 0; i < kv->n; i++) {
        if (strcmp(kv->e[i].key, key) == 0) {
            free(kv->e[i].val);
            kv->e[i].val = lb_xstrdup(val);
            return;
        }
    }
    if (kv->n >= PROTO_MAX_KV)
        abort();
    kv->e = lb_xrealloc(kv->e, (kv->n + 1) * sizeof *kv->e);
    kv->e[kv->n].key = lb_xstrdup(key);
    kv->e[kv->n].val = lb_xstrdup(val);
    kv->n++;
}

static size_t
kv_entry_len(const char *key, const char *val)
{
    return 2 + strlen(key) + 4 + strlen(val);
}

size_t
proto_kv_encoded_len(const struct proto_kv *kv)
{
    size_t n = 2;

    for (size_t i = 0; i < kv->n; i++)
        n += kv_entry_len(kv->e[i].key, kv->e[i].val);
    return n;
}

int
proto_kv_merge(struct proto_kv *dst, const struct proto_kv *src, size_t max_n,
               size_t max_bytes)
{
    size_t n = dst->n, bytes = proto_kv_encoded_len(dst);

    /* What the result would be, before anything changes. */
    for (size_t i = 0; i < src->n; i++) {
        const char *old = proto_kv_get(dst, src->e[i].key);
        if (!proto_kv_key_valid(src->e[i].key, strlen(src->e[i].key)) ||
            strlen(src->e[i].val) > PROTO_MAX_VALUE ||
            !text_valid(src->e[i].val, strlen(src->e[i].val)))
            return lb_fail(EINVAL,
                           "metadata key '%.64s' or its value is "
                           "not valid",
                           src->e[i].key);
        if (old) {
            bytes -= strlen(old);
            bytes += strlen(src->e[i].val);
        } else {
            n++;
            bytes += kv_entry_len(src->e[i].key, src->e[i].val);
        }
    }
    if (n > max_n)
        return lb_fail(EINVAL, "too much metadata: %zu keys, at most %zu", n,
                       max_n);
    if (bytes > max_bytes)
        return lb_fail(EINVAL, "too much metadata: %zu bytes, at most %zu",
                       bytes, max_bytes);
    for (size_t i = 0; i < src->n; i++)
        proto_kv_set(dst, src->e[i].key, src->e[i].val);
    return 0;
}

void
proto_kv_set_lossy(struct proto_kv *kv, const char *key, const char *val)
{
    size_t n = strnlen(val, PROTO_MAX_VALUE);
    char *v = lb_xmalloc(n + 1);

    memcpy(v, val, n);
    v[n] = '\0';
    for (char *c = v; *c; c++) {
        unsigned char u = (unsigned char)*c;
        if ((u < 0x20 && u != '\n' && u != '\t') || u == 0x7f)
            *c = '?';
    }
    proto_kv_set(kv, key, v);
    free(v);
}

void
proto_kv_setf(struct proto_kv *kv, const char *key, const char *fmt, ...)
{
    char *s;
    va_list ap;

    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        abort();
    va_end(ap);
    proto_kv_set(kv, key, s);
    free(s);
}

void
proto_kv_set_u64(struct proto_kv *kv, const char *key, uint64_t v)
{
    proto_kv_setf(kv, key, "%llu", (unsigned long long)v);
}

const char *
proto_kv_get(const struct proto_kv *kv, const char *key)
{
    for (size_t i = 0; i < kv->n; i++)
        if (strcmp(kv->e[i].key, key) == 0)
            return kv->e[i].val;
    return NULL;
}

uint64_t
proto_kv_get_u64(const struct proto_kv *kv, const char *key, uint64_t def)
{
    const char *v = proto_kv_get(kv, key);
    char *end;
    unsigned long long r;

    if (!v || !*v || *v == '-')
        return def;
    r = strtoull(v, &end, 10);
    return *end ? def : (uint64_t)r;
}

void
proto_kv_free(struct proto_kv *kv)
{
    for (size_t i = 0; i < kv->n; i++) {
        free(kv->e[i].key);
        free(kv->e[i].val);
    }
    free(kv->e);
    kv->e = NULL;
    kv->n = 0;
}

/* ---- names --------------------------------------------------------------- */

bool
proto_name_valid(const char *s, size_t len)
{
    if (len == 0 || len > 200)
        return false;
    if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || c == '/')
            return false;
    }
    return true;
}

bool
proto_disk_name_valid(const char *s, size_t len)
{
    if (len == 0 || len > 64 || s[0] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

bool
proto_backup_id_valid(const char *s, size_t len)
{
    /* YYYYMMDD-HHMMSS-xxxx */
    if (len != PROTO_ID_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (i == 8 || i == 15) {
            if (c != '-')
                return false;
        } else if (i > 15) {
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
                return false;
        } else if (c < '0' || c > '9') {
            return false;
        }
    }
    return true;
}

void
proto_backup_id_make(char out[PROTO_ID_LEN + 1], int64_t t, uint16_t rnd)
{
    time_t tt = (time_t)t;
    struct tm tm;
    char stamp[16];

    gmtime_r(&tt, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    snprintf(out, PROTO_ID_LEN + 1, "%.15s-%04x", stamp, rnd);
}
