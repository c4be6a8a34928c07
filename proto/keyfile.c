/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Key files (store/FORMAT.md, "Key files"): a repository's master key
 * wrapped by AES-256-GCM under a key Argon2id (or, in key files of
 * earlier versions, scrypt) derives from a passphrase. 128 bytes, the
 * same in a repository (keys/repokey), on a client (a keyfile-mode key)
 * and in what `livebackup key export` writes:
 *
 *    0  8 magic "LBKEYFL1"      8  2 version 1     10  1 kdf (1 scrypt,
 *                                                        2 Argon2id)
 *   11  1 log2(N) / log2(m)    12  1 r / t        13  1 p
 *   14  2 reserved (0)         16 16 key id       32 32 salt
 *   64 12 nonce                76  4 reserved (0) 80 32 wrapped master key
 *  112 16 tag (its associated data: bytes 0..80)
 */
#include "proto/crypt.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

_Static_assert(sizeof PROTO_KEYFILE_MAGIC - 1 == 8, "key file magic");
_Static_assert(PROTO_KEYFILE_AAD + PROTO_KEY_LEN + PROTO_GCM_TAG ==
                   PROTO_KEYFILE_LEN,
               "key file layout");

/* The memory one lane of scrypt, or Argon2id as a whole, takes, and the
 * work of the KDF: bytes of memory touched, all lanes and passes. */
static uint64_t
kdf_mem(const struct proto_keyfile *kf)
{
    if (kf->kdf == PROTO_KDF_SCRYPT)
        return 128ull * kf->r * (1ull << kf->log2n);
    return 1024ull << kf->log2n;
}

static uint64_t
kdf_work(const struct proto_keyfile *kf)
{
    return kdf_mem(kf) * (kf->kdf == PROTO_KDF_SCRYPT ? kf->p : kf->r);
}

int
proto_keyfile_decode(const uint8_t *p, size_t len, struct proto_keyfile *out)
{
    if (len < PROTO_KEYFILE_LEN)
        return PROTO_E_TRUNCATED;
    if (len > PROTO_KEYFILE_LEN)
        return PROTO_E_TRAILING;
    if (memcmp(p, PROTO_KEYFILE_MAGIC, 8) != 0)
        return PROTO_E_MAGIC;
    if (lb_load_be16(p + 8) != 1)
        return PROTO_E_RANGE;
    if (lb_load_be16(p + 14) != 0 || lb_load_be32(p + 76) != 0)
        return PROTO_E_RESERVED;
    out->kdf = p[10];
    out->log2n = p[11];
    out->r = p[12];
    out->p = p[13];
    if (out->kdf != PROTO_KDF_SCRYPT && out->kdf != PROTO_KDF_ARGON2ID)
        return PROTO_E_RANGE;
    /* r is scrypt's r or Argon2id's t: 1 to 32 either way */
    if (out->p < 1 || out->p > 16 || out->r < 1 || out->r > 32 ||
        out->log2n > 24)
        return PROTO_E_RANGE;
    if (out->kdf == PROTO_KDF_SCRYPT && out->log2n < 1)
        return PROTO_E_RANGE;
    /* RFC 9106: m >= 8 p KiB */
    if (out->kdf == PROTO_KDF_ARGON2ID && (1u << out->log2n) < 8u * out->p)
        return PROTO_E_RANGE;
    /* The memory, and the work of all lanes and passes, stay bounded. */
    if (kdf_mem(out) > PROTO_KDF_MAX_MEM ||
        kdf_work(out) > 4ull * PROTO_KDF_MAX_MEM)
        return PROTO_E_RANGE;
    memcpy(out->key_id, p + 16, sizeof out->key_id);
    memcpy(out->salt, p + 32, sizeof out->salt);
    memcpy(out->nonce, p + 64, sizeof out->nonce);
    memcpy(out->wrapped, p + 80, sizeof out->wrapped);
    memcpy(out->tag, p + 112, sizeof out->tag);
    return PROTO_OK;
}

void
proto_keyfile_encode(uint8_t out[PROTO_KEYFILE_LEN],
                     const struct proto_keyfile *kf)
{
    memset(out, 0, PROTO_KEYFILE_LEN);
    /* 8 magic bytes, no NUL: a binary field */
    // NOLINTNEXTLINE(bugprone-not-null-terminated-result)
    memcpy(out, PROTO_KEYFILE_MAGIC, 8);
    lb_store_be16(out + 8, 1);
    out[10] = kf->kdf;
    out[11] = kf->log2n;
    out[12] = kf->r;
    out[13] = kf->p;
    memcpy(out + 16, kf->key_id, sizeof kf->key_id);
    memcpy(out + 32, kf->salt, sizeof kf->salt);
    memcpy(out + 64, kf->nonce, sizeof kf->nonce);
    memcpy(out + 80, kf->wrapped, sizeof kf->wrapped);
    memcpy(out + 112, kf->tag, sizeof kf->tag);
}

/* The key that wraps the master key. */
static int
kek(const struct proto_keyfile *kf, const char *pass, size_t passlen,
    uint8_t out[PROTO_KEY_LEN])
{
    if (passlen == 0 || passlen > PROTO_MAX_PASSPHRASE)
        return lb_fail(EINVAL, "a passphrase has 1 to %d bytes",
                       PROTO_MAX_PASSPHRASE);
    if (kf->kdf == PROTO_KDF_SCRYPT)
        return proto_scrypt(pass, passlen, kf->salt, sizeof kf->salt,
                            1ull << kf->log2n, kf->r, kf->p, out,
                            PROTO_KEY_LEN);
    return proto_argon2id(pass, passlen, kf->salt, sizeof kf->salt, NULL, 0,
                          NULL, 0, kf->r, 1u << kf->log2n, kf->p, out,
                          PROTO_KEY_LEN);
}

void
proto_keyfile_kdf_name(const struct proto_keyfile *kf, char *buf, size_t len)
{
    if (kf->kdf == PROTO_KDF_SCRYPT)
        snprintf(buf, len, "scrypt, N 2^%u, r %u, p %u", kf->log2n, kf->r,
                 kf->p);
    else
        snprintf(buf, len, "Argon2id, m %llu KiB, t %u, p %u",
                 1ull << kf->log2n, kf->r, kf->p);
}

int
proto_keyfile_wrap(const uint8_t master[PROTO_KEY_LEN], const char *pass,
                   size_t passlen, uint8_t kdf, uint8_t log2n,
                   struct proto_keyfile *out)
{
    uint8_t k[PROTO_KEY_LEN], hdr[PROTO_KEYFILE_LEN];
    struct proto_keys keys;
    int r = -1;

    memset(out, 0, sizeof *out);
    if (kdf == PROTO_KDF_SCRYPT) {
        out->kdf = PROTO_KDF_SCRYPT;
        out->log2n = log2n ? log2n : PROTO_SCRYPT_LOG2N;
        out->r = PROTO_SCRYPT_R;
        out->p = PROTO_SCRYPT_P;
    } else {
        out->kdf = PROTO_KDF_ARGON2ID;
        out->log2n = log2n ? log2n : PROTO_ARGON2_LOG2M;
        out->r = PROTO_ARGON2_T;
        out->p = PROTO_ARGON2_P;
    }
    if (proto_keys_derive(master, &keys) < 0)
        return -1;
    memcpy(out->key_id, keys.key_id, sizeof out->key_id);
    proto_wipe(&keys, sizeof keys);
    if (lb_random(out->salt, sizeof out->salt) < 0 ||
        lb_random(out->nonce, sizeof out->nonce) < 0 ||
        kek(out, pass, passlen, k) < 0)
        goto done;
    proto_keyfile_encode(hdr, out);
    r = proto_gcm_seal(k, out->nonce, hdr, PROTO_KEYFILE_AAD, master,
                       PROTO_KEY_LEN, out->wrapped, out->tag);
done:
    proto_wipe(k, sizeof k);
    return r;
}

int
proto_keyfile_unwrap(const struct proto_keyfile *kf, const char *pass,
                     size_t passlen, uint8_t master[PROTO_KEY_LEN])
{
    uint8_t k[PROTO_KEY_LEN], hdr[PROTO_KEYFILE_LEN];
    struct proto_keys keys;
    int r;

    if (kek(kf, pass, passlen, k) < 0)
        return -1;
    proto_keyfile_encode(hdr, kf);
    r = proto_gcm_open(k, kf->nonce, hdr, PROTO_KEYFILE_AAD, kf->wrapped,
                       PROTO_KEY_LEN, master, kf->tag);
    proto_wipe(k, sizeof k);
    if (r < 0) {
        proto_wipe(master, PROTO_KEY_LEN);
        if (lb_error_errno() == EBADMSG)
            lb_fail(EBADMSG, "wrong passphrase (or a damaged key file)");
        return -1;
    }
    /* The tag covered the key id too: a key that is not the one it names
     * was wrapped by a broken writer. */
    if (proto_keys_derive(master, &keys) < 0)
        return -1;
    r = memcmp(keys.key_id, kf->key_id, sizeof keys.key_id) == 0 ? 0 : -1;
    proto_wipe(&keys, sizeof keys);
    if (r < 0) {
        proto_wipe(master, PROTO_KEY_LEN);
        return lb_fail(EPROTO, "the key file holds a key other than the one "
                               "its key id names");
    }
    return 0;
}
