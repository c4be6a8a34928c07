/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * scrypt (RFC 7914) with its p lanes overlapped on two threads
 * (proto/crypt.h).
 *
 * scrypt is PBKDF2-HMAC-SHA256 of the passphrase and salt into p blocks
 * of 128·r bytes, each block run through ROMix (N steps of BlockMix that
 * fill a table of N blocks, then N steps that read it at random), and
 * PBKDF2 again of the passphrase salted with the result. The p ROMix runs
 * (lanes) are independent; OpenSSL's EVP_PBE_scrypt runs them one after
 * the other. Here a lane starts when the one before it has a quarter of
 * its steps left, on the other thread: at that point the earlier lane's
 * table is full and the new one's is empty, and it is half full when the
 * earlier one ends and frees its table, so no more than one and a half
 * tables are ever in memory (where running two lanes side by side would
 * hold two), and p = 3 takes 5/6 of the time on two CPUs. Tables larger
 * than SCRYPT_OVERLAP_MAX (a hostile key file's) never overlap.
 *
 * PBKDF2 is OpenSSL's; ROMix, BlockMix and Salsa20/8 are RFC 7914's
 * sections 3 to 5, as plain as the RFC's reference code, and checked
 * against the RFC's vectors and against OpenSSL's scrypt in the unit
 * tests.
 */
#include "proto/crypt.h"

#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

/* The largest table (128·r·N bytes) whose lanes overlap: the default
 * parameters' 32 MiB. */
#define SCRYPT_OVERLAP_MAX (32u << 20)

static uint32_t
load_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void
store_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline uint32_t
rotl(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

/* Salsa20/8 core (RFC 7914 section 3) on B, in place. */
static void
salsa20_8(uint32_t b[16])
{
    uint32_t x[16];

    memcpy(x, b, sizeof x);
    for (int i = 0; i < 8; i += 2) {
        /* columns */
        x[4] ^= rotl(x[0] + x[12], 7);
        x[8] ^= rotl(x[4] + x[0], 9);
        x[12] ^= rotl(x[8] + x[4], 13);
        x[0] ^= rotl(x[12] + x[8], 18);
        x[9] ^= rotl(x[5] + x[1], 7);
        x[13] ^= rotl(x[9] + x[5], 9);
        x[1] ^= rotl(x[13] + x[9], 13);
        x[5] ^= rotl(x[1] + x[13], 18);
        x[14] ^= rotl(x[10] + x[6], 7);
        x[2] ^= rotl(x[14] + x[10], 9);
        x[6] ^= rotl(x[2] + x[14], 13);
        x[10] ^= rotl(x[6] + x[2], 18);
        x[3] ^= rotl(x[15] + x[11], 7);
        x[7] ^= rotl(x[3] + x[15], 9);
        x[11] ^= rotl(x[7] + x[3], 13);
        x[15] ^= rotl(x[11] + x[7], 18);
        /* rows */
        x[1] ^= rotl(x[0] + x[3], 7);
        x[2] ^= rotl(x[1] + x[0], 9);
        x[3] ^= rotl(x[2] + x[1], 13);
        x[0] ^= rotl(x[3] + x[2], 18);
        x[6] ^= rotl(x[5] + x[4], 7);
        x[7] ^= rotl(x[6] + x[5], 9);
        x[4] ^= rotl(x[7] + x[6], 13);
        x[5] ^= rotl(x[4] + x[7], 18);
        x[11] ^= rotl(x[10] + x[9], 7);
        x[8] ^= rotl(x[11] + x[10], 9);
        x[9] ^= rotl(x[8] + x[11], 13);
        x[10] ^= rotl(x[9] + x[8], 18);
        x[12] ^= rotl(x[15] + x[14], 7);
        x[13] ^= rotl(x[12] + x[15], 9);
        x[14] ^= rotl(x[13] + x[12], 13);
        x[15] ^= rotl(x[14] + x[13], 18);
    }
    for (int i = 0; i < 16; i++)
        b[i] += x[i];
}

/* scryptBlockMix (section 4) of the 2r 64-byte blocks of b into y. */
static void
blockmix(const uint32_t *b, uint32_t *y, size_t r)
{
    uint32_t x[16];

    memcpy(x, b + (2 * r - 1) * 16, sizeof x);
    for (size_t i = 0; i < 2 * r; i++) {
        for (int k = 0; k < 16; k++)
            x[k] ^= b[i * 16 + k];
        salsa20_8(x);
        /* even blocks to the first half, odd ones to the second */
        memcpy(y + (i / 2 + (i & 1) * r) * 16, x, sizeof x);
    }
}

/* The block just made becomes the one worked on. */
static void
swap(uint32_t **x, uint32_t **y)
{
    uint32_t *t = *x;

    *x = *y;
    *y = t;
}

/* scryptROMix (section 5), its first half: x, the lane's 128·r bytes as
 * words, run through N steps that fill the table v, steps from to end of
 * them here. y: room for a block. */
static void
romix_fill(uint32_t **x, uint32_t **y, size_t r, uint32_t *v, uint64_t from,
           uint64_t end)
{
    size_t words = 32 * r;

    for (uint64_t i = from; i < end; i++) {
        memcpy(v + i * words, *x, words * 4);
        blockmix(*x, *y, r);
        swap(x, y);
    }
}

/* Its second half, steps from to end (of N): each reads the table where
 * the block it has so far points. */
static void
romix_mix(uint32_t **x, uint32_t **y, size_t r, uint64_t n, const uint32_t *v,
          uint64_t from, uint64_t end)
{
    size_t words = 32 * r;

    for (uint64_t i = from; i < end; i++) {
        /* Integerify: the last block's first 64 bits, little-endian */
        const uint32_t *last = *x + (2 * r - 1) * 16;
        uint64_t j = (((uint64_t)last[1] << 32) | last[0]) & (n - 1);
        for (size_t k = 0; k < words; k++)
            (*x)[k] ^= v[j * words + k];
        blockmix(*x, *y, r);
        swap(x, y);
    }
}

/* The lanes, taken in order by the threads. Lane k may start once lane
 * k - 1 let it (lock, cv): when that one is 3/4 done, or ended; and fill
 * the second half of its table once lane k - 1 ended, whatever the
 * threads' speeds. */
struct lanes {
    uint8_t *b; /* p blocks of 128·r bytes */
    size_t r;
    uint64_t n;
    uint32_t p;
    uint64_t release; /* mix step at which a lane lets the next start */
    pthread_mutex_t lock;
    pthread_cond_t cv;
    uint32_t next;    /* the next lane to take */
    uint32_t allowed; /* lanes below this may start */
    uint32_t ended;   /* lanes below this ended (in order) */
    uint32_t done;    /* lanes run */
};

static void
lane_allow(struct lanes *l, uint32_t k)
{
    pthread_mutex_lock(&l->lock);
    if (l->allowed < k + 2)
        l->allowed = k + 2;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->lock);
}

/* Wait until lane k - 1 ended (its table is given back). */
static void
lane_wait_previous(struct lanes *l, uint32_t k)
{
    pthread_mutex_lock(&l->lock);
    while (l->ended < k)
        pthread_cond_wait(&l->cv, &l->lock);
    pthread_mutex_unlock(&l->lock);
}

static void
lane_end(struct lanes *l, uint32_t k, bool ok)
{
    pthread_mutex_lock(&l->lock);
    l->done += ok;
    l->ended = k + 1;
    if (l->allowed < k + 2)
        l->allowed = k + 2;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->lock);
}

/* Run lane k (allowed to start) with its own table, mapped for it alone
 * so that its memory is given back when it ends. */
static void
lane_run(struct lanes *l, uint32_t k)
{
    size_t words = 32 * l->r, vlen = words * 4 * (size_t)l->n;
    uint8_t *b = l->b + (size_t)k * 128 * l->r;
    uint32_t *xy = calloc(2 * words, 4), *x = xy, *y;
    void *v = mmap(NULL, vlen, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    bool ok = xy && v != MAP_FAILED;

    if (ok) {
        y = xy + words;
        for (size_t i = 0; i < words; i++)
            x[i] = load_le32(b + 4 * i);
        romix_fill(&x, &y, l->r, v, 0, l->n / 2);
        if (k)
            lane_wait_previous(l, k);
        romix_fill(&x, &y, l->r, v, l->n / 2, l->n);
        romix_mix(&x, &y, l->r, l->n, v, 0, l->release);
        lane_allow(l, k);
        romix_mix(&x, &y, l->r, l->n, v, l->release, l->n);
        for (size_t i = 0; i < words; i++)
            store_le32(b + 4 * i, x[i]);
        /* the table and the state are functions of the passphrase */
        proto_wipe(v, vlen);
        proto_wipe(xy, 2 * words * 4);
    }
    if (v != MAP_FAILED)
        munmap(v, vlen);
    free(xy);
    /* also when it failed: the next lanes run, and the call fails */
    lane_end(l, k, ok);
}

static void *
lanes_work(void *arg)
{
    struct lanes *l = arg;

    for (;;) {
        uint32_t k;
        pthread_mutex_lock(&l->lock);
        k = l->next++;
        while (k < l->p && k >= l->allowed)
            pthread_cond_wait(&l->cv, &l->lock);
        pthread_mutex_unlock(&l->lock);
        if (k >= l->p)
            return NULL;
        lane_run(l, k);
    }
}

int
proto_scrypt(const void *pass, size_t passlen, const uint8_t *salt,
             size_t saltlen, uint64_t n, uint32_t r, uint32_t p, uint8_t *out,
             size_t outlen)
{
    struct lanes l = {.r = r, .n = n, .p = p, .allowed = 1};
    pthread_t th;
    uint64_t vlen;
    size_t blen;
    bool two = false;
    int ret = -1;

    /* The bounds RFC 7914 sets, and what fits a size_t; the callers
     * bound N and r far lower (a key file's decoder does). */
    if (n < 2 || (n & (n - 1)) || r == 0 || p == 0 || passlen > INT_MAX ||
        saltlen > INT_MAX || outlen > INT_MAX ||
        (uint64_t)r * p >= (1u << 30) / 128 || n > SIZE_MAX / 128 / r ||
        (uint64_t)128 * r * n > PROTO_SCRYPT_MAX_MEM)
        return lb_fail(EINVAL, "scrypt: N %llu, r %u, p %u out of range",
                       (unsigned long long)n, r, p);
    vlen = (uint64_t)128 * r * n;
    blen = (size_t)128 * r * p;
    l.release = vlen <= SCRYPT_OVERLAP_MAX ? n / 2 : n;
    l.b = lb_xmalloc(blen);
    pthread_mutex_init(&l.lock, NULL);
    pthread_cond_init(&l.cv, NULL);
    if (PKCS5_PBKDF2_HMAC(pass, (int)passlen, salt, (int)saltlen, 1,
                          EVP_sha256(), (int)blen, l.b) != 1) {
        lb_error(0, "OpenSSL: PBKDF2-HMAC-SHA256 failed");
        goto out;
    }
    /* Lanes overlap on a second thread (if it starts: else this one runs
     * them all, in order). */
    if (p > 1 && l.release < n && lb_ncpus() > 1)
        two = pthread_create(&th, NULL, lanes_work, &l) == 0;
    lanes_work(&l);
    if (two)
        pthread_join(th, NULL);
    if (l.done != p) {
        lb_fail(ENOMEM, "scrypt: cannot allocate its %llu MiB table",
                (unsigned long long)(vlen >> 20));
        goto out;
    }
    if (PKCS5_PBKDF2_HMAC(pass, (int)passlen, l.b, (int)blen, 1, EVP_sha256(),
                          (int)outlen, out) != 1) {
        lb_error(0, "OpenSSL: PBKDF2-HMAC-SHA256 failed");
        goto out;
    }
    ret = 0;
out:
    proto_wipe(l.b, blen);
    free(l.b);
    pthread_mutex_destroy(&l.lock);
    pthread_cond_destroy(&l.cv);
    return ret;
}
