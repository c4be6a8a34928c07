/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A set of chunk digests (open addressing on the digest's first 8 bytes,
 * which are already uniformly distributed), each with its chunk's type and
 * raw length when known. Used for the chunks a transaction has noted and
 * for the damaged chunks verify found.
 */
#include "store/store_int.h"

#include <string.h>

static size_t
dset_hash(const struct proto_digest *d, size_t cap)
{
    return (size_t)lb_load_be64(d->b) & (cap - 1);
}

/* The slot of d, or of the empty slot where it would go; SIZE_MAX when
 * the set has no slots. */
static size_t
dset_find(const struct digest_set *s, const struct proto_digest *d)
{
    if (!s->cap)
        return SIZE_MAX;
    for (size_t i = dset_hash(d, s->cap);; i = (i + 1) & (s->cap - 1))
        if (!s->type[i] || memcmp(s->slot[i].b, d->b, PROTO_DIGEST_LEN) == 0)
            return i;
}

static void
dset_grow(struct digest_set *s)
{
    size_t cap = s->cap ? s->cap * 2 : 1024;
    struct proto_digest *slot = lb_xcalloc(cap, sizeof *slot);
    uint8_t *type = lb_xcalloc(cap, sizeof *type);
    uint32_t *raw_len = lb_xcalloc(cap, sizeof *raw_len);

    /* Every entry moves to a free slot of the larger table. */
    for (size_t i = 0; i < s->cap; i++) {
        size_t k;
        if (!s->type[i])
            continue;
        for (k = dset_hash(&s->slot[i], cap); type[k]; k = (k + 1) & (cap - 1))
            ;
        slot[k] = s->slot[i];
        type[k] = s->type[i];
        raw_len[k] = s->raw_len[i];
    }
    free(s->slot);
    free(s->type);
    free(s->raw_len);
    s->slot = slot;
    s->type = type;
    s->raw_len = raw_len;
    s->cap = cap;
}

bool
store_dset_get(const struct digest_set *s, const struct proto_digest *d,
               uint8_t *type, uint32_t *raw_len)
{
    size_t i = dset_find(s, d);

    if (i == SIZE_MAX || !s->type[i])
        return false;
    if (type)
        *type = s->type[i];
    if (raw_len)
        *raw_len = s->raw_len[i];
    return true;
}

bool
store_dset_has(const struct digest_set *s, const struct proto_digest *d)
{
    return store_dset_get(s, d, NULL, NULL);
}

void
store_dset_put(struct digest_set *s, const struct proto_digest *d, uint8_t type,
               uint32_t raw_len)
{
    size_t i = dset_find(s, d);

    if (i == SIZE_MAX || !s->type[i]) {
        if ((s->n + 1) * 4 > s->cap * 3) {
            dset_grow(s);
            i = dset_find(s, d);
        }
        s->slot[i] = *d;
        s->n++;
    }
    s->type[i] = type ? type : STORE_DSET_ANY;
    s->raw_len[i] = raw_len;
}

void
store_dset_add(struct digest_set *s, const struct proto_digest *d)
{
    if (!store_dset_has(s, d))
        store_dset_put(s, d, STORE_DSET_ANY, 0);
}

void
store_dset_free(struct digest_set *s)
{
    free(s->slot);
    free(s->type);
    free(s->raw_len);
    memset(s, 0, sizeof *s);
}
