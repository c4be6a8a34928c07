/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libvirt, loaded at the first connection a process makes (see virt_dl.h
 * and common/dl.h).
 */
#include "agent/live/virt_dl.h"

LB_DL_DEFINE(lb_virt, LB_VIRT_FUNCS, LB_VIRT_N, "libvirt.so.0", "libvirt0",
             "a connection to libvirt");
