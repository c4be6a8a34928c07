/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A chunk as the client makes and reads it: the one place that turns
 * plaintext into what the repository stores (its id, then the stored
 * bytes) and back. Uploads, restores, saved blobs and every reader of a
 * backup go through these calls, so how a repository stores a chunk
 * (compressed today; encrypted when the repository is) is decided here and
 * nowhere else.
 */
#include "agent/client/client_int.h"

#include <errno.h>
#include <string.h>

int
agent_chunk_id(const struct agent_repo *r, uint8_t type, const void *plain,
               size_t len, struct proto_digest *d)
{
    (void)r;
    return proto_chunk_digest(type, plain, len, d);
}

size_t
agent_chunk_seal_bound(const struct agent_repo *r, size_t len)
{
    (void)r;
    return proto_chunk_compress_bound(len);
}

ssize_t
agent_chunk_seal(const struct agent_repo *r, struct proto_zctx *z,
                 struct proto_chunk *c, const void *plain, uint8_t *dst,
                 size_t cap)
{
    ssize_t n;

    (void)r;
    n = proto_chunk_compress(z, dst, cap, plain, c->raw_len, &c->comp);
    if (n < 0)
        return -1;
    c->data = dst;
    c->data_len = (uint32_t)n;
    return n;
}

int
agent_chunk_open(const struct agent_repo *r, struct proto_zctx *z,
                 const struct proto_chunk *c, uint8_t *dst)
{
    struct proto_digest d;
    char hex[65];

    if (proto_chunk_decompress(z, dst, c->raw_len, c->data, c->data_len,
                               c->comp) == 0 &&
        agent_chunk_id(r, c->type, dst, c->raw_len, &d) == 0 &&
        memcmp(d.b, c->d.b, PROTO_DIGEST_LEN) == 0)
        return 0;
    proto_digest_hex(&c->d, hex);
    return lb_fail(EPROTO,
                   "chunk %s is damaged: its data does not match its id", hex);
}
