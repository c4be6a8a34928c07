/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * librados, loaded at the first RADOS repository a process opens (see
 * rados_dl.h and common/dl.h).
 */
#include "store/rados_dl.h"

void *lb_rados_fn[LB_RADOS_N];

static const char *const names[] = {LB_RADOS_FUNCS(LB_DL_NAME)};

static struct lb_dl rados = {
    .soname = "librados.so.2",
    .package = "librados2",
    .names = names,
    .n = LB_RADOS_N,
    .fn = lb_rados_fn,
};

int
lb_rados_load(void)
{
    return lb_dl_load(&rados, "a RADOS repository");
}
