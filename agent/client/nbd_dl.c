/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libnbd, loaded when a command first opens an image (see nbd_dl.h and
 * common/dl.h).
 */
#include "agent/client/nbd_dl.h"

LB_DL_DEFINE(lb_nbd, LB_NBD_FUNCS, LB_NBD_N, "libnbd.so.0", "libnbd0",
             "reading or writing an image through qemu-nbd");
