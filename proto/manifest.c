/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The manifest codec (store/FORMAT.md, "Manifests"): a streaming reader
 * and writer of one backup's window stacks, in bounded memory whatever the
 * size of the disks. backupd writes and verifies manifests; the agent reads
 * them (sent over the protocol) to restore.
 *
 * Layout: a 64-byte header, the disk sections, the meta block, and a
 * 32-byte trailer = SHA-256(header || SHA-256(disk sections || meta)).
 * Version 2 (written) encodes each run of empty windows as one record, so
 * that a manifest's size follows the data a backup holds, not the size
 * its disks declare; version 1 (read) has a byte per empty window.
 */
#include "proto/proto.h"

#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

#define MF_BUF (128u << 10)
#define MF_MAX_DISK_META PROTO_MF_MAX_DISK_META

_Static_assert(sizeof PROTO_MF_MAGIC - 1 == 8, "manifest magic is 8 bytes");
_Static_assert(MF_BUF > MF_MAX_DISK_META + 256, "disk meta fits the buffer");

uint64_t
proto_mf_windows_for(uint64_t size, uint32_t window_size)
{
    return size / window_size + (size % window_size != 0);
}

/* ---- header -------------------------------------------------------------- */

/*
 *  0 magic "LBMANIF1"     8 u16 version   10 u16 flags (0)
 * 12 u32 ndisks          16 u64 meta_off  24 u32 meta_len
 * 28 u32 reserved (0)    32 meta digest (32 bytes)
 */
int
proto_mf_hdr_decode(const uint8_t *p, size_t len, struct proto_mf_hdr *out)
{
    if (len < PROTO_MF_HDR_SIZE)
        return PROTO_E_TRUNCATED;
    if (memcmp(p, PROTO_MF_MAGIC, 8) != 0)
        return PROTO_E_MAGIC;
    out->version = lb_load_be16(p + 8);
    if (out->version < PROTO_MF_VERSION_MIN || out->version > PROTO_MF_VERSION)
        return PROTO_E_RANGE;
    if (lb_load_be16(p + 10) != 0 || lb_load_be32(p + 28) != 0)
        return PROTO_E_RESERVED;
    out->ndisks = lb_load_be32(p + 12);
    out->meta_off = lb_load_be64(p + 16);
    out->meta_len = lb_load_be32(p + 24);
    memcpy(out->meta_digest, p + 32, PROTO_DIGEST_LEN);
    if (out->ndisks > PROTO_MF_MAX_DISKS || out->meta_len > PROTO_MF_MAX_META ||
        out->meta_off < PROTO_MF_HDR_SIZE)
        return PROTO_E_RANGE;
    return PROTO_OK;
}

void
proto_mf_hdr_encode(uint8_t out[PROTO_MF_HDR_SIZE],
                    const struct proto_mf_hdr *h)
{
    memset(out, 0, PROTO_MF_HDR_SIZE);
    /* 8 magic bytes, no NUL: a binary field */
    // NOLINTNEXTLINE(bugprone-not-null-terminated-result)
    memcpy(out, PROTO_MF_MAGIC, 8);
    lb_store_be16(out + 8, h->version ? h->version : PROTO_MF_VERSION);
    lb_store_be32(out + 12, h->ndisks);
    lb_store_be64(out + 16, h->meta_off);
    lb_store_be32(out + 24, h->meta_len);
    memcpy(out + 32, h->meta_digest, PROTO_DIGEST_LEN);
}

static int
sha256(const void *p, size_t len, uint8_t out[PROTO_DIGEST_LEN])
{
    unsigned n = 0;

    if (EVP_Digest(p, len, out, &n, EVP_sha256(), NULL) != 1 ||
        n != PROTO_DIGEST_LEN)
        return lb_error(0, "OpenSSL: SHA-256 failed");
    return 0;
}

int
proto_mf_meta_decode(const struct proto_mf_hdr *h, const uint8_t *p, size_t len,
                     struct proto_kv *meta)
{
    uint8_t d[PROTO_DIGEST_LEN];
    struct proto_rd pr;
    int r;

    if (len != h->meta_len)
        return lb_error(0, "manifest meta block has %zu bytes, expected %u",
                        len, h->meta_len);
    if (sha256(p, len, d) < 0)
        return -1;
    if (memcmp(d, h->meta_digest, PROTO_DIGEST_LEN) != 0)
        return lb_error(0, "manifest meta block does not match its digest");
    proto_rd_init(&pr, p, len);
    r = proto_kv_decode(&pr, meta);
    if (r == PROTO_OK && (r = proto_rd_done(&pr)) != PROTO_OK)
        proto_kv_free(meta);
    if (r != PROTO_OK)
        return lb_error(0, "manifest meta block: %s", proto_status_str(r));
    return 0;
}

/* ---- reader -------------------------------------------------------------- */

enum mf_state {
    MF_START,
    MF_DISKS, /* between disks */
    MF_WINDOWS,
    MF_DISK_META, /* after a disk's last window */
    MF_META,
    MF_TRAILER,
    MF_DONE,
    MF_FAILED,
};

struct proto_mf_reader {
    proto_mf_read_fn fn;
    void *opaque;
    uint8_t *buf;
    size_t start, end; /* unread bytes are buf[start..end) */
    bool eof;
    uint64_t pos;     /* file offset of buf[start] */
    EVP_MD_CTX *body; /* hash of [64, meta_off + meta_len) */
    uint8_t hdr_raw[PROTO_MF_HDR_SIZE];
    struct proto_mf_hdr hdr;
    enum mf_state state;
    uint32_t disks_read;
    uint64_t windows_left;
    uint64_t empty_left; /* version 2: empty windows left in this run */
    bool after_run;      /* version 2: the last record was a run */
};

struct proto_mf_reader *
proto_mf_reader_new(proto_mf_read_fn fn, void *opaque)
{
    struct proto_mf_reader *r = lb_xcalloc(1, sizeof *r);

    r->fn = fn;
    r->opaque = opaque;
    r->buf = lb_xmalloc(MF_BUF);
    r->body = EVP_MD_CTX_new();
    if (!r->body || EVP_DigestInit_ex(r->body, EVP_sha256(), NULL) != 1) {
        lb_error(0, "OpenSSL: cannot start a digest");
        proto_mf_reader_free(r);
        return NULL;
    }
    return r;
}

void
proto_mf_reader_free(struct proto_mf_reader *r)
{
    if (!r)
        return;
    EVP_MD_CTX_free(r->body);
    free(r->buf);
    free(r);
}

static int
mf_fail(struct proto_mf_reader *r, const char *what, int status)
{
    r->state = MF_FAILED;
    return lb_error(0, "manifest: %s at offset %llu: %s", what,
                    (unsigned long long)r->pos, proto_status_str(status));
}

/* Make n bytes (n <= MF_BUF) available at buf[start]. */
static int
mf_need(struct proto_mf_reader *r, size_t n)
{
    while (r->end - r->start < n) {
        ssize_t got;
        if (r->eof)
            return mf_fail(r, "unexpected end", PROTO_E_TRUNCATED);
        if (r->start > 0) {
            memmove(r->buf, r->buf + r->start, r->end - r->start);
            r->end -= r->start;
            r->start = 0;
        }
        got = r->fn(r->opaque, r->buf + r->end, MF_BUF - r->end);
        if (got < 0) {
            r->state = MF_FAILED;
            return -1;
        }
        if (got == 0)
            r->eof = true;
        r->end += (size_t)got;
    }
    return 0;
}

/* Consume n bytes, hashing them when they belong to the body. */
static void
mf_consume(struct proto_mf_reader *r, size_t n, bool hash)
{
    if (hash)
        EVP_DigestUpdate(r->body, r->buf + r->start, n);
    r->start += n;
    r->pos += n;
}

int
proto_mf_read_header(struct proto_mf_reader *r, struct proto_mf_hdr *h)
{
    int st;

    if (r->state != MF_START)
        return lb_error(0, "manifest: header already read");
    if (mf_need(r, PROTO_MF_HDR_SIZE) < 0)
        return -1;
    st = proto_mf_hdr_decode(r->buf + r->start, PROTO_MF_HDR_SIZE, &r->hdr);
    if (st != PROTO_OK)
        return mf_fail(r, "bad header", st);
    memcpy(r->hdr_raw, r->buf + r->start, PROTO_MF_HDR_SIZE);
    mf_consume(r, PROTO_MF_HDR_SIZE, false);
    *h = r->hdr;
    r->state = MF_DISKS;
    return 0;
}

int
proto_mf_next_disk(struct proto_mf_reader *r, struct proto_mf_disk *d)
{
    struct proto_rd pr;
    struct proto_str name;
    uint32_t flags;
    uint16_t name_len;

    if (r->state == MF_WINDOWS && r->windows_left == 0)
        r->state = MF_DISK_META;
    if (r->state == MF_DISK_META && proto_mf_read_disk_end(r, NULL) < 0)
        return -1;
    if (r->state != MF_DISKS)
        return lb_error(0, "manifest: next disk called out of order");
    if (r->disks_read == r->hdr.ndisks) {
        if (r->pos != r->hdr.meta_off)
            return mf_fail(r, "meta block not where the header says",
                           PROTO_E_RANGE);
        r->state = MF_META;
        return 0;
    }
    /* magic, name, size, window size, flags, nwindows */
    if (mf_need(r, 4 + 2) < 0)
        return -1;
    proto_rd_init(&pr, r->buf + r->start, r->end - r->start);
    if (proto_rd_be32(&pr) != PROTO_MF_DISK_MAGIC)
        return mf_fail(r, "bad disk section", PROTO_E_MAGIC);
    name_len = proto_rd_be16(&pr);
    if (name_len > 64)
        return mf_fail(r, "disk name", PROTO_E_STRING);
    if (mf_need(r, 4 + 2 + (size_t)name_len + 8 + 4 + 4 + 8) < 0)
        return -1;
    proto_rd_init(&pr, r->buf + r->start, r->end - r->start);
    proto_rd_be32(&pr);
    name = proto_rd_str16(&pr);
    d->size = proto_rd_be64(&pr);
    d->window_size = proto_rd_be32(&pr);
    flags = proto_rd_be32(&pr);
    d->nwindows = proto_rd_be64(&pr);
    if (pr.err)
        return mf_fail(r, "disk section", pr.err);
    if (!proto_disk_name_valid(name.p, name.len))
        return mf_fail(r, "disk name", PROTO_E_STRING);
    if (flags != 0)
        return mf_fail(r, "disk flags", PROTO_E_RESERVED);
    if (!proto_window_size_valid(d->window_size) || d->size == 0 ||
        d->size > PROTO_MF_MAX_SIZE || d->nwindows > PROTO_MF_MAX_WINDOWS ||
        d->nwindows != proto_mf_windows_for(d->size, d->window_size))
        return mf_fail(r, "disk geometry", PROTO_E_RANGE);
    proto_str_copy(d->name, sizeof d->name, name);
    mf_consume(r, pr.off, true);
    r->disks_read++;
    r->windows_left = d->nwindows;
    r->empty_left = 0;
    r->after_run = false;
    r->state = MF_WINDOWS;
    return 1;
}

int
proto_mf_read_disk_end(struct proto_mf_reader *r, struct proto_kv *meta)
{
    struct proto_kv tmp = {0};
    struct proto_rd pr;
    uint32_t len;
    int st;

    if (r->state == MF_WINDOWS && r->windows_left == 0)
        r->state = MF_DISK_META;
    if (r->state != MF_DISK_META)
        return lb_error(0, "manifest: disk end read before its last window");
    if (mf_need(r, 4) < 0)
        return -1;
    len = lb_load_be32(r->buf + r->start);
    if (len > MF_MAX_DISK_META)
        return mf_fail(r, "disk meta length", PROTO_E_RANGE);
    if (mf_need(r, 4 + (size_t)len) < 0)
        return -1;
    proto_rd_init(&pr, r->buf + r->start + 4, len);
    st = proto_kv_decode(&pr, &tmp);
    if (st == PROTO_OK && (st = proto_rd_done(&pr)) != PROTO_OK)
        proto_kv_free(&tmp);
    if (st != PROTO_OK)
        return mf_fail(r, "disk meta", st);
    mf_consume(r, 4 + (size_t)len, true);
    if (meta)
        *meta = tmp;
    else
        proto_kv_free(&tmp);
    r->state = MF_DISKS;
    return 0;
}

/* Version 2: a record of depth 0 is a run, u32 n (1 <= n <= the windows
 * left) empty windows; never two runs in a row (one encoding only). The
 * run's first window is the one being read. */
static int
mf_read_run(struct proto_mf_reader *r)
{
    uint32_t n;

    if (mf_need(r, 5) < 0)
        return -1;
    n = lb_load_be32(r->buf + r->start + 1);
    if (n == 0 || n > r->windows_left)
        return mf_fail(r, "run of empty windows", PROTO_E_RANGE);
    if (r->after_run)
        return mf_fail(r, "two runs of empty windows in a row", PROTO_E_ORDER);
    mf_consume(r, 5, true);
    r->after_run = true;
    r->empty_left = n - 1;
    r->windows_left--;
    return 0;
}

int
proto_mf_next_window(struct proto_mf_reader *r, struct proto_mf_window *w)
{
    const uint8_t *p;
    size_t need;

    if (r->state != MF_WINDOWS || r->windows_left == 0)
        return lb_error(0, "manifest: no window left to read");
    if (r->empty_left) {
        r->empty_left--;
        r->windows_left--;
        w->depth = 0;
        return 0;
    }
    if (mf_need(r, 1) < 0)
        return -1;
    w->depth = r->buf[r->start];
    if (w->depth > PROTO_MAX_STACK)
        return mf_fail(r, "window stack depth", PROTO_E_RANGE);
    if (w->depth == 0 && r->hdr.version >= 2)
        return mf_read_run(r);
    r->after_run = false;
    need = 1 + (size_t)w->depth * (1 + PROTO_DIGEST_LEN);
    if (mf_need(r, need) < 0)
        return -1;
    p = r->buf + r->start + 1;
    for (uint8_t i = 0; i < w->depth; i++) {
        w->refs[i].type = p[0];
        if ((p[0] != PROTO_CHUNK_RAW && p[0] != PROTO_CHUNK_DELTA) ||
            (p[0] == PROTO_CHUNK_RAW && i != 0))
            return mf_fail(r, "window stack entry", PROTO_E_RANGE);
        memcpy(w->refs[i].d.b, p + 1, PROTO_DIGEST_LEN);
        p += 1 + PROTO_DIGEST_LEN;
    }
    mf_consume(r, need, true);
    r->windows_left--;
    return 0;
}

int
proto_mf_skip_disk(struct proto_mf_reader *r)
{
    struct proto_mf_window w;

    while (r->state == MF_WINDOWS && r->windows_left > 0) {
        /* A run of empty windows is passed in one step. */
        r->windows_left -= r->empty_left;
        r->empty_left = 0;
        if (r->windows_left > 0 && proto_mf_next_window(r, &w) < 0)
            return -1;
    }
    return 0;
}

int
proto_mf_read_meta(struct proto_mf_reader *r, struct proto_kv *meta)
{
    CLEANUP_FREE uint8_t *blk = NULL;
    size_t len = r->hdr.meta_len, done = 0;

    if (r->state != MF_META)
        return lb_error(0, "manifest: meta read before the last disk");
    blk = lb_xmalloc(len ? len : 1);
    /* The meta block may be larger than the buffer: copy it in pieces. */
    while (done < len) {
        size_t n = LB_MIN(len - done, (size_t)MF_BUF / 2);
        if (mf_need(r, n) < 0)
            return -1;
        memcpy(blk + done, r->buf + r->start, n);
        mf_consume(r, n, true);
        done += n;
    }
    if (proto_mf_meta_decode(&r->hdr, blk, len, meta) < 0) {
        r->state = MF_FAILED;
        return -1;
    }
    r->state = MF_TRAILER;
    return 0;
}

int
proto_mf_finish(struct proto_mf_reader *r)
{
    uint8_t body[PROTO_DIGEST_LEN], want[PROTO_DIGEST_LEN];
    uint8_t cat[PROTO_MF_HDR_SIZE + PROTO_DIGEST_LEN];
    unsigned n = 0;

    if (r->state != MF_TRAILER)
        return lb_error(0, "manifest: finish called before the meta block");
    if (mf_need(r, PROTO_DIGEST_LEN) < 0)
        return -1;
    if (EVP_DigestFinal_ex(r->body, body, &n) != 1)
        return lb_error(0, "OpenSSL: SHA-256 failed");
    memcpy(cat, r->hdr_raw, PROTO_MF_HDR_SIZE);
    memcpy(cat + PROTO_MF_HDR_SIZE, body, PROTO_DIGEST_LEN);
    if (sha256(cat, sizeof cat, want) < 0)
        return -1;
    if (memcmp(want, r->buf + r->start, PROTO_DIGEST_LEN) != 0)
        return mf_fail(r, "trailer digest mismatch (the manifest is damaged)",
                       PROTO_E_RANGE);
    mf_consume(r, PROTO_DIGEST_LEN, false);
    /* Nothing may follow the trailer: neither bytes already buffered with
     * it nor any the source still has. */
    if (r->start != r->end)
        return mf_fail(r, "bytes after the trailer", PROTO_E_TRAILING);
    r->start = r->end = 0;
    while (!r->eof && r->end == 0) {
        ssize_t got = r->fn(r->opaque, r->buf, MF_BUF);
        if (got < 0)
            return -1;
        if (got == 0)
            r->eof = true;
        r->end = (size_t)got;
    }
    if (r->end != 0)
        return mf_fail(r, "bytes after the trailer", PROTO_E_TRAILING);
    r->state = MF_DONE;
    return 0;
}

/* ---- writer -------------------------------------------------------------- */

struct proto_mf_writer {
    int fd;
    uint16_t version;
    uint64_t empty_run; /* version 2: empty windows not written yet */
    struct lb_buf out;
    uint64_t pos; /* bytes handed to write(2) so far */
    EVP_MD_CTX *body;
    uint32_t ndisks;
    uint64_t windows_left;
    bool in_disk;
    bool failed;
};

struct proto_mf_writer *
proto_mf_writer_new(int fd)
{
    return proto_mf_writer_new_version(fd, PROTO_MF_VERSION);
}

struct proto_mf_writer *
proto_mf_writer_new_version(int fd, uint16_t version)
{
    struct proto_mf_writer *w;
    uint8_t zero[PROTO_MF_HDR_SIZE] = {0};

    if (version < PROTO_MF_VERSION_MIN || version > PROTO_MF_VERSION) {
        lb_error(0, "manifest: no version %u", version);
        return NULL;
    }
    w = lb_xcalloc(1, sizeof *w);
    w->fd = fd;
    w->version = version;
    w->body = EVP_MD_CTX_new();
    if (!w->body || EVP_DigestInit_ex(w->body, EVP_sha256(), NULL) != 1) {
        lb_error(0, "OpenSSL: cannot start a digest");
        proto_mf_writer_free(w);
        return NULL;
    }
    /* Header placeholder, rewritten by finish. */
    lb_buf_append(&w->out, zero, sizeof zero);
    return w;
}

void
proto_mf_writer_free(struct proto_mf_writer *w)
{
    if (!w)
        return;
    EVP_MD_CTX_free(w->body);
    lb_buf_free(&w->out);
    free(w);
}

static int
mf_flush(struct proto_mf_writer *w)
{
    if (w->out.len == 0)
        return 0;
    if (lb_write_full(w->fd, w->out.data, w->out.len) < 0) {
        w->failed = true;
        return lb_error(errno, "write manifest");
    }
    w->pos += w->out.len;
    lb_buf_reset(&w->out);
    return 0;
}

/* Hash and buffer body bytes appended since mark. */
static int
mf_body_done(struct proto_mf_writer *w, size_t mark)
{
    EVP_DigestUpdate(w->body, w->out.data + mark, w->out.len - mark);
    return w->out.len >= MF_BUF ? mf_flush(w) : 0;
}

int
proto_mf_write_disk(struct proto_mf_writer *w, const char *name, uint64_t size,
                    uint32_t window_size)
{
    size_t mark = w->out.len;

    if (w->failed || w->in_disk || w->ndisks >= PROTO_MF_MAX_DISKS ||
        !proto_disk_name_valid(name, strlen(name)) ||
        !proto_window_size_valid(window_size) || size == 0 ||
        size > PROTO_MF_MAX_SIZE ||
        proto_mf_windows_for(size, window_size) > PROTO_MF_MAX_WINDOWS)
        return lb_error(0, "manifest: invalid disk section for %s", name);
    lb_buf_put_be32(&w->out, PROTO_MF_DISK_MAGIC);
    lb_buf_put_str16(&w->out, name, strlen(name));
    lb_buf_put_be64(&w->out, size);
    lb_buf_put_be32(&w->out, window_size);
    lb_buf_put_be32(&w->out, 0);
    lb_buf_put_be64(&w->out, proto_mf_windows_for(size, window_size));
    w->ndisks++;
    w->in_disk = true;
    w->windows_left = proto_mf_windows_for(size, window_size);
    return mf_body_done(w, mark);
}

/* Version 2: the pending run of empty windows, as one record. */
static int
mf_flush_run(struct proto_mf_writer *w)
{
    size_t mark = w->out.len;

    if (!w->empty_run)
        return 0;
    lb_buf_put_u8(&w->out, 0);
    lb_buf_put_be32(&w->out, (uint32_t)w->empty_run);
    w->empty_run = 0;
    return mf_body_done(w, mark);
}

int
proto_mf_write_disk_end(struct proto_mf_writer *w, const struct proto_kv *meta)
{
    size_t mark;

    if (w->failed || !w->in_disk || w->windows_left != 0)
        return lb_error(0, "manifest: disk end before its last window");
    if (mf_flush_run(w) < 0)
        return -1;
    mark = w->out.len;
    lb_buf_put_be32(&w->out, 0);
    proto_kv_encode(&w->out, meta);
    if (w->out.len - mark - 4 > MF_MAX_DISK_META)
        return lb_error(0, "manifest: disk metadata too large");
    lb_store_be32(w->out.data + mark, (uint32_t)(w->out.len - mark - 4));
    w->in_disk = false;
    return mf_body_done(w, mark);
}

int
proto_mf_write_window(struct proto_mf_writer *w,
                      const struct proto_mf_window *win)
{
    size_t mark;

    if (w->failed || !w->in_disk || w->windows_left == 0 ||
        win->depth > PROTO_MAX_STACK)
        return lb_error(0, "manifest: window written out of order");
    if (win->depth == 0 && w->version >= 2) {
        /* A disk has at most 2^24 windows: a run fits its u32. */
        w->empty_run++;
        w->windows_left--;
        return 0;
    }
    if (mf_flush_run(w) < 0)
        return -1;
    mark = w->out.len;
    lb_buf_put_u8(&w->out, win->depth);
    for (uint8_t i = 0; i < win->depth; i++) {
        lb_buf_put_u8(&w->out, win->refs[i].type);
        lb_buf_append(&w->out, win->refs[i].d.b, PROTO_DIGEST_LEN);
    }
    w->windows_left--;
    return mf_body_done(w, mark);
}

int
proto_mf_write_finish(struct proto_mf_writer *w, const struct proto_kv *meta)
{
    struct proto_mf_hdr h = {0};
    uint8_t hdr[PROTO_MF_HDR_SIZE], body[PROTO_DIGEST_LEN];
    uint8_t cat[PROTO_MF_HDR_SIZE + PROTO_DIGEST_LEN],
        trailer[PROTO_DIGEST_LEN];
    size_t mark = w->out.len;
    unsigned n = 0;

    if (w->failed || w->in_disk)
        return lb_error(0, "manifest: finish before the last disk ended");
    h.version = w->version;
    h.ndisks = w->ndisks;
    h.meta_off = w->pos + w->out.len;
    proto_kv_encode(&w->out, meta);
    if (w->out.len - mark > PROTO_MF_MAX_META)
        return lb_error(0, "manifest: meta block too large");
    h.meta_len = (uint32_t)(w->out.len - mark);
    if (sha256(w->out.data + mark, h.meta_len, h.meta_digest) < 0)
        return -1;
    EVP_DigestUpdate(w->body, w->out.data + mark, h.meta_len);
    if (EVP_DigestFinal_ex(w->body, body, &n) != 1)
        return lb_error(0, "OpenSSL: SHA-256 failed");
    proto_mf_hdr_encode(hdr, &h);
    memcpy(cat, hdr, sizeof hdr);
    memcpy(cat + sizeof hdr, body, sizeof body);
    if (sha256(cat, sizeof cat, trailer) < 0)
        return -1;
    lb_buf_append(&w->out, trailer, sizeof trailer);
    if (mf_flush(w) < 0)
        return -1;
    if (lb_pwrite_full(w->fd, hdr, sizeof hdr, 0) < 0)
        return lb_error(errno, "write manifest header");
    return 0;
}
