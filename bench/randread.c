/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench/randread: N reads of SIZE bytes at random aligned offsets of an NBD
 * export, one at a time (each read's latency, as a guest's synchronous
 * read sees it), then the median and the 99th percentile in ms.
 *
 *   randread URI N [SIZE] [SEED]
 *
 * Built by bench/instant.sh (cc ... -lnbd); not part of the build.
 */
#include <libnbd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int
cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
    struct nbd_handle *h = nbd_create();
    unsigned n = argc > 2 ? (unsigned)atoi(argv[2]) : 0;
    size_t sz = argc > 3 ? (size_t)atol(argv[3]) : 4096;
    double *lat;
    char *buf;
    int64_t size;

    if (argc < 3 || n == 0 || !h) {
        fprintf(stderr, "usage: randread URI N [SIZE] [SEED]\n");
        return 2;
    }
    srand(argc > 4 ? (unsigned)atoi(argv[4]) : 1);
    if (nbd_connect_uri(h, argv[1]) < 0 || (size = nbd_get_size(h)) < 0) {
        fprintf(stderr, "randread: %s\n", nbd_get_error());
        return 1;
    }
    lat = calloc(n, sizeof *lat);
    buf = malloc(sz);
    for (unsigned i = 0; i < n; i++) {
        uint64_t blocks = (uint64_t)size / sz;
        uint64_t r = ((uint64_t)rand() << 31 | (uint64_t)rand()) % blocks;
        double t = now_ms();
        if (nbd_pread(h, buf, sz, r * sz, 0) < 0) {
            fprintf(stderr, "randread: %s\n", nbd_get_error());
            return 1;
        }
        lat[i] = now_ms() - t;
    }
    qsort(lat, n, sizeof *lat, cmp);
    printf("%.3f %.3f\n", lat[n / 2], lat[(size_t)((double)n * 0.99)]);
    nbd_shutdown(h, 0);
    nbd_close(h);
    free(lat);
    free(buf);
    return 0;
}
