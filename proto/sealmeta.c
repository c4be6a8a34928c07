/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What an encrypted repository keeps of a backup besides its chunks
 * (store/FORMAT.md, "Sealed metadata" and "Manifest MAC"): the metadata
 * that tells about the guest, sealed into one kv value, and the MAC that
 * authenticates a whole manifest. The MAC is over a canonical form (the
 * window stacks as version 1 writes them, every kv list sorted by key), so
 * it does not change with the way a manifest file encodes its windows.
 */
#include "proto/crypt.h"

#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

/* ---- canonical kv lists -------------------------------------------------- */

static int
cmp_entry(const void *a, const void *b)
{
    const struct proto_kv_entry *x = a, *y = b;

    return strcmp(x->key, y->key);
}

/* The keys of a meta block the MAC leaves out: the MAC itself, and the
 * bookkeeping of the repository the backup is in (its commit number and
 * what the commit added there), which a copy into another repository of
 * the same key rewrites without the key (FORMAT.md, "Manifest MAC"). */
static const char *const unmacked[] = {PROTO_META_MAC, "seq", "chunks_new",
                                       "bytes_new", "bytes_received"};

bool
proto_mf_mac_covers(const char *key)
{
    for (size_t i = 0; i < LB_ARRAY_SIZE(unmacked); i++)
        if (strcmp(key, unmacked[i]) == 0)
            return false;
    return true;
}

void
proto_kv_canonical(struct lb_buf *b, const struct proto_kv *kv,
                   bool (*keep)(const char *key))
{
    /* Sorted copies of the entries (their strings stay kv's). */
    struct proto_kv_entry *e = lb_xmalloc((kv->n ? kv->n : 1) * sizeof *e);
    uint32_t n = 0;

    for (size_t i = 0; i < kv->n; i++)
        if (!keep || keep(kv->e[i].key))
            e[n++] = kv->e[i];
    qsort(e, n, sizeof *e, cmp_entry);
    lb_buf_put_be32(b, n);
    for (uint32_t i = 0; i < n; i++) {
        size_t vl = strlen(e[i].val);
        lb_buf_put_str16(b, e[i].key, strlen(e[i].key));
        lb_buf_put_be32(b, (uint32_t)vl);
        lb_buf_append(b, e[i].val, vl);
    }
    free(e);
}

/* ---- sealed metadata ----------------------------------------------------- */

/* The associated data of sealed metadata: str16 id || str16 disk. */
static void
meta_aad(struct lb_buf *b, const char *id, const char *disk)
{
    lb_buf_put_str16(b, id, strlen(id));
    lb_buf_put_str16(b, disk, strlen(disk));
}

int
proto_meta_seal(struct proto_sealer *s, const char *id, const char *disk,
                const struct proto_kv *in, bool (*clear)(const char *key),
                struct proto_kv *out)
{
    struct proto_kv hidden = {0};
    struct lb_buf plain = {0}, aad = {0};
    uint8_t *env = NULL;
    char *hex = NULL;
    size_t len;
    int r = -1;

    for (size_t i = 0; i < in->n; i++) {
        const struct proto_kv_entry *e = &in->e[i];
        if (strcmp(e->key, PROTO_META_SEALED) == 0 ||
            strcmp(e->key, PROTO_META_MAC) == 0) {
            lb_fail(EINVAL, "metadata key '%s' is reserved", e->key);
            goto out;
        }
        proto_kv_set(clear(e->key) ? out : &hidden, e->key, e->val);
    }
    if (hidden.n == 0)
        return 0;
    /* The kv encoding, sealed, in hex: a kv value is text. */
    proto_kv_encode(&plain, &hidden);
    len = plain.len;
    if (2 * (len + PROTO_SEAL_OVERHEAD) > PROTO_MAX_VALUE) {
        lb_fail(EINVAL, "%zu bytes of metadata are too many to seal", len);
        goto out;
    }
    env = lb_xmalloc(len + PROTO_SEAL_OVERHEAD);
    memcpy(env + PROTO_SEAL_HDR, plain.data, len);
    meta_aad(&aad, id, disk);
    if (proto_seal(s, aad.data, aad.len, env, len) < 0)
        goto out;
    hex = lb_xmalloc(2 * (len + PROTO_SEAL_OVERHEAD) + 1);
    lb_hex_encode(hex, env, len + PROTO_SEAL_OVERHEAD);
    proto_kv_set(out, PROTO_META_SEALED, hex);
    r = 0;
out:
    if (plain.data)
        proto_wipe(plain.data, plain.len);
    lb_buf_free(&plain);
    lb_buf_free(&aad);
    free(env);
    free(hex);
    proto_kv_free(&hidden);
    return r;
}

int
proto_meta_unseal(const uint8_t meta_key[PROTO_KEY_LEN], const char *id,
                  const char *disk, struct proto_kv *kv)
{
    const char *hex = proto_kv_get(kv, PROTO_META_SEALED);
    struct proto_kv inner = {0}, merged = {0};
    struct lb_buf aad = {0};
    struct proto_rd pr;
    uint8_t *env = NULL;
    size_t hl, el;
    int st, r = -1;

    if (!hex)
        return 0;
    hl = strlen(hex);
    el = hl / 2;
    if (hl % 2 || el < PROTO_SEAL_OVERHEAD) {
        lb_fail(EPROTO, "sealed metadata: malformed");
        goto out;
    }
    env = lb_xmalloc(el);
    if (lb_hex_decode(env, el, hex) < 0) {
        lb_fail(EPROTO, "sealed metadata: malformed");
        goto out;
    }
    meta_aad(&aad, id, disk);
    if (proto_unseal(meta_key, aad.data, aad.len, env, el,
                     env + PROTO_SEAL_HDR) < 0) {
        lb_error_prefix("sealed metadata");
        goto out;
    }
    proto_rd_init(&pr, env + PROTO_SEAL_HDR, el - PROTO_SEAL_OVERHEAD);
    st = proto_kv_decode(&pr, &inner);
    if (st == PROTO_OK && (st = proto_rd_done(&pr)) != PROTO_OK)
        proto_kv_free(&inner);
    if (st != PROTO_OK) {
        lb_fail(EPROTO, "sealed metadata: %s", proto_status_str(st));
        goto out;
    }
    for (size_t i = 0; i < kv->n; i++)
        if (strcmp(kv->e[i].key, PROTO_META_SEALED) != 0)
            proto_kv_set(&merged, kv->e[i].key, kv->e[i].val);
    for (size_t i = 0; i < inner.n; i++) {
        if (proto_kv_get(&merged, inner.e[i].key) ||
            strcmp(inner.e[i].key, PROTO_META_SEALED) == 0) {
            lb_fail(EPROTO, "sealed metadata: key '%s' twice", inner.e[i].key);
            goto out;
        }
        proto_kv_set(&merged, inner.e[i].key, inner.e[i].val);
    }
    proto_kv_free(kv);
    *kv = merged;
    memset(&merged, 0, sizeof merged);
    r = 0;
out:
    if (env)
        proto_wipe(env, el);
    free(env);
    lb_buf_free(&aad);
    proto_kv_free(&inner);
    proto_kv_free(&merged);
    return r;
}

/* ---- manifest MACs ------------------------------------------------------- */

#define MAC_TAG "LBMFMAC1"

struct mac_disk {
    char name[65];
    uint64_t size, nwindows, seen;
    uint32_t window_size;
    uint8_t stacks[PROTO_DIGEST_LEN]; /* SHA-256 of its window stacks */
    bool ended, has_meta;
    struct lb_buf meta; /* its metadata, canonical */
};

struct proto_mf_mac {
    struct mac_disk d[PROTO_MF_MAX_DISKS];
    size_t n;
    EVP_MD_CTX *sha; /* the stacks of the disk being fed */
};

struct proto_mf_mac *
proto_mf_mac_new(void)
{
    struct proto_mf_mac *m = lb_xcalloc(1, sizeof *m);

    m->sha = EVP_MD_CTX_new();
    if (!m->sha) {
        free(m);
        lb_error(0, "OpenSSL: cannot allocate a digest context");
        return NULL;
    }
    return m;
}

void
proto_mf_mac_free(struct proto_mf_mac *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        lb_buf_free(&m->d[i].meta);
    EVP_MD_CTX_free(m->sha);
    free(m);
}

size_t
proto_mf_mac_ndisks(const struct proto_mf_mac *m)
{
    return m->n;
}

int
proto_mf_mac_disk_begin(struct proto_mf_mac *m, const struct proto_mf_disk *d)
{
    struct mac_disk *x;

    if (m->n == PROTO_MF_MAX_DISKS || (m->n && !m->d[m->n - 1].ended))
        return lb_error(0, "manifest MAC: disk %s out of order", d->name);
    x = &m->d[m->n++];
    snprintf(x->name, sizeof x->name, "%s", d->name);
    x->size = d->size;
    x->window_size = d->window_size;
    x->nwindows = d->nwindows;
    if (EVP_DigestInit_ex(m->sha, EVP_sha256(), NULL) != 1)
        return lb_error(0, "OpenSSL: SHA-256 failed");
    return 0;
}

int
proto_mf_mac_window(struct proto_mf_mac *m, const struct proto_mf_window *w)
{
    struct mac_disk *x = m->n ? &m->d[m->n - 1] : NULL;
    uint8_t buf[1 + PROTO_MAX_STACK * (1 + PROTO_DIGEST_LEN)];
    size_t at = 1;

    if (!x || x->ended || x->seen == x->nwindows || w->depth > PROTO_MAX_STACK)
        return lb_error(0, "manifest MAC: window out of order");
    buf[0] = w->depth;
    for (uint8_t i = 0; i < w->depth; i++) {
        buf[at] = w->refs[i].type;
        memcpy(buf + at + 1, w->refs[i].d.b, PROTO_DIGEST_LEN);
        at += 1 + PROTO_DIGEST_LEN;
    }
    x->seen++;
    if (EVP_DigestUpdate(m->sha, buf, at) != 1)
        return lb_error(0, "OpenSSL: SHA-256 failed");
    return 0;
}

int
proto_mf_mac_disk_end(struct proto_mf_mac *m)
{
    struct mac_disk *x = m->n ? &m->d[m->n - 1] : NULL;
    unsigned n = 0;

    if (!x || x->ended || x->seen != x->nwindows)
        return lb_error(0, "manifest MAC: disk ended before its last window");
    if (EVP_DigestFinal_ex(m->sha, x->stacks, &n) != 1 || n != PROTO_DIGEST_LEN)
        return lb_error(0, "OpenSSL: SHA-256 failed");
    x->ended = true;
    return 0;
}

int
proto_mf_mac_disk_meta(struct proto_mf_mac *m, size_t i,
                       const struct proto_kv *meta)
{
    if (i >= m->n)
        return lb_error(0, "manifest MAC: no disk %zu", i);
    lb_buf_reset(&m->d[i].meta);
    proto_kv_canonical(&m->d[i].meta, meta, NULL);
    m->d[i].has_meta = true;
    return 0;
}

int
proto_mf_mac_finish(struct proto_mf_mac *m, const uint8_t key[PROTO_KEY_LEN],
                    const struct proto_kv *meta, uint8_t out[PROTO_MAC_LEN])
{
    struct lb_buf b = {0};
    int r = -1;

    lb_buf_append(&b, MAC_TAG, 8);
    lb_buf_put_be32(&b, (uint32_t)m->n);
    for (size_t i = 0; i < m->n; i++) {
        const struct mac_disk *x = &m->d[i];
        if (!x->ended || !x->has_meta) {
            lb_error(0, "manifest MAC: disk %s is incomplete", x->name);
            goto out;
        }
        lb_buf_put_str16(&b, x->name, strlen(x->name));
        lb_buf_put_be64(&b, x->size);
        lb_buf_put_be32(&b, x->window_size);
        lb_buf_put_be64(&b, x->nwindows);
        lb_buf_append(&b, x->stacks, sizeof x->stacks);
        lb_buf_append(&b, x->meta.data, x->meta.len);
    }
    proto_kv_canonical(&b, meta, proto_mf_mac_covers);
    r = proto_hmac_sha256(key, PROTO_KEY_LEN, b.data, b.len, NULL, 0, out);
out:
    lb_buf_free(&b);
    return r;
}
