/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Which backend a repository argument names (backend.h): "rados:..." is a
 * RADOS pool, anything else a directory.
 */
#include "store/backend.h"

#include <errno.h>
#include <string.h>

int
store_be_head_many_seq(struct store_be *be, const char *const *objs, size_t n,
                       bool touch, uint8_t *head, size_t head_len, size_t *got,
                       uint64_t *size, int *err)
{
    for (size_t i = 0; i < n; i++) {
        ssize_t r;
        err[i] = 0;
        got[i] = 0;
        if ((touch && be->ops->touch(be, objs[i]) < 0) ||
            be->ops->stat(be, objs[i], &size[i], NULL) < 0 ||
            (r = be->ops->read(be, objs[i], head + i * head_len, head_len, 0)) <
                0) {
            if (lb_error_errno() != ENOENT)
                return -1;
            lb_error_clear();
            err[i] = ENOENT;
            continue;
        }
        got[i] = (size_t)r;
    }
    return 0;
}

bool
store_be_is_rados(const char *repo)
{
    return strncmp(repo, "rados:", 6) == 0;
}
