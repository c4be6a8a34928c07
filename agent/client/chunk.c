/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A chunk as the client makes and reads it: the one place that turns
 * plaintext into what the repository stores (its id, then the stored
 * bytes) and back. Uploads, restores, saved blobs and every reader of a
 * backup go through these calls, so how a repository stores a chunk is
 * decided here and nowhere else:
 *
 * - unencrypted: id = SHA-256(type || plain), stored plain or zstd;
 * - encrypted (store/FORMAT.md, "Sealed chunks"): id = HMAC-SHA256(id key,
 *   type || plain), stored as the envelope, under the session's data
 *   sealer, of the inner compression byte and the (zstd) bytes, bound by
 *   its associated data to the id, type and raw length.
 */
#include "agent/client/client_int.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

/* An encrypted repository that was never unlocked: a bug of the caller
 * (every path to here unlocks first), not the user's. */
static int
locked(void)
{
    return lb_fail(EINVAL, "internal error: an encrypted repository's "
                           "chunk was used before its key was loaded");
}

int
agent_chunk_id(const struct agent_repo *r, uint8_t type, const void *plain,
               size_t len, struct proto_digest *d)
{
    if (r->keys)
        return proto_chunk_id(&r->keys->k, type, plain, len, d);
    if (r->encrypted)
        return locked();
    return proto_chunk_digest(type, plain, len, d);
}

size_t
agent_chunk_seal_bound(const struct agent_repo *r, size_t len)
{
    return proto_chunk_compress_bound(len) +
           (r->encrypted ? PROTO_SEAL_OVERHEAD + 1 : 0);
}

ssize_t
agent_chunk_seal(const struct agent_repo *r, struct proto_zctx *z,
                 struct proto_chunk *c, const void *plain, uint8_t *dst,
                 size_t cap)
{
    uint8_t aad[PROTO_CHUNK_AAD];
    ssize_t n;

    if (!r->keys) {
        if (r->encrypted)
            return locked();
        n = proto_chunk_compress(z, dst, cap, plain, c->raw_len, &c->comp);
        if (n < 0)
            return -1;
        c->data = dst;
        c->data_len = (uint32_t)n;
        return n;
    }
    /* Compressed straight into its place in the envelope, then sealed in
     * place: no copy of the data. */
    if (cap < PROTO_SEAL_OVERHEAD + 1)
        return lb_error(0, "chunk buffer too small");
    n = proto_chunk_compress(z, dst + PROTO_SEAL_HDR + 1,
                             cap - PROTO_SEAL_OVERHEAD - 1, plain, c->raw_len,
                             &dst[PROTO_SEAL_HDR]);
    if (n < 0)
        return -1;
    c->comp = PROTO_COMP_SEALED;
    proto_chunk_aad(aad, c);
    if (proto_seal(&r->keys->data, aad, sizeof aad, dst, (size_t)n + 1) < 0)
        return -1;
    c->data = dst;
    c->data_len = (uint32_t)n + 1 + PROTO_SEAL_OVERHEAD;
    return (ssize_t)c->data_len;
}

/* A per-thread buffer for the opened envelope (freed with the thread),
 * for agent_chunk_open, whose stored bytes are the caller's and stay as
 * they are; agent_chunk_open_own opens in place instead. */
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void
scratch_free(void *p)
{
    lb_buf_free(p);
    free(p);
}

static void
scratch_init(void)
{
    if (pthread_key_create(&scratch_key, scratch_free) != 0)
        abort();
}

static uint8_t *
scratch(size_t len)
{
    static _Thread_local struct lb_buf *b;

    if (!b) {
        b = lb_xcalloc(1, sizeof *b);
        pthread_once(&scratch_once, scratch_init);
        pthread_setspecific(scratch_key, b);
    }
    lb_buf_reset(b);
    lb_buf_reserve(b, len);
    return b->data;
}

/* The plaintext of a sealed chunk into dst: opened (in place when the
 * caller gave its stored bytes as writable, else into this thread's
 * scratch buffer), then decompressed. */
static int
open_sealed(const struct agent_repo *r, struct proto_zctx *z,
            const struct proto_chunk *c, uint8_t *stored, uint8_t *dst)
{
    uint8_t aad[PROTO_CHUNK_AAD], *in;
    size_t len;

    if (proto_chunk_sealed_check(c) != PROTO_OK)
        return -1;
    len = c->data_len - PROTO_SEAL_OVERHEAD;
    in = stored ? stored + PROTO_SEAL_HDR : scratch(len);
    proto_chunk_aad(aad, c);
    if (proto_unseal(r->keys->k.data, aad, sizeof aad, c->data, c->data_len,
                     in) < 0)
        return -1;
    if (in[0] > PROTO_COMP_ZSTD)
        return -1;
    return proto_chunk_decompress(z, dst, c->raw_len, in + 1, len - 1, in[0]);
}

static int
chunk_open(const struct agent_repo *r, struct proto_zctx *z,
           const struct proto_chunk *c, uint8_t *stored, uint8_t *dst)
{
    struct proto_digest d;
    char hex[65];
    int ok;

    if (r->encrypted && !r->keys)
        return locked();
    /* An encrypted repository holds sealed chunks only, another none. */
    if (r->keys)
        ok = c->comp == PROTO_COMP_SEALED &&
             open_sealed(r, z, c, stored, dst) == 0;
    else
        ok = c->comp != PROTO_COMP_SEALED &&
             proto_chunk_decompress(z, dst, c->raw_len, c->data, c->data_len,
                                    c->comp) == 0;
    if (ok && agent_chunk_id(r, c->type, dst, c->raw_len, &d) == 0 &&
        memcmp(d.b, c->d.b, PROTO_DIGEST_LEN) == 0)
        return 0;
    proto_digest_hex(&c->d, hex);
    if (r->keys)
        return lb_fail(EPROTO,
                       "chunk %s is damaged: it does not authenticate with "
                       "the repository's key (changed, or moved from "
                       "another id)",
                       hex);
    return lb_fail(EPROTO,
                   "chunk %s is damaged: its data does not match its id", hex);
}

int
agent_chunk_open(const struct agent_repo *r, struct proto_zctx *z,
                 const struct proto_chunk *c, uint8_t *dst)
{
    return chunk_open(r, z, c, NULL, dst);
}

int
agent_chunk_open_own(const struct agent_repo *r, struct proto_zctx *z,
                     const struct proto_chunk *c, uint8_t *stored, uint8_t *dst)
{
    if (stored != c->data)
        return lb_fail(EINVAL, "internal error: a chunk's own stored bytes "
                               "are not its data");
    return chunk_open(r, z, c, stored, dst);
}
