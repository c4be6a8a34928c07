/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Chunk files (FORMAT.md, "Chunk files"): chunks/ab/<sha256 hex>, a 16-byte
 * header and the stored (usually zstd) bytes. A chunk is checked before it
 * is stored, so a client can never plant data under a digest it does not
 * match, and written by temp file + fdatasync + link, so a chunk that is
 * present is complete: a later backup may safely reuse it.
 */
#include "proto/crypt.h"
#include "store/backend.h"
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

_Static_assert(STORE_CHUNK_HDR == 4 + 1 + 1 + 1 + 1 + 4 + 4,
               "chunk file header layout");
_Static_assert(STORE_CHUNK_HDR_SEALED == STORE_CHUNK_HDR + 4 + 4,
               "sealed chunk file header layout");

void
store_chunk_relpath(char out[80], const struct proto_digest *d)
{
    char hex[65];

    proto_digest_hex(d, hex);
    snprintf(out, 80, "chunks/%.2s/%s", hex, hex);
}

struct store_scratch *
store_scratch_new(void)
{
    struct store_scratch *s = lb_xcalloc(1, sizeof *s);

    s->plain = lb_xmalloc(PROTO_MAX_CHUNK_RAW);
    s->z = proto_zctx_new(3);
    return s;
}

void
store_scratch_free(struct store_scratch *s)
{
    if (!s)
        return;
    free(s->plain);
    lb_buf_free(&s->file);
    proto_zctx_free(s->z);
    free(s);
}

int
store_chunk_exists(struct store *st, const struct proto_digest *d)
{
    char rel[80];

    store_chunk_relpath(rel, d);
    if (st->be->ops->stat(st->be, rel, NULL, NULL) == 0)
        return 1;
    /* Not there, or not a chunk file (EPROTO: a directory, a symlink). */
    if (lb_error_errno() != ENOENT && lb_error_errno() != EPROTO)
        return -1;
    lb_error_clear();
    return 0;
}

int
store_chunk_touch(struct store *st, const struct proto_digest *d)
{
    char rel[80];

    if (st->mode == STORE_READ)
        return store_chunk_exists(st, d);
    /* The mtime says "a backup that is running depends on this chunk":
     * gc keeps every chunk not older than its cutoff, which is earlier
     * than the start of every running backup (FORMAT.md, "Garbage
     * collection"). A chunk gc has just moved aside reads as missing and
     * is uploaded again. */
    store_chunk_relpath(rel, d);
    if (st->be->ops->touch(st->be, rel) == 0)
        return 1;
    if (lb_error_errno() != ENOENT)
        return -1;
    lb_error_clear();
    return 0;
}

static int
chunk_head_check(const struct store *st, const char *rel, const uint8_t *b,
                 size_t n, uint64_t size, struct store_chunk_hdr *h)
{
    memset(h, 0, sizeof *h);
    if (store_chunk_hdr_decode(b, n, (size_t)size, h) != PROTO_OK ||
        (h->type == PROTO_CHUNK_RAW && h->raw_len > st->window_size) ||
        (h->type == PROTO_CHUNK_BLOB && h->raw_len > PROTO_MAX_BLOB) ||
        (h->comp == PROTO_COMP_SEALED) != (st->encryption != PROTO_ENC_NONE))
        return lb_fail(EPROTO, "chunk %s: bad header", rel + 10);
    return 0;
}

int
store_chunk_head(struct store *st, const struct proto_digest *d, bool touch,
                 struct store_chunk_hdr *h)
{
    int err = 0;

    if (store_chunk_head_many(st, d, 1, touch, h, &err) < 0)
        return -1;
    if (err == ENOENT) {
        char hex[65];
        proto_digest_hex(d, hex);
        return lb_fail(ENOENT, "chunk %s is not stored", hex);
    }
    if (err) {
        char hex[65];
        proto_digest_hex(d, hex);
        return lb_fail(EPROTO, "chunk %s: bad header", hex);
    }
    return 0;
}

int
store_chunk_head_many(struct store *st, const struct proto_digest *d, size_t n,
                      bool touch, struct store_chunk_hdr *h, int *err)
{
    char(*rel)[80] = NULL;
    const char **objs = NULL;
    uint8_t *head = NULL;
    size_t *got = NULL;
    uint64_t *size = NULL;
    int rc = 0;

    rel = lb_xcalloc(n ? n : 1, sizeof *rel);
    objs = lb_xcalloc(n ? n : 1, sizeof *objs);
    head = lb_xcalloc(n ? n : 1, STORE_CHUNK_HDR_SEALED);
    got = lb_xcalloc(n ? n : 1, sizeof *got);
    size = lb_xcalloc(n ? n : 1, sizeof *size);
    for (size_t i = 0; i < n; i++) {
        store_chunk_relpath(rel[i], &d[i]);
        objs[i] = rel[i];
    }
    rc =
        st->be->ops->head_many(st->be, objs, n, touch && st->mode != STORE_READ,
                               head, STORE_CHUNK_HDR_SEALED, got, size, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        memset(&h[i], 0, sizeof h[i]);
        if (err[i])
            continue;
        if (chunk_head_check(st, rel[i], head + i * STORE_CHUNK_HDR_SEALED,
                             got[i], size[i], &h[i]) < 0) {
            err[i] = EPROTO;
            lb_error_clear();
        }
    }
    free(rel);
    free(objs);
    free(head);
    free(got);
    free(size);
    return rc;
}

/* A chunk's form must be the repository's: sealed in an encrypted one,
 * plain or zstd in another; a RAW chunk is at most a window. */
static int
check_form(const struct store *st, const struct proto_chunk *c)
{
    char hex[65];

    if (c->type == PROTO_CHUNK_RAW && c->raw_len > st->window_size)
        return lb_fail(EPROTO,
                       "RAW chunk of %u bytes exceeds the window "
                       "size %u",
                       c->raw_len, st->window_size);
    if ((c->comp == PROTO_COMP_SEALED) == (st->encryption != PROTO_ENC_NONE))
        return c->comp == PROTO_COMP_SEALED &&
                       proto_chunk_sealed_check(c) != PROTO_OK
                   ? lb_fail(EPROTO, "sealed chunk of %u bytes for %u",
                             c->data_len, c->raw_len)
                   : 0;
    proto_digest_hex(&c->d, hex);
    return lb_fail(EPROTO,
                   c->comp == PROTO_COMP_SEALED
                       ? "chunk %s is encrypted, and this repository is not"
                       : "chunk %s is not encrypted, and this repository is",
                   hex);
}

/* Decompress and check plaintext against digest and type rules. A sealed
 * chunk's content cannot be checked without the key: only its form. */
static int
check_chunk(struct store *st, struct store_scratch *s,
            const struct proto_chunk *c)
{
    struct proto_digest got;

    if (check_form(st, c) < 0)
        return -1;
    if (c->comp == PROTO_COMP_SEALED)
        return 0;
    if (proto_chunk_decompress(s->z, s->plain, c->raw_len, c->data, c->data_len,
                               c->comp) < 0) {
        /* The slot's errno is the class (EPROTO: damaged data), not
         * decompress's 0. */
        lb_error_set_errno(EPROTO);
        errno = EPROTO;
        lb_error_prefix("chunk data");
        return -1;
    }
    if (proto_chunk_digest(c->type, s->plain, c->raw_len, &got) < 0)
        return -1;
    if (memcmp(got.b, c->d.b, PROTO_DIGEST_LEN) != 0) {
        char hex[65];
        proto_digest_hex(&c->d, hex);
        return lb_fail(EPROTO, "chunk %s: data does not match its digest", hex);
    }
    if (c->type == PROTO_CHUNK_DELTA) {
        /* The window length inside a DELTA must be a real window length:
         * the full size, or less for a disk's last window. */
        uint32_t wl = c->raw_len >= 8 ? lb_load_be32(s->plain + 4) : 0;
        int r;
        if (wl == 0 || wl > st->window_size)
            return lb_fail(EPROTO, "DELTA chunk for a window of %u bytes", wl);
        r = proto_delta_apply(NULL, wl, s->plain, c->raw_len);
        if (r != PROTO_OK)
            return lb_fail(EPROTO, "DELTA chunk: %s", proto_status_str(r));
    }
    return 0;
}

/*
 * Is chunk d stored, with the type and raw length a CHUNK frame declares?
 * 1 if so (and touched, like a chunk a QUERY finds: gc), 0 if it is not
 * stored, -1 otherwise (EPROTO: stored with another header; the window
 * records that name it are checked against the frame's,
 * store_txn_note_chunk).
 */
static int
stored_as_sent(struct store *st, const struct proto_digest *d, uint8_t type,
               uint32_t raw_len)
{
    struct store_chunk_hdr h = {0};
    char hex[65];

    if (store_chunk_head(st, d, true, &h) < 0) {
        if (lb_error_errno() != ENOENT)
            return -1;
        lb_error_clear();
        return 0;
    }
    if (h.type == type && h.raw_len == raw_len)
        return 1;
    proto_digest_hex(d, hex);
    lb_fail(EPROTO,
            "chunk %s is stored as type %u of %u bytes, sent as type %u of "
            "%u bytes",
            hex, h.type, h.raw_len, type, raw_len);
    return -1;
}

/* Stage the chunk file (header, stored bytes) for publish: 0 (w->staged
 * set), 1 if it is stored already as sent (touched), -1 on error. */
static int
chunk_stage(struct store *st, const struct proto_chunk *c, const uint8_t *hdr,
            size_t hdr_len, struct store_written *w)
{
    char rel[80];

    store_chunk_relpath(rel, &c->d);
    /* A backend that can tell cheaply that the chunk is there (a file's
     * stat) says so now; another's exclusive create answers it when the
     * chunk is published (one operation less for every new chunk:
     * clients send only what a QUERY found missing). */
    for (int tries = 0; tries < 3; tries++) {
        int r = st->be->ops->stage(st->be, rel, hdr, hdr_len, c->data,
                                   c->data_len, &w->staged);
        if (r <= 0)
            return r;
        r = stored_as_sent(st, &c->d, c->type, c->raw_len);
        if (r != 0)
            return r;
        /* Gone again in between (a gc took it): stage it. */
    }
    return lb_fail(EAGAIN, "chunk %s: stored and removed again, 3 times", rel);
}

int
store_chunk_write(struct store *st, struct store_scratch *s,
                  const struct proto_chunk *c, struct store_written *w)
{
    uint8_t hdr[STORE_CHUNK_HDR_SEALED];
    struct store_chunk_hdr h = {0};
    int r;

    memset(w, 0, sizeof *w);
    w->be = st->be;
    if (st->mode == STORE_READ)
        return lb_fail(EPERM, "repository opened read-only");
    /* The form first (sizes, no data read): what is staged below fits. */
    if (check_form(st, c) < 0)
        return -1;

    /* A sealed chunk's name says nothing about its bytes to us: it keeps
     * a checksum of them, for verify to find bit rot without the key. */
    h.version = c->comp == PROTO_COMP_SEALED ? STORE_CHUNK_VERSION_SEALED
                                             : STORE_CHUNK_VERSION;
    h.type = c->type;
    h.comp = c->comp;
    h.raw_len = c->raw_len;
    h.stored_len = c->data_len;
    h.crc = c->comp == PROTO_COMP_SEALED ? proto_crc32c(0, c->data, c->data_len)
                                         : 0;
    store_chunk_hdr_encode(hdr, &h);
    w->d = c->d;
    w->type = c->type;
    w->raw_len = c->raw_len;
    w->size = h.hdr_len + (uint64_t)c->data_len;
    /* Staged first: a chunk stored already is answered before its
     * content is checked; a staged one is seen by nobody until published,
     * and dropped if the check fails. */
    r = chunk_stage(st, c, hdr, h.hdr_len, w);
    if (r != 0)
        return r;
    /* Trusted: the frame only (the decoder checked the rest); the
     * content is the client's business, and verify re-checks it. */
    if (!st->trusted && check_chunk(st, s, c) < 0) {
        struct lb_error_saved saved;
        lb_error_save(&saved);
        store_chunk_written_drop(w);
        lb_error_restore(&saved);
        return -1;
    }
    return 0;
}

uint64_t
store_staged_mem(const struct store *st, uint64_t data_len)
{
    if (!st->be->ops->stages_in_memory)
        return 0;
    return 2 * (STORE_CHUNK_HDR_SEALED + data_len);
}

void
store_chunk_written_drop(struct store_written *w)
{
    if (w->staged)
        w->be->ops->unstage(w->be, w->staged);
    w->staged = NULL;
}

int
store_chunk_publish(struct store *st, struct store_written *w,
                    uint64_t *stored_bytes)
{
    char rel[80];
    int r = 0;

    *stored_bytes = 0;
    if (!w->staged)
        return lb_fail(EINVAL, "publish: no chunk was written");
    store_chunk_relpath(rel, &w->d);
    /* Exclusive: one that exists is a dedup hit, never overwritten. It
     * existed: touched, and it must be what was sent. Gone again in
     * between (a gc took it): create it again. */
    for (int tries = 0; tries < 3; tries++) {
        r = st->be->ops->publish(st->be, w->staged, rel);
        if (r == 1)
            r = stored_as_sent(st, &w->d, w->type, w->raw_len);
        else if (r == 0)
            *stored_bytes = w->size;
        if (r != 0 || *stored_bytes)
            break;
    }
    if (r == 0 && !*stored_bytes)
        r = lb_fail(EAGAIN, "chunk %s: stored and removed again, 3 times", rel);
    store_chunk_written_drop(w);
    return r;
}

bool
store_chunks_sync_together(const struct store *st)
{
    return st->be->ops->sync_staged != NULL;
}

int
store_chunks_sync(struct store *st, struct store_written *w, size_t n)
{
    enum { GROUP = 64 };
    struct store_be_staged *staged[GROUP];
    size_t k = 0;

    if (!st->be->ops->sync_staged)
        return 0;
    /* in groups of what fits here: each group one sync */
    for (size_t i = 0; i < n; i++) {
        if (w[i].staged)
            staged[k++] = w[i].staged;
        if ((k == GROUP || i + 1 == n) && k) {
            if (st->be->ops->sync_staged(st->be, staged, k) < 0)
                return -1;
            k = 0;
        }
    }
    return 0;
}

int
store_chunk_put(struct store *st, struct store_scratch *s,
                const struct proto_chunk *c, uint64_t *stored_bytes)
{
    struct store_written w;
    int r = store_chunk_write(st, s, c, &w);

    *stored_bytes = 0;
    if (r != 0)
        return r;
    return store_chunk_publish(st, &w, stored_bytes);
}

void
store_chunk_hdr_encode(uint8_t *out, struct store_chunk_hdr *h)
{
    bool sealed = h->version == STORE_CHUNK_VERSION_SEALED;

    h->hdr_len = sealed ? STORE_CHUNK_HDR_SEALED : STORE_CHUNK_HDR;
    memset(out, 0, h->hdr_len);
    lb_store_be32(out, STORE_CHUNK_MAGIC);
    out[4] = h->version;
    out[5] = h->type;
    out[6] = h->comp;
    lb_store_be32(out + 8, h->raw_len);
    lb_store_be32(out + 12, h->stored_len);
    if (sealed)
        lb_store_be32(out + 16, h->crc);
}

int
store_chunk_hdr_decode(const uint8_t *p, size_t len, size_t file_len,
                       struct store_chunk_hdr *h)
{
    if (len < STORE_CHUNK_HDR || file_len < STORE_CHUNK_HDR)
        return PROTO_E_TRUNCATED;
    if (lb_load_be32(p) != STORE_CHUNK_MAGIC)
        return PROTO_E_MAGIC;
    h->version = p[4];
    h->type = p[5];
    h->comp = p[6];
    h->raw_len = lb_load_be32(p + 8);
    h->stored_len = lb_load_be32(p + 12);
    h->crc = 0;
    h->hdr_len = STORE_CHUNK_HDR;
    if (p[7] != 0)
        return PROTO_E_RESERVED;
    if (!proto_chunk_type_valid(h->type) || h->raw_len == 0 ||
        h->raw_len > PROTO_MAX_CHUNK_RAW)
        return PROTO_E_RANGE;
    /* Version 1 holds plain or zstd bytes, version 2 sealed ones. */
    if (h->version == STORE_CHUNK_VERSION_SEALED) {
        if (len < STORE_CHUNK_HDR_SEALED || file_len < STORE_CHUNK_HDR_SEALED)
            return PROTO_E_TRUNCATED;
        if (h->comp != PROTO_COMP_SEALED)
            return PROTO_E_RANGE;
        if (lb_load_be32(p + 20) != 0)
            return PROTO_E_RESERVED;
        h->crc = lb_load_be32(p + 16);
        h->hdr_len = STORE_CHUNK_HDR_SEALED;
    } else if (h->version != STORE_CHUNK_VERSION || h->comp > PROTO_COMP_ZSTD) {
        return PROTO_E_RANGE;
    }
    if ((uint64_t)h->hdr_len + h->stored_len != file_len)
        return (uint64_t)h->hdr_len + h->stored_len > file_len
                   ? PROTO_E_TRUNCATED
                   : PROTO_E_TRAILING;
    return PROTO_OK;
}

/* EACCES is not damage: a file another user (root) wrote. Say how to
 * give the repository back (the error slot holds the failure). */
static void
chunk_hint_owner(const struct store *st)
{
    if (lb_error_errno() == EACCES)
        lb_error_hint("another user wrote this file, and this backupd may "
                      "not read it: chown -R OWNER %s gives the repository "
                      "back to its owner",
                      st->path);
}

/* The file of chunk d into out, its header into *h and the chunk into *c
 * (data pointing into out). */
static int
read_chunk_file(struct store *st, const struct proto_digest *d,
                struct lb_buf *out, struct store_chunk_hdr *h,
                struct proto_chunk *c)
{
    char rel[80];
    uint64_t size;
    ssize_t n;
    int r;

    store_chunk_relpath(rel, d);
    if (st->be->ops->stat(st->be, rel, &size, NULL) < 0) {
        if (lb_error_errno() == ENOENT)
            return lb_fail(ENOENT, "chunk %s is missing", rel);
        chunk_hint_owner(st);
        return -1;
    }
    if (size < STORE_CHUNK_HDR || size > STORE_CHUNK_HDR_SEALED +
                                             (uint64_t)PROTO_MAX_CHUNK_RAW +
                                             PROTO_MAX_CHUNK_RAW / 64 + 4096)
        return lb_fail(EPROTO, "chunk %s: bad size %llu", rel,
                       (unsigned long long)size);
    lb_buf_reset(out);
    lb_buf_reserve(out, (size_t)size);
    n = st->be->ops->read(st->be, rel, out->data, (size_t)size, 0);
    if (n < 0) {
        chunk_hint_owner(st);
        return -1;
    }
    if ((uint64_t)n != size)
        return lb_fail(EPROTO, "chunk %s: short read", rel);
    out->len = (size_t)n;
    r = store_chunk_hdr_decode(out->data, out->len, out->len, h);
    if (r != PROTO_OK)
        return lb_fail(EPROTO, "chunk %s: bad header (%s)", rel,
                       proto_status_str(r));
    c->d = *d;
    c->type = h->type;
    c->comp = h->comp;
    c->raw_len = h->raw_len;
    c->data_len = h->stored_len;
    c->data = out->data + h->hdr_len;
    if (c->comp == PROTO_COMP_SEALED && proto_chunk_sealed_check(c) != 0)
        return lb_fail(EPROTO, "chunk %s: %u stored bytes for %u", rel,
                       c->data_len, c->raw_len);
    return 0;
}

int
store_chunk_read(struct store *st, const struct proto_digest *d,
                 struct lb_buf *out, struct proto_chunk *c)
{
    struct store_chunk_hdr h;

    return read_chunk_file(st, d, out, &h, c);
}

/* Read a chunk and check it as verify does without a key: *h its
 * header, *c its stored form (data in s->file). */
static int
read_checked(struct store *st, struct store_scratch *s,
             const struct proto_digest *d, struct store_chunk_hdr *h,
             struct proto_chunk *c)
{
    char rel[80];

    if (read_chunk_file(st, d, &s->file, h, c) < 0)
        return -1;
    if (h->version != STORE_CHUNK_VERSION_SEALED)
        return check_chunk(st, s, c);
    store_chunk_relpath(rel, d);
    if (proto_crc32c(0, c->data, c->data_len) != h->crc)
        return lb_fail(EPROTO,
                       "chunk %s: its bytes do not match their checksum "
                       "(damaged on disk)",
                       rel);
    return check_form(st, c);
}

int
store_chunk_check(struct store *st, struct store_scratch *s,
                  const struct proto_digest *d, struct store_chunk_hdr *hp)
{
    struct store_chunk_hdr h = {0};
    struct proto_chunk c = {0};
    int r = read_checked(st, s, d, &h, &c);

    if (hp)
        *hp = h;
    return r;
}

int
store_chunk_read_checked(struct store *st, struct store_scratch *s,
                         const struct proto_digest *d, struct proto_chunk *c)
{
    struct store_chunk_hdr h = {0};

    memset(c, 0, sizeof *c);
    return read_checked(st, s, d, &h, c);
}

void
store_chunk_prefetch(struct store *st, const struct proto_digest *d)
{
    char rel[80];

    if (!st->be->ops->prefetch)
        return;
    store_chunk_relpath(rel, d);
    st->be->ops->prefetch(st->be, rel);
}

int
store_chunk_load(struct store *st, struct store_scratch *s,
                 const struct proto_digest *d, const uint8_t **plain,
                 size_t *plain_len, uint8_t *type)
{
    struct proto_chunk c = {0};

    if (store_chunk_read(st, d, &s->file, &c) < 0)
        return -1;
    if (c.comp == PROTO_COMP_SEALED)
        return lb_fail(EPROTO, "chunk is encrypted: no plaintext here");
    if (check_chunk(st, s, &c) < 0)
        return -1;
    *plain = s->plain;
    *plain_len = c.raw_len;
    *type = c.type;
    return 0;
}

static const char *
type_name(uint8_t type)
{
    switch (type) {
    case PROTO_CHUNK_RAW:
        return "RAW";
    case PROTO_CHUNK_DELTA:
        return "DELTA";
    case PROTO_CHUNK_BLOB:
        return "BLOB";
    default:
        return "unknown";
    }
}

/*
 * A chunk a backup names must be there (stored, or noted: being stored
 * for it) and be what the name says: of the ref's type, a RAW chunk as
 * long as its window, a DELTA no longer than one can be for it. Checked
 * on the chunk's header (what the frame declared, for one noted), so it
 * holds under encryption; verify also checks a DELTA's window length in
 * its plaintext. 0, or -1 (EINVAL, or EPROTO for a damaged chunk).
 */
int
store_chunk_check_ref(struct store *st, const struct digest_set *noted,
                      uint8_t want, uint32_t wl, const struct proto_digest *d,
                      char *why, size_t why_len)
{
    struct store_chunk_hdr h = {0};
    char hex[65];

    proto_digest_hex(d, hex);
    if (!store_dset_get(noted, d, &h.type, &h.raw_len) ||
        h.type == STORE_DSET_ANY) {
        if (store_chunk_head(st, d, false, &h) < 0) {
            if (lb_error_errno() == ENOENT) {
                snprintf(why, why_len,
                         "chunk %s, which was neither sent "
                         "nor stored",
                         hex);
                return lb_fail(EINVAL, "%s", why);
            }
            snprintf(why, why_len, "%s", lb_error_msg());
            return -1;
        }
    }
    if (h.type != want) {
        snprintf(why, why_len, "chunk %s as %s, but it is a %s chunk", hex,
                 type_name(want), type_name(h.type));
        return lb_fail(EINVAL, "%s", why);
    }
    if (want == PROTO_CHUNK_RAW && h.raw_len != wl) {
        snprintf(why, why_len,
                 "RAW chunk %s of %u bytes for a window of %u bytes", hex,
                 h.raw_len, wl);
        return lb_fail(EINVAL, "%s", why);
    }
    if (want == PROTO_CHUNK_DELTA &&
        (h.raw_len < PROTO_DELTA_HDR + PROTO_DELTA_RUN ||
         h.raw_len > proto_delta_size(wl / 512, wl))) {
        snprintf(why, why_len,
                 "DELTA chunk %s of %u bytes for a window of %u bytes", hex,
                 h.raw_len, wl);
        return lb_fail(EINVAL, "%s", why);
    }
    return 0;
}
