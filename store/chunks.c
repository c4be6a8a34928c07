/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Chunk files (FORMAT.md, "Chunk files"): chunks/ab/<sha256 hex>, a 16-byte
 * header and the stored (usually zstd) bytes. A chunk is checked before it
 * is stored, so a client can never plant data under a digest it does not
 * match, and written by temp file + fdatasync + link, so a chunk that is
 * present is complete: a later backup may safely reuse it.
 */
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

_Static_assert(STORE_CHUNK_HDR == 4 + 1 + 1 + 1 + 1 + 4 + 4,
               "chunk file header layout");

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
    struct stat sb;

    store_chunk_relpath(rel, d);
    if (fstatat(st->dir_fd, rel, &sb, 0) == 0)
        return S_ISREG(sb.st_mode) ? 1 : 0;
    if (errno == ENOENT)
        return 0;
    return lb_error(errno, "stat %s/%s", st->path, rel);
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
    if (utimensat(st->dir_fd, rel, NULL, 0) == 0)
        return 1;
    if (errno == ENOENT)
        return 0;
    return lb_error(errno, "touch %s/%s (gc must see it is in use)", st->path,
                    rel);
}

int
store_chunk_head(struct store *st, const struct proto_digest *d, bool touch,
                 struct store_chunk_head *h)
{
    char rel[80];
    uint8_t b[STORE_CHUNK_HDR];
    struct stat sb;
    CLEANUP_CLOSE int fd = -1;
    ssize_t n;

    store_chunk_relpath(rel, d);
    fd = openat(st->dir_fd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT)
            return lb_fail(ENOENT, "chunk %s is not stored", rel + 10);
        return lb_error(e == ELOOP ? EPROTO : e, "open %s/%s", st->path, rel);
    }
    if (touch && st->mode != STORE_READ && futimens(fd, NULL) < 0)
        return lb_error(errno, "touch %s/%s (gc must see it is in use)",
                        st->path, rel);
    if (fstat(fd, &sb) < 0)
        return lb_error(errno, "stat %s/%s", st->path, rel);
    n = lb_pread_full(fd, b, sizeof b, 0);
    if (n < 0)
        return lb_error(errno, "read %s/%s", st->path, rel);
    memset(h, 0, sizeof *h);
    if (n == (ssize_t)sizeof b) {
        h->type = b[5];
        h->comp = b[6];
        h->raw_len = lb_load_be32(b + 8);
        h->stored_len = lb_load_be32(b + 12);
    }
    if (n != (ssize_t)sizeof b || !S_ISREG(sb.st_mode) ||
        lb_load_be32(b) != STORE_CHUNK_MAGIC || b[4] != STORE_CHUNK_VERSION ||
        b[7] != 0 || !proto_chunk_type_valid(h->type) ||
        h->comp > PROTO_COMP_ZSTD || h->raw_len == 0 ||
        h->raw_len > PROTO_MAX_CHUNK_RAW ||
        (h->type == PROTO_CHUNK_RAW && h->raw_len > st->window_size) ||
        (h->type == PROTO_CHUNK_BLOB && h->raw_len > PROTO_MAX_BLOB) ||
        (uint64_t)sb.st_size != STORE_CHUNK_HDR + (uint64_t)h->stored_len)
        return lb_fail(EPROTO, "chunk %s: bad header", rel + 10);
    return 0;
}

/* Decompress and check plaintext against digest and type rules. */
static int
check_chunk(struct store *st, struct store_scratch *s,
            const struct proto_chunk *c)
{
    struct proto_digest got;

    if (c->type == PROTO_CHUNK_RAW && c->raw_len > st->window_size)
        return lb_fail(EPROTO,
                       "RAW chunk of %u bytes exceeds the window "
                       "size %u",
                       c->raw_len, st->window_size);
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

int
store_chunk_write(struct store *st, struct store_scratch *s,
                  const struct proto_chunk *c, struct store_written *w)
{
    uint8_t hdr[STORE_CHUNK_HDR];
    int fd;

    memset(w, 0, sizeof *w);
    w->fd = -1;
    if (st->mode == STORE_READ)
        return lb_fail(EPERM, "repository opened read-only");
    /* Already stored: touched like a chunk a QUERY finds (gc), and its
     * header must be what the frame declares: the window records that
     * name it are checked against the frame's (store_txn_note_chunk). */
    {
        struct store_chunk_head h = {0};
        if (store_chunk_head(st, &c->d, true, &h) == 0) {
            char hex[65];
            if (h.type == c->type && h.raw_len == c->raw_len)
                return 1;
            proto_digest_hex(&c->d, hex);
            return lb_fail(EPROTO,
                           "chunk %s is stored as type %u of %u bytes, "
                           "sent as type %u of %u bytes",
                           hex, h.type, h.raw_len, c->type, c->raw_len);
        }
        if (lb_error_errno() != ENOENT)
            return -1;
        lb_error_clear();
    }
    if (st->trusted) {
        /* The frame only (the decoder checked the rest); the content is
         * the client's business, and verify re-checks it. */
        if (c->type == PROTO_CHUNK_RAW && c->raw_len > st->window_size)
            return lb_fail(EPROTO,
                           "RAW chunk of %u bytes exceeds the window "
                           "size %u",
                           c->raw_len, st->window_size);
    } else if (check_chunk(st, s, c) < 0) {
        return -1;
    }

    lb_store_be32(hdr, STORE_CHUNK_MAGIC);
    hdr[4] = STORE_CHUNK_VERSION;
    hdr[5] = c->type;
    hdr[6] = c->comp;
    hdr[7] = 0;
    lb_store_be32(hdr + 8, c->raw_len);
    lb_store_be32(hdr + 12, c->data_len);

    w->tmp = store_tmp_name(st, "chunk");
    fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        lb_error(e, "create %s", w->tmp);
        free(w->tmp);
        w->tmp = NULL;
        return -1;
    }
    w->fd = fd;
    if (lb_write_full(fd, hdr, sizeof hdr) < 0 ||
        lb_write_full(fd, c->data, c->data_len) < 0) {
        int e = errno;
        store_chunk_written_drop(w);
        return lb_error(e, "write chunk to %s", st->path);
    }
    w->d = c->d;
    w->size = STORE_CHUNK_HDR + (uint64_t)c->data_len;
    return 0;
}

void
store_chunk_written_drop(struct store_written *w)
{
    if (w->fd >= 0)
        close(w->fd);
    if (w->tmp) {
        unlink(w->tmp);
        free(w->tmp);
    }
    w->fd = -1;
    w->tmp = NULL;
}

int
store_chunk_publish(struct store *st, struct store_written *w,
                    uint64_t *stored_bytes)
{
    char rel[80];
    CLEANUP_FREE char *dst = NULL;
    int e;

    *stored_bytes = 0;
    if (!w->tmp || w->fd < 0)
        return lb_fail(EINVAL, "publish: no chunk was written");
    e = fdatasync(w->fd) < 0 ? errno : 0;
    if (close(w->fd) < 0 && !e)
        e = errno;
    w->fd = -1;
    if (e) {
        store_chunk_written_drop(w);
        return lb_error(e, "write chunk to %s", st->path);
    }
    store_chunk_relpath(rel, &w->d);
    dst = lb_xasprintf("%s/%s", st->path, rel);
    /* link, not rename: when two sessions store the same chunk at once,
     * exactly one publishes it and counts it; the other learns it was
     * already stored. */
    e = link(w->tmp, dst) < 0 ? errno : 0;
    store_chunk_written_drop(w);
    if (e == EEXIST)
        return 1;
    if (e)
        return lb_error(e, "publish chunk %s", dst);
    *stored_bytes = w->size;
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

int
store_chunk_read(struct store *st, const struct proto_digest *d,
                 struct lb_buf *out, struct proto_chunk *c)
{
    char rel[80];
    struct stat sb;
    CLEANUP_CLOSE int fd = -1;
    ssize_t n;

    store_chunk_relpath(rel, d);
    fd = openat(st->dir_fd, rel, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return lb_error(errno, "chunk %s", rel);
    if (fstat(fd, &sb) < 0)
        return lb_error(errno, "stat %s", rel);
    if (sb.st_size < STORE_CHUNK_HDR ||
        (uint64_t)sb.st_size > STORE_CHUNK_HDR + (uint64_t)PROTO_MAX_CHUNK_RAW +
                                   PROTO_MAX_CHUNK_RAW / 64 + 4096)
        return lb_fail(EPROTO, "chunk %s: bad size %lld", rel,
                       (long long)sb.st_size);
    lb_buf_reset(out);
    lb_buf_reserve(out, (size_t)sb.st_size);
    n = lb_read_full(fd, out->data, (size_t)sb.st_size);
    if (n < 0)
        return lb_error(errno, "read %s", rel);
    if (n != sb.st_size)
        return lb_fail(EPROTO, "chunk %s: short read", rel);
    out->len = (size_t)n;
    if (lb_load_be32(out->data) != STORE_CHUNK_MAGIC ||
        out->data[4] != STORE_CHUNK_VERSION || out->data[7] != 0 ||
        !proto_chunk_type_valid(out->data[5]) || out->data[6] > PROTO_COMP_ZSTD)
        return lb_fail(EPROTO, "chunk %s: bad header", rel);
    c->d = *d;
    c->type = out->data[5];
    c->comp = out->data[6];
    c->raw_len = lb_load_be32(out->data + 8);
    c->data_len = lb_load_be32(out->data + 12);
    c->data = out->data + STORE_CHUNK_HDR;
    if ((uint64_t)c->data_len + STORE_CHUNK_HDR != (uint64_t)n ||
        c->raw_len == 0 || c->raw_len > PROTO_MAX_CHUNK_RAW)
        return lb_fail(EPROTO, "chunk %s: truncated or bad lengths", rel);
    return 0;
}

int
store_chunk_load(struct store *st, struct store_scratch *s,
                 const struct proto_digest *d, const uint8_t **plain,
                 size_t *plain_len, uint8_t *type)
{
    struct proto_chunk c = {0};

    if (store_chunk_read(st, d, &s->file, &c) < 0)
        return -1;
    if (check_chunk(st, s, &c) < 0)
        return -1;
    *plain = s->plain;
    *plain_len = c.raw_len;
    *type = c.type;
    return 0;
}
