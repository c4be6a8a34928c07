/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Backup transactions: the new manifest is built by merging, window by
 * window, the parent's stacks with the records the agent sends (SET
 * replaces a stack, PUSH adds deltas on top; unsent windows keep the
 * parent's stack for an incremental disk and are empty for a full one).
 * Both manifests are streamed: memory does not grow with disk size.
 *
 * Commit: the backend's barrier (file: syncfs, every chunk and directory
 * entry is durable), then the manifest, fsync'd, created exclusively by
 * the backend's commit (file: link into backups/, fsync backups/).
 */
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

struct store_txn {
    struct store *st;
    char id[PROTO_ID_LEN + 1];
    char parent[PROTO_ID_LEN + 1];
    char *name;
    struct proto_kv meta;
    int64_t start;
    char *tmp;
    int fd;
    struct proto_mf_writer *w;
    struct digest_set noted;
    bool failed;

    /* the disk being written */
    bool in_disk;
    char disk[65];
    uint8_t mode;
    uint64_t size, nwindows, next;
    uint64_t windows_total; /* over every disk begun: bounded */
    int parent_fd;
    struct proto_mf_reader *prd;
    struct proto_kv disk_meta;

    /* summary */
    struct lb_buf disks; /* "vda=SIZE vdb=SIZE" */
    char **disk_names;
    struct proto_kv *disk_metas; /* each disk's final metadata */
    size_t ndisks;
    bool prepared; /* the final metadata is in meta (store_txn_prepare) */
    bool import;   /* a copy of another repository's backup (IMPORT) */
    bool reserved; /* ids/ID is ours (txn_claim_id) */
    uint64_t chunks_new, bytes_new, bytes_received;
    uint64_t windows_set, windows_pushed;
};

/* The manifest's temporary file and its writer. */
static int
txn_open_tmp(struct store_txn *t)
{
    t->tmp = store_tmp_name(t->st, "manifest");
    t->fd = open(t->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (t->fd < 0)
        return lb_error(errno, "create %s", t->tmp);
    t->w = proto_mf_writer_new(t->fd);
    return t->w ? 0 : -1;
}

/* Drop t->id's reservation, if it holds one. */
static void
txn_unreserve(struct store_txn *t)
{
    CLEANUP_FREE char *obj = NULL;

    if (!t->reserved)
        return;
    obj = lb_xasprintf(STORE_BE_ID_PREFIX "%s", t->id);
    t->st->be->ops->unreserve(t->st->be, obj);
    t->reserved = false;
}

/* Claim t->id for this transaction: reserve it (ids/ID, exclusively:
 * two writers that pick one id at once, in two sessions or on two front
 * ends, cannot both have it), then make sure no committed backup has it
 * (a backup committed before drops its reservation). 0 claimed, 1 taken
 * (nothing kept), -1 error. */
static int
txn_claim_id(struct store_txn *t)
{
    CLEANUP_FREE char *obj = lb_xasprintf(STORE_BE_ID_PREFIX "%s", t->id);
    int r = t->st->be->ops->reserve(t->st->be, obj);

    if (r != 0)
        return r;
    t->reserved = true;
    r = store_manifest_exists(t->st, t->id);
    if (r != 0)
        txn_unreserve(t);
    return r;
}

/* A backup's parent must be a backup of its set here: 0, or -1 with errno
 * (ENOENT, EINVAL, EPROTO for one that cannot be read). */
static int
parent_of_set(struct store *st, const char *parent_id, const char *name)
{
    struct proto_kv pm = {0};
    const char *n;
    bool ok;

    if (store_manifest_read_meta_obj(st, parent_id, &pm) < 0) {
        int e = lb_error_errno();
        if (e != ENOENT && e != EINVAL) {
            lb_error_prefix("parent backup %s", parent_id);
            e = EPROTO;
        }
        errno = e;
        return -1;
    }
    n = proto_kv_get(&pm, "name");
    ok = n && strcmp(n, name) == 0;
    proto_kv_free(&pm);
    if (!ok) {
        lb_fail(EINVAL, "parent backup %s is not a backup of %s", parent_id,
                name);
        errno = EINVAL;
        return -1;
    }
    return 0;
}

struct store_txn *
store_txn_begin(struct store *st, const char *name, const char *parent_id,
                const struct proto_kv *meta)
{
    struct store_txn *t;
    uint16_t rnd;

    if (st->mode == STORE_READ) {
        lb_fail(EPERM, "repository opened read-only");
        return NULL;
    }
    if (!proto_name_valid(name, strlen(name))) {
        lb_fail(EINVAL, "invalid backup name '%s'", name);
        errno = EINVAL;
        return NULL;
    }
    t = lb_xcalloc(1, sizeof *t);
    t->st = st;
    t->fd = -1;
    t->parent_fd = -1;
    t->name = lb_xstrdup(name);
    t->start = lb_wall_time();
    if (proto_kv_merge(&t->meta, meta, STORE_MAX_META_KEYS,
                       STORE_MAX_META_BYTES) < 0) {
        lb_error_prefix("backup of %s", name);
        errno = EINVAL;
        goto fail;
    }

    if (parent_id && *parent_id) {
        if (parent_of_set(st, parent_id, name) < 0)
            goto fail;
        snprintf(t->parent, sizeof t->parent, "%s", parent_id);
    }

    /* A fresh id: time plus 16 random bits, neither an existing backup's
     * nor one that another writer is using. */
    for (int tries = 0;; tries++) {
        int e;
        if (lb_random(&rnd, sizeof rnd) < 0)
            goto fail;
        proto_backup_id_make(t->id, t->start, rnd);
        e = txn_claim_id(t);
        if (e < 0)
            goto fail;
        if (e == 0)
            break;
        if (tries > 100) {
            lb_fail(EEXIST, "cannot find a free backup id");
            goto fail;
        }
    }
    if (txn_open_tmp(t) < 0)
        goto fail;
    return t;
fail:
    store_txn_abort(t);
    return NULL;
}

/* The append-only rule of an import: the backup must be what a
 * BACKUP_BEGIN through the same connection could make, a new latest
 * backup of its set, not later than now (PROTOCOL.md, "Copy"). */
static int
import_append_only(struct store *st, const char *name, int64_t time)
{
    struct store_list l;
    int64_t newest = INT64_MIN;

    if (time > lb_wall_time() + STORE_IMPORT_SKEW)
        return lb_fail(EPERM,
                       "this connection is append-only: it cannot import a "
                       "backup from the future");
    if (store_list(st, name, &l) < 0)
        return -1;
    for (size_t i = 0; i < l.n; i++)
        newest = LB_MAX(newest, l.b[i].time);
    store_list_free(&l);
    if (time < newest)
        return lb_fail(EPERM,
                       "this connection is append-only: it can import only "
                       "backups not older than the latest of their set (%s)",
                       name);
    return 0;
}

/* The id of a backup names its start time: YYYYMMDD-HHMMSS. */
static bool
import_id_time(const char *id, int64_t time)
{
    char want[PROTO_ID_LEN + 1];

    proto_backup_id_make(want, time, 0);
    return strncmp(want, id, 15) == 0;
}

struct store_txn *
store_txn_import(struct store *st, const char *id, const char *name,
                 const char *parent_id, const struct proto_kv *meta)
{
    struct store_txn *t;
    const char *v;
    uint64_t time;

    if (st->mode == STORE_READ) {
        lb_fail(EPERM, "repository opened read-only");
        return NULL;
    }
    if (!proto_backup_id_valid(id, strlen(id)) ||
        !proto_name_valid(name, strlen(name)) ||
        (*parent_id && !proto_backup_id_valid(parent_id, strlen(parent_id)))) {
        lb_fail(EINVAL, "import: invalid backup id, name or parent");
        return NULL;
    }
    v = proto_kv_get(meta, "time");
    time = proto_kv_get_u64(meta, "time", UINT64_MAX);
    /* 9999-12-31T23:59:59Z: the last time an id can name */
    if (!v || time > 253402300799ull || !import_id_time(id, (int64_t)time)) {
        lb_fail(EINVAL, "import of %s: its time is missing or not its id's",
                id);
        return NULL;
    }
    if (((v = proto_kv_get(meta, "id")) && strcmp(v, id) != 0) ||
        ((v = proto_kv_get(meta, "name")) && strcmp(v, name) != 0) ||
        ((v = proto_kv_get(meta, "parent")) && strcmp(v, parent_id) != 0)) {
        lb_fail(EINVAL, "import of %s: its metadata names another backup", id);
        return NULL;
    }
    if (st->append_only && import_append_only(st, name, (int64_t)time) < 0)
        return NULL;
    /* Not reserved: a copied id names a past second, which no new backup
     * takes, and a copy killed before its commit must not keep its rerun
     * from the id. Two copies of one backup at once: the second commit
     * fails (EEXIST). */
    switch (store_manifest_exists(st, id)) {
    case 0:
        break;
    case 1:
        lb_fail(EEXIST, "backup %s is already in the repository", id);
        return NULL;
    default:
        return NULL;
    }
    t = lb_xcalloc(1, sizeof *t);
    t->st = st;
    t->fd = -1;
    t->parent_fd = -1;
    t->import = true;
    t->name = lb_xstrdup(name);
    t->start = (int64_t)time;
    snprintf(t->id, sizeof t->id, "%s", id);
    snprintf(t->parent, sizeof t->parent, "%s", parent_id);
    if (proto_kv_merge(&t->meta, meta, PROTO_MAX_KV,
                       STORE_MAX_IMPORT_META_BYTES) < 0) {
        lb_error_prefix("import of %s", id);
        errno = EINVAL;
        goto fail;
    }
    if (txn_open_tmp(t) < 0)
        goto fail;
    return t;
fail:
    store_txn_abort(t);
    return NULL;
}

const char *
store_txn_id(const struct store_txn *t)
{
    return t->id;
}

const char *
store_txn_parent(const struct store_txn *t)
{
    return t->parent;
}

void
store_txn_note_chunk(struct store_txn *t, const struct proto_digest *d,
                     uint8_t type, uint32_t raw_len)
{
    store_dset_put(&t->noted, d, type, raw_len);
}

bool
store_txn_noted(const struct store_txn *t, const struct proto_digest *d)
{
    return store_dset_has(&t->noted, d);
}

void
store_txn_add_stats(struct store_txn *t, uint64_t chunks_new,
                    uint64_t bytes_new, uint64_t bytes_received)
{
    t->chunks_new += chunks_new;
    t->bytes_new += bytes_new;
    t->bytes_received += bytes_received;
}

static int
txn_fail(struct store_txn *t)
{
    t->failed = true;
    return -1;
}

int
store_txn_disk_begin(struct store_txn *t, const char *disk, uint64_t size,
                     uint8_t mode, const struct proto_kv *meta,
                     uint64_t *nwindows, store_depths_fn fn, void *opaque)
{
    struct proto_mf_disk pd;
    uint32_t ws = t->st->window_size;

    if (t->failed || t->in_disk)
        return lb_fail(EINVAL, "disk %s started while another is open", disk);
    if (!proto_disk_name_valid(disk, strlen(disk)))
        return lb_fail(EINVAL, "invalid disk name '%s'", disk);
    if (size == 0 || size > PROTO_MF_MAX_SIZE)
        return lb_fail(EINVAL, "disk %s: invalid size %llu", disk,
                       (unsigned long long)size);
    if (t->ndisks >= PROTO_MF_MAX_DISKS)
        return lb_fail(EINVAL, "too many disks in one backup");
    for (size_t i = 0; i < t->ndisks; i++)
        if (strcmp(t->disk_names[i], disk) == 0)
            return lb_fail(EINVAL, "disk %s sent twice", disk);

    t->nwindows = proto_mf_windows_for(size, ws);
    if (t->nwindows > PROTO_MF_MAX_WINDOWS)
        return lb_fail(EFBIG,
                       "disk %s: %llu bytes is more than this repository "
                       "takes in one disk (%llu windows of %u bytes)",
                       disk, (unsigned long long)size,
                       (unsigned long long)PROTO_MF_MAX_WINDOWS, ws);
    if (t->windows_total + t->nwindows > PROTO_MF_MAX_BACKUP_WINDOWS)
        return lb_fail(EFBIG,
                       "disk %s: the disks of this backup add up to more "
                       "than %llu windows of %u bytes",
                       disk, (unsigned long long)PROTO_MF_MAX_BACKUP_WINDOWS,
                       ws);
    /* An import's incremental disk (PROTOCOL.md, "Copy"): its parent must
     * be a backup of its set here, as a backup's, before any of its depths
     * go out (an import of whole disks needs no parent here). */
    if (t->import && mode == PROTO_DISK_INCR && t->parent[0] &&
        parent_of_set(t->st, t->parent, t->name) < 0) {
        lb_error_prefix("import of %s", t->id);
        return -1;
    }
    t->windows_total += t->nwindows;
    if (mode == PROTO_DISK_INCR) {
        struct proto_mf_window w;
        struct proto_mf_reader *r;
        int fd;
        uint8_t *dep;

        if (!t->parent[0])
            return lb_fail(EINVAL,
                           "incremental disk %s without a parent "
                           "backup",
                           disk);
        /* Pass 1: read the whole parent (checking its trailer) for the
         * depth map. Pass 2 (t->prd) streams the merge. */
        r = store_parent_disk(t->st, t->parent, disk, &fd, &pd);
        if (!r)
            return txn_fail(t);
        if (pd.size != size || pd.window_size != ws) {
            proto_mf_reader_free(r);
            close(fd);
            return lb_fail(EINVAL,
                           "disk %s: size %llu differs from the parent's "
                           "%llu: an incremental is not possible",
                           disk, (unsigned long long)size,
                           (unsigned long long)pd.size);
        }
        dep = lb_xmalloc(PROTO_MAX_DEPTHS_PER_FRAME);
        for (uint64_t i = 0; i < t->nwindows; i++) {
            size_t k = (size_t)(i % PROTO_MAX_DEPTHS_PER_FRAME);
            if (proto_mf_next_window(r, &w) < 0)
                goto bad_parent;
            dep[k] = w.depth;
            if ((k + 1 == PROTO_MAX_DEPTHS_PER_FRAME || i + 1 == t->nwindows) &&
                fn(opaque, i - k, dep, k + 1) < 0) {
                free(dep);
                proto_mf_reader_free(r);
                close(fd);
                return txn_fail(t);
            }
        }
        free(dep);
        dep = NULL;
        if (proto_mf_read_disk_end(r, NULL) < 0)
            goto bad_parent;
        while (proto_mf_next_disk(r, &pd) == 1)
            if (proto_mf_skip_disk(r) < 0 ||
                proto_mf_read_disk_end(r, NULL) < 0)
                goto bad_parent;
        {
            struct proto_kv m = {0};
            int ok = proto_mf_read_meta(r, &m) == 0 && proto_mf_finish(r) == 0;
            proto_kv_free(&m);
            if (!ok)
                goto bad_parent;
        }
        proto_mf_reader_free(r);
        /* The same copy again (a RADOS manifest is not fetched twice). */
        t->parent_fd = fd;
        t->prd = store_parent_disk_again(&t->parent_fd, t->parent, disk, &pd);
        if (!t->prd)
            return txn_fail(t);
        goto started;
    bad_parent:
        lb_error_prefix("parent backup %s is damaged", t->parent);
        errno = EPROTO;
        free(dep);
        proto_mf_reader_free(r);
        close(fd);
        return txn_fail(t);
    } else if (mode != PROTO_DISK_FULL) {
        return lb_fail(EINVAL, "disk %s: unknown mode %u", disk, mode);
    }
started:
    proto_kv_free(&t->disk_meta);
    /* An import's disk metadata is the whole of the source's, the
     * server's "mode" included: it is kept as it is. */
    if (proto_kv_merge(&t->disk_meta, meta,
                       t->import ? PROTO_MAX_KV : STORE_MAX_DISK_META_KEYS,
                       t->import ? PROTO_MF_MAX_DISK_META - 64
                                 : STORE_MAX_DISK_META_BYTES) < 0) {
        lb_error_prefix("disk %s", disk);
        return txn_fail(t);
    }
    if (proto_mf_write_disk(t->w, disk, size, ws) < 0)
        return txn_fail(t);
    t->in_disk = true;
    snprintf(t->disk, sizeof t->disk, "%s", disk);
    t->mode = mode;
    t->size = size;
    t->next = 0;
    t->disk_names =
        lb_xrealloc(t->disk_names, (t->ndisks + 1) * sizeof *t->disk_names);
    t->disk_metas =
        lb_xrealloc(t->disk_metas, (t->ndisks + 1) * sizeof *t->disk_metas);
    memset(&t->disk_metas[t->ndisks], 0, sizeof *t->disk_metas);
    t->disk_names[t->ndisks++] = lb_xstrdup(disk);
    *nwindows = t->nwindows;
    return 0;
}

/* Write windows [t->next, upto) unchanged: the parent's or empty. */
static int
fill_until(struct store_txn *t, uint64_t upto)
{
    struct proto_mf_window w = {0};

    for (; t->next < upto; t->next++) {
        if (t->mode == PROTO_DISK_INCR) {
            if (proto_mf_next_window(t->prd, &w) < 0)
                return -1;
        } else {
            w.depth = 0;
        }
        if (proto_mf_write_window(t->w, &w) < 0)
            return -1;
    }
    return 0;
}

/* The length of window i of the disk being written. */
static uint32_t
window_len(const struct store_txn *t, uint64_t i)
{
    uint64_t ws = t->st->window_size, left = t->size - i * ws;

    return (uint32_t)(left < ws ? left : ws);
}

static int
check_ref(struct store_txn *t, uint64_t index, const struct proto_ref *ref)
{
    char why[256];

    if (store_chunk_check_ref(t->st, &t->noted, ref->type, window_len(t, index),
                              &ref->d, why, sizeof why) == 0)
        return 0;
    lb_error_prefix("disk %s, window %llu", t->disk, (unsigned long long)index);
    return -1;
}

int
store_txn_window(struct store_txn *t, const struct proto_window_rec *r)
{
    struct proto_mf_window w = {0};

    if (t->failed || !t->in_disk)
        return lb_fail(EINVAL, "window record outside a disk");
    /* Any refusal ends the transaction: the parent reader would be out of
     * step with the records otherwise. */
    if (r->index >= t->nwindows || r->index < t->next) {
        lb_fail(EINVAL, "disk %s: window %llu out of order or range", t->disk,
                (unsigned long long)r->index);
        return txn_fail(t);
    }
    if (fill_until(t, r->index) < 0)
        return txn_fail(t);
    if (t->mode == PROTO_DISK_INCR && proto_mf_next_window(t->prd, &w) < 0)
        return txn_fail(t);
    if (r->op == PROTO_WIN_SET) {
        w.depth = 0;
        t->windows_set++;
    } else {
        t->windows_pushed++;
    }
    if ((size_t)w.depth + r->n > PROTO_MAX_STACK) {
        lb_fail(EINVAL, "disk %s: window %llu: stack deeper than %d", t->disk,
                (unsigned long long)r->index, PROTO_MAX_STACK);
        return txn_fail(t);
    }
    for (uint8_t i = 0; i < r->n; i++) {
        if (r->refs[i].type == PROTO_CHUNK_RAW && w.depth != 0) {
            lb_fail(EINVAL,
                    "disk %s: window %llu: a RAW chunk above other "
                    "chunks",
                    t->disk, (unsigned long long)r->index);
            return txn_fail(t);
        }
        if (check_ref(t, r->index, &r->refs[i]) < 0)
            return txn_fail(t);
        w.refs[w.depth++] = r->refs[i];
    }
    if (proto_mf_write_window(t->w, &w) < 0)
        return txn_fail(t);
    t->next = r->index + 1;
    return 0;
}

int
store_txn_disk_end(struct store_txn *t, const struct proto_kv *meta)
{
    char line[128];

    if (t->failed || !t->in_disk)
        return lb_fail(EINVAL, "disk end outside a disk");
    if (fill_until(t, t->nwindows) < 0)
        return txn_fail(t);
    if (proto_kv_merge(&t->disk_meta, meta,
                       t->import ? PROTO_MAX_KV : STORE_MAX_DISK_META_KEYS,
                       t->import ? PROTO_MF_MAX_DISK_META - 64
                                 : STORE_MAX_DISK_META_BYTES) < 0) {
        lb_error_prefix("disk %s", t->disk);
        return txn_fail(t);
    }
    if (!t->import) {
        proto_kv_set(&t->disk_meta, "mode",
                     t->mode == PROTO_DISK_INCR ? "incremental" : "full");
    } else if (!proto_kv_get(&t->disk_meta, "mode") ||
               (strcmp(proto_kv_get(&t->disk_meta, "mode"), "full") != 0 &&
                strcmp(proto_kv_get(&t->disk_meta, "mode"), "incremental") !=
                    0)) {
        lb_fail(EINVAL, "imported disk %s: its mode is not full or incremental",
                t->disk);
        return txn_fail(t);
    }
    if (proto_mf_write_disk_end(t->w, &t->disk_meta) < 0)
        return txn_fail(t);
    for (size_t i = 0; i < t->disk_meta.n; i++)
        proto_kv_set(&t->disk_metas[t->ndisks - 1], t->disk_meta.e[i].key,
                     t->disk_meta.e[i].val);
    if (t->prd) {
        proto_mf_reader_free(t->prd);
        t->prd = NULL;
        close(t->parent_fd);
        t->parent_fd = -1;
    }
    snprintf(line, sizeof line, "%s%s=%llu", t->disks.len ? " " : "", t->disk,
             (unsigned long long)t->size);
    lb_buf_append(&t->disks, line, strlen(line));
    t->in_disk = false;
    return 0;
}

/* What the backup's metadata names outside its window stacks, which gc
 * keeps and restore reads (FORMAT.md, "Meta block"): the saved domain XML,
 * a BLOB chunk stored or sent in this session. */
static int
check_meta_refs(struct store_txn *t)
{
    const char *xml = proto_kv_get(&t->meta, "domain_xml");
    struct proto_digest d;
    char why[256];

    if (!xml || !*xml)
        return 0;
    if (strlen(xml) != (size_t)2 * PROTO_DIGEST_LEN ||
        proto_digest_parse(xml, &d) < 0)
        return lb_fail(EINVAL, "backup %s: its domain_xml is not a digest",
                       t->id);
    if (store_chunk_check_ref(t->st, &t->noted, PROTO_CHUNK_BLOB, 0, &d, why,
                              sizeof why) < 0) {
        lb_error_prefix("backup %s: its domain_xml names", t->id);
        return -1;
    }
    return 0;
}

/* A key the server sets on a backup: an import keeps the source's value
 * (a decimal number; what the original commit recorded, which the
 * manifest's MAC covers). */
static void
set_own(struct store_txn *t, const char *key, uint64_t v)
{
    const char *have = proto_kv_get(&t->meta, key);

    if (t->import && have && *have && strlen(have) <= 20 &&
        strspn(have, "0123456789") == strlen(have))
        return;
    proto_kv_set_u64(&t->meta, key, v);
}

int
store_txn_prepare(struct store_txn *t, const struct proto_kv *meta)
{
    struct store *st = t->st;

    if (t->failed || t->in_disk || t->prepared)
        return lb_fail(EINVAL, "commit of an unfinished backup");
    if (t->ndisks == 0)
        return lb_fail(EINVAL, "a backup needs at least one disk");
    if (proto_kv_merge(&t->meta, meta,
                       t->import ? PROTO_MAX_KV : STORE_MAX_META_KEYS,
                       t->import ? STORE_MAX_IMPORT_META_BYTES
                                 : STORE_MAX_META_BYTES) < 0) {
        lb_error_prefix("commit of backup %s", t->id);
        return -1;
    }
    if (check_meta_refs(t) < 0)
        return -1;
    {
        /* The commit order: a number no backup of this repository had
         * (seq.c); the manifest is linked after this commit's syncfs made
         * the number durable. */
        uint64_t seq;
        if (store_seq_next(st, &seq) < 0)
            return -1;
        proto_kv_set_u64(&t->meta, "seq", seq);
    }
    {
        /* The server's own fields win over anything the client sent. */
        char *disks = lb_xmalloc(t->disks.len + 1);
        const char *p;
        uint64_t total = 0;
        memcpy(disks, t->disks.data, t->disks.len);
        disks[t->disks.len] = '\0';
        for (p = disks; (p = strchr(p, '=')) != NULL; p++)
            total += strtoull(p + 1, NULL, 10);
        proto_kv_set(&t->meta, "id", t->id);
        proto_kv_set(&t->meta, "name", t->name);
        proto_kv_set(&t->meta, "parent", t->parent);
        proto_kv_set_u64(&t->meta, "time", (uint64_t)t->start);
        set_own(t, "end_time", (uint64_t)lb_wall_time());
        proto_kv_set(&t->meta, "disks", disks);
        proto_kv_set_u64(&t->meta, "size", total);
        proto_kv_set_u64(&t->meta, "chunks_new", t->chunks_new);
        proto_kv_set_u64(&t->meta, "bytes_new", t->bytes_new);
        proto_kv_set_u64(&t->meta, "bytes_received", t->bytes_received);
        set_own(t, "windows_set", t->windows_set);
        set_own(t, "windows_pushed", t->windows_pushed);
        free(disks);
    }
    if (t->import &&
        (t->meta.n > PROTO_MAX_KV ||
         proto_kv_encoded_len(&t->meta) > STORE_MAX_IMPORT_META_BYTES))
        return lb_fail(EINVAL, "imported backup %s: too much metadata", t->id);
    t->prepared = true;
    return 0;
}

const struct proto_kv *
store_txn_meta(const struct store_txn *t)
{
    return &t->meta;
}

size_t
store_txn_ndisks(const struct store_txn *t)
{
    return t->ndisks;
}

const struct proto_kv *
store_txn_disk_meta(const struct store_txn *t, size_t i)
{
    return i < t->ndisks ? &t->disk_metas[i] : NULL;
}

/* After prepare, a commit adds only the manifest's MAC: everything else
 * is what the client saw and sealed. An encrypted repository's manifests
 * all have one. */
static int
commit_meta(struct store_txn *t, const struct proto_kv *meta)
{
    if (!t->prepared) {
        if (store_txn_prepare(t, meta) < 0)
            return -1;
    } else {
        for (size_t i = 0; i < meta->n; i++) {
            if (strcmp(meta->e[i].key, "mac") != 0)
                return lb_fail(EINVAL,
                               "commit: key '%s' after the final "
                               "metadata was sent",
                               meta->e[i].key);
            proto_kv_set(&t->meta, "mac", meta->e[i].val);
        }
    }
    if (!store_meta_has_mac(t->st, &t->meta))
        return lb_fail(EINVAL, "a backup of an encrypted repository "
                               "needs the MAC of its manifest");
    return 0;
}

bool
store_meta_has_mac(const struct store *st, const struct proto_kv *meta)
{
    const char *mac = proto_kv_get(meta, "mac");
    uint8_t b[32];

    return st->encryption == PROTO_ENC_NONE ||
           (mac && lb_hex_decode(b, sizeof b, mac) == 0);
}

int
store_txn_commit(struct store_txn *t, const struct proto_kv *meta,
                 struct proto_kv *out)
{
    struct store *st = t->st;
    CLEANUP_FREE char *obj = NULL;
    int r = -1;

    if (out)
        memset(out, 0, sizeof *out);
    if (t->failed || t->in_disk) {
        lb_fail(EINVAL, "commit of an unfinished backup");
        goto done;
    }
    if (commit_meta(t, meta) < 0)
        goto done;
    if (proto_mf_write_finish(t->w, &t->meta) < 0)
        goto done;
    if (fsync(t->fd) < 0) {
        lb_error(errno, "fsync manifest %s", t->tmp);
        goto done;
    }
    lb_fault_point("backupd:before-commit");
    /* Every chunk this backup names is durable after the barrier (the
     * file backend: each was fdatasync'd, syncfs makes the names durable;
     * RADOS: each completed, and the lease still holds), then the
     * manifest is created exclusively: the commit point. */
    obj = store_manifest_obj(t->id);
    if (st->be->ops->barrier(st->be) < 0 ||
        st->be->ops->commit(st->be, t->tmp, t->fd, obj,
                            proto_kv_get(&t->meta, "name")) < 0) {
        lb_error_prefix("backup %s was not committed", t->id);
        goto done;
    }
    lb_fault_point("backupd:after-commit");
    if (out)
        for (size_t i = 0; i < t->meta.n; i++)
            proto_kv_set(out, t->meta.e[i].key, t->meta.e[i].val);
    r = 0;
done : {
    int saved = errno;
    store_txn_abort(t);
    errno = saved;
}
    return r;
}

void
store_txn_abort(struct store_txn *t)
{
    if (!t)
        return;
    /* After the commit too: the manifest now keeps the id from others. */
    txn_unreserve(t);
    proto_mf_writer_free(t->w);
    if (t->fd >= 0)
        close(t->fd);
    if (t->tmp) {
        unlink(t->tmp);
        free(t->tmp);
    }
    proto_mf_reader_free(t->prd);
    if (t->parent_fd >= 0)
        close(t->parent_fd);
    proto_kv_free(&t->meta);
    proto_kv_free(&t->disk_meta);
    for (size_t i = 0; i < t->ndisks; i++) {
        free(t->disk_names[i]);
        proto_kv_free(&t->disk_metas[i]);
    }
    free(t->disk_names);
    free(t->disk_metas);
    lb_buf_free(&t->disks);
    store_dset_free(&t->noted);
    free(t->name);
    free(t);
}
