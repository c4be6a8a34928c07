/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Reading committed manifests (FORMAT.md, "Manifests"): opening
 * backups/ID, its meta block alone (checked against the header's digest,
 * without reading the windows: what a listing needs), a streaming reader
 * over the whole file (verify, gc), and one disk's windows (what an
 * incremental's merge reads of its parent). list.c, txn.c, verify.c and
 * gc.c read manifests only through these.
 */
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

char *
store_manifest_obj(const char *id)
{
    return lb_xasprintf(STORE_BE_MF_PREFIX "%s", id);
}

ssize_t
store_fd_read(void *opaque, void *buf, size_t len)
{
    int fd = *(int *)opaque;
    ssize_t r = lb_read_full(fd, buf, len);

    if (r < 0)
        return lb_error(errno, "read manifest");
    return r;
}

int
store_manifest_open(struct store *st, const char *id)
{
    CLEANUP_FREE char *obj = NULL;
    int fd;

    if (!proto_backup_id_valid(id, strlen(id))) {
        lb_fail(EINVAL, "'%s' is not a backup id", id);
        errno = EINVAL;
        return -1;
    }
    obj = store_manifest_obj(id);
    fd = st->be->ops->open(st->be, obj);
    store_tick(st);
    if (fd < 0 && lb_error_errno() == ENOENT) {
        lb_fail(ENOENT, "no backup %s in %s", id, st->path);
        lb_error_hint("livebackup list shows the backups");
        errno = ENOENT;
    }
    return fd;
}

int
store_manifest_exists(struct store *st, const char *id)
{
    CLEANUP_FREE char *obj = store_manifest_obj(id);

    if (st->be->ops->stat(st->be, obj, NULL, NULL) == 0)
        return 1;
    if (lb_error_errno() != ENOENT)
        return -1;
    lb_error_clear();
    return 0;
}

/* Read len bytes at off of a manifest: what was read, or -1. */
typedef ssize_t (*mf_pread_fn)(void *opaque, void *buf, size_t len,
                               uint64_t off);

/* A header read (n bytes of hb) decoded into h: 0, or -1 (EPROTO). */
static int
meta_hdr(const uint8_t *hb, ssize_t n, struct proto_mf_hdr *h)
{
    int s;

    if (n != (ssize_t)PROTO_MF_HDR_SIZE)
        return lb_fail(EPROTO, "manifest truncated");
    s = proto_mf_hdr_decode(hb, PROTO_MF_HDR_SIZE, h);
    if (s != PROTO_OK)
        return lb_fail(EPROTO, "manifest header: %s", proto_status_str(s));
    return 0;
}

/* The meta block read (n bytes of blk) checked against h's digest and
 * decoded into meta: 0, or -1 (EPROTO). */
static int
meta_body(const struct proto_mf_hdr *h, const uint8_t *blk, ssize_t n,
          struct proto_kv *meta)
{
    if (n != (ssize_t)h->meta_len)
        return lb_fail(EPROTO, "manifest truncated");
    return proto_mf_meta_decode(h, blk, h->meta_len, meta) < 0 ? -1 : 0;
}

/* The header, then the meta block alone, checked against the header's
 * digest. */
static int
read_meta(mf_pread_fn rd, void *opaque, struct proto_kv *meta)
{
    uint8_t hb[PROTO_MF_HDR_SIZE];
    CLEANUP_FREE uint8_t *blk = NULL;
    struct proto_mf_hdr h = {0};
    ssize_t n;

    memset(meta, 0, sizeof *meta);
    n = rd(opaque, hb, sizeof hb, 0);
    if (n < 0 || meta_hdr(hb, n, &h) < 0)
        return -1;
    blk = lb_xmalloc(h.meta_len ? h.meta_len : 1);
    n = rd(opaque, blk, h.meta_len, h.meta_off);
    if (n < 0)
        return -1;
    return meta_body(&h, blk, n, meta);
}

static ssize_t
fd_pread(void *opaque, void *buf, size_t len, uint64_t off)
{
    ssize_t n = lb_pread_full(*(int *)opaque, buf, len, (off_t)off);

    return n < 0 ? lb_error(errno, "read manifest") : n;
}

int
store_manifest_read_meta(int fd, struct proto_kv *meta)
{
    return read_meta(fd_pread, &fd, meta);
}

struct obj_src {
    struct store_be *be;
    char *obj;
};

static ssize_t
obj_pread(void *opaque, void *buf, size_t len, uint64_t off)
{
    struct obj_src *o = opaque;

    return o->be->ops->read(o->be, o->obj, buf, len, off);
}

int
store_manifest_read_meta_obj(struct store *st, const char *id,
                             struct proto_kv *meta)
{
    struct obj_src o = {st->be, NULL};
    int r;

    memset(meta, 0, sizeof *meta);
    if (!proto_backup_id_valid(id, strlen(id))) {
        lb_fail(EINVAL, "'%s' is not a backup id", id);
        errno = EINVAL;
        return -1;
    }
    /* Two ranged reads: a RADOS manifest is not copied whole (its
     * windows can be megabytes). */
    o.obj = store_manifest_obj(id);
    r = read_meta(obj_pread, &o, meta);
    free(o.obj);
    if (r < 0 && lb_error_errno() == ENOENT) {
        lb_fail(ENOENT, "no backup %s in %s", id, st->path);
        lb_error_hint("livebackup list shows the backups");
        errno = ENOENT;
    }
    return r;
}

/* A listing reads META_BATCH manifests' headers at once (on files, on
 * several threads: a cold disk serves many reads at once), then their
 * meta blocks, at most META_BATCH_BYTES of them at once (a damaged
 * header may claim up to PROTO_MF_MAX_META). */
#define META_BATCH 256
#define META_BATCH_BYTES (4u << 20)

/* One batch of store_manifest_read_meta_many: the headers sent at once,
 * then the meta blocks. */
static void
meta_batch(struct store *st, char *const *ids, size_t m, struct proto_kv *metas,
           int *errs)
{
    char *objs[META_BATCH];
    const char *o[META_BATCH];
    uint8_t *bufs[META_BATCH];
    size_t lens[META_BATCH];
    uint64_t offs[META_BATCH];
    ssize_t got[META_BATCH] = {0};
    struct proto_mf_hdr h[META_BATCH] = {0};
    uint8_t *hb = lb_xmalloc(m * PROTO_MF_HDR_SIZE);
    size_t k = 0, idx[META_BATCH] = {0};

    for (size_t i = 0; i < m; i++) {
        memset(&metas[i], 0, sizeof metas[i]);
        objs[i] = store_manifest_obj(ids[i]);
        o[i] = objs[i];
        bufs[i] = hb + i * PROTO_MF_HDR_SIZE;
        lens[i] = PROTO_MF_HDR_SIZE;
        offs[i] = 0;
    }
    store_be_read_many(st->be, o, m, bufs, lens, offs, got);
    for (size_t i = 0; i < m; i++) {
        errs[i] = got[i] < 0                             ? (int)-got[i]
                  : meta_hdr(bufs[i], got[i], &h[i]) < 0 ? EPROTO
                                                         : 0;
        if (errs[i])
            continue;
        idx[k] = i;
        o[k] = objs[i];
        lens[k] = h[i].meta_len;
        offs[k] = h[i].meta_off;
        k++;
    }
    lb_error_clear();
    for (size_t j0 = 0, j1; j0 < k; j0 = j1) {
        size_t bytes = 0;
        for (j1 = j0;
             j1 < k && (j1 == j0 || bytes + lens[j1] <= META_BATCH_BYTES);
             j1++) {
            bytes += lens[j1];
            bufs[j1] = lb_xmalloc(lens[j1] ? lens[j1] : 1);
        }
        store_be_read_many(st->be, o + j0, j1 - j0, bufs + j0, lens + j0,
                           offs + j0, got + j0);
        store_tick(st);
        for (size_t j = j0; j < j1; j++) {
            size_t i = idx[j];
            errs[i] = got[j] < 0 ? (int)-got[j]
                      : meta_body(&h[i], bufs[j], got[j], &metas[i]) < 0
                          ? EPROTO
                          : 0;
            if (errs[i])
                proto_kv_free(&metas[i]);
            free(bufs[j]);
        }
    }
    lb_error_clear();
    for (size_t i = 0; i < m; i++)
        free(objs[i]);
    free(hb);
}

void
store_manifest_read_meta_many(struct store *st, char *const *ids, size_t n,
                              struct proto_kv *metas, int *errs)
{
    for (size_t at = 0; at < n; at += META_BATCH)
        meta_batch(st, ids + at, LB_MIN(n - at, (size_t)META_BATCH), metas + at,
                   errs + at);
}

struct proto_mf_reader *
store_manifest_reader(int *fd)
{
    struct proto_mf_reader *r = proto_mf_reader_new(store_fd_read, fd);
    struct proto_mf_hdr h;

    if (r && proto_mf_read_header(r, &h) == 0)
        return r;
    proto_mf_reader_free(r);
    return NULL;
}

/* The reader of the manifest open on *fd (at its start), past the
 * disks before `disk`; on failure *fd is closed (-1). */
static struct proto_mf_reader *
parent_disk_at(int *fd, const char *id, const char *disk,
               struct proto_mf_disk *d)
{
    struct proto_mf_reader *r = store_manifest_reader(fd);

    if (!r)
        goto fail;
    for (;;) {
        int got = proto_mf_next_disk(r, d);
        if (got < 0)
            goto fail;
        if (got == 0) {
            lb_fail(ENOENT, "parent backup %s has no disk %s", id, disk);
            errno = ENOENT;
            goto fail;
        }
        if (strcmp(d->name, disk) == 0)
            return r;
        if (proto_mf_skip_disk(r) < 0 || proto_mf_read_disk_end(r, NULL) < 0)
            goto fail;
    }
fail:
    proto_mf_reader_free(r);
    close(*fd);
    *fd = -1;
    return NULL;
}

struct proto_mf_reader *
store_parent_disk(struct store *st, const char *id, const char *disk,
                  int *fd_out, struct proto_mf_disk *d)
{
    *fd_out = store_manifest_open(st, id);
    if (*fd_out < 0)
        return NULL;
    return parent_disk_at(fd_out, id, disk, d);
}

struct proto_mf_reader *
store_parent_disk_again(int *fd, const char *id, const char *disk,
                        struct proto_mf_disk *d)
{
    if (lseek(*fd, 0, SEEK_SET) < 0) {
        int e = errno;
        close(*fd);
        *fd = -1;
        lb_error(e, "seek in parent backup %s", id);
        return NULL;
    }
    return parent_disk_at(fd, id, disk, d);
}
