/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * librados, loaded at the first RADOS repository a process opens (see
 * rados_dl.h and common/dl.h).
 */
#include "store/rados_dl.h"

LB_DL_DEFINE(lb_rados, LB_RADOS_FUNCS, LB_RADOS_N, "librados.so.2", "librados2",
             "a RADOS repository");
