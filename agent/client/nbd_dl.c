/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libnbd, loaded when a command first opens an image (see nbd_dl.h and
 * common/dl.h).
 */
#include "agent/client/nbd_dl.h"

void *lb_nbd_fn[LB_NBD_N];

static const char *const names[] = {LB_NBD_FUNCS(LB_DL_NAME)};

static struct lb_dl nbd = {
    .soname = "libnbd.so.0",
    .package = "libnbd0",
    .names = names,
    .n = LB_NBD_N,
    .fn = lb_nbd_fn,
};

int
lb_nbd_load(void)
{
    return lb_dl_load(&nbd, "reading or writing an image through qemu-nbd");
}
