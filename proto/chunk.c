/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Chunks (PROTOCOL.md, "Chunks"): the digest that names them, the DELTA
 * run encoding, and zstd compression. Both ends use these: the agent to
 * build and send chunks, backupd to check what it receives before storing
 * it, the agent again to check what it restores.
 */
#include "proto/proto.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>
#include <zstd.h>

bool
proto_window_size_valid(uint32_t w)
{
    return w >= PROTO_MIN_WINDOW && w <= PROTO_MAX_WINDOW && (w & (w - 1)) == 0;
}

bool
proto_chunk_type_valid(uint8_t t)
{
    return t == PROTO_CHUNK_RAW || t == PROTO_CHUNK_DELTA ||
           t == PROTO_CHUNK_BLOB;
}

/* The per-thread digest context is freed when its thread exits (worker
 * pools and verify start threads again and again). */
static pthread_key_t digest_key;
static pthread_once_t digest_once = PTHREAD_ONCE_INIT;

static void
digest_ctx_free(void *ctx)
{
    EVP_MD_CTX_free(ctx);
}

static void
digest_key_init(void)
{
    if (pthread_key_create(&digest_key, digest_ctx_free) != 0)
        abort();
}

int
proto_chunk_digest(uint8_t type, const void *data, size_t len,
                   struct proto_digest *out)
{
    /* One EVP context per thread, reused: this is the hot path. */
    static _Thread_local EVP_MD_CTX *ctx;
    unsigned int n = 0;

    if (!ctx) {
        if (!(ctx = EVP_MD_CTX_new()))
            return lb_error(0, "OpenSSL: cannot allocate a digest context");
        pthread_once(&digest_once, digest_key_init);
        pthread_setspecific(digest_key, ctx);
    }
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, &type, 1) != 1 ||
        EVP_DigestUpdate(ctx, data, len) != 1 ||
        EVP_DigestFinal_ex(ctx, out->b, &n) != 1 || n != PROTO_DIGEST_LEN)
        return lb_error(0, "OpenSSL: SHA-256 failed");
    return 0;
}

void
proto_digest_hex(const struct proto_digest *d, char out[65])
{
    lb_hex_encode(out, d->b, PROTO_DIGEST_LEN);
}

int
proto_digest_parse(const char *hex, struct proto_digest *out)
{
    return lb_hex_decode(out->b, PROTO_DIGEST_LEN, hex);
}

/* ---- DELTA --------------------------------------------------------------- */

size_t
proto_delta_size(uint32_t nruns, size_t data_len)
{
    return PROTO_DELTA_HDR + (size_t)nruns * PROTO_DELTA_RUN + data_len;
}

size_t
proto_delta_encode(uint8_t *out, size_t cap, uint32_t window_len,
                   const struct proto_run *runs, uint32_t nruns,
                   const uint8_t *data)
{
    size_t data_len = 0, need, off;

    for (uint32_t i = 0; i < nruns; i++)
        if (runs[i].kind == PROTO_RUN_DATA)
            data_len += runs[i].len;
    need = proto_delta_size(nruns, data_len);
    if (need > cap)
        return 0;
    lb_store_be32(out, PROTO_DELTA_MAGIC);
    lb_store_be32(out + 4, window_len);
    lb_store_be32(out + 8, nruns);
    off = PROTO_DELTA_HDR;
    for (uint32_t i = 0; i < nruns; i++) {
        lb_store_be32(out + off, runs[i].off);
        lb_store_be32(out + off + 4, runs[i].len);
        out[off + 8] = runs[i].kind;
        off += PROTO_DELTA_RUN;
    }
    if (data_len)
        memcpy(out + off, data, data_len);
    return need;
}

int
proto_delta_apply(uint8_t *win, uint32_t window_len, const uint8_t *p,
                  size_t len)
{
    uint32_t nruns;
    size_t table, data_off, data_len = 0;
    uint64_t end = 0;

    if (len < PROTO_DELTA_HDR)
        return PROTO_E_TRUNCATED;
    if (lb_load_be32(p) != PROTO_DELTA_MAGIC)
        return PROTO_E_MAGIC;
    if (lb_load_be32(p + 4) != window_len)
        return PROTO_E_RANGE;
    nruns = lb_load_be32(p + 8);
    if (nruns == 0 || nruns > window_len / 512)
        return PROTO_E_RANGE;
    table = (size_t)nruns * PROTO_DELTA_RUN;
    if (table > len - PROTO_DELTA_HDR)
        return PROTO_E_TRUNCATED;
    data_off = PROTO_DELTA_HDR + table;

    /* Pass 1: validate the table against the window and the data length. */
    for (uint32_t i = 0; i < nruns; i++) {
        const uint8_t *r = p + PROTO_DELTA_HDR + (size_t)i * PROTO_DELTA_RUN;
        uint32_t off = lb_load_be32(r), rlen = lb_load_be32(r + 4);
        uint8_t kind = r[8];

        if (rlen == 0 || kind > PROTO_RUN_DATA)
            return PROTO_E_RANGE;
        if (off < end)
            return PROTO_E_ORDER;
        end = (uint64_t)off + rlen;
        if (end > window_len)
            return PROTO_E_RANGE;
        if (kind == PROTO_RUN_DATA)
            data_len += rlen;
    }
    if (data_len != len - data_off)
        return data_len > len - data_off ? PROTO_E_TRUNCATED : PROTO_E_TRAILING;
    if (!win)
        return PROTO_OK;

    /* Pass 2: apply. */
    const uint8_t *data = p + data_off;
    for (uint32_t i = 0; i < nruns; i++) {
        const uint8_t *r = p + PROTO_DELTA_HDR + (size_t)i * PROTO_DELTA_RUN;
        uint32_t off = lb_load_be32(r), rlen = lb_load_be32(r + 4);

        if (r[8] == PROTO_RUN_DATA) {
            memcpy(win + off, data, rlen);
            data += rlen;
        } else {
            memset(win + off, 0, rlen);
        }
    }
    return PROTO_OK;
}

uint32_t
proto_delta_nruns(const uint8_t *p)
{
    return lb_load_be32(p + 8);
}

struct proto_run
proto_delta_run(const uint8_t *p, uint32_t i)
{
    const uint8_t *r = p + PROTO_DELTA_HDR + (size_t)i * PROTO_DELTA_RUN;

    return (struct proto_run){lb_load_be32(r), lb_load_be32(r + 4), r[8]};
}

/* ---- zstd ---------------------------------------------------------------- */

struct proto_zctx {
    ZSTD_CCtx *c;
    ZSTD_DCtx *d;
    int level;
};

struct proto_zctx *
proto_zctx_new(int level)
{
    struct proto_zctx *z = lb_xcalloc(1, sizeof *z);

    z->level = level;
    return z;
}

void
proto_zctx_free(struct proto_zctx *z)
{
    if (!z)
        return;
    ZSTD_freeCCtx(z->c);
    ZSTD_freeDCtx(z->d);
    free(z);
}

size_t
proto_chunk_compress_bound(size_t len)
{
    return ZSTD_compressBound(len);
}

ssize_t
proto_chunk_compress(struct proto_zctx *z, uint8_t *dst, size_t cap,
                     const uint8_t *src, size_t len, uint8_t *comp)
{
    size_t r;

    if (!z->c) {
        z->c = ZSTD_createCCtx();
        if (!z->c)
            return lb_error(0, "zstd: cannot create a compression context");
        ZSTD_CCtx_setParameter(z->c, ZSTD_c_compressionLevel, z->level);
        ZSTD_CCtx_setParameter(z->c, ZSTD_c_contentSizeFlag, 1);
        ZSTD_CCtx_setParameter(z->c, ZSTD_c_checksumFlag, 0);
    }
    r = ZSTD_compress2(z->c, dst, cap, src, len);
    if (ZSTD_isError(r))
        return lb_error(0, "zstd: %s", ZSTD_getErrorName(r));
    if (r >= len) {
        /* Incompressible: store as is. */
        if (cap < len)
            return lb_error(0, "zstd: output buffer too small");
        memcpy(dst, src, len);
        *comp = PROTO_COMP_NONE;
        return (ssize_t)len;
    }
    *comp = PROTO_COMP_ZSTD;
    return (ssize_t)r;
}

int
proto_chunk_decompress(struct proto_zctx *z, uint8_t *dst, size_t raw_len,
                       const uint8_t *src, size_t len, uint8_t comp)
{
    unsigned long long content;
    size_t r;

    if (comp == PROTO_COMP_NONE) {
        if (len != raw_len)
            return lb_error(0, "stored chunk has %zu bytes, expected %zu", len,
                            raw_len);
        memcpy(dst, src, len);
        return 0;
    }
    if (comp != PROTO_COMP_ZSTD)
        return lb_error(0, "unknown chunk compression %u", comp);
    content = ZSTD_getFrameContentSize(src, len);
    if (content == ZSTD_CONTENTSIZE_ERROR ||
        content == ZSTD_CONTENTSIZE_UNKNOWN || content != raw_len)
        return lb_error(0, "zstd frame does not declare %zu bytes", raw_len);
    if (!z->d) {
        z->d = ZSTD_createDCtx();
        if (!z->d)
            return lb_error(0, "zstd: cannot create a decompression context");
        /* Bound the window a hostile frame may ask for. */
        ZSTD_DCtx_setParameter(z->d, ZSTD_d_windowLogMax, 24);
    }
    r = ZSTD_decompressDCtx(z->d, dst, raw_len, src, len);
    if (ZSTD_isError(r))
        return lb_error(0, "zstd: %s", ZSTD_getErrorName(r));
    if (r != raw_len)
        return lb_error(0, "zstd: got %zu bytes, expected %zu", r, raw_len);
    return 0;
}
