/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The primitives of repository encryption (proto/crypt.h): OpenSSL's
 * HMAC-SHA256, scrypt and AES-256-GCM and libargon2's Argon2id behind
 * small functions, HKDF on top of the HMAC, CRC-32C, the keys derived
 * from a master key, and the envelope every sealed byte string uses.
 * OpenSSL objects are fetched once per process and their contexts kept
 * per thread, set up with the last key each was given: chunk ids, seals
 * and opens are the hot path of an encrypted backup and restore.
 */
#include "proto/crypt.h"

#include <argon2.h>
#include <errno.h>
#include <limits.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- per-process objects, per-thread contexts ---------------------------- */

static EVP_MAC *g_hmac;
static EVP_CIPHER *g_gcm;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_key_t g_key;

/*
 * A thread's contexts remember the key they were last set up with: a
 * restore opens every chunk of a backup under one session key and checks
 * each one's id under one id key, so setting a key up again (AES's key
 * schedule and GHASH table, HMAC's padded key blocks, HKDF's two HMACs
 * for the session key) is done once per key instead of once per chunk.
 */
#define HMAC_BLOCK 64 /* longer HMAC keys are hashed first: not kept */

struct tctx {
    EVP_MAC_CTX *mac;
    EVP_CIPHER_CTX *gcm;
    bool mac_keyed, gcm_keyed, gcm_enc, sess_valid;
    size_t mac_klen;
    uint8_t mac_key[HMAC_BLOCK];
    uint8_t gcm_key[PROTO_KEY_LEN];
    /* the last session key proto_unseal derived, and from what */
    uint8_t sess_base[PROTO_KEY_LEN], sess_salt[PROTO_SEAL_SALT];
    uint8_t sess_key[PROTO_KEY_LEN];
};

static void
tctx_free(void *p)
{
    struct tctx *t = p;

    EVP_MAC_CTX_free(t->mac);
    EVP_CIPHER_CTX_free(t->gcm);
    proto_wipe(t, sizeof *t);
    free(t);
}

static void
g_init(void)
{
    g_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    g_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    if (pthread_key_create(&g_key, tctx_free) != 0)
        abort();
}

/* This thread's contexts, or NULL (error set). */
static struct tctx *
tctx(void)
{
    static _Thread_local struct tctx *t;

    if (t)
        return t;
    pthread_once(&g_once, g_init);
    if (!g_hmac || !g_gcm) {
        lb_error(0, "OpenSSL: HMAC or AES-256-GCM is not available");
        return NULL;
    }
    t = lb_xcalloc(1, sizeof *t);
    t->mac = EVP_MAC_CTX_new(g_hmac);
    t->gcm = EVP_CIPHER_CTX_new();
    if (!t->mac || !t->gcm) {
        tctx_free(t);
        t = NULL;
        lb_error(0, "OpenSSL: cannot allocate a context");
        return NULL;
    }
    pthread_setspecific(g_key, t);
    return t;
}

void
proto_wipe(void *p, size_t len)
{
    OPENSSL_cleanse(p, len);
}

/* ---- HMAC, HKDF, scrypt -------------------------------------------------- */

/* Start an HMAC-SHA256 under key on this thread's context. */
static EVP_MAC_CTX *
hmac_start(const uint8_t *key, size_t klen)
{
    struct tctx *t = tctx();
    OSSL_PARAM params[2];
    static const uint8_t nokey[1];

    if (!t)
        return NULL;
    /* The same key as last time: a NULL key restarts the HMAC from the
     * key state the context kept. */
    if (t->mac_keyed && t->mac_klen == klen &&
        CRYPTO_memcmp(t->mac_key, klen ? key : nokey, klen) == 0) {
        if (EVP_MAC_init(t->mac, NULL, 0, NULL) != 1) {
            t->mac_keyed = false;
            lb_error(0, "OpenSSL: HMAC-SHA256 failed");
            return NULL;
        }
        return t->mac;
    }
    t->mac_keyed = false;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    /* HMAC pads a key with zeros: an empty key is 64 zero bytes, and
     * OpenSSL wants a non-NULL pointer for it. */
    if (EVP_MAC_init(t->mac, klen ? key : nokey, klen, params) != 1) {
        lb_error(0, "OpenSSL: HMAC-SHA256 failed");
        return NULL;
    }
    if (klen <= sizeof t->mac_key) {
        if (klen) /* key may be NULL then */
            memcpy(t->mac_key, key, klen);
        t->mac_klen = klen;
        t->mac_keyed = true;
    }
    return t->mac;
}

static int
hmac_end(EVP_MAC_CTX *c, uint8_t out[PROTO_MAC_LEN])
{
    size_t n = 0;

    if (EVP_MAC_final(c, out, &n, PROTO_MAC_LEN) != 1 || n != PROTO_MAC_LEN)
        return lb_error(0, "OpenSSL: HMAC-SHA256 failed");
    return 0;
}

int
proto_hmac_sha256(const uint8_t *key, size_t klen, const void *a, size_t alen,
                  const void *b, size_t blen, uint8_t out[PROTO_MAC_LEN])
{
    EVP_MAC_CTX *c = hmac_start(key, klen);

    if (!c)
        return -1;
    if ((alen && EVP_MAC_update(c, a, alen) != 1) ||
        (blen && EVP_MAC_update(c, b, blen) != 1))
        return lb_error(0, "OpenSSL: HMAC-SHA256 failed");
    return hmac_end(c, out);
}

int
proto_hkdf_sha256(const uint8_t *ikm, size_t ikmlen, const uint8_t *salt,
                  size_t saltlen, const void *info, size_t infolen,
                  uint8_t *out, size_t outlen)
{
    uint8_t prk[PROTO_MAC_LEN], t[PROTO_MAC_LEN];
    size_t done = 0;
    int r = -1;

    if (outlen > (size_t)255 * PROTO_MAC_LEN)
        return lb_error(0, "HKDF: %zu bytes asked, at most %d", outlen,
                        255 * PROTO_MAC_LEN);
    /* Extract: PRK = HMAC(salt, IKM). Expand: T(i) = HMAC(PRK, T(i-1) ||
     * info || i), OKM = T(1) || T(2) || ... */
    if (proto_hmac_sha256(salt, saltlen, ikm, ikmlen, NULL, 0, prk) < 0)
        goto out;
    for (uint8_t i = 1; done < outlen; i++) {
        EVP_MAC_CTX *c = hmac_start(prk, sizeof prk);
        if (!c)
            goto out;
        if ((i > 1 && EVP_MAC_update(c, t, sizeof t) != 1) ||
            (infolen && EVP_MAC_update(c, info, infolen) != 1) ||
            EVP_MAC_update(c, &i, 1) != 1) {
            lb_error(0, "OpenSSL: HMAC-SHA256 failed");
            goto out;
        }
        if (hmac_end(c, t) < 0)
            goto out;
        memcpy(out + done, t, LB_MIN(sizeof t, outlen - done));
        done += LB_MIN(sizeof t, outlen - done);
    }
    r = 0;
out:
    proto_wipe(prk, sizeof prk);
    proto_wipe(t, sizeof t);
    return r;
}

int
proto_scrypt(const void *pass, size_t passlen, const uint8_t *salt,
             size_t saltlen, uint64_t n, uint32_t r, uint32_t p, uint8_t *out,
             size_t outlen)
{
    /* OpenSSL refuses to use more than maxmem; the caller bounded N and r
     * (a key file's decoder does), this only has to let that through. */
    uint64_t maxmem = 128ull * r * (n + 2) + 128ull * r * p + (1u << 20);

    if (EVP_PBE_scrypt(pass, passlen, salt, saltlen, n, r, p, maxmem, out,
                       outlen) != 1)
        return lb_error(0, "OpenSSL: scrypt (N %llu, r %u, p %u) failed",
                        (unsigned long long)n, r, p);
    return 0;
}

/*
 * Argon2id's memory (64 MiB for a key file): its own mapping, aligned to
 * and advised for transparent huge pages and populated at once, instead
 * of malloc's, whose pages fault in one by one as the first pass touches
 * them. On a host where a fault of fresh memory is slow (a VM whose
 * memory its hypervisor backs on first touch) those faults were most of
 * an unlock: 0.19-0.23 s, against 0.03-0.08 s so in three benchmark runs
 * of five (the other two as slow as before: memory not yet backed costs
 * its time either way; README, "Encryption"). Both
 * advices are hints; without them (an older kernel, THP off) the mapping
 * faults in as malloc's did. libargon2 wipes the memory before it hands
 * it back (its default), then it is unmapped.
 */
#define ARGON2_ALIGN ((size_t)2 << 20)

static int
argon2_alloc(uint8_t **memory, size_t bytes)
{
    size_t len = bytes + ARGON2_ALIGN, page = (size_t)sysconf(_SC_PAGESIZE);
    uint8_t *m, *at, *end;

    m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
             -1, 0);
    if (m == MAP_FAILED)
        return -1;
    /* keep the aligned part only */
    at = m + ((ARGON2_ALIGN - ((uintptr_t)m & (ARGON2_ALIGN - 1))) &
              (ARGON2_ALIGN - 1));
    if (at > m)
        munmap(m, (size_t)(at - m));
    end = at + ((bytes + page - 1) & ~(page - 1));
    if (m + len > end)
        munmap(end, (size_t)(m + len - end));
#ifdef MADV_HUGEPAGE
    (void)madvise(at, bytes, MADV_HUGEPAGE);
#endif
#ifdef MADV_POPULATE_WRITE
    (void)madvise(at, bytes, MADV_POPULATE_WRITE);
#endif
    *memory = at;
    return 0;
}

static void
argon2_free(uint8_t *memory, size_t bytes)
{
    munmap(memory, bytes);
}

int
proto_argon2id(const void *pass, size_t passlen, const uint8_t *salt,
               size_t saltlen, const void *secret, size_t secretlen,
               const void *ad, size_t adlen, uint32_t t, uint32_t m_kib,
               uint32_t p, uint8_t *out, size_t outlen)
{
    /* libargon2 takes non-const pointers: with flags 0 it clears neither
     * the password nor the secret, it only reads them. */
    argon2_context c = {
        .out = out,
        .outlen = (uint32_t)outlen,
        .pwd = (uint8_t *)pass,
        .pwdlen = (uint32_t)passlen,
        .salt = (uint8_t *)salt,
        .saltlen = (uint32_t)saltlen,
        .secret = (uint8_t *)secret,
        .secretlen = (uint32_t)secretlen,
        .ad = (uint8_t *)ad,
        .adlen = (uint32_t)adlen,
        .t_cost = t,
        .m_cost = m_kib,
        .lanes = p,
        /* the lanes of a pass run side by side, one thread each */
        .threads = p,
        .version = ARGON2_VERSION_13,
        .flags = ARGON2_DEFAULT_FLAGS,
        .allocate_cbk = argon2_alloc,
        .free_cbk = argon2_free,
    };
    int rc;

    if (passlen > UINT32_MAX || saltlen > UINT32_MAX ||
        secretlen > UINT32_MAX || adlen > UINT32_MAX || outlen > UINT32_MAX)
        return lb_fail(EINVAL, "Argon2id: an input is too long");
    rc = argon2_ctx(&c, Argon2_id);
    if (rc != ARGON2_OK)
        return lb_fail(rc == ARGON2_MEMORY_ALLOCATION_ERROR ? ENOMEM : EINVAL,
                       "Argon2id (t %u, m %u KiB, p %u) failed: %s", t, m_kib,
                       p, argon2_error_message(rc));
    return 0;
}

/* ---- AES-256-GCM --------------------------------------------------------- */

static int
gcm(bool enc, const uint8_t *key, const uint8_t *nonce, const void *aad,
    size_t aadlen, const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
    struct tctx *t = tctx();
    EVP_CIPHER_CTX *c;
    uint8_t fin[PROTO_GCM_TAG]; /* GCM's final step writes nothing */
    int n = 0, ok;

    if (!t)
        return -1;
    if (len > INT_MAX || aadlen > INT_MAX)
        return lb_error(0, "AES-256-GCM: %zu bytes is too long", len);
    c = t->gcm;
    /* The key set up last time on this context: only the nonce changes
     * (a NULL cipher and key keep both; a new cipher resets the context
     * and sets the key up again). */
    if (t->gcm_keyed && t->gcm_enc == enc &&
        CRYPTO_memcmp(t->gcm_key, key, PROTO_KEY_LEN) == 0) {
        ok = EVP_CipherInit_ex(c, NULL, NULL, NULL, nonce, enc) == 1;
    } else {
        t->gcm_keyed = false;
        ok = EVP_CipherInit_ex(c, g_gcm, NULL, key, nonce, enc) == 1;
        if (ok) {
            memcpy(t->gcm_key, key, PROTO_KEY_LEN);
            t->gcm_enc = enc;
            t->gcm_keyed = true;
        }
    }
    ok = ok &&
         (!aadlen || EVP_CipherUpdate(c, NULL, &n, aad, (int)aadlen) == 1) &&
         (!len || EVP_CipherUpdate(c, out, &n, in, (int)len) == 1);
    if (ok && !enc &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, PROTO_GCM_TAG, tag) != 1)
        ok = 0;
    if (!ok) {
        t->gcm_keyed = false;
        return lb_error(0, "OpenSSL: AES-256-GCM failed");
    }
    if (EVP_CipherFinal_ex(c, fin, &n) != 1) {
        t->gcm_keyed = false;
        if (enc)
            return lb_error(0, "OpenSSL: AES-256-GCM failed");
        return lb_fail(EBADMSG, "authentication failed");
    }
    if (enc &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, PROTO_GCM_TAG, tag) != 1)
        return lb_error(0, "OpenSSL: AES-256-GCM failed");
    return 0;
}

int
proto_gcm_seal(const uint8_t key[PROTO_KEY_LEN],
               const uint8_t nonce[PROTO_GCM_NONCE], const void *aad,
               size_t aadlen, const uint8_t *in, size_t len, uint8_t *out,
               uint8_t tag[PROTO_GCM_TAG])
{
    return gcm(true, key, nonce, aad, aadlen, in, len, out, tag);
}

int
proto_gcm_open(const uint8_t key[PROTO_KEY_LEN],
               const uint8_t nonce[PROTO_GCM_NONCE], const void *aad,
               size_t aadlen, const uint8_t *in, size_t len, uint8_t *out,
               const uint8_t tag[PROTO_GCM_TAG])
{
    uint8_t t[PROTO_GCM_TAG];

    memcpy(t, tag, sizeof t);
    return gcm(false, key, nonce, aad, aadlen, in, len, out, t);
}

/* ---- CRC-32C ------------------------------------------------------------- */

#define CRC_POLY 0x82F63B78u /* reflected */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__)
/*
 * The SSE 4.2 instruction computes exactly this CRC, 8 bytes at a time,
 * one a cycle but with a latency of three: one dependent chain runs at a
 * third of the unit's speed. So a long buffer is done as three streams
 * of STREAM bytes side by side, whose CRCs are then put together: the
 * CRC of A || B is the CRC of A "shifted" over len(B) zero bytes, xor the
 * CRC of B (both started from 0). The shift over a fixed length is a
 * linear map of the 32 CRC bits, applied by four byte tables.
 */
#define STREAM ((size_t)4096)
static uint32_t crc_shift_tab[4][256];

/* mat (32 columns) times vec, over GF(2). */
static uint32_t
gf2_times(const uint32_t *mat, uint32_t vec)
{
    uint32_t sum = 0;

    for (; vec; vec >>= 1, mat++)
        if (vec & 1)
            sum ^= *mat;
    return sum;
}

static void
gf2_square(uint32_t *sq, const uint32_t *mat)
{
    for (int n = 0; n < 32; n++)
        sq[n] = gf2_times(mat, mat[n]);
}

/* The tables that shift a CRC over STREAM zero bytes. */
static void
crc_shift_init(void)
{
    uint32_t a[32], b[32], *op = a, *sq = b;

    /* One zero bit: the register shifts right, the polynomial comes in
     * when the low bit falls out. */
    op[0] = CRC_POLY;
    for (int n = 1; n < 32; n++)
        op[n] = 1u << (n - 1);
    /* Squared: 2, 4, ... 8 * STREAM zero bits (STREAM is a power of 2). */
    for (size_t bits = 1; bits < 8 * STREAM; bits *= 2) {
        uint32_t *t = sq;
        gf2_square(sq, op);
        sq = op;
        op = t;
    }
    for (uint32_t n = 0; n < 256; n++)
        for (int k = 0; k < 4; k++)
            crc_shift_tab[k][n] = gf2_times(op, n << (8 * k));
}

static uint32_t
crc_shift(uint32_t c)
{
    return crc_shift_tab[0][c & 0xFF] ^ crc_shift_tab[1][(c >> 8) & 0xFF] ^
           crc_shift_tab[2][(c >> 16) & 0xFF] ^ crc_shift_tab[3][c >> 24];
}

static uint64_t
load64(const uint8_t *p)
{
    uint64_t w;

    memcpy(&w, p, 8);
    return w;
}

__attribute__((target("sse4.2"))) static uint32_t
crc_hw(uint32_t c, const uint8_t *p, size_t len)
{
    uint64_t c0 = c;

    for (; len >= 3 * STREAM; p += 3 * STREAM, len -= 3 * STREAM) {
        uint64_t c1 = 0, c2 = 0;
        for (size_t i = 0; i < STREAM; i += 8) {
            c0 = __builtin_ia32_crc32di(c0, load64(p + i));
            c1 = __builtin_ia32_crc32di(c1, load64(p + STREAM + i));
            c2 = __builtin_ia32_crc32di(c2, load64(p + 2 * STREAM + i));
        }
        /* The register, not the finished CRC: no inversions here. */
        c0 = crc_shift((uint32_t)c0) ^ (uint32_t)c1;
        c0 = crc_shift((uint32_t)c0) ^ (uint32_t)c2;
    }
    for (; len >= 8; p += 8, len -= 8)
        c0 = __builtin_ia32_crc32di(c0, load64(p));
    c = (uint32_t)c0;
    for (; len; p++, len--)
        c = __builtin_ia32_crc32qi(c, *p);
    return c;
}
#endif

static void
crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ CRC_POLY : c >> 1;
        crc_table[i] = c;
    }
#if defined(__x86_64__)
    crc_shift_init();
#endif
}

uint32_t
proto_crc32c(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint32_t c = ~crc;

    pthread_once(&crc_once, crc_init);
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2"))
        return ~crc_hw(c, p, len);
#endif
    for (; len; p++, len--)
        c = crc_table[(c ^ *p) & 0xFF] ^ (c >> 8);
    return ~c;
}

/* ---- keys ---------------------------------------------------------------- */

static int
derive(const uint8_t *ikm, const char *info, uint8_t *out, size_t len)
{
    return proto_hkdf_sha256(ikm, PROTO_KEY_LEN, NULL, 0, info, strlen(info),
                             out, len);
}

int
proto_keys_derive(const uint8_t master[PROTO_KEY_LEN], struct proto_keys *k)
{
    if (derive(master, "livebackup v1 chunk id", k->id, sizeof k->id) < 0 ||
        derive(master, "livebackup v1 chunk data", k->data, sizeof k->data) <
            0 ||
        derive(master, "livebackup v1 metadata", k->meta, sizeof k->meta) < 0 ||
        derive(master, "livebackup v1 manifest mac", k->mac, sizeof k->mac) <
            0 ||
        derive(master, "livebackup v1 key id", k->key_id, sizeof k->key_id) <
            0) {
        proto_wipe(k, sizeof *k);
        return -1;
    }
    return 0;
}

int
proto_chunk_id(const struct proto_keys *k, uint8_t type, const void *plain,
               size_t len, struct proto_digest *out)
{
    return proto_hmac_sha256(k->id, sizeof k->id, &type, 1, plain, len, out->b);
}

/* ---- the envelope -------------------------------------------------------- */

#define SESSION_INFO "livebackup v1 session"

static int
session_key(const uint8_t *base, const uint8_t *salt, uint8_t out[32])
{
    return proto_hkdf_sha256(base, PROTO_KEY_LEN, salt, PROTO_SEAL_SALT,
                             SESSION_INFO, strlen(SESSION_INFO), out,
                             PROTO_KEY_LEN);
}

int
proto_sealer_init(struct proto_sealer *s, const uint8_t base[PROTO_KEY_LEN])
{
    if (lb_random(s->salt, sizeof s->salt) < 0 ||
        session_key(base, s->salt, s->key) < 0)
        return -1;
    s->next = 0;
    return 0;
}

void
proto_sealer_wipe(struct proto_sealer *s)
{
    proto_wipe(s->key, sizeof s->key);
}

int
proto_seal(struct proto_sealer *s, const void *aad, size_t aadlen, uint8_t *buf,
           size_t len)
{
    /* The nonce: 32 zero bits and a 64-bit counter, never repeated under
     * this session's key (2^64 seals are out of reach). */
    uint64_t n = s->next++;
    uint8_t *nonce = buf + PROTO_SEAL_SALT;

    memcpy(buf, s->salt, PROTO_SEAL_SALT);
    lb_store_be32(nonce, 0);
    lb_store_be64(nonce + 4, n);
    return proto_gcm_seal(s->key, nonce, aad, aadlen, buf + PROTO_SEAL_HDR, len,
                          buf + PROTO_SEAL_HDR, buf + PROTO_SEAL_HDR + len);
}

int
proto_unseal(const uint8_t base[PROTO_KEY_LEN], const void *aad, size_t aadlen,
             const uint8_t *env, size_t envlen, uint8_t *out)
{
    struct tctx *t = tctx();
    size_t len;

    if (!t)
        return -1;
    if (envlen < PROTO_SEAL_OVERHEAD)
        return lb_fail(EPROTO, "sealed data of %zu bytes is too short", envlen);
    len = envlen - PROTO_SEAL_OVERHEAD;
    /* The chunks of one backup share their session (the writer's salt):
     * its key is derived once per thread, not per envelope. */
    if (!t->sess_valid ||
        CRYPTO_memcmp(t->sess_salt, env, PROTO_SEAL_SALT) != 0 ||
        CRYPTO_memcmp(t->sess_base, base, PROTO_KEY_LEN) != 0) {
        t->sess_valid = false;
        if (session_key(base, env, t->sess_key) < 0)
            return -1;
        memcpy(t->sess_base, base, PROTO_KEY_LEN);
        memcpy(t->sess_salt, env, PROTO_SEAL_SALT);
        t->sess_valid = true;
    }
    /* The tag is copied out first: out may overlap the envelope. */
    return proto_gcm_open(t->sess_key, env + PROTO_SEAL_SALT, aad, aadlen,
                          env + PROTO_SEAL_HDR, len, out,
                          env + PROTO_SEAL_HDR + len);
}

/* ---- sealed chunks ------------------------------------------------------- */

void
proto_chunk_aad(uint8_t out[PROTO_CHUNK_AAD], const struct proto_chunk *c)
{
    memcpy(out, c->d.b, PROTO_DIGEST_LEN);
    out[PROTO_DIGEST_LEN] = c->type;
    lb_store_be32(out + PROTO_DIGEST_LEN + 1, c->raw_len);
}

int
proto_chunk_sealed_check(const struct proto_chunk *c)
{
    if (c->comp != PROTO_COMP_SEALED)
        return PROTO_E_RANGE;
    /* At least one stored byte inside; at most the plaintext itself (a
     * sender stores it as is when zstd does not shrink it). */
    if (c->data_len < PROTO_SEALED_MIN ||
        c->data_len > PROTO_SEALED_MAX(c->raw_len))
        return PROTO_E_RANGE;
    return PROTO_OK;
}
