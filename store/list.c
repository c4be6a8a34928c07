/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Listing and deleting backups. A listing reads only each manifest's
 * header and meta block (checked against the header's digest), never the
 * window stacks, so it stays fast with large disks.
 */
#include "store/store_int.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>

int
store_backup_meta(struct store *st, const char *id, struct proto_kv *meta)
{
    CLEANUP_CLOSE int fd = -1;

    memset(meta, 0, sizeof *meta);
    fd = store_manifest_open(st, id);
    if (fd < 0)
        return -1;
    if (store_manifest_read_meta(fd, meta) < 0) {
        lb_error_prefix("backup %s", id);
        return -1;
    }
    return 0;
}

static int
cmp_backup(const void *a, const void *b)
{
    const struct store_backup *x = a, *y = b;

    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    return strcmp(x->id, y->id);
}

int
store_backup_ids(struct store *st, char ***ids, size_t *n)
{
    CLEANUP_FREE char *dir = NULL;
    DIR *d;
    struct dirent *e;

    *ids = NULL;
    *n = 0;
    if (st->be)
        return store_obj_backup_ids(st, ids, n);
    dir = lb_xasprintf("%s/backups", st->path);
    d = opendir(dir);
    if (!d)
        return lb_error(errno, "open %s", dir);
    while ((e = readdir(d)) != NULL) {
        if (!proto_backup_id_valid(e->d_name, strlen(e->d_name)))
            continue;
        *ids = lb_xrealloc(*ids, (*n + 1) * sizeof **ids);
        (*ids)[(*n)++] = lb_xstrdup(e->d_name);
    }
    closedir(d);
    return 0;
}

void
store_ids_free(char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

int
store_list(struct store *st, const char *name, struct store_list *out)
{
    char **ids = NULL;
    size_t nids = 0, cap = 0;

    out->n = 0;
    out->b = NULL;
    if (store_backup_ids(st, &ids, &nids) < 0)
        return -1;
    for (size_t i = 0; i < nids; i++) {
        struct proto_kv meta = {0};
        const char *n;
        struct store_backup *b;
        const char *id = ids[i];

        if (store_backup_meta(st, id, &meta) < 0) {
            if (st->be && lb_error_errno() == ENOENT)
                continue; /* deleted since it was listed */
            lb_warn("%s (run livebackup verify)", lb_error_msg());
            continue;
        }
        n = proto_kv_get(&meta, "name");
        if (name && (!n || strcmp(n, name) != 0)) {
            proto_kv_free(&meta);
            continue;
        }
        if (out->n == cap) {
            cap = cap ? cap * 2 : 64;
            out->b = lb_xrealloc(out->b, cap * sizeof *out->b);
        }
        b = &out->b[out->n++];
        snprintf(b->id, sizeof b->id, "%s", id);
        b->time = (int64_t)proto_kv_get_u64(&meta, "time", 0);
        b->seq = proto_kv_get_u64(&meta, "seq", 0);
        b->meta = meta;
    }
    store_ids_free(ids, nids);
    if (out->n)
        qsort(out->b, out->n, sizeof *out->b, cmp_backup);
    return 0;
}

void
store_list_free(struct store_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        proto_kv_free(&l->b[i].meta);
    free(l->b);
    l->b = NULL;
    l->n = 0;
}

int
store_delete(struct store *st, const char *id)
{
    CLEANUP_FREE char *path = NULL;
    CLEANUP_FREE char *dir = NULL;

    if (st->mode != STORE_ADMIN)
        return lb_fail(EPERM, "deleting needs the repository's exclusive "
                              "lock");
    if (st->append_only) {
        lb_fail(EPERM, "this repository connection is append-only: "
                       "backups cannot be deleted through it");
        errno = EPERM;
        return -1;
    }
    if (!proto_backup_id_valid(id, strlen(id)))
        return lb_fail(EINVAL, "'%s' is not a backup id", id);
    if (st->be)
        return store_obj_manifest_remove(st, id);
    path = store_manifest_path(st, id);
    if (unlink(path) < 0) {
        if (errno == ENOENT) {
            lb_fail(ENOENT, "no backup %s in %s", id, st->path);
            return -1;
        }
        return lb_error(errno, "delete %s", path);
    }
    dir = lb_xasprintf("%s/backups", st->path);
    return lb_fsync_dir(dir);
}
