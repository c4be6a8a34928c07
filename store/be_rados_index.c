/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The RADOS backend's index of manifests (FORMAT.md, "RADOS backend"): the
 * omap of the object `index` holds one key per backup id, so that a
 * listing of backups reads the index instead of walking every object of
 * the namespace (a walk's cost grows with the number of chunks).
 *
 * - A commit adds the id before it creates backups/ID: the index never
 *   misses a committed backup, and may name one being committed or one
 *   whose commit failed (its manifest is not there: readers skip it).
 * - A delete removes backups/ID, then the key.
 * - gc walks backups/ anyway (it trusts no index to know what it may
 *   sweep), then adds what the index lacks and drops the keys older than
 *   its cutoff whose manifest is not there. Each value is the time it was
 *   set and a random tag, and a drop asserts the value is still the one
 *   it read: an id committed again meanwhile keeps its key.
 * - A repository made before the index has no `index` object: listings
 *   walk, and writers leave it so (their adds assert the object exists).
 * - A value set by a commit also says the backup's set name, so that a
 *   listing of one set (every incremental's parent check) reads only that
 *   set's manifests, not every backup's. A value without one (written
 *   before, or by gc's repair) is listed for every set; readers check
 *   each manifest's own name anyway.
 */
#include "store/be_rados_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define INDEX_OBJ "index"
#define INDEX_PAGE 1000
/* time, tag, and a set name (proto_name_valid: at most 200 bytes) */
#define INDEX_VAL_MAX 256

/* A fresh value for a key (store_be_index_value): the time now and a
 * random tag, which tells one setting of the key from another. */
static int
index_value(char *v, size_t len, const char *set)
{
    uint8_t rnd[8];
    char hex[17];

    if (lb_random(rnd, sizeof rnd) < 0)
        return -1;
    lb_hex_encode(hex, rnd, sizeof rnd);
    store_be_index_value(v, len, (int64_t)time(NULL), hex, set);
    return 0;
}

int
be_rados_index_add(struct be_rados *b, const char *id, const char *set)
{
    char v[INDEX_VAL_MAX];
    const char *keys[] = {id}, *vals[] = {v};
    size_t klen[1], vlen[1];
    rados_write_op_t op;
    int r;

    if (index_value(v, sizeof v, set) < 0)
        return -1;
    klen[0] = strlen(id);
    vlen[0] = strlen(v);
    op = LR(rados_create_write_op);
    LR(rados_write_op_assert_exists, op);
    LR(rados_write_op_omap_set2, op, keys, vals, klen, vlen, 1);
    r = LR(rados_write_op_operate, op, b->io, INDEX_OBJ, NULL, 0);
    LR(rados_release_write_op, op);
    b->n_other++;
    if (r == -ENOENT) {
        lb_debug("%s has no index of backups (made before it): listings "
                 "walk it",
                 b->be.where);
        return 0;
    }
    if (r < 0)
        return be_rados_fail(r, "add to the index", id, b);
    return 0;
}

void
be_rados_index_del(struct be_rados *b, const char *id)
{
    const char *keys[] = {id};
    size_t klen[] = {strlen(id)};
    rados_write_op_t op = LR(rados_create_write_op);
    int r;

    LR(rados_write_op_assert_exists, op);
    LR(rados_write_op_omap_rm_keys2, op, keys, klen, 1);
    r = LR(rados_write_op_operate, op, b->io, INDEX_OBJ, NULL, 0);
    LR(rados_release_write_op, op);
    b->n_other++;
    /* The manifest is gone: a key left behind only costs a listing one
     * read (ENOENT, skipped), and gc drops it. */
    if (r < 0 && r != -ENOENT)
        lb_debug("%s: the index keeps %s: %s", b->be.where, id, strerror(-r));
}

/* fn gets each key (a C string) and value of the index, in order. */
typedef int (*index_fn)(void *opaque, const char *key, const char *val,
                        size_t val_len);

/* One page of the index after *after ("" first): each key to fn; *after
 * becomes the page's last key, *more says whether a page follows. 0, -1,
 * 1 if there is no index, or what fn returned other than 0. */
static int
index_page(struct be_rados *b, char **after, index_fn fn, void *opaque,
           bool *more)
{
    rados_read_op_t op = LR(rados_create_read_op);
    rados_omap_iter_t it = NULL;
    unsigned char pmore = 0;
    int prval = 0, r, rc = 0;

    LR(rados_read_op_omap_get_vals2, op, *after, "", INDEX_PAGE, &it, &pmore,
       &prval);
    r = LR(rados_read_op_operate, op, b->io, INDEX_OBJ, 0);
    LR(rados_release_read_op, op);
    b->n_read++;
    if (r == 0 && prval < 0)
        r = prval;
    if (r < 0) {
        if (it)
            LR(rados_omap_get_end, it);
        return r == -ENOENT ? 1 : be_rados_fail(r, "read", INDEX_OBJ, b);
    }
    *more = false;
    for (;;) {
        char *key = NULL, *val = NULL;
        size_t klen = 0, vlen = 0;
        if (LR(rados_omap_get_next2, it, &key, &val, &klen, &vlen) < 0 || !key)
            break;
        free(*after);
        *after = lb_xmalloc(klen + 1);
        memcpy(*after, key, klen);
        (*after)[klen] = '\0';
        *more = pmore != 0;
        /* A key that is no C string is no backup id: skipped (a reader
         * checks each name it gets anyway). */
        if (klen == 0 || memchr(key, '\0', klen))
            continue;
        rc = fn(opaque, *after, val, vlen);
        if (rc != 0)
            break;
    }
    LR(rados_omap_get_end, it);
    return rc;
}

/* Every key of the index, in order: 0, -1, 1 if there is none, or what
 * fn returned other than 0. */
static int
index_walk(struct be_rados *b, index_fn fn, void *opaque)
{
    char *after = lb_xstrdup("");
    bool more = true;
    int r = 0;

    while (r == 0 && more)
        r = index_page(b, &after, fn, opaque, &more);
    free(after);
    return r;
}

struct list_ctx {
    const char *set;
    store_be_list_fn fn;
    void *opaque;
};

static int
list_one(void *opaque, const char *key, const char *val, size_t val_len)
{
    struct list_ctx *c = opaque;
    CLEANUP_FREE char *name = NULL;
    size_t slen;
    const char *s;

    if (c->set && (s = store_be_index_value_set(val, val_len, &slen)) != NULL &&
        (slen != strlen(c->set) || memcmp(s, c->set, slen) != 0))
        return 0; /* another set's */
    name = lb_xasprintf(STORE_BE_MF_PREFIX "%s", key);
    return c->fn(c->opaque, name);
}

int
be_rados_list_backups(struct store_be *be, const char *set,
                      store_be_list_fn fn, void *opaque)
{
    struct list_ctx c = {set, fn, opaque};

    return index_walk(to_rados(be), list_one, &c);
}

struct sync_ctx {
    struct be_rados *b;
    char *const *ids; /* sorted */
    size_t n;
    bool *indexed; /* per id: the index names it */
    int64_t cutoff;
    uint64_t dropped;
};

static int
cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Drop key if its value is still val (one operation: a key set again
 * since it was read stays). */
static int
index_drop(struct be_rados *b, const char *key, const char *val, size_t val_len)
{
    const char *keys[] = {key};
    size_t klen[] = {strlen(key)};
    rados_write_op_t op = LR(rados_create_write_op);
    int prval = 0, r;

    LR(rados_write_op_omap_cmp2, op, key, LIBRADOS_CMPXATTR_OP_EQ, val, klen[0],
       val_len, &prval);
    LR(rados_write_op_omap_rm_keys2, op, keys, klen, 1);
    r = LR(rados_write_op_operate, op, b->io, INDEX_OBJ, NULL, 0);
    LR(rados_release_write_op, op);
    b->n_other++;
    if (r == -ECANCELED || r == -ENOENT)
        return 0;
    if (r < 0)
        return be_rados_fail(r, "drop from the index", key, b);
    return 1;
}

static int
sync_one(void *opaque, const char *key, const char *val, size_t val_len)
{
    struct sync_ctx *c = opaque;
    const char *k = key;
    char *const *hit = bsearch(&k, c->ids, c->n, sizeof *c->ids, cmp_str);
    char v[INDEX_VAL_MAX], *end;
    long long t;
    int r;

    if (hit) {
        c->indexed[hit - c->ids] = true;
        return 0;
    }
    /* No manifest: a commit under way (set after the cutoff), or one
     * that failed or a delete cut short (before it). An unreadable value
     * is as old as can be. */
    if (val_len >= sizeof v)
        val_len = sizeof v - 1;
    memcpy(v, val, val_len);
    v[val_len] = '\0';
    t = strtoll(v, &end, 10);
    if (end != v && t >= c->cutoff)
        return 0;
    r = index_drop(c->b, key, val, val_len);
    if (r > 0)
        c->dropped++;
    return r < 0 ? -1 : 0;
}

int
be_rados_index_sync(struct store_be *be, char *const *ids, size_t n,
                    int64_t cutoff)
{
    struct be_rados *b = to_rados(be);
    char **sorted = lb_xcalloc(n ? n : 1, sizeof *sorted);
    struct sync_ctx c = {b, sorted, n, lb_xcalloc(n ? n : 1, 1), cutoff, 0};
    uint64_t added = 0;
    int r;

    memcpy(sorted, ids, n * sizeof *ids);
    qsort(sorted, n, sizeof *sorted, cmp_str);
    r = index_walk(b, sync_one, &c);
    if (r == 1) {
        r = 0; /* no index: nothing to keep in step */
        goto out;
    }
    for (size_t i = 0; r == 0 && i < n; i++)
        if (!c.indexed[i]) {
            lb_warn("the index of %s lacked backup %s: added", be->where,
                    sorted[i]);
            r = be_rados_index_add(b, sorted[i], NULL);
            added++;
        }
    if (r == 0 && (added || c.dropped))
        lb_debug("%s: index: %llu added, %llu dropped", be->where,
                 (unsigned long long)added, (unsigned long long)c.dropped);
out:
    free(c.indexed);
    free(sorted);
    return r;
}
