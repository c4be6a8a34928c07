/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * librados, loaded when a RADOS repository is opened (rados_dl.c): a
 * backupd of a file repository (the default, and every `ssh ... backupd
 * serve`) never loads it and its C++ runtime, about 8 ms of every start
 * on a warm cache and more on a cold one. Each function the backend calls
 * is named here once; LR(f, args...) calls f through the table, with the
 * type of librados's own declaration: LR(rados_create_write_op) is
 * rados_create_write_op().
 */
#ifndef LB_STORE_RADOS_DL_H
#define LB_STORE_RADOS_DL_H

#include <rados/librados.h>

#define LB_RADOS_FUNCS(X)                                                      \
    X(rados_aio_create_completion2)                                            \
    X(rados_aio_get_return_value)                                              \
    X(rados_aio_read)                                                          \
    X(rados_aio_read_op_operate)                                               \
    X(rados_aio_release)                                                       \
    X(rados_aio_remove)                                                        \
    X(rados_aio_unlock)                                                        \
    X(rados_aio_wait_for_complete)                                             \
    X(rados_aio_write_op_operate)                                              \
    X(rados_buffer_free)                                                       \
    X(rados_conf_read_file)                                                    \
    X(rados_conf_set)                                                          \
    X(rados_connect)                                                           \
    X(rados_create)                                                            \
    X(rados_create_read_op)                                                    \
    X(rados_create_write_op)                                                   \
    X(rados_get_instance_id)                                                   \
    X(rados_get_last_version)                                                  \
    X(rados_getaddrs)                                                          \
    X(rados_getxattr)                                                          \
    X(rados_ioctx_create)                                                      \
    X(rados_ioctx_destroy)                                                     \
    X(rados_ioctx_set_namespace)                                               \
    X(rados_list_lockers)                                                      \
    X(rados_lock_exclusive)                                                    \
    X(rados_lock_shared)                                                       \
    X(rados_nobjects_list_close)                                               \
    X(rados_nobjects_list_next)                                                \
    X(rados_nobjects_list_open)                                                \
    X(rados_omap_get_end)                                                      \
    X(rados_omap_get_next2)                                                    \
    X(rados_read)                                                              \
    X(rados_read_op_omap_get_vals2)                                            \
    X(rados_read_op_operate)                                                   \
    X(rados_read_op_read)                                                      \
    X(rados_read_op_stat)                                                      \
    X(rados_release_read_op)                                                   \
    X(rados_release_write_op)                                                  \
    X(rados_remove)                                                            \
    X(rados_rmxattr)                                                           \
    X(rados_setxattr)                                                          \
    X(rados_shutdown)                                                          \
    X(rados_stat)                                                              \
    X(rados_unlock)                                                            \
    X(rados_write_op_assert_exists)                                            \
    X(rados_write_op_assert_version)                                           \
    X(rados_write_op_cmpxattr)                                                 \
    X(rados_write_op_create)                                                   \
    X(rados_write_op_omap_cmp2)                                                \
    X(rados_write_op_omap_rm_keys2)                                            \
    X(rados_write_op_omap_set2)                                                \
    X(rados_write_op_operate)                                                  \
    X(rados_write_op_remove)                                                   \
    X(rados_write_op_rmxattr)                                                  \
    X(rados_write_op_setxattr)                                                 \
    X(rados_write_op_write_full)

#include "common/dl.h"

/* lb_rados_fn, set by a successful lb_rados_load (once, for the process). */
LB_DL_DECLARE(lb_rados, LB_RADOS_FUNCS, LB_RADOS_N);

/* A call of librados's function f through the table, with its arguments:
 * LR(rados_read, io, obj, buf, len, off). */
#define LR(f, ...) LB_DL_CALL(lb_rados_fn, f, __VA_ARGS__)

#endif
