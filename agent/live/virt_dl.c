/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libvirt, loaded at the first connection a process makes (see virt_dl.h
 * and common/dl.h).
 */
#include "agent/live/virt_dl.h"

void *lb_virt_fn[LB_VIRT_N];

static const char *const names[] = {LB_VIRT_FUNCS(LB_DL_NAME)};

static struct lb_dl virt = {
    .soname = "libvirt.so.0",
    .package = "libvirt0",
    .names = names,
    .n = LB_VIRT_N,
    .fn = lb_virt_fn,
};

int
lb_virt_load(void)
{
    return lb_dl_load(&virt, "a connection to libvirt");
}
