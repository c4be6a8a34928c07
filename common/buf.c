/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A growable byte buffer for encoders. Callers bound sizes before appending:
 * nothing taken from the wire is ever used as an append size unchecked.
 */
#include "common/common.h"

#include <string.h>

void
lb_buf_reserve(struct lb_buf *b, size_t extra)
{
    size_t need;

    if (lb_add_overflow(b->len, extra, &need))
        abort();
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    b->data = lb_xrealloc(b->data, cap);
    b->cap = cap;
}

void
lb_buf_append(struct lb_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    lb_buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void
lb_buf_put_u8(struct lb_buf *b, uint8_t v)
{
    lb_buf_append(b, &v, 1);
}

void
lb_buf_put_be16(struct lb_buf *b, uint16_t v)
{
    lb_buf_reserve(b, 2);
    lb_store_be16(b->data + b->len, v);
    b->len += 2;
}

void
lb_buf_put_be32(struct lb_buf *b, uint32_t v)
{
    lb_buf_reserve(b, 4);
    lb_store_be32(b->data + b->len, v);
    b->len += 4;
}

void
lb_buf_put_be64(struct lb_buf *b, uint64_t v)
{
    lb_buf_reserve(b, 8);
    lb_store_be64(b->data + b->len, v);
    b->len += 8;
}

void
lb_buf_put_str16(struct lb_buf *b, const char *s, size_t len)
{
    lb_buf_put_be16(b, (uint16_t)len);
    lb_buf_append(b, s, len);
}

void
lb_buf_reset(struct lb_buf *b)
{
    b->len = 0;
}

void
lb_buf_free(struct lb_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void
lb_cleanup_buf(struct lb_buf *b)
{
    lb_buf_free(b);
}
