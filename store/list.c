/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Listing and deleting backups. A listing reads only each manifest's
 * header and meta block (checked against the header's digest), never the
 * window stacks, so it stays fast with large disks.
 */
#include "store/store_int.h"

#include <errno.h>
#include <string.h>

int
store_backup_meta(struct store *st, const char *id, struct proto_kv *meta)
{
    if (store_manifest_read_meta_obj(st, id, meta) < 0) {
        int e = lb_error_errno();
        if (e != ENOENT && e != EINVAL)
            lb_error_prefix("backup %s", id);
        errno = e;
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

struct id_list {
    char **ids;
    size_t n, cap;
};

static int
add_id(void *opaque, const char *name)
{
    struct id_list *l = opaque;
    const char *id = name + STORE_BE_MF_PREFIX_LEN;

    if (!proto_backup_id_valid(id, strlen(id)))
        return 0;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->ids = lb_xrealloc(l->ids, l->cap * sizeof *l->ids);
    }
    l->ids[l->n++] = lb_xstrdup(id);
    return 0;
}

/* The manifests' ids, by the index unless walk (and by set there, if
 * not NULL: those of other sets may be left out). */
static int
backup_ids(struct store *st, bool walk, const char *set, char ***ids,
           size_t *n)
{
    struct store_be *be = st->be;
    struct id_list l = {0};
    int r = 1;

    *ids = NULL;
    *n = 0;
    if (!walk && be->ops->list_backups)
        r = be->ops->list_backups(be, set, add_id, &l);
    if (r == 1)
        r = be->ops->list(be, STORE_BE_MF_PREFIX, add_id, &l);
    if (r < 0) {
        store_ids_free(l.ids, l.n);
        return -1;
    }
    *ids = l.ids;
    *n = l.n;
    return 0;
}

int
store_backup_ids(struct store *st, char ***ids, size_t *n)
{
    return backup_ids(st, false, NULL, ids, n);
}

int
store_backup_ids_walk(struct store *st, char ***ids, size_t *n)
{
    return backup_ids(st, true, NULL, ids, n);
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
    struct proto_kv *metas;
    int *errs;

    out->n = 0;
    out->b = NULL;
    if (backup_ids(st, false, name, &ids, &nids) < 0)
        return -1;
    metas = lb_xcalloc(nids ? nids : 1, sizeof *metas);
    errs = lb_xcalloc(nids ? nids : 1, sizeof *errs);
    store_manifest_read_meta_many(st, ids, nids, metas, errs);
    for (size_t i = 0; i < nids; i++) {
        struct proto_kv meta = metas[i];
        const char *n;
        struct store_backup *b;
        const char *id = ids[i];

        if (errs[i] == ENOENT)
            continue; /* deleted since it was listed */
        /* Damaged (or a read that failed): alone again, for the message. */
        if (errs[i] && store_backup_meta(st, id, &meta) < 0) {
            if (lb_error_errno() != ENOENT)
                lb_warn("%s (run livebackup verify)", lb_error_msg());
            lb_error_clear();
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
    free(metas);
    free(errs);
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
    CLEANUP_FREE char *obj = NULL;

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
    obj = store_manifest_obj(id);
    /* Unlinked, and backups/ fsynced, when this returns. */
    if (st->be->ops->remove(st->be, obj) < 0) {
        if (lb_error_errno() == ENOENT)
            lb_fail(ENOENT, "no backup %s in %s", id, st->path);
        return -1;
    }
    store_tick(st);
    return 0;
}
