/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target: what a client opens in an encrypted repository, with
 * a fixed key. The first byte picks the parser, the rest is its input:
 *
 *   0  the "sealed" value of a manifest's metadata (hex of an envelope),
 *      opened by proto_meta_unseal for backup ID, disk vda;
 *   1  a kv encoding, sealed with the fixed key and opened again;
 *   2  a CHUNK_DATA payload, decoded, and if sealed opened as a chunk is
 *      (proto_chunk_sealed_check, proto_unseal with the chunk's associated
 *      data, the inner compression byte, decompression).
 *
 * Oracle beyond "no crash, no leak": an opened value yields a kv list with
 * no "sealed" entry and its clear entries kept; a failure leaves the list
 * as it was; what is sealed opens to the same list, and not for another
 * disk; a sealed chunk that opens has the sizes the server checks.
 */
#include "fuzz/fuzz.h"
#include "proto/crypt.h"

#include <errno.h>
#include <string.h>

static const uint8_t key[PROTO_KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 8};

static bool
clear_a(const char *k)
{
    return k[0] == 'a';
}

static void
open_value(const uint8_t *p, size_t len)
{
    struct proto_kv kv = {0};
    char *v;

    /* A kv value is text (as the manifest reader gives it). */
    for (size_t i = 0; i < len; i++)
        if (p[i] < 0x20 || p[i] > 0x7e)
            return;
    v = lb_xmalloc(len + 1);
    memcpy(v, p, len);
    v[len] = '\0';
    proto_kv_set(&kv, "kind", "full");
    proto_kv_set(&kv, PROTO_META_SEALED, v);
    if (proto_meta_unseal(key, "ID", "vda", &kv) == 0) {
        CHECK(!proto_kv_get(&kv, PROTO_META_SEALED));
        CHECK(proto_kv_get(&kv, "kind") &&
              strcmp(proto_kv_get(&kv, "kind"), "full") == 0);
    } else {
        CHECK(kv.n == 2 &&
              strcmp(proto_kv_get(&kv, PROTO_META_SEALED), v) == 0);
        CHECK(lb_error_errno() == EBADMSG || lb_error_errno() == EPROTO);
    }
    proto_kv_free(&kv);
    free(v);
}

static void
seal_kv(const uint8_t *p, size_t len)
{
    struct proto_rd pr;
    struct proto_kv in = {0}, out = {0}, again = {0};
    struct proto_sealer s;

    proto_rd_init(&pr, p, len);
    if (proto_kv_decode(&pr, &in) != PROTO_OK)
        return;
    CHECK(proto_sealer_init(&s, key) == 0);
    if (proto_meta_seal(&s, "ID", "vda", &in, clear_a, &out) == 0) {
        for (size_t i = 0; i < out.n; i++)
            proto_kv_set(&again, out.e[i].key, out.e[i].val);
        if (proto_kv_get(&out, PROTO_META_SEALED))
            CHECK(proto_meta_unseal(key, "ID", "vdb", &again) == -1);
        CHECK(proto_meta_unseal(key, "ID", "vda", &out) == 0);
        CHECK(out.n == in.n);
        for (size_t i = 0; i < in.n; i++) {
            const char *v = proto_kv_get(&out, in.e[i].key);
            CHECK(v && strcmp(v, in.e[i].val) == 0);
        }
    }
    proto_kv_free(&in);
    proto_kv_free(&out);
    proto_kv_free(&again);
}

static void
open_chunk(const uint8_t *p, size_t len)
{
    struct proto_chunk c;
    uint8_t aad[PROTO_CHUNK_AAD], *in;

    if (proto_dec_chunk(p, len, &c) != PROTO_OK || c.comp != PROTO_COMP_SEALED)
        return;
    CHECK(proto_chunk_sealed_check(&c) == PROTO_OK);
    in = lb_xmalloc(c.data_len);
    proto_chunk_aad(aad, &c);
    if (proto_unseal(key, aad, sizeof aad, c.data, c.data_len, in) == 0 &&
        in[0] <= PROTO_COMP_ZSTD) {
        uint8_t *plain = lb_xmalloc(c.raw_len);
        struct proto_zctx *z = proto_zctx_new(1);
        (void)proto_chunk_decompress(z, plain, c.raw_len, in + 1,
                                     c.data_len - PROTO_SEAL_OVERHEAD - 1,
                                     in[0]);
        proto_zctx_free(z);
        free(plain);
    }
    free(in);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20))
        return 0;
    switch (data[0] % 3) {
    case 0:
        open_value(data + 1, size - 1);
        break;
    case 1:
        seal_kv(data + 1, size - 1);
        break;
    default:
        open_chunk(data + 1, size - 1);
        break;
    }
    return 0;
}
