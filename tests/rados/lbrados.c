/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lbrados: what the RADOS tests need and the rados CLI cannot do.
 *
 *   lbrados CONF POOL NAMESPACE age SECONDS PREFIX
 *       set the mtime of every object whose name starts with PREFIX to
 *       SECONDS ago (a write op with an explicit mtime), so that gc's
 *       cutoff can be tested without waiting; prints how many.
 *   lbrados CONF POOL NAMESPACE fill|unfill PREFIX FIRST
 *       create empty objects PREFIX0000 ... PREFIXffff (four hex digits),
 *       from FIRST (hex) on, or remove them: 512 operations in flight
 *       (every backup id of one second reserved, test_rados.sh).
 */
#include <errno.h>
#include <rados/librados.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int
age(rados_ioctx_t io, long secs, const char *prefix)
{
    rados_list_ctx_t ctx;
    const char *name;
    time_t when = time(NULL) - secs;
    unsigned long n = 0;
    int r = rados_nobjects_list_open(io, &ctx);

    if (r < 0)
        return r;
    while ((r = rados_nobjects_list_next(ctx, &name, NULL, NULL)) == 0) {
        rados_write_op_t op;
        int w;
        if (strncmp(name, prefix, strlen(prefix)) != 0)
            continue;
        op = rados_create_write_op();
        rados_write_op_assert_exists(op);
        rados_write_op_setxattr(op, "lb.t", "aged", 4);
        w = rados_write_op_operate(op, io, name, &when, 0);
        rados_release_write_op(op);
        if (w < 0 && w != -ENOENT) {
            rados_nobjects_list_close(ctx);
            return w;
        }
        n += w == 0;
    }
    rados_nobjects_list_close(ctx);
    printf("%lu\n", n);
    return r == -ENOENT ? 0 : r;
}

#define FILL_INFLIGHT 512

static int
fill(rados_ioctx_t io, bool create, const char *prefix, unsigned first)
{
    rados_completion_t c[FILL_INFLIGHT];
    size_t n = 0;
    int r = 0;

    for (unsigned k = first; k <= 0xffff || n; k++) {
        if (k <= 0xffff) {
            char name[256];
            snprintf(name, sizeof name, "%s%04x", prefix, k);
            if (rados_aio_create_completion2(NULL, NULL, &c[n]) < 0)
                return -ENOMEM;
            r = create ? rados_aio_write_full(io, name, c[n], "", 0)
                       : rados_aio_remove(io, name, c[n]);
            if (r < 0)
                return r;
            n++;
        }
        if (n == FILL_INFLIGHT || (k >= 0xffff && n)) {
            for (size_t i = 0; i < n; i++) {
                int e;
                rados_aio_wait_for_complete(c[i]);
                e = rados_aio_get_return_value(c[i]);
                rados_aio_release(c[i]);
                if (e < 0 && r == 0)
                    r = e;
            }
            n = 0;
            if (r < 0)
                return r;
        }
    }
    return 0;
}

int
main(int argc, char **argv)
{
    rados_t cl;
    rados_ioctx_t io;
    int r;

    if (argc != 7 ||
        (strcmp(argv[4], "age") != 0 && strcmp(argv[4], "fill") != 0 &&
         strcmp(argv[4], "unfill") != 0)) {
        fprintf(stderr,
                "usage: lbrados CONF POOL NAMESPACE age SECONDS PREFIX\n"
                "       lbrados CONF POOL NAMESPACE fill|unfill PREFIX "
                "FIRST\n");
        return 2;
    }
    if ((r = rados_create(&cl, "admin")) < 0 ||
        (r = rados_conf_read_file(cl, argv[1])) < 0 ||
        (r = rados_connect(cl)) < 0 ||
        (r = rados_ioctx_create(cl, argv[2], &io)) < 0) {
        fprintf(stderr, "lbrados: cannot connect: %s\n", strerror(-r));
        return 1;
    }
    rados_ioctx_set_namespace(io, argv[3]);
    if (strcmp(argv[4], "age") == 0)
        r = age(io, strtol(argv[5], NULL, 10), argv[6]);
    else
        r = fill(io, strcmp(argv[4], "fill") == 0, argv[5],
                 (unsigned)strtoul(argv[6], NULL, 16));
    if (r < 0)
        fprintf(stderr, "lbrados: %s\n", strerror(-r));
    rados_ioctx_destroy(io);
    rados_shutdown(cl);
    return r < 0 ? 1 : 0;
}
