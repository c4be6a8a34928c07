/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A set of chunk digests (open addressing on the digest's first 8 bytes,
 * which are already uniformly distributed). Used for the chunks a
 * transaction has noted and for the damaged chunks verify found.
 */
#include "store/store_int.h"

#include <string.h>

static size_t
dset_hash(const struct proto_digest *d, size_t cap)
{
    return (size_t)lb_load_be64(d->b) & (cap - 1);
}

static void
dset_grow(struct digest_set *s)
{
    struct digest_set n = {0};

    n.cap = s->cap ? s->cap * 2 : 1024;
    n.slot = lb_xcalloc(n.cap, sizeof *n.slot);
    n.used = lb_xcalloc(n.cap, 1);
    for (size_t i = 0; i < s->cap; i++)
        if (s->used[i])
            store_dset_add(&n, &s->slot[i]);
    free(s->slot);
    free(s->used);
    *s = n;
}

bool
store_dset_has(const struct digest_set *s, const struct proto_digest *d)
{
    if (!s->cap)
        return false;
    for (size_t i = dset_hash(d, s->cap);; i = (i + 1) & (s->cap - 1)) {
        if (!s->used[i])
            return false;
        if (memcmp(s->slot[i].b, d->b, PROTO_DIGEST_LEN) == 0)
            return true;
    }
}

void
store_dset_add(struct digest_set *s, const struct proto_digest *d)
{
    if (store_dset_has(s, d))
        return;
    if ((s->n + 1) * 4 > s->cap * 3)
        dset_grow(s);
    for (size_t i = dset_hash(d, s->cap);; i = (i + 1) & (s->cap - 1)) {
        if (!s->used[i]) {
            s->used[i] = 1;
            s->slot[i] = *d;
            s->n++;
            return;
        }
    }
}

void
store_dset_free(struct digest_set *s)
{
    free(s->slot);
    free(s->used);
    memset(s, 0, sizeof *s);
}
