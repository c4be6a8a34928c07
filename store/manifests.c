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

char *
store_manifest_obj(const char *id)
{
    return lb_xasprintf("backups/%s", id);
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

int
store_manifest_read_meta(int fd, struct proto_kv *meta)
{
    uint8_t hb[PROTO_MF_HDR_SIZE];
    CLEANUP_FREE uint8_t *blk = NULL;
    struct proto_mf_hdr h;
    int s;

    memset(meta, 0, sizeof *meta);
    if (lb_pread_full(fd, hb, sizeof hb, 0) != (ssize_t)sizeof hb)
        return lb_fail(EPROTO, "manifest truncated");
    s = proto_mf_hdr_decode(hb, sizeof hb, &h);
    if (s != PROTO_OK)
        return lb_fail(EPROTO, "manifest header: %s", proto_status_str(s));
    blk = lb_xmalloc(h.meta_len ? h.meta_len : 1);
    if (lb_pread_full(fd, blk, h.meta_len, (off_t)h.meta_off) !=
        (ssize_t)h.meta_len)
        return lb_fail(EPROTO, "manifest truncated");
    return proto_mf_meta_decode(&h, blk, h.meta_len, meta) < 0 ? -1 : 0;
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

struct proto_mf_reader *
store_parent_disk(struct store *st, const char *id, const char *disk,
                  int *fd_out, struct proto_mf_disk *d)
{
    struct proto_mf_reader *r;

    *fd_out = store_manifest_open(st, id);
    if (*fd_out < 0)
        return NULL;
    r = store_manifest_reader(fd_out);
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
    if (*fd_out >= 0)
        close(*fd_out);
    *fd_out = -1;
    return NULL;
}
